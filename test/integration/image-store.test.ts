/**
 * The image store against real registries (docker-registry on loopback, in the test sandbox),
 * with images built from busybox-static: pull + unpack, pull policies, clear errors that leave
 * the store as it was, registry credentials, rm / prune / used-by, time-bound pulls.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { ImageStore } from '../../agent/images/image-store';
import { createRootLogger } from '../../services/common/logger';
import { PullPolicy } from '../../services/gen/swarmlet/v1/types';
import { pushBusybox } from '../support/image-build';
import { TestRegistry, freePort, startRegistry } from '../support/registry';

const USER = 'alice';
const PASSWORD = 'pw-9f3c1e-secret';

let registry: TestRegistry;
let privateRegistry: TestRegistry;
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

const makeStore = (extra: Partial<ConstructorParameters<typeof ImageStore>[0]> = {}) =>
  new ImageStore({ root: fs.mkdtempSync(path.join(base, 'store-')), log, insecureRegistries: [registry.addr, privateRegistry.addr], ...extra });

/** A store dir's entries; the store makes its dirs at its first write, so a missing one is empty. */
const entries = (dir: string): string[] => (fs.existsSync(dir) ? fs.readdirSync(dir) : []);

/** What must not change when a pull fails: the list, the image dirs, and an empty tmp dir. */
async function snapshot(store: ImageStore, root: string) {
  return {
    list: JSON.stringify(await store.list()),
    images: entries(path.join(root, 'images')).sort(),
    tmp: entries(path.join(root, 'tmp')),
  };
}
const rootOf = (store: ImageStore) => (store as unknown as { root: string }).root;

beforeAll(async () => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), 'swl-images-'));
  registry = await startRegistry({ baseDir: base });
  privateRegistry = await startRegistry({ baseDir: base, auth: { user: USER, password: PASSWORD } });
  await pushBusybox(registry, { baseDir: base, files: { '/var/www/index.html': 'hello from the image\n' }, whiteouts: ['/usr/bin/wget'], config: { exposedPorts: ['80/tcp'], workingDir: '/var/www', stopSignal: 'SIGQUIT' } });
  await pushBusybox(privateRegistry, { baseDir: base, name: 'private/busybox' });
});

afterAll(async () => {
  await registry?.stop();
  await privateRegistry?.stop();
  if (base) fs.rmSync(base, { recursive: true, force: true });
});

describe('pull and unpack', () => {
  test('unpacks the layers once, parses the config, and a second ensure pulls nothing', async () => {
    const store = makeStore();
    const ref = `${registry.addr}/busybox`;
    const img = await store.ensure(ref, PullPolicy.PULL_POLICY_MISSING);
    expect(img.references).toEqual([`${registry.addr}/busybox:latest`]);
    expect(img.id).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(fs.statSync(path.join(img.rootfs, 'bin/busybox')).isFile()).toBe(true);
    expect(fs.readlinkSync(path.join(img.rootfs, 'bin/sh'))).toBe('/bin/busybox');
    expect(fs.readFileSync(path.join(img.rootfs, 'var/www/index.html'), 'utf8')).toBe('hello from the image\n');
    expect(fs.existsSync(path.join(img.rootfs, 'usr/bin/wget'))).toBe(false); // the whiteout layer removed it
    expect(fs.existsSync(path.join(img.rootfs, 'bin/cat'))).toBe(true);
    expect(img.config).toEqual({
      entrypoint: [],
      cmd: ['sh'],
      env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'],
      user: '',
      workingDir: '/var/www',
      exposedPorts: ['80/tcp'],
      stopSignal: 'SIGQUIT',
    });
    expect(img.sizeBytes).toBeGreaterThan(1_000_000);
    const listed = await store.list();
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ id: img.id, references: img.references, digest: img.digest, sizeBytes: img.sizeBytes, usedBy: [] });
    expect(fs.readdirSync(path.join(rootOf(store), 'tmp'))).toEqual([]);

    // A second ensure is served from the node: it works with the registry unreachable, and the rootfs is the same.
    const before = fs.statSync(img.rootfs).ino;
    const offline = new ImageStore({ root: rootOf(store), log, insecureRegistries: [] });
    const again = await offline.ensure(`${registry.addr}/busybox:latest`, PullPolicy.PULL_POLICY_MISSING);
    expect(again.id).toBe(img.id);
    expect(fs.statSync(again.rootfs).ino).toBe(before);
  });

  test('concurrent ensures of one reference copy and unpack it once', async () => {
    const store = makeStore();
    const ref = `${registry.addr}/busybox:latest`;
    const pulls = () => logText.split('\n').filter((l) => l.includes('"msg":"pulling image"') && l.includes(ref)).length;
    const before = pulls();
    const got = await Promise.all([store.ensure(ref), store.ensure(ref), store.pull(ref)]);
    expect(new Set(got.map((g) => g.id)).size).toBe(1);
    expect(pulls() - before).toBe(1);
    expect(await store.list()).toHaveLength(1);
  });
});

describe('pull policies', () => {
  test('never refuses a missing image and uses a present one; always picks up a moved tag', async () => {
    const store = makeStore();
    const ref = `${registry.addr}/moving:latest`;
    const before = await snapshot(store, rootOf(store));
    await expect(store.ensure(ref, PullPolicy.PULL_POLICY_NEVER)).rejects.toThrow(`image ${ref} is not on this node and the pull policy is never`);
    expect(await snapshot(store, rootOf(store))).toEqual(before);

    await pushBusybox(registry, { baseDir: base, name: 'moving', files: { '/version': 'one\n' } });
    const one = await store.ensure(ref, PullPolicy.PULL_POLICY_MISSING);
    expect((await store.ensure(ref, PullPolicy.PULL_POLICY_NEVER)).id).toBe(one.id);
    // always, with the tag unchanged: the registry is asked, nothing is copied again.
    const same = await store.ensure(ref, PullPolicy.PULL_POLICY_ALWAYS);
    expect(same.id).toBe(one.id);

    await pushBusybox(registry, { baseDir: base, name: 'moving', files: { '/version': 'two\n' } });
    expect((await store.ensure(ref, PullPolicy.PULL_POLICY_MISSING)).id).toBe(one.id);
    const two = await store.ensure(ref, PullPolicy.PULL_POLICY_ALWAYS);
    expect(two.id).not.toBe(one.id);
    expect(fs.readFileSync(path.join(two.rootfs, 'version'), 'utf8')).toBe('two\n');
    // The old image lost its reference: prune (without -a) takes it, and only it.
    const images = await store.list();
    expect(images.find((i) => i.id === one.id)?.references).toEqual([]);
    const pruned = await store.prune(false);
    expect(pruned.removed).toEqual([one.id]);
    expect(pruned.reclaimedBytes).toBe(one.sizeBytes);
    expect((await store.list()).map((i) => i.id)).toEqual([two.id]);
    expect(fs.existsSync(one.rootfs)).toBe(false);
  });

  test('a digest reference finds the image pulled by tag, offline', async () => {
    const store = makeStore();
    const first = await store.pull(`${registry.addr}/busybox:latest`);
    // Found on the node by its digest: no registry needed, even with the pull policy never.
    const byDigest = await store.ensure(`${registry.addr}/busybox@${first.digest}`, PullPolicy.PULL_POLICY_NEVER);
    expect(byDigest.id).toBe(first.id);
    expect(byDigest.references).toEqual([`${registry.addr}/busybox:latest`, `${registry.addr}/busybox@${first.digest}`].sort());
  });
});

describe('failures are clear and leave the store unchanged', () => {
  let store: ImageStore;
  beforeAll(async () => {
    store = makeStore();
    await store.pull(`${registry.addr}/busybox:latest`);
  });

  async function expectClean(p: () => Promise<unknown>, message: string | RegExp) {
    const before = await snapshot(store, rootOf(store));
    await expect(p()).rejects.toThrow(message);
    expect(await snapshot(store, rootOf(store))).toEqual(before);
    expect(before.tmp).toEqual([]);
  }

  test('an image the registry does not have', async () => {
    await expectClean(() => store.ensure(`${registry.addr}/nothere:latest`), `image ${registry.addr}/nothere:latest not found in registry ${registry.addr}`);
    await expectClean(() => store.ensure(`${registry.addr}/busybox:nosuchtag`), `image ${registry.addr}/busybox:nosuchtag not found in registry ${registry.addr}`);
  });

  test('malformed references', async () => {
    await expectClean(() => store.ensure('Busy Box'), /^invalid reference format: "Busy Box": it contains whitespace/);
    await expectClean(() => store.ensure(`${registry.addr}/BusyBox:latest`), 'invalid reference format');
    await expectClean(() => store.ensure(`${registry.addr}/busybox:bad:tag`), 'invalid reference format');
    await expectClean(() => store.ensure('busybox@sha256:1234'), 'invalid reference format');
  });

  test('an unreachable registry', async () => {
    const port = await freePort();
    await expectClean(() => store.ensure(`127.0.0.1:${port}/busybox:latest`), `registry 127.0.0.1:${port} unreachable (`);
  });

  test('a loopback registry is plain HTTP without being named insecure, as docker has it', async () => {
    const plain = new ImageStore({ root: fs.mkdtempSync(path.join(base, 'store-')), log });
    const img = await plain.pull(`${registry.addr}/busybox`);
    expect(img.references).toEqual([`${registry.addr}/busybox:latest`]);
  });

  test('credentials: none, wrong, right', async () => {
    const ref = `${privateRegistry.addr}/private/busybox:latest`;
    await expectClean(() => store.ensure(ref), `registry ${privateRegistry.addr} requires credentials for ${ref}`);
    await expectClean(() => store.ensure(ref, PullPolicy.PULL_POLICY_MISSING, `${USER}:wrong-password`), `registry ${privateRegistry.addr} refused the credentials for ${ref}`);
    const b64json = Buffer.from(JSON.stringify({ username: USER, password: PASSWORD })).toString('base64');
    const img = await store.ensure(ref, PullPolicy.PULL_POLICY_MISSING, b64json);
    expect(img.references).toEqual([ref]);
    expect(fs.readdirSync(path.join(rootOf(store), 'tmp'))).toEqual([]); // the auth file went with the pull's temp dir
    await store.remove(ref, false);
    expect((await store.pull(ref, `${USER}:${PASSWORD}`)).id).toBe(img.id);
    expect(logText).not.toContain(PASSWORD);
    expect(logText).not.toContain(Buffer.from(`${USER}:${PASSWORD}`).toString('base64'));
  });

  test('a registry that never answers: the pull is cut off and nothing is left', async () => {
    const sockets: net.Socket[] = [];
    const hung = net.createServer((s) => sockets.push(s));
    await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
    const addr = `127.0.0.1:${(hung.address() as net.AddressInfo).port}`;
    try {
      const impatient = new ImageStore({ root: rootOf(store), log, insecureRegistries: [addr], pullTimeoutMs: 1500 });
      await expectClean(() => impatient.ensure(`${addr}/busybox:latest`), `pulling ${addr}/busybox:latest timed out after 2s`);
    } finally {
      sockets.forEach((s) => s.destroy());
      hung.close();
    }
  });
});

describe('rm, prune, used by', () => {
  test('a used image is refused by rm, kept by rm -f and prune, and goes once released', async () => {
    const store = makeStore();
    const ref = `${registry.addr}/busybox:latest`;
    const img = await store.pull(ref);
    store.use('task1', img.id);
    store.use('task2', img.id);
    expect((await store.list())[0].usedBy).toEqual(['task1', 'task2']);
    await expect(store.remove(ref, false)).rejects.toThrow(`image ${ref} is used by tasks task1, task2: stop them first, or use --force`);
    expect(await store.prune(true)).toEqual({ removed: [], reclaimedBytes: 0 });

    // Uses survive a restart of the store (the agent's), until retained away.
    const reopened = new ImageStore({ root: rootOf(store), log });
    expect((await reopened.list())[0].usedBy).toEqual(['task1', 'task2']);
    reopened.retainUses(['task1']);

    expect(await reopened.remove(ref, true)).toEqual([`Untagged: ${ref}`]);
    expect(fs.existsSync(img.rootfs)).toBe(true); // task1 still runs on it
    expect((await reopened.list())[0]).toMatchObject({ id: img.id, references: [], usedBy: ['task1'] });
    reopened.release('task1');
    expect(await reopened.prune(false)).toEqual({ removed: [img.id], reclaimedBytes: img.sizeBytes });
    expect(await reopened.list()).toEqual([]);
    expect(() => reopened.use('task3', img.id)).toThrow('is not on this node');
  });

  test('rm by reference untags; by id it removes the image, and wants force for several references', async () => {
    const store = makeStore();
    const img = await store.pull(`${registry.addr}/busybox:latest`);
    await store.ensure(`${registry.addr}/busybox@${img.digest}`);
    const hex = img.id.slice('sha256:'.length);
    await expect(store.remove(hex.slice(0, 12), false)).rejects.toThrow('is referenced by');
    expect(await store.remove(`${registry.addr}/busybox@${img.digest}`, false)).toEqual([`Untagged: ${registry.addr}/busybox@${img.digest}`]);
    expect(await store.remove(hex.slice(0, 8), false)).toEqual([`Untagged: ${registry.addr}/busybox:latest`, `Deleted: ${img.id}`]);
    expect(await store.list()).toEqual([]);
    await expect(store.remove('nosuch', false)).rejects.toThrow('no such image: nosuch');
    await expect(store.remove('abcdef', false)).rejects.toThrow('no such image');
  });

  test('prune -a takes unused images with references too', async () => {
    const store = makeStore();
    const img = await store.pull(`${registry.addr}/busybox:latest`);
    expect(await store.prune(false)).toEqual({ removed: [], reclaimedBytes: 0 });
    expect(await store.prune(true)).toEqual({ removed: [img.id], reclaimedBytes: img.sizeBytes });
    expect(await store.list()).toEqual([]);
  });

  test('a pull cut short by a crash leaves only a temp dir, wiped at the next start', async () => {
    const store = makeStore();
    const root = rootOf(store);
    fs.mkdirSync(path.join(root, 'tmp', 'pull-crashed', 'image', 'rootfs'), { recursive: true });
    const again = new ImageStore({ root, log });
    expect(entries(path.join(root, 'tmp'))).toEqual([]);
    expect(await again.list()).toEqual([]);
  });
});
