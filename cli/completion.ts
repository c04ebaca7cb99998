/**
 * `swarmlet completion bash|zsh`: yargs writes the shell script and completes commands and flags;
 * this adds the names the daemon knows where a command takes one (`service rm <TAB>` offers the
 * services, `exec <TAB>` the containers, `network inspect <TAB>` the networks).
 */
import type { Argv } from 'yargs';
import type { GlobalArgs } from './commands/context';
import { GLOBAL_VALUE_FLAGS } from './argv';

export type NameKind = 'service' | 'node' | 'network' | 'volume' | 'container' | 'secret' | 'config' | 'stack';

const CONTAINER_VERBS = ['exec', 'attach', 'logs', 'stop', 'start', 'restart', 'kill', 'rm', 'inspect', 'top', 'port', 'wait', 'stats'];
const TAKES_NAMES: Record<string, { verbs: string[]; kind: NameKind }> = {
  service: { verbs: ['ps', 'rm', 'remove', 'inspect', 'scale', 'update', 'logs', 'rollback'], kind: 'service' },
  node: { verbs: ['inspect', 'update', 'promote', 'demote', 'rm', 'ps'], kind: 'node' },
  network: { verbs: ['inspect', 'rm', 'connect', 'disconnect'], kind: 'network' },
  volume: { verbs: ['inspect', 'rm'], kind: 'volume' },
  secret: { verbs: ['inspect', 'rm'], kind: 'secret' },
  config: { verbs: ['inspect', 'rm'], kind: 'config' },
  stack: { verbs: ['ps', 'services', 'rm', 'down'], kind: 'stack' },
  container: { verbs: CONTAINER_VERBS, kind: 'container' },
};

/** Which names complete the word being typed, from the words before it (options left out). Pure. */
export function namesFor(words: string[]): NameKind | undefined {
  const plain = words.filter((w, i) => !w.startsWith('-') && !(GLOBAL_VALUE_FLAGS.has(words[i - 1]) && !words[i - 1].includes('=')));
  const [first, second] = plain;
  if (first === undefined) return undefined;
  if (CONTAINER_VERBS.includes(first)) return 'container';
  const group = TAKES_NAMES[first];
  return group && second !== undefined && group.verbs.includes(second) ? group.kind : undefined;
}

/** The names of `kind` the daemon knows; none when it cannot be reached (a completion never prints an error). */
async function listNames(argv: GlobalArgs, kind: NameKind): Promise<string[]> {
  const { withClients } = require('./commands/context') as typeof import('./commands/context');
  const { call } = require('./client') as typeof import('./client');
  return withClients(argv, async (c, host) => {
    const l = c.local;
    switch (kind) {
      case 'service':
        return (await call(c.control, c.control.listServices, {}, host)).services.map((s) => s.service!.spec!.name);
      case 'stack': {
        const services = (await call(c.control, c.control.listServices, {}, host)).services;
        return [...new Set(services.map((s) => s.service!.spec!.labels['com.docker.stack.namespace']).filter(Boolean))];
      }
      case 'node':
        return (await call(c.control, c.control.listNodes, {}, host)).nodes.map((n) => n.description?.hostname ?? n.id);
      case 'network': {
        // On a manager, the swarm's networks; on a worker, the ones it knows.
        const { fromManagerOrNode } = require('./commands/network') as typeof import('./commands/network');
        const res = await fromManagerOrNode(c, () => call(c.control, c.control.listNetworks, {}, host), (local) => call(local, local.listNetworks, {}, host));
        return res.networks.map((n) => n.spec!.name);
      }
      case 'volume':
        return l ? (await call(l, l.listVolumes, {}, host)).volumes.map((v) => v.name) : [];
      case 'container':
        return l ? (await call(l, l.listContainers, { all: true }, host)).containers.map((x) => x.name) : [];
      case 'secret':
        return (await call(c.control, c.control.listSecrets, {}, host)).secrets.map((s) => s.spec!.name);
      case 'config':
        return (await call(c.control, c.control.listConfigs, {}, host)).configs.map((s) => s.spec!.name);
    }
  }).catch(() => []);
}

/**
 * Answers a completion request (`swarmlet --get-yargs-completions swarmlet WORDS... CURRENT`, as the
 * script sends it) where a name is wanted, and says whether it did; flags and commands are left to
 * yargs. Reads -H/SWARMLET_HOST from the words typed.
 */
export async function completeNames(args: string[]): Promise<boolean> {
  if (args[0] !== '--get-yargs-completions') return false;
  const words = args.slice(2, -1);
  const current = args.at(-1) ?? '';
  const kind = current.startsWith('-') ? undefined : namesFor(words);
  if (!kind) return false;
  const at = words.findIndex((w) => w === '-H' || w === '--host');
  const inline = words.find((w) => w.startsWith('--host='));
  const host = at >= 0 ? words[at + 1] : inline?.slice('--host='.length);
  const names = await listNames({ host }, kind);
  process.stdout.write(names.filter((n) => n.startsWith(current)).map((n) => `${n}\n`).join(''));
  return true;
}

/** Registers `completion [bash|zsh]`: yargs prints the script, and completes commands and flags. */
export function completionCommand(parser: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return parser.completion('completion', 'Print a bash or zsh completion script (source <(swarmlet completion bash))');
}
