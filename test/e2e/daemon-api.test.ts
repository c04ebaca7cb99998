/**
 * One daemon's API as an operator's program sees it: gRPC health and reflection on the unix
 * socket, clear statuses for requests that cannot be served, and refused requests that change
 * nothing. Run through test/run.sh.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { Lab, LabHost, requireBuiltCli } from '../lab/lab';
import { ControlClient, LocalNodeClient } from '../../services/gen/swarmlet/v1/control';
import { NodeRole } from '../../services/gen/swarmlet/v1/types';
import { sw } from './cluster-helpers';
import { uniqueSuffix } from '../support/unique';

let lab: Lab;
let h: LabHost;
const clients: grpc.Client[] = [];

function load(protoFile: string, includeDir: string) {
  return grpc.loadPackageDefinition(protoLoader.loadSync(protoFile, { includeDirs: [includeDir], keepCase: true, enums: String })) as any;
}
const healthProto = load('health/v1/health.proto', path.dirname(path.dirname(path.dirname(require.resolve('grpc-health-check/proto/health/v1/health.proto')))));
const reflectionProto = load('grpc/reflection/v1/reflection.proto', path.join(path.dirname(require.resolve('@grpc/reflection/package.json')), 'build', 'proto'));

function unary<Res>(client: any, method: string, req: unknown): Promise<Res> {
  return new Promise((resolve, reject) => client[method](req, { deadline: Date.now() + 20000 }, (err: Error | null, res: Res) => (err ? reject(err) : resolve(res))));
}

function track<T extends grpc.Client>(c: T): T {
  clients.push(c);
  return c;
}

beforeAll(async () => {
  requireBuiltCli();
  lab = await Lab.create({ prefix: `swa${uniqueSuffix()}`, hosts: 1 });
  h = lab.host(1);
  await lab.startDaemon(h);
}, 60000);

afterAll(async () => {
  clients.forEach((c) => c.close());
  await lab?.destroy();
}, 60000);

const insecure = () => grpc.credentials.createInsecure();

test('health checking and server reflection answer on the unix socket', async () => {
  const health = track(new healthProto.grpc.health.v1.Health(h.socket, insecure()));
  expect(await unary(health, 'Check', { service: '' })).toEqual({ status: 'SERVING' });
  expect(await unary(health, 'Check', { service: 'swarmlet.v1.Control' })).toEqual({ status: 'SERVING' });
  await expect(unary(health, 'Check', { service: 'no.such.Service' })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });

  const reflection = track(new reflectionProto.grpc.reflection.v1.ServerReflection(h.socket, insecure()));
  const names = await new Promise<string[]>((resolve, reject) => {
    const stream = reflection.ServerReflectionInfo();
    stream.on('data', (res: any) => {
      resolve(res.list_services_response.service.map((s: { name: string }) => s.name));
      stream.end();
    });
    stream.on('error', reject);
    stream.write({ list_services: '' });
  });
  expect(names).toEqual(expect.arrayContaining(['swarmlet.v1.LocalNode', 'swarmlet.v1.Control']));
});

test('before init, Control answers FAILED_PRECONDITION and info says inactive', async () => {
  const control = track(new ControlClient(h.socket, insecure()));
  await expect(unary(control, 'listNodes', {})).rejects.toMatchObject({ code: grpc.status.FAILED_PRECONDITION, details: expect.stringMatching(/not part of a swarm/) });
  const local = track(new LocalNodeClient(h.socket, insecure()));
  expect(await unary(local, 'info', {})).toMatchObject({ localState: 'inactive', nodeId: '' });
});

test('before init, network ls and inspect show the local networks, as docker does on every node', async () => {
  const ls = await sw(lab, h, ['network', 'ls']);
  expect(ls).toMatch(/^NETWORK ID\s+NAME\s+DRIVER\s+SCOPE/);
  expect(ls).toMatch(/\nbridge\s+bridge\s+bridge\s+local\s+172\.17\.0\.0\/16\n/);
  expect(ls).toMatch(/\nhost\s+host\s+host\s+local\s*\n/);
  expect(ls).toMatch(/\nnone\s+none\s+none\s+local\s*\n/);
  expect(ls.trim().split('\n')).toHaveLength(4);
  const [bridge] = JSON.parse(await sw(lab, h, ['network', 'inspect', 'bridge', '--format', 'api'])) as { spec: { driver: string }; subnet: string; endpoints: unknown[] }[];
  expect(bridge).toMatchObject({ spec: { driver: 'bridge' }, subnet: '172.17.0.0/16', endpoints: [] });
  const missing = await lab.cli(h, ['network', 'inspect', 'appnet']);
  expect(missing.code).toBe(1);
  expect(missing.stderr).toBe('Error: network appnet not found\n');
});

test.each([
  [{ advertiseAddr: 'not-an-ip' }, /invalid --advertise-addr/],
  [{ advertiseAddr: '198.51.100.99' }, /not an address of this host/],
  [{ listenAddr: '0.0.0.0:99999' }, /invalid port/],
  [{ etcdEndpoints: ['ftp://x'] }, /invalid etcd endpoint/],
])('init with bad input %j is INVALID_ARGUMENT and writes nothing', async (bad, message) => {
  const local = track(new LocalNodeClient(h.socket, insecure()));
  await expect(unary(local, 'init', { advertiseAddr: h.addr, listenAddr: '', etcdEndpoints: [], ...bad })).rejects.toMatchObject({
    code: grpc.status.INVALID_ARGUMENT,
    details: expect.stringMatching(message),
  });
  expect(fs.readdirSync(h.dataDir)).toEqual([]);
});

test('join towards an address where no manager listens is UNAVAILABLE and writes nothing', async () => {
  const local = track(new LocalNodeClient(h.socket, insecure()));
  const token = `SWLTKN-1-${'1'.repeat(50)}-${'2'.repeat(25)}`;
  await expect(unary(local, 'join', { token, remoteAddr: `${h.addr}:2377`, advertiseAddr: '', listenAddr: '' })).rejects.toMatchObject({
    code: grpc.status.UNAVAILABLE,
    details: expect.stringMatching(/could not reach a manager at/),
  });
  expect(fs.readdirSync(h.dataDir)).toEqual([]);
});

test('after init, the Control API answers on TCP to a manager certificate, health included; leave wipes the node', async () => {
  await sw(lab, h, ['init', '--advertise-addr', h.addr]);
  const certs = path.join(h.dataDir, 'certs');
  // TCP addresses live in the host's namespace: the CLI runs there, with the node's own certificate.
  const overTcp = await lab.cli(h, ['-H', `tcp://${h.addr}:2377`, '--cert-dir', certs, 'node', 'ls', '--format', 'api']);
  expect(overTcp.code).toBe(0);
  expect(JSON.parse(overTcp.stdout)).toHaveLength(1);
  const control = track(new ControlClient(h.socket, insecure()));
  const token = await unary<{ token: string }>(control, 'getJoinToken', { role: NodeRole.NODE_ROLE_MANAGER, rotate: false });
  expect(token.token).toMatch(/^SWLTKN-1-/);

  await sw(lab, h, ['swarm', 'leave', '--force']);
  expect(fs.existsSync(path.join(h.dataDir, 'state.json'))).toBe(false);
  expect(fs.existsSync(certs)).toBe(false);
  expect(fs.existsSync(path.join(h.dataDir, 'etcd'))).toBe(false);
  const local = track(new LocalNodeClient(h.socket, insecure()));
  expect(await unary(local, 'info', {})).toMatchObject({ localState: 'inactive' });
}, 60000);
