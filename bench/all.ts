/**
 * Every benchmark, one after the other, unattended (`npm run bench`), and one table at the end.
 *
 *   node dist/bench/all.js [--only a,b] [--skip a,b] [--runs N] [--timeout-min M] [--out DIR]
 *
 * Each benchmark runs as its own process (inside the sandbox bench/run.sh made for this one), with
 * its own lab prefix, under a time limit: one that fails or runs out of time is reported as such
 * and the next one runs. The summary gives each benchmark's result, wall time and load average
 * before it, then each one's own table (its figures beside its same-run reference), as it printed
 * it. --runs is passed to the benchmarks that take it; --out keeps each one's full output (stdout
 * with its BENCH_JSON line, stderr) and a summary.json in DIR.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { positiveInteger, progress, readFlags, renderReport } from './lab-helpers';

/** The benchmarks, cheapest first; `runs` is whether it takes --runs. control-plane runs at a tenth of its full size unless asked. */
const BENCHES: readonly { name: string; runs: boolean; args?: string[] }[] = [
  { name: 'cli', runs: false },
  { name: 'scheduler', runs: false },
  { name: 'cluster', runs: true },
  { name: 'services', runs: true },
  { name: 'containers', runs: true },
  { name: 'container-commands', runs: true },
  { name: 'networks', runs: true },
  { name: 'discovery', runs: true },
  { name: 'image-build', runs: true },
  { name: 'stack', runs: true },
  { name: 'control-plane', runs: false, args: ['--tasks', '3000', '--nodes', '100'] },
];

const USAGE = 'usage: node dist/bench/all.js [--only a,b] [--skip a,b] [--runs N] [--timeout-min M] [--out DIR]';

interface Outcome {
  name: string;
  result: string;
  ok: boolean;
  ms: number;
  loadBefore: string;
  table: string[];
  json?: unknown;
}

/** The first table a benchmark printed (renderReport's: a header, a line of dashes, rows up to a blank line). */
export function firstTable(stdout: string): string[] {
  const lines = stdout.split('\n');
  const dashes = lines.findIndex((l) => /^-+(\s+-+)*$/.test(l.trim()) && l.trim().length > 0);
  if (dashes < 1) return [];
  const end = lines.findIndex((l, i) => i > dashes && l.trim() === '');
  return lines.slice(dashes - 1, end === -1 ? undefined : end);
}

function names(value: string | undefined): Set<string> | undefined {
  if (value === undefined) return undefined;
  const set = new Set(value.split(',').map((s) => s.trim()).filter(Boolean));
  for (const n of set) if (!BENCHES.some((b) => b.name === n)) throw new Error(`no benchmark named ${n}: ${BENCHES.map((b) => b.name).join(', ')}`);
  return set;
}

function runOne(name: string, args: string[], timeoutMs: number): Promise<{ code: number | null; timedOut: boolean; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(__dirname, `${name}.js`), ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      process.stdout.write(d);
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      process.stderr.write(d);
    });
    let timedOut = false;
    // On time out the whole process group goes, the benchmark's lab included; its own cleanup runs on SIGTERM first.
    const stop = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-(child.pid as number), 'SIGTERM');
      } catch {
        /* gone already */
      }
      setTimeout(() => {
        try {
          process.kill(-(child.pid as number), 'SIGKILL');
        } catch {
          /* gone */
        }
      }, 30_000).unref();
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(stop);
      resolve({ code, timedOut, stdout, stderr });
    });
  });
}

async function main(): Promise<void> {
  const flags = readFlags(process.argv.slice(2), ['--only', '--skip', '--runs', '--timeout-min', '--out'], USAGE);
  const only = names(flags.get('--only'));
  const skip = names(flags.get('--skip')) ?? new Set<string>();
  const runs = flags.has('--runs') ? positiveInteger('--runs', Number(flags.get('--runs'))) : undefined;
  const timeoutMs = positiveInteger('--timeout-min', Number(flags.get('--timeout-min') ?? 20)) * 60_000;
  const out = flags.get('--out');
  if (out) mkdirSync(out, { recursive: true });

  const chosen = BENCHES.filter((b) => (!only || only.has(b.name)) && !skip.has(b.name));
  const outcomes: Outcome[] = [];
  for (const b of chosen) {
    const args = [...(b.args ?? []), ...(b.runs && runs !== undefined ? ['--runs', String(runs)] : [])];
    const loadBefore = loadavg()[0]!.toFixed(1);
    progress(`=== ${b.name} ${args.join(' ')} (load ${loadBefore})`);
    const t0 = performance.now();
    const r = await runOne(b.name, args, timeoutMs);
    const ms = performance.now() - t0;
    const ok = r.code === 0 && !r.timedOut;
    const errLines = r.stderr.trim().split('\n').filter((l) => l && !l.startsWith('[bench '));
    const lastErr = errLines.filter((l) => l.startsWith(`bench/${b.name}:`)).at(-1) ?? errLines.find((l) => /Error\b/.test(l)) ?? errLines.at(-1) ?? '';
    const result = ok ? 'ok' : r.timedOut ? `timed out after ${timeoutMs / 60_000} min` : `failed (exit ${r.code})${lastErr ? `: ${lastErr}` : ''}`;
    const jsonLine = r.stdout.split('\n').find((l) => l.startsWith('BENCH_JSON '));
    let json: unknown;
    try {
      json = jsonLine ? JSON.parse(jsonLine.slice('BENCH_JSON '.length)) : undefined;
    } catch {
      json = undefined;
    }
    outcomes.push({ name: b.name, result, ok, ms, loadBefore, table: firstTable(r.stdout), json });
    if (out) {
      writeFileSync(join(out, `${b.name}.stdout`), r.stdout);
      writeFileSync(join(out, `${b.name}.stderr`), r.stderr);
    }
  }

  const cells = outcomes.map((o) => [o.name, o.result, `${(o.ms / 60_000).toFixed(1)} min`, o.loadBefore]);
  const sections = outcomes.flatMap((o) => (o.table.length > 0 ? ['', `${o.name}:`, ...o.table.map((l) => `  ${l}`)] : []));
  process.stdout.write(`\n${renderReport('npm run bench: every benchmark, one after the other', ['benchmark', 'result', 'time', 'load before'], cells, [0, 1], ["each benchmark's table (its figures beside its same-run reference):", ...sections])}`);
  if (out) writeFileSync(join(out, 'summary.json'), JSON.stringify(outcomes.map(({ table: _t, ...o }) => o), null, 2));
  process.exitCode = outcomes.every((o) => o.ok) ? 0 : 1;
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench/all: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  });
}
