/**
 * Containers' published ports on swarm nodes (h1 manager, h2 worker): a container on the cluster's
 * default bridge answers a lab client on its node's address and 127.0.0.1, with the client's
 * address kept; a port a service publishes (ingress: on every node; host mode: where its task
 * runs) is refused to a container with docker's message. Run through test/run.sh.
 */
import { apiServiceTasks } from './api-reads';
import { Lab, LabClient, LabHost, requireBuiltCli } from '../lab/lab';
import { ADDRESS_ECHO_SERVER, askFrom, formSwarm, runningTasks, sw, waitFor } from './cluster-helpers';
import { uniqueSuffix } from '../support/unique';

let lab: Lab;
let h1: LabHost, h2: LabHost;
let client: LabClient;

const ask = (from: { netns: string }, addr: string, port: number) => askFrom(lab, from, addr, port);
const SERVER = ADDRESS_ECHO_SERVER;
const table = async (h: LabHost, name: string) => {
  const r = await lab.exec(h, ['nft', 'list', 'table', 'ip', name]);
  return r.code === 0 ? r.stdout : '';
};

beforeAll(async () => {
  requireBuiltCli();
  lab = await Lab.create({ prefix: `swsp${uniqueSuffix()}`, hosts: 2 });
  [h1, h2] = lab.hosts;
  client = await lab.addClient();
  await formSwarm(lab, [h1], [h2]);
}, 180000);

afterAll(async () => {
  await lab?.destroy();
}, 60000);

test('a container on the cluster bridge publishes a port: the client reaches it on the node\'s address, with its own address kept', async () => {
  await sw(lab, h2, ['run', '-d', '--name', 'web', '-p', '9090:80', 'exec:/', process.execPath, '-e', SERVER]);
  await waitFor('web answering the client', async () => ((await ask(client, h2.addr, 9090)) === client.addr ? true : undefined), 30000, 300);
  expect(await ask(h2, '127.0.0.1', 9090)).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
  expect(await sw(lab, h2, ['port', 'web'])).toBe('80/tcp -> 0.0.0.0:9090\n');
  await sw(lab, h2, ['rm', '-f', 'web']);
  expect(await table(h2, 'swarmlet-cpublish')).toBe('');
  expect(await ask(client, h2.addr, 9090)).toMatch(/^ERR/);
}, 180000);

test("a service's published port is refused to a container: ingress on every node, host mode where its task runs", async () => {
  await sw(lab, h1, ['service', 'create', '-d', '--name', 'mesh', '-p', '8080:80', 'exec:/', 'sleep', '100000']);
  await sw(lab, h1, ['service', 'create', '-d', '--name', 'local', '--constraint', `node.hostname==${h2.name}`, '-p', 'published=7070,target=80,mode=host', 'exec:/', 'sleep', '100000']);
  // The refusal comes from what the node's session says of the services: once it has heard of them, no container takes their ports.
  const refusal = (h: LabHost, port: number) =>
    waitFor(`${h.name} refusing ${port}`, async () => {
      const res = await lab.cli(h, ['run', '-d', '--name', 'probe', '-p', `${port}:80`, 'exec:/', 'sleep', '1000']);
      if (res.code === 0) {
        await sw(lab, h, ['rm', '-f', 'probe']);
        return undefined;
      }
      return { code: res.code, err: res.stderr.trim() };
    }, 60000, 500);
  for (const [h, port] of [[h2, 8080], [h1, 8080], [h2, 7070]] as const) {
    expect(await refusal(h, port)).toEqual({ code: 1, err: `Error: Bind for 0.0.0.0:${port} failed: port is already allocated` });
  }
  expect(await sw(lab, h1, ['ps', '-aq'])).toBe('');
  expect(await sw(lab, h2, ['ps', '-aq'])).toBe('');
  // A host-mode port is free where the service has no task.
  await sw(lab, h1, ['run', '-d', '--name', 'free', '-p', '7070:80', 'exec:/', 'sleep', '1000']);
  expect(await sw(lab, h1, ['port', 'free'])).toBe('80/tcp -> 0.0.0.0:7070\n');
  await sw(lab, h1, ['rm', '-f', 'free']);
  await sw(lab, h1, ['service', 'rm', 'mesh', 'local']);
}, 180000);

test('a container on an attachable overlay alone publishes through the gateway bridge, as docker_gwbridge: the client reaches it, also after a daemon restart', async () => {
  await sw(lab, h1, ['network', 'create', '--driver', 'overlay', '--attachable', 'pubnet']);
  await sw(lab, h2, ['run', '-d', '--name', 'ovweb', '--network', 'pubnet', '-p', '9191:80', 'exec:/', process.execPath, '-e', SERVER]);
  await waitFor('ovweb answering the client', async () => ((await ask(client, h2.addr, 9191)) === client.addr ? true : undefined), 30000, 300);
  expect(await ask(h2, '127.0.0.1', 9191)).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
  expect(await table(h2, 'swarmlet-cpublish')).toMatch(/dnat to 172\.18\.\d+\.\d+:80/);
  await lab.stopDaemon(h2);
  await lab.startDaemon(h2);
  await waitFor('ovweb answering after the restart', async () => ((await ask(client, h2.addr, 9191)) === client.addr ? true : undefined), 30000, 300);
  await sw(lab, h2, ['rm', '-f', 'ovweb']);
  expect(await table(h2, 'swarmlet-cpublish')).toBe('');
  await waitFor('pubnet removable', async () => ((await lab.cli(h1, ['network', 'rm', 'pubnet'])).code === 0 ? true : undefined), 30000, 500);
}, 240000);

test('network doctor checks the containers\' publish table: a rule deleted by hand is reported, naming it (exit 1)', async () => {
  await sw(lab, h2, ['run', '-d', '--name', 'docweb', '-p', '9292:80', 'exec:/', 'sleep', '1000']);
  await waitFor('the doctor to be happy', async () => ((await lab.cli(h1, ['network', 'doctor'])).code === 0 ? true : undefined), 60000, 500);
  // The first rule of the table that names the port, with its chain and handle.
  const listed = (await lab.exec(h2, ['nft', '-a', 'list', 'table', 'ip', 'swarmlet-cpublish'])).stdout.split('\n');
  let chain = '';
  let rule: { chain: string; handle: string; text: string } | undefined;
  for (const line of listed) {
    const c = /^\s*chain (\S+) \{/.exec(line);
    if (c) chain = c[1];
    const r = /^\s*(.*9292.*) # handle (\d+)$/.exec(line);
    if (r && !rule) rule = { chain, handle: r[2], text: r[1].trim() };
  }
  expect(rule).toBeDefined();
  expect((await lab.exec(h2, ['nft', 'delete', 'rule', 'ip', 'swarmlet-cpublish', rule!.chain, 'handle', rule!.handle])).code).toBe(0);
  const res = await lab.cli(h1, ['network', 'doctor']);
  expect(res.code).toBe(1);
  expect(`${res.stdout}${res.stderr}`).toContain(`host table swarmlet-cpublish (containers' published ports) differs: missing rule ${JSON.stringify(rule!.text)}`);
  await sw(lab, h2, ['rm', '-f', 'docweb']);
  await waitFor('the doctor to be happy again', async () => ((await lab.cli(h1, ['network', 'doctor'])).code === 0 ? true : undefined), 60000, 500);
}, 240000);

test("a container's published port is kept from services: an ingress port is refused naming the container and node; a host-mode task waits until it is free", async () => {
  await sw(lab, h2, ['run', '-d', '--name', 'held', '-p', '8181:80', 'exec:/', 'sleep', '1000']);
  // The node reports its containers' ports to the managers: once they know, the service is refused.
  const refused = await waitFor('the ingress port refused', async () => {
    const res = await lab.cli(h1, ['service', 'create', '-d', '--name', 'mesh2', '-p', '8181:80', 'exec:/', 'sleep', '100000']);
    if (res.code === 0) {
      await sw(lab, h1, ['service', 'rm', 'mesh2']);
      return undefined;
    }
    return { code: res.code, err: res.stderr.trim() };
  }, 60000, 500);
  expect(refused).toEqual({ code: 1, err: `Error: port 8181/tcp is already published by container held on node ${h2.name}: an ingress port is open on every node` });
  expect((await lab.cli(h1, ['service', 'inspect', '--format', 'api', 'mesh2'])).code).not.toBe(0);

  await sw(lab, h1, ['service', 'create', '-d', '--name', 'hm', '--constraint', `node.hostname==${h2.name}`, '-p', 'published=8181,target=80,mode=host', 'exec:/', 'sleep', '100000']);
  await waitFor('hm waiting for the port', async () => (JSON.stringify(await apiServiceTasks(h1, 'hm')).includes('host port 8181/tcp in use on 1 node') ? true : undefined), 60000, 500);
  await sw(lab, h2, ['rm', '-f', 'held']);
  await waitFor('hm running on h2 once the container is gone', async () => ((await runningTasks(lab, h1, 'hm')).length === 1 ? true : undefined), 60000, 500);
  await sw(lab, h1, ['service', 'rm', 'hm']);
}, 240000);
