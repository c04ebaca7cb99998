/**
 * The I/O of terminals (terminal-plans.ts says how they work): exec sessions as child processes
 * of the agent, attach to a task's main process through its state directory (output.log's records
 * followed from its end, stdout and stderr apart without a tty, stdin.fifo written to, the pty's size set on the slave), so an attach needs
 * nothing the daemon would lose when it restarts.
 */
import { spawn } from 'node:child_process';
import { constants as fsConstants, watch } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { PassThrough, Readable, Writable } from 'node:stream';
import { sleep } from '../../services/common/backoff';
import { failedPrecondition, internal } from '../../services/common/errors';
import { DEFAULT_PATH as HOST_PATH } from './exec-spec';
import { childrenOf, signalProcess } from './proc';
import type { RuntimeTaskState, TerminalSession, TerminalSize } from './runtime';
import { LOG_PREFIX_LENGTH, parseLogPrefix } from './log-plans';
import { isPtySlave, planExitCode, sttySizeArgs } from './terminal-plans';

const FOLLOW_POLL_MS = 100;

function stty(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('stty', args, { stdio: 'ignore', env: { PATH: HOST_PATH } });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`stty exited with ${code}`))));
  });
}
const MAX_TREE = 256;

/**
 * Sets the window size of every pty that a process of the tree under `rootPid` (itself included)
 * has as its stdin: the kernel then sends SIGWINCH to each pty's foreground process group. An
 * outer pty (script's, around crun's own) gets it too, which does no harm. Returns how many.
 */
export async function resizeTree(rootPid: number, size: TerminalSize): Promise<number> {
  const args = sttySizeArgs(size);
  const seen = new Set<number>();
  const queue = [rootPid];
  for (let i = 0; i < queue.length && queue.length < MAX_TREE; i += 1) {
    const pid = queue[i];
    const fd0 = `/proc/${pid}/fd/0`;
    const st = await stat(fd0).catch(() => undefined);
    if (st?.isCharacterDevice() && isPtySlave(st.rdev) && !seen.has(st.rdev)) {
      seen.add(st.rdev);
      // The process may have gone since: a pty that went needs no size.
      await stty(['-F', fd0, ...args]).catch(() => seen.delete(st.rdev));
    }
    queue.push(...(await childrenOf(pid).catch(() => [])));
  }
  return seen.size;
}

/** The bytes appended to `file` from its current end on, until the signal aborts (then what is left is read first). */
export async function followFile(file: string, signal: AbortSignal): Promise<Readable> {
  // Where "now" is, before the caller writes anything that could be answered.
  const fh = await open(file, 'r');
  let pos = (await fh.stat()).size;
  async function* follow(): AsyncGenerator<Buffer> {
    const watcher = watch(file, { persistent: false });
    let wake: (() => void) | undefined;
    watcher.on('change', () => wake?.());
    watcher.on('error', () => undefined);
    const onAbort = () => wake?.();
    signal.addEventListener('abort', onAbort);
    try {
      const buf = Buffer.alloc(64 * 1024);
      for (;;) {
        const aborted = signal.aborted;
        const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
        if (bytesRead > 0) {
          pos += bytesRead;
          yield Buffer.from(buf.subarray(0, bytesRead));
          continue;
        }
        if (aborted) return;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, FOLLOW_POLL_MS);
          timer.unref();
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      watcher.close();
      await fh.close();
    }
  }
  return Readable.from(follow(), { objectMode: false });
}

/**
 * A task's output from the end of its output.log on, as the process wrote it: the records' text,
 * each to its stream (with a tty, all to stdout); both end when the signal aborts.
 */
export async function followOutput(file: string, signal: AbortSignal, tty: boolean): Promise<{ stdout: Readable; stderr?: Readable }> {
  const raw = await followFile(file, signal);
  const stdout = new PassThrough();
  const stderr = tty ? undefined : new PassThrough();
  let pending: Buffer = Buffer.alloc(0);
  raw.on('data', (chunk: Buffer) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    let nl: number;
    while ((nl = pending.indexOf(0x0a)) >= 0) {
      const line = pending.subarray(0, nl);
      pending = pending.subarray(nl + 1);
      const p = parseLogPrefix(line.subarray(0, LOG_PREFIX_LENGTH).toString('latin1'));
      const text = p ? line.subarray(LOG_PREFIX_LENGTH) : line;
      const data = p?.partial ? text : Buffer.concat([text, Buffer.from('\n')]);
      (p?.stream === 'stderr' && stderr ? stderr : stdout).write(data);
    }
  });
  raw.on('end', () => {
    stdout.end();
    stderr?.end();
  });
  raw.on('error', (err) => {
    stdout.destroy(err);
    stderr?.destroy(err);
  });
  return { stdout, ...(stderr ? { stderr } : {}) };
}

/** A Writable to a fifo that a task's shim holds open (so the open never waits), or one that drops everything. */
export async function fifoWriter(fifo: string | undefined): Promise<Writable> {
  if (!fifo) return new Writable({ write: (_chunk, _enc, cb) => cb() });
  const fh = await open(fifo, fsConstants.O_WRONLY);
  return new Writable({
    write: (chunk: Buffer, _enc, cb) => void fh.write(chunk).then(() => cb(), (err: Error) => cb(err)),
    final: (cb) => void fh.close().then(() => cb(), () => cb()),
    destroy: (_err, cb) => void fh.close().then(() => cb(null), () => cb(null)),
  });
}

/**
 * Runs `cmd` (its own process group) as an exec session: its stdin, stdout and stderr as pipes
 * (with `tty`, stderr is only `script`'s own, and goes with stdout). close() sends SIGTERM to the
 * group, then SIGKILL a second later: a shell on a pty ignores SIGTERM but goes when the pty's
 * master does.
 */
export interface SpawnSessionHooks {
  /** Processes of the session outside the spawned tree (crun exec's command, which the container's pid 1 reaps): resized and killed with it. */
  pids?: () => Promise<number[]>;
  onEnd?: () => void;
}

export async function spawnSession(taskId: string, cmd: string[], env: NodeJS.ProcessEnv, tty: boolean, hooks: SpawnSessionHooks = {}): Promise<TerminalSession> {
  const child = spawn(cmd[0], cmd.slice(1), { detached: true, stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: HOST_PATH, ...env } });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (err) => reject(internal(`exec in task ${taskId} failed: ${err.message}`, err)));
  });
  child.stdin.on('error', () => undefined);
  let stdout: Readable = child.stdout;
  let stderr: Readable | undefined = child.stderr;
  if (tty) {
    const merged = new PassThrough();
    let open = 2;
    const done = () => (open -= 1) === 0 && merged.end();
    child.stdout.on('data', (d: Buffer) => merged.write(d)).on('end', done);
    child.stderr.on('data', (d: Buffer) => merged.write(d)).on('end', done);
    stdout = merged;
    stderr = undefined;
  }
  let ended = false;
  const exited = new Promise<number>((resolve) => {
    child.once('close', (code, signal) => {
      ended = true;
      hooks.onEnd?.();
      resolve(planExitCode(code, signal ? (osConstants.signals as Record<string, number>)[signal] : undefined));
    });
  });
  const signalGroup = (sig: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, sig);
    } catch {
      /* gone */
    }
  };
  return {
    tty,
    stdin: child.stdin,
    stdout,
    ...(stderr ? { stderr } : {}),
    resize: async (size) => {
      if (!tty || ended) return;
      for (const pid of [child.pid!, ...((await hooks.pids?.()) ?? [])]) await resizeTree(pid, size);
    },
    exited,
    close: () => {
      if (ended) return;
      void hooks.pids?.().then((pids) => pids.forEach((pid) => signalProcess(pid, 'SIGKILL')), () => undefined);
      signalGroup('SIGTERM');
      const timer = setTimeout(() => !ended && signalGroup('SIGKILL'), 1000);
      timer.unref();
    },
  };
}

/** Waits until `check` says the process ended, polling; resolves with what it returned. */
export async function pollExit(check: () => Promise<number | undefined>, signal: AbortSignal, everyMs = 200): Promise<number> {
  for (;;) {
    const code = await check();
    if (code !== undefined) return code;
    if (signal.aborted) return -1;
    await sleep(everyMs);
  }
}

/**
 * docker attach to a task's main process, through its state directory: the output appended to
 * output.log from now on (stdout and stderr apart without a tty), stdin.fifo (there when the task has a tty or open_stdin; the shim holds
 * it open), and the pty of the process tree under the task's pid 1. Ends when the task does.
 */
export async function attachTaskDir(taskId: string, files: { log: string; stdinFifo?: string }, tty: boolean, initPid: number, inspect: () => Promise<RuntimeTaskState>): Promise<TerminalSession> {
  const current = await inspect();
  // A created one is held before its command: attaching then misses none of its output (run -it).
  if (current.state !== 'running' && current.state !== 'created') throw failedPrecondition(`task ${taskId} is not running: you cannot attach to a stopped task`);
  const ac = new AbortController();
  const { stdout, stderr } = await followOutput(files.log, ac.signal, tty);
  const stdin = await fifoWriter(files.stdinFifo);
  stdin.on('error', () => undefined);
  const exited = pollExit(async () => {
    const s = await inspect();
    if (s.state === 'exited') return s.exitCode ?? -1;
    return s.state === 'missing' ? -1 : undefined;
  }, ac.signal).then((code) => {
    ac.abort();
    return code;
  });
  return {
    tty,
    stdin,
    stdout,
    ...(stderr ? { stderr } : {}),
    resize: async (size) => {
      // A task that has just started may not have made its pty yet: look again for a moment.
      for (let i = 0; i < 20 && !ac.signal.aborted; i += 1) {
        if ((await resizeTree(initPid, size)) > 0) return;
        await sleep(50);
      }
    },
    exited,
    close: () => {
      ac.abort();
      stdin.destroy();
    },
  };
}
