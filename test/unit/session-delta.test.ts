/** Session messages as deltas: what the dispatcher encodes (SessionWire), applied as the agent applies it, is the whole message. */
import { SessionWire, SentState, hasTasks } from '../../manager/session-wire';
import { SessionPlan, SessionPlanInput } from '../../manager/session-plans';
import { applySessionDelta } from '../../services/api/session-delta';
import { SessionMessage } from '../../services/gen/swarmlet/v1/dispatcher';
import { Cluster, Network, NetworkAttachment, Node, NodeRole, PortProtocol, PublishMode, Service, Task, TaskState } from '../../services/gen/swarmlet/v1/types';

const S = TaskState;
let revision = 100;
const stored = <T extends { meta?: unknown }>(o: T): T => ({ ...o, meta: { version: ++revision, createdAt: '', updatedAt: '' } });

const INGRESS = stored(Network.fromPartial({ id: 'n-ingress', vni: 4100, subnet: '10.255.0.0/16', builtin: true, spec: { name: 'ingress', driver: 'overlay' } }));
const FRONT = stored(Network.fromPartial({ id: 'front', vni: 4096, subnet: '10.0.0.0/24', spec: { name: 'front', driver: 'overlay' } }));
const att = (networkId: string, address: string): NetworkAttachment => NetworkAttachment.fromPartial({ networkId, address, mac: `02:42:${address}`, driver: 'overlay' });
const node = (id: string, addr: string, o: Partial<Node> = {}): Node => stored(Node.fromPartial({ id, role: NodeRole.NODE_ROLE_WORKER, status: { addr }, ...o }));
const web = stored(
  Service.fromPartial({
    id: 's-web',
    spec: { name: 'web' },
    endpoint: { ports: [{ protocol: PortProtocol.PORT_PROTOCOL_TCP, publishedPort: 8080, targetPort: 80, publishMode: PublishMode.PUBLISH_MODE_INGRESS }], virtualIps: [{ networkId: 'front', addr: '10.0.0.2/24' }] },
  }),
);
const task = (id: string, nodeId: string, state: TaskState, address: string): Task =>
  stored(Task.fromPartial({ id, serviceId: web.id, serviceName: 'web', slot: 1, nodeId, desiredState: S.TASK_STATE_RUNNING, status: { state }, networks: [att('front', address)] }));

const base = (): SessionPlanInput => ({
  cluster: stored(Cluster.fromPartial({ id: 'c', spec: { heartbeatPeriodMs: 1000, nodeDownAfterMs: 5000 } })),
  leaderId: 'm1',
  nodes: [
    node('m1', '198.51.100.10', { role: NodeRole.NODE_ROLE_MANAGER, managerStatus: { addr: '198.51.100.10:4242', leader: true, reachability: 2 } }),
    node('n1', '198.51.100.11', { ingress: att('n-ingress', '10.255.0.2/16') }),
    node('n2', '198.51.100.12', { ingress: att('n-ingress', '10.255.0.3/16') }),
  ],
  networks: [INGRESS, FRONT],
  services: [web],
  tasks: [task('a', 'n1', S.TASK_STATE_ASSIGNED, '10.0.0.10/24'), task('b', 'n1', S.TASK_STATE_RUNNING, '10.0.0.11/24'), task('c', 'n2', S.TASK_STATE_RUNNING, '10.0.0.12/24')],
});

/** The cluster after each step, each built from the one before. */
const steps: [string, (i: SessionPlanInput) => SessionPlanInput][] = [
  ['a task changes state', (i) => ({ ...i, tasks: i.tasks.map((t) => (t.id === 'a' ? stored({ ...t, status: { ...t.status!, state: S.TASK_STATE_RUNNING } }) : t)) })],
  ['a task comes', (i) => ({ ...i, tasks: [...i.tasks, task('d', 'n1', S.TASK_STATE_ASSIGNED, '10.0.0.13/24')] })],
  ['a task goes', (i) => ({ ...i, tasks: i.tasks.filter((t) => t.id !== 'b') })],
  ['a node joins (every node\'s VTEPs change)', (i) => ({ ...i, nodes: [...i.nodes, node('n3', '198.51.100.13')] })],
  ['the node itself changes', (i) => ({ ...i, nodes: i.nodes.map((n) => (n.id === 'n1' ? stored(Node.fromPartial({ ...n, spec: { labels: { zone: 'a' } } })) : n)) })],
  ['a task elsewhere on its overlay changes (its peers and records change)', (i) => ({ ...i, tasks: i.tasks.map((t) => (t.id === 'c' ? stored({ ...t, networks: [att('front', '10.0.0.20/24')] }) : t)) })],
  ['its tasks all go', (i) => ({ ...i, tasks: i.tasks.filter((t) => t.nodeId !== 'n1') })],
];

const normal = (m: SessionMessage) => SessionMessage.decode(SessionMessage.encode(m).finish());
/** A message as the agent needs it: the status of a task past ASSIGNED in `whole` is its own node's report, which deltas do not send back (SessionWire's ownReportOnly). */
const stable = (m: SessionMessage, whole: SessionMessage) => {
  const reported = new Set(whole.tasks.filter((t) => (t.status?.state ?? 0) > S.TASK_STATE_ASSIGNED).map((t) => t.id));
  return { ...normal(m), tasks: normal(m).tasks.map((t) => (reported.has(t.id) ? { ...t, status: undefined } : t)) };
};
// Task d uses a secret: its node's messages carry the value from when d comes until its tasks all go.
const plan = (input: SessionPlanInput) =>
  new SessionPlan(
    input,
    (assigned) => assigned.map((t) => ({ taskId: t.id, registryAuth: 'auth' })),
    (assigned) => assigned.filter((t) => t.id === 'd').map(() => ({ id: 'secret-1', data: Buffer.from('s3cret') })),
  );

test.each([true, false])('each message, applied to the last (deltas: %s), is the whole message the plan makes', (deltas) => {
  const wire = new SessionWire();
  let input = base();
  let sent: SentState | undefined;
  let have: SessionMessage | undefined;
  const kinds: string[] = [];
  for (const [what, step] of [['the first message', (i: SessionPlanInput) => i] as const, ...steps]) {
    input = step(input);
    const p = plan(input);
    wire.newPass();
    const next = wire.message('sess', p.message('n1'), sent, deltas);
    expect({ what, sent: next !== undefined }).toEqual({ what, sent: true });
    sent = next!.sent;
    const msg = SessionMessage.decode(next!.bytes);
    kinds.push(msg.delta ? `delta of ${msg.tasks.length} tasks, ${msg.delta.removedTaskIds.length} gone` : `whole of ${msg.tasks.length} tasks`);
    have = applySessionDelta(have, msg);
    // What the agent is to have: the plan's message without the store's meta, which the wire does not send.
    const planned = p.message('n1');
    const whole = { sessionId: 'sess', ...planned, tasks: planned.tasks.map((t) => ({ ...t, meta: undefined })) };
    expect({ what, msg: stable(have, whole) }).toEqual({ what, msg: stable(whole, whole) });
  }
  expect(kinds).toEqual(
    deltas
      ? ['whole of 2 tasks', 'delta of 0 tasks, 0 gone', 'delta of 1 tasks, 0 gone', 'delta of 0 tasks, 1 gone', 'delta of 0 tasks, 0 gone', 'delta of 0 tasks, 0 gone', 'delta of 0 tasks, 0 gone', 'delta of 0 tasks, 2 gone']
      : ['whole of 2 tasks', 'whole of 2 tasks', 'whole of 3 tasks', 'whole of 2 tasks', 'whole of 2 tasks', 'whole of 2 tasks', 'whole of 2 tasks', 'whole of 0 tasks'],
  );
});

test('a delta leaves out the parts that did not change, and nothing goes when nothing changed', () => {
  const wire = new SessionWire();
  const input = base();
  const first = wire.message('sess', plan(input).message('n1'), undefined, true)!;
  // The same state read again (new objects, same versions): nothing to send.
  const again = plan(structuredClone(input));
  wire.newPass();
  expect(wire.message('sess', again.message('n1'), first.sent, true)).toBeUndefined();
  // A task starts running: the delta carries its network's records (it serves now), not the task (its node said so); every other part is as before.
  const changed = steps[0]![1](input);
  wire.newPass();
  const next = wire.message('sess', plan(changed).message('n1'), first.sent, true)!;
  const msg = SessionMessage.decode(next.bytes);
  expect(msg.tasks.map((t) => t.id)).toEqual([]);
  expect({ ...msg.delta, removedTaskIds: undefined }).toEqual({ removedTaskIds: undefined, sameNode: true, sameManagers: true, sameClusterSpec: true, sameOverlays: true, sameServices: false, sameIngress: true, sameHostPorts: true, sameCredentials: true, sameVteps: true, sameFileValues: true });
  expect(next.bytes.length).toBeLessThan(first.bytes.length);
});

test('a delta with no whole message before it is refused (the agent opens a new session)', () => {
  expect(() => applySessionDelta(undefined, SessionMessage.fromPartial({ delta: {} }))).toThrow(/before any whole message/);
});

test("a task's own report does not go back to its node; a change of its desired state does, and so does every task of a new session", () => {
  const wire = new SessionWire();
  // Tasks on no network: a task's state changes no part of the message.
  const bare = (i: SessionPlanInput): SessionPlanInput => ({ ...i, tasks: i.tasks.map((t) => ({ ...t, networks: [] })), services: [] });
  const input = bare(base());
  const first = wire.message('sess', plan(input).message('n1'), undefined, true)!;
  const withA = (i: SessionPlanInput, change: (t: Task) => Task) => ({ ...i, tasks: i.tasks.map((t) => (t.id === 'a' ? stored(change(t)) : t)) });
  const running = withA(input, (t) => ({ ...t, status: { ...t.status!, state: S.TASK_STATE_RUNNING } }));
  wire.newPass();
  expect(wire.message('sess', plan(running).message('n1'), first.sent, true)).toBeUndefined();
  // The orchestrator stops it: the task goes, with the status it has now.
  const stopping = withA(running, (t) => ({ ...t, desiredState: S.TASK_STATE_SHUTDOWN }));
  wire.newPass();
  const next = wire.message('sess', plan(stopping).message('n1'), first.sent, true)!;
  expect(SessionMessage.decode(next.bytes).tasks.map((t) => [t.id, t.desiredState, t.status?.state])).toEqual([['a', S.TASK_STATE_SHUTDOWN, S.TASK_STATE_RUNNING]]);
  // Its node's report that it stopped does not come back either.
  const stopped = withA(stopping, (t) => ({ ...t, status: { ...t.status!, state: S.TASK_STATE_SHUTDOWN } }));
  wire.newPass();
  expect(wire.message('sess', plan(stopped).message('n1'), next.sent, true)).toBeUndefined();
  // A task the scheduler assigns again at the same desired state is sent (ASSIGNED is the manager's, not the node's).
  const assigned = withA(input, (t) => ({ ...t, status: { ...t.status!, state: S.TASK_STATE_ASSIGNED, message: 'again' } }));
  wire.newPass();
  expect(SessionMessage.decode(wire.message('sess', plan(assigned).message('n1'), first.sent, true)!.bytes).tasks.map((t) => t.id)).toEqual(['a']);
  // A new session gets every task as stored.
  const whole = SessionMessage.decode(wire.message('sess2', plan(stopped).message('n1'), undefined, true)!.bytes);
  expect(whole.tasks.find((t) => t.id === 'a')?.status?.state).toBe(S.TASK_STATE_SHUTDOWN);
});

test("the dispatcher's shortcut (hasTasks) says the session has a node's tasks exactly when a delta would carry none of them and remove none", () => {
  const wire = new SessionWire();
  const bare = (i: SessionPlanInput): SessionPlanInput => ({ ...i, tasks: i.tasks.map((t) => ({ ...t, networks: [] })) });
  const withA = (i: SessionPlanInput, change: (t: Task) => Task) => ({ ...i, tasks: i.tasks.map((t) => (t.id === 'a' ? stored(change(t)) : t)) });
  const hostMode = (i: SessionPlanInput): SessionPlanInput => ({ ...i, services: i.services.map((s) => stored({ ...s, endpoint: { ...s.endpoint!, ports: s.endpoint!.ports.map((p) => ({ ...p, publishMode: PublishMode.PUBLISH_MODE_HOST })) } })) });
  const input = bare(base());
  const running = withA(input, (t) => ({ ...t, status: { ...t.status!, state: S.TASK_STATE_RUNNING } }));
  const cases: [string, SessionPlanInput, SessionPlanInput, boolean][] = [
    ['the same tasks', input, input, true],
    ["a task's own report", input, running, true],
    ['its desired state changed', input, withA(running, (t) => ({ ...t, desiredState: S.TASK_STATE_SHUTDOWN })), false],
    ['it is assigned again', input, withA(input, (t) => ({ ...t, status: { ...t.status!, message: 'again' } })), false],
    ['a task comes', input, { ...input, tasks: [...input.tasks, task('d', 'n1', S.TASK_STATE_ASSIGNED, '10.0.0.13/24')] }, false],
    ['a task goes', input, { ...input, tasks: input.tasks.filter((t) => t.id !== 'b') }, false],
    ['a task comes as another goes', input, { ...input, tasks: [...input.tasks.filter((t) => t.id !== 'b'), task('d', 'n1', S.TASK_STATE_RUNNING, '10.0.0.13/24')] }, false],
    // Its host ports follow its state: that report is not taken as had.
    ["a report of a task whose service publishes host ports", hostMode(input), withA(hostMode(input), (t) => ({ ...t, status: { ...t.status!, state: S.TASK_STATE_FAILED } })), false],
  ];
  for (const [what, before, after, has] of cases) {
    wire.newPass();
    const first = wire.message('sess', plan(before).message('n1'), undefined, true)!;
    const p = plan(after);
    wire.newPass();
    const next = wire.message('sess', p.message('n1'), first.sent, true);
    const carried = next ? SessionMessage.decode(next.bytes) : undefined;
    const noTasks = !carried || (carried.tasks.length === 0 && carried.delta!.removedTaskIds.length === 0);
    expect({ what, has: hasTasks(p.assignedTo('n1'), first.sent, (t) => p.reportShows(t)) }).toEqual({ what, has });
    // What it says of the tasks is what the wire does with them (the host-ports case aside, where it is only careful).
    if (has) expect({ what, noTasks }).toEqual({ what, noTasks: true });
    else if (what !== "a report of a task whose service publishes host ports") expect({ what, noTasks }).toEqual({ what, noTasks: false });
    else expect(carried?.delta?.sameHostPorts).toBe(false);
  }
});
