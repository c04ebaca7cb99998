/**
 * MacvlanDriver against the real kernel, inside the test runner's private namespaces (run through
 * test/run.sh). The "host" is a network namespace of its own (given to the driver by path) whose
 * parent interface is one end of a veth to an "outside" namespace (the LAN: 198.51.100.0/24, the
 * outside end at .1 as the gateway). Tasks are bare namespaces that get macvlan links on that
 * parent with addresses in the LAN. Everything carries a prefix unique to this run and is removed
 * in afterAll, also on failure.
 */
import { MacvlanDriver } from '../../agent/network/macvlan-driver';
import { SwarmletError } from '../../services/common/errors';
import { createRootLogger } from '../../services/common/logger';
import type { NetworkAttachment } from '../../services/gen/swarmlet/v1/types';
import { addNetns, deleteNetns, ipj, killServers, netnsPath, run, server as echoServer, tcp as tcpTo } from '../support/netns';

const tcp = (ns: string, ip: string, timeoutMs?: number) => tcpTo(ns, ip, PORT, timeoutMs);
const server = (ns: string, name: string) => echoServer(ns, name, PORT);

const P = `md${(process.pid % 46656).toString(36)}`;
const HOST = `${P}-host`;
const OUT = `${P}-out`;
const TA = `${P}-ta`;
const TB = `${P}-tb`;
const TC = `${P}-tc`;
const NAMESPACES = [HOST, OUT, TA, TB, TC];
const PARENT = `${P}par`;
const GATEWAY = '198.51.100.1';
const PORT = 7000 + (process.pid % 1000);

const TASK_A = 'a0taska7k2m9q4x1z8c3v6b5n';
const TASK_B = 'b0taskb7k2m9q4x1z8c3v6b5n';
const TASK_C = 'c0taskc7k2m9q4x1z8c3v6b5n';

function attachment(address: string, mac: string, parent = PARENT, driver = 'macvlan'): NetworkAttachment {
  return { networkId: 'lan0net1', networkName: 'lan', driver, address, mac, gateway: GATEWAY, vni: 0, internal: false, options: { parent } };
}
const A = attachment('198.51.100.11/24', '02:42:c6:33:64:0b');
const B = attachment('198.51.100.12/24', '02:42:c6:33:64:0c');

let driver: MacvlanDriver;

beforeAll(() => {
  for (const ns of NAMESPACES) addNetns(ns);
  run('ip', ['-n', HOST, 'link', 'add', PARENT, 'type', 'veth', 'peer', 'name', `${P}lan`, 'netns', OUT]);
  run('ip', ['-n', HOST, 'link', 'set', PARENT, 'up']);
  run('ip', ['-n', OUT, 'addr', 'add', `${GATEWAY}/24`, 'dev', `${P}lan`]);
  run('ip', ['-n', OUT, 'link', 'set', `${P}lan`, 'up']);
  driver = new MacvlanDriver({ log: createRootLogger(process.env.MD_TEST_LOG ?? 'silent'), hostNetns: netnsPath(HOST) });
}, 30000);

afterAll(async () => {
  killServers();
  await driver?.close().catch(() => undefined);
  deleteNetns(NAMESPACES);
}, 30000);

/** The links of the host namespace other than lo and the parent: none should be left there. */
const strayHostLinks = () => ipj(['link', 'show'], HOST).map((l: any) => l.ifname).filter((n: string) => n !== 'lo' && n !== PARENT);

test('tasks get a macvlan eth0 on the parent, reach the LAN and each other', async () => {
  await driver.attach(TASK_A, netnsPath(TA), [A]);
  await driver.attach(TASK_B, netnsPath(TB), [B]);
  // Idempotent.
  await driver.attach(TASK_A, netnsPath(TA), [A]);

  for (const [ns, a] of [[TA, A], [TB, B]] as const) {
    const eth0 = ipj(['-d', 'addr', 'show', 'dev', 'eth0'], ns)[0];
    expect(eth0.linkinfo.info_kind).toBe('macvlan');
    expect(eth0.linkinfo.info_data.mode).toBe('bridge');
    expect(eth0.address).toBe(a.mac);
    expect(eth0.flags).toContain('UP');
    expect(eth0.addr_info.filter((x: any) => x.family === 'inet').map((x: any) => `${x.local}/${x.prefixlen}`)).toEqual([a.address]);
    expect(ipj(['route', 'show', 'default'], ns)[0].gateway).toBe(GATEWAY);
    expect(ipj(['link', 'show'], ns).map((l: any) => l.ifname).sort()).toEqual(['eth0', 'lo']);
  }
  expect(strayHostLinks()).toEqual([]);

  await server(OUT, 'out');
  await server(TA, 'a');
  await server(TB, 'b');
  expect(tcp(TA, GATEWAY)).toBe('pong:out:198.51.100.11');
  expect(tcp(TB, GATEWAY)).toBe('pong:out:198.51.100.12');
  expect(tcp(TA, '198.51.100.12')).toBe('pong:b:198.51.100.11');
  expect(tcp(TB, '198.51.100.11')).toBe('pong:a:198.51.100.12');
  expect(tcp(OUT, '198.51.100.11')).toBe('pong:a:198.51.100.1');
}, 60000);

test('a macvlan attachment that is not the first becomes eth<i> without the default route', async () => {
  const other = attachment('10.93.0.2/24', '02:42:0a:5d:00:02', PARENT, 'overlay');
  const C = attachment('198.51.100.13/24', '02:42:c6:33:64:0d');
  await driver.attach(TASK_C, netnsPath(TC), [other, C]);
  expect(ipj(['link', 'show', 'dev', 'eth0'], TC)).toHaveLength(0);
  const eth1 = ipj(['-d', 'addr', 'show', 'dev', 'eth1'], TC)[0];
  expect(eth1.linkinfo.info_kind).toBe('macvlan');
  expect(eth1.address).toBe(C.mac);
  expect(ipj(['route', 'show', 'default'], TC)).toHaveLength(0);
  expect(tcp(TC, '198.51.100.11')).toBe('pong:a:198.51.100.13');
  await driver.detach(TASK_C);
  expect(strayHostLinks()).toEqual([]);
}, 30000);

test('a parent missing on the host is a clear InvalidArgument, and nothing is left behind', async () => {
  const bad = attachment('198.51.100.14/24', '02:42:c6:33:64:0e', 'nosuch0');
  const err = await driver.attach(TASK_C, netnsPath(TC), [bad]).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SwarmletError);
  expect([(err as SwarmletError).kind, (err as SwarmletError).message]).toEqual(['InvalidArgument', 'parent interface nosuch0 not found on this host']);
  expect(strayHostLinks()).toEqual([]);
  // The driver still works after a refusal.
  await driver.attach(TASK_A, netnsPath(TA), [A]);
  expect(tcp(TA, '198.51.100.12')).toBe('pong:b:198.51.100.11');
}, 30000);
