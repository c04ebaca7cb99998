/**
 * Service specs through the real gRPC Control API (a grpc-js server on a unix socket, a generated
 * client, a real throwaway etcd): the defaults a spec that sets nothing gets, field by field, and
 * the refusals that leave nothing written.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { callUnary } from '../../services/api/handlers';
import { ControlClient, ControlService, CreateServiceRequest } from '../../services/gen/swarmlet/v1/control';
import { DeepPartial, RestartCondition, Service, ServiceSpec, UpdateConfig, UpdateFailureAction, UpdateOrder } from '../../services/gen/swarmlet/v1/types';
import { serviceControl } from '../../manager/service-control';
import { EtcdStore } from '../../manager/store/etcd-store';
import { ROOT } from '../../manager/store/keys';
import { EtcdFixture, startEtcd } from './etcd-fixture';

const log = pino({ level: 'silent' });
let etcd: EtcdFixture;
let dir: string;
let server: grpc.Server;
let client: ControlClient;

beforeAll(async () => {
  etcd = await startEtcd();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'swl-spec-api-'));
  server = new grpc.Server();
  server.addService(ControlService, serviceControl({ store: new EtcdStore(etcd.client), log, tls: () => ({ caCertPem: '', certPem: '', keyPem: '' }) as never }));
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

const create = (spec: ServiceSpec) => callUnary(client.createService.bind(client), CreateServiceRequest.fromPartial({ spec }));
const get = (ref: string) => callUnary(client.getService.bind(client), { service: ref });
const update = (current: Service, spec: ServiceSpec) =>
  callUnary(client.updateService.bind(client), { service: current.id, version: current.meta!.version, spec, rollback: false, registryAuth: '', clearRegistryAuth: false });
const bare = (name: string, more: DeepPartial<ServiceSpec> = {}) => ServiceSpec.fromPartial({ name, task: { container: { image: 'exec:/', args: ['sleep', '100'] } }, ...more });

const RESTART_DEFAULTS = { condition: RestartCondition.RESTART_CONDITION_ANY, delayMs: 5000, maxAttempts: 0, windowMs: 0 };
const UPDATE_DEFAULTS = {
  parallelism: 1,
  delayMs: 0,
  failureAction: UpdateFailureAction.UPDATE_FAILURE_ACTION_PAUSE,
  monitorMs: 5000,
  maxFailureRatio: 0,
  order: UpdateOrder.UPDATE_ORDER_STOP_FIRST,
};

describe('service defaults through the gRPC API', () => {
  test.each([
    ['no restart, update or rollback message', bare('none-set')],
    ['empty restart, update and rollback messages', bare('empty-set', { update: {}, rollback: {}, task: { container: { image: 'exec:/', args: ['sleep', '100'] }, restart: {} } })],
  ])('%s: every default, as stored and as read back', async (_what, spec) => {
    const created = await create(spec);
    for (const s of [created, await get(spec.name)]) {
      expect(s.spec?.task?.restart).toEqual(RESTART_DEFAULTS);
      expect(s.spec?.update).toEqual(UPDATE_DEFAULTS);
      expect(s.spec?.rollback).toEqual(UPDATE_DEFAULTS);
      expect(s.spec?.mode).toEqual({ $case: 'replicated', value: { replicas: 1 } });
      expect(s.spec?.task?.container?.stopGracePeriodMs).toBe(10000);
    }
  });

  test('explicit zeros (no restart delay, parallelism 0: all at once, no monitor) are kept, on create and on update', async () => {
    const zeros = bare('zeros', { update: { parallelism: 0, monitorMs: 0 }, task: { container: { image: 'exec:/', args: ['sleep', '100'] }, restart: { delayMs: 0 } } });
    const created = await create(zeros);
    expect(created.spec?.update).toEqual({ ...UPDATE_DEFAULTS, parallelism: 0, monitorMs: 0 });
    expect(created.spec?.task?.restart?.delayMs).toBe(0);
    // An update that sets the update config's parallelism alone: the other fields get their defaults.
    const next = await update(created, { ...created.spec!, update: UpdateConfig.fromPartial({ parallelism: 3 }) });
    expect(next.spec?.update).toEqual({ ...UPDATE_DEFAULTS, parallelism: 3 });
    expect((await get('zeros')).spec?.task?.restart?.delayMs).toBe(0);
  });
});

describe('refusals through the gRPC API write nothing', () => {
  const refusal = (p: Promise<unknown>) => p.then(() => { throw new Error('expected a refusal'); }, (err: grpc.ServiceError) => [err.code, err.details]);
  const huge = `CONFIG=${'x'.repeat(300 * 1024)}`;

  test('a spec over 256 KiB, at create and at update', async () => {
    const [code, details] = await refusal(create(bare('big', { task: { container: { image: 'exec:/', args: ['sleep', '100'], env: [huge] } } })));
    expect(code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(details).toMatch(/the service spec is too large \(\d+ KiB\): the most is 256 KiB/);
    expect((await etcd.client.getAll().prefix(ROOT).keys()).filter((k) => k.includes('service'))).toEqual([]);
    const small = await create(bare('small'));
    const grown = { ...small.spec!, task: { ...small.spec!.task!, container: { ...small.spec!.task!.container!, env: [huge] } } };
    const [code2, details2] = await refusal(update(small, grown));
    expect(code2).toBe(grpc.status.INVALID_ARGUMENT);
    expect(details2).toMatch(/the most is 256 KiB/);
    const after = await get('small');
    expect(after.meta?.version).toBe(small.meta?.version);
    expect(after.spec?.task?.container?.env).toEqual([]);
  });

  test('a name with _ is accepted; one with a capital is refused', async () => {
    expect((await create(bare('my_nginx'))).spec?.name).toBe('my_nginx');
    const [code, details] = await refusal(create(bare('My_nginx')));
    expect(code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(details).toMatch(/invalid service name "My_nginx"/);
  });
});
