/**
 * Images you build, tag, push and log in for, end to end on one lab host in no swarm (issue 13,
 * Images): `swarmlet build` of a small Dockerfile FROM the lab's busybox image (ARG, RUN, COPY,
 * ENV, CMD, --build-arg) and `run` of the result; `image rm` refused while a container uses the
 * image; and the notes' registry exercise as written: a registry running as a container
 * (`run -d -p 5000:5000 --name registry registry:2`, where registry:2 is built here with
 * `swarmlet build` from Debian's docker-registry binary: no registry image is available offline),
 * then `image tag`, `push localhost:5000/...`, `pull`; and `login` / `logout` against a second
 * registry container that asks for htpasswd auth; last, a service task on the node (now a one-node
 * swarm) runs an image built there. Run through test/run.sh.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { shellJoin } from '../../agent/runtime/terminal-plans';
import { type Lab, type LabHost, requireBuiltCli } from '../lab/lab';
import { Tmux } from '../support/tmux';
import { oneHostWithBusybox, sw, tearDownLab, waitFor } from './cluster-helpers';
import type { TestRegistry } from '../support/registry';

const USER = 'student';
const PASSWORD = `pw-${process.pid}-lab-secret`;

let lab: Lab;
let h: LabHost;
let registry: TestRegistry;
let base: string;
let dockerConfig: string;

beforeAll(async () => {
  ({ lab, h, registry, image: base } = await oneHostWithBusybox('swib'));
  dockerConfig = path.join(lab.baseDir, 'docker-config');
}, 180000);

afterAll(() => tearDownLab(lab, registry), 60000);

/** The CLI with its own docker config dir (what login writes, what pull and push read). */
const cli = (args: string[], input?: string) => lab.cli(h, args, { env: { DOCKER_CONFIG: dockerConfig }, input, timeoutMs: 300_000 });
async function ok(args: string[], input?: string): Promise<string> {
  const res = await cli(args, input);
  if (res.code !== 0) throw new Error(`swarmlet ${args.join(' ')} exited ${res.code}: ${res.stderr.trim()}\n--- daemon log ---\n${lab.logTail(h, 40)}`);
  return res.stdout;
}

/** A build context dir with these files. */
function context(name: string, files: Record<string, string | Buffer>): string {
  const dir = path.join(lab.baseDir, name);
  fs.mkdirSync(dir, { recursive: true });
  for (const [f, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), content);
  return dir;
}

describe('image build', () => {
  test('a Dockerfile FROM the lab\'s busybox (ARG, RUN, COPY, ENV, CMD, --build-arg) builds into the node\'s store, and runs', async () => {
    const dir = context('hello', {
      Dockerfile: [
        `FROM ${base}`,
        'ARG WHO=world',
        'ENV GREETING="hello $WHO"',
        'COPY motd.txt /etc/motd',
        'RUN echo "built by RUN as $(id -u)" > /built.txt && mkdir -p /data',
        'WORKDIR /data',
        'CMD ["sh", "-c", "echo $GREETING; cat /etc/motd /built.txt; pwd"]',
        '',
      ].join('\n'),
      'motd.txt': 'copied from the context\n',
    });
    const built = await cli(['build', '-t', 'hello:1', '--build-arg', 'WHO=lab', dir]);
    expect(built.code).toBe(0);
    expect(built.stdout).toMatch(/STEP 1\/7: FROM /);
    expect(built.stdout).toMatch(/STEP 5\/7: RUN /);
    expect(built.stdout).toMatch(/\nSuccessfully built [a-f0-9]{12}\nSuccessfully tagged hello:1\n$/);

    const listed = JSON.parse(await ok(['images', '--format', 'api'])) as { id: string; references: string[] }[];
    const img = listed.find((i) => i.references.includes('docker.io/library/hello:1'));
    expect(img).toBeDefined();

    const run = await ok(['run', '--rm', 'hello:1']);
    expect(run).toBe('hello lab\ncopied from the context\nbuilt by RUN as 0\n/data\n');

    // -q: the id alone; the same build again is the same image (buildah's layer cache is the node's).
    const quiet = await ok(['image', 'build', '-q', '-t', 'hello:2', '--build-arg', 'WHO=lab', dir]);
    expect(quiet).toBe(`${img!.id}\n`);

    const inspected = JSON.parse(await ok(['image', 'inspect', 'hello:1']));
    expect(inspected[0].Id).toBe(img!.id);
    expect(inspected[0].RepoTags).toEqual(['docker.io/library/hello:1', 'docker.io/library/hello:2']);
    expect(inspected[0].Config.Env).toContain('GREETING=hello lab');
    expect(inspected[0].Config.Cmd).toEqual(['sh', '-c', 'echo $GREETING; cat /etc/motd /built.txt; pwd']);
    const history = await ok(['image', 'history', '--no-trunc', 'hello:1']);
    expect(history).toMatch(/^IMAGE\s+CREATED\s+CREATED BY\s+SIZE\s+COMMENT\n/);
    expect(history).toContain('COPY');
    expect(history).toMatch(/RUN|echo "built by RUN/);
    expect(history.split('\n')[1].startsWith(img!.id)).toBe(true);
  }, 300000);

  test('a failing step, a missing context or Dockerfile: one clear line, exit 1, no image', async () => {
    const before = await ok(['images', '--format', 'api']);
    const dir = context('broken', { Dockerfile: `FROM ${base}\nRUN echo going; exit 7\n` });
    const res = await cli(['build', '-t', 'broken:1', dir]);
    expect(res.code).toBe(1);
    expect(res.stdout).toContain('going');
    expect(res.stderr.trim().split('\n').pop()).toMatch(/^Error: the build failed: .*exit status 7$/);
    const missing = await cli(['build', '-t', 'x:1', path.join(lab.baseDir, 'nothere')]);
    expect([missing.code, missing.stderr]).toEqual([1, `Error: unable to prepare context: path "${path.join(lab.baseDir, 'nothere')}" not found\n`]);
    const noFile = await cli(['build', '-t', 'x:1', '-f', path.join(dir, 'Nope'), dir]);
    expect([noFile.code, noFile.stderr]).toEqual([1, `Error: Cannot locate specified Dockerfile: ${path.join(dir, 'Nope')}\n`]);
    const badTag = await cli(['build', '-t', 'Bad:1', dir]);
    expect(badTag.code).toBe(1);
    expect(badTag.stderr).toMatch(/^Error: invalid reference format: "Bad:1"/);
    expect(await ok(['images', '--format', 'api'])).toBe(before);
    expect(fs.readdirSync(path.join(h.dataDir, 'images', 'tmp'))).toEqual([]);
  }, 300000);

  test('image rm is refused while a container uses the image, unless -f', async () => {
    await ok(['run', '-d', '--name', 'user', 'hello:2', 'sleep', '1000']);
    const id = JSON.parse(await ok(['image', 'inspect', 'hello:2']))[0].Id as string;
    expect(await ok(['rmi', 'hello:1'])).toBe('Untagged: docker.io/library/hello:1\n'); // another reference stays: only an untag
    const byName = await cli(['rmi', 'hello:2']);
    expect([byName.code, byName.stderr]).toEqual([1, expect.stringMatching(/^Error: image docker\.io\/library\/hello:2 is used by container [a-f0-9]{12}: stop it first, or use --force\n$/)]);
    const byId = await cli(['image', 'rm', id.slice(7, 19)]);
    expect([byId.code, byId.stderr]).toEqual([1, expect.stringMatching(/^Error: image [a-f0-9]{12} is used by container [a-f0-9]{12}: stop it first, or use --force\n$/)]);
    expect(await ok(['rmi', '-f', 'hello:2'])).toBe('Untagged: docker.io/library/hello:2\n');
    // The container still runs from it, and the image stays until nothing uses it.
    expect(JSON.parse(await ok(['inspect', 'user']))[0].State.Status).toBe('running');
    expect((JSON.parse(await ok(['images', '--format', 'api'])) as { id: string }[]).map((i) => i.id)).toContain(id);
    await ok(['rm', '-f', 'user']);
    await ok(['image', 'rm', id]);
  }, 120000);
});

describe("the notes' registry exercise", () => {
  const registryConfig = [
    'version: 0.1',
    'log:',
    '  level: warn',
    'storage:',
    '  filesystem:',
    '    rootdirectory: /var/lib/registry',
    'http:',
    '  addr: 0.0.0.0:5000',
    '',
  ].join('\n');

  test('registry:2 built from Debian\'s docker-registry, run on port 5000; tag, push localhost:5000/my-image, pull', async () => {
    // The registry image: the Debian binary and the two libraries it links, on the lab's busybox.
    const libs = execFileSync('ldd', ['/usr/bin/docker-registry'], { encoding: 'utf8' })
      .split('\n')
      .map((l) => /(\/\S+)\s+\(0x/.exec(l)?.[1])
      .filter((l): l is string => Boolean(l));
    const files: Record<string, string | Buffer> = { 'docker-registry': fs.readFileSync('/usr/bin/docker-registry'), 'config.yml': registryConfig };
    const copies = libs.map((lib, i) => {
      files[`lib${i}`] = fs.readFileSync(lib);
      return `COPY lib${i} ${lib}`;
    });
    const dir = context('registry', {
      ...files,
      Dockerfile: [`FROM ${base}`, 'COPY docker-registry /bin/registry', ...copies, 'COPY config.yml /etc/docker/registry/config.yml', 'RUN mkdir -p /var/lib/registry', 'EXPOSE 5000', 'CMD ["/bin/registry", "serve", "/etc/docker/registry/config.yml"]', ''].join('\n'),
    });
    // The binary, and the dynamic loader the kernel runs it with, must be executable in the image.
    for (const f of ['docker-registry', ...libs.map((_l, i) => `lib${i}`)]) fs.chmodSync(path.join(dir, f), 0o755);
    await ok(['build', '-q', '-t', 'registry:2', dir]);

    // As the notes have it.
    await ok(['run', '-d', '-p', '5000:5000', '--name', 'registry', 'registry:2']);
    await ok(['build', '-q', '-t', 'my-image', context('my-image', { Dockerfile: `FROM ${base}\nCMD ["echo", "my image"]\n` })]);
    await ok(['image', 'tag', 'my-image', 'localhost:5000/my-image']);
    let pushed = '';
    await waitFor('the registry container answers the push', async () => {
      const res = await cli(['push', 'localhost:5000/my-image']);
      if (res.code !== 0) throw new Error(`${res.stderr.trim()}\n--- registry's logs ---\n${(await cli(['logs', 'registry'])).stderr}\n${(await cli(['ps', '-a'])).stdout}`);
      pushed = res.stdout;
      return true;
    }, 30000, 500);
    expect(pushed).toMatch(/Copying blob /);
    expect(pushed).toMatch(/\nlatest: digest: sha256:[a-f0-9]{64}\n$/);

    // Gone from the node, then pulled back from the registry container.
    await ok(['rmi', 'my-image', 'localhost:5000/my-image']);
    const id = (await ok(['pull', 'localhost:5000/my-image'])).trim();
    expect(id).toMatch(/^sha256:/);
    expect(await ok(['run', '--rm', 'localhost:5000/my-image'])).toBe('my image\n');
  }, 300000);

  test('login to a registry that asks for htpasswd auth: checked before it is saved (0600), then used by push and pull; logout', async () => {
    const auth = path.join(lab.baseDir, 'auth');
    fs.mkdirSync(auth, { recursive: true });
    fs.writeFileSync(path.join(auth, 'htpasswd'), execFileSync('htpasswd', ['-Bbn', USER, PASSWORD], { encoding: 'utf8' }));
    await ok([
      'run', '-d', '-p', '5001:5000', '--name', 'locked', '-v', `${auth}:/auth`,
      '-e', 'REGISTRY_AUTH=htpasswd', '-e', 'REGISTRY_AUTH_HTPASSWD_REALM=lab', '-e', 'REGISTRY_AUTH_HTPASSWD_PATH=/auth/htpasswd',
      'registry:2',
    ]);
    await ok(['tag', 'localhost:5000/my-image', 'localhost:5001/private/my-image:1']);
    const configFile = path.join(dockerConfig, 'config.json');

    // Without a login the push is refused, and says what to do.
    await waitFor('the locked registry answers', async () => {
      const res = await cli(['push', 'localhost:5001/private/my-image:1']);
      if (!res.stderr.includes('requires credentials')) throw new Error(res.stderr.trim());
      return res.stderr;
    }, 30000, 500).then((stderr) => expect(stderr).toBe('Error: registry localhost:5001 requires credentials to push localhost:5001/private/my-image:1 (run swarmlet login localhost:5001)\n'));

    // A wrong password is refused and nothing is saved.
    const wrong = await cli(['login', '-u', USER, '--password-stdin', 'localhost:5001'], 'not-the-password\n');
    expect([wrong.code, wrong.stderr]).toEqual([1, 'Error: login to localhost:5001 failed: unauthorized: incorrect username or password\n']);
    expect(fs.existsSync(configFile)).toBe(false);
    const noTty = await cli(['login', 'localhost:5001']);
    expect([noTty.code, noTty.stderr]).toEqual([1, 'Error: Cannot perform an interactive login from a non TTY device\n']);

    expect(await ok(['login', '-u', USER, '--password-stdin', 'localhost:5001'], `${PASSWORD}\n`)).toBe('Login Succeeded\n');
    expect(fs.statSync(configFile).mode & 0o777).toBe(0o600);
    expect(JSON.parse(fs.readFileSync(configFile, 'utf8'))).toEqual({ auths: { 'localhost:5001': { auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64') } } });

    expect(await ok(['push', 'localhost:5001/private/my-image:1'])).toMatch(/\n1: digest: sha256:/);
    await ok(['rmi', 'localhost:5001/private/my-image:1']);
    expect(await ok(['pull', 'localhost:5001/private/my-image:1'])).toMatch(/^sha256:/);
    // create and run pull with the saved login too, as docker's do.
    await ok(['rmi', 'localhost:5001/private/my-image:1']);
    expect(await ok(['container', 'create', '--name', 'from-private', 'localhost:5001/private/my-image:1'])).toMatch(/^[0-9a-f]{64}\n$/);
    await ok(['rm', 'from-private']);

    // The password is in no daemon log and no file of the node.
    expect(fs.readFileSync(h.logFile, 'utf8')).not.toContain(PASSWORD);
    const grep = (() => {
      try {
        return execFileSync('grep', ['-rl', '--', PASSWORD, h.dataDir], { encoding: 'utf8' });
      } catch {
        return '';
      }
    })();
    expect(grep).toBe('');

    // On a terminal, login asks for the user and the password, and does not echo the password.
    fs.rmSync(configFile);
    const cmd = shellJoin(['env', `DOCKER_CONFIG=${dockerConfig}`, 'ip', 'netns', 'exec', h.netns, process.execPath, requireBuiltCli(lab.repoRoot), '-H', h.socket, 'login', 'localhost:5001']);
    const term = await Tmux.start(`${lab.prefix}-login`, `${cmd}; echo "EXIT=$?"; sleep 600`, 100, 20);
    try {
      const shows = (re: RegExp) => waitFor(`the terminal to show ${re}`, async () => (re.test(await term.screen()) ? true : undefined), 20000, 100);
      await shows(/Username: $/m);
      await term.type(USER);
      await shows(/Password: $/m);
      await term.type(PASSWORD);
      await shows(/EXIT=\d+/);
      const screen = await term.screen();
      expect(screen).toMatch(/Login Succeeded\nEXIT=0/);
      expect(screen).not.toContain(PASSWORD);
    } finally {
      await term.kill();
    }
    expect(fs.statSync(configFile).mode & 0o777).toBe(0o600);

    expect(await ok(['logout', 'localhost:5001'])).toBe('Removing login credentials for localhost:5001\n');
    expect(JSON.parse(fs.readFileSync(configFile, 'utf8'))).toEqual({ auths: {} });
    expect(await ok(['logout', 'localhost:5001'])).toBe('Not logged in to localhost:5001\n');
    await ok(['rmi', 'localhost:5001/private/my-image:1']);
    const refused = await cli(['pull', 'localhost:5001/private/my-image:1']);
    expect(refused.stderr).toBe('Error: registry localhost:5001 requires credentials for localhost:5001/private/my-image:1 (pass them with --with-registry-auth)\n');
  }, 300000);
});

describe('a built image on a swarm node', () => {
  test('a service\'s task on the node runs the image built there, and rm is refused while it does', async () => {
    await ok(['build', '-q', '-t', 'built-svc:1', context('svc', { Dockerfile: `FROM ${base}\nENV WORD=built\nCMD ["sh", "-c", "echo task from a $WORD image; exec sleep 1000"]\n` })]);
    await ok(['init', '--advertise-addr', h.addr]);
    await ok(['service', 'create', '-d', '--name', 'built', 'built-svc:1']);
    await waitFor('the task\'s output', async () => ((await cli(['service', 'logs', 'built'])).stdout.includes('task from a built image') ? true : undefined), 90000, 500);
    const refused = await cli(['rmi', 'built-svc:1']);
    expect([refused.code, refused.stderr]).toEqual([1, expect.stringMatching(/^Error: image docker\.io\/library\/built-svc:1 is used by task [a-z0-9]+: stop it first, or use --force\n$/)]);
    await ok(['service', 'rm', 'built']);
  }, 180000);
});
