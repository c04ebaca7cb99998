/**
 * OverlayDriver against the real kernel, inside the test runner's private namespaces (run through
 * test/run.sh). Two "hosts" are network namespaces joined by a veth underlay (198.51.100.1 and .2);
 * each runs an OverlayDriver (in this process, its host namespace given by path) with a sandbox
 * prefix of its own, since both hosts' sandboxes live in this process's /run/netns. Tasks are bare
 * namespaces (B's is reached through /proc/PID/ns/net of a process in it, as the worker does).
 * What the driver made is checked with `ip -j` and `bridge -j`. Everything carries a prefix unique
 * to this run and is removed in afterAll, also when a test fails.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { Netlink } from '../../agent/network/netlink';
import type { RunningTask } from '../../agent/network/driver';
import { OverlayDriver } from '../../agent/network/overlay-driver';
import { overlayVethName } from '../../agent/network/overlay/veths';
import { createRootLogger } from '../../services/common/logger';
import type { OverlayNetwork, OverlayPeer } from '../../services/gen/swarmlet/v1/dispatcher';
import type { NetworkAttachment } from '../../services/gen/swarmlet/v1/types';
import { addNetns, ipj, netnsPath, run, waitFor } from '../support/netns';

const P = `od${(process.pid % 46656).toString(36)}`;
const H1 = `${P}-h1`;
const H2 = `${P}-h2`;
const TA = `${P}-ta`;
const TB = `${P}-tb`;
const TC = `${P}-tc`;
/** Sandbox prefixes: both hosts' sandboxes share this process's /run/netns. */
const S1 = `${P}a`;
const S2 = `${P}b`;
const VTEP1 = '198.51.100.1';
const VTEP2 = '198.51.100.2';
const PORT = 7000 + (process.pid % 1000);

const TASK_A = 'a0taska7k2m9q4x1z8c3v6b5n';
const TASK_B = 'b0taskb7k2m9q4x1z8c3v6b5n';
const TASK_C = 'c0taskc7k2m9q4x1z8c3v6b5n';
const A: OverlayPeer = { ip: '10.77.0.2', mac: '02:42:0a:4d:00:02', vtep: VTEP1 };
const B: OverlayPeer = { ip: '10.77.0.3', mac: '02:42:0a:4d:00:03', vtep: VTEP2 };
const C: OverlayPeer = { ip: '10.78.0.3', mac: '02:42:0a:4e:00:03', vtep: VTEP2 };

const net1 = (peers: OverlayPeer[]): OverlayNetwork => ({ networkId: 'net-front', name: 'front', vni: 4242, subnet: '10.77.0.0/24', gateway: '10.77.0.1', mtu: 0, peers });
const net2 = (peers: OverlayPeer[]): OverlayNetwork => ({ networkId: 'net-back', name: 'back', vni: 4243, subnet: '10.78.0.0/24', gateway: '10.78.0.1', mtu: 0, peers });

function attachment(net: OverlayNetwork, peer: OverlayPeer): NetworkAttachment {
  return { networkId: net.networkId, networkName: net.name, driver: 'overlay', address: `${peer.ip}/24`, mac: peer.mac, gateway: net.gateway, vni: net.vni, internal: false, options: {} };
}

/** The tasks running on each host, as the agent passes them to reconcile. */
const running1 = (): RunningTask[] => [{ taskId: TASK_A, netns: netnsPath(TA), attachments: [attachment(net1([]), A)] }];
const running2 = (): RunningTask[] => [
  { taskId: TASK_B, netns: taskBNetns, attachments: [attachment(net1([]), B)] },
  { taskId: TASK_C, netns: netnsPath(TC), attachments: [attachment(net2([]), C)] },
];

const children: ChildProcess[] = [];
const handles: Netlink[] = [];
const drivers: OverlayDriver[] = [];
let d1: OverlayDriver;
let d2: OverlayDriver;
/** Task B's namespace as the worker names it: /proc/PID/ns/net of a process in it. */
let taskBNetns: string;

function link(name: string, ns: string): any {
  const [l] = ipj(['-d', 'link', 'show', 'dev', name], ns);
  return l;
}

function fdb(dev: string, ns: string): any[] {
  const out = run('bridge', ['-n', ns, '-j', 'fdb', 'show', 'dev', dev]).trim();
  return out ? JSON.parse(out) : [];
}

const netnsList = (): string[] => ipj(['netns', 'list']).map((n) => n.name as string);

/** bridge-nf-call-iptables, -ip6tables and -arptables in a namespace. */
const bridgeNf = (ns: string): string[] =>
  run('ip', ['netns', 'exec', ns, 'cat', ...['iptables', 'ip6tables', 'arptables'].map((f) => `/proc/sys/net/bridge/bridge-nf-call-${f}`)]).trim().split('\n');

/** A TCP round trip from namespace `ns` to ip:PORT: the reply, or 'error: ...' / 'timeout'. */
function tcp(ns: string, ip: string, timeoutMs = 5000): string {
  return run('ip', [
    'netns', 'exec', ns, process.execPath, '-e',
    `const c = require('net').connect(${PORT}, '${ip}', () => c.write('ping'));
     let got = ''; c.on('data', (d) => (got += d)); c.on('end', () => { console.log(got); process.exit(0); });
     c.on('error', (e) => { console.log('error: ' + e.code); process.exit(0); });
     setTimeout(() => { console.log('timeout'); process.exit(0); }, ${timeoutMs});`,
  ]).trim();
}

/** An echo server on 0.0.0.0:PORT in namespace `ns` that answers 'pong:<name>:<data>'. */
async function server(ns: string, name: string): Promise<void> {
  const child = spawn('ip', [
    'netns', 'exec', ns, process.execPath, '-e',
    `require('net').createServer((c) => c.on('data', (d) => c.end('pong:${name}:' + d))).listen(${PORT}, '0.0.0.0', () => console.log('listening'));
     setTimeout(() => process.exit(2), 300000).unref();`,
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout?.on('data', (d) => (out += d));
  await waitFor(`the server in ${ns} to listen`, () => out.includes('listening'), 10000);
}

/** What must not change when nothing is to be done: links (ifindex, mtu, master, flags), static FDB and permanent neighbour entries. */
function snapshot(ns: string): unknown {
  const links = ipj(['-d', 'link', 'show'], ns).map((l) => ({ name: l.ifname, index: l.ifindex, mtu: l.mtu, master: l.master, up: l.flags.includes('UP'), mac: l.address }));
  const addrs = ipj(['addr', 'show'], ns).flatMap((l) => (l.addr_info ?? []).filter((a: any) => a.family === 'inet').map((a: any) => `${l.ifname} ${a.local}/${a.prefixlen}`));
  const out = run('bridge', ['-n', ns, '-j', 'fdb', 'show']).trim();
  const entries = (out ? JSON.parse(out) : []).filter((e: any) => e.state === 'permanent' || e.state === 'static' || (e.flags ?? []).includes('self'));
  const neigh = ipj(['neigh', 'show'], ns).filter((n) => (n.state ?? []).includes('PERMANENT'));
  return { links, addrs, fdb: entries, neigh };
}

/** Routes of a namespace into the overlay subnets (there must be none outside sandboxes and tasks). */
const overlayRoutes = (ns?: string) => ipj(['route', 'show', 'table', 'all'], ns).filter((r) => /^10\.7[78]\./.test(r.dst ?? ''));

beforeAll(async () => {
  for (const ns of [H1, H2, TA, TB, TC]) addNetns(ns);
  // The underlay: a veth between the two hosts.
  const h1 = await Netlink.inNetns(netnsPath(H1));
  const h2 = await Netlink.inNetns(netnsPath(H2));
  handles.push(h1, h2);
  await h1.ensureVethPair('ul0', 'ul0', { peerNetns: netnsPath(H2) });
  for (const [h, ip] of [[h1, VTEP1], [h2, VTEP2]] as const) {
    await h.ensureAddress('ul0', `${ip}/24`);
    await h.setUp('ul0');
  }
  // Task B's namespace is held by a process, and named by its /proc path.
  const sleeper = spawn('ip', ['netns', 'exec', TB, 'sleep', '600'], { stdio: 'ignore' });
  children.push(sleeper);
  const target = statSync(netnsPath(TB));
  taskBNetns = `/proc/${sleeper.pid}/ns/net`;
  await waitFor('the sleeper to enter task B', () => {
    try {
      const s = statSync(taskBNetns);
      return s.ino === target.ino && s.dev === target.dev;
    } catch {
      return false;
    }
  });

  const log = createRootLogger(process.env.OD_TEST_LOG ?? 'silent');
  d1 = new OverlayDriver({ log, localVtep: VTEP1, hostNetns: netnsPath(H1), sandboxPrefix: S1 });
  d2 = new OverlayDriver({ log, localVtep: VTEP2, hostNetns: netnsPath(H2), sandboxPrefix: S2 });
  drivers.push(d1, d2);
});

afterAll(async () => {
  for (const d of drivers) await d.close().catch(() => undefined);
  for (const h of handles) h.close();
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const ns of netnsList()) {
    if (!ns.startsWith(P)) continue;
    try {
      run('ip', ['netns', 'del', ns]);
    } catch {
      // already gone
    }
  }
});

describe('OverlayDriver across two hosts', () => {
  const SB1 = `${S1}-4242`;
  const SB2 = `${S2}-4242`;
  const SB2C = `${S2}-4243`;

  test('reconcile makes the sandbox with bridge, VXLAN device and the remote peers; nothing in the host namespace', async () => {
    await d1.reconcile([net1([A, B])]);
    await d2.reconcile([net1([A, B]), net2([C])]);
    expect(netnsList()).toEqual(expect.arrayContaining([SB1, SB2, SB2C]));

    const br = link('br-4242', SB1);
    expect(br).toMatchObject({ mtu: 1450, linkinfo: { info_kind: 'bridge' } });
    expect(br.flags).toContain('UP');
    expect(ipj(['addr', 'show', 'dev', 'br-4242'], SB1)[0].addr_info).toEqual(expect.arrayContaining([expect.objectContaining({ local: '10.77.0.1', prefixlen: 24 })]));
    const vx = link('vx-4242', SB1);
    expect(vx).toMatchObject({ mtu: 1450, master: 'br-4242' });
    expect(vx.flags).toContain('UP');
    expect(vx.linkinfo.info_data).toMatchObject({ id: 4242, local: VTEP1, port: 4789, learning: false, proxy: true });

    // Remote B: MAC -> VTEP 2 on the VXLAN device, the MAC on the bridge's port, IP -> MAC for ARP proxy.
    const entries = fdb('vx-4242', SB1);
    expect(entries.filter((e) => e.mac === B.mac && e.flags.includes('self'))).toEqual([expect.objectContaining({ dst: VTEP2, state: 'permanent' })]);
    expect(entries.filter((e) => e.mac === B.mac && e.master === 'br-4242')).toEqual([expect.objectContaining({ state: 'static' })]);
    expect(ipj(['neigh', 'show', 'dev', 'vx-4242'], SB1)).toEqual([expect.objectContaining({ dst: B.ip, lladdr: B.mac, state: ['PERMANENT'] })]);
    // Local A needs nothing on host 1.
    expect(entries.filter((e) => e.mac === A.mac)).toEqual([]);
    // And the other way round on host 2.
    expect(fdb('vx-4242', SB2).filter((e) => e.mac === A.mac && e.flags.includes('self'))).toEqual([expect.objectContaining({ dst: VTEP1 })]);
    expect(link('vx-4243', SB2C).linkinfo.info_data).toMatchObject({ id: 4243, local: VTEP2 });
    expect(fdb('vx-4243', SB2C).filter((e) => e.flags.includes('self') && e.dst)).toEqual([]); // C is local to host 2

    // The host namespaces hold no overlay device and no route to an overlay subnet.
    for (const ns of [H1, H2]) {
      expect(ipj(['link', 'show'], ns).map((l) => l.ifname)).toEqual(['lo', 'ul0']);
      expect(overlayRoutes(ns)).toEqual([]);
    }
    expect(overlayRoutes()).toEqual([]);
    // The VXLAN devices were made in the host namespaces: their UDP sockets are there, not in the sandboxes.
    expect(run('ip', ['netns', 'exec', H1, 'ss', '-Huln', 'sport', '=', ':4789']).trim()).not.toBe('');
    expect(run('ip', ['netns', 'exec', SB1, 'ss', '-Huln', 'sport', '=', ':4789']).trim()).toBe('');
    expect(await d1.doctor([net1([A, B])])).toEqual([]);
    expect(await d2.doctor([net1([A, B]), net2([C])])).toEqual([]);
    // br_netfilter is off in the sandboxes (their bridges only switch), left as it was elsewhere.
    for (const ns of [SB1, SB2, SB2C]) expect(bridgeNf(ns)).toEqual(['0', '0', '0']);
    expect(bridgeNf(H1)).toEqual(['1', '1', '1']);
  });

  test('an agent that finds a sandbox with br_netfilter on (made by an earlier agent) turns it off', async () => {
    run('ip', ['netns', 'exec', SB1, 'sh', '-c', 'for f in iptables ip6tables arptables; do echo 1 > /proc/sys/net/bridge/bridge-nf-call-$f; done']);
    expect(bridgeNf(SB1)).toEqual(['1', '1', '1']);
    const again = new OverlayDriver({ log: createRootLogger('silent'), localVtep: VTEP1, hostNetns: netnsPath(H1), sandboxPrefix: S1 });
    drivers.push(again);
    try {
      await again.reconcile([net1([A, B])], running1());
      expect(bridgeNf(SB1)).toEqual(['0', '0', '0']);
    } finally {
      await again.close();
    }
  });

  test('attach plugs tasks in as eth0, and a TCP round trip crosses the overlay', async () => {
    await d1.attach(TASK_A, netnsPath(TA), [attachment(net1([]), A)], [net1([A, B])]);
    await d2.attach(TASK_B, taskBNetns, [attachment(net1([]), B)], [net1([A, B]), net2([C])]);
    await d2.attach(TASK_C, netnsPath(TC), [attachment(net2([]), C)], [net1([A, B]), net2([C])]);

    const eth0 = link('eth0', TA);
    expect(eth0).toMatchObject({ address: A.mac, mtu: 1450, linkinfo: { info_kind: 'veth' } });
    expect(eth0.flags).toContain('UP');
    expect(ipj(['addr', 'show', 'dev', 'eth0'], TA)[0].addr_info).toEqual(expect.arrayContaining([expect.objectContaining({ local: A.ip, prefixlen: 24 })]));
    expect(ipj(['route', 'show'], TA)).toEqual([expect.objectContaining({ dst: '10.77.0.0/24', dev: 'eth0' })]); // no default route
    const veth = overlayVethName(4242, TASK_A);
    expect(veth).toBe('v4242-a0taska7k');
    expect(link(veth, SB1)).toMatchObject({ master: 'br-4242', mtu: 1450 });
    expect(link('eth0', TB)).toMatchObject({ address: B.mac });
    expect(link('eth0', TC)).toMatchObject({ address: C.mac });

    await server(TB, 'B');
    expect(tcp(TA, B.ip)).toBe('pong:B:ping');
    await server(TA, 'A');
    expect(tcp(TB, A.ip)).toBe('pong:A:ping');
    // A learnt B's MAC from the VXLAN device's ARP proxy.
    expect(ipj(['neigh', 'show', 'dev', 'eth0'], TA)).toEqual(expect.arrayContaining([expect.objectContaining({ dst: B.ip, lladdr: B.mac })]));
  });

  test('reconcile (with the running tasks) and attach again change nothing: same ifindexes, same entries', async () => {
    const namespaces = [SB1, SB2, SB2C, TA, TB, TC];
    const before = namespaces.map(snapshot);
    await d1.reconcile([net1([A, B])], running1());
    await d2.reconcile([net1([A, B]), net2([C])], running2());
    await d1.attach(TASK_A, netnsPath(TA), [attachment(net1([]), A)], [net1([A, B])]);
    await d2.attach(TASK_B, taskBNetns, [attachment(net1([]), B)], [net1([A, B]), net2([C])]);
    expect(namespaces.map(snapshot)).toEqual(before);
  });

  test('a task of another network cannot reach the first one', async () => {
    // No route at all from C's network to A's.
    expect(tcp(TC, A.ip)).toBe('error: ENETUNREACH');
    // Even told that A and B are on its link, C gets no answer: its bridge and VXLAN device know neither.
    run('ip', ['-n', TC, 'route', 'add', '10.77.0.0/24', 'dev', 'eth0']);
    expect(tcp(TC, A.ip, 1500)).not.toMatch(/^pong/);
    expect(tcp(TC, B.ip, 1500)).not.toMatch(/^pong/);
    expect(tcp(TB, A.ip)).toBe('pong:A:ping');
  });

  test('doctor reports a deleted VXLAN device; reconcile brings it back with its entries', async () => {
    run('ip', ['-n', SB1, 'link', 'del', 'vx-4242']);
    const report = await d1.doctor([net1([A, B])]);
    expect(report).toEqual(expect.arrayContaining(['missing link vx-4242', `missing neighbour entry for ${B.ip} (-> ${B.mac}) on vx-4242`]));
    await d1.reconcile([net1([A, B])]);
    expect(await d1.doctor([net1([A, B])])).toEqual([]);
    expect(fdb('vx-4242', SB1).filter((e) => e.mac === B.mac)).toHaveLength(2);
    expect(tcp(TA, B.ip)).toBe('pong:B:ping');
  });

  test('a VXLAN device without ARP proxy is made again', async () => {
    run('ip', ['-n', SB1, 'link', 'del', 'vx-4242']);
    run('ip', ['-n', SB1, 'link', 'add', 'vx-4242', 'type', 'vxlan', 'id', '4242', 'local', VTEP1, 'dstport', '4789', 'nolearning']);
    expect(await d1.doctor([net1([A, B])])).toEqual(expect.arrayContaining(['link vx-4242 has ARP proxy off (want on)', 'link vx-4242 is not a port of br-4242']));
    await d1.reconcile([net1([A, B])]);
    expect(link('vx-4242', SB1).linkinfo.info_data).toMatchObject({ proxy: true, learning: false });
    // (Not by ifindex: a device moved into a namespace keeps its index there when it is free, as the deleted one's is.)
    expect(await d1.doctor([net1([A, B])])).toEqual([]);
    expect(tcp(TA, B.ip)).toBe('pong:B:ping');
  });

  test("a bridge deleted by hand is made again, and the running tasks' veths join it again", async () => {
    const veth = overlayVethName(4242, TASK_A);
    run('ip', ['-n', SB1, 'link', 'del', 'br-4242']);
    expect(link(veth, SB1).master).toBeUndefined();
    await d1.reconcile([net1([A, B])], running1());
    expect(link(veth, SB1)).toMatchObject({ master: 'br-4242' });
    expect(await d1.doctor([net1([A, B])])).toEqual([]);
    expect(tcp(TA, B.ip)).toBe('pong:B:ping');
    expect(tcp(TB, A.ip)).toBe('pong:A:ping');
  });

  test('a sandbox namespace deleted behind the driver is made again, and its running tasks plugged in again', async () => {
    const eth0 = link('eth0', TA);
    // A process keeps the old sandbox alive, and A's old eth0 with it: reconcile must replace that eth0.
    const holder = spawn('ip', ['netns', 'exec', SB1, 'sleep', '600'], { stdio: 'ignore' });
    children.push(holder);
    await waitFor('the holder to enter the sandbox', () => {
      try {
        return statSync(`/proc/${holder.pid}/ns/net`).ino === statSync(netnsPath(SB1)).ino;
      } catch {
        return false;
      }
    });
    run('ip', ['netns', 'del', SB1]);
    expect(await d1.doctor([net1([A, B])])).toEqual(expect.arrayContaining([`missing sandbox namespace ${SB1} (VNI 4242)`, 'missing link br-4242']));
    // A task that exited meanwhile (its namespace is gone) is skipped, not an error.
    const gone: RunningTask = { taskId: 'g0taskg7k2m9q4x1z8c3v6b5n', netns: '/proc/2147483646/ns/net', attachments: [attachment(net1([]), { ...A, ip: '10.77.0.9' })] };
    // No attach: reconcile, given the running tasks, plugs A into the new sandbox (A's old eth0 went with the old one, or is going).
    await d1.reconcile([net1([A, B])], [...running1(), gone]);
    expect(await d1.doctor([net1([A, B])])).toEqual([]);
    expect(link(overlayVethName(4242, TASK_A), SB1)).toMatchObject({ master: 'br-4242', mtu: 1450 });
    expect(link('eth0', TA)).toMatchObject({ address: A.mac, mtu: 1450 });
    expect(link('eth0', TA).ifindex).not.toBe(eth0.ifindex);
    expect(ipj(['addr', 'show', 'dev', 'eth0'], TA)[0].addr_info).toEqual(expect.arrayContaining([expect.objectContaining({ local: A.ip, prefixlen: 24 })]));
    expect(link(overlayVethName(4242, gone.taskId), SB1)).toBeUndefined();
    expect(tcp(TA, B.ip)).toBe('pong:B:ping');
    expect(tcp(TB, A.ip)).toBe('pong:A:ping');
    holder.kill('SIGKILL');
  });

  test('a peer gone from the view is gone from the kernel', async () => {
    await d1.reconcile([net1([A])]);
    expect(fdb('vx-4242', SB1).filter((e) => e.mac === B.mac)).toEqual([]);
    expect(ipj(['neigh', 'show', 'dev', 'vx-4242'], SB1).filter((n) => n.dst === B.ip)).toEqual([]);
    expect(await d1.doctor([net1([A])])).toEqual([]);
    expect(await d1.doctor([net1([A, B])])).toEqual(expect.arrayContaining([`missing FDB entry for ${B.ip} (${B.mac} -> ${VTEP2}) on vx-4242`]));
  });

  test('detach removes the task veth', async () => {
    const veth = overlayVethName(4242, TASK_A);
    expect(link(veth, SB1)).toBeDefined();
    await d1.detach(TASK_A);
    await d1.detach(TASK_A);
    expect(link(veth, SB1)).toBeUndefined();
    expect(link('eth0', TA)).toBeUndefined();
  });

  test('reconcile with no networks removes the sandboxes and everything in them, leftovers included', async () => {
    // Leftovers of a crash: a VXLAN device never moved out of the host namespace, a sandbox file that is no namespace.
    run('ip', ['-n', H1, 'link', 'add', 'vx-4250', 'type', 'vxlan', 'id', '4250', 'local', VTEP1, 'dstport', '4789', 'nolearning']);
    run('touch', [netnsPath(`${S1}-4250`)]);
    expect(await d1.doctor([])).toEqual(
      expect.arrayContaining([
        `stale sandbox namespace ${SB1} (VNI 4242 is not wanted on this host)`,
        `stale sandbox namespace ${S1}-4250 (VNI 4250 is not wanted on this host)`,
        'stale link vx-4250 in the host network namespace (VNI 4250)',
      ]),
    );
    await d1.reconcile([]);
    await d2.reconcile([]);
    expect(netnsList().filter((n) => n.startsWith(S1) || n.startsWith(S2))).toEqual([]);
    for (const ns of [H1, H2]) expect(ipj(['link', 'show'], ns).map((l) => l.ifname)).toEqual(['lo', 'ul0']);
    await waitFor("the tasks' interfaces to go with the sandboxes", () => !link('eth0', TB) && !link('eth0', TC));
    expect(await d1.doctor([])).toEqual([]);
    expect(await d2.doctor([])).toEqual([]);
    await d2.reconcile([]);
  });
});
