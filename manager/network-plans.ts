/**
 * Pure plans for the network API and the allocator: which network a reference means, which
 * networks a service may join, who uses a network, what `network inspect` shows, and which new
 * tasks get their addresses now.
 */
import { failedPrecondition, invalidArgument, notFound } from '../services/common/errors';
import { NetworkEndpoint } from '../services/gen/swarmlet/v1/control';
import { Network, Service, Task, TaskState } from '../services/gen/swarmlet/v1/types';
import { planTaskAddresses } from './network/ipam';
import { byAge } from './orchestrator/tasks';

/** Finds a network by full id, name, or unique id prefix. */
export function resolveNetwork(networks: Network[], ref: string): Network {
  const wanted = ref.trim();
  if (!wanted) throw invalidArgument('a network name or id is required');
  const exact = networks.find((n) => n.id === wanted) ?? networks.find((n) => n.spec?.name === wanted);
  if (exact) return exact;
  const byPrefix = networks.filter((n) => n.id.startsWith(wanted));
  if (byPrefix.length === 1) return byPrefix[0];
  if (byPrefix.length > 1) throw invalidArgument(`network id prefix ${wanted} is ambiguous (${byPrefix.length} matches)`);
  throw notFound(`network ${wanted} not found`);
}

/** The network a task spec's entry names: a full id or a name, as the allocator resolves them (no prefixes). */
const byRef = (networks: Network[], ref: string) => networks.find((n) => n.id === ref) ?? networks.find((n) => n.spec?.name === ref);

/**
 * Checks a service's `networks` (names or full ids, kept as given): each must exist, none twice,
 * and host or none alone.
 */
export function validateServiceNetworks(refs: string[], networks: Network[]): void {
  const seen = new Set<string>();
  const joined: Network[] = [];
  for (const ref of refs) {
    if (!ref.trim()) throw invalidArgument('a network name is required: use --network NAME');
    const network = byRef(networks, ref);
    if (!network) throw notFound(`network ${ref} not found`);
    if (seen.has(network.id)) throw invalidArgument(`network ${ref} is listed more than once`);
    seen.add(network.id);
    joined.push(network);
  }
  const alone = joined.find((n) => n.spec?.driver === 'host' || n.spec?.driver === 'none');
  if (alone && joined.length > 1) throw invalidArgument(`network ${alone.spec?.name} cannot be combined with other networks`);
}

const isTerminal = (t: Task) => (t.status?.state ?? TaskState.TASK_STATE_NEW) > TaskState.TASK_STATE_RUNNING;

/** `web.3`, or `web.<node id>` for a global service's task. */
export const taskName = (t: Task) => `${t.serviceName}.${t.slot ? t.slot : t.nodeId}`;

/** Whether a task is on the network: attached to it, or (not allocated yet) asking for it by name or id. */
function taskUses(t: Task, network: Network): boolean {
  if ((t.networks ?? []).some((a) => a.networkId === network.id)) return true;
  return (t.networks ?? []).length === 0 && (t.spec?.networks ?? []).some((ref) => ref === network.id || ref === network.spec?.name);
}

export interface NetworkUsers {
  /** Names of the tasks that have not ended and are on the network, in name order. */
  tasks: string[];
  /** Names of the services whose spec names the network. */
  services: string[];
}

/** Who keeps a network from being removed: tasks that have not ended, and services that name it. */
export function networkUsers(network: Network, services: Service[], tasks: Task[]): NetworkUsers {
  const taskNames = tasks.filter((t) => !isTerminal(t) && taskUses(t, network)).map(taskName);
  const serviceNames = services
    .filter((s) => (s.spec?.task?.networks ?? []).some((ref) => ref === network.id || ref === network.spec?.name))
    .map((s) => s.spec?.name ?? s.id);
  const order = (a: string, b: string) => a.localeCompare(b, 'en', { numeric: true });
  return { tasks: taskNames.sort(order), services: serviceNames.sort(order) };
}

const LISTED = 5;

/** Throws when a network may not be removed: built in, or in use (by tasks first, else by services). */
export function checkNetworkRemoval(network: Network, users: NetworkUsers): void {
  const name = network.spec?.name || network.id;
  if (network.builtin) throw invalidArgument(`network ${name} is built in and can't be removed`);
  const list = (names: string[]) => `${names.slice(0, LISTED).join(', ')}${names.length > LISTED ? ', ...' : ''}`;
  if (users.tasks.length > 0) {
    const n = users.tasks.length;
    throw failedPrecondition(`network ${name} is in use by ${n} task${n === 1 ? '' : 's'} (${list(users.tasks)})`);
  }
  if (users.services.length > 0) {
    const n = users.services.length;
    throw failedPrecondition(`network ${name} is in use by ${n === 1 ? 'service' : `${n} services`} ${list(users.services)}`);
  }
}

/** What `network inspect` lists: the attachments of tasks that run or are meant to, by task name. */
export function networkEndpoints(network: Network, tasks: Task[]): NetworkEndpoint[] {
  return tasks
    .filter((t) => t.desiredState <= TaskState.TASK_STATE_RUNNING && !isTerminal(t))
    .flatMap((t) =>
      (t.networks ?? [])
        .filter((a) => a.networkId === network.id)
        .map((a) => ({ taskId: t.id, taskName: taskName(t), nodeId: t.nodeId, address: a.address, mac: a.mac })),
    )
    .sort((a, b) => a.taskName.localeCompare(b.taskName, 'en', { numeric: true }) || a.taskId.localeCompare(b.taskId));
}

// ---- the allocator --------------------------------------------------------------------------

export interface AllocationPlan {
  /** Task writes: new tasks to PENDING (with their attachments), and tasks that wait with a new message. */
  changes: { before: Task; after: Task }[];
  /** How many tasks move on to the scheduler. */
  allocated: number;
  /** Tasks that cannot get their addresses now, with why; they stay NEW. */
  failed: { taskId: string; message: string }[];
}

/**
 * NEW -> PENDING. A new task whose spec names networks gets its attachments first, oldest task
 * first; one that cannot get them all stays NEW with the reason as its status message (written
 * once, not on every pass), and is tried again on the next pass.
 */
export function planAllocation(tasks: Task[], networks: Network[], now: Date): AllocationPlan {
  const at = now.toISOString();
  const fresh = tasks.filter((t) => (t.status?.state ?? TaskState.TASK_STATE_NEW) === TaskState.TASK_STATE_NEW && t.desiredState <= TaskState.TASK_STATE_RUNNING).sort(byAge);
  const needsAddresses = (t: Task) => (t.spec?.networks ?? []).length > 0 && (t.networks ?? []).length === 0;
  const needing = fresh.filter(needsAddresses);
  const addresses = needing.length > 0 ? planTaskAddresses({ networks, tasks, pending: needing }) : { attachments: [], failed: [] };
  const attachments = new Map(addresses.attachments.map((a) => [a.taskId, a.networks]));
  const failures = new Map(addresses.failed.map((f) => [f.taskId, f.message]));

  const plan: AllocationPlan = { changes: [], allocated: 0, failed: addresses.failed };
  for (const t of fresh) {
    const message = failures.get(t.id);
    if (message !== undefined) {
      if (t.status?.message !== message) plan.changes.push({ before: t, after: { ...t, status: { ...t.status!, message, timestamp: at } } });
      continue;
    }
    const networksOf = needsAddresses(t) ? attachments.get(t.id) ?? [] : t.networks;
    plan.changes.push({ before: t, after: { ...t, networks: networksOf, status: { ...t.status!, state: TaskState.TASK_STATE_PENDING, message: 'pending task scheduling', timestamp: at } } });
    plan.allocated += 1;
  }
  return plan;
}
