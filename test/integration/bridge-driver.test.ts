/**
 * BridgeDriver against the real kernel, inside the test runner's private namespaces (run through
 * test/run.sh). The "host" is a network namespace of its own (given to the driver by path); tasks
 * are bare namespaces; an "outside" namespace is joined to the host by a veth (198.51.100.0/24),
 * with no route back to the bridge subnets, so a task reaches it only through masquerade.
 * Everything carries a prefix unique to this run and is removed in afterAll, also on failure.
 */
import { BridgeDriver, BridgeNetwork, bridgeNetworksOf, subnetOfAddress } from '../../agent/network/bridge-driver';
import { createRootLogger } from '../../services/common/logger';
import type { NetworkAttachment } from '../../services/gen/swarmlet/v1/types';
import { addNetns, deleteNetns, ipj, killServers, netnsPath, run, server as echoServer, tcp as tcpTo, waitFor } from '../support/netns';

const tcp = (ns: string, ip: string, timeoutMs?: number) => tcpTo(ns, ip, PORT, timeoutMs);
const server = (ns: string, name: string) => echoServer(ns, name, PORT);

const P = `bd${(process.pid % 46656).toString(36)}`;
const HOST = `${P}-host`;
const OUT = `${P}-out`;
const TA = `${P}-ta`;
const TB = `${P}-tb`;
const TC = `${P}-tc`;
const NAMESPACES = [HOST, OUT, TA, TB, TC];
const HOST_UPLINK = '198.51.100.1';
const OUTSIDE = '198.51.100.2';
const PORT = 7000 + (process.pid % 1000);
const PREFIX = `t${(process.pid % 1296).toString(36)}`;

const TASK_A = 'a0taska7k2m9q4x1z8c3v6b5n';
const TASK_B = 'b0taskb7k2m9q4x1z8c3v6b5n';
const TASK_C = 'c0taskc7k2m9q4x1z8c3v6b5n';

function attachment(networkId: string, address: string, gateway: string, mac: string): NetworkAttachment {
  return { networkId, networkName: networkId, driver: 'bridge', address, mac, gateway, vni: 0, internal: false, options: {} };
}
const A = attachment('front0net1', '10.91.0.2/24', '10.91.0.1', '02:42:0a:5b:00:02');
const B = attachment('front0net1', '10.91.0.3/24', '10.91.0.1', '02:42:0a:5b:00:03');
const C = attachment('back00net2', '10.92.0.2/24', '10.92.0.1', '02:42:0a:5c:00:02');

let driver: BridgeDriver;
let front: BridgeNetwork;
let back: BridgeNetwork;

beforeAll(async () => {
  for (const ns of NAMESPACES) addNetns(ns);
  run('ip', ['-n', HOST, 'link', 'add', `${P}up`, 'type', 'veth', 'peer', 'name', `${P}dn`, 'netns', OUT]);
  run('ip', ['-n', HOST, 'addr', 'add', `${HOST_UPLINK}/24`, 'dev', `${P}up`]);
  run('ip', ['-n', HOST, 'link', 'set', `${P}up`, 'up']);
  run('ip', ['-n', OUT, 'addr', 'add', `${OUTSIDE}/24`, 'dev', `${P}dn`]);
  run('ip', ['-n', OUT, 'link', 'set', `${P}dn`, 'up']);
  [front, back] = bridgeNetworksOf([[A], [B], [C]]);
  driver = new BridgeDriver({ log: createRootLogger(process.env.BD_TEST_LOG ?? 'silent'), hostNetns: netnsPath(HOST), namePrefix: PREFIX });
}, 30000);

afterAll(async () => {
  killServers();
  await driver?.close().catch(() => undefined);
  deleteNetns(NAMESPACES);
}, 30000);

test('networks are derived from attachments', () => {
  expect(subnetOfAddress('10.91.0.2/24')).toBe('10.91.0.0/24');
  expect(front).toEqual({ networkId: 'front0net1', subnet: '10.91.0.0/24', gateway: '10.91.0.1', internal: false, mtu: 0 });
  expect(back.subnet).toBe('10.92.0.0/24');
});

test('tasks of one bridge network reach each other; a task of another one cannot', async () => {
  await driver.reconcile([front, back]);
  await driver.attach(TASK_A, netnsPath(TA), [A], [front, back]);
  await driver.attach(TASK_B, netnsPath(TB), [B], [front]);
  await driver.attach(TASK_C, netnsPath(TC), [C], [back]);
  // Idempotent.
  await driver.attach(TASK_A, netnsPath(TA), [A], [front, back]);

  const br = ipj(['-d', 'link', 'show', 'dev', driver.bridgeName(front.networkId)], HOST)[0];
  expect(br.linkinfo.info_kind).toBe('bridge');
  expect(ipj(['addr', 'show', 'dev', br.ifname], HOST)[0].addr_info.map((a: any) => `${a.local}/${a.prefixlen}`)).toContain('10.91.0.1/24');
  const eth0 = ipj(['addr', 'show', 'dev', 'eth0'], TA)[0];
  expect(eth0.address).toBe(A.mac);
  expect(ipj(['route', 'show', 'default'], TA)[0].gateway).toBe('10.91.0.1');

  await server(TB, 'b');
  await server(TC, 'c');
  expect(tcp(TA, '10.91.0.3')).toBe('pong:b:10.91.0.2');
  expect(tcp(TA, '10.92.0.2', 1500)).not.toMatch(/^pong/);
  expect(tcp(TC, '10.91.0.3', 1500)).not.toMatch(/^pong/);
}, 60000);

test('a task reaches the outside through masquerade, with the host address as source', async () => {
  await server(OUT, 'out');
  expect(tcp(TA, OUTSIDE)).toBe(`pong:out:${HOST_UPLINK}`);
  expect(tcp(TC, OUTSIDE)).toBe(`pong:out:${HOST_UPLINK}`);
  expect(run('ip', ['netns', 'exec', HOST, 'cat', '/proc/sys/net/ipv4/ip_forward']).trim()).toBe('1');
}, 30000);

test('a second network as eth1 on a task that runs (the others left as they are); detach of one index takes that one alone', async () => {
  const A2 = attachment('back00net2', '10.92.0.9/24', '10.92.0.1', '02:42:0a:5c:00:09');
  await driver.attach(TASK_A, netnsPath(TA), [{ ...A, driver: 'none' }, A2], [back]);
  expect(ipj(['addr', 'show', 'dev', 'eth1'], TA)[0].addr_info.map((a: any) => `${a.local}/${a.prefixlen}`)).toContain('10.92.0.9/24');
  expect(ipj(['route', 'show', 'default'], TA)[0].gateway).toBe('10.91.0.1');
  expect(tcp(TA, '10.92.0.2')).toBe('pong:c:10.92.0.9');
  await driver.detach(TASK_A, 1);
  expect(ipj(['link', 'show', 'dev', 'eth1'], TA)).toHaveLength(0);
  expect(ipj(['link', 'show', 'dev', driver.vethName(TASK_A, 0)], HOST)).toHaveLength(1);
  expect(tcp(TA, '10.91.0.3')).toBe('pong:b:10.91.0.2');
}, 30000);

test('detach removes the task\'s veth; reconcile removes bridges of networks no longer wanted', async () => {
  const veth = driver.vethName(TASK_C, 0);
  expect(ipj(['link', 'show', 'dev', veth], HOST)).toHaveLength(1);
  await driver.detach(TASK_C);
  expect(ipj(['link', 'show', 'dev', veth], HOST)).toHaveLength(0);
  expect(ipj(['link', 'show', 'dev', 'eth0'], TC)).toHaveLength(0);
  await driver.reconcile([front]);
  expect(ipj(['link', 'show', 'dev', driver.bridgeName(back.networkId)], HOST)).toHaveLength(0);
  expect(ipj(['link', 'show', 'dev', driver.bridgeName(front.networkId)], HOST)).toHaveLength(1);
  const rules = run('ip', ['netns', 'exec', HOST, 'nft', 'list', 'table', 'inet', 'swarmlet-bridge']);
  expect(rules).toContain('10.91.0.0/24');
  expect(rules).not.toContain('10.92.0.0/24');
  // The others are untouched.
  expect(tcp(TA, '10.91.0.3')).toBe('pong:b:10.91.0.2');
}, 30000);
