import { spawn } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { access, mkdir, open, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { join, posix } from 'node:path';
import { sleep } from '../../services/common/backoff';
import { conflict, failedPrecondition, internal, invalidArgument, notFound } from '../../services/common/errors';
import { Logger, componentLogger } from '../../services/common/logger';
import { Task } from '../../services/gen/swarmlet/v1/types';
import { CgroupLayout, TaskCgroups, checkCgroupPath, detectCgroups } from './cgroups';
import {
  DEFAULT_PATH,
  ExecConfig,
  envValue,
  parseExecImage,
  resolveUser,
  signalOfExitCode,
  taskArgv,
  taskEnv,
  taskHostname,
  usesHostNetwork,
  wrapCommand,
} from './exec-spec';
import { readLogLines } from './log-reader';
import { ProcessRef, childrenOf, isAlive, processRef, signalProcess } from './proc';
import { Runtime, RuntimeTaskState } from './runtime';
import { INIT_SCRIPT, SHIM_NAME, SHIM_SCRIPT } from './shim';
import { renderResolvConf, usesEmbeddedDns } from '../dns/resolv-conf';

export interface ExecRuntimeOptions {
  /** One directory per task below it, e.g. <data-dir>/tasks. */
  stateDir: string;
  /** Task cgroups are <cgroupParent>/<taskId> from each hierarchy's root, e.g. 'swarmlet'. */
  cgroupParent: string;
  log: Logger;
  /** The cgroup hierarchies; detected from /sys/fs/cgroup once when not given. */
  cgroups?: CgroupLayout;
  /** How long prepare waits for the sandbox to be ready (default 10 s). */
  readyTimeoutMs?: number;
}

/** What the runtime records of a task's processes, in <stateDir>/<taskId>/state.json. */
interface ProcessState {
  shim: ProcessRef;
  /** The task's pid 1, as seen from the host; set once the sandbox is ready. */
  init?: ProcessRef;
}

const EXEC_OUTPUT_CAP = 4096;
const HOST_PATH = DEFAULT_PATH;
const TASK_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

const exists = (path: string) => access(path).then(() => true, () => false);

function checkTaskId(taskId: string): void {
  if (!TASK_ID.test(taskId)) throw invalidArgument(`task id ${JSON.stringify(taskId)} is not valid for the exec runtime`);
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw err;
  }
}

async function mtimeIso(path: string): Promise<string | undefined> {
  try {
    return (await stat(path)).mtime.toISOString();
  } catch {
    return undefined;
  }
}

/** Runs a helper to completion; rejects with its stderr on a non-zero exit. */
function run(argv: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: HOST_PATH } });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${argv[0]} exited with ${code}: ${stderr.trim()}`))));
  });
}

/**
 * Runs each task as processes in fresh pid, mount, uts, ipc and net namespaces with cgroup
 * limits, under two small sh scripts (shim.ts); a task whose only network is the built-in `host`
 * one (task.networks, as the allocator attached them) keeps the host's network namespace. Tasks
 * outlive the agent: everything re-adoption needs is in <stateDir>/<taskId>/:
 *   config.json   root, workdir, user, env, hostname, argv, hostNetwork (exec() runs health
 *                 checks the same way)
 *   state.json    the shim's and the task's pid 1's pid and start time (guards against pid reuse)
 *   start.fifo    pid 1 blocks reading it until start()
 *   ready         pid 1 has set up the namespaces; started: it let the command run
 *   status        the command's exit status (written by pid 1); exitcode: the task's (by the shim)
 *   output.log    the command's stdout and stderr, appended
 *   resolv.conf   the embedded DNS's, mounted over the root's /etc/resolv.conf (tasks that use it)
 */
export class ExecRuntime implements Runtime {
  private readonly log: Logger;
  private readonly stateDir: string;
  private cgroupsPromise?: Promise<TaskCgroups>;

  constructor(private readonly opts: ExecRuntimeOptions) {
    this.log = componentLogger(opts.log, 'exec-runtime');
    this.stateDir = opts.stateDir;
    checkCgroupPath(opts.cgroupParent);
  }

  private cgroups(): Promise<TaskCgroups> {
    this.cgroupsPromise ??= (async () => {
      const layout = this.opts.cgroups ?? (await detectCgroups());
      const cgroups = new TaskCgroups(layout, this.opts.cgroupParent);
      if (cgroups.parentDirs().length === 0) this.log.warn('no cgroup hierarchy to use: tasks run without limits');
      this.log.debug({ cgroups: layout }, 'cgroups detected');
      return cgroups;
    })();
    return this.cgroupsPromise;
  }

  private dir(taskId: string): string {
    checkTaskId(taskId);
    return join(this.stateDir, taskId);
  }

  private async readState(taskId: string): Promise<ProcessState | undefined> {
    const text = await readText(join(this.dir(taskId), 'state.json'));
    return text ? (JSON.parse(text) as ProcessState) : undefined;
  }

  private async readConfig(taskId: string): Promise<ExecConfig | undefined> {
    const text = await readText(join(this.dir(taskId), 'config.json'));
    return text ? (JSON.parse(text) as ExecConfig) : undefined;
  }

  private async readExitCode(taskId: string): Promise<number | undefined> {
    const text = await readText(join(this.dir(taskId), 'exitcode'));
    return text && /^-?\d+\s*$/.test(text) ? Number(text.trim()) : undefined;
  }

  async prepare(task: Task): Promise<void> {
    const dir = this.dir(task.id);
    const log = this.log.child({ taskId: task.id });
    const state = await this.readState(task.id);
    if (state) {
      if ((await this.readExitCode(task.id)) !== undefined) throw conflict(`task ${task.id} has already run; it cannot be prepared again`);
      if (await isAlive(state.shim)) {
        if (!state.init) await this.awaitReady(task.id, state);
        return;
      }
    }
    // Nothing, or what a prepare that did not finish left: start afresh.
    const config = await this.execConfig(task);
    await this.forget(task.id);
    const cgroups = await this.cgroups();
    try {
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'config.json'), JSON.stringify(config, null, 2));
      if (usesEmbeddedDns(task.networks ?? [])) await writeFile(join(dir, 'resolv.conf'), renderResolvConf());
      await run(['mkfifo', '-m', '0600', join(dir, 'start.fifo')]);
      const limits = task.spec?.resources?.limits;
      const procs = await cgroups.ensure(task.id, { memoryBytes: limits?.memoryBytes, nanoCpus: limits?.nanoCpus, pids: limits?.pids });
      const shim = await this.spawnShim(task.id, config, procs);
      const fresh: ProcessState = { shim };
      await writeFile(join(dir, 'state.json'), JSON.stringify(fresh));
      await this.awaitReady(task.id, fresh);
      log.info({ pid: fresh.init?.pid, root: config.root }, 'task prepared');
    } catch (err) {
      await this.forget(task.id).catch((e) => log.warn({ err: e }, 'cleaning up a failed prepare failed'));
      throw err;
    }
  }

  /** What the spec means for this task's process; refuses what cannot run, before anything is made. */
  private async execConfig(task: Task): Promise<ExecConfig> {
    const c = task.spec?.container;
    if (!c) throw invalidArgument(`task ${task.id} has no container spec`);
    const root = parseExecImage(c.image);
    const st = await stat(root).catch(() => undefined);
    if (!st?.isDirectory()) throw invalidArgument(`image ${JSON.stringify(c.image)}: ${root} does not exist or is not a directory on this node`);
    const hostPath = (p: string) => (root === '/' ? p : join(root, p));
    const argv = taskArgv(c.command, c.args);
    const hostname = taskHostname(task.id, c.hostname);
    const workdir = c.dir ? posix.normalize(c.dir) : '/';
    if (!workdir.startsWith('/')) throw invalidArgument(`workdir ${JSON.stringify(c.dir)} must be an absolute path`);
    if (!(await stat(hostPath(workdir)).catch(() => undefined))?.isDirectory()) {
      throw invalidArgument(`workdir ${workdir} does not exist in ${c.image}`);
    }
    const passwd = await readText(hostPath('/etc/passwd'));
    const group = await readText(hostPath('/etc/group'));
    const user = c.user ? resolveUser(c.user, passwd, group) : undefined;
    const home = user?.home ?? resolveUser('0', passwd, group).home;
    const env = taskEnv(c.env, hostname, home === '/' && !user ? '/root' : home);
    await this.checkExecutable(argv[0], envValue(env, 'PATH') ?? '', workdir, hostPath, c.image);
    const hostNetwork = usesHostNetwork(task.networks ?? []);
    return { root, workdir, user: user && { uid: user.uid, gid: user.gid, groups: user.groups }, env, hostname, argv, ...(hostNetwork ? { hostNetwork } : {}) };
  }

  private async checkExecutable(cmd: string, path: string, workdir: string, hostPath: (p: string) => string, image: string): Promise<void> {
    const candidates = cmd.includes('/')
      ? [posix.resolve(workdir, cmd)]
      : path.split(':').filter((d) => d.startsWith('/')).map((d) => posix.join(d, cmd));
    for (const candidate of candidates) {
      const file = hostPath(candidate);
      if ((await stat(file).catch(() => undefined))?.isFile() && (await access(file, fsConstants.X_OK).then(() => true, () => false))) return;
    }
    throw invalidArgument(`exec: ${JSON.stringify(cmd)}: executable file not found in ${cmd.includes('/') ? image : '$PATH'}`);
  }

  private async spawnShim(taskId: string, config: ExecConfig, procs: string[]): Promise<ProcessRef> {
    const dir = this.dir(taskId);
    const out = await open(join(dir, 'output.log'), 'a', 0o640);
    try {
      const child = spawn('/bin/sh', ['-c', SHIM_SCRIPT, SHIM_NAME, ...wrapCommand(config, config.argv)], {
        detached: true,
        cwd: '/',
        stdio: ['ignore', out.fd, out.fd],
        env: {
          PATH: HOST_PATH,
          SL_DIR: dir,
          SL_CGROUP_PROCS: procs.join(' '),
          SL_HOSTNAME: config.hostname,
          SL_ROOT: config.root,
          SL_INIT: INIT_SCRIPT,
          ...(config.hostNetwork ? { SL_HOST_NET: '1' } : {}),
        },
      });
      const spawned = new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', reject);
      });
      await spawned;
      child.unref();
      const ref = child.pid !== undefined ? await processRef(child.pid) : undefined;
      if (!ref) {
        const text = (await readText(join(dir, 'output.log'))) ?? '';
        throw internal(`the task's shim ended at once: ${text.trim().slice(-500)}`);
      }
      return ref;
    } finally {
      await out.close();
    }
  }

  /** Waits for pid 1 to say ready, then records its pid; on failure, says why with the end of the task's output. */
  private async awaitReady(taskId: string, state: ProcessState): Promise<void> {
    const dir = this.dir(taskId);
    const deadline = Date.now() + (this.opts.readyTimeoutMs ?? 10000);
    for (;;) {
      if (await exists(join(dir, 'ready'))) {
        const init = await this.findInit(state.shim);
        if (init) {
          state.init = init;
          await writeFile(join(dir, 'state.json'), JSON.stringify(state));
          return;
        }
      }
      if (!(await isAlive(state.shim)) || Date.now() > deadline) {
        const text = ((await readText(join(dir, 'output.log'))) ?? '').trim();
        const reason = text ? text.split('\n').slice(-3).join('; ') : 'no output';
        throw internal(`the task's sandbox did not come up${Date.now() > deadline ? ' in time' : ''}: ${reason}`);
      }
      await sleep(10);
    }
  }

  /** shim -> unshare -> the task's pid 1. */
  private async findInit(shim: ProcessRef): Promise<ProcessRef | undefined> {
    if (!(await isAlive(shim))) return undefined;
    for (const unsharePid of await childrenOf(shim.pid)) {
      for (const pid of await childrenOf(unsharePid)) {
        const ref = await processRef(pid);
        if (ref) return ref;
      }
    }
    return undefined;
  }

  async start(taskId: string): Promise<void> {
    const dir = this.dir(taskId);
    const current = await this.inspect(taskId);
    if (current.state === 'running') return;
    if (current.state === 'missing') throw notFound(`task ${taskId} is not prepared`);
    if (current.state === 'exited') throw failedPrecondition(`task ${taskId} has already exited (${current.exitCode})`);
    const deadline = Date.now() + 5000;
    // pid 1 opens the fifo just after saying ready; a non-blocking open for writing fails (ENXIO) until it has.
    for (;;) {
      try {
        const fifo = await open(join(dir, 'start.fifo'), fsConstants.O_WRONLY | fsConstants.O_NONBLOCK);
        try {
          await fifo.write('start\n');
        } finally {
          await fifo.close();
        }
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENXIO' || Date.now() > deadline) throw internal(`task ${taskId} could not be started`, err);
        await sleep(10);
      }
    }
    // pid 1 marks "started" before it runs the command, which may end at once: look again after an exit.
    while (!(await exists(join(dir, 'started')))) {
      const ended = (await this.inspect(taskId)).state === 'exited';
      if (await exists(join(dir, 'started'))) break;
      if (ended || Date.now() > deadline) throw internal(`task ${taskId} did not start`);
      await sleep(5);
    }
    this.log.info({ taskId }, 'task started');
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

  async stop(taskId: string, graceMs: number): Promise<void> {
    const state = await this.readState(taskId);
    const cgroups = await this.cgroups();
    const log = this.log.child({ taskId });
    if (state) {
      const ended = async () => (await this.readExitCode(taskId)) !== undefined || !(await isAlive(state.shim));
      const current = await this.inspect(taskId);
      if (current.state === 'running' && (await isAlive(state.init))) {
        signalProcess(state.init!.pid, 'SIGTERM');
        if (!(await waitUntil(ended, graceMs))) log.info({ graceMs }, 'task did not stop within its grace period; killing it');
      }
      if (!(await ended())) {
        // pid 1 of a pid namespace dies only of SIGKILL from outside, and takes everything in it along.
        if (await isAlive(state.init)) signalProcess(state.init!.pid, 'SIGKILL');
        if (!(await waitUntil(ended, 5000))) log.warn('the task\'s shim did not finish after its pid 1 was killed');
      }
    }
    if (!(await cgroups.killAll(taskId, 5000))) log.warn('processes are left in the task\'s cgroup');
    if (state && (await isAlive(state.shim))) {
      signalProcess(state.shim.pid, 'SIGKILL');
      await waitUntil(async () => !(await isAlive(state.shim)), 2000);
    }
  }

  async remove(taskId: string): Promise<void> {
    await this.forget(taskId);
    this.log.info({ taskId }, 'task removed');
  }

  /** Kills whatever the task still has, removes its cgroup and its state directory. */
  private async forget(taskId: string): Promise<void> {
    const dir = this.dir(taskId);
    const state = await this.readState(taskId);
    if (state?.init && (await isAlive(state.init))) signalProcess(state.init.pid, 'SIGKILL');
    const cgroups = await this.cgroups();
    await cgroups.killAll(taskId, 5000);
    if (state && (await isAlive(state.shim))) signalProcess(state.shim.pid, 'SIGKILL');
    await cgroups.remove(taskId);
    await rm(dir, { recursive: true, force: true });
  }

  async list(): Promise<string[]> {
    const ids = new Set<string>();
    try {
      for (const entry of await readdir(this.stateDir, { withFileTypes: true })) {
        if (entry.isDirectory() && TASK_ID.test(entry.name)) ids.add(entry.name);
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    for (const id of await (await this.cgroups()).list()) if (TASK_ID.test(id)) ids.add(id);
    return [...ids].sort();
  }

  async exec(taskId: string, argv: string[], timeoutMs: number): Promise<{ exitCode: number; output: string }> {
    if (argv.length === 0) throw invalidArgument('exec needs a command');
    const state = await this.readState(taskId);
    const config = await this.readConfig(taskId);
    if (!state?.init || !config || !(await isAlive(state.init))) throw failedPrecondition(`task ${taskId} is not running`);
    const nsenter = ['nsenter', `--target=${state.init.pid}`, '--pid', '--mount', '--uts', '--ipc', '--net', '--', ...wrapCommand(config, argv)];
    return new Promise((resolve, reject) => {
      // Its own process group, so a timeout kills the command nsenter forked into the namespace too.
      const child = spawn(nsenter[0], nsenter.slice(1), { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: HOST_PATH } });
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
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
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

  async *logs(taskId: string, opts: { tail: number; follow: boolean; signal: AbortSignal }): AsyncIterable<string> {
    const file = join(this.dir(taskId), 'output.log');
    if (!(await exists(file))) throw notFound(`task ${taskId} has no logs on this node`);
    yield* readLogLines(file, opts);
  }
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, everyMs = 20): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(Math.min(everyMs, Math.max(1, deadline - Date.now())));
  }
}
