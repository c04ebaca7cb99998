import {
  KernelFdbEntry,
  KernelLink,
  KernelNeighbour,
  KernelState,
  OverlayOp,
  OverlayPlanInput,
  SANDBOX_SYSCTLS,
  SandboxReading,
  WantedOverlay,
  diffReport,
  planBridgeFdb,
  planOverlay,
  planOverlayMtu,
  planOverlayProblem,
  planSandboxes,
  planSysctlWrites,
  sandboxReport,
} from '../../agent/network/plans/overlay-plan';

const LOCAL = '198.51.100.1';
const HOST2 = '198.51.100.2';
const HOST3 = '198.51.100.3';

function want(vni: number, peers: WantedOverlay['peers'], mtu = 1450): WantedOverlay {
  const third = vni - 4096;
  return { networkId: `n${vni}`, vni, subnet: `10.0.${third}.0/24`, gateway: `10.0.${third}.1`, mtu, localVtep: LOCAL, peers };
}

const peer = (ip: string, vtep: string) => {
  const mac = `02:42:${ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0')).join(':')}`;
  return { ip, mac, vtep };
};

/** web (VNI 4097): a local task, two on host 2, one on host 3. */
const WEB = want(4097, [peer('10.0.1.2', LOCAL), peer('10.0.1.3', HOST2), peer('10.0.1.4', HOST2), peer('10.0.1.5', HOST3)]);
/** db (VNI 4098): one remote task. */
const DB = want(4098, [peer('10.0.2.2', HOST3), peer('10.0.2.3', LOCAL)]);

const EMPTY: KernelState = { links: [{ name: 'lo', kind: '', mtu: 65536, up: true }], fdb: [], neigh: [] };

/** The kernel state a converged host has for these networks, with the kernel's own entries. */
function converged(networks: WantedOverlay[]): KernelState {
  const links: KernelLink[] = [{ name: 'lo', kind: '', mtu: 65536, up: true }];
  const fdb: KernelFdbEntry[] = [];
  const neigh: KernelNeighbour[] = [];
  for (const w of networks) {
    const br = `br-${w.vni}`;
    const vx = `vx-${w.vni}`;
    links.push({ name: br, kind: 'bridge', mtu: w.mtu, up: true });
    links.push({ name: vx, kind: 'vxlan', vni: w.vni, local: w.localVtep, mtu: w.mtu, up: true, master: br, port: 4789, learning: false });
    links.push({ name: `veth${w.vni}a`, kind: 'veth', mtu: w.mtu, up: true, master: br }); // a local task's port
    // The kernel's own entries: the ports' local addresses on the bridge, and the VXLAN device's in the bridge.
    fdb.push({ dev: vx, mac: '9a:00:00:00:00:01', self: false });
    fdb.push({ dev: `veth${w.vni}a`, mac: '9a:00:00:00:00:02', self: false });
    fdb.push({ dev: br, mac: '9a:00:00:00:00:03', self: true });
    // Neighbours the kernel learned (not permanent), on the bridge and on the VXLAN device.
    neigh.push({ dev: br, ip: w.gateway.replace(/\.1$/, '.250'), mac: '9a:00:00:00:00:04', permanent: false });
    neigh.push({ dev: vx, ip: w.gateway.replace(/\.1$/, '.251'), mac: '9a:00:00:00:00:05', permanent: false });
    for (const p of w.peers) {
      if (p.vtep === w.localVtep) continue;
      fdb.push({ dev: vx, mac: p.mac, dst: p.vtep, self: true });
      neigh.push({ dev: vx, ip: p.ip, mac: p.mac, permanent: true });
    }
  }
  return { links, fdb, neigh };
}

const ops = (input: OverlayPlanInput): string[] => planOverlay(input).map(show);

function show(o: OverlayOp): string {
  switch (o.op) {
    case 'createBridge':
      return `createBridge ${o.name} mtu=${o.mtu} address=${o.address}`;
    case 'createVxlan':
      return `createVxlan ${o.name} vni=${o.vni} local=${o.local} port=${o.port} mtu=${o.mtu}`;
    case 'deleteLink':
    case 'setUp':
      return `${o.op} ${o.name}`;
    case 'setMtu':
      return `setMtu ${o.name} ${o.mtu}`;
    case 'setMaster':
      return `setMaster ${o.name} ${o.master}`;
    case 'addFdb':
    case 'delFdb':
      return `${o.op} ${o.dev} ${o.mac} ${o.dst}`;
    case 'addNeigh':
    case 'delNeigh':
      return `${o.op} ${o.dev} ${o.ip} ${o.mac}`;
  }
}

describe('planSysctlWrites', () => {
  test('sandboxes turn br_netfilter off', () => {
    expect(planSysctlWrites(SANDBOX_SYSCTLS)).toEqual([
      { path: '/proc/sys/net/bridge/bridge-nf-call-iptables', value: '0\n' },
      { path: '/proc/sys/net/bridge/bridge-nf-call-ip6tables', value: '0\n' },
      { path: '/proc/sys/net/bridge/bridge-nf-call-arptables', value: '0\n' },
    ]);
  });

  test.each([['net/../../etc/passwd', '0'], ['net/bridge/x; reboot', '0'], ['/net/bridge/x', '0'], ['net/bridge/x', '1; reboot'], ['net/bridge/x', '']])('refuses name %j, value %j', (name, value) => {
    expect(() => planSysctlWrites({ [name]: value })).toThrow(/invalid/);
  });
});

describe('planOverlayMtu', () => {
  test.each([
    [1500, undefined, 1450],
    [1400, undefined, 1350], // this machine's eth0
    [9000, undefined, 8950],
    [1400, 1300, 1300],
    [1500, 0, 1450],
  ])('underlay %s, option %s -> %s', (underlay, opt, mtu) => {
    expect(planOverlayMtu(underlay, opt)).toBe(mtu);
  });
});

describe('planOverlay', () => {
  test('an empty kernel: everything made, in order', () => {
    expect(ops({ wanted: [WEB], kernel: EMPTY })).toEqual([
      'createBridge br-4097 mtu=1450 address=10.0.1.1/24',
      'createVxlan vx-4097 vni=4097 local=198.51.100.1 port=4789 mtu=1450',
      'setMaster vx-4097 br-4097',
      'setUp vx-4097',
      'setUp br-4097',
      'addFdb vx-4097 02:42:0a:00:01:03 198.51.100.2',
      'addFdb vx-4097 02:42:0a:00:01:04 198.51.100.2',
      'addFdb vx-4097 02:42:0a:00:01:05 198.51.100.3',
      'addNeigh vx-4097 10.0.1.3 02:42:0a:00:01:03',
      'addNeigh vx-4097 10.0.1.4 02:42:0a:00:01:04',
      'addNeigh vx-4097 10.0.1.5 02:42:0a:00:01:05',
    ]);
  });

  test('the whole op objects', () => {
    const plan = planOverlay({ wanted: [DB], kernel: EMPTY });
    expect(plan).toEqual([
      { op: 'createBridge', vni: 4098, name: 'br-4098', mtu: 1450, address: '10.0.2.1/24' },
      { op: 'createVxlan', vni: 4098, name: 'vx-4098', local: LOCAL, port: 4789, learning: false, mtu: 1450 },
      { op: 'setMaster', vni: 4098, name: 'vx-4098', master: 'br-4098' },
      { op: 'setUp', vni: 4098, name: 'vx-4098' },
      { op: 'setUp', vni: 4098, name: 'br-4098' },
      { op: 'addFdb', vni: 4098, dev: 'vx-4098', mac: '02:42:0a:00:02:02', dst: HOST3 },
      { op: 'addNeigh', vni: 4098, dev: 'vx-4098', ip: '10.0.2.2', mac: '02:42:0a:00:02:02' },
    ]);
  });

  test('converged: no operations, and the report is empty', () => {
    const input = { wanted: [WEB, DB], kernel: converged([WEB, DB]) };
    expect(planOverlay(input)).toEqual([]);
    expect(diffReport(input)).toEqual([]);
  });

  test('nothing wanted, nothing there: nothing to do', () => {
    expect(planOverlay({ wanted: [], kernel: EMPTY })).toEqual([]);
  });

  test('local peers need no entries', () => {
    const allLocal = want(4099, [peer('10.0.3.2', LOCAL), peer('10.0.3.3', LOCAL)]);
    const plan = ops({ wanted: [allLocal], kernel: EMPTY });
    expect(plan.filter((o) => /Fdb|Neigh/.test(o))).toEqual([]);
    expect(plan).toContain('createVxlan vx-4099 vni=4099 local=198.51.100.1 port=4789 mtu=1450');
  });

  test('a peer that moved here from another host: its entries go', () => {
    const kernel = converged([WEB]);
    const moved = { ...WEB, peers: WEB.peers.map((p) => (p.ip === '10.0.1.5' ? { ...p, vtep: LOCAL } : p)) };
    expect(ops({ wanted: [moved], kernel })).toEqual(['delFdb vx-4097 02:42:0a:00:01:05 198.51.100.3', 'delNeigh vx-4097 10.0.1.5 02:42:0a:00:01:05']);
  });

  test('a stale peer is removed, a new one added', () => {
    const kernel = converged([WEB]);
    const next = { ...WEB, peers: [...WEB.peers.filter((p) => p.ip !== '10.0.1.4'), peer('10.0.1.9', HOST3)] };
    expect(ops({ wanted: [next], kernel })).toEqual([
      'delFdb vx-4097 02:42:0a:00:01:04 198.51.100.2',
      'delNeigh vx-4097 10.0.1.4 02:42:0a:00:01:04',
      'addFdb vx-4097 02:42:0a:00:01:09 198.51.100.3',
      'addNeigh vx-4097 10.0.1.9 02:42:0a:00:01:09',
    ]);
  });

  test('a peer whose task moved to another host: FDB entry replaced, neighbour kept', () => {
    const kernel = converged([WEB]);
    const next = { ...WEB, peers: WEB.peers.map((p) => (p.ip === '10.0.1.3' ? { ...p, vtep: HOST3 } : p)) };
    expect(ops({ wanted: [next], kernel })).toEqual(['delFdb vx-4097 02:42:0a:00:01:03 198.51.100.2', 'addFdb vx-4097 02:42:0a:00:01:03 198.51.100.3']);
  });

  test('a flood entry (all-zero MAC) and a wrong neighbour MAC are fixed; learned neighbours stay', () => {
    const kernel = converged([WEB]);
    kernel.fdb.push({ dev: 'vx-4097', mac: '00:00:00:00:00:00', dst: HOST2, self: true });
    kernel.neigh = kernel.neigh.map((n) => (n.ip === '10.0.1.3' ? { ...n, mac: '02:42:de:ad:be:ef' } : n));
    kernel.neigh.push({ dev: 'vx-4097', ip: '10.0.1.4', mac: '02:42:0a:00:01:04', permanent: true }); // duplicate listing is harmless
    expect(ops({ wanted: [WEB], kernel })).toEqual([
      'delFdb vx-4097 00:00:00:00:00:00 198.51.100.2',
      'addNeigh vx-4097 10.0.1.3 02:42:0a:00:01:03',
    ]);
  });

  test('a learned neighbour for a peer\'s IP is made permanent', () => {
    const kernel = converged([WEB]);
    kernel.neigh = kernel.neigh.map((n) => (n.ip === '10.0.1.5' ? { ...n, permanent: false } : n));
    expect(ops({ wanted: [WEB], kernel })).toEqual(['addNeigh vx-4097 10.0.1.5 02:42:0a:00:01:05']);
  });

  test('the kernel\'s own entries are never touched', () => {
    const kernel = converged([WEB]);
    const noPeers = { ...WEB, peers: [] };
    // Entries without dst, entries on other devices, and learned neighbours survive; only the peers' go.
    kernel.fdb.push({ dev: 'veth4097a', mac: '02:42:0a:00:01:02', dst: undefined, self: false });
    kernel.fdb.push({ dev: 'eth0', mac: '02:42:aa:bb:cc:dd', dst: HOST2, self: true });
    kernel.neigh.push({ dev: 'eth0', ip: HOST2, mac: '52:54:00:00:00:02', permanent: true });
    // Permanent entries on the bridge are not the plan's either: ARP proxy answers from the VXLAN device's.
    kernel.neigh.push({ dev: 'br-4097', ip: '10.0.1.3', mac: '02:42:0a:00:01:03', permanent: true });
    expect(ops({ wanted: [noPeers], kernel })).toEqual([
      'delFdb vx-4097 02:42:0a:00:01:03 198.51.100.2',
      'delFdb vx-4097 02:42:0a:00:01:04 198.51.100.2',
      'delFdb vx-4097 02:42:0a:00:01:05 198.51.100.3',
      'delNeigh vx-4097 10.0.1.3 02:42:0a:00:01:03',
      'delNeigh vx-4097 10.0.1.4 02:42:0a:00:01:04',
      'delNeigh vx-4097 10.0.1.5 02:42:0a:00:01:05',
    ]);
  });

  test('a VXLAN device with the wrong VNI is made again, with its FDB and neighbour entries', () => {
    const kernel = converged([WEB]);
    kernel.links = kernel.links.map((l) => (l.name === 'vx-4097' ? { ...l, vni: 4200 } : l));
    expect(ops({ wanted: [WEB], kernel })).toEqual([
      'deleteLink vx-4097',
      'createVxlan vx-4097 vni=4097 local=198.51.100.1 port=4789 mtu=1450',
      'setMaster vx-4097 br-4097',
      'setUp vx-4097',
      'addFdb vx-4097 02:42:0a:00:01:03 198.51.100.2',
      'addFdb vx-4097 02:42:0a:00:01:04 198.51.100.2',
      'addFdb vx-4097 02:42:0a:00:01:05 198.51.100.3',
      'addNeigh vx-4097 10.0.1.3 02:42:0a:00:01:03',
      'addNeigh vx-4097 10.0.1.4 02:42:0a:00:01:04',
      'addNeigh vx-4097 10.0.1.5 02:42:0a:00:01:05',
    ]);
  });

  test.each<[string, Partial<KernelLink>]>([
    ['the wrong local address', { local: '198.51.100.9' }],
    ['no local address', { local: undefined }],
    ['the wrong port', { port: 8472 }],
    ['learning on', { learning: true }],
    ['the wrong kind', { kind: 'veth', vni: undefined }],
  ])('a VXLAN device with %s is made again', (_title, change) => {
    const kernel = converged([DB]);
    kernel.links = kernel.links.map((l) => (l.name === 'vx-4098' ? { ...l, ...change } : l));
    expect(ops({ wanted: [DB], kernel }).slice(0, 2)).toEqual(['deleteLink vx-4098', 'createVxlan vx-4098 vni=4098 local=198.51.100.1 port=4789 mtu=1450']);
  });

  test('a bridge of the wrong kind is made again; the VXLAN device joins the new one and keeps its entries', () => {
    const kernel = converged([DB]);
    kernel.links = kernel.links.map((l) => (l.name === 'br-4098' ? { ...l, kind: 'dummy' } : l));
    expect(ops({ wanted: [DB], kernel })).toEqual([
      'deleteLink br-4098',
      'createBridge br-4098 mtu=1450 address=10.0.2.1/24',
      'setMaster vx-4098 br-4098',
      'setUp br-4098',
    ]);
  });

  test('MTU, master and up state fixed in place', () => {
    const kernel = converged([WEB]);
    kernel.links = kernel.links.map((l) => {
      if (l.name === 'vx-4097') return { ...l, mtu: 1500, master: undefined, up: false };
      if (l.name === 'br-4097') return { ...l, mtu: 1500, up: false };
      return l;
    });
    expect(ops({ wanted: [WEB], kernel })).toEqual(['setMtu vx-4097 1450', 'setMtu br-4097 1450', 'setMaster vx-4097 br-4097', 'setUp vx-4097', 'setUp br-4097']);
  });

  test('links of networks no longer wanted are deleted, VXLAN first, before anything is made', () => {
    const kernel = converged([WEB, DB]);
    expect(ops({ wanted: [want(4099, [])], kernel })).toEqual([
      'deleteLink vx-4097',
      'deleteLink br-4097',
      'deleteLink vx-4098',
      'deleteLink br-4098',
      'createBridge br-4099 mtu=1450 address=10.0.3.1/24',
      'createVxlan vx-4099 vni=4099 local=198.51.100.1 port=4789 mtu=1450',
      'setMaster vx-4099 br-4099',
      'setUp vx-4099',
      'setUp br-4099',
    ]);
  });

  test('links that only look like ours are left alone', () => {
    const kernel: KernelState = {
      links: [
        { name: 'br-4097', kind: 'veth', mtu: 1500, up: true }, // not a bridge
        { name: 'vx-100', kind: 'vxlan', vni: 100, mtu: 1500, up: true }, // below the overlay VNIs
        { name: 'br-04097', kind: 'bridge', mtu: 1500, up: true },
        { name: 'br-0a1b2c3d4e5f', kind: 'bridge', mtu: 1500, up: true }, // docker's
        { name: 'eth0', kind: 'veth', mtu: 1400, up: true },
      ],
      fdb: [],
      neigh: [],
    };
    expect(planOverlay({ wanted: [], kernel })).toEqual([]);
  });

  test('a wanted MTU from the underlay', () => {
    const w = want(4097, [], planOverlayMtu(1400));
    expect(ops({ wanted: [w], kernel: EMPTY }).slice(0, 2)).toEqual([
      'createBridge br-4097 mtu=1350 address=10.0.1.1/24',
      'createVxlan vx-4097 vni=4097 local=198.51.100.1 port=4789 mtu=1350',
    ]);
  });

  test('MACs compare without case; the plan writes them in lower case', () => {
    const kernel = converged([DB]);
    kernel.fdb = kernel.fdb.map((e) => ({ ...e, mac: e.mac.toUpperCase() }));
    kernel.neigh = kernel.neigh.map((n) => ({ ...n, mac: n.mac.toUpperCase() }));
    expect(planOverlay({ wanted: [DB], kernel })).toEqual([]);
    const upper = { ...DB, peers: DB.peers.map((p) => ({ ...p, mac: p.mac.toUpperCase() })) };
    expect(ops({ wanted: [upper], kernel: EMPTY })).toContain('addFdb vx-4098 02:42:0a:00:02:02 198.51.100.3');
  });

  test('deterministic: the order of wanted networks, peers and kernel entries does not matter', () => {
    const kernel = converged([WEB]);
    kernel.fdb.push({ dev: 'vx-4097', mac: '02:42:0a:00:01:20', dst: HOST2, self: true });
    const input = { wanted: [DB, WEB], kernel };
    const reversed = {
      wanted: [{ ...WEB, peers: [...WEB.peers].reverse() }, DB],
      kernel: { links: [...kernel.links].reverse(), fdb: [...kernel.fdb].reverse(), neigh: [...kernel.neigh].reverse() },
    };
    expect(planOverlay(reversed)).toEqual(planOverlay(input));
  });

  test('peers in numeric address order; a stale entry listed twice is deleted once', () => {
    const w = want(4099, [peer('10.0.3.10', HOST2), peer('10.0.3.9', HOST2), peer('10.0.3.100', HOST3)]);
    const kernel = converged([{ ...w, peers: [] }]);
    kernel.fdb.push({ dev: 'vx-4099', mac: '02:42:0a:00:03:63', dst: HOST2, self: true }, { dev: 'vx-4099', mac: '02:42:0A:00:03:63', dst: HOST2, self: true });
    expect(ops({ wanted: [w], kernel })).toEqual([
      'delFdb vx-4099 02:42:0a:00:03:63 198.51.100.2',
      'addFdb vx-4099 02:42:0a:00:03:09 198.51.100.2',
      'addFdb vx-4099 02:42:0a:00:03:0a 198.51.100.2',
      'addFdb vx-4099 02:42:0a:00:03:64 198.51.100.3',
      'addNeigh vx-4099 10.0.3.9 02:42:0a:00:03:09',
      'addNeigh vx-4099 10.0.3.10 02:42:0a:00:03:0a',
      'addNeigh vx-4099 10.0.3.100 02:42:0a:00:03:64',
    ]);
  });

  test('applying the plan converges: a second plan is empty', () => {
    const kernel = converged([WEB]);
    kernel.links = kernel.links.map((l) => (l.name === 'vx-4097' ? { ...l, vni: 1, mtu: 1500 } : l));
    kernel.fdb.push({ dev: 'vx-4097', mac: '02:42:0a:00:01:30', dst: HOST2, self: true });
    const wanted = [{ ...WEB, peers: [...WEB.peers, peer('10.0.1.40', HOST3)] }, DB];
    const after = apply(kernel, planOverlay({ wanted, kernel }));
    expect(planOverlay({ wanted, kernel: after })).toEqual([]);
  });
});

describe('diffReport', () => {
  test('an empty kernel', () => {
    expect(diffReport({ wanted: [DB], kernel: EMPTY })).toEqual([
      'missing link br-4098',
      'missing link vx-4098',
      'missing FDB entry for 10.0.2.2 (02:42:0a:00:02:02 -> 198.51.100.3) on vx-4098',
      'missing neighbour entry for 10.0.2.2 (-> 02:42:0a:00:02:02) on vx-4098',
    ]);
  });

  test('every kind of difference', () => {
    const kernel = converged([WEB, DB]);
    kernel.links = kernel.links.map((l) => {
      if (l.name === 'vx-4097') return { ...l, mtu: 1500, up: false, master: 'br-4098' };
      if (l.name === 'vx-4098') return { ...l, local: '198.51.100.7' };
      return l;
    });
    kernel.links.push({ name: 'vx-4200', kind: 'vxlan', vni: 4200, local: LOCAL, mtu: 1450, up: true });
    kernel.fdb = kernel.fdb.filter((e) => e.mac !== '02:42:0a:00:01:05');
    kernel.fdb.push({ dev: 'vx-4097', mac: '02:42:0a:00:01:99', dst: HOST2, self: true });
    kernel.neigh.push({ dev: 'vx-4097', ip: '10.0.1.99', mac: '02:42:0a:00:01:99', permanent: true });
    kernel.neigh = kernel.neigh.map((n) => (n.ip === '10.0.1.3' ? { ...n, mac: '02:42:00:00:00:01' } : n.ip === '10.0.1.4' ? { ...n, permanent: false } : n));
    const input = { wanted: [WEB, DB], kernel };
    expect(diffReport(input)).toEqual([
      'stale link vx-4200 (VNI 4200 is not wanted on this host)',
      'wrong MTU 1500 on vx-4097 (want 1450)',
      'link vx-4097 is down',
      'link vx-4097 is a port of br-4098 (want br-4097)',
      'stale FDB entry 02:42:0a:00:01:99 -> 198.51.100.2 on vx-4097',
      'missing FDB entry for 10.0.1.5 (02:42:0a:00:01:05 -> 198.51.100.3) on vx-4097',
      'stale neighbour 10.0.1.99 -> 02:42:0a:00:01:99 on vx-4097',
      'wrong neighbour entry 10.0.1.3 -> 02:42:00:00:00:01 on vx-4097 (want 02:42:0a:00:01:03)',
      'neighbour entry 10.0.1.4 -> 02:42:0a:00:01:04 on vx-4097 is not permanent',
      'wrong local address 198.51.100.7 on vx-4098 (want 198.51.100.1)',
      // The device is made again with its entries, so its FDB and neighbour entries are reported missing too.
      'missing FDB entry for 10.0.2.2 (02:42:0a:00:02:02 -> 198.51.100.3) on vx-4098',
      'missing neighbour entry for 10.0.2.2 (-> 02:42:0a:00:02:02) on vx-4098',
    ]);
  });

  test('a VXLAN device with the wrong VNI', () => {
    const kernel: KernelState = { links: [{ name: 'br-4098', kind: 'bridge', mtu: 1450, up: true }, { name: 'vx-4098', kind: 'vxlan', vni: 77, local: LOCAL, mtu: 1450, up: true, master: 'br-4098' }], fdb: [], neigh: [] };
    expect(diffReport({ wanted: [{ ...DB, peers: [] }], kernel })).toEqual(['wrong VNI 77 on vx-4098 (want 4098)']);
  });
});

/** A model of the kernel, enough to check that a plan converges. */
function apply(kernel: KernelState, plan: OverlayOp[]): KernelState {
  let links = kernel.links.map((l) => ({ ...l }));
  let fdb = [...kernel.fdb];
  let neigh = [...kernel.neigh];
  const link = (name: string) => {
    const l = links.find((x) => x.name === name);
    if (!l) throw new Error(`no link ${name}`);
    return l;
  };
  for (const o of plan) {
    switch (o.op) {
      case 'deleteLink':
        links = links.filter((l) => l.name !== o.name).map((l) => (l.master === o.name ? { ...l, master: undefined } : l));
        fdb = fdb.filter((e) => e.dev !== o.name);
        neigh = neigh.filter((n) => n.dev !== o.name);
        break;
      case 'createBridge':
        if (links.some((l) => l.name === o.name)) throw new Error(`EEXIST ${o.name}`);
        links.push({ name: o.name, kind: 'bridge', mtu: o.mtu, up: false });
        break;
      case 'createVxlan':
        if (links.some((l) => l.name === o.name || (l.kind === 'vxlan' && l.vni === o.vni))) throw new Error(`EEXIST ${o.name}`);
        links.push({ name: o.name, kind: 'vxlan', vni: o.vni, local: o.local, port: o.port, learning: o.learning, mtu: o.mtu, up: false });
        break;
      case 'setMtu':
        link(o.name).mtu = o.mtu;
        break;
      case 'setMaster':
        link(o.master);
        link(o.name).master = o.master;
        break;
      case 'setUp':
        link(o.name).up = true;
        break;
      case 'addFdb':
        link(o.dev);
        fdb.push({ dev: o.dev, mac: o.mac, dst: o.dst, self: true });
        break;
      case 'delFdb':
        fdb = fdb.filter((e) => !(e.dev === o.dev && e.mac === o.mac && e.dst === o.dst));
        break;
      case 'addNeigh':
        link(o.dev);
        neigh = [...neigh.filter((n) => !(n.dev === o.dev && n.ip === o.ip)), { dev: o.dev, ip: o.ip, mac: o.mac, permanent: true }];
        break;
      case 'delNeigh':
        neigh = neigh.filter((n) => !(n.dev === o.dev && n.ip === o.ip));
        break;
    }
  }
  return { links, fdb, neigh };
}

// ---- the driver's whole pass: ARP proxy, the bridges' FDB entries, the dispatcher's networks ----

/** A sandbox as the driver reads it, converged for `w` (the bridge's FDB entries for remote peers included). */
function reading(w: WantedOverlay, opts: { proxy?: boolean; bridgeFdb?: string[] } = {}): SandboxReading {
  const remote = w.peers.filter((p) => p.vtep !== w.localVtep);
  return {
    vni: w.vni,
    links: [
      { name: 'lo', index: 1, kind: '', mtu: 65536, up: true },
      { name: `br-${w.vni}`, index: 2, kind: 'bridge', mtu: w.mtu, up: true },
      { name: `vx-${w.vni}`, index: 3, kind: 'vxlan', mtu: w.mtu, up: true, masterIndex: 2, vxlan: { vni: w.vni, local: w.localVtep, port: 4789, learning: false, proxy: opts.proxy ?? true } },
    ],
    fdb: [
      ...remote.map((p) => ({ mac: p.mac, dst: p.vtep, self: true, master: false, permanent: true, noarp: false })),
      ...(opts.bridgeFdb ?? remote.map((p) => p.mac)).map((mac) => ({ mac, self: false, master: true, permanent: false, noarp: true })),
      // The kernel's own entry of the port in the bridge: never touched.
      { mac: '9a:00:00:00:00:01', self: false, master: true, permanent: true, noarp: false },
    ],
    neigh: remote.map((p) => ({ ip: p.ip, mac: p.mac, permanent: true })),
  };
}

test('a converged sandbox plans nothing and reports nothing', () => {
  expect(planSandboxes([WEB, DB], [reading(WEB), reading(DB)])).toEqual({ ops: [], noProxy: [] });
  expect(sandboxReport([WEB, DB], [reading(WEB), reading(DB)])).toEqual([]);
});

test('a VXLAN device with ARP proxy off is deleted and made again, with all its entries', () => {
  const { ops, noProxy } = planSandboxes([DB], [reading(DB, { proxy: false })]);
  expect(noProxy).toEqual([4098]);
  expect(ops[0]).toEqual({ op: 'deleteLink', vni: 4098, name: 'vx-4098' });
  expect(ops.map((o) => o.op)).toEqual(expect.arrayContaining(['createVxlan', 'addFdb', 'addNeigh', 'addBridgeFdb']));
  expect(sandboxReport([DB], [reading(DB, { proxy: false })])).toEqual(['link vx-4098 has ARP proxy off (want on)']);
});

test('the bridge mirrors the remote peers in its FDB: missing ones added, stale ones removed, local peers never', () => {
  const stale = '02:42:0a:00:01:63';
  const r = reading(WEB, { bridgeFdb: ['02:42:0a:00:01:03', stale] });
  expect(planSandboxes([WEB], [r]).ops).toEqual([
    { op: 'delBridgeFdb', vni: 4097, dev: 'vx-4097', mac: stale },
    { op: 'addBridgeFdb', vni: 4097, dev: 'vx-4097', mac: '02:42:0a:00:01:04' },
    { op: 'addBridgeFdb', vni: 4097, dev: 'vx-4097', mac: '02:42:0a:00:01:05' },
  ]);
  expect(sandboxReport([WEB], [r])).toEqual([`stale bridge FDB entry ${stale} on vx-4097`, 'missing bridge FDB entry 02:42:0a:00:01:04 on vx-4097', 'missing bridge FDB entry 02:42:0a:00:01:05 on vx-4097']);
  // A bridge made again starts without them: all are added after it.
  const remade = planBridgeFdb(WEB, r, [{ op: 'createBridge', vni: 4097, name: 'br-4097', mtu: 1450, address: '10.0.1.1/24' }]);
  expect(remade.map((o) => o.op)).toEqual(['addBridgeFdb', 'addBridgeFdb', 'addBridgeFdb']);
});

test.each([
  [{ vni: 4096, subnet: '10.0.1.0/24', gateway: '10.0.1.1', mtu: 0 }, undefined],
  [{ vni: 4095, subnet: '10.0.1.0/24', gateway: '10.0.1.1', mtu: 0 }, 'VNI must be from 4096 to 16777215'],
  [{ vni: 0x1000000, subnet: '10.0.1.0/24', gateway: '', mtu: 0 }, 'VNI must be from 4096 to 16777215'],
  [{ vni: 4096, subnet: '10.0.1.0', gateway: '', mtu: 0 }, 'invalid subnet "10.0.1.0"'],
  [{ vni: 4096, subnet: '10.0.1.0/24', gateway: '10.0.1', mtu: 0 }, 'invalid gateway "10.0.1"'],
  [{ vni: 4096, subnet: '10.0.1.0/24', gateway: '', mtu: 67 }, 'invalid MTU 67'],
])('planOverlayProblem(%j) is %j', (o, problem) => {
  expect(planOverlayProblem(o)).toBe(problem);
});
