/**
 * The restart policy, decided from the tasks alone (swarmkit keeps restart history in memory; here
 * it is read back from the slot's task history, so a new leader decides as the old one would).
 */
import { RestartCondition, Task, TaskState } from '../../services/gen/swarmlet/v1/types';
import type { EffectiveRestartPolicy } from './defaults';
import { actualState, createdTime, endedByItself, statusTime } from './tasks';

export type RestartDecision =
  /** Replace it now. */
  | { kind: 'restart' }
  /** Replace it at `at` (the restart delay has not passed yet). */
  | { kind: 'wait'; at: number }
  /** Leave the slot dead; `until`, when set, is when a counted attempt leaves the window and the decision may change. */
  | { kind: 'stay'; reason: string; until?: number };

/**
 * Restarts already made for `dead`'s slot that count against max_attempts: the older tasks of the
 * same spec version (a new spec starts the count afresh, as swarmkit does) that ended by
 * themselves, within the window when there is one.
 */
export function countedRestarts(dead: Task, slotTasks: readonly Task[], policy: EffectiveRestartPolicy, now: number): Task[] {
  if (policy.maxAttempts <= 0) return [];
  const since = policy.windowMs > 0 ? now - policy.windowMs : -Infinity;
  return slotTasks.filter(
    (t) => t !== dead && t.specVersion === dead.specVersion && createdTime(t) <= createdTime(dead) && endedByItself(t) && statusTime(t) > since,
  );
}

/**
 * What to do about `dead`, the current task of a slot that reached a terminal state while it was
 * still desired to run. on-failure restarts anything but a clean exit (COMPLETE), as swarmkit.
 */
export function planRestart(dead: Task, slotTasks: readonly Task[], policy: EffectiveRestartPolicy, now: number): RestartDecision {
  if (policy.condition === RestartCondition.RESTART_CONDITION_NONE) return { kind: 'stay', reason: 'restart condition none' };
  if (policy.condition === RestartCondition.RESTART_CONDITION_ON_FAILURE && actualState(dead) === TaskState.TASK_STATE_COMPLETE) {
    return { kind: 'stay', reason: 'completed, restart condition on-failure' };
  }
  const counted = countedRestarts(dead, slotTasks, policy, now);
  if (policy.maxAttempts > 0 && counted.length >= policy.maxAttempts) {
    const until = policy.windowMs > 0 ? Math.min(...counted.map(statusTime)) + policy.windowMs : undefined;
    return { kind: 'stay', reason: `restarted ${counted.length} times, the most allowed`, until };
  }
  const at = statusTime(dead) + policy.delayMs;
  return now >= at ? { kind: 'restart' } : { kind: 'wait', at };
}
