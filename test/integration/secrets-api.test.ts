/**
 * secrets and configs through the real gRPC Control API (grpc-js on a unix socket, a real
 * throwaway etcd): values sealed in etcd and never returned for a secret, services' references
 * resolved, and the refusals (bad names, taken names, unknown references, removal while in use)
 * that leave nothing changed.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { callUnary } from '../../services/api/handlers';
import { ControlClient, ControlService, CreateServiceRequest } from '../../services/gen/swarmlet/v1/control';
import { Service, ServiceSpec } from '../../services/gen/swarmlet/v1/types';
import { serviceControl } from '../../manager/service-control';
import { fileObjectControl } from '../../manager/file-object-control';
import { EtcdStore } from '../../manager/store/etcd-store';
import { ROOT } from '../../manager/store/keys';
import { newSealKey } from '../../services/pki/seal';
import { EtcdFixture, startEtcd } from './etcd-fixture';

const log = pino({ level: 'silent' });
const sealKey = newSealKey();
let etcd: EtcdFixture;
let dir: string;
let server: grpc.Server;
let client: ControlClient;

beforeAll(async () => {
  etcd = await startEtcd();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'swl-secrets-api-'));
  server = new grpc.Server();
  const store = new EtcdStore(etcd.client);
  server.addService(ControlService, {
    ...serviceControl({ store, log, tls: () => ({ caCertPem: '', certPem: '', keyPem: '' }) as never, sealKey: () => sealKey }),
    ...fileObjectControl({ store, log, sealKey: () => sealKey }),
  } as never);
  const socket = `unix://${path.join(dir, 'control.sock')}`;
  await new Promise<void>((resolve, reject) => server.bindAsync(socket, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())));
  client = new ControlClient(socket, grpc.credentials.createInsecure());
}, 30000);

afterAll(async () => {
  client?.close();
  await new Promise<void>((resolve) => (server ? server.tryShutdown(() => resolve()) : resolve()));
  await etcd?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

beforeEach(async () => {
  await etcd.client.delete().prefix(ROOT).exec();
});

const VALUE = 'hunter2-the-value-itself';
const createSecret = (name: string, data = VALUE, labels: Record<string, string> = {}) => callUnary(client.createSecret.bind(client), { spec: { name, labels }, data: Buffer.from(data) });
const createConfig = (name: string, data: string) => callUnary(client.createConfig.bind(client), { spec: { name, labels: {} }, data: Buffer.from(data) });
const createService = (spec: ServiceSpec) => callUnary(client.createService.bind(client), CreateServiceRequest.fromPartial({ spec }));
const updateService = (current: Service, spec: ServiceSpec) =>
  callUnary(client.updateService.bind(client), { service: current.id, version: 0, spec, rollback: false, registryAuth: '', clearRegistryAuth: false });
const withRefs = (name: string, secrets: { secretName: string; file?: { name: string; uid: number; gid: number; mode: number } }[], configs: { configName: string }[] = []) =>
  ServiceSpec.fromPartial({ name, task: { container: { image: 'exec:/', args: ['sleep', '100'], secrets, configs } } });
const rawEtcd = async () => Object.entries(await etcd.client.getAll().prefix(ROOT).buffers()).map(([k, v]) => `${k}=${v.toString('latin1')}`).join('\n');
const code = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (err) {
    return { code: (err as grpc.ServiceError).code, details: (err as grpc.ServiceError).details };
  }
  throw new Error('the call succeeded');
};

test('a secret is sealed in etcd and its value never comes back; ls and inspect show its metadata', async () => {
  const created = await createSecret('db-password', VALUE, { env: 'lab' });
  expect(created.spec).toEqual({ name: 'db-password', labels: { env: 'lab' } });
  expect(created.dataSealed.length).toBe(0);
  const dump = await rawEtcd();
  expect(dump).toContain('db-password');
  expect(dump).not.toContain(VALUE);
  expect(dump).not.toContain(Buffer.from(VALUE).toString('base64'));
  const { secrets } = await callUnary(client.listSecrets.bind(client), {});
  expect(secrets.map((s) => [s.spec?.name, s.dataSealed.length])).toEqual([['db-password', 0]]);
  const got = await callUnary(client.getSecret.bind(client), { secret: created.id.slice(0, 6) });
  expect(got.id).toBe(created.id);
  expect(JSON.stringify(got)).not.toContain(VALUE);
});

test('a config keeps its value sealed too, and its inspect shows it', async () => {
  const created = await createConfig('nginx.conf', 'worker_processes 1;\n');
  expect(await rawEtcd()).not.toContain('worker_processes');
  const got = await callUnary(client.getConfig.bind(client), { config: 'nginx.conf' });
  expect(got.config?.id).toBe(created.id);
  expect(Buffer.from(got.data).toString()).toBe('worker_processes 1;\n');
});

test('bad names, empty values and taken names are refused, and nothing is written', async () => {
  await createSecret('taken');
  const before = await rawEtcd();
  expect(await code(createSecret('bad name'))).toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
  expect(await code(createSecret('empty', ''))).toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
  expect(await code(createSecret('big', 'x'.repeat(500 * 1024 + 1)))).toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
  expect(await code(createSecret('taken'))).toMatchObject({ code: grpc.status.ALREADY_EXISTS });
  expect(await rawEtcd()).toBe(before);
});

test("a service's references get the secret's id and their file targets; an unknown one is refused and nothing is made", async () => {
  const secret = await createSecret('api-key');
  const config = await createConfig('app.ini', 'a=1');
  const service = await createService(withRefs('web', [{ secretName: 'api-key', file: { name: 'key', uid: 33, gid: 33, mode: 0o400 } }], [{ configName: 'app.ini' }]));
  expect(service.spec?.task?.container?.secrets).toEqual([{ secretId: secret.id, secretName: 'api-key', file: { name: 'key', uid: 33, gid: 33, mode: 0o400 } }]);
  expect(service.spec?.task?.container?.configs).toEqual([{ configId: config.id, configName: 'app.ini', file: { name: '/app.ini', uid: 0, gid: 0, mode: 0o444 } }]);
  const before = await rawEtcd();
  expect(await code(createService(withRefs('api', [{ secretName: 'nope' }])))).toMatchObject({ code: grpc.status.NOT_FOUND, details: 'no such secret: nope' });
  expect(await rawEtcd()).toBe(before);
});

test('an update that sends the same references back makes no new spec version', async () => {
  await createSecret('s1');
  const service = await createService(withRefs('web', [{ secretName: 's1' }]));
  const again = await updateService(service, withRefs('web', [{ secretName: 's1' }]));
  expect(again.specVersion).toBe(service.specVersion);
  const changed = await updateService(again, withRefs('web', [{ secretName: 's1', file: { name: 'other', uid: 0, gid: 0, mode: 0 } }]));
  expect(changed.specVersion).toBe(service.specVersion + 1);
});

test('a secret or config a service uses is not removed, naming the services; once unused it is', async () => {
  await createSecret('shared');
  await createConfig('conf', 'x');
  const a = await createService(withRefs('alpha', [{ secretName: 'shared' }], [{ configName: 'conf' }]));
  await createService(withRefs('beta', [{ secretName: 'shared' }]));
  const before = await rawEtcd();
  expect(await code(callUnary(client.removeSecret.bind(client), { secret: 'shared' }))).toEqual({
    code: grpc.status.FAILED_PRECONDITION,
    details: "secret 'shared' is in use by the following services: alpha, beta",
  });
  expect(await code(callUnary(client.removeConfig.bind(client), { config: 'conf' }))).toMatchObject({ details: "config 'conf' is in use by the following service: alpha" });
  expect(await rawEtcd()).toBe(before);
  await callUnary(client.removeService.bind(client), { service: 'beta' });
  // alpha drops it: its previous spec (a rollback's) still holds it until the next update.
  const dropped = await updateService(a, withRefs('alpha', [], []));
  expect(await code(callUnary(client.removeSecret.bind(client), { secret: 'shared' }))).toMatchObject({ details: "secret 'shared' is in use by the following service: alpha" });
  await callUnary(client.removeService.bind(client), { service: dropped.id });
  await callUnary(client.removeSecret.bind(client), { secret: 'shared' });
  await callUnary(client.removeConfig.bind(client), { config: 'conf' });
  expect((await callUnary(client.listSecrets.bind(client), {})).secrets).toEqual([]);
  // Its name is free again.
  await createSecret('shared');
});
