/**
 * CLI benchmark: what one `swarmlet` call costs, against a daemon that is a one-node swarm (one lab
 * host, h1, a manager with one service). For each of `--version`, `--help`, `info` and `service ls`,
 * 20 x --runs calls, one after another: the wall time of the call (spawn to exit, through `ip netns
 * exec`, as the e2e tests run it) and the CPU time of the CLI process itself (user + system, written
 * by a preloaded script at exit). Printed: the median and the range of each. The reference is
 * issue 15's bound for a round trip, 0.15 s (docker's is about 0.05 s).
 *
 * Run it through bench/run.sh (`npm run bench:cli -- --runs 1`).
 *
 *   node dist/bench/cli.js [--runs N] [--prefix P] [--keep-logs DIR]
 *
 * The table goes to stdout, then one line `BENCH_JSON {...}`; progress goes to stderr.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SwarmletError } from '../services/common/errors';
import { formSwarm, sw } from '../test/e2e/cluster-helpers';
import { runCommand } from '../test/lab/ip-command';
import { requireBuiltCli } from '../test/lab/lab';
import { benchMain, parseBenchArgs, progress, summarize, withLab, type BenchOptions, type Summary } from './lab-helpers';

const CALLS_PER_RUN = 20;
const BOUND_MS = 150;
const COMMANDS: readonly string[][] = [['--version'], ['--help'], ['info'], ['service', 'ls']];

export async function runCliBench(opts: BenchOptions): Promise<void> {
  const main = requireBuiltCli();
  const dir = mkdtempSync(join(tmpdir(), 'swarmlet-bench-cli-'));
  const cpuFile = join(dir, 'cpu.json');
  writeFileSync(join(dir, 'cpu.js'), `process.on('exit', () => { const u = process.cpuUsage(); require('node:fs').writeFileSync(${JSON.stringify(cpuFile)}, JSON.stringify((u.user + u.system) / 1000)); });\n`);
  const results: { command: string; wall: Summary; cpu: Summary }[] = [];
  try {
    await withLab(opts, 1, async (lab) => {
      const h = lab.host(1);
      await formSwarm(lab, [h], []);
      await sw(lab, h, ['service', 'create', '-d', '--name', 'web', 'exec:/', 'sleep', '1000']);
      for (const args of COMMANDS) {
        const wall: number[] = [];
        const cpu: number[] = [];
        for (let i = 0; i < CALLS_PER_RUN * opts.runs; i++) {
          const t0 = performance.now();
          const res = await runCommand(['ip', 'netns', 'exec', h.netns, process.execPath, '--require', join(dir, 'cpu.js'), main, '-H', h.socket, ...args], { timeoutMs: 60_000 });
          wall.push(performance.now() - t0);
          if (res.code !== 0) throw new SwarmletError('Internal', `swarmlet ${args.join(' ')} exited ${res.code}: ${res.stderr.trim()}`);
          cpu.push(JSON.parse(readFileSync(cpuFile, 'utf8')) as number);
        }
        results.push({ command: args.join(' '), wall: summarize(wall), cpu: summarize(cpu) });
        progress(`${args.join(' ')}: done`);
      }
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const range = (s: Summary) => `${s.medianMs} ms (${s.minMs}-${s.maxMs})`;
  console.log(`swarmlet calls against a one-node swarm, ${CALLS_PER_RUN * opts.runs} each; bound ${BOUND_MS} ms`);
  console.log(['command'.padEnd(14), 'wall median (min-max)'.padEnd(26), 'cpu median (min-max)'.padEnd(26), 'wall / bound'].join('  '));
  for (const r of results) console.log([r.command.padEnd(14), range(r.wall).padEnd(26), range(r.cpu).padEnd(26), (r.wall.medianMs / BOUND_MS).toFixed(2)].join('  '));
  console.log(`BENCH_JSON ${JSON.stringify({ bench: 'cli', boundMs: BOUND_MS, results })}`);
}

if (require.main === module) benchMain('cli', (argv) => parseBenchArgs(argv, { script: 'node dist/bench/cli.js', runs: 1, prefix: 'swbc' }), runCliBench);
