/**
 * BridgeDriver against the real kernel, inside the test runner's private namespaces (run through
 * test/run.sh). The "host" is a network namespace of its own (given to the driver by path); tasks
 * are bare namespaces; an "outside" namespace is joined to the host by a veth (198.51.100.0/24),
 * with no route back to the bridge subnets, so a task reaches it only through masquerade.
 * Everything carries a prefix unique to this run and is removed in afterAll, also on failure.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { BridgeDriver, BridgeNetwork, bridgeNetworksOf, subnetOfAddress } from '../../agent/network/bridge-driver';
import { createRootLogger } from '../../services/common/logger';
import type { NetworkAttachment } from '../../services/gen/swarmlet/v1/types';

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

const children: ChildProcess[] = [];
let driver: BridgeDriver;
let front: BridgeNetwork;
let back: BridgeNetwork;

const run = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const netnsPath = (name: string) => `/run/netns/${name}`;

function addNetns(name: string): void {
  run('ip', ['netns', 'add', name]);
  run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
}

function ipj(args: string[], ns: string): any[] {
  try {
    const out = run('ip', ['-n', ns, '-j', ...args]).trim();
    return out ? JSON.parse(out) : [];
  } catch {
    return [];
  }
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

/** A TCP round trip from namespace `ns` to ip:PORT: the reply, or 'error: ...' / 'timeout'. */
function tcp(ns: string, ip: string, timeoutMs = 3000): string {
  return run('ip', [
    'netns', 'exec', ns, process.execPath, '-e',
    `const c = require('net').connect(${PORT}, '${ip}', () => c.write('ping'));
     let got = ''; c.on('data', (d) => (got += d)); c.on('end', () => { console.log(got); process.exit(0); });
     c.on('error', (e) => { console.log('error: ' + e.code); process.exit(0); });
     setTimeout(() => { console.log('timeout'); process.exit(0); }, ${timeoutMs});`,
  ]).trim();
}

/** An echo server on 0.0.0.0:PORT in `ns` that answers 'pong:<name>:<peer address>'. */
async function server(ns: string, name: string): Promise<void> {
  const child = spawn('ip', [
    'netns', 'exec', ns, process.execPath, '-e',
    `require('net').createServer((c) => c.on('data', () => c.end('pong:${name}:' + c.remoteAddress))).listen(${PORT}, '0.0.0.0', () => console.log('listening'));
     setTimeout(() => process.exit(2), 300000).unref();`,
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout?.on('data', (d) => (out += d));
  await waitFor(`the server in ${ns} to listen`, () => out.includes('listening'), 10000);
}

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
  for (const c of children) c.kill('SIGKILL');
  await driver?.close().catch(() => undefined);
  for (const ns of NAMESPACES) {
    try {
      run('ip', ['netns', 'del', ns]);
    } catch {
      // not made
    }
  }
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
