import { lstat, mkdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { join, posix } from 'node:path';
import { sleep } from '../../services/common/backoff';
import { conflict, failedPrecondition, internal, invalidArgument } from '../../services/common/errors';
import { Logger, componentLogger } from '../../services/common/logger';
import { PullPolicy, Task } from '../../services/gen/swarmlet/v1/types';
import { renderResolvConf, usesEmbeddedDns } from '../dns/resolv-conf';
import type { VolumeStore } from '../volumes/volume-store';
import { CgroupLayout, TaskCgroups } from './cgroups';
import { planCrunShim } from './crun-shim';
import { resolveUser, usesHostNetwork } from './exec-spec';
import { prepareMounts, releaseMounts } from './mounts';
import { planFileMounts, TaskFileMounts } from './mount-plans';
import { HOLD_BUSYBOX, OciImageConfig, OciProcessPlan, planOciProcess, planOciSpec, planStopSignal, planTaskResolvConf, processPath, renderHosts } from './oci-spec';
import { ProcessRef, isAlive, processRef, signalProcess } from './proc';
import { ExecSessionOptions, LogsOptions, PrepareOptions, Runtime, RuntimeTaskState, TerminalSession } from './runtime';
import type { LogRecord } from './log-plans';
import { HOST_PATH, JOIN_CGROUP_SCRIPT, ProcessState, ShimTasks, exists, readText, runCapped } from './shim-tasks';
import { spawnSession } from './terminal';
import { planExecEnv, planScriptArgv } from './terminal-plans';

/** What the runtime needs of the node's image store (ImageStore fits). */
export interface TaskImages {
  ensure(ref: string, policy: PullPolicy, auth?: string): Promise<{ id: string; rootfs: string; config: OciImageConfig & { stopSignal?: string } }>;
  /** Marks the image as used by the task (called right after ensure). */
  use(taskId: string, imageId: string): void;
  release(taskId: string): void;
}

export interface CrunRuntimeOptions {
  /** One directory per task below it, e.g. <data-dir>/containers (crun's own state goes in its .crun). */
  stateDir: string;
  /** Task cgroups are <cgroupParent>/<taskId> from each hierarchy's root; not the exec runtime's parent. */
  cgroupParent: string;
  log: Logger;
  images: TaskImages;
  /** Named and anonymous volumes; without it, a task with volume mounts is refused. */
  volumes?: VolumeStore;
  cgroups?: CgroupLayout;
  /** Default: crun on the PATH. */
  crun?: string;
  /** A static busybox that holds each container before start (default /usr/bin/busybox, Debian's busybox-static). */
  busybox?: string;
  /** The init of --init (default /usr/bin/tini-static, Debian's tini): bound at /sbin/docker-init. */
  init?: string;
  /** The host's resolv.conf, copied for tasks that do not use the embedded DNS (default /etc/resolv.conf). */
  hostResolvConf?: string;
  /** How long prepare waits for the container to be created (default 20 s). */
  readyTimeoutMs?: number;
}

const MAX_SYMLINKS = 40;
/** Processes of a task's cgroup that are not the container's: crun (the shim's child, which execs it; the shim's writer is outside). */
const SHIM_PIDS = 1;

/**
 * Where a path inside a root filesystem is on the host, following its symlinks inside the root
 * (an absolute link means the root's /, never the host's); undefined when it does not exist.
 */
export async function resolveInRoot(root: string, path: string): Promise<string | undefined> {
  const parts = path.split('/').filter(Boolean);
  let current = '';
  let links = 0;
  while (parts.length > 0) {
    const part = parts.shift()!;
    if (part === '.') continue;
    if (part === '..') {
      current = current.slice(0, current.lastIndexOf('/'));
      continue;
    }
    const next = `${current}/${part}`;
    const st = await lstat(join(root, next)).catch(() => undefined);
    if (!st) return undefined;
    if (st.isSymbolicLink()) {
      if ((links += 1) > MAX_SYMLINKS) return undefined;
      const target = await readlink(join(root, next));
      if (target.startsWith('/')) current = '';
      parts.unshift(...target.split('/').filter(Boolean));
      continue;
    }
    current = next;
  }
  return join(root, current || '/');
}

/** The path (inside the root) the command runs from: a path as given, a bare name looked up in PATH, as execvp does. */
async function findExecutable(root: string, cmd: string, path: string, cwd: string, image: string): Promise<string> {
  const candidates = cmd.includes('/') ? [posix.resolve(cwd, cmd)] : path.split(':').filter((d) => d.startsWith('/')).map((d) => posix.join(d, cmd));
  for (const candidate of candidates) {
    const host = await resolveInRoot(root, candidate);
    const st = host ? await stat(host).catch(() => undefined) : undefined;
    if (st?.isFile() && (st.mode & 0o111) !== 0) return candidate;
  }
  if (cmd.includes('/')) throw invalidArgument(`exec: ${JSON.stringify(cmd)}: no such executable file in ${image}`);
  throw invalidArgument(`exec: ${JSON.stringify(cmd)}: executable file not found in $PATH (${path}) of ${image}`);
}

/**
 * Runs each task as an OCI container with crun, on its image's unpacked rootfs under a writable
 * overlayfs layer of its own. Tasks outlive the agent: a small sh shim (crun-shim.ts, its own
 * session) joins the task's cgroup (cgroups.ts, shared with the exec runtime: limits, pids, OOM
 * counts) and runs `crun run` in the foreground, which makes the container and waits for it.
 * The container's first process is a static busybox bound in read-only, which waits on the
 * task's start fifo before it execs the task's command (so the networks can be plugged into the
 * container's netns between prepare and start, and the command is pid 1 as in docker).
 * Everything re-adoption needs is in <stateDir>/<taskId>/:
 *   config.json   the OCI config (the crun bundle); upper/, work/: the writable layer; rootfs/: mount point
 *   task.json     the image (id, rootfs) the task runs on
 *   state.json    the shim's and the container's pid 1's pid and start time
 *   pid           crun's pid file; start.fifo: the hold; started: the command was let run
 *   exitcode      the container's exit status (by the shim)
 *   output.log    the command's stdout and stderr, appended (the exec runtime's format)
 *   hostname, hosts, resolv.conf: bound into the container's /etc
 */
export class CrunRuntime implements Runtime {
  private readonly log: Logger;
  private readonly tasks: ShimTasks;
  private readonly crunRoot: string;
  private readonly crun: string;
  private readonly busybox: string;
  private execSeq = 0;

  constructor(private readonly opts: CrunRuntimeOptions) {
    this.log = componentLogger(opts.log, 'crun-runtime');
    this.tasks = new ShimTasks({ stateDir: opts.stateDir, runtime: 'oci', cgroupParent: opts.cgroupParent, cgroupLayout: opts.cgroups, log: this.log });
    this.crunRoot = join(opts.stateDir, '.crun');
    this.crun = opts.crun ?? 'crun';
    this.busybox = opts.busybox ?? '/usr/bin/busybox';
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

  private readExitCode(taskId: string): Promise<number | undefined> {
    return this.tasks.readExitCode(taskId);
  }

  async prepare(task: Task, opts: PrepareOptions = {}): Promise<void> {
    const log = this.log.child({ taskId: task.id });
    const state = await this.readState(task.id);
    if (state) {
      if ((await this.readExitCode(task.id)) !== undefined) throw conflict(`task ${task.id} has already run; it cannot be prepared again`);
      if (await isAlive(state.shim)) {
        if (!state.init) await this.awaitReady(task.id, state);
        return;
      }
    }
    const c = task.spec?.container;
    if (!c) throw invalidArgument(`task ${task.id} has no container spec`);
    if (c.image.startsWith('exec:')) throw invalidArgument(`image ${JSON.stringify(c.image)} is for the exec runtime, not the oci one`);
    if (!(await exists(this.busybox))) throw failedPrecondition(`the oci runtime needs a static busybox at ${this.busybox} (Debian's busybox-static)`);
    if (c.init) await this.initBinary();
    // Nothing, or what a prepare that did not finish left: start afresh.
    await this.forget(task.id);
    const image = await this.opts.images.ensure(c.image, c.pull, opts.registryAuth);
    this.opts.images.use(task.id, image.id);
    try {
      await this.create(task, image, log, opts.logFile, opts.files);
    } catch (err) {
      await this.forget(task.id).catch((e) => log.warn({ err: e }, 'cleaning up a failed prepare failed'));
      await this.releaseTask(task.id).catch((e) => log.warn({ err: e }, 'releasing a failed prepare\'s image and volumes failed'));
      throw err;
    }
  }

  /** Plans the container, writes its bundle and starts its shim; resolves when the container is created and held. */
  private async create(task: Task, image: { id: string; rootfs: string; config: OciImageConfig & { stopSignal?: string } }, log: Logger, logFile?: string, taskFiles?: TaskFileMounts): Promise<void> {
    const c = task.spec!.container!;
    const dir = this.dir(task.id);
    const passwd = await this.readRootFile(image.rootfs, '/etc/passwd');
    const group = await this.readRootFile(image.rootfs, '/etc/group');
    const plan = planOciProcess(task.id, c, image.config, passwd, group);
    const executable = await findExecutable(image.rootfs, plan.argv[0], processPath(plan), plan.cwd, c.image);
    let mounts: Awaited<ReturnType<typeof prepareMounts>> = [];
    if ((c.mounts ?? []).length > 0) {
      if (!this.opts.volumes) throw failedPrecondition('this node cannot give tasks mounts: it has no volume store');
      // An empty volume is filled from what the image has at its target, as docker does.
      mounts = await prepareMounts(task, this.opts.volumes, (target) => resolveInRoot(image.rootfs, target));
    }
    // secrets and configs, from the node's tmpfs, read-only (after the task's own mounts: a config may sit inside a volume).
    mounts = [...mounts, ...planFileMounts(taskFiles)];
    const hostNetwork = usesHostNetwork(task.networks ?? []);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    for (const sub of ['upper', 'work', 'rootfs']) await mkdir(join(dir, sub), { mode: 0o755 });
    await this.ensureWorkdir(image.rootfs, join(dir, 'upper'), plan.cwd);
    const files = await this.writeTaskFiles(task, dir, plan, hostNetwork);
    const init = c.init ? await this.initBinary() : undefined;
    const spec = planOciSpec({ process: plan, executable, rootfs: join(dir, 'rootfs'), hostNetwork, mounts, files, tty: c.tty, readOnly: c.readOnly, init });
    await writeFile(join(dir, 'config.json'), JSON.stringify(spec, null, 2));
    const stopSignal = planStopSignal(image.config.stopSignal, osConstants.signals as unknown as Record<string, number>);
    await writeFile(join(dir, 'task.json'), JSON.stringify({ imageId: image.id, image: c.image, lower: image.rootfs, hostNetwork, stopSignal, ...(c.tty ? { tty: true } : {}) }));
    const limits = task.spec?.resources?.limits;
    // The shim and crun share the task's cgroup: the pids limit counts the container's own processes, as docker's does.
    const pids = limits?.pids ? limits.pids + SHIM_PIDS : 0;
    const procs = await (await this.cgroups()).ensure(task.id, { memoryBytes: limits?.memoryBytes, memorySwapBytes: limits?.memorySwapBytes, nanoCpus: limits?.nanoCpus, pids });
    const shim = await this.spawnShim(task.id, image.rootfs, procs, c.tty, c.tty || c.openStdin, logFile);
    const fresh: ProcessState = { shim };
    await writeFile(join(dir, 'state.json'), JSON.stringify(fresh));
    await this.awaitReady(task.id, fresh);
    log.info({ pid: fresh.init?.pid, image: c.image, imageId: image.id }, 'task prepared');
  }

  /** --init's init on this host; refused (before anything is made) when it is not there. */
  private async initBinary(): Promise<string> {
    const path = this.opts.init ?? '/usr/bin/tini-static';
    if (!(await exists(path))) throw failedPrecondition(`--init needs a static init at ${path} (Debian's tini package): it is not on this node`);
    return path;
  }

  private async readRootFile(root: string, path: string): Promise<string | undefined> {
    const host = await resolveInRoot(root, path);
    return host ? readText(host) : undefined;
  }

  /** Docker makes a missing working directory: here in the task's writable layer. */
  private async ensureWorkdir(lower: string, upper: string, cwd: string): Promise<void> {
    if (cwd === '/' || (await resolveInRoot(lower, cwd))) return;
    await mkdir(join(upper, cwd), { recursive: true, mode: 0o755 });
  }

  private async writeTaskFiles(task: Task, dir: string, plan: OciProcessPlan, hostNetwork: boolean) {
    const attachments = task.networks ?? [];
    const addresses = attachments.map((a) => a.address.split('/')[0]).filter(Boolean);
    const resolvConf = usesEmbeddedDns(attachments)
      ? renderResolvConf()
      : planTaskResolvConf((await readText(this.opts.hostResolvConf ?? '/etc/resolv.conf')) ?? '', hostNetwork);
    const files = {
      busybox: this.busybox,
      startFifo: join(dir, 'start.fifo'),
      hostname: join(dir, 'hostname'),
      hosts: join(dir, 'hosts'),
      resolvConf: join(dir, 'resolv.conf'),
    };
    await writeFile(files.hostname, `${plan.hostname}\n`, { mode: 0o644 });
    await writeFile(files.hosts, renderHosts(plan.hostname, addresses), { mode: 0o644 });
    await writeFile(files.resolvConf, resolvConf, { mode: 0o644 });
    return files;
  }

  private async spawnShim(taskId: string, lower: string, procs: string[], tty: boolean, stdin: boolean, logFile?: string): Promise<ProcessRef> {
    const layout = (await this.cgroups()).layout;
    const hybridUnified = layout.version === 1 ? layout.mounts.unified : undefined;
    await mkdir(this.crunRoot, { recursive: true, mode: 0o700 });
    const shim = planCrunShim(this.crun, this.crunRoot, this.dir(taskId), taskId, tty, process.arch);
    return this.tasks.spawnShim(taskId, shim.argv, {
      ...shim.env,
      SL_CGROUP_PROCS: procs.join(' '),
      SL_LOWER: lower,
      SL_CRUN: this.crun,
      SL_CRUN_ROOT: this.crunRoot,
      SL_ID: taskId,
      SL_OOM_SCORE_ADJ: '-998',
      ...(hybridUnified ? { SL_UNMOUNT: hybridUnified } : {}),
      // The start fifo (made by the shim) is readable by the task's user, whoever that is; only the runtime writes to it.
      SL_START_FIFO_MODE: '0644',
      ...(stdin ? { SL_STDIN: '1' } : {}),
      ...(tty ? { SL_TTY: '1', SL_LOG_WAIT: '0' } : {}),
    }, logFile);
  }

  /**
   * Waits until the container is created and its first process holds on the start fifo (it runs
   * the hold busybox: crun has set everything up), then records its pid; on failure, says why
   * with the end of the task's output (crun's error).
   */
  private async awaitReady(taskId: string, state: ProcessState): Promise<void> {
    const dir = this.dir(taskId);
    const deadline = Date.now() + (this.opts.readyTimeoutMs ?? 20000);
    for (;;) {
      const pidText = await readText(join(dir, 'pid'));
      const pid = pidText && /^\d+\s*$/.test(pidText) ? Number(pidText) : undefined;
      if (pid) {
        const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
        const init = await processRef(pid);
        if (init && cmdline.startsWith(`${HOLD_BUSYBOX}\0`)) {
          state.init = init;
          await writeFile(join(dir, 'state.json'), JSON.stringify(state));
          return;
        }
      }
      if (!(await isAlive(state.shim)) || Date.now() > deadline) {
        const reason = (await this.tasks.outputTail(taskId)) || 'no output';
        throw internal(`the task's container was not created${Date.now() > deadline ? ' in time' : ''}: ${reason}`);
      }
      await sleep(2);
    }
  }

  async start(taskId: string): Promise<void> {
    const dir = this.dir(taskId);
    // The hold opens the fifo once the container runs it.
    if (!(await this.tasks.release(taskId, Date.now() + 5000))) return;
    await writeFile(join(dir, 'started'), '');
    this.log.info({ taskId }, 'task started');
  }

  watchExit(taskId: string, onExit: () => void): () => void {
    return this.tasks.watchExit(taskId, onExit);
  }

  inspect(taskId: string): Promise<RuntimeTaskState> {
    return this.tasks.inspect(taskId);
  }

  async stop(taskId: string, graceMs: number): Promise<void> {
    // The image's StopSignal (docker's), else SIGTERM.
    const info = JSON.parse((await readText(join(this.dir(taskId), 'task.json'))) ?? '{}') as { stopSignal?: NodeJS.Signals };
    await this.tasks.stop(taskId, graceMs, info.stopSignal ?? 'SIGTERM');
  }

  async remove(taskId: string): Promise<void> {
    await this.forget(taskId);
    await this.releaseTask(taskId);
    this.log.info({ taskId }, 'task removed');
  }

  private async releaseTask(taskId: string): Promise<void> {
    this.opts.images.release(taskId);
    if (this.opts.volumes) await releaseMounts(taskId, this.opts.volumes);
  }

  /**
   * Kills whatever the task still has, removes its cgroup, crun's record of it and its state
   * directory (its writable layer with it; the overlay mount went with the task's processes).
   */
  private async forget(taskId: string): Promise<void> {
    await this.tasks.kill(taskId);
    // crun cleans up after the container it ran; not when it was killed itself.
    await rm(join(this.crunRoot, taskId), { recursive: true, force: true });
    await this.tasks.removeDir(taskId);
  }

  list(): Promise<string[]> {
    return this.tasks.list();
  }

  /** `crun exec` in the running container (its user, env and cwd), from a process that joins the task's cgroup first. */
  async exec(taskId: string, argv: string[], timeoutMs: number): Promise<{ exitCode: number; output: string }> {
    const { cmd, env, pidFile } = await this.crunExec(taskId, { argv, tty: false });
    // The command runs in the container, not under crun exec: on a timeout, kill it by the pid crun wrote, then crun.
    const kill = (groupKill: () => void) =>
      void readText(pidFile).then((text) => {
        if (text && /^\d+\s*$/.test(text)) signalProcess(Number(text), 'SIGKILL');
        groupKill();
      });
    return runCapped(taskId, cmd, env, timeoutMs, kill).finally(() => rm(pidFile, { force: true }));
  }

  /**
   * `crun exec` as a session; with a tty `crun exec -t`, which (without a console socket) makes
   * the pty in the container and copies it to and from its own stdio: `script` makes that a terminal.
   */
  async execSession(taskId: string, opts: ExecSessionOptions): Promise<TerminalSession> {
    const { cmd, env, pidFile } = await this.crunExec(taskId, opts);
    const pids = async () => {
      const text = await readText(pidFile);
      return text && /^\d+\s*$/.test(text) ? [Number(text)] : [];
    };
    const onEnd = () => void rm(pidFile, { force: true });
    return spawnSession(taskId, opts.tty ? planScriptArgv(cmd, opts.size) : cmd, env, opts.tty, { pids, onEnd });
  }

  /** The argv and env of a `crun exec` in the task, as the task's user and cwd unless `opts` say otherwise. */
  private async crunExec(taskId: string, opts: Omit<ExecSessionOptions, 'size'>): Promise<{ cmd: string[]; env: NodeJS.ProcessEnv; pidFile: string }> {
    if (opts.argv.length === 0) throw invalidArgument('exec needs a command');
    const state = await this.readState(taskId);
    if (!state?.init || !(await isAlive(state.init)) || !(await exists(join(this.dir(taskId), 'started')))) {
      throw failedPrecondition(`task ${taskId} is not running`);
    }
    const procs = (await this.cgroups()).dirs(taskId).map((d) => join(d, 'cgroup.procs'));
    // crun exec takes the config's env, but not its user and cwd: as docker exec, the task's.
    const config = JSON.parse((await readText(join(this.dir(taskId), 'config.json'))) ?? '{}') as { process?: { user?: { uid: number; gid: number }; cwd?: string; env?: string[] } };
    let user = config.process?.user ?? { uid: 0, gid: 0 };
    if (opts.user) {
      const info = JSON.parse((await readText(join(this.dir(taskId), 'task.json'))) ?? '{}') as { lower?: string };
      const lower = info.lower ?? '/nonexistent';
      user = resolveUser(opts.user, await this.readRootFile(lower, '/etc/passwd'), await this.readRootFile(lower, '/etc/group'));
    }
    const cwd = opts.workdir ? posix.normalize(opts.workdir) : config.process?.cwd ?? '/';
    if (!cwd.startsWith('/')) throw invalidArgument(`workdir ${JSON.stringify(opts.workdir)} must be an absolute path`);
    const extra = opts.env ?? [];
    for (const e of extra) if (e.indexOf('=') <= 0 || e.includes('\0')) throw invalidArgument(`environment entry ${JSON.stringify(e)} is not valid: use KEY=VALUE`);
    // crun exec's --env replaces the config's env: the task's, then the exec's own.
    const env = extra.length > 0 ? planExecEnv(config.process?.env ?? [], extra) : [];
    const pidFile = join(this.dir(taskId), `exec-${process.pid}-${(this.execSeq += 1)}.pid`);
    const crunExec = [
      this.crun, '--root', this.crunRoot, 'exec', `--user=${user.uid}:${user.gid}`, `--cwd=${cwd}`, `--pid-file=${pidFile}`,
      ...env.map((e) => `--env=${e}`), ...(opts.tty ? ['--tty'] : []), taskId,
    ];
    return { cmd: ['/bin/sh', '-c', JOIN_CGROUP_SCRIPT, 'swarmlet-exec', ...crunExec, ...opts.argv], env: { PATH: HOST_PATH, SL_CGROUP_PROCS: procs.join(' ') }, pidFile };
  }

  async attach(taskId: string): Promise<TerminalSession> {
    const info = JSON.parse((await readText(join(this.dir(taskId), 'task.json'))) ?? '{}') as { tty?: boolean };
    return this.tasks.attach(taskId, Boolean(info.tty));
  }

  logs(taskId: string, opts: LogsOptions): AsyncIterable<LogRecord> {
    return this.tasks.logs(taskId, opts);
  }
}
