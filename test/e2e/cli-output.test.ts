/**
 * `--format` as docker users type it, on a one-host swarm: `json` prints docker-shaped rows (one
 * object per line, docker's field names and words: Ready, Running, Leader), a Go template picks
 * fields (`{{.Name}}`, `{{.Spec.Mode.Replicated.Replicas}}`), `table TEMPLATE` prints the columns it
 * names under docker's headers, `api` keeps the API's own objects, and a broken template is one
 * line and changes nothing. And `completion bash`, sourced into a real bash, completes the names
 * the daemon knows. Run through test/run.sh after `npm run build`.
 */
import { join } from 'node:path';
import { findRepoRoot, Lab, LabHost, requireBuiltCli } from '../lab/lab';
import { formSwarm, sw, waitFor } from './cluster-helpers';
import { uniqueSuffix } from '../support/unique';

const prefix = `swf${uniqueSuffix()}`;
let lab: Lab;
let h1: LabHost;

beforeAll(async () => {
  requireBuiltCli();
  lab = await Lab.create({ prefix, hosts: 1 });
  [h1] = lab.hosts;
  await formSwarm(lab, [h1], []);
  await sw(lab, h1, ['service', 'create', '-d', '--name', 'web', '--replicas', '2', 'exec:/', 'sleep', '1000']);
  await waitFor('web running', async () => ((await sw(lab, h1, ['service', 'ls', '--format', '{{.Replicas}}'])).trim() === '2/2' ? true : undefined), 60000);
}, 120000);

afterAll(async () => {
  await lab?.destroy();
}, 60000);

const lines = (s: string) => s.split('\n').filter(Boolean);

test('ls and ps --format json: one docker-shaped object per line', async () => {
  const services = lines(await sw(lab, h1, ['service', 'ls', '--format', 'json'])).map((l) => JSON.parse(l));
  expect(services).toEqual([expect.objectContaining({ Name: 'web', Mode: 'replicated', Replicas: '2/2', Image: 'exec:/' })]);
  expect(Object.keys(services[0]).sort()).toEqual(['ID', 'Image', 'Mode', 'Name', 'Ports', 'Replicas']);

  const tasks = lines(await sw(lab, h1, ['service', 'ps', 'web', '--format', 'json'])).map((l) => JSON.parse(l));
  expect(tasks).toHaveLength(2);
  for (const t of tasks) expect(t).toEqual(expect.objectContaining({ Name: expect.stringMatching(/^web\.[12]$/), DesiredState: 'Running', CurrentState: expect.stringMatching(/^Running /), Node: h1.name, Error: '' }));

  const [node] = lines(await sw(lab, h1, ['node', 'ls', '--format', 'json'])).map((l) => JSON.parse(l));
  expect(node).toEqual(expect.objectContaining({ Hostname: h1.name, Status: 'Ready', Availability: 'Active', ManagerStatus: 'Leader', Self: true }));
  expect(node.ID).not.toMatch(/\*/);
});

test('Go templates on lists and inspect, and table TEMPLATE', async () => {
  expect(lines(await sw(lab, h1, ['service', 'ps', 'web', '--format', '{{.Name}} {{.DesiredState}}'])).sort()).toEqual(['web.1 Running', 'web.2 Running']);
  expect((await sw(lab, h1, ['service', 'inspect', '--format', '{{.Spec.Mode.Replicated.Replicas}} {{.Spec.TaskTemplate.ContainerSpec.Image}}', 'web'])).trim()).toBe('2 exec:/');
  expect((await sw(lab, h1, ['node', 'inspect', 'self', '--format', '{{.Status.State}} {{.Spec.Role}} {{.ManagerStatus.Leader}}'])).trim()).toBe('ready manager true');
  const t = lines(await sw(lab, h1, ['service', 'ls', '--format', 'table {{.Name}}\\t{{.Replicas}}']));
  expect(t[0]).toMatch(/^NAME\s+REPLICAS$/);
  expect(t[1]).toMatch(/^web\s+2\/2$/);
  expect((await sw(lab, h1, ['node', 'ls', '--format', '{{upper .Status}} {{json .Self}}'])).trim()).toBe('READY true');
});

test('api keeps the API objects; a broken template is one line, exit 1, and nothing changes', async () => {
  const api = JSON.parse(await sw(lab, h1, ['service', 'ps', 'web', '--format', 'api']));
  expect(api[0].status.state).toBe('TASK_STATE_RUNNING');
  for (const bad of ['{{.Nope}}', '{{range .}}x{{end}}', '{{.Name']) {
    const res = await lab.cli(h1, ['service', 'ls', '--format', bad]);
    expect(res.code).toBe(1);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stderr).toMatch(/^Error: template parsing error: /);
  }
  const res = await lab.cli(h1, ['info', '--format', '{{.Swarm}}']);
  expect(res.code).toBe(1);
  expect(res.stderr.trim()).toMatch(/^Error: this command takes --format json or table, not a template/);
  expect((await sw(lab, h1, ['service', 'ls', '--format', '{{.Replicas}}'])).trim()).toBe('2/2');
});

test("volume, secret and config inspect: docker's keys, templates over them, api for the API's objects", async () => {
  await sw(lab, h1, ['volume', 'create', '--label', 'team=lab', 'notes']);
  const [vol] = JSON.parse(await sw(lab, h1, ['volume', 'inspect', 'notes']));
  expect(Object.keys(vol).sort()).toEqual(['CreatedAt', 'Driver', 'Labels', 'Mountpoint', 'Name', 'Options', 'Scope']);
  expect(vol).toMatchObject({ Name: 'notes', Driver: 'local', Labels: { team: 'lab' }, Scope: 'local', Mountpoint: join(h1.dataDir, 'volumes', 'notes', '_data') });
  expect(await sw(lab, h1, ['volume', 'inspect', '--format', '{{.Mountpoint}}', 'notes'])).toBe(`${vol.Mountpoint}\n`);
  expect(JSON.parse(await sw(lab, h1, ['volume', 'inspect', '--format', 'api', 'notes']))[0]).toMatchObject({ name: 'notes', mountpoint: vol.Mountpoint, usedBy: [] });

  const value = 'not-for-your-eyes';
  const created = await lab.cli(h1, ['secret', 'create', '--label', 'team=lab', 'pw', '-'], { input: value });
  expect([created.code, created.stderr]).toEqual([0, '']);
  const id = created.stdout.trim();
  const [secret] = JSON.parse(await sw(lab, h1, ['secret', 'inspect', 'pw']));
  expect(Object.keys(secret).sort()).toEqual(['CreatedAt', 'ID', 'Spec', 'UpdatedAt', 'Version']);
  expect(secret).toMatchObject({ ID: id, Version: { Index: expect.any(Number) }, Spec: { Name: 'pw', Labels: { team: 'lab' } } });
  expect(Object.keys(secret.Spec).sort()).toEqual(['Labels', 'Name']);
  expect(await sw(lab, h1, ['secret', 'inspect', '--format', '{{.Spec.Name}} {{.ID}}', 'pw'])).toBe(`pw ${id}\n`);
  const secretApi = await sw(lab, h1, ['secret', 'inspect', '--format', 'api', 'pw']);
  expect(JSON.parse(secretApi)[0]).toMatchObject({ id, spec: { name: 'pw' } });
  expect(JSON.parse(secretApi)[0]).not.toHaveProperty('dataSealed');
  expect(secretApi).not.toContain(Buffer.from(value).toString('base64'));

  expect((await lab.cli(h1, ['config', 'create', 'motd', '-'], { input: 'hello\n' })).code).toBe(0);
  expect(await sw(lab, h1, ['config', 'inspect', '--format', '{{.Spec.Name}} {{.Spec.Data}}', 'motd'])).toBe(`motd ${Buffer.from('hello\n').toString('base64')}\n`);
  expect(JSON.parse(await sw(lab, h1, ['config', 'inspect', '--format', 'api', 'motd']))[0]).toMatchObject({ config: { spec: { name: 'motd' } }, data: Buffer.from('hello\n').toString('base64') });
});

/** What bash offers for the words typed (the last one is being completed), with the script `swarmlet completion bash` prints. */
async function bashCompletes(words: string[]): Promise<string[]> {
  const script = `source <(swarmlet completion bash) && COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}) && COMP_CWORD=${words.length - 1} && _swarmlet_yargs_completions && printf '%s\\n' "\${COMPREPLY[@]}"`;
  const res = await lab.exec(h1, ['bash', '-c', script], { env: { PATH: `${join(findRepoRoot(), 'bin')}:${process.env.PATH}`, SWARMLET_HOST: h1.socket } });
  expect(res.stderr).toBe('');
  return lines(res.stdout).sort();
}

test('completion bash completes commands, flags, and the names the daemon knows', async () => {
  await sw(lab, h1, ['service', 'create', '-d', '--name', 'worker', 'exec:/', 'sleep', '1000']);
  await sw(lab, h1, ['network', 'create', '-d', 'overlay', 'backend']);
  expect(await bashCompletes(['swarmlet', 'serv'])).toEqual(['service']);
  expect(await bashCompletes(['swarmlet', 'service', 'r'])).toEqual(['rm', 'rollback']);
  expect(await bashCompletes(['swarmlet', 'service', 'rm', ''])).toEqual(['web', 'worker']);
  expect(await bashCompletes(['swarmlet', 'service', 'scale', 'wo'])).toEqual(['worker']);
  expect(await bashCompletes(['swarmlet', 'network', 'inspect', 'back'])).toEqual(['backend']);
  expect(await bashCompletes(['swarmlet', 'node', 'inspect', ''])).toEqual([h1.name]);
  expect(await bashCompletes(['swarmlet', 'service', 'ls', '--qu'])).toEqual(['--quiet']);
  const zsh = await lab.cli(h1, ['completion', 'zsh']);
  expect(zsh.stdout).toMatch(/^#compdef swarmlet/);
  const fish = await lab.cli(h1, ['completion', 'fish']);
  expect(fish.code).toBe(1);
  expect(fish.stderr.trim()).toBe('Error: completion scripts are for bash or zsh, not "fish"');
});
