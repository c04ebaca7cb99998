/**
 * `run` without -d, as a student types it over and over: `run --rm IMAGE echo hi` prints `hi`,
 * exits 0 and comes back (no hang, nothing lost), on the exec and the oci runtime, on one lab host
 * whose daemon is in no swarm; `logs` of a container that is not there says so and exits (a failed
 * server stream used to send no status, and its client waited on). Run through test/run.sh.
 */
import { Lab, LabHost, requireBuiltCli } from '../lab/lab';
import { busyboxRegistry } from './cluster-helpers';
import { uniqueSuffix } from '../support/unique';
import type { TestRegistry } from '../support/registry';

let lab: Lab;
let h: LabHost;
let registry: TestRegistry;
let image: string;
const REGISTRY = '198.51.100.200:5000';
// Before the fix about half of these hung in the last log read of a container --rm had removed.
const RUNS = 10;

beforeAll(async () => {
  requireBuiltCli();
  lab = await Lab.create({ prefix: `swcr${uniqueSuffix()}`, hosts: 1, insecureRegistries: [REGISTRY] });
  h = lab.host(1);
  ({ registry, image } = await busyboxRegistry(lab, REGISTRY));
  await lab.startDaemon(h);
}, 180000);

afterAll(async () => {
  await registry?.stop();
  await lab?.destroy();
}, 60000);

const runs = (ref: () => string) => async () => {
  const seen: string[] = [];
  for (let i = 0; i < RUNS; i++) {
    const r = await lab.cli(h, ['run', '--rm', ref(), 'echo', `hi ${i}`], { timeoutMs: 20_000 });
    seen.push(`${r.code} ${JSON.stringify(r.stdout)} ${r.stderr.trim()}`);
  }
  expect(seen).toEqual(Array.from({ length: RUNS }, (_, i) => `0 ${JSON.stringify(`hi ${i}\n`)} `));
};

test('run --rm exec:/ echo, many times: each prints its line and exits 0', runs(() => 'exec:/'), 600000);
test('run --rm IMAGE echo, many times: each prints its line and exits 0', runs(() => image), 600000);

test('logs of a container that is not there: one error line, exit 1, no hang', async () => {
  for (const args of [['logs', 'nosuch'], ['logs', '-f', 'nosuch']]) {
    const r = await lab.cli(h, args, { timeoutMs: 20_000 });
    expect({ code: r.code, stderr: r.stderr.trim() }).toEqual({ code: 1, stderr: 'Error: No such container: nosuch' });
  }
}, 60000);
