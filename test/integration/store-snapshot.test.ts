/** The watched snapshot against a real etcd: listed once, kept by its watch, resynced when the watch is lost. */
import pino from 'pino';
import { Watcher } from 'etcd3';
import { Node, NodeAvailability, NodeRole, NodeState, Task, TaskState } from '../../services/gen/swarmlet/v1/types';
import { EtcdStore } from '../../manager/store/etcd-store';
import { SNAPSHOT_PREFIXES, SNAPSHOT_ROOTS, keys } from '../../manager/store/keys';
import { WatchedSnapshot } from '../../manager/store/snapshot';
import { ClusterEvents } from '../../manager/events/cluster-events';
import { allocatorLoop, schedulerLoop } from '../../manager/task-loops';
import { useEtcd } from './etcd-fixture';

const log = pino({ level: 'silent' });
const etcd = useEtcd();
let snapshot: WatchedSnapshot | undefined;

afterEach(async () => {
  await snapshot?.stop();
  snapshot = undefined;
});

const task = (id: string) => Task.fromPartial({ id, serviceId: 'svc', slot: 1, desiredState: TaskState.TASK_STATE_RUNNING, status: { state: TaskState.TASK_STATE_NEW, message: '', timestamp: '' } });
const node = (id: string) =>
  Node.fromPartial({ id, role: NodeRole.NODE_ROLE_WORKER, spec: { desiredRole: NodeRole.NODE_ROLE_WORKER, availability: NodeAvailability.NODE_AVAILABILITY_ACTIVE, labels: {} }, status: { state: NodeState.NODE_STATE_READY } });

function stores(): { direct: EtcdStore; watched: EtcdStore; snapshot: WatchedSnapshot } {
  snapshot = new WatchedSnapshot(etcd.client, SNAPSHOT_ROOTS, SNAPSHOT_PREFIXES, log);
  const direct = new EtcdStore(etcd.client);
  return { direct, watched: direct.withSnapshot(snapshot), snapshot };
}

async function eventually(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('never held');
}

test('lists once; later reads come from the snapshot and read nothing from etcd', async () => {
  const { direct, watched, snapshot } = stores();
  await direct.createTasks([task('a'), task('b')]);
  expect((await watched.listTasks()).map((t) => t.id).sort()).toEqual(['a', 'b']);
  const listed = snapshot.stats();
  expect(listed.lists).toBe(1);
  expect(listed.keys).toBe(2);
  for (let i = 0; i < 3; i++) await Promise.all([watched.listTasks(), watched.listNodes(), watched.heartbeatingNodes()]);
  const after = snapshot.stats();
  expect({ ranges: after.ranges, bytes: after.bytes, lists: after.lists }).toEqual({ ranges: listed.ranges, bytes: listed.bytes, lists: 1 });
  expect(watched.readStats().bytes).toBe(0);
});

test('follows changes made by others through its watch, and tells its listeners', async () => {
  const { direct, watched } = stores();
  let heard = 0;
  const unwatch = await watched.watchPrefixes([keys.tasksPrefix], () => heard++);
  await direct.createNode(node('n1'));
  await direct.createTasks([task('a')]);
  await eventually(async () => (await watched.listTasks()).length === 1 && heard > 0);
  await direct.deleteTasks(['a']);
  await eventually(async () => (await watched.listTasks()).length === 0);
  expect((await watched.listNodes()).map((n) => n.id)).toEqual(['n1']);
  await unwatch();
});

test('a read after a write through the store sees that write', async () => {
  const { watched } = stores();
  await watched.listTasks();
  for (let i = 0; i < 20; i++) {
    await watched.createTasks([task(`t${i}`)]);
    const [t] = (await watched.listTasks()).filter((x) => x.id === `t${i}`);
    expect(t).toBeDefined();
    expect(await watched.updateTasks([{ before: t, after: { ...t, status: { ...t.status!, state: TaskState.TASK_STATE_PENDING } } }])).toEqual([]);
    const [u] = (await watched.listTasks()).filter((x) => x.id === `t${i}`);
    expect(u.status?.state).toBe(TaskState.TASK_STATE_PENDING);
    expect(u.meta!.version).toBeGreaterThan(t.meta!.version);
  }
});

test('getTasks reads the tasks asked for from the snapshot, as current as a list, and nothing from etcd', async () => {
  const { direct, watched, snapshot } = stores();
  await direct.createTasks([task('a'), task('b'), task('c')]);
  await watched.listTasks();
  const listed = snapshot.stats();
  const [b] = await watched.getTasks(['b']);
  expect(b.id).toBe('b');
  expect(await watched.updateTasks([{ before: b, after: { ...b, status: { ...b.status!, state: TaskState.TASK_STATE_PENDING } } }])).toEqual([]);
  const got = await watched.getTasks(['c', 'gone', 'b']);
  expect(got.map((t) => [t.id, t.status?.state])).toEqual([['c', TaskState.TASK_STATE_NEW], ['b', TaskState.TASK_STATE_PENDING]]);
  expect(got).toEqual(await direct.getTasks(['c', 'gone', 'b']));
  expect({ ranges: snapshot.stats().ranges, lists: snapshot.stats().lists }).toEqual({ ranges: listed.ranges, lists: 1 });
  expect(watched.readStats().bytes).toBe(0);
});

test('a key it holds keeps only its own bytes, not the whole etcd reply it came in', async () => {
  const { direct, snapshot } = stores();
  // 2 KiB a task, 50 to a transaction: each list page and each watch reply carries about 100 KiB.
  const big = (id: string) => ({ ...task(id), spec: { container: { image: 'exec:/', args: ['x'.repeat(2048)] } } }) as Task;
  const batch = (prefix: string) => Array.from({ length: 50 }, (_, i) => big(`${prefix}${i}`));
  await direct.createTasks(batch('listed'));
  await snapshot.start();
  await direct.createTasks(batch('watched'));
  let values: { id: string; bytes: number }[] = [];
  await eventually(async () => {
    values = (await snapshot.read(keys.tasksPrefix, (kv) => kv)).values.map((kv) => ({ id: kv.key.toString(), bytes: Math.max(kv.value.buffer.byteLength, kv.key.buffer.byteLength) }));
    return values.length === 100;
  });
  // A copy of a value this size sits in its own small buffer (or Node's 8 KiB pool), never in the reply's 100 KiB.
  expect(values.filter((v) => v.bytes > 16 * 1024)).toEqual([]);
});

test('a key read is held decoded alone: its bytes go once a reader decoded them; a change holds the new bytes until read', async () => {
  const { direct, watched, snapshot } = stores();
  await direct.createTasks([task('a'), task('b')]);
  await snapshot.start();
  expect(snapshot.stats().rawBytes).toBeGreaterThan(0);
  expect((await watched.listTasks()).map((t) => t.id).sort()).toEqual(['a', 'b']);
  expect(snapshot.stats().rawBytes).toBe(0);
  const [a] = await watched.getTasks(['a']);
  await watched.updateTasks([{ before: a!, after: { ...a!, status: { ...a!.status!, state: TaskState.TASK_STATE_PENDING } } }]);
  await eventually(async () => snapshot.stats().rawBytes > 0);
  expect((await watched.getTasks(['a']))[0]?.status?.state).toBe(TaskState.TASK_STATE_PENDING);
  expect(snapshot.stats().rawBytes).toBe(0);
});

test('after its watch is lost and the history compacted, it lists again and drops what went', async () => {
  const { direct, watched, snapshot } = stores();
  await direct.createTasks([task('stays'), task('goes')]);
  expect(await watched.listTasks()).toHaveLength(2);
  // The watch is lost: it misses a delete and a create, and etcd compacts that history away.
  const internals = snapshot as unknown as { watchers: Watcher[] };
  const lostWatcher = internals.watchers[0]!;
  await lostWatcher.cancel();
  await direct.deleteTasks(['goes']);
  await direct.createTasks([task('new')]);
  const rev = Number((await etcd.client.get(keys.task('new')).exec()).header.revision);
  await etcd.client.kv.compact({ revision: rev });
  lostWatcher.emit('error', new Error('watch lost'));
  await eventually(async () => snapshot.stats().lists === 2);
  expect((await watched.listTasks()).map((t) => t.id).sort()).toEqual(['new', 'stays']);
  // And it watches again from there.
  await direct.createTasks([task('later')]);
  await eventually(async () => (await watched.listTasks()).some((t) => t.id === 'later'));
});

test('the real allocator and scheduler converge on the snapshot; a pass with nothing to do reads nothing from etcd', async () => {
  const { direct, watched, snapshot } = stores();
  await direct.createNode(node('n1'));
  await direct.createTasks([task('a'), task('b')]);
  const loops = [allocatorLoop(watched, log), schedulerLoop(watched, log)];
  for (const l of loops) l.start();
  try {
    await eventually(async () => (await direct.listTasks()).every((t) => t.status?.state === TaskState.TASK_STATE_ASSIGNED && t.nodeId === 'n1'));
    await new Promise((r) => setTimeout(r, 200));
    const before = { snapshot: snapshot.stats(), store: watched.readStats() };
    for (const l of loops) l.poke();
    await new Promise((r) => setTimeout(r, 300));
    const after = snapshot.stats();
    expect({ ranges: after.ranges, bytes: after.bytes, lists: after.lists, revision: after.revision }).toEqual({
      ranges: before.snapshot.ranges,
      bytes: before.snapshot.bytes,
      lists: before.snapshot.lists,
      revision: before.snapshot.revision,
    });
    expect(watched.readStats()).toEqual(before.store);
  } finally {
    await Promise.all(loops.map((l) => l.stop()));
  }
});

test("the cluster's events history follows the snapshot's watch, its objects decoded once for every reader", async () => {
  const { direct, watched, snapshot } = stores();
  await watched.listTasks();
  const events = new ClusterEvents(etcd.client, log, 100, (listener) => watched.watchObjects(listener));
  await events.start();
  try {
    await direct.createNode(node('n1'));
    await watched.createTasks([task('a')]);
    const [a] = await watched.getTasks(['a']);
    expect(await direct.updateTasks([{ before: a, after: { ...a, nodeId: 'n1', status: { ...a.status!, state: TaskState.TASK_STATE_ASSIGNED, message: 'assigned' } } }])).toEqual([]);
    await direct.deleteTasks(['a']);
    await eventually(async () => events.recent().some((e) => e.type === 'task' && e.action === 'remove'));
    const seen = events.recent().map((e) => `${e.type} ${e.action} ${e.actorId} ${JSON.stringify(e.attributes)}`);
    expect(seen).toEqual([
      'node create n1 {"name":""}',
      'task create a {"name":".1","service":""}',
      'task update a {"name":".1","service":"","state.old":"new","state.new":"assigned","node":"n1","message":"assigned"}',
      'task remove a {"name":".1","service":""}',
    ]);
    // The objects the events read are the ones the lists hold: no value is left undecoded.
    expect(snapshot.stats().rawBytes).toBe(0);
  } finally {
    await events.stop();
  }
});
