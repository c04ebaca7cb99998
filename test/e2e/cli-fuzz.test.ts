/**
 * Property-based fuzz of the CLI verbs' flags (issue 14, bad input), through the built CLI against a
 * real daemon (one lab host, a swarm of one). Each run fills a verb's flags with hostile values. A
 * command either succeeds, or exits non-zero with one error line on stderr (no stack trace); a
 * refused command changes nothing the Control API shows (nodes' specs, services, networks); the
 * daemon keeps serving. Bounded: FUZZ_RUNS runs in all (default 80). fast-check prints the seed and
 * the shrunk command on a failure; FUZZ_SEED=<seed> replays it. Run through test/run.sh.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { Lab, LabHost, requireBuiltCli } from '../lab/lab';
import { callUnary } from '../../services/api/handlers';
import { ControlClient } from '../../services/gen/swarmlet/v1/control';
import { sw } from './cluster-helpers';
import { uniqueSuffix } from '../support/unique';
import { waitFor } from '../support/runtime-wait';

let lab: Lab;
let h: LabHost;
let control: ControlClient;

const RUNS = Number(process.env.FUZZ_RUNS ?? 80);
// A fixed seed in the suite, so a run of `npm test` is repeatable; FUZZ_SEED=random explores new inputs.
const SEED = process.env.FUZZ_SEED === 'random' ? undefined : Number(process.env.FUZZ_SEED ?? 20261205);

beforeAll(async () => {
  requireBuiltCli();
  lab = await Lab.create({ prefix: `swz${uniqueSuffix()}`, hosts: 1 });
  h = lab.host(1);
  await lab.startDaemon(h);
  await sw(lab, h, ['swarm', 'init', '--advertise-addr', h.addr]);
  await sw(lab, h, ['network', 'create', '--driver', 'overlay', 'front']);
  await sw(lab, h, ['service', 'create', '--name', 'web', '--replicas', '0', '--network', 'front', 'exec:/', 'sleep', '100']);
  control = new ControlClient(h.socket, grpc.credentials.createInsecure());
  // The allocator gives web its VIP on front after the create returns: the state the runs compare is the one after it.
  await waitFor('web to get its VIP on front', async () => (await callUnary(control.listServices.bind(control), {})).services[0]?.service?.endpoint?.virtualIps.length, 60000);
}, 120000);

afterAll(async () => {
  control?.close();
  await lab?.destroy();
}, 60000);

/** What a refused command must leave as it was: every node's spec, every service, every network. */
async function state(): Promise<string> {
  const [nodes, services, networks] = await Promise.all([
    callUnary(control.listNodes.bind(control), {}),
    callUnary(control.listServices.bind(control), {}),
    callUnary(control.listNetworks.bind(control), {}),
  ]);
  return JSON.stringify({ nodes: nodes.nodes.map((n) => [n.id, n.role, n.spec]), services, networks });
}

const hostile = fc.oneof(
  fc.constantFrom('', ' ', '-', '--', '-1', '0', '1', '1.5', '1e309', 'NaN', 'abc', '=', 'a=b=c', 'x'.repeat(300), '\n', 'é😀', '${x}', '/', '../..', '10.0.0.0/8', '999.1.1.1', '80:80', '70000:80', 'tcp', 'any', 'bogus', 'node.role==', 'type=bind', 'type=volume,source=/x', '-5s', '1h', '10g', '-10m'),
  fc.string({ maxLength: 16 }),
);

/** Verbs with their flags; V marks a value the fuzz fills in. */
const V = Symbol('value');
type Template = (string | typeof V)[];
const TEMPLATES: Template[] = [
  ['service', 'create', '--name', V, '--replicas', V, '--label', V, '--env', V, 'exec:/', 'sleep', '100'],
  ['service', 'create', '--name', 'fz', '--constraint', V, '--publish', V, '--mount', V, 'exec:/', 'sleep', '100'],
  ['service', 'create', '--name', 'fz', '--limit-cpu', V, '--limit-memory', V, '--reserve-memory', V, '--limit-pids', V, 'exec:/'],
  ['service', 'create', '--name', 'fz', '--restart-condition', V, '--restart-delay', V, '--update-parallelism', V, '--update-max-failure-ratio', V, '--update-order', V, 'exec:/'],
  ['service', 'create', '--name', 'fz', '--network', V, '--workdir', V, '--user', V, '--hostname', V, V],
  ['service', 'update', '--replicas', V, '--update-delay', V, '--rollback-monitor', V, 'web'],
  ['service', 'update', '--label-add', V, '--env-add', V, V],
  ['service', 'scale', V],
  ['service', 'rm', V],
  ['service', 'inspect', V],
  ['service', 'ps', V],
  ['network', 'create', '--driver', V, '--subnet', V, '--gateway', V, '--ip-range', V, V],
  ['network', 'create', '--opt', V, '--label', V, V],
  ['network', 'rm', V],
  ['network', 'inspect', V],
  ['node', 'update', '--availability', V, '--label-add', V, '--label-rm', V, V],
  ['node', 'inspect', V],
  ['node', 'rm', V],
  ['node', 'promote', V],
  ['swarm', 'update', '--dispatcher-heartbeat', V, '--node-down-after', V],
  ['swarm', 'join-token', V],
  ['volume', 'create', V],
  ['volume', 'rm', V],
];

const command: fc.Arbitrary<string[]> = fc.constantFrom(...TEMPLATES).chain((t) => fc.tuple(...t.map((part) => (part === V ? hostile : fc.constant(part)))));

test('every CLI command with hostile flag values succeeds, or exits non-zero with one error line and changes nothing', async () => {
  await fc.assert(
    fc.asyncProperty(command, async (args) => {
      const before = await state();
      const res = await lab.cli(h, args, { timeoutMs: 30000 });
      if (res.code === 0) return;
      const err = res.stderr.trim();
      if (!err || err.includes('\n') || /\n\s+at /.test(res.stderr)) throw new Error(`swarmlet ${JSON.stringify(args)} exited ${res.code} with stderr ${JSON.stringify(res.stderr)}`);
      expect(await state()).toEqual(before);
    }),
    { numRuns: RUNS, seed: SEED, interruptAfterTimeLimit: 240000 },
  );
  // The daemon kept serving.
  expect(await sw(lab, h, ['node', 'ls', '-q'])).not.toBe('');
}, 300000);

test(`an input over the request limits is refused in one line, and changes nothing`, async () => {
  // Arguments cannot carry megabytes (E2BIG); a file the CLI reads and sends can. Through the local
  // socket (64 MiB) the request reaches the manager, and etcd's 1.5 MiB limit refuses it.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'swz-fuzz-'));
  try {
    const file = path.join(dir, 'auth');
    fs.writeFileSync(file, `user:${'p'.repeat(5 * 1024 * 1024)}`);
    const before = await state();
    const res = await lab.cli(h, ['service', 'create', '--name', 'huge', '--replicas', '0', '--registry-auth-file', file, 'alpine:3.19'], { timeoutMs: 30000 });
    expect(res.code).not.toBe(0);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stderr).toMatch(/too large: \d+ bytes, limit \d+/);
    expect(await state()).toEqual(before);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 60000);
