/**
 * Container flags of issue 12 part F, on one lab host in no swarm: `logs` keeps every run and
 * gives docker's `-t` and `--since` (with `-f` and `--tail`), stdout and stderr apart. Run
 * through test/run.sh.
 */
import { Lab, LabHost, requireBuiltCli } from '../lab/lab';
import { sw, waitFor } from './cluster-helpers';
import { uniqueSuffix } from '../support/unique';

let lab: Lab;
let h: LabHost;

beforeAll(async () => {
  requireBuiltCli();
  lab = await Lab.create({ prefix: `swcf${uniqueSuffix()}`, hosts: 1 });
  h = lab.host(1);
  await lab.startDaemon(h);
}, 180000);

afterAll(async () => {
  await lab?.destroy();
}, 60000);

const STAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z /;

test('logs keep every run across restarts, stdout and stderr apart; -t, --since, -f and --tail', async () => {
  // Each run writes a line to stdout, then (later) one to stderr, then waits.
  await sw(lab, h, ['run', '-d', '--name', 'talker', 'exec:/', 'sh', '-c', 'echo out; sleep 0.2; echo err >&2; exec sleep 1000']);
  await waitFor('the first run\'s stderr line', async () => ((await lab.cli(h, ['logs', 'talker'])).stderr.includes('err') ? true : undefined));
  await sw(lab, h, ['restart', '-t', '0', 'talker']);
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
