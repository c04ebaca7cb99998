/**
 * Containers on a swarm's networks, end to end, as the seeds' networking exercises have them, on a
 * lab of two hosts (h1 manager, h2 worker) with a busybox image from a registry in the lab:
 *
 * - a user bridge (`network create --driver bridge alpine-net`): alpine1 and alpine2 on it ping
 *   each other by name; alpine3 on the default bridge has no name for them and cannot reach them;
 * - an attachable overlay (`network create --driver overlay --attachable ...`): a container on
 *   each host, and they ping each other by name across hosts; a non-attachable overlay is refused
 *   with docker's message and leaves no container behind.
 *
 * The addresses come from the managers (network-attachment tasks); `rm -f` takes them back.
 * Run through test/run.sh after `npm run build`.
 */
import { Lab, LabHost, requireBuiltCli } from '../lab/lab';
import { busyboxRegistry, formSwarm, sw, waitFor } from './cluster-helpers';
import type { TestRegistry } from '../support/registry';
import { uniqueSuffix } from '../support/unique';
import { echoServer, keepConnection, killServers } from '../support/netns';

const prefix = `swt${uniqueSuffix()}`;
const REGISTRY = '198.51.100.200:5000';
let lab: Lab;
let registry: TestRegistry;
let h1: LabHost, h2: LabHost;
let image: string;

/** `exec NAME ping -c1 -W2 TARGET` on host h: its exit code and output. */
const ping = (h: LabHost, from: string, to: string) => lab.cli(h, ['exec', from, 'ping', '-c1', '-W2', to]);

/** `network inspect alpine-net` on the manager: it lists the containers attached to it. */
const alpineNet = () => sw(lab, h1, ['network', 'inspect', 'alpine-net', '--format', 'api']);

beforeAll(async () => {
  requireBuiltCli();
  lab = await Lab.create({ prefix, hosts: 2, insecureRegistries: [REGISTRY] });
  [h1, h2] = lab.hosts;
  ({ registry, image } = await busyboxRegistry(lab, REGISTRY));
  await formSwarm(lab, [h1], [h2]);
}, 180000);

afterAll(async () => {
  killServers();
  await registry?.stop();
  await lab?.destroy();
}, 60000);

test('the seeds user-bridge exercise: alpine1 and alpine2 by name on alpine-net; alpine3 on the default bridge reaches neither', async () => {
  await sw(lab, h1, ['network', 'create', '--driver', 'bridge', 'alpine-net']);
  await sw(lab, h1, ['run', '-dit', '--name', 'alpine1', '--network', 'alpine-net', image, 'ash']);
  await sw(lab, h1, ['run', '-dit', '--name', 'alpine2', '--network', 'alpine-net', image, 'ash']);
  await sw(lab, h1, ['run', '-dit', '--name', 'alpine3', image, 'ash']);
  expect(await sw(lab, h1, ['ps'])).toMatch(/alpine1[\s\S]*alpine2|alpine2[\s\S]*alpine1/);

  await waitFor('alpine1 to reach alpine2 by name', async () => ((await ping(h1, 'alpine1', 'alpine2')).code === 0 ? true : undefined), 30000, 500);
  expect((await ping(h1, 'alpine2', 'alpine1')).code).toBe(0);
  // The default bridge has no names, and another network's containers are out of reach.
  const byName = await ping(h1, 'alpine3', 'alpine1');
  expect(byName.code).not.toBe(0);
  const inspect = JSON.parse(await sw(lab, h1, ['inspect', 'alpine1'])) as { NetworkSettings: { Networks: Record<string, { IPAddress: string }> } }[];
  const addr = inspect[0].NetworkSettings.Networks['alpine-net'].IPAddress;
  expect(addr).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
  expect((await ping(h1, 'alpine3', addr)).code).not.toBe(0);
  expect(await alpineNet()).toContain('alpine1');

  await sw(lab, h1, ['rm', '-f', 'alpine1', 'alpine2', 'alpine3']);
  await waitFor('the containers to leave alpine-net', async () => (!(await alpineNet()).includes('alpine1') ? true : undefined), 30000, 500);
  await sw(lab, h1, ['network', 'rm', 'alpine-net']);
}, 180000);

test('an attachable overlay: a container on each host, by name across hosts; a non-attachable overlay is refused', async () => {
  await sw(lab, h1, ['network', 'create', '--driver', 'overlay', '--attachable', 'my-attachable-overlay']);
  await sw(lab, h1, ['run', '-dit', '--name', 'over1', '--network', 'my-attachable-overlay', image, 'ash']);
  await sw(lab, h2, ['run', '-dit', '--name', 'over2', '--network', 'my-attachable-overlay', image, 'ash']);
  await waitFor('over1 on h1 to reach over2 on h2 by name', async () => ((await ping(h1, 'over1', 'over2')).code === 0 ? true : undefined), 30000, 500);
  expect((await ping(h2, 'over2', 'over1')).code).toBe(0);

  await sw(lab, h1, ['network', 'create', '--driver', 'overlay', 'closed-overlay']);
  const refused = await lab.cli(h1, ['run', '-dit', '--name', 'closed1', '--network', 'closed-overlay', image, 'ash']);
  expect(refused.code).not.toBe(0);
  expect(refused.stderr).toMatch(/not manually attachable/);
  expect(refused.stderr.trim().split('\n')).toHaveLength(1);
  expect((await lab.cli(h1, ['inspect', 'closed1'])).code).not.toBe(0);

  await sw(lab, h1, ['rm', '-f', 'over1']);
  await sw(lab, h2, ['rm', '-f', 'over2']);
}, 180000);

test('the seeds alpine1..alpine4 exercise on a swarm node: network connect bridge alpine4 live (eth1), inspect lists the containers, disconnect takes it away', async () => {
  type Net = { Containers: Record<string, { Name: string; IPv4Address: string }> };
  const names = async (net: string) => Object.values((JSON.parse(await sw(lab, h1, ['network', 'inspect', net])) as Net[])[0].Containers).map((c) => c.Name).sort();
  const netId = (await sw(lab, h1, ['network', 'create', '--driver', 'bridge', 'alpine-net'])).trim();
  await sw(lab, h1, ['run', '-dit', '--name', 'alpine1', '--network', 'alpine-net', image, 'ash']);
  await sw(lab, h1, ['run', '-dit', '--name', 'alpine2', '--network', 'alpine-net', image, 'ash']);
  await sw(lab, h1, ['run', '-dit', '--name', 'alpine3', image, 'ash']);
  await sw(lab, h1, ['run', '-dit', '--name', 'alpine4', '--network', 'alpine-net', image, 'ash']);
  expect(await sw(lab, h1, ['network', 'connect', 'bridge', 'alpine4'])).toBe('');

  type Inspect = { Id: string; NetworkSettings: { Networks: Record<string, { IPAddress: string }> } };
  const inspect = async (n: string) => (JSON.parse(await sw(lab, h1, ['inspect', n])) as Inspect[])[0];
  const a4 = await inspect('alpine4');
  expect(Object.keys(a4.NetworkSettings.Networks).sort()).toEqual(['alpine-net', 'bridge']);
  const ip3 = (await inspect('alpine3')).NetworkSettings.Networks.bridge.IPAddress;
  const ip1 = (await inspect('alpine1')).NetworkSettings.Networks['alpine-net'].IPAddress;
  const links = await sw(lab, h1, ['exec', 'alpine4', 'ip', '-o', '-4', 'addr', 'show']);
  expect(links).toMatch(new RegExp(`eth0\\s+inet ${a4.NetworkSettings.Networks['alpine-net'].IPAddress.replace(/\./g, '\\.')}/`));
  expect(links).toMatch(new RegExp(`eth1\\s+inet ${a4.NetworkSettings.Networks.bridge.IPAddress.replace(/\./g, '\\.')}/`));
  expect(await names('alpine-net')).toEqual(['alpine1', 'alpine2', 'alpine4']);
  expect(await names('bridge')).toEqual(['alpine3', 'alpine4']);

  await waitFor('alpine4 to reach alpine1 by name', async () => ((await ping(h1, 'alpine4', 'alpine1')).code === 0 ? true : undefined), 30000, 500);
  expect((await ping(h1, 'alpine4', 'alpine2')).code).toBe(0);
  expect((await ping(h1, 'alpine4', ip3)).code).toBe(0);
  expect((await ping(h1, 'alpine1', 'alpine2')).code).toBe(0);
  expect((await ping(h1, 'alpine3', 'alpine1')).code).not.toBe(0);
  expect((await ping(h1, 'alpine3', ip1)).code).not.toBe(0);

  for (const [args, message] of [
    [['network', 'connect', 'bridge', 'alpine4'], 'Error: container alpine4 is already attached to network bridge'],
    [['network', 'disconnect', 'alpine-net', 'alpine3'], 'Error: container alpine3 is not connected to network alpine-net'],
    [['network', 'rm', 'alpine-net'], `Error: error while removing network: network alpine-net id ${netId} has active endpoints`],
  ] as const) {
    const r = await lab.cli(h1, [...args]);
    expect([r.code, r.stderr.trim()]).toEqual([1, message]);
  }

  expect(await sw(lab, h1, ['network', 'disconnect', 'alpine-net', 'alpine4'])).toBe('');
  expect(Object.keys((await inspect('alpine4')).NetworkSettings.Networks)).toEqual(['bridge']);
  // Its address on alpine-net is gone; the default bridge's stays.
  const left = await sw(lab, h1, ['exec', 'alpine4', 'ip', '-o', '-4', 'addr', 'show']);
  expect(left).not.toContain(`inet ${a4.NetworkSettings.Networks['alpine-net'].IPAddress}/`);
  expect(left).toContain(`inet ${a4.NetworkSettings.Networks.bridge.IPAddress}/`);
  await waitFor('alpine-net to no longer list alpine4', async () => ((await names('alpine-net')).includes('alpine4') ? undefined : true), 30000, 500);
  expect((await ping(h1, 'alpine4', 'alpine1')).code).not.toBe(0);
  expect((await ping(h1, 'alpine4', ip3)).code).toBe(0);

  await sw(lab, h1, ['rm', '-f', 'alpine1', 'alpine2', 'alpine3', 'alpine4']);
  await waitFor('the containers to leave alpine-net', async () => ((await names('alpine-net')).length === 0 ? true : undefined), 30000, 500);
  await sw(lab, h1, ['network', 'rm', 'alpine-net']);
}, 300000);

test('network connect and disconnect on a swarm node touch only the interface concerned: a TCP connection over eth0 lives on', async () => {
  await sw(lab, h1, ['network', 'create', '--driver', 'bridge', 'keepnet']);
  await sw(lab, h1, ['run', '-dit', '--name', 'ksrv', '--network', 'keepnet', image, 'ash']);
  await sw(lab, h1, ['run', '-dit', '--name', 'kcli', '--network', 'keepnet', image, 'ash']);
  type Inspect = { State: { Pid: number }; NetworkSettings: { Networks: Record<string, { IPAddress: string }> } };
  const inspect = async (n: string) => (JSON.parse(await sw(lab, h1, ['inspect', n])) as Inspect[])[0];
  const [srv, cli] = [await inspect('ksrv'), await inspect('kcli')];
  await echoServer(`/proc/${srv.State.Pid}/ns/net`, 7070);
  const conn = await keepConnection(`/proc/${cli.State.Pid}/ns/net`, srv.NetworkSettings.Networks.keepnet.IPAddress, 7070);
  expect(await conn.send('before')).toBe('before');
  const eth0 = async () => (await sw(lab, h1, ['exec', 'kcli', 'cat', '/sys/class/net/eth0/ifindex'])).trim();
  const index = await eth0();

  expect(await sw(lab, h1, ['network', 'connect', 'bridge', 'kcli'])).toBe('');
  expect(await sw(lab, h1, ['exec', 'kcli', 'ip', '-o', '-4', 'addr', 'show', 'eth1'])).toContain(`inet ${(await inspect('kcli')).NetworkSettings.Networks.bridge.IPAddress}/`);
  expect(await eth0()).toBe(index);
  expect(await conn.send('after connect')).toBe('after connect');

  expect(await sw(lab, h1, ['network', 'disconnect', 'bridge', 'kcli'])).toBe('');
  expect((await lab.cli(h1, ['exec', 'kcli', 'ip', 'link', 'show', 'eth1'])).code).not.toBe(0);
  expect(await eth0()).toBe(index);
  expect(await conn.send('after disconnect')).toBe('after disconnect');

  killServers();
  await sw(lab, h1, ['rm', '-f', 'ksrv', 'kcli']);
  await waitFor('keepnet removable', async () => ((await lab.cli(h1, ['network', 'rm', 'keepnet'])).code === 0 ? true : undefined), 30000, 500);
}, 240000);
