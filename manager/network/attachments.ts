/**
 * Network-attachment tasks (swarmkit's): a container's endpoint on a cluster network. A node asks
 * the managers for one (Dispatcher.AttachNetwork) for a container of its own; the attachment is a
 * Task whose spec carries `attachment` (the container) and names one network, placed on the
 * calling node from the start. The allocator gives it its address as it does any task's and moves
 * it straight to ASSIGNED (no scheduling); the orchestrator never restarts it; the dispatcher sends
 * it to its node, whose network controller plugs it into the container's namespace; peers and DNS
 * records include it. It goes when the node detaches it, when the node says at session start that
 * its container is gone, or when the node is removed or down (as its tasks do). Pure.
 */
import { invalidArgument, permissionDenied } from '../../services/common/errors';
import { containsAddress, parseCidr, parseIpv4 } from '../../services/common/cidr';
import { Network, Node, NodeState, Task, TaskState } from '../../services/gen/swarmlet/v1/types';
import { INGRESS_NETWORK_NAME, resolveNetwork } from './network-spec';

/** Whether a task is a container's network attachment, not a service's task. */
export const isAttachmentTask = (t: Task): boolean => Boolean(t.spec?.attachment);

export interface AttachmentRequest {
  /** The node that asks, from its certificate. */
  nodeId: string;
  network: string;
  containerId: string;
  containerName: string;
  aliases: string[];
  ipv4Address: string;
}

/** Docker's refusal of a network a container may not join by hand. */
export const notAttachable = (name: string) => `Could not attach to network ${name}: rpc error: code = PermissionDenied desc = network ${name} not manually attachable`;

/**
 * Which network a node's container may join: user bridges and the built-in `bridge` always (as
 * docker lets a node's containers join them), overlays made `--attachable`; never the ingress
 * network, host or none (node-local: the node handles those itself).
 */
export function checkAttachable(network: Network): void {
  const name = network.spec?.name || network.id;
  const driver = network.spec?.driver ?? '';
  if (driver === 'host' || driver === 'none') throw invalidArgument(`network ${name} is node-local: a container joins it on its node, without the managers`);
  if (network.builtin && name === INGRESS_NETWORK_NAME) throw permissionDenied(notAttachable(name));
  if (driver === 'bridge') return;
  if (!network.spec?.attachable) throw permissionDenied(notAttachable(name));
}

/** The live attachment of a container to a network, if it has one. */
export function findAttachment(tasks: Task[], nodeId: string, containerId: string, networkId: string): Task | undefined {
  return tasks.find(
    (t) => isAttachmentTask(t) && t.nodeId === nodeId && t.spec?.attachment?.containerId === containerId && t.spec?.networks[0] === networkId && t.desiredState <= TaskState.TASK_STATE_RUNNING,
  );
}

/** An attachment's status message until the allocator gives it its address (or says why not). */
export const ATTACHMENT_REQUESTED = 'network attachment requested';

export type AttachmentPlan = { kind: 'existing'; task: Task } | { kind: 'create'; task: Task };

/**
 * The attachment task for a request, or the one the container already has on that network (a
 * retried call gets the same). Throws for a network that is not there or not attachable, a
 * malformed or taken --ip, and a request without a container.
 */
export function planAttachment(req: AttachmentRequest, networks: Network[], tasks: Task[], id: string, now: Date): AttachmentPlan {
  if (!req.containerId.trim()) throw invalidArgument('a container id is required');
  const network = resolveNetwork(networks, req.network);
  checkAttachable(network);
  const existing = findAttachment(tasks, req.nodeId, req.containerId, network.id);
  if (existing) return { kind: 'existing', task: existing };
  const name = network.spec?.name || network.id;
  let ipv4 = '';
  if (req.ipv4Address) {
    let a: number;
    try {
      a = parseIpv4(req.ipv4Address, 'address');
    } catch {
      throw invalidArgument(`invalid IPv4 address: ${req.ipv4Address}`);
    }
    const subnet = network.subnet || network.spec?.ipam?.subnet;
    const range = network.spec?.ipam?.ipRange || subnet;
    if (!subnet || !containsAddress(parseCidr(range!), a) || !containsAddress(parseCidr(subnet), a)) {
      throw invalidArgument(`Invalid address ${req.ipv4Address}: It does not belong to any of this network's subnets`);
    }
    const taken = tasks.some((t) => (t.networks ?? []).some((x) => x.networkId === network.id && x.address.split('/')[0] === req.ipv4Address)) || network.gateway === req.ipv4Address;
    if (taken) throw invalidArgument(`Address already in use: ${req.ipv4Address} on network ${name}`);
    ipv4 = req.ipv4Address;
  }
  const at = now.toISOString();
  const task = Task.fromPartial({
    id,
    serviceId: '',
    serviceName: '',
    nodeId: req.nodeId,
    spec: {
      networks: [network.id],
      attachment: { containerId: req.containerId, containerName: req.containerName, aliases: [...new Set(req.aliases.filter((a) => a.trim()))], ipv4Address: ipv4 },
    },
    desiredState: TaskState.TASK_STATE_RUNNING,
    status: { state: TaskState.TASK_STATE_NEW, message: ATTACHMENT_REQUESTED, timestamp: at },
    createdAt: at,
  });
  return { kind: 'create', task };
}

/** Checks that an attachment task may be detached by `nodeId`: it must be one of its own. */
export function checkDetach(task: Task | undefined, nodeId: string): Task | undefined {
  if (!task) return undefined;
  if (!isAttachmentTask(task)) throw invalidArgument(`task ${task.id} is not a network attachment`);
  if (task.nodeId !== nodeId) throw permissionDenied(`attachment ${task.id} belongs to another node`);
  return task;
}

/** The attachment tasks of a node that name containers it no longer has (it lists those it has at session start). */
export function planStaleAttachments(tasks: Task[], nodeId: string, containerIds: string[]): string[] {
  const have = new Set(containerIds);
  return tasks.filter((t) => isAttachmentTask(t) && t.nodeId === nodeId && !have.has(t.spec!.attachment!.containerId)).map((t) => t.id);
}

/** The attachment tasks whose node is removed or down: they go, as the node's tasks are shut down. */
export function planOrphanedAttachments(tasks: Task[], nodes: Node[]): string[] {
  const state = new Map(nodes.map((n) => [n.id, n.status?.state]));
  return tasks.filter((t) => isAttachmentTask(t) && (!state.has(t.nodeId) || state.get(t.nodeId) === NodeState.NODE_STATE_DOWN)).map((t) => t.id);
}
