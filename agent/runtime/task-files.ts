/**
 * tasks' secrets and configs on this node, kept on a tmpfs (never on the node's disk): one
 * directory per task, written before the task is prepared, removed when the task stops or goes.
 */
import { execFile } from 'node:child_process';
import { chmod, chown, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { failedPrecondition } from '../../services/common/errors';
import { Logger, componentLogger } from '../../services/common/logger';
import { Task } from '../../services/gen/swarmlet/v1/types';
import { planTaskFileMounts, planTaskFiles, TaskFileMounts } from './mount-plans';

const run = promisify(execFile);

/** Whether `dir` is a tmpfs mount point, by /proc/self/mountinfo (field 5: the mount point; after " - ": the type). */
export async function isTmpfsMount(dir: string): Promise<boolean> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  return info.split('\n').some((line) => {
    const [left, right] = line.split(' - ');
    return left?.split(' ')[4] === dir && right?.startsWith('tmpfs ');
  });
}

export class TaskFiles {
  private readonly log: Logger;
  private mounted?: Promise<void>;

  /** `root`: the tmpfs's mount point, e.g. <data-dir>/task-files (mounted on first use). */
  constructor(private readonly root: string, log: Logger) {
    this.log = componentLogger(log, 'task-files');
  }

  /** Mounts the tmpfs once (0700, no exec, suid or devices); one already there is kept. */
  private ensureTmpfs(): Promise<void> {
    this.mounted ??= (async () => {
      await mkdir(this.root, { recursive: true, mode: 0o700 });
      if (await isTmpfsMount(this.root)) return;
      await run('mount', ['-t', 'tmpfs', '-o', 'mode=0700,nosuid,nodev,noexec', 'tmpfs', this.root]);
      this.log.info({ root: this.root }, 'tmpfs for secrets and configs mounted');
    })().catch((err) => {
      this.mounted = undefined;
      throw failedPrecondition(`cannot mount a tmpfs for secrets and configs at ${this.root}: ${(err as Error).message}`, err);
    });
    return this.mounted;
  }

  /** Writes the task's files from the values given (by id); undefined when it has none. Idempotent. */
  async ensure(task: Task, values: Map<string, Uint8Array>): Promise<TaskFileMounts | undefined> {
    const files = planTaskFiles(task, values);
    if (files.length === 0) return undefined;
    await this.ensureTmpfs();
    const dir = join(this.root, task.id);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { mode: 0o755 });
    for (const f of files) {
      const file = join(dir, f.path);
      await mkdir(dirname(file), { recursive: true, mode: 0o755 });
      await writeFile(file, f.data, { mode: 0o600 });
      await chown(file, f.uid, f.gid);
      await chmod(file, f.mode);
    }
    this.log.info({ taskId: task.id, secrets: files.filter((f) => f.kind === 'secret').length, configs: files.filter((f) => f.kind === 'config').length }, 'task files written');
    return planTaskFileMounts(files, dir);
  }

  /** The task's files go. Idempotent. */
  async release(taskId: string): Promise<void> {
    await rm(join(this.root, taskId), { recursive: true, force: true });
  }

  /** Removes the files of every task but those in `keep` (after a restart: tasks that went meanwhile). */
  async prune(keep: Set<string>): Promise<void> {
    const ids = await readdir(this.root).catch(() => [] as string[]);
    for (const id of ids) if (!keep.has(id)) await this.release(id);
  }
}
