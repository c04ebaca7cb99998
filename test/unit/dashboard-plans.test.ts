import { DASHBOARD_EVENTS, planDashboardView } from '../../manager/dashboard/dashboard-plans';
import { bearerMatches } from '../../manager/dashboard/dashboard-server';
import { loadDaemonConfig, parseDashboardAddr } from '../../services/config/config';
import { Event } from '../../services/gen/swarmlet/v1/control';
import { DeepPartial, Network, NetworkAttachment, Node, NodeAvailability, NodeRole, NodeState, PortProtocol, PublishMode, Reachability, Service, Task, TaskState } from '../../services/gen/swarmlet/v1/types';

const node = (id: string, hostname: string, more: DeepPartial<Node> = {}) =>
  Node.fromPartial({ id, description: { hostname }, status: { state: NodeState.NODE_STATE_READY, addr: `198.51.100.${id.length}` }, ...more });
const task = (id: string, service: string, slot: number, nodeId: string, state: TaskState, desired = TaskState.TASK_STATE_RUNNING, networks: Task['networks'] = []) =>
  Task.fromPartial({ id, serviceName: service, slot, nodeId, desiredState: desired, status: { state }, networks });
const overlay = (id: string, name: string, vni: number, subnet: string, builtin = false) => Network.fromPartial({ id, vni, subnet, builtin, spec: { name, driver: 'overlay' } });
const attachment = (n: Network, address: string) => NetworkAttachment.fromPartial({ networkId: n.id, networkName: n.spec!.name, driver: 'overlay', address, mac: '02:42:0a:00:00:02', vni: n.vni });

describe('planDashboardView', () => {
  const front = overlay('net-front', 'front', 4097, '10.0.1.0/24');
  const back = overlay('net-back', 'back', 4098, '10.0.2.0/24');
  const bridge = Network.fromPartial({ id: 'net-bridge', spec: { name: 'bridge', driver: 'bridge' }, builtin: true });
  const m1 = node('m1', 'lab-h1', {
    role: NodeRole.NODE_ROLE_MANAGER,
    spec: { labels: { zone: 'a' } },
    managerStatus: { addr: '198.51.100.11:2377', leader: true, reachability: Reachability.REACHABILITY_REACHABLE },
  });
  const w2 = node('w2', 'lab-h2', { spec: { availability: NodeAvailability.NODE_AVAILABILITY_DRAIN } });
  const w3 = node('w3', 'lab-h0', { status: { state: NodeState.NODE_STATE_DOWN, message: 'heartbeat failure', addr: '198.51.100.13' } });

  test('nodes by hostname, with role, state, availability, labels and the leader; each with the tasks meant to run on it', () => {
    const view = planDashboardView({
      nodes: [m1, w2, w3],
      tasks: [
        task('t2', 'web', 2, 'm1', TaskState.TASK_STATE_STARTING),
        task('t1', 'web', 1, 'm1', TaskState.TASK_STATE_RUNNING),
        task('t0', 'api', 1, 'm1', TaskState.TASK_STATE_FAILED),
        // Told to stop (scaled down): off the page at once.
        task('t3', 'web', 3, 'w2', TaskState.TASK_STATE_RUNNING, TaskState.TASK_STATE_SHUTDOWN),
        // Not placed yet.
        task('t4', 'web', 4, '', TaskState.TASK_STATE_PENDING),
      ],
      services: [],
      networks: [],
      events: [],
    });
    expect(view.nodes.map((n) => [n.hostname, n.role, n.state, n.availability, n.leader, n.reachability])).toEqual([
      ['lab-h0', 'worker', 'down', 'active', false, ''],
      ['lab-h1', 'manager', 'ready', 'active', true, 'reachable'],
      ['lab-h2', 'worker', 'ready', 'drain', false, ''],
    ]);
    expect(view.nodes[0].message).toBe('heartbeat failure');
    expect(view.nodes[1].labels).toEqual({ zone: 'a' });
    expect(view.nodes[1].tasks.map((t) => [t.service, t.slot, t.state])).toEqual([
      ['api', 1, 'failed'],
      ['web', 1, 'running'],
      ['web', 2, 'starting'],
    ]);
    expect(view.nodes[2].tasks).toEqual([]);
    expect(view.unassigned.map((t) => [t.id, t.state])).toEqual([['t4', 'pending']]);
  });

  test('each overlay with its VNI, subnet and the hosts whose tasks are on it; other drivers are not overlays', () => {
    const view = planDashboardView({
      nodes: [m1, w2],
      tasks: [
        task('t1', 'web', 1, 'm1', TaskState.TASK_STATE_RUNNING, TaskState.TASK_STATE_RUNNING, [attachment(front, '10.0.1.3/24')]),
        task('t2', 'web', 2, 'w2', TaskState.TASK_STATE_RUNNING, TaskState.TASK_STATE_RUNNING, [attachment(front, '10.0.1.4/24')]),
        // An ended task holds no VTEP for its network.
        task('t3', 'db', 1, 'w2', TaskState.TASK_STATE_FAILED, TaskState.TASK_STATE_SHUTDOWN, [attachment(back, '10.0.2.3/24')]),
      ],
      services: [],
      networks: [back, bridge, front],
      events: [],
    });
    expect(view.overlays).toEqual([
      { id: 'net-back', name: 'back', vni: 4098, subnet: '10.0.2.0/24', hosts: [] },
      { id: 'net-front', name: 'front', vni: 4097, subnet: '10.0.1.0/24', hosts: ['lab-h1', 'lab-h2'] },
    ]);
  });

  test('published ports of every service, with protocol and mode; an ingress port puts the ingress overlay on every node', () => {
    const ingress = overlay('net-ingress', 'ingress', 4096, '10.255.0.0/16', true);
    const web = Service.fromPartial({
      id: 's1',
      spec: { name: 'web' },
      endpoint: { ports: [{ protocol: PortProtocol.PORT_PROTOCOL_TCP, targetPort: 80, publishedPort: 8080, publishMode: PublishMode.PUBLISH_MODE_INGRESS }] },
    });
    const dns = Service.fromPartial({
      id: 's2',
      spec: { name: 'dns' },
      endpoint: { ports: [{ protocol: PortProtocol.PORT_PROTOCOL_UDP, targetPort: 53, publishedPort: 5353, publishMode: PublishMode.PUBLISH_MODE_HOST }] },
    });
    const view = planDashboardView({ nodes: [m1, w2], tasks: [], services: [web, dns], networks: [ingress], events: [] });
    expect(view.ports).toEqual([
      { service: 'dns', published: 5353, target: 53, protocol: 'udp', mode: 'host' },
      { service: 'web', published: 8080, target: 80, protocol: 'tcp', mode: 'ingress' },
    ]);
    expect(view.overlays.find((o) => o.name === 'ingress')?.hosts).toEqual(['lab-h1', 'lab-h2']);
  });

  test(`the latest ${DASHBOARD_EVENTS} events, newest first, named by their actor's name`, () => {
    const events = Array.from({ length: DASHBOARD_EVENTS + 5 }, (_, i) =>
      Event.fromPartial({ type: 'service', action: 'update', actorId: `id${i}`, attributes: i % 2 ? {} : { name: `svc${i}` }, time: `2026-12-05T10:00:${String(i).padStart(2, '0')}.000000000Z`, revision: i }),
    );
    const view = planDashboardView({ nodes: [], tasks: [], services: [], networks: [], events });
    expect(view.events).toHaveLength(DASHBOARD_EVENTS);
    expect(view.events[0]).toEqual({ time: events.at(-1)!.time, type: 'service', action: 'update', actorId: `id${DASHBOARD_EVENTS + 4}`, name: `svc${DASHBOARD_EVENTS + 4}`, change: '' });
    expect(view.events[1].name).toBe('');
    expect(view.events.at(-1)!.actorId).toBe('id5');
  });

  test("an event's changes, each old → new", () => {
    const e = Event.fromPartial({ type: 'task', action: 'update', actorId: 't1', attributes: { name: 'web.1', 'state.old': 'starting', 'state.new': 'running', 'replicas.old': '2', 'replicas.new': '4' }, time: '2026-12-05T10:00:00Z' });
    expect(planDashboardView({ nodes: [], tasks: [], services: [], networks: [], events: [e] }).events[0].change).toBe('state: starting → running, replicas: 2 → 4');
  });

  test('user-named things pass through as data (the page puts them in as text)', () => {
    const evil = '<img src=x onerror=alert(1)>';
    const view = planDashboardView({ nodes: [node('n1', evil, { spec: { labels: { [evil]: evil } } })], tasks: [task('t1', evil, 1, 'n1', TaskState.TASK_STATE_RUNNING)], services: [], networks: [], events: [] });
    expect(view.nodes[0].hostname).toBe(evil);
    expect(view.nodes[0].labels).toEqual({ [evil]: evil });
    expect(view.nodes[0].tasks[0].service).toBe(evil);
  });
});

describe('the dashboard token in an Authorization header', () => {
  test.each([
    ['Bearer swldash-abc', 'swldash-abc', true],
    ['bearer swldash-abc', 'swldash-abc', true],
    ['Bearer swldash-abd', 'swldash-abc', false],
    ['Bearer swldash-ab', 'swldash-abc', false],
    ['swldash-abc', 'swldash-abc', false],
    ['Basic swldash-abc', 'swldash-abc', false],
    ['Bearer ', 'swldash-abc', false],
    [undefined, 'swldash-abc', false],
    // No token made yet: nothing is let in.
    ['Bearer swldash-abc', undefined, false],
    ['Bearer ', '', false],
  ])('%j against %j: %s', (header, token, ok) => expect(bearerMatches(header, token)).toBe(ok));
});

describe('--dashboard-addr', () => {
  test.each([
    [':9443', { dashboardAddr: { port: 9443 } }],
    ['198.51.100.11:9443', { dashboardAddr: { host: '198.51.100.11', port: 9443 } }],
    ['', {}],
  ])('%j', (text, want) => expect(parseDashboardAddr(text)).toEqual(want));

  test.each(['9443', 'localhost:9443', ':0', ':70000', '1.2.3:9443'])('%j is refused in one line', (text) => {
    expect(() => parseDashboardAddr(text)).toThrow(/dashboard address/);
  });

  test('the flag, then SWARMLET_DASHBOARD_ADDR; unset, no dashboard', () => {
    expect(loadDaemonConfig({ dashboardAddr: ':1' }, { SWARMLET_DASHBOARD_ADDR: ':2' }).dashboardAddr).toEqual({ port: 1 });
    expect(loadDaemonConfig({}, { SWARMLET_DASHBOARD_ADDR: '10.0.0.1:2' }).dashboardAddr).toEqual({ host: '10.0.0.1', port: 2 });
    expect(loadDaemonConfig({}, {}).dashboardAddr).toBeUndefined();
  });
});
