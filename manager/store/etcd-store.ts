import { Etcd3, ICompare, IKeyValue, Lease, Watcher } from 'etcd3';
import { asSwarmletError, conflict, ErrorKind, notFound, unavailable, SwarmletError } from '../../services/common/errors';
import { sleep } from '../../services/common/backoff';
import { Cluster, Config, Network, Node, Secret, Service, Task } from '../../services/gen/swarmlet/v1/types';
import { clusterCodec } from './cluster-secrets';
import { ETCD_MAX_REQUEST_BYTES, EtcdSettlingError, etcdRequestError, etcdUnavailable, requestTooLarge } from './etcd-errors';
import { SealKeySource } from '../service-secrets';
import { TaskSpecs } from './task-specs';
import { keys, ROOT } from './keys';
import { LeaseRenewer } from './lease-renewer';
import { heldValue, WatchedSnapshot } from './snapshot';
import { ChangeListener, FileObjectKind, FileObjectOf, HeartbeatLease, ObjectChange, PortClaimWrite, Store, TaskChange, taskBackwards } from './store';
import { newReadCounters, prefixEnd, rangePrefix, ReadCounters } from './paged-range';

export type { PortClaimWrite, ChangeListener } from './store';
export { taskBackwards } from './store';

/** What every stored object has: an id and a meta whose version is etcd's mod revision. */
interface Versioned {
  id: string;
  meta?: { version: number; createdAt: string; updatedAt: string };
}

interface Codec<T> {
  toJSON(t: T): unknown;
  fromJSON(o: unknown): T;
}

/**
 * etcd refuses a transaction of more than 128 compares or 128 operations (--max-txn-ops, counted
 * apart): a batch of 120 writes, each with its compare, leaves room for the leader's fence. Half as
 * many transactions as batches of 64: each costs the leader a gRPC call whatever its size.
 */
const TXN_BATCH = 120;

/** How many write transactions one call keeps in flight at once. */
export const TXNS_IN_FLIGHT = 8;

/**
 * Runs `work` on every item, at most `limit` at a time. Every item is tried even when one fails;
 * then the first failure is thrown (none is left unhandled).
 */
export async function inFlight<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++];
      try {
        await work(item);
      } catch (err) {
        errors.push(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (errors.length) throw errors.find((e) => e instanceof DeposedError) ?? errors[0];
}

/**
 * etcd refuses a request larger than its --max-request-bytes (1.5 MiB by default; the gRPC limit
 * is 2 MiB): the most a swarmlet request may carry.
 */
export { ETCD_MAX_REQUEST_BYTES };

/** A batch of writes stays well under etcd's request limit, whatever the number of objects in it. */
export const TXN_BATCH_BYTES = 512 * 1024;

/**
 * Splits items into batches of at most `maxItems` and, unless one item alone is larger, at most
 * `maxBytes` (as `sizeOf` counts them). Order is kept; no batch is empty.
 */
export function batchBySize<T>(items: T[], sizeOf: (t: T) => number, maxBytes = TXN_BATCH_BYTES, maxItems = TXN_BATCH): T[][] {
  const batches: T[][] = [];
  let batch: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = sizeOf(item);
    if (batch.length > 0 && (batch.length >= maxItems || bytes + size > maxBytes)) {
      batches.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push(item);
    bytes += size;
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}

/**
 * The leader's hold on its title: its election key (under its election lease) and the revision
 * that created it. A store fenced with it writes only while that key still stands, so a deposed
 * leader's writes fail.
 */
export interface LeadershipFence {
  key: string;
  createRevision: number;
}

/** A fenced write failed because the leadership it was fenced with is gone: this manager no longer leads. */
/**
 * A service write lost a race for a published port: another service claimed it between the read
 * and the write (Conflict, naming the port), or the claims moved in a way that names none (Retryable).
 * Planned again on the fresh claims, the write may succeed.
 */
export class PortRaceError extends SwarmletError {
  constructor(kind: Extract<ErrorKind, 'Conflict' | 'Retryable'>, message: string) {
    super(kind, message);
    this.name = 'PortRaceError';
  }
}

export class DeposedError extends SwarmletError {
  constructor(fence: LeadershipFence) {
    super('FailedPrecondition', `this manager is no longer the leader (its election key ${fence.key} at revision ${fence.createRevision} is gone)`);
    this.name = 'DeposedError';
  }
}

/** secrets and configs share one shape; each kind has its own codec. */
const FILE_OBJECT_CODECS: { [K in FileObjectKind]: Codec<FileObjectOf[K]> } = { secret: Secret, config: Config };

const NODE_CODEC: Codec<Node> = {
  toJSON: (n) => Node.toJSON({ ...n, managerStatus: n.managerStatus && { addr: n.managerStatus.addr, leader: false, reachability: 0 } }),
  fromJSON: (o) => Node.fromJSON(o),
};

/**
 * Typed access to cluster state in etcd. Creates are create-if-absent, updates compare-and-swap
 * on `meta.version` (etcd's mod revision), so two writers never silently overwrite each other.
 */
export class EtcdStore implements Store {
  /** The cluster object's codec: its CA key and join tokens sealed with `sealKey`, when given. */
  private readonly clusterCodec: Codec<Cluster>;
  /** Alike task specs decoded as one object (TaskSpecs). */
  private readonly taskSpecs = new TaskSpecs();

  constructor(
    readonly client: Etcd3,
    private readonly now: () => Date = () => new Date(),
    private readonly sealKey?: SealKeySource,
    private readonly fence?: LeadershipFence,
    private readonly onDeposed?: () => void,
    /** What this store (and the stores fenced from it) read from etcd by listing. */
    private readonly reads: ReadCounters = newReadCounters(),
    /** When given, lists of the prefixes it holds (and the cluster) come from it, not from etcd. */
    readonly snapshot?: WatchedSnapshot,
  ) {
    this.clusterCodec = clusterCodec(sealKey);
  }

  /**
   * The same store, reading lists (and the cluster) from `snapshot`, kept current by its watch:
   * what the loops and the dispatcher use. Its writes still go to etcd, and a read after a write
   * sees that write. Its watchPrefixes listens to the snapshot.
   */
  withSnapshot(snapshot: WatchedSnapshot): EtcdStore {
    return new EtcdStore(this.client, this.now, this.sealKey, this.fence, this.onDeposed, this.reads, snapshot);
  }

  /** What listing read from etcd so far (the snapshot's own reads are in its stats). */
  readStats(): ReadCounters {
    return { ...this.reads };
  }

  /**
   * The same store, whose every write also requires the leader's election key to stand as `fence`
   * says; a write refused for that throws DeposedError (and calls `onDeposed`).
   */
  fenced(fence: LeadershipFence, onDeposed?: () => void): EtcdStore {
    return new EtcdStore(this.client, this.now, this.sealKey, fence, onDeposed, this.reads, this.snapshot);
  }

  /**
   * The fence of the campaign whose election key is `key` (etcd3's Election keeps its keys under
   * `prefix`), if that key is the oldest there: the leader now. Else undefined.
   */
  async leadershipFence(prefix: string, key: string): Promise<LeadershipFence | undefined> {
    const res = await this.guard(this.client.getAll().prefix(prefix).sort('Create', 'Ascend').limit(1).exec());
    const first = res.kvs[0];
    if (!first || first.key.toString() !== key) return undefined;
    return { key, createRevision: Number(first.create_revision) };
  }

  /**
   * The node id of the leader: the value of the oldest campaign key of the managers' election. From
   * the snapshot when it holds the election's keys (what the dispatcher's passes use: no etcd read),
   * else read from etcd as etcd3's `Election.leader()` does.
   */
  async leaderId(): Promise<string | undefined> {
    if (this.snapshot?.covers(keys.electionPrefix)) {
      const { values } = await this.snapshot.read(keys.electionPrefix, (kv) => kv);
      const oldest = values.reduce<IKeyValue | undefined>((a, kv) => (!a || Number(kv.create_revision) < Number(a.create_revision) ? kv : a), undefined);
      return oldest?.value.toString();
    }
    const res = await this.guard(this.client.getAll().prefix(keys.electionPrefix).sort('Create', 'Ascend').limit(1).exec());
    return res.kvs[0]?.value.toString();
  }

  async getCluster(): Promise<Cluster | undefined> {
    if (this.snapshot?.covers(keys.cluster)) return (await this.fromSnapshot(keys.cluster, this.clusterCodec)).values[0];
    return this.read(keys.cluster, this.clusterCodec);
  }

  /** Creates the cluster object and the first node in one transaction; Conflict if a cluster is already there. */
  async createCluster(cluster: Cluster, firstNode: Node): Promise<void> {
    const res = await this.guard(
      this
        .when(keys.cluster, 'Create', '==', 0)
        .then(this.client.put(keys.cluster).value(this.encode(cluster, this.clusterCodec, true)), this.client.put(keys.node(firstNode.id)).value(this.encode(firstNode, NODE_CODEC, true)))
        .commit(),
    );
    if (!res.succeeded) throw conflict('this etcd already holds a swarmlet cluster');
  }

  async updateCluster(cluster: Cluster): Promise<Cluster> {
    return this.update(keys.cluster, cluster, this.clusterCodec);
  }

  async listNodes(): Promise<Node[]> {
    return this.list(keys.nodesPrefix, NODE_CODEC);
  }

  async getNode(id: string): Promise<Node | undefined> {
    return this.read(keys.node(id), NODE_CODEC);
  }

  async createNode(node: Node): Promise<Node> {
    const res = await this.guard(this.when(keys.node(node.id), 'Create', '==', 0).then(this.client.put(keys.node(node.id)).value(this.encode(node, NODE_CODEC, true))).commit());
    if (!res.succeeded) throw conflict(`node ${node.id} already exists`);
    return (await this.getNode(node.id))!;
  }

  async updateNode(node: Node): Promise<Node> {
    return this.update(keys.node(node.id), node, NODE_CODEC);
  }

  /** Deletes a node, if it is still at the version read, and its heartbeat key in the same transaction. */
  async deleteNode(node: Node): Promise<void> {
    const res = await this.guard(
      this
        .when(keys.node(node.id), 'Mod', '==', node.meta?.version ?? 0)
        .then(this.client.delete().key(keys.node(node.id)), this.client.delete().key(keys.heartbeat(node.id)))
        .commit(),
    );
    if (res.succeeded) return;
    if (!(await this.getNode(node.id))) throw notFound(`node ${node.id} not found`);
    throw new SwarmletError('Retryable', `node ${node.id} changed while it was being removed; try again`);
  }

  /**
   * Reads, changes and compare-and-swaps a node, retrying when another writer got there first.
   * `change` returns the node to write, or undefined to leave it alone.
   */
  async mutateNode(id: string, change: (node: Node) => Node | undefined, attempts = 5): Promise<Node> {
    const node = await this.mutate(() => this.getNode(id), (n) => this.updateNode(n), change, attempts);
    if (!node) throw notFound(`node ${id} not found`);
    return node;
  }

  // ---- services ------------------------------------------------------------------------------

  async listServices(): Promise<Service[]> {
    return this.list(keys.servicesPrefix, Service);
  }

  async listServicesAt(): Promise<{ services: Service[]; revision: number }> {
    if (this.snapshot?.covers(keys.servicesPrefix)) {
      const read = await this.fromSnapshot(keys.servicesPrefix, Service);
      return { services: read.values, revision: read.revision };
    }
    const res = await this.guard(rangePrefix(this.client, keys.servicesPrefix, undefined, this.reads));
    return { services: res.kvs.map((kv) => this.decode(kv, Service)), revision: res.revision };
  }

  // ---- secrets and configs --------------------------------------------------------------

  async listFileObjects<K extends FileObjectKind>(kind: K): Promise<FileObjectOf[K][]> {
    return this.list(keys.fileObjectsPrefix(kind), FILE_OBJECT_CODECS[kind] as Codec<FileObjectOf[K]>);
  }

  async createFileObject<K extends FileObjectKind>(kind: K, obj: FileObjectOf[K]): Promise<FileObjectOf[K]> {
    const codec = FILE_OBJECT_CODECS[kind] as Codec<FileObjectOf[K]>;
    const name = obj.spec!.name;
    const key = keys.fileObject(kind, obj.id);
    const value = this.encode(obj, codec, true);
    this.fits(key, value);
    const res = await this.guard(
      this.when(keys.fileObjectName(kind, name), 'Create', '==', 0)
        .and(key, 'Create', '==', 0)
        .then(this.client.put(keys.fileObjectName(kind, name)).value(obj.id), this.client.put(key).value(value))
        .commit(),
    );
    if (!res.succeeded) {
      if ((await this.guard(this.client.get(keys.fileObjectName(kind, name)).string())) !== null) throw conflict(`a ${kind} named ${name} already exists`);
      throw conflict(`${kind} ${obj.id} already exists`);
    }
    return (await this.read(key, codec))!;
  }

  async deleteFileObject<K extends FileObjectKind>(kind: K, obj: FileObjectOf[K], servicesRevision: number): Promise<void> {
    const name = obj.spec?.name ?? '';
    const key = keys.fileObject(kind, obj.id);
    const compare: ICompare[] = [
      { key: Buffer.from(key), target: 'Mod', result: 'Equal', mod_revision: obj.meta?.version ?? 0 },
      { key: Buffer.from(keys.servicesPrefix), range_end: prefixEnd(keys.servicesPrefix), target: 'Mod', result: 'Less', mod_revision: servicesRevision + 1 },
    ];
    if (this.fence) compare.push({ key: Buffer.from(this.fence.key), target: 'Create', result: 'Equal', create_revision: this.fence.createRevision });
    const del = (k: string) => ({ request_delete_range: { key: Buffer.from(k) } });
    const res = await this.guard(this.client.kv.txn({ compare, success: [del(key), del(keys.fileObjectName(kind, name))], failure: [] }));
    if (res.succeeded) return;
    if (!(await this.read(key, FILE_OBJECT_CODECS[kind] as Codec<FileObjectOf[K]>))) throw notFound(`${kind} ${name || obj.id} not found`);
    throw new SwarmletError('Retryable', `${kind} ${name || obj.id} or the services changed while it was being removed; try again`);
  }

  async getService(id: string): Promise<Service | undefined> {
    return this.read(keys.service(id), Service);
  }

  /**
   * Creates a service and claims its name (and its ingress ports, when given) in one transaction:
   * Conflict if the name or a port is taken, and then nothing is written.
   */
  async createService(service: Service, ports?: PortClaimWrite): Promise<Service> {
    const name = service.spec!.name;
    let txn = this.when(keys.serviceName(name), 'Create', '==', 0).and(keys.service(service.id), 'Create', '==', 0);
    txn = this.portCompares(txn, service.id, ports);
    const value = this.encode(service, Service, true);
    this.fits(keys.service(service.id), value);
    const res = await this.guard(
      txn.then(this.client.put(keys.serviceName(name)).value(service.id), this.client.put(keys.service(service.id)).value(value), ...this.portOps(service.id, ports)).commit(),
    );
    if (!res.succeeded) {
      const owner = await this.guard(this.client.get(keys.serviceName(name)).string());
      if (owner !== null) throw conflict(`a service named ${name} already exists`);
      throw await this.portConflict(service.id, ports);
    }
    // What was written, at its transaction's revision: no read back.
    return this.decode({ value: Buffer.from(value), mod_revision: res.header.revision } as IKeyValue, Service);
  }

  /** Compare-and-swaps a service; with `ports`, its port claims change in the same transaction. */
  async updateService(service: Service, ports?: PortClaimWrite): Promise<Service> {
    if (!ports) return this.update(keys.service(service.id), service, Service);
    const version = service.meta?.version ?? 0;
    const txn = this.portCompares(this.when(keys.service(service.id), 'Mod', '==', version), service.id, ports);
    const value = this.encode(service, Service, false);
    this.fits(keys.service(service.id), value);
    const res = await this.guard(txn.then(this.client.put(keys.service(service.id)).value(value), ...this.portOps(service.id, ports)).commit());
    if (!res.succeeded) {
      const now = await this.getService(service.id);
      if (!now) throw notFound(`service ${service.spec?.name ?? service.id} not found`);
      if (now.meta?.version !== version) throw new SwarmletError('Retryable', `service ${service.spec?.name} changed since it was read (version ${version}); try again`);
      throw await this.portConflict(service.id, ports);
    }
    return (await this.getService(service.id))!;
  }

  /** Deletes a service and frees its name (and the port claims given), if it is still at the version read. Its tasks are the caller's to retire. */
  async deleteService(service: Service, ports?: PortClaimWrite): Promise<void> {
    const res = await this.guard(
      this
        .when(keys.service(service.id), 'Mod', '==', service.meta?.version ?? 0)
        .then(this.client.delete().key(keys.service(service.id)), this.client.delete().key(keys.serviceName(service.spec!.name)), ...this.portOps(service.id, ports))
        .commit(),
    );
    if (res.succeeded) return;
    if (!(await this.getService(service.id))) throw notFound(`service ${service.spec?.name ?? service.id} not found`);
    throw new SwarmletError('Retryable', `service ${service.spec?.name} changed while it was being removed; try again`);
  }

  /** The service as it was at a store revision (its version then); undefined when etcd no longer has that revision. */
  async getServiceAt(id: string, revision: number): Promise<Service | undefined> {
    try {
      const res = await this.client.get(keys.service(id)).revision(revision).exec();
      const kv = res.kvs[0];
      return kv && Number(kv.mod_revision) === revision ? this.decode(kv, Service) : undefined;
    } catch {
      return undefined; // compacted, or not reachable: the caller treats it as changed
    }
  }

  /** Every ingress port claim: `tcp/8080` -> service id. */
  async listPortClaims(): Promise<Map<string, string>> {
    const res = await this.guard(rangePrefix(this.client, keys.publishedPortsPrefix, undefined, this.reads));
    return new Map(res.kvs.map((kv) => [kv.key.toString().slice(keys.publishedPortsPrefix.length), kv.value.toString()]));
  }

  private portCompares<T extends { and(key: string, column: 'Create' | 'Value', cmp: '==', value: string | number): T }>(txn: T, serviceId: string, ports?: PortClaimWrite): T {
    for (const c of [...(ports?.claim ?? []), ...(ports?.unclaimed ?? [])]) txn = txn.and(keys.publishedPort(c), 'Create', '==', 0);
    for (const c of [...(ports?.keep ?? []), ...(ports?.release ?? [])]) txn = txn.and(keys.publishedPort(c), 'Value', '==', serviceId);
    return txn;
  }

  private portOps(serviceId: string, ports?: PortClaimWrite) {
    return [
      ...(ports?.claim ?? []).map((c) => this.client.put(keys.publishedPort(c)).value(serviceId)),
      ...(ports?.release ?? []).map((c) => this.client.delete().key(keys.publishedPort(c))),
    ];
  }

  /** Why a service write's port compares failed: the first port another service holds. */
  private async portConflict(serviceId: string, ports?: PortClaimWrite): Promise<SwarmletError> {
    const claims = await this.listPortClaims();
    for (const c of [...(ports?.claim ?? []), ...(ports?.unclaimed ?? []), ...(ports?.keep ?? [])]) {
      const owner = claims.get(c);
      if (owner === undefined || owner === serviceId) continue;
      const other = await this.getService(owner);
      const [protocol, port] = c.split('/');
      return new PortRaceError('Conflict', `port ${port}/${protocol} is already published by service ${other?.spec?.name ?? owner}`);
    }
    return new PortRaceError('Retryable', 'the published ports changed while the service was being written; try again');
  }

  // ---- networks ------------------------------------------------------------------------------

  async listNetworks(): Promise<Network[]> {
    return (await this.listNetworksAt()).networks;
  }

  /** The networks, and the store revision they were read at: what createNetwork's `readRevision` takes. */
  async listNetworksAt(): Promise<{ networks: Network[]; revision: number }> {
    if (this.snapshot?.covers(keys.networksPrefix)) {
      const read = await this.fromSnapshot(keys.networksPrefix, Network);
      return { networks: read.values, revision: read.revision };
    }
    const res = await this.guard(rangePrefix(this.client, keys.networksPrefix, undefined, this.reads));
    return { networks: res.kvs.map((kv) => this.decode(kv, Network)), revision: res.revision };
  }

  async getNetwork(id: string): Promise<Network | undefined> {
    return this.read(keys.network(id), Network);
  }

  /**
   * Creates a network and claims its name in one transaction: Conflict if the name is taken.
   * With `readRevision` (from listNetworksAt), the network is written only if no network was
   * created or changed after that revision, else Retryable: its subnet and VNI were chosen against
   * the networks read then, and two managers must not hand out the same ones.
   */
  async createNetwork(network: Network, readRevision?: number): Promise<Network> {
    const name = network.spec!.name;
    const absent = (key: string): ICompare => ({ key: Buffer.from(key), target: 'Create', result: 'Equal', create_revision: 0 });
    const compare = [absent(keys.networkName(name)), absent(keys.network(network.id))];
    if (readRevision !== undefined) {
      compare.push({ key: Buffer.from(keys.networksPrefix), range_end: prefixEnd(keys.networksPrefix), target: 'Mod', result: 'Less', mod_revision: readRevision + 1 });
    }
    if (this.fence) compare.push({ key: Buffer.from(this.fence.key), target: 'Create', result: 'Equal', create_revision: this.fence.createRevision });
    const put = (key: string, value: string) => ({ request_put: { key: Buffer.from(key), value: Buffer.from(value) } });
    // etcd3's transaction builder has no range compares; its KV client takes the request as etcd defines it.
    const res = await this.guard(this.client.kv.txn({ compare, success: [put(keys.networkName(name), network.id), put(keys.network(network.id), this.encode(network, Network, true))], failure: [] }));
    if (!res.succeeded) {
      const owner = await this.guard(this.client.get(keys.networkName(name)).string());
      if (owner !== null) throw conflict(`a network named ${name} already exists`);
      if (await this.getNetwork(network.id)) throw conflict(`network ${network.id} already exists`);
      throw new SwarmletError('Retryable', `the networks changed while network ${name} was being created; try again`);
    }
    return (await this.getNetwork(network.id))!;
  }

  /** Deletes a network and frees its name, if it is still at the version read. Whether it is in use is the caller's to check. */
  async deleteNetwork(network: Network): Promise<void> {
    const name = network.spec?.name ?? '';
    const res = await this.guard(
      this
        .when(keys.network(network.id), 'Mod', '==', network.meta?.version ?? 0)
        .then(this.client.delete().key(keys.network(network.id)), this.client.delete().key(keys.networkName(name)))
        .commit(),
    );
    if (res.succeeded) return;
    if (!(await this.getNetwork(network.id))) throw notFound(`network ${name || network.id} not found`);
    throw new SwarmletError('Retryable', `network ${name || network.id} changed while it was being removed; try again`);
  }

  // ---- tasks ---------------------------------------------------------------------------------

  async listTasks(): Promise<Task[]> {
    return this.list(keys.tasksPrefix, Task);
  }

  async getTask(id: string): Promise<Task | undefined> {
    return this.read(keys.task(id), Task);
  }

  async getTasks(ids: string[]): Promise<Task[]> {
    if (this.snapshot?.covers(keys.tasksPrefix)) {
      try {
        return await this.snapshot.get(ids.map((id) => keys.task(id)), (kv) => this.decode(kv, Task));
      } catch (err) {
        throw asSwarmletError(err);
      }
    }
    return (await Promise.all(ids.map((id) => this.getTask(id)))).filter((t): t is Task => t !== undefined);
  }

  /** Creates tasks, create-if-absent, many to a transaction (batched by bytes as well as by count). */
  async createTasks(tasks: Task[]): Promise<void> {
    const puts = tasks.map((t) => encodedPut(keys.task(t.id), this.encode(t, Task, true)));
    const batches = this.txnBatches(puts);
    await inFlight(batches, TXNS_IN_FLIGHT, async (batch) => {
      const res = await this.putsIf(batch.map((p) => ({ key: p.key, target: 'Create', result: 'Equal', create_revision: 0 })), batch);
      if (!res.succeeded) throw conflict('a task with one of these ids already exists');
    });
  }

  /**
   * Compare-and-swaps a task. The store refuses to move its state or its desired state
   * backwards: a task's life only goes forward.
   */
  async updateTask(task: Task): Promise<Task> {
    const current = await this.getTask(task.id);
    if (!current) throw notFound(`task ${task.id} not found`);
    if (current.meta?.version !== task.meta?.version) throw new SwarmletError('Retryable', `task ${task.id} changed since it was read; try again`);
    const backwards = taskBackwards(current, task);
    if (backwards) throw conflict(`task ${task.id}: ${backwards}`);
    return this.update(keys.task(task.id), task, Task);
  }

  /**
   * Writes many task changes at once: each is a compare-and-swap on the version it was read at,
   * many to a transaction. A batch that loses a race is retried one by one; changes that still
   * lose are skipped and returned: the caller decides (a loop runs again on the change that beat
   * it anyway).
   */
  async updateTasks(changes: TaskChange[]): Promise<Task[]> {
    for (const c of changes) {
      const backwards = taskBackwards(c.before, c.after);
      if (backwards) throw conflict(`task ${c.before.id}: ${backwards}`);
    }
    const lost: Task[] = [];
    const puts = changes.map((c) => ({ ...c, ...encodedPut(keys.task(c.after.id), this.encode(c.after, Task, false)) }));
    const batches = this.txnBatches(puts);
    // Batches go out several at a time: each is its own compare-and-swap, so their order does not matter.
    await inFlight(batches, TXNS_IN_FLIGHT, async (batch) => {
      const res = await this.putsIf(batch.map((c) => ({ key: c.key, target: 'Mod', result: 'Equal', mod_revision: c.before.meta?.version ?? 0 })), batch);
      if (res.succeeded) return;
      for (const c of batch) {
        try {
          await this.update(keys.task(c.after.id), c.after, Task);
        } catch (err) {
          if (!(err instanceof SwarmletError && err.kind === 'Retryable')) throw err;
          lost.push(c.after);
        }
      }
    });
    return lost;
  }

  /** Reads, changes and compare-and-swaps a task, retrying on races; `change` returns undefined to leave it. */
  async mutateTask(id: string, change: (task: Task) => Task | undefined, attempts = 5): Promise<Task | undefined> {
    return this.mutate(() => this.getTask(id), (t) => this.updateTask(t), change, attempts);
  }

  /**
   * Read, change, compare-and-swap; again when another writer won the race, or when etcd was
   * between leaders (a member just removed, say), up to `attempts` times. Reading again makes the
   * retry safe even if the write that failed was applied after all.
   */
  private async mutate<T>(read: () => Promise<T | undefined>, write: (t: T) => Promise<T>, change: (t: T) => T | undefined, attempts: number): Promise<T | undefined> {
    for (let i = 0; ; i++) {
      try {
        const current = await read();
        if (!current) return undefined;
        const next = change(structuredClone(current));
        if (!next) return current;
        return await write(next);
      } catch (err) {
        if (i + 1 >= attempts) throw err;
        if (err instanceof SwarmletError && err.kind === 'Retryable') continue;
        if (!isLeaderChange(err)) throw err;
        await sleep(LEADER_CHANGE_BACKOFF_MS * (i + 1));
      }
    }
  }

  async deleteTasks(ids: string[]): Promise<void> {
    const batches: string[][] = [];
    for (let i = 0; i < ids.length; i += TXN_BATCH) batches.push(ids.slice(i, i + TXN_BATCH));
    await inFlight(batches, TXNS_IN_FLIGHT, async (batch) => {
      // A compare that always holds: etcd3's client builds transactions from a compare.
      await this.guard(this.when(keys.task(batch[0]), 'Create', '>', -1).then(...batch.map((id) => this.client.delete().key(keys.task(id)))).commit());
    });
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

  /**
   * The heartbeat key under a new etcd lease, renewed only when the agent heartbeats (no automatic
   * keepalive). Renewals of every lease of this client share one keepalive stream.
   */
  async holdHeartbeat(nodeId: string, sessionId: string, ttlSeconds: number): Promise<HeartbeatLease> {
    const lease = this.client.lease(ttlSeconds, { autoKeepAlive: false });
    await this.putLeased(keys.heartbeat(nodeId), sessionId, lease);
    const renewer = renewerOf(this.client);
    return {
      renew: async () => ((await renewer.renew(lease)) ?? 0) > 0,
      release: async () => {
        await this.guard(lease.revoke());
      },
    };
  }

  /** Calls `listener` after anything under one of the prefixes changes. The watcher survives reconnects. */
  async watchPrefixes(prefixes: string[], listener: ChangeListener): Promise<() => Promise<void>> {
    const snapshot = this.snapshot;
    if (snapshot && prefixes.every((p) => snapshot.covers(p))) {
      await snapshot.start().catch((err) => {
        throw asSwarmletError(err);
      });
      const off = snapshot.onChange(prefixes, listener);
      return async () => {
        off();
      };
    }
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

  /**
   * Calls `listener` with each change the snapshot's watch applies to a stored object (a node,
   * service, network, task, secret or config directly under its prefix), decoded as the lists
   * decode it and from the same cache: no watch and no decoding of its own. Undefined without a snapshot.
   */
  watchObjects(listener: (changes: ObjectChange[]) => void): (() => void) | undefined {
    const snapshot = this.snapshot;
    if (!snapshot) return undefined;
    return snapshot.onChanges((changes) => {
      const objects: ObjectChange[] = [];
      for (const c of changes) {
        const codec = objectCodecOf(c.key);
        if (!codec) continue;
        const decode = (kv: IKeyValue) => this.decode(kv, codec);
        objects.push({ key: c.key, kind: c.kind, revision: c.revision, before: c.before && heldValue(c.before, decode), after: c.after && heldValue(c.after, decode) });
      }
      if (objects.length) listener(objects);
    });
  }

  private async fromSnapshot<T extends Versioned>(prefix: string, codec: Codec<T>): Promise<{ values: T[]; revision: number }> {
    try {
      return await this.snapshot!.read(prefix, (kv) => this.decode(kv, codec));
    } catch (err) {
      throw asSwarmletError(err);
    }
  }

  /** Notes a successful write's revision, so that reads from the snapshot after it see it. */
  private wrote(revision: string | number): void {
    this.snapshot?.wrote(revision);
  }

  private async idsUnder(prefix: string): Promise<Set<string>> {
    if (this.snapshot?.covers(prefix)) {
      const read = await this.snapshot.read(prefix, (kv) => kv.key.toString().slice(prefix.length));
      return new Set(read.values);
    }
    const ks = await this.guard(this.client.getAll().prefix(prefix).keys());
    return new Set(ks.map((k) => k.slice(prefix.length)));
  }

  private async read<T extends Versioned>(key: string, codec: Codec<T>): Promise<T | undefined> {
    const res = await this.guard(this.client.get(key).exec());
    const kv = res.kvs[0];
    return kv ? this.decode(kv, codec) : undefined;
  }

  private async list<T extends Versioned>(prefix: string, codec: Codec<T>): Promise<T[]> {
    if (this.snapshot?.covers(prefix)) return (await this.fromSnapshot(prefix, codec)).values;
    const res = await this.guard(rangePrefix(this.client, prefix, undefined, this.reads));
    return res.kvs.map((kv) => this.decode(kv, codec));
  }

  private async update<T extends Versioned>(key: string, obj: T, codec: Codec<T>): Promise<T> {
    const version = obj.meta?.version ?? 0;
    const value = this.encode(obj, codec, false);
    this.fits(key, value);
    const res = await this.guard(this.when(key, 'Mod', '==', version).then(this.client.put(key).value(value)).commit());
    if (!res.succeeded) throw new SwarmletError('Retryable', `${key.slice(ROOT.length)} changed since it was read (version ${version}); try again`);
    // What was written, at its write's revision (a put's mod revision is its transaction's): no read back.
    return this.decode({ value: Buffer.from(value), mod_revision: res.header.revision } as IKeyValue, codec);
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
    if (codec === (Task as Codec<unknown>)) this.taskSpecs.share(obj as unknown as Task);
    return obj;
  }

  /**
   * One transaction of puts under compares, as etcd takes it (what `when(...).then(...)` builds, without
   * a promise per compare and per put: a batch of 64 tasks made 128); fenced like `when`.
   */
  private putsIf(compare: ICompare[], puts: { key: Buffer; value: Buffer }[]) {
    if (this.fence) compare.push({ key: Buffer.from(this.fence.key), target: 'Create', result: 'Equal', create_revision: this.fence.createRevision });
    return this.guard(this.client.kv.txn({ compare, success: puts.map((p) => ({ request_put: { key: p.key, value: p.value } })), failure: [] }));
  }

  /** A transaction on `key`'s compare; on a fenced store it also compares the leader's election key. */
  private when(key: string, column: 'Create' | 'Mod' | 'Value', cmp: '==' | '>', value: string | number) {
    const txn = this.client.if(key, column, cmp, value);
    return this.fence ? txn.and(this.fence.key, 'Create', '==', this.fence.createRevision) : txn;
  }

  /** Refuses, before anything is sent, a write larger than etcd takes: InvalidArgument, not a store outage. */
  private fits(...parts: string[]): void {
    this.fitsBytes(parts.reduce((sum, p) => sum + Buffer.byteLength(p), 0));
  }

  /** Puts in transactions' batches (by count and bytes), each refused before anything is sent if larger than etcd takes. */
  private txnBatches<P extends { key: Buffer; value: Buffer }>(puts: P[]): P[][] {
    const batches = batchBySize(puts, putSize);
    for (const batch of batches) this.fitsBytes(batch.reduce((sum, p) => sum + p.key.length + p.value.length, 0));
    return batches;
  }

  private fitsBytes(bytes: number): void {
    if (bytes > ETCD_MAX_REQUEST_BYTES) throw requestTooLarge(bytes, ETCD_MAX_REQUEST_BYTES);
  }

  /**
   * etcd failures become Unavailable (a request too large for etcd InvalidArgument); our own errors
   * pass through. On a fenced store, a transaction that did not succeed checks the fence first: if
   * the leadership is gone, DeposedError.
   */
  private async guard<T>(p: Promise<T>): Promise<T> {
    let res: T;
    try {
      res = await p;
    } catch (err) {
      throw etcdRequestError(err);
    }
    const txn = res as { succeeded?: unknown; header?: { revision?: string } };
    if (typeof txn === 'object' && txn !== null && txn.succeeded === true && txn.header?.revision) this.wrote(txn.header.revision);
    if (this.fence && typeof txn === 'object' && txn !== null && txn.succeeded === false) await this.checkFence(this.fence);
    return res;
  }

  private async checkFence(fence: LeadershipFence): Promise<void> {
    const res = await this.guardRead(this.client.get(fence.key).exec());
    if (Number(res.kvs[0]?.create_revision ?? 0) === fence.createRevision) return;
    this.onDeposed?.();
    throw new DeposedError(fence);
  }

  private async guardRead<T>(p: Promise<T>): Promise<T> {
    try {
      return await p;
    } catch (err) {
      throw etcdUnavailable(err);
    }
  }
}

/** The codec of the stored object at `key` (directly under its kind's prefix), if it is one. */
const OBJECT_CODECS: [string, Codec<Versioned>][] = [
  [keys.tasksPrefix, Task as Codec<Task>],
  [keys.nodesPrefix, NODE_CODEC],
  [keys.servicesPrefix, Service as Codec<Service>],
  [keys.networksPrefix, Network as Codec<Network>],
  [keys.fileObjectsPrefix('secret'), Secret as Codec<Secret>],
  [keys.fileObjectsPrefix('config'), Config as Codec<Config>],
] as [string, Codec<Versioned>][];
const objectCodecOf = (key: string): Codec<Versioned> | undefined => OBJECT_CODECS.find(([prefix]) => key.startsWith(prefix) && !key.includes('/', prefix.length))?.[1];

/** One lease renewer per etcd client, shared by every store made from it. */
const renewers = new WeakMap<Etcd3, LeaseRenewer>();
const renewerOf = (client: Etcd3): LeaseRenewer => {
  let r = renewers.get(client);
  if (!r) renewers.set(client, (r = new LeaseRenewer(client)));
  return r;
};

/** What a put adds to a transaction, about: its key and value (etcd's framing is small beside them). */
const putSize = (p: { key: Buffer; value: Buffer }) => p.key.length + p.value.length + 32;

/** A put's key and value as the bytes etcd gets, made once (sized, checked and sent from them). */
const encodedPut = (key: string, value: string) => ({ key: Buffer.from(key), value: Buffer.from(value) });

/** How long mutate waits after etcd said its leader changed, times the attempt number. */
const LEADER_CHANGE_BACKOFF_MS = 250;

/** etcd refused a request because it was between leaders: it can be tried again shortly. */
const isLeaderChange = (err: unknown): boolean => err instanceof EtcdSettlingError;
