/**
 * The netlink layer against the real kernel, inside the test runner's private network namespace
 * (run through test/run.sh). What it does is checked with what `ip -j` and `bridge -j` report.
 * Every link and namespace it makes carries a prefix unique to this run and is removed in
 * afterAll, also when a test fails.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { Netlink, NetlinkError } from '../../agent/network/netlink';
import { formatIp, networkOf, parseCidr, parseIp } from '../../agent/network/netlink/encode';
import { rejection } from '../support/rejection';

const P = `nl${(process.pid % 46656).toString(36)}`;
const namespaces: string[] = [];
const handles: Netlink[] = [];
const children: ChildProcess[] = [];
let nl: Netlink;

const netnsPath = (name: string) => `/run/netns/${name}`;

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** `ip -j [-n NS] ARGS`, parsed; [] when the object does not exist. */
function ipj(args: string[], ns?: string): any[] {
  try {
    const out = run('ip', [...(ns ? ['-n', ns] : []), '-j', ...args]).trim();
    return out ? JSON.parse(out) : [];
  } catch {
    return [];
  }
}

function link(name: string, ns?: string): any {
  const [l] = ipj(['-d', 'link', 'show', 'dev', name], ns);
  return l;
}

function fdb(dev: string, ns?: string): any[] {
  const out = run('bridge', [...(ns ? ['-n', ns] : []), '-j', 'fdb', 'show', 'dev', dev]).trim();
  return out ? JSON.parse(out) : [];
}

function addNetns(suffix: string): string {
  const name = `${P}-${suffix}`;
  run('ip', ['netns', 'add', name]);
  namespaces.push(name);
  run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return name;
}

async function inNetns(name: string): Promise<Netlink> {
  const h = await Netlink.inNetns(netnsPath(name));
  handles.push(h);
  return h;
}


async function waitFor<T>(what: string, fn: () => T | undefined | false, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

beforeAll(() => {
  nl = Netlink.open();
});

afterAll(async () => {
  for (const h of handles) h.close();
  nl?.close();
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const ns of namespaces) {
    try {
      run('ip', ['netns', 'del', ns]);
    } catch {
      // already gone
    }
  }
  for (const l of ipj(['link', 'show'])) {
    if (typeof l.ifname === 'string' && l.ifname.startsWith(P)) {
      try {
        run('ip', ['link', 'del', 'dev', l.ifname]);
      } catch {
        // a veth went with its peer
      }
    }
  }
});

describe('address text (no kernel)', () => {
  test.each([
    ['10.0.0.1', '10.0.0.1'],
    ['::', '::'],
    ['::1', '::1'],
    ['fe80::a:1', 'fe80::a:1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:DB8:0:0:0:0:0:0', '2001:db8::'],
    ['1:0:1:0:1:0:1:0', '1:0:1:0:1:0:1:0'],
  ])('%s reads and prints as %s', (text, printed) => {
    const buf = parseIp(text);
    expect(buf).toBeDefined();
    expect(formatIp(buf as Buffer)).toBe(printed);
  });

  test.each(['10.0.0.256', '10.0.0', '1::2::3', '1:2:3:4:5:6:7:8:9', 'fe80::g', ''])('%s is not an address', (text) => {
    expect(parseIp(text)).toBeUndefined();
  });

  test('CIDRs', () => {
    expect(parseCidr('10.1.2.3/16')).toMatchObject({ prefixLength: 16, family: 4 });
    expect(parseCidr('10.1.2.3')).toMatchObject({ prefixLength: 32 });
    expect(parseCidr('10.1.2.3/33')).toBeUndefined();
    expect(parseCidr('10.1.2.3/1/2')).toBeUndefined();
    expect(formatIp(networkOf(parseCidr('10.1.2.3/12')!).ip)).toBe('10.0.0.0');
  });
});

describe('links', () => {
  test('ensureBridge creates a bridge once, with its MTU and MAC, and keeps its ifindex', async () => {
    const name = `${P}br0`;
    const first = await nl.ensureBridge(name, { mtu: 1400, mac: '02:00:5e:00:00:01' });
    const ip = link(name);
    expect(ip.linkinfo.info_kind).toBe('bridge');
    expect(ip.mtu).toBe(1400);
    expect(ip.address).toBe('02:00:5e:00:00:01');
    expect(first).toMatchObject({ name, index: ip.ifindex, kind: 'bridge', mtu: 1400, mac: '02:00:5e:00:00:01', up: false });

    const again = await nl.ensureBridge(name, { mtu: 1400, mac: '02:00:5e:00:00:01' });
    expect(again.index).toBe(first.index);
    expect(link(name).ifindex).toBe(first.index);

    const changed = await nl.ensureBridge(name, { mtu: 1300 });
    expect(changed.index).toBe(first.index);
    expect(link(name).mtu).toBe(1300);

    const listed = (await nl.listLinks()).find((l) => l.name === name);
    expect(listed).toMatchObject({ kind: 'bridge', index: first.index, mtu: 1300 });
    expect((await nl.listLinks()).find((l) => l.name === 'lo')).toMatchObject({ kind: 'loopback', up: true });
  });

  test('a link of another kind under the wanted name is a Conflict, not replaced', async () => {
    await nl.ensureVethPair(`${P}cf0`, `${P}cf1`);
    const err = await rejection(nl.ensureBridge(`${P}cf0`), NetlinkError);
    expect(err.errno).toBe('EEXIST');
    expect(err.kind).toBe('Conflict');
    expect(err.message).toMatch(new RegExp(`^creating bridge ${P}cf0: EEXIST`));
    expect(link(`${P}cf0`).linkinfo.info_kind).toBe('veth');
  });

  test('ensureVxlan sets VNI, local VTEP, port, no learning, dev; is idempotent; a different VNI replaces it', async () => {
    await nl.ensureVethPair(`${P}ul0`, `${P}ul1`);
    const name = `${P}vx0`;
    const opts = { vni: 4097, local: '198.51.100.10', mtu: 1450, dev: `${P}ul0` };
    const first = await nl.ensureVxlan(name, opts);
    let ip = link(name);
    expect(ip.linkinfo.info_kind).toBe('vxlan');
    expect(ip.linkinfo.info_data).toMatchObject({ id: 4097, local: '198.51.100.10', port: 4789, learning: false, link: `${P}ul0` });
    expect(ip.mtu).toBe(1450);
    expect(first.vxlan).toEqual({ vni: 4097, local: '198.51.100.10', port: 4789, learning: false, proxy: false, devIndex: link(`${P}ul0`).ifindex });

    const again = await nl.ensureVxlan(name, opts);
    expect(again.index).toBe(first.index);
    expect(link(name).ifindex).toBe(first.index);

    const mtu = await nl.ensureVxlan(name, { ...opts, mtu: 1400 });
    expect(mtu.index).toBe(first.index);
    expect(link(name).mtu).toBe(1400);

    const replaced = await nl.ensureVxlan(name, { ...opts, vni: 4098 });
    expect(replaced.index).not.toBe(first.index);
    ip = link(name);
    expect(ip.ifindex).toBe(replaced.index);
    expect(ip.linkinfo.info_data.id).toBe(4098);

    const otherLocal = await nl.ensureVxlan(name, { ...opts, vni: 4098, local: '198.51.100.11' });
    expect(otherLocal.index).not.toBe(replaced.index);
    expect(link(name).linkinfo.info_data.local).toBe('198.51.100.11');
  });

  test('veth pair; setMaster, setUp, setMtu, setMac, rename, deleteLink', async () => {
    const a = `${P}va0`;
    const b = `${P}vb0`;
    const br = `${P}br1`;
    const first = await nl.ensureVethPair(a, b, { mtu: 1400 });
    expect(link(a).linkinfo.info_kind).toBe('veth');
    expect(link(a).link).toBe(b);
    expect(link(b).mtu).toBe(1400);
    expect(first.veth).toEqual({ peerIndex: link(b).ifindex, peerNetnsId: undefined });
    expect((await nl.ensureVethPair(a, b, { mtu: 1400 })).index).toBe(first.index);

    const bridge = await nl.ensureBridge(br);
    await nl.setMaster(a, br);
    await nl.setMaster(a, br);
    expect(link(a).master).toBe(br);
    expect((await nl.getLink(a))?.masterIndex).toBe(bridge.index);
    await nl.setMaster(a, null);
    expect(link(a).master).toBeUndefined();

    await nl.setUp(a);
    await nl.setUp(a);
    expect(link(a).flags).toContain('UP');
    await nl.setDown(a);
    expect(link(a).flags).not.toContain('UP');
    await nl.setUp(a);

    await nl.setMtu(a, 1380);
    expect(link(a).mtu).toBe(1380);
    await nl.setMac(a, '02:00:5E:00:00:AA');
    expect(link(a).address).toBe('02:00:5e:00:00:aa');

    await nl.rename(a, `${P}va1`);
    expect(link(a)).toBeUndefined();
    expect(link(`${P}va1`)).toMatchObject({ ifindex: first.index, mtu: 1380 });
    expect(link(`${P}va1`).flags).toContain('UP');
    await nl.rename(a, `${P}va1`); // done already

    await nl.deleteLink(`${P}va1`);
    expect(link(`${P}va1`)).toBeUndefined();
    expect(link(b)).toBeUndefined();
    await nl.deleteLink(`${P}va1`);
    await nl.deleteLink(`${P}nothere`);
  });

  test('a veth peer lands in another netns; ensure again keeps it; another peer name replaces it', async () => {
    const ns = addNetns('peer');
    const name = `${P}h0`;
    const first = await nl.ensureVethPair(name, 'eth0', { mtu: 1450, peerNetns: netnsPath(ns) });
    const peer = link('eth0', ns);
    expect(peer.linkinfo.info_kind).toBe('veth');
    expect(peer.mtu).toBe(1450);
    expect(link(name).mtu).toBe(1450);
    expect(first.veth?.peerIndex).toBe(peer.ifindex);
    expect(first.veth?.peerNetnsId).toEqual(expect.any(Number));

    const again = await nl.ensureVethPair(name, 'eth0', { mtu: 1450, peerNetns: netnsPath(ns) });
    expect(again.index).toBe(first.index);
    expect(link('eth0', ns).ifindex).toBe(peer.ifindex);

    await nl.ensureVethPair(name, 'eth0', { mtu: 1400, peerNetns: netnsPath(ns) });
    expect(link(name).ifindex).toBe(first.index);
    expect(link('eth0', ns).mtu).toBe(1400);

    const replaced = await nl.ensureVethPair(name, 'eth1', { mtu: 1450, peerNetns: netnsPath(ns) });
    expect(replaced.index).not.toBe(first.index);
    expect(link('eth0', ns)).toBeUndefined();
    expect(link('eth1', ns).linkinfo.info_kind).toBe('veth');

    // Same peer name, but in this namespace instead: replaced too.
    const local = await nl.ensureVethPair(name, `${P}h1`);
    expect(local.index).not.toBe(replaced.index);
    expect(link('eth1', ns)).toBeUndefined();
    expect(link(`${P}h1`).link).toBe(name);
  });

  test('ensureMacvlan on a parent, idempotent; another mode replaces it', async () => {
    await nl.ensureVethPair(`${P}mp0`, `${P}mp1`);
    const name = `${P}mv0`;
    const first = await nl.ensureMacvlan(name, `${P}mp0`);
    const ip = link(name);
    expect(ip.linkinfo.info_kind).toBe('macvlan');
    expect(ip.linkinfo.info_data.mode).toBe('bridge');
    expect(ip.link).toBe(`${P}mp0`);
    expect(first.macvlan).toMatchObject({ mode: 'bridge', parentIndex: link(`${P}mp0`).ifindex });
    expect((await nl.ensureMacvlan(name, `${P}mp0`)).index).toBe(first.index);
    const priv = await nl.ensureMacvlan(name, `${P}mp0`, 'private');
    expect(priv.index).not.toBe(first.index);
    expect(link(name).linkinfo.info_data.mode).toBe('private');
  });

  test('moveToNetns moves a link by fd; a bridge cannot move (EINVAL)', async () => {
    const ns = addNetns('mv');
    await nl.ensureVethPair(`${P}mva`, `${P}mvb`);
    await nl.moveToNetns(`${P}mvb`, netnsPath(ns));
    expect(link(`${P}mvb`)).toBeUndefined();
    expect(link(`${P}mvb`, ns).linkinfo.info_kind).toBe('veth');
    expect((await nl.getLink(`${P}mva`))?.veth?.peerNetnsId).toEqual(expect.any(Number));
    const gone = await rejection(nl.moveToNetns(`${P}mvb`, netnsPath(ns)), NetlinkError);
    expect(gone.errno).toBe('ENODEV');

    await nl.ensureBridge(`${P}mvbr`);
    const local = await rejection(nl.moveToNetns(`${P}mvbr`, netnsPath(ns)), NetlinkError);
    expect(local.errno).toBe('EINVAL');
    expect(local.message).toMatch(new RegExp(`^moving ${P}mvbr to netns ${netnsPath(ns)}: EINVAL`));
  });
});

describe('addresses, routes, neighbours', () => {
  const dev = `${P}rt0`;
  beforeAll(async () => {
    await nl.ensureVethPair(dev, `${P}rt1`);
    await nl.setUp(`${P}rt1`);
    await nl.setUp(dev);
  });

  test('ensureAddress is idempotent, replaces another prefix length; deleteAddress tolerates a missing one', async () => {
    await nl.ensureAddress(dev, '10.98.0.1/24');
    await nl.ensureAddress(dev, '10.98.0.1/24');
    let addrs = ipj(['addr', 'show', 'dev', dev])[0].addr_info.filter((a: any) => a.family === 'inet');
    expect(addrs).toEqual([expect.objectContaining({ local: '10.98.0.1', prefixlen: 24 })]);
    expect((await nl.listAddresses(dev)).filter((a) => a.family === 4)).toEqual([
      { ifname: dev, index: link(dev).ifindex, family: 4, address: '10.98.0.1', prefixLength: 24, cidr: '10.98.0.1/24', scope: 'universe' },
    ]);

    await nl.ensureAddress(dev, '10.98.0.1/16');
    addrs = ipj(['addr', 'show', 'dev', dev])[0].addr_info.filter((a: any) => a.family === 'inet');
    expect(addrs).toEqual([expect.objectContaining({ local: '10.98.0.1', prefixlen: 16 })]);

    await nl.ensureAddress(dev, '10.98.1.1/24');
    expect((await nl.listAddresses()).filter((a) => a.ifname === dev && a.family === 4).map((a) => a.cidr).sort()).toEqual(['10.98.0.1/16', '10.98.1.1/24']);

    await nl.deleteAddress(dev, '10.98.0.1/16');
    await nl.deleteAddress(dev, '10.98.0.1/16');
    await nl.deleteAddress(`${P}nothere`, '10.98.0.1/16');
    addrs = ipj(['addr', 'show', 'dev', dev])[0].addr_info.filter((a: any) => a.family === 'inet');
    expect(addrs.map((a: any) => a.local)).toEqual(['10.98.1.1']);
  });

  test('adding an address to a missing link is a NetlinkError with errno ENODEV', async () => {
    const err = await rejection(nl.ensureAddress(`${P}nothere`, '10.98.9.1/24'), NetlinkError);
    expect(err.errno).toBe('ENODEV');
    expect(err.kind).toBe('NotFound');
    expect(err.message).toMatch(new RegExp(`^adding address 10.98.9.1/24 to ${P}nothere: ENODEV`));
    const bad = await rejection(nl.ensureAddress(dev, '10.98.9.1/33'), NetlinkError);
    expect(bad.errno).toBe('EINVAL');
    expect(bad.kind).toBe('InvalidArgument');
  });

  test('ensureRoute via a gateway or a dev, idempotent, replaced when the gateway changes; deleteRoute', async () => {
    await nl.ensureAddress(dev, '10.98.1.1/24');
    await nl.ensureRoute({ dst: '10.97.0.0/16', gateway: '10.98.1.254' });
    await nl.ensureRoute({ dst: '10.97.0.0/16', gateway: '10.98.1.254' });
    let routes = ipj(['route', 'show', '10.97.0.0/16']);
    expect(routes).toEqual([expect.objectContaining({ dst: '10.97.0.0/16', gateway: '10.98.1.254', dev })]);

    await nl.ensureRoute({ dst: '10.97.0.0/16', gateway: '10.98.1.253', dev });
    routes = ipj(['route', 'show', '10.97.0.0/16']);
    expect(routes).toEqual([expect.objectContaining({ gateway: '10.98.1.253', dev })]);

    await nl.ensureRoute({ dst: '10.96.5.0/24', dev });
    expect(ipj(['route', 'show', '10.96.5.0/24'])).toEqual([expect.objectContaining({ dst: '10.96.5.0/24', dev, scope: 'link' })]);

    const listed = await nl.listRoutes({ family: 4 });
    expect(listed).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ dst: '10.97.0.0/16', gateway: '10.98.1.253', dev, table: 254, type: 'unicast' }),
        expect.objectContaining({ dst: '10.96.5.0/24', dev, scope: 'link' }),
        expect.objectContaining({ dst: '10.98.1.0/24', dev, protocol: 'kernel' }),
      ]),
    );

    await nl.deleteRoute({ dst: '10.97.0.0/16' });
    await nl.deleteRoute({ dst: '10.97.0.0/16' });
    await nl.deleteRoute({ dst: '10.96.5.0/24', dev });
    expect(ipj(['route', 'show', '10.97.0.0/16'])).toEqual([]);
    expect(ipj(['route', 'show', '10.96.5.0/24'])).toEqual([]);

    const unreachable = await rejection(nl.ensureRoute({ dst: '10.95.0.0/16', gateway: '10.200.0.1' }), NetlinkError);
    expect(unreachable.errno).toBe('ENETUNREACH');
  });

  test('ensureNeighbour is permanent, idempotent, replaced on another MAC; deleteNeighbour', async () => {
    await nl.ensureNeighbour(dev, '10.98.1.7', '02:00:5e:00:01:07');
    await nl.ensureNeighbour(dev, '10.98.1.7', '02:00:5e:00:01:07');
    let neigh = ipj(['neigh', 'show', 'dev', dev]).filter((n: any) => n.dst === '10.98.1.7');
    expect(neigh).toEqual([expect.objectContaining({ lladdr: '02:00:5e:00:01:07', state: ['PERMANENT'] })]);
    expect((await nl.listNeighbours(dev)).find((n) => n.ip === '10.98.1.7')).toMatchObject({ mac: '02:00:5e:00:01:07', permanent: true, ifname: dev, family: 4 });

    await nl.ensureNeighbour(dev, '10.98.1.7', '02:00:5e:00:01:08');
    neigh = ipj(['neigh', 'show', 'dev', dev]).filter((n: any) => n.dst === '10.98.1.7');
    expect(neigh).toEqual([expect.objectContaining({ lladdr: '02:00:5e:00:01:08', state: ['PERMANENT'] })]);

    await nl.ensureNeighbour(dev, '10.98.1.8', '02:00:5e:00:01:09', { permanent: false });
    neigh = ipj(['neigh', 'show', 'dev', dev]).filter((n: any) => n.dst === '10.98.1.8');
    expect(neigh).toEqual([expect.objectContaining({ lladdr: '02:00:5e:00:01:09' })]);
    expect(neigh[0].state).not.toContain('PERMANENT');

    await nl.deleteNeighbour(dev, '10.98.1.7');
    await nl.deleteNeighbour(dev, '10.98.1.7');
    expect(ipj(['neigh', 'show', 'dev', dev]).filter((n: any) => n.dst === '10.98.1.7')).toEqual([]);
  });
});

describe('bridge FDB', () => {
  const br = `${P}fb`;
  const vx = `${P}fv`;
  beforeAll(async () => {
    await nl.ensureBridge(br);
    await nl.ensureVxlan(vx, { vni: 5000, local: '198.51.100.20', mtu: 1450 });
    await nl.setMaster(vx, br);
    await nl.setUp(vx);
    await nl.setUp(br);
  });

  test('on the VXLAN device (self) an entry is permanent with the remote VTEP; on the bridge (master) it is noarp', async () => {
    const remote = '02:42:0a:00:00:05';
    await nl.ensureFdb(vx, remote, { dst: '198.51.100.21', self: true });
    await nl.ensureFdb(vx, remote, { dst: '198.51.100.21', self: true });
    let self = fdb(vx).filter((e) => e.mac === remote && e.flags.includes('self'));
    expect(self).toEqual([expect.objectContaining({ dst: '198.51.100.21', state: 'permanent' })]);

    await nl.ensureFdb(vx, remote, { self: false });
    await nl.ensureFdb(vx, remote, { self: false });
    const master = fdb(vx).filter((e) => e.mac === remote && e.master === br);
    expect(master).toHaveLength(1);
    expect(master[0].flags).not.toContain('self');
    expect(master[0].state).not.toBe('permanent'); // a permanent entry would be local: frames stop at the host
    expect(master[0].state).toBe('static'); // how bridge(8) shows NUD_NOARP

    const listed = await nl.listFdb(vx);
    expect(listed.filter((e) => e.mac === remote)).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ self: true, master: false, dst: '198.51.100.21', permanent: true, ifname: vx }),
        expect.objectContaining({ self: false, master: true, noarp: true, permanent: false, masterIndex: link(br).ifindex }),
      ]),
    );

    await nl.ensureFdb(vx, remote, { dst: '198.51.100.22', self: true });
    self = fdb(vx).filter((e) => e.mac === remote && e.flags.includes('self'));
    expect(self).toEqual([expect.objectContaining({ dst: '198.51.100.22', state: 'permanent' })]);

    await nl.deleteFdb(vx, remote, { self: true, dst: '198.51.100.22' });
    await nl.deleteFdb(vx, remote, { self: true, dst: '198.51.100.22' });
    await nl.deleteFdb(vx, remote, { self: false });
    await nl.deleteFdb(vx, remote, { self: false });
    expect(fdb(vx).filter((e) => e.mac === remote)).toEqual([]);
  });
});

describe('foreign network namespaces', () => {
  test('a missing namespace is ENOENT', async () => {
    const err = await rejection(Netlink.inNetns(netnsPath(`${P}-missing`)), NetlinkError);
    expect(err.errno).toBe('ENOENT');
    expect(err.kind).toBe('NotFound');
  });

  test('operations in /run/netns/NAME and /proc/PID/ns/net go to that namespace, with typed errors', async () => {
    const ns = addNetns('for');
    const h = await inNetns(ns);
    expect(h.netns).toBe(netnsPath(ns));
    expect((await h.listLinks()).map((l) => l.name)).toEqual(['lo']);

    const br = await h.ensureBridge('br0', { mtu: 1450 });
    expect(link('br0', ns)).toMatchObject({ ifindex: br.index, mtu: 1450 });
    expect(link(`br0`)).toBeUndefined();
    expect((await h.ensureBridge('br0', { mtu: 1450 })).index).toBe(br.index);
    await h.ensureVethPair('gw0', 'gw1');
    await h.setUp('gw1');
    await h.setUp('gw0');
    await h.ensureAddress('gw0', '192.0.2.2/24');
    await h.ensureRoute({ dst: 'default', gateway: '192.0.2.1' });
    await h.ensureRoute({ dst: 'default', gateway: '192.0.2.1' });
    expect(ipj(['route', 'show', 'default'], ns)).toEqual([expect.objectContaining({ dst: 'default', gateway: '192.0.2.1', dev: 'gw0' })]);
    expect(await h.listRoutes({ family: 4 })).toEqual(expect.arrayContaining([expect.objectContaining({ dst: 'default', gateway: '192.0.2.1', dev: 'gw0' })]));
    await h.ensureNeighbour('gw0', '192.0.2.1', '02:00:5e:00:02:01');
    expect(ipj(['neigh', 'show', 'dev', 'gw0'], ns)).toEqual([expect.objectContaining({ dst: '192.0.2.1', lladdr: '02:00:5e:00:02:01', state: ['PERMANENT'] })]);

    const err = await rejection(h.ensureAddress('nope0', '192.0.2.9/24'), NetlinkError);
    expect(err.errno).toBe('ENODEV');
    const conflict = await rejection(h.ensureVxlan('br0', { vni: 10, local: '192.0.2.2' }), NetlinkError);
    expect(conflict.errno).toBe('EEXIST');

    // Parallel requests on one handle (dumps included) are serialized, not refused with EBUSY.
    const many = await Promise.all([h.listLinks(), h.listAddresses(), h.listRoutes(), h.listNeighbours('gw0'), h.listFdb('br0')]);
    expect(many[0].length).toBeGreaterThan(1);

    // The same namespace through /proc/PID/ns/net of a process inside it.
    const sleeper = spawn('ip', ['netns', 'exec', ns, 'sleep', '60'], { stdio: 'ignore' });
    children.push(sleeper);
    const target = statSync(netnsPath(ns));
    const procPath = `/proc/${sleeper.pid}/ns/net`;
    await waitFor('the sleeper to enter the namespace', () => {
      try {
        const s = statSync(procPath);
        return s.ino === target.ino && s.dev === target.dev;
      } catch {
        return false;
      }
    });
    const byPid = await Netlink.inNetns(procPath);
    handles.push(byPid);
    expect((await byPid.getLink('br0'))?.index).toBe(br.index);
    sleeper.kill('SIGKILL');

    byPid.close();
    h.close();
    expect((await rejection(h.listLinks(), NetlinkError)).errno).toBe('EBADF');
  });

  test('handles on a namespace put no process in it (the one namespace helper enters it per request), and sockets are bound there', async () => {
    const ns = addNetns('shared');
    const pids = () => run('ip', ['netns', 'pids', ns]).trim().split('\n').filter(Boolean);
    const [a, b] = await Promise.all([inNetns(ns), inNetns(ns)]);
    expect(pids()).toHaveLength(0);
    // Both work, side by side (dumps too: one socket, one queue).
    const [la, lb] = await Promise.all([a.listLinks(), b.listLinks(), a.listAddresses(), b.listRoutes()]);
    expect(la.map((l) => l.name)).toEqual(['lo']);
    expect(lb.map((l) => l.name)).toEqual(['lo']);
    // A UDP socket and a TCP listener bound inside the namespace, served from here.
    const { udp, tcp } = await b.openSockets('127.0.0.1', 5353);
    try {
      expect(udp.address()).toMatchObject({ address: '127.0.0.1', port: 5353 });
      expect(tcp.address()).toMatchObject({ address: '127.0.0.1', port: 5353 });
      const got = new Promise<string>((resolve) => udp.once('message', (m) => resolve(m.toString())));
      execFileSync('ip', ['netns', 'exec', ns, 'bash', '-c', 'printf ping > /dev/udp/127.0.0.1/5353']);
      expect(await got).toBe('ping');
    } finally {
      udp.close();
      tcp.close();
    }
    a.close();
    expect((await b.listLinks()).map((l) => l.name)).toEqual(['lo']);
    expect(pids()).toHaveLength(0);
    b.close();
    // Moving a link into another namespace by fd goes through the helper too (the fd is opened there).
    const other = addNetns('shared2');
    const c = await inNetns(ns);
    await c.ensureVethPair('mv0', 'mv1', { peerNetns: netnsPath(other) });
    expect(link('mv1', other)).toBeDefined();
    expect(link('mv0', ns)).toBeDefined();
    c.close();
  });

  test('a bridge port is isolated and let go again, as `bridge link set dev P isolated on|off` does', async () => {
    const ns = addNetns('iso');
    const h = await inNetns(ns);
    await h.ensureBridge('br0');
    await h.ensureVethPair('p0', 'p1');
    await h.setMaster('p0', 'br0');
    expect(link('p0', ns).linkinfo.info_slave_data.isolated).toBe(false);
    await h.setBridgePortIsolated('p0', true);
    expect(link('p0', ns).linkinfo.info_slave_data.isolated).toBe(true);
    await h.setBridgePortIsolated('p0', false);
    expect(link('p0', ns).linkinfo.info_slave_data.isolated).toBe(false);
    expect((await rejection(h.setBridgePortIsolated('nope0', true), NetlinkError)).errno).toBe('ENODEV');
  });

  test("a path to this process's own namespace works without a helper", async () => {
    const own = await Netlink.inNetns('/proc/self/ns/net');
    handles.push(own);
    expect((await own.listLinks()).map((l) => l.name)).toContain('lo');
  });
});

describe('idempotence', () => {
  test('ensuring again what is there sends no change: `ip monitor` stays silent', async () => {
    const ns = addNetns('idem');
    const ctr = addNetns('idemc');
    run('ip', ['netns', 'exec', ns, 'sh', '-c', 'echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6']);
    const h = await inNetns(ns);
    const ensureAll = async () => {
      await h.ensureVethPair('ul0', 'ul1', { mtu: 1500 });
      await h.ensureBridge('br0', { mtu: 1450, mac: '02:00:5e:00:03:01' });
      await h.ensureVxlan('vx0', { vni: 4100, local: '198.51.100.5', mtu: 1450, dev: 'ul0' });
      await h.ensureVethPair('veth0', 'eth0', { mtu: 1450, peerNetns: netnsPath(ctr) });
      await h.ensureMacvlan('mv0', 'ul1');
      for (const dev of ['vx0', 'veth0']) await h.setMaster(dev, 'br0');
      for (const dev of ['ul0', 'ul1', 'br0', 'vx0', 'veth0']) await h.setUp(dev);
      await h.setMtu('ul1', 1500);
      await h.setMac('mv0', '02:00:5e:00:03:02');
      await h.ensureAddress('ul0', '198.51.100.5/24');
      await h.ensureAddress('br0', '10.99.5.1/24');
      await h.ensureRoute({ dst: '10.90.0.0/16', gateway: '198.51.100.6' });
      await h.ensureRoute({ dst: '10.91.0.0/16', dev: 'br0' });
      await h.ensureNeighbour('vx0', '10.99.5.2', '02:42:0a:63:05:02');
      await h.ensureFdb('vx0', '02:42:0a:63:05:02', { dst: '198.51.100.6', self: true });
      await h.ensureFdb('vx0', '02:42:0a:63:05:02', { self: false });
    };
    await ensureAll();

    const monitor = spawn('ip', ['-n', ns, '-o', 'monitor', 'link', 'address', 'route', 'neigh'], { stdio: ['ignore', 'pipe', 'ignore'] });
    children.push(monitor);
    let out = '';
    monitor.stdout?.on('data', (d) => (out += d));
    // Sentinels before and after prove the monitor was listening the whole time.
    for (let i = 0; !out.includes('10.99.5.101'); i++) {
      await h.ensureNeighbour('br0', '10.99.5.101', `02:00:5e:00:04:${(i % 256).toString(16).padStart(2, '0')}`);
      await new Promise((r) => setTimeout(r, 50));
      if (i > 100) throw new Error('ip monitor saw nothing');
    }
    await new Promise((r) => setTimeout(r, 100));
    const before = out.length;
    await ensureAll();
    await h.ensureNeighbour('br0', '10.99.5.102', '02:00:5e:00:04:ff');
    await waitFor('the second sentinel', () => out.includes('10.99.5.102'));
    monitor.kill('SIGKILL');
    const between = out.slice(before).split('\n').filter((l) => l && !l.includes('10.99.5.102'));
    expect(between).toEqual([]);
  });
});

describe('VXLAN between two namespaces', () => {
  test('a TCP round trip from container A to container B crosses the overlay', async () => {
    const hostA = addNetns('ha');
    const hostB = addNetns('hb');
    const ctrA = addNetns('ca');
    const ctrB = addNetns('cb');
    const macA = '02:42:0a:63:00:01';
    const macB = '02:42:0a:63:00:02';
    const a = await inNetns(hostA);
    const b = await inNetns(hostB);
    const ca = await inNetns(ctrA);
    const cb = await inNetns(ctrB);

    // The underlay: a veth between the two hosts.
    await a.ensureVethPair('ul0', 'ul0', { peerNetns: netnsPath(hostB) });
    const sides = [
      { h: a, c: ca, ctrNs: ctrA, underlay: '198.51.100.1', ip: '10.99.0.1', mac: macA },
      { h: b, c: cb, ctrNs: ctrB, underlay: '198.51.100.2', ip: '10.99.0.2', mac: macB },
    ];
    for (const s of sides) {
      await s.h.ensureAddress('ul0', `${s.underlay}/24`);
      await s.h.setUp('ul0');
      await s.h.ensureBridge('br0', { mtu: 1450 });
      await s.h.ensureVxlan('vx0', { vni: 4242, local: s.underlay, mtu: 1450, learning: false, proxy: true, dev: 'ul0' });
      await s.h.setMaster('vx0', 'br0');
      await s.h.ensureVethPair('veth0', 'eth0', { mtu: 1450, peerNetns: netnsPath(s.ctrNs) });
      await s.h.setMaster('veth0', 'br0');
      for (const dev of ['vx0', 'veth0', 'br0']) await s.h.setUp(dev);
      await s.c.setMac('eth0', s.mac);
      await s.c.ensureAddress('eth0', `${s.ip}/24`);
      await s.c.setUp('eth0');
    }
    // Peers, statically: remote task MAC -> remote VTEP on the VXLAN device, the bridge sends that
    // MAC to the VXLAN port, and the VXLAN device answers ARP for the remote task (proxy).
    for (const [s, peer] of [
      [sides[0], sides[1]],
      [sides[1], sides[0]],
    ] as const) {
      await s.h.ensureFdb('vx0', peer.mac, { dst: peer.underlay, self: true });
      await s.h.ensureFdb('vx0', peer.mac, { self: false });
      await s.h.ensureNeighbour('vx0', peer.ip, peer.mac);
    }
    expect(fdb('vx0', hostA).filter((e) => e.mac === macB && e.flags.includes('self'))).toEqual([expect.objectContaining({ dst: '198.51.100.2', state: 'permanent' })]);
    expect(link('vx0', hostA).linkinfo.info_data).toMatchObject({ id: 4242, local: '198.51.100.1', learning: false, proxy: true });

    const port = 7000 + (process.pid % 1000);
    const server = spawn('ip', [
      'netns', 'exec', ctrB, process.execPath, '-e',
      `const s = require('net').createServer((c) => c.on('data', (d) => c.end('pong:' + d))).listen(${port}, '10.99.0.2', () => console.log('listening'));
       setTimeout(() => process.exit(2), 20000).unref();`,
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(server);
    let serverOut = '';
    server.stdout?.on('data', (d) => (serverOut += d));
    await waitFor('the server to listen', () => serverOut.includes('listening'), 10000);

    const reply = run('ip', [
      'netns', 'exec', ctrA, process.execPath, '-e',
      `const c = require('net').connect(${port}, '10.99.0.2', () => c.write('ping'));
       let got = ''; c.on('data', (d) => (got += d)); c.on('end', () => { console.log(got); process.exit(0); });
       c.on('error', (e) => { console.error(e.message); process.exit(1); });
       setTimeout(() => { console.error('timeout'); process.exit(3); }, 10000);`,
    ]).trim();
    expect(reply).toBe('pong:ping');
    server.kill('SIGKILL');

    // The container saw 10.99.0.2 through the VXLAN device's proxy ARP, at B's MAC.
    expect(ipj(['neigh', 'show', 'dev', 'eth0'], ctrA)).toEqual([expect.objectContaining({ dst: '10.99.0.2', lladdr: macB })]);
  });
});
