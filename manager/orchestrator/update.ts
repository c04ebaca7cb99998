/**
 * Rolling updates, planned from the service and its slots alone (swarmkit runs an updater
 * goroutine with in-memory state; here each run re-derives where the update stands, so a new
 * leader carries on where the old one stopped).
 *
 * - A slot is out of date when its current task was made from an older spec version (and its task
 *   spec differs; see `isOutOfDate`). The manager bumps spec_version only when the task spec
 *   changes: scaling (replicas) never bumps it, so scaling never starts a rolling update.
 * - Batches: at most `parallelism` slots (0: all) are replaced together. The next batch starts
 *   once every slot of the last one has a new task that has run for `monitor` (the batch is
 *   healthy past the monitor period) and `delay` has passed since the last batch started
 *   (update_status.last_batch_at).
 * - Order: stop-first shuts the old task down and creates the new one once the old one reported
 *   that it stopped; start-first creates the new one at once and shuts the old one down once the
 *   new one runs, so the number of running tasks never drops.
 * - Failures: a task made by this update (the first of the new version in a slot that had an older
 *   one) that ends by itself (complete, failed, rejected) counts as a failure when it did so while
 *   its batch was being watched: within `monitor` of its creation, or before the next batch
 *   started, or while its batch is the last one started. (A failed task does not tell when it
 *   started running, so the plan watches the whole batch rather than each task's first
 *   `monitor` milliseconds of running.) When failures / slots exceeds max_failure_ratio the
 *   failure action applies: pause (PAUSED, no more batches until the spec changes), continue, or
 *   rollback (ROLLBACK_STARTED).
 * - Rollback: the manager, seeing ROLLBACK_STARTED, swaps spec and previous_spec and bumps
 *   spec_version, keeping update_status. Until it has, the plan holds. Afterwards the update
 *   proceeds towards the restored spec with the rollback config, and ends ROLLBACK_COMPLETED, or
 *   ROLLBACK_PAUSED on failure (a rollback is never rolled back).
 * - The manager resets update_status to undefined whenever it writes a new spec version other than
 *   for a rollback (as swarmkit's control API does); a PAUSED or ROLLBACK_PAUSED update holds until then.
 */
import { Service, Task, TaskState, UpdateFailureAction, UpdateOrder, UpdateState, UpdateStatus } from '../../services/gen/swarmlet/v1/types';
import { updateConfigOf } from './defaults';
import type { SlotView } from './slots';
import { actualState, createdTime, endedByItself, isOutOfDate, isTerminal, parseTime, sameMessage, statusTime } from './tasks';

export interface UpdateInput {
  service: Service;
  /** The slots the service wants filled (replicated: 1..replicas; global: the nodes tasks may run on now). */
  slots: readonly SlotView[];
  now: Date;
}

export interface UpdatePlan {
  /** Keys of the slots to replace now. */
  replace: Set<string>;
  order: UpdateOrder;
  /** The new update status, when it changes. */
  updateStatus?: UpdateStatus;
  /** When the update wants to look again (delay between batches, end of a monitor period). */
  wakeAt?: Date;
}

const { UPDATE_STATE_UNKNOWN, UPDATE_STATE_UPDATING, UPDATE_STATE_PAUSED, UPDATE_STATE_COMPLETED } = UpdateState;
const { UPDATE_STATE_ROLLBACK_STARTED, UPDATE_STATE_ROLLBACK_PAUSED, UPDATE_STATE_ROLLBACK_COMPLETED } = UpdateState;

export function planUpdate(input: UpdateInput): UpdatePlan {
  const { service, slots } = input;
  const now = input.now.getTime();
  const nowText = input.now.toISOString();
  const previous = service.updateStatus;
  const state = previous?.state ?? UPDATE_STATE_UNKNOWN;
  const rollingBack = state === UPDATE_STATE_ROLLBACK_STARTED || state === UPDATE_STATE_ROLLBACK_PAUSED;
  const config = updateConfigOf(service.spec, rollingBack);
  const hold: UpdatePlan = { replace: new Set(), order: config.order };
  if (state === UPDATE_STATE_PAUSED || state === UPDATE_STATE_ROLLBACK_PAUSED) return hold;

  const dirty = slots.filter((s) => s.current !== undefined && isOutOfDate(service, s.current));
  const inProgress = state === UPDATE_STATE_UPDATING || state === UPDATE_STATE_ROLLBACK_STARTED;
  if (!inProgress && dirty.length === 0) return hold;
  if (state === UPDATE_STATE_ROLLBACK_STARTED && awaitingSwap(service, slots, previous!)) return hold;

  let status: UpdateStatus = inProgress
    ? { ...previous! }
    : { state: UPDATE_STATE_UPDATING, startedAt: nowText, completedAt: '', message: 'update in progress', lastBatchAt: '', failures: 0 };
  const changed = (): UpdateStatus | undefined => (sameStatus(status, previous) ? undefined : status);

  const failed = failures(service, slots, status, config.monitorMs);
  if (failed.length !== status.failures) status = { ...status, failures: failed.length };
  const tooMany = failed.length > 0 && failed.length / Math.max(slots.length, 1) > config.maxFailureRatio;
  if (tooMany && config.failureAction !== UpdateFailureAction.UPDATE_FAILURE_ACTION_CONTINUE) {
    const culprit = failed.reduce((a, b) => (statusTime(b) > statusTime(a) ? b : a)).id;
    const why = `due to failure or early termination of task ${culprit}`;
    if (rollingBack) {
      status = { ...status, state: UPDATE_STATE_ROLLBACK_PAUSED, message: `rollback paused ${why}` };
    } else if (config.failureAction === UpdateFailureAction.UPDATE_FAILURE_ACTION_ROLLBACK && service.previousSpec) {
      status = { state: UPDATE_STATE_ROLLBACK_STARTED, startedAt: nowText, completedAt: '', message: `update rolled back ${why}`, lastBatchAt: '', failures: 0 };
    } else {
      const note = config.failureAction === UpdateFailureAction.UPDATE_FAILURE_ACTION_ROLLBACK ? ' (no previous spec to roll back to)' : '';
      status = { ...status, state: UPDATE_STATE_PAUSED, message: `update paused ${why}${note}` };
    }
    return { ...hold, updateStatus: changed() };
  }

  let settleAt = Infinity;
  let inFlight = 0;
  for (const slot of slots) {
    const until = unsettledUntil(service, slot, now, config.monitorMs);
    if (until === undefined) continue;
    inFlight++;
    if (until > now) settleAt = Math.min(settleAt, until);
  }
  const wake = (ms: number): Date | undefined => (ms === Infinity ? undefined : new Date(ms));

  if (dirty.length === 0 && inFlight === 0) {
    status = rollingBack
      ? { ...status, state: UPDATE_STATE_ROLLBACK_COMPLETED, completedAt: nowText, message: 'rollback completed' }
      : { ...status, state: UPDATE_STATE_COMPLETED, completedAt: nowText, message: 'update completed' };
    return { ...hold, updateStatus: changed() };
  }
  if (dirty.length === 0 || inFlight > 0) return { ...hold, updateStatus: changed(), wakeAt: wake(settleAt) };

  const lastBatch = parseTime(status.lastBatchAt);
  if (lastBatch !== undefined && now < lastBatch + config.delayMs) {
    return { ...hold, updateStatus: changed(), wakeAt: new Date(lastBatch + config.delayMs) };
  }
  const size = config.parallelism === 0 ? dirty.length : Math.min(config.parallelism, dirty.length);
  // Slots whose task does not run go first: replacing them costs nothing that serves.
  const ordered = [...dirty.filter((s) => !runs(s)), ...dirty.filter(runs)];
  status = { ...status, lastBatchAt: nowText };
  return { replace: new Set(ordered.slice(0, size).map((s) => s.key)), order: config.order, updateStatus: changed() };
}

const runs = (s: SlotView): boolean => s.current !== undefined && actualState(s.current) === TaskState.TASK_STATE_RUNNING;

/**
 * When a slot will have settled (its current task up to date and running for the monitor
 * period): undefined when it has, or when it is out of date or dead (nothing to wait for);
 * Infinity when only an event (the task starting) can settle it.
 */
function unsettledUntil(service: Service, slot: SlotView, now: number, monitorMs: number): number | undefined {
  const c = slot.current;
  if (!c) return Infinity; // being created, or waiting for the old task to stop
  if (isOutOfDate(service, c) || isTerminal(c)) return undefined;
  if (actualState(c) < TaskState.TASK_STATE_RUNNING) return Infinity;
  const health = c.status?.container?.health;
  if (health === 'starting' || health === 'unhealthy') return Infinity;
  if (slot.live.length > 1) return Infinity;
  const until = statusTime(c) + monitorMs;
  return now < until ? until : undefined;
}

/** Tasks made by the update in progress that failed while it watched them. */
function failures(service: Service, slots: readonly SlotView[], status: UpdateStatus, monitorMs: number): Task[] {
  const startedAt = parseTime(status.startedAt) ?? -Infinity;
  const lastBatch = parseTime(status.lastBatchAt);
  const failed: Task[] = [];
  for (const slot of slots) {
    const index = slot.tasks.findIndex((t) => t.specVersion === service.specVersion);
    if (index <= 0) continue; // none of the new version, or the slot is new: not made by the update
    const first = slot.tasks[index];
    const created = createdTime(first);
    if (created < startedAt || !isTerminal(first) || !endedByItself(first)) continue;
    const ended = statusTime(first);
    if (ended - created <= monitorMs || lastBatch === undefined || created >= lastBatch || ended <= lastBatch) failed.push(first);
  }
  return failed;
}

/**
 * ROLLBACK_STARTED as this plan wrote it, before the manager swapped the specs: tasks of the
 * current (failing) version made before the rollback started still exist, and the previous spec
 * differs from the current one. After the swap the version is new and only tasks made since carry
 * it (a manual rollback that changes no task spec keeps the version, but then there is nothing
 * to hold for).
 */
function awaitingSwap(service: Service, slots: readonly SlotView[], status: UpdateStatus): boolean {
  const startedAt = parseTime(status.startedAt);
  if (startedAt === undefined || sameMessage(service.previousSpec?.task, service.spec?.task)) return false;
  return slots.some((s) => s.tasks.some((t) => t.specVersion === service.specVersion && createdTime(t) < startedAt));
}

function sameStatus(a: UpdateStatus, b: UpdateStatus | undefined): boolean {
  return (
    b !== undefined &&
    a.state === b.state &&
    a.startedAt === b.startedAt &&
    a.completedAt === b.completedAt &&
    a.message === b.message &&
    a.lastBatchAt === b.lastBatchAt &&
    a.failures === b.failures
  );
}
