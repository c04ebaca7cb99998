/**
 * Discovery benchmark: the embedded DNS, service VIPs and the routing mesh, on a lab of 3 hosts
 * (h1 manager, h2 and h3 workers; 198.51.100.0/24 underlay) and a client namespace on the underlay
 * that is not a node (198.51.100.200). One overlay `front`; services on it, each task running
 * test/support/whoami-server:
 *
 *   web     3 replicas, not on h3, published 8080 -> 8000 (ingress mode)
 *   solo    1 replica on h2, published 8081 -> 8000 (ingress mode)
 *   client  1 replica on h2, `sleep`: where the in-overlay figures are measured from
 *
 * 1. DNS. dnsperf (`-l DNS_SECONDS -v`, query `web A`) inside the client task's network namespace
 *    against the embedded resolver (127.0.0.11) and, as the reference in the same run and the same
 *    namespace, against dnsmasq on 127.0.0.2 serving the same records (--host-record web,<VIP>,
 *    tasks.web). 2 x --runs of each, alternating. Printed: queries/s (dnsperf's summary), median
 *    and p99 latency (from the -v lines, one per query) and average latency, and the ratios; then
 *    2 x --runs of each at a light load (-Q DNS_LIGHT_QPS), for the latency apart from saturation.
 *
 * 2. HTTP. wrk (`-t1 -c16 -d WRK_SECONDS --latency`) against solo: through the routing mesh from the
 *    client namespace to h2:8081 (the node that runs the task) and h3:8081 (one that does not:
 *    over the ingress overlay), through solo's VIP from the client task, and, as the reference,
 *    straight to the solo task's address on `front` from the client task (same host). Also the mesh
 *    over web's 3 tasks via h3:8080, for information. HTTP_ROUNDS_PER_RUN x --runs rounds, each
 *    measuring every path once, every other round in reverse order. Printed: requests/s and median
 *    latency (medians over the rounds); ratio = the median over the rounds of figure / straight of
 *    the same round (the machine's load moves between rounds; within one it weighs on both).
 *
 * 3. Removal. 2 x REMOVAL_ROUNDS x --runs times a task of web goes (alternating: kill -9 of its
 *    process, then `service scale -d web=2`; web goes back to 3 between rounds): from that moment
 *    (the kill, or the start of the scale command) until the task's process is gone (/proc), its
 *    address is out of `tasks.web` (test/support/dns-watch asking 127.0.0.11 every WATCH_MS ms in the
 *    client task), out of the nft ruleset of the client task's namespace (the VIP backends), and out
 *    of the nft ruleset of every host's ingress sandbox `<prefix>-h<i>-net-ingress` (its ingress
 *    address; the latest host counts). Rulesets are watched with `nft monitor` in each namespace:
 *    each change is stamped when it is announced and the ruleset is listed then, so the figures
 *    are not late by a polling period, and the watches do not load the machine between changes
 *    (listing back to back in 4 namespaces took about one core: it slowed what it measured). The
 *    references are the targets of issue 15 (0.2 s after a kill, 1 s after the CLI's start);
 *    docker answers from gossip with TTL 600 s.
 *
 * Run it through bench/run.sh (`npm run bench:discovery -- --runs 1`).
 *
 *   node dist/bench/discovery.js [--runs N] [--prefix P] [--keep-logs DIR] [--phases dns,http,removal]
 *
 * `--phases` runs only the parts named (default: all three); `--phases removal` alone measures
 * convergence without the load of dnsperf and wrk.
 *
 * The table goes to stdout, then one line `BENCH_JSON {...}`; progress goes to stderr.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { SwarmletError } from '../services/common/errors';
import { byHost, formSwarm, nodes, sw } from '../test/e2e/cluster-helpers';
import { runCommand } from '../test/lab/ip-command';
import { Lab, requireBuiltCli, type LabClient, type LabHost } from '../test/lab/lab';
import { isAlive, sleep } from '../test/lab/process-tree';
import { benchMain, copyLabLogs, firstLine, medianOf, parsePhasedBenchArgs, progress, renderReport, waitUntil, type BenchOptions } from './lab-helpers';

interface TaskJson {
  id: string;
  nodeId?: string;
  desiredState?: string;
  status?: { state?: string; container?: { pid?: number } };
  networks?: { networkName?: string; address?: string }[];
}

interface ServiceJson {
  endpoint?: { virtualIps?: { networkId?: string; addr?: string }[] };
}

export interface DnsperfResult {
  qps: number;
  avgMs: number;
  medianMs: number;
  /** The 99th percentile of the per-query latencies. */
  p99Ms: number;
  sent: number;
  lost: number;
  /** Answers whose rcode was not NOERROR. */
  bad: number;
}

export interface WrkResult {
  rps: number;
  medianMs: number;
  errors: number;
}

interface RemovalSample {
  how: 'kill' | 'scale';
  task: string;
  /** ms from the kill or the start of `service scale -d`. */
  processGone?: number;
  /** scale: how long `service scale -d` took to return. */
  cliMs?: number;
  dns?: number;
  vipNft?: number;
  ingressNft?: number;
}

const HOSTS = 3;
const NET = 'front';
const RUNNING = 'TASK_STATE_RUNNING';
const TARGET = 8000;
const WEB_PORT = 8080;
const SOLO_PORT = 8081;
const DNS_SECONDS = 5;
/** The light load (dnsperf -Q) at which latency is measured apart from saturation. */
const DNS_LIGHT_QPS = 2000;
const WRK_SECONDS = 4;
/** wrk rounds per --runs; each round measures every path once. */
const HTTP_ROUNDS_PER_RUN = 4;
const WRK_CONNECTIONS = 16;
const DNS_ADDR = '127.0.0.11';
const REF_DNS_ADDR = '127.0.0.2';
const REMOVAL_TIMEOUT_MS = 15_000;
/** The targets of issue 15: out of the records and rules within 0.2 s of a kill -9, 1 s of the start of `service scale -d`. */
const REMOVAL_TARGET_MS = { kill: 200, scale: 1000 } as const;
/** Removal rounds of each kind (kill, scale) per --runs. */
const REMOVAL_ROUNDS = 3;
/** dns-watch asks every WATCH_MS ms. */
const WATCH_MS = 10;
/**
 * Lists the ruleset once, then again at each change `nft monitor` announces, each listing followed
 * by `@@ <ms since epoch when the change was announced>`. The monitor is started first (the first
 * listing waits for it): a change between the listing and the monitor's start would be missed.
 */
const NFT_WATCH = 'stdbuf -oL nft monitor ruleset | { sleep 0.5; nft list ruleset; echo "@@ $(date +%s%3N)"; while read -r _; do t=$(date +%s%3N); nft list ruleset; echo "@@ $t"; done; }';
const PS_POLL_MS = 300;

const isRunning = (t: TaskJson) => t.desiredState === RUNNING && t.status?.state === RUNNING;

/** dnsperf's summary (qps, average latency, sent, lost) and, from its -v lines (`> NOERROR web A 0.000217`), the median latency and non-NOERROR answers. */
export function parseDnsperf(summary: string, latenciesS: number[], bad: number): DnsperfResult {
  const num = (re: RegExp) => {
    const m = re.exec(summary);
    if (!m) throw new SwarmletError('Internal', `dnsperf printed no ${re.source}: ${summary.slice(-400)}`);
    return Number(m[1]);
  };
  const sorted = [...latenciesS].sort((a, b) => a - b);
  const median = sorted.length === 0 ? NaN : (sorted[Math.floor(sorted.length / 2)] as number);
  return {
    qps: num(/Queries per second:\s+([\d.]+)/),
    avgMs: num(/Average Latency \(s\):\s+([\d.]+)/) * 1000,
    medianMs: median * 1000,
    p99Ms: percentile(latenciesS, 99) * 1000,
    sent: num(/Queries sent:\s+(\d+)/),
    lost: num(/Queries lost:\s+(\d+)/),
    bad,
  };
}

/** One `-v` line of dnsperf: its rcode and latency in seconds. */
export function parseDnsperfLine(line: string): { rcode: string; latencyS: number } | undefined {
  const f = line.split(' ');
  if (f[0] !== '>' || f.length < 5) return undefined;
  const latencyS = Number(f[f.length - 1]);
  return Number.isFinite(latencyS) ? { rcode: f[1] as string, latencyS } : undefined;
}

/** wrk's Requests/sec, its 50% latency (with --latency) and socket errors plus non-2xx responses. */
export function parseWrk(text: string): WrkResult {
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1]);
  const lat = /^\s*50%\s+([\d.]+)(us|ms|s)\s*$/m.exec(text);
  if (!Number.isFinite(rps) || !lat) throw new SwarmletError('Internal', `cannot read wrk's output: ${text.slice(-400)}`);
  const medianMs = Number(lat[1]) * ({ us: 0.001, ms: 1, s: 1000 } as Record<string, number>)[lat[2] as string]!;
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(text)?.[1] ?? 0);
  const errors = (sock ? sock.slice(1).reduce((s, x) => s + Number(x), 0) : 0) + non2xx;
  return { rps, medianMs, errors };
}

/** True when `ip` appears in `text` as a whole address (10.0.0.5 is not in 10.0.0.50). */
export function hasAddress(text: string, ip: string): boolean {
  return new RegExp(`(?<![\\d.])${ip.replace(/\./g, '\\.')}(?!\\.?\\d)`).test(text);
}

const median = medianOf;

class DiscoveryBench {
  readonly notes: string[] = [];
  readonly h1: LabHost;
  private readonly hostOfNode = new Map<string, LabHost>();
  client!: LabClient;
  whoami = '';
  dnsWatchJs = '';
  frontId = '';
  /** argv prefix into the client task's network namespace. */
  inClient: string[] = [];
  clientTask!: TaskJson;

  constructor(readonly lab: Lab) {
    this.h1 = lab.host(1);
  }

  note(msg: string): void {
    this.notes.push(msg);
    progress(`note: ${msg}`);
  }

  async swarmlet(args: string[]): Promise<string> {
    return sw(this.lab, this.h1, args);
  }

  async tasks(service: string): Promise<TaskJson[]> {
    return JSON.parse(await this.swarmlet(['service', 'ps', service, '--format', 'api'])) as TaskJson[];
  }

  async waitRunning(service: string, n: number): Promise<TaskJson[]> {
    return waitUntil(`${n} running tasks of ${service}`, 60_000, async () => {
      const ts = await this.tasks(service);
      const running = ts.filter(isRunning);
      return running.length === n && ts.filter((t) => t.desiredState === RUNNING).length === n ? running : undefined;
    }, PS_POLL_MS);
  }

  hostOf(t: TaskJson): LabHost {
    const h = this.hostOfNode.get(t.nodeId ?? '');
    if (!h) throw new SwarmletError('Internal', `task ${t.id} is on unknown node ${t.nodeId ?? '(none)'}`);
    return h;
  }

  ipOf(t: TaskJson, net: string): string | undefined {
    return t.networks?.find((n) => n.networkName === net)?.address?.split('/')[0];
  }

  enter(t: TaskJson): string[] {
    const pid = t.status?.container?.pid;
    if (!pid) throw new SwarmletError('Internal', `task ${t.id} has no container pid`);
    return ['nsenter', `--net=/proc/${pid}/ns/net`, '--'];
  }

  async vipOf(service: string): Promise<string> {
    const [s] = JSON.parse(await this.swarmlet(['service', 'inspect', '--format', 'api', service])) as ServiceJson[];
    const vip = s?.endpoint?.virtualIps?.find((v) => v.networkId === this.frontId)?.addr?.split('/')[0];
    if (!vip) throw new SwarmletError('Internal', `service inspect ${service} shows no VIP on ${NET}: ${JSON.stringify(s?.endpoint)}`);
    return vip;
  }

  async setUp(): Promise<void> {
    this.whoami = join(this.lab.repoRoot, 'dist', 'test', 'support', 'whoami-server.js');
    if (!existsSync(this.whoami)) throw new SwarmletError('FailedPrecondition', `${this.whoami} is missing: run 'npm run build' first`);
    this.client = await this.lab.addClient();
    const [h1, h2, h3] = this.lab.hosts as [LabHost, LabHost, LabHost];
    await formSwarm(this.lab, [h1], [h2, h3]);
    const list = await nodes(this.lab, h1);
    for (const h of this.lab.hosts) {
      const n = byHost(list, h);
      if (n) this.hostOfNode.set(n.id, h);
    }
    await this.swarmlet(['network', 'create', '-d', 'overlay', NET]);
    const nets = JSON.parse(await this.swarmlet(['network', 'ls', '--format', 'api'])) as { id: string; spec?: { name?: string } }[];
    this.frontId = nets.find((n) => n.spec?.name === NET)?.id ?? '';
    const serve = ['exec:/', process.execPath, this.whoami, String(TARGET)];
    await this.swarmlet(['service', 'create', '-d', '--name', 'web', '--replicas', '3', '--network', NET, '--constraint', `node.hostname!=${h3.name}`, '-p', `${WEB_PORT}:${TARGET}`, ...serve]);
    await this.swarmlet(['service', 'create', '-d', '--name', 'solo', '--network', NET, '--constraint', `node.hostname==${h2.name}`, '-p', `${SOLO_PORT}:${TARGET}`, ...serve]);
    await this.swarmlet(['service', 'create', '-d', '--name', 'client', '--network', NET, '--constraint', `node.hostname==${h2.name}`, 'exec:/', 'sleep', '100000']);
    await this.waitRunning('web', 3);
    await this.waitRunning('solo', 1);
    [this.clientTask] = (await this.waitRunning('client', 1)) as [TaskJson];
    this.inClient = this.enter(this.clientTask);
  }

  /** Runs argv in the client task's network namespace (on its host). */
  inClientTask(argv: string[], timeoutMs = 30_000) {
    return this.lab.exec(this.hostOf(this.clientTask), [...this.inClient, ...argv], { timeoutMs });
  }

  async digShort(server: string, name: string): Promise<string[]> {
    const r = await this.inClientTask(['dig', '+short', '+time=1', '+tries=1', `@${server}`, name], 5_000);
    if (r.code !== 0) throw new SwarmletError('Unavailable', `dig @${server} ${name} exited ${r.code}: ${firstLine(r.stdout) || firstLine(r.stderr)}`);
    return r.stdout.split('\n').map((l) => l.trim()).filter((l) => /^\d+\.\d+\.\d+\.\d+$/.test(l)).sort();
  }

  // --- 1. DNS ---------------------------------------------------------------------------------

  /** dnsperf at saturation (100 queries outstanding), or at most `maxQps` queries/s. */
  async dnsperf(server: string, queryFile: string, maxQps?: number): Promise<DnsperfResult> {
    const limit = maxQps === undefined ? [] : ['-Q', String(maxQps)];
    const argv = ['ip', 'netns', 'exec', this.hostOf(this.clientTask).netns, ...this.inClient, 'dnsperf', '-s', server, '-d', queryFile, '-l', String(DNS_SECONDS), ...limit, '-v'];
    const child = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    const latencies: number[] = [];
    let bad = 0;
    let summary = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    createInterface({ input: child.stdout }).on('line', (line) => {
      const q = parseDnsperfLine(line);
      if (q) {
        latencies.push(q.latencyS);
        if (q.rcode !== 'NOERROR') bad++;
      } else if (!line.startsWith('> ')) summary += `${line}\n`;
    });
    const code = await new Promise<number>((done) => child.on('close', (c) => done(c ?? 1)));
    if (code !== 0) throw new SwarmletError('Internal', `dnsperf -s ${server} exited ${code}: ${firstLine(stderr)}`);
    return parseDnsperf(summary, latencies, bad);
  }

  async dnsFigures(runs: number): Promise<{ swarmlet: DnsperfResult[]; dnsmasq: DnsperfResult[]; light: { swarmlet: DnsperfResult[]; dnsmasq: DnsperfResult[] }; vip: string }> {
    const vip = await this.vipOf('web');
    const web = (await this.tasks('web')).filter(isRunning).map((t) => this.ipOf(t, NET) as string);
    const queryFile = join(this.lab.baseDir, 'dnsperf-queries.txt');
    writeFileSync(queryFile, 'web A\n');
    const dnsmasq = spawn('ip', [
      'netns', 'exec', this.hostOf(this.clientTask).netns, ...this.inClient, 'dnsmasq', '--keep-in-foreground', '--no-resolv', '--no-hosts', '--user=root', '--pid-file=',
      `--listen-address=${REF_DNS_ADDR}`, '--bind-interfaces', `--host-record=web,${vip}`, ...web.map((ip) => `--host-record=tasks.web,${ip}`), '--address=/#/',
      // A session of its own, as the daemons have: with the kernel's autogroup scheduling, a dnsmasq in
      // this process's session shared dnsperf's CPU group and was scheduled ahead of the daemon (measured).
    ], { stdio: 'ignore', detached: true });
    try {
      const want = [vip].join();
      await waitUntil('both resolvers answering web with the VIP', 20_000, async () => {
        const [a, b] = await Promise.all([this.digShort(DNS_ADDR, 'web'), this.digShort(REF_DNS_ADDR, 'web')]);
        return a.join() === want && b.join() === want ? true : undefined;
      }, 200);
      const out = { swarmlet: [] as DnsperfResult[], dnsmasq: [] as DnsperfResult[], light: { swarmlet: [] as DnsperfResult[], dnsmasq: [] as DnsperfResult[] }, vip };
      for (let i = 1; i <= 2 * runs; i++) {
        const s = await this.dnsperf(DNS_ADDR, queryFile);
        const d = await this.dnsperf(REF_DNS_ADDR, queryFile);
        out.swarmlet.push(s);
        out.dnsmasq.push(d);
        progress(`dnsperf ${i}/${2 * runs}: embedded ${Math.round(s.qps)} q/s (median ${s.medianMs.toFixed(3)} ms, lost ${s.lost}, not NOERROR ${s.bad}), dnsmasq ${Math.round(d.qps)} q/s (median ${d.medianMs.toFixed(3)} ms); load ${loadavg()[0]!.toFixed(2)}`);
        if (s.lost > 0 || s.bad > 0) this.note(`dnsperf run ${i} against the embedded resolver: ${s.lost} of ${s.sent} lost, ${s.bad} answers not NOERROR`);
      }
      for (let i = 1; i <= 2 * runs; i++) {
        const s = await this.dnsperf(DNS_ADDR, queryFile, DNS_LIGHT_QPS);
        const d = await this.dnsperf(REF_DNS_ADDR, queryFile, DNS_LIGHT_QPS);
        out.light.swarmlet.push(s);
        out.light.dnsmasq.push(d);
        progress(`dnsperf -Q ${DNS_LIGHT_QPS} ${i}/${2 * runs}: embedded median ${s.medianMs.toFixed(3)} ms (p99 ${s.p99Ms.toFixed(3)} ms), dnsmasq median ${d.medianMs.toFixed(3)} ms (p99 ${d.p99Ms.toFixed(3)} ms); load ${loadavg()[0]!.toFixed(2)}`);
      }
      return out;
    } finally {
      dnsmasq.kill('SIGTERM');
    }
  }

  // --- 2. HTTP --------------------------------------------------------------------------------

  async wrk(where: 'client' | 'clientTask', url: string): Promise<WrkResult> {
    const argv = ['wrk', '-t1', `-c${WRK_CONNECTIONS}`, `-d${WRK_SECONDS}s`, '--latency', url];
    const r = where === 'client'
      ? await this.lab.exec(this.client, argv, { timeoutMs: (WRK_SECONDS + 30) * 1000 })
      : await this.inClientTask(argv, (WRK_SECONDS + 30) * 1000);
    if (r.code !== 0) throw new SwarmletError('Internal', `wrk ${url} from ${where} exited ${r.code}: ${firstLine(r.stderr) || firstLine(r.stdout)}`);
    const w = parseWrk(r.stdout);
    if (w.errors > 0) this.note(`wrk ${url} from ${where}: ${w.errors} errors`);
    return w;
  }

  async httpFigures(runs: number): Promise<Record<string, WrkResult[]>> {
    const [solo] = await this.waitRunning('solo', 1);
    const soloIp = this.ipOf(solo as TaskJson, NET);
    if (!soloIp) throw new SwarmletError('Internal', `solo has no address on ${NET}`);
    const soloVip = await this.vipOf('solo');
    const [h2, h3] = [this.lab.host(2), this.lab.host(3)];
    const paths: [string, 'client' | 'clientTask', string][] = [
      ['straight', 'clientTask', `http://${soloIp}:${TARGET}/`],
      ['vip', 'clientTask', `http://${soloVip}:${TARGET}/`],
      ['meshLocal', 'client', `http://${h2.addr}:${SOLO_PORT}/`],
      ['meshRemote', 'client', `http://${h3.addr}:${SOLO_PORT}/`],
      ['meshWeb3', 'client', `http://${h3.addr}:${WEB_PORT}/`],
    ];
    for (const [name, where, url] of paths) {
      await waitUntil(`${url} answering (${name})`, 30_000, async () => {
        const argv = ['curl', '-sf', '-m', '2', url];
        const r = where === 'client' ? await this.lab.exec(this.client, argv) : await this.inClientTask(argv);
        return r.code === 0 ? true : undefined;
      }, 300);
    }
    const out: Record<string, WrkResult[]> = Object.fromEntries(paths.map(([n]) => [n, []]));
    const rounds = HTTP_ROUNDS_PER_RUN * runs;
    for (let i = 1; i <= rounds; i++) {
      // Every other round in reverse order, so a drift of the machine's load weighs on every path alike.
      for (const [name, where, url] of i % 2 === 1 ? paths : [...paths].reverse()) {
        const w = await this.wrk(where, url);
        out[name]!.push(w);
        progress(`wrk ${i}/${rounds} ${name} ${url}: ${Math.round(w.rps)} req/s, median ${w.medianMs.toFixed(2)} ms`);
      }
    }
    return out;
  }

  // --- 3. Removal -----------------------------------------------------------------------------

  /** The ingress sandboxes that exist (`<prefix>-h<i>-net-ingress`). */
  async ingressSandboxes(): Promise<string[]> {
    const out: string[] = [];
    for (const h of this.lab.hosts) {
      const ns = `${h.netns}-net-ingress`;
      if ((await runCommand(['ip', 'netns', 'exec', ns, 'true'])).code === 0) out.push(ns);
    }
    return out;
  }

  /** argv that runs `argv` in the client task's network namespace, from this process. */
  get clientEnter(): string[] {
    return ['ip', 'netns', 'exec', this.hostOf(this.clientTask).netns, ...this.inClient];
  }

  async removalRound(how: 'kill' | 'scale', ingressNs: string[]): Promise<RemovalSample> {
    const before = await this.waitRunning('web', 3);
    const frontOf = new Map(before.map((t) => [t.id, this.ipOf(t, NET) as string]));
    const ingressOf = new Map(before.map((t) => [t.id, this.ipOf(t, 'ingress') ?? '']));
    const pidOf = new Map(before.map((t) => [t.id, t.status?.container?.pid ?? 0]));
    const ids = before.map((t) => t.id);
    const dnsWatch = new SnapshotWatch('tasks.web', [...this.clientEnter, process.execPath, this.dnsWatchJs, DNS_ADDR, 'tasks.web', String(WATCH_MS)], 'json');
    const vipWatch = new SnapshotWatch('client VIP rules', [...this.clientEnter, 'sh', '-c', NFT_WATCH], 'blocks');
    const ingressWatches = ingressOf.get(ids[0] as string) ? ingressNs.map((ns) => new SnapshotWatch(`${ns} rules`, ['ip', 'netns', 'exec', ns, 'sh', '-c', NFT_WATCH], 'blocks')) : [];
    const watches = [dnsWatch, vipWatch, ...ingressWatches];
    try {
      // Baseline: each source names all 3 tasks before the round starts (else a 0 ms figure would mean nothing).
      await waitUntil('every watch naming web\'s 3 tasks', 20_000, async () => {
        const ok = (w: SnapshotWatch, ips: string[]) => w.latest !== undefined && ips.every((ip) => hasAddress(w.latest!.text, ip));
        return ok(dnsWatch, [...frontOf.values()]) && ok(vipWatch, [...frontOf.values()]) && ingressWatches.every((w) => ok(w, [...ingressOf.values()])) ? true : undefined;
      }, 50);
      const killed = how === 'kill' ? before[Math.floor(Math.random() * before.length)] : undefined;
      let t0: number;
      let cliMs: number | undefined;
      if (killed) {
        t0 = Date.now();
        process.kill(pidOf.get(killed.id) as number, 'SIGKILL');
      } else {
        // From the start of the command: the records and rules go as soon as the manager decides,
        // which is before the CLI has exited (its start, some 100s of ms, is in the figure: cliMs).
        t0 = Date.now();
        await this.swarmlet(['service', 'scale', '-d', 'web=2']);
        cliMs = Date.now() - t0;
      }
      // A scale-down's victim is known once its process is gone (read from /proc every few ms).
      let goneAt: number | undefined;
      let victim: string | undefined;
      while (Date.now() - t0 < REMOVAL_TIMEOUT_MS && !victim) {
        victim = ids.find((id) => !isAlive(pidOf.get(id) as number));
        if (victim) goneAt = Date.now();
        else await sleep(2);
      }
      victim = killed?.id ?? victim;
      if (!victim) throw new SwarmletError('Unavailable', `no task of web stopped within ${REMOVAL_TIMEOUT_MS} ms of ${how}`);
      const vFront = frontOf.get(victim) as string;
      const vIngress = ingressOf.get(victim) as string;
      const goneFrom = (w: SnapshotWatch, ip: string) => w.firstAfter(t0, (text) => !hasAddress(text, ip));
      await waitUntil(`${victim} gone from every watch`, REMOVAL_TIMEOUT_MS, async () => (goneFrom(dnsWatch, vFront) !== undefined && goneFrom(vipWatch, vFront) !== undefined && ingressWatches.every((w) => goneFrom(w, vIngress) !== undefined) ? true : undefined), 20).catch((err: Error) => this.note(`${how} round: ${err.message}`));
      const ms = (at: number | undefined) => (at === undefined ? undefined : at - t0);
      const ing = ingressWatches.map((w) => ms(goneFrom(w, vIngress)));
      const sample: RemovalSample = {
        how,
        task: victim,
        cliMs,
        processGone: ms(goneAt),
        dns: ms(goneFrom(dnsWatch, vFront)),
        vipNft: ms(goneFrom(vipWatch, vFront)),
        ingressNft: ing.length > 0 && ing.every((x) => x !== undefined) ? Math.max(...(ing as number[])) : undefined,
      };
      const f = (x: number | undefined) => (x === undefined ? 'never' : `${x.toFixed(0)} ms`);
      progress(`${how} ${victim} (${vFront}, ingress ${vIngress || 'none'})${cliMs !== undefined ? `, CLI returned after ${cliMs} ms` : ''}: process gone ${f(sample.processGone)}, out of tasks.web ${f(sample.dns)}, of the client's VIP rules ${f(sample.vipNft)}, of the ingress rules ${f(sample.ingressNft)} (per sandbox: ${ing.map(f).join(', ')})`);
      for (const w of watches) if (w.exit) this.note(`${w.what} watch: ${w.exit}`);
      const unanswered = dnsWatch.errors.filter((e) => e.at >= t0);
      if (sample.dns === undefined || unanswered.length > 0) {
        const after = dnsWatch.snapshots.filter((x) => x.at >= t0).map((x) => `+${x.at - t0} ms [${x.text}]`);
        this.note(`${how} round, ${victim} (${vFront}): tasks.web answers after t0: ${after.join(', ') || 'no change'}; last before: [${dnsWatch.snapshots.filter((x) => x.at < t0).pop()?.text ?? ''}]; unanswered streaks after t0: ${unanswered.map((e) => `+${e.at - t0} ms ${e.error}`).join(', ') || 'none'}`);
      }
      return sample;
    } finally {
      for (const w of watches) w.stop();
      if (how === 'scale') await this.swarmlet(['service', 'scale', '-d', 'web=3']);
    }
  }

  async removalFigures(runs: number): Promise<{ samples: RemovalSample[]; ingressNs: string[] }> {
    this.dnsWatchJs = join(this.lab.repoRoot, 'dist', 'test', 'support', 'dns-watch.js');
    const ingressNs = await this.ingressSandboxes();
    if (ingressNs.length === 0) this.note('no ingress sandbox <prefix>-h<i>-net-ingress found: the ingress rule figure is missing');
    const [t] = (await this.tasks('web')).filter(isRunning);
    if (t && !this.ipOf(t, 'ingress')) this.note(`service ps shows no 'ingress' address for web's tasks: the ingress rule figure is missing`);
    const samples: RemovalSample[] = [];
    for (let i = 0; i < 2 * REMOVAL_ROUNDS * runs; i++) {
      const how = i % 2 === 0 ? 'kill' : 'scale';
      try {
        samples.push(await this.removalRound(how, ingressNs));
      } catch (err) {
        // One round lost (on a loaded machine a stop can take longer than the round's bound) is a note, not the end of the run.
        this.note(`${how} round ${i + 1} lost: ${(err as Error).message}`);
      }
    }
    return { samples, ingressNs };
  }
}

/**
 * A process that prints snapshots of something (a resolver's answer, a namespace's ruleset) until
 * stopped, with the wall time of each: 'json' reads dns-watch lines ({at, addrs | error}); 'blocks'
 * reads text ended by a line `@@ <ms since epoch>` (NFT_WATCH). It runs in a process group of its
 * own, ended as a whole (a monitor left behind would keep its namespace and keep listing).
 */
class SnapshotWatch {
  readonly snapshots: { at: number; text: string }[] = [];
  /** dns-watch: the start of each streak of unanswered queries. */
  readonly errors: { at: number; error: string }[] = [];
  exit = '';
  private readonly child: ChildProcess;
  private stopped = false;

  constructor(readonly what: string, argv: string[], format: 'json' | 'blocks') {
    this.child = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'pipe', 'ignore'], detached: true });
    this.child.on('error', (err) => (this.exit = err.message));
    this.child.on('exit', (code, sig) => {
      if (!this.stopped) this.exit = `exited ${code ?? sig}`;
    });
    let block: string[] = [];
    createInterface({ input: this.child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      if (format === 'json') {
        const j = JSON.parse(line) as { at: number; addrs?: string[]; error?: string };
        if (j.addrs) this.snapshots.push({ at: j.at, text: j.addrs.join(' ') });
        else this.errors.push({ at: j.at, error: j.error ?? 'unknown' });
      } else if (line.startsWith('@@ ')) {
        this.snapshots.push({ at: Number(line.slice(3)), text: block.join('\n') });
        block = [];
      } else block.push(line);
    });
  }

  get latest(): { at: number; text: string } | undefined {
    return this.snapshots[this.snapshots.length - 1];
  }

  /** The wall time of the first snapshot at or after t0 for which `holds` is true. */
  firstAfter(t0: number, holds: (text: string) => boolean): number | undefined {
    return this.snapshots.find((s) => s.at >= t0 && holds(s.text))?.at;
  }

  stop(): void {
    this.stopped = true;
    try {
      if (this.child.pid) process.kill(-this.child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

// --- report -----------------------------------------------------------------------------------

interface Row {
  label: string;
  n: number;
  value: string;
  /** The 99th percentile over the repeats, where a figure has one per repeat. */
  p99?: string;
  reference: string;
  refValue: string;
  ratio: string;
}

function render(rows: Row[], lines: string[], runs: number): string {
  const head = ['figure', 'n', 'median', 'p99', 'reference (same run)', 'ref median', 'ratio'];
  const cells = rows.map((r) => [r.label, String(r.n), r.value, r.p99 ?? '', r.reference, r.refValue, r.ratio]);
  const title = `swarmlet discovery benchmark: ${HOSTS} hosts (h1 manager, h2 and h3 workers), overlay ${NET}, --runs ${runs}; ratio = swarmlet / reference (medians)`;
  return renderReport(title, head, cells, [0, 4], lines);
}

export type Phase = 'dns' | 'http' | 'removal';
const PHASES: readonly Phase[] = ['dns', 'http', 'removal'];

export interface DiscoveryOptions extends BenchOptions {
  readonly phases: ReadonlySet<Phase>;
}

/** The shared flags (parseBenchArgs) and `--phases dns,http,removal` (default: all). */
export function parseArgs(argv: string[]): DiscoveryOptions {
  return parsePhasedBenchArgs(argv, { script: 'discovery.js', runs: 1, prefix: 'swbdis' }, PHASES);
}

/** The nearest-rank percentile `p` (0-100) of xs; NaN for none. */
export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number;
}

const fx = (x: number, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const rt = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? (a / b).toFixed(2) : 'n/a');

/**
 * lab-helpers' withLab, with the daemons at log level info (the lab's default is debug, where each
 * DNS query is a log line: that halves the resolver's rate, measured here: ~32k against ~77k
 * queries/s on a 1-host lab). Destroys the lab in a finally, and on SIGINT or SIGTERM.
 */
async function withInfoLab(opts: BenchOptions, body: (lab: Lab) => Promise<void>): Promise<void> {
  const lab = await Lab.create({
    prefix: opts.prefix,
    hosts: HOSTS,
    daemonCommand: (h) => [process.execPath, requireBuiltCli(), 'daemon', '--data-dir', h.dataDir, '-H', h.socket, '--log-level', 'info'],
  });
  const onSignal = (sig: NodeJS.Signals) => {
    progress(`${sig}: destroying lab ${opts.prefix}`);
    void lab.destroy().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let failed = true;
  try {
    await body(lab);
    failed = false;
  } finally {
    if (failed) for (const h of lab.hosts) process.stderr.write(`--- last lines of ${h.logFile}:\n${lab.logTail(h, 20)}\n`);
    if (opts.keepLogs) copyLabLogs(lab, opts.keepLogs);
    await lab.destroy();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    progress(`lab ${opts.prefix} destroyed`);
  }
}

export async function runDiscoveryBench(opts: DiscoveryOptions): Promise<void> {
  progress(`building lab ${opts.prefix} (${HOSTS} hosts, daemons at log level info), --runs ${opts.runs}`);
  await withInfoLab(opts, async (lab) => {
    const bench = new DiscoveryBench(lab);
    await bench.setUp();
    progress('swarm formed; web (3), solo (1, h2), client (1, h2) running on front');
    const rows: Row[] = [];
    const json: Record<string, unknown> = { runs: opts.runs, hosts: HOSTS, prefix: opts.prefix, cpus: cpus().length };

    const lines: string[] = [];
    if (opts.phases.has('dns')) {
      const dns = await bench.dnsFigures(opts.runs);
      const m = (xs: DnsperfResult[], k: keyof DnsperfResult) => median(xs.map((x) => x[k]));
      const dnsRef = 'dnsmasq --host-record, same netns';
      rows.push(
        { label: 'DNS queries/s (web A)', n: dns.swarmlet.length, value: fx(m(dns.swarmlet, 'qps')), reference: dnsRef, refValue: fx(m(dns.dnsmasq, 'qps')), ratio: rt(m(dns.swarmlet, 'qps'), m(dns.dnsmasq, 'qps')) },
        { label: 'DNS median latency', n: dns.swarmlet.length, value: `${fx(m(dns.swarmlet, 'medianMs'), 3)} ms`, reference: dnsRef, refValue: `${fx(m(dns.dnsmasq, 'medianMs'), 3)} ms`, ratio: rt(m(dns.swarmlet, 'medianMs'), m(dns.dnsmasq, 'medianMs')) },
        { label: 'DNS average latency', n: dns.swarmlet.length, value: `${fx(m(dns.swarmlet, 'avgMs'), 3)} ms`, reference: dnsRef, refValue: `${fx(m(dns.dnsmasq, 'avgMs'), 3)} ms`, ratio: rt(m(dns.swarmlet, 'avgMs'), m(dns.dnsmasq, 'avgMs')) },
        { label: 'DNS p99 latency', n: dns.swarmlet.length, value: `${fx(m(dns.swarmlet, 'p99Ms'), 3)} ms`, reference: dnsRef, refValue: `${fx(m(dns.dnsmasq, 'p99Ms'), 3)} ms`, ratio: rt(m(dns.swarmlet, 'p99Ms'), m(dns.dnsmasq, 'p99Ms')) },
      );
      for (const k of ['medianMs', 'p99Ms'] as const) {
        const [a, b] = [m(dns.light.swarmlet, k), m(dns.light.dnsmasq, k)];
        rows.push({ label: `DNS ${k === 'medianMs' ? 'median' : 'p99'} latency at ${DNS_LIGHT_QPS} q/s`, n: dns.light.swarmlet.length, value: `${fx(a, 3)} ms`, reference: dnsRef, refValue: `${fx(b, 3)} ms`, ratio: rt(a, b) });
      }
      json.dns = { vip: dns.vip, seconds: DNS_SECONDS, swarmlet: dns.swarmlet, reference: { label: dnsRef, kind: 'measured', runs: dns.dnsmasq }, light: { qps: DNS_LIGHT_QPS, ...dns.light }, ratioQps: Number(rt(m(dns.swarmlet, 'qps'), m(dns.dnsmasq, 'qps'))) };
      lines.push(`DNS: dnsperf -l ${DNS_SECONDS} -v (100 queries outstanding; then -Q ${DNS_LIGHT_QPS} for latency at a light load) in the client task's netns; swarmlet at ${DNS_ADDR}, dnsmasq at ${REF_DNS_ADDR}; latencies from the per-query lines`);
    }

    if (opts.phases.has('http')) {
      const http = await bench.httpFigures(opts.runs);
      const hm = (k: string, f: keyof WrkResult) => median(http[k]!.map((x) => x[f]));
      /** The median over the rounds of path k's figure / straight's in the same round. */
      const paired = (k: string, f: keyof WrkResult) => median(http[k]!.map((x, i) => x[f] / http.straight![i]![f]));
      const straight = hm('straight', 'rps');
      const httpRef = 'wrk straight to the task (client task)';
      for (const [k, label] of [['meshLocal', 'mesh req/s, via h2 (runs the task)'], ['meshRemote', 'mesh req/s, via h3 (no task)'], ['vip', 'VIP req/s (client task)'], ['meshWeb3', 'mesh req/s, web (3 tasks) via h3']] as const) {
        rows.push({ label, n: http[k]!.length, value: fx(hm(k, 'rps')), reference: httpRef, refValue: fx(straight), ratio: fx(paired(k, 'rps'), 2) });
      }
      for (const [k, label] of [['meshLocal', 'mesh median latency, via h2'], ['meshRemote', 'mesh median latency, via h3']] as const) {
        rows.push({ label, n: http[k]!.length, value: `${fx(hm(k, 'medianMs'), 2)} ms`, reference: httpRef, refValue: `${fx(hm('straight', 'medianMs'), 2)} ms`, ratio: fx(paired(k, 'medianMs'), 2) });
      }
      const roundRatios = (k: string) => http[k]!.map((x, i) => fx(x.rps / http.straight![i]!.rps, 2)).join(' ');
      json.http = {
        seconds: WRK_SECONDS,
        connections: WRK_CONNECTIONS,
        ...http,
        reference: { label: httpRef, kind: 'measured' },
        ratioMeshLocal: Number(fx(paired('meshLocal', 'rps'), 3)),
        ratioMeshRemote: Number(fx(paired('meshRemote', 'rps'), 3)),
      };
      lines.push(`HTTP req/s ratios round by round (path / straight of the same round): via h2 ${roundRatios('meshLocal')}; via h3 ${roundRatios('meshRemote')}; VIP ${roundRatios('vip')}`);
      lines.push(`HTTP: wrk -t1 -c${WRK_CONNECTIONS} -d${WRK_SECONDS}s --latency against whoami-server (Node, one process per task); mesh from the client namespace ${bench.client.addr}`);
    }

    if (opts.phases.has('removal')) {
      const removal = await bench.removalFigures(opts.runs);
      const remRef = (how: 'kill' | 'scale') => `target (issue 15), ${how === 'kill' ? 'kill -9' : 'scale -d'}`;
      for (const [k, label] of [['processGone', 'task stop -> process gone'], ['cliMs', 'scale -d: the CLI returned'], ['dns', 'task stop -> out of tasks.web'], ['vipNft', 'task stop -> out of VIP rules'], ['ingressNft', 'task stop -> out of ingress rules']] as const) {
        for (const how of ['kill', 'scale'] as const) {
          if (k === 'cliMs' && how === 'kill') continue;
          const xs = removal.samples.filter((s) => s.how === how).map((s) => s[k]).filter((x): x is number => x !== undefined);
          const missed = removal.samples.filter((s) => s.how === how).length - xs.length;
          if (missed > 0) bench.note(`${label} (${how}): ${missed} rounds never saw it within ${REMOVAL_TIMEOUT_MS} ms`);
          if (xs.length === 0) continue;
          const v = median(xs);
          const target = REMOVAL_TARGET_MS[how];
          rows.push({ label: `${label} (${how === 'kill' ? 'kill -9' : 'scale -d'})`, n: xs.length, value: `${fx(v)} ms`, p99: `${fx(percentile(xs, 99))} ms`, reference: remRef(how), refValue: `${target} ms`, ratio: rt(v, target) });
        }
      }
      // Scale-down: how long before (negative: after) the process was gone each source let the task go.
      const lead = (k: 'dns' | 'vipNft' | 'ingressNft') =>
        median(removal.samples.filter((x) => x.how === 'scale' && x[k] !== undefined && x.processGone !== undefined).map((x) => (x.processGone as number) - (x[k] as number)));
      // How far the rules lag the records in the same round (the records are the same-run reference of the rules).
      const lag = (how: 'kill' | 'scale', k: 'vipNft' | 'ingressNft') =>
        median(removal.samples.filter((x) => x.how === how && x[k] !== undefined && x.dns !== undefined).map((x) => (x[k] as number) - (x.dns as number)));
      json.removal = { samples: removal.samples, ingressSandboxes: removal.ingressNs, dnsQueryEveryMs: WATCH_MS, reference: { label: 'targets of issue 15', kind: 'target', ms: REMOVAL_TARGET_MS } };
      lines.push(
        `removal: t0 = the kill, or the start of 'service scale -d web=2'; tasks.web asked every ${WATCH_MS} ms over UDP (test/support/dns-watch) in the client task; rules watched with \`nft monitor\` in the client task and each ingress sandbox (a change counts when announced); scale-down figures include the CLI's own run and the graceful stop`,
        `rules behind tasks.web in the same round (medians): kill -9: VIP ${fx(lag('kill', 'vipNft'))} ms, ingress ${fx(lag('kill', 'ingressNft'))} ms; scale -d: VIP ${fx(lag('scale', 'vipNft'))} ms, ingress ${fx(lag('scale', 'ingressNft'))} ms`,
        `scale -d: the task left tasks.web ${fx(lead('dns'))} ms, the client's VIP rules ${fx(lead('vipNft'))} ms, the ingress rules ${fx(lead('ingressNft'))} ms before its process was gone (medians; negative: after)`,
      );
    }
    json.notes = bench.notes;
    lines.push(`machine: ${cpus().length} cores shared by the 3 daemons (log level info), etcd, the tasks, and the load generators; load average at the end ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    if (bench.notes.length > 0) lines.push('', 'observations:', ...bench.notes.map((x) => `  - ${x}`));
    process.stdout.write(render(rows, lines, opts.runs));
    process.stdout.write(`BENCH_JSON ${JSON.stringify(json)}\n`);
  });
}

if (require.main === module) benchMain('discovery', parseArgs, runDiscoveryBench);
