/**
 * What the exec and oci runtimes share: a task is a state directory, <stateDir>/<taskId>/, and
 * processes under a shim that outlive the agent. The files both keep there:
 *   state.json    the shim's and the task's pid 1's pid and start time (guards against pid reuse)
 *   started       pid 1 let the command run (its mtime is the start time)
 *   exitcode      the task's exit code, written by the shim when the task ends
 *   output.log    the command's stdout and stderr, appended as records (log-plans.ts) by the
 *                 shim (shim-program.ts); a link to the container's own log when prepare is given one
 * ShimTasks reads them, inspects, stops and forgets tasks, lists and tails them; each runtime
 * keeps what differs (how a task is made, started and exec'd into).
 */
import { spawn } from 'node:child_process';
import { constants as fsConstants, watch } from 'node:fs';
import { access, mkdir, open, readFile, readdir, rm, stat, symlink } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { dirname, join } from 'node:path';
import { sleep } from '../../services/common/backoff';
import { failedPrecondition, internal, invalidArgument, notFound } from '../../services/common/errors';
import type { Logger } from '../../services/common/logger';
import { CgroupLayout, TaskCgroups, checkCgroupPath, detectCgroups } from './cgroups';
import { DEFAULT_PATH, signalOfExitCode } from './exec-spec';
import { readLogRecords } from './log-reader';
import { LogRecord, parseLogRecord } from './log-plans';
import { SHIM_NAME, SHIM_PROGRAM } from './shim-program';
import { ProcessRef, isAlive, parentOf, processRef, signalProcess } from './proc';
import type { LogsOptions, RuntimeTaskState, TerminalSession } from './runtime';
import { spawner } from './spawner';
import { attachTaskDir } from './terminal';

/** The PATH helpers run with. */
export const HOST_PATH = DEFAULT_PATH;
/** How much output exec() keeps. */
export const EXEC_OUTPUT_CAP = 4096;
/** `sh -c` script that joins the cgroup.procs files in $SL_CGROUP_PROCS, then execs its arguments: exec'd commands count in their task's cgroup. */
export const JOIN_CGROUP_SCRIPT = 'for f in $SL_CGROUP_PROCS; do echo $$ > "$f" || exit 125; done; exec "$@"';

/** A task's stdin (tty or open_stdin), in its state directory; its shim holds it open for reading and writing. */
export const STDIN_FIFO = 'stdin.fifo';
const TASK_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** What a runtime records of a task's processes, in state.json. */
export interface ProcessState {
  shim: ProcessRef;
  /** The task's pid 1, as seen from the host; set once the sandbox is ready. */
  init?: ProcessRef;
}

export const exists = (path: string) => access(path).then(() => true, () => false);

/** A file's text, or undefined when it (or a directory on its path) is not there. */
export async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return undefined;
    throw err;
  }
}

export async function mtimeIso(path: string): Promise<string | undefined> {
  try {
    return (await stat(path)).mtime.toISOString();
  } catch {
    return undefined;
  }
}

export async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, everyMs = 20): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(Math.min(everyMs, Math.max(1, deadline - Date.now())));
  }
}

/**
 * Runs `cmd` (in its own process group) for exec(): its exit code and the first EXEC_OUTPUT_CAP
 * bytes of its output; past `timeoutMs`, `kill` runs (default: SIGKILL to the group) and the
 * result says it timed out.
 */
export function runCapped(taskId: string, cmd: string[], env: NodeJS.ProcessEnv, timeoutMs: number, kill?: (groupKill: () => void) => void): Promise<{ exitCode: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd[0], cmd.slice(1), { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env });
    const chunks: Buffer[] = [];
    let size = 0;
    const collect = (d: Buffer) => {
      if (size >= EXEC_OUTPUT_CAP) return;
      const part = d.subarray(0, EXEC_OUTPUT_CAP - size);
      chunks.push(part);
      size += part.length;
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const groupKill = () => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    };
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (kill) kill(groupKill);
      else groupKill();
    }, timeoutMs);
    timer.unref();
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(internal(`exec in task ${taskId} failed: ${err.message}`, err));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const output = Buffer.concat(chunks).toString('utf8');
      if (timedOut) return resolve({ exitCode: -1, output: `${output}${output && !output.endsWith('\n') ? '\n' : ''}timed out after ${timeoutMs} ms` });
      const signalNumber = signal ? (osConstants.signals as Record<string, number>)[signal] ?? 0 : 0;
      resolve({ exitCode: code ?? 128 + signalNumber, output });
    });
  });
}

export interface ShimTasksOptions {
  stateDir: string;
  /** The runtime's name, for messages: exec or oci. */
  runtime: string;
  /** Task cgroups are <cgroupParent>/<taskId> from each hierarchy's root. */
  cgroupParent: string;
  /** The cgroup hierarchies; detected from /sys/fs/cgroup once when not given. */
  cgroupLayout?: CgroupLayout;
  log: Logger;
}

/** The task state directories of one runtime (see the top of this file). */
export class ShimTasks {
  private cgroupsPromise?: Promise<TaskCgroups>;

  constructor(private readonly opts: ShimTasksOptions) {
    checkCgroupPath(opts.cgroupParent);
  }

  /** The runtime's task cgroups, the hierarchies detected on first use. */
  cgroups(): Promise<TaskCgroups> {
    this.cgroupsPromise ??= (async () => {
      const layout = this.opts.cgroupLayout ?? (await detectCgroups());
      const cgroups = new TaskCgroups(layout, this.opts.cgroupParent);
      if (cgroups.parentDirs().length === 0) this.opts.log.warn('no cgroup hierarchy to use: tasks run without limits');
      this.opts.log.debug({ cgroups: layout }, 'cgroups detected');
      return cgroups;
    })();
    return this.cgroupsPromise;
  }

  dir(taskId: string): string {
    if (!TASK_ID.test(taskId)) throw invalidArgument(`task id ${JSON.stringify(taskId)} is not valid for the ${this.opts.runtime} runtime`);
    return join(this.opts.stateDir, taskId);
  }

  /**
   * Starts a task's shim (shim-program.ts), which runs `argv` as the task's first process: in a
   * session of its own (so it outlives the agent), the task's output appended to output.log (a
   * link to `logFile` when given) as records, with PATH and SL_DIR set besides `env`. Returns it
   * once it runs.
   */
  async spawnShim(taskId: string, argv: string[], env: Record<string, string>, logFile?: string): Promise<ProcessRef> {
    const dir = this.dir(taskId);
    const log = join(dir, 'output.log');
    if (logFile) {
      await mkdir(dirname(logFile), { recursive: true });
      await rm(log, { force: true });
      await symlink(logFile, log);
    }
    // Through the spawning helper: a spawn from here would hold the daemon's event loop until the shim has exec'ed.
    const pid = await spawner
      .spawnDetached(['perl', '-e', SHIM_PROGRAM, SHIM_NAME, ...argv], { cwd: '/', outFile: log, env: { PATH: HOST_PATH, SL_DIR: dir, ...env } })
      .catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') throw failedPrecondition('this node cannot run tasks: perl is missing (Debian\'s perl-base)', err);
        throw err;
      });
    const ref = await processRef(pid);
    if (!ref) throw internal(`the task's shim ended at once: ${(await this.outputTail(taskId)).slice(-500)}`);
    return ref;
  }

  /** The last lines of the task's output, joined with '; ' (what a task that did not come up said). */
  async outputTail(taskId: string, lines = 3): Promise<string> {
    const text = (await readText(join(this.dir(taskId), 'output.log'))) ?? '';
    return text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .slice(-lines)
      .map((l) => parseLogRecord(l).text.trim())
      .join('; ');
  }

  async readState(taskId: string): Promise<ProcessState | undefined> {
    const text = await readText(join(this.dir(taskId), 'state.json'));
    return text ? (JSON.parse(text) as ProcessState) : undefined;
  }

  async readExitCode(taskId: string): Promise<number | undefined> {
    const text = await readText(join(this.dir(taskId), 'exitcode'));
    return text && /^-?\d+\s*$/.test(text) ? Number(text.trim()) : undefined;
  }

  async inspect(taskId: string): Promise<RuntimeTaskState> {
    const dir = this.dir(taskId);
    const state = await this.readState(taskId);
    if (!state) return { state: 'missing' };
    const startedAt = await mtimeIso(join(dir, 'started'));
    const pid = state.init?.pid;
    let exitCode = await this.readExitCode(taskId);
    if (exitCode === undefined) {
      if ((await isAlive(state.shim)) || (await isAlive(state.init))) {
        return startedAt ? { state: 'running', pid, startedAt } : { state: 'created', pid };
      }
      // The shim may have ended between the two looks; if not, something killed it and the task is lost.
      exitCode = (await this.readExitCode(taskId)) ?? -1;
    }
    const oomKills = await (await this.cgroups()).oomKills(taskId);
    const finishedAt = await mtimeIso(join(dir, 'exitcode'));
    const signal = signalOfExitCode(exitCode, osConstants.signals as unknown as Record<string, number>);
    return {
      state: 'exited',
      pid,
      exitCode,
      oomKilled: (oomKills ?? 0) > 0,
      ...(signal ? { signal } : {}),
      ...(startedAt ? { startedAt } : {}),
      ...(finishedAt ? { finishedAt } : {}),
    };
  }

  /**
   * Lets a prepared task's pid 1 go on by writing to its start fifo, which it opens once it is ready
   * to be started (a non-blocking open for writing fails with ENXIO until then). false: it runs
   * already.
   */
  async release(taskId: string, deadline: number): Promise<boolean> {
    const current = await this.inspect(taskId);
    if (current.state === 'running') return false;
    if (current.state === 'missing') throw notFound(`task ${taskId} is not prepared`);
    if (current.state === 'exited') throw failedPrecondition(`task ${taskId} has already exited (${current.exitCode})`);
    for (;;) {
      try {
        const fifo = await open(join(this.dir(taskId), 'start.fifo'), fsConstants.O_WRONLY | fsConstants.O_NONBLOCK);
        try {
          await fifo.write('start\n');
        } finally {
          await fifo.close();
        }
        return true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENXIO' || Date.now() > deadline) throw internal(`task ${taskId} could not be started`, err);
        if ((await this.inspect(taskId)).state === 'exited') throw internal(`task ${taskId} ended before it was started`);
        await sleep(10);
      }
    }
  }

  /** `stopSignal` to pid 1, SIGKILL after `graceMs`, then whatever is left in the task's cgroup. */
  async stop(taskId: string, graceMs: number, stopSignal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const state = await this.readState(taskId);
    const cgroups = await this.cgroups();
    const log = this.opts.log.child({ taskId });
    if (state) {
      const ended = async () => (await this.readExitCode(taskId)) !== undefined || !(await isAlive(state.shim));
      const current = await this.inspect(taskId);
      if (current.state === 'running' && (await isAlive(state.init))) {
        signalProcess(state.init!.pid, stopSignal);
        if (!(await waitUntil(ended, graceMs))) log.info({ graceMs }, 'task did not stop within its grace period; killing it');
      }
      if (!(await ended())) {
        // pid 1 of a pid namespace dies only of SIGKILL from outside, and takes everything in it along.
        if (await isAlive(state.init)) await this.killInit(state.init!);
        if (!(await waitUntil(ended, 5000))) log.warn('the task\'s shim did not finish after its pid 1 was killed');
      }
    }
    if (!(await cgroups.killAll(taskId, 5000))) log.warn('processes are left in the task\'s cgroup');
    if (state && (await isAlive(state.shim))) {
      signalProcess(state.shim.pid, 'SIGKILL');
      await waitUntil(async () => !(await isAlive(state.shim)), 2000);
    }
  }

  /**
   * SIGKILL to the task's pid 1, and first to its parent when that is the exec runtime's `unshare
   * --fork`: woken by its child's death by SIGKILL, util-linux 2.38's says "sigprocmask unblock
   * failed" on the task's stderr, so in its log. The shim records 137 all the same.
   */
  private async killInit(init: ProcessRef): Promise<void> {
    const parent = await parentOf(init.pid);
    if (parent?.comm === 'unshare') signalProcess(parent.pid, 'SIGKILL');
    signalProcess(init.pid, 'SIGKILL');
  }

  /**
   * Calls `onExit` when the shim writes the task's exit code (inotify on its state directory), so
   * an exit is seen at once rather than at the next inspection. Returns the way to stop watching;
   * a task without a state directory here is not watched.
   */
  watchExit(taskId: string, onExit: () => void): () => void {
    try {
      const watcher = watch(this.dir(taskId), { persistent: false }, (_event, file) => {
        if (file === 'exitcode') onExit();
      });
      watcher.on('error', () => undefined);
      return () => watcher.close();
    } catch {
      return () => undefined;
    }
  }

  /** Kills whatever the task still has and removes its cgroup; the state directory stays. */
  async kill(taskId: string): Promise<void> {
    const state = await this.readState(taskId);
    if (state?.init && (await isAlive(state.init))) await this.killInit(state.init);
    const cgroups = await this.cgroups();
    await cgroups.killAll(taskId, 5000);
    if (state && (await isAlive(state.shim))) {
      signalProcess(state.shim.pid, 'SIGKILL');
      await waitUntil(async () => !(await isAlive(state.shim)), 2000);
    }
    await cgroups.remove(taskId);
  }

  async removeDir(taskId: string): Promise<void> {
    await rm(this.dir(taskId), { recursive: true, force: true });
  }

  /** The tasks with a state directory or a cgroup. */
  async list(): Promise<string[]> {
    const ids = new Set<string>();
    try {
      for (const entry of await readdir(this.opts.stateDir, { withFileTypes: true })) {
        if (entry.isDirectory() && TASK_ID.test(entry.name)) ids.add(entry.name);
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    for (const id of await (await this.cgroups()).list()) if (TASK_ID.test(id)) ids.add(id);
    return [...ids].sort();
  }

  /** The task's main process's terminal or stdin, and its output from now on (terminal.ts). */
  async attach(taskId: string, tty: boolean): Promise<TerminalSession> {
    const dir = this.dir(taskId);
    const state = await this.readState(taskId);
    if (!state) throw notFound(`task ${taskId} is not on this node`);
    if (!state.init) throw failedPrecondition(`task ${taskId} is not running: you cannot attach to a stopped task`);
    const fifo = join(dir, STDIN_FIFO);
    return attachTaskDir(taskId, { log: join(dir, 'output.log'), ...((await exists(fifo)) ? { stdinFifo: fifo } : {}) }, tty, state.init.pid, () => this.inspect(taskId));
  }

  async *logs(taskId: string, opts: LogsOptions): AsyncIterable<LogRecord> {
    const file = join(this.dir(taskId), 'output.log');
    if (!(await exists(file))) throw notFound(`task ${taskId} has no logs on this node`);
    yield* readLogRecords(file, opts);
  }
}
