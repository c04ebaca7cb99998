/** Small facts about tasks that every plan here shares. */
import { isCanonicalTime } from '../../services/common/iso-time';
import { PublishMode, Service, Task, TaskState } from '../../services/gen/swarmlet/v1/types';

const RUNNING = TaskState.TASK_STATE_RUNNING;

/** The task's actual state (NEW when it has no status yet). */
export const actualState = (t: Task): TaskState => t.status?.state ?? TaskState.TASK_STATE_NEW;

/** Desired to run (or still being prepared to). */
export const isLive = (t: Task): boolean => t.desiredState <= RUNNING;

/** Reported a state past RUNNING: it will never run again. */
export const isTerminal = (t: Task): boolean => actualState(t) > RUNNING;

/** Ended by itself rather than because swarmlet asked it to stop (or lost it): these count as failures and restarts. */
export const endedByItself = (t: Task): boolean => {
  const s = actualState(t);
  return s === TaskState.TASK_STATE_COMPLETE || s === TaskState.TASK_STATE_FAILED || s === TaskState.TASK_STATE_REJECTED;
};

/** Milliseconds since the epoch of an RFC 3339 text, or undefined. */
export function parseTime(text: string | undefined): number | undefined {
  if (!text) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}

/** When the task reached its current state (its status timestamp, else its creation). */
export const statusTime = (t: Task): number => parseTime(t.status?.timestamp) ?? parseTime(t.createdAt) ?? 0;

export const createdTime = (t: Task): number => parseTime(t.createdAt) ?? 0;

/** Oldest first; ties broken by id so that every plan sees the same order. */
export function byAge(a: Task, b: Task): number {
  // Sorting thousands of new tasks parsed two times per comparison: the text compares as well when both are canonical.
  const age = isCanonicalTime(a.createdAt) && isCanonicalTime(b.createdAt) ? (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0) : createdTime(a) - createdTime(b);
  return age || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** A new task for a slot (replicated) or a node (global), from the service's current spec. */
export function newTask(service: Service, id: string, slot: number, nodeId: string, now: Date): Task {
  const timestamp = now.toISOString();
  return {
    id,
    meta: undefined,
    serviceId: service.id,
    serviceName: service.spec?.name ?? '',
    slot,
    nodeId,
    spec: service.spec?.task,
    specVersion: service.specVersion,
    desiredState: RUNNING,
    status: { state: TaskState.TASK_STATE_NEW, timestamp, message: 'created', err: '', container: undefined },
    createdAt: timestamp,
    networks: [],
  };
}

/**
 * Whether two protobuf messages (as ts-proto decodes them) mean the same: a field that is
 * absent, empty or zero equals its default, so a spec that went through the store compares equal
 * to the one it was copied from.
 */
export function sameMessage(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (isEmpty(a) && isEmpty(b)) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((v, i) => sameMessage(v, b[i]));
  }
  if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null) {
    const ra = a as Record<string, unknown>;
    const rb = b as Record<string, unknown>;
    for (const k of new Set([...Object.keys(ra), ...Object.keys(rb)])) if (!sameMessage(ra[k], rb[k])) return false;
    return true;
  }
  if (isEmpty(a) || isEmpty(b)) {
    // an absent message against a present one whose fields are all defaults
    const other = isEmpty(a) ? b : a;
    return typeof other === 'object' && other !== null && Object.values(other).every(isDefault);
  }
  return false;
}

function isEmpty(v: unknown): boolean {
  return v === undefined || v === null || v === 0 || v === '' || v === false || (Array.isArray(v) && v.length === 0);
}

function isDefault(v: unknown): boolean {
  if (isEmpty(v)) return true;
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) return Object.values(v).every(isDefault);
  return false;
}

/**
 * Out of date: made from an older version of the service's spec whose task spec differs from
 * today's. The manager bumps spec_version only when the task spec changes (never for replicas),
 * so the version alone decides in practice; comparing the specs as well means a rollback replaces
 * only the tasks the update had changed, as swarmkit's IsTaskDirty does.
 */
export function isOutOfDate(service: Service, t: Task): boolean {
  return t.specVersion < service.specVersion && (!sameMessage(t.spec, service.spec?.task) || ingressMismatch(service, t));
}

/** An allocated task on the ingress network of a service without ingress ports, or the other way round. */
function ingressMismatch(service: Service, t: Task): boolean {
  if (actualState(t) < TaskState.TASK_STATE_PENDING) return false;
  const wants = (service.spec?.endpoint?.ports ?? []).some((p) => p.publishMode !== PublishMode.PUBLISH_MODE_HOST);
  const has = (t.networks ?? []).some((a) => a.networkName === 'ingress' && !(t.spec?.networks ?? []).includes(a.networkName) && !(t.spec?.networks ?? []).includes(a.networkId));
  return wants !== has;
}
