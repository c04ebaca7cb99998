/**
 * CLI benchmark: what one `swarmlet` call costs, and what init and join cost from the CLI's start.
 *
 *   calls      against a daemon that is a one-node swarm (one lab host, h1, a manager with one
 *              service), for each of `--version`, `--help`, `info` and `service ls`, 20 x --runs
 *              calls one after another: the wall time of the call (spawn to exit, through `ip netns
 *              exec`, as the e2e tests run it) and the CPU time of the CLI process itself (user +
 *              system, written by a preloaded script at exit)
 *              vs  a bare Node start (`node -e 0`, the same way, measured here: the floor of any call
 *              of a CLI written for Node) and issue 15's bound for a round trip, 0.15 s (docker's
 *              CLI is about 0.05 s)
 *   init-join  on a fresh 3-host lab per run: `init` on h1, `join` as a worker on h2 and as a
 *              manager on h3, CLI start to exit, beside the time the daemon logged for the same
 *              step (its phases: the CLI's own share is the difference)
 *              vs  issue 15's bounds, 1.5 s (init) and 0.7 s (join)
 *
 * Run it through bench/run.sh (`npm run bench:cli -- --runs 1 [--phases calls,init-join]`).
 *
 *   node dist/bench/cli.js [--runs N] [--prefix P] [--keep-logs DIR] [--phases calls,init-join]
 *
 * The table goes to stdout, then one line `BENCH_JSON {...}`; progress goes to stderr.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { SwarmletError } from '../services/common/errors';
import { formSwarm, sw } from '../test/e2e/cluster-helpers';
import { runCommand } from '../test/lab/ip-command';
import { requireBuiltCli, type Lab, type LabHost } from '../test/lab/lab';
import { benchMain, positiveInteger, progress, readFlags, renderReport, summarize, withLab, type BenchOptions, type Summary } from './lab-helpers';

const CALLS_PER_RUN = 20;
const BOUND_MS = 150;
const INIT_BOUND_MS = 1500;
const JOIN_BOUND_MS = 700;
const COMMANDS: readonly string[][] = [['--version'], ['--help'], ['info'], ['service', 'ls']];
const PHASES = ['calls', 'init-join'] as const;
type Phase = (typeof PHASES)[number];

interface CliBenchOptions extends BenchOptions {
  readonly phases: readonly Phase[];
}

interface CallResult {
  command: string;
  wall: Summary;
  cpu: Summary;
}

interface StepResult {
  step: string;
  boundMs: number;
  wall: Summary;
  /** What the daemon logged for the step: the sum of its phases. */
  daemon: Summary;
  /** The daemon's phases of each sample. */
  phasesMs: Record<string, number>[];
}

const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');

function parseCliBenchArgs(argv: string[]): CliBenchOptions {
  const usage = 'node dist/bench/cli.js [--runs N] [--prefix P] [--keep-logs DIR] [--phases calls,init-join]';
  const flags = readFlags(argv, ['--runs', '--prefix', '--keep-logs', '--phases'], usage);
  const phases = (flags.get('--phases') ?? PHASES.join(',')).split(',').filter(Boolean);
  for (const p of phases) if (!PHASES.includes(p as Phase)) throw new SwarmletError('InvalidArgument', `no phase ${p}: ${PHASES.join(', ')}; usage: ${usage}`);
  return Object.freeze({
    runs: positiveInteger('--runs', Number(flags.get('--runs') ?? 1)),
    prefix: flags.get('--prefix') ?? 'swbc',
    keepLogs: flags.get('--keep-logs'),
    phases: phases as Phase[],
  });
}

/** Wall and CPU time of `argv` run `n` times inside h's netns, with the CPU-recording script preloaded into Node. */
async function timeCalls(h: LabHost, argv: (cpuJs: string) => string[], n: number, dir: string, label: string): Promise<CallResult> {
  const cpuFile = join(dir, 'cpu.json');
  const cpuJs = join(dir, 'cpu.js');
  writeFileSync(cpuJs, `process.on('exit', () => { const u = process.cpuUsage(); require('node:fs').writeFileSync(${JSON.stringify(cpuFile)}, JSON.stringify((u.user + u.system) / 1000)); });\n`);
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < n; i++) {
    rmSync(cpuFile, { force: true });
    const t0 = performance.now();
    const res = await runCommand(['ip', 'netns', 'exec', h.netns, ...argv(cpuJs)], { timeoutMs: 60_000 });
    wall.push(performance.now() - t0);
    if (res.code !== 0) throw new SwarmletError('Internal', `${label} exited ${res.code}: ${res.stderr.trim()}`);
    cpu.push(JSON.parse(readFileSync(cpuFile, 'utf8')) as number);
  }
  progress(`${label}: done`);
  return { command: label, wall: summarize(wall), cpu: summarize(cpu) };
}

async function benchCalls(opts: CliBenchOptions): Promise<{ reference: CallResult; calls: CallResult[] }> {
  const main = requireBuiltCli();
  const dir = mkdtempSync(join(tmpdir(), 'swarmlet-bench-cli-'));
  const n = CALLS_PER_RUN * opts.runs;
  const calls: CallResult[] = [];
  let reference: CallResult | undefined;
  try {
    await withLab(opts, 1, async (lab) => {
      const h = lab.host(1);
      await formSwarm(lab, [h], []);
      await sw(lab, h, ['service', 'create', '-d', '--name', 'web', 'exec:/', 'sleep', '1000']);
      reference = await timeCalls(h, (cpuJs) => [process.execPath, '--require', cpuJs, '-e', '0'], n, dir, 'node -e 0');
      for (const args of COMMANDS) calls.push(await timeCalls(h, (cpuJs) => [process.execPath, '--require', cpuJs, main, '-H', h.socket, ...args], n, dir, args.join(' ')));
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { reference: reference!, calls };
}

/** The phases of the last log line of h's daemon whose msg is `msg` (pino JSON lines). */
function loggedPhases(h: LabHost, msg: string): Record<string, number> {
  const lines = readFileSync(h.logFile, 'utf8').split('\n').filter((l) => l.includes(`"msg":"${msg}"`));
  const last = lines.at(-1);
  if (!last) throw new SwarmletError('Internal', `${h.name}'s daemon logged no "${msg}"`);
  return (JSON.parse(last) as { phasesMs?: Record<string, number> }).phasesMs ?? {};
}

async function timedStep(lab: Lab, h: LabHost, args: string[], msg: string): Promise<{ wallMs: number; phasesMs: Record<string, number> }> {
  const t0 = performance.now();
  const res = await lab.cli(h, args);
  const wallMs = performance.now() - t0;
  if (res.code !== 0) throw new SwarmletError('Internal', `swarmlet ${args.join(' ')} on ${h.name} exited ${res.code}: ${res.stderr.trim()}`);
  return { wallMs, phasesMs: loggedPhases(h, msg) };
}

async function benchInitJoin(opts: CliBenchOptions): Promise<StepResult[]> {
  const samples = new Map<string, { wallMs: number; phasesMs: Record<string, number> }[]>([['init', []], ['join (worker)', []], ['join (manager)', []]]);
  for (let run = 1; run <= opts.runs; run++) {
    await withLab({ ...opts, prefix: `${opts.prefix}j` }, 3, async (lab) => {
      const [h1, h2, h3] = [lab.host(1), lab.host(2), lab.host(3)];
      await Promise.all([h1, h2, h3].map((h) => lab.startDaemon(h)));
      samples.get('init')!.push(await timedStep(lab, h1, ['init', '--advertise-addr', h1.addr], 'swarm initialized'));
      const workerToken = (await sw(lab, h1, ['swarm', 'join-token', 'worker', '-q'])).trim();
      const managerToken = (await sw(lab, h1, ['swarm', 'join-token', 'manager', '-q'])).trim();
      samples.get('join (worker)')!.push(await timedStep(lab, h2, ['join', '--token', workerToken, h1.addr], 'joined the swarm'));
      samples.get('join (manager)')!.push(await timedStep(lab, h3, ['join', '--token', managerToken, h1.addr], 'joined the swarm'));
    });
    progress(`init-join ${run}/${opts.runs}: ${[...samples].map(([k, v]) => `${k} ${Math.round(v.at(-1)!.wallMs)} ms`).join(', ')}`);
  }
  const sum = (p: Record<string, number>) => Object.values(p).reduce((a, b) => a + b, 0);
  return [...samples].map(([step, s]) => ({
    step,
    boundMs: step === 'init' ? INIT_BOUND_MS : JOIN_BOUND_MS,
    wall: summarize(s.map((x) => x.wallMs)),
    daemon: summarize(s.map((x) => sum(x.phasesMs))),
    phasesMs: s.map((x) => x.phasesMs),
  }));
}

export async function runCliBench(opts: CliBenchOptions): Promise<void> {
  const loadBefore = load();
  const calls = opts.phases.includes('calls') ? await benchCalls(opts) : undefined;
  const steps = opts.phases.includes('init-join') ? await benchInitJoin(opts) : undefined;
  const loadAfter = load();
  const range = (s: Summary) => `${s.medianMs} (${s.minMs}-${s.maxMs})`;
  if (calls) {
    const node = calls.reference.wall.medianMs;
    const cells = [calls.reference, ...calls.calls].map((r) => [r.command, range(r.wall), range(r.cpu), (r.wall.medianMs / node).toFixed(2), (r.wall.medianMs / BOUND_MS).toFixed(2)]);
    process.stdout.write(
      renderReport(`swarmlet calls against a one-node swarm, ${CALLS_PER_RUN * opts.runs} each`, ['command', 'wall ms median (min-max)', 'cpu ms median (min-max)', 'wall / node -e 0', `wall / ${BOUND_MS} ms bound`], cells, [0], [
        `Reference: a bare Node start (node -e 0) through the same ip netns exec, measured in this run: ${node} ms.`,
        `Load average (1, 5, 15 min): ${loadBefore} before, ${loadAfter} after.`,
      ]),
    );
  }
  if (steps) {
    if (calls) process.stdout.write('\n');
    const cells = steps.map((s) => [s.step, range(s.wall), range(s.daemon), String(s.wall.medianMs - s.daemon.medianMs), (s.wall.medianMs / s.boundMs).toFixed(2)]);
    const phases = steps.map((s) => `${s.step}: daemon phases (ms) ${s.phasesMs.map((p) => JSON.stringify(p)).join(' ')}`);
    process.stdout.write(
      renderReport(`init and join on a fresh 3-host lab, ${opts.runs} run(s), CLI start to exit`, ['step', 'wall ms median (min-max)', 'daemon ms median (min-max)', 'rest (CLI, RPC) ms', 'wall / bound'], cells, [0], [
        `Bounds (issue 15): init ${INIT_BOUND_MS} ms, join ${JOIN_BOUND_MS} ms. The daemon's time is the sum of the phases it logged for the step.`,
        ...phases,
        `Load average (1, 5, 15 min): ${loadBefore} before, ${loadAfter} after.`,
      ]),
    );
  }
  console.log(`BENCH_JSON ${JSON.stringify({ bench: 'cli', boundMs: BOUND_MS, reference: calls?.reference, results: calls?.calls, steps, loadBefore, loadAfter })}`);
}

if (require.main === module) benchMain('cli', parseCliBenchArgs, runCliBench);
