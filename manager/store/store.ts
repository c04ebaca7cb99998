/**
 * The store port: the reads and writes the manager's loops (and what they call) make on cluster
 * state. `EtcdStore` implements it against etcd (its lists from a watched snapshot when given one);
 * `MemoryStore` in memory, with the same rules, so a loop can be tested as a component.
 *
 * The rules every implementation keeps: an object's `meta.version` is the store revision that last
 * wrote it; updates compare-and-swap on it (a stale one is Retryable); creates are
 * create-if-absent (Conflict); a task's state, desired state and node only move forward (Conflict);
 * a watch listener is called after any change under its prefixes, and readers then read again.
 */
import { Watchable } from '../../services/common/reconcile-loop';
import { Cluster, Network, Node, Service, Task, TaskState } from '../../services/gen/swarmlet/v1/types';

/** Published-port claims a service write makes, keeps and gives up (see manager/network/ports.ts). */
export interface PortClaimWrite {
  claim: string[];
  keep: string[];
  release: string[];
  unclaimed: string[];
}

/** The store's view of a watch: something under the prefix changed. Consumers re-read; they never trust a payload. */
export type ChangeListener = () => void;

/** One task write: compare-and-swap from `before` (its version) to `after`. */
export interface TaskChange {
  before: Task;
  after: Task;
}


export interface Store extends Watchable {
  getCluster(): Promise<Cluster | undefined>;

  listNodes(): Promise<Node[]>;
  getNode(id: string): Promise<Node | undefined>;
  /** Read, change, compare-and-swap, again on a lost race; `change` returns undefined to leave it. NotFound if absent. */
  mutateNode(id: string, change: (node: Node) => Node | undefined, attempts?: number): Promise<Node>;
  /** Ids of the nodes whose agents are heartbeating now. */
  heartbeatingNodes(): Promise<Set<string>>;
  /** Ids of the managers whose daemons are running now. */
  runningManagers(): Promise<Set<string>>;

  listServices(): Promise<Service[]>;
  getService(id: string): Promise<Service | undefined>;
  createService(service: Service, ports?: PortClaimWrite): Promise<Service>;
  /** Compare-and-swaps a service; with `ports`, its port claims change in the same write. */
  updateService(service: Service, ports?: PortClaimWrite): Promise<Service>;
  /** Every ingress port claim: `tcp/8080` -> service id. */
  listPortClaims(): Promise<Map<string, string>>;

  listNetworks(): Promise<Network[]>;
  /** The networks and the revision they were read at: what createNetwork's `readRevision` takes. */
  listNetworksAt(): Promise<{ networks: Network[]; revision: number }>;
  /** Creates a network and claims its name; with `readRevision`, only if no network changed after it (else Retryable). */
  createNetwork(network: Network, readRevision?: number): Promise<Network>;

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
