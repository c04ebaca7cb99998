/**
 * Container flags of issue 12 part F, on one lab host in no swarm: `logs` keeps every run and
 * gives docker's `-t` and `--since` (with `-f` and `--tail`), stdout and stderr apart, as `attach`
 * without a tty does; `--read-only` (with `--tmpfs`), `--init` (zombies reaped, a prompt stop),
 * `--memory-swap`, on an OCI image from a registry in the lab and on exec: images. Run through
 * test/run.sh.
 */
import type { Lab, LabHost } from '../lab/lab';
import { oneHostWithBusybox, sw, tearDownLab, waitFor } from './cluster-helpers';
import type { TestRegistry } from '../support/registry';

let lab: Lab;
let h: LabHost;
let registry: TestRegistry;
let image: string;

beforeAll(async () => {
  ({ lab, h, registry, image } = await oneHostWithBusybox('swcf'));
}, 180000);

afterAll(() => tearDownLab(lab, registry), 60000);

interface Inspect {
  State: { Status: string; ExitCode: number };
  HostConfig: { Memory: number; MemorySwap: number; ReadonlyRootfs: boolean; Init: boolean | null };
}
const inspect = async (ref: string): Promise<Inspect> => (JSON.parse(await sw(lab, h, ['inspect', ref])) as Inspect[])[0];
const names = async () => (await sw(lab, h, ['ps', '-a', '--format', 'api'])).match(/"Name": "\/[^"]+"/g) ?? [];

const STAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z /;

test('logs keep every run across restarts, stdout and stderr apart; -t, --since, -f and --tail', async () => {
  // Each run writes a line to stdout, then (later) one to stderr, then waits.
  await sw(lab, h, ['run', '-d', '--name', 'talker', 'exec:/', 'sh', '-c', 'echo out; sleep 0.2; echo err >&2; exec sleep 1000']);
  await waitFor('the first run\'s stderr line', async () => ((await lab.cli(h, ['logs', 'talker'])).stderr.includes('err') ? true : undefined));
  // A stop by SIGTERM (its init forwards it to sleep): a SIGKILL would add unshare's complaint to stderr.
  await sw(lab, h, ['restart', '-t', '5', 'talker']);
  await waitFor('the second run\'s stderr line', async () => ((await lab.cli(h, ['logs', 'talker'])).stderr.split('\n').length === 3 ? true : undefined));

  // Both runs, each line on the stream it was written to.
  const all = await lab.cli(h, ['logs', 'talker']);
  expect(all.code).toBe(0);
  expect(all.stdout).toBe('out\nout\n');
  expect(all.stderr).toBe('err\nerr\n');

  // -t: docker's RFC 3339 time before each line; they run in order.
  const stamped = await lab.cli(h, ['logs', '-t', 'talker']);
  const outLines = stamped.stdout.trimEnd().split('\n');
  expect(outLines).toHaveLength(2);
  for (const l of [...outLines, ...stamped.stderr.trimEnd().split('\n')]) expect(l).toMatch(STAMP);
  expect(outLines.map((l) => l.replace(STAMP, ''))).toEqual(['out', 'out']);
  const secondRun = outLines[1].split(' ')[0];
  expect(Date.parse(secondRun)).toBeGreaterThanOrEqual(Date.parse(outLines[0].split(' ')[0]));

  // --since the second run's first line: only the second run.
  const since = await lab.cli(h, ['logs', '--since', secondRun, 'talker']);
  expect([since.code, since.stdout, since.stderr]).toEqual([0, 'out\n', 'err\n']);
  // Relative and Unix-seconds forms.
  expect((await lab.cli(h, ['logs', '--since', '1h', 'talker'])).stdout).toBe('out\nout\n');
  const future = String(Math.floor(Date.now() / 1000) + 3600);
  expect(await lab.cli(h, ['logs', '--since', future, 'talker'])).toMatchObject({ code: 0, stdout: '', stderr: '' });
  // --tail counts the last lines of both streams (docker's), after --since.
  expect(await lab.cli(h, ['logs', '--tail', '1', 'talker'])).toMatchObject({ code: 0, stdout: '', stderr: 'err\n' });

  // -f -t --tail 1 follows until the container stops, and the lines that come meanwhile are there with their times.
  const follow = lab.cli(h, ['logs', '-f', '-t', '--tail', '1', '--since', secondRun, 'talker']);
  await new Promise((r) => setTimeout(r, 500));
  await sw(lab, h, ['stop', '-t', '1', 'talker']);
  const followed = await follow;
  expect(followed.code).toBe(0);
  expect(followed.stderr).toMatch(new RegExp(`${STAMP.source}err\\n$`));
  expect(followed.stdout).toBe('');

  // Bad values: one line, non-zero, nothing shown.
  const bad = await lab.cli(h, ['logs', '--since', 'yesterday', 'talker']);
  expect(bad.code).not.toBe(0);
  expect(bad.stderr.trim().split('\n')).toEqual([expect.stringContaining('failed to parse value as time or duration: "yesterday"')]);
  expect(bad.stdout).toBe('');
  await sw(lab, h, ['rm', 'talker']);
}, 120000);

test('--read-only: the root cannot be written, a --tmpfs can; the exec runtime says it cannot', async () => {
  const script = 'touch /x 2>/dev/null && echo root-writable || echo root-read-only; touch /scratch/y && echo tmpfs-writable';
  const ro = await lab.cli(h, ['run', '--rm', '--read-only', '--tmpfs', '/scratch', image, 'sh', '-c', script]);
  expect([ro.code, ro.stdout]).toEqual([0, 'root-read-only\ntmpfs-writable\n']);
  const rw = await lab.cli(h, ['run', '--rm', '--tmpfs', '/scratch', image, 'sh', '-c', script]);
  expect([rw.code, rw.stdout]).toEqual([0, 'root-writable\ntmpfs-writable\n']);
  // inspect shows it, as docker's HostConfig.ReadonlyRootfs.
  await sw(lab, h, ['container', 'create', '--name', 'rofs', '--read-only', image, 'true']);
  expect((await inspect('rofs')).HostConfig.ReadonlyRootfs).toBe(true);
  await sw(lab, h, ['rm', 'rofs']);

  const before = await names();
  const exec = await lab.cli(h, ['run', '--name', 'roexec', '--read-only', 'exec:/', 'true']);
  expect(exec.code).not.toBe(0);
  expect(exec.stderr.trim().split('\n')).toEqual([expect.stringContaining('--read-only is not available on the exec runtime')]);
  expect(await names()).toEqual(before);
}, 180000);

/** The states of the container's processes, from inside it (R, S, Z...). */
const states = async (ref: string): Promise<string[]> => {
  const text = await sw(lab, h, ['exec', ref, 'sh', '-c', 'cat /proc/[0-9]*/stat 2>/dev/null; true']);
  return [...text.matchAll(/^\d+ \((\S+)\) (\w)/gm)].map((m) => `${m[1]}:${m[2]}`);
};

test('--init: docker-init is pid 1, reaps an orphan that the command would leave a zombie, and stop ends a shell at once', async () => {
  // An orphan that exits after writing a file: without an init, `exec sleep` as pid 1 never reaps it.
  const orphan = ['sh', '-c', '(sh -c "sleep 0.3; touch /tmp/done" &); exec sleep 1000'];
  await sw(lab, h, ['run', '-d', '--name', 'noinit', image, ...orphan]);
  await sw(lab, h, ['run', '-d', '--init', '--name', 'withinit', image, ...orphan]);
  expect(await sw(lab, h, ['exec', 'withinit', 'cat', '/proc/1/cmdline'])).toMatch(/^\/sbin\/docker-init\0--\0sh\0/);
  expect((await inspect('withinit')).HostConfig.Init).toBe(true);
  // (The orphan's shell may exec touch: the zombie has either name.)
  await waitFor('the zombie without an init', async () => ((await states('noinit')).some((s) => s.endsWith(':Z')) ? true : undefined));
  await waitFor('the orphan done with an init', async () => ((await lab.cli(h, ['exec', 'withinit', 'test', '-e', '/tmp/done'])).code === 0 ? true : undefined));
  // A zombie left would stay: one second after, there is none.
  await new Promise((r) => setTimeout(r, 1000));
  const st = await states('withinit');
  expect(st).toEqual(expect.arrayContaining(['docker-init:S', 'sleep:S']));
  expect(st.filter((s) => s.endsWith(':Z') || s.startsWith('touch:'))).toEqual([]);

  // A shell as pid 1 ignores SIGTERM (stop waits out its grace, then kills: 137); under the init it ends of it (143).
  const shell = ['sh', '-c', 'sleep 1000; true'];
  await sw(lab, h, ['run', '-d', '--name', 'shellpid1', image, ...shell]);
  await sw(lab, h, ['run', '-d', '--init', '--name', 'shellinit', image, ...shell]);
  await sw(lab, h, ['stop', '-t', '3', 'shellpid1', 'shellinit']);
  expect((await inspect('shellpid1')).State).toMatchObject({ Status: 'exited', ExitCode: 137 });
  expect((await inspect('shellinit')).State).toMatchObject({ Status: 'exited', ExitCode: 143 });
  await sw(lab, h, ['rm', '-f', 'noinit', 'withinit', 'shellpid1', 'shellinit']);
}, 180000);

test('--memory-swap: -1 and N >= --memory are taken (inspect shows them); docker\'s messages for bad ones, and nothing made', async () => {
  await sw(lab, h, ['container', 'create', '--name', 'swapfree', '--memory', '64m', '--memory-swap', '-1', 'exec:/', 'true']);
  await sw(lab, h, ['container', 'create', '--name', 'swap128', '--memory', '64m', '--memory-swap', '128m', 'exec:/', 'true']);
  expect((await inspect('swapfree')).HostConfig).toMatchObject({ Memory: 67108864, MemorySwap: -1 });
  expect((await inspect('swap128')).HostConfig).toMatchObject({ Memory: 67108864, MemorySwap: 134217728 });
  await sw(lab, h, ['rm', 'swapfree', 'swap128']);
  const before = await names();
  for (const [args, message] of [
    [['--memory', '64m', '--memory-swap', '32m'], 'Minimum memoryswap limit should be larger than memory limit, see usage'],
    [['--memory-swap', '128m'], 'You should always set the Memory limit when using Memoryswap limit, see usage'],
  ] as const) {
    const res = await lab.cli(h, ['run', '-d', ...args, 'exec:/', 'true']);
    expect(res.code).not.toBe(0);
    expect(res.stderr.trim().split('\n')).toEqual([expect.stringContaining(message)]);
  }
  expect(await names()).toEqual(before);
}, 120000);

test('attach without a tty keeps stdout and stderr apart', async () => {
  await sw(lab, h, ['run', '-d', '--name', 'twostreams', 'exec:/', 'sh', '-c', 'i=0; while [ $i -lt 16 ]; do echo out$i; echo err$i >&2; sleep 0.5; i=$((i+1)); done; exit 3']);
  const res = await lab.cli(h, ['attach', 'twostreams']);
  expect(res.code).toBe(3);
  const out = res.stdout.trim().split('\n');
  const err = res.stderr.trim().split('\n').filter((l) => /^err\d+$/.test(l));
  expect(out.length).toBeGreaterThan(0);
  for (const l of out) expect(l).toMatch(/^out\d+$/);
  expect(err.length).toBeGreaterThan(0);
  expect(res.stderr).not.toMatch(/out\d/);
  await sw(lab, h, ['rm', 'twostreams']);
}, 120000);
