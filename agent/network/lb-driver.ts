/**
 * The nftables tables of service load balancing, applied to the kernel: a task's `ip swarmlet-lb`
 * table in its own network namespace, the ingress sandbox's table, and the host's
 * `ip swarmlet-publish` table (the renderers are in plans/lb-nft.ts).
 *
 * Each table is one key (a task id, 'ingress', 'host'): its rendered text is applied as one
 * atomic nft transaction inside the namespace (netns-run.ts runNft: the long-lived namespace
 * helper, no process per change),
 * and only when the text for the key changed since it was last applied there. When only the rules
 * of some chains changed (a VIP's or a published port's backends), that transaction rewrites
 * those chains alone (planNftUpdate); when it fails (the kernel does not have the table the agent
 * applied: deleted by hand), the whole table is applied instead. A `verify` pass (the periodic
 * resync) reads the kernel's listing and applies again what differs, so a table flushed or
 * deleted by hand comes back. Calls for one key run one at a time, in order.
 */
import { metrics, timed } from '../../services/metrics/metrics';
import { access, readFile, writeFile } from 'node:fs/promises';
import { KeyedMutex } from '../../services/common/keyed-mutex';
import { asSwarmletError } from '../../services/common/errors';
import { Logger, componentLogger } from '../../services/common/logger';
import { enableForwarding, runNft } from './netns-run';
import { PublishRule, planNftUpdate, renderNftReplace } from './plans/lb-nft';

const routeLocalnetFile = (dev: string) => `/proc/sys/net/ipv4/conf/${dev}/route_localnet`;

/** A bridge's route_localnet ('0' or '1'), or undefined when the bridge is not there (yet). */
export async function readRouteLocalnet(dev: string): Promise<string | undefined> {
  try {
    return (await readFile(routeLocalnetFile(dev), 'utf8')).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

const exists = (path: string) => access(path).then(() => true, () => false);

/** The bridges the host's published-port rules send connections into. */
export function devicesOf(rules: PublishRule[]): string[] {
  return [...new Set(rules.flatMap((r) => (r.device ? [r.device] : [])))].sort();
}

/**
 * What published ports need of the host besides their table: IPv4 forwarding, and route_localnet
 * on the bridges they DNAT into, so connections from 127.0.0.1 are routed there (lb-nft.ts).
 */
export async function ensurePublishSysctls(rules: PublishRule[]): Promise<void> {
  await enableForwarding(undefined);
  for (const dev of devicesOf(rules)) {
    if ((await readRouteLocalnet(dev)) === '0') await writeFile(routeLocalnetFile(dev), '1\n');
  }
}

/** The `ip` table as `nft list table` prints it; '' when the namespace has no such table. */
export async function listNftTable(netns: string | undefined, table: string): Promise<string> {
  try {
    return await runNft(netns, `list table ip ${table}`);
  } catch (err) {
    // nft's own words for a missing table (a missing namespace is said otherwise: that is an error).
    if (/Error: No such file or directory/.test(asSwarmletError(err).message)) return '';
    throw err;
  }
}

interface Applied {
  netns: string | undefined;
  table: string;
  body: string;
}

export interface NftTablesOptions {
  log: Logger;
}

/** One nft table per key, in the namespace the key's caller names, applied only when it changes. */
export class NftTables {
  private readonly log: Logger;
  private readonly applied = new Map<string, Applied>();
  private readonly queues = new KeyedMutex();

  constructor(opts: NftTablesOptions) {
    this.log = componentLogger(opts.log, 'lb-driver');
  }

  /**
   * Makes the `ip` table `table` in `netns` what `body` says ('' for no table). Without `verify`,
   * nothing is done when this very text was applied there last; with it, the kernel's listing is
   * compared. Resolves true when the kernel was changed. A `body` given as a function is rendered
   * when the key's turn comes, from the state of then: of two callers that raced, the later
   * state is what the kernel is left with.
   */
  ensure(key: string, netns: string | undefined, table: string, wanted: string | (() => string), verify = false): Promise<boolean> {
    return this.serial(key, async () => {
      const body = typeof wanted === 'function' ? wanted() : wanted;
      const last = this.applied.get(key);
      const same = last !== undefined && last.netns === netns && last.table === table && last.body === body;
      if (same && !verify) return false;
      // No table wanted where none was applied: the namespace is new (a verify pass removes one left from earlier).
      if (!verify && last === undefined && body === '') {
        this.applied.set(key, { netns, table, body });
        return false;
      }
      if (verify && (await listNftTable(netns, table)) === body) {
        this.applied.set(key, { netns, table, body });
        return false;
      }
      if (same) this.log.warn({ key, table, netns }, 'nft table changed behind the agent; applying it again');
      this.applied.delete(key);
      const update = !verify && last !== undefined && last.netns === netns && last.table === table ? planNftUpdate(table, last.body, body) : undefined;
      if (update === '') {
        this.applied.set(key, { netns, table, body });
        return false;
      }
      if (update !== undefined) {
        try {
          await timed(metrics.nftSeconds, () => runNft(netns, update));
          this.applied.set(key, { netns, table, body });
          this.log.debug({ key, table, netns, lines: update.split('\n').length - 1 }, 'nft chains updated');
          return true;
        } catch (err) {
          // A namespace that is gone (its task ended) has no table to apply whole either.
          if (netns !== undefined && !(await exists(netns))) throw err;
          this.log.warn({ key, table, netns, err: asSwarmletError(err).message }, 'nft table not as the agent applied it; applying it whole');
        }
      }
      await timed(metrics.nftSeconds, () => runNft(netns, renderNftReplace(table, body)));
      this.applied.set(key, { netns, table, body });
      this.log.debug({ key, table, netns, rules: body.split('\n').length }, body ? 'nft table applied' : 'nft table removed');
      return true;
    });
  }

  /** Forgets a key (its namespace is gone, or its table was removed otherwise). */
  forget(key: string): void {
    this.applied.delete(key);
  }

  /** The keys with a table applied, for dropping those no longer wanted. */
  keys(): string[] {
    return [...this.applied.keys()];
  }

  private serial<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return this.queues.runExclusive(key, fn).catch((err: unknown) => {
      throw asSwarmletError(err);
    });
  }
}
