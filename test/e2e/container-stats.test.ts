/**
 * `stats`, `top`, `kill -s` and the `container exec|attach` aliases as students type them, on one
 * lab host whose daemon is in no swarm: exec: containers and an OCI busybox on crun (whose shim
 * shares the container's cgroup but is never shown). Run through test/run.sh.
 */
import type { Lab, LabHost } from '../lab/lab';
import { oneHostWithBusybox, sw, tearDownLab, waitFor } from './cluster-helpers';
import type { TestRegistry } from '../support/registry';
import type { StatsEntry } from '../../agent/containers/stats-plans';

let lab: Lab;
let h: LabHost;
let registry: TestRegistry;
let image: string;

const inspect = async (ref: string) => (JSON.parse(await sw(lab, h, ['inspect', ref])) as { Id: string; State: { Pid: number; Running: boolean; Status: string } }[])[0];
const statsJson = async (...refs: string[]) =>
  (await sw(lab, h, ['stats', '--no-stream', '--format', 'api', ...refs])).split('\n').filter(Boolean).map((l) => JSON.parse(l) as StatsEntry);
const UNITS: Record<string, number> = { B: 1, kB: 1e3, MB: 1e6, GB: 1e9 };
const rxBytes = (netIo: string) => {
  const m = /^([\d.]+)(B|kB|MB|GB) \//.exec(netIo)!;
  return Number(m[1]) * UNITS[m[2]];
};
const topRows = (out: string) => out.trim().split('\n').slice(1).map((l) => l.split(/\s+/));

beforeAll(async () => {
  ({ lab, h, registry, image } = await oneHostWithBusybox('swst'));
}, 180000);

afterAll(() => tearDownLab(lab, registry), 60000);

test('stats --no-stream: docker\'s columns from the cgroup and the interfaces; a busy container uses CPU, a limit shows, traffic counts', async () => {
  const id = (await sw(lab, h, ['run', '-d', '--name', 'busy', '-m', '64m', 'exec:/', 'sh', '-c', 'while :; do :; done'])).trim();
  await sw(lab, h, ['run', '-d', '--name', 'idle', 'exec:/', 'sleep', '1000']);
  const text = await sw(lab, h, ['stats', '--no-stream', 'busy']);
  const [header, row] = text.trim().split('\n');
  expect(header).toMatch(/^CONTAINER ID\s+NAME\s+CPU %\s+MEM USAGE \/ LIMIT\s+MEM %\s+NET I\/O\s+BLOCK I\/O\s+PIDS$/);
  expect(row).toMatch(new RegExp(`^${id.slice(0, 12)}\\s+busy\\s+[\\d.]+%\\s+[\\d.]+[KMG]?i?B / 64MiB\\s+[\\d.]+%\\s+\\S+ / \\S+\\s+\\S+ / \\S+\\s+2$`));

  const [busy] = await statsJson('busy');
  expect(busy).toMatchObject({ ID: id.slice(0, 12), Container: id.slice(0, 12), Name: 'busy', PIDs: '2' });
  expect(Number.parseFloat(busy.CPUPerc)).toBeGreaterThan(1);
  const [idle] = await statsJson('idle');
  expect(Number.parseFloat(idle.CPUPerc)).toBeLessThan(Number.parseFloat(busy.CPUPerc));
  // No limit: the host's memory.
  expect(idle.MemUsage).not.toMatch(/\/ 64MiB$/);

  // Pings of 1400 bytes from another container on the bridge are received by busy's interface.
  const ip = ((JSON.parse(await sw(lab, h, ['inspect', 'busy'])) as { NetworkSettings: { Networks: Record<string, { IPAddress: string }> } }[])[0]).NetworkSettings.Networks.bridge.IPAddress;
  await sw(lab, h, ['run', '--rm', 'exec:/', 'busybox', 'ping', '-c', '2', '-s', '1400', '-W', '2', ip]);
  const [after] = await statsJson('busy');
  expect(rxBytes(after.NetIO) - rxBytes(busy.NetIO)).toBeGreaterThanOrEqual(2 * 1400 - 20);

  // Without names: the running containers; -a adds a stopped one, with zeros and --.
  await sw(lab, h, ['stop', '-t', '1', 'idle']);
  expect((await statsJson()).map((e) => e.Name)).toEqual(['busy']);
  const all = await statsJson('-a');
  expect(all.map((e) => e.Name).sort()).toEqual(['busy', 'idle']);
  expect(all.find((e) => e.Name === 'idle')).toMatchObject({ CPUPerc: '0.00%', MemUsage: '0B / 0B', NetIO: '--', BlockIO: '--', PIDs: '0' });

  const missing = await lab.cli(h, ['stats', '--no-stream', 'nosuch']);
  expect(missing.code).not.toBe(0);
  expect(missing.stderr.trim()).toBe('Error: No such container: nosuch');
  await sw(lab, h, ['rm', '-f', 'busy', 'idle']);
}, 300000);

test('top: ps -ef of the container\'s processes with host pids; the crun shim is not one of them', async () => {
  await sw(lab, h, ['run', '-d', '--name', 'pair', 'exec:/', 'sh', '-c', 'sleep 1001 & exec sleep 1002']);
  const pid = (await inspect('pair')).State.Pid;
  const out = await waitFor('both sleeps in top', async () => {
    const o = await sw(lab, h, ['top', 'pair']);
    return o.includes('sleep 1001') && o.includes('sleep 1002') ? o : undefined;
  });
  expect(out.split('\n')[0]).toMatch(/^UID\s+PID\s+PPID\s+C\s+STIME\s+TTY\s+TIME\s+CMD$/);
  // The exec runtime's pid 1 is its init (it forwards signals to the command, as docker's --init does).
  const rows = topRows(out);
  const cmds = rows.map((r) => r.slice(7).join(' '));
  expect(cmds).toHaveLength(3);
  expect(cmds[0]).toMatch(/^swarmlet-init .* sh -c sleep 1001 & exec sleep 1002$/);
  expect(cmds.slice(1)).toEqual(['sleep 1002', 'sleep 1001']);
  expect(rows[0].slice(0, 2)).toEqual(['root', String(pid)]);
  expect(rows[0][6]).toMatch(/^\d\d:\d\d:\d\d$/);
  const main = rows[1];
  expect(main[2]).toBe(String(pid));
  expect(rows[2][2]).toBe(main[1]);

  await sw(lab, h, ['run', '-d', '--name', 'oci', image, 'sleep', '1003']);
  const oci = topRows(await sw(lab, h, ['container', 'top', 'oci']));
  expect(oci.map((r) => r.slice(7).join(' '))).toEqual(['sleep 1003']);
  expect(oci[0][1]).toBe(String((await inspect('oci')).State.Pid));
  const [ociStats] = await statsJson('oci');
  expect(ociStats.PIDs).toBe('1');

  await sw(lab, h, ['stop', '-t', '1', 'oci']);
  const stopped = await lab.cli(h, ['top', 'oci']);
  expect(stopped.code).not.toBe(0);
  expect(stopped.stderr.trim()).toMatch(/^Error: container [0-9a-f]{64} is not running$/);
  await sw(lab, h, ['rm', '-f', 'pair', 'oci']);
}, 300000);

test('kill -s: any signal reaches the main process, which goes on running; a bad one is refused and nothing changes', async () => {
  await sw(lab, h, ['run', '-d', '--name', 'trapper', 'exec:/', 'sh', '-c', 'trap "echo got-hup" HUP; trap "echo got-usr1" USR1; echo ready; while :; do sleep 0.2; done']);
  await waitFor('the trap set', async () => ((await sw(lab, h, ['logs', 'trapper'])).includes('ready') ? true : undefined));
  expect(await sw(lab, h, ['kill', '-s', 'HUP', 'trapper'])).toBe('trapper\n');
  expect(await sw(lab, h, ['container', 'kill', '--signal', 'SIGUSR1', 'trapper'])).toBe('trapper\n');
  await waitFor('both signals trapped', async () => {
    const logs = await sw(lab, h, ['logs', 'trapper']);
    return logs.includes('got-hup') && logs.includes('got-usr1') ? true : undefined;
  });
  expect((await inspect('trapper')).State.Running).toBe(true);

  const bad = await lab.cli(h, ['kill', '-s', 'BOGUS', 'trapper']);
  expect(bad.code).not.toBe(0);
  expect(bad.stderr.trim()).toBe('Error: invalid signal: BOGUS');
  expect((await inspect('trapper')).State.Running).toBe(true);

  expect(await sw(lab, h, ['kill', '-s', '9', 'trapper'])).toBe('trapper\n');
  expect((await inspect('trapper')).State).toMatchObject({ Running: false, Status: 'exited' });
  await sw(lab, h, ['rm', 'trapper']);
}, 300000);

test('container exec is the top-level exec (container attach is the top-level attach, the same command)', async () => {
  await sw(lab, h, ['run', '-d', '--name', 'shell', 'exec:/', 'sh', '-c', 'echo from-main; exec sleep 1000']);
  expect(await sw(lab, h, ['container', 'exec', 'shell', 'sh', '-c', 'echo exec-$((1+2))'])).toBe('exec-3\n');
  const bad = await lab.cli(h, ['container', 'exec', 'shell']);
  expect(bad.code).not.toBe(0);
  expect(bad.stderr).toMatch(/requires at least 2 arguments/);
  await sw(lab, h, ['rm', '-f', 'shell']);
}, 300000);

test('logs -f ends when the container exits, with every line once; on a stopped container it prints and ends', async () => {
  await sw(lab, h, ['run', '-d', '--name', 'brief', 'exec:/', 'sh', '-c', 'echo first; sleep 2; echo second; echo third']);
  const followed = await lab.cli(h, ['logs', '-f', 'brief'], { timeoutMs: 30000 });
  expect(followed).toMatchObject({ code: 0, stdout: 'first\nsecond\nthird\n' });
  expect(await sw(lab, h, ['logs', '-f', '--tail', '1', 'brief'])).toBe('third\n');
  await sw(lab, h, ['rm', 'brief']);
}, 300000);
