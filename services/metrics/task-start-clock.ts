import { TaskState } from '../gen/swarmlet/v1/types';
import { metrics } from './metrics';

/**
 * Times tasks from their assignment to this node (when its worker first hears of them) to running,
 * into swarmlet_task_start_duration_seconds. A task adopted after a restart (first reported running)
 * is not counted; a task that ends before it runs is forgotten.
 */
export class TaskStartClock {
  private readonly since = new Map<string, number>();

  constructor(private readonly now: () => number = () => performance.now()) {}

  assigned(taskId: string): void {
    if (!this.since.has(taskId)) this.since.set(taskId, this.now());
  }

  /** A state the worker reported, after `previous` (undefined: its first report since the worker started). */
  reported(taskId: string, previous: TaskState | undefined, state: TaskState): void {
    if (state < TaskState.TASK_STATE_RUNNING) return;
    const since = this.since.get(taskId);
    this.since.delete(taskId);
    if (since !== undefined && previous !== undefined && previous < TaskState.TASK_STATE_RUNNING && state === TaskState.TASK_STATE_RUNNING) {
      metrics.taskStartSeconds.observe((this.now() - since) / 1000);
    }
  }

  forget(taskId: string): void {
    this.since.delete(taskId);
  }
}
