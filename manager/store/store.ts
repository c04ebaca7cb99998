/**
 * The store port: the reads and writes the manager's loops (and what they call) make on cluster
 * state. `EtcdStore` implements it against etcd (its lists from a watched snapshot when given one);
 * `MemoryStore` in memory, with the same rules, so a loop can be tested as a component.
 *
 * The rules every implementation keeps: an object's `meta.version` is the store revision that last
 * wrote it; updates compare-and-swap on it (a stale one is Retryable); creates are
 * create-if-absent (Conflict); a task's state, desired state and node only move forward (Conflict);
 * a watch listener is called after any change under its prefixes, and readers then read again.
 *
 * What the Control API, the dispatcher and the leader's loops need is all here. Which reads they get
 * is the composition's choice: the Control API is given a store that reads etcd on every call (a CLI
 * command sees what any manager has just written), the loops and the dispatcher one over the
 * watched snapshot.
 */
import { Watchable } from '../../services/common/reconcile-loop';
import { Cluster, Config, Network, Node, Secret, Service, Task, TaskState } from '../../services/gen/swarmlet/v1/types';

/** the two kinds of objects a task gets as files; their values are kept sealed. */
export type FileObjectKind = 'secret' | 'config';
export interface FileObjectOf {
  secret: Secret;
  config: Config;
}

/** Published-port claims a service write makes, keeps and gives up (see manager/network/ports.ts). */
export interface PortClaimWrite {
  claim: string[];
  keep: string[];
  release: string[];
  unclaimed: string[];
}

/** The store's view of a watch: something under the prefix changed. Consumers re-read; they never trust a payload. */
export type ChangeListener = () => void;

/**
 * A node's heartbeat key, held under a lease: it goes when the lease is not renewed within its TTL
 * (in etcd, the key is put under a lease; the node-health loop sees it go).
 */
export interface HeartbeatLease {
  /** Renews the lease; false when it had run out already (the key is gone: hold a new one). */
  renew(): Promise<boolean>;
  /** Ends the lease now: the heartbeat key goes at once (a node that leaves). */
  release(): Promise<void>;
}

/** One change of a stored object, decoded: the object before it (if any) and after it (a put's). */
export interface ObjectChange {
  key: string;
  kind: 'put' | 'delete';
  revision: number;
  before?: unknown;
  after?: unknown;
}

/** One task write: compare-and-swap from `before` (its version) to `after`. */
export interface TaskChange {
  before: Task;
  after: Task;
}


export interface Store extends Watchable {
  getCluster(): Promise<Cluster | undefined>;
  /** Compare-and-swaps the cluster object. */
  updateCluster(cluster: Cluster): Promise<Cluster>;

  listNodes(): Promise<Node[]>;
  getNode(id: string): Promise<Node | undefined>;
  /** Compare-and-swaps a node. */
  updateNode(node: Node): Promise<Node>;
  /** Read, change, compare-and-swap, again on a lost race; `change` returns undefined to leave it. NotFound if absent. */
  mutateNode(id: string, change: (node: Node) => Node | undefined, attempts?: number): Promise<Node>;
  /** Deletes a node if it is still at the version read (NotFound if gone, Retryable if changed), and its heartbeat key. */
  deleteNode(node: Node): Promise<void>;
  /** Ids of the nodes whose agents are heartbeating now. */
  heartbeatingNodes(): Promise<Set<string>>;
  /** Puts the node's heartbeat key (its value: the agent's session) under a new lease of `ttlSeconds`. */
  holdHeartbeat(nodeId: string, sessionId: string, ttlSeconds: number): Promise<HeartbeatLease>;
  /** Ids of the managers whose daemons are running now. */
  runningManagers(): Promise<Set<string>>;

  listServices(): Promise<Service[]>;
  getService(id: string): Promise<Service | undefined>;
  createService(service: Service, ports?: PortClaimWrite): Promise<Service>;
  /** Compare-and-swaps a service; with `ports`, its port claims change in the same write. */
  updateService(service: Service, ports?: PortClaimWrite): Promise<Service>;
  /** Deletes a service and frees its name (and the port claims given), if it is still at the version read. */
  deleteService(service: Service, ports?: PortClaimWrite): Promise<void>;
  /** The service as it was at a store revision; undefined when the store no longer has that revision. */
  getServiceAt(id: string, revision: number): Promise<Service | undefined>;
  /** Every ingress port claim: `tcp/8080` -> service id. */
  listPortClaims(): Promise<Map<string, string>>;

  /** The services and the revision they were read at: what deleteFileObject's `servicesRevision` takes. */
  listServicesAt(): Promise<{ services: Service[]; revision: number }>;

  listFileObjects<K extends FileObjectKind>(kind: K): Promise<FileObjectOf[K][]>;
  /** Creates a secret or config and claims its name in one transaction: Conflict if the name is taken. */
  createFileObject<K extends FileObjectKind>(kind: K, obj: FileObjectOf[K]): Promise<FileObjectOf[K]>;
  /**
   * Deletes a secret or config and frees its name, if it is still at the version read and no
   * service was written after `servicesRevision` (else Retryable): whether a service uses it was
   * checked on the services read then.
   */
  deleteFileObject<K extends FileObjectKind>(kind: K, obj: FileObjectOf[K], servicesRevision: number): Promise<void>;

  listNetworks(): Promise<Network[]>;
  /** The networks and the revision they were read at: what createNetwork's `readRevision` takes. */
  listNetworksAt(): Promise<{ networks: Network[]; revision: number }>;
  /** Creates a network and claims its name; with `readRevision`, only if no network changed after it (else Retryable). */
  createNetwork(network: Network, readRevision?: number): Promise<Network>;
  /** Deletes a network and frees its name, if it is still at the version read. */
  deleteNetwork(network: Network): Promise<void>;

  listTasks(): Promise<Task[]>;
  getTask(id: string): Promise<Task | undefined>;
  /** The tasks of these ids that exist, read as the lists are (from the snapshot when there is one): what a batch of compare-and-swaps starts from. */
  getTasks(ids: string[]): Promise<Task[]>;
  /** Creates tasks, create-if-absent. */
  createTasks(tasks: Task[]): Promise<void>;
  /** Compare-and-swaps many tasks; the changes that lost a race are skipped and returned. */
  updateTasks(changes: TaskChange[]): Promise<Task[]>;
  mutateTask(id: string, change: (task: Task) => Task | undefined, attempts?: number): Promise<Task | undefined>;
  deleteTasks(ids: string[]): Promise<void>;
}

/** Why `next` would move a task backwards from `current`, or undefined. */
export function taskBackwards(current: Task, next: Task): string | undefined {
  const was = current.status?.state ?? TaskState.TASK_STATE_NEW;
  const now = next.status?.state ?? TaskState.TASK_STATE_NEW;
  if (now < was) return `state may not move backwards (${TaskState[was]} to ${TaskState[now]})`;
  if (next.desiredState < current.desiredState) return `desired state may not move backwards (${TaskState[current.desiredState]} to ${TaskState[next.desiredState]})`;
  if (current.nodeId && next.nodeId !== current.nodeId) return 'a task never moves to another node';
  return undefined;
}
