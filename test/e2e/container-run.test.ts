/**
 * `run` without -d, as a student types it over and over: `run --rm IMAGE echo hi` prints `hi`,
 * exits 0 and comes back (no hang, nothing lost), on the exec and the oci runtime, on one lab host
 * whose daemon is in no swarm; `logs` of a container that is not there says so and exits (a failed
 * server stream used to send no status, and its client waited on); and a container started before
 * `swarm init` still runs after it. Run through test/run.sh.
 */
import type { Lab, LabHost } from '../lab/lab';
import { oneHostWithBusybox, sw, tearDownLab, waitFor } from './cluster-helpers';
import type { TestRegistry } from '../support/registry';

let lab: Lab;
let h: LabHost;
let registry: TestRegistry;
let image: string;
// Before the fix about half of these hung in the last log read of a container --rm had removed.
const RUNS = 10;

beforeAll(async () => {
  ({ lab, h, registry, image } = await oneHostWithBusybox('swcr'));
}, 180000);

afterAll(() => tearDownLab(lab, registry), 60000);

const runs = (ref: () => string) => async () => {
  const seen: string[] = [];
  for (let i = 0; i < RUNS; i++) {
    // Two lines, the last written just before the exit: the follow used to be cut before it.
    const r = await lab.cli(h, ['run', '--rm', ref(), 'sh', '-c', `echo hi ${i}; echo bye ${i}`], { timeoutMs: 20_000 });
    seen.push(`${r.code} ${JSON.stringify(r.stdout)} ${r.stderr.trim()}`);
  }
  expect(seen).toEqual(Array.from({ length: RUNS }, (_, i) => `0 ${JSON.stringify(`hi ${i}\nbye ${i}\n`)} `));
};

test('run --rm exec:/ sh -c echo; echo, many times: each prints both lines and exits 0', runs(() => 'exec:/'), 600000);
test('run --rm IMAGE sh -c echo; echo, many times: each prints both lines and exits 0', runs(() => image), 600000);

test('logs of a container that is not there: one error line, exit 1, no hang', async () => {
  for (const args of [['logs', 'nosuch'], ['logs', '-f', 'nosuch']]) {
    const r = await lab.cli(h, args, { timeoutMs: 20_000 });
    expect({ code: r.code, stderr: r.stderr.trim() }).toEqual({ code: 1, stderr: 'Error: No such container: nosuch' });
  }
}, 60000);

// The worker takes every cgroup under the task runtime's parent for a task; containers' cgroups used to sit
// inside it, so the worker's first pass after init removed them as strays and killed every running container.
test('containers started before swarm init keep running through it', async () => {
  const names = ['keep-exec', 'keep-oci'];
  await sw(lab, h, ['run', '-d', '--name', names[0], 'exec:/', 'sleep', '100000']);
  await sw(lab, h, ['run', '-d', '--name', names[1], image, 'sleep', '100000']);
  const pids = async () => {
    const shown = JSON.parse(await sw(lab, h, ['inspect', ...names])) as { State: { Status: string; Pid: number } }[];
    return shown.map((c) => `${c.State.Status} ${c.State.Pid}`);
  };
  const before = await pids();
  expect(before.every((l) => /^running [1-9]\d*$/.test(l))).toBe(true);
  await sw(lab, h, ['swarm', 'init', '--advertise-addr', h.addr]);
  // The worker's first pass (stray removal included) runs once the node's session is up: wait for the node to be Ready.
  await waitFor('the node to be Ready', async () => ((await sw(lab, h, ['node', 'ls'])).includes('Ready') ? true : undefined), 60_000);
  await new Promise((r) => setTimeout(r, 3000));
  expect(await pids()).toEqual(before);
}, 120000);
