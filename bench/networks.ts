/**
 * Networks benchmark: what an overlay network costs, on a lab of 3 hosts (h1 manager, h2 and h3
 * workers; 198.51.100.0/24 underlay, MTU 1500), with one overlay network `benchnet` and one
 * pinned task of it on each host (services ipa on h2, ipb on h3, anchor on h1: they keep each
 * host's sandbox namespace alive for the whole run).
 *
 * 1. Throughput. iperf3 (4 TCP streams, `-t 10`) from the task on h3 to the task on h2 over the
 *    overlay (server `iperf3 -s -1` in one task's netns, client `iperf3 -c IP -P 4 -t 10 -J` in the
 *    other's, entered with nsenter --net=/proc/<pid>/ns/net on the task's host), and, as the
 *    references in the same run: plain VXLAN made by hand with `ip` between a namespace on h3 and
 *    one on h2 (on each host a VXLAN device, local = its underlay address, on a bridge in a
 *    namespace of its own, and a veth to the endpoint's namespace; the overlay's MTU, kernel
 *    defaults otherwise; NetworksBench.plainVxlanUp), and the same two hosts'
 *    underlay addresses (in the host namespaces). 3 x --runs rounds of overlay, plain VXLAN,
 *    underlay; printed: medians in Gbit/s, overlay / plain VXLAN (the headline: what swarmlet adds
 *    to VXLAN) and overlay / underlay, each the median over the rounds of the ratio within a round
 *    (the machine's load moves between rounds), with the MTUs.
 *
 * 2. Peer propagation. A service `prop` on the same overlay, no placement constraint, scaled
 *    0 -> 10 -> ... -> 50 and back down in steps of 10 (--runs times). For each of the 50 tasks:
 *    from its RUNNING status.timestamp (`service ps --format api`: the agent's clock, which is
 *    this machine's) until its MAC has an FDB entry (`<mac> dev vx-<vni> dst <vtep> self`) in
 *    `bridge fdb show dev vx-<vni>` inside the sandbox netns `<prefix>-h<i>-net-<vni>` of every
 *    OTHER host, polled every FDB_POLL_MS on all three hosts at once; the figure per task is the
 *    latest of its other hosts. swarmlet programs peers once a task is assigned, so this figure is
 *    normally negative (the entries lead RUNNING); the same entries are also timed from the task's
 *    createdAt (store), which gives the positive propagation time. The reverse: from the return of
 *    `service scale -d prop=N-10` until each removed task's entry is gone from every other host,
 *    split at the moment the task's process is gone (/proc, polled every PID_POLL_MS; scaled-down
 *    tasks leave `service ps` once shut down). `bridge monitor fdb` and `ip monitor neigh` run
 *    beside the polls in each sandbox: their event times cross-check the polled figures and give
 *    the neighbour entries' (IP -> MAC) times.
 *    Reference, in the same run: swarmkit/docker document no bound for peer propagation (gossip),
 *    so the reference is the kernel cost floor: one `bridge fdb add ... self permanent` + one
 *    `ip neigh add ... nud permanent` by hand (two commands, spawned one after the other, timed
 *    together) on a VXLAN device in a scratch sandbox made like the agent's (bridge + VXLAN port,
 *    learning off, proxy on); and `bridge fdb del` + `ip neigh del` for the removal.
 *
 * A failed iperf3 run is noted and the others count. When a later phase fails (a CLI call past its
 * 60 s limit, say), the throughput figures are printed all the same, then the failure, and it exits 1.
 *
 * Run it through bench/run.sh (`npm run bench:networks -- --runs 1`): that puts it in throwaway
 * network, mount and pid namespaces.
 *
 *   node dist/bench/networks.js [--runs N] [--prefix P] [--keep-logs DIR] [--phases throughput,propagation]
 *
 * --runs (default 1) multiplies the iperf3 rounds (3 per run) and the 50-task up/down cycles;
 * --phases runs only the parts named (default: both);
 * --prefix (default swbnet) names the lab; --keep-logs copies the daemons' and etcd's logs to DIR
 * before the lab is destroyed. The table goes to stdout, then one line `BENCH_JSON {...}`; progress
 * goes to stderr.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import { SwarmletError } from '../services/common/errors';
import { VNI_MAX } from '../services/common/vxlan';
import { byHost, formSwarm, nodes, sw } from '../test/e2e/cluster-helpers';
import { runCommand, type CommandResult } from '../test/lab/ip-command';
import { type Lab, type LabHost } from '../test/lab/lab';
import { isAlive, sleep } from '../test/lab/process-tree';
import { benchMain, firstLine, medianOf, parsePhasedBenchArgs, progress, ratio, renderReport, summarize, waitUntil, withLab, type BenchOptions, type Summary } from './lab-helpers';

/** A task as `service ps --format api` prints it: only the fields the benchmark reads. */
interface TaskJson {
  id: string;
  nodeId?: string;
  createdAt?: string;
  desiredState?: string;
  status?: { state?: string; timestamp?: string; err?: string; message?: string; container?: { pid?: number } };
  networks?: { networkName?: string; address?: string; mac?: string; vni?: number }[];
}

/** A task of `prop` as the propagation figures need it. */
interface PeerTask {
  id: string;
  host: number;
  mac: string;
  ip: string;
}

/** One change seen in a sandbox: by a poll of the FDB, or by `bridge monitor fdb` / `ip monitor neigh`. */
interface KernelEvent {
  host: number;
  /** MAC for the FDB sources, IP for the neighbour monitor. */
  key: string;
  kind: 'add' | 'del';
  /** Date.now() when seen. */
  at: number;
}

type Source = 'poll' | 'fdbMonitor' | 'neighMonitor';

/** One task's propagation: per other host and source, the wall time (Date.now() ms) the change was seen; undefined where never seen. */
interface PeerSample {
  task: PeerTask;
  /** Wall ms the figure starts from: the task's RUNNING status.timestamp, or the return of `scale -d`. */
  startAt: number;
  seenAt: Record<Source, Record<number, number | undefined>>;
  /** Adds: the task's createdAt in the store. */
  createdAt?: number;
  /** Removals: when the task's process (status.container.pid) was gone, read from /proc every PID_POLL_MS. */
  processGoneAt?: number;
}

interface IperfResult {
  bitsPerSecond: number;
  retransmits: number | undefined;
}

const HOSTS = 3;
const NET = 'benchnet';
const TASK_ARGV = ['sleep', '100000'];
const RUNNING = 'TASK_STATE_RUNNING';
const IPERF_ROUNDS_PER_RUN = 3;
/** What each iperf3 round measures, in this order: the overlay, plain VXLAN by hand, the underlay. */
const PATHS = ['overlay', 'plain', 'underlay'] as const;
type PathName = (typeof PATHS)[number];
/** The plain-VXLAN reference's VNI: in swarmlet's range (from 4096), at its far end, where the allocator does not go in a run. */
const PLAIN_VNI = VNI_MAX;
const IPERF_SECONDS = 10;
/** Parallel TCP streams per iperf3 run: one stream's figure swings with where its flow hashes and its single core. */
const IPERF_STREAMS = 4;
const IPERF_PORT = '5201';
const PEER_TASKS = 50;
const STEP = 10;
const FDB_POLL_MS = 20;
const REFERENCE_REPEATS = 20;
const CLI_TIMEOUT_MS = 60_000;
const PROPAGATION_TIMEOUT_MS = 30_000;
const PS_POLL_MS = 300;
const PID_POLL_MS = 5;

const MAC_RE = /^(?:[0-9a-f]{2}:){5}[0-9a-f]{2}$/;
const isRunning = (t: TaskJson) => t.desiredState === RUNNING && t.status?.state === RUNNING;
const median = (xs: number[]) => summarize(xs).medianMs;
const gbit = (bps: number) => (bps / 1e9).toFixed(2);

/** The MACs that have a unicast `self` entry with a remote `dst` on the VXLAN device (`bridge fdb show dev vx-N`). */
export function parseFdbPeers(text: string): Set<string> {
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    const mac = f[0] ?? '';
    if (MAC_RE.test(mac) && f.includes('dst') && f.includes('self')) out.add(mac);
  }
  return out;
}

/** One line of `bridge monitor fdb` about a peer entry on `dev`: add or del of a MAC. */
export function parseFdbMonitorLine(line: string, dev: string): { kind: 'add' | 'del'; key: string } | undefined {
  const f = line.trim().split(/\s+/);
  const deleted = f[0] === 'Deleted';
  const rest = deleted ? f.slice(1) : f;
  const mac = rest[0] ?? '';
  if (!MAC_RE.test(mac) || rest[1] !== 'dev' || rest[2] !== dev || !rest.includes('dst') || !rest.includes('self')) return undefined;
  return { kind: deleted ? 'del' : 'add', key: mac };
}

/** One line of `ip monitor neigh` on `dev`: an entry with a lladdr that is not FAILED is an add; `Deleted` or FAILED a del. */
export function parseNeighMonitorLine(line: string, dev: string): { kind: 'add' | 'del'; key: string } | undefined {
  const f = line.trim().split(/\s+/);
  const deleted = f[0] === 'Deleted';
  const rest = deleted ? f.slice(1) : f;
  const ip = rest[0] ?? '';
  if (!/^\d+\.\d+\.\d+\.\d+$/.test(ip) || rest[1] !== 'dev' || rest[2] !== dev) return undefined;
  if (deleted || rest.includes('FAILED') || !rest.includes('lladdr')) return { kind: 'del', key: ip };
  return { kind: 'add', key: ip };
}

/**
 * Watches the peer entries of one VXLAN device in every host's sandbox: a poll of
 * `bridge -n <sandbox> fdb show dev vx-<vni>` every FDB_POLL_MS per host (the figure), and
 * `bridge monitor fdb` + `ip monitor neigh` per sandbox (cross-check). Keeps every change with
 * its wall time.
 */
class PeerWatch {
  readonly events: Record<Source, KernelEvent[]> = { poll: [], fdbMonitor: [], neighMonitor: [] };
  /** What the latest poll of each host saw. */
  private readonly current = new Map<number, Set<string>>();
  private readonly monitors: ChildProcess[] = [];
  private readonly loops: Promise<void>[] = [];
  private stopped = false;
  readonly pollMs: number[] = [];
  pollErrors = 0;
  lastPollError = '';
  monitorExits: string[] = [];

  constructor(
    private readonly sandboxes: Map<number, string>,
    private readonly dev: string,
  ) {}

  async start(): Promise<void> {
    for (const [host, ns] of this.sandboxes) {
      this.monitor(host, ['bridge', '-n', ns, 'monitor', 'fdb'], (l) => parseFdbMonitorLine(l, this.dev), this.events.fdbMonitor);
      this.monitor(host, ['ip', '-n', ns, 'monitor', 'neigh'], (l) => parseNeighMonitorLine(l, this.dev), this.events.neighMonitor);
      // The first poll is the baseline: what is there already is no event.
      const first = await this.pollOnce(ns);
      if (!first) throw new SwarmletError('Internal', `cannot read the FDB of ${this.dev} in ${ns}: ${this.lastPollError}`);
      this.current.set(host, first);
      this.loops.push(this.pollLoop(host, ns));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const m of this.monitors) m.kill('SIGTERM');
    await Promise.allSettled(this.loops);
  }

  present(host: number, mac: string): boolean {
    return this.current.get(host)?.has(mac) ?? false;
  }

  /** The first event of `kind` for `key` on `host` at or after `since` (wall ms). */
  firstAfter(source: Source, host: number, key: string, kind: 'add' | 'del', since: number): number | undefined {
    return this.events[source].find((e) => e.host === host && e.key === key && e.kind === kind && e.at >= since)?.at;
  }

  private monitor(host: number, argv: string[], parse: (line: string) => { kind: 'add' | 'del'; key: string } | undefined, into: KernelEvent[]): void {
    const child = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'pipe', 'ignore'] });
    this.monitors.push(child);
    child.on('error', (err) => this.monitorExits.push(`${argv.join(' ')}: ${err.message}`));
    child.on('exit', (code, signal) => {
      if (!this.stopped) this.monitorExits.push(`${argv.join(' ')} exited ${code ?? signal}`);
    });
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const at = Date.now();
      const e = parse(line);
      if (e) into.push({ host, at, ...e });
    });
  }

  private async pollOnce(ns: string): Promise<Set<string> | undefined> {
    const t0 = performance.now();
    const r = await runCommand(['bridge', '-n', ns, 'fdb', 'show', 'dev', this.dev], { timeoutMs: 5_000 });
    this.pollMs.push(performance.now() - t0);
    if (r.code !== 0) {
      this.pollErrors++;
      this.lastPollError = firstLine(r.stderr) || `exit ${r.code}`;
      return undefined;
    }
    return parseFdbPeers(r.stdout);
  }

  private async pollLoop(host: number, ns: string): Promise<void> {
    while (!this.stopped) {
      await sleep(FDB_POLL_MS);
      const seen = await this.pollOnce(ns);
      const at = Date.now();
      if (!seen) continue;
      const before = this.current.get(host) ?? new Set<string>();
      for (const mac of seen) if (!before.has(mac)) this.events.poll.push({ host, key: mac, kind: 'add', at });
      for (const mac of before) if (!seen.has(mac)) this.events.poll.push({ host, key: mac, kind: 'del', at });
      this.current.set(host, seen);
    }
  }
}

class NetworksBench {
  readonly notes: string[] = [];
  private readonly h1: LabHost;
  private readonly hostOfNode = new Map<string, number>();
  vni = 0;

  constructor(readonly lab: Lab) {
    this.h1 = lab.host(1);
  }

  note(msg: string): void {
    this.notes.push(msg);
    progress(`note: ${msg}`);
  }

  get vxlan(): string {
    return `vx-${this.vni}`;
  }

  sandbox(host: number): string {
    return `${this.lab.prefix}-h${host}-net-${this.vni}`;
  }

  async formSwarm(): Promise<void> {
    const [h1, h2, h3] = this.lab.hosts as [LabHost, LabHost, LabHost];
    await formSwarm(this.lab, [h1], [h2, h3]);
    const list = await nodes(this.lab, h1);
    for (const h of this.lab.hosts) {
      const n = byHost(list, h);
      if (n) this.hostOfNode.set(n.id, h.index);
    }
  }

  async swarmlet(args: string[]): Promise<string> {
    const r = await this.lab.cli(this.h1, args, { timeoutMs: CLI_TIMEOUT_MS });
    if (r.code !== 0) throw new SwarmletError('Internal', `swarmlet ${args.join(' ')} exited ${r.code}: ${firstLine(r.stderr)}`);
    return r.stdout;
  }

  async tasks(service: string): Promise<TaskJson[]> {
    return JSON.parse(await sw(this.lab, this.h1, ['service', 'ps', service, '--format', 'api'])) as TaskJson[];
  }

  hostOf(t: TaskJson): number {
    const h = this.hostOfNode.get(t.nodeId ?? '');
    if (h === undefined) throw new SwarmletError('Internal', `task ${t.id} is on unknown node ${t.nodeId ?? '(none)'}`);
    return h;
  }

  peerOf(t: TaskJson): PeerTask {
    const n = t.networks?.find((x) => x.networkName === NET);
    if (!n?.mac || !n.address) throw new SwarmletError('Internal', `task ${t.id} has no address on ${NET}`);
    return { id: t.id, host: this.hostOf(t), mac: n.mac.toLowerCase(), ip: n.address.split('/')[0] as string };
  }

  /** The overlay, and one pinned task of it per host; returns the task on each host. */
  async setUp(): Promise<Map<number, TaskJson>> {
    await this.swarmlet(['network', 'create', '-d', 'overlay', NET]);
    const pinned = new Map<number, TaskJson>();
    for (const [name, host] of [['anchor', 1], ['ipa', 2], ['ipb', 3]] as const) {
      await this.swarmlet(['service', 'create', '--name', name, '--network', NET, '--constraint', `node.hostname==${this.lab.host(host).name}`, 'exec:/', ...TASK_ARGV]);
      const t = await waitUntil(`the task of ${name} running`, 30_000, async () => (await this.tasks(name)).find(isRunning));
      pinned.set(host, t);
    }
    const vni = pinned.get(2)?.networks?.find((n) => n.networkName === NET)?.vni;
    if (!vni) throw new SwarmletError('Internal', `no VNI for ${NET} in service ps`);
    this.vni = vni;
    return pinned;
  }

  // --- throughput -------------------------------------------------------------------------------

  /** argv prefix that enters a task's network namespace (run on its host). */
  inTask(t: TaskJson): string[] {
    const pid = t.status?.container?.pid;
    if (!pid) throw new SwarmletError('Internal', `task ${t.id} has no container pid`);
    return ['nsenter', `--net=/proc/${pid}/ns/net`];
  }

  /** One iperf3 run: server `-s -1` on (serverHost, serverPrefix), client `-c addr -P IPERF_STREAMS -t IPERF_SECONDS -J` on (clientHost, clientPrefix). */
  async iperf(server: { host: LabHost; enter: string[] }, client: { host: LabHost; enter: string[] }, addr: string): Promise<IperfResult> {
    const serverRun = this.lab.exec(server.host, [...server.enter, 'iperf3', '-s', '-1', '-p', IPERF_PORT], { timeoutMs: (IPERF_SECONDS + 30) * 1000 });
    try {
      await waitUntil('the iperf3 server listening', 10_000, async () => {
        const r = await this.lab.exec(server.host, [...server.enter, 'ss', '-Hltn', `sport = :${IPERF_PORT}`]);
        return r.code === 0 && r.stdout.trim() !== '' ? true : undefined;
      }, 50);
      const r = await this.lab.exec(client.host, [...client.enter, 'iperf3', '-c', addr, '-p', IPERF_PORT, '-P', String(IPERF_STREAMS), '-t', String(IPERF_SECONDS), '-J'], { timeoutMs: (IPERF_SECONDS + 20) * 1000 });
      let json: { error?: string; end?: { sum_received?: { bits_per_second?: number }; sum_sent?: { retransmits?: number } } };
      try {
        json = JSON.parse(r.stdout) as typeof json;
      } catch {
        throw new SwarmletError('Internal', `iperf3 -c ${addr} exited ${r.code}: ${firstLine(r.stderr) || firstLine(r.stdout)}`);
      }
      const bps = json.end?.sum_received?.bits_per_second;
      if (json.error || !bps) throw new SwarmletError('Internal', `iperf3 -c ${addr}: ${json.error ?? 'no sum_received in its output'}`);
      return { bitsPerSecond: bps, retransmits: json.end?.sum_sent?.retransmits };
    } finally {
      const s: CommandResult = await serverRun;
      if (s.code !== 0) this.note(`iperf3 server on ${server.host.name} exited ${s.code}: ${firstLine(s.stderr)}`);
    }
  }

  /** MTU of the interface that holds `addr` in the namespace entered by `enter` on `host`, with its name. */
  async mtuOf(host: LabHost, enter: string[], match: { addr?: string; dev?: string }): Promise<{ dev: string; mtu: number }> {
    let dev = match.dev;
    if (!dev) {
      const addrs = await this.lab.exec(host, [...enter, 'ip', '-o', '-4', 'addr', 'show']);
      dev = addrs.stdout.split('\n').find((l) => l.includes(` ${match.addr}/`))?.trim().split(/\s+/)[1];
      if (!dev) throw new SwarmletError('Internal', `no interface with ${match.addr} on ${host.name}: ${addrs.stdout}`);
    }
    const link = await this.lab.exec(host, [...enter, 'ip', '-o', 'link', 'show', 'dev', dev]);
    const mtu = Number(/ mtu (\d+)/.exec(link.stdout)?.[1]);
    if (!mtu) throw new SwarmletError('Internal', `no MTU for ${dev} on ${host.name}: ${firstLine(link.stderr) || link.stdout}`);
    return { dev, mtu };
  }

  /**
   * The throughput phase: IPERF_ROUNDS_PER_RUN x runs rounds of iperf3, each round the overlay
   * (task h3 -> task h2), plain VXLAN by hand (h3 -> h2) and the underlay (host h3 -> host h2),
   * one after the other. A failed run is noted and the others count.
   */
  async throughput(pinned: Map<number, TaskJson>, runs: number): Promise<{ rows: Row[]; lines: string[]; json: Record<string, unknown> }> {
    const [h2, h3] = [this.lab.host(2), this.lab.host(3)];
    const ta = pinned.get(2) as TaskJson;
    const tb = pinned.get(3) as TaskJson;
    const ipA = this.peerOf(ta).ip;
    const overlayMtu = await this.mtuOf(h2, this.inTask(ta), { addr: ipA });
    const underlayMtu = await this.mtuOf(h2, [], { addr: h2.addr });
    const vxlanMtu = await this.mtuOf(h2, ['ip', 'netns', 'exec', this.sandbox(2)], { dev: this.vxlan });
    const plain = await this.plainVxlanUp([h2, h3], overlayMtu.mtu);
    const samples: Record<PathName, IperfResult[]> = { overlay: [], plain: [], underlay: [] };
    const rounds: Partial<Record<PathName, IperfResult>>[] = [];
    try {
      const ends = { a: plain.ends.get(2)!, b: plain.ends.get(3)! };
      const paths: Record<PathName, () => Promise<IperfResult>> = {
        overlay: () => this.iperf({ host: h2, enter: this.inTask(ta) }, { host: h3, enter: this.inTask(tb) }, ipA),
        plain: () => this.iperf({ host: h2, enter: ends.a.enter }, { host: h3, enter: ends.b.enter }, ends.a.addr),
        underlay: () => this.iperf({ host: h2, enter: [] }, { host: h3, enter: [] }, h2.addr),
      };
      for (let i = 1; i <= IPERF_ROUNDS_PER_RUN * runs; i++) {
        const seen: string[] = [];
        const round: Partial<Record<PathName, IperfResult>> = {};
        rounds.push(round);
        for (const name of PATHS) {
          try {
            const r = await paths[name]();
            samples[name].push(r);
            round[name] = r;
            seen.push(`${name} ${gbit(r.bitsPerSecond)}`);
          } catch (err) {
            this.note(`iperf3 round ${i}, ${name}, failed: ${(err as Error).message}`);
          }
        }
        progress(`iperf3 round ${i}: ${seen.join(', ')} Gbit/s`);
      }
    } finally {
      await plain.down();
    }
    for (const name of PATHS) {
      if (samples[name].length === 0) throw new SwarmletError('Internal', `every iperf3 run of the ${name} failed: ${this.notes.join('; ')}`);
    }
    const sum = Object.fromEntries(PATHS.map((n) => [n, summarize(samples[n].map((r) => r.bitsPerSecond / 1e6))])) as Record<PathName, Summary>;
    const gb = (s: Summary) => ({ median: s.medianMs / 1000, min: s.minMs / 1000, max: s.maxMs / 1000 });
    /** a / b round by round (the rounds where both ran), and their median: the machine's load moves between rounds; within one it weighs on all three. */
    const perRound = (a: PathName, b: PathName) => rounds.flatMap((r) => (r[a] && r[b] ? [r[a].bitsPerSecond / r[b].bitsPerSecond] : []));
    const pairedRatio = (a: PathName, b: PathName) => medianOf(perRound(a, b));
    const label = `overlay throughput, task h3 -> task h2 (iperf3 -t ${IPERF_SECONDS}, ${IPERF_STREAMS} streams)`;
    const row = (ref: PathName, refLabel: string): Row => ({
      key: `throughput-${ref}`,
      label,
      unit: 'Gbit/s',
      ...gb(sum.overlay),
      n: sum.overlay.n,
      reference: { label: refLabel, median: sum[ref].medianMs / 1000 },
      ratio: `${pairedRatio('overlay', ref).toFixed(2)} (overlay/${ref === 'plain' ? 'plain VXLAN' : 'underlay'})`,
    });
    const plainLabel = `plain VXLAN by hand, netns h3 -> netns h2 (${plain.ends.get(2)!.addr})`;
    const rows = [row('plain', plainLabel), row('underlay', `underlay, host h3 -> host h2 (${h2.addr})`)];
    const list = (n: PathName) => `${n === 'plain' ? 'plain VXLAN' : n} ${samples[n].map((r) => gbit(r.bitsPerSecond)).join(' / ')} Gbit/s (retransmits ${samples[n].map((r) => r.retransmits ?? '?').join('/')})`;
    const lines = [
      `throughput: ${PATHS.map(list).join('; ')}; each round runs overlay, plain VXLAN, underlay`,
      `ratios round by round: overlay / plain VXLAN ${perRound('overlay', 'plain').map((x) => x.toFixed(2)).join(' ')}; overlay / underlay ${perRound('overlay', 'underlay').map((x) => x.toFixed(2)).join(' ')}; the table's ratios are their medians`,
      `plain VXLAN / underlay ${pairedRatio('plain', 'underlay').toFixed(2)}: what VXLAN itself costs on this machine; overlay / plain VXLAN is swarmlet's own share`,
      `plain VXLAN by hand: on h2 and h3 a VXLAN device vxref (VNI ${PLAIN_VNI}, local = the host's underlay address, port 4789, nolearning, static FDB entries; made in the host's namespace, its socket stays there) on a bridge brref in a namespace of its own (kernel defaults), and a veth to eth0 of the endpoint's namespace; MTU ${overlayMtu.mtu} like the overlay's`,
      `MTU: overlay ${overlayMtu.mtu} (${overlayMtu.dev} in the task on h2; ${this.vxlan} ${vxlanMtu.mtu} in its sandbox); underlay ${underlayMtu.mtu} (${underlayMtu.dev} of h2, on the lab's 1500 bridge)`,
    ];
    const samplesOf = (n: PathName) => samples[n].map((r) => Number(gbit(r.bitsPerSecond)));
    const json = {
      unit: 'Gbit/s',
      mtu: { overlay: overlayMtu.mtu, vxlan: vxlanMtu.mtu, underlay: underlayMtu.mtu },
      overlay: { ...gb(sum.overlay), samples: samplesOf('overlay') },
      reference: { label: 'plain VXLAN by hand between namespaces on the same hosts, same MTU, same run', kind: 'measured', ...gb(sum.plain), samples: samplesOf('plain') },
      ratio: Number(pairedRatio('overlay', 'plain').toFixed(3)),
      underlay: { label: 'underlay host-to-host iperf3, same hosts, same run', kind: 'measured', ...gb(sum.underlay), samples: samplesOf('underlay') },
      ratioUnderlay: Number(pairedRatio('overlay', 'underlay').toFixed(3)),
    };
    return { rows, lines, json };
  }

  // --- the plain-VXLAN reference ---------------------------------------------------------------

  /**
   * Plain VXLAN made by hand with `ip` and `bridge` between two lab hosts, the reference the
   * overlay's throughput is held against in the same run. On each host: a VXLAN device `vxref`
   * (VNI PLAIN_VNI, local = the host's underlay address, UDP 4789, nolearning), made in the host's
   * namespace so that its UDP socket is on the underlay, then moved into a namespace
   * `<lab>-h<i>-vxsb` of its own with a bridge `brref` (the kernel's defaults there, br_netfilter
   * included; none of the host's nft tables); a veth from that bridge to `eth0` of a namespace
   * `<lab>-h<i>-vxref` holding 192.0.2.<i>/24; all with the overlay's MTU. The peer's MAC has a
   * static FDB entry to the other host's VTEP, and broadcasts (ARP) go there by the all-zero
   * entry. Removed by `down()`; the lab removes what is left (its namespaces start with its prefix).
   */
  async plainVxlanUp(hosts: [LabHost, LabHost], mtu: number): Promise<{ ends: Map<number, { host: LabHost; enter: string[]; addr: string }>; down: () => Promise<void> }> {
    const ends = new Map<number, { host: LabHost; enter: string[]; addr: string }>();
    const made: string[] = [];
    const run = async (argv: string[]) => {
      const r = await runCommand(argv, { timeoutMs: 10_000 });
      if (r.code !== 0) throw new SwarmletError('Internal', `${argv.join(' ')}: ${firstLine(r.stderr) || `exit ${r.code}`}`);
    };
    const mac = (h: LabHost) => `02:42:c0:00:02:${h.index.toString(16).padStart(2, '0')}`;
    const down = async () => {
      // The VXLAN device goes with its namespace; the veths with theirs.
      for (const ns of made.reverse()) await runCommand(['ip', 'netns', 'del', ns], { timeoutMs: 10_000 });
      made.length = 0;
    };
    try {
      for (const h of hosts) {
        const other = hosts.find((x) => x !== h) as LabHost;
        const sb = `${this.lab.prefix}-h${h.index}-vxsb`;
        const ep = `${this.lab.prefix}-h${h.index}-vxref`;
        for (const ns of [sb, ep]) {
          await run(['ip', 'netns', 'add', ns]);
          made.push(ns);
          await run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
        }
        await run(['ip', '-n', h.netns, 'link', 'add', 'vxref', 'mtu', String(mtu), 'type', 'vxlan', 'id', String(PLAIN_VNI), 'local', h.addr, 'dstport', '4789', 'nolearning']);
        await run(['ip', '-n', h.netns, 'link', 'set', 'vxref', 'netns', sb]);
        await run(['ip', '-n', sb, 'link', 'add', 'brref', 'mtu', String(mtu), 'type', 'bridge']);
        await run(['ip', '-n', sb, 'link', 'add', 'vref', 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', 'eth0', 'mtu', String(mtu), 'address', mac(h), 'netns', ep]);
        for (const dev of ['vxref', 'vref']) await run(['ip', '-n', sb, 'link', 'set', dev, 'master', 'brref', 'up']);
        await run(['ip', '-n', sb, 'link', 'set', 'brref', 'up']);
        await run(['bridge', '-n', sb, 'fdb', 'append', '00:00:00:00:00:00', 'dev', 'vxref', 'dst', other.addr, 'self', 'permanent']);
        await run(['bridge', '-n', sb, 'fdb', 'add', mac(other), 'dev', 'vxref', 'dst', other.addr, 'self', 'permanent']);
        const addr = `192.0.2.${h.index}`;
        await run(['ip', '-n', ep, 'addr', 'add', `${addr}/24`, 'dev', 'eth0']);
        await run(['ip', '-n', ep, 'link', 'set', 'eth0', 'up']);
        ends.set(h.index, { host: h, enter: ['nsenter', `--net=/run/netns/${ep}`], addr });
      }
    } catch (err) {
      await down();
      throw err;
    }
    return { ends, down };
  }

  // --- propagation ------------------------------------------------------------------------------

  /** Polls `service ps prop` until exactly `n` tasks are running and no other is desired running. */
  async waitRunning(service: string, n: number): Promise<TaskJson[]> {
    return waitUntil(`${n} running tasks of ${service}`, 60_000, async () => {
      const ts = await this.tasks(service);
      const running = ts.filter(isRunning);
      const desired = ts.filter((t) => t.desiredState === RUNNING);
      return running.length === n && desired.length === n ? ts : undefined;
    }, PS_POLL_MS);
  }

  /** Waits until `done()` holds for every task, reading the watch's latest polls. */
  async waitKernel(what: string, peers: PeerTask[], done: (p: PeerTask, host: number) => boolean): Promise<void> {
    const others = (p: PeerTask) => this.lab.hosts.map((h) => h.index).filter((h) => h !== p.host);
    await waitUntil(what, PROPAGATION_TIMEOUT_MS, async () => (peers.every((p) => others(p).every((h) => done(p, h))) ? true : undefined), FDB_POLL_MS);
    // Let the monitors' lines for the same changes arrive.
    await sleep(100);
  }

  sample(watch: PeerWatch, task: PeerTask, startAt: number, since: number, kind: 'add' | 'del'): PeerSample {
    const seenAt: PeerSample['seenAt'] = { poll: {}, fdbMonitor: {}, neighMonitor: {} };
    for (const h of this.lab.hosts) {
      if (h.index === task.host) continue;
      for (const src of ['poll', 'fdbMonitor', 'neighMonitor'] as const) {
        seenAt[src][h.index] = watch.firstAfter(src, h.index, src === 'neighMonitor' ? task.ip : task.mac, kind, since);
      }
    }
    return { task, startAt, seenAt };
  }

  /** One cycle: prop 0 -> 50 -> 0 in steps of STEP. */
  async propagationCycle(watch: PeerWatch, adds: PeerSample[], dels: PeerSample[], cli: { up: number[]; down: number[] }): Promise<void> {
    let known = new Set<string>();
    for (let target = STEP; target <= PEER_TASKS; target += STEP) {
      const since = Date.now();
      const t0 = performance.now();
      await this.swarmlet(['service', 'scale', `prop=${target}`]);
      cli.up.push(performance.now() - t0);
      const ts = (await this.waitRunning('prop', target)).filter(isRunning);
      const fresh = ts.filter((t) => !known.has(t.id));
      const peers = fresh.map((t) => this.peerOf(t));
      await this.waitKernel(`FDB entries of ${peers.length} new tasks on every other host`, peers, (p, h) => watch.present(h, p.mac));
      for (const [i, t] of fresh.entries()) {
        const runningAt = Date.parse(t.status?.timestamp ?? '');
        if (!Number.isFinite(runningAt)) throw new SwarmletError('Internal', `task ${t.id} has no RUNNING timestamp`);
        const s = this.sample(watch, peers[i] as PeerTask, runningAt, since, 'add');
        const createdAt = Date.parse(t.createdAt ?? '');
        if (Number.isFinite(createdAt)) s.createdAt = createdAt;
        adds.push(s);
      }
      known = new Set(ts.map((t) => t.id));
      progress(`prop scaled to ${target}: ${fresh.length} new tasks on hosts ${countBy(peers.map((p) => `h${p.host}`))}, their entries on every other host`);
    }
    for (let target = PEER_TASKS - STEP; target >= 0; target -= STEP) {
      const before = (await this.tasks('prop')).filter(isRunning);
      // Scaled-down tasks leave `service ps` once shut down, so their stop is read from /proc: when each task's process is gone.
      const pids = new Map(before.map((t) => [t.id, t.status?.container?.pid ?? 0]));
      const processGoneAt = new Map<string, number>();
      const pidTimer = setInterval(() => {
        for (const [id, pid] of pids) if (pid > 0 && !processGoneAt.has(id) && !isAlive(pid)) processGoneAt.set(id, Date.now());
      }, PID_POLL_MS);
      try {
        const since = Date.now();
        const t0 = performance.now();
        await this.swarmlet(['service', 'scale', '-d', `prop=${target}`]);
        const cliReturned = Date.now();
        cli.down.push(performance.now() - t0);
        const after = await this.waitRunning('prop', target);
        const stays = new Set(after.filter((t) => t.desiredState === RUNNING).map((t) => t.id));
        const gone = before.filter((t) => !stays.has(t.id));
        const peers = gone.map((t) => this.peerOf(t));
        await this.waitKernel(`FDB entries of ${peers.length} removed tasks gone from every other host`, peers, (p, h) => !watch.present(h, p.mac));
        for (const p of peers) {
          const s = this.sample(watch, p, cliReturned, since, 'del');
          s.processGoneAt = processGoneAt.get(p.id);
          dels.push(s);
        }
        progress(`prop scaled down to ${target}: ${peers.length} removed, their entries gone from every other host`);
      } finally {
        clearInterval(pidTimer);
      }
    }
  }

  // --- reference ----------------------------------------------------------------------------------

  /** By hand in a scratch sandbox like the agent's: fdb add + neigh add, then fdb del + neigh del, REFERENCE_REPEATS times. */
  async reference(): Promise<{ addMs: number[]; delMs: number[] }> {
    const ns = `${this.lab.prefix}-ref`;
    const run = async (argv: string[]) => {
      const r = await runCommand(argv, { timeoutMs: 10_000 });
      if (r.code !== 0) throw new SwarmletError('Internal', `${argv.join(' ')}: ${firstLine(r.stderr) || `exit ${r.code}`}`);
    };
    const addMs: number[] = [];
    const delMs: number[] = [];
    await run(['ip', 'netns', 'add', ns]);
    try {
      const dev = 'vx-ref';
      await run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
      await run(['ip', '-n', ns, 'link', 'add', 'br-ref', 'type', 'bridge']);
      await run(['ip', '-n', ns, 'link', 'add', dev, 'type', 'vxlan', 'id', '4095', 'dstport', '4789', 'local', '127.0.0.1', 'nolearning', 'proxy']);
      await run(['ip', '-n', ns, 'link', 'set', dev, 'master', 'br-ref', 'up']);
      await run(['ip', '-n', ns, 'link', 'set', 'br-ref', 'up']);
      for (let i = 1; i <= REFERENCE_REPEATS; i++) {
        const mac = `02:42:0a:ff:00:${i.toString(16).padStart(2, '0')}`;
        const ip = `10.255.0.${i}`;
        let t0 = performance.now();
        await run(['bridge', '-n', ns, 'fdb', 'add', mac, 'dev', dev, 'dst', '198.51.100.12', 'self', 'permanent']);
        await run(['ip', '-n', ns, 'neigh', 'add', ip, 'lladdr', mac, 'dev', dev, 'nud', 'permanent']);
        addMs.push(performance.now() - t0);
        t0 = performance.now();
        await run(['bridge', '-n', ns, 'fdb', 'del', mac, 'dev', dev, 'self']);
        await run(['ip', '-n', ns, 'neigh', 'del', ip, 'dev', dev]);
        delMs.push(performance.now() - t0);
      }
    } finally {
      await runCommand(['ip', 'netns', 'del', ns], { timeoutMs: 10_000 });
    }
    return { addMs, delMs };
  }
}

function countBy(xs: string[]): string {
  const m = new Map<string, number>();
  for (const x of xs) m.set(x, (m.get(x) ?? 0) + 1);
  return [...m.entries()].sort().map(([k, v]) => `${k} ${v}`).join(', ');
}

/** Per task: ms from `from` (default its startAt) until the latest of its other hosts saw the change, for one source; undefined when some host never saw it. */
function worstOf(s: PeerSample, src: Source, from: number | undefined = s.startAt): number | undefined {
  const vs = Object.values(s.seenAt[src]);
  return from === undefined || vs.some((v) => v === undefined) ? undefined : Math.max(...(vs as number[])) - from;
}

/** Like ratio(), but a figure at or below zero (the entries were there before the start instant) has no ratio. */
function ratioOrLead(x: number, ref: number): string {
  return x <= 0 ? 'n/a (<= 0)' : ratio(x, ref);
}

function defined(xs: (number | undefined)[]): number[] {
  return xs.filter((x): x is number => x !== undefined);
}

interface Row {
  key: string;
  label: string;
  unit: 'Gbit/s' | 'ms';
  /** Gbit/s or ms. */
  median: number;
  min: number;
  max: number;
  n: number;
  reference: { label: string; median: number };
  /** median / reference median, or for throughput overlay / underlay. */
  ratio: string;
}

function render(rows: Row[], lines: string[], runs: number): string {
  const head = ['figure', 'n', 'median', 'min', 'max', 'reference (same run)', 'ref median', 'ratio'];
  const fmt = (r: Row, v: number) => (r.unit === 'Gbit/s' ? `${v.toFixed(2)} Gbit/s` : `${v < 10 ? v.toFixed(1) : Math.round(v)} ms`);
  const cells = rows.map((r) => [r.label, String(r.n), fmt(r, r.median), fmt(r, r.min), fmt(r, r.max), r.reference.label, fmt(r, r.reference.median), r.ratio]);
  const title = `swarmlet networks benchmark: ${HOSTS} hosts (h1 manager, h2 and h3 workers), overlay ${NET}, --runs ${runs}; ratio = swarmlet / reference (medians)`;
  return renderReport(title, head, cells, [0, 5], lines);
}

export type Phase = 'throughput' | 'propagation';
const PHASES: readonly Phase[] = ['throughput', 'propagation'];

export interface NetworksOptions extends BenchOptions {
  readonly phases: ReadonlySet<Phase>;
}

/** The shared flags (parseBenchArgs) and `--phases throughput,propagation` (default: both). */
export function parseArgs(argv: string[]): NetworksOptions {
  return parsePhasedBenchArgs(argv, { script: 'networks.js', runs: 1, prefix: 'swbnet' }, PHASES);
}

export async function runNetworksBench(opts: NetworksOptions): Promise<void> {
  progress(`building lab ${opts.prefix} (${HOSTS} hosts), --runs ${opts.runs}`);
  await withLab(opts, HOSTS, async (lab) => {
    const bench = new NetworksBench(lab);
    await bench.formSwarm();
    progress('swarm formed: h1 manager, h2 and h3 workers');
    const pinned = await bench.setUp();
    progress(`overlay ${NET} (VNI ${bench.vni}) with a pinned task on each host`);
    // 1. Throughput: the overlay against plain VXLAN by hand and the underlay, in turns.
    const tp = opts.phases.has('throughput') ? await bench.throughput(pinned, opts.runs) : undefined;
    const tpRows = tp?.rows ?? [];
    const tpLines = tp?.lines ?? [];
    const tpJson = tp ? { throughput: tp.json } : {};
    const machineLine = () => `machine: ${cpus().length} cores shared by the 3 daemons, etcd, the tasks, the polls and iperf3; load average at the end ${loadavg().map((x) => x.toFixed(2)).join(' ')}`;
    if (!opts.phases.has('propagation')) {
      const lines = [...tpLines, machineLine(), ...(bench.notes.length > 0 ? ['', 'observations:', ...bench.notes.map((x) => `  - ${x}`)] : [])];
      process.stdout.write(render(tpRows, lines, opts.runs));
      process.stdout.write(`BENCH_JSON ${JSON.stringify({ runs: opts.runs, hosts: HOSTS, prefix: opts.prefix, cpus: cpus().length, vni: bench.vni, figures: tpJson, notes: bench.notes })}\n`);
      return;
    }
    /** When a later phase fails, the throughput figures are printed all the same, then the failure. */
    const partial = (phase: string, err: unknown): never => {
      bench.note(`${phase} failed: ${(err as Error).message}; its figures are missing`);
      process.stdout.write(render(tpRows, [...tpLines, '', 'observations:', ...bench.notes.map((x) => `  - ${x}`)], opts.runs));
      process.stdout.write(`BENCH_JSON ${JSON.stringify({ runs: opts.runs, hosts: HOSTS, prefix: opts.prefix, cpus: cpus().length, vni: bench.vni, figures: tpJson, failed: { [phase]: (err as Error).message }, notes: bench.notes })}\n`);
      throw err;
    };

    // 2. Propagation.
    const sandboxes = new Map(lab.hosts.map((h) => [h.index, bench.sandbox(h.index)]));
    const watch = new PeerWatch(sandboxes, bench.vxlan);
    const adds: PeerSample[] = [];
    const dels: PeerSample[] = [];
    const cli = { up: [] as number[], down: [] as number[] };
    try {
      await bench.swarmlet(['service', 'create', '-d', '--name', 'prop', '--replicas', '0', '--network', NET, 'exec:/', ...TASK_ARGV]);
      try {
        await watch.start();
        for (let run = 1; run <= opts.runs; run++) {
          await bench.propagationCycle(watch, adds, dels, cli);
          progress(`propagation cycle ${run}/${opts.runs} done`);
        }
      } finally {
        await watch.stop();
      }
    } catch (err) {
      partial('peer propagation', err);
    }
    if (watch.monitorExits.length > 0) bench.note(`monitors ended early: ${watch.monitorExits.join('; ')}`);
    if (watch.pollErrors > 0) bench.note(`${watch.pollErrors} FDB polls failed; last: ${watch.lastPollError}`);

    const ref = await bench.reference().catch((err) => partial('the by-hand reference', err));
    progress(`reference: fdb add + neigh add by hand, median ${median(ref.addMs)} ms`);

    // Rows.
    const addPoll = defined(adds.map((s) => worstOf(s, 'poll')));
    const addFromCreated = defined(adds.map((s) => worstOf(s, 'poll', s.createdAt)));
    const delPoll = defined(dels.map((s) => worstOf(s, 'poll')));
    if (addPoll.length === 0 || delPoll.length === 0) partial('peer propagation', new SwarmletError('Internal', `the polls saw no FDB entry ${addPoll.length === 0 ? 'appear' : 'go'} on the other hosts`));
    if (addPoll.length < adds.length) bench.note(`${adds.length - addPoll.length} task(s) whose FDB entry the polls never saw appear on some other host`);
    if (delPoll.length < dels.length) bench.note(`${dels.length - delPoll.length} removed task(s) whose FDB entry the polls never saw go on some other host`);
    const early = addPoll.filter((x) => x <= 0).length;
    if (early > 0) {
      bench.note(`${early} of ${addPoll.length} tasks had their FDB entry on every other host before (or when) they reached RUNNING: swarmlet sends peers once a task is allocated and assigned, not once it runs; the RUNNING-based figure is then negative (a lead), and the row from the task's creation gives the positive propagation time`);
    }
    const tenths = (xs: number[]) => summarize(xs.map((x) => x * 10)); // summarize rounds to whole units
    const refAdd = tenths(ref.addMs);
    const refDel = tenths(ref.delMs);
    const refAddMs = refAdd.medianMs / 10;
    const refDelMs = refDel.medianMs / 10;
    const sa = summarize(addPoll);
    const sc = summarize(addFromCreated.length > 0 ? addFromCreated : [0]);
    const sd = summarize(delPoll);
    const refAddLabel = 'by hand: bridge fdb add + ip neigh add';
    const rows: Row[] = [
      ...tpRows,
      {
        key: 'peerAdd',
        label: `peer add: task RUNNING -> FDB entry on every other host (polls every ${FDB_POLL_MS} ms)`,
        unit: 'ms',
        median: sa.medianMs,
        min: sa.minMs,
        max: sa.maxMs,
        n: sa.n,
        reference: { label: refAddLabel, median: refAddMs },
        ratio: ratioOrLead(sa.medianMs, refAddMs),
      },
      {
        key: 'peerAddFromCreated',
        label: 'peer add: task created (store createdAt) -> FDB entry on every other host',
        unit: 'ms',
        median: sc.medianMs,
        min: sc.minMs,
        max: sc.maxMs,
        n: addFromCreated.length,
        reference: { label: refAddLabel, median: refAddMs },
        ratio: ratioOrLead(sc.medianMs, refAddMs),
      },
      {
        key: 'peerRemove',
        label: 'peer removal: `scale -d` returned -> FDB entry gone on every other host',
        unit: 'ms',
        median: sd.medianMs,
        min: sd.minMs,
        max: sd.maxMs,
        n: sd.n,
        reference: { label: 'by hand: bridge fdb del + ip neigh del', median: refDelMs },
        ratio: ratioOrLead(sd.medianMs, refDelMs),
      },
    ];

    const range = (xs: number[]) => {
      if (xs.length === 0) return 'none';
      const s = summarize(xs);
      return `median ${s.medianMs} ms, min ${s.minMs}, max ${s.maxMs} (n ${s.n})`;
    };
    /** Median ms per (task host -> programmed host) pair, from each sample's startAt. */
    const perPair = (samples: PeerSample[]) => {
      const out: string[] = [];
      for (const from of lab.hosts) {
        for (const to of lab.hosts) {
          if (from === to) continue;
          const xs = defined(samples.filter((s) => s.task.host === from.index).map((s) => {
            const at = s.seenAt.poll[to.index];
            return at === undefined ? undefined : at - s.startAt;
          }));
          if (xs.length > 0) out.push(`h${from.index}->h${to.index} ${median(xs)}`);
        }
      }
      return out.join(', ');
    };
    // Removal, split at the task's process exit: scale -d returned -> process gone -> entry gone everywhere.
    const delStop = defined(dels.map((s) => (s.processGoneAt === undefined ? undefined : s.processGoneAt - s.startAt)));
    const delAfterStop = defined(dels.map((s) => worstOf(s, 'fdbMonitor', s.processGoneAt)));
    const pollS = tenths(watch.pollMs);
    const lines: string[] = [
      ...tpLines,
      ...(tpLines.length > 0 ? [''] : []),
      `peer add, max over the task's other hosts: median ${sa.medianMs} ms, max ${sa.maxMs} ms from RUNNING; median ${sc.medianMs} ms, max ${sc.maxMs} ms from creation (max / reference ${ratioOrLead(sc.maxMs, refAddMs)})`,
      `peer add from RUNNING, per host pair (task's host -> host programmed, median ms): ${perPair(adds)}`,
      `peer add from RUNNING, cross-check by \`bridge monitor fdb\` events: ${range(defined(adds.map((s) => worstOf(s, 'fdbMonitor'))))}`,
      `peer add from RUNNING, neighbour entry (IP -> MAC on ${bench.vxlan}) by \`ip monitor neigh\`: ${range(defined(adds.map((s) => worstOf(s, 'neighMonitor'))))}`,
      `peer removal, max over the task's other hosts: median ${sd.medianMs} ms, max ${sd.maxMs} ms (max / reference ${ratioOrLead(sd.maxMs, refDelMs)})`,
      `peer removal, per host pair: ${perPair(dels)}`,
      `peer removal, cross-check by \`bridge monitor fdb\`: ${range(defined(dels.map((s) => worstOf(s, 'fdbMonitor'))))}; neighbour entries by \`ip monitor neigh\`: ${range(defined(dels.map((s) => worstOf(s, 'neighMonitor'))))}`,
      `peer removal, split: \`scale -d\` returned -> the task's process gone (/proc) ${range(delStop)}; process gone -> entry gone on every other host (monitor) ${range(delAfterStop)}`,
      `\`service scale prop=N\` (waits for convergence) CLI wall time ${range(cli.up)}; \`service scale -d\` ${range(cli.down)}`,
      '',
      `reference: swarmkit/docker document no bound for overlay peer propagation (it goes by gossip), so the reference is the kernel cost floor: one \`bridge fdb add <mac> dev vx dst <vtep> self permanent\` + one \`ip neigh add <ip> lladdr <mac> dev vx nud permanent\`, run by hand one after the other (process starts included) in a scratch sandbox made like the agent's (bridge + VXLAN port, nolearning, proxy): median of ${REFERENCE_REPEATS} ${refAddMs.toFixed(1)} ms (min ${(refAdd.minMs / 10).toFixed(1)}, max ${(refAdd.maxMs / 10).toFixed(1)}); the del pair ${refDelMs.toFixed(1)} ms`,
      `timing: RUNNING and createdAt are the task's timestamps in \`service ps --format api\` (set on this machine's clock); FDB presence is read by \`bridge -n <sandbox> fdb show dev ${bench.vxlan}\` every ${FDB_POLL_MS} ms on all 3 hosts at once (${watch.pollMs.length} polls taking ${(pollS.medianMs / 10).toFixed(1)} ms median, max ${(pollS.maxMs / 10).toFixed(1)}): a polled time is late by up to one period plus one poll; the monitor figures carry no poll delay`,
      machineLine(),
    ];
    if (bench.notes.length > 0) lines.push('', 'observations:', ...bench.notes.map((x) => `  - ${x}`));
    process.stdout.write(render(rows, lines, opts.runs));

    const rel = (s: PeerSample) => (src: Source) => Object.fromEntries(Object.entries(s.seenAt[src]).map(([h, at]) => [h, at === undefined ? null : at - s.startAt]));
    const sampleJson = (s: PeerSample) => {
      const r = rel(s);
      return {
        task: s.task.id,
        host: s.task.host,
        poll: r('poll'),
        fdbMonitor: r('fdbMonitor'),
        neighMonitor: r('neighMonitor'),
        ...(s.createdAt !== undefined ? { createdMs: s.createdAt - s.startAt } : {}),
        ...(s.processGoneAt !== undefined ? { processGoneMs: s.processGoneAt - s.startAt } : {}),
      };
    };
    const msFigure = (sum: Summary, refLabel: string, refMs: number) => ({
      unit: 'ms',
      ...sum,
      reference: { label: refLabel, kind: 'measured', medianMs: refMs },
      ratio: sum.medianMs > 0 ? Number((sum.medianMs / refMs).toFixed(1)) : null,
      maxRatio: sum.maxMs > 0 ? Number((sum.maxMs / refMs).toFixed(1)) : null,
    });
    const refAddJson = 'bridge fdb add + ip neigh add by hand in a sandbox (kernel cost floor; swarmkit/docker document no propagation bound)';
    const json = {
      runs: opts.runs,
      hosts: HOSTS,
      prefix: opts.prefix,
      cpus: cpus().length,
      vni: bench.vni,
      figures: {
        ...tpJson,
        peerAdd: msFigure(sa, refAddJson, refAddMs),
        peerAddFromCreated: msFigure(sc, refAddJson, refAddMs),
        peerRemove: msFigure(sd, 'bridge fdb del + ip neigh del by hand in a sandbox', refDelMs),
        peerRemoveSplit: { processGone: delStop.length > 0 ? summarize(delStop) : null, processGoneToEntryGone: delAfterStop.length > 0 ? summarize(delAfterStop) : null },
      },
      pollMs: { period: FDB_POLL_MS, count: watch.pollMs.length, median: pollS.medianMs / 10, max: pollS.maxMs / 10 },
      samples: { add: adds.map(sampleJson), remove: dels.map(sampleJson) },
      notes: bench.notes,
    };
    process.stdout.write(`BENCH_JSON ${JSON.stringify(json)}\n`);
  });
}

if (require.main === module) benchMain('networks', parseArgs, runNetworksBench);
