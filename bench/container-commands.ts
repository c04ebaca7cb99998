/**
 * Container commands benchmark: what a student's `run -d`, `exec` and container-to-container
 * traffic cost through swarmlet's real path (the built CLI -> the node daemon's unix socket ->
 * runtime -> kernel), each beside a reference measured in the same run. A lab of 2 hosts
 * (198.51.100.0/24 underlay); the busybox test image in a docker-registry in a lab client
 * namespace (as the e2e tests have it), pulled once before anything is timed (warm image).
 *
 * 1. `run -d IMAGE sh -c 'echo ready; exec sleep 100000'` on h1, on the default bridge and with
 *    `--network none`: until the CLI returns (docker's "running": run -d returns once the
 *    container is started), and until "ready" is in the container's output.log. Reference: plain
 *    `crun run` on a bundle of the same unpacked rootfs (crun-reference.ts), until "ready".
 *    Each container is removed with `rm -f` afterwards (untimed).
 * 2. `exec NAME true` into a running container, spawn to exit. Reference: `nsenter -t PID -a true`
 *    (the same namespaces, no daemon). Both go through the same `ip netns exec` into h1; the
 *    CLI's own start (`swarmlet --version`) is timed too, as it is most of the difference.
 * 3. Latency between two containers, on a user bridge (both on h1) and on an `--attachable`
 *    overlay (one on h1, one on h2, in a swarm of the two): ICMP round trips (busybox ping -A,
 *    back to back) and TCP request/response round trips (sockperf ping-pong --tcp --full-rtt, 64
 *    byte messages), the tools run from the host in the containers' network namespaces (nsenter
 *    --net). Reference: a veth pair between two namespaces this benchmark makes (192.0.2.1 and
 *    .2, documentation addresses). No plain-VXLAN pair is measured: the overlay's ratio is to the
 *    veth pair, so it holds the bridge, the VXLAN encapsulation and the underlay together.
 *
 * Printed: median and p99 (for start and exec timings, of --runs samples: max instead), the
 * reference's, and their ratio, with the load average before and after. Run it through
 * bench/run.sh (`npm run bench:container-commands -- --runs 3`): throwaway network, mount and pid
 * namespaces.
 *
 *   node dist/bench/container-commands.js [--runs N] [--prefix P] [--keep-logs DIR]
 */
import { ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { detectCgroups } from '../agent/runtime/cgroups';
import { SwarmletError } from '../services/common/errors';
import { busyboxRegistry, joinCommand, nodes, sw } from '../test/e2e/cluster-helpers';
import { runCommand } from '../test/lab/ip-command';
import type { Lab, LabHost } from '../test/lab/lab';
import type { TestRegistry } from '../test/support/registry';
import { uniqueSuffix } from '../test/support/unique';
import { COMMAND, readOr, timeCrunRun, until, writeReferenceBundle } from './crun-reference';
import { benchMain, firstLine, parseBenchArgs, progress, ratio, renderReport, waitUntil, withLab } from './lab-helpers';

const REGISTRY = '198.51.100.200:5000';
const PINGS = 200;
const RR_SECONDS = 2;
const RR_PORT = '11111';

interface Figure {
  median: number;
  tail: number;
}

interface Inspect {
  Id: string;
  State: { Pid: number };
  NetworkSettings: { Networks: Record<string, { IPAddress: string }> };
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
/** Median and p99 (of few samples: the max) of `xs`. */
function figure(xs: number[]): Figure {
  if (!xs.length) throw new SwarmletError('Internal', 'no samples');
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return { median: s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2, tail: pct(s, 99) };
}

const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** Runs a command that must succeed; its stdout. */
async function must(argv: string[], timeoutMs = 60_000): Promise<string> {
  const r = await runCommand(argv, { timeoutMs });
  if (r.code !== 0) throw new SwarmletError('Internal', `${argv.join(' ')} exited ${r.code}: ${firstLine(r.stderr) || firstLine(r.stdout)}`);
  return r.stdout;
}

/** The RTTs (µs) busybox ping printed, one per reply. */
export function parsePingRtts(out: string): number[] {
  return [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]) * 1000);
}

/** sockperf's p50 and p99 (µs) of a ping-pong run. */
export function parseSockperf(out: string): Figure {
  const p = (q: string) => {
    const m = new RegExp(`percentile ${q} =\\s*([\\d.]+)`).exec(out);
    if (!m) throw new SwarmletError('Internal', `no percentile ${q} in sockperf's output: ${firstLine(out)}`);
    return Number(m[1]);
  };
  return { median: p('50.000'), tail: p('99.000') };
}

/** How to run a command in one end's network namespace, and the address it is reached at. */
interface End {
  enter: string[];
  addr: string;
}

const inPid = (pid: number, addr: string): End => ({ enter: ['nsenter', `--net=/proc/${pid}/ns/net`, '--'], addr });

/** One latency measurement from `a` to `b`: ping RTTs (all replies) and sockperf's TCP round trip p50/p99. */
async function latency(a: End, b: End): Promise<{ ping: number[]; rr: Figure }> {
  const ping = parsePingRtts(await must([...a.enter, 'busybox', 'ping', '-A', '-c', String(PINGS), b.addr], 60_000));
  if (ping.length < PINGS / 2) throw new SwarmletError('Internal', `ping ${b.addr}: ${ping.length} of ${PINGS} replies`);
  const server: ChildProcess = spawn(b.enter[0] as string, [...b.enter.slice(1), 'sockperf', 'server', '--tcp', '-i', b.addr, '-p', RR_PORT], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => server.once('close', () => resolve()));
  try {
    await waitUntil('the sockperf server listening', 10_000, async () => ((await runCommand([...b.enter, 'ss', '-Hltn', `sport = :${RR_PORT}`])).stdout.trim() ? true : undefined), 50);
    const rr = parseSockperf(await must([...a.enter, 'sockperf', 'ping-pong', '--tcp', '-i', b.addr, '-p', RR_PORT, '-t', String(RR_SECONDS), '--full-rtt', '-m', '64'], 60_000));
    return { ping, rr };
  } finally {
    server.kill('SIGKILL');
    await exited;
  }
}

/** Two namespaces joined by a veth pair (192.0.2.1 - 192.0.2.2): the latency reference. Removed by the returned function. */
async function vethPair(prefix: string): Promise<{ a: End; b: End; remove: () => Promise<void> }> {
  const [na, nb] = [`${prefix}-ra`, `${prefix}-rb`];
  const remove = async () => {
    for (const ns of [na, nb]) await runCommand(['ip', 'netns', 'del', ns]);
  };
  try {
    await must(['ip', 'netns', 'add', na]);
    await must(['ip', 'netns', 'add', nb]);
    await must(['ip', 'link', 'add', `${prefix}va`, 'netns', na, 'type', 'veth', 'peer', 'name', `${prefix}vb`, 'netns', nb]);
    for (const [ns, dev, addr] of [[na, `${prefix}va`, '192.0.2.1/24'], [nb, `${prefix}vb`, '192.0.2.2/24']] as const) {
      await must(['ip', '-n', ns, 'addr', 'add', addr, 'dev', dev]);
      await must(['ip', '-n', ns, 'link', 'set', dev, 'up']);
      await must(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    }
  } catch (err) {
    await remove();
    throw err;
  }
  return { a: { enter: ['ip', 'netns', 'exec', na], addr: '192.0.2.1' }, b: { enter: ['ip', 'netns', 'exec', nb], addr: '192.0.2.2' }, remove };
}

class ContainerCommandsBench {
  readonly rows: string[][] = [];
  readonly json: Record<string, unknown> = {};
  private image = '';
  private registry: TestRegistry | undefined;

  constructor(
    private readonly lab: Lab,
    private readonly runs: number,
  ) {}

  private get h1(): LabHost {
    return this.lab.host(1);
  }

  private async inspect(h: LabHost, ref: string): Promise<Inspect> {
    return (JSON.parse(await sw(this.lab, h, ['inspect', ref])) as Inspect[])[0] as Inspect;
  }

  private row(what: string, unit: 'ms' | 'µs', f: Figure, refWhat: string, ref: Figure): void {
    const n = (x: number) => (unit === 'ms' ? x.toFixed(0) : x.toFixed(1));
    this.rows.push([what, `${n(f.median)} ${unit}`, `${n(f.tail)} ${unit}`, refWhat, `${n(ref.median)} ${unit}`, `${n(ref.tail)} ${unit}`, ratio(f.median, ref.median), ratio(f.tail, ref.tail)]);
  }

  async setUp(): Promise<void> {
    progress('building and pushing the busybox image');
    ({ image: this.image, registry: this.registry } = await busyboxRegistry(this.lab, REGISTRY));
    await this.lab.startDaemon(this.h1);
    progress('pulling it on h1 (a first run -d, not timed)');
    await sw(this.lab, this.h1, ['run', '-d', '--name', 'warmup', this.image, ...COMMAND]);
    await sw(this.lab, this.h1, ['rm', '-f', 'warmup']);
  }

  async tearDown(): Promise<void> {
    await this.registry?.stop();
  }

  /** 1. run -d until it returns and until "ready", against crun run. */
  async runDetached(): Promise<void> {
    const imagesDir = join(this.h1.dataDir, 'images', 'images');
    const [hex] = readdirSync(imagesDir);
    if (!hex) throw new SwarmletError('Internal', `no image unpacked under ${imagesDir}`);
    const base = join(this.lab.baseDir, 'crun-ref');
    const bundle = join(base, 'bundle');
    const crunRoot = join(base, 'root');
    mkdirSync(crunRoot, { recursive: true });
    writeReferenceBundle(bundle, join(imagesDir, hex, 'rootfs'));
    const layout = await detectCgroups();
    const unified = layout.version === 1 ? layout.mounts.unified : undefined;
    await timeCrunRun(bundle, crunRoot, unified, 0); // crun's first-use costs out of the figures
    const ref: number[] = [];
    const returned: Record<string, number[]> = { bridge: [], none: [] };
    const ready: Record<string, number[]> = { bridge: [], none: [] };
    for (let i = 1; i <= this.runs; i++) {
      ref.push(await timeCrunRun(bundle, crunRoot, unified, i));
      for (const net of ['bridge', 'none'] as const) {
        const t0 = performance.now();
        const r = await this.lab.cli(this.h1, ['run', '-d', '--network', net, this.image, ...COMMAND]);
        const back = performance.now() - t0;
        if (r.code !== 0) throw new SwarmletError('Internal', `run -d exited ${r.code}: ${firstLine(r.stderr)}`);
        const id = r.stdout.trim();
        const log = join(this.h1.dataDir, 'local-containers', 'oci', id, 'output.log');
        await until(`"ready" in ${log}`, () => readOr(log).includes('ready'));
        ready[net]!.push(performance.now() - t0);
        returned[net]!.push(back);
        await sw(this.lab, this.h1, ['rm', '-f', id]);
      }
      progress(`run -d ${i}/${this.runs}: crun run ${ref.at(-1)!.toFixed(0)} ms, bridge ${returned.bridge!.at(-1)!.toFixed(0)}/${ready.bridge!.at(-1)!.toFixed(0)} ms, none ${returned.none!.at(-1)!.toFixed(0)}/${ready.none!.at(-1)!.toFixed(0)} ms`);
    }
    const r = figure(ref);
    this.row('run -d, bridge: CLI returns', 'ms', figure(returned.bridge!), 'crun run, "ready"', r);
    this.row('run -d, bridge: "ready"', 'ms', figure(ready.bridge!), 'crun run, "ready"', r);
    this.row('run -d, none: CLI returns', 'ms', figure(returned.none!), 'crun run, "ready"', r);
    this.row('run -d, none: "ready"', 'ms', figure(ready.none!), 'crun run, "ready"', r);
    this.json.run = { crunRun: ref, bridgeReturned: returned.bridge, bridgeReady: ready.bridge, noneReturned: returned.none, noneReady: ready.none };
  }

  /** 2. exec NAME true against nsenter -a true; the CLI's start alone. */
  async exec(): Promise<void> {
    await sw(this.lab, this.h1, ['run', '-d', '--name', 'execme', this.image, ...COMMAND]);
    const { State } = await this.inspect(this.h1, 'execme');
    const execMs: number[] = [];
    const nsenterMs: number[] = [];
    const versionMs: number[] = [];
    const ok = async (p: Promise<{ code: number; stderr: string }>, what: string) => {
      const r = await p;
      if (r.code !== 0) throw new SwarmletError('Internal', `${what} exited ${r.code}: ${firstLine(r.stderr)}`);
    };
    for (let i = 0; i < this.runs * 2; i++) {
      nsenterMs.push(await timed(() => ok(this.lab.exec(this.h1, ['nsenter', '-t', String(State.Pid), '-a', '--', 'true']), 'nsenter -a true')));
      execMs.push(await timed(() => ok(this.lab.cli(this.h1, ['exec', 'execme', 'true']), 'exec execme true')));
      versionMs.push(await timed(() => ok(this.lab.cli(this.h1, ['--version']), 'swarmlet --version')));
    }
    await sw(this.lab, this.h1, ['rm', '-f', 'execme']);
    const ref = figure(nsenterMs);
    this.row('exec NAME true', 'ms', figure(execMs), 'nsenter -a true', ref);
    this.row('  of it: swarmlet --version', 'ms', figure(versionMs), 'nsenter -a true', ref);
    this.json.exec = { exec: execMs, nsenter: nsenterMs, version: versionMs };
  }

  /** `runs` latency measurements of each pair, alternating pair by pair, into `pings` and `rr`. */
  private async measure(pairs: [string, { a: End; b: End }][], pings: Record<string, number[]>, rr: Record<string, Figure[]>): Promise<void> {
    for (let i = 1; i <= this.runs; i++) {
      for (const [k, pair] of pairs) {
        const m = await latency(pair.a, pair.b);
        (pings[k] ??= []).push(...m.ping);
        (rr[k] ??= []).push(m.rr);
      }
      progress(`latency ${i}/${this.runs}: TCP_RR p50 ${pairs.map(([k]) => `${k} ${rr[k]!.at(-1)!.median} µs`).join(', ')}`);
    }
  }

  private async end(h: LabHost, name: string, net: string): Promise<End> {
    const c = await this.inspect(h, name);
    const addr = c.NetworkSettings.Networks[net]?.IPAddress;
    if (!addr) throw new SwarmletError('Internal', `${name} has no address on ${net}: ${JSON.stringify(c.NetworkSettings.Networks)}`);
    return inPid(c.State.Pid, addr);
  }

  /**
   * 3. Latency on a user bridge (on h1 alone, before the swarm), then on an attachable overlay
   * (h1 and h2 in a swarm), each alternating run by run with the veth pair.
   */
  async latencies(prefix: string): Promise<void> {
    const lab = this.lab;
    const h2 = lab.host(2);
    const pings: Record<string, number[]> = {};
    const rr: Record<string, Figure[]> = {};
    const veth = await vethPair(prefix);
    try {
      await sw(lab, this.h1, ['network', 'create', '-d', 'bridge', 'benchbr']);
      for (const n of ['b1', 'b2']) await sw(lab, this.h1, ['run', '-d', '--name', n, '--network', 'benchbr', this.image, 'sleep', '100000']);
      const bridge = { a: await this.end(this.h1, 'b1', 'benchbr'), b: await this.end(this.h1, 'b2', 'benchbr') };
      await this.measure([['veth', veth], ['bridge', bridge]], pings, rr);
      await sw(lab, this.h1, ['rm', '-f', 'b1', 'b2']);

      progress('forming a swarm of h1 and h2 for the overlay');
      await lab.startDaemon(h2);
      const initOut = await sw(lab, this.h1, ['init', '--advertise-addr', this.h1.addr]);
      await sw(lab, h2, joinCommand(initOut));
      await waitUntil('both nodes ready', 60_000, async () => {
        const list = await nodes(lab, this.h1);
        return list.length === 2 && list.every((n) => n.status?.state === 'NODE_STATE_READY') ? true : undefined;
      });
      await sw(lab, this.h1, ['network', 'create', '-d', 'overlay', '--attachable', 'benchov']);
      await sw(lab, this.h1, ['run', '-d', '--name', 'o1', '--network', 'benchov', this.image, 'sleep', '100000']);
      await sw(lab, h2, ['run', '-d', '--name', 'o2', '--network', 'benchov', this.image, 'sleep', '100000']);
      const overlay = { a: await this.end(this.h1, 'o1', 'benchov'), b: await this.end(h2, 'o2', 'benchov') };
      // The overlay's peers reach h2 shortly after o2 starts: the first reply, untimed.
      await waitUntil('o1 reaching o2 over the overlay', 30_000, async () => ((await runCommand([...overlay.a.enter, 'busybox', 'ping', '-c', '1', '-W', '1', overlay.b.addr])).code === 0 ? true : undefined));
      await this.measure([['veth', veth], ['overlay', overlay]], pings, rr);
    } finally {
      await veth.remove();
    }
    // sockperf gives each run's p50/p99: the figure is their median over the runs.
    const rrFigure = (fs: Figure[]) => ({ median: figure(fs.map((f) => f.median)).median, tail: figure(fs.map((f) => f.tail)).median });
    const pv = figure(pings.veth!);
    const rv = rrFigure(rr.veth!);
    this.row('ping RTT, user bridge', 'µs', figure(pings.bridge!), 'veth pair', pv);
    this.row('ping RTT, attachable overlay', 'µs', figure(pings.overlay!), 'veth pair', pv);
    this.row('TCP_RR RTT, user bridge', 'µs', rrFigure(rr.bridge!), 'veth pair', rv);
    this.row('TCP_RR RTT, attachable overlay', 'µs', rrFigure(rr.overlay!), 'veth pair', rv);
    this.json.latency = { pings: Object.fromEntries(Object.entries(pings).map(([k, v]) => [k, figure(v)])), tcpRr: rr };
  }
}

async function run(opts: ReturnType<typeof parseBenchArgs>): Promise<void> {
  const before = loadavg();
  let report = '';
  await withLab(
    opts,
    2,
    async (lab) => {
      const b = new ContainerCommandsBench(lab, opts.runs);
      try {
        await b.setUp();
        progress('run -d against crun run');
        await b.runDetached();
        progress('exec against nsenter');
        await b.exec();
        progress('latency: user bridge, attachable overlay, veth pair');
        await b.latencies(`${opts.prefix.slice(0, 9)}${uniqueSuffix(3)}`); // + "va": an interface name of at most 15
        const after = loadavg();
        report = renderReport(
          `container commands, ${opts.runs} runs (run -d: ${opts.runs} samples each; exec: ${opts.runs * 2}; latency: ${opts.runs} x ${PINGS} pings and ${opts.runs} x ${RR_SECONDS} s of sockperf per pair, the veth pair's twice)`,
          ['figure', 'median', 'p99/max', 'reference (same run)', 'median', 'p99/max', 'ratio', 'ratio p99'],
          b.rows,
          [0, 3],
          [
            'run -d and exec: spawn of the CLI (through ip netns exec into h1) to its exit; "ready": until the container wrote it. Few samples: max in the p99 column.',
            'ping: busybox ping -A, every reply pooled; TCP_RR: sockperf ping-pong --tcp --full-rtt -m 64, median over runs of each run\'s p50 and p99.',
            'The overlay runs between two lab hosts (veths to a shared underlay bridge): its ratio to the veth pair holds bridge + VXLAN + underlay. No plain-VXLAN pair measured.',
            `load average (1/5/15 min) before: ${before}; after: ${after}; 2 cores shared with other work.`,
          ],
        );
        b.json.loadBefore = before;
        b.json.loadAfter = after;
        report += `BENCH_JSON ${JSON.stringify(b.json)}\n`;
      } finally {
        await b.tearDown();
      }
    },
    { insecureRegistries: [REGISTRY] },
  );
  process.stdout.write(report);
}

benchMain('container-commands', (argv) => parseBenchArgs(argv, { script: 'container-commands.js', runs: 3, prefix: 'swbcc' }), run);
