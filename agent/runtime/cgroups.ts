import { access, mkdir, readFile, readdir, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { failedPrecondition, invalidArgument } from '../../services/common/errors';
import { sleep } from '../../services/common/backoff';
import { planSwapLimit } from './cgroup-plans';
import { signalProcess } from './proc';

/**
 * Which cgroup hierarchies this machine has. v1: one mount per controller we use (memory, cpu,
 * pids), plus the hierarchies that only track membership: systemd's (name=systemd) and, in
 * hybrid mode, the cgroup2 mount beside them (no controllers there). Tasks join those too, so
 * that a service manager stopping the agent's own cgroup does not reach them. v2: the unified
 * hierarchy.
 */
export type CgroupLayout =
  | { version: 1; root: string; mounts: Partial<Record<V1Hierarchy, string>> }
  | { version: 2; root: string; controllers: CgroupController[] };

export type CgroupController = 'memory' | 'cpu' | 'pids';
export type V1Hierarchy = CgroupController | 'systemd' | 'unified';
const CONTROLLERS: CgroupController[] = ['memory', 'cpu', 'pids'];
const V1_HIERARCHIES: V1Hierarchy[] = ['memory', 'cpu', 'pids', 'systemd', 'unified'];

export interface CgroupLimits {
  memoryBytes?: number;
  /** docker's --memory-swap: memory plus swap; -1 unlimited swap; 0 (default) none beyond memoryBytes. */
  memorySwapBytes?: number;
  nanoCpus?: number;
  /** The most processes (and threads) the task may have: pids.max. */
  pids?: number;
}

/** The smallest memory limit a task may have (docker refuses under 6 MB too). */
export const MIN_MEMORY_BYTES = 6 * 1024 * 1024;
const CPU_PERIOD_US = 100000;

const exists = (path: string) => access(path).then(() => true, () => false);

/** Looks at /sys/fs/cgroup: v2 if the root has cgroup.controllers, else the v1 hierarchies mounted there. */
export async function detectCgroups(root = '/sys/fs/cgroup'): Promise<CgroupLayout> {
  if (await exists(join(root, 'cgroup.controllers'))) {
    const available = (await readFile(join(root, 'cgroup.controllers'), 'utf8')).trim().split(/\s+/);
    return { version: 2, root, controllers: CONTROLLERS.filter((c) => available.includes(c)) };
  }
  const mounts: Partial<Record<V1Hierarchy, string>> = {};
  for (const c of V1_HIERARCHIES) {
    if (await exists(join(root, c, 'cgroup.procs'))) mounts[c] = join(root, c);
  }
  return { version: 1, root, mounts };
}

/** A cgroup path below a hierarchy's root: letters, digits, '.', '_', '-', with '/' between parts. */
export function checkCgroupPath(path: string): void {
  if (!/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/.test(path) || path.split('/').some((p) => p === '.' || p === '..')) {
    throw invalidArgument(`cgroup path ${JSON.stringify(path)} is not valid: use letters, digits, '.', '_', '-' and '/'`);
  }
}

/** The cgroups of one runtime's tasks: `<parent>/<taskId>` in every hierarchy in use. */
export class TaskCgroups {
  constructor(readonly layout: CgroupLayout, readonly parent: string) {
    checkCgroupPath(parent);
  }

  /** The parent's directories, one per hierarchy in use. */
  parentDirs(): string[] {
    if (this.layout.version === 2) return [join(this.layout.root, this.parent)];
    return Object.values(this.layout.mounts).map((m) => join(m, this.parent));
  }

  /** The task's directories, one per hierarchy in use. */
  dirs(taskId: string): string[] {
    return this.parentDirs().map((d) => join(d, taskId));
  }

  private dirOf(taskId: string, controller: CgroupController): string | undefined {
    if (this.layout.version === 2) return this.layout.controllers.includes(controller) ? join(this.layout.root, this.parent, taskId) : undefined;
    const mount = this.layout.mounts[controller];
    return mount ? join(mount, this.parent, taskId) : undefined;
  }

  /**
   * Makes the task's cgroup with its limits, whatever was there; returns the cgroup.procs files a
   * process writes itself into to join it.
   */
  async ensure(taskId: string, limits: CgroupLimits): Promise<string[]> {
    const memory = limits.memoryBytes ?? 0;
    const cpus = limits.nanoCpus ?? 0;
    const pids = limits.pids ?? 0;
    if (pids < 0 || !Number.isInteger(pids)) throw invalidArgument(`pids limit ${pids} is not valid: a positive whole number (0: no limit)`);
    if (memory > 0 && memory < MIN_MEMORY_BYTES) throw invalidArgument(`memory limit of ${memory} bytes is too small: the minimum is 6 MiB`);
    const swap = planSwapLimit(this.layout.version, memory, limits.memorySwapBytes ?? 0);
    if (memory > 0 && !this.dirOf(taskId, 'memory')) throw failedPrecondition('a memory limit was asked for, but this node has no memory cgroup controller');
    if (cpus > 0 && !this.dirOf(taskId, 'cpu')) throw failedPrecondition('a CPU limit was asked for, but this node has no cpu cgroup controller');
    if (pids > 0 && !this.dirOf(taskId, 'pids')) throw failedPrecondition('a pids limit was asked for, but this node has no pids cgroup controller');
    if (this.layout.version === 2) await this.enableControllersV2();
    for (const dir of this.dirs(taskId)) await mkdir(dir, { recursive: true });
    const quotaUs = cpus > 0 ? Math.max(1000, Math.round((cpus / 1e9) * CPU_PERIOD_US)) : 0;
    const memDir = this.dirOf(taskId, 'memory');
    const cpuDir = this.dirOf(taskId, 'cpu');
    const pidsDir = this.dirOf(taskId, 'pids');
    // pids.max has the same name and meaning in v1's pids controller and in v2.
    if (pidsDir && pids > 0) await writeFile(join(pidsDir, 'pids.max'), String(pids));
    if (this.layout.version === 1) {
      if (memDir && memory > 0) {
        await writeFile(join(memDir, 'memory.limit_in_bytes'), String(memory));
      }
      if (cpuDir && quotaUs > 0) {
        await writeFile(join(cpuDir, 'cpu.cfs_period_us'), String(CPU_PERIOD_US));
        await writeFile(join(cpuDir, 'cpu.cfs_quota_us'), String(quotaUs));
      }
    } else {
      if (memDir && memory > 0) {
        await writeFile(join(memDir, 'memory.max'), String(memory));
      }
      if (cpuDir && quotaUs > 0) await writeFile(join(cpuDir, 'cpu.max'), `${quotaUs} ${CPU_PERIOD_US}`);
    }
    // The swap limit (cgroup-plans.ts); its file is there only with swap accounting: without it, memory is limited without swap (docker's warning).
    if (memDir && swap && (await exists(join(memDir, swap.file)))) await writeFile(join(memDir, swap.file), swap.value);
    return this.dirs(taskId).map((d) => join(d, 'cgroup.procs'));
  }

  /** v2: the controllers must be enabled in the subtree_control of every level above the task. */
  private async enableControllersV2(): Promise<void> {
    if (this.layout.version !== 2) return;
    let dir = this.layout.root;
    const levels = [dir];
    for (const part of this.parent.split('/')) {
      dir = join(dir, part);
      levels.push(dir);
    }
    for (const level of levels) {
      await mkdir(level, { recursive: true });
      const available = (await readFile(join(level, 'cgroup.controllers'), 'utf8')).trim().split(/\s+/);
      const enabled = (await readFile(join(level, 'cgroup.subtree_control'), 'utf8')).trim().split(/\s+/);
      for (const c of this.layout.controllers) {
        if (available.includes(c) && !enabled.includes(c)) await writeFile(join(level, 'cgroup.subtree_control'), `+${c}`);
      }
    }
  }

  /** Pids in the task's cgroup (the union over hierarchies); empty if it does not exist. */
  async procs(taskId: string): Promise<number[]> {
    const pids = new Set<number>();
    for (const dir of this.dirs(taskId)) {
      for (const pid of await readProcs(dir)) pids.add(pid);
    }
    return [...pids];
  }

  /** How many times the kernel's OOM killer killed a process of the task; undefined without the cgroup. */
  async oomKills(taskId: string): Promise<number | undefined> {
    const dir = this.dirOf(taskId, 'memory');
    if (!dir) return undefined;
    const file = this.layout.version === 1 ? 'memory.oom_control' : 'memory.events';
    try {
      const match = /^oom_kill (\d+)$/m.exec(await readFile(join(dir, file), 'utf8'));
      return match ? Number(match[1]) : 0;
    } catch {
      return undefined;
    }
  }

  /** SIGKILLs everything in the task's cgroup until it is empty (or timeoutMs passes); returns whether it is empty. */
  async killAll(taskId: string, timeoutMs = 5000): Promise<boolean> {
    return killDirs(this.dirs(taskId), timeoutMs);
  }

  /** Kills what is left and removes the task's cgroup directories. */
  async remove(taskId: string): Promise<void> {
    await removeDirs(this.dirs(taskId));
  }

  /** Task ids with a cgroup under the parent. */
  async list(): Promise<string[]> {
    const ids = new Set<string>();
    for (const dir of this.parentDirs()) {
      for (const id of await subdirs(dir)) ids.add(id);
    }
    return [...ids];
  }
}

async function readProcs(dir: string): Promise<number[]> {
  try {
    return (await readFile(join(dir, 'cgroup.procs'), 'utf8')).split('\n').filter(Boolean).map(Number).filter((p) => p > 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

async function subdirs(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

async function killDirs(dirs: string[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let left = 0;
    for (const dir of dirs) {
      if (await exists(join(dir, 'cgroup.kill'))) {
        if ((await readProcs(dir)).length > 0) await writeFile(join(dir, 'cgroup.kill'), '1').catch(() => undefined);
      }
      for (const pid of await readProcs(dir)) {
        left += 1;
        signalProcess(pid, 'SIGKILL');
      }
    }
    if (left === 0) return true;
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
}

async function removeDirs(dirs: string[]): Promise<void> {
  for (const dir of dirs) {
    if (!(await exists(dir))) continue;
    await removeDirs((await subdirs(dir)).map((d) => join(dir, d)));
    const deadline = Date.now() + 5000;
    for (;;) {
      await killDirs([dir], 2000);
      try {
        await rmdir(dir);
        break;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') break;
        if (code !== 'EBUSY' || Date.now() > deadline) throw err;
        await sleep(20);
      }
    }
  }
}

/**
 * Kills every process under a runtime's cgroup parent and removes it with all its task cgroups,
 * in every hierarchy: for tests, and for a node that leaves the swarm.
 */
export async function removeCgroupParent(cgroupParent: string, layout?: CgroupLayout): Promise<void> {
  checkCgroupPath(cgroupParent);
  const cgroups = new TaskCgroups(layout ?? (await detectCgroups()), cgroupParent);
  await removeDirs(cgroups.parentDirs());
}
