/**
 * Client-side VIP load balancing (NftTables + renderTaskLbNft) against the real kernel, inside the
 * test runner's private namespaces (test/run.sh). A "client" task namespace and three "backend"
 * namespaces hang off a bridge in a namespace of their own (10.88.0.0/24); the VIP 10.88.0.2 is
 * held by nobody, so only the client's `ip swarmlet-lb` table makes it answer. Servers answer their
 * name. Everything carries a unique prefix and is removed in afterAll, also when a test fails.
 */
import { NftTables, listNftTable } from '../../agent/network/lb-driver';
import { INGRESS_NFT_TABLE, LB_NFT_TABLE, PUBLISH_NFT_TABLE, renderIngressNft, renderPublishNft, renderTaskLbNft } from '../../agent/network/plans/lb-nft';
import { netnsOps } from '../../agent/runtime/netns-ops';
import { createRootLogger } from '../../services/common/logger';
import { metrics } from '../../services/metrics/metrics';
import { addNetns, deleteNetns, killServers, netnsPath, run, server } from '../support/netns';
import { byResponder, probeTcp } from '../support/tcp-probe';
import { uniqueSuffix } from '../support/unique';

const P = `lb${uniqueSuffix()}`;
const BR = `${P}-br`;
const CLIENT = `${P}-c`;
const BACKENDS = [`${P}-b1`, `${P}-b2`, `${P}-b3`];
const NAMESPACES = [BR, CLIENT, ...BACKENDS];
const VIP = '10.88.0.2';
const CLIENT_IP = '10.88.0.10';
const IPS = ['10.88.0.11', '10.88.0.12', '10.88.0.13'];
const PORT = 7100;

const log = createRootLogger(process.env.LB_TEST_LOG ?? 'silent');
let tables: NftTables;
const clientNetns = netnsPath(CLIENT);

function plug(ns: string, ip: string, i: number): void {
  run('ip', ['-n', BR, 'link', 'add', `p${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
  run('ip', ['-n', BR, 'link', 'set', `p${i}`, 'master', 'br0', 'up']);
  run('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
  run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
}

const ensureLb = (backends: string[], verify = false) => tables.ensure('task-c', clientNetns, LB_NFT_TABLE, renderTaskLbNft([{ vip: VIP, backends }]), verify);

beforeAll(async () => {
  for (const ns of NAMESPACES) addNetns(ns);
  run('ip', ['-n', BR, 'link', 'add', 'br0', 'type', 'bridge']);
  run('ip', ['-n', BR, 'link', 'set', 'br0', 'up']);
  plug(CLIENT, CLIENT_IP, 0);
  BACKENDS.forEach((ns, i) => plug(ns, IPS[i], i + 1));
  await Promise.all(BACKENDS.map((ns, i) => server(ns, `b${i + 1}`, PORT)));
  tables = new NftTables({ log });
}, 60000);

afterAll(() => {
  killServers();
  deleteNetns(NAMESPACES);
}, 30000);

test('connections to the VIP reach every serving backend; the kernel lists exactly the rendered table', async () => {
  expect(await ensureLb(IPS)).toBe(true);
  expect(await listNftTable(clientNetns, LB_NFT_TABLE)).toBe(renderTaskLbNft([{ vip: VIP, backends: IPS }]));
  const counts = byResponder(await probeTcp(clientNetns, VIP, PORT, 60));
  expect(Object.keys(counts).sort()).toEqual(['b1', 'b2', 'b3']);
  // The same text again: nothing applied.
  expect(await ensureLb(IPS)).toBe(false);
}, 60000);

test('the table is replaced atomically: connections made while the backends change never fail', async () => {
  const during = probeTcp(clientNetns, VIP, PORT, 300, 2000);
  for (let i = 0; i < 30; i++) await ensureLb(i % 2 === 0 ? [IPS[0], IPS[1]] : [IPS[2]]);
  const counts = byResponder(await during);
  expect(Object.keys(counts).filter((k) => !/^b\d$/.test(k))).toEqual([]);
  expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(300);

  await ensureLb([IPS[0], IPS[1]]);
  expect(Object.keys(byResponder(await probeTcp(clientNetns, VIP, PORT, 40))).sort()).toEqual(['b1', 'b2']);
  await ensureLb([IPS[2]]);
  expect(byResponder(await probeTcp(clientNetns, VIP, PORT, 10))).toEqual({ b3: 10 });
}, 120000);

test('a VIP with no serving task is refused at once (TCP reset), not left to time out', async () => {
  await ensureLb([]);
  expect(await probeTcp(clientNetns, VIP, PORT, 3, 5000)).toEqual({ 'error: ECONNREFUSED': 3 });
}, 30000);

test('a table deleted by hand comes back on a verify pass; without one the cache trusts itself', async () => {
  await ensureLb(IPS);
  run('ip', ['netns', 'exec', CLIENT, 'nft', 'delete', 'table', 'ip', LB_NFT_TABLE]);
  expect(await ensureLb(IPS)).toBe(false);
  expect(await listNftTable(clientNetns, LB_NFT_TABLE)).toBe('');
  expect(await ensureLb(IPS, true)).toBe(true);
  expect(await listNftTable(clientNetns, LB_NFT_TABLE)).toBe(renderTaskLbNft([{ vip: VIP, backends: IPS }]));
  expect(await ensureLb(IPS, true)).toBe(false);
  expect(Object.keys(byResponder(await probeTcp(clientNetns, VIP, PORT, 30))).length).toBeGreaterThan(1);

  // No VIP left: the table goes.
  expect(await tables.ensure('task-c', clientNetns, LB_NFT_TABLE, '')).toBe(true);
  expect(await listNftTable(clientNetns, LB_NFT_TABLE)).toBe('');
  expect(Object.keys(await probeTcp(clientNetns, VIP, PORT, 1, 1000))).toEqual([expect.not.stringMatching(/^pong/)]);
}, 60000);

test('a change of backends alone rewrites the VIP\'s chain in the table as it is, in one small transaction; a table gone from the kernel is applied whole instead', async () => {
  /** The kernel's handle of the client's table: a table made again gets another. */
  const handle = () => /table ip swarmlet-lb \{ # handle (\d+)/.exec(run('ip', ['netns', 'exec', CLIENT, 'nft', '-a', 'list', 'table', 'ip', LB_NFT_TABLE]))?.[1];
  await ensureLb(IPS);
  const made = handle();
  expect(made).toBeDefined();
  expect(await ensureLb(IPS.slice(0, 2))).toBe(true);
  expect(handle()).toBe(made);
  expect(await listNftTable(clientNetns, LB_NFT_TABLE)).toBe(renderTaskLbNft([{ vip: VIP, backends: IPS.slice(0, 2) }]));
  expect(Object.keys(byResponder(await probeTcp(clientNetns, VIP, PORT, 40))).sort()).toEqual(['b1', 'b2']);
  // No backend left, then one again: still the same table.
  expect(await ensureLb([])).toBe(true);
  expect(Object.keys(await probeTcp(clientNetns, VIP, PORT, 1, 1000))).toEqual([expect.not.stringMatching(/^pong/)]);
  expect(await ensureLb([IPS[0]])).toBe(true);
  expect(handle()).toBe(made);
  expect(byResponder(await probeTcp(clientNetns, VIP, PORT, 10))).toEqual({ b1: 10 });
  // Deleted by hand: the chain's update fails, and the whole table is applied instead.
  run('ip', ['netns', 'exec', CLIENT, 'nft', 'delete', 'table', 'ip', LB_NFT_TABLE]);
  expect(await ensureLb([IPS[2]])).toBe(true);
  expect(await listNftTable(clientNetns, LB_NFT_TABLE)).toBe(renderTaskLbNft([{ vip: VIP, backends: [IPS[2]] }]));
  expect(byResponder(await probeTcp(clientNetns, VIP, PORT, 10))).toEqual({ b3: 10 });
}, 60000);

test('every table lists exactly as rendered, large ones too (what the resync and the doctor compare)', async () => {
  const many = Array.from({ length: 120 }, (_, i) => `10.1.${Math.floor(i / 100)}.${(i % 100) + 2}`);
  const tablesToCheck: [string, string][] = [
    [LB_NFT_TABLE, renderTaskLbNft([{ vip: '10.1.9.1', backends: many }, { vip: '10.1.9.2', backends: [] }, { vip: '10.1.9.3', backends: ['10.1.0.9'] }])],
    [INGRESS_NFT_TABLE, renderIngressNft([
      { protocol: 'tcp', publishedPort: 80, targetPort: 8080, backends: many },
      { protocol: 'udp', publishedPort: 53, targetPort: 5353, backends: many.slice(0, 3) },
      { protocol: 'tcp', publishedPort: 81, targetPort: 8081, backends: ['10.1.0.2'] },
      { protocol: 'udp', publishedPort: 54, targetPort: 54, backends: [] },
      { protocol: 'tcp', publishedPort: 82, targetPort: 82, backends: [] },
    ], 'eth0')],
    [PUBLISH_NFT_TABLE, renderPublishNft(Array.from({ length: 40 }, (_, i) => ({ protocol: i % 2 ? 'udp' as const : 'tcp' as const, publishedPort: 30000 + i, address: `172.18.0.${2 + (i % 5)}`, targetPort: i % 3 ? 0 : 80 })))],
  ];
  for (const [table, body] of tablesToCheck) {
    await tables.ensure(`big-${table}`, clientNetns, table, body);
    expect(await listNftTable(clientNetns, table)).toBe(body);
    expect(await tables.ensure(`big-${table}`, clientNetns, table, body, true)).toBe(false);
    await tables.ensure(`big-${table}`, clientNetns, table, '');
    expect(await listNftTable(clientNetns, table)).toBe('');
  }
}, 60000);

test('a change of backends starts no process: it is one request to the namespace helper that is already there', async () => {
  const started = async () => (await metrics.processesStarted.get()).values.reduce((sum, v) => sum + v.value, 0);
  await ensureLb(IPS);
  const helper = netnsOps.pid;
  const before = await started();
  for (const backends of [[IPS[0]], [IPS[1], IPS[2]], IPS]) {
    expect(await ensureLb(backends)).toBe(true);
    expect(await listNftTable(clientNetns, LB_NFT_TABLE)).toBe(renderTaskLbNft([{ vip: VIP, backends }]));
  }
  expect(await started()).toBe(before);
  expect(netnsOps.pid).toBe(helper);
}, 30000);
