/**
 * The VXLAN filter end to end, from outside the swarm, on a lab of three hosts (h1 manager, h2
 * worker; h3 joins later): a VXLAN packet hand-built with an overlay's VNI and a task's MAC and IP
 * reaches the task when it comes from a member's underlay address, and does not when it comes from
 * a namespace on the same underlay that is not a node, while the tasks still reach each other over
 * the overlay. Each node's `ip swarmlet-vxlan` table lists the nodes' addresses and follows the node
 * list (a node that joins is admitted, a removed one dropped); the doctor reports a deleted table,
 * and the agent's periodic pass puts it back. Run through test/run.sh.
 */
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab, LabHost, requireBuiltCli } from '../lab/lab';
import { formSwarm, hostOfTask, joinCommand, nodeInTask, runningTasks, sw, TaskJson, waitFor } from './cluster-helpers';
import { uniqueSuffix } from '../support/unique';

const prefix = `swv${uniqueSuffix()}`;
const received = join(tmpdir(), `${prefix}-received.log`);
const LISTEN_PORT = 9310;
let lab: Lab;
let h1: LabHost, h2: LabHost, h3: LabHost;

const running = (service: string) => runningTasks(lab, h1, service);
const hostOf = (t: TaskJson) => hostOfTask(lab, h1, t);

const attachment = (t: TaskJson) => t.networks!.find((n) => n.networkName === 'vxnet')!;
const ipOf = (t: TaskJson) => attachment(t).address!.split('/')[0];

const inTask = async (t: TaskJson, script: string, args: string[] = []) => nodeInTask(lab, await hostOf(t), t, script, args);

/** Appends each UDP datagram it receives on the port to the file, one line each; stops at "end". */
const LISTENER = `
const fs = require('fs');
const [port, file] = process.argv.slice(1);
const s = require('dgram').createSocket('udp4');
s.on('message', (m) => { const t = m.toString(); fs.appendFileSync(file, t + '\\n'); if (t === 'end') s.close(); });
s.bind(Number(port), '0.0.0.0');
setTimeout(() => process.exit(1), 90000).unref();`;

/**
 * Sends one hand-built VXLAN packet to VTEP:4789: VNI, then an Ethernet frame to the task's MAC
 * carrying an IPv4/UDP datagram from srcIp to the task's IP and port, with the payload.
 */
const VXLAN_SENDER = `
const [vtep, vni, dmac, dip, sip, port, payload] = process.argv.slice(1);
const ip4 = (s) => Buffer.from(s.split('.').map(Number));
const data = Buffer.from(payload);
const udp = Buffer.alloc(8);
udp.writeUInt16BE(40000, 0); udp.writeUInt16BE(Number(port), 2); udp.writeUInt16BE(8 + data.length, 4);
const ip = Buffer.alloc(20);
ip[0] = 0x45; ip.writeUInt16BE(28 + data.length, 2); ip[8] = 64; ip[9] = 17; ip4(sip).copy(ip, 12); ip4(dip).copy(ip, 16);
let sum = 0; for (let i = 0; i < 20; i += 2) sum += ip.readUInt16BE(i);
while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
ip.writeUInt16BE(~sum & 0xffff, 10);
const eth = Buffer.concat([Buffer.from(dmac.split(':').map((h) => parseInt(h, 16))), Buffer.from([2, 0, 0, 0, 0, 0x99]), Buffer.from([8, 0])]);
const vx = Buffer.alloc(8); vx[0] = 0x08; vx.writeUIntBE(Number(vni), 4, 3);
const s = require('dgram').createSocket('udp4');
s.send(Buffer.concat([vx, eth, ip, udp, data]), 4789, vtep, (err) => { s.close(); if (err) { console.error(err.message); process.exit(1); } });`;

/** Connects to address:port from inside a task; prints ok or the error. */
const TCP_PROBE = `
const s = require('net').connect({ host: process.argv[1], port: Number(process.argv[2]), timeout: 1500 });
s.on('connect', () => { console.log('ok'); s.destroy(); });
s.on('timeout', () => { console.log('timeout'); s.destroy(); });
s.on('error', (e) => console.log(e.code));`;

const receivedLines = () => {
  try {
    return readFileSync(received, 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
};

/** The addresses in a host's `ip swarmlet-vxlan` table ('' when it has none). */
async function filterTable(h: LabHost): Promise<string> {
  const r = await lab.exec(h, ['nft', 'list', 'table', 'ip', 'swarmlet-vxlan']);
  return r.code === 0 ? r.stdout : '';
}

beforeAll(async () => {
  requireBuiltCli();
  lab = await Lab.create({ prefix, hosts: 3 });
  [h1, h2, h3] = lab.hosts;
  await formSwarm(lab, [h1], [h2]);
}, 120000);

afterAll(async () => {
  await lab?.destroy();
  rmSync(received, { force: true });
}, 60000);

test('a VXLAN packet from an underlay address that is not a node does not reach a task; members still do', async () => {
  await sw(lab, h1, ['network', 'create', '-d', 'overlay', 'vxnet']);
  await sw(lab, h1, ['service', 'create', '--name', 'vx', '--mode', 'global', '--network', 'vxnet', 'exec:/', 'python3', '-m', 'http.server', '8000']);
  const tasks = await waitFor('a running task on each node', async () => {
    const r = await running('vx');
    return r.length === 2 ? r : undefined;
  }, 60000);
  const target = (await Promise.all(tasks.map(async (t) => ((await hostOf(t)) === h2 ? t : undefined)))).find(Boolean)!;
  const other = tasks.find((t) => t !== target)!;
  const vni = String(attachment(target).vni);
  const craft = (from: { netns: string }, payload: string) =>
    lab.exec(from, [process.execPath, '-e', VXLAN_SENDER, h2.addr, vni, attachment(target).mac!, ipOf(target), ipOf(other), String(LISTEN_PORT), payload]);

  // Members reach each other over the overlay, both ways.
  for (const [from, to] of [[other, target], [target, other]]) {
    await waitFor(`task ${from.id} reaching ${ipOf(to)}:8000`, async () => ((await inTask(from, TCP_PROBE, [ipOf(to), '8000'])).stdout.trim() === 'ok' ? true : undefined), 20000, 500);
  }

  const listener = inTask(target, LISTENER, [String(LISTEN_PORT), received]);
  // The hand-built packet is right: from a member's address (h1's), it reaches the task.
  await waitFor('a hand-built packet from h1 reaching the task', async () => {
    expect((await craft(h1, 'from-member')).code).toBe(0);
    return receivedLines().includes('from-member') ? true : undefined;
  }, 20000, 300);

  // The same packet from a namespace on the underlay that is not a node does not.
  const outsider = await lab.addClient();
  for (let i = 0; i < 5; i++) expect((await craft(outsider, 'from-outsider')).code).toBe(0);
  // A member's packet sent after them arrives: the outsider's, sent before on the same path, would have too.
  await waitFor('a second packet from h1 reaching the task', async () => {
    await craft(h1, 'member-after');
    return receivedLines().includes('member-after') ? true : undefined;
  }, 20000, 300);
  expect(receivedLines()).not.toContain('from-outsider');
  await waitFor('the listener to stop', async () => {
    await craft(h1, 'end');
    return receivedLines().includes('end') ? true : undefined;
  }, 20000, 300);
  await listener;

  for (const h of [h1, h2]) {
    const table = await filterTable(h);
    expect(table).toContain(h1.addr);
    expect(table).toContain(h2.addr);
    expect(table).not.toContain(outsider.addr);
  }
}, 180000);

test('the filter follows the node list; the doctor reports it missing and the next pass restores it', async () => {
  // A node that joins is admitted on every node.
  const workerJoin = joinCommand(await sw(lab, h1, ['swarm', 'join-token', 'worker']));
  await lab.startDaemon(h3);
  await sw(lab, h3, workerJoin);
  for (const h of [h1, h2, h3]) {
    await waitFor(`${h.name} admitting ${h3.addr}`, async () => ((await filterTable(h)).includes(h3.addr) ? true : undefined), 30000, 500);
  }

  // Deleted by hand: the doctor says so, and the periodic pass puts it back.
  expect((await lab.exec(h2, ['nft', 'delete', 'table', 'ip', 'swarmlet-vxlan'])).code).toBe(0);
  const res = await lab.cli(h1, ['network', 'doctor']);
  expect(res.code).toBe(1);
  expect(res.stdout).toContain(h2.name);
  expect(res.stdout).toMatch(/missing VXLAN filter swarmlet-vxlan/);
  await waitFor('the filter back on h2', async () => ((await filterTable(h2)).includes(h3.addr) ? true : undefined), 30000, 500);

  // A node that leaves and is removed is dropped; the one that left keeps no filter.
  expect(await sw(lab, h3, ['swarm', 'leave'])).toBe('Node left the swarm.\n');
  expect(await filterTable(h3)).toBe('');
  await waitFor(`node rm ${h3.name}`, async () => ((await lab.cli(h1, ['node', 'rm', h3.name])).code === 0 ? true : undefined), 30000, 500);
  for (const h of [h1, h2]) {
    await waitFor(`${h.name} dropping ${h3.addr}`, async () => {
      const table = await filterTable(h);
      return table.includes(h2.addr) && !table.includes(h3.addr) ? true : undefined;
    }, 30000, 500);
  }
}, 180000);
