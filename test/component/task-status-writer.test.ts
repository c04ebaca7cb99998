/** Agents' task reports written together (the dispatcher's TaskStatusWriter) over the in-memory store. */
import pino from 'pino';
import { Task, TaskState, TaskStatus } from '../../services/gen/swarmlet/v1/types';
import { MemoryStore } from '../../manager/store/memory-store';
import { TaskChange } from '../../manager/store/store';
import { TaskStatusWriter } from '../../manager/task-status-writer';

const log = pino({ level: 'silent' });

/** The in-memory store, counting its batched task writes. */
class CountingStore extends MemoryStore {
  batches: number[] = [];

  override async updateTasks(changes: TaskChange[]): Promise<Task[]> {
    this.batches.push(changes.length);
    return super.updateTasks(changes);
  }
}

const assigned = (id: string, nodeId: string) =>
  Task.fromPartial({ id, serviceId: 'web', serviceName: 'web', slot: 1, nodeId, desiredState: TaskState.TASK_STATE_RUNNING, status: { state: TaskState.TASK_STATE_ASSIGNED, message: 'assigned', timestamp: '' } });
const status = (state: TaskState, message = ''): TaskStatus => TaskStatus.fromPartial({ state, message, timestamp: new Date().toISOString() });
const stateOf = async (store: MemoryStore, id: string) => (await store.getTask(id))?.status?.state;

test('reports from many nodes that arrive while a write is under way go out together', async () => {
  const store = new CountingStore();
  const nodes = Array.from({ length: 50 }, (_, i) => `n${i}`);
  await store.createTasks(nodes.flatMap((n) => [assigned(`${n}-a`, n), assigned(`${n}-b`, n)]));
  const writer = new TaskStatusWriter(store, log);
  await Promise.all(nodes.map((n) => writer.record(n, [{ taskId: `${n}-a`, status: status(TaskState.TASK_STATE_RUNNING) }, { taskId: `${n}-b`, status: status(TaskState.TASK_STATE_RUNNING) }])));
  for (const n of nodes) expect([await stateOf(store, `${n}-a`), await stateOf(store, `${n}-b`)]).toEqual([TaskState.TASK_STATE_RUNNING, TaskState.TASK_STATE_RUNNING]);
  // The first report is written at once; the 49 that came meanwhile make one more write.
  expect(store.batches).toEqual([2, 98]);
});

test("a node's report of another node's task is dropped, and the owner's report in the same batch is written", async () => {
  const store = new CountingStore();
  await store.createTasks([assigned('t1', 'n1'), assigned('t0', 'n0')]);
  const writer = new TaskStatusWriter(store, log);
  await Promise.all([
    writer.record('n0', [{ taskId: 't0', status: status(TaskState.TASK_STATE_RUNNING) }]),
    // Queued behind n0's write: both reports of t1 go in the next batch.
    writer.record('n2', [{ taskId: 't1', status: status(TaskState.TASK_STATE_FAILED, 'lie') }]),
    writer.record('n1', [{ taskId: 't1', status: status(TaskState.TASK_STATE_RUNNING, 'started') }]),
  ]);
  const t1 = await store.getTask('t1');
  expect([t1?.status?.state, t1?.status?.message]).toEqual([TaskState.TASK_STATE_RUNNING, 'started']);
});

test("a report behind the stored state, or behind the same node's earlier report in the batch, moves nothing back", async () => {
  const store = new CountingStore();
  await store.createTasks([assigned('t0', 'n0'), assigned('t1', 'n1'), assigned('t2', 'n1')]);
  await store.mutateTask('t1', (t) => ({ ...t, status: status(TaskState.TASK_STATE_RUNNING) }));
  const writer = new TaskStatusWriter(store, log);
  await Promise.all([
    writer.record('n0', [{ taskId: 't0', status: status(TaskState.TASK_STATE_RUNNING) }]),
    writer.record('n1', [{ taskId: 't1', status: status(TaskState.TASK_STATE_STARTING) }, { taskId: 't2', status: status(TaskState.TASK_STATE_RUNNING) }]),
    writer.record('n1', [{ taskId: 't2', status: status(TaskState.TASK_STATE_STARTING) }]),
  ]);
  expect(await stateOf(store, 't1')).toBe(TaskState.TASK_STATE_RUNNING);
  expect(await stateOf(store, 't2')).toBe(TaskState.TASK_STATE_RUNNING);
});

test('a report that loses a race with another write is read again and written', async () => {
  const store = new CountingStore();
  await store.createTasks([assigned('t1', 'n1')]);
  const writer = new TaskStatusWriter(store, log);
  // The orchestrator retires the task between the writer's read and its write.
  const getTasks = store.getTasks.bind(store);
  store.getTasks = async (ids) => {
    const read = await getTasks(ids);
    await store.mutateTask('t1', (t) => ({ ...t, desiredState: TaskState.TASK_STATE_SHUTDOWN }));
    return read;
  };
  await writer.record('n1', [{ taskId: 't1', status: status(TaskState.TASK_STATE_RUNNING) }]);
  const t1 = await store.getTask('t1');
  expect([t1?.status?.state, t1?.desiredState]).toEqual([TaskState.TASK_STATE_RUNNING, TaskState.TASK_STATE_SHUTDOWN]);
});

test("at info the manager's log has a task's failure, not its way to running (the node's log has that)", async () => {
  const store = new CountingStore();
  await store.createTasks([assigned('t0', 'n0'), assigned('t1', 'n1')]);
  const lines: { level: number; state?: string; msg: string }[] = [];
  const infoLog = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const writer = new TaskStatusWriter(store, infoLog);
  await writer.record('n0', [{ taskId: 't0', status: status(TaskState.TASK_STATE_RUNNING, 'started') }]);
  await writer.record('n1', [{ taskId: 't1', status: status(TaskState.TASK_STATE_FAILED, 'exit 1') }]);
  expect(lines.filter((l) => l.msg === 'task state changed').map((l) => [l.state, l.level])).toEqual([['TASK_STATE_FAILED', 30]]);
});
