/** EtcdStore's networks against a real throwaway etcd (test/integration/etcd-fixture.ts). */
import { SwarmletError } from '../../services/common/errors';
import { Network } from '../../services/gen/swarmlet/v1/types';
import { EtcdStore } from '../../manager/store/etcd-store';
import { keys } from '../../manager/store/keys';
import { useEtcd } from './etcd-fixture';
import { rejection } from '../support/rejection';

const etcd = useEtcd();
let clock: Date;
let store: EtcdStore;

beforeEach(async () => {
  clock = new Date('2025-03-01T10:00:00.000Z');
  store = new EtcdStore(etcd.client, () => clock);
});

function network(id: string, name: string, subnet = '10.0.0.0/24', vni = 4096): Network {
  return {
    id,
    meta: undefined,
    spec: { name, driver: 'overlay', ipam: { subnet: '', gateway: '', ipRange: '' }, attachable: false, internal: false, options: { mtu: '1400' }, labels: { team: 'web' } },
    vni,
    subnet,
    gateway: subnet.replace(/0\/24$/, '1'),
    builtin: false,
  };
}

async function modRevision(key: string): Promise<number> {
  const res = await etcd.client.get(key).exec();
  expect(res.kvs).toHaveLength(1);
  return Number(res.kvs[0].mod_revision);
}

describe('networks', () => {
  test('create claims the name; get and list read it back with its meta', async () => {
    const created = await store.createNetwork(network('n1', 'front'));
    const meta = { version: await modRevision(keys.network('n1')), createdAt: clock.toISOString(), updatedAt: clock.toISOString() };
    expect(created).toEqual({ ...network('n1', 'front'), meta });
    expect(await etcd.client.get(keys.networkName('front')).string()).toBe('n1');
    expect(await store.getNetwork('n1')).toEqual(created);
    expect(await store.getNetwork('n2')).toBeUndefined();
    await store.createNetwork(network('n2', 'back', '10.0.1.0/24', 4097));
    expect((await store.listNetworks()).map((n) => n.spec?.name).sort()).toEqual(['back', 'front']);
  });

  test('a taken name is a Conflict, and nothing is written', async () => {
    await store.createNetwork(network('n1', 'front'));
    const err = await rejection(store.createNetwork(network('n2', 'front', '10.0.1.0/24')));
    expect([err.kind, err.message]).toEqual(['Conflict', 'a network named front already exists']);
    expect(await store.getNetwork('n2')).toBeUndefined();
    expect(await etcd.client.get(keys.networkName('front')).string()).toBe('n1');
  });

  test('a taken id is a Conflict, and the name stays free', async () => {
    await store.createNetwork(network('n1', 'front'));
    const err = await rejection(store.createNetwork(network('n1', 'other')));
    expect(err.kind).toBe('Conflict');
    expect(await etcd.client.get(keys.networkName('other')).string()).toBeNull();
  });

  test('listNetworksAt: a create guarded by the read revision fails once another network was made after it', async () => {
    await store.createNetwork(network('n1', 'front'));
    const { networks, revision } = await store.listNetworksAt();
    expect(networks.map((n) => n.id)).toEqual(['n1']);
    // Another manager gets in first, with the subnet both chose.
    await store.createNetwork(network('n2', 'back', '10.0.1.0/24'));
    const err = await rejection(store.createNetwork(network('n3', 'side', '10.0.1.0/24'), revision));
    expect(err.kind).toBe('Retryable');
    expect(await store.getNetwork('n3')).toBeUndefined();
    expect(await etcd.client.get(keys.networkName('side')).string()).toBeNull();
    // Read again, and it goes through; writes elsewhere in the store do not stand in its way.
    const again = await store.listNetworksAt();
    await etcd.client.put(keys.task('t1')).value('{}');
    await store.createNetwork(network('n3', 'side', '10.0.2.0/24'), again.revision);
    expect((await store.getNetwork('n3'))?.subnet).toBe('10.0.2.0/24');
  });

  test('a guarded create on an empty store, and the name check wins over the guard', async () => {
    const { networks, revision } = await store.listNetworksAt();
    expect(networks).toEqual([]);
    await store.createNetwork(network('n1', 'front'), revision);
    const err = await rejection(store.createNetwork(network('n2', 'front'), revision));
    expect(err.kind).toBe('Conflict');
  });

  test('a removed network is not counted by the guard (removals only free space)', async () => {
    const n1 = await store.createNetwork(network('n1', 'front'));
    const { revision } = await store.listNetworksAt();
    await store.deleteNetwork(n1);
    await store.createNetwork(network('n2', 'back'), revision);
    expect((await store.listNetworks()).map((n) => n.id)).toEqual(['n2']);
  });

  test('delete removes the network and frees its name', async () => {
    const n1 = await store.createNetwork(network('n1', 'front'));
    await store.deleteNetwork(n1);
    expect(await store.getNetwork('n1')).toBeUndefined();
    expect(await etcd.client.get(keys.networkName('front')).string()).toBeNull();
    await store.createNetwork(network('n2', 'front'));
    expect(await etcd.client.get(keys.networkName('front')).string()).toBe('n2');
  });

  test('delete compares and swaps: a stale version is Retryable, a missing network NotFound', async () => {
    const n1 = await store.createNetwork(network('n1', 'front'));
    await etcd.client.put(keys.network('n1')).value(JSON.stringify(Network.toJSON({ ...n1, vni: 5000 })));
    const stale = await rejection(store.deleteNetwork(n1));
    expect(stale.kind).toBe('Retryable');
    expect(await store.getNetwork('n1')).toBeDefined();
    expect(await etcd.client.get(keys.networkName('front')).string()).toBe('n1');
    await store.deleteNetwork((await store.getNetwork('n1'))!);
    const gone = await rejection(store.deleteNetwork(n1));
    expect([gone.kind, gone.message]).toEqual(['NotFound', 'network front not found']);
    expect(gone).toBeInstanceOf(SwarmletError);
  });

  test('network keys sit apart from the name claims', async () => {
    await store.createNetwork(network('n1', 'front'));
    const under = await etcd.client.getAll().prefix(keys.networksPrefix).keys();
    expect(under).toEqual([keys.network('n1')]);
  });
});
