/**
 * What agents report of their tasks, written together. Reports that arrive while a write is under
 * way, from every session, go out in the next one: a thousand nodes reporting at once make a few
 * large compare-and-swap transactions (updateTasks batches them, several in flight), not one small
 * one per report, each with its own read of the tasks. A report resolves once what it said is
 * written, or dropped: a task of another node, or a state behind the stored one (an old report
 * arriving late). A write that fails fails the reports it carried; the agents send them again.
 */
import { Logger } from '../services/common/logger';
import { TaskStatusUpdate } from '../services/gen/swarmlet/v1/dispatcher';
import { Task, TaskState, TaskStatus } from '../services/gen/swarmlet/v1/types';
import { Store } from './store/store';

/** The reported states the manager logs at info: a task that failed or could not start. */
const FAILED_STATES = new Set([TaskState.TASK_STATE_FAILED, TaskState.TASK_STATE_REJECTED]);

interface Report {
  nodeId: string;
  taskId: string;
  status: TaskStatus;
}

/** `next` for `t`, as reported by `nodeId`; undefined when it is dropped or changes nothing. */
export function planReportedStatus(t: Task, nodeId: string, status: TaskStatus): Task | undefined {
  if (t.nodeId !== nodeId) return undefined;
  const was = t.status?.state ?? TaskState.TASK_STATE_NEW;
  if (status.state < was || (status.state === was && JSON.stringify(status) === JSON.stringify(t.status))) return undefined;
  return { ...t, status };
}

export class TaskStatusWriter {
  /** Reports not written yet, by node and task: one node's later report of a task replaces its earlier one. */
  private queued = new Map<string, Report>();
  private waiting: { resolve: () => void; reject: (err: unknown) => void }[] = [];
  private writing = false;

  constructor(private readonly store: Store, private readonly log: Logger) {}

  /** Queues a node's reports; resolves once they are written (or dropped). */
  record(nodeId: string, updates: TaskStatusUpdate[]): Promise<void> {
    for (const u of updates) {
      if (!u.status) continue;
      const key = `${nodeId}/${u.taskId}`;
      const earlier = this.queued.get(key);
      // Within one node's reports a state never goes back: the higher one stands, as the store would keep it.
      if (earlier && u.status.state < earlier.status.state) continue;
      this.queued.set(key, { nodeId, taskId: u.taskId, status: u.status });
    }
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      if (!this.writing) void this.drain();
    });
  }

  /** Writes what is queued, then what was queued meanwhile, until nothing is. */
  private async drain(): Promise<void> {
    this.writing = true;
    try {
      while (this.waiting.length > 0) {
        const reports = [...this.queued.values()];
        const waiting = this.waiting;
        this.queued = new Map();
        this.waiting = [];
        try {
          await this.write(reports);
          for (const w of waiting) w.resolve();
        } catch (err) {
          for (const w of waiting) w.reject(err);
        }
      }
    } finally {
      this.writing = false;
    }
  }

  private async write(reports: Report[]): Promise<void> {
    if (reports.length === 0) return;
    const byTask = new Map<string, Report[]>();
    for (const r of reports) {
      const list = byTask.get(r.taskId);
      if (list) list.push(r);
      else byTask.set(r.taskId, [r]);
    }
    // One report per task goes in the batch: its own node's (another node's is dropped).
    const apply = (t: Task): Task | undefined => {
      const mine = byTask.get(t.id)?.find((r) => r.nodeId === t.nodeId);
      for (const r of byTask.get(t.id) ?? []) if (r !== mine) this.log.warn({ nodeId: r.nodeId, taskId: t.id }, 'status for a task of another node dropped');
      if (!mine) return undefined;
      const after = planReportedStatus(t, mine.nodeId, mine.status);
      const was = t.status?.state ?? TaskState.TASK_STATE_NEW;
      if (after && mine.status.state !== was) {
        const fields = { nodeId: mine.nodeId, taskId: t.id, state: TaskState[mine.status.state], message: mine.status.message, err: mine.status.err || undefined };
        // A task's way to running is the node's to log (its worker does); the manager's log says when one fails. 30,000 lines at info were 2% of a leader's CPU.
        if (FAILED_STATES.has(mine.status.state)) this.log.info(fields, 'task state changed');
        else this.log.debug(fields, 'task state changed');
      }
      return after;
    };
    const changes = (await this.store.getTasks([...byTask.keys()])).flatMap((t) => {
      const after = apply(t);
      return after ? [{ before: t, after }] : [];
    });
    // What lost a race (the orchestrator retiring the task meanwhile, say) is read again and
    // applied again: an agent's report is never dropped for that.
    for (const t of await this.store.updateTasks(changes)) {
      const mine = byTask.get(t.id)?.find((r) => r.nodeId === t.nodeId);
      if (mine) await this.store.mutateTask(t.id, (x) => planReportedStatus(x, mine.nodeId, mine.status));
    }
  }
}
