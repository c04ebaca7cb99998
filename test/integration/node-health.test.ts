/**
 * The node-health loop against a real throwaway etcd: heartbeat keys under leases make nodes ready
 * or down. A silent node's host is probed for real (a TCP handshake): a host that does not answer
 * (198.51.100.x: no route in the test's namespace) is down at once, one that answers (loopback,
 * a port nobody listens on: refused) keeps its node ready through the cluster's grace.
 */
import { Lease } from 'etcd3';
import pino from 'pino';
import { Node, NodeAvailability, NodeRole, NodeState } from '../../services/gen/swarmlet/v1/types';
import { nodeHealthLoop } from '../../manager/node-health';
import { HEARTBEAT_MISSED } from '../../manager/node-plans';
import { ReconcileLoop } from '../../services/common/reconcile-loop';
import { EtcdStore } from '../../manager/store/etcd-store';
import { keys } from '../../manager/store/keys';
import { useEtcd } from './etcd-fixture';

const log = pino({ level: 'silent' });

const etcd = useEtcd();
let store: EtcdStore;
let loop: ReconcileLoop | undefined;
const leases: Lease[] = [];

beforeEach(async () => {
  store = new EtcdStore(etcd.client);
});

afterEach(async () => {
  await loop?.stop();
  loop = undefined;
  await Promise.all(leases.splice(0).map((l) => l.revoke().catch(() => undefined)));
});

function node(id: string, role = NodeRole.NODE_ROLE_WORKER, addr = `198.51.100.${id.length}`): Node {
  return {
    id,
    spec: { desiredRole: role, availability: NodeAvailability.NODE_AVAILABILITY_ACTIVE, labels: {} },
    role,
    description: { hostname: `host-${id}`, os: 'linux', arch: 'x64', engineVersion: '0.1.0', interfaces: [], containerPorts: [] },
    status: { state: NodeState.NODE_STATE_UNKNOWN, message: '', addr, updatedAt: '', apiAddr: '' },
  };
}

async function heartbeat(nodeId: string): Promise<Lease> {
  const lease = etcd.client.lease(2);
  lease.on('lost', () => undefined);
  leases.push(lease);
  await store.putLeased(keys.heartbeat(nodeId), 'alive', lease);
  return lease;
}

/** Polls the store until the node has the state and message; a generous deadline only guards against hanging. */
async function waitForState(id: string, state: NodeState, message: string, timeoutMs = 30000): Promise<Node> {
  const deadline = Date.now() + timeoutMs;
  let last: Node | undefined;
  for (;;) {
    last = await store.getNode(id);
    if (last?.status?.state === state && last.status.message === message) return last;
    if (Date.now() > deadline) {
      throw new Error(`node ${id} did not become ${NodeState[state]} (${JSON.stringify(message)}); last status: ${JSON.stringify(last?.status)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test('a heartbeating node becomes ready, a silent one down; a lost heartbeat makes it down', async () => {
  await store.createCluster({ id: 'c1', spec: { heartbeatPeriodMs: 1000, nodeDownAfterMs: 5000 } }, node('n1', NodeRole.NODE_ROLE_MANAGER));
  await store.createNode(node('n2'));
  const lease = await heartbeat('n1');

  loop = nodeHealthLoop(store, log);
  loop.start();

  const ready = await waitForState('n1', NodeState.NODE_STATE_READY, '');
  const down = await waitForState('n2', NodeState.NODE_STATE_DOWN, 'no heartbeat yet');
  // The rest of the node is left as it was, and the status keeps the address.
  expect(ready.status?.addr).toBe(node('n1').status?.addr);
  expect(ready.status?.updatedAt).not.toBe('');
  expect(ready.spec).toEqual(node('n1', NodeRole.NODE_ROLE_MANAGER).spec);
  expect(down.role).toBe(NodeRole.NODE_ROLE_WORKER);

  await lease.revoke();
  const failed = await waitForState('n1', NodeState.NODE_STATE_DOWN, 'heartbeat failure');
  expect(failed.role).toBe(NodeRole.NODE_ROLE_MANAGER);
  expect((await store.getNode('n2'))?.status).toEqual(down.status);
});

test('a node that starts heartbeating after the loop started becomes ready, and a new node is seen', async () => {
  await store.createCluster({ id: 'c1' }, node('n1'));
  loop = nodeHealthLoop(store, log);
  loop.start();
  await waitForState('n1', NodeState.NODE_STATE_DOWN, 'no heartbeat yet');

  await heartbeat('n1');
  await waitForState('n1', NodeState.NODE_STATE_READY, '');

  await store.createNode(node('n3'));
  await waitForState('n3', NodeState.NODE_STATE_DOWN, 'no heartbeat yet');
  await heartbeat('n3');
  await waitForState('n3', NodeState.NODE_STATE_READY, '');
});

test('a silent node whose host answers stays ready through its grace, then is down; the grace is kept in etcd, not restarted by a new leader', async () => {
  // 127.0.0.1 answers with a refusal on the API port: the host is up, its daemon is not listening (a restart).
  await store.createCluster({ id: 'c1', spec: { heartbeatPeriodMs: 500, nodeDownAfterMs: 600000 } }, node('n1', NodeRole.NODE_ROLE_MANAGER, '127.0.0.1'));
  let lease = await heartbeat('n1');
  loop = nodeHealthLoop(store, log);
  loop.start();
  await waitForState('n1', NodeState.NODE_STATE_READY, '');

  await lease.revoke();
  const suspect = await waitForState('n1', NodeState.NODE_STATE_READY, HEARTBEAT_MISSED);
  // Probed again and again while in its grace: it stays as it is.
  await new Promise((r) => setTimeout(r, 2500));
  expect((await store.getNode('n1'))?.status).toEqual(suspect.status);

  // Its daemon is back: ready, the message cleared.
  lease = await heartbeat('n1');
  await waitForState('n1', NodeState.NODE_STATE_READY, '');
  await lease.revoke();
  const again = await waitForState('n1', NodeState.NODE_STATE_READY, HEARTBEAT_MISSED);

  // Another leader takes over when the grace has run out, counted from when it began: down at its first pass.
  await loop.stop();
  const graceEnd = new Date(Date.parse(again.status!.updatedAt) + 600000);
  loop = nodeHealthLoop(store, log, { now: () => graceEnd });
  loop.start();
  await waitForState('n1', NodeState.NODE_STATE_DOWN, 'heartbeat failure (its host answered, its daemon did not for 600s)');
});

test('a node in its grace whose host stops answering is down without waiting for the grace', async () => {
  await store.createCluster({ id: 'c1', spec: { heartbeatPeriodMs: 500, nodeDownAfterMs: 600000 } }, node('n1', NodeRole.NODE_ROLE_MANAGER, '127.0.0.1'));
  const lease = await heartbeat('n1');
  loop = nodeHealthLoop(store, log);
  loop.start();
  await waitForState('n1', NodeState.NODE_STATE_READY, '');
  await lease.revoke();
  await waitForState('n1', NodeState.NODE_STATE_READY, HEARTBEAT_MISSED);
  // The host is gone: its address now reaches nothing (as a host cut off the underlay).
  await store.mutateNode('n1', (n) => ({ ...n, status: { ...n.status!, addr: '198.51.100.9' } }));
  await waitForState('n1', NodeState.NODE_STATE_DOWN, 'heartbeat failure');
});
