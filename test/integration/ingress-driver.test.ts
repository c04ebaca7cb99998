/**
 * The routing mesh on one node against the real kernel, inside the test runner's private
 * namespaces (test/run.sh): the ingress sandbox (IngressSandbox, plugged in by the real
 * OverlayDriver and BridgeDriver) and the host's `ip swarmlet-publish` table. The "host" is a
 * namespace of its own with an uplink veth to an "outside" client namespace (198.51.100.0/24);
 * two backend tasks are plugged into the ingress overlay (10.255.0.0/16) on this same host, a third
 * task only into the gateway bridge (host-mode publishing). Servers answer their name and the
 * address they saw. Everything carries a unique prefix and is removed in afterAll, also on failure.
 */
import { spawn } from 'node:child_process';
import { BridgeDriver } from '../../agent/network/bridge-driver';
import { INGRESS_IF, IngressSandbox } from '../../agent/network/ingress-driver';
import { NftTables, listNftTable } from '../../agent/network/lb-driver';
import { enableForwarding } from '../../agent/network/netns-run';
import type { RunningTask } from '../../agent/network/driver';
import { OverlayDriver } from '../../agent/network/overlay-driver';
import { INGRESS_NFT_TABLE, PUBLISH_NFT_TABLE, PublishRule, renderPublishNft } from '../../agent/network/plans/lb-nft';
import { createRootLogger } from '../../services/common/logger';
import type { IngressConfig, OverlayNetwork } from '../../services/gen/swarmlet/v1/dispatcher';
import { NetworkAttachment, PortProtocol } from '../../services/gen/swarmlet/v1/types';
import { addNetns, deleteNetns, ipj, killServers, netnsPath, run, server, waitFor } from '../support/netns';
import { byResponder, probeTcp } from '../support/tcp-probe';
import { uniqueSuffix } from '../support/unique';

const U = uniqueSuffix();
const P = `in${U}`;
const HOST = `${P}-host`;
const OUT = `${P}-out`;
const T1 = `${P}-t1`;
const T2 = `${P}-t2`;
const T3 = `${P}-t3`;
const NAMESPACES = [HOST, OUT, T1, T2, T3];
/** Sandbox prefix: the overlay sandbox is <S>-<vni>, the ingress sandbox <S>-ingress. */
const S = `${P}s`;
const HOST_IP = '198.51.100.1';
const OUT_IP = '198.51.100.2';
const VNI = 4600;
const TARGET = 7200;
const UDP_TARGET = 7201;
const PUBLISHED = 8080;
const UDP_PUBLISHED = 8053;
const HOST_MODE = 9000;

const log = createRootLogger(process.env.INGRESS_TEST_LOG ?? 'silent');
const hostNetns = netnsPath(HOST);
const ovl: OverlayNetwork = { networkId: 'net-ingress', name: 'ingress', vni: VNI, subnet: '10.255.0.0/16', gateway: '10.255.0.1', mtu: 0, peers: [] };
const att = (ip: string, last: number): NetworkAttachment => ({
  networkId: ovl.networkId, networkName: 'ingress', driver: 'overlay', address: `${ip}/16`, mac: `02:42:0a:ff:00:${last.toString(16).padStart(2, '0')}`,
  gateway: ovl.gateway, vni: VNI, internal: false, options: {},
});
const SANDBOX_IP = '10.255.0.2';
const B1 = '10.255.0.5';
const B2 = '10.255.0.6';
const backends: RunningTask[] = [
  { taskId: 'task1aaaaaaaaaaaaaaaaaaaa', netns: netnsPath(T1), attachments: [att(B1, 5)] },
  { taskId: 'task2bbbbbbbbbbbbbbbbbbbb', netns: netnsPath(T2), attachments: [att(B2, 6)] },
];
const TASK3 = 'task3cccccccccccccccccccc';
/** Task 3 is on an overlay the test never makes: all it gets is the gateway bridge. */
const task3Attachments = [{ ...att('10.66.0.9', 9), networkId: 'net-other', vni: 4601 }];

function ingress(b: { tcp: string[]; udp: string[] }): IngressConfig {
  return {
    networkId: ovl.networkId,
    vni: VNI,
    endpoint: att(SANDBOX_IP, 2),
    ports: [
      { protocol: PortProtocol.PORT_PROTOCOL_TCP, publishedPort: PUBLISHED, targetPort: TARGET, serviceId: 's-web', serviceName: 'web', backends: b.tcp },
      { protocol: PortProtocol.PORT_PROTOCOL_UDP, publishedPort: UDP_PUBLISHED, targetPort: UDP_TARGET, serviceId: 's-dns', serviceName: 'dns', backends: b.udp },
    ],
  };
}

let overlay: OverlayDriver;
let bridge: BridgeDriver;
let tables: NftTables;
let sandbox: IngressSandbox;
let task3Address: string | undefined;
const udpServers: ReturnType<typeof spawn>[] = [];

/** What NetworkController does on each pass, for the ingress part: sandbox, overlays, gateway bridge, tables. */
async function converge(cfg: IngressConfig, verify = false): Promise<string | undefined> {
  await sandbox.prepare(cfg, verify);
  await overlay.reconcile([ovl], [sandbox.asTask(cfg)!, ...backends]);
  await bridge.reconcile([], { gateway: true });
  const address = await sandbox.ensure(cfg, verify);
  const rules: PublishRule[] = [
    { protocol: 'tcp', publishedPort: PUBLISHED, address: address!, targetPort: 0 },
    { protocol: 'udp', publishedPort: UDP_PUBLISHED, address: address!, targetPort: 0 },
  ];
  if (task3Address) rules.push({ protocol: 'tcp', publishedPort: HOST_MODE, address: task3Address, targetPort: TARGET });
  await tables.ensure('host', hostNetns, PUBLISH_NFT_TABLE, renderPublishNft(rules), verify);
  await enableForwarding(hostNetns);
  return address;
}

async function udpServer(ns: string, name: string): Promise<void> {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e',
    `const s = require('dgram').createSocket('udp4'); s.on('message', (m, r) => s.send('udp:${name}:' + r.address, r.port, r.address));
     s.bind(${UDP_TARGET}, '0.0.0.0', () => console.log('listening')); setTimeout(() => process.exit(2), 300000).unref();`], { stdio: ['ignore', 'pipe', 'pipe'] });
  udpServers.push(child);
  let out = '';
  child.stdout?.on('data', (d) => (out += d));
  await waitFor(`the UDP server in ${ns}`, () => out.includes('listening'), 10000);
}

/** One UDP round trip from `ns`: the reply, or 'timeout'. */
function udp(ns: string, ip: string, port: number): string {
  return run('ip', ['netns', 'exec', ns, process.execPath, '-e',
    `const s = require('dgram').createSocket('udp4'); s.on('message', (m) => { console.log(String(m)); process.exit(0); });
     s.send('ping', ${port}, '${ip}'); setTimeout(() => { console.log('timeout'); process.exit(0); }, 2000);`]).trim();
}

beforeAll(async () => {
  for (const ns of NAMESPACES) addNetns(ns);
  run('ip', ['-n', HOST, 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'dn0', 'netns', OUT]);
  run('ip', ['-n', HOST, 'addr', 'add', `${HOST_IP}/24`, 'dev', 'up0']);
  run('ip', ['-n', HOST, 'link', 'set', 'up0', 'up']);
  run('ip', ['-n', OUT, 'addr', 'add', `${OUT_IP}/24`, 'dev', 'dn0']);
  run('ip', ['-n', OUT, 'link', 'set', 'dn0', 'up']);
  overlay = new OverlayDriver({ log, localVtep: HOST_IP, hostNetns, sandboxPrefix: S });
  bridge = new BridgeDriver({ log, hostNetns, namePrefix: `g${U}` });
  tables = new NftTables({ log });
  sandbox = new IngressSandbox({ log, netnsPrefix: S, overlay, bridge, tables });
  for (const t of backends) await overlay.attach(t.taskId, t.netns, t.attachments, [ovl]);
  await Promise.all([server(T1, 'b1', TARGET), server(T2, 'b2', TARGET), server(T3, 't3', TARGET), udpServer(T1, 'b1'), udpServer(T2, 'b2')]);
}, 60000);

afterAll(async () => {
  killServers();
  for (const c of udpServers) c.kill('SIGKILL');
  await overlay?.close().catch(() => undefined);
  await bridge?.close().catch(() => undefined);
  deleteNetns([...NAMESPACES, `${S}-ingress`, `${S}-${VNI}`]);
}, 30000);

test('a connection to the host address on a published port reaches every backend through the ingress sandbox', async () => {
  const address = await converge(ingress({ tcp: [B1, B2], udp: [B1, B2] }));
  expect(address).toMatch(/^172\.18\.0\.\d+$/);
  expect(ipj(['-4', 'addr', 'show', 'dev', INGRESS_IF], sandbox.name)[0].addr_info[0].local).toBe(SANDBOX_IP);

  const counts = await probeTcp(netnsPath(OUT), HOST_IP, PUBLISHED, 60);
  expect(Object.keys(byResponder(counts)).sort()).toEqual(['b1', 'b2']);
  // Masqueraded out of the sandbox: the backends see its ingress address, so replies go back through it.
  expect(Object.keys(counts).every((reply) => reply.endsWith(`:${SANDBOX_IP}`))).toBe(true);

  // From the host itself (output chain), and over UDP.
  expect(Object.keys(byResponder(await probeTcp(hostNetns, HOST_IP, PUBLISHED, 30))).sort()).toEqual(['b1', 'b2']);
  expect(udp(OUT, HOST_IP, UDP_PUBLISHED)).toMatch(new RegExp(`^udp:b[12]:${SANDBOX_IP.replace(/\./g, '\\.')}$`));

  // The kernel has exactly what was rendered; a second pass changes nothing.
  expect(await sandbox.check(ingress({ tcp: [B1, B2], udp: [B1, B2] }))).toEqual([]);
  expect(await converge(ingress({ tcp: [B1, B2], udp: [B1, B2] }))).toBe(address);
}, 120000);

test('host-mode publishing goes straight to the task, keeping the client address', async () => {
  await bridge.attachGateway(TASK3, netnsPath(T3), task3Attachments);
  task3Address = (await bridge.gatewayAddresses([{ taskId: TASK3, attachments: task3Attachments }])).get(TASK3);
  expect(task3Address).toMatch(/^172\.18\.0\.\d+$/);
  await converge(ingress({ tcp: [B1, B2], udp: [B1, B2] }));
  expect(await probeTcp(netnsPath(OUT), HOST_IP, HOST_MODE, 5)).toEqual({ [`pong:t3:${OUT_IP}`]: 5 });
}, 60000);

test('backends change at once; a port without backends is refused', async () => {
  await converge(ingress({ tcp: [B2], udp: [] }));
  expect(byResponder(await probeTcp(netnsPath(OUT), HOST_IP, PUBLISHED, 10))).toEqual({ b2: 10 });
  expect(udp(OUT, HOST_IP, UDP_PUBLISHED)).toBe('timeout');
  await converge(ingress({ tcp: [], udp: [] }));
  expect(await probeTcp(netnsPath(OUT), HOST_IP, PUBLISHED, 3, 5000)).toEqual({ 'error: ECONNREFUSED': 3 });
}, 60000);

test('the doctor sees a flushed table; a verify pass repairs it, and the sandbox plugged in again', async () => {
  const cfg = ingress({ tcp: [B1, B2], udp: [B1] });
  await converge(cfg);
  run('ip', ['netns', 'exec', sandbox.name, 'nft', 'flush', 'table', 'ip', INGRESS_NFT_TABLE]);
  run('ip', ['netns', 'exec', HOST, 'nft', 'delete', 'table', 'ip', PUBLISH_NFT_TABLE]);
  expect(await sandbox.check(cfg)).toEqual([expect.stringMatching(/^ingress table swarmlet-ingress in .* differs: missing rule "tcp dport 8080 goto port-tcp-8080" and \d+ more$/)]);
  await converge(cfg, true);
  expect(await sandbox.check(cfg)).toEqual([]);
  expect(await listNftTable(hostNetns, PUBLISH_NFT_TABLE)).toContain(`tcp dport ${PUBLISHED} dnat to`);
  expect(Object.keys(byResponder(await probeTcp(netnsPath(OUT), HOST_IP, PUBLISHED, 30))).sort()).toEqual(['b1', 'b2']);

  // Its overlay interface deleted by hand: the overlay driver's reconcile plugs it in again.
  run('ip', ['-n', sandbox.name, 'link', 'del', INGRESS_IF]);
  expect(await sandbox.check(cfg)).toEqual([expect.stringMatching(/has no eth0 with the ingress endpoint/)]);
  await converge(cfg, true);
  expect(await sandbox.check(cfg)).toEqual([]);
  expect(Object.keys(byResponder(await probeTcp(netnsPath(OUT), HOST_IP, PUBLISHED, 30))).sort()).toEqual(['b1', 'b2']);
}, 120000);

test('without ingress the sandbox and the host table go', async () => {
  await sandbox.remove();
  await tables.ensure('host', hostNetns, PUBLISH_NFT_TABLE, '');
  expect(ipj(['netns', 'list']).map((n) => n.name)).not.toContain(sandbox.name);
  expect(await listNftTable(hostNetns, PUBLISH_NFT_TABLE)).toBe('');
  expect(await sandbox.check(undefined)).toEqual([]);
  expect(await probeTcp(netnsPath(OUT), HOST_IP, PUBLISHED, 1, 2000)).toEqual({ 'error: ECONNREFUSED': 1 });
}, 60000);
