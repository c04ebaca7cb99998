/**
 * Containers' network attachments (swarmkit's network-attachment tasks) in the managers' plans:
 * which networks a container may join, the allocator's addresses (and --ip), the DNS records and
 * overlay peers of the nodes, and when attachments go.
 */
import { RCODE, planDnsAnswer, planDnsIndex } from '../../agent/dns/answer';
import { checkAttachable, notAttachable, planAttachment, planOrphanedAttachments, planStaleAttachments } from '../../manager/network/attachments';
import { planNodeEndpoints } from '../../manager/network/endpoints';
import { planOverlays } from '../../manager/network/peers';
import { networkEndpoints, planAllocation } from '../../manager/network-plans';
import { Network, Node, NodeState, Service, Task, TaskState } from '../../services/gen/swarmlet/v1/types';
import { refusal } from '../support/rejection';

const S = TaskState;
const NOW = new Date('2026-12-04T12:00:00Z');
const BRIDGE = Network.fromPartial({ id: 'n-bridge', subnet: '172.17.0.0/16', gateway: '172.17.0.1', builtin: true, spec: { name: 'bridge', driver: 'bridge' } });
const HOST = Network.fromPartial({ id: 'n-host', builtin: true, spec: { name: 'host', driver: 'host' } });
const INGRESS = Network.fromPartial({ id: 'n-ingress', vni: 4100, subnet: '10.255.0.0/16', gateway: '10.255.0.1', builtin: true, spec: { name: 'ingress', driver: 'overlay' } });
const ATT = Network.fromPartial({ id: 'n-att', vni: 4096, subnet: '10.0.0.0/24', gateway: '10.0.0.1', spec: { name: 'my-attachable-overlay', driver: 'overlay', attachable: true } });
const PLAIN = Network.fromPartial({ id: 'n-plain', vni: 4097, subnet: '10.0.1.0/24', gateway: '10.0.1.1', spec: { name: 'plain', driver: 'overlay' } });
const USERBR = Network.fromPartial({ id: 'n-br', subnet: '10.0.9.0/24', gateway: '10.0.9.1', spec: { name: 'mybr', driver: 'bridge' } });
const networks = [BRIDGE, HOST, INGRESS, ATT, PLAIN, USERBR];
const nodes = [
  Node.fromPartial({ id: 'n1', status: { state: NodeState.NODE_STATE_READY, addr: '198.51.100.11' } }),
  Node.fromPartial({ id: 'n2', status: { state: NodeState.NODE_STATE_READY, addr: '198.51.100.12' } }),
];

const request = (network: string, o: { containerId?: string; nodeId?: string; ipv4?: string; aliases?: string[] } = {}) => ({
  nodeId: o.nodeId ?? 'n1',
  network,
  containerId: o.containerId ?? 'c1',
  containerName: 'alpine1',
  aliases: o.aliases ?? [],
  ipv4Address: o.ipv4 ?? '',
});

/** Every attachment the tests made: the next one's address is another. */
const made: Task[] = [];
/** An attachment task as the dispatcher makes it, then as the allocator leaves it (web's VIP and task hold 10.0.0.2 and .3). */
function attached(network: string, o: Parameters<typeof request>[1] & { id?: string } = {}): Task {
  const plan = planAttachment(request(network, o), networks, [], o.id ?? `a-${o.containerId ?? 'c1'}`, NOW);
  if (plan.kind !== 'create') throw new Error('expected a new attachment');
  const allocation = planAllocation([webTask, ...made, plan.task], networks, NOW, { reserved: [{ networkId: 'n-att', address: '10.0.0.2/24' }] });
  const after = allocation.changes.find((c) => c.after.id === plan.task.id)!.after;
  made.push(after);
  return after;
}

const web = Service.fromPartial({ id: 's-web', spec: { name: 'web', task: { networks: ['n-att'] } }, endpoint: { virtualIps: [{ networkId: 'n-att', addr: '10.0.0.2/24' }] } });
const webTask = Task.fromPartial({
  id: 'web1taskaaaaaaaa',
  serviceId: 's-web',
  serviceName: 'web',
  slot: 1,
  nodeId: 'n2',
  desiredState: S.TASK_STATE_RUNNING,
  status: { state: S.TASK_STATE_RUNNING },
  networks: [{ networkId: 'n-att', networkName: 'my-attachable-overlay', driver: 'overlay', address: '10.0.0.3/24', mac: '02:42:0a:00:00:03' }],
});

describe('which networks a container may join', () => {
  test('an overlay that is not attachable: docker\'s refusal, PermissionDenied', () => {
    const err = refusal(() => planAttachment(request('plain'), networks, [], 'a1', NOW));
    expect(err.kind).toBe('PermissionDenied');
    expect(err.message).toBe('Could not attach to network plain: rpc error: code = PermissionDenied desc = network plain not manually attachable');
    expect(notAttachable('x')).toContain('network x not manually attachable');
  });

  test('the ingress network is never attachable', () => {
    expect(refusal(() => checkAttachable(INGRESS)).kind).toBe('PermissionDenied');
  });

  test.each([['my-attachable-overlay'], ['bridge'], ['mybr'], ['n-att']])('%s is attachable', (ref) => {
    expect(planAttachment(request(ref), networks, [], 'a1', NOW).kind).toBe('create');
  });

  test('host and none are the node\'s own business', () => {
    expect(refusal(() => planAttachment(request('host'), networks, [], 'a1', NOW)).kind).toBe('InvalidArgument');
  });

  test('an unknown network, and a request without a container', () => {
    expect(refusal(() => planAttachment(request('nope'), networks, [], 'a1', NOW))).toMatchObject({ kind: 'NotFound', message: 'network nope not found' });
    expect(refusal(() => planAttachment(request('bridge', { containerId: ' ' }), networks, [], 'a1', NOW)).kind).toBe('InvalidArgument');
  });

  test('the task: on the caller\'s node, one network, the container in its spec, NEW and wanted running', () => {
    const plan = planAttachment(request('my-attachable-overlay', { aliases: ['a', 'a', 'b'] }), networks, [], 'a1', NOW);
    expect(plan.task).toMatchObject({
      id: 'a1',
      serviceId: '',
      nodeId: 'n1',
      desiredState: S.TASK_STATE_RUNNING,
      status: { state: S.TASK_STATE_NEW },
      spec: { networks: ['n-att'], attachment: { containerId: 'c1', containerName: 'alpine1', aliases: ['a', 'b'] } },
    });
  });

  test('a container attached already gets the same attachment again', () => {
    const have = attached('my-attachable-overlay');
    expect(planAttachment(request('my-attachable-overlay'), networks, [have], 'other', NOW)).toEqual({ kind: 'existing', task: have });
    // Another node's container of the same id is another container.
    expect(planAttachment(request('my-attachable-overlay', { nodeId: 'n2' }), networks, [have], 'other', NOW).kind).toBe('create');
  });

  test('--ip outside the subnet, or taken', () => {
    expect(refusal(() => planAttachment(request('my-attachable-overlay', { ipv4: '10.9.9.9' }), networks, [], 'a1', NOW)).message).toBe(
      "Invalid address 10.9.9.9: It does not belong to any of this network's subnets",
    );
    expect(refusal(() => planAttachment(request('my-attachable-overlay', { ipv4: 'x.y' }), networks, [], 'a1', NOW)).kind).toBe('InvalidArgument');
    expect(refusal(() => planAttachment(request('my-attachable-overlay', { ipv4: '10.0.0.3' }), networks, [webTask], 'a1', NOW)).message).toMatch(/^Address already in use/);
    expect(refusal(() => planAttachment(request('my-attachable-overlay', { ipv4: '10.0.0.1' }), networks, [], 'a1', NOW)).message).toMatch(/^Address already in use/);
  });
});

describe('the allocator', () => {
  test('gives an attachment the lowest free address and places it on its node at once (ASSIGNED, no scheduling)', () => {
    const made = planAttachment(request('my-attachable-overlay'), networks, [webTask], 'a1', NOW);
    const plan = planAllocation([webTask, made.task], networks, NOW);
    expect(plan.allocated).toBe(1);
    expect(plan.changes).toHaveLength(1);
    expect(plan.changes[0].after).toMatchObject({
      nodeId: 'n1',
      status: { state: S.TASK_STATE_ASSIGNED },
      networks: [{ networkId: 'n-att', networkName: 'my-attachable-overlay', driver: 'overlay', address: '10.0.0.2/24', gateway: '10.0.0.1', vni: 4096 }],
    });
  });

  test('--ip: the address asked for', () => {
    expect(attached('my-attachable-overlay', { ipv4: '10.0.0.77' }).networks[0].address).toBe('10.0.0.77/24');
  });

  test('--ip that another task took meanwhile: the attachment waits with docker\'s reason, without an address', () => {
    const made = planAttachment(request('my-attachable-overlay', { ipv4: '10.0.0.3' }), networks, [], 'a1', NOW);
    const plan = planAllocation([webTask, made.task], networks, NOW);
    expect(plan.allocated).toBe(0);
    expect(plan.changes[0].after).toMatchObject({ status: { state: S.TASK_STATE_NEW, message: 'Address already in use: 10.0.0.3' }, networks: [] });
  });

  test('network inspect lists a container by its name', () => {
    const a = attached('my-attachable-overlay');
    expect(networkEndpoints(ATT, [a]).map((e) => e.taskName)).toEqual(['alpine1']);
  });
});

describe('what the nodes know of attached containers', () => {
  const a1 = attached('my-attachable-overlay', { aliases: ['web-cache'] });
  const a2 = attached('my-attachable-overlay', { containerId: 'c2', nodeId: 'n2', id: 'a-c2' });
  // c2 is named alpine2: planAttachment took the request's name, alpine1; rename it here.
  a2.spec!.attachment!.containerName = 'alpine2';
  const input = (nodeId: string, tasks: Task[]) => ({ nodeId, tasks, networks, services: [web], nodes });

  test('every node on the network gets the containers\' records; a node with only a container there too', () => {
    const on1 = planNodeEndpoints(input('n1', [a1, a2, webTask])).services.find((n) => n.networkId === 'n-att')!;
    expect(on1.containers).toEqual([
      { containerId: 'c1', name: 'alpine1', aliases: ['web-cache'], ip: a1.networks[0].address.split('/')[0] },
      { containerId: 'c2', name: 'alpine2', aliases: [], ip: a2.networks[0].address.split('/')[0] },
    ]);
    expect(on1.services.map((s) => s.name)).toEqual(['web']);
    const on2 = planNodeEndpoints(input('n2', [a1, webTask])).services.find((n) => n.networkId === 'n-att')!;
    expect(on2.containers.map((c) => c.name)).toEqual(['alpine1']);
  });

  test('an attachment without its address yet, or detached, has no record', () => {
    const fresh = planAttachment(request('my-attachable-overlay', { containerId: 'c3' }), networks, [], 'a3', NOW).task;
    const gone = { ...a2, desiredState: S.TASK_STATE_SHUTDOWN };
    const on1 = planNodeEndpoints(input('n1', [a1, fresh, gone])).services.find((n) => n.networkId === 'n-att')!;
    expect(on1.containers.map((c) => c.containerId)).toEqual(['c1']);
  });

  test('overlay peers: a node with only a container on the overlay has it, with every task and container of it', () => {
    const overlays = planOverlays('n1', [a1, a2, webTask], networks, nodes);
    expect(overlays.map((o) => o.name)).toEqual(['my-attachable-overlay']);
    expect(overlays[0].peers.map((p) => [p.ip, p.vtep])).toEqual([
      ['10.0.0.3', '198.51.100.12'],
      [a1.networks[0].address.split('/')[0], '198.51.100.11'],
      [a2.networks[0].address.split('/')[0], '198.51.100.12'],
    ]);
    expect(planOverlays('n1', [a2, webTask], networks, nodes)).toEqual([]);
  });

  test('the embedded DNS answers a container\'s name and aliases, with the network\'s name too, and its PTR', () => {
    const records = planNodeEndpoints(input('n2', [a1, webTask])).services;
    const index = planDnsIndex(records, ['10.0.0.3/24']);
    const ip = a1.networks[0].address.split('/')[0];
    const ask = (name: string, type: 'A' | 'PTR' = 'A') => {
      const d = planDnsAnswer({ type: 'query', id: 1, flags: 0, questions: [{ name, type, class: 'IN' }] }, index, 0);
      return d.kind === 'answer' ? (d.packet.answers ?? []).map((x) => String((x as { data: unknown }).data)) : d.kind;
    };
    expect(ask('alpine1')).toEqual([ip]);
    expect(ask('ALPINE1.my-attachable-overlay')).toEqual([ip]);
    expect(ask('web-cache')).toEqual([ip]);
    expect(ask('web')).toEqual(['10.0.0.2']);
    expect(ask(`${ip.split('.').reverse().join('.')}.in-addr.arpa`, 'PTR')).toEqual(['alpine1']);
    // Detached: gone from the next records.
    const after = planDnsIndex(planNodeEndpoints(input('n2', [webTask])).services, ['10.0.0.3/24']);
    const gone = planDnsAnswer({ type: 'query', id: 1, flags: 0, questions: [{ name: 'alpine1', type: 'A', class: 'IN' }] }, after, 0);
    expect(gone.kind === 'answer' && ((gone.packet.flags ?? 0) & 0xf)).toBe(RCODE.NXDOMAIN);
  });
});

describe('when attachments go', () => {
  const a1 = attached('my-attachable-overlay');
  const a2 = attached('mybr', { containerId: 'c2', id: 'a-c2' });
  const b1 = attached('my-attachable-overlay', { containerId: 'c9', nodeId: 'n2', id: 'b-c9' });

  test('at session start, those of containers the node no longer has; never another node\'s, never a service task', () => {
    expect(planStaleAttachments([a1, a2, b1, webTask], 'n1', ['c1'])).toEqual(['a-c2']);
    expect(planStaleAttachments([a1, a2, b1, webTask], 'n1', [])).toEqual(['a-c1', 'a-c2']);
  });

  test('with their node, when it is removed or down', () => {
    const down = [nodes[0], Node.fromPartial({ id: 'n2', status: { state: NodeState.NODE_STATE_DOWN } })];
    expect(planOrphanedAttachments([a1, a2, b1, webTask], nodes)).toEqual([]);
    expect(planOrphanedAttachments([a1, a2, b1, webTask], down)).toEqual(['b-c9']);
    expect(planOrphanedAttachments([a1, a2, b1, webTask], [nodes[1]])).toEqual(['a-c1', 'a-c2']);
  });
});
