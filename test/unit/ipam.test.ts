import { SwarmletError } from '../../services/common/errors';
import { Network, NetworkAttachment, Task, TaskState } from '../../services/gen/swarmlet/v1/types';
import {
  broadcastAddress,
  cidrOfInterface,
  cidrSize,
  cidrsOverlap,
  containsAddress,
  containsCidr,
  formatCidr,
  formatIpv4,
  macOfIpv4,
  nthAddress,
  parseCidr,
  parseIpv4,
  parseIpv4Interface,
  prefixMask,
} from '../../services/common/cidr';
import { TaskAddressInput, planTaskAddresses } from '../../manager/network/ipam';

// ---- cidr ------------------------------------------------------------------------------------

describe('IPv4 addresses', () => {
  test.each([
    ['0.0.0.0', 0],
    ['10.0.1.5', 0x0a000105],
    ['255.255.255.255', 0xffffffff],
    ['192.168.0.1', 0xc0a80001],
  ])('%s', (text, value) => {
    expect(parseIpv4(text)).toBe(value);
    expect(formatIpv4(value)).toBe(text);
  });

  test.each(['', '10.0.1', '10.0.1.5.6', '10.0.1.256', '10.0.1.-1', '10.0.01.5', '10.0.1.5 ', ' 10.0.1.5', '10.0.1.x', '10..1.5', '1e1.0.0.1', '0x0a.0.0.1'])(
    'refuses %j',
    (text) => {
      expect(() => parseIpv4(text, 'gateway')).toThrow(SwarmletError);
      expect(() => parseIpv4(text, 'gateway')).toThrow(/^invalid gateway/);
    },
  );
});

describe('CIDR blocks', () => {
  test.each([
    ['10.0.0.0/8', 0x0a000000, 8],
    ['10.0.1.0/24', 0x0a000100, 24],
    ['0.0.0.0/0', 0, 0],
    ['10.0.1.5/32', 0x0a000105, 32],
    ['172.17.0.0/16', 0xac110000, 16],
  ])('%s', (text, base, prefix) => {
    expect(parseCidr(text)).toEqual({ base, prefix });
    expect(formatCidr({ base, prefix })).toBe(text);
  });

  test.each([
    ['10.0.1.0', /use CIDR notation/],
    ['10.0.1.0/', /prefix length must be a whole number from 0 to 32/],
    ['10.0.1.0/33', /from 0 to 32/],
    ['10.0.1.0/024', /from 0 to 32/],
    ['10.0.1.0/-1', /from 0 to 32/],
    ['10.0.1.0/24/1', /from 0 to 32/],
    ['10.0.300.0/24', /invalid subnet "10.0.300.0\/24"/],
    ['10.0.1.5/24', /^invalid subnet: 10\.0\.1\.5\/24 has host bits set; did you mean 10\.0\.1\.0\/24\?$/],
    ['10.0.1.128/23', /did you mean 10\.0\.0\.0\/23\?/],
  ])('refuses %s', (text, message) => {
    expect(() => parseCidr(text)).toThrow(message);
  });

  test('an interface address keeps its host bits', () => {
    expect(parseIpv4Interface('10.0.1.5/24')).toEqual({ address: 0x0a000105, prefix: 24 });
    expect(formatCidr(cidrOfInterface(parseIpv4Interface('10.0.1.5/24')))).toBe('10.0.1.0/24');
  });

  test('masks, sizes, broadcast and nth address', () => {
    expect(prefixMask(0)).toBe(0);
    expect(prefixMask(24)).toBe(0xffffff00);
    expect(prefixMask(32)).toBe(0xffffffff);
    const c = parseCidr('10.0.1.0/24');
    expect(cidrSize(c)).toBe(256);
    expect(cidrSize(parseCidr('0.0.0.0/0'))).toBe(2 ** 32);
    expect(formatIpv4(broadcastAddress(c))).toBe('10.0.1.255');
    expect(formatIpv4(broadcastAddress(parseCidr('0.0.0.0/0')))).toBe('255.255.255.255');
    expect(formatIpv4(nthAddress(c, 0))).toBe('10.0.1.0');
    expect(formatIpv4(nthAddress(c, 1))).toBe('10.0.1.1');
    expect(formatIpv4(nthAddress(c, 255))).toBe('10.0.1.255');
    expect(() => nthAddress(c, 256)).toThrow(/10\.0\.1\.0\/24 has no address number 256: it holds 256/);
    expect(() => nthAddress(c, -1)).toThrow(/no address number -1/);
  });

  test.each([
    ['10.0.0.0/8', '10.0.1.0/24', true, true],
    ['10.0.1.0/24', '10.0.0.0/8', true, false],
    ['10.0.1.0/24', '10.0.1.0/24', true, true],
    ['10.0.1.0/24', '10.0.2.0/24', false, false],
    ['10.0.0.0/23', '10.0.1.128/25', true, true],
    ['10.0.1.0/25', '10.0.1.128/25', false, false],
    ['0.0.0.0/0', '192.168.1.0/24', true, true],
    ['255.255.255.0/24', '255.255.255.255/32', true, true],
  ])('%s and %s: overlap %s, contains %s', (a, b, overlap, contains) => {
    expect(cidrsOverlap(parseCidr(a), parseCidr(b))).toBe(overlap);
    expect(cidrsOverlap(parseCidr(b), parseCidr(a))).toBe(overlap);
    expect(containsCidr(parseCidr(a), parseCidr(b))).toBe(contains);
  });

  test('contains an address', () => {
    const c = parseCidr('10.0.1.0/24');
    expect(containsAddress(c, parseIpv4('10.0.1.0'))).toBe(true);
    expect(containsAddress(c, parseIpv4('10.0.1.255'))).toBe(true);
    expect(containsAddress(c, parseIpv4('10.0.2.0'))).toBe(false);
    expect(containsAddress(c, parseIpv4('10.0.0.255'))).toBe(false);
  });

  test('MAC from address, as docker does', () => {
    expect(macOfIpv4(parseIpv4('10.0.1.5'))).toBe('02:42:0a:00:01:05');
    expect(macOfIpv4(parseIpv4('172.17.255.254'))).toBe('02:42:ac:11:ff:fe');
  });
});

// ---- task addresses --------------------------------------------------------------------------

function network(id: string, name: string, driver: string, subnet: string, o: { gateway?: string; ipRange?: string; vni?: number; internal?: boolean; options?: Record<string, string> } = {}): Network {
  return {
    id,
    meta: undefined,
    spec: { name, driver, ipam: { subnet, gateway: o.gateway ?? '', ipRange: o.ipRange ?? '' }, attachable: false, internal: o.internal ?? false, options: o.options ?? {}, labels: {} },
    vni: o.vni ?? 0,
    subnet,
    gateway: o.gateway ?? (subnet ? formatIpv4(parseCidr(subnet).base + 1) : ''),
    builtin: driver === 'host' || driver === 'none',
  };
}

const WEB = network('n-web', 'web-net', 'overlay', '10.0.1.0/24', { vni: 4097, options: { mtu: '1400' } });
const DB = network('n-db', 'db-net', 'overlay', '10.0.2.0/24', { vni: 4098, internal: true });
const TINY = network('n-tiny', 'tiny', 'overlay', '10.0.3.0/29', { vni: 4099 }); // .1 gateway, .2-.6 hosts, .7 broadcast
const RANGED = network('n-ranged', 'ranged', 'bridge', '192.168.5.0/24', { gateway: '192.168.5.194', ipRange: '192.168.5.192/29' });
const HOST = network('n-host', 'host', 'host', '');
const NONE = network('n-none', 'none', 'none', '');
const NETWORKS = [WEB, DB, TINY, RANGED, HOST, NONE];

function task(id: string, networks: string[], attached: { networkId: string; address: string }[] = []): Task {
  return {
    id,
    meta: undefined,
    serviceId: 's',
    serviceName: 'svc',
    slot: 1,
    nodeId: '',
    spec: { networkAliases: [], forceUpdate: 0, networks },
    specVersion: 1,
    desiredState: TaskState.TASK_STATE_RUNNING,
    status: undefined,
    createdAt: '',
    networks: attached.map((a) => ({ networkId: a.networkId, networkName: '', driver: 'overlay', address: a.address, mac: '', gateway: '', vni: 0, internal: false, options: {} })),
  };
}

function addresses(input: TaskAddressInput): Record<string, string[]> {
  const plan = planTaskAddresses(input);
  const out: Record<string, string[]> = {};
  for (const a of plan.attachments) out[a.taskId] = a.networks.map((n) => n.address);
  for (const f of plan.failed) out[f.taskId] = [`failed: ${f.message}`];
  return out;
}

/** n tasks on web-net holding .2 up, as running tasks in the store. */
function holders(n: number, networkId = WEB.id, subnetPrefix = '10.0.1'): Task[] {
  return Array.from({ length: n }, (_, i) => task(`old${i}`, [networkId], [{ networkId, address: `${subnetPrefix}.${i + 2}/24` }]));
}

describe('planTaskAddresses', () => {
  test('a full attachment', () => {
    const plan = planTaskAddresses({ networks: NETWORKS, tasks: [], pending: [task('t1', ['web-net', 'n-db'])] });
    expect(plan.failed).toEqual([]);
    expect(plan.attachments).toEqual([
      {
        taskId: 't1',
        networks: [
          { networkId: 'n-web', networkName: 'web-net', driver: 'overlay', address: '10.0.1.2/24', mac: '02:42:0a:00:01:02', gateway: '10.0.1.1', vni: 4097, internal: false, options: { mtu: '1400' } },
          { networkId: 'n-db', networkName: 'db-net', driver: 'overlay', address: '10.0.2.2/24', mac: '02:42:0a:00:02:02', gateway: '10.0.2.1', vni: 4098, internal: true, options: {} },
        ] satisfies NetworkAttachment[],
      },
    ]);
  });

  const cases: [string, TaskAddressInput, Record<string, string[]>][] = [
    ['skips network and gateway addresses', { networks: NETWORKS, tasks: [], pending: [task('a', ['web-net']), task('b', ['web-net'])] }, { a: ['10.0.1.2/24'], b: ['10.0.1.3/24'] }],
    ['skips addresses of tasks in the store', { networks: NETWORKS, tasks: holders(3), pending: [task('a', ['web-net'])] }, { a: ['10.0.1.5/24'] }],
    [
      'reuses a freed address (its task deleted), lowest first',
      { networks: NETWORKS, tasks: [holders(3)[0], holders(3)[2]], pending: [task('a', ['web-net']), task('b', ['web-net'])] },
      { a: ['10.0.1.3/24'], b: ['10.0.1.5/24'] },
    ],
    [
      'counts every attachment in the store, whatever its task\'s state',
      { networks: NETWORKS, tasks: [{ ...holders(1)[0], desiredState: TaskState.TASK_STATE_SHUTDOWN }], pending: [task('a', ['web-net'])] },
      { a: ['10.0.1.3/24'] },
    ],
    ['skips the broadcast address', { networks: NETWORKS, tasks: [], pending: ['a', 'b', 'c', 'd', 'e', 'f'].map((id) => task(id, ['tiny'])) }, {
      a: ['10.0.3.2/29'],
      b: ['10.0.3.3/29'],
      c: ['10.0.3.4/29'],
      d: ['10.0.3.5/29'],
      e: ['10.0.3.6/29'],
      f: ['failed: network tiny: no free address in 10.0.3.0/29 (6 in use)'],
    }],
    [
      'the ip-range, skipping a gateway inside it',
      { networks: NETWORKS, tasks: [], pending: ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].map((id) => task(id, ['ranged'])) },
      {
        a: ['192.168.5.192/24'],
        b: ['192.168.5.193/24'],
        c: ['192.168.5.195/24'],
        d: ['192.168.5.196/24'],
        e: ['192.168.5.197/24'],
        f: ['192.168.5.198/24'],
        g: ['192.168.5.199/24'],
        h: ['failed: network ranged: no free address in 192.168.5.192/29 (ip-range of 192.168.5.0/24) (8 in use)'],
      },
    ],
    ['host and none: no address', { networks: NETWORKS, tasks: [], pending: [task('a', ['host']), task('b', ['n-none'])] }, { a: [''], b: [''] }],
    ['unknown network', { networks: NETWORKS, tasks: [], pending: [task('a', ['web-net', 'nope'])] }, { a: ['failed: network nope not found'] }],
    ['a task without networks', { networks: NETWORKS, tasks: [], pending: [task('a', [])] }, { a: [] }],
    ['the same network twice', { networks: NETWORKS, tasks: [], pending: [task('a', ['web-net', 'n-web'])] }, { a: ['failed: network web-net is listed more than once'] }],
    ['host with another network', { networks: NETWORKS, tasks: [], pending: [task('a', ['web-net', 'host'])] }, { a: ['failed: network host cannot be combined with other networks'] }],
    ['none with another network', { networks: NETWORKS, tasks: [], pending: [task('a', ['none', 'db-net'])] }, { a: ['failed: network none cannot be combined with other networks'] }],
    [
      'a name two networks share',
      { networks: [...NETWORKS, network('n-web2', 'web-net', 'overlay', '10.0.9.0/24')], tasks: [], pending: [task('a', ['web-net']), task('b', ['n-web2'])] },
      { a: ['failed: network name web-net is ambiguous (ids n-web, n-web2): use an id'], b: ['10.0.9.2/24'] },
    ],
    [
      'a network without subnet',
      { networks: [network('n-raw', 'raw', 'overlay', '')], tasks: [], pending: [task('a', ['raw'])] },
      { a: ['failed: network raw has no subnet allocated yet'] },
    ],
    [
      'reserved addresses (VIPs) are skipped',
      { networks: NETWORKS, tasks: [], pending: [task('a', ['web-net'])], reserved: [{ networkId: 'n-web', address: '10.0.1.2' }, { networkId: 'n-web', address: '10.0.1.3/24' }] },
      { a: ['10.0.1.4/24'] },
    ],
    [
      'malformed addresses in the store are ignored',
      { networks: NETWORKS, tasks: [task('x', ['web-net'], [{ networkId: 'n-web', address: 'bogus' }])], pending: [task('a', ['web-net'])] },
      { a: ['10.0.1.2/24'] },
    ],
  ];
  test.each(cases)('%s', (_title, input, expected) => {
    expect(addresses(input)).toEqual(expected);
  });

  test('exhaustion of a /24: a message, never a throw', () => {
    const plan = planTaskAddresses({ networks: NETWORKS, tasks: holders(253), pending: [task('a', ['web-net'])] });
    expect(plan.attachments).toEqual([]);
    expect(plan.failed).toEqual([{ taskId: 'a', message: 'network web-net: no free address in 10.0.1.0/24 (254 in use)' }]);
  });

  test('a task that fails on its second network gives back the address of its first', () => {
    const fullTiny = Array.from({ length: 5 }, (_, i) => task(`old${i}`, ['tiny'], [{ networkId: 'n-tiny', address: `10.0.3.${i + 2}/29` }]));
    expect(addresses({ networks: NETWORKS, tasks: fullTiny, pending: [task('a', ['web-net', 'tiny']), task('b', ['web-net'])] })).toEqual({
      a: ['failed: network tiny: no free address in 10.0.3.0/29 (6 in use)'],
      b: ['10.0.1.2/24'],
    });
  });

  test('a pending task keeps the addresses it already holds (a plan run again)', () => {
    const a = task('a', ['web-net', 'db-net'], [{ networkId: 'n-web', address: '10.0.1.7/24' }]);
    expect(addresses({ networks: NETWORKS, tasks: [a], pending: [task('b', ['web-net']), a] })).toEqual({ b: ['10.0.1.2/24'], a: ['10.0.1.7/24', '10.0.2.2/24'] });
  });

  test('an address two pending tasks hold goes to the first; one held by a task in the store is not kept', () => {
    const a = task('a', ['web-net'], [{ networkId: 'n-web', address: '10.0.1.2/24' }]);
    const b = task('b', ['web-net'], [{ networkId: 'n-web', address: '10.0.1.2/24' }]);
    const c = task('c', ['web-net'], [{ networkId: 'n-web', address: '10.0.1.9/24' }]);
    const held = task('held', ['web-net'], [{ networkId: 'n-web', address: '10.0.1.9/24' }]);
    expect(addresses({ networks: NETWORKS, tasks: [a, b, c, held], pending: [a, b, c] })).toEqual({ a: ['10.0.1.2/24'], b: ['10.0.1.3/24'], c: ['10.0.1.4/24'] });
  });

  test('deterministic: same input, same plan; order of the store does not matter', () => {
    const store = holders(20).filter((_, i) => i % 3 !== 0);
    const pending = Array.from({ length: 10 }, (_, i) => task(`p${i}`, i % 2 ? ['web-net', 'db-net'] : ['web-net']));
    const first = planTaskAddresses({ networks: NETWORKS, tasks: store, pending });
    expect(planTaskAddresses({ networks: NETWORKS, tasks: store, pending })).toEqual(first);
    expect(planTaskAddresses({ networks: [...NETWORKS].reverse(), tasks: [...store].reverse(), pending })).toEqual(first);
    const all = first.attachments.flatMap((a) => a.networks.map((n) => `${n.networkId} ${n.address}`));
    expect(new Set(all).size).toBe(all.length);
  });

  test('MACs follow the addresses', () => {
    const plan = planTaskAddresses({ networks: NETWORKS, tasks: holders(250), pending: [task('a', ['web-net'])] });
    expect(plan.attachments[0].networks[0]).toMatchObject({ address: '10.0.1.252/24', mac: '02:42:0a:00:01:fc' });
  });

  test('host and none attachments carry the driver and nothing else', () => {
    const plan = planTaskAddresses({ networks: NETWORKS, tasks: [], pending: [task('a', ['host'])] });
    expect(plan.attachments[0].networks).toEqual([
      { networkId: 'n-host', networkName: 'host', driver: 'host', address: '', mac: '', gateway: '', vni: 0, internal: false, options: {} },
    ]);
  });

  test('a large network: allocation cost follows the tasks, not the size of the subnet', () => {
    const big = network('n-big', 'big', 'overlay', '10.64.0.0/10', { vni: 5000 });
    const pending = Array.from({ length: 2000 }, (_, i) => task(`t${i}`, ['big']));
    const plan = planTaskAddresses({ networks: [big], tasks: [], pending });
    expect(plan.failed).toEqual([]);
    expect(plan.attachments[1999].networks[0].address).toBe('10.64.7.209/10');
  });
});
