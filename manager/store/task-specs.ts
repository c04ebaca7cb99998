/**
 * One copy in memory of each task spec. The tasks of a service at one spec version carry the same
 * spec (the orchestrator copies the service's task template into each), but every task decoded
 * from the store had a copy of its own: 30,000 tasks held 30,000 alike, and every new version of a
 * task (each change of its state) decoded one more, which lived long enough to reach the old
 * generation. Decoded objects are shared and never changed in place (the snapshot already hands
 * one object to every reader), so alike specs can be one object.
 */
import { Task, TaskSpec } from '../../services/gen/swarmlet/v1/types';

export class TaskSpecs {
  /** The spec held for a service at a spec version, while some task still has it. */
  private readonly held = new Map<string, WeakRef<TaskSpec>>();
  private readonly gone = new FinalizationRegistry<string>((key) => {
    if (this.held.get(key)?.deref() === undefined) this.held.delete(key);
  });

  /**
   * Gives `task` the spec held for its service and spec version when the two are equal field by
   * field; else the task keeps its own (and becomes the one held if none is). A task of no service
   * (a container's network attachment) keeps its own.
   */
  share(task: Task): void {
    const spec = task.spec;
    if (!spec || !task.serviceId) return;
    const key = `${task.serviceId}/${task.specVersion}`;
    const held = this.held.get(key)?.deref();
    if (held === undefined) {
      this.held.set(key, new WeakRef(spec));
      this.gone.register(spec, key);
    } else if (held !== spec && sameFields(held, spec)) {
      task.spec = held;
    }
  }

  /** Specs held now (for tests). */
  get size(): number {
    return [...this.held.values()].filter((r) => r.deref() !== undefined).length;
  }
}

/** Equal as decoded: the same own fields with the same values, all the way down (bytes by content). */
export function sameFields(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (ArrayBuffer.isView(a) || ArrayBuffer.isView(b)) {
    return ArrayBuffer.isView(a) && ArrayBuffer.isView(b) && Buffer.compare(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), new Uint8Array(b.buffer, b.byteOffset, b.byteLength)) === 0;
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameFields(a[i], b[i])) return false;
    return true;
  }
  // Key by key without listing them (no array per object: this runs for every task decoded).
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  let count = 0;
  for (const k in ra) {
    if (!Object.prototype.hasOwnProperty.call(ra, k)) continue;
    if (!Object.prototype.hasOwnProperty.call(rb, k) || !sameFields(ra[k], rb[k])) return false;
    count++;
  }
  for (const k in rb) if (Object.prototype.hasOwnProperty.call(rb, k)) count--;
  return count === 0;
}
