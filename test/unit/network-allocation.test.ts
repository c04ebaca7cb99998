import { SwarmletError } from '../../services/common/errors';
import { Network, NetworkSpec } from '../../services/gen/swarmlet/v1/types';
import { planBuiltinNetworks, planNetworkAllocation } from '../../manager/network/ipam';
import { VNI_MIN } from '../../services/common/vxlan';
import { BUILTIN_NETWORKS } from '../../manager/network/network-spec';
import { formatCidr } from '../../services/common/cidr';

function spec(driver: string, ipam: Partial<NonNullable<NetworkSpec['ipam']>> = {}, name = 'net'): NetworkSpec {
  return { name, driver, ipam: { subnet: '', gateway: '', ipRange: '', ...ipam }, attachable: false, internal: false, options: {}, labels: {} };
}

function net(id: string, subnet: string, vni = 0, driver = 'overlay'): Network {
  return { id, meta: undefined, spec: spec(driver, { subnet }, id), vni, subnet, gateway: '', builtin: false };
}

const BRIDGE = net('bridge', '172.17.0.0/16', 0, 'bridge');

describe('planNetworkAllocation: subnets', () => {
  const cases: [string, NetworkSpec, Network[], string, string][] = [
    ['first /24 of the pool', spec('overlay'), [BRIDGE], '10.0.0.0/24', '10.0.0.1'],
    ['skips taken /24s', spec('overlay'), [BRIDGE, net('a', '10.0.0.0/24'), net('b', '10.0.1.0/24')], '10.0.2.0/24', '10.0.2.1'],
    ['fills a hole', spec('overlay'), [net('a', '10.0.0.0/24'), net('c', '10.0.2.0/24')], '10.0.1.0/24', '10.0.1.1'],
    ['skips a larger block', spec('overlay'), [net('a', '10.0.0.0/16')], '10.1.0.0/24', '10.1.0.1'],
    ['skips a smaller block inside a /24', spec('overlay'), [net('a', '10.0.0.128/25'), net('b', '10.0.1.4/30')], '10.0.2.0/24', '10.0.2.1'],
    ['order of existing does not matter', spec('overlay'), [net('b', '10.0.1.0/24'), net('a', '10.0.0.0/24')], '10.0.2.0/24', '10.0.2.1'],
    ['nested blocks', spec('overlay'), [net('a', '10.0.0.0/16'), net('b', '10.0.5.0/24')], '10.1.0.0/24', '10.1.0.1'],
    ['subnets outside the pool do not matter', spec('overlay'), [net('a', '192.168.0.0/16'), BRIDGE], '10.0.0.0/24', '10.0.0.1'],
    ['a user bridge without subnet', spec('bridge'), [net('a', '10.0.0.0/24')], '10.0.1.0/24', '10.0.1.1'],
    ['the spec\'s subnet', spec('overlay', { subnet: '10.0.0.0/16' }), [], '10.0.0.0/16', '10.0.0.1'],
    ['the spec\'s gateway', spec('bridge', { subnet: '192.168.5.0/24', gateway: '192.168.5.254' }), [], '192.168.5.0/24', '192.168.5.254'],
    ['macvlan with subnet', spec('macvlan', { subnet: '192.168.7.0/24' }), [], '192.168.7.0/24', '192.168.7.1'],
  ];
  test.each(cases)('%s', (_title, s, existing, subnet, gateway) => {
    const n = planNetworkAllocation(s, existing, { newId: 'new' });
    expect(n).toMatchObject({ id: 'new', subnet, gateway, builtin: false, spec: s });
  });

  test('the pool skips the nodes\' interface subnets', () => {
    const hostSubnets = [
      { node: 'h1', iface: 'eth0', subnet: '10.0.0.0/23' },
      { node: 'h2', iface: 'eth1', subnet: '10.0.2.128/25' },
    ];
    expect(planNetworkAllocation(spec('overlay'), [BRIDGE], { newId: 'n', hostSubnets }).subnet).toBe('10.0.3.0/24');
  });

  test('the pool skips the ingress network\'s subnet before it is made', () => {
    // Everything below 10.255.0.0/16 is taken: the rest of the pool is the ingress network's.
    const below = ['10.0.0.0/9', '10.128.0.0/10', '10.192.0.0/11', '10.224.0.0/12', '10.240.0.0/13', '10.248.0.0/14', '10.252.0.0/15', '10.254.0.0/16'].map((c, i) => net(`n${i}`, c));
    expect(() => planNetworkAllocation(spec('bridge'), below, { newId: 'n' })).toThrow(/the default address pool 10\.0\.0\.0\/8 has no free \/24/);
  });

  test('host and none get no addresses', () => {
    for (const driver of ['host', 'none']) expect(planNetworkAllocation(spec(driver), [], { newId: 'x' })).toMatchObject({ subnet: '', gateway: '', vni: 0 });
  });

  test('macvlan needs a subnet', () => {
    expect(() => planNetworkAllocation(spec('macvlan'), [], { newId: 'x' })).toThrow(/a macvlan network needs --subnet/);
  });

  test('the pool exhausted', () => {
    const existing = [net('all', '10.0.0.0/8')];
    let err: unknown;
    try {
      planNetworkAllocation(spec('overlay'), existing, { newId: 'x' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SwarmletError);
    expect((err as SwarmletError).kind).toBe('Unavailable');
    expect((err as SwarmletError).message).toMatch(/^the default address pool 10\.0\.0\.0\/8 has no free \/24/);
  });

  test('the last /24 of the pool', () => {
    // Every /24 of the pool but the last free one, as /16s less one /16 split into 255 /24s;
    // 10.255.0.0/16 is the ingress network's.
    const existing: Network[] = [];
    for (let i = 0; i < 254; i++) existing.push(net(`b${i}`, `10.${i}.0.0/16`));
    for (let i = 0; i < 255; i++) existing.push(net(`c${i}`, `10.254.${i}.0/24`));
    expect(planNetworkAllocation(spec('overlay'), existing, { newId: 'x' }).subnet).toBe('10.254.255.0/24');
    existing.push(net('last', '10.254.255.0/24'));
    expect(() => planNetworkAllocation(spec('overlay'), existing, { newId: 'x' })).toThrow(/has no free \/24/);
  });

  test('a stored network with a malformed subnet is ignored', () => {
    expect(planNetworkAllocation(spec('overlay'), [net('bad', 'garbage'), net('a', '10.0.0.0/24')], { newId: 'x' }).subnet).toBe('10.0.1.0/24');
  });

  test('every subnet chosen in turn is distinct and aligned', () => {
    const existing: Network[] = [BRIDGE];
    for (let i = 0; i < 300; i++) existing.push(planNetworkAllocation(spec('overlay', {}, `n${i}`), existing, { newId: `n${i}`, vnisInUse: [] }));
    const subnets = existing.slice(1).map((n) => n.subnet);
    expect(new Set(subnets).size).toBe(300);
    expect(subnets[0]).toBe('10.0.0.0/24');
    expect(subnets[299]).toBe(formatCidr({ base: (10 << 24) + 299 * 256, prefix: 24 }));
  });
});

describe('planNetworkAllocation: VNIs', () => {
  const cases: [string, Network[], number[], number][] = [
    ['the first', [], [], VNI_MIN],
    ['the lowest free', [net('a', '10.0.0.0/24', 4096), net('b', '10.0.1.0/24', 4098)], [], 4097],
    ['after those taken', [net('a', '10.0.0.0/24', 4096), net('b', '10.0.1.0/24', 4097)], [], 4098],
    ['skips reserved ones', [net('a', '10.0.0.0/24', 4096)], [4097, 4098], 4099],
    ['VNIs below 4096 do not count', [net('a', '10.0.0.0/24', 100)], [], 4096],
  ];
  test.each(cases)('%s', (_title, existing, vnisInUse, vni) => {
    expect(planNetworkAllocation(spec('overlay'), existing, { newId: 'x', vnisInUse }).vni).toBe(vni);
  });

  test('only overlays get one', () => {
    for (const driver of ['bridge', 'macvlan']) {
      expect(planNetworkAllocation(spec(driver, { subnet: '192.168.9.0/24' }), [], { newId: 'x' }).vni).toBe(0);
    }
  });
});

describe('planBuiltinNetworks', () => {
  test('makes the missing ones, marked built in', () => {
    const made = planBuiltinNetworks(BUILTIN_NETWORKS, [], (name) => `id-${name}`);
    expect(made.map((n) => [n.id, n.spec?.name, n.subnet, n.gateway, n.builtin])).toEqual([
      ['id-bridge', 'bridge', '172.17.0.0/16', '172.17.0.1', true],
      ['id-host', 'host', '', '', true],
      ['id-none', 'none', '', '', true],
      ['id-ingress', 'ingress', '10.255.0.0/16', '10.255.0.1', true],
    ]);
    expect(made.find((n) => n.spec?.name === 'ingress')).toMatchObject({ vni: 4096, spec: { driver: 'overlay' } });
  });

  test('leaves those that exist', () => {
    const made = planBuiltinNetworks(BUILTIN_NETWORKS, [BRIDGE], (name) => `id-${name}`);
    expect(made.map((n) => n.spec?.name)).toEqual(['host', 'none', 'ingress']);
  });

  test('the ingress network takes a VNI no existing overlay holds', () => {
    const user = { ...planNetworkAllocation(spec('overlay'), [], { newId: 'front' }), vni: 4096 };
    const made = planBuiltinNetworks(BUILTIN_NETWORKS, [BRIDGE, user], (name) => `id-${name}`);
    expect(made.find((n) => n.spec?.name === 'ingress')?.vni).toBe(4097);
  });
});
