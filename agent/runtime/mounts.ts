/**
 * A task's mounts, made ready on this node: bind sources checked, volumes acquired (made on first
 * use). The OCI runtime puts what prepareMounts returns in the task's config.json, and calls
 * releaseMounts when it forgets the task.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { failedPrecondition, invalidArgument } from '../../services/common/errors';
import { MountType, Task } from '../../services/gen/swarmlet/v1/types';
import type { VolumeStore } from '../volumes/volume-store';
import { OciMount, planMounts } from './mount-plans';

export { planMounts, type OciMount } from './mount-plans';

/** The name of a task's anonymous volume on `target`: the same on every prepare of the task. */
export function anonymousVolumeName(taskId: string, target: string): string {
  return createHash('sha256').update(`${taskId}\0${target}`).digest('hex');
}

/**
 * Checks the bind sources first (a missing one rejects the task before any volume is taken),
 * then acquires the task's volumes; returns the OCI mounts. `imageDir(target)`: where the image
 * has the mount's target on the host, if it does, to fill an empty volume from. Idempotent.
 */
export async function prepareMounts(task: Task, volumes: VolumeStore, imageDir?: (target: string) => Promise<string | undefined>): Promise<OciMount[]> {
  const mounts = task.spec?.container?.mounts ?? [];
  for (const m of mounts) if (m.type === MountType.MOUNT_TYPE_BIND) await checkBindSource(m.source);
  const resolved = new Map<string, string>();
  for (const m of mounts) {
    if (m.type !== MountType.MOUNT_TYPE_VOLUME) continue;
    const seed = imageDir ? await imageDir(m.target) : undefined;
    resolved.set(m.target, await volumes.acquire(task.id, m.source || anonymousVolumeName(task.id, m.target), seed));
  }
  return planMounts(mounts, resolved);
}

/** The task no longer uses its volumes (they stay, with their data). Idempotent. */
export function releaseMounts(taskId: string, volumes: VolumeStore): Promise<void> {
  return volumes.release(taskId);
}

async function checkBindSource(source: string): Promise<void> {
  try {
    await fs.stat(source);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw invalidArgument(`bind source path does not exist: ${source}`, err);
    throw failedPrecondition(`bind source path ${source} is not usable: ${(err as Error).message}`, err);
  }
}
