/**
 * Containers' network attachments against a real throwaway etcd: what Dispatcher.AttachNetwork and
 * DetachNetwork do (NetworkAttachments), with the leader's real orchestrator, allocator and
 * scheduler loops running over the same store.
 */
import pino from 'pino';
import { SwarmletError } from '../../services/common/errors';
import { Network, Node, NodeAvailability, NodeRole, NodeState, TaskState } from '../../services/gen/swarmlet/v1/types';
import { NetworkAttachments } from '../../manager/network-attachments';
import { ReconcileLoop } from '../../services/common/reconcile-loop';
import { allocatorLoop, orchestratorLoop, schedulerLoop } from '../../manager/task-loops';
import { EtcdStore } from '../../manager/store/etcd-store';
import { useEtcd } from './etcd-fixture';
import { rejection } from '../support/rejection';

const log = pino({ level: 'silent' });
const etcd = useEtcd();
let store: EtcdStore;
let loops: ReconcileLoop[] = [];
let attachments: NetworkAttachments;

const ATT = Network.fromPartial({ id: 'n-att', vni: 4096, subnet: '10.0.0.0/24', gateway: '10.0.0.1', spec: { name: 'my-attachable-overlay', driver: 'overlay', attachable: true } });
const PLAIN = Network.fromPartial({ id: 'n-plain', vni: 4097, subnet: '10.0.1.0/24', gateway: '10.0.1.1', spec: { name: 'plain', driver: 'overlay' } });
const TINY = Network.fromPartial({ id: 'n-tiny', vni: 4098, subnet: '10.0.2.0/30', gateway: '10.0.2.1', spec: { name: 'tiny', driver: 'overlay', attachable: true } });

function node(id: string): Node {
  return Node.fromPartial({
    id,
    role: NodeRole.NODE_ROLE_WORKER,
    spec: { desiredRole: NodeRole.NODE_ROLE_WORKER, availability: NodeAvailability.NODE_AVAILABILITY_ACTIVE },
    status: { state: NodeState.NODE_STATE_READY, addr: `198.51.100.1${id.slice(-1)}` },
  });
}

const req = (network: string, containerId: string, o: { ipv4?: string; aliases?: string[] } = {}) => ({
  network,
  containerId,
  containerName: `name-${containerId}`,
  aliases: o.aliases ?? [],
  ipv4Address: o.ipv4 ?? '',
});

beforeEach(async () => {
  store = new EtcdStore(etcd.client);
  for (const n of [ATT, PLAIN, TINY]) await store.createNetwork(n);
  await store.createNode(node('n1'));
  await store.createNode(node('n2'));
  attachments = new NetworkAttachments(store, log, { waitMs: 10000, pollMs: 20 });
  loops = [orchestratorLoop(store, log), allocatorLoop(store, log), schedulerLoop(store, log)];
  for (const l of loops) l.start();
});

afterEach(async () => {
  await Promise.all(loops.map((l) => l.stop()));
  loops = [];
});

test('an attachment gets its address from the allocator, stays on its node, and is left alone by the orchestrator and scheduler', async () => {
  const res = await attachments.attach('n1', req('my-attachable-overlay', 'c1', { aliases: ['cache'] }));
  expect(res.attachment).toMatchObject({ networkId: 'n-att', networkName: 'my-attachable-overlay', driver: 'overlay', address: '10.0.0.2/24', vni: 4096 });
  const again = await attachments.attach('n1', req('n-att', 'c1'));
  expect(again.attachmentId).toBe(res.attachmentId);
  const other = await attachments.attach('n2', req('my-attachable-overlay', 'c2', { ipv4: '10.0.0.50' }));
  expect(other.attachment?.address).toBe('10.0.0.50/24');

  // The loops run a few more passes: nothing they do moves or retires an attachment.
  for (const l of loops) l.poke();
  await new Promise((r) => setTimeout(r, 300));
  const tasks = await store.listTasks();
  expect(tasks.map((t) => [t.id, t.nodeId, t.status?.state, t.desiredState]).sort()).toEqual(
    [
      [res.attachmentId, 'n1', TaskState.TASK_STATE_ASSIGNED, TaskState.TASK_STATE_RUNNING],
      [other.attachmentId, 'n2', TaskState.TASK_STATE_ASSIGNED, TaskState.TASK_STATE_RUNNING],
    ].sort(),
  );
  expect(tasks.find((t) => t.id === res.attachmentId)?.spec?.attachment).toEqual({ containerId: 'c1', containerName: 'name-c1', aliases: ['cache'], ipv4Address: '' });
});

test('refusals leave nothing behind: a network that is not attachable, a taken --ip, an exhausted network', async () => {
  const plain = await rejection(attachments.attach('n1', req('plain', 'c1')));
  expect(plain).toMatchObject({ kind: 'PermissionDenied', message: 'Could not attach to network plain: rpc error: code = PermissionDenied desc = network plain not manually attachable' });
  expect(await store.listTasks()).toEqual([]);

  await attachments.attach('n1', req('my-attachable-overlay', 'c1', { ipv4: '10.0.0.9' }));
  const taken = await rejection(attachments.attach('n2', req('my-attachable-overlay', 'c2', { ipv4: '10.0.0.9' })));
  expect(taken).toMatchObject({ kind: 'InvalidArgument', message: 'Address already in use: 10.0.0.9 on network my-attachable-overlay' });

  // tiny (/30) has one address besides its gateway: the second container cannot get one.
  await attachments.attach('n1', req('tiny', 'c1'));
  const full = await rejection(attachments.attach('n1', req('tiny', 'c3')));
  expect(full.kind).toBe('Unavailable');
  expect(full.message).toMatch(/no free address in 10\.0\.2\.0\/30/);
  expect((await store.listTasks()).map((t) => t.spec?.attachment?.containerId).sort()).toEqual(['c1', 'c1']);
});

test('detach removes the node\'s own attachment only; again is fine', async () => {
  const res = await attachments.attach('n1', req('my-attachable-overlay', 'c1'));
  const refused = await rejection(attachments.detach('n2', res.attachmentId));
  expect(refused).toBeInstanceOf(SwarmletError);
  expect(refused.kind).toBe('PermissionDenied');
  expect(await store.getTask(res.attachmentId)).toBeDefined();
  await attachments.detach('n1', res.attachmentId);
  expect(await store.getTask(res.attachmentId)).toBeUndefined();
  await attachments.detach('n1', res.attachmentId);
  // Its address is free again.
  expect((await attachments.attach('n1', req('my-attachable-overlay', 'c9'))).attachment?.address).toBe('10.0.0.2/24');
});

test('at session start the node\'s list of containers decides; a removed or down node loses its attachments', async () => {
  const a1 = await attachments.attach('n1', req('my-attachable-overlay', 'c1'));
  const a2 = await attachments.attach('n1', req('my-attachable-overlay', 'c2'));
  const b1 = await attachments.attach('n2', req('my-attachable-overlay', 'c7'));
  await attachments.reconcileNode('n1', ['c2']);
  expect((await store.listTasks()).map((t) => t.id).sort()).toEqual([a2.attachmentId, b1.attachmentId].sort());
  void a1;

  await store.mutateNode('n2', (n) => ({ ...n, status: { ...n.status!, state: NodeState.NODE_STATE_DOWN } }));
  await waitUntil(async () => (await store.getTask(b1.attachmentId)) === undefined);
  await store.deleteNode((await store.getNode('n1'))!);
  await waitUntil(async () => (await store.listTasks()).length === 0);
  // A removed node's certificate still verifies until it expires: its requests are refused.
  expect(await rejection(attachments.attach('n1', req('my-attachable-overlay', 'c1')))).toMatchObject({ kind: 'PermissionDenied', message: 'this node was removed from the swarm' });
  expect(await store.listTasks()).toEqual([]);
});

async function waitUntil(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (await check()) return;
    for (const l of loops) l.poke();
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('never held');
}
