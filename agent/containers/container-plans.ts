/**
 * Containers as docker's users know them, in pure functions: names (docker's generated
 * adjective_noun ones, its name rules and conflict message), restart policies, finding a container
 * by name or id, the Task-shaped object a container is to the runtime, `ps` rows and filters, and
 * `inspect` shaped like docker's. No I/O: containers.ts applies what these decide.
 */
import { conflict, invalidArgument, notFound } from '../../services/common/errors';
import { planInspectPorts, planPortsText } from './port-plans';
import { Container, ContainerConfig } from '../../services/gen/swarmlet/v1/control';
import { NetworkAttachment, Task, TaskState } from '../../services/gen/swarmlet/v1/types';

// A sample of docker's names-generator lists (moby/pkg/namesgenerator).
const ADJECTIVES = [
  'admiring', 'adoring', 'affectionate', 'agitated', 'amazing', 'angry', 'awesome', 'beautiful', 'blissful', 'bold', 'boring', 'brave', 'busy',
  'charming', 'clever', 'compassionate', 'competent', 'condescending', 'confident', 'cool', 'cranky', 'crazy', 'dazzling', 'determined',
  'distracted', 'dreamy', 'eager', 'ecstatic', 'elastic', 'elated', 'elegant', 'eloquent', 'epic', 'exciting', 'fervent', 'festive', 'flamboyant',
  'focused', 'friendly', 'frosty', 'funny', 'gallant', 'gifted', 'goofy', 'gracious', 'great', 'happy', 'hardcore', 'heuristic', 'hopeful',
  'hungry', 'infallible', 'inspiring', 'intelligent', 'interesting', 'jolly', 'jovial', 'keen', 'kind', 'laughing', 'loving', 'lucid', 'magical',
  'modest', 'musing', 'mystifying', 'naughty', 'nervous', 'nice', 'nifty', 'nostalgic', 'objective', 'optimistic', 'peaceful', 'pedantic',
  'pensive', 'practical', 'priceless', 'quirky', 'quizzical', 'recursing', 'relaxed', 'reverent', 'romantic', 'sad', 'serene', 'sharp', 'silly',
  'sleepy', 'stoic', 'strange', 'stupefied', 'suspicious', 'sweet', 'tender', 'thirsty', 'trusting', 'unruffled', 'upbeat', 'vibrant',
  'vigilant', 'vigorous', 'wizardly', 'wonderful', 'xenodochial', 'youthful', 'zealous', 'zen',
];
const NOUNS = [
  'agnesi', 'albattani', 'allen', 'archimedes', 'ardinghelli', 'babbage', 'banach', 'bardeen', 'bartik', 'bell', 'benz', 'bhabha', 'blackwell',
  'bohr', 'booth', 'borg', 'bose', 'brahmagupta', 'brattain', 'brown', 'carson', 'cerf', 'chandrasekhar', 'clarke', 'colden', 'cori', 'curie',
  'darwin', 'davinci', 'dijkstra', 'dubinsky', 'easley', 'einstein', 'elion', 'engelbart', 'euclid', 'euler', 'faraday', 'fermat', 'fermi',
  'feynman', 'franklin', 'galileo', 'gauss', 'goldberg', 'goldstine', 'goodall', 'hamilton', 'hawking', 'heisenberg', 'hertz', 'hodgkin',
  'hopper', 'hypatia', 'jackson', 'jang', 'jennings', 'johnson', 'kalam', 'kare', 'keller', 'kepler', 'knuth', 'kowalevski', 'lalande',
  'lamarr', 'lamport', 'leakey', 'leavitt', 'lovelace', 'lumiere', 'mayer', 'mccarthy', 'mcclintock', 'meitner', 'mendel', 'minsky',
  'mirzakhani', 'montalcini', 'morse', 'napier', 'nash', 'newton', 'nobel', 'noether', 'pascal', 'pasteur', 'payne', 'perlman', 'pike',
  'poincare', 'ptolemy', 'raman', 'ramanujan', 'ride', 'ritchie', 'rosalind', 'sammet', 'shannon', 'shockley', 'sinoussi', 'stallman',
  'swartz', 'tesla', 'thompson', 'torvalds', 'turing', 'volhard', 'wescoff', 'wiles', 'williams', 'wilson', 'wing', 'wozniak', 'wright',
  'yalow', 'yonath',
];

/** docker's container name rule. */
const NAME_RE = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/** A generated name not in `taken`: docker's adjective_noun, with a digit appended when both are taken. */
export function planGeneratedName(random: () => number, taken: Set<string>): string {
  const pick = <T>(list: T[]) => list[Math.floor(random() * list.length) % list.length];
  for (let attempt = 0; attempt < 50; attempt++) {
    let name = `${pick(ADJECTIVES)}_${pick(NOUNS)}`;
    if (name === 'boring_wozniak') continue; // as docker: Steve Wozniak is not boring
    if (attempt > 10) name += Math.floor(random() * 10);
    if (!taken.has(name)) return name;
  }
  throw conflict('could not generate a free container name: give one with --name');
}

/** The name as kept (without docker's leading '/'); refused when malformed or taken, with docker's messages. */
export function planContainerName(name: string, existing: Pick<Container, 'id' | 'name'>[]): string {
  if (!NAME_RE.test(name)) throw invalidArgument(`Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  const bare = name.replace(/^\//, '');
  const holder = existing.find((c) => c.name === bare);
  if (holder) {
    throw conflict(`Conflict. The container name "/${bare}" is already in use by container "${holder.id}". You have to remove (or rename) that container to be able to reuse that name.`);
  }
  return bare;
}

export type RestartPolicyName = 'no' | 'on-failure' | 'always' | 'unless-stopped';

export interface RestartPolicy {
  name: RestartPolicyName;
  /** on-failure only; 0: no limit. */
  maximumRetryCount: number;
}

/** `no`, `on-failure[:N]`, `always`, `unless-stopped` (empty: no), with docker's messages. */
export function parseRestartPolicy(text: string): RestartPolicy {
  if (text === '' || text === 'no') return { name: 'no', maximumRetryCount: 0 };
  const [name, count, ...rest] = text.split(':');
  if (rest.length > 0) throw invalidArgument(`invalid restart policy format: ${text}`);
  if (name === 'on-failure') {
    if (count === undefined) return { name, maximumRetryCount: 0 };
    if (!/^\d+$/.test(count)) throw invalidArgument(`invalid restart policy format: maximum retry count must be an integer: ${text}`);
    return { name, maximumRetryCount: Number(count) };
  }
  if (name === 'always' || name === 'unless-stopped') {
    if (count !== undefined) throw invalidArgument(`invalid restart policy format: maximum retry count cannot be used with restart policy '${name}'`);
    return { name, maximumRetryCount: 0 };
  }
  throw invalidArgument(`invalid restart policy format: unknown policy '${name}': use no, on-failure[:max-retries], always or unless-stopped`);
}

/**
 * Whether a container that exited by itself starts again. `stoppedByUser`: a stop, kill or
 * restart asked for it (no policy restarts it then, as docker's); `daemonStart`: the daemon is
 * starting (unless-stopped and always bring back what was running).
 */
export function planRestart(policy: RestartPolicy, exitCode: number, restartCount: number, stoppedByUser: boolean): boolean {
  if (stoppedByUser) return false;
  switch (policy.name) {
    case 'no':
      return false;
    case 'always':
    case 'unless-stopped':
      return true;
    case 'on-failure':
      return exitCode !== 0 && (policy.maximumRetryCount === 0 || restartCount < policy.maximumRetryCount);
  }
}

/** docker's delay before restart n (100 ms doubling, at most a minute). */
export function planRestartDelayMs(restartCount: number): number {
  return Math.min(60000, 100 * 2 ** Math.min(restartCount, 10));
}

/** A container by full id, name, or unique id prefix; docker's message when none or several. */
export function resolveContainer<C extends Pick<Container, 'id' | 'name'>>(containers: C[], ref: string): C {
  const bare = ref.replace(/^\//, '');
  const exact = containers.find((c) => c.id === ref || c.name === bare);
  if (exact) return exact;
  const byPrefix = ref.length > 0 && /^[0-9a-f]+$/.test(ref) ? containers.filter((c) => c.id.startsWith(ref)) : [];
  if (byPrefix.length === 1) return byPrefix[0];
  if (byPrefix.length > 1) throw invalidArgument(`multiple IDs found with provided prefix: ${ref}`);
  throw notFound(`No such container: ${ref}`);
}

/** The networks a container joins: the ones given, else docker's default `bridge`. */
export function planContainerNetworks(cfg: ContainerConfig): string[] {
  const given = cfg.spec?.networks ?? [];
  return given.length ? given : ['bridge'];
}

/** Bad combinations refused before anything is made (docker's checks). */
export function validateContainerConfig(cfg: ContainerConfig): void {
  const image = cfg.spec?.container?.image ?? '';
  if (!image) throw invalidArgument('"docker run" requires at least 1 argument: an image');
  parseRestartPolicy(cfg.restart);
  if (cfg.autoRemove && parseRestartPolicy(cfg.restart).name !== 'no') throw invalidArgument('Conflicting options: --restart and --rm');
  const nets = planContainerNetworks(cfg);
  if (nets.length > 1 && nets.some((n) => n === 'host' || n === 'none')) {
    throw invalidArgument(`container cannot be connected to multiple networks with one of the networks in private (none) or host mode`);
  }
  if ((cfg.aliases.length || cfg.ipv4) && nets.some((n) => n === 'host' || n === 'none' || n === 'bridge')) {
    throw invalidArgument('network-scoped aliases and --ip are only supported for user-defined networks');
  }
  if (cfg.spec?.container?.hostname && nets.includes('host')) throw invalidArgument('Conflicting options: hostname and the network mode');
}

/** The Task-shaped object the runtime runs for a container: its id, its spec, and its network attachments. */
export function planContainerTask(c: Pick<Container, 'id' | 'name' | 'createdAt' | 'config'>, attachments: NetworkAttachment[]): Task {
  const spec = c.config?.spec;
  return {
    id: c.id,
    meta: undefined,
    serviceId: '',
    serviceName: c.name,
    slot: 0,
    nodeId: '',
    spec: { ...spec!, container: { ...spec!.container!, hostname: spec?.container?.hostname || '' } },
    specVersion: 0,
    desiredState: TaskState.TASK_STATE_RUNNING,
    status: undefined,
    createdAt: c.createdAt,
    networks: attachments,
  };
}

/** docker's human durations: "Less than a second", "3 seconds", "About a minute", "5 minutes", "About an hour", "2 hours", "3 days". */
export function humanDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 1) return 'Less than a second';
  if (s === 1) return '1 second';
  if (s < 60) return `${s} seconds`;
  const m = Math.floor(s / 60);
  if (m === 1) return 'About a minute';
  if (m < 60) return `${m} minutes`;
  const h = Math.round(s / 3600);
  if (h === 1) return 'About an hour';
  if (h < 48) return `${h} hours`;
  return `${Math.floor(h / 24)} days`;
}

/** The STATUS column of `ps`: "Up 5 seconds", "Exited (0) 3 minutes ago", "Created", "Restarting (1) ...". */
export function planStatusText(c: Container, now: Date): string {
  const st = c.state;
  const since = (t: string | undefined) => humanDuration(now.getTime() - Date.parse(t || now.toISOString()));
  switch (st?.status) {
    case 'running':
      return `Up ${since(st.startedAt)}`;
    case 'restarting':
      return `Restarting (${st.exitCode}) ${since(st.finishedAt)} ago`;
    case 'exited':
      return `Exited (${st.exitCode}) ${since(st.finishedAt)} ago`;
    case 'dead':
      return 'Dead';
    default:
      return 'Created';
  }
}

/** The COMMAND column: the argv quoted and cut as docker's (20 characters). */
export function planCommandText(c: Container, truncate = true): string {
  const ctr = c.config?.spec?.container;
  const text = [...(ctr?.command ?? []), ...(ctr?.args ?? [])].join(' ');
  return JSON.stringify(truncate && text.length > 20 ? `${text.slice(0, 19)}…` : text);
}

/** `ps` filters (docker's): id, name, label, status, exited, network, ancestor. */
export function parseFilters(items: string[]): [string, string][] {
  return items.map((item) => {
    const eq = item.indexOf('=');
    if (eq <= 0) throw invalidArgument(`bad format of filter (expected name=value): ${item}`);
    const key = item.slice(0, eq);
    if (!['id', 'name', 'label', 'status', 'exited', 'network', 'ancestor'].includes(key)) throw invalidArgument(`invalid filter '${key}'`);
    return [key, item.slice(eq + 1)];
  });
}

/** Whether a container passes every filter key (docker: values of one key are or'ed, keys are and'ed). */
export function matchesFilters(c: Container, filters: [string, string][]): boolean {
  const byKey = new Map<string, string[]>();
  for (const [k, v] of filters) byKey.set(k, [...(byKey.get(k) ?? []), v]);
  const test = (key: string, v: string): boolean => {
    switch (key) {
      case 'id':
        return c.id.startsWith(v);
      case 'name':
        return c.name.includes(v);
      case 'label': {
        const eq = v.indexOf('=');
        const labels = c.config?.labels ?? {};
        return eq < 0 ? v in labels : labels[v.slice(0, eq)] === v.slice(eq + 1);
      }
      case 'status':
        return (c.state?.status ?? 'created') === v;
      case 'exited':
        return c.state?.status === 'exited' && String(c.state.exitCode) === v;
      case 'network':
        return c.endpoints.some((e) => e.networkName === v || e.networkId === v) || (c.config?.spec?.networks ?? []).includes(v);
      case 'ancestor':
        return c.config?.spec?.container?.image === v;
      default:
        return false;
    }
  };
  return [...byKey].every(([k, vs]) => vs.some((v) => test(k, v)));
}

/** `ps` rows: CONTAINER ID, IMAGE, COMMAND, CREATED, STATUS, PORTS, NAMES. */
export function planPsRows(containers: Container[], now: Date): string[][] {
  return containers.map((c) => [
    c.id.slice(0, 12),
    c.config?.spec?.container?.image ?? '',
    planCommandText(c),
    `${humanDuration(now.getTime() - Date.parse(c.createdAt))} ago`,
    planStatusText(c, now),
    planPortsText(c),
    c.name,
  ]);
}

const nanoOrZero = (n: number | undefined) => n ?? 0;

/** `inspect` of a container, shaped like docker's (the fields students' --format and jq habits use). */
export function planInspect(c: Container): Record<string, unknown> {
  const spec = c.config?.spec;
  const ctr = spec?.container;
  const st = c.state;
  const limits = spec?.resources?.limits;
  const restart = parseRestartPolicy(c.config?.restart ?? '');
  const ports = planInspectPorts(c);
  const networks: Record<string, unknown> = {};
  for (const e of c.endpoints) {
    const [ip, prefix] = e.ipv4Cidr.split('/');
    networks[e.networkName] = {
      Aliases: e.aliases.length ? e.aliases : null,
      NetworkID: e.networkId,
      EndpointID: e.networkId && c.id ? `${c.id.slice(0, 32)}${e.networkId.slice(0, 32)}` : '',
      Gateway: e.gateway,
      IPAddress: ip ?? '',
      IPPrefixLen: prefix ? Number(prefix) : 0,
      MacAddress: e.mac,
    };
  }
  const mounts = (ctr?.mounts ?? []).map((m) => ({
    Type: ['bind', 'volume', 'tmpfs'][m.type] ?? 'bind',
    Name: m.type === 1 ? m.source : undefined,
    Source: m.source,
    Destination: m.target,
    RW: !m.readonly,
  }));
  return {
    Id: c.id,
    Created: c.createdAt,
    Path: [...(ctr?.command ?? []), ...(ctr?.args ?? [])][0] ?? '',
    Args: [...(ctr?.command ?? []), ...(ctr?.args ?? [])].slice(1),
    State: {
      Status: st?.status ?? 'created',
      Running: st?.status === 'running',
      Paused: false,
      Restarting: st?.status === 'restarting',
      OOMKilled: Boolean(st?.oomKilled),
      Dead: st?.status === 'dead',
      Pid: st?.status === 'running' ? st.pid : 0,
      ExitCode: st?.exitCode ?? 0,
      Error: st?.error ?? '',
      StartedAt: st?.startedAt || '0001-01-01T00:00:00Z',
      FinishedAt: st?.finishedAt || '0001-01-01T00:00:00Z',
    },
    Image: ctr?.image ?? '',
    Name: `/${c.name}`,
    RestartCount: st?.restartCount ?? 0,
    HostConfig: {
      NetworkMode: spec?.networks?.[0] ?? 'bridge',
      RestartPolicy: { Name: restart.name, MaximumRetryCount: restart.maximumRetryCount },
      AutoRemove: Boolean(c.config?.autoRemove),
      Memory: nanoOrZero(limits?.memoryBytes),
      // docker's: memory plus swap; with a memory limit and no --memory-swap, swarmlet gives no swap (memory alone).
      MemorySwap: limits?.memoryBytes ? (limits.memorySwapBytes || limits.memoryBytes) : 0,
      NanoCpus: nanoOrZero(limits?.nanoCpus),
      PidsLimit: limits?.pids ? limits.pids : null,
      Binds: (ctr?.mounts ?? []).filter((m) => m.type !== 2).map((m) => `${m.source}:${m.target}${m.readonly ? ':ro' : ''}`),
      Tmpfs: Object.fromEntries((ctr?.mounts ?? []).filter((m) => m.type === 2).map((m) => [m.target, m.tmpfsSizeBytes ? `size=${m.tmpfsSizeBytes}` : ''])),
      PortBindings: ports.PortBindings,
      PublishAllPorts: Boolean(c.config?.publishAll),
      ReadonlyRootfs: Boolean(ctr?.readOnly),
      Init: ctr?.init ? true : null,
    },
    Mounts: mounts,
    Config: {
      Hostname: ctr?.hostname || c.id.slice(0, 12),
      User: ctr?.user ?? '',
      Tty: Boolean(c.config?.tty),
      OpenStdin: Boolean(c.config?.openStdin),
      Env: ctr?.env ?? [],
      Cmd: ctr?.args?.length ? ctr.args : null,
      Image: ctr?.image ?? '',
      WorkingDir: ctr?.dir ?? '',
      Entrypoint: ctr?.command?.length ? ctr.command : null,
      Labels: { ...(c.config?.labels ?? {}) },
      StopTimeout: ctr?.stopGracePeriodMs ? Math.round(ctr.stopGracePeriodMs / 1000) : null,
      ...(ports.ExposedPorts ? { ExposedPorts: ports.ExposedPorts } : {}),
    },
    NetworkSettings: { Ports: ports.Ports, Networks: networks },
  };
}
