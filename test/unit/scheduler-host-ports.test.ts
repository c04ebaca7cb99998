import { planScheduling } from '../../manager/orchestrator/scheduler';
import { Node, NodeState, PortProtocol, PublishMode, Service, Task, TaskState } from '../../services/gen/swarmlet/v1/types';

const S = TaskState;
const node = (id: string): Node => Node.fromPartial({ id, status: { state: NodeState.NODE_STATE_READY } });
const port = (publishedPort: number, protocol = PortProtocol.PORT_PROTOCOL_TCP, publishMode = PublishMode.PUBLISH_MODE_HOST) => ({ publishedPort, targetPort: 80, protocol, publishMode });
const service = (id: string, ports: ReturnType<typeof port>[]): Service => Service.fromPartial({ id, spec: { name: id }, endpoint: { ports } });

function task(id: string, serviceId: string, o: { nodeId?: string; state?: TaskState; desired?: TaskState } = {}): Task {
  return Task.fromPartial({
    id,
    serviceId,
    serviceName: serviceId,
    slot: 1,
    nodeId: o.nodeId ?? '',
    desiredState: o.desired ?? S.TASK_STATE_RUNNING,
    status: { state: o.state ?? (o.nodeId ? S.TASK_STATE_RUNNING : S.TASK_STATE_PENDING) },
    createdAt: '2025-01-01T00:00:00.000Z',
  });
}

const nodes = [node('n1'), node('n2'), node('n3')];
const web = service('web', [port(8080)]);

test('one task per node for a host-mode port; the rest wait and say why', () => {
  const pending = [1, 2, 3, 4].map((i) => task(`w${i}`, 'web'));
  const plan = planScheduling({ nodes, tasks: pending, pending, services: [web] });
  expect(plan.assignments.map((a) => a.nodeId).sort()).toEqual(['n1', 'n2', 'n3']);
  expect(plan.unassigned).toEqual([{ taskId: 'w4', message: 'no suitable node (host port 8080/tcp in use on 3 nodes)' }]);
});

test('live tasks of any service hold their host ports; ended or retiring ones and ingress ports do not', () => {
  const api = service('api', [port(8080)]);
  const mesh = service('mesh', [port(8080, PortProtocol.PORT_PROTOCOL_TCP, PublishMode.PUBLISH_MODE_INGRESS)]);
  const running = [
    task('a1', 'api', { nodeId: 'n1' }),
    task('a2', 'api', { nodeId: 'n2', state: S.TASK_STATE_FAILED }),
    task('a3', 'api', { nodeId: 'n3', desired: S.TASK_STATE_SHUTDOWN }),
    task('m1', 'mesh', { nodeId: 'n2' }),
  ];
  const pending = [task('w1', 'web'), task('w2', 'web')];
  const plan = planScheduling({ nodes, tasks: [...running, ...pending], pending, services: [web, api, mesh] });
  expect(plan.assignments.map((a) => a.nodeId).sort()).toEqual(['n2', 'n3']);
  expect(plan.unassigned).toEqual([]);
});

test('udp and tcp are apart; a service without host ports is not held back', () => {
  const dns = service('dns', [port(8080, PortProtocol.PORT_PROTOCOL_UDP)]);
  const running = [task('w0', 'web', { nodeId: 'n1' })];
  const pending = [task('d1', 'dns'), task('d2', 'dns'), task('d3', 'dns'), task('x1', 'plain'), task('x2', 'plain'), task('x3', 'plain'), task('x4', 'plain')];
  const plan = planScheduling({ nodes: [node('n1')], tasks: [...running, ...pending], pending, services: [web, dns] });
  expect(plan.assignments.map((a) => a.taskId)).toEqual(['d1', 'x1', 'x2', 'x3', 'x4']);
  expect(plan.unassigned.map((u) => u.message)).toEqual(['no suitable node (host port 8080/udp in use on 1 node)', 'no suitable node (host port 8080/udp in use on 1 node)']);
});

test('a global task pinned to a node whose port is taken waits', () => {
  const pinned = task('g1', 'web', { nodeId: 'n1', state: S.TASK_STATE_PENDING });
  const running = [task('w0', 'web', { nodeId: 'n1', state: S.TASK_STATE_ASSIGNED })];
  const plan = planScheduling({ nodes, tasks: [...running, pinned], pending: [pinned], services: [web] });
  expect(plan.unassigned).toEqual([{ taskId: 'g1', message: 'no suitable node (host port 8080/tcp in use on 1 node)' }]);
});

test("a node's own containers hold their host ports: a host-mode task goes elsewhere, or waits saying why", () => {
  const withContainer = (id: string) => Node.fromPartial({ id, status: { state: NodeState.NODE_STATE_READY }, description: { containerPorts: [{ container: 'web', protocol: PortProtocol.PORT_PROTOCOL_TCP, publishedPort: 8080, hostIp: '' }] } });
  const pending = [task('w1', 'web')];
  expect(planScheduling({ nodes: [withContainer('n1'), node('n2')], tasks: pending, pending, services: [web] }).assignments.map((a) => a.nodeId)).toEqual(['n2']);
  expect(planScheduling({ nodes: [withContainer('n1')], tasks: pending, pending, services: [web] }).unassigned).toEqual([{ taskId: 'w1', message: 'no suitable node (host port 8080/tcp in use on 1 node)' }]);
});
