import { dispatcherServiceDefinition } from '../../manager/dispatcher';
import { SessionMessage } from '../../services/gen/swarmlet/v1/dispatcher';
import { managerPeers } from '../../manager/cluster-view';
import { planNodeEndpoints } from '../../manager/network/endpoints';
import { planOverlays, planVteps } from '../../manager/network/peers';
import { NodeSignature, SessionPlan, SessionPlanInput } from '../../manager/session-plans';
import { Cluster, Network, NetworkAttachment, Node, NodeRole, PortProtocol, PublishMode, Service, Task, TaskState } from '../../services/gen/swarmlet/v1/types';

const S = TaskState;
let revision = 100;
/** Stored as the store keeps it: at a revision of its own, newer than everything before. */
const stored = <T extends { meta?: unknown }>(o: T): T => ({ ...o, meta: { version: ++revision, createdAt: '', updatedAt: '' } });

const INGRESS = stored(Network.fromPartial({ id: 'n-ingress', vni: 4100, subnet: '10.255.0.0/16', builtin: true, spec: { name: 'ingress', driver: 'overlay' } }));
const FRONT = stored(Network.fromPartial({ id: 'front', vni: 4096, subnet: '10.0.0.0/24', spec: { name: 'front', driver: 'overlay' } }));
const BACK = stored(Network.fromPartial({ id: 'back', vni: 4097, subnet: '10.0.1.0/24', spec: { name: 'back', driver: 'overlay' } }));
const networks = [INGRESS, FRONT, BACK];

const att = (networkId: string, address: string, mac = `02:42:${address}`): NetworkAttachment => NetworkAttachment.fromPartial({ networkId, address, mac, driver: 'overlay' });
const node = (id: string, addr: string, o: Partial<Node> = {}): Node =>
  stored(Node.fromPartial({ id, role: NodeRole.NODE_ROLE_WORKER, status: { addr }, ...o }));
const web = stored(
  Service.fromPartial({
    id: 's-web',
    spec: { name: 'web' },
    endpoint: { ports: [{ protocol: PortProtocol.PORT_PROTOCOL_TCP, publishedPort: 8080, targetPort: 80, publishMode: PublishMode.PUBLISH_MODE_INGRESS }], virtualIps: [{ networkId: 'front', addr: '10.0.0.2/24' }] },
  }),
);
const db = stored(Service.fromPartial({ id: 's-db', spec: { name: 'db' }, endpoint: { virtualIps: [{ networkId: 'back', addr: '10.0.1.2/24' }] } }));
const task = (id: string, svc: Service, nodeId: string, state: TaskState, atts: NetworkAttachment[]): Task =>
  stored(Task.fromPartial({ id, serviceId: svc.id, serviceName: svc.spec!.name, slot: 1, nodeId, desiredState: S.TASK_STATE_RUNNING, status: { state }, networks: atts }));

function cluster(): SessionPlanInput {
  const manager = node('m1', '198.51.100.10', { role: NodeRole.NODE_ROLE_MANAGER, managerStatus: { addr: '198.51.100.10:4242', leader: true, reachability: 2 } });
  return {
    cluster: stored(Cluster.fromPartial({ id: 'c', spec: { heartbeatPeriodMs: 1000, nodeDownAfterMs: 5000 } })),
    leaderId: 'm1',
    nodes: [
      manager,
      node('n1', '198.51.100.11', { ingress: att('n-ingress', '10.255.0.2/16') }),
      node('n2', '198.51.100.12', { ingress: att('n-ingress', '10.255.0.3/16') }),
      node('n3', '198.51.100.13'),
    ],
    networks,
    services: [web, db],
    tasks: [
      task('web1', web, 'n1', S.TASK_STATE_RUNNING, [att('front', '10.0.0.10/24'), att('n-ingress', '10.255.0.10/16')]),
      task('web2', web, 'n2', S.TASK_STATE_ASSIGNED, [att('front', '10.0.0.11/24'), att('n-ingress', '10.255.0.11/16')]),
      task('db1', db, 'n2', S.TASK_STATE_RUNNING, [att('back', '10.0.1.10/24')]),
      task('db2', db, 'n3', S.TASK_STATE_RUNNING, [att('back', '10.0.1.11/24')]),
      task('old', db, 'n3', S.TASK_STATE_FAILED, [att('back', '10.0.1.12/24')]),
      task('new', db, '', S.TASK_STATE_PENDING, []),
      task('solo', db, 'n3', S.TASK_STATE_RUNNING, []),
    ],
  };
}

const plan = (input: SessionPlanInput) => new SessionPlan(input, (assigned) => assigned.map((t) => ({ taskId: t.id, registryAuth: 'auth' })));

test("each node's message is what the per-node plans make of the same state", () => {
  const input = cluster();
  const p = plan(input);
  for (const n of input.nodes) {
    const { nodeId: _, ...endpoints } = { nodeId: n.id, ...planNodeEndpoints({ nodeId: n.id, tasks: input.tasks, networks, services: input.services, nodes: input.nodes }) };
    // The node's tasks as stored: the wire leaves their meta out (session-delta.test.ts).
    const assigned = input.tasks.filter((t) => t.nodeId === n.id && (t.status?.state ?? 0) >= S.TASK_STATE_ASSIGNED);
    expect(p.message(n.id)).toEqual({
      node: { ...n, meta: undefined },
      managers: managerPeers(input.nodes),
      clusterSpec: input.cluster.spec,
      tasks: assigned.sort((a, b) => a.id.localeCompare(b.id)),
      overlays: planOverlays(n.id, input.tasks, networks, input.nodes, input.services),
      ...endpoints,
      credentials: assigned.map((t) => ({ taskId: t.id, registryAuth: 'auth' })),
      vteps: planVteps(input.nodes),
      fileValues: [],
    });
  }
  expect(p.message('n3').tasks.map((t) => t.id)).toEqual(['db2', 'old', 'solo']);
  expect(p.message('n3').overlays.map((o) => [o.name, o.peers.length])).toEqual([['back', 2], ['ingress', 4]]);
});

describe('signatures: a pass rebuilds only the messages a change concerns', () => {
  const signatures = (input: SessionPlanInput) => {
    const p = plan(input);
    const global = p.globalSignature();
    const both = (own: NodeSignature | undefined) => (global === undefined || own === undefined ? undefined : `${global} ${own.tasks} ${own.rest}`);
    return Object.fromEntries(input.nodes.map((n) => [n.id, both(p.signature(n.id))]));
  };
  const changed = (before: SessionPlanInput, after: SessionPlanInput) => {
    const [a, b] = [signatures(before), signatures(after)];
    return Object.keys(a).filter((id) => a[id] !== b[id]);
  };
  const withTask = (input: SessionPlanInput, id: string, change: (t: Task) => Task): SessionPlanInput => ({ ...input, tasks: input.tasks.map((t) => (t.id === id ? stored(change(t)) : t)) });

  test('the same state reads the same; a node gone has none', () => {
    const input = cluster();
    expect(changed(input, { ...input, tasks: [...input.tasks].reverse() })).toEqual([]);
    expect(plan(input).signature('gone')).toBeUndefined();
  });

  test('a task on no shared network concerns its own node only', () => {
    const input = cluster();
    expect(changed(input, withTask(input, 'solo', (t) => ({ ...t, status: { ...t.status!, state: S.TASK_STATE_COMPLETE } })))).toEqual(['n3']);
    // A task the scheduler has not placed yet concerns nobody.
    expect(changed(input, withTask(input, 'new', (t) => ({ ...t, status: { ...t.status!, message: 'waiting' } })))).toEqual([]);
  });

  test("a report of a task on no shared network changes its node's tasks part alone: the dispatcher asks the wire whether anything would go", () => {
    const input = cluster();
    const after = withTask(input, 'solo', (t) => ({ ...t, status: { ...t.status!, state: S.TASK_STATE_RUNNING } }));
    const [before, now] = [plan(input).signature('n3')!, plan(after).signature('n3')!];
    expect(now.rest).toBe(before.rest);
    expect(now.tasks).not.toBe(before.tasks);
  });

  test('a task on an overlay concerns every node on it; one on the ingress network, every node', () => {
    const input = cluster();
    expect(changed(input, withTask(input, 'db1', (t) => ({ ...t, status: { ...t.status!, state: S.TASK_STATE_FAILED } })))).toEqual(['n2', 'n3']);
    expect(changed(input, withTask(input, 'web1', (t) => ({ ...t, status: { ...t.status!, state: S.TASK_STATE_FAILED } })))).toEqual(['m1', 'n1', 'n2', 'n3']);
    // A task removed lowers the count, whatever the versions.
    expect(changed(input, { ...input, tasks: input.tasks.filter((t) => t.id !== 'old') })).toEqual(['n2', 'n3']);
  });

  test("a node's own change concerns it; its address, every node", () => {
    const input = cluster();
    const withNode = (id: string, change: (n: Node) => Node): SessionPlanInput => ({ ...input, nodes: input.nodes.map((n) => (n.id === id ? stored(change(n)) : n)) });
    expect(changed(input, withNode('n3', (n) => ({ ...n, status: { ...n.status!, message: 'ready' } })))).toEqual(['n3']);
    expect(changed(input, withNode('n3', (n) => ({ ...n, status: { ...n.status!, addr: '198.51.100.99' } })))).toEqual(['m1', 'n1', 'n2', 'n3']);
    expect(changed(input, { ...input, leaderId: undefined })).toEqual(['m1', 'n1', 'n2', 'n3']);
  });

  test('a service concerns the nodes on its networks and those running its tasks', () => {
    const input = cluster();
    const dbChanged = stored({ ...db, spec: { ...db.spec!, name: 'database' } });
    expect(changed(input, { ...input, services: [web, dbChanged] })).toEqual(['n2', 'n3']);
  });

  test('objects without versions cannot be compared: every message is built', () => {
    const input = cluster();
    const bare = { ...input, tasks: input.tasks.map((t) => ({ ...t, meta: undefined })) };
    expect(Object.values(signatures(bare))).toEqual([undefined, undefined, undefined, undefined]);
  });
});

describe('dispatcherServiceDefinition: a session message goes down encoded once', () => {
  test('bytes encoded beforehand are sent as they are, and decode to the message an object would', () => {
    const msg = SessionMessage.fromPartial({ sessionId: 's1', ...plan({ cluster: Cluster.fromPartial({ id: 'c' }), nodes: [node('n1', '198.51.100.1')], leaderId: 'n1', tasks: [], networks, services: [] }).message('n1') });
    const bytes = Buffer.from(SessionMessage.encode(msg).finish());
    const { responseSerialize, responseDeserialize } = dispatcherServiceDefinition.session;
    expect(responseSerialize(bytes)).toBe(bytes);
    expect(responseSerialize(msg)).toEqual(bytes);
    expect(responseDeserialize(responseSerialize(bytes))).toEqual(msg);
  });
});
