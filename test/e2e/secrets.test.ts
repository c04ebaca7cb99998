/**
 * secrets and configs end to end on a lab of three hosts (h1 manager, h2 and h3 workers): a
 * secret is visible in its task at /run/secrets/NAME (and at a target of its own, with its mode),
 * and nowhere else: not in etcd or anywhere on the nodes' disks in clear, not on the host outside
 * the task, not in `service inspect` or `secret inspect`, not in the daemons' logs; a config is
 * mounted over its target; `secret rm` is refused while a service uses it, and the task's files go
 * with the task. Run through test/run.sh after `npm run build`.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Lab, LabHost, requireBuiltCli } from '../lab/lab';
import { formSwarm, hostOfTask, runningTasks, sw, waitFor } from './cluster-helpers';
import { uniqueSuffix } from '../support/unique';

const prefix = `swk${uniqueSuffix()}`;
let lab: Lab;
let h1: LabHost;
const VALUE = `s3cr3t-${randomBytes(12).toString('hex')}`;
const CONFIG = `config-${randomBytes(8).toString('hex')}\n`;

beforeAll(async () => {
  requireBuiltCli();
  lab = await Lab.create({ prefix, hosts: 3 });
  [h1] = lab.hosts;
  await formSwarm(lab, [h1], [lab.host(2), lab.host(3)]);
}, 120000);

afterAll(async () => {
  await lab?.destroy();
}, 60000);

/** Every file under `dir` (on the machine's disk, or a tmpfs below it) that holds `text`. */
async function filesHolding(dir: string, text: string): Promise<string[]> {
  const res = await lab.exec(h1, ['grep', '-rlF', '--', text, dir]);
  return res.stdout.split('\n').filter(Boolean);
}

test('a secret is in its task at /run/secrets and nowhere else; a config is at its target; rm is refused while used', async () => {
  const file = join(lab.baseDir, 'secret.txt');
  writeFileSync(file, VALUE, { mode: 0o600 });
  writeFileSync(join(lab.baseDir, 'config.txt'), CONFIG);
  const id = (await sw(lab, h1, ['secret', 'create', '--label', 'team=lab', 'pw', file])).trim();
  expect(id).toMatch(/^[0-9a-z]+$/);
  await sw(lab, h1, ['config', 'create', 'motd', join(lab.baseDir, 'config.txt')]);
  await sw(lab, h1, [
    'service', 'create', '--name', 'sec', '--constraint', `node.hostname==${lab.host(2).name}`,
    '--secret', 'pw', '--secret', 'source=pw,target=db/password,mode=0400',
    '--config', 'source=motd,target=/etc/hostname',
    'exec:/', 'sleep', '1000',
  ]);
  const [task] = await waitFor('the task running', async () => {
    const ts = await runningTasks(lab, h1, 'sec');
    return ts.length === 1 ? ts : undefined;
  }, 60000);
  expect(await hostOfTask(lab, h1, task)).toBe(lab.host(2));
  const pid = task.status!.container!.pid!;

  // In the task: the value, read-only, with the modes asked for; the config over its target.
  expect((await lab.execInTask(pid, ['cat', '/run/secrets/pw'])).stdout).toBe(VALUE);
  expect((await lab.execInTask(pid, ['cat', '/run/secrets/db/password'])).stdout).toBe(VALUE);
  expect((await lab.execInTask(pid, ['stat', '-c', '%a %u', '/run/secrets/pw', '/run/secrets/db/password'])).stdout).toBe('444 0\n400 0\n');
  expect((await lab.execInTask(pid, ['sh', '-c', 'echo x > /run/secrets/pw'])).code).not.toBe(0);
  expect((await lab.execInTask(pid, ['cat', '/etc/hostname'])).stdout).toBe(CONFIG);

  // Outside the task: not at /run/secrets, not in the host's /etc/hostname.
  expect((await lab.exec(lab.host(2), ['test', '-e', '/run/secrets/pw'])).code).not.toBe(0);
  expect(readFileSync('/etc/hostname', 'utf8')).not.toBe(CONFIG);

  // Not on any node's disk (etcd's data included): only on the tmpfs of the node that runs the task.
  for (const h of lab.hosts) {
    const found = await filesHolding(h.dataDir, VALUE);
    for (const f of found) expect(f.startsWith(join(h.dataDir, 'task-files', task.id))).toBe(true);
    if (h === lab.host(2)) {
      expect(found.length).toBe(2);
      const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
      expect(mounts.some((l) => l.split(' ')[4] === join(h.dataDir, 'task-files') && / - tmpfs /.test(l))).toBe(true);
    } else expect(found).toEqual([]);
  }
  // Not in what the API shows, nor in the logs.
  const shown = [
    await sw(lab, h1, ['service', 'inspect', '--format', 'api', 'sec']),
    await sw(lab, h1, ['secret', 'inspect', 'pw']),
    await sw(lab, h1, ['secret', 'ls', '--format', 'api']),
    await sw(lab, h1, ['service', 'ps', 'sec', '--format', 'api']),
  ];
  for (const s of shown) expect(s).not.toContain(VALUE);
  expect(JSON.parse(shown[1])[0]).toMatchObject({ ID: id, Spec: { Name: 'pw', Labels: { team: 'lab' } } });
  expect(JSON.parse(await sw(lab, h1, ['config', 'inspect', 'motd']))[0].Spec.Data).toBe(Buffer.from(CONFIG).toString('base64'));
  for (const h of lab.hosts) expect(readFileSync(h.logFile, 'utf8')).not.toContain(VALUE);

  // Refused while in use, naming the service; nothing removed.
  const refused = await lab.cli(h1, ['secret', 'rm', 'pw']);
  expect(refused.code).not.toBe(0);
  expect(refused.stderr.trim()).toBe("Error: secret 'pw' is in use by the following service: sec");
  expect(await sw(lab, h1, ['secret', 'ls', '-q'])).toBe(`${id}\n`);

  // The service goes: its task's files go from the node, and the secret can be removed.
  await sw(lab, h1, ['service', 'rm', 'sec']);
  await waitFor('the task files gone', async () => ((await filesHolding(lab.host(2).dataDir, VALUE)).length === 0 ? true : undefined), 30000);
  await sw(lab, h1, ['secret', 'rm', 'pw']);
  await sw(lab, h1, ['config', 'rm', 'motd']);
  expect(await sw(lab, h1, ['secret', 'ls', '-q'])).toBe('');
}, 240000);

test('bad input: one clear line, and nothing made', async () => {
  const missing = await lab.cli(h1, ['secret', 'create', 'x', join(lab.baseDir, 'no-such-file')]);
  expect(missing.code).not.toBe(0);
  expect(missing.stderr.trim().split('\n')).toHaveLength(1);
  expect(missing.stderr).toContain('no such file');
  const unknown = await lab.cli(h1, ['service', 'create', '--name', 'bad', '--secret', 'nope', 'exec:/', 'sleep', '1']);
  expect(unknown.stderr.trim()).toBe('Error: no such secret: nope');
  const badFlag = await lab.cli(h1, ['service', 'create', '--name', 'bad', '--secret', 'source=x,mode=999', 'exec:/', 'sleep', '1']);
  expect(badFlag.stderr.trim().split('\n')).toHaveLength(1);
  expect(badFlag.code).not.toBe(0);
  expect(await sw(lab, h1, ['service', 'ls', '-q'])).toBe('');
  expect(await sw(lab, h1, ['secret', 'ls', '-q'])).toBe('');
}, 60000);
