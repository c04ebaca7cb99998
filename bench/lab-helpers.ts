/**
 * What the lab benchmarks (cluster.ts, services.ts) share: their options, summaries of samples,
 * progress lines, waiting and polling, and a lab's lifetime (destroyed in a finally, and on SIGINT
 * or SIGTERM).
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { SwarmletError } from '../services/common/errors';
import { closeApiReads } from '../test/e2e/api-reads';
import { Lab, LabOptions } from '../test/lab/lab';
import { sleep } from '../test/lab/process-tree';

export interface BenchOptions {
  readonly runs: number;
  readonly prefix: string;
  readonly keepLogs: string | undefined;
}

export interface Summary {
  n: number;
  medianMs: number;
  minMs: number;
  maxMs: number;
  samplesMs: number[];
}

/** A probe starts POLL_MS after the previous one ended; one more starts beside it each STALL_MS it hangs, up to MAX_PROBES_IN_FLIGHT. */
export const POLL_MS = 100;
export const STALL_MS = 1000;
export const MAX_PROBES_IN_FLIGHT = 3;

/**
 * A benchmark's flags: `--flag value` or `--flag=value`, each one of `flags` (the last given wins).
 * Anything else, or a flag without its value, is InvalidArgument with the usage line.
 */
export function readFlags(argv: string[], flags: readonly string[], usage: string): Map<string, string> {
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const flag = eq < 0 ? arg : arg.slice(0, eq);
    if (!flags.includes(flag)) throw new SwarmletError('InvalidArgument', `unexpected argument ${arg}; usage: ${usage}`);
    const value = eq < 0 ? argv[++i] : arg.slice(eq + 1);
    if (value === undefined) throw new SwarmletError('InvalidArgument', `${flag} needs a value; usage: ${usage}`);
    values.set(flag, value);
  }
  return values;
}

/** A positive integer flag's value, else InvalidArgument. */
export function positiveInteger(flag: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new SwarmletError('InvalidArgument', `${flag} must be a positive integer, not ${value}`);
  return value;
}

/** `--runs N`, `--prefix P`, `--keep-logs DIR` (also as `--flag=value`); `script` names the benchmark in the usage line. */
export function parseBenchArgs(argv: string[], defaults: { script: string; runs: number; prefix: string }): BenchOptions {
  const flags = readFlags(argv, ['--runs', '--prefix', '--keep-logs'], `${defaults.script} [--runs N] [--prefix P] [--keep-logs DIR]`);
  const runs = positiveInteger('--runs', Number(flags.get('--runs') ?? defaults.runs));
  return Object.freeze({ runs, prefix: flags.get('--prefix') ?? defaults.prefix, keepLogs: flags.get('--keep-logs') });
}

/**
 * parseBenchArgs' flags and `--phases a,b` (also `--phases=a,b`): which of `phases` to run
 * (default: all of them). An unknown or empty list is InvalidArgument.
 */
export function parsePhasedBenchArgs<P extends string>(argv: string[], defaults: { script: string; runs: number; prefix: string }, phases: readonly P[]): BenchOptions & { readonly phases: ReadonlySet<P> } {
  const rest: string[] = [];
  let asked: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--phases') asked = argv[++i] ?? '';
    else if (arg.startsWith('--phases=')) asked = arg.slice('--phases='.length);
    else rest.push(arg);
  }
  const opts = parseBenchArgs(rest, defaults);
  const wanted = asked === undefined ? [...phases] : asked.split(',').filter((p) => p);
  const bad = wanted.filter((p) => !phases.includes(p as P));
  if (bad.length > 0 || wanted.length === 0) throw new SwarmletError('InvalidArgument', `--phases takes a comma-separated list of ${phases.join(', ')}, not ${JSON.stringify(asked)}`);
  return Object.freeze({ ...opts, phases: new Set(wanted as P[]) });
}

/** The median of unrounded values (the mean of the middle two for an even count); NaN for none. */
export function medianOf(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length === 0 ? NaN : s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

export function summarize(samplesMs: number[]): Summary {
  if (samplesMs.length === 0) throw new SwarmletError('Internal', 'no samples to summarize');
  const sorted = [...samplesMs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  const round = (ms: number) => Math.round(ms);
  return { n: sorted.length, medianMs: round(median), minMs: round(sorted[0] as number), maxMs: round(sorted[sorted.length - 1] as number), samplesMs: samplesMs.map(round) };
}

export const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
export const firstLine = (s: string) => s.trim().split('\n')[0] ?? '';

export function ratio(ms: number, ref: number): string {
  return ref > 0 ? (ms / ref).toFixed(2) : 'n/a';
}

const benchStart = performance.now();
/** One line on stderr, stamped with the seconds since the benchmark started. */
export const progress = (msg: string) => process.stderr.write(`[bench ${((performance.now() - benchStart) / 1000).toFixed(1)}s] ${msg}\n`);

/** Calls `probe` every `intervalMs` until it returns something other than undefined; a throw counts as not yet. */
export async function waitUntil<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>, intervalMs = 200): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = firstLine((err as Error).message);
    }
    if (performance.now() > deadline) throw new SwarmletError('Unavailable', `timed out after ${seconds(timeoutMs)} waiting for ${what}${last ? `; last error: ${last}` : ''}`);
    await sleep(intervalMs);
  }
}

/**
 * Milliseconds from `t0` until a probe that returned true ended. A probe starts POLL_MS after the
 * previous one ended, and one more starts beside it when it has run for STALL_MS. A throw counts
 * as not yet.
 */
export async function pollUntil(what: string, t0: number, timeoutMs: number, probe: () => Promise<boolean>): Promise<{ ms: number; probes: number }> {
  let found: number | undefined;
  let probes = 0;
  let last = '';
  const inFlight = new Set<Promise<void>>();
  const launch = () => {
    probes++;
    const p: Promise<void> = probe()
      .then(
        (ok) => {
          if (ok && found === undefined) found = performance.now() - t0;
        },
        (err: unknown) => {
          last = firstLine((err as Error).message);
        },
      )
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  };
  try {
    launch();
    while (found === undefined) {
      if (performance.now() - t0 > timeoutMs) throw new SwarmletError('Unavailable', `timed out after ${seconds(timeoutMs)} waiting for ${what}${last ? `; last error: ${last}` : ''}`);
      await Promise.race([...inFlight, sleep(STALL_MS)]);
      if (found !== undefined) break;
      if (inFlight.size === 0) {
        await sleep(POLL_MS);
        launch();
      } else if (inFlight.size < MAX_PROBES_IN_FLIGHT) {
        launch();
      }
    }
    return { ms: found, probes };
  } finally {
    await Promise.allSettled([...inFlight]);
  }
}

/** Copies each host's daemon log and etcd log (when there is one) into `dir`. */
export function copyLabLogs(lab: Lab, dir: string): void {
  mkdirSync(dir, { recursive: true });
  for (const h of lab.hosts) {
    for (const [from, to] of [[h.logFile, `${h.name}.log`], [join(h.dataDir, 'etcd.log'), `${h.name}-etcd.log`]] as const) {
      if (existsSync(from)) copyFileSync(from, join(dir, to));
    }
  }
}

/**
 * Builds a lab of `hosts` hosts named by opts.prefix, runs `body` on it, and destroys it in a
 * finally; on SIGINT or SIGTERM destroys it at once and exits 130, whatever the body was doing.
 * When `body` fails, the end of every host's log goes to stderr; with opts.keepLogs the logs are
 * copied there first. `labOptions` adds to the lab's (for example its daemons' insecureRegistries).
 */
export async function withLab(opts: BenchOptions, hosts: number, body: (lab: Lab) => Promise<void>, labOptions: Partial<LabOptions> = {}): Promise<void> {
  const lab = await Lab.create({ ...labOptions, prefix: opts.prefix, hosts });
  let failed = true;
  // Set on a signal: the body then fails (its commands are killed with the lab) and must neither dump logs nor exit 1.
  let interrupted: Promise<void> | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) return;
    progress(`${sig}: destroying lab ${opts.prefix}`);
    interrupted = lab.destroy().finally(() => {
      progress(`lab ${opts.prefix} destroyed`);
      process.exit(130);
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await body(lab);
    failed = false;
  } finally {
    if (interrupted) await interrupted;
    if (failed) for (const h of lab.hosts) process.stderr.write(`--- last lines of ${h.logFile}:\n${lab.logTail(h, 20)}\n`);
    if (opts.keepLogs) {
      copyLabLogs(lab, opts.keepLogs);
      progress(`logs copied to ${opts.keepLogs}`);
    }
    await lab.destroy();
    closeApiReads();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    progress(`lab ${opts.prefix} destroyed`);
  }
}

/** The entry point the lab benchmarks share: bad arguments exit 2, a failed run exits 1. */
export function benchMain<O extends BenchOptions>(name: string, parse: (argv: string[]) => O, run: (opts: O) => Promise<void>): void {
  let opts: O;
  try {
    opts = parse(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`bench/${name}: ${(err as Error).message}\n`);
    process.exit(2);
  }
  run(opts).catch((err: unknown) => {
    process.stderr.write(`bench/${name}: failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}

/**
 * A benchmark's report: its title, a table of figures (columns padded to width; those in
 * `leftAligned` padded on the right, numbers on the left) and notes below.
 */
export function renderReport(title: string, head: string[], cells: string[][], leftAligned: number[], notes: string[]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] as string).length)));
  const line = (c: string[]) => c.map((x, i) => (leftAligned.includes(i) ? x.padEnd(widths[i] as number) : x.padStart(widths[i] as number))).join('  ').trimEnd();
  return `${[title, '', line(head), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line), '', ...notes].join('\n')}\n`;
}
