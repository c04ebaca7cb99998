import { Etcd3, IKeyValue, Lease, Watcher } from 'etcd3';
import { conflict, notFound, unavailable, asSwarmletError, SwarmletError } from '../../services/common/errors';
import { Cluster, Node } from '../../services/gen/swarmlet/v1/types';
import { keys, ROOT } from './keys';

/** What every stored object has: an id and a meta whose version is etcd's mod revision. */
interface Versioned {
  id: string;
  meta?: { version: number; createdAt: string; updatedAt: string };
}

interface Codec<T> {
  toJSON(t: T): unknown;
  fromJSON(o: unknown): T;
}

/** The store's view of a watch: something under the prefix changed. Consumers re-read; they never trust a payload. */
export type ChangeListener = () => void;

const NODE_CODEC: Codec<Node> = {
  toJSON: (n) => Node.toJSON({ ...n, managerStatus: n.managerStatus && { addr: n.managerStatus.addr, leader: false, reachability: 0 } }),
  fromJSON: (o) => Node.fromJSON(o),
};

/**
 * Typed access to cluster state in etcd. Creates are create-if-absent, updates compare-and-swap
 * on `meta.version` (etcd's mod revision), so two writers never silently overwrite each other.
 */
export class EtcdStore {
  constructor(readonly client: Etcd3, private readonly now: () => Date = () => new Date()) {}

  async getCluster(): Promise<Cluster | undefined> {
    return this.read(keys.cluster, Cluster);
  }

  /** Creates the cluster object and the first node in one transaction; Conflict if a cluster is already there. */
  async createCluster(cluster: Cluster, firstNode: Node): Promise<void> {
    const res = await this.guard(
      this.client
        .if(keys.cluster, 'Create', '==', 0)
        .then(this.client.put(keys.cluster).value(this.encode(cluster, Cluster, true)), this.client.put(keys.node(firstNode.id)).value(this.encode(firstNode, NODE_CODEC, true)))
        .commit(),
    );
    if (!res.succeeded) throw conflict('this etcd already holds a swarmlet cluster');
  }

  async updateCluster(cluster: Cluster): Promise<Cluster> {
    return this.update(keys.cluster, cluster, Cluster);
  }

  async listNodes(): Promise<Node[]> {
    return this.list(keys.nodesPrefix, NODE_CODEC);
  }

  async getNode(id: string): Promise<Node | undefined> {
    return this.read(keys.node(id), NODE_CODEC);
  }

  async createNode(node: Node): Promise<Node> {
    const res = await this.guard(this.client.if(keys.node(node.id), 'Create', '==', 0).then(this.client.put(keys.node(node.id)).value(this.encode(node, NODE_CODEC, true))).commit());
    if (!res.succeeded) throw conflict(`node ${node.id} already exists`);
    return (await this.getNode(node.id))!;
  }

  async updateNode(node: Node): Promise<Node> {
    return this.update(keys.node(node.id), node, NODE_CODEC);
  }

  async deleteNode(node: Node): Promise<void> {
    const res = await this.guard(this.client.if(keys.node(node.id), 'Mod', '==', node.meta?.version ?? 0).then(this.client.delete().key(keys.node(node.id))).commit());
    if (res.succeeded) return;
    if (!(await this.getNode(node.id))) throw notFound(`node ${node.id} not found`);
    throw new SwarmletError('Retryable', `node ${node.id} changed while it was being removed; try again`);
  }

  /**
   * Reads, changes and compare-and-swaps a node, retrying when another writer got there first.
   * `change` returns the node to write, or undefined to leave it alone.
   */
  async mutateNode(id: string, change: (node: Node) => Node | undefined, attempts = 5): Promise<Node> {
    for (let i = 0; ; i++) {
      const node = await this.getNode(id);
      if (!node) throw notFound(`node ${id} not found`);
      const next = change(structuredClone(node));
      if (!next) return node;
      try {
        return await this.updateNode(next);
      } catch (err) {
        if (err instanceof SwarmletError && err.kind === 'Retryable' && i + 1 < attempts) continue;
        throw err;
      }
    }
  }

  /** Ids of the nodes whose agents are heartbeating now. */
  async heartbeatingNodes(): Promise<Set<string>> {
    return this.idsUnder(keys.heartbeatsPrefix);
  }

  /** Ids of the managers whose daemons are running now. */
  async runningManagers(): Promise<Set<string>> {
    return this.idsUnder(keys.managersPrefix);
  }

  async putLeased(key: string, value: string, lease: Lease): Promise<void> {
    await this.guard(lease.put(key).value(value).exec());
  }

  /** Calls `listener` after anything under one of the prefixes changes. The watcher survives reconnects. */
  async watchPrefixes(prefixes: string[], listener: ChangeListener): Promise<() => Promise<void>> {
    const watchers: Watcher[] = [];
    try {
      for (const prefix of prefixes) {
        const w = await this.client.watch().prefix(prefix).create();
        w.on('put', listener).on('delete', listener).on('connected', listener).on('error', () => undefined);
        watchers.push(w);
      }
    } catch (err) {
      await Promise.all(watchers.map((w) => w.cancel().catch(() => undefined)));
      throw unavailable('could not watch the cluster store', err);
    }
    return async () => {
      await Promise.all(watchers.map((w) => w.cancel().catch(() => undefined)));
    };
  }

  private async idsUnder(prefix: string): Promise<Set<string>> {
    const ks = await this.guard(this.client.getAll().prefix(prefix).keys());
    return new Set(ks.map((k) => k.slice(prefix.length)));
  }

  private async read<T extends Versioned>(key: string, codec: Codec<T>): Promise<T | undefined> {
    const res = await this.guard(this.client.get(key).exec());
    const kv = res.kvs[0];
    return kv ? this.decode(kv, codec) : undefined;
  }

  private async list<T extends Versioned>(prefix: string, codec: Codec<T>): Promise<T[]> {
    const res = await this.guard(this.client.getAll().prefix(prefix).exec());
    return res.kvs.map((kv) => this.decode(kv, codec));
  }

  private async update<T extends Versioned>(key: string, obj: T, codec: Codec<T>): Promise<T> {
    const version = obj.meta?.version ?? 0;
    const res = await this.guard(this.client.if(key, 'Mod', '==', version).then(this.client.put(key).value(this.encode(obj, codec, false))).commit());
    if (!res.succeeded) throw new SwarmletError('Retryable', `${key.slice(ROOT.length)} changed since it was read (version ${version}); try again`);
    return (await this.read(key, codec))!;
  }

  private encode<T extends Versioned>(obj: T, codec: Codec<T>, creating: boolean): string {
    const now = this.now().toISOString();
    const meta = { version: 0, createdAt: creating || !obj.meta?.createdAt ? now : obj.meta.createdAt, updatedAt: now };
    const json = codec.toJSON({ ...obj, meta }) as { meta?: Record<string, unknown> };
    if (json.meta) delete json.meta.version;
    return JSON.stringify(json);
  }

  private decode<T extends Versioned>(kv: IKeyValue, codec: Codec<T>): T {
    const obj = codec.fromJSON(JSON.parse(kv.value.toString()));
    obj.meta = { createdAt: obj.meta?.createdAt ?? '', updatedAt: obj.meta?.updatedAt ?? '', version: Number(kv.mod_revision) };
    return obj;
  }

  /** etcd failures become Unavailable; our own errors pass through. */
  private async guard<T>(p: Promise<T>): Promise<T> {
    try {
      return await p;
    } catch (err) {
      if (err instanceof SwarmletError) throw err;
      throw unavailable(`the cluster store is unavailable: ${asSwarmletError(err).message}`, err);
    }
  }
}
