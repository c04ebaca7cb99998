/**
 * Containers' published ports (`run -p`, `port`), on one lab host whose daemon is in no swarm: a
 * TCP server in an exec: container answers a lab client on the host's address and the host itself
 * on 127.0.0.1, and sees the client's own address (DNAT, no proxy); a port bound to 127.0.0.1 is
 * not open to the client; `ps`, `inspect` and `port` show the ports as docker does; a taken port
 * is refused with docker's message and leaves nothing; the rules go with `rm -f` and `stop`, come
 * back with `start`, and survive a daemon restart; `run -P` publishes the ports an OCI image exposes
 * (the busybox test image from a lab registry, exposing 80/tcp) on free host ports. Run through
 * test/run.sh.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab, LabClient, LabHost } from '../lab/lab';
import { ADDRESS_ECHO_SERVER, askFrom, oneHostWithBusybox, sw, tearDownLab, waitFor } from './cluster-helpers';
import type { TestRegistry } from '../support/registry';

let lab: Lab;
let h: LabHost;
let client: LabClient;
let registry: TestRegistry;
/** Busybox serving /var/www with httpd on port 80, which its config exposes. */
let image: string;

const ask = (from: { netns: string }, addr: string, port: number) => askFrom(lab, from, addr, port);
const SERVER = ADDRESS_ECHO_SERVER;
const records = () => (existsSync(join(h.dataDir, 'local-containers', 'records')) ? readdirSync(join(h.dataDir, 'local-containers', 'records')) : []);
const hostVeths = async () => (await lab.exec(h, ['ip', '-o', 'link', 'show', 'type', 'veth'])).stdout.split('\n').filter((l) => l.includes('swbl-'));
const table = async () => {
  const r = await lab.exec(h, ['nft', 'list', 'table', 'ip', 'swarmlet-cpublish']);
  return r.code === 0 ? r.stdout : '';
};

interface Inspect {
  HostConfig: { PortBindings: unknown };
  NetworkSettings: { Ports: unknown; Networks: Record<string, { IPAddress: string }> };
}
const inspect = async (ref: string): Promise<Inspect> => (JSON.parse(await sw(lab, h, ['inspect', ref])) as Inspect[])[0];

beforeAll(async () => {
  ({ lab, h, client, registry, image } = await oneHostWithBusybox('swcp', {
    files: { '/var/www/index.html': 'exposed\n' },
    config: { cmd: ['httpd', '-f', '-p', '80', '-h', '/var/www'], exposedPorts: ['80/tcp'] },
  }));
}, 180000);

afterAll(() => tearDownLab(lab, registry), 60000);

test('run -p: the host\'s address and 127.0.0.1 answer, the server sees the client; ps, inspect, port; rules go with rm -f', async () => {
  await sw(lab, h, ['run', '-d', '--name', 'web', '-p', '8080:80', '-p', '127.0.0.1:8081:80', 'exec:/', process.execPath, '-e', SERVER]);
  await waitFor('the server up', async () => ((await sw(lab, h, ['logs', 'web'])).includes('up') ? true : undefined));

  // From a lab client, on the host's address: the container sees the client's own address.
  expect(await ask(client, h.addr, 8080)).toBe(client.addr);
  // From the host itself, on 127.0.0.1 and on its own address.
  expect(await ask(h, '127.0.0.1', 8080)).toMatch(/^172\.17\.0\.1$/);
  expect(await ask(h, h.addr, 8080)).not.toMatch(/^ERR/);
  // Bound to 127.0.0.1: the host answers there, the client gets nothing.
  expect(await ask(h, '127.0.0.1', 8081)).toBe('172.17.0.1');
  expect(await ask(client, h.addr, 8081)).toMatch(/^ERR/);

  expect(await sw(lab, h, ['port', 'web'])).toBe('80/tcp -> 0.0.0.0:8080\n80/tcp -> 127.0.0.1:8081\n');
  expect(await sw(lab, h, ['container', 'port', 'web', '80/tcp'])).toBe('0.0.0.0:8080\n127.0.0.1:8081\n');
  const none = await lab.cli(h, ['port', 'web', '81']);
  expect(none.code).not.toBe(0);
  expect(none.stderr.trim()).toBe("Error: No public port '81/tcp' published for web");
  expect(await sw(lab, h, ['ps'])).toMatch(/\s0\.0\.0\.0:8080->80\/tcp, 127\.0\.0\.1:8081->80\/tcp\s+web$/m);
  const web = await inspect('web');
  expect(web.HostConfig.PortBindings).toEqual({ '80/tcp': [{ HostIp: '', HostPort: '8080' }, { HostIp: '127.0.0.1', HostPort: '8081' }] });
  expect(web.NetworkSettings.Ports).toEqual({ '80/tcp': [{ HostIp: '0.0.0.0', HostPort: '8080' }, { HostIp: '127.0.0.1', HostPort: '8081' }] });

  await sw(lab, h, ['rm', '-f', 'web']);
  expect(await table()).toBe('');
  expect(await ask(client, h.addr, 8080)).toMatch(/^ERR/);
}, 180000);

test('a taken port is refused with docker\'s message and leaves nothing; a malformed one too', async () => {
  await sw(lab, h, ['run', '-d', '--name', 'holder', '-p', '8080:80', 'exec:/', 'sleep', '1000']);
  const before = { records: records(), veths: await hostVeths(), table: await table() };
  expect(before.table).toMatch(/tcp dport 8080 dnat to 172\.17\.0\.\d+:80/);
  for (const [args, message] of [
    [['run', '-d', '--name', 'second', '-p', '8080:81', 'exec:/', 'sleep', '1000'], 'Error: Bind for 0.0.0.0:8080 failed: port is already allocated'],
    [['run', '-d', '--name', 'second', '-p', '127.0.0.1:8080:81', 'exec:/', 'sleep', '1000'], 'Error: Bind for 127.0.0.1:8080 failed: port is already allocated'],
    [['run', '-d', '--name', 'second', '-p', '80a', 'exec:/', 'sleep', '1000'], 'Error: invalid containerPort: 80a'],
  ] as const) {
    const res = await lab.cli(h, [...args]);
    expect(res.code).not.toBe(0);
    expect(res.stderr.trim()).toBe(message);
  }
  expect(records()).toEqual(before.records);
  expect(await hostVeths()).toEqual(before.veths);
  expect(await table()).toBe(before.table);
  // Another protocol on the same port is free; a port of 0 takes a free one.
  await sw(lab, h, ['run', '-d', '--name', 'second', '-p', '8080:81/udp', '-p', '80', 'exec:/', 'sleep', '1000']);
  expect(await sw(lab, h, ['port', 'second'])).toBe('80/tcp -> 0.0.0.0:32768\n81/udp -> 0.0.0.0:8080\n');
  // On the host's network, -p is discarded with docker's warning.
  const onHost = await lab.cli(h, ['run', '-d', '--name', 'onhost', '--network', 'host', '-p', '7070:80', 'exec:/', 'sleep', '1000']);
  expect({ code: onHost.code, err: onHost.stderr.trim() }).toEqual({ code: 0, err: 'WARNING: Published ports are discarded when using host network mode' });
  expect(await sw(lab, h, ['port', 'onhost'])).toBe('');
  await sw(lab, h, ['rm', '-f', 'holder', 'second', 'onhost']);
  expect(await table()).toBe('');
}, 180000);

test('the rules go when the container stops, come back on start, and survive a daemon restart', async () => {
  await sw(lab, h, ['run', '-d', '--name', 'svc', '-p', '9090:80', 'exec:/', process.execPath, '-e', SERVER]);
  await waitFor('the server answering', async () => ((await ask(client, h.addr, 9090)) === client.addr ? true : undefined));
  await sw(lab, h, ['stop', '-t', '1', 'svc']);
  expect(await table()).toBe('');
  expect((await inspect('svc')).NetworkSettings.Ports).toEqual({});
  expect(await sw(lab, h, ['port', 'svc'])).toBe('');

  await sw(lab, h, ['start', 'svc']);
  await waitFor('the server answering again', async () => ((await ask(client, h.addr, 9090)) === client.addr ? true : undefined));

  await lab.stopDaemon(h);
  // The kernel's rules outlive the daemon; one deleted meanwhile comes back at the next start.
  expect(await ask(client, h.addr, 9090)).toBe(client.addr);
  await lab.exec(h, ['nft', 'delete', 'table', 'ip', 'swarmlet-cpublish']);
  await lab.startDaemon(h);
  expect(await ask(client, h.addr, 9090)).toBe(client.addr);
  expect(await sw(lab, h, ['port', 'svc'])).toBe('80/tcp -> 0.0.0.0:9090\n');
  // Its port is still its own after the restart.
  const taken = await lab.cli(h, ['run', '-d', '-p', '9090:80', 'exec:/', 'sleep', '1000']);
  expect(taken.stderr.trim()).toBe('Error: Bind for 0.0.0.0:9090 failed: port is already allocated');
  await sw(lab, h, ['rm', '-f', 'svc']);
  expect(await table()).toBe('');
}, 240000);

test('run -P publishes the image\'s exposed port on a free host port: port shows it, and a client reaches the container there', async () => {
  await sw(lab, h, ['run', '-d', '-P', '--name', 'exposed', image]);
  const line = await sw(lab, h, ['port', 'exposed']);
  const m = /^80\/tcp -> 0\.0\.0\.0:(\d+)\n$/.exec(line);
  expect(m).not.toBeNull();
  const hostPort = Number(m![1]);
  expect(hostPort).toBeGreaterThan(0);
  expect(await sw(lab, h, ['port', 'exposed', '80'])).toBe(`0.0.0.0:${hostPort}\n`);
  expect((await inspect('exposed')).NetworkSettings.Ports).toEqual({ '80/tcp': [{ HostIp: '0.0.0.0', HostPort: String(hostPort) }] });
  // httpd in the container answers a lab client on the host's address, and the host on 127.0.0.1.
  for (const [from, addr] of [[client, h.addr], [h, '127.0.0.1']] as const) {
    const page = await waitFor(`the page from ${from.netns} at ${addr}:${hostPort}`, async () => {
      const r = await lab.exec(from, ['curl', '-s', '--max-time', '2', `http://${addr}:${hostPort}/`]);
      return r.code === 0 ? r.stdout : undefined;
    });
    expect(page).toBe('exposed\n');
  }
  await sw(lab, h, ['rm', '-f', 'exposed']);
  expect(await table()).toBe('');
}, 180000);
