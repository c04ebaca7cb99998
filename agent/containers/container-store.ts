import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Container } from '../../services/gen/swarmlet/v1/control';

/** A container as the node keeps it: the object, and what only the lifecycle needs. */
export interface ContainerRecord {
  container: Container;
  /** A stop, kill or restart asked for the last exit: no restart policy applies to it (docker's hasBeenManuallyStopped). */
  manuallyStopped: boolean;
}

const ID = /^[0-9a-f]{64}$/;

/**
 * The node's containers on disk, one directory each under `root` (`<dataDir>/local-containers`):
 * `<id>/container.json`, replaced whole (written aside, then renamed), so a daemon that dies
 * mid-write leaves the previous version; `<id>/container.log`, the output of all its runs (records
 * of log-plans.ts, appended by each start's log writer). The runtime's own state lives apart.
 */
export class ContainerStore {
  constructor(private readonly root: string) {}

  private file(id: string): string {
    return join(this.root, id, 'container.json');
  }

  /** Where the container's output is kept, across its restarts, until it is removed. */
  logFile(id: string): string {
    if (!ID.test(id)) throw new Error(`not a container id: ${id}`);
    return join(this.root, id, 'container.log');
  }

  async list(): Promise<ContainerRecord[]> {
    // Nothing is written before the first container: a data dir stays empty until something is asked of it.
    const ids = await readdir(this.root).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return [] as string[];
      throw err;
    });
    const out: ContainerRecord[] = [];
    for (const id of ids.filter((d) => ID.test(d))) {
      const text = await readFile(this.file(id), 'utf8').catch(() => undefined);
      if (!text) continue;
      try {
        const raw = JSON.parse(text) as { container: unknown; manuallyStopped?: boolean };
        out.push({ container: Container.fromJSON(raw.container), manuallyStopped: Boolean(raw.manuallyStopped) });
      } catch {
        // a file cut short can only be a .tmp one: container.json is replaced by rename
      }
    }
    return out;
  }

  async put(rec: ContainerRecord): Promise<void> {
    const dir = join(this.root, rec.container.id);
    await mkdir(dir, { recursive: true });
    const tmp = join(dir, 'container.json.tmp');
    await writeFile(tmp, JSON.stringify({ container: Container.toJSON(rec.container), manuallyStopped: rec.manuallyStopped }, null, 2));
    await rename(tmp, this.file(rec.container.id));
  }

  async remove(id: string): Promise<void> {
    await rm(join(this.root, id), { recursive: true, force: true });
  }
}
