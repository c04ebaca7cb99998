/**
 * The volume store and prepareMounts on real directories under a temporary dir, and the LocalNode
 * volume calls through a real gRPC server on a unix socket.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { SwarmletError } from '../../services/common/errors';
import { callUnary } from '../../services/api/handlers';
import { LocalNodeClient, LocalNodeService } from '../../services/gen/swarmlet/v1/control';
import { Mount, MountType, Task, TaskState } from '../../services/gen/swarmlet/v1/types';
import { VolumeStore } from '../../agent/volumes/volume-store';
import { anonymousVolumeName, prepareMounts, releaseMounts } from '../../agent/runtime/mounts';
import { volumeService } from '../../node/volume-service';
import { rejection } from '../support/rejection';

const log = pino({ level: 'silent' });
let dir: string;
let root: string;
let store: VolumeStore;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'swarmlet-volumes-'));
  root = join(dir, 'volumes');
  store = new VolumeStore({ root, log });
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

function task(id: string, mounts: Partial<Mount>[]): Task {
  return Task.fromPartial({
    id,
    serviceId: 'svc',
    serviceName: 'web',
    slot: 1,
    desiredState: TaskState.TASK_STATE_RUNNING,
    spec: { container: { image: 'busybox', mounts: mounts.map((m) => ({ type: MountType.MOUNT_TYPE_VOLUME, source: '', target: '', readonly: false, tmpfsSizeBytes: 0, ...m })) } },
  });
}

describe('VolumeStore', () => {
  test('create, get, list: a directory per volume under the root; creating again keeps the first', async () => {
    const v = await store.create('data', { team: 'web' });
    expect(v).toEqual({ name: 'data', driver: 'local', mountpoint: join(root, 'data', '_data'), labels: { team: 'web' }, createdAt: expect.any(String), usedBy: [] });
    expect(existsSync(v.mountpoint)).toBe(true);
    expect(await store.create('data', { other: 'x' })).toEqual(v);
    expect(await store.get('data')).toEqual(v);
    await store.create('cache');
    expect((await store.list()).map((x) => x.name)).toEqual(['cache', 'data']);
  });

  test('an empty name gets a random one', async () => {
    const a = await store.create();
    const b = await store.create('');
    expect(a.name).toMatch(/^[0-9a-f]{64}$/);
    expect(b.name).not.toBe(a.name);
  });

  test('refuses bad names and reports missing volumes', async () => {
    for (const name of ['-x', '../etc', 'a/b', '.tmp-1', 'x'.repeat(256)]) {
      expect((await rejection(store.create(name))).kind).toBe('InvalidArgument');
    }
    const e = await rejection(store.get('nope'));
    expect([e.kind, e.message]).toEqual(['NotFound', 'no such volume: nope']);
    expect((await rejection(store.remove('nope'))).kind).toBe('NotFound');
    await store.remove('nope', true);
  });

  test('acquire makes the volume on first use; data and usage survive a new store on the same root (a daemon restart)', async () => {
    const host = await store.acquire('task1', 'data');
    expect(host).toBe(join(root, 'data', '_data'));
    writeFileSync(join(host, 'file'), 'kept');
    expect(await store.acquire('task1', 'data')).toBe(host);
    const again = new VolumeStore({ root, log });
    expect((await again.get('data')).usedBy).toEqual(['task1']);
    await again.acquire('task2', 'data');
    await again.release('task1');
    expect((await again.get('data')).usedBy).toEqual(['task2']);
    await again.release('task2');
    await again.release('task2');
    expect(await again.get('data')).toMatchObject({ usedBy: [] });
    expect(readFileSync(join(host, 'file'), 'utf8')).toBe('kept');
  });

  test('a volume in use is removed only with force; its data goes with it', async () => {
    const host = await store.acquire('task1', 'data');
    writeFileSync(join(host, 'file'), 'x');
    const e = await rejection(store.remove('data'));
    expect(e.kind).toBe('Conflict');
    expect(e.message).toMatch(/volume data is in use by task task1/);
    await store.remove('data', true);
    expect(existsSync(join(root, 'data'))).toBe(false);
    expect(await store.list()).toEqual([]);
  });

  test('prune removes the unused volumes only', async () => {
    await store.create('unused1');
    await store.create('unused2');
    await store.acquire('task1', 'used');
    expect((await store.prune()).sort()).toEqual(['unused1', 'unused2']);
    expect((await store.list()).map((v) => v.name)).toEqual(['used']);
    expect(await store.prune()).toEqual([]);
  });

  test('two stores making the same volume at once end with one volume, created once', async () => {
    const other = new VolumeStore({ root, log });
    await Promise.all([store.list(), other.list()]); // one store's start-up cleanup must not meet the other's half-made volume
    const made = await Promise.all([...Array(8).keys()].map((i) => (i % 2 ? store : other).acquire(`task${i}`, 'shared')));
    expect(new Set(made).size).toBe(1);
    const v = await store.get('shared');
    expect(v.usedBy).toHaveLength(8);
    expect(readdirSync(root)).toEqual(['shared']);
  });

  test('what a crash left half-made or half-removed is deleted on first use', async () => {
    mkdirSync(join(root, '.tmp-abc', '_data'), { recursive: true });
    mkdirSync(join(root, '.trash-def', '_data'), { recursive: true });
    await store.create('data');
    expect(readdirSync(root)).toEqual(['data']);
  });

  test("an empty volume is filled from the image's directory, with modes and links; a used or non-empty one is not", async () => {
    const image = join(dir, 'image-www');
    mkdirSync(join(image, 'sub'), { recursive: true, mode: 0o750 });
    writeFileSync(join(image, 'index.html'), 'from the image');
    writeFileSync(join(image, 'sub', 'secret'), 's', { mode: 0o600 });
    symlinkSync('/etc/passwd', join(image, 'link'));
    const host = await store.acquire('task1', 'www', image);
    expect(readFileSync(join(host, 'index.html'), 'utf8')).toBe('from the image');
    expect(statSync(join(host, 'sub', 'secret')).mode & 0o777).toBe(0o600);
    expect(readlinkSync(join(host, 'link'))).toBe('/etc/passwd'); // copied as a link, never followed
    expect(readdirSync(join(root, 'www')).sort()).toEqual(['_data', 'meta.json', 'users']);
    // Written to since: a later task's image does not overwrite it.
    writeFileSync(join(host, 'index.html'), 'changed');
    await store.release('task1');
    await store.acquire('task2', 'www', image);
    expect(readFileSync(join(host, 'index.html'), 'utf8')).toBe('changed');
    // Empty, but in use by another task: left alone (the other task has it mounted).
    const other = await store.acquire('task3', 'busy');
    await store.acquire('task4', 'busy', image);
    expect(readdirSync(other)).toEqual([]);
    // Nothing at the target in the image, or a file there: an empty volume.
    expect(readdirSync(await store.acquire('task5', 'nothing', join(dir, 'no-such-dir')))).toEqual([]);
    expect(readdirSync(await store.acquire('task6', 'afile', join(image, 'index.html')))).toEqual([]);
  });

  test('releaseAllExcept forgets the uses of tasks that are gone', async () => {
    await store.acquire('live', 'a');
    await store.acquire('gone', 'a');
    await store.acquire('gone', 'b');
    expect(await store.releaseAllExcept(['live'])).toEqual(['gone']);
    expect((await store.list()).map((v) => [v.name, v.usedBy])).toEqual([['a', ['live']], ['b', []]]);
  });
});

describe('prepareMounts', () => {
  test('acquires named and anonymous volumes, checks bind sources, plans OCI mounts', async () => {
    const src = join(dir, 'www');
    mkdirSync(src);
    const t = task('taskA', [
      { type: MountType.MOUNT_TYPE_BIND, source: src, target: '/www', readonly: true },
      { source: 'data', target: '/data' },
      { target: '/anon' },
      { type: MountType.MOUNT_TYPE_TMPFS, target: '/run', tmpfsSizeBytes: 1 << 20 },
    ]);
    const anon = anonymousVolumeName('taskA', '/anon');
    const want = [
      { destination: '/www', type: 'bind', source: src, options: ['rbind', 'rprivate', 'ro'] },
      { destination: '/data', type: 'bind', source: join(root, 'data', '_data'), options: ['rbind', 'rprivate', 'rw'] },
      { destination: '/anon', type: 'bind', source: join(root, anon, '_data'), options: ['rbind', 'rprivate', 'rw'] },
      { destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'noexec', 'mode=1777', 'size=1048576', 'rw'] },
    ];
    expect(await prepareMounts(t, store)).toEqual(want);
    expect(await prepareMounts(t, store)).toEqual(want); // again: the same anonymous volume
    expect((await store.list()).map((v) => [v.name, v.usedBy])).toEqual([[anon, ['taskA']], ['data', ['taskA']]].sort());
    await releaseMounts('taskA', store);
    expect((await store.list()).every((v) => v.usedBy.length === 0)).toBe(true);
  });

  test('a bind source that does not exist rejects the task with a clear message, before any volume is taken', async () => {
    const t = task('taskB', [
      { source: 'data', target: '/data' },
      { type: MountType.MOUNT_TYPE_BIND, source: '/nonexistent/swarmlet-test', target: '/x' },
    ]);
    const e = await rejection(prepareMounts(t, store));
    expect(e).toBeInstanceOf(SwarmletError);
    expect(e.message).toBe('bind source path does not exist: /nonexistent/swarmlet-test');
    expect(await store.list()).toEqual([]);
  });
});

describe('LocalNode volume calls', () => {
  let server: grpc.Server;
  let client: LocalNodeClient;

  beforeEach(async () => {
    const socket = `unix://${join(dir, 'api.sock')}`;
    server = new grpc.Server();
    server.addService(LocalNodeService, volumeService(store) as unknown as grpc.UntypedServiceImplementation);
    await new Promise<void>((resolve, reject) => server.bindAsync(socket, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())));
    client = new LocalNodeClient(socket, grpc.credentials.createInsecure());
  });

  afterEach(() => {
    client.close();
    server.forceShutdown();
  });

  test('create, list, get, remove and prune, with errors as gRPC codes', async () => {
    const v = await callUnary(client.createVolume.bind(client), { name: 'data', driver: '', labels: { a: 'b' } });
    expect(v).toMatchObject({ name: 'data', driver: 'local', labels: { a: 'b' } });
    await expect(callUnary(client.createVolume.bind(client), { name: 'x', driver: 'nfs', labels: {} })).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringMatching(/driver "nfs" is not supported/) });
    expect((await callUnary(client.listVolumes.bind(client), {})).volumes.map((x) => x.name)).toEqual(['data']);
    expect(await callUnary(client.getVolume.bind(client), { name: 'data' })).toEqual(v);
    await expect(callUnary(client.getVolume.bind(client), { name: 'nope' })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND, details: 'no such volume: nope' });
    await store.acquire('task1', 'data');
    await expect(callUnary(client.removeVolume.bind(client), { name: 'data', force: false })).rejects.toMatchObject({ code: grpc.status.ALREADY_EXISTS });
    await store.create('unused');
    expect(await callUnary(client.pruneVolumes.bind(client), {})).toEqual({ removed: ['unused'] });
    await callUnary(client.removeVolume.bind(client), { name: 'data', force: true });
    expect((await callUnary(client.listVolumes.bind(client), {})).volumes).toEqual([]);
  });
});
