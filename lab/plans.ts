/** The pure decisions of `swarmlet lab`: names, roles, which host a word means, a shell's argv. No I/O. */
import { SwarmletError } from '../services/common/errors';

/** Where every lab's state lives: gone at reboot, as its namespaces are. */
export const LAB_STATE_ROOT = '/run/swarmlet/lab';
export const DEFAULT_LAB_NAME = 'swlab';
export const LAB_NAME_RE = /^[a-z][a-z0-9]{0,11}$/;
/** A real daemon's own namespaces start with its netns prefix (default swl): a lab of that name would take them for its own. */
const RESERVED_NAMES = new Set(['swl']);
const MAX_HOSTS = 20;

export interface LabPlan {
  readonly name: string;
  readonly hosts: number;
  readonly managers: number;
  readonly registry: boolean;
}

/** `lab up`'s options checked once, frozen. */
export function planLab(opts: { name?: string; hosts?: number; managers?: number; registry?: boolean }): LabPlan {
  const name = opts.name ?? DEFAULT_LAB_NAME;
  if (!LAB_NAME_RE.test(name) || RESERVED_NAMES.has(name)) {
    throw new SwarmletError('InvalidArgument', `invalid lab name ${JSON.stringify(name)}: a lowercase letter, then lowercase letters or digits, at most 12 in all${RESERVED_NAMES.has(name) ? ` (and not ${name}: the daemon's own namespaces start with it)` : ''}`);
  }
  const hosts = opts.hosts ?? 3;
  if (!Number.isInteger(hosts) || hosts < 1 || hosts > MAX_HOSTS) throw new SwarmletError('InvalidArgument', `--hosts must be a whole number from 1 to ${MAX_HOSTS}, not ${hosts}`);
  const managers = opts.managers ?? 1;
  if (!Number.isInteger(managers) || managers < 1 || managers > hosts) throw new SwarmletError('InvalidArgument', `--managers must be a whole number from 1 to --hosts (${hosts}), not ${managers}`);
  return Object.freeze({ name, hosts, managers, registry: Boolean(opts.registry) });
}

/** Host indexes (1-based) that join as managers (the first `managers`, host 1 making the swarm) and as workers. */
export function planRoles(plan: Pick<LabPlan, 'hosts' | 'managers'>): { managers: number[]; workers: number[] } {
  const all = Array.from({ length: plan.hosts }, (_, k) => k + 1);
  return { managers: all.slice(0, plan.managers), workers: all.slice(plan.managers) };
}

/** The host a user means by `h2`, `2` or `swlab-h2`; throws NotFound naming the lab's hosts. */
export function resolveHost<H extends { index: number; name: string }>(name: string, hosts: readonly H[], word: string): H {
  const m = /^(?:h)?(\d+)$/.exec(word) ?? (word.startsWith(`${name}-h`) ? /^(\d+)$/.exec(word.slice(name.length + 2)) : null);
  const h = m ? hosts.find((x) => x.index === Number(m[1])) : undefined;
  if (!h) throw new SwarmletError('NotFound', `lab ${name} has no host ${JSON.stringify(word)}: its hosts are ${hosts.map((x) => `h${x.index}`).join(', ')}`);
  return h;
}

/** What a shell on a lab host gets in its environment: the CLI talks to that host's daemon, and finds the same swarmlet first on PATH. */
export function planShellEnv(host: { name: string; socket: string }, binDir: string, env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  out.SWARMLET_HOST = host.socket;
  out.SWARMLET_LAB_HOST = host.name;
  out.PATH = [binDir, ...(env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(':').filter((p) => p && p !== binDir)].join(':');
  return out;
}

/** The bash rc file of an interactive lab shell: the user's own, then a prompt that names the host. */
export function planShellRc(hostName: string): string {
  return [
    '[ -f ~/.bashrc ] && . ~/.bashrc',
    `PS1="[${hostName}] \${PS1:-\\u@\\h:\\w\\$ }"`,
    '',
  ].join('\n');
}

/** The argv (run as is, no shell) of `lab shell`: nsenter into the host's netns, then the command or an interactive bash. */
export function planShellArgv(netns: string, rcFile: string, command: readonly string[]): string[] {
  const inner = command.length > 0 ? [...command] : ['bash', '--rcfile', rcFile, '-i'];
  return ['nsenter', `--net=/run/netns/${netns}`, '--', ...inner];
}
