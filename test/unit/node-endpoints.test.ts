import { isServing, planNodeEndpoints } from '../../manager/network/endpoints';
import { EndpointMode, Network, NetworkAttachment, Node, PortProtocol, PublishMode, Service, Task, TaskState } from '../../services/gen/swarmlet/v1/types';

const S = TaskState;
const INGRESS = Network.fromPartial({ id: 'n-ingress', vni: 4100, subnet: '10.255.0.0/16', gateway: '10.255.0.1', builtin: true, spec: { name: 'ingress', driver: 'overlay' } });
const BRIDGE = Network.fromPartial({ id: 'n-bridge', subnet: '172.17.0.0/16', builtin: true, spec: { name: 'bridge', driver: 'bridge' } });
const FRONT = Network.fromPartial({ id: 'front', vni: 4096, subnet: '10.0.0.0/24', spec: { name: 'front', driver: 'overlay' } });
const BACK = Network.fromPartial({ id: 'back', vni: 4097, subnet: '10.0.1.0/24', spec: { name: 'back', driver: 'overlay' } });
const BR = Network.fromPartial({ id: 'br', subnet: '10.0.9.0/24', spec: { name: 'br', driver: 'bridge' } });
const LAN = Network.fromPartial({ id: 'lan', subnet: '192.168.7.0/24', spec: { name: 'lan', driver: 'macvlan' } });
const networks = [INGRESS, BRIDGE, FRONT, BACK, BR, LAN];

const tcp = (publishedPort: number, targetPort: number, mode = PublishMode.PUBLISH_MODE_INGRESS) => ({ protocol: PortProtocol.PORT_PROTOCOL_TCP, publishedPort, targetPort, publishMode: mode });
function service(id: string, name: string, o: { vips?: [string, string][]; ports?: ReturnType<typeof tcp>[]; dnsrr?: boolean } = {}): Service {
  const spec = { mode: o.dnsrr ? EndpointMode.ENDPOINT_MODE_DNSRR : EndpointMode.ENDPOINT_MODE_VIP, ports: o.ports ?? [] };
  return Service.fromPartial({ id, spec: { name, endpoint: spec }, endpoint: { spec, ports: o.ports ?? [], virtualIps: (o.vips ?? []).map(([networkId, addr]) => ({ networkId, addr })) } });
}
const att = (networkId: string, address: string): NetworkAttachment => NetworkAttachment.fromPartial({ networkId, address, driver: networkId === 'br' ? 'bridge' : 'overlay' });

interface TaskOptions {
  state?: TaskState;
  desired?: TaskState;
  health?: string;
  check?: boolean;
  hostname?: string;
  slot?: number;
}
function task(id: string, svc: Service, nodeId: string, atts: NetworkAttachment[], o: TaskOptions = {}): Task {
  return Task.fromPartial({
    id,
    serviceId: svc.id,
    serviceName: svc.spec!.name,
    slot: o.slot ?? 1,
    nodeId,
    desiredState: o.desired ?? S.TASK_STATE_RUNNING,
    status: { state: o.state ?? S.TASK_STATE_RUNNING, container: o.health ? { health: o.health } : undefined },
    spec: { container: { hostname: o.hostname ?? '', healthcheck: o.check ? { test: ['CMD', 'true'] } : undefined } },
    networks: atts,
  });
}

const web = service('s-web', 'web', { vips: [['front', '10.0.0.2/24']], ports: [tcp(8080, 80)] });
const api = service('s-api', 'api', { vips: [['front', '10.0.0.3/24'], ['back', '10.0.1.2/24']] });
const db = service('s-db', 'db', { dnsrr: true, ports: [tcp(5432, 5432, PublishMode.PUBLISH_MODE_HOST)] });
const lonely = service('s-lonely', 'lonely', { vips: [['br', '10.0.9.2/24']] });
const services = [web, api, db, lonely];
const nodes = [
  Node.fromPartial({ id: 'n1', ingress: { networkId: 'n-ingress', address: '10.255.0.2/16', mac: '02:42:0a:ff:00:02', driver: 'overlay', networkName: 'ingress', vni: 4100 } }),
  Node.fromPartial({ id: 'n2' }),
];

const tasks = [
  task('web1aaaaaaaaaaaa', web, 'n1', [att('front', '10.0.0.10/24'), att('n-ingress', '10.255.0.10/16')], { slot: 1 }),
  task('web2bbbbbbbbbbbb', web, 'n2', [att('front', '10.0.0.11/24'), att('n-ingress', '10.255.0.11/16')], { slot: 2, check: true, health: 'unhealthy' }),
  task('web3cccccccccccc', web, 'n2', [att('front', '10.0.0.12/24'), att('n-ingress', '10.255.0.12/16')], { slot: 3, desired: S.TASK_STATE_SHUTDOWN }),
  task('web4dddddddddddd', web, 'n2', [att('front', '10.0.0.13/24'), att('n-ingress', '10.255.0.13/16')], { slot: 4, state: S.TASK_STATE_STARTING }),
  task('web5eeeeeeeeeeee', web, 'n2', [att('front', '10.0.0.14/24'), att('n-ingress', '10.255.0.14/16')], { slot: 5, state: S.TASK_STATE_FAILED }),
  task('api1ffffffffffff', api, 'n2', [att('back', '10.0.1.10/24'), att('front', '10.0.0.20/24')], { hostname: 'api-one', check: true, health: 'healthy' }),
  task('db1gggggggggggg', db, 'n1', [att('back', '10.0.1.20/24')], { slot: 0 }),
  task('db2hhhhhhhhhhhh', db, 'n2', [att('back', '10.0.1.21/24')], { slot: 0, state: S.TASK_STATE_ASSIGNED }),
];

describe('isServing', () => {
  test('running, wanted running, healthy or without a health check', () => {
    expect(tasks.map(isServing)).toEqual([true, false, false, false, false, true, true, false]);
  });
});

describe('planNodeEndpoints: services', () => {
  test('a node knows the networks its live tasks are on, with every service there (VIP or task)', () => {
    const { services: records } = planNodeEndpoints({ nodeId: 'n1', tasks, networks, services, nodes });
    expect(records.map((n) => n.name)).toEqual(['back', 'front']);
    const front = records.find((n) => n.name === 'front')!;
    expect(front.services.map((s) => [s.name, s.vip, s.tasks.map((t) => t.ip)])).toEqual([
      ['api', '10.0.0.3', ['10.0.0.20']],
      ['web', '10.0.0.2', ['10.0.0.10', '10.0.0.11', '10.0.0.12']],
    ]);
    const back = records.find((n) => n.name === 'back')!;
    expect(back).toEqual({
      networkId: 'back',
      name: 'back',
      containers: [],
      services: [
        { serviceId: 's-api', name: 'api', vip: '10.0.1.2', aliases: [], tasks: [{ taskId: 'api1ffffffffffff', ip: '10.0.1.10', name: 'api.1.api1ffffffffffff', hostname: 'api-one', serving: true }] },
        // dnsrr: no VIP; a global-style task (slot 0) is named after its node; one not running yet is left out
        { serviceId: 's-db', name: 'db', vip: '', aliases: [], tasks: [{ taskId: 'db1gggggggggggg', ip: '10.0.1.20', name: 'db.n1.db1gggggggggggg', hostname: 'db1ggggggggg', serving: true }] },
      ],
    });
  });

  test('a service record carries the aliases its spec gives that network, by name or id', () => {
    const aliased = { ...api, spec: { ...api.spec!, task: { ...api.spec!.task!, networks: ['front', 'back'], networkAliases: [{ network: 'front', aliases: ['api', 'gw'] }, { network: 'back', aliases: ['inner'] }] } } };
    const { services: records } = planNodeEndpoints({ nodeId: 'n1', tasks, networks, services: [web, aliased, db, lonely], nodes });
    const aliasesOn = (net: string) => records.find((n) => n.name === net)!.services.find((s) => s.name === 'api')!.aliases;
    expect(aliasesOn('front')).toEqual(['gw']);
    expect(aliasesOn('back')).toEqual(['inner']);
  });

  test('serving says which tasks get traffic; the others still answer to their names', () => {
    const { services: records } = planNodeEndpoints({ nodeId: 'n1', tasks, networks, services, nodes });
    const webTasks = records.find((n) => n.name === 'front')!.services.find((s) => s.name === 'web')!.tasks;
    expect(webTasks.map((t) => [t.name, t.hostname, t.serving])).toEqual([
      ['web.1.web1aaaaaaaaaaaa', 'web1aaaaaaaa', true],
      ['web.2.web2bbbbbbbbbbbb', 'web2bbbbbbbb', false],
      ['web.3.web3cccccccccccc', 'web3cccccccc', false],
    ]);
  });

  test('no records for ingress, built-in or macvlan networks, nor for a node without live tasks', () => {
    const onBridge = task('x1', lonely, 'n3', [att('br', '10.0.9.5/24')]);
    const onLan = task('x2', lonely, 'n3', [att('lan', '192.168.7.5/24')]);
    expect(planNodeEndpoints({ nodeId: 'n3', tasks: [onBridge, onLan], networks, services, nodes }).services.map((n) => n.name)).toEqual(['br']);
    const ended = task('x3', web, 'n3', [att('front', '10.0.0.30/24')], { state: S.TASK_STATE_COMPLETE });
    expect(planNodeEndpoints({ nodeId: 'n3', tasks: [ended], networks, services, nodes }).services).toEqual([]);
  });
});

describe('planNodeEndpoints: ingress and host ports', () => {
  test('the mesh: this node\'s endpoint and each ingress port with the serving tasks\' ingress addresses', () => {
    const { ingress } = planNodeEndpoints({ nodeId: 'n1', tasks, networks, services, nodes });
    expect(ingress).toEqual({
      networkId: 'n-ingress',
      vni: 4100,
      endpoint: nodes[0].ingress,
      ports: [{ protocol: PortProtocol.PORT_PROTOCOL_TCP, publishedPort: 8080, targetPort: 80, serviceId: 's-web', serviceName: 'web', backends: ['10.255.0.10'] }],
    });
  });

  test('no mesh on a node without its endpoint, or when no service publishes in ingress mode', () => {
    expect(planNodeEndpoints({ nodeId: 'n2', tasks, networks, services, nodes }).ingress).toBeUndefined();
    expect(planNodeEndpoints({ nodeId: 'n1', tasks, networks, services: [api, db], nodes }).ingress).toBeUndefined();
  });

  test('host ports of this node\'s placed tasks that are meant to run', () => {
    expect(planNodeEndpoints({ nodeId: 'n1', tasks, networks, services, nodes }).hostPorts).toEqual([{ taskId: 'db1gggggggggggg', protocol: PortProtocol.PORT_PROTOCOL_TCP, publishedPort: 5432, targetPort: 5432 }]);
    expect(planNodeEndpoints({ nodeId: 'n2', tasks, networks, services, nodes }).hostPorts.map((h) => h.taskId)).toEqual(['db2hhhhhhhhhhhh']);
  });
});
