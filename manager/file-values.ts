import { Logger } from '../services/common/logger';
import { TaskFileValue } from '../services/gen/swarmlet/v1/dispatcher';
import { Config, Secret, Task, TaskState } from '../services/gen/swarmlet/v1/types';
import { openFileData, SealKeySource } from './service-secrets';
import type { FileObjectKind } from './store/store';

/**
 * The values a node needs: those of the secrets and configs its assigned tasks that are still
 * wanted use, and no others. One that does not open is left out (its task then fails to prepare).
 */
export function taskFileValues(tasks: Task[], secrets: Secret[], configs: Config[], sealKey: SealKeySource | undefined, log: Logger): TaskFileValue[] {
  const wanted = new Map<string, FileObjectKind>();
  for (const t of tasks) {
    if (t.desiredState > TaskState.TASK_STATE_RUNNING) continue;
    for (const r of t.spec?.container?.secrets ?? []) wanted.set(r.secretId, 'secret');
    for (const r of t.spec?.container?.configs ?? []) wanted.set(r.configId, 'config');
  }
  if (wanted.size === 0) return [];
  const out: TaskFileValue[] = [];
  for (const [kind, objects] of [['secret', secrets], ['config', configs]] as const) {
    for (const o of objects) {
      if (wanted.get(o.id) !== kind) continue;
      try {
        out.push({ id: o.id, data: openFileData(sealKey, kind, o) });
      } catch (err) {
        log.warn({ [`${kind}Id`]: o.id, err: (err as Error).message }, `a ${kind} does not open; nodes get none of it from this manager`);
      }
    }
  }
  return out.sort((a, b) => a.id.localeCompare(b.id));
}
