/**
 * Images and registry credentials end to end on a lab: a registry in a lab namespace (plain
 * HTTP, named insecure in the daemons' environment), `swarmlet image pull|ls|rm|prune` on a
 * node with clear one-line errors, the managers' seal key handed to joining and promoted
 * managers (and dropped on demotion), and a service's registry credential never stored in clear
 * (etcd's files), never returned by the API, never logged. Run through test/run.sh.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Lab, LabHost, requireBuiltCli } from '../lab/lab';
import { byHost, formSwarm, nodes, sw, waitFor } from './cluster-helpers';
import { pushBusybox } from '../support/image-build';
import { TestRegistry, startRegistry } from '../support/registry';
import { uniqueSuffix } from '../support/unique';

const prefix = `swi${uniqueSuffix()}`;
const USER = 'carol';
const PASSWORD = `pw-${uniqueSuffix(8)}-secret`;
let lab: Lab;
let h1: LabHost, h2: LabHost, h3: LabHost;
let open: TestRegistry;
let locked: TestRegistry;
let authFile: string;

const sealKey = (h: LabHost) => path.join(h.dataDir, 'seal.key');

/** Every file under a directory, recursively. */
function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? filesUnder(p) : e.isFile() ? [p] : [];
  });
}

beforeAll(async () => {
  requireBuiltCli();
  const registryAddr = '198.51.100.200';
  lab = await Lab.create({ prefix, hosts: 3, insecureRegistries: [`${registryAddr}:5000`, `${registryAddr}:5001`] });
  [h1, h2, h3] = lab.hosts;
  const client = await lab.addClient();
  expect(client.addr).toBe(registryAddr);
  open = await startRegistry({ listen: `${registryAddr}:5000`, netns: client.netns, baseDir: lab.baseDir });
  locked = await startRegistry({ listen: `${registryAddr}:5001`, netns: client.netns, baseDir: lab.baseDir, auth: { user: USER, password: PASSWORD } });
  await pushBusybox(open, { netns: client.netns, baseDir: lab.baseDir, files: { '/var/www/index.html': 'hi\n' } });
  await pushBusybox(locked, { netns: client.netns, baseDir: lab.baseDir, name: 'private/busybox' });
  authFile = path.join(lab.baseDir, 'registry-auth');
  fs.writeFileSync(authFile, `${USER}:${PASSWORD}\n`, { mode: 0o600 });
  await formSwarm(lab, [h1, h2], [h3]);
}, 180000);

afterAll(async () => {
  await open?.stop();
  await locked?.stop();
  await lab?.destroy();
}, 60000);

describe('swarmlet image on a node', () => {
  test('pull, ls, rm, prune', async () => {
    const ref = `${open.addr}/busybox:latest`;
    const id = (await sw(lab, h3, ['image', 'pull', `${open.addr}/busybox`])).trim();
    expect(id).toMatch(/^sha256:[a-f0-9]{64}$/);
    const listed = JSON.parse(await sw(lab, h3, ['image', 'ls', '--format', 'api']));
    expect(listed).toEqual([expect.objectContaining({ id, references: [ref], usedBy: [] })]);
    expect(listed[0].sizeBytes).toBeGreaterThan(1_000_000);
    const tableOut = await sw(lab, h3, ['image', 'ls']);
    expect(tableOut).toMatch(new RegExp(`^REPOSITORY\\s+TAG\\s+IMAGE ID\\s+CREATED\\s+SIZE\\s+USED BY\\n${open.addr}/busybox\\s+latest\\s+${id.slice(7, 19)}\\s`));
    // The other nodes have nothing: images are per node.
    expect(JSON.parse(await sw(lab, h1, ['image', 'ls', '--format', 'api']))).toEqual([]);

    expect(await sw(lab, h3, ['image', 'rm', ref])).toBe(`Untagged: ${ref}\nDeleted: ${id}\n`);
    await sw(lab, h3, ['image', 'pull', ref]);
    expect(await sw(lab, h3, ['image', 'prune'])).toBe('Total reclaimed space: 0B\n');
    expect(await sw(lab, h3, ['image', 'prune', '-a'])).toMatch(new RegExp(`^Deleted Images:\\ndeleted: ${id}\\n\\nTotal reclaimed space: \\d`));
    expect(JSON.parse(await sw(lab, h3, ['image', 'ls', '--format', 'api']))).toEqual([]);
  });

  test('failures are one clear line, and leave nothing behind', async () => {
    const cases: [string[], string][] = [
      [['image', 'pull', `${open.addr}/nothere:1`], `Error: image ${open.addr}/nothere:1 not found in registry ${open.addr}\n`],
      [['image', 'pull', `${open.addr}/BadName`], `Error: invalid reference format: "${open.addr}/BadName": the repository name must be lowercase\n`],
      [['image', 'pull', '198.51.100.201:5000/busybox'], 'Error: registry 198.51.100.201:5000 unreachable ('],
      [['image', 'pull', `${locked.addr}/private/busybox`], `Error: registry ${locked.addr} requires credentials for ${locked.addr}/private/busybox:latest (pass them with --with-registry-auth)\n`],
      [['image', 'rm', 'nosuch'], 'Error: no such image: nosuch\n'],
    ];
    for (const [args, stderr] of cases) {
      const res = await lab.cli(h3, args);
      expect({ args, code: res.code, stderr: res.stderr.slice(0, Math.max(stderr.length, res.stderr.startsWith(stderr) ? 0 : 400)) }).toEqual({ args, code: 1, stderr });
      expect(res.stderr.trim().split('\n')).toHaveLength(1);
    }
    const wrong = path.join(lab.baseDir, 'wrong-auth');
    fs.writeFileSync(wrong, `${USER}:not-the-password\n`);
    const refused = await lab.cli(h3, ['image', 'pull', '--registry-auth-file', wrong, `${locked.addr}/private/busybox`]);
    expect(refused.stderr).toBe(`Error: registry ${locked.addr} refused the credentials for ${locked.addr}/private/busybox:latest\n`);
    expect(JSON.parse(await sw(lab, h3, ['image', 'ls', '--format', 'api']))).toEqual([]);
    expect(fs.readdirSync(path.join(h3.dataDir, 'images', 'tmp'))).toEqual([]);
    expect(fs.readdirSync(path.join(h3.dataDir, 'images', 'images'))).toEqual([]);

    const id = (await sw(lab, h3, ['image', 'pull', '--registry-auth-file', authFile, `${locked.addr}/private/busybox`])).trim();
    expect(id).toMatch(/^sha256:/);
    await sw(lab, h3, ['image', 'rm', id]);
  });
});

describe('registry credentials', () => {
  test('the managers share one seal key (0600); a worker has none; demotion drops it and promotion hands it over', async () => {
    const key = fs.readFileSync(sealKey(h1));
    expect(key).toHaveLength(32);
    expect(fs.statSync(sealKey(h1)).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(sealKey(h2)).equals(key)).toBe(true);
    expect(fs.statSync(sealKey(h2)).mode & 0o777).toBe(0o600);
    expect(fs.existsSync(sealKey(h3))).toBe(false);

    await sw(lab, h1, ['node', 'promote', h3.name]);
    await waitFor('h3 holds the seal key', async () => (fs.existsSync(sealKey(h3)) && fs.readFileSync(sealKey(h3)).equals(key) ? true : undefined), 60000);
    // etcd refuses to remove a member that joined a moment ago: the demotion is retried until it takes.
    await waitFor('the demotion of h3 accepted', async () => ((await lab.cli(h1, ['node', 'demote', h3.name])).code === 0 ? true : undefined), 60000, 1000);
    await waitFor('h3 a worker again, without the seal key', async () => {
      const n = byHost(await nodes(lab, h1), h3);
      return n?.role === 'NODE_ROLE_WORKER' && !fs.existsSync(sealKey(h3)) ? true : undefined;
    }, 60000);
  }, 150000);

  test('a service\'s credential is sealed: not in etcd\'s files, not in the API, not in any log', async () => {
    const image = `${locked.addr}/private/busybox:latest`;
    await sw(lab, h2, ['service', 'create', '-d', '--name', 'private', '--registry-auth-file', authFile, image, 'sleep', '1000']);
    const inspected = await sw(lab, h1, ['service', 'inspect', '--format', 'api', 'private']);
    expect(JSON.parse(inspected)[0].spec.task.container.image).toBe(image);
    expect(inspected).not.toContain(PASSWORD);
    expect(JSON.parse(inspected)[0].registryAuthSealed ?? '').toBe('');
    expect(await sw(lab, h1, ['service', 'ls', '--format', 'api'])).not.toContain(PASSWORD);

    await sw(lab, h1, ['service', 'update', '-d', '--clear-registry-auth', 'private']);
    await sw(lab, h1, ['service', 'update', '-d', '--registry-auth-file', authFile, 'private']);
    // A credential for an exec: image is refused.
    const refused = await lab.cli(h1, ['service', 'create', '-d', '--name', 'execauth', '--registry-auth-file', authFile, 'exec:/', 'sleep', '1']);
    expect(refused.stderr).toBe('Error: --with-registry-auth needs an image from a registry; exec: images are not pulled\n');

    const needle = Buffer.from(PASSWORD);
    const b64 = Buffer.from(Buffer.from(`${USER}:${PASSWORD}`).toString('base64'));
    const files = [...lab.hosts.flatMap((h) => filesUnder(h.dataDir)), ...lab.hosts.map((h) => h.logFile)].filter((f) => !f.endsWith('registry-auth'));
    expect(files.some((f) => f.includes(`${path.sep}etcd${path.sep}`))).toBe(true);
    for (const f of files) {
      const content = fs.readFileSync(f);
      expect({ file: f, clear: content.includes(needle) || content.includes(b64) }).toEqual({ file: f, clear: false });
    }
    await sw(lab, h1, ['service', 'rm', 'private']);
  }, 90000);
});
