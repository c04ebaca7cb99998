import { failedPrecondition, invalidArgument } from '../services/common/errors';
import { isExecImage } from '../services/common/image-ref';
import { Logger } from '../services/common/logger';
import { parseRegistryAuth } from '../services/common/registry-auth';
import { TaskCredential } from '../services/gen/swarmlet/v1/dispatcher';
import { Config, Secret, Service, Task, TaskState } from '../services/gen/swarmlet/v1/types';
import type { FileObjectKind } from './store/store';
import { seal, unseal } from '../services/pki/seal';

/**
 * Services' registry credentials: sealed with the managers' key when the API receives them
 * (bound to the service id), never returned by the API, unsealed only by the dispatcher for the
 * nodes that run the service's tasks.
 */

/** The managers' seal key, or undefined when this manager has none. */
export type SealKeySource = () => Buffer | undefined;

const NO_KEY = 'this manager has no seal key for registry credentials (its data dir lost it?); run the request on another manager';

/** The sealed credential to store for a create: empty when none was given. */
export function sealForCreate(sealKey: SealKeySource | undefined, registryAuth: string, serviceId: string, image: string): Buffer {
  if (!registryAuth) return Buffer.alloc(0);
  if (isExecImage(image)) throw invalidArgument('--with-registry-auth needs an image from a registry; exec: images are not pulled');
  parseRegistryAuth(registryAuth);
  const key = sealKey?.();
  if (!key) throw failedPrecondition(NO_KEY);
  return seal(key, registryAuth, serviceId);
}

/** The sealed credential after an update: a new one, none (clear), or the service's own. */
export function sealForUpdate(sealKey: SealKeySource | undefined, current: Service, req: { registryAuth: string; clearRegistryAuth: boolean }, image: string): Buffer {
  if (req.registryAuth && req.clearRegistryAuth) throw invalidArgument('--with-registry-auth and clearing the registry credential are exclusive');
  if (req.clearRegistryAuth) return Buffer.alloc(0);
  if (req.registryAuth) return sealForCreate(sealKey, req.registryAuth, current.id, image);
  return Buffer.from(current.registryAuthSealed ?? Buffer.alloc(0));
}

/** What the API returns of a service: never its sealed credential. */
export const withoutSecrets = (s: Service): Service => ({ ...s, registryAuthSealed: Buffer.alloc(0) });

/** The credentials a node needs: one per task it must run whose service has one. */
export function taskCredentials(tasks: Task[], services: Service[], sealKey: SealKeySource | undefined, log: Logger): TaskCredential[] {
  const sealed = services.filter((s) => s.registryAuthSealed?.length);
  if (!sealed.length) return [];
  const key = sealKey?.();
  if (!key) {
    log.warn('services have registry credentials but this manager has no seal key; nodes get none from it');
    return [];
  }
  const opened = new Map<string, string | undefined>();
  const open = (s: Service) => {
    if (!opened.has(s.id)) {
      try {
        opened.set(s.id, unseal(key, s.registryAuthSealed, s.id));
      } catch (err) {
        log.warn({ serviceId: s.id, err: (err as Error).message }, 'the registry credential of a service does not open');
        opened.set(s.id, undefined);
      }
    }
    return opened.get(s.id);
  };
  const byId = new Map(sealed.map((s) => [s.id, s]));
  const out: TaskCredential[] = [];
  for (const t of tasks) {
    const s = byId.get(t.serviceId);
    if (!s || t.desiredState > TaskState.TASK_STATE_RUNNING) continue;
    const registryAuth = open(s);
    if (registryAuth) out.push({ taskId: t.id, registryAuth });
  }
  return out;
}

// ---- secrets' and configs' values ------------------------------------------------------

const NO_KEY_FOR_FILES = 'this manager has no seal key for secrets and configs (its data dir lost it?); run the request on another manager';
const fileContext = (kind: FileObjectKind, id: string) => `${kind}:${id}`;

/** A secret's or config's value, sealed with the managers' key and bound to its kind and id (binary values kept as base64). */
export function sealFileData(sealKey: SealKeySource | undefined, kind: FileObjectKind, id: string, data: Uint8Array): Buffer {
  const key = sealKey?.();
  if (!key) throw failedPrecondition(NO_KEY_FOR_FILES);
  return seal(key, Buffer.from(data).toString('base64'), fileContext(kind, id));
}

/** The value of a sealed secret or config. */
export function openFileData(sealKey: SealKeySource | undefined, kind: FileObjectKind, obj: Secret | Config): Buffer {
  const key = sealKey?.();
  if (!key) throw failedPrecondition(NO_KEY_FOR_FILES);
  return Buffer.from(unseal(key, obj.dataSealed, fileContext(kind, obj.id)), 'base64');
}
