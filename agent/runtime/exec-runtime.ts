import { constants as fsConstants } from 'node:fs';
import { access, mkdir, stat, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { sleep } from '../../services/common/backoff';
import { conflict, failedPrecondition, internal, invalidArgument } from '../../services/common/errors';
import { Logger, componentLogger } from '../../services/common/logger';
import { Task } from '../../services/gen/swarmlet/v1/types';
import { CgroupLayout, TaskCgroups } from './cgroups';
import {
  ExecConfig,
  envValue,
  parseExecImage,
  resolveUser,
  taskArgv,
  taskEnv,
  taskHostname,
  renderExecFileMounts,
  usesHostNetwork,
  wrapCommand,
} from './exec-spec';
import { netnsOps } from './netns-ops';
import { ProcessRef, childrenOf, isAlive, processRef } from './proc';
import { ExecSessionOptions, LogsOptions, PrepareOptions, Runtime, RuntimeTaskState, TerminalSession } from './runtime';
import type { LogRecord } from './log-plans';
import { HOST_PATH, JOIN_CGROUP_SCRIPT, ProcessState, ShimTasks, exists, readText, runCapped } from './shim-tasks';
import { spawnSession } from './terminal';
import { planScriptArgv } from './terminal-plans';
import { planInitArgv } from './shim';
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

/**
 * Runs each task as processes in fresh pid, mount, uts, ipc and net namespaces with cgroup
 * limits, under its shim (shim-program.ts) and a small sh script as its pid 1 (shim.ts); a task whose only network is the built-in `host`
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
  private readonly tasks: ShimTasks;

  constructor(private readonly opts: ExecRuntimeOptions) {
    this.log = componentLogger(opts.log, 'exec-runtime');
    this.tasks = new ShimTasks({ stateDir: opts.stateDir, runtime: 'exec', cgroupParent: opts.cgroupParent, cgroupLayout: opts.cgroups, log: this.log });
  }

  private cgroups(): Promise<TaskCgroups> {
    return this.tasks.cgroups();
  }

  private dir(taskId: string): string {
    return this.tasks.dir(taskId);
  }

  private readState(taskId: string): Promise<ProcessState | undefined> {
    return this.tasks.readState(taskId);
  }

  private async readConfig(taskId: string): Promise<ExecConfig | undefined> {
    const text = await readText(join(this.dir(taskId), 'config.json'));
    return text ? (JSON.parse(text) as ExecConfig) : undefined;
  }

  private readExitCode(taskId: string): Promise<number | undefined> {
    return this.tasks.readExitCode(taskId);
  }

  async prepare(task: Task, opts: PrepareOptions = {}): Promise<void> {
    const dir = this.dir(task.id);
    const log = this.log.child({ taskId: task.id });
    const state = await this.readState(task.id);
    if (state) {
      if ((await this.readExitCode(task.id)) !== undefined) throw conflict(`task ${task.id} has already run; it cannot be prepared again`);
      if (await isAlive(state.shim)) {
        if (!state.init) await this.awaitReady(task.id, state, Boolean((await this.readConfig(task.id))?.hostNetwork));
        return;
      }
    }
    // Nothing, or what a prepare that did not finish left: start afresh.
    const config = await this.execConfig(task);
    await this.checkConfigTargets(config.root, opts);
    await this.forget(task.id);
    const cgroups = await this.cgroups();
    try {
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'config.json'), JSON.stringify(config, null, 2));
      if (usesEmbeddedDns(task.networks ?? [])) await writeFile(join(dir, 'resolv.conf'), renderResolvConf());
      if (opts.files) await writeFile(join(dir, 'mounts'), renderExecFileMounts(opts.files));
      const limits = task.spec?.resources?.limits;
      const procs = await cgroups.ensure(task.id, { memoryBytes: limits?.memoryBytes, memorySwapBytes: limits?.memorySwapBytes, nanoCpus: limits?.nanoCpus, pids: limits?.pids });
      const shim = await this.spawnShim(task.id, config, procs, opts.logFile);
      const fresh: ProcessState = { shim };
      await writeFile(join(dir, 'state.json'), JSON.stringify(fresh));
      await this.awaitReady(task.id, fresh, Boolean(config.hostNetwork));
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
    // --init changes nothing here: an exec task's pid 1 is always swarmlet-init, which forwards signals.
    if (c.readOnly) throw invalidArgument('--read-only is not available on the exec runtime: an exec: image is a directory of the host, shared with it; use an OCI image');
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
    return {
      root,
      workdir,
      user: user && { uid: user.uid, gid: user.gid, groups: user.groups },
      env,
      hostname,
      argv,
      ...(hostNetwork ? { hostNetwork } : {}),
      ...(c.tty ? { tty: true } : {}),
      ...(c.openStdin ? { openStdin: true } : {}),
    };
  }

  /** a config is mounted over a file the exec root has (a root shared with the host gets no new files). */
  private async checkConfigTargets(root: string, opts: PrepareOptions): Promise<void> {
    for (const c of opts.files?.configs ?? []) {
      const target = root === '/' ? c.target : join(root, c.target);
      if (!(await stat(target).catch(() => undefined))?.isFile()) {
        throw invalidArgument(`config target ${c.target} is not a file in exec:${root}: on the exec runtime a config is mounted over an existing file (an OCI image has no such limit)`);
      }
    }
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

  private spawnShim(taskId: string, config: ExecConfig, procs: string[], logFile?: string): Promise<ProcessRef> {
    // pid 1 (and so the command) starts in / (the spawning helper's cwd for the shim).
    const command = wrapCommand(config, config.argv, { cwd: '/' });
    return this.tasks.spawnShim(taskId, planInitArgv(config.tty ? planScriptArgv(command) : command, Boolean(config.hostNetwork)), {
      SL_CGROUP_PROCS: procs.join(' '),
      SL_HOSTNAME: config.hostname,
      SL_ROOT: config.root,
      SL_STATUS: '1',
      ...(config.tty || config.openStdin ? { SL_STDIN: '1' } : {}),
      ...(config.tty ? { SL_LOG_WAIT: '0' } : {}),
    }, logFile);
  }

  /**
   * Waits for pid 1 to say ready, brings its namespace's lo up (through the namespace helper: no
   * `ip` process per task), then records its pid; on failure, says why with the end of the task's output.
   */
  private async awaitReady(taskId: string, state: ProcessState, hostNetwork: boolean): Promise<void> {
    const dir = this.dir(taskId);
    const deadline = Date.now() + (this.opts.readyTimeoutMs ?? 10000);
    for (;;) {
      if (await exists(join(dir, 'ready'))) {
        const init = await this.findInit(state.shim);
        if (init) {
          if (!hostNetwork) await netnsOps.linkUp(`/proc/${init.pid}/ns/net`, 'lo');
          state.init = init;
          await writeFile(join(dir, 'state.json'), JSON.stringify(state));
          return;
        }
      }
      if (!(await isAlive(state.shim)) || Date.now() > deadline) {
        const reason = (await this.tasks.outputTail(taskId)) || 'no output';
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
    const deadline = Date.now() + 5000;
    if (!(await this.tasks.release(taskId, deadline))) return;
    // pid 1 marks "started" before it runs the command, which may end at once: look again after an exit.
    while (!(await exists(join(dir, 'started')))) {
      const ended = (await this.inspect(taskId)).state === 'exited';
      if (await exists(join(dir, 'started'))) break;
      if (ended || Date.now() > deadline) throw internal(`task ${taskId} did not start`);
      await sleep(5);
    }
    this.log.info({ taskId }, 'task started');
  }

  watchExit(taskId: string, onExit: () => void): () => void {
    return this.tasks.watchExit(taskId, onExit);
  }

  inspect(taskId: string): Promise<RuntimeTaskState> {
    return this.tasks.inspect(taskId);
  }

  stop(taskId: string, graceMs: number): Promise<void> {
    return this.tasks.stop(taskId, graceMs);
  }

  async remove(taskId: string): Promise<void> {
    await this.forget(taskId);
    this.log.info({ taskId }, 'task removed');
  }

  /** Kills whatever the task still has, removes its cgroup and its state directory. */
  private async forget(taskId: string): Promise<void> {
    await this.tasks.kill(taskId);
    await this.tasks.removeDir(taskId);
  }

  list(): Promise<string[]> {
    return this.tasks.list();
  }

  async exec(taskId: string, argv: string[], timeoutMs: number): Promise<{ exitCode: number; output: string }> {
    if (argv.length === 0) throw invalidArgument('exec needs a command');
    const state = await this.readState(taskId);
    const config = await this.readConfig(taskId);
    if (!state?.init || !config || !(await isAlive(state.init))) throw failedPrecondition(`task ${taskId} is not running`);
    const nsenter = ['nsenter', `--target=${state.init.pid}`, '--pid', '--mount', '--uts', '--ipc', '--net', '--', ...wrapCommand(config, argv)];
    // Its own process group, so a timeout kills the command nsenter forked into the namespace too.
    return runCapped(taskId, nsenter, { PATH: HOST_PATH }, timeoutMs);
  }

  /** Into the task's cgroup, nsenter into its namespaces (as exec() does), then `script` for a pty. */
  async execSession(taskId: string, opts: ExecSessionOptions): Promise<TerminalSession> {
    if (opts.argv.length === 0) throw invalidArgument('exec needs a command');
    const state = await this.readState(taskId);
    const config = await this.readConfig(taskId);
    if (!state?.init || !config || !(await isAlive(state.init))) throw failedPrecondition(`task ${taskId} is not running`);
    const cfg = await this.sessionConfig(config, opts);
    const command = wrapCommand(cfg, opts.argv);
    // script inside the namespaces: the command leads a session of the task's pid namespace, as docker exec's does.
    const nsenter = ['nsenter', `--target=${state.init.pid}`, '--pid', '--mount', '--uts', '--ipc', '--net', '--', ...(opts.tty ? planScriptArgv(command, opts.size) : command)];
    // In the task's cgroup too, as docker exec's command is (its limits hold, and stop kills it with the task).
    const procs = (await this.cgroups()).dirs(taskId).map((d) => join(d, 'cgroup.procs'));
    return spawnSession(taskId, ['/bin/sh', '-c', JOIN_CGROUP_SCRIPT, 'swarmlet-exec', ...nsenter], { SL_CGROUP_PROCS: procs.join(' ') }, opts.tty);
  }

  /** The task's config with an exec's own user, workdir and env (docker exec -u, -w, -e). */
  private async sessionConfig(config: ExecConfig, opts: ExecSessionOptions): Promise<ExecConfig> {
    const hostPath = (p: string) => (config.root === '/' ? p : join(config.root, p));
    let user = config.user;
    let home = envValue(config.env, 'HOME') ?? '/';
    if (opts.user) {
      const resolved = resolveUser(opts.user, await readText(hostPath('/etc/passwd')), await readText(hostPath('/etc/group')));
      user = { uid: resolved.uid, gid: resolved.gid, groups: resolved.groups };
      home = resolved.home;
    }
    const workdir = opts.workdir ? posix.normalize(opts.workdir) : config.workdir;
    if (!workdir.startsWith('/')) throw invalidArgument(`workdir ${JSON.stringify(opts.workdir)} must be an absolute path`);
    const env = taskEnv([...config.env.filter((e) => !(opts.user && e.startsWith('HOME='))), ...(opts.env ?? [])], config.hostname, home);
    return { ...config, user, workdir, env };
  }

  async attach(taskId: string): Promise<TerminalSession> {
    return this.tasks.attach(taskId, Boolean((await this.readConfig(taskId))?.tty));
  }

  logs(taskId: string, opts: LogsOptions): AsyncIterable<LogRecord> {
    return this.tasks.logs(taskId, opts);
  }
}
