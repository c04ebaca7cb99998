/**
 * The gateway bridge of BridgeDriver (as docker_gwbridge) against the real kernel, inside the test
 * runner's private namespaces (run through test/run.sh). The "host" is a network namespace of its
 * own; tasks are bare namespaces with a veth `eth0` standing for their overlay interface; an
 * "outside" namespace is joined to the host by a veth (198.51.100.0/24) with no route back to
 * 172.18.0.0/16, so a task reaches it only through masquerade. Removed in afterAll, also on failure.
 */
import { BridgeDriver, needsGatewayBridge } from '../../agent/network/bridge-driver';
import { createRootLogger } from '../../services/common/logger';
import type { NetworkAttachment } from '../../services/gen/swarmlet/v1/types';
import { addNetns, deleteNetns, ipj, killServers, netnsPath, run, server as echoServer, tcp as tcpTo, waitFor } from '../support/netns';

const tcp = (ns: string, ip: string, timeoutMs?: number) => tcpTo(ns, ip, PORT, timeoutMs);
const server = (ns: string, name: string) => echoServer(ns, name, PORT);

const P = `gw${(process.pid % 46656).toString(36)}`;
const HOST = `${P}-host`;
const OUT = `${P}-out`;
const TA = `${P}-ta`;
const TB = `${P}-tb`;
const TC = `${P}-tc`;
const NAMESPACES = [HOST, OUT, TA, TB, TC];
const HOST_UPLINK = '198.51.100.1';
const OUTSIDE = '198.51.100.2';
const PORT = 7000 + (process.pid % 1000);
const PREFIX = `g${(process.pid % 1296).toString(36)}`;

const TASK_A = 'a0taska7k2m9q4x1z8c3v6b5n';
const TASK_B = 'b0taskb7k2m9q4x1z8c3v6b5n';
const TASK_C = 'c0taskc7k2m9q4x1z8c3v6b5n';

function overlay(address: string, internal = false): NetworkAttachment {
  return { networkId: 'ovl0net1', networkName: 'ovl', driver: 'overlay', address, mac: '', gateway: '', vni: 4096, internal, options: {} };
}

const log = createRootLogger(process.env.BD_TEST_LOG ?? 'silent');
let driver: BridgeDriver;

const addressOf = (ns: string, dev: string): string | undefined =>
  ipj(['-4', 'addr', 'show', 'dev', dev], ns)[0]?.addr_info?.map((a: any) => `${a.local}/${a.prefixlen}`)[0];

beforeAll(async () => {
  for (const ns of NAMESPACES) addNetns(ns);
  run('ip', ['-n', HOST, 'link', 'add', `${P}up`, 'type', 'veth', 'peer', 'name', `${P}dn`, 'netns', OUT]);
  run('ip', ['-n', HOST, 'addr', 'add', `${HOST_UPLINK}/24`, 'dev', `${P}up`]);
  run('ip', ['-n', HOST, 'link', 'set', `${P}up`, 'up']);
  run('ip', ['-n', OUT, 'addr', 'add', `${OUTSIDE}/24`, 'dev', `${P}dn`]);
  run('ip', ['-n', OUT, 'link', 'set', `${P}dn`, 'up']);
  // The tasks' "overlay" interfaces: eth0 with an overlay address and no way out.
  for (const [ns, addr] of [[TA, '10.77.0.2/24'], [TB, '10.77.0.3/24'], [TC, '10.77.0.4/24']]) {
    run('ip', ['-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'ovl0']);
    run('ip', ['-n', ns, 'addr', 'add', addr, 'dev', 'eth0']);
    run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
  }
  driver = new BridgeDriver({ log, hostNetns: netnsPath(HOST), namePrefix: PREFIX });
}, 30000);

afterAll(async () => {
  killServers();
  await driver?.close().catch(() => undefined);
  deleteNetns(NAMESPACES);
}, 30000);

test('only tasks on overlays alone (one of them not internal) need the gateway bridge', () => {
  expect(needsGatewayBridge([overlay('10.77.0.2/24')])).toBe(true);
  expect(needsGatewayBridge([overlay('10.77.0.2/24', true), overlay('10.78.0.2/24')])).toBe(true);
  expect(needsGatewayBridge([overlay('10.77.0.2/24', true)])).toBe(false);
  expect(needsGatewayBridge([overlay('10.77.0.2/24'), { ...overlay('10.91.0.2/24'), driver: 'bridge' }])).toBe(false);
  expect(needsGatewayBridge([])).toBe(false);
});

test('an overlay task gets eth1 on the gateway bridge with the default route, and reaches the outside masqueraded', async () => {
  await driver.reconcile([], { gateway: true });
  await driver.attachGateway(TASK_A, netnsPath(TA), [overlay('10.77.0.2/24')]);
  await driver.attachGateway(TASK_B, netnsPath(TB), [overlay('10.77.0.3/24')]);
  // Idempotent: the same address again.
  await driver.attachGateway(TASK_A, netnsPath(TA), [overlay('10.77.0.2/24')]);

  const gw = driver.gatewayBridgeName();
  expect(ipj(['-d', 'link', 'show', 'dev', gw], HOST)[0].linkinfo.info_kind).toBe('bridge');
  expect(addressOf(HOST, gw)).toBe('172.18.0.1/16');
  expect(addressOf(TA, 'eth1')).toBe('172.18.0.2/16');
  expect(addressOf(TB, 'eth1')).toBe('172.18.0.3/16');
  expect(ipj(['link', 'show', 'dev', 'eth1'], TA)[0].address).toBe('02:42:ac:12:00:02');
  expect(addressOf(TA, 'eth0')).toBe('10.77.0.2/24');
  expect(ipj(['route', 'show', 'default'], TA)[0]).toMatchObject({ gateway: '172.18.0.1', dev: 'eth1' });

  await server(OUT, 'out');
  expect(tcp(TA, OUTSIDE)).toBe(`pong:out:${HOST_UPLINK}`);
  expect(tcp(TB, OUTSIDE)).toBe(`pong:out:${HOST_UPLINK}`);
}, 60000);

test('tasks on the gateway bridge cannot reach each other through it', async () => {
  // Its ports are isolated from each other (without br_netfilter the nft rules never see bridged traffic).
  for (const t of [TASK_A, TASK_B]) {
    expect(ipj(['-d', 'link', 'show', 'dev', driver.vethName(t, 1)], HOST)[0].linkinfo.info_slave_data.isolated).toBe(true);
  }
  expect(run('ip', ['netns', 'exec', HOST, 'nft', 'list', 'table', 'inet', 'swarmlet-bridge'])).toContain(`iifname "${driver.gatewayBridgeName()}" oifname "${driver.gatewayBridgeName()}" ct status ! dnat drop`);
  await server(TB, 'b');
  expect(tcp(TA, '172.18.0.3', 1500)).not.toMatch(/^pong/);
  // Not through the gateway either (routed back into the bridge).
  run('ip', ['-n', TA, 'route', 'add', '172.18.0.3/32', 'via', '172.18.0.1']);
  try {
    expect(tcp(TA, '172.18.0.3', 1500)).not.toMatch(/^pong/);
  } finally {
    run('ip', ['-n', TA, 'route', 'del', '172.18.0.3/32', 'via', '172.18.0.1']);
  }
  // The host itself answers them (the gateway), and the outside still does.
  expect(tcp(TA, OUTSIDE)).toBe(`pong:out:${HOST_UPLINK}`);
}, 30000);

test('after an agent restart the addresses in use are read back from the kernel; unneeded, the bridge goes', async () => {
  await driver.close();
  driver = new BridgeDriver({ log, hostNetns: netnsPath(HOST), namePrefix: PREFIX });
  await driver.attachGateway(TASK_C, netnsPath(TC), [overlay('10.77.0.4/24')]);
  expect(addressOf(TC, 'eth1')).toBe('172.18.0.4/16');
  await driver.attachGateway(TASK_A, netnsPath(TA), [overlay('10.77.0.2/24')]);
  expect(addressOf(TA, 'eth1')).toBe('172.18.0.2/16');

  // Detached, B's address is free again; the gateway bridge stays while it is wanted.
  await driver.detach(TASK_B);
  expect(ipj(['link', 'show', 'dev', 'eth1'], TB)).toHaveLength(0);
  await driver.reconcile([], { gateway: true });
  await driver.attachGateway(TASK_B, netnsPath(TB), [overlay('10.77.0.3/24')]);
  expect(addressOf(TB, 'eth1')).toBe('172.18.0.3/16');
  expect(tcp(TC, OUTSIDE)).toBe(`pong:out:${HOST_UPLINK}`);
  expect(run('ip', ['netns', 'exec', HOST, 'nft', 'list', 'table', 'inet', 'swarmlet-bridge'])).toContain('172.18.0.0/16');

  await driver.reconcile([]);
  expect(ipj(['link', 'show', 'dev', driver.gatewayBridgeName()], HOST)).toHaveLength(0);
  expect(ipj(['link', 'show', 'dev', 'eth1'], TA)).toHaveLength(0);
  expect(() => run('ip', ['netns', 'exec', HOST, 'nft', 'list', 'table', 'inet', 'swarmlet-bridge'])).toThrow();
}, 60000);
