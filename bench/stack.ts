/**
 * the stack benchmark. On a lab of 3 hosts (h1 manager, h2 and h3 workers), each run times
 * two ways of getting the same 20 replicated services of 5 tasks each (`exec:/ sleep 100000`)
 * running, from the first command's start until `service ls` shows every one at 5/5:
 *
 *   stack     `swarmlet stack deploy -c stack.yml bench` (one CLI call; the CLI plans and creates the services)
 *   one by one  20 × `swarmlet service create -d --name sN --replicas 5 exec:/ sleep 100000`, in turn
 *
 * after each, everything is removed and the benchmark waits until no task is left. The order of the
 * two alternates from run to run. Printed: both medians, their ratio (stack / one by one), then one
 * line `BENCH_JSON {...}`; progress goes to stderr.
 *
 * Run it through bench/run.sh (`npm run bench:stack -- --runs 3`): that puts it in throwaway
 * network, mount and pid namespaces.
 *
 *   node dist/bench/stack.js [--runs N] [--prefix P] [--keep-logs DIR] [--services 20] [--replicas 5]
 *
 * The services of both ways are on an overlay (the stack's `bench_default`; `single_default` made
 * first for the others), as a stack's services are. --services and --replicas change the figure's
 * size (to check the benchmark on a loaded machine); the figure is 20 × 5.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formSwarm, sw } from '../test/e2e/cluster-helpers';
import { type Lab } from '../test/lab/lab';
import { benchMain, parseBenchArgs, pollUntil, positiveInteger, progress, ratio, readFlags, renderReport, seconds, summarize, waitUntil, withLab, type BenchOptions } from './lab-helpers';

const HOSTS = 3;
/** How long one way may take to get every task running (a loaded machine is slow; this is not a limit on the figure). */
const RUN_TIMEOUT_MS = 900_000;

interface StackBenchOptions extends BenchOptions {
  services: number;
  replicas: number;
}

let SERVICES = 20;
let REPLICAS = 5;

const composeFile = () =>
  `services:\n${Array.from({ length: SERVICES }, (_, i) => `  s${i + 1}:\n    image: "exec:/"\n    command: ["sleep", "100000"]\n    deploy:\n      replicas: ${REPLICAS}\n`).join('')}`;

function parseArgs(argv: string[]): StackBenchOptions {
  const usage = 'bench/stack.js [--runs N] [--prefix P] [--keep-logs DIR] [--services 20] [--replicas 5]';
  const flags = readFlags(argv, ['--runs', '--prefix', '--keep-logs', '--services', '--replicas'], usage);
  const base = parseBenchArgs(['--runs', '--prefix', '--keep-logs'].flatMap((f) => (flags.has(f) ? [f, flags.get(f)!] : [])), { script: 'bench/stack.js', runs: 1, prefix: 'swbstk' });
  return { ...base, services: positiveInteger('--services', Number(flags.get('--services') ?? 20)), replicas: positiveInteger('--replicas', Number(flags.get('--replicas') ?? 5)) };
}

interface ServiceLsJson {
  running?: number;
  desired?: number;
}

async function allRunning(lab: Lab): Promise<boolean> {
  const list = JSON.parse(await sw(lab, lab.host(1), ['service', 'ls', '--format', 'api'])) as ServiceLsJson[];
  return list.length === SERVICES && list.every((s) => s.running === REPLICAS && s.desired === REPLICAS);
}

/** Removes every service and the stack's network, then waits until no task is left on any node. */
async function clear(lab: Lab): Promise<void> {
  const h1 = lab.host(1);
  const names = (await sw(lab, h1, ['service', 'ls', '-q'])).split('\n').filter(Boolean);
  if (names.length) await sw(lab, h1, ['service', 'rm', ...names]);
  await waitUntil('no service left', 120000, async () => ((await sw(lab, h1, ['service', 'ls', '-q'])).trim() === '' ? true : undefined), 500);
  // The benchmark runs in a pid namespace of its own (bench/run.sh): every `sleep 100000` is a task's.
  await waitUntil('no task process left', 120000, async () => (spawnSync('pgrep', ['-f', '^sleep 100000$']).status === 1 ? true : undefined), 500);
  await sw(lab, h1, ['stack', 'rm', 'bench']);
  await sw(lab, h1, ['network', 'rm', 'single_default']).catch(() => undefined);
}

async function stackRun(lab: Lab, file: string): Promise<number> {
  const t0 = performance.now();
  await sw(lab, lab.host(1), ['stack', 'deploy', '-c', file, 'bench']);
  const { ms } = await pollUntil(`${SERVICES}×${REPLICAS} stack tasks running`, t0, RUN_TIMEOUT_MS, () => allRunning(lab));
  return ms;
}

/** The same services, on an overlay of their own as the stack's are on bench_default, made by hand. */
async function oneByOneRun(lab: Lab): Promise<number> {
  const t0 = performance.now();
  await sw(lab, lab.host(1), ['network', 'create', '--driver', 'overlay', 'single_default']);
  for (let i = 1; i <= SERVICES; i++) await sw(lab, lab.host(1), ['service', 'create', '-d', '--name', `s${i}`, '--network', 'single_default', '--replicas', String(REPLICAS), 'exec:/', 'sleep', '100000']);
  const { ms } = await pollUntil(`${SERVICES}×${REPLICAS} tasks running`, t0, RUN_TIMEOUT_MS, () => allRunning(lab));
  return ms;
}

export async function runStackBench(opts: StackBenchOptions): Promise<void> {
  SERVICES = opts.services;
  REPLICAS = opts.replicas;
  await withLab(opts, HOSTS, async (lab) => {
    await formSwarm(lab, [lab.host(1)], [lab.host(2), lab.host(3)]);
    progress('swarm formed: h1 manager, h2 and h3 workers');
    const file = join(lab.baseDir, 'stack.yml');
    writeFileSync(file, composeFile());
    const stack: number[] = [];
    const single: number[] = [];
    for (let run = 1; run <= opts.runs; run++) {
      const order = run % 2 === 1 ? (['stack', 'single'] as const) : (['single', 'stack'] as const);
      for (const which of order) {
        const ms = which === 'stack' ? await stackRun(lab, file) : await oneByOneRun(lab);
        (which === 'stack' ? stack : single).push(ms);
        progress(`run ${run}: ${which === 'stack' ? 'stack deploy' : 'service create one by one'} ${seconds(ms)}`);
        await clear(lab);
      }
    }
    const s = summarize(stack);
    const o = summarize(single);
    const range = (x: ReturnType<typeof summarize>) => `${seconds(x.medianMs)} (${seconds(x.minMs)}-${seconds(x.maxMs)})`;
    process.stdout.write(
      renderReport(
        `stack benchmark: ${SERVICES} services × ${REPLICAS} replicas (exec:/ sleep) on ${HOSTS} hosts, ${opts.runs} run(s), command start -> all running`,
        ['way', 'median (min-max)'],
        [
          ['stack deploy -c stack.yml', range(s)],
          [`${SERVICES} × service create -d`, range(o)],
          ['ratio stack / one by one', ratio(s.medianMs, o.medianMs)],
        ],
        [0],
        ['figures are read through the CLI (`service ls` polled), so they carry up to one round trip of extra time each'],
      ),
    );
    process.stdout.write(`BENCH_JSON ${JSON.stringify({ runs: opts.runs, hosts: HOSTS, services: SERVICES, replicas: REPLICAS, stack: s, oneByOne: o, ratio: Number((s.medianMs / o.medianMs).toFixed(3)) })}\n`);
  });
}

if (require.main === module) benchMain('stack', parseArgs, (opts) => runStackBench(opts as StackBenchOptions));
