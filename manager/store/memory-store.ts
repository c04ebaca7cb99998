/**
 * The store port in memory: what a loop is tested against as a component, without etcd. It keeps
 * EtcdStore's rules: one revision counter, versions as the revision that last wrote an object,
 * compare-and-swap updates, create-if-absent creates, tasks that only move forward, and watch
 * listeners called (soon after, never inside the write) for changes under their prefixes.
 */
import { conflict, notFound, SwarmletError } from '../../services/common/errors';
import { Cluster, Network, Node, Service, Task } from '../../services/gen/swarmlet/v1/types';
import { keys } from './keys';
import { ChangeListener, FileObjectKind, FileObjectOf, HeartbeatLease, PortClaimWrite, Store, TaskChange, taskBackwards } from './store';

interface Versioned {
  id: string;
  meta?: { version: number; createdAt: string; updatedAt: string };
}

interface Held {
  value: unknown;
  modRevision: number;
}

const retryable = (message: string) => new SwarmletError('Retryable', message);

export class MemoryStore implements Store {
  private revision = 0;
  private readonly held = new Map<string, Held>();
  private readonly listeners = new Set<{ prefixes: string[]; fn: ChangeListener }>();
  /** Heartbeat key -> the lease that holds it now (a newer lease takes the key over, as in etcd). */
  private readonly leaseOf = new Map<string, object>();
  /** Writes made, by kind: what a component test checks a no-op pass against. */
  readonly writes = { puts: 0, deletes: 0 };

  constructor(private readonly now: () => Date = () => new Date()) {}

  // ---- what tests set up (the dispatcher and the control API do it in a cluster) ----------------

  async createCluster(cluster: Cluster): Promise<void> {
    if (this.held.has(keys.cluster)) throw conflict('this store already holds a swarmlet cluster');
    this.commit([[keys.cluster, this.stamp(cluster, true)]], []);
  }

  async createNode(node: Node): Promise<Node> {
    if (this.held.has(keys.node(node.id))) throw conflict(`node ${node.id} already exists`);
    this.commit([[keys.node(node.id), this.stamp(node, true)]], []);
    return (await this.getNode(node.id))!;
  }

  /** A node's agent starts or stops heartbeating (in etcd, a key under a lease). */
  setHeartbeat(nodeId: string, alive: boolean): void {
    this.leaseOf.delete(keys.heartbeat(nodeId));
    if (alive) this.commit([[keys.heartbeat(nodeId), nodeId]], []);
    else this.commit([], [keys.heartbeat(nodeId)]);
  }

  // ---- the port ------------------------------------------------------------------------------

  async getCluster(): Promise<Cluster | undefined> {
    return this.get<Cluster & Versioned>(keys.cluster);
  }

  async updateCluster(cluster: Cluster): Promise<Cluster> {
    return this.update(keys.cluster, cluster, 'the cluster');
  }

  async listNodes(): Promise<Node[]> {
    return this.list(keys.nodesPrefix);
  }

  async getNode(id: string): Promise<Node | undefined> {
    return this.get<Node>(keys.node(id));
  }

  async updateNode(node: Node): Promise<Node> {
    return this.update(keys.node(node.id), node, `node ${node.id}`);
  }

  async deleteNode(node: Node): Promise<void> {
    this.checkVersion(keys.node(node.id), node, `node ${node.id}`);
    this.leaseOf.delete(keys.heartbeat(node.id));
    this.commit([], [keys.node(node.id), ...(this.held.has(keys.heartbeat(node.id)) ? [keys.heartbeat(node.id)] : [])]);
  }

  async mutateNode(id: string, change: (node: Node) => Node | undefined, attempts = 5): Promise<Node> {
    const node = await this.mutate(keys.node(id), change, attempts);
    if (!node) throw notFound(`node ${id} not found`);
    return node;
  }

  async heartbeatingNodes(): Promise<Set<string>> {
    return this.idsUnder(keys.heartbeatsPrefix);
  }

  /** The key goes `ttlSeconds` after it was put or last renewed, unless a newer lease took it over. */
  async holdHeartbeat(nodeId: string, sessionId: string, ttlSeconds: number): Promise<HeartbeatLease> {
    const key = keys.heartbeat(nodeId);
    const lease = {};
    let live = true;
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        live = false;
        if (this.leaseOf.get(key) !== lease) return;
        this.leaseOf.delete(key);
        this.commit([], [key]);
      }, ttlSeconds * 1000);
      timer.unref();
    };
    this.leaseOf.set(key, lease);
    this.commit([[key, sessionId]], []);
    arm();
    return {
      renew: async () => {
        if (live) arm();
        return live;
      },
      release: async () => {
        clearTimeout(timer);
        live = false;
        if (this.leaseOf.get(key) !== lease) return;
        this.leaseOf.delete(key);
        this.commit([], [key]);
      },
    };
  }

  async runningManagers(): Promise<Set<string>> {
    return this.idsUnder(keys.managersPrefix);
  }

  async listServices(): Promise<Service[]> {
    return this.list(keys.servicesPrefix);
  }

  async getService(id: string): Promise<Service | undefined> {
    return this.get<Service>(keys.service(id));
  }

  async createService(service: Service, ports?: PortClaimWrite): Promise<Service> {
    const name = service.spec!.name;
    if (this.held.has(keys.serviceName(name))) throw conflict(`a service named ${name} already exists`);
    if (this.held.has(keys.service(service.id))) throw conflict(`service ${service.id} already exists`);
    this.checkPorts(service.id, ports);
    this.commit([[keys.serviceName(name), service.id], [keys.service(service.id), this.stamp(service, true)], ...this.claimPuts(service.id, ports)], this.claimDeletes(ports));
    return (await this.getService(service.id))!;
  }

  async updateService(service: Service, ports?: PortClaimWrite): Promise<Service> {
    this.checkVersion(keys.service(service.id), service, `service ${service.spec?.name ?? service.id}`);
    this.checkPorts(service.id, ports);
    this.commit([[keys.service(service.id), this.stamp(service, false)], ...this.claimPuts(service.id, ports)], this.claimDeletes(ports));
    return (await this.getService(service.id))!;
  }

  async deleteService(service: Service, ports?: PortClaimWrite): Promise<void> {
    this.checkVersion(keys.service(service.id), service, `service ${service.spec?.name ?? service.id}`);
    this.commit([...this.claimPuts(service.id, ports)], [keys.service(service.id), keys.serviceName(service.spec!.name), ...this.claimDeletes(ports)]);
  }

  /** The service if it is still at `revision`: the memory store keeps no history (as etcd after a compaction). */
  async getServiceAt(id: string, revision: number): Promise<Service | undefined> {
    const service = this.get<Service>(keys.service(id));
    return service?.meta?.version === revision ? service : undefined;
  }

  async listPortClaims(): Promise<Map<string, string>> {
    const claims = new Map<string, string>();
    for (const [key, h] of this.held) if (key.startsWith(keys.publishedPortsPrefix)) claims.set(key.slice(keys.publishedPortsPrefix.length), h.value as string);
    return claims;
  }

  async listServicesAt(): Promise<{ services: Service[]; revision: number }> {
    return { services: await this.listServices(), revision: this.revision };
  }

  async listFileObjects<K extends FileObjectKind>(kind: K): Promise<FileObjectOf[K][]> {
    return this.list(keys.fileObjectsPrefix(kind));
  }

  async createFileObject<K extends FileObjectKind>(kind: K, obj: FileObjectOf[K]): Promise<FileObjectOf[K]> {
    const name = obj.spec!.name;
    if (this.held.has(keys.fileObjectName(kind, name))) throw conflict(`a ${kind} named ${name} already exists`);
    if (this.held.has(keys.fileObject(kind, obj.id))) throw conflict(`${kind} ${obj.id} already exists`);
    this.commit([[keys.fileObjectName(kind, name), obj.id], [keys.fileObject(kind, obj.id), this.stamp(obj, true)]], []);
    return this.get<FileObjectOf[K]>(keys.fileObject(kind, obj.id))!;
  }

  async deleteFileObject<K extends FileObjectKind>(kind: K, obj: FileObjectOf[K], servicesRevision: number): Promise<void> {
    const name = obj.spec?.name ?? '';
    this.checkVersion(keys.fileObject(kind, obj.id), obj, `${kind} ${name || obj.id}`);
    if ([...this.held].some(([k, h]) => k.startsWith(keys.servicesPrefix) && h.modRevision > servicesRevision)) {
      throw retryable(`${kind} ${name || obj.id} or the services changed while it was being removed; try again`);
    }
    this.commit([], [keys.fileObject(kind, obj.id), keys.fileObjectName(kind, name)]);
  }

  async listNetworks(): Promise<Network[]> {
    return this.list(keys.networksPrefix);
  }

  async listNetworksAt(): Promise<{ networks: Network[]; revision: number }> {
    return { networks: await this.listNetworks(), revision: this.revision };
  }

  async createNetwork(network: Network, readRevision?: number): Promise<Network> {
    const name = network.spec!.name;
    if (this.held.has(keys.networkName(name))) throw conflict(`a network named ${name} already exists`);
    if (this.held.has(keys.network(network.id))) throw conflict(`network ${network.id} already exists`);
    if (readRevision !== undefined && [...this.held].some(([k, h]) => k.startsWith(keys.networksPrefix) && h.modRevision > readRevision)) {
      throw retryable(`the networks changed while network ${name} was being created; try again`);
    }
    this.commit([[keys.networkName(name), network.id], [keys.network(network.id), this.stamp(network, true)]], []);
    return (await this.get<Network>(keys.network(network.id)))!;
  }

  async deleteNetwork(network: Network): Promise<void> {
    const name = network.spec?.name ?? '';
    this.checkVersion(keys.network(network.id), network, `network ${name || network.id}`);
    this.commit([], [keys.network(network.id), keys.networkName(name)]);
  }

  async listTasks(): Promise<Task[]> {
    return this.list(keys.tasksPrefix);
  }

  async getTask(id: string): Promise<Task | undefined> {
    return this.get<Task>(keys.task(id));
  }

  async getTasks(ids: string[]): Promise<Task[]> {
    return (await Promise.all(ids.map((id) => this.getTask(id)))).filter((t): t is Task => t !== undefined);
  }

  async createTasks(tasks: Task[]): Promise<void> {
    if (tasks.some((t) => this.held.has(keys.task(t.id)))) throw conflict('a task with one of these ids already exists');
    if (tasks.length) this.commit(tasks.map((t) => [keys.task(t.id), this.stamp(t, true)]), []);
  }

  async updateTasks(changes: TaskChange[]): Promise<Task[]> {
    for (const c of changes) {
      const backwards = taskBackwards(c.before, c.after);
      if (backwards) throw conflict(`task ${c.before.id}: ${backwards}`);
    }
    const lost: Task[] = [];
    const puts: [string, unknown][] = [];
    for (const c of changes) {
      const h = this.held.get(keys.task(c.after.id));
      if (!h || h.modRevision !== (c.before.meta?.version ?? 0)) lost.push(c.after);
      else puts.push([keys.task(c.after.id), this.stamp(c.after, false)]);
    }
    if (puts.length) this.commit(puts, []);
    return lost;
  }

  async mutateTask(id: string, change: (task: Task) => Task | undefined, attempts = 5): Promise<Task | undefined> {
    return this.mutate(keys.task(id), change, attempts, (current, next) => {
      const backwards = taskBackwards(current, next);
      if (backwards) throw conflict(`task ${id}: ${backwards}`);
    });
  }

  async deleteTasks(ids: string[]): Promise<void> {
    const gone = ids.map((id) => keys.task(id)).filter((k) => this.held.has(k));
    if (gone.length) this.commit([], gone);
  }

  async watchPrefixes(prefixes: string[], listener: ChangeListener): Promise<() => Promise<void>> {
    const entry = { prefixes, fn: listener };
    this.listeners.add(entry);
    return async () => {
      this.listeners.delete(entry);
    };
  }

  // ---- the mechanism -------------------------------------------------------------------------

  private get<T extends Versioned>(key: string): T | undefined {
    const h = this.held.get(key);
    if (!h) return undefined;
    const obj = structuredClone(h.value) as T;
    obj.meta = { createdAt: obj.meta?.createdAt ?? '', updatedAt: obj.meta?.updatedAt ?? '', version: h.modRevision };
    return obj;
  }

  private list<T extends Versioned>(prefix: string): T[] {
    return [...this.held.keys()].filter((k) => k.startsWith(prefix)).map((k) => this.get<T>(k)!);
  }

  private idsUnder(prefix: string): Set<string> {
    return new Set([...this.held.keys()].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length)));
  }

  private update<T extends Versioned>(key: string, obj: T, what: string): T {
    this.checkVersion(key, obj, what);
    this.commit([[key, this.stamp(obj, false)]], []);
    return this.get<T>(key)!;
  }

  private stamp<T extends Versioned>(obj: T, creating: boolean): T {
    const now = this.now().toISOString();
    return structuredClone({ ...obj, meta: { version: 0, createdAt: creating || !obj.meta?.createdAt ? now : obj.meta.createdAt, updatedAt: now } });
  }

  private checkVersion(key: string, obj: Versioned, what: string): void {
    const h = this.held.get(key);
    if (!h) throw notFound(`${what} not found`);
    if (h.modRevision !== (obj.meta?.version ?? 0)) throw retryable(`${what} changed since it was read (version ${obj.meta?.version ?? 0}); try again`);
  }

  private checkPorts(serviceId: string, ports?: PortClaimWrite): void {
    const owner = (c: string) => this.held.get(keys.publishedPort(c))?.value as string | undefined;
    for (const c of [...(ports?.claim ?? []), ...(ports?.unclaimed ?? [])]) {
      const other = owner(c);
      if (other !== undefined) {
        const [protocol, port] = c.split('/');
        throw conflict(`port ${port}/${protocol} is already published by service ${this.get<Service>(keys.service(other))?.spec?.name ?? other}`);
      }
    }
    for (const c of [...(ports?.keep ?? []), ...(ports?.release ?? [])]) {
      if (owner(c) !== serviceId) throw retryable('the published ports changed while the service was being written; try again');
    }
  }

  private claimPuts(serviceId: string, ports?: PortClaimWrite): [string, unknown][] {
    return (ports?.claim ?? []).map((c) => [keys.publishedPort(c), serviceId]);
  }

  private claimDeletes(ports?: PortClaimWrite): string[] {
    return (ports?.release ?? []).map((c) => keys.publishedPort(c));
  }

  private async mutate<T extends Versioned>(key: string, change: (t: T) => T | undefined, attempts: number, check?: (current: T, next: T) => void): Promise<T | undefined> {
    for (let i = 0; ; i++) {
      const current = this.get<T>(key);
      if (!current) return undefined;
      const next = change(structuredClone(current));
      if (!next) return current;
      check?.(current, next);
      try {
        this.checkVersion(key, next, key);
      } catch (err) {
        if (i + 1 >= attempts) throw err;
        continue;
      }
      this.commit([[key, this.stamp(next, false)]], []);
      return this.get<T>(key);
    }
  }

  /** One write: every put and delete at one new revision; the listeners hear of it after this call. */
  private commit(puts: [string, unknown][], deletes: string[]): void {
    this.revision += 1;
    for (const [key, value] of puts) this.held.set(key, { value, modRevision: this.revision });
    for (const key of deletes) this.held.delete(key);
    this.writes.puts += puts.length;
    this.writes.deletes += deletes.length;
    const changed = [...puts.map(([k]) => k), ...deletes];
    for (const l of this.listeners) {
      if (changed.some((k) => l.prefixes.some((p) => k.startsWith(p)))) queueMicrotask(l.fn);
    }
  }
}
