/** Published ports claimed in the service's own etcd transaction, VIPs and ingress endpoints from the allocator, on a real throwaway etcd. */
import pino from 'pino';
import { EndpointMode, Node, NodeRole, NodeState, PortConfig, PortProtocol, PublishMode, Service, ServiceSpec, TaskState } from '../../services/gen/swarmlet/v1/types';
import { networkControl } from '../../manager/network-control';
import { serviceControl } from '../../manager/service-control';
import { allocatorLoop, builtinNetworksLoop } from '../../manager/task-loops';
import { EtcdStore } from '../../manager/store/etcd-store';
import { keys } from '../../manager/store/keys';
import { newTask } from '../../manager/orchestrator/tasks';
import { fixtureClient, useEtcd } from './etcd-fixture';
import { invoke, refused } from '../support/unary-call';
import { waitFor } from '../support/runtime-wait';

const log = pino({ level: 'silent' });
const tls = () => ({ caCertPem: '', certPem: '', keyPem: '' }) as never;
const etcd = useEtcd();
let store: EtcdStore;
let services: ReturnType<typeof serviceControl>;

beforeEach(async () => {
  store = new EtcdStore(etcd.client);
  services = serviceControl({ store, log, tls });
});

/** Until `check` holds (every 50 ms, for up to 10 s). */
const until = (check: () => Promise<boolean>) => waitFor('the store to hold it', check, 10000);

const tcp = (publishedPort: number, targetPort: number, publishMode = PublishMode.PUBLISH_MODE_INGRESS): PortConfig => ({ protocol: PortProtocol.PORT_PROTOCOL_TCP, publishedPort, targetPort, publishMode });
const spec = (name: string, ports: PortConfig[], networks: string[] = []) =>
  ServiceSpec.fromPartial({ name, mode: { $case: 'replicated', value: { replicas: 1 } }, task: { container: { image: 'exec:/', args: ['sleep', '100'] }, networks }, endpoint: { mode: EndpointMode.ENDPOINT_MODE_VIP, ports } });
const create = (s: ServiceSpec, via = services) => invoke(via.createService, { spec: s, registryAuth: '' });
const update = (ref: string, s: ServiceSpec) => invoke(services.updateService, { service: ref, version: 0, spec: s, rollback: false, registryAuth: '', clearRegistryAuth: false });
const claims = async () => Object.fromEntries([...(await store.listPortClaims())].sort());
const published = (s: Service) => (s.endpoint?.ports ?? []).map((p) => `${p.publishedPort}->${p.targetPort}`);

describe('published ports', () => {
  test('a port another service holds is refused, and nothing is written', async () => {
    const web = await create(spec('web', [tcp(8080, 80)]));
    expect(published(web)).toEqual(['8080->80']);
    expect(web.endpoint?.spec?.ports).toEqual([tcp(8080, 80)]);
    expect(await claims()).toEqual({ 'tcp/8080': web.id });
    expect(await refused(create(spec('api', [tcp(8080, 81)])))).toEqual(['Conflict', 'port 8080/tcp is already published by service web']);
    expect(await refused(create(spec('api', [tcp(8080, 81, PublishMode.PUBLISH_MODE_HOST)])))).toEqual(['Conflict', 'port 8080/tcp is already published by service web']);
    expect((await store.listServices()).map((s) => s.spec?.name)).toEqual(['web']);
    expect((await etcd.client.get(keys.serviceName('api')).string())).toBeNull();
    expect(await claims()).toEqual({ 'tcp/8080': web.id });
    // udp 8080 is another port
    await create(spec('dns', [{ ...tcp(8080, 53), protocol: PortProtocol.PORT_PROTOCOL_UDP }]));
  });

  test('host-mode ports are shared between services, but never with an ingress port', async () => {
    await create(spec('a', [tcp(9000, 80, PublishMode.PUBLISH_MODE_HOST)]));
    await create(spec('b', [tcp(9000, 80, PublishMode.PUBLISH_MODE_HOST)]));
    expect(await claims()).toEqual({});
    expect(await refused(create(spec('c', [tcp(9000, 80)])))).toEqual(['Conflict', 'port 9000/tcp is already published by service a in host mode']);
  });

  test('published 0: the lowest free port from 30000, kept across updates, shown on the service', async () => {
    const one = await create(spec('one', [tcp(0, 80)]));
    const two = await create(spec('two', [tcp(0, 80), tcp(30002, 81)]));
    expect(published(one)).toEqual(['30000->80']);
    expect(published(two)).toEqual(['30001->80', '30002->81']);
    const again = await update('one', { ...one.spec!, labels: { x: 'y' } });
    expect(published(again)).toEqual(['30000->80']);
    expect((await invoke(services.getService, { service: 'one' })).endpoint?.ports).toEqual([tcp(30000, 80)]);
    expect(await claims()).toEqual({ 'tcp/30000': one.id, 'tcp/30001': two.id, 'tcp/30002': two.id });
  });

  test('claims are released on update (ports dropped) and on removal', async () => {
    const web = await create(spec('web', [tcp(8080, 80), tcp(8443, 443)]));
    await update('web', spec('web', [tcp(8443, 443)]));
    expect(await claims()).toEqual({ 'tcp/8443': web.id });
    const api = await create(spec('api', [tcp(8080, 80)]));
    expect(await refused(update('web', spec('web', [tcp(8443, 443), tcp(8080, 80)])))).toEqual(['Conflict', 'port 8080/tcp is already published by service api']);
    expect(published((await store.getService(web.id))!)).toEqual(['8443->443']);
    await invoke(services.removeService, { service: 'web' });
    expect(await claims()).toEqual({ 'tcp/8080': api.id });
    await create(spec('web2', [tcp(8443, 443)]));
  });

  test('concurrent creates on two managers never get the same port', async () => {
    const other = fixtureClient([etcd.endpoint]);
    try {
      const second = serviceControl({ store: new EtcdStore(other), log, tls });
      const made = await Promise.all(['a', 'b', 'c', 'd', 'e', 'f'].map((name, i) => create(spec(name, [tcp(0, 80)]), i % 2 ? second : services)));
      expect(new Set(made.map((s) => s.endpoint?.ports[0].publishedPort)).size).toBe(6);
      const fixed = await Promise.allSettled([create(spec('x', [tcp(7000, 80)])), create(spec('y', [tcp(7000, 80)]), second)]);
      expect(fixed.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect(Object.keys(await claims())).toHaveLength(7);
      expect((await store.listServices()).length).toBe(7);
    } finally {
      await other.close();
    }
  });
});

describe('updates and the loops\' writes', () => {
  test('a version read before the allocator wrote VIPs is not stale; one read before another spec change is', async () => {
    const web = await create(spec('web', [tcp(8080, 80)]));
    const read = web.meta!.version;
    const withVips = await store.updateService({ ...web, endpoint: { ...web.endpoint!, virtualIps: [{ networkId: 'front', addr: '10.0.0.2/24' }] } });
    expect(withVips.meta!.version).toBeGreaterThan(read);
    const scaled = { ...web.spec!, mode: { $case: 'replicated' as const, value: { replicas: 3 } } };
    const updated = await invoke(services.updateService, { service: 'web', version: read, spec: scaled, rollback: false, registryAuth: '', clearRegistryAuth: false });
    expect(updated.endpoint?.virtualIps).toEqual([{ networkId: 'front', addr: '10.0.0.2/24' }]);
    expect(updated.spec?.mode).toEqual({ $case: 'replicated', value: { replicas: 3 } });
    const again = { ...web.spec!, labels: { stale: 'yes' } };
    expect((await refused(invoke(services.updateService, { service: 'web', version: read, spec: again, rollback: false, registryAuth: '', clearRegistryAuth: false })))[0]).toBe('Conflict');
  });
});

describe('allocator: ingress endpoints and VIPs', () => {
  test('nodes get ingress endpoints; tasks of a service with an ingress port join ingress last; VIPs are freed with their service', async () => {
    const builtins = builtinNetworksLoop(store, log);
    builtins.start();
    try {
      await until(async () => (await store.listNetworks()).length === 4);
    } finally {
      await builtins.stop();
    }
    const nets = networkControl({ store, log, tls });
    const front = await invoke(nets.createNetwork, { spec: { name: 'front', driver: 'overlay', ipam: undefined, attachable: false, internal: false, options: {}, labels: {} } });
    expect(await refused(create(spec('bad', [], ['ingress'])))).toEqual(['InvalidArgument', "network ingress is the routing mesh's and can't be joined: publish a port with --publish instead"]);
    for (const id of ['n1', 'n2']) {
      await store.createNode(Node.fromPartial({ id, role: NodeRole.NODE_ROLE_WORKER, status: { state: NodeState.NODE_STATE_READY, addr: `198.51.100.${id.slice(1)}` } }));
    }
    const web = await create(spec('web', [tcp(8080, 80)], ['front']));
    await store.createTasks([newTask(web, 't1', 1, '', new Date(Date.UTC(2025, 0, 1)))]);
    const loop = allocatorLoop(store, log);
    loop.start();
    try {
      await until(async () => (await store.getTask('t1'))?.status?.state === TaskState.TASK_STATE_PENDING && (await store.getService(web.id))!.endpoint!.virtualIps.length > 0);
      const nodes = (await store.listNodes()).sort((a, b) => a.id.localeCompare(b.id));
      expect(nodes.map((n) => [n.ingress?.networkName, n.ingress?.address])).toEqual([
        ['ingress', '10.255.0.2/16'],
        ['ingress', '10.255.0.3/16'],
      ]);
      expect((await store.getService(web.id))?.endpoint?.virtualIps).toEqual([{ networkId: front.id, addr: '10.0.0.2/24' }]);
      expect((await store.getTask('t1'))?.networks.map((a) => [a.networkName, a.address])).toEqual([
        ['front', '10.0.0.3/24'],
        ['ingress', '10.255.0.4/16'],
      ]);
      await invoke(services.removeService, { service: 'web' });
      const api = await create(spec('api', [], ['front']));
      await until(async () => ((await store.getService(api.id))?.endpoint?.virtualIps.length ?? 0) > 0);
      // web's VIP is free again once web is gone (its task still holds .3)
      expect((await store.getService(api.id))?.endpoint?.virtualIps).toEqual([{ networkId: front.id, addr: '10.0.0.2/24' }]);
    } finally {
      await loop.stop();
    }
  });
});
