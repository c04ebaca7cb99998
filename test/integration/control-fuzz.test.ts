/**
 * Property-based fuzz of every Control RPC's fields, over mutual TLS against a real Manager and a
 * real throwaway etcd (issue 14, bad input). Each request is a valid one with one to three of its
 * fields (at any depth, repeated and map entries included) replaced by hostile values of the same
 * type. Every call must succeed or end in a proper refusal: a status other than INTERNAL, UNKNOWN or
 * DEADLINE_EXCEEDED, with a one-line message. A refused call must leave etcd as it was: all keys and
 * values under /swarmlet/v1/, except heartbeats/ and managers/ (lease-held keys their owners rewrite
 * on their own). The manager must keep serving. fast-check prints the seed and the shrunk request on a
 * failure; FUZZ_SEED=<seed> replays it. Shrunk counterexamples the fuzz found are kept below as plain tests.
 */
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { keys, ROOT } from '../../manager/store/keys';
import { callUnary } from '../../services/api/handlers';
import { ControlClient, ControlService } from '../../services/gen/swarmlet/v1/control';
import { NetworkSpec, NodeAvailability, NodeRole, ServiceSpec } from '../../services/gen/swarmlet/v1/types';
import { createKeyAndCSR } from '../../services/pki/ca';
import { EtcdFixture, startEtcd } from './etcd-fixture';
import { startTlsManager, TlsManager } from './tls-manager';

let etcd: EtcdFixture;
let m: TlsManager;
let client: ControlClient;
let csrPem = '';

const RUNS = Number(process.env.FUZZ_RUNS ?? 25);
// A fixed seed in the suite, so a run of `npm test` is repeatable; FUZZ_SEED=random explores new inputs.
const SEED = process.env.FUZZ_SEED === 'random' ? undefined : Number(process.env.FUZZ_SEED ?? 20261205);

beforeAll(async () => {
  etcd = await startEtcd();
  m = await startTlsManager(etcd);
  client = m.control();
  csrPem = (await createKeyAndCSR('fuzz-operator')).csrPem;
  await call('createNetwork', { spec: NetworkSpec.fromPartial({ name: 'front', driver: 'overlay', attachable: true }) });
  await call('createService', { spec: richSpec(), registryAuth: '' });
  await settle();
}, 60000);

afterAll(async () => {
  await m?.stop();
  await etcd?.stop();
});

type Method = keyof typeof ControlService;

/** Calls a unary Control method by name. */
function call(method: Method, req: unknown): Promise<unknown> {
  const fn = (client as unknown as Record<string, unknown>)[method] as Parameters<typeof callUnary>[0];
  return callUnary(fn.bind(client), req, 10000);
}

function richSpec(): ServiceSpec {
  return ServiceSpec.fromPartial({
    name: 'web',
    labels: { tier: 'front' },
    mode: { $case: 'replicated', value: { replicas: 2 } },
    task: {
      container: {
        image: 'alpine:3.19',
        command: ['sleep'],
        args: ['100'],
        env: ['A=1'],
        dir: '/',
        user: '0',
        hostname: 'web',
        stopGracePeriodMs: 1000,
        mounts: [{ type: 0, source: '/tmp', target: '/data', readonly: true, tmpfsSizeBytes: 0 }],
        readOnly: false,
        init: false,
      },
      resources: { limits: { nanoCpus: 500000000, memoryBytes: 64 << 20, pids: 100, memorySwapBytes: 128 << 20 }, reservations: { nanoCpus: 0, memoryBytes: 0, pids: 0 } },
      restart: { condition: 1, delayMs: 100, maxAttempts: 3, windowMs: 1000 },
      placement: { constraints: ['node.role==worker'] },
      forceUpdate: 0,
      networks: ['front'],
    },
    update: { parallelism: 1, delayMs: 0, failureAction: 1, monitorMs: 100, maxFailureRatio: 0.5, order: 1 },
    rollback: { parallelism: 1, delayMs: 0, failureAction: 1, monitorMs: 100, maxFailureRatio: 0, order: 1 },
    endpoint: { mode: 1, ports: [{ protocol: 1, targetPort: 80, publishedPort: 30080, publishMode: 1 }] },
  });
}

/** A valid request of each unary method; the destructive ones come last, so the others meet the objects. */
const BASES: [Method, () => object][] = [
  ['getJoinToken', () => ({ role: NodeRole.NODE_ROLE_WORKER, rotate: false })],
  ['getDashboardToken', () => ({ rotate: false })],
  ['listNodes', () => ({})],
  ['getNode', () => ({ node: 'w1' })],
  ['updateNode', () => ({ node: 'w1', availability: NodeAvailability.NODE_AVAILABILITY_ACTIVE, labelAdd: { zone: 'a' }, labelRm: ['zone'] })],
  ['updateCluster', () => ({ heartbeatPeriodMs: 60000, nodeDownAfterMs: 600000 })],
  ['issueOperatorCertificate', () => ({ csrPem, name: 'fuzz' })],
  ['revokeOperatorCertificate', () => ({ serial: 'abc123' })],
  ['createNetwork', () => ({ spec: NetworkSpec.fromPartial({ name: 'back', driver: 'overlay', attachable: true, internal: false, ipam: { driver: 'default', configs: [{ subnet: '10.90.0.0/24', gateway: '10.90.0.1', ipRange: '10.90.0.0/25' }] } as never, options: { mtu: '1400' }, labels: { a: 'b' } }) })],
  ['listNetworks', () => ({})],
  ['getNetwork', () => ({ network: 'front' })],
  ['createService', () => ({ spec: { ...richSpec(), name: 'api', endpoint: { mode: 1, ports: [] } }, registryAuth: 'user:password' })],
  ['listServices', () => ({})],
  ['getService', () => ({ service: 'web' })],
  ['updateService', () => ({ service: 'web', version: 0, spec: richSpec(), rollback: false, registryAuth: '', clearRegistryAuth: false })],
  ['listTasks', () => ({ service: 'web', node: 'w1', all: true })],
  ['createSecret', () => ({ spec: { name: 'db_password', labels: { a: 'b' } }, data: Buffer.from('s3cret') })],
  ['listSecrets', () => ({})],
  ['getSecret', () => ({ secret: 'db_password' })],
  ['createConfig', () => ({ spec: { name: 'app.ini', labels: { a: 'b' } }, data: Buffer.from('[app]\nport = 80\n') })],
  ['listConfigs', () => ({})],
  ['getConfig', () => ({ config: 'app.ini' })],
  ['removeSecret', () => ({ secret: 'db_password' })],
  ['removeConfig', () => ({ config: 'app.ini' })],
  ['networkDoctor', () => ({ network: 'front' })],
  ['promoteNode', () => ({ nodes: ['w1'] })],
  ['demoteNode', () => ({ nodes: ['m1'] })],
  ['pruneNetworks', () => ({})],
  ['removeNetwork', () => ({ network: 'back' })],
  ['removeService', () => ({ service: 'api' })],
  ['removeNode', () => ({ node: 'w1', force: false })],
];

test('every unary Control method is fuzzed (ServiceLogs, the one stream, has its own property)', () => {
  const unary = Object.entries(ControlService).filter(([, d]) => !d.responseStream && !d.requestStream).map(([name]) => name).sort();
  expect(BASES.map(([name]) => name).sort()).toEqual(unary);
});

const HOSTILE_STRINGS = ['', ' ', '-', '--help', '..', '../../etc/passwd', '/', 'a'.repeat(300), 'x'.repeat(70000), 'web', 'front', 'm1', 'w1', '\u0000', '\n', 'é', '😀', '0', '-1', '1e309', 'NaN', '10.0.0.0/8', '0.0.0.0/0', '999.1.1.1', '::1', 'fe80::1%eth0', 'host', 'overlay', 'bridge', 'macvlan', 'ingress', 'null', '${x}', '%s', 'node.role==', '==', 'A', '=', 'a=b=c'];
const hostileString = fc.oneof(fc.constantFrom(...HOSTILE_STRINGS), fc.string({ maxLength: 30 }), fc.string({ unit: 'binary', maxLength: 12 }));
const hostileNumber = fc.oneof(fc.constantFrom(0, 1, -1, 2, 255, 65535, 65536, 2 ** 31 - 1, -(2 ** 31), 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER), fc.integer());

type Path = (string | number)[];

/** Every leaf of a request (strings, numbers, booleans), and every array and map as a whole. */
function paths(value: unknown, at: Path = []): { path: Path; kind: 'string' | 'number' | 'boolean' | 'strings' | 'map' }[] {
  if (typeof value === 'string') return [{ path: at, kind: 'string' }];
  if (typeof value === 'number') return [{ path: at, kind: 'number' }];
  if (typeof value === 'boolean') return [{ path: at, kind: 'boolean' }];
  if (Array.isArray(value)) {
    const whole = value.every((v) => typeof v === 'string') ? [{ path: at, kind: 'strings' as const }] : [];
    return [...whole, ...value.flatMap((v, i) => paths(v, [...at, i]))];
  }
  if (value && typeof value === 'object') {
    const entries = Object.entries(value);
    const isMap = at.length > 0 && ['labels', 'labelAdd', 'options'].includes(String(at[at.length - 1]));
    return [...(isMap ? [{ path: at, kind: 'map' as const }] : []), ...entries.filter(([k]) => k !== '$case').flatMap(([k, v]) => paths(v, [...at, k]))];
  }
  return [];
}

const valueOf = (kind: string): fc.Arbitrary<unknown> => {
  switch (kind) {
    case 'string':
      return hostileString;
    case 'number':
      return hostileNumber;
    case 'boolean':
      return fc.boolean();
    case 'strings':
      return fc.array(hostileString, { maxLength: 4 });
    default:
      return fc.dictionary(hostileString, hostileString, { maxKeys: 3 });
  }
};

function setAt(obj: unknown, path: Path, value: unknown): unknown {
  if (path.length === 0) return value;
  const [head, ...rest] = path;
  const copy = (Array.isArray(obj) ? [...obj] : { ...(obj as object) }) as Record<string | number, unknown>;
  copy[head] = setAt(copy[head], rest, value);
  return copy;
}

/** The base request with one to three of its fields replaced. */
function mutated(base: object): fc.Arbitrary<object> {
  const leaves = paths(base);
  if (leaves.length === 0) return fc.constant(base);
  const change = fc.integer({ min: 0, max: leaves.length - 1 }).chain((i) => valueOf(leaves[i].kind).map((v) => [leaves[i].path, v] as const));
  return fc.array(change, { minLength: 1, maxLength: 3 }).map((changes) => changes.reduce<object>((req, [p, v]) => setAt(req, p, v) as object, base));
}

/** The swarmlet keys and values, but for the lease-held ones their owners rewrite on their own. */
async function snapshot(): Promise<{ revision: string; kvs: Record<string, string> }> {
  const res = await etcd.client.getAll().prefix(ROOT).exec();
  const kvs: Record<string, string> = {};
  for (const kv of res.kvs) {
    const key = kv.key.toString();
    if (key.startsWith(keys.heartbeatsPrefix) || key.startsWith(keys.managersPrefix)) continue;
    kvs[key] = kv.value.toString();
  }
  return { revision: res.header.revision, kvs };
}

/** Waits until the leader's loops have written what a successful call set off: no revision change for 300 ms. */
async function settle(): Promise<void> {
  let last = (await snapshot()).revision;
  for (let i = 0; i < 50; i++) {
    await new Promise((r) => setTimeout(r, 300));
    const now = (await snapshot()).revision;
    if (now === last) return;
    last = now;
  }
}

const PROPER = new Set([grpc.status.INVALID_ARGUMENT, grpc.status.NOT_FOUND, grpc.status.ALREADY_EXISTS, grpc.status.FAILED_PRECONDITION, grpc.status.ABORTED, grpc.status.PERMISSION_DENIED, grpc.status.RESOURCE_EXHAUSTED]);
/** Calls that reach other nodes' agents may find them unreachable (w1 runs no agent here). */
const REACHES_AGENTS = new Set<Method>(['networkDoctor']);

/** One call: succeeds, or is refused properly and changes nothing. */
async function checkCall(method: Method, req: object): Promise<void> {
  const before = await snapshot();
  let err: grpc.ServiceError | undefined;
  try {
    await call(method, req);
  } catch (e) {
    err = e as grpc.ServiceError;
  }
  if (err?.details?.startsWith('Request message serialization failure')) return; // the client could not send it: nothing reached the manager
  if (!err) {
    await settle();
    return;
  }
  const proper = PROPER.has(err.code) || (REACHES_AGENTS.has(method) && err.code === grpc.status.UNAVAILABLE);
  if (!proper || !err.details || err.details.includes('\n')) throw new Error(`${method} answered ${grpc.status[err.code]}: ${JSON.stringify(err.details)}`);
  const after = await snapshot();
  expect(after.kvs).toEqual(before.kvs);
  // The manager still serves.
  await call('listNodes', {});
}

describe.each(BASES)('Control.%s', (method, base) => {
  test('succeeds or is refused with a proper status and one line, changing nothing', async () => {
    await fc.assert(
      fc.asyncProperty(mutated(base()), (req) => checkCall(method, req)),
      { numRuns: RUNS, seed: SEED, endOnFailure: false, interruptAfterTimeLimit: 60000 },
    );
  }, 120000);
});

test('Control.ServiceLogs (without follow) ends with a proper status or its lines', async () => {
  await fc.assert(
    fc.asyncProperty(fc.record({ service: hostileString, follow: fc.constant(false), tail: hostileNumber }), async (req) => {
      const status = await new Promise<grpc.StatusObject>((resolve) => {
        const stream = client.serviceLogs(req, new grpc.Metadata(), { deadline: Date.now() + 10000 });
        stream.on('data', () => undefined);
        stream.on('error', () => undefined);
        stream.on('status', resolve);
      });
      if (status.code !== grpc.status.OK && !PROPER.has(status.code) && status.code !== grpc.status.UNAVAILABLE) throw new Error(`ServiceLogs answered ${grpc.status[status.code]}: ${status.details}`);
      expect(status.details.includes('\n')).toBe(false);
      await call('listNodes', {});
    }),
    { numRuns: RUNS, seed: SEED },
  );
}, 120000);

describe('counterexamples the fuzz found, kept as plain tests', () => {
  /** The status a call was refused with. */
  async function refusedWith(method: Method, req: object): Promise<{ code: number; details: string }> {
    try {
      await call(method, req);
    } catch (e) {
      return { code: (e as grpc.ServiceError).code, details: (e as grpc.ServiceError).details };
    }
    throw new Error(`${method} was expected to be refused`);
  }

  // A reference of 70000 characters was repeated in the NOT_FOUND message; the 70 KB trailer was
  // over the client's metadata limit, so the caller got no status at all.
  test.each([
    ['getNode', { node: 'x'.repeat(70000) }, 'node'],
    ['getService', { service: 'x'.repeat(70000) }, 'service'],
    ['getNetwork', { network: 'x'.repeat(70000) }, 'network'],
  ] as [Method, object, string][])('%s with a 70000-character reference is INVALID_ARGUMENT, in one short line', async (method, req, what) => {
    expect(await refusedWith(method, req)).toEqual({ code: grpc.status.INVALID_ARGUMENT, details: `${what} reference is too long: 70000 characters, at most 255` });
  });

  test('a refusal that repeats a 70000-character name still reaches the caller, its message cut at 1024 characters', async () => {
    const before = await snapshot();
    const st = await refusedWith('createNetwork', { spec: NetworkSpec.fromPartial({ name: 'x'.repeat(70000), driver: 'overlay' }) });
    expect(st.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(st.details.length).toBeLessThanOrEqual(1024);
    expect((await snapshot()).kvs).toEqual(before.kvs);
  });
});

describe('a reference with a control character is refused in one line', () => {
  // Shrunk from ServiceLogs: the newline in the reference was repeated in the NOT_FOUND message.
  test('ServiceLogs of "\\u0000\\n\\u0000"', async () => {
    const status = await new Promise<grpc.StatusObject>((resolve) => {
      const stream = client.serviceLogs({ service: '\u0000\n\u0000', follow: false, tail: 0 }, new grpc.Metadata(), { deadline: Date.now() + 10000 });
      stream.on('error', () => undefined);
      stream.on('status', resolve);
    });
    expect({ code: status.code, details: status.details }).toEqual({ code: grpc.status.INVALID_ARGUMENT, details: 'service reference "\\u0000\\n\\u0000" has a control character' });
  });

  test.each([
    ['getNode', { node: 'w\n1' }],
    ['removeService', { service: 'web\nx' }],
    ['removeNetwork', { network: 'front\r\n' + 'x' }],
  ] as [Method, object][])('%s', async (method, req) => {
    const before = await snapshot();
    await expect(call(method, req)).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.not.stringContaining('\n') });
    expect((await snapshot()).kvs).toEqual(before.kvs);
  });
});
