/**
 * Pure plans for the network API and the allocator: which network a reference means, which
 * networks a service may join, who uses a network, what `network inspect` shows, and which new
 * tasks get their addresses now.
 */
import { failedPrecondition, invalidArgument, notFound } from '../services/common/errors';
import { NetworkEndpoint } from '../services/gen/swarmlet/v1/control';
import { EndpointMode, Network, NetworkAttachment, Node, Service, Task, TaskState, VirtualIP } from '../services/gen/swarmlet/v1/types';
import { isAttachmentTask } from './network/attachments';
import { planTaskAddresses } from './network/ipam';
import { INGRESS_NETWORK_NAME, ingressNetwork } from './network/network-spec';
import { byAge } from './orchestrator/tasks';
import { publishesIngress } from './service-plans';

/** A service's ports: its allocated endpoint's, else its spec's. */
const endpointPorts = (s: Service | undefined) => s?.endpoint?.ports ?? s?.spec?.endpoint?.ports;

export { resolveNetwork } from './network/network-spec';

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
    if (network.builtin && network.spec?.name === INGRESS_NETWORK_NAME) {
      throw invalidArgument(`network ${ref} is the routing mesh's and can't be joined: publish a port with --publish instead`);
    }
    if (seen.has(network.id)) throw invalidArgument(`network ${ref} is listed more than once`);
    seen.add(network.id);
    joined.push(network);
  }
  const alone = joined.find((n) => n.spec?.driver === 'host' || n.spec?.driver === 'none');
  if (alone && joined.length > 1) throw invalidArgument(`network ${alone.spec?.name} cannot be combined with other networks`);
}

const isTerminal = (t: Task) => (t.status?.state ?? TaskState.TASK_STATE_NEW) > TaskState.TASK_STATE_RUNNING;

/** `web.3`, or `web.<node id>` for a global service's task; a container's name for its network attachment. */
export const taskName = (t: Task) => (t.spec?.attachment ? t.spec.attachment.containerName || t.spec.attachment.containerId : `${t.serviceName}.${t.slot ? t.slot : t.nodeId}`);

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
  /** Names of the containers attached to it (network-attachment tasks that have not ended). */
  containers?: string[];
}

/** Who keeps a network from being removed: tasks that have not ended, and services that name it. */
export function networkUsers(network: Network, services: Service[], tasks: Task[]): NetworkUsers {
  const taskNames = tasks.filter((t) => !isTerminal(t) && taskUses(t, network)).map(taskName);
  const serviceNames = services
    .filter((s) => (s.spec?.task?.networks ?? []).some((ref) => ref === network.id || ref === network.spec?.name))
    .map((s) => s.spec?.name ?? s.id);
  const order = (a: string, b: string) => a.localeCompare(b, 'en', { numeric: true });
  const containers = tasks.filter((t) => t.spec?.attachment && !isTerminal(t) && taskUses(t, network)).map(taskName);
  return { tasks: taskNames.sort(order), services: serviceNames.sort(order), containers: containers.sort(order) };
}

const LISTED = 5;

/** Throws when a network may not be removed: built in, or in use (by tasks first, else by services). */
export function checkNetworkRemoval(network: Network, users: NetworkUsers): void {
  const name = network.spec?.name || network.id;
  if (network.builtin) throw invalidArgument(`network ${name} is built in and can't be removed`);
  const list = (names: string[]) => `${names.slice(0, LISTED).join(', ')}${names.length > LISTED ? ', ...' : ''}`;
  // Containers on it: docker's words.
  if (users.containers?.length) throw failedPrecondition(`error while removing network: network ${name} id ${network.id} has active endpoints`);
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
        .map((a) => ({ taskId: t.id, taskName: taskName(t), nodeId: t.nodeId, address: a.address, mac: a.mac, containerId: t.spec?.attachment?.containerId ?? '' })),
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

/** What the allocator's task plan needs besides tasks and networks: ingress ports, and addresses held by VIPs and nodes. */
export interface AllocationContext {
  services?: Service[];
  /** Addresses held by service VIPs and nodes' ingress endpoints. */
  reserved?: { networkId: string; address: string }[];
}

/**
 * NEW -> PENDING. A new task whose spec names networks gets its attachments first, oldest task
 * first; one that cannot get them all stays NEW with the reason as its status message (written
 * once, not on every pass), and is tried again on the next pass. A task of a service with ingress
 * ports also gets an attachment on the ingress network, last (its spec's networks keep eth0, eth1...).
 */
export function planAllocation(tasks: Task[], networks: Network[], now: Date, ctx: AllocationContext = {}): AllocationPlan {
  const at = now.toISOString();
  const fresh = tasks.filter((t) => (t.status?.state ?? TaskState.TASK_STATE_NEW) === TaskState.TASK_STATE_NEW && t.desiredState <= TaskState.TASK_STATE_RUNNING).sort(byAge);
  const ingress = ingressNetwork(networks);
  const services = new Map((ctx.services ?? []).map((s) => [s.id, s]));
  const wanted = (t: Task): string[] => {
    const refs = t.spec?.networks ?? [];
    if (!ingress || !publishesIngress(endpointPorts(services.get(t.serviceId)))) return refs;
    const alone = refs.some((ref) => ['host', 'none'].includes(byRef(networks, ref)?.spec?.driver ?? ''));
    return alone ? refs : [...refs, ingress.id];
  };
  const needsAddresses = (t: Task) => wanted(t).length > 0 && (t.networks ?? []).length === 0;
  // An attachment's --ip is a claim on that address: the task keeps it if no one holds it.
  const claim = (t: Task) => (t.spec?.attachment?.ipv4Address ? [NetworkAttachment.fromPartial({ networkId: t.spec.networks[0], address: t.spec.attachment.ipv4Address })] : t.networks);
  const needing = fresh.filter(needsAddresses).map((t) => ({ ...t, networks: claim(t), spec: { ...t.spec!, networks: wanted(t) } }));
  const addresses = needing.length > 0 ? planTaskAddresses({ networks, tasks, pending: needing, reserved: ctx.reserved }) : { attachments: [], failed: [] };
  const attachments = new Map(addresses.attachments.map((a) => [a.taskId, a.networks]));
  const failures = new Map(addresses.failed.map((f) => [f.taskId, f.message]));
  for (const t of needing) {
    const asked = t.spec?.attachment?.ipv4Address;
    const got = attachments.get(t.id)?.[0]?.address.split('/')[0];
    if (asked && got !== undefined && got !== asked) {
      attachments.delete(t.id);
      failures.set(t.id, `Address already in use: ${asked}`);
      addresses.failed.push({ taskId: t.id, message: `Address already in use: ${asked}` });
    }
  }

  const plan: AllocationPlan = { changes: [], allocated: 0, failed: addresses.failed };
  for (const t of fresh) {
    const message = failures.get(t.id);
    if (message !== undefined) {
      if (t.status?.message !== message) plan.changes.push({ before: t, after: { ...t, status: { ...t.status!, message, timestamp: at } } });
      continue;
    }
    const networksOf = needsAddresses(t) ? attachments.get(t.id) ?? [] : t.networks;
    // An attachment is placed on its node from the start: it skips the scheduler.
    const next = isAttachmentTask(t) ? { state: TaskState.TASK_STATE_ASSIGNED, message: 'network attachment allocated' } : { state: TaskState.TASK_STATE_PENDING, message: 'pending task scheduling' };
    plan.changes.push({ before: t, after: { ...t, networks: networksOf, status: { ...t.status!, ...next, timestamp: at } } });
    plan.allocated += 1;
  }
  return plan;
}

// ---- VIPs and nodes' ingress endpoints ------------------------------------------------------

export interface EndpointAllocationInput {
  services: Service[];
  networks: Network[];
  nodes: Node[];
  /** Every task: their addresses are taken. */
  tasks: Task[];
}

export interface EndpointAllocationPlan {
  /** Nodes whose ingress endpoint changes (undefined: taken away, the ingress network is gone). */
  nodes: { nodeId: string; ingress: NetworkAttachment | undefined }[];
  /** Services whose VIPs change. */
  services: { serviceId: string; virtualIps: VirtualIP[] }[];
  /** Every address held by a VIP or a node after the plan: what task addresses must avoid. */
  reserved: { networkId: string; address: string }[];
  failed: { id: string; message: string }[];
}

/** The networks a service gets a VIP on: its overlays and user-defined bridges, in vip mode. */
export function vipNetworks(service: Service, networks: Network[]): Network[] {
  if (service.spec?.endpoint?.mode === EndpointMode.ENDPOINT_MODE_DNSRR) return [];
  return (service.spec?.task?.networks ?? [])
    .map((ref) => byRef(networks, ref))
    .filter((n): n is Network => n !== undefined && !n.builtin && (n.spec?.driver === 'overlay' || n.spec?.driver === 'bridge'));
}

/**
 * One VIP per service per network it joins (vip mode; overlays and user bridges), and one ingress
 * address per node. What is held and still wanted is kept; the rest is freed; new ones take the
 * lowest free addresses, never a task's. Pure.
 */
export function planEndpointAllocation(input: EndpointAllocationInput): EndpointAllocationPlan {
  const plan: EndpointAllocationPlan = { nodes: [], services: [], reserved: [], failed: [] };
  const ingress = ingressNetwork(input.networks);
  const pending: Task[] = [];
  const kept = new Map<string, VirtualIP[]>();

  const nodes = [...input.nodes].sort((a, b) => a.id.localeCompare(b.id));
  for (const node of nodes) {
    const has = node.ingress;
    if (!ingress) {
      if (has) plan.nodes.push({ nodeId: node.id, ingress: undefined });
      continue;
    }
    if (has?.networkId === ingress.id && has.address) plan.reserved.push({ networkId: ingress.id, address: has.address });
    else pending.push(Task.fromPartial({ id: `node/${node.id}`, spec: { networks: [ingress.id] } }));
  }
  const services = [...input.services].sort((a, b) => a.id.localeCompare(b.id));
  for (const service of services) {
    const want = vipNetworks(service, input.networks);
    const held = service.endpoint?.virtualIps ?? [];
    const keep = held.filter((v) => v.addr && want.some((n) => n.id === v.networkId));
    kept.set(service.id, keep);
    keep.forEach((v) => plan.reserved.push({ networkId: v.networkId, address: v.addr }));
    for (const n of want) if (!keep.some((v) => v.networkId === n.id)) pending.push(Task.fromPartial({ id: `vip/${service.id}/${n.id}`, spec: { networks: [n.id] } }));
  }

  const got = pending.length ? planTaskAddresses({ networks: input.networks, tasks: input.tasks, pending, reserved: plan.reserved }) : { attachments: [], failed: [] };
  const given = new Map(got.attachments.map((a) => [a.taskId, a.networks[0]]));
  plan.failed = got.failed.map((f) => ({ id: f.taskId, message: f.message }));
  for (const a of got.attachments) plan.reserved.push({ networkId: a.networks[0].networkId, address: a.networks[0].address });

  for (const node of nodes) {
    const att = given.get(`node/${node.id}`);
    if (att) plan.nodes.push({ nodeId: node.id, ingress: att });
  }
  for (const service of services) {
    const want = vipNetworks(service, input.networks);
    const keep = kept.get(service.id) ?? [];
    const next = want.flatMap((n) => {
      const old = keep.find((v) => v.networkId === n.id);
      if (old) return [old];
      const att = given.get(`vip/${service.id}/${n.id}`);
      return att ? [{ networkId: n.id, addr: att.address }] : [];
    });
    const before = service.endpoint?.virtualIps ?? [];
    if (JSON.stringify(next) !== JSON.stringify(before.map((v) => ({ networkId: v.networkId, addr: v.addr })))) plan.services.push({ serviceId: service.id, virtualIps: next });
  }
  return plan;
}
