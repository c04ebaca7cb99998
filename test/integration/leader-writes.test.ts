/**
 * The leader's writes against a real throwaway etcd: fenced on the election key (a deposed
 * leader's writes fail), tasks batched by bytes, and one failing service never holding back the
 * orchestrator's pass for the others.
 */
import { Campaign } from 'etcd3';
import pino from 'pino';
import { SwarmletError } from '../../services/common/errors';
import { RestartCondition, Service, ServiceSpec, Task, TaskState } from '../../services/gen/swarmlet/v1/types';
import { planReplicated } from '../../manager/orchestrator/replicated';
import { ReconcileLoop } from '../../services/common/reconcile-loop';
import { orchestratorLoop } from '../../manager/task-loops';
import { DeposedError, ETCD_MAX_REQUEST_BYTES, EtcdStore, LeadershipFence } from '../../manager/store/etcd-store';
import { keys } from '../../manager/store/keys';
import { useEtcd } from './etcd-fixture';
import { rejection } from '../support/rejection';

const log = pino({ level: 'silent' });

const etcd = useEtcd();
let store: EtcdStore;
let loop: ReconcileLoop | undefined;
const campaigns: Campaign[] = [];

beforeEach(async () => {
  store = new EtcdStore(etcd.client);
});

afterEach(async () => {
  await loop?.stop();
  loop = undefined;
  await Promise.all(campaigns.splice(0).map((c) => c.resign().catch(() => undefined)));
});

function task(id: string): Task {
  return Task.fromPartial({ id, serviceId: 'svc', slot: 1, desiredState: TaskState.TASK_STATE_RUNNING, status: { state: TaskState.TASK_STATE_NEW, message: 'created', timestamp: '' } });
}

function service(id: string, replicas: number, envBytes = 0): Service {
  const spec = ServiceSpec.fromPartial({
    name: id,
    task: { container: { image: 'exec:/', command: ['serve'], env: envBytes ? [`CONFIG=${'x'.repeat(envBytes)}`] : [] }, restart: { condition: RestartCondition.RESTART_CONDITION_ANY, delayMs: 5000 } },
  });
  spec.mode = { $case: 'replicated', value: { replicas } };
  return Service.fromPartial({ id, spec, specVersion: 1 });
}

/** A campaign in the manager's election, elected, and the fence of its key. */
async function elected(value: string): Promise<{ campaign: Campaign; fence: LeadershipFence }> {
  const campaign = etcd.client.election(keys.election, 3).campaign(value);
  campaign.on('error', () => undefined);
  campaigns.push(campaign);
  await campaign.wait();
  const key = await campaign.getCampaignKey();
  const fence = await store.leadershipFence(key.slice(0, key.lastIndexOf('/') + 1), key);
  if (!fence) throw new Error(`${value} was elected but its key is not the oldest`);
  return { campaign, fence };
}

/** The lease under a campaign's election key ends as if its manager had died (no resign from it). */
async function expire(fence: LeadershipFence): Promise<void> {
  const id = fence.key.slice(fence.key.lastIndexOf('/') + 1);
  await etcd.client.leaseClient.leaseRevoke({ ID: id });
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await probe();
    if (got !== undefined) return got;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('leadership fencing', () => {
  test("a deposed leader's writes fail and change nothing; the new leader's succeed", async () => {
    const first = await elected('m1');
    let deposed = 0;
    const oldLeader = store.fenced(first.fence, () => deposed++);
    await oldLeader.createTasks([task('t1')]);

    // A second manager waits behind the first; it is not the leader while the first key stands.
    const second = etcd.client.election(keys.election, 3).campaign('m2');
    second.on('error', () => undefined);
    campaigns.push(second);
    const secondKey = await second.getCampaignKey();
    await waitFor('the second campaign key', async () => ((await etcd.client.get(secondKey).string()) === null ? undefined : true));
    expect(await store.leadershipFence(secondKey.slice(0, secondKey.lastIndexOf('/') + 1), secondKey)).toBeUndefined();

    // Listening before the first key goes: the second may be elected before the revoke's reply is read, and wait() misses an election it was not listening for.
    const secondElected = second.wait();
    await expire(first.fence);
    await secondElected;
    const fence = await store.leadershipFence(secondKey.slice(0, secondKey.lastIndexOf('/') + 1), secondKey);
    expect(fence).toBeDefined();
    const newLeader = store.fenced(fence!);

    const t1 = (await store.getTask('t1'))!;
    const err = await rejection(oldLeader.createTasks([task('t2')]));
    expect(err).toBeInstanceOf(DeposedError);
    expect((err as SwarmletError).kind).toBe('FailedPrecondition');
    expect(await rejection(oldLeader.updateTasks([{ before: t1, after: { ...t1, desiredState: TaskState.TASK_STATE_SHUTDOWN } }]))).toBeInstanceOf(DeposedError);
    expect(await rejection(oldLeader.mutateTask('t1', (t) => ({ ...t, desiredState: TaskState.TASK_STATE_SHUTDOWN })))).toBeInstanceOf(DeposedError);
    expect(deposed).toBe(3);
    expect(await store.getTask('t2')).toBeUndefined();
    expect((await store.getTask('t1'))!.desiredState).toBe(TaskState.TASK_STATE_RUNNING);

    await newLeader.createTasks([task('t2')]);
    await newLeader.mutateTask('t1', (t) => ({ ...t, desiredState: TaskState.TASK_STATE_SHUTDOWN }));
    expect((await store.getTask('t1'))!.desiredState).toBe(TaskState.TASK_STATE_SHUTDOWN);
    expect(await store.getTask('t2')).toBeDefined();
  });

  test("a leader's full batches, each write's compare and the fence's together, stay within what etcd takes in one transaction", async () => {
    const { fence } = await elected('m1');
    const leader = store.fenced(fence);
    const ids = Array.from({ length: 300 }, (_, i) => `t${String(i).padStart(3, '0')}`);
    await leader.createTasks(ids.map(task));
    const read = await store.listTasks();
    expect(read).toHaveLength(300);
    expect(await leader.updateTasks(read.map((t) => ({ before: t, after: { ...t, desiredState: TaskState.TASK_STATE_SHUTDOWN } })))).toEqual([]);
    expect((await store.listTasks()).every((t) => t.desiredState === TaskState.TASK_STATE_SHUTDOWN)).toBe(true);
    await leader.deleteTasks(ids);
    expect(await store.listTasks()).toEqual([]);
  });

  test('an unfenced store and a race lost to another writer are not taken for a deposal', async () => {
    const { fence } = await elected('m1');
    const leader = store.fenced(fence);
    await leader.createTasks([task('t1')]);
    const t1 = (await store.getTask('t1'))!;
    await store.updateTask({ ...t1, desiredState: TaskState.TASK_STATE_SHUTDOWN });
    const err = await rejection(leader.updateTask({ ...t1, desiredState: TaskState.TASK_STATE_SHUTDOWN }));
    expect(err).not.toBeInstanceOf(DeposedError);
    expect((err as SwarmletError).kind).toBe('Retryable');
  });
});

describe('oversized writes', () => {
  test('tasks that do not fit in one request together are written in several', async () => {
    // 64 tasks of 40 KB each: 2.6 MB, more than etcd takes in one request.
    const svc = service('big', 64, 40 * 1024);
    const plan = planReplicated({ service: svc, tasks: [], nodes: [], now: new Date(), newId: (() => { let n = 0; return () => `task-${n++}`; })() });
    const tasks = plan.actions.flatMap((a) => (a.kind === 'create' ? [a.task] : []));
    expect(tasks).toHaveLength(64);
    await store.createTasks(tasks);
    expect((await store.listTasks()).length).toBe(64);
    const listed = await store.listTasks();
    const lost = await store.updateTasks(listed.map((t) => ({ before: t, after: { ...t, desiredState: TaskState.TASK_STATE_SHUTDOWN } })));
    expect(lost).toEqual([]);
    expect((await store.listTasks()).every((t) => t.desiredState === TaskState.TASK_STATE_SHUTDOWN)).toBe(true);
  });

  test('a write larger than etcd takes is refused as InvalidArgument with its size and the limit, and nothing is written', async () => {
    const svc = service('huge', 1, 3 * 1024 * 1024);
    const err = await rejection(store.createService(svc));
    expect((err as SwarmletError).kind).toBe('InvalidArgument');
    expect((err as Error).message).toMatch(new RegExp(`^request too large: \\d+ bytes, limit ${ETCD_MAX_REQUEST_BYTES}$`));
    expect(await store.listServices()).toEqual([]);
  });

  test('a service whose tasks cannot be written does not stop the orchestrator creating the others', async () => {
    // A service whose own record fits in etcd, but whose task (the spec and a little more) does not:
    // written straight to etcd, as one created before specs had a size limit.
    const small = service('zz-small', 2);
    const probe = (envBytes: number) => {
      const s = service('aa-oversized', 1, envBytes);
      const t = planReplicated({ service: s, tasks: [], nodes: [], now: new Date(), newId: () => 'x'.repeat(25) }).actions.find((a) => a.kind === 'create') as { task: Task };
      return { s, serviceBytes: JSON.stringify(Service.toJSON(s)).length, taskBytes: JSON.stringify(Task.toJSON(t.task)).length };
    };
    const base = probe(1000);
    const extra = base.taskBytes - base.serviceBytes;
    expect(extra).toBeGreaterThan(100);
    const oversized = probe(1000 + ETCD_MAX_REQUEST_BYTES - base.serviceBytes - Math.floor(extra / 2));
    expect(oversized.taskBytes).toBeGreaterThan(ETCD_MAX_REQUEST_BYTES);
    await etcd.client.put(keys.service(oversized.s.id)).value(JSON.stringify(Service.toJSON(oversized.s)));
    await store.createService(small);

    loop = orchestratorLoop(store, log);
    loop.start();
    const created = await waitFor('the small service\'s tasks', async () => {
      const tasks = (await store.listTasks()).filter((t) => t.serviceId === small.id);
      return tasks.length === 2 ? tasks : undefined;
    });
    expect(created).toHaveLength(2);
    expect((await store.listTasks()).filter((t) => t.serviceId === oversized.s.id)).toEqual([]);
  });
});
