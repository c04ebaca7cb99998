/**
 * The Control API's service and network halves, and the heartbeat leases the dispatcher holds, on
 * the in-memory store: what the Store port gives them, with no etcd.
 */
import pino from 'pino';
import { NetworkSpec, Node, NodeAvailability, NodeRole, NodeState, PortProtocol, PublishMode, ServiceSpec } from '../../services/gen/swarmlet/v1/types';
import { networkControl } from '../../manager/network-control';
import { nodeHealthLoop } from '../../manager/node-health';
import { serviceControl } from '../../manager/service-control';
import { MemoryStore } from '../../manager/store/memory-store';
import { invoke, refused } from '../support/unary-call';
import { waitFor } from '../support/runtime-wait';

const log = pino({ level: 'silent' });
const tls = () => ({ caCertPem: '', certPem: '', keyPem: '' }) as never;

const worker = (id: string) =>
  Node.fromPartial({
    id,
    role: NodeRole.NODE_ROLE_WORKER,
    spec: { desiredRole: NodeRole.NODE_ROLE_WORKER, availability: NodeAvailability.NODE_AVAILABILITY_ACTIVE, labels: {} },
    description: { hostname: id, os: 'linux', arch: 'x64' },
    status: { state: NodeState.NODE_STATE_READY, addr: '198.51.100.10' },
  });

test('networks and services through the Control API: a network in use is not removed, and nothing changes', async () => {
  const store = new MemoryStore();
  const networks = networkControl({ store, log, tls });
  const services = serviceControl({ store, log, tls });
  const front = await invoke(networks.createNetwork, { spec: NetworkSpec.fromPartial({ name: 'front', driver: 'overlay' }) });
  expect(front.vni).toBeGreaterThanOrEqual(4096);
  const spec = ServiceSpec.fromPartial({ name: 'web', mode: { $case: 'replicated', value: { replicas: 2 } }, task: { container: { image: 'exec:/', args: ['sleep', '100'] }, networks: ['front'] } });
  const web = await invoke(services.createService, { spec, registryAuth: '' });
  expect((await invoke(services.listServices, {})).services.map((s) => s.service?.spec?.name)).toEqual(['web']);

  const writes = { ...store.writes };
  expect((await refused(invoke(networks.removeNetwork, { network: 'front' })))[0]).toBe('FailedPrecondition');
  expect(store.writes).toEqual(writes);
  expect((await invoke(networks.listNetworks, {})).networks.map((n) => n.spec?.name)).toEqual(['front']);

  // Updating from a version read before a spec change is refused; from the current one it goes through.
  const scaled = await invoke(services.updateService, { service: 'web', version: web.meta!.version, spec: { ...spec, mode: { $case: 'replicated', value: { replicas: 3 } } }, rollback: false, registryAuth: '', clearRegistryAuth: false });
  expect((await refused(invoke(services.updateService, { service: 'web', version: web.meta!.version, spec, rollback: false, registryAuth: '', clearRegistryAuth: false })))[0]).toBe('Conflict');
  expect((await store.getService(web.id))?.meta?.version).toBe(scaled.meta?.version);

  await invoke(services.removeService, { service: 'web' });
  expect(await invoke(networks.pruneNetworks, {})).toEqual({ removed: ['front'] });
  expect(await store.listNetworks()).toEqual([]);
  // Their names are free again.
  await invoke(networks.createNetwork, { spec: NetworkSpec.fromPartial({ name: 'front', driver: 'overlay' }) });
  await invoke(services.createService, { spec: { ...spec, task: { ...spec.task!, networks: [] } }, registryAuth: '' });
});

test('a heartbeat lease keeps its node ready while renewed; once it runs out, node health marks the node down', async () => {
  const store = new MemoryStore();
  await store.createNode(worker('n1'));
  const lease = await store.holdHeartbeat('n1', 'session-1', 0.2);
  expect(await store.heartbeatingNodes()).toEqual(new Set(['n1']));
  expect(await lease.renew()).toBe(true);
  const health = nodeHealthLoop(store, log);
  health.start();
  try {
    await waitFor('the heartbeat key to go', async () => (await store.heartbeatingNodes()).size === 0);
    expect(await lease.renew()).toBe(false);
    await waitFor('the node to be down', async () => (await store.getNode('n1'))?.status?.state === NodeState.NODE_STATE_DOWN);
  } finally {
    await health.stop();
  }
});

test('a newer lease takes the heartbeat key over: the old one running out leaves it; removing the node drops it', async () => {
  const store = new MemoryStore();
  await store.createNode(worker('n1'));
  await store.holdHeartbeat('n1', 'old', 0.1);
  const newer = await store.holdHeartbeat('n1', 'new', 60);
  await new Promise((r) => setTimeout(r, 300));
  expect(await store.heartbeatingNodes()).toEqual(new Set(['n1']));
  expect(await newer.renew()).toBe(true);
  await store.deleteNode((await store.getNode('n1'))!);
  expect(await store.heartbeatingNodes()).toEqual(new Set());
});

test('a service that publishes nothing and names no network is created reading nothing; the other services are read only for published ports, and a taken port is still refused', async () => {
  class CountingStore extends MemoryStore {
    serviceLists = 0;
    otherReads = 0;
    override async listServices() {
      this.serviceLists++;
      return super.listServices();
    }
    override async listPortClaims() {
      this.otherReads++;
      return super.listPortClaims();
    }
    override async listNetworks() {
      this.otherReads++;
      return super.listNetworks();
    }
  }
  const store = new CountingStore();
  const services = serviceControl({ store, log, tls });
  const spec = (name: string) => ServiceSpec.fromPartial({ name, mode: { $case: 'replicated', value: { replicas: 1 } }, task: { container: { image: 'exec:/', args: ['sleep', '100'] } } });
  for (const name of ['a', 'b', 'c']) await invoke(services.createService, { spec: spec(name), registryAuth: '' });
  expect([store.serviceLists, store.otherReads]).toEqual([0, 0]);

  const publishing = (name: string, publishMode: PublishMode) =>
    ServiceSpec.fromPartial({ ...spec(name), endpoint: { ports: [{ protocol: PortProtocol.PORT_PROTOCOL_TCP, targetPort: 80, publishedPort: 8080, publishMode }] } });
  await invoke(services.createService, { spec: publishing('h1', PublishMode.PUBLISH_MODE_HOST), registryAuth: '' });
  expect(store.serviceLists).toBe(1);
  // h1 holds the port in host mode, which only the other services tell: an ingress port there is refused.
  expect(await refused(invoke(services.createService, { spec: publishing('i1', PublishMode.PUBLISH_MODE_INGRESS), registryAuth: '' }))).toEqual(['Conflict', expect.stringMatching(/8080\/tcp is already published by service h1 in host mode/)]);
});
