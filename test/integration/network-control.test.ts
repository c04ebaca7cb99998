/** The network half of the Control API, the built-in networks and the allocator, on a real throwaway etcd. */
import pino from 'pino';
import { NetworkDetail } from '../../services/gen/swarmlet/v1/control';
import { EndpointMode, NetworkSpec, ServiceSpec, Task, TaskState } from '../../services/gen/swarmlet/v1/types';
import { networkControl } from '../../manager/network-control';
import { serviceControl } from '../../manager/service-control';
import { allocatorLoop, builtinNetworksLoop } from '../../manager/task-loops';
import { EtcdStore } from '../../manager/store/etcd-store';
import { newTask } from '../../manager/orchestrator/tasks';
import { useEtcd } from './etcd-fixture';
import { invoke, refused } from '../support/unary-call';
import { waitFor } from '../support/runtime-wait';

const log = pino({ level: 'silent' });
const etcd = useEtcd();
let store: EtcdStore;
let networks: ReturnType<typeof networkControl>;
let services: ReturnType<typeof serviceControl>;

beforeEach(async () => {
  store = new EtcdStore(etcd.client);
  networks = networkControl({ store, log, tls: () => ({ caCertPem: '', certPem: '', keyPem: '' }) as never });
  services = serviceControl({ store, log, tls: () => ({ caCertPem: '', certPem: '', keyPem: '' }) as never });
});

const overlay = (name: string, o: Partial<NetworkSpec> = {}) => NetworkSpec.fromPartial({ name, driver: 'overlay', ...o });
const serviceSpec = (name: string, nets: string[], replicas = 1) =>
  ServiceSpec.fromPartial({ name, mode: { $case: 'replicated', value: { replicas } }, task: { container: { image: 'exec:/', args: ['sleep', '100'] }, networks: nets } });

async function withBuiltins(): Promise<void> {
  const loop = builtinNetworksLoop(store, log);
  loop.start();
  try {
    await until(async () => (await store.listNetworks()).length === 4);
  } finally {
    await loop.stop();
  }
}

/** Until `check` holds (every 50 ms, for up to 10 s). */
const until = (check: () => Promise<boolean>) => waitFor('the store to hold it', check, 10000);

describe('built-in networks', () => {
  test('made once, even by several leaders at the same time', async () => {
    const loops = [builtinNetworksLoop(store, log), builtinNetworksLoop(store, log), builtinNetworksLoop(store, log)];
    loops.forEach((l) => l.start());
    try {
      await until(async () => (await store.listNetworks()).length >= 4);
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      await Promise.all(loops.map((l) => l.stop()));
    }
    const made = await store.listNetworks();
    expect(made.map((n) => [n.spec?.name, n.spec?.driver, n.subnet, n.builtin]).sort()).toEqual([
      ['bridge', 'bridge', '172.17.0.0/16', true],
      ['host', 'host', '', true],
      ['ingress', 'overlay', '10.255.0.0/16', true],
      ['none', 'none', '', true],
    ]);
    expect(made.find((n) => n.spec?.name === 'ingress')?.vni).toBe(4096);
  });
});

describe('network API', () => {
  beforeEach(withBuiltins);

  test('overlays get free subnets and VNIs; list is by name; get resolves names and id prefixes', async () => {
    const a = await invoke(networks.createNetwork, { spec: overlay('zeta') });
    const b = await invoke(networks.createNetwork, { spec: overlay('alpha', { options: { mtu: '1400' } }) });
    expect([a.subnet, a.gateway, a.vni, b.subnet, b.vni]).toEqual(['10.0.0.0/24', '10.0.0.1', 4097, '10.0.1.0/24', 4098]); // 4096 is ingress's
    const { networks: listed } = await invoke(networks.listNetworks, {});
    expect(listed.map((n) => n.spec?.name)).toEqual(['alpha', 'bridge', 'host', 'ingress', 'none', 'zeta']);
    expect((await invoke(networks.getNetwork, { network: 'alpha' })).network?.id).toBe(b.id);
    expect((await invoke(networks.getNetwork, { network: b.id.slice(0, 10) })).network?.spec?.options).toEqual({ mtu: '1400' });
  });

  test('concurrent creates (any manager serves the API) never share a subnet or VNI', async () => {
    const made = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((name) => invoke(networks.createNetwork, { spec: overlay(name) })));
    expect(new Set(made.map((n) => n.subnet)).size).toBe(5);
    expect(new Set(made.map((n) => n.vni)).size).toBe(5);
  });

  test('refusals', async () => {
    expect((await invoke(networks.createNetwork, { spec: NetworkSpec.fromPartial({ name: 'plain' }) })).spec?.driver).toBe('bridge');
    expect(await refused(invoke(networks.createNetwork, { spec: overlay('x', { driver: 'macvlan' }) }))).toEqual(['InvalidArgument', "a macvlan network needs --subnet: the subnet of the parent interface's LAN"]);
    expect((await refused(invoke(networks.createNetwork, { spec: overlay('host') })))[0]).toBe('Conflict');
    await invoke(networks.createNetwork, { spec: overlay('front', { ipam: { subnet: '10.5.0.0/24', gateway: '', ipRange: '' } }) });
    expect((await refused(invoke(networks.createNetwork, { spec: overlay('front') })))[0]).toBe('Conflict');
    expect(await refused(invoke(networks.createNetwork, { spec: overlay('other', { ipam: { subnet: '10.5.0.0/16', gateway: '', ipRange: '' } }) }))).toEqual(['Conflict', 'subnet 10.5.0.0/16 overlaps network front (10.5.0.0/24)']);
    expect(await refused(invoke(networks.removeNetwork, { network: 'bridge' }))).toEqual(['InvalidArgument', "network bridge is built in and can't be removed"]);
    expect(await refused(invoke(networks.getNetwork, { network: 'ghost' }))).toEqual(['NotFound', 'network ghost not found']);
  });

  test('services must name networks that exist and are available', async () => {
    await invoke(networks.createNetwork, { spec: overlay('front') });
    expect(await refused(invoke(services.createService, { spec: serviceSpec('web', ['ghost']), registryAuth: '' }))).toEqual(['NotFound', 'network ghost not found']);
    expect(await refused(invoke(services.createService, { spec: serviceSpec('web', ['front', 'front']), registryAuth: '' }))).toEqual(['InvalidArgument', 'network front is listed more than once']);
    const web = await invoke(services.createService, { spec: serviceSpec('web', ['front']), registryAuth: '' });
    expect(web.spec?.task?.networks).toEqual(['front']);
    const moved = ServiceSpec.fromPartial({ ...web.spec, task: { ...web.spec!.task, networks: ['front', 'ghost'] } });
    expect(await refused(invoke(services.updateService, { service: 'web', version: 0, spec: moved, rollback: false, registryAuth: '', clearRegistryAuth: false }))).toEqual(['NotFound', 'network ghost not found']);
  });

  test('in use by a service, then by its tasks; prune takes only what nothing uses', async () => {
    await invoke(networks.createNetwork, { spec: overlay('front') });
    await invoke(networks.createNetwork, { spec: overlay('idle') });
    const web = await invoke(services.createService, { spec: serviceSpec('web', ['front'], 0), registryAuth: '' });
    expect(await refused(invoke(networks.removeNetwork, { network: 'front' }))).toEqual(['FailedPrecondition', 'network front is in use by service web']);
    await store.createTasks([1, 2].map((slot) => newTask(web, `t${slot}`, slot, '', new Date())));
    expect(await refused(invoke(networks.removeNetwork, { network: 'front' }))).toEqual(['FailedPrecondition', 'network front is in use by 2 tasks (web.1, web.2)']);
    expect(await invoke(networks.pruneNetworks, {})).toEqual({ removed: ['idle'] });
    await invoke(services.removeService, { service: 'web' });
    await store.deleteTasks(['t1', 't2']);
    await invoke(networks.removeNetwork, { network: 'front' });
    expect((await store.listNetworks()).map((n) => n.spec?.name).sort()).toEqual(['bridge', 'host', 'ingress', 'none']);
  });
});

describe('allocator', () => {
  beforeEach(withBuiltins);

  test('new tasks on networks get addresses, then PENDING; inspect lists them', async () => {
    const front = await invoke(networks.createNetwork, { spec: overlay('front') });
    const web = await invoke(services.createService, { spec: serviceSpec('web', ['front'], 3), registryAuth: '' });
    await store.createTasks([1, 2, 3].map((slot) => newTask(web, `t${slot}`, slot, '', new Date(Date.UTC(2025, 0, 1, 0, 0, slot)))));
    const loop = allocatorLoop(store, log);
    loop.start();
    try {
      await until(async () => (await store.listTasks()).every((t) => t.status?.state === TaskState.TASK_STATE_PENDING));
    } finally {
      await loop.stop();
    }
    const tasks = (await store.listTasks()).sort((a, b) => a.id.localeCompare(b.id));
    // The service's VIP on the network is allocated first: the tasks never take it.
    expect((await store.getService(web.id))?.endpoint?.virtualIps).toEqual([{ networkId: front.id, addr: '10.0.0.2/24' }]);
    expect(tasks.map((t) => t.networks.map((n) => [n.networkId, n.address, n.mac]))).toEqual([
      [[front.id, '10.0.0.3/24', '02:42:0a:00:00:03']],
      [[front.id, '10.0.0.4/24', '02:42:0a:00:00:04']],
      [[front.id, '10.0.0.5/24', '02:42:0a:00:00:05']],
    ]);
    const detail: NetworkDetail = await invoke(networks.getNetwork, { network: 'front' });
    expect(detail.endpoints.map((e) => [e.taskName, e.address])).toEqual([
      ['web.1', '10.0.0.3/24'],
      ['web.2', '10.0.0.4/24'],
      ['web.3', '10.0.0.5/24'],
    ]);
  });

  test('a task that finds no address waits NEW and says why, and goes on once one is free', async () => {
    const tiny = await invoke(networks.createNetwork, { spec: overlay('tiny', { ipam: { subnet: '10.9.0.0/30', gateway: '', ipRange: '' } }) });
    // dnsrr: no VIP, so the tasks have the network's two addresses to themselves.
    const spec = { ...serviceSpec('web', ['tiny'], 2), endpoint: { mode: EndpointMode.ENDPOINT_MODE_DNSRR, ports: [] } };
    const web = await invoke(services.createService, { spec, registryAuth: '' });
    await store.createTasks([newTask(web, 't1', 1, '', new Date(Date.UTC(2025, 0, 1))), newTask(web, 't2', 2, '', new Date(Date.UTC(2025, 0, 2)))]);
    const loop = allocatorLoop(store, log);
    loop.start();
    try {
      const t2 = async () => (await store.getTask('t2')) as Task;
      await until(async () => /no free address/.test((await t2()).status?.message ?? ''));
      expect((await t2()).status?.message).toBe('network tiny: no free address in 10.9.0.0/30 (2 in use)');
      expect((await t2()).status?.state).toBe(TaskState.TASK_STATE_NEW);
      expect((await store.getTask('t1'))?.networks.map((n) => n.address)).toEqual(['10.9.0.2/30']);
      await store.deleteTasks(['t1']);
      await until(async () => (await t2()).status?.state === TaskState.TASK_STATE_PENDING);
      expect((await t2()).networks).toEqual([expect.objectContaining({ networkId: tiny.id, address: '10.9.0.2/30' })]);
    } finally {
      await loop.stop();
    }
  });
});
