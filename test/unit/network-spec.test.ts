import { ErrorKind, SwarmletError } from '../../services/common/errors';
import { Network, NetworkAttachment, NetworkSpec } from '../../services/gen/swarmlet/v1/types';
import { BUILTIN_NETWORKS, BUILTIN_NETWORK_NAMES, HostSubnet, planAttachmentOverlap, validateNetworkSpec } from '../../manager/network/network-spec';

function spec(over: Partial<NetworkSpec> = {}, ipam: Partial<NonNullable<NetworkSpec['ipam']>> = {}): NetworkSpec {
  return {
    name: 'web-net',
    driver: 'overlay',
    ipam: { subnet: '', gateway: '', ipRange: '', ...ipam },
    attachable: false,
    internal: false,
    options: {},
    labels: {},
    ...over,
  };
}

function network(id: string, name: string, subnet: string, driver = 'overlay'): Network {
  return {
    id,
    meta: undefined,
    spec: spec({ name, driver }, { subnet }),
    vni: 0,
    subnet,
    gateway: '',
    builtin: false,
  };
}

const EXISTING: Network[] = [
  network('n-bridge', 'bridge', '172.17.0.0/16', 'bridge'),
  network('n-web', 'web', '10.0.0.0/24'),
  network('n-big', 'big', '10.8.0.0/16'),
];

function refusal(fn: () => unknown, kind: ErrorKind = 'InvalidArgument'): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SwarmletError);
    expect((err as SwarmletError).kind).toBe(kind);
    return (err as SwarmletError).message;
  }
  throw new Error(`expected a ${kind} error, nothing was thrown`);
}

describe('validateNetworkSpec: refusals', () => {
  const cases: [string, NetworkSpec, RegExp, ErrorKind?][] = [
    ['no name', spec({ name: '' }), /a network name is required/],
    ['name starting with a dash', spec({ name: '-web' }), /invalid network name "-web"/],
    ['name with a slash', spec({ name: 'a/b' }), /invalid network name/],
    ['name with a space', spec({ name: 'a b' }), /invalid network name/],
    ['name of 64 characters', spec({ name: 'a'.repeat(64) }), /1 to 63/],
    ['the name of an existing network', spec({ name: 'web' }), /network web already exists \(id n-web\)/, 'Conflict'],
    ['a built-in name', spec({ name: 'host' }), /network host already exists: it is built in/, 'Conflict'],
    ['the id of an existing network', spec({ name: 'n-big' }), /n-big is the id of network big/, 'Conflict'],
    ['an unknown driver', spec({ driver: 'ipvlan' }), /unknown network driver "ipvlan": use bridge, overlay, macvlan/],
    ['driver host', spec({ driver: 'host' }), /the host network is built in/],
    ['driver none', spec({ driver: 'none' }), /the none network is built in/],
    ['a malformed subnet', spec({}, { subnet: '10.0.1/24' }), /invalid subnet "10.0.1\/24"/],
    ['an octet above 255', spec({}, { subnet: '10.0.256.0/24' }), /invalid subnet/],
    ['a prefix above 32', spec({}, { subnet: '10.0.1.0/33' }), /prefix length must be a whole number from 0 to 32/],
    ['a subnet without prefix', spec({}, { subnet: '10.0.1.0' }), /use CIDR notation/],
    ['host bits set', spec({}, { subnet: '10.0.1.5/24' }), /10\.0\.1\.5\/24 has host bits set; did you mean 10\.0\.1\.0\/24\?/],
    ['a /31', spec({}, { subnet: '10.9.0.0/31' }), /too small: use a prefix length from \/8 to \/30/],
    ['a /4', spec({}, { subnet: '0.0.0.0/4' }), /too large/],
    ['loopback', spec({}, { subnet: '127.1.0.0/16' }), /overlaps the loopback block/],
    ['multicast', spec({}, { subnet: '239.1.0.0/16' }), /overlaps the multicast block/],
    ['a subnet inside an existing one', spec({}, { subnet: '10.8.3.0/24' }), /subnet 10\.8\.3\.0\/24 overlaps network big \(10\.8\.0\.0\/16\)/, 'Conflict'],
    ['a subnet holding an existing one', spec({}, { subnet: '10.0.0.0/8' }), /overlaps network web \(10\.0\.0\.0\/24\)/, 'Conflict'],
    ['the default bridge\'s subnet', spec({}, { subnet: '172.17.5.0/24' }), /overlaps network bridge \(172\.17\.0\.0\/16\)/, 'Conflict'],
    ['a gateway without subnet', spec({}, { gateway: '10.0.1.1' }), /--gateway needs --subnet/],
    ['an ip-range without subnet', spec({}, { ipRange: '10.0.1.0/25' }), /--ip-range needs --subnet/],
    ['a malformed gateway', spec({}, { subnet: '10.9.1.0/24', gateway: '10.9.1' }), /invalid gateway "10.9.1"/],
    ['a gateway outside the subnet', spec({}, { subnet: '10.9.1.0/24', gateway: '10.9.2.1' }), /gateway 10\.9\.2\.1 is outside subnet 10\.9\.1\.0\/24/],
    ['the network address as gateway', spec({}, { subnet: '10.9.1.0/24', gateway: '10.9.1.0' }), /is the network address of 10\.9\.1\.0\/24/],
    ['the broadcast address as gateway', spec({}, { subnet: '10.9.1.0/24', gateway: '10.9.1.255' }), /is the broadcast address of 10\.9\.1\.0\/24/],
    ['an ip-range outside the subnet', spec({}, { subnet: '10.9.1.0/24', ipRange: '10.9.2.0/25' }), /ip-range 10\.9\.2\.0\/25 is outside subnet 10\.9\.1\.0\/24/],
    ['an ip-range larger than the subnet', spec({}, { subnet: '10.9.1.0/24', ipRange: '10.9.0.0/23' }), /is outside subnet/],
    ['an ip-range with host bits', spec({}, { subnet: '10.9.1.0/24', ipRange: '10.9.1.1/25' }), /invalid ip-range: 10\.9\.1\.1\/25 has host bits set; did you mean 10\.9\.1\.0\/25\?/],
    ['an ip-range with no room', spec({}, { subnet: '10.9.1.0/24', ipRange: '10.9.1.0/31' }), /leaves no address for tasks/],
    ['an unknown option', spec({ options: { 'com.docker.network.driver.mtu': '1400' } }), /unknown network option "com.docker.network.driver.mtu": use mtu=N/],
    ['mtu below 576', spec({ options: { mtu: '575' } }), /invalid option mtu=575: use a whole number from 576 to 9000/],
    ['mtu above 9000', spec({ options: { mtu: '9001' } }), /invalid option mtu=9001/],
    ['mtu not an integer', spec({ options: { mtu: '1400.5' } }), /invalid option mtu=1400\.5/],
    ['mtu with a sign', spec({ options: { mtu: '+1400' } }), /invalid option mtu=\+1400/],
    ['parent on an overlay', spec({ options: { parent: 'eth0' } }), /option parent is for macvlan networks, not overlay/],
    ['macvlan without subnet', spec({ driver: 'macvlan', options: { parent: 'eth0' } }), /a macvlan network needs --subnet/],
    ['macvlan without parent', spec({ driver: 'macvlan' }, { subnet: '192.168.7.0/24' }), /needs --opt parent=IFACE/],
    ['macvlan with a bad parent', spec({ driver: 'macvlan', options: { parent: 'eth0/x' } }, { subnet: '192.168.7.0/24' }), /invalid option parent=eth0\/x/],
    ['macvlan with a parent too long', spec({ driver: 'macvlan', options: { parent: 'a'.repeat(16) } }, { subnet: '192.168.7.0/24' }), /invalid option parent/],
    ['internal macvlan', spec({ driver: 'macvlan', internal: true, options: { parent: 'eth0' } }, { subnet: '192.168.7.0/24' }), /--internal is for bridge and overlay networks/],
    ['a label without key', spec({ labels: { ' ': 'x' } }), /a network label needs a key/],
  ];
  // A rest parameter: jest would pass `done` for a row without the optional kind.
  test.each(cases)('%s', (...row) => {
    const [, s, message, kind] = row;
    expect(refusal(() => validateNetworkSpec(s, EXISTING), kind ?? 'InvalidArgument')).toMatch(message);
  });
});

describe('validateNetworkSpec: subnets the hosts hold', () => {
  const HOSTS: HostSubnet[] = [
    { node: 'h1', iface: 'eth0', subnet: '198.51.100.0/24' },
    { node: 'h2', iface: 'ens4', subnet: '192.0.2.0/28' },
  ];
  const cases: [string, NetworkSpec, RegExp][] = [
    ['the gateway bridge\'s subnet, on a bridge network', spec({ driver: 'bridge' }, { subnet: '172.18.0.0/16' }), /^Pool overlaps with other one on this address space: subnet 172\.18\.0\.0\/16 overlaps the gateway bridge swb-gw \(172\.18\.0\.0\/16\)$/],
    ['a subnet inside the gateway bridge\'s', spec({}, { subnet: '172.18.5.0/24' }), /subnet 172\.18\.5\.0\/24 overlaps the gateway bridge swb-gw \(172\.18\.0\.0\/16\)/],
    ['a subnet holding the gateway bridge\'s, on macvlan too', spec({ driver: 'macvlan', options: { parent: 'eth0' } }, { subnet: '172.16.0.0/12' }), /overlaps the gateway bridge swb-gw/],
    ['the underlay, on an overlay', spec({}, { subnet: '198.51.100.0/24' }), /^Pool overlaps with other one on this address space: subnet 198\.51\.100\.0\/24 overlaps 198\.51\.100\.0\/24 on interface eth0 of h1$/],
    ['a subnet holding another node\'s, on a bridge network', spec({ driver: 'bridge' }, { subnet: '192.0.2.0/24' }), /subnet 192\.0\.2\.0\/24 overlaps 192\.0\.2\.0\/28 on interface ens4 of h2/],
  ];
  test.each(cases)('%s', (_what, s, message) => {
    expect(refusal(() => validateNetworkSpec(s, EXISTING, HOSTS), 'Conflict')).toMatch(message);
  });

  test('the ingress network\'s subnet is refused even before the built-ins exist', () => {
    expect(refusal(() => validateNetworkSpec(spec({}, { subnet: '10.255.7.0/24' }), []), 'Conflict')).toMatch(/subnet 10\.255\.7\.0\/24 overlaps network ingress \(10\.255\.0\.0\/16\)/);
  });

  test('a macvlan network takes its parent\'s LAN', () => {
    const out = validateNetworkSpec(spec({ driver: 'macvlan', options: { parent: 'eth0' } }, { subnet: '198.51.100.0/24', ipRange: '198.51.100.128/25' }), EXISTING, HOSTS);
    expect(out.ipam?.subnet).toBe('198.51.100.0/24');
  });

  test('a subnet next to the hosts\' is accepted', () => {
    expect(validateNetworkSpec(spec({}, { subnet: '198.51.101.0/24' }), EXISTING, HOSTS).ipam?.subnet).toBe('198.51.101.0/24');
  });
});

describe('validateNetworkSpec: accepted specs', () => {
  test('fills the driver and normalizes', () => {
    const out = validateNetworkSpec(spec({ driver: '', options: { mtu: '1400' }, labels: { team: 'a' } }, { subnet: '10.9.1.0/24', gateway: '10.9.1.254', ipRange: '10.9.1.128/25' }), EXISTING);
    expect(out).toEqual({
      name: 'web-net',
      driver: 'bridge',
      ipam: { subnet: '10.9.1.0/24', gateway: '10.9.1.254', ipRange: '10.9.1.128/25' },
      attachable: false,
      internal: false,
      options: { mtu: '1400' },
      labels: { team: 'a' },
    });
  });

  test('an overlay without subnet leaves the choice to the allocator', () => {
    expect(validateNetworkSpec(spec({ internal: true, attachable: true }), EXISTING)).toMatchObject({
      driver: 'overlay',
      ipam: { subnet: '', gateway: '', ipRange: '' },
      internal: true,
      attachable: true,
    });
  });

  test('a missing ipam is filled in', () => {
    expect(validateNetworkSpec(spec({ ipam: undefined }), EXISTING).ipam).toEqual({ subnet: '', gateway: '', ipRange: '' });
  });

  test('macvlan with subnet and parent', () => {
    const out = validateNetworkSpec(spec({ driver: 'macvlan', options: { parent: 'eth0.10' } }, { subnet: '192.168.7.0/24', gateway: '192.168.7.254' }), EXISTING);
    expect(out.options).toEqual({ parent: 'eth0.10' });
  });

  test('names: letters, digits, _ . - and up to 63 characters', () => {
    for (const name of ['a', 'Web_Net.v2-x', '0net', 'a'.repeat(63)]) expect(validateNetworkSpec(spec({ name }), EXISTING).name).toBe(name);
  });

  test('names are case-sensitive, as in docker', () => {
    expect(validateNetworkSpec(spec({ name: 'WEB' }), EXISTING).name).toBe('WEB');
  });

  test('an adjacent subnet does not overlap', () => {
    expect(validateNetworkSpec(spec({}, { subnet: '10.0.1.0/24' }), EXISTING).ipam?.subnet).toBe('10.0.1.0/24');
  });

  test('a /30 with a gateway and an ip-range of one address', () => {
    expect(validateNetworkSpec(spec({}, { subnet: '10.9.9.0/30', ipRange: '10.9.9.2/32' }), EXISTING).ipam?.ipRange).toBe('10.9.9.2/32');
  });

  test('the default bridge\'s subnet is refused even before the built-ins exist', () => {
    expect(refusal(() => validateNetworkSpec(spec({}, { subnet: '172.17.0.0/16' }), []), 'Conflict')).toMatch(/overlaps network bridge/);
  });

  test('does not change its input', () => {
    const s = spec({ options: { mtu: '01400' } });
    expect(() => validateNetworkSpec(s, EXISTING)).toThrow(/invalid option mtu=01400/);
    const t = spec({ options: { mtu: '1400' } });
    validateNetworkSpec(t, EXISTING).options.extra = 'x';
    expect(t.options).toEqual({ mtu: '1400' });
  });
});

describe('BUILTIN_NETWORKS', () => {
  test('bridge (docker0\'s subnet), host, none and ingress', () => {
    expect(BUILTIN_NETWORK_NAMES).toEqual(['bridge', 'host', 'none', 'ingress']);
    expect(BUILTIN_NETWORKS[3]).toMatchObject({ name: 'ingress', driver: 'overlay', ipam: { subnet: '10.255.0.0/16', gateway: '10.255.0.1' } });
    expect(BUILTIN_NETWORKS[0]).toMatchObject({ name: 'bridge', driver: 'bridge', ipam: { subnet: '172.17.0.0/16', gateway: '172.17.0.1', ipRange: '' } });
    expect(BUILTIN_NETWORKS[1]).toMatchObject({ name: 'host', driver: 'host', ipam: { subnet: '' } });
    expect(BUILTIN_NETWORKS[2]).toMatchObject({ name: 'none', driver: 'none', ipam: { subnet: '' } });
  });

  test('are frozen', () => {
    expect(Object.isFrozen(BUILTIN_NETWORKS)).toBe(true);
    expect(Object.isFrozen(BUILTIN_NETWORKS[0])).toBe(true);
    expect(Object.isFrozen(BUILTIN_NETWORKS[0].ipam)).toBe(true);
  });
});

describe('planAttachmentOverlap', () => {
  const att = (networkName: string, driver: string, address: string): NetworkAttachment => ({ networkId: `id-${networkName}`, networkName, driver, address, mac: '', gateway: '', vni: 0, internal: false, options: {} });
  const IFACES = [{ name: 'eth0', subnet: '198.51.100.0/24' }];

  test('an overlay on the underlay\'s subnet is refused, naming both', () => {
    expect(planAttachmentOverlap([att('front', 'overlay', '10.0.1.2/24'), att('under', 'overlay', '198.51.100.7/24')], IFACES, 'h1')).toBe(
      'network under: Pool overlaps with other one on this address space: subnet 198.51.100.0/24 overlaps 198.51.100.0/24 on interface eth0 of h1',
    );
  });

  test('a bridge network inside a host subnet is refused', () => {
    expect(planAttachmentOverlap([att('b', 'bridge', '198.51.100.130/25')], IFACES, 'h1')).toMatch(/subnet 198\.51\.100\.128\/25 overlaps 198\.51\.100\.0\/24 on interface eth0/);
  });

  test('macvlan, host and none, and other subnets pass', () => {
    expect(planAttachmentOverlap([att('lan', 'macvlan', '198.51.100.200/24')], IFACES, 'h1')).toBeUndefined();
    expect(planAttachmentOverlap([att('host', 'host', '')], IFACES, 'h1')).toBeUndefined();
    expect(planAttachmentOverlap([att('front', 'overlay', '10.0.1.2/24')], IFACES, 'h1')).toBeUndefined();
  });
});
