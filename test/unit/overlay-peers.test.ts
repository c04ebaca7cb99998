import { planOverlays, planVteps } from '../../manager/network/peers';
import { Network, Node, NodeState, Task, TaskState } from '../../services/gen/swarmlet/v1/types';

const net = (id: string, vni: number, opts: Record<string, string> = {}): Network =>
  Network.fromPartial({ id, vni, subnet: `10.0.${vni - 4096}.0/24`, gateway: `10.0.${vni - 4096}.1`, spec: { name: `net-${id}`, driver: 'overlay', options: opts } });
const node = (id: string, addr: string): Node => Node.fromPartial({ id, status: { addr } });
const task = (id: string, nodeId: string, state: TaskState, attachments: { net: string; ip: string }[]): Task =>
  Task.fromPartial({
    id,
    nodeId,
    status: { state },
    networks: attachments.map((a) => ({ networkId: a.net, driver: 'overlay', address: `${a.ip}/24`, mac: `02:42:${a.ip}` })),
  });

const nodes = [node('n1', '198.51.100.11'), node('n2', '198.51.100.12'), node('n3', '198.51.100.13')];
const networks = [net('a', 4096), net('b', 4097, { mtu: '1300' })];
const R = TaskState.TASK_STATE_RUNNING;

test('a node learns only the overlays its own tasks are on, with every live task of them', () => {
  const tasks = [
    task('t1', 'n1', R, [{ net: 'a', ip: '10.0.0.2' }]),
    task('t2', 'n2', R, [{ net: 'a', ip: '10.0.0.3' }, { net: 'b', ip: '10.0.1.2' }]),
    task('t3', 'n3', TaskState.TASK_STATE_ASSIGNED, [{ net: 'a', ip: '10.0.0.10' }]),
    task('t4', 'n3', TaskState.TASK_STATE_FAILED, [{ net: 'a', ip: '10.0.0.4' }]),
    task('t5', '', TaskState.TASK_STATE_PENDING, [{ net: 'a', ip: '10.0.0.5' }]),
  ];
  const forN1 = planOverlays('n1', tasks, networks, nodes);
  expect(forN1.map((o) => o.name)).toEqual(['net-a']);
  expect(forN1[0].peers).toEqual([
    { ip: '10.0.0.2', mac: '02:42:10.0.0.2', vtep: '198.51.100.11' },
    { ip: '10.0.0.3', mac: '02:42:10.0.0.3', vtep: '198.51.100.12' },
    { ip: '10.0.0.10', mac: '02:42:10.0.0.10', vtep: '198.51.100.13' },
  ]);
  expect(planOverlays('n2', tasks, networks, nodes).map((o) => [o.vni, o.mtu, o.peers.length])).toEqual([
    [4096, 0, 3],
    [4097, 1300, 1],
  ]);
  expect(planOverlays('n3', [tasks[3]], networks, nodes)).toEqual([]);
});

test('the tasks of a node that is down are no peers anywhere (their FDB and neighbour entries go); they are again once it is ready', () => {
  const tasks = [task('t1', 'n1', R, [{ net: 'a', ip: '10.0.0.2' }]), task('t2', 'n2', R, [{ net: 'a', ip: '10.0.0.3' }])];
  const withN2 = (state: NodeState) => nodes.map((n) => (n.id === 'n2' ? { ...n, status: { ...n.status!, state } } : n));
  expect(planOverlays('n1', tasks, networks, withN2(NodeState.NODE_STATE_DOWN))[0].peers.map((p) => p.ip)).toEqual(['10.0.0.2']);
  expect(planOverlays('n1', tasks, networks, withN2(NodeState.NODE_STATE_READY))[0].peers.map((p) => p.ip)).toEqual(['10.0.0.2', '10.0.0.3']);
  // A down node stays a VTEP that VXLAN is accepted from: it is admitted again the moment it is back.
  expect(planVteps(withN2(NodeState.NODE_STATE_DOWN))).toContain('198.51.100.12');
});

test('every node of the swarm is a VTEP each node accepts VXLAN from, with or without tasks; one without an address is not', () => {
  expect(planVteps([node('n3', '198.51.100.13'), node('n1', '198.51.100.11'), node('n4', ''), node('n2', '198.51.100.9'), node('n5', '198.51.100.11')])).toEqual([
    '198.51.100.9',
    '198.51.100.11',
    '198.51.100.13',
  ]);
  expect(planVteps([])).toEqual([]);
});
