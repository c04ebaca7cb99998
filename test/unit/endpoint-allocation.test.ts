import { planAllocation, planEndpointAllocation, validateServiceNetworks, vipNetworks } from '../../manager/network-plans';
import { planOverlays } from '../../manager/network/peers';
import { EndpointMode, Network, NetworkAttachment, Node, PortProtocol, PublishMode, Service, ServiceSpec, Task, TaskState } from '../../services/gen/swarmlet/v1/types';
import { planServiceUpdate } from '../../manager/service-plans';
import { isOutOfDate } from '../../manager/orchestrator/tasks';
import { SwarmletError } from '../../services/common/errors';

const overlay = (id: string, subnet: string, vni: number): Network =>
  Network.fromPartial({ id, vni, subnet, gateway: subnet.replace(/0\/\d+$/, '1'), spec: { name: id, driver: 'overlay', ipam: { subnet: '', gateway: '', ipRange: '' } } });
const INGRESS = Network.fromPartial({ id: 'n-ingress', vni: 4100, subnet: '10.255.0.0/16', gateway: '10.255.0.1', builtin: true, spec: { name: 'ingress', driver: 'overlay' } });
const BRIDGE = Network.fromPartial({ id: 'n-bridge', subnet: '172.17.0.0/16', gateway: '172.17.0.1', builtin: true, spec: { name: 'bridge', driver: 'bridge' } });
const HOST = Network.fromPartial({ id: 'n-host', builtin: true, spec: { name: 'host', driver: 'host' } });
const MACVLAN = Network.fromPartial({ id: 'lan', subnet: '192.168.7.0/24', gateway: '192.168.7.1', spec: { name: 'lan', driver: 'macvlan' } });
const USERBR = Network.fromPartial({ id: 'br', subnet: '10.0.9.0/24', gateway: '10.0.9.1', spec: { name: 'br', driver: 'bridge' } });
const FRONT = overlay('front', '10.0.0.0/24', 4096);
const BACK = overlay('back', '10.0.1.0/24', 4097);
const networks = [BRIDGE, HOST, INGRESS, MACVLAN, USERBR, FRONT, BACK];

const ingressPort = { protocol: PortProtocol.PORT_PROTOCOL_TCP, targetPort: 80, publishedPort: 8080, publishMode: PublishMode.PUBLISH_MODE_INGRESS };
const hostPort = { ...ingressPort, publishedPort: 9090, publishMode: PublishMode.PUBLISH_MODE_HOST };

function service(id: string, nets: string[], o: { ports?: (typeof ingressPort)[]; dnsrr?: boolean; vips?: { networkId: string; addr: string }[] } = {}): Service {
  const endpoint = { mode: o.dnsrr ? EndpointMode.ENDPOINT_MODE_DNSRR : EndpointMode.ENDPOINT_MODE_VIP, ports: o.ports ?? [] };
  return Service.fromPartial({ id, spec: { name: id, task: { networks: nets }, endpoint }, endpoint: { spec: endpoint, ports: o.ports ?? [], virtualIps: o.vips ?? [] } });
}
const node = (id: string, addr: string, ingress?: Partial<NetworkAttachment>): Node => Node.fromPartial({ id, status: { addr }, ingress });
const att = (networkId: string, address: string, driver = 'overlay'): NetworkAttachment => NetworkAttachment.fromPartial({ networkId, networkName: networkId === 'n-ingress' ? 'ingress' : networkId, driver, address, mac: `m-${address}` });
function task(id: string, serviceId: string, nets: string[], o: { state?: TaskState; attachments?: NetworkAttachment[]; nodeId?: string } = {}): Task {
  return Task.fromPartial({
    id,
    serviceId,
    serviceName: serviceId,
    slot: 1,
    nodeId: o.nodeId ?? '',
    spec: { networks: nets },
    desiredState: TaskState.TASK_STATE_RUNNING,
    status: { state: o.state ?? TaskState.TASK_STATE_NEW, message: 'created' },
    createdAt: `2025-01-01T00:00:0${id.slice(-1)}Z`,
    networks: o.attachments ?? [],
  });
}

describe('planEndpointAllocation', () => {
  test('one VIP per overlay and user bridge a vip-mode service joins; none on macvlan, host or built-ins; none in dnsrr', () => {
    const services = [service('web', ['front', 'br', 'lan']), service('db', ['back'], { dnsrr: true }), service('h', ['host'])];
    expect(vipNetworks(services[0], networks).map((n) => n.id)).toEqual(['front', 'br']);
    const plan = planEndpointAllocation({ services, networks, nodes: [], tasks: [] });
    expect(plan.services).toEqual([{ serviceId: 'web', virtualIps: [{ networkId: 'front', addr: '10.0.0.2/24' }, { networkId: 'br', addr: '10.0.9.2/24' }] }]);
    expect(plan.failed).toEqual([]);
  });

  test('VIPs avoid task addresses and each other, held ones are kept, and those of networks left are freed', () => {
    const tasks = [task('t1', 'web', ['front'], { state: TaskState.TASK_STATE_RUNNING, attachments: [att('front', '10.0.0.2/24')] })];
    const services = [
      service('api', ['front', 'back'], { vips: [{ networkId: 'front', addr: '10.0.0.3/24' }, { networkId: 'br', addr: '10.0.9.2/24' }] }),
      service('web', ['front']),
    ];
    const plan = planEndpointAllocation({ services, networks, nodes: [], tasks });
    expect(plan.services).toEqual([
      { serviceId: 'api', virtualIps: [{ networkId: 'front', addr: '10.0.0.3/24' }, { networkId: 'back', addr: '10.0.1.2/24' }] },
      { serviceId: 'web', virtualIps: [{ networkId: 'front', addr: '10.0.0.4/24' }] },
    ]);
    expect(plan.reserved).toEqual(
      expect.arrayContaining([
        { networkId: 'front', address: '10.0.0.3/24' },
        { networkId: 'back', address: '10.0.1.2/24' },
        { networkId: 'front', address: '10.0.0.4/24' },
      ]),
    );
    expect(plan.reserved).not.toContainEqual({ networkId: 'br', address: '10.0.9.2/24' });
  });

  test('a service switched to dnsrr loses its VIPs; nothing changes when all is in place', () => {
    const vips = [{ networkId: 'front', addr: '10.0.0.2/24' }];
    expect(planEndpointAllocation({ services: [service('web', ['front'], { dnsrr: true, vips })], networks, nodes: [], tasks: [] }).services).toEqual([{ serviceId: 'web', virtualIps: [] }]);
    expect(planEndpointAllocation({ services: [service('web', ['front'], { vips })], networks, nodes: [], tasks: [] }).services).toEqual([]);
  });

  test('every node gets an ingress endpoint, avoiding held ones; none without the ingress network', () => {
    const nodes = [node('n1', '198.51.100.1', att('n-ingress', '10.255.0.2/16')), node('n2', '198.51.100.2'), node('n3', '198.51.100.3')];
    const plan = planEndpointAllocation({ services: [], networks, nodes, tasks: [] });
    expect(plan.nodes.map((n) => [n.nodeId, n.ingress?.address, n.ingress?.networkName, n.ingress?.vni, n.ingress?.driver])).toEqual([
      ['n2', '10.255.0.3/16', 'ingress', 4100, 'overlay'],
      ['n3', '10.255.0.4/16', 'ingress', 4100, 'overlay'],
    ]);
    expect(plan.nodes[0].ingress?.mac).toMatch(/^02:42:/);
    const gone = planEndpointAllocation({ services: [], networks: [FRONT], nodes, tasks: [] });
    expect(gone.nodes).toEqual([{ nodeId: 'n1', ingress: undefined }]);
  });

  test('an exhausted network says so, and the VIP waits', () => {
    const tiny = Network.fromPartial({ id: 'tiny', subnet: '10.9.0.0/30', gateway: '10.9.0.1', spec: { name: 'tiny', driver: 'overlay' } });
    const tasks = [task('t1', 'x', ['tiny'], { state: TaskState.TASK_STATE_RUNNING, attachments: [att('tiny', '10.9.0.2/30')] })];
    const plan = planEndpointAllocation({ services: [service('web', ['tiny'])], networks: [tiny], nodes: [], tasks });
    expect(plan.services).toEqual([]);
    expect(plan.failed).toEqual([{ id: 'vip/web/tiny', message: 'network tiny: no free address in 10.9.0.0/30 (2 in use)' }]);
  });
});

describe('planAllocation with ingress ports', () => {
  const now = new Date('2025-01-01T00:01:00Z');

  test('a task of a service with an ingress port gets the ingress network last; reserved addresses are skipped', () => {
    const services = [service('web', ['front'], { ports: [ingressPort] }), service('api', ['front'], { ports: [hostPort] })];
    const tasks = [task('t1', 'web', ['front']), task('t2', 'api', ['front']), task('t3', 'web', [])];
    const reserved = [{ networkId: 'front', address: '10.0.0.2/24' }, { networkId: 'n-ingress', address: '10.255.0.2/16' }];
    const plan = planAllocation(tasks, networks, now, { services, reserved });
    const byId = new Map(plan.changes.map((c) => [c.after.id, c.after]));
    expect(byId.get('t1')?.networks.map((a) => [a.networkName, a.address])).toEqual([
      ['front', '10.0.0.3/24'],
      ['ingress', '10.255.0.3/16'],
    ]);
    expect(byId.get('t1')?.spec?.networks).toEqual(['front']);
    expect(byId.get('t2')?.networks.map((a) => [a.networkName, a.address])).toEqual([['front', '10.0.0.4/24']]);
    expect(byId.get('t3')?.networks.map((a) => [a.networkName, a.address])).toEqual([['ingress', '10.255.0.4/16']]);
    expect(plan.allocated).toBe(3);
  });

  test('a task on the host network does not join ingress; without the ingress network nothing is added', () => {
    const services = [service('h', ['host'], { ports: [ingressPort] }), service('web', ['front'], { ports: [ingressPort] })];
    const plan = planAllocation([task('t1', 'h', ['host']), task('t2', 'web', ['front'])], networks.filter((n) => n !== INGRESS), now, { services });
    expect(plan.changes.map((c) => c.after.networks.map((a) => a.networkName))).toEqual([['host'], ['front']]);
    const withIngress = planAllocation([task('t1', 'h', ['host'])], networks, now, { services });
    expect(withIngress.changes[0].after.networks.map((a) => a.networkName)).toEqual(['host']);
  });
});

describe('services may not join the ingress network', () => {
  test('refused clearly', () => {
    let err: unknown;
    try {
      validateServiceNetworks(['ingress'], networks);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SwarmletError);
    expect((err as SwarmletError).message).toBe("network ingress is the routing mesh's and can't be joined: publish a port with --publish instead");
  });
});

describe('planOverlays and the routing mesh', () => {
  const nodes = [node('n1', '198.51.100.1', att('n-ingress', '10.255.0.2/16')), node('n2', '198.51.100.2', att('n-ingress', '10.255.0.3/16')), node('n3', '198.51.100.3')];
  const tasks = [
    task('t1', 'web', ['front'], { state: TaskState.TASK_STATE_RUNNING, nodeId: 'n1', attachments: [att('front', '10.0.0.3/24'), att('n-ingress', '10.255.0.9/16')] }),
  ];

  test('with an ingress port published, every node has the ingress overlay, peered with all nodes and tasks', () => {
    const services = [service('web', ['front'], { ports: [ingressPort] })];
    const forN2 = planOverlays('n2', tasks, networks, nodes, services);
    expect(forN2.map((o) => o.name)).toEqual(['ingress']);
    expect(forN2[0].peers).toEqual([
      { ip: '10.255.0.2', mac: 'm-10.255.0.2/16', vtep: '198.51.100.1' },
      { ip: '10.255.0.3', mac: 'm-10.255.0.3/16', vtep: '198.51.100.2' },
      { ip: '10.255.0.9', mac: 'm-10.255.0.9/16', vtep: '198.51.100.1' },
    ]);
    expect(planOverlays('n1', tasks, networks, nodes, services).map((o) => o.name)).toEqual(['front', 'ingress']);
  });

  test('without one, nodes without tasks there have no ingress overlay', () => {
    const services = [service('web', ['front'], { ports: [hostPort] })];
    expect(planOverlays('n2', tasks, networks, nodes, services)).toEqual([]);
  });
});

describe('gaining or losing ingress ports replaces the tasks', () => {
  const withPorts = (ports: (typeof ingressPort)[]) => ServiceSpec.fromPartial({ name: 'web', mode: { $case: 'replicated', value: { replicas: 1 } }, task: { networks: ['front'] }, endpoint: { ports } });
  const current = Service.fromPartial({ id: 'web', spec: withPorts([]), specVersion: 3 });

  test('a new spec version when ingress ports come or go; none for a host-mode port or a changed published port', () => {
    expect(planServiceUpdate(current, withPorts([ingressPort]), new Date()).specVersion).toBe(4);
    expect(planServiceUpdate(current, withPorts([hostPort]), new Date()).specVersion).toBe(3);
    const meshed = Service.fromPartial({ ...current, spec: withPorts([ingressPort]) });
    expect(planServiceUpdate(meshed, withPorts([{ ...ingressPort, publishedPort: 8081 }]), new Date()).specVersion).toBe(3);
    expect(planServiceUpdate(meshed, withPorts([]), new Date()).specVersion).toBe(4);
  });

  test('a task is out of date when its ingress attachment does not match the service', () => {
    const meshed = Service.fromPartial({ ...current, spec: withPorts([ingressPort]), specVersion: 4 });
    const old = task('t1', 'web', ['front'], { state: TaskState.TASK_STATE_RUNNING, attachments: [att('front', '10.0.0.3/24')] });
    old.specVersion = 3;
    old.spec = meshed.spec!.task;
    expect(isOutOfDate(meshed, old)).toBe(true);
    const joined = { ...old, networks: [...old.networks, att('n-ingress', '10.255.0.5/16')] };
    expect(isOutOfDate(meshed, joined)).toBe(false);
    expect(isOutOfDate({ ...meshed, spec: withPorts([]) }, joined)).toBe(true);
    expect(isOutOfDate(meshed, { ...old, status: { ...old.status!, state: TaskState.TASK_STATE_NEW } })).toBe(false);
  });
});
