/** EtcdStore against a real throwaway etcd (test/integration/etcd-fixture.ts). */
import * as grpc from '@grpc/grpc-js';
import { Lease } from 'etcd3';
import { SwarmletError } from '../../services/common/errors';
import { Cluster, Node, NodeAvailability, NodeRole, NodeState, Reachability, Task, TaskState } from '../../services/gen/swarmlet/v1/types';
import { EtcdStore } from '../../manager/store/etcd-store';
import { ROOT, keys } from '../../manager/store/keys';
import { RENEW_STREAMS } from '../../manager/store/lease-renewer';
import { fixtureClient, useEtcd } from './etcd-fixture';
import { rejection } from '../support/rejection';

const etcd = useEtcd();
let clock: Date;
let store: EtcdStore;

beforeEach(async () => {
  await etcd.client.delete().prefix('/elsewhere/').exec();
  clock = new Date('2025-03-01T10:00:00.000Z');
  store = new EtcdStore(etcd.client, () => clock);
});

const tick = (ms = 1000) => {
  clock = new Date(clock.getTime() + ms);
};

function cluster(id = 'cluster-1'): Cluster {
  return {
    id,
    spec: { heartbeatPeriodMs: 1000, nodeDownAfterMs: 5000 },
    joinTokens: { worker: 'SWMTKN-1-worker', manager: 'SWMTKN-1-manager' },
    rootCa: { certPem: 'CERT', keyPem: 'KEY', digest: 'd'.repeat(50) },
    etcd: { embedded: true, endpoints: ['http://127.0.0.1:2379'] },
  };
}

function node(id: string, role = NodeRole.NODE_ROLE_WORKER): Node {
  return {
    id,
    spec: { desiredRole: role, availability: NodeAvailability.NODE_AVAILABILITY_ACTIVE, labels: { zone: 'a' } },
    role,
    description: { hostname: `host-${id}`, os: 'linux', arch: 'x64', engineVersion: '0.1.0', interfaces: [], containerPorts: [] },
    status: { state: NodeState.NODE_STATE_UNKNOWN, message: '', addr: '198.51.100.10', updatedAt: '', apiAddr: '' },
  };
}

async function modRevision(key: string): Promise<number> {
  const res = await etcd.client.get(key).exec();
  expect(res.kvs).toHaveLength(1);
  return Number(res.kvs[0].mod_revision);
}

async function rawValue(key: string): Promise<string | null> {
  return etcd.client.get(key).string();
}


/** Resolves once `check` holds, polling; fails the test with `what` after a generous deadline. */
async function eventually(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('clusters', () => {
  test('createCluster writes the cluster and the first node; getCluster round-trips it', async () => {
    expect(await store.getCluster()).toBeUndefined();
    await store.createCluster(cluster(), node('n1', NodeRole.NODE_ROLE_MANAGER));

    const got = await store.getCluster();
    expect(got).toEqual({
      ...cluster(),
      meta: { version: await modRevision(keys.cluster), createdAt: '2025-03-01T10:00:00.000Z', updatedAt: '2025-03-01T10:00:00.000Z' },
    });
    const first = await store.getNode('n1');
    expect(first?.role).toBe(NodeRole.NODE_ROLE_MANAGER);
    // One transaction: both keys carry the same revision.
    expect(first?.meta?.version).toBe(got?.meta?.version);
  });

  test('the version is not stored in the value; it is the mod revision', async () => {
    await store.createCluster(cluster(), node('n1'));
    const raw = JSON.parse((await rawValue(keys.cluster))!);
    expect(raw.meta).toEqual({ createdAt: '2025-03-01T10:00:00.000Z', updatedAt: '2025-03-01T10:00:00.000Z' });
    await etcd.client.put('/elsewhere/bump').value('x'); // moves the store's revision on, not the cluster's
    expect((await store.getCluster())?.meta?.version).toBe(await modRevision(keys.cluster));
  });

  test('createCluster is create-if-absent: a second call is a Conflict and changes nothing', async () => {
    await store.createCluster(cluster('first'), node('n1'));
    const before = await store.getCluster();
    tick();
    const err = await rejection(store.createCluster(cluster('second'), node('n2')));
    expect(err.kind).toBe('Conflict');
    expect(await store.getCluster()).toEqual(before);
    expect(await store.getNode('n2')).toBeUndefined();
    expect((await store.listNodes()).map((n) => n.id)).toEqual(['n1']);
  });

  test('updateCluster keeps createdAt, moves updatedAt and the version, and refuses a stale version', async () => {
    await store.createCluster(cluster(), node('n1'));
    const v1 = (await store.getCluster())!;
    tick(5000);
    const v2 = await store.updateCluster({ ...v1, spec: { heartbeatPeriodMs: 500, nodeDownAfterMs: 2000 } });
    expect(v2.spec).toEqual({ heartbeatPeriodMs: 500, nodeDownAfterMs: 2000 });
    expect(v2.meta).toEqual({ version: await modRevision(keys.cluster), createdAt: '2025-03-01T10:00:00.000Z', updatedAt: '2025-03-01T10:00:05.000Z' });
    expect(v2.meta!.version).toBeGreaterThan(v1.meta!.version);

    const err = await rejection(store.updateCluster({ ...v1, spec: { heartbeatPeriodMs: 1, nodeDownAfterMs: 1 } }));
    expect(err.kind).toBe('Retryable');
    expect(await store.getCluster()).toEqual(v2);
  });
});

describe('nodes', () => {
  test('createNode round-trips and is create-if-absent', async () => {
    const created = await store.createNode(node('n1'));
    expect(created).toEqual({ ...node('n1'), meta: { version: await modRevision(keys.node('n1')), createdAt: clock.toISOString(), updatedAt: clock.toISOString() } });
    expect(await store.getNode('n1')).toEqual(created);

    tick();
    const err = await rejection(store.createNode({ ...node('n1'), role: NodeRole.NODE_ROLE_MANAGER }));
    expect(err.kind).toBe('Conflict');
    expect(err.message).toContain('n1');
    expect(await store.getNode('n1')).toEqual(created);
  });

  test('getNode of a missing node is undefined; listNodes lists only nodes', async () => {
    expect(await store.getNode('nope')).toBeUndefined();
    await store.createNode(node('n1'));
    await store.createNode(node('n2'));
    await etcd.client.put(keys.heartbeat('n3')).value('x');
    expect((await store.listNodes()).map((n) => n.id).sort()).toEqual(['n1', 'n2']);
  });

  test('updateNode compare-and-swaps on the version; a stale version is Retryable and writes nothing', async () => {
    const v1 = await store.createNode(node('n1'));
    tick();
    const v2 = await store.updateNode({ ...v1, spec: { ...v1.spec!, labels: { zone: 'b' } } });
    expect(v2.spec?.labels).toEqual({ zone: 'b' });
    expect(v2.meta?.version).toBe(await modRevision(keys.node('n1')));
    expect(v2.meta?.version).toBeGreaterThan(v1.meta!.version);
    expect(v2.meta?.createdAt).toBe(v1.meta?.createdAt);
    expect(v2.meta?.updatedAt).toBe(clock.toISOString());

    const rawBefore = await rawValue(keys.node('n1'));
    const revBefore = await modRevision(keys.node('n1'));
    tick();
    const err = await rejection(store.updateNode({ ...v1, spec: { ...v1.spec!, labels: { zone: 'stale' } } }));
    expect(err.kind).toBe('Retryable');
    expect(err.message).toContain(`version ${v1.meta!.version}`);
    expect(await rawValue(keys.node('n1'))).toBe(rawBefore);
    expect(await modRevision(keys.node('n1'))).toBe(revBefore);
  });

  test('an update returns the node as written, at its revision, without reading it back from etcd', async () => {
    let ranges = 0;
    const counting: grpc.Interceptor = (options, nextCall) => {
      if (options.method_definition.path === '/etcdserverpb.KV/Range') ranges++;
      return new grpc.InterceptingCall(nextCall(options));
    };
    const client = fixtureClient([etcd.endpoint], { interceptors: [counting] } as Parameters<typeof fixtureClient>[1]);
    try {
      const s = new EtcdStore(client, () => clock);
      const v1 = await s.createNode(node('n1'));
      tick();
      const before = ranges;
      const v2 = await s.updateNode({ ...v1, spec: { ...v1.spec!, labels: { zone: 'b' } } });
      expect(ranges - before).toBe(0);
      expect(v2).toEqual(await store.getNode('n1'));
    } finally {
      client.close();
    }
  });

  test('updateNode does not create a node that is not there', async () => {
    const err = await rejection(store.updateNode({ ...node('ghost'), meta: { version: 5, createdAt: '', updatedAt: '' } }));
    expect(err.kind).toBe('Retryable');
    expect(await store.getNode('ghost')).toBeUndefined();
  });

  test('mutateNode applies the change to the latest node', async () => {
    await store.createNode(node('n1'));
    tick();
    const out = await store.mutateNode('n1', (n) => ({ ...n, status: { ...n.status!, state: NodeState.NODE_STATE_READY } }));
    expect(out.status?.state).toBe(NodeState.NODE_STATE_READY);
    expect(await store.getNode('n1')).toEqual(out);
  });

  test('mutateNode retries on a stale version, calling the change again on a fresh read', async () => {
    await store.createNode(node('n1'));
    const seen: number[] = [];
    const out = await store.mutateNode('n1', (n) => {
      seen.push(n.meta!.version);
      // The first time, write as if another writer had got there between the read and the write.
      const version = seen.length === 1 ? n.meta!.version - 1 : n.meta!.version;
      return { ...n, meta: { ...n.meta!, version }, spec: { ...n.spec!, labels: { ...n.spec!.labels, attempt: String(seen.length) } } };
    });
    expect(seen).toHaveLength(2);
    expect(out.spec?.labels).toEqual({ zone: 'a', attempt: '2' });
  });

  test('concurrent mutateNode calls all land: none overwrites another', async () => {
    await store.createNode(node('n1'));
    const writers = 6;
    let calls = 0;
    await Promise.all(
      Array.from({ length: writers }, (_, i) =>
        store.mutateNode(
          'n1',
          (n) => {
            calls++;
            return { ...n, spec: { ...n.spec!, labels: { ...n.spec!.labels, [`w${i}`]: 'done' } } };
          },
          writers,
        ),
      ),
    );
    const labels = (await store.getNode('n1'))!.spec!.labels;
    expect(Object.keys(labels).sort()).toEqual(['w0', 'w1', 'w2', 'w3', 'w4', 'w5', 'zone']);
    expect(calls).toBeGreaterThanOrEqual(writers);
  });

  test('mutateNode gives up after its attempts with Retryable', async () => {
    const created = await store.createNode(node('n1'));
    let calls = 0;
    const err = await rejection(
      store.mutateNode(
        'n1',
        (n) => {
          calls++;
          return { ...n, meta: { ...n.meta!, version: n.meta!.version - 1 } };
        },
        3,
      ),
    );
    expect(err.kind).toBe('Retryable');
    expect(calls).toBe(3);
    expect(await store.getNode('n1')).toEqual(created);
  });

  test('mutateNode writes nothing when the change returns undefined', async () => {
    const created = await store.createNode(node('n1'));
    tick();
    expect(await store.mutateNode('n1', () => undefined)).toEqual(created);
    expect(await modRevision(keys.node('n1'))).toBe(created.meta!.version);
  });

  test('mutateNode of a missing node is NotFound', async () => {
    expect((await rejection(store.mutateNode('nope', (n) => n))).kind).toBe('NotFound');
  });

  test('deleteNode refuses a stale version and deletes with the current one', async () => {
    const v1 = await store.createNode(node('n1'));
    const v2 = await store.updateNode({ ...v1, role: NodeRole.NODE_ROLE_MANAGER });
    const err = await rejection(store.deleteNode(v1));
    expect(err.kind).toBe('Retryable');
    expect(await store.getNode('n1')).toEqual(v2);

    const unversioned = await rejection(store.deleteNode({ ...v2, meta: undefined }));
    expect(unversioned.kind).toBe('Retryable');
    expect(await store.getNode('n1')).toEqual(v2);

    await store.deleteNode(v2);
    expect(await store.getNode('n1')).toBeUndefined();
  });

  test('deleteNode drops the node\'s heartbeat key with it; a held heartbeat renews until its lease runs out', async () => {
    const n = await store.createNode(node('n1'));
    const lease = await store.holdHeartbeat('n1', 'session-1', 2);
    expect(await store.heartbeatingNodes()).toEqual(new Set(['n1']));
    expect(await lease.renew()).toBe(true);
    await store.deleteNode(n);
    expect(await store.heartbeatingNodes()).toEqual(new Set());
  });

  test('heartbeat renewals share a few keepalive streams; a lease that ran out renews false', async () => {
    // etcd3's keepaliveOnce opens a stream per renewal: a thousand agents were a thousand new streams a second.
    let keepAliveStreams = 0;
    const counting: grpc.Interceptor = (options, nextCall) => {
      if (options.method_definition.path === '/etcdserverpb.Lease/LeaseKeepAlive') keepAliveStreams++;
      return new grpc.InterceptingCall(nextCall(options));
    };
    const client = fixtureClient([etcd.endpoint], { interceptors: [counting] } as Parameters<typeof fixtureClient>[1]);
    try {
      const s = new EtcdStore(client);
      const ids = Array.from({ length: 10 }, (_, i) => `n${i}`);
      const held = await Promise.all(ids.map((id) => s.holdHeartbeat(id, `session-${id}`, 2)));
      for (let round = 0; round < 3; round++) expect(await Promise.all(held.map((h) => h.renew()))).toEqual(ids.map(() => true));
      expect(keepAliveStreams).toBeLessThanOrEqual(RENEW_STREAMS);
      expect(await s.heartbeatingNodes()).toEqual(new Set(ids));

      // Left alone, the first lease runs out and its key goes; renewing it then says so.
      const deadline = Date.now() + 30000;
      while ((await s.heartbeatingNodes()).has('n0') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(await s.heartbeatingNodes()).not.toContain('n0');
      expect(await held[0]!.renew()).toBe(false);
    } finally {
      client.close();
    }
  });

  test("a manager's etcd client takes a watch reply larger than gRPC's default 4 MiB", async () => {
    // Six writes of 1 MiB each, then a watch from before the first: etcd sends them in one reply.
    const value = 'x'.repeat(1024 * 1024);
    let first = 0;
    for (let i = 0; i < 6; i++) {
      const res = await etcd.client.put(`${keys.tasksPrefix}big-${i}`).value(value).exec();
      first ||= Number(res.header.revision);
    }
    const client = fixtureClient([etcd.endpoint]);
    try {
      const seen: string[] = [];
      const failed: Error[] = [];
      const watcher = await client.watch().prefix(keys.tasksPrefix).startRevision(String(first)).create();
      watcher.on('put', (kv) => seen.push(kv.key.toString())).on('error', (err) => failed.push(err));
      const deadline = Date.now() + 20000;
      while (seen.length < 6 && failed.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      await watcher.cancel().catch(() => undefined);
      expect(failed.map((e) => e.message)).toEqual([]);
      expect(seen).toHaveLength(6);
    } finally {
      client.close();
    }
  });

  test('the leader flag and reachability of a manager are never stored', async () => {
    const m: Node = { ...node('m1', NodeRole.NODE_ROLE_MANAGER), managerStatus: { addr: '198.51.100.1:2377', leader: true, reachability: Reachability.REACHABILITY_REACHABLE } };
    const created = await store.createNode(m);
    expect(created.managerStatus).toEqual({ addr: '198.51.100.1:2377', leader: false, reachability: 0 });
    let raw = JSON.parse((await rawValue(keys.node('m1')))!);
    expect(raw.managerStatus).toEqual({ addr: '198.51.100.1:2377' });

    const updated = await store.updateNode({ ...created, managerStatus: { addr: '198.51.100.2:2377', leader: true, reachability: Reachability.REACHABILITY_UNREACHABLE } });
    expect(updated.managerStatus).toEqual({ addr: '198.51.100.2:2377', leader: false, reachability: 0 });
    raw = JSON.parse((await rawValue(keys.node('m1')))!);
    expect(raw.managerStatus).toEqual({ addr: '198.51.100.2:2377' });

    await store.createCluster(cluster(), { ...node('m2', NodeRole.NODE_ROLE_MANAGER), managerStatus: { addr: 'a:1', leader: true, reachability: Reachability.REACHABILITY_REACHABLE } });
    expect((await store.getNode('m2'))?.managerStatus).toEqual({ addr: 'a:1', leader: false, reachability: 0 });
  });

  test('a node given to the store is not changed by it', async () => {
    const m: Node = { ...node('m1', NodeRole.NODE_ROLE_MANAGER), managerStatus: { addr: 'a:1', leader: true, reachability: Reachability.REACHABILITY_REACHABLE } };
    const copy = structuredClone(m);
    await store.createNode(m);
    expect(m).toEqual(copy);
  });
});

describe('watchPrefixes', () => {
  let unwatch: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await unwatch?.();
    unwatch = undefined;
  });

  test('calls the listener on puts and deletes under the prefixes, and not for other keys', async () => {
    let calls = 0;
    unwatch = await store.watchPrefixes([keys.nodesPrefix, keys.heartbeatsPrefix], () => calls++);
    calls = 0; // whatever the watch's set-up reported

    // Each transaction changes one key outside the prefixes and one inside, at one revision: etcd sends
    // both in one watch response, whose events are emitted together. So when the listener has been
    // called, it has been called for everything it was going to be called for in that transaction.
    const outside = ['/elsewhere/x', `${ROOT}nodes`, `${ROOT}nodesX/1`, `${ROOT}managers/m1`, keys.cluster];
    const steps: [string, () => Promise<unknown>][] = [
      ['put a node', () => etcd.client.if(keys.node('n1'), 'Create', '==', 0).then(...outside.map((k) => etcd.client.put(k).value('1')), etcd.client.put(keys.node('n1')).value('{}')).commit()],
      ['put a heartbeat', () => etcd.client.if(keys.heartbeat('n1'), 'Create', '==', 0).then(...outside.map((k) => etcd.client.put(k).value('2')), etcd.client.put(keys.heartbeat('n1')).value('hb')).commit()],
      ['update a node', () => etcd.client.if(keys.node('n1'), 'Create', '!=', 0).then(...outside.map((k) => etcd.client.put(k).value('3')), etcd.client.put(keys.node('n1')).value('{"id":"n1"}')).commit()],
      ['delete a heartbeat', () => etcd.client.if(keys.heartbeat('n1'), 'Create', '!=', 0).then(...outside.map((k) => etcd.client.delete().key(k)), etcd.client.delete().key(keys.heartbeat('n1'))).commit()],
      ['delete a node', () => etcd.client.if(keys.node('n1'), 'Create', '!=', 0).then(etcd.client.put('/elsewhere/y').value('4'), etcd.client.delete().key(keys.node('n1'))).commit()],
    ];
    for (const [i, [what, step]] of steps.entries()) {
      const res = (await step()) as { succeeded: boolean };
      expect(res.succeeded).toBe(true);
      await eventually(`the listener to see: ${what}`, () => calls > i);
      expect({ what, calls }).toEqual({ what, calls: i + 1 });
    }
  });

  test('changes outside the prefixes alone never call the listener', async () => {
    let calls = 0;
    unwatch = await store.watchPrefixes([keys.heartbeatsPrefix], () => calls++);
    calls = 0;
    await etcd.client.put(keys.node('n1')).value('x');
    await etcd.client.put(keys.manager('m1')).value('x');
    await etcd.client.delete().key(keys.node('n1'));
    // A change under the prefix afterwards: it comes after the others on the same watch stream.
    await etcd.client.put(keys.heartbeat('n1')).value('x');
    await eventually('the heartbeat put', () => calls > 0);
    expect(calls).toBe(1);
  });

  test('after unwatching, the listener is no longer called', async () => {
    let stale = 0;
    let fresh = 0;
    const stop = await store.watchPrefixes([keys.nodesPrefix], () => stale++);
    unwatch = await store.watchPrefixes([keys.nodesPrefix], () => fresh++);
    stale = 0;
    fresh = 0;
    await stop();
    await etcd.client.put(keys.node('n1')).value('x');
    await eventually('the other watcher to see the put', () => fresh > 0);
    expect(stale).toBe(0);
  });
});

describe('leased keys', () => {
  const leases: Lease[] = [];
  afterEach(async () => {
    await Promise.all(leases.splice(0).map((l) => l.revoke().catch(() => undefined)));
  });

  function lease(ttl = 2): Lease {
    const l = etcd.client.lease(ttl);
    l.on('lost', () => undefined);
    leases.push(l);
    return l;
  }

  test('heartbeatingNodes lists the nodes with a heartbeat key; revoking its lease removes it', async () => {
    expect(await store.heartbeatingNodes()).toEqual(new Set());
    const l1 = lease();
    const l2 = lease();
    await store.putLeased(keys.heartbeat('n1'), 'alive', l1);
    await store.putLeased(keys.heartbeat('n2'), 'alive', l2);
    await store.putLeased(keys.manager('m1'), 'running', l2);
    expect(await store.heartbeatingNodes()).toEqual(new Set(['n1', 'n2']));

    await l1.revoke();
    expect(await store.heartbeatingNodes()).toEqual(new Set(['n2']));
    expect(await store.runningManagers()).toEqual(new Set(['m1']));
  });

  test('runningManagers lists the managers with a presence key; revoking its lease removes it', async () => {
    expect(await store.runningManagers()).toEqual(new Set());
    const l1 = lease();
    const l2 = lease();
    await store.putLeased(keys.manager('m1'), 'running', l1);
    await store.putLeased(keys.manager('m2'), 'running', l2);
    await store.putLeased(keys.heartbeat('m1'), 'alive', l1);
    expect(await store.runningManagers()).toEqual(new Set(['m1', 'm2']));

    await l1.revoke();
    expect(await store.runningManagers()).toEqual(new Set(['m2']));
    expect(await store.heartbeatingNodes()).toEqual(new Set());
  });

  test('putLeased ties the key to the lease', async () => {
    const l = lease();
    await store.putLeased(keys.heartbeat('n1'), 'alive', l);
    const res = await etcd.client.get(keys.heartbeat('n1')).exec();
    expect(res.kvs[0].lease).toBe(await l.grant());
    expect(res.kvs[0].value.toString()).toBe('alive');
  });
});

describe('large prefixes', () => {
  /** A task whose spec carries `bytes` of environment: a few of them outgrow one gRPC reply (4 MiB). */
  const bigTask = (id: string, bytes: number) =>
    Task.fromPartial({ id, serviceId: 'svc', slot: 1, desiredState: TaskState.TASK_STATE_RUNNING, spec: { container: { image: 'exec:/', env: [`CONFIG=${'x'.repeat(bytes)}`] } }, status: { state: TaskState.TASK_STATE_NEW, message: '', timestamp: '' } });

  test('listTasks reads a prefix larger than one gRPC reply takes, page by page', async () => {
    const ids = Array.from({ length: 6 }, (_, i) => `big-${i}`);
    for (const id of ids) await store.createTasks([bigTask(id, 1024 * 1024)]);
    const tasks = await store.listTasks();
    expect(tasks.map((t) => t.id).sort()).toEqual(ids);
    expect(tasks.every((t) => t.spec?.container?.env[0].length === 'CONFIG='.length + 1024 * 1024)).toBe(true);
  });

  test('updateTasks writes many batches and reports none lost when none raced', async () => {
    const tasks = Array.from({ length: 700 }, (_, i) => bigTask(`t-${String(i).padStart(4, '0')}`, 10));
    await store.createTasks(tasks);
    const read = await store.listTasks();
    expect(read).toHaveLength(700);
    const lost = await store.updateTasks(read.map((t) => ({ before: t, after: { ...t, status: { ...t.status!, state: TaskState.TASK_STATE_PENDING } } })));
    expect(lost).toEqual([]);
    expect((await store.listTasks()).every((t) => t.status?.state === TaskState.TASK_STATE_PENDING)).toBe(true);
  });
});
