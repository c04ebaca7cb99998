/**
 * The lab: a cluster of several hosts on one machine, made of network namespaces.
 *
 *   netns <prefix>-ul      bridge br0 (MTU 1500), ports h1..hN (and c1.. for clients)
 *   netns <prefix>-hN      lo, eth0 = 198.51.100.(10+N)/24, the peer of hN in the underlay
 *   netns <prefix>-cN      lo, eth0 = 198.51.100.(199+N)/24, a client that is not a node
 *
 * No namespace has a default route, and nothing is made in the namespace the lab is driven
 * from: whatever runs in the lab can reach the other lab namespaces and nothing else.
 * Everything carries the prefix, so a crashed run is cleaned up with destroyLabsByPrefix.
 * `swarmlet lab` (lab/swarm-lab.ts) and the tests (test/lab/lab.ts) both build on this.
 */
import { labCgroupRoot, removeCgroupTree } from './cgroups';
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { SwarmletError } from '../services/common/errors';
import { LAB_NAME_RE } from './plans';
import { deleteNetns, ip, listNetns, runCommand, type CommandResult, type RunOptions } from './ip-command';
import { groupMembers, isAlive, killEverything, readProcStat, sleep, stillRunning, waitGone, type RecordedPid } from './process-tree';

export type { CommandResult, RunOptions } from './ip-command';

export interface LabOptions {
  /** Starts every name the lab makes: lowercase letter, then letters or digits, at most 12 characters. */
  prefix: string;
  /** Number of cluster hosts, 1 to 100. */
  hosts: number;
  /** Default: the nearest directory above this file that holds a package.json. */
  repoRoot?: string;
  /** Default: /tmp/<prefix>. */
  baseDir?: string;
  /** The daemons' --log-level. Default: debug. */
  logLevel?: string;
  /** The daemon's argv (run inside the host's netns). Default: node <repo>/dist/cli/main.js daemon ... */
  daemonCommand?: (h: LabHost) => string[];
  /** Registries (host[:port]) the daemons may pull from over plain HTTP (SWARMLET_INSECURE_REGISTRIES). */
  insecureRegistries?: string[];
  /** The embedded DNS's upstreams (IP or IP:PORT) for every daemon (SWARMLET_DNS_UPSTREAMS); default: the host's resolv.conf. */
  dnsUpstreams?: string[];
}

export interface LabHost {
  /** 1-based. */
  readonly index: number;
  /** `${prefix}-h${index}`: also the netns name, and the host name the daemon reports. */
  readonly name: string;
  readonly netns: string;
  /** Underlay address, 198.51.100.(10+index). */
  readonly addr: string;
  readonly dataDir: string;
  /** 'unix://' + absolute path under baseDir. */
  readonly socket: string;
  readonly logFile: string;
}

export interface LabClient {
  readonly netns: string;
  readonly addr: string;
}

/** What lab.json in baseDir holds: enough for another process to find and tear down the lab. */
export interface LabState {
  prefix: string;
  baseDir: string;
  repoRoot: string;
  underlayNetns: string;
  hosts: LabHost[];
  clients: LabClient[];
  daemons: { host: string; pid: number; startTime: number }[];
}

interface ResolvedLabOptions {
  readonly prefix: string;
  readonly hosts: number;
  readonly repoRoot: string;
  readonly baseDir: string;
  readonly daemonCommand: ((h: LabHost) => string[]) | undefined;
  readonly insecureRegistries: readonly string[];
  readonly dnsUpstreams: readonly string[];
  readonly logLevel: string;
}

const SUBNET = '198.51.100';
const MAX_HOSTS = 100;
const MAX_CLIENTS = 55;
const READY_TIMEOUT_MS = 20_000;
const READY_POLL_MS = 50;
const TERM_TIMEOUT_MS = 15_000;
const LOG_TAIL_LINES = 30;
const STATE_FILE = 'lab.json';
const PIDS_FILE = 'pids';

/** The nearest directory at or above `from` that holds a package.json (works from test/lab and dist/test/lab). */
export function findRepoRoot(from: string = __dirname): string {
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new SwarmletError('NotFound', `no package.json above ${from}`);
  }
}

/** Path of the built CLI; throws a clear error when `npm run build` has not been run. */
export function requireBuiltCli(repoRoot: string = findRepoRoot()): string {
  const main = join(repoRoot, 'dist', 'cli', 'main.js');
  if (!existsSync(main)) {
    throw new SwarmletError('FailedPrecondition', `swarmlet is not built (${main} is missing): run 'npm run build' first`);
  }
  return main;
}

/** The filesystem path of a host's 'unix://' socket. */
export function socketPath(h: Pick<LabHost, 'socket'>): string {
  return h.socket.replace(/^unix:\/\//, '');
}

/** Reads `${baseDir}/lab.json`; undefined when there is none. */
export function readLabState(baseDir: string): LabState | undefined {
  try {
    return JSON.parse(readFileSync(join(baseDir, STATE_FILE), 'utf8')) as LabState;
  } catch {
    return undefined;
  }
}

function resolveLabOptions(opts: LabOptions): ResolvedLabOptions {
  if (!LAB_NAME_RE.test(opts.prefix)) {
    throw new SwarmletError('InvalidArgument', `lab prefix ${JSON.stringify(opts.prefix)} must match ${LAB_NAME_RE}`);
  }
  if (!Number.isInteger(opts.hosts) || opts.hosts < 1 || opts.hosts > MAX_HOSTS) {
    throw new SwarmletError('InvalidArgument', `lab hosts must be an integer from 1 to ${MAX_HOSTS}, not ${opts.hosts}`);
  }
  const baseDir = resolve(opts.baseDir ?? join('/tmp', opts.prefix));
  if (baseDir === '/') throw new SwarmletError('InvalidArgument', 'lab baseDir must not be /');
  return Object.freeze({
    prefix: opts.prefix,
    hosts: opts.hosts,
    repoRoot: resolve(opts.repoRoot ?? findRepoRoot()),
    baseDir,
    daemonCommand: opts.daemonCommand,
    insecureRegistries: Object.freeze([...(opts.insecureRegistries ?? [])]),
    dnsUpstreams: Object.freeze([...(opts.dnsUpstreams ?? [])]),
    logLevel: opts.logLevel ?? 'debug',
  });
}

function readPidsFile(baseDir: string): RecordedPid[] {
  let text: string;
  try {
    text = readFileSync(join(baseDir, PIDS_FILE), 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .map((line) => line.trim().split(/\s+/).map(Number))
    .filter(([pid, startTime]) => Number.isInteger(pid) && Number.isInteger(startTime))
    .map(([pid, startTime]) => ({ pid: pid as number, startTime: startTime as number }));
}

function tailFile(path: string, lines: number): string {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-lines - 1).join('\n');
  } catch {
    return '(no log)';
  }
}

/** True when a unix socket at `path` accepts a connection within a second. */
export function canConnect(path: string): Promise<boolean> {
  return new Promise((done) => {
    const sock = connect(path);
    const timer = setTimeout(() => finish(false), 1000);
    function finish(ok: boolean): void {
      clearTimeout(timer);
      sock.destroy();
      done(ok);
    }
    sock.once('connect', () => finish(true));
    sock.once('error', () => finish(false));
  });
}

export class Lab {
  readonly prefix: string;
  readonly hosts: LabHost[];
  readonly underlayNetns: string;
  readonly baseDir: string;
  readonly repoRoot: string;
  private readonly opts: ResolvedLabOptions;
  /** Namespaces this object made, in order; only these are ever deleted by destroy(). */
  private readonly made: string[] = [];
  private readonly clientList: LabClient[] = [];
  private readonly daemons = new Map<number, RecordedPid>();
  /** Set when destroy() begins: from then on nothing new is started or recorded. */
  private destroying = false;
  private destroyed = false;

  private constructor(opts: ResolvedLabOptions) {
    this.opts = opts;
    this.prefix = opts.prefix;
    this.baseDir = opts.baseDir;
    this.repoRoot = opts.repoRoot;
    this.underlayNetns = `${opts.prefix}-ul`;
    this.hosts = Array.from({ length: opts.hosts }, (_, k) => {
      const index = k + 1;
      const name = `${opts.prefix}-h${index}`;
      return Object.freeze({
        index,
        name,
        netns: name,
        addr: `${SUBNET}.${10 + index}`,
        dataDir: join(opts.baseDir, `h${index}`),
        socket: `unix://${join(opts.baseDir, `h${index}.sock`)}`,
        logFile: join(opts.baseDir, `h${index}.log`),
      });
    });
  }

  /** Builds the whole lab; on any failure removes what it made, then throws. */
  static async create(options: LabOptions): Promise<Lab> {
    const opts = resolveLabOptions(options);
    const taken = (await listNetns()).filter((n) => n.startsWith(`${opts.prefix}-`));
    if (taken.length > 0) {
      throw new SwarmletError('Conflict', `a lab with prefix ${opts.prefix} exists (${taken.join(', ')}); remove it first (swarmlet lab down --name ${opts.prefix})`);
    }
    await prepareBaseDir(opts.baseDir);
    const lab = new Lab(opts);
    try {
      lab.saveState();
      await lab.build();
      lab.saveState();
      return lab;
    } catch (err) {
      await lab.destroy().catch(() => undefined);
      throw new SwarmletError('Internal', `cannot build lab ${opts.prefix}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** 1-based. */
  host(i: number): LabHost {
    const h = this.hosts[i - 1];
    if (!h) throw new SwarmletError('NotFound', `lab ${this.prefix} has no host ${i} (it has ${this.hosts.length})`);
    return h;
  }

  get clients(): readonly LabClient[] {
    return this.clientList;
  }

  /**
   * Starts the daemon of host `h` inside its netns, detached in its own process group, with
   * stdout and stderr appended to h.logFile, and waits until its unix socket accepts a connection.
   */
  async startDaemon(h: LabHost, extraArgs: string[] = []): Promise<void> {
    this.assertLive();
    const running = this.daemons.get(h.index);
    if (running && this.isSame(running)) {
      throw new SwarmletError('Conflict', `the daemon of ${h.name} is already running (pid ${running.pid})`);
    }
    const argv = [...(this.opts.daemonCommand ?? ((x: LabHost) => this.defaultDaemonCommand(x)))(h), ...extraArgs];
    mkdirSync(h.dataDir, { recursive: true });
    const log = openSync(h.logFile, 'a');
    let child: ChildProcess;
    try {
      // nsenter, not `ip netns exec`: the latter mounts a fresh /sys, which hides the cgroup
      // hierarchies the daemon puts its tasks in.
      writeSync(log, `--- [lab] ${new Date().toISOString()} nsenter --net=/run/netns/${h.netns} ${argv.join(' ')}\n`);
      child = spawn('nsenter', [`--net=/run/netns/${h.netns}`, '--', ...argv], {
        detached: true,
        stdio: ['ignore', log, log],
        env: {
          ...process.env,
          SWARMLET_HOSTNAME: h.name,
          SWARMLET_CGROUP_PARENT: `${labCgroupRoot(this.prefix)}/h${h.index}`,
          // Every host's daemon shares this machine's /run/netns: its sandboxes carry the host's name.
          SWARMLET_NETNS_PREFIX: `${h.netns}-net`,
          ...(this.opts.insecureRegistries.length ? { SWARMLET_INSECURE_REGISTRIES: this.opts.insecureRegistries.join(',') } : {}),
          ...(this.opts.dnsUpstreams.length ? { SWARMLET_DNS_UPSTREAMS: this.opts.dnsUpstreams.join(',') } : {}),
        },
      });
    } finally {
      closeSync(log);
    }
    let exited = false;
    let spawnError: Error | undefined;
    child.once('exit', () => (exited = true));
    child.once('error', (err) => {
      exited = true;
      spawnError = err;
    });
    // The daemon outlives whatever started it (the lab CLI exits right away); its exit is polled, not awaited.
    child.unref();
    const pid = child.pid;
    const startTime = pid ? readProcStat(pid)?.startTime : undefined;
    if (!pid || startTime === undefined) {
      throw new SwarmletError('Internal', `cannot start the daemon of ${h.name}: ${spawnError?.message ?? 'it exited at once'}\n${tailFile(h.logFile, LOG_TAIL_LINES)}`);
    }
    const daemon: RecordedPid = { pid, startTime };
    this.daemons.set(h.index, daemon);
    appendFileSync(join(this.baseDir, PIDS_FILE), `${pid} ${startTime} ${h.name}\n`);
    this.saveState();

    const path = socketPath(h);
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (exited || !this.isSame(daemon)) {
        this.daemons.delete(h.index);
        this.saveState();
        throw new SwarmletError('Unavailable', `the daemon of ${h.name} exited before its socket ${path} was ready; last lines of ${h.logFile}:\n${tailFile(h.logFile, LOG_TAIL_LINES)}`);
      }
      if (await canConnect(path)) return;
      if (Date.now() >= deadline) {
        await this.stopDaemon(h, 'kill');
        throw new SwarmletError('Unavailable', `the daemon of ${h.name} did not open ${path} within ${READY_TIMEOUT_MS / 1000} s; last lines of ${h.logFile}:\n${tailFile(h.logFile, LOG_TAIL_LINES)}`);
      }
      await sleep(READY_POLL_MS);
    }
  }

  /**
   * Stops the daemon of `h` and waits until it has exited. 'term' sends SIGTERM to the daemon alone
   * (what it started may stay, as after a real restart) and fails if it takes over 15 s; 'kill'
   * SIGKILLs its whole process group (an embedded etcd included). No daemon running is fine.
   */
  async stopDaemon(h: LabHost, how: 'term' | 'kill' = 'term'): Promise<void> {
    const d = this.daemons.get(h.index);
    if (!d) return;
    try {
      if (how === 'kill') {
        await killGroup(d);
        return;
      }
      if (!this.isSame(d)) return;
      process.kill(d.pid, 'SIGTERM');
      if ((await waitGone([d.pid], TERM_TIMEOUT_MS)).length > 0) {
        await killGroup(d);
        throw new SwarmletError('Unavailable', `the daemon of ${h.name} did not exit within ${TERM_TIMEOUT_MS / 1000} s of SIGTERM; its process group was killed`);
      }
    } finally {
      this.daemons.delete(h.index);
      this.saveState();
    }
  }

  /** Simulates a host failure: SIGKILLs everything in the host's netns (and what descends from it), then cuts its underlay link. */
  async killHost(h: LabHost): Promise<void> {
    this.assertLive();
    const d = this.daemons.get(h.index);
    const pids = d && this.isSame(d) ? [d.pid, ...groupMembers(d.pid, d.startTime)] : [];
    await killEverything({ netns: [h.netns], pids });
    // The host's tasks die with it: they run in namespaces of their own, under its cgroup.
    await removeCgroupTree(`${labCgroupRoot(this.prefix)}/h${h.index}`);
    // The oci runtime's tasks: beside the exec ones (the daemon's cgroup parent + '-oci').
    await removeCgroupTree(`${labCgroupRoot(this.prefix)}/h${h.index}-oci`);
    this.daemons.delete(h.index);
    this.saveState();
    await this.setHostLink(h, 'down');
  }

  /** Sets the underlay side of a host's link up or down: 'down' cuts the host off the network, processes untouched. */
  async setHostLink(h: LabHost, state: 'up' | 'down'): Promise<void> {
    this.assertLive();
    await ip(['link', 'set', `h${h.index}`, state], this.underlayNetns);
  }

  /** Runs the built CLI against the host's daemon, inside the host's netns. Resolves on any exit code. */
  async cli(h: LabHost, args: string[], opts: RunOptions = {}): Promise<CommandResult> {
    const main = requireBuiltCli(this.repoRoot);
    return runCommand(['ip', 'netns', 'exec', h.netns, process.execPath, main, '-H', h.socket, ...args], {
      env: opts.env,
      timeoutMs: opts.timeoutMs ?? 60_000,
      input: opts.input,
    });
  }

  /** Runs any command inside a lab namespace (a host or a client). Resolves on any exit code. */
  async exec(h: Pick<LabHost, 'netns'>, argv: string[], opts: RunOptions = {}): Promise<CommandResult> {
    return runCommand(['ip', 'netns', 'exec', h.netns, ...argv], { env: opts.env, timeoutMs: opts.timeoutMs ?? 60_000 });
  }

  /**
   * Runs a command inside a task's network and mount namespaces (so it sees the task's
   * /etc/resolv.conf); `pid` is the task's status.container.pid. Resolves on any exit code.
   */
  async execInTask(pid: number, argv: string[], opts: RunOptions = {}): Promise<CommandResult> {
    if (!Number.isInteger(pid) || pid <= 0) throw new SwarmletError('InvalidArgument', `not a task pid: ${pid}`);
    return runCommand(['nsenter', '-t', String(pid), '-n', '-m', '--', ...argv], { env: opts.env, timeoutMs: opts.timeoutMs ?? 60_000 });
  }

  /** One more namespace on the underlay that is not a cluster node: 198.51.100.200, .201, ... */
  async addClient(): Promise<LabClient> {
    const n = this.clientList.filter((c) => /-c\d+$/.test(c.netns)).length + 1;
    if (n > MAX_CLIENTS) throw new SwarmletError('InvalidArgument', `a lab has at most ${MAX_CLIENTS} clients`);
    return this.addPeer(`c${n}`, `${SUBNET}.${199 + n}`);
  }

  /** A namespace `${prefix}-${label}` on the underlay at `addr` that is not a cluster node (a client, the registry). */
  async addPeer(label: string, addr: string): Promise<LabClient> {
    this.assertLive();
    const client: LabClient = Object.freeze({ netns: `${this.prefix}-${label}`, addr });
    await this.attach(client.netns, label, client.addr);
    this.clientList.push(client);
    this.saveState();
    return client;
  }

  /** The last lines of a host's daemon log, for test failure messages. */
  logTail(h: LabHost, lines: number = LOG_TAIL_LINES): string {
    return tailFile(h.logFile, lines);
  }

  /** Idempotent: kills every process in the lab's namespaces, deletes the namespaces, removes baseDir. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroying = true;
    const pids = stillRunning(readPidsFile(this.baseDir));
    for (const d of this.daemons.values()) {
      if (this.isSame(d)) pids.push(d.pid, ...groupMembers(d.pid, d.startTime));
    }
    await killEverything({ netns: this.made, pids });
    await removeCgroupTree(labCgroupRoot(this.prefix));
    this.daemons.clear();
    // The namespaces the lab made, then what its daemons made (overlay sandboxes named for their host).
    const theirs = (await listNetns()).filter((n) => n.startsWith(`${this.prefix}-`) && !this.made.includes(n));
    for (const ns of [...theirs, ...[...this.made].reverse()]) await deleteNetns(ns);
    this.made.length = 0;
    // What the daemons mounted under their data dirs (the tmpfs of tasks' secrets and configs), deepest first.
    for (const m of mountsUnder(this.baseDir)) await runCommand(['umount', '-l', m]);
    if (readLabState(this.baseDir)?.prefix === this.prefix) rmSync(this.baseDir, { recursive: true, force: true });
    this.destroyed = true;
  }

  private async build(): Promise<void> {
    const ul = this.underlayNetns;
    await this.addNetns(ul);
    await ip(['link', 'add', 'br0', 'mtu', '1500', 'type', 'bridge'], ul);
    await ip(['link', 'set', 'br0', 'up'], ul);
    await Promise.all(this.hosts.map((h) => this.attach(h.netns, `h${h.index}`, h.addr)));
    for (const h of this.hosts) mkdirSync(h.dataDir, { recursive: true });
  }

  // `ip netns add` rather than unshare + a bind mount of our own: ip manages the bind mounts
  // under /run/netns, so `ip netns exec/pids/del` and `ip -n` all find the namespace by name.
  private async addNetns(name: string): Promise<void> {
    await ip(['netns', 'add', name]);
    this.made.push(name);
    await ip(['link', 'set', 'lo', 'up'], name);
  }

  /** A new namespace `netns` whose eth0 (addr/24) is a veth to port `port` of the underlay bridge. */
  private async attach(netns: string, port: string, addr: string): Promise<void> {
    await this.addNetns(netns);
    await ip(['link', 'add', port, 'mtu', '1500', 'type', 'veth', 'peer', 'name', 'eth0', 'mtu', '1500', 'netns', netns], this.underlayNetns);
    await ip(['link', 'set', port, 'master', 'br0', 'up'], this.underlayNetns);
    await ip(['addr', 'add', `${addr}/24`, 'dev', 'eth0'], netns);
    await ip(['link', 'set', 'eth0', 'up'], netns);
  }

  private defaultDaemonCommand(h: LabHost): string[] {
    const main = requireBuiltCli(this.repoRoot);
    return [process.execPath, main, 'daemon', '--data-dir', h.dataDir, '-H', h.socket, '--log-level', this.opts.logLevel];
  }

  private isSame(d: RecordedPid): boolean {
    const st = readProcStat(d.pid);
    return st !== undefined && st.startTime === d.startTime && isAlive(d.pid);
  }

  private assertLive(): void {
    if (this.destroying) throw new SwarmletError('FailedPrecondition', `lab ${this.prefix} has been destroyed`);
  }

  private saveState(): void {
    if (this.destroying) return;
    const state: LabState = {
      prefix: this.prefix,
      baseDir: this.baseDir,
      repoRoot: this.repoRoot,
      underlayNetns: this.underlayNetns,
      hosts: this.hosts,
      clients: this.clientList,
      daemons: [...this.daemons.entries()].map(([i, d]) => ({ host: this.host(i).name, pid: d.pid, startTime: d.startTime })),
    };
    writeFileSync(join(this.baseDir, STATE_FILE), `${JSON.stringify(state, null, 2)}\n`);
  }
}

/** SIGKILLs a daemon's process group and waits until every member has exited. */
async function killGroup(d: RecordedPid): Promise<void> {
  const members = groupMembers(d.pid, d.startTime);
  if (members.length === 0) return;
  try {
    process.kill(-d.pid, 'SIGKILL');
  } catch {
    // The group emptied meanwhile.
  }
  const left = await waitGone(members, 10_000);
  if (left.length > 0) throw new SwarmletError('Internal', `processes survived SIGKILL: ${left.join(' ')}`);
}

/** Makes baseDir empty and ours: refuses a non-empty directory that is not a stale lab's. */
async function prepareBaseDir(baseDir: string): Promise<void> {
  if (existsSync(baseDir) && readdirSync(baseDir).length > 0) {
    const old = readLabState(baseDir);
    if (!old) throw new SwarmletError('Conflict', `${baseDir} is not empty and holds no ${STATE_FILE}; refusing to use it as a lab directory`);
    const alive = (await listNetns()).filter((n) => n.startsWith(`${old.prefix}-`));
    if (alive.length > 0) throw new SwarmletError('Conflict', `${baseDir} belongs to lab ${old.prefix}, which still exists (${alive.join(', ')})`);
    const running = stillRunning(readPidsFile(baseDir));
    if (running.length > 0) throw new SwarmletError('Conflict', `${baseDir} belongs to lab ${old.prefix}, whose processes ${running.join(' ')} still run`);
    rmSync(baseDir, { recursive: true, force: true });
  }
  mkdirSync(baseDir, { recursive: true });
}

/**
 * Crash clean-up: kills the processes in every netns named `${prefix}-*` (and what descends from
 * them, and stragglers recorded in <stateRoot>/<lab prefix>/pids), then deletes those namespaces.
 * Returns the names of the namespaces it removed. baseDirs are left alone.
 */
export async function destroyLabsByPrefix(prefix: string, stateRoot = '/tmp'): Promise<string[]> {
  if (prefix.length === 0) throw new SwarmletError('InvalidArgument', 'destroyLabsByPrefix needs a non-empty prefix');
  const names = (await listNetns()).filter((n) => n.startsWith(`${prefix}-`));
  const labPrefixes = new Set([prefix, ...names.map((n) => n.slice(0, n.lastIndexOf('-')))]);
  const recorded = [...labPrefixes].filter((p) => LAB_NAME_RE.test(p)).flatMap((p) => readPidsFile(join(stateRoot, p)));
  await killEverything({ netns: names, pids: stillRunning(recorded) });
  for (const p of labPrefixes) await removeCgroupTree(labCgroupRoot(p));
  for (const name of names) await deleteNetns(name);
  return names;
}

/** The mount points at or below `dir` in this mount namespace, deepest first. */
export function mountsUnder(dir: string): string[] {
  const root = resolve(dir);
  const points = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => !!p && (p === root || p.startsWith(`${root}/`)));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}
