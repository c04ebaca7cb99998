/**
 * image build, tag, push, inspect and login on the image store, against real buildah, skopeo and
 * docker-registry (on loopback, in the test sandbox), FROM a busybox image built from
 * busybox-static: the built image runs from the store like a pulled one, buildah's storage is the
 * store's own, a loopback registry is plain HTTP without being named (as docker has it), and
 * failures leave the store as it was.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { ImageStore } from '../../agent/images/image-store';
import { planBuildSpec } from '../../agent/images/build-plans';
import { createRootLogger } from '../../services/common/logger';
import { pushBusybox } from '../support/image-build';
import { TestRegistry, startRegistry } from '../support/registry';

const USER = 'dave';
const PASSWORD = 'pw-71ab2e-secret';

let registry: TestRegistry;
let locked: TestRegistry;
let base: string;
let logText = '';
const log = createRootLogger(
  'debug',
  new Writable({
    write(chunk, _enc, cb) {
      logText += chunk.toString();
      cb();
    },
  }),
);

// No insecureRegistries: the registries listen on 127.0.0.1, which is plain HTTP by default.
const makeStore = () => new ImageStore({ root: fs.mkdtempSync(path.join(base, 'store-')), log });
const rootOf = (store: ImageStore) => (store as unknown as { root: string }).root;

function context(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(base, 'ctx-'));
  for (const [f, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), text);
  return dir;
}

const spec = (contextDir: string, over: Partial<Parameters<typeof planBuildSpec>[0]> = {}) =>
  planBuildSpec({ contextDir, dockerfile: '', tags: [], buildArgs: {}, quiet: false, noCache: false, target: '', ...over });

beforeAll(async () => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), 'swl-build-'));
  registry = await startRegistry({ baseDir: base });
  locked = await startRegistry({ baseDir: base, auth: { user: USER, password: PASSWORD } });
  await pushBusybox(registry, { baseDir: base });
}, 60000);

afterAll(async () => {
  await registry?.stop();
  await locked?.stop();
  if (base) fs.rmSync(base, { recursive: true, force: true });
});

describe('image build', () => {
  test('RUN, COPY, ENV, ARG and CMD go into an image in the store, tagged, with its layers kept; buildah state stays under the store', async () => {
    const store = makeStore();
    const dir = context({
      Dockerfile: [`FROM ${registry.addr}/busybox`, 'ARG GREETING=hello', 'ENV APP_GREETING=$GREETING', 'COPY app.txt /app/app.txt', 'RUN echo "$APP_GREETING from RUN" > /app/ran.txt', 'WORKDIR /app', 'CMD ["cat", "/app/ran.txt"]', ''].join('\n'),
      'app.txt': 'copied\n',
    });
    let output = '';
    const img = await store.build(spec(dir, { tags: ['demo/app:1', 'demo/app:latest'], buildArgs: { GREETING: 'hi' } }), { onOutput: (_s, t) => (output += t) });
    expect(output).toMatch(/STEP 1\/7: FROM/);
    expect(img.references).toEqual(['docker.io/demo/app:1', 'docker.io/demo/app:latest']);
    expect(fs.readFileSync(path.join(img.rootfs, 'app/app.txt'), 'utf8')).toBe('copied\n');
    expect(fs.readFileSync(path.join(img.rootfs, 'app/ran.txt'), 'utf8')).toBe('hi from RUN\n');
    expect(img.config.cmd).toEqual(['cat', '/app/ran.txt']);
    expect(img.config.workingDir).toBe('/app');
    expect(img.config.env).toContain('APP_GREETING=hi');

    const root = rootOf(store);
    expect(fs.readdirSync(path.join(root, 'buildah')).sort()).toEqual(['registries.conf', 'root', 'runroot']);
    expect(fs.readdirSync(path.join(root, 'tmp'))).toEqual([]);

    const d = store.inspect('demo/app:1');
    expect(d.image.id).toBe(img.id);
    expect(d.layers.length).toBeGreaterThanOrEqual(2);
    const cfg = JSON.parse(d.configJson);
    expect(cfg.config.Env).toContain('APP_GREETING=hi');
    expect(cfg.history.map((h: { created_by?: string }) => h.created_by ?? '').join('\n')).toMatch(/COPY/);

    // The same build again reuses buildah's layer cache and gives the same image.
    const again = await store.build(spec(dir, { tags: ['demo/app:2'], buildArgs: { GREETING: 'hi' } }));
    expect(again.id).toBe(img.id);
  }, 180000);

  test('a failing RUN is one clear error and leaves the store as it was', async () => {
    const store = makeStore();
    const dir = context({ Dockerfile: `FROM ${registry.addr}/busybox\nRUN exit 3\n` });
    await expect(store.build(spec(dir, { tags: ['bad:1'] }))).rejects.toThrow(/^the build failed: .*exit status 3/);
    expect(await store.list()).toEqual([]);
    expect(fs.readdirSync(path.join(rootOf(store), 'tmp'))).toEqual([]);
    await expect(store.build(spec(path.join(dir, 'nothere'), { tags: ['bad:1'] }))).rejects.toThrow(/^the build failed: /);
    expect(await store.list()).toEqual([]);
  }, 120000);
});

describe('tag, push, inspect, login', () => {
  test('tag names the image again; push sends it to the registry, where a fresh store pulls it', async () => {
    const store = makeStore();
    const pulled = await store.pull(`${registry.addr}/busybox`);
    const target = `${registry.addr}/copies/busybox:v1`;
    expect(store.tagImage(`${registry.addr}/busybox`, target).references).toEqual([`${registry.addr}/busybox:latest`, target]);
    expect(() => store.tagImage('nosuch:1', target)).toThrow('no such image: nosuch:1');
    let progress = '';
    const digest = await store.push(target, undefined, (_s, t) => (progress += t));
    expect(digest).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(progress).toMatch(/Copying blob/);
    expect(progress).toMatch(/Writing manifest/);
    expect(await registry.catalog()).toContain('copies/busybox');
    await expect(store.push(`${registry.addr}/never/tagged:1`)).rejects.toThrow(`An image does not exist locally with the tag: ${registry.addr}/never/tagged:1`);

    const other = makeStore();
    const again = await other.pull(target);
    expect(again.id).toBe(pulled.id);
  }, 120000);

  test('push to a registry that wants credentials: refused without, accepted with them', async () => {
    const store = makeStore();
    await store.pull(`${registry.addr}/busybox`);
    const target = `${locked.addr}/mine/busybox:1`;
    store.tagImage(`${registry.addr}/busybox`, target);
    await expect(store.push(target)).rejects.toThrow(`registry ${locked.addr} requires credentials to push ${target} (run swarmlet login ${locked.addr})`);
    await expect(store.push(target, `${USER}:wrong`)).rejects.toThrow(`registry ${locked.addr} refused the credentials to push ${target}`);
    await store.push(target, `${USER}:${PASSWORD}`);
    expect(await locked.catalog()).toContain('mine/busybox');
  }, 120000);

  test('login checks the credential against the registry; the password is never logged', async () => {
    const store = makeStore();
    await store.login(locked.addr, { username: USER, password: PASSWORD });
    await expect(store.login(locked.addr, { username: USER, password: 'not-it' })).rejects.toThrow(`login to ${locked.addr} failed: unauthorized: incorrect username or password`);
    await expect(store.login('127.0.0.1:9', { username: USER, password: PASSWORD })).rejects.toThrow(/^registry 127\.0\.0\.1:9 unreachable/);
    expect(logText).not.toContain(PASSWORD);
    expect(fs.readdirSync(path.join(rootOf(store), 'tmp'))).toEqual([]);
  }, 60000);
});
