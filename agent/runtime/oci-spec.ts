/**
 * The pure part of the oci runtime: what a task's spec and its image's config mean for the
 * container's process (docker's rules for entrypoint/cmd, env, user, workdir), and the OCI
 * runtime-spec config.json crun runs it with. No I/O: the runtime reads the image's passwd and
 * group files and resolves the executable beforehand. No rlimits: the task inherits the agent's
 * (raising RLIMIT_NOFILE past the hard limit needs CAP_SYS_RESOURCE, which a node may not have).
 */
import { invalidArgument } from '../../services/common/errors';
import { DEFAULT_PATH, envValue, resolveUser, taskHostname } from './exec-spec';
import type { OciMount } from './mount-plans';

export type { OciMount } from './mount-plans';

/** What a task needs of its image's config (the image store's ImageRunConfig fits). */
export interface OciImageConfig {
  entrypoint: string[];
  cmd: string[];
  env: string[];
  user: string;
  workingDir: string;
}

/** The part of a task's ContainerSpec the process is made from. */
export interface OciContainerInput {
  command: string[];
  args: string[];
  env: string[];
  dir: string;
  user: string;
  hostname: string;
}

/** Where the hold (start fifo) and the static busybox that waits on it appear in the container. */
export const HOLD_DIR = '/.swarmlet';
export const HOLD_BUSYBOX = `${HOLD_DIR}/busybox`;
export const HOLD_FIFO = `${HOLD_DIR}/start`;
/**
 * Run by the static busybox as the container's first process: waits for the start fifo, then
 * becomes the task's command (so that is pid 1, as in docker). The command's path is resolved
 * beforehand (busybox's sh would run its own applets for bare names); -a keeps argv[0] as given.
 */
export const HOLD_SCRIPT = `read -r x < ${HOLD_FIFO} || exit 125; p=$1; shift; n=$1; shift; exec -a "$n" "$p" "$@"`;

/** Docker's default capability set. */
export const DEFAULT_CAPABILITIES = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

const MASKED_PATHS = [
  '/proc/asound',
  '/proc/acpi',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
  '/sys/devices/virtual/powercap',
];
const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/** The container's process, as docker would run it. */
export interface OciProcessPlan {
  /** The command: entrypoint then cmd, after the spec's overrides. */
  argv: string[];
  env: string[];
  user: { uid: number; gid: number; additionalGids: number[] };
  cwd: string;
  hostname: string;
}

/**
 * Docker's rules: the spec's command replaces the image's Entrypoint, its args replace Cmd, and a
 * command given without args drops the image's Cmd.
 */
export function planArgv(command: string[], args: string[], image: Pick<OciImageConfig, 'entrypoint' | 'cmd'>): string[] {
  const entrypoint = command.length > 0 ? command : image.entrypoint;
  const cmd = args.length > 0 ? args : command.length > 0 ? [] : image.cmd;
  const argv = [...entrypoint, ...cmd];
  if (argv.length === 0 || argv[0] === '') throw invalidArgument('no command specified: the image has no Entrypoint or Cmd, and the service gives none');
  if (argv.some((a) => a.includes('\0'))) throw invalidArgument('the task\'s command holds a NUL byte');
  return argv;
}

function envMapSet(env: Map<string, string>, entry: string, where: string): void {
  const eq = entry.indexOf('=');
  if (eq <= 0 || entry.includes('\0')) throw invalidArgument(`environment entry ${JSON.stringify(entry)} ${where} is not valid: use KEY=VALUE`);
  env.set(entry.slice(0, eq), entry.slice(eq + 1));
}

/** PATH (docker's default when the image has none) and HOSTNAME, then the image's env, then the spec's (which wins); HOME last if unset. */
export function planEnv(imageEnv: string[], specEnv: string[], hostname: string, home: string): string[] {
  const env = new Map<string, string>([['PATH', DEFAULT_PATH], ['HOSTNAME', hostname]]);
  for (const e of imageEnv) envMapSet(env, e, 'in the image');
  for (const e of specEnv) envMapSet(env, e, 'in the service');
  if (!env.has('HOME')) env.set('HOME', home);
  return [...env].map(([k, v]) => `${k}=${v}`);
}

/** The container's process from the task's spec and its image (passwd/group: the image's files, undefined when missing). */
export function planOciProcess(taskId: string, c: OciContainerInput, image: OciImageConfig, passwd: string | undefined, group: string | undefined): OciProcessPlan {
  const argv = planArgv(c.command, c.args, image);
  const hostname = taskHostname(taskId, c.hostname);
  const userSpec = c.user || image.user || '0';
  const user = resolveUser(userSpec, passwd, group);
  const home = user.home === '/' && user.uid === 0 ? '/root' : user.home;
  const env = planEnv(image.env, c.env, hostname, home);
  const cwd = c.dir || image.workingDir || '/';
  if (!cwd.startsWith('/')) throw invalidArgument(`workdir ${JSON.stringify(cwd)} must be an absolute path`);
  return { argv, env, user: { uid: user.uid, gid: user.gid, additionalGids: user.groups.filter((g) => g !== user.gid) }, cwd, hostname };
}

/** The PATH a bare command name is looked up in. */
export function processPath(plan: OciProcessPlan): string {
  return envValue(plan.env, 'PATH') ?? DEFAULT_PATH;
}

/** Host files the runtime makes for the task and binds into it. */
export interface OciTaskFiles {
  /** A static busybox on the host (bound read-only at HOLD_BUSYBOX). */
  busybox: string;
  /** The task's start fifo on the host (bound at HOLD_FIFO). */
  startFifo: string;
  hostname: string;
  hosts: string;
  resolvConf: string;
}

export interface OciSpecInput {
  process: OciProcessPlan;
  /** argv[0] resolved to a path inside the root filesystem. */
  executable: string;
  /** The container's root: the overlay of the image's rootfs and the task's writable layer. */
  rootfs: string;
  /** Shares the host's network namespace (`--network host`); else the container gets its own. */
  hostNetwork: boolean;
  /** The task's own mounts (volumes, binds, tmpfs), from planMounts. */
  mounts: OciMount[];
  files: OciTaskFiles;
  /** The container's process gets a pty (crun's; see crun-shim.ts). */
  tty?: boolean;
  /** docker's --read-only: the root filesystem read-only (its mounts, tmpfs and /dev as they are). */
  readOnly?: boolean;
  /** docker's --init: this host file (tini's static build) runs as pid 1 at DOCKER_INIT, with the command as its child. */
  init?: string;
}

/** Where --init's init is in the container, as docker's. */
export const DOCKER_INIT = '/sbin/docker-init';

/** Docker's default mounts: proc, dev (tmpfs, with pts, shm, mqueue) and a read-only sys. */
function defaultMounts(): OciMount[] {
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
  ];
}

const bindFile = (source: string, destination: string, ro = false): OciMount => ({
  destination,
  type: 'bind',
  source,
  options: ['rbind', 'rprivate', ro ? 'ro' : 'rw'],
});

/** The OCI runtime-spec config.json (as an object) crun runs the task with. */
export function planOciSpec(input: OciSpecInput): Record<string, unknown> {
  const p = input.process;
  const root = p.user.uid === 0;
  const namespaces = ['pid', 'ipc', 'uts', 'mount', ...(input.hostNetwork ? [] : ['network'])].map((type) => ({ type }));
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: Boolean(input.tty),
      user: { uid: p.user.uid, gid: p.user.gid, ...(p.user.additionalGids.length ? { additionalGids: p.user.additionalGids } : {}) },
      // With --init, docker's `docker-init -- COMMAND...` (tini finds the command on the container's PATH).
      args: [HOLD_BUSYBOX, 'sh', '-c', HOLD_SCRIPT, 'swarmlet-hold', ...(input.init ? [DOCKER_INIT, DOCKER_INIT, '--'] : [input.executable]), ...p.argv],
      env: p.env,
      cwd: p.cwd,
      capabilities: {
        bounding: DEFAULT_CAPABILITIES,
        effective: root ? DEFAULT_CAPABILITIES : [],
        permitted: root ? DEFAULT_CAPABILITIES : [],
        inheritable: [],
        ambient: [],
      },
      noNewPrivileges: true,
      oomScoreAdj: 0,
    },
    root: { path: input.rootfs, readonly: Boolean(input.readOnly) },
    hostname: p.hostname,
    mounts: [
      ...defaultMounts(),
      bindFile(input.files.hostname, '/etc/hostname'),
      bindFile(input.files.hosts, '/etc/hosts'),
      bindFile(input.files.resolvConf, '/etc/resolv.conf'),
      ...input.mounts,
      bindFile(input.files.busybox, HOLD_BUSYBOX, true),
      ...(input.init ? [bindFile(input.init, DOCKER_INIT, true)] : []),
      bindFile(input.files.startFifo, HOLD_FIFO),
    ],
    linux: {
      namespaces,
      maskedPaths: MASKED_PATHS,
      readonlyPaths: READONLY_PATHS,
    },
  };
}

/** /etc/hosts: localhost, then the task's hostname on its addresses (or 127.0.1.1 without one). */
export function renderHosts(hostname: string, addresses: string[]): string {
  const own = addresses.length > 0 ? addresses : ['127.0.1.1'];
  return [
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    ...own.map((a) => `${a}\t${hostname}`),
    '',
  ].join('\n');
}

/** The host's resolv.conf for a task with its own network namespace: nameservers on loopback do not answer there, so they go. */
export function planTaskResolvConf(hostText: string, hostNetwork: boolean): string {
  if (hostNetwork) return hostText;
  const lines = hostText.split('\n').filter((l) => !/^\s*nameserver\s+(127\.|::1\s*$)/.test(l));
  return lines.join('\n');
}

/** An image's StopSignal (SIGQUIT, QUIT, 3) as a signal name, from the platform's table; SIGTERM when absent or unknown. */
export function planStopSignal(text: string | undefined, signals: Record<string, number>): string {
  const t = (text ?? '').trim().toUpperCase();
  if (!t) return 'SIGTERM';
  if (/^\d+$/.test(t)) return Object.keys(signals).find((k) => signals[k] === Number(t)) ?? 'SIGTERM';
  const name = t.startsWith('SIG') ? t : `SIG${t}`;
  return name in signals ? name : 'SIGTERM';
}
