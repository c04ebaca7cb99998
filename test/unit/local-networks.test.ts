import { planLocalNetworkDetail, planLocalNetworks } from '../../node/local-networks';
import { NetworkAttachment, Task, TaskState } from '../../services/gen/swarmlet/v1/types';
import { SwarmletError } from '../../services/common/errors';

const att = (networkId: string, networkName: string, driver: string, address: string, vni = 0): NetworkAttachment => ({
  networkId,
  networkName,
  driver,
  address,
  mac: '',
  gateway: '',
  vni,
  internal: false,
  options: {},
});

const task = (id: string, networks: NetworkAttachment[]): Task =>
  Task.fromPartial({ id, serviceId: 's', slot: 1, nodeId: 'n', desiredState: TaskState.TASK_STATE_RUNNING, status: { state: TaskState.TASK_STATE_RUNNING }, networks });

const names = (v: Parameters<typeof planLocalNetworks>[0]) => planLocalNetworks(v).map((n) => [n.id, n.spec?.name, n.spec?.driver, n.subnet]);

describe('planLocalNetworks', () => {
  test('before init: bridge, host and none, by name', () => {
    expect(names(undefined)).toEqual([
      ['bridge', 'bridge', 'bridge', '172.17.0.0/16'],
      ['host', 'host', 'host', ''],
      ['none', 'none', 'none', ''],
    ]);
    expect(planLocalNetworks(undefined).every((n) => n.builtin)).toBe(true);
  });

  test('on a worker: the networks of its tasks, overlays and ingress, with their cluster ids', () => {
    const view = {
      tasks: [task('t1', [att('id-front', 'front', 'overlay', '10.0.3.7/24', 4097)]), task('t2', [att('id-bridge', 'bridge', 'bridge', '172.17.0.2/16')]), task('t3', [att('id-lan', 'lan', 'bridge', '10.0.9.2/24')])],
      overlays: [{ networkId: 'id-front', name: 'front', vni: 4097, subnet: '10.0.3.0/24', gateway: '10.0.3.1', mtu: 0, peers: [] }],
      ingress: { networkId: 'id-ingress', vni: 4096, endpoint: att('', '', '', '10.255.0.3/16'), ports: [] },
    };
    expect(names(view)).toEqual([
      ['id-bridge', 'bridge', 'bridge', '172.17.0.0/16'],
      ['id-front', 'front', 'overlay', '10.0.3.0/24'],
      ['host', 'host', 'host', ''],
      ['id-ingress', 'ingress', 'overlay', '10.255.0.0/16'],
      ['id-lan', 'lan', 'bridge', '10.0.9.0/24'],
      ['none', 'none', 'none', ''],
    ]);
    expect(planLocalNetworks(view).find((n) => n.id === 'id-front')?.vni).toBe(4097);
    expect(planLocalNetworkDetail(view, 'front').endpoints.map((e) => [e.taskId, e.address])).toEqual([['t1', '10.0.3.7/24']]);
    expect(planLocalNetworkDetail(view, 'id-lan').network?.spec?.name).toBe('lan');
  });

  test('a network the node does not know is not found', () => {
    expect(() => planLocalNetworkDetail(undefined, 'front')).toThrow(SwarmletError);
    expect(() => planLocalNetworkDetail(undefined, 'front')).toThrow('network front not found');
  });
});
