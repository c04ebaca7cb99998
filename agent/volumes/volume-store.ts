import { Mutex } from 'async-mutex';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { conflict, internal, invalidArgument, notFound } from '../../services/common/errors';
import { Logger, componentLogger } from '../../services/common/logger';
import { Volume } from '../../services/gen/swarmlet/v1/control';
import { isVolumeName } from '../../services/common/volume-name';

export interface VolumeStoreOptions {
  /** `<dataDir>/volumes`: made on first use. */
  root: string;
  log: Logger;
}

/** What a volume's meta.json holds. */
interface VolumeMeta {
  name: string;
  driver: string;
  labels: Record<string, string>;
  createdAt: string;
}

const execFileAsync = promisify(execFile);

export const LOCAL_DRIVER = 'local';
const META = 'meta.json';
const DATA = '_data';
const USERS = 'users';
const TASK_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/**
 * This node's named volumes (the local driver), kept under the data dir so they outlive tasks,
 * services and daemon restarts:
 *
 *   <root>/<name>/meta.json      name, driver, labels, creation time
 *   <root>/<name>/_data/         what tasks mount
 *   <root>/<name>/users/<task>   one empty file per task that uses the volume
 *
 * A volume appears whole or not at all: it is made in `.tmp-*` and renamed into place (a rename
 * onto an existing volume fails, so the first one made wins). Removal renames it to `.trash-*`
 * first; leftovers of either are deleted when the store is first used. Calls run one at a time.
 *
 * As docker does, a task whose image has content where an empty volume is mounted gets that
 * content copied into the volume first (acquire's `seed`): copied into `<name>/.seed-*`, then
 * renamed over the empty `_data`, so a crash leaves the volume empty, never half filled.
 */
export class VolumeStore {
  private readonly root: string;
  private readonly log: Logger;
  private readonly mutex = new Mutex();
  private ready?: Promise<void>;

  constructor(opts: VolumeStoreOptions) {
    this.root = opts.root;
    this.log = componentLogger(opts.log, 'volumes');
  }

  /** Makes a volume; an existing one of the same name is returned as it is (as docker does). An empty name gets a random one. */
  create(name = '', labels: Record<string, string> = {}): Promise<Volume> {
    return this.serialize(async () => this.view(await this.ensure(name || randomName(), labels)));
  }

  get(name: string): Promise<Volume> {
    return this.serialize(async () => this.view(await this.meta(checkName(name))));
  }

  list(): Promise<Volume[]> {
    return this.serialize(async () => {
      const out: Volume[] = [];
      for (const name of await this.names()) {
        const meta = await this.readMeta(name);
        if (meta) out.push(await this.view(meta));
      }
      return out.sort((a, b) => a.name.localeCompare(b.name));
    });
  }

  /** Deletes a volume and its data. One in use by a task is refused unless `force`; with `force` a missing one is no error. */
  remove(name: string, force = false): Promise<void> {
    return this.serialize(async () => {
      checkName(name);
      if (!(await this.readMeta(name))) {
        if (force) return;
        throw notFound(`no such volume: ${name}`);
      }
      const users = await this.users(name);
      if (users.length > 0 && !force) {
        throw conflict(`volume ${name} is in use by task${users.length > 1 ? 's' : ''} ${users.join(', ')}: remove what uses it first, or force the removal`);
      }
      await this.delete(name);
      this.log.info({ volume: name, usedBy: users }, 'volume removed');
    });
  }

  /** Deletes every volume no task uses; returns their names. */
  prune(): Promise<string[]> {
    return this.serialize(async () => {
      const removed: string[] = [];
      for (const name of await this.names()) {
        if (!(await this.readMeta(name)) || (await this.users(name)).length > 0) continue;
        await this.delete(name);
        removed.push(name);
      }
      if (removed.length) this.log.info({ volumes: removed }, 'volumes pruned');
      return removed;
    });
  }

  /**
   * Records that a task uses a volume (made now if it does not exist) and returns the host
   * directory to mount. `seed`: the directory of the task's image at the mount's target (on the
   * host); when the volume is empty and no other task uses it, its content (owners, modes and
   * links kept) becomes the volume's. Idempotent.
   */
  acquire(taskId: string, name: string, seed?: string): Promise<string> {
    return this.serialize(async () => {
      checkTaskId(taskId);
      const meta = await this.ensure(name || randomName(), {});
      const dir = this.dir(meta.name);
      const data = path.join(dir, DATA);
      for (const entry of await fs.readdir(dir)) if (entry.startsWith('.seed-')) await fs.rm(path.join(dir, entry), { recursive: true, force: true });
      await fs.mkdir(data, { recursive: true, mode: 0o755 }); // gone only if a crash fell between seed's rm and rename
      const others = (await this.users(meta.name)).filter((t) => t !== taskId);
      if (seed && others.length === 0 && (await fs.readdir(data)).length === 0) await this.seed(meta.name, seed);
      await fs.mkdir(path.join(dir, USERS), { recursive: true });
      await fs.writeFile(path.join(dir, USERS, taskId), '');
      return data;
    });
  }

  /** Forgets a task's use of every volume. Idempotent. */
  release(taskId: string): Promise<void> {
    return this.serialize(async () => {
      checkTaskId(taskId);
      for (const name of await this.names()) await fs.rm(path.join(this.dir(name), USERS, taskId), { force: true });
    });
  }

  /** Forgets the uses of tasks not in `live` (after an agent restart, for tasks that went while it was away); returns the ids forgotten. */
  releaseAllExcept(live: Iterable<string>): Promise<string[]> {
    return this.serialize(async () => {
      const keep = new Set(live);
      const gone = new Set<string>();
      for (const name of await this.names()) {
        for (const taskId of await this.users(name)) {
          if (keep.has(taskId)) continue;
          await fs.rm(path.join(this.dir(name), USERS, taskId), { force: true });
          gone.add(taskId);
        }
      }
      if (gone.size) this.log.info({ taskIds: [...gone] }, 'released the volumes of tasks that are gone');
      return [...gone];
    });
  }

  // ---- internals (run inside serialize) ----

  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    return this.mutex.runExclusive(async () => {
      await this.init();
      return fn();
    });
  }

  /** Makes the root, and deletes what a crash left half-made or half-removed. Once. */
  private init(): Promise<void> {
    this.ready ??= (async () => {
      await fs.mkdir(this.root, { recursive: true, mode: 0o700 });
      for (const entry of await fs.readdir(this.root)) {
        if (entry.startsWith('.tmp-') || entry.startsWith('.trash-')) await fs.rm(path.join(this.root, entry), { recursive: true, force: true });
      }
    })().catch((err) => {
      this.ready = undefined;
      throw internal(`the volume store at ${this.root} is unusable: ${(err as Error).message}`, err);
    });
    return this.ready;
  }

  private dir(name: string): string {
    return path.join(this.root, name);
  }

  /** The existing volume, or a new one made whole in a temporary directory and renamed into place. */
  private async ensure(name: string, labels: Record<string, string>): Promise<VolumeMeta> {
    checkName(name);
    const existing = await this.readMeta(name);
    if (existing) return existing;
    for (const key of Object.keys(labels)) if (!key) throw invalidArgument('a volume label needs a key');
    const meta: VolumeMeta = { name, driver: LOCAL_DRIVER, labels: { ...labels }, createdAt: new Date().toISOString() };
    const tmp = path.join(this.root, `.tmp-${randomBytes(6).toString('hex')}`);
    try {
      await fs.mkdir(tmp, { mode: 0o700 });
      await fs.mkdir(path.join(tmp, DATA), { mode: 0o755 });
      await fs.mkdir(path.join(tmp, USERS));
      await fs.writeFile(path.join(tmp, META), JSON.stringify(meta, null, 2) + '\n', { mode: 0o600 });
      await fs.rename(tmp, this.dir(name));
    } catch (err) {
      await fs.rm(tmp, { recursive: true, force: true });
      const code = (err as NodeJS.ErrnoException).code;
      const winner = code === 'ENOTEMPTY' || code === 'EEXIST' ? await this.readMeta(name) : undefined;
      if (winner) return winner;
      throw internal(`could not create volume ${name}: ${(err as Error).message}`, err);
    }
    this.log.info({ volume: name }, 'volume created');
    return meta;
  }

  private async meta(name: string): Promise<VolumeMeta> {
    const meta = await this.readMeta(name);
    if (!meta) throw notFound(`no such volume: ${name}`);
    return meta;
  }

  private async readMeta(name: string): Promise<VolumeMeta | undefined> {
    let text: string;
    try {
      text = await fs.readFile(path.join(this.dir(name), META), 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw internal(`volume ${name} is unreadable: ${(err as Error).message}`, err);
    }
    try {
      return JSON.parse(text) as VolumeMeta;
    } catch (err) {
      throw internal(`volume ${name} has a corrupt ${META}: ${(err as Error).message}`, err);
    }
  }

  /** Names of the directories that may be volumes (not the store's own dot entries). */
  private async names(): Promise<string[]> {
    const entries = await fs.readdir(this.root, { withFileTypes: true });
    return entries.filter((e) => e.isDirectory() && isVolumeName(e.name)).map((e) => e.name);
  }

  private async users(name: string): Promise<string[]> {
    try {
      return (await fs.readdir(path.join(this.dir(name), USERS))).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  /** Copies `from` (a directory with content) into the empty volume `name`; nothing when `from` is not a directory or is empty. */
  private async seed(name: string, from: string): Promise<void> {
    const st = await fs.stat(from).catch(() => undefined);
    if (!st?.isDirectory() || (await fs.readdir(from)).length === 0) return;
    const dir = this.dir(name);
    const tmp = path.join(dir, `.seed-${randomBytes(6).toString('hex')}`);
    try {
      await fs.mkdir(tmp);
      // cp -a: owners, modes, times and symlinks as they are (a link is copied, never followed).
      await execFileAsync('cp', ['-a', '--', `${from}/.`, `${tmp}/`], { timeout: 5 * 60_000, maxBuffer: 1 << 20 });
      await fs.chown(tmp, st.uid, st.gid);
      await fs.chmod(tmp, st.mode & 0o7777);
      await fs.rm(path.join(dir, DATA), { recursive: true, force: true });
      await fs.rename(tmp, path.join(dir, DATA));
    } catch (err) {
      await fs.rm(tmp, { recursive: true, force: true });
      const stderr = String((err as { stderr?: string }).stderr ?? '').trim();
      throw internal(`could not copy the image's content into volume ${name}: ${stderr || (err as Error).message}`, err);
    }
    this.log.info({ volume: name }, "volume filled from the image's content at its mount point");
  }

  private async delete(name: string): Promise<void> {
    const trash = path.join(this.root, `.trash-${randomBytes(6).toString('hex')}`);
    await fs.rename(this.dir(name), trash);
    await fs.rm(trash, { recursive: true, force: true });
  }

  private async view(meta: VolumeMeta): Promise<Volume> {
    return {
      name: meta.name,
      driver: meta.driver,
      mountpoint: path.join(this.dir(meta.name), DATA),
      labels: { ...meta.labels },
      createdAt: meta.createdAt,
      usedBy: await this.users(meta.name),
    };
  }
}

const randomName = () => randomBytes(32).toString('hex');

function checkName(name: string): string {
  if (!isVolumeName(name)) {
    throw invalidArgument(`invalid volume name ${JSON.stringify(name)}: use letters, digits, '_', '.' and '-', starting with a letter or digit`);
  }
  return name;
}

function checkTaskId(taskId: string): void {
  if (!TASK_ID.test(taskId)) throw invalidArgument(`invalid task id ${JSON.stringify(taskId)}`);
}
