import { randomBytes } from 'node:crypto';
import { Etcd3 } from 'etcd3';
import { failedPrecondition, unavailable } from '../../services/common/errors';
import { seal, unseal } from '../../services/pki/seal';
import type { SealKeySource } from '../service-secrets';
import { keys } from './keys';

/** A new dashboard token: 32 random bytes, URL-safe (it travels in the page's URL fragment). */
const newToken = () => `swldash-${randomBytes(32).toString('base64url')}`;

/** How a sealed token is stored (base64 after it); anything else is a token kept in clear (no seal key). */
const SEALED = 'sealed:';
const CONTEXT = 'dashboard-token';

/**
 * The web dashboard's access token, one for the swarm, in etcd: made on first use
 * (create-if-absent, so two managers asked at once agree on one), replaced on rotation, and kept
 * sealed with the managers' key (as the join tokens are) when there is one. Every manager's
 * dashboard checks a request against it as it is now.
 */
export class DashboardTokens {
  constructor(private readonly etcd: Etcd3, private readonly sealKey?: SealKeySource) {}

  /** The token now, if one was made. */
  async current(): Promise<string | undefined> {
    let stored: string | null;
    try {
      stored = await this.etcd.get(keys.dashboardToken).string();
    } catch (err) {
      throw unavailable('could not read the dashboard token from the cluster store', err);
    }
    return stored === null ? undefined : this.open(stored);
  }

  private stored(token: string): string {
    const key = this.sealKey?.();
    return key ? `${SEALED}${seal(key, token, CONTEXT).toString('base64')}` : token;
  }

  private open(stored: string): string {
    if (!stored.startsWith(SEALED)) return stored;
    const key = this.sealKey?.();
    if (!key) throw failedPrecondition('the dashboard token is sealed and this manager has no seal key (its data dir lost seal.key?)');
    return unseal(key, Buffer.from(stored.slice(SEALED.length), 'base64'), CONTEXT);
  }

  /** The token, made now if there is none yet. */
  async ensure(): Promise<string> {
    const key = keys.dashboardToken;
    const token = newToken();
    let res;
    try {
      res = await this.etcd.if(key, 'Create', '==', 0).then(this.etcd.put(key).value(this.stored(token))).else(this.etcd.get(key)).commit();
    } catch (err) {
      throw unavailable('could not read or make the dashboard token in the cluster store', err);
    }
    return res.succeeded ? token : this.open(res.responses[0].response_range.kvs[0].value.toString());
  }

  /** Calls `onChange` after the token is made or replaced; resolves to the unwatch. */
  async watch(onChange: () => void): Promise<() => Promise<void>> {
    let watcher;
    try {
      watcher = await this.etcd.watch().key(keys.dashboardToken).create();
    } catch (err) {
      throw unavailable('could not watch the dashboard token in the cluster store', err);
    }
    watcher.on('put', onChange).on('delete', onChange).on('connected', onChange).on('error', () => undefined);
    return async () => {
      await watcher.cancel().catch(() => undefined);
    };
  }

  /** A new token; the old one stops working on every manager at once. */
  async rotate(): Promise<string> {
    const token = newToken();
    try {
      await this.etcd.put(keys.dashboardToken).value(this.stored(token)).exec();
    } catch (err) {
      throw unavailable('could not write the dashboard token to the cluster store', err);
    }
    return token;
  }
}
