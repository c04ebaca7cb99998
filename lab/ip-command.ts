/**
 * The lab's only way to touch the kernel: the `ip` command of iproute2, run with execFile.
 *
 * `ip netns add` is used (rather than unshare + our own bind mount) because it manages the
 * netns bind mounts under /run/netns itself: it makes that directory a shared mount, binds the
 * namespace file there, and `ip netns del` undoes both. Every other tool (`ip netns exec`,
 * `ip -n`, `ip netns pids`) then finds the namespace by name.
 */
import { execFile } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { SwarmletError } from '../services/common/errors';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: Record<string, string>;
  timeoutMs?: number;
  /** Written to the command's stdin, which is then closed (else stdin is left open and empty). */
  input?: string;
  /** The command's working directory. Default: this process's. */
  cwd?: string;
}

/** Exit code reported when a command was killed for running past its time limit (as timeout(1) does). */
export const TIMED_OUT_CODE = 124;

/** Runs a command and reports how it ended; never rejects on a non-zero exit, only when it cannot be started. */
export function runCommand(argv: string[], opts: RunOptions = {}): Promise<CommandResult> {
  const [file, ...args] = argv;
  if (!file) return Promise.reject(new SwarmletError('InvalidArgument', 'empty command'));
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      {
        env: opts.env ? { ...process.env, ...opts.env } : process.env,
        cwd: opts.cwd,
        timeout: opts.timeoutMs ?? 0,
        killSignal: 'SIGKILL',
        maxBuffer: 64 * 1024 * 1024,
        encoding: 'utf8',
      },
      (err, stdout, stderr) => {
        if (!err) return resolve({ code: 0, stdout, stderr });
        const e = err as NodeJS.ErrnoException & { code?: number | string; killed?: boolean; signal?: string | null };
        if (typeof e.code === 'string') {
          return reject(new SwarmletError('FailedPrecondition', `cannot run ${file}: ${e.message}`, { cause: err }));
        }
        if (e.killed && opts.timeoutMs) {
          return resolve({ code: TIMED_OUT_CODE, stdout, stderr: `${stderr}[lab] ${file} timed out after ${opts.timeoutMs} ms\n` });
        }
        const code = typeof e.code === 'number' ? e.code : 128 + signalNumber(e.signal);
        resolve({ code, stdout, stderr });
      },
    );
    if (opts.input !== undefined) {
      child.stdin?.on('error', () => undefined);
      child.stdin?.end(opts.input);
    }
  });
}

function signalNumber(signal: string | null | undefined): number {
  return signal ? (osConstants.signals[signal as NodeJS.Signals] ?? 0) : 0;
}

/** Runs `ip [-n netns] args...`; rejects with ip's own message when it fails. */
export async function ip(args: string[], netns?: string): Promise<string> {
  const argv = netns ? ['ip', '-n', netns, ...args] : ['ip', ...args];
  const r = await runCommand(argv, { timeoutMs: 15_000 });
  if (r.code !== 0) {
    throw new SwarmletError('Internal', `${argv.join(' ')}: ${r.stderr.trim() || `exit ${r.code}`}`);
  }
  return r.stdout;
}

/** Names of all named network namespaces (`ip netns list` prints `name (id: N)`). */
export async function listNetns(): Promise<string[]> {
  const out = await ip(['netns', 'list']);
  return out
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[0] ?? '')
    .filter((name) => name.length > 0);
}

/** Pids of every process whose network namespace is `netns`; empty when the namespace is gone. */
export async function netnsPids(netns: string): Promise<number[]> {
  const r = await runCommand(['ip', 'netns', 'pids', netns], { timeoutMs: 15_000 });
  if (r.code !== 0) return [];
  return r.stdout
    .split('\n')
    .map((s) => Number.parseInt(s.trim(), 10))
    .filter((n) => Number.isInteger(n) && n > 0);
}

/** Deletes a named namespace; a missing one is fine (idempotent). */
export async function deleteNetns(netns: string): Promise<void> {
  const r = await runCommand(['ip', 'netns', 'del', netns], { timeoutMs: 15_000 });
  if (r.code !== 0 && (await listNetns()).includes(netns)) {
    throw new SwarmletError('Internal', `ip netns del ${netns}: ${r.stderr.trim()}`);
  }
}
