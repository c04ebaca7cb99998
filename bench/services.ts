/**
 * Services benchmark: how long swarmlet takes to get the tasks of a new replicated service running,
 * on a lab of 3 hosts (h1 manager, h2 and h3 workers; 198.51.100.0/24 underlay). For N = 10 and
 * N = 100, each run times, from the start of
 *
 *   swarmlet service create -d --name bN --replicas N exec:/ sleep 100000
 *
 * until `service ps bN --format api` lists N tasks with desired and current state RUNNING (and,
 * from the same polls, until it lists the first one), then removes the service and waits until
 * its task processes are gone. The reference, measured in the same run just before each swarmlet
 * run: the same N processes started without the orchestrator, spread over the same 3 hosts, each as
 *
 *   nsenter --net=/run/netns/<host> -- unshare --pid --fork --mount-proc --mount --uts --ipc --net sleep 100000
 *
 * spawned detached, timed from the first spawn until every inner `sleep` has been exec'ed (read
 * from /proc every few ms), then killed. Printed: both medians, their ratio, and the per-task
 * overhead (swarmlet median - reference median) / N.
 *
 * Run it through bench/run.sh (`npm run bench:services -- --runs 3`): that puts it in throwaway
 * network, mount and pid namespaces.
 *
 *   node dist/bench/services.js [--runs N] [--prefix P] [--keep-logs DIR]
 *
 * --runs (default 3) runs of each figure; --prefix (default swbsvc) names the lab; --keep-logs
 * copies the daemons' and etcd's logs to DIR before the lab is destroyed. The table goes to stdout,
 * then one line `BENCH_JSON {...}`; progress goes to stderr.
 *
 * Polls go through the CLI, as an operator would see it (see lab-helpers.ts pollUntil): each probe
 * costs a Node start, so the swarmlet figures carry up to one `service ps` round trip of extra
 * time, which is printed beside them, together with the same times read from the tasks' own
 * timestamps in the store (createdAt, and status.timestamp of RUNNING), which carry none.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { SwarmletError } from '../services/common/errors';
import { formSwarm, nodes, sw } from '../test/e2e/cluster-helpers';
import { type Lab, type LabHost } from '../test/lab/lab';
import { descendantsOf, sleep, waitGone } from '../test/lab/process-tree';
import { POLL_MS, firstLine, parseBenchArgs, pollUntil, progress, ratio, seconds, summarize, waitUntil, withLab, type BenchOptions, type Summary, benchMain } from './lab-helpers';

/** A task as `service ps --format api` prints it: only the fields the benchmark reads. */
interface TaskJson {
  id: string;
  nodeId?: string;
  createdAt?: string;
  desiredState?: string;
  status?: { state?: string; timestamp?: string; err?: string };
}

/** Milliseconds from the CLI start, read from the tasks' timestamps in the store (the same clock). */
interface StoreStamps {
  lastCreatedMs: number;
  firstRunningMs: number;
  lastRunningMs: number;
}

/** What one `service ps` probe saw: when it ended (ms from the CLI start) and how many tasks were in each stage. */
interface ProbeSeen {
  atMs: number;
  /** status.state NEW (the allocator has not taken it yet) */
  new: number;
  /** PENDING (not yet placed by the scheduler) */
  pending: number;
  /** ASSIGNED up to STARTING (on a node, not yet running) */
  onNode: number;
  running: number;
}

interface ServiceRun {
  allMs: number;
  firstMs: number;
  /** `service create -d`, CLI start to exit. */
  createCliMs: number;
  probes: number;
  probeMs: number[];
  seen: ProbeSeen[];
  stamps: StoreStamps | undefined;
  perHost: Record<string, number>;
  /** `service rm` start until `service ps` lists nothing, and until no task process is left. */
  psEmptyMs: number;
  teardownMs: number;
}

interface ReferenceRun {
  allMs: number;
  firstMs: number;
  /** Until the last spawn() returned. */
  spawnedMs: number;
}

interface Row {
  key: string;
  label: string;
  summary: Summary;
  reference: { label: string; summary: Summary };
  /** How to print a value; seconds by default. */
  unit?: 'tasks/s';
  n: number;
}

const HOSTS = 3;
const SIZES = [10, 100] as const;
const TASK_ARGV = ['sleep', '100000'];
const UNSHARE_ARGV = ['unshare', '--pid', '--fork', '--mount-proc', '--mount', '--uts', '--ipc', '--net'];
const RUNNING = 'TASK_STATE_RUNNING';
const CLI_TIMEOUT_MS = 30_000;
const CONVERGE_TIMEOUT_MS = 120_000;
const TEARDOWN_TIMEOUT_MS = 60_000;
const REFERENCE_TIMEOUT_MS = 30_000;
const REFERENCE_POLL_MS = 5;

const isRunning = (t: TaskJson) => t.desiredState === RUNNING && t.status?.state === RUNNING;

/** Counts tasks by stage; a task without status.state is NEW (proto3 JSON leaves the zero value out). */
function stages(tasks: TaskJson[], atMs: number): ProbeSeen {
  const seen: ProbeSeen = { atMs: Math.round(atMs), new: 0, pending: 0, onNode: 0, running: 0 };
  for (const t of tasks) {
    const state = t.status?.state ?? 'TASK_STATE_NEW';
    if (isRunning(t)) seen.running++;
    else if (state === 'TASK_STATE_NEW') seen.new++;
    else if (state === 'TASK_STATE_PENDING') seen.pending++;
    else if (['TASK_STATE_ASSIGNED', 'TASK_STATE_ACCEPTED', 'TASK_STATE_PREPARING', 'TASK_STATE_READY', 'TASK_STATE_STARTING'].includes(state)) seen.onNode++;
  }
  return seen;
}

/** pid, ppid and command name of every process, from /proc/<pid>/stat; zombies left out. */
function processTable(): { pid: number; ppid: number; comm: string }[] {
  const out: { pid: number; ppid: number; comm: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let text: string;
    try {
      text = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    const close = text.lastIndexOf(')');
    const fields = text.slice(close + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') continue;
    out.push({ pid: Number(entry), ppid: Number(fields[1]), comm: text.slice(text.indexOf('(') + 1, close) });
  }
  return out;
}

/**
 * The processes of swarmlet tasks still alive anywhere in the sandbox: the shims and inits
 * (agent/runtime/shim.ts names them in their argv), the `unshare` between them, and the command.
 * Only meaningful while no reference process runs (they run `sleep 100000` too).
 */
function taskProcesses(): number[] {
  const out: number[] = [];
  for (const { pid } of processTable()) {
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (cmdline === `${TASK_ARGV.join('\0')}\0` || cmdline.includes('\0swarmlet-shim\0') || cmdline.includes('\0swarmlet-init\0')) out.push(pid);
  }
  return out;
}

class ServicesBench {
  readonly notes: string[] = [];
  private readonly h1: LabHost;
  private readonly hostOfNode = new Map<string, string>();

  constructor(private readonly lab: Lab) {
    this.h1 = lab.host(1);
  }

  note(msg: string): void {
    this.notes.push(msg);
    progress(`note: ${msg}`);
  }

  async formSwarm(): Promise<void> {
    const [h1, h2, h3] = this.lab.hosts as [LabHost, LabHost, LabHost];
    await formSwarm(this.lab, [h1], [h2, h3]);
    for (const n of await nodes(this.lab, h1)) this.hostOfNode.set(n.id, n.description?.hostname ?? n.id);
  }

  async tasks(name: string): Promise<TaskJson[]> {
    return JSON.parse(await sw(this.lab, this.h1, ['service', 'ps', name, '--format', 'api'])) as TaskJson[];
  }

  /** One swarmlet run: create, poll until N tasks run, remove, wait until its processes are gone. */
  async serviceRun(n: number): Promise<ServiceRun> {
    const left = taskProcesses();
    if (left.length > 0) throw new SwarmletError('Internal', `task processes of an earlier run are still alive: ${left.join(' ')}`);
    const name = `b${n}`;
    const createArgs = ['service', 'create', '-d', '--name', name, '--replicas', String(n), 'exec:/', ...TASK_ARGV];
    const t0Wall = Date.now();
    const t0 = performance.now();
    const created = await this.lab.cli(this.h1, createArgs, { timeoutMs: CLI_TIMEOUT_MS });
    const createCliMs = performance.now() - t0;
    if (created.code !== 0) throw new SwarmletError('Internal', `swarmlet ${createArgs.join(' ')} exited ${created.code}: ${firstLine(created.stderr)}`);

    let firstMs: number | undefined;
    let final: TaskJson[] = [];
    const probeMs: number[] = [];
    const seen: ProbeSeen[] = [];
    const { ms: allMs, probes } = await pollUntil(`${n} running tasks of ${name}`, t0, CONVERGE_TIMEOUT_MS, async () => {
      const started = performance.now();
      const ts = await this.tasks(name);
      const ended = performance.now();
      probeMs.push(ended - started);
      seen.push(stages(ts, ended - t0));
      const running = ts.filter(isRunning).length;
      if (running > 0 && firstMs === undefined) firstMs = ended - t0;
      if (running < n) return false;
      final = ts;
      return true;
    });

    const perHost: Record<string, number> = {};
    for (const t of final.filter(isRunning)) {
      const host = this.hostOfNode.get(t.nodeId ?? '') ?? (t.nodeId || '?');
      perHost[host] = (perHost[host] ?? 0) + 1;
    }
    const { psEmptyMs, teardownMs } = await this.remove(name);
    return { allMs, firstMs: firstMs ?? allMs, createCliMs, probes, probeMs, seen: seen.sort((a, b) => a.atMs - b.atMs), stamps: storeStamps(final, t0Wall), perHost, psEmptyMs, teardownMs };
  }

  /** `service rm`, then polls `service ps` until it lists nothing (or no longer knows the service), then /proc until no task process is left. */
  async remove(name: string): Promise<{ psEmptyMs: number; teardownMs: number }> {
    const t0 = performance.now();
    await sw(this.lab, this.h1, ['service', 'rm', name]);
    let goneFromPs = '';
    await waitUntil(`service ps ${name} to list no task`, TEARDOWN_TIMEOUT_MS, async () => {
      const r = await this.lab.cli(this.h1, ['service', 'ps', name, '--format', 'api'], { timeoutMs: CLI_TIMEOUT_MS });
      if (r.code === 0) return (JSON.parse(r.stdout) as TaskJson[]).length === 0 ? true : undefined;
      if (/not found/i.test(r.stderr)) {
        goneFromPs = firstLine(r.stderr);
        return true;
      }
      throw new SwarmletError('Internal', firstLine(r.stderr));
    }, POLL_MS);
    const psEmptyMs = performance.now() - t0;
    await waitUntil(`the task processes of ${name} to be gone`, TEARDOWN_TIMEOUT_MS, async () => (taskProcesses().length === 0 ? true : undefined), POLL_MS);
    const teardownMs = performance.now() - t0;
    if (goneFromPs && !this.notes.some((x) => x.startsWith('after `service rm`'))) {
      this.note(`after \`service rm\`, \`service ps\` no longer knows the service at once ("${goneFromPs}"), while its task processes live on for a while (see teardown): ps cannot show a removal in progress`);
    }
    return { psEmptyMs, teardownMs };
  }

  /** The reference run: N unshare'd sleeps spread over the hosts' netns, first spawn to all exec'ed; then killed. */
  async referenceRun(n: number): Promise<ReferenceRun> {
    const children: ChildProcess[] = [];
    const exits: Promise<void>[] = [];
    const spawnErrors: string[] = [];
    // nsenter execs unshare (same pid), which forks the task's pid 1; that execs sleep.
    const outer = new Set<number>();
    const aliveNow = () => processTable().filter((p) => p.comm === 'sleep' && outer.has(p.ppid)).length;
    let firstMs: number | undefined;
    const t0 = performance.now();
    try {
      for (let i = 0; i < n; i++) {
        const h = this.lab.hosts[i % this.lab.hosts.length] as LabHost;
        const child = spawn('nsenter', [`--net=/run/netns/${h.netns}`, '--', ...UNSHARE_ARGV, ...TASK_ARGV], { detached: true, stdio: 'ignore' });
        children.push(child);
        exits.push(new Promise((resolve) => child.once('exit', () => resolve())));
        child.once('error', (err) => spawnErrors.push(err.message));
        if (child.pid !== undefined) outer.add(child.pid);
        // spawn() blocks until exec, so the loop below cannot see the first one come up: look here until it has.
        if (firstMs === undefined && aliveNow() > 0) firstMs = performance.now() - t0;
      }
      const spawnedMs = performance.now() - t0;
      for (;;) {
        const alive = aliveNow();
        const now = performance.now() - t0;
        if (alive > 0 && firstMs === undefined) firstMs = now;
        if (alive >= n) return { allMs: now, firstMs: firstMs ?? now, spawnedMs };
        if (spawnErrors.length > 0 || children.some((c) => c.exitCode !== null || c.signalCode !== null)) {
          throw new SwarmletError('Internal', `a reference process ended early: ${spawnErrors[0] ?? children.filter((c) => c.exitCode !== null || c.signalCode !== null).map((c) => `exit ${c.exitCode ?? c.signalCode}`)[0]}`);
        }
        if (now > REFERENCE_TIMEOUT_MS) throw new SwarmletError('Unavailable', `timed out after ${seconds(REFERENCE_TIMEOUT_MS)}: ${alive} of ${n} reference processes alive`);
        await sleep(REFERENCE_POLL_MS);
      }
    } finally {
      await killReference(children, exits);
    }
  }
}

/** Kills the inner processes first (unshare without --kill-child would leave them), then unshare. */
async function killReference(children: ChildProcess[], exits: Promise<void>[]): Promise<void> {
  const outer = children.map((c) => c.pid).filter((p): p is number => p !== undefined);
  const signal = (pids: number[]) => {
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  };
  signal(descendantsOf(outer));
  if ((await waitGone(outer, 5_000)).length > 0) {
    signal(descendantsOf(outer));
    signal(outer);
  }
  await Promise.race([Promise.all(exits), sleep(10_000)]);
  const left = await waitGone([...outer, ...descendantsOf(outer)], 5_000);
  if (left.length > 0) throw new SwarmletError('Internal', `reference processes survived SIGKILL: ${left.join(' ')}`);
}

function storeStamps(tasks: TaskJson[], t0Wall: number): StoreStamps | undefined {
  const at = (iso: string | undefined) => (iso ? Date.parse(iso) - t0Wall : NaN);
  const created = tasks.map((t) => at(t.createdAt));
  const running = tasks.filter(isRunning).map((t) => at(t.status?.timestamp));
  if (running.length === 0 || [...created, ...running].some((x) => !Number.isFinite(x))) return undefined;
  return { lastCreatedMs: Math.max(...created), firstRunningMs: Math.min(...running), lastRunningMs: Math.max(...running) };
}

const rate = (n: number, ms: number) => (ms > 0 ? (n * 1000) / ms : 0);

function render(rows: Row[], lines: string[], runs: number): string {
  const head = ['figure', 'median', 'min', 'max', 'reference (same run)', 'ref median', 'ratio'];
  const fmt = (r: Row, ms: number) => (r.unit === 'tasks/s' ? `${rate(r.n, ms).toFixed(1)}/s` : seconds(ms));
  const cells = rows.map((r) => {
    // For a rate, the fastest run is the max.
    const [lo, hi] = r.unit === 'tasks/s' ? [r.summary.maxMs, r.summary.minMs] : [r.summary.minMs, r.summary.maxMs];
    const ratioText = r.unit === 'tasks/s' ? ratio(r.reference.summary.medianMs, r.summary.medianMs) : ratio(r.summary.medianMs, r.reference.summary.medianMs);
    return [r.label, fmt(r, r.summary.medianMs), fmt(r, lo), fmt(r, hi), r.reference.label, fmt(r, r.reference.summary.medianMs), ratioText];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] as string).length)));
  const line = (c: string[]) => c.map((x, i) => (i === 0 || i === 4 ? x.padEnd(widths[i] as number) : x.padStart(widths[i] as number))).join('  ').trimEnd();
  const out = [
    `swarmlet services benchmark: ${HOSTS} hosts (h1 manager, h2 and h3 workers), ${runs} runs of each figure; ratio = swarmlet / reference (medians)`,
    '',
    line(head),
    line(widths.map((w) => '-'.repeat(w))),
    ...cells.map(line),
    '',
    ...lines,
  ];
  return `${out.join('\n')}\n`;
}

export function parseArgs(argv: string[]): BenchOptions {
  return parseBenchArgs(argv, { script: 'services.js', runs: 3, prefix: 'swbsvc' });
}

export async function runServicesBench(opts: BenchOptions): Promise<void> {
  progress(`building lab ${opts.prefix} (${HOSTS} hosts), ${opts.runs} runs of N = ${SIZES.join(' and ')}`);
  await withLab(opts, HOSTS, async (lab) => {
    const bench = new ServicesBench(lab);
    await bench.formSwarm();
    progress('swarm formed: h1 manager, h2 and h3 workers');

    const svc = new Map<number, ServiceRun[]>();
    const ref = new Map<number, ReferenceRun[]>();
    for (const n of SIZES) {
      svc.set(n, []);
      ref.set(n, []);
      for (let run = 1; run <= opts.runs; run++) {
        const r = await bench.referenceRun(n);
        ref.get(n)?.push(r);
        const s = await bench.serviceRun(n);
        svc.get(n)?.push(s);
        const spread = Object.entries(s.perHost).sort().map(([h, k]) => `${h.replace(`${opts.prefix}-`, '')} ${k}`).join(', ');
        progress(
          `N=${n} run ${run}/${opts.runs}: swarmlet all running ${seconds(s.allMs)} (first ${seconds(s.firstMs)}, ${s.probes} probes; store stamps: last running ${s.stamps ? seconds(s.stamps.lastRunningMs) : '?'}; ${spread}); ` +
            `reference all alive ${seconds(r.allMs)} (first ${seconds(r.firstMs)}); teardown ${seconds(s.teardownMs)}`,
        );
      }
    }

    const of = <T>(m: Map<number, T[]>, n: number) => m.get(n) ?? [];
    const sum = <T>(m: Map<number, T[]>, n: number, f: (x: T) => number) => summarize(of(m, n).map(f));
    const rows: Row[] = [];
    for (const n of SIZES) {
      const refAll = { label: `${n} x unshare+sleep, first spawn -> all alive`, summary: sum(ref, n, (r) => r.allMs) };
      const refFirst = { label: `${n} x unshare+sleep, first spawn -> first alive`, summary: sum(ref, n, (r) => r.firstMs) };
      rows.push({ key: `allRunning${n}`, label: `N=${n}: create -> all ${n} running`, summary: sum(svc, n, (s) => s.allMs), reference: refAll, n });
      rows.push({ key: `firstRunning${n}`, label: `N=${n}: create -> first running`, summary: sum(svc, n, (s) => s.firstMs), reference: refFirst, n });
    }
    const big = SIZES[SIZES.length - 1];
    const bigAll = rows.find((r) => r.key === `allRunning${big}`) as Row;
    rows.push({ key: `tasksPerSecond${big}`, label: `N=${big}: tasks/s (N / time to all running)`, summary: bigAll.summary, reference: { label: `${big} / reference time to all alive`, summary: bigAll.reference.summary }, unit: 'tasks/s', n: big });

    const overhead = (n: number) => {
      const r = rows.find((x) => x.key === `allRunning${n}`) as Row;
      return (r.summary.medianMs - r.reference.summary.medianMs) / n;
    };
    const range = (s: Summary) => `${seconds(s.medianMs)} (${seconds(s.minMs)}-${seconds(s.maxMs)})`;
    const lines: string[] = [`per-task overhead, (swarmlet median - reference median) / N: ${SIZES.map((n) => `N=${n} ${overhead(n).toFixed(1)} ms/task`).join(', ')}`, ''];
    lines.push('context (medians, min-max):');
    for (const n of SIZES) {
      const runs = of(svc, n);
      const stamped = runs.filter((s) => s.stamps !== undefined).map((s) => s.stamps as StoreStamps);
      lines.push(`  N=${n}: \`service create -d\` CLI wall time ${range(sum(svc, n, (s) => s.createCliMs))}; reference spawn() loop ${range(sum(ref, n, (r) => r.spawnedMs))}`);
      if (stamped.length > 0) {
        lines.push(
          `  N=${n}: from the tasks' own timestamps (no poll delay), CLI start -> last task created ${range(summarize(stamped.map((x) => x.lastCreatedMs)))}, ` +
            `-> first RUNNING ${range(summarize(stamped.map((x) => x.firstRunningMs)))}, -> all RUNNING ${range(summarize(stamped.map((x) => x.lastRunningMs)))}`,
        );
      }
      lines.push(`  N=${n}: \`service ps\` round trip while polling ${range(summarize(runs.flatMap((s) => s.probeMs)))}, ${runs.map((s) => s.probes).join('/')} probes per run`);
      lines.push(`  N=${n}: teardown, \`service rm\` start -> \`service ps\` empty ${range(sum(svc, n, (s) => s.psEmptyMs))} -> no task process left ${range(sum(svc, n, (s) => s.teardownMs))}`);
      const median = [...runs].sort((a, b) => a.allMs - b.allMs)[Math.floor(runs.length / 2)] as ServiceRun;
      lines.push(`  N=${n}: what the polls of the median run saw, time: NEW/PENDING/on a node/RUNNING: ${median.seen.filter((x) => x.atMs <= Math.round(median.allMs)).map((x) => `${seconds(x.atMs)}: ${x.new}/${x.pending}/${x.onNode}/${x.running}`).join(', ')}`);
      lines.push(`  N=${n}: tasks per host when all ran: ${runs.map((s) => Object.entries(s.perHost).sort().map(([, k]) => k).join('/')).join(', ')}`);
    }
    lines.push(
      '',
      `swarmlet figures are read through the CLI (a probe ${POLL_MS} ms after the previous one ended; each starts a Node process, on a machine of ${cpus().length} cores shared with the 3 daemons and etcd): they carry up to one \`service ps\` round trip (above) of extra time`,
      'the reference is unshare alone; a swarmlet exec task also gets a cgroup, a Perl shim (its log writer), and a sh pid 1 that sets the hostname and waits on a start fifo (the agent sets its lo up, with no process)',
    );
    if (bench.notes.length > 0) lines.push('', 'observations:', ...bench.notes.map((x) => `  - ${x}`));
    process.stdout.write(render(rows, lines, opts.runs));

    const json = {
      runs: opts.runs,
      hosts: HOSTS,
      prefix: opts.prefix,
      cpus: cpus().length,
      figures: Object.fromEntries(
        rows.map((r) => {
          if (r.unit === 'tasks/s') {
            return [r.key, { tasksPerSecond: { median: rate(r.n, r.summary.medianMs), min: rate(r.n, r.summary.maxMs), max: rate(r.n, r.summary.minMs) }, reference: { label: r.reference.label, tasksPerSecond: rate(r.n, r.reference.summary.medianMs) }, ratio: Number((r.reference.summary.medianMs / r.summary.medianMs).toFixed(3)) }];
          }
          return [r.key, { ...r.summary, reference: { label: r.reference.label, kind: 'measured', ...r.reference.summary }, ratio: Number((r.summary.medianMs / r.reference.summary.medianMs).toFixed(3)) }];
        }),
      ),
      perTaskOverheadMs: Object.fromEntries(SIZES.map((n) => [String(n), Number(overhead(n).toFixed(2))])),
      runsDetail: Object.fromEntries(SIZES.map((n) => [String(n), { swarmlet: of(svc, n).map(({ probeMs: _p, ...s }) => ({ ...s, allMs: Math.round(s.allMs), firstMs: Math.round(s.firstMs), createCliMs: Math.round(s.createCliMs), psEmptyMs: Math.round(s.psEmptyMs), teardownMs: Math.round(s.teardownMs) })), reference: of(ref, n).map((r) => ({ allMs: Math.round(r.allMs), firstMs: Math.round(r.firstMs), spawnedMs: Math.round(r.spawnedMs) })) }])),
      notes: bench.notes,
    };
    process.stdout.write(`BENCH_JSON ${JSON.stringify(json)}\n`);
  });
}

if (require.main === module) benchMain('services', parseArgs, runServicesBench);
