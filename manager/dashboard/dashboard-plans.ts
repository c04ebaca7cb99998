/**
 * What the web dashboard shows, shaped from one read of the cluster state: the nodes with the
 * tasks meant to run on each, the overlays with the hosts that have a VTEP for them, the
 * published ports, and the latest events. Pure: plain data in, plain JSON-ready data out.
 */
import { Event } from '../../services/gen/swarmlet/v1/control';
import { Network, Node, NodeAvailability, NodeRole, Reachability, Service, Task, TaskState } from '../../services/gen/swarmlet/v1/types';
import { enumLabel, nodeRoleLabel, nodeStateLabel, taskStateLabel } from '../../services/metrics/metric-plans';
import { OverlayIndex } from '../network/peers';
import { isIngress, protocolName, servicePorts } from '../network/ports';

/** How many of the latest events the dashboard shows. */
export const DASHBOARD_EVENTS = 30;

export interface DashboardTask {
  id: string;
  service: string;
  /** The replica's slot (0 for a global service's task). */
  slot: number;
  /** running, pending, failed, ... (what the page colours the box by). */
  state: string;
  message: string;
}

export interface DashboardNode {
  id: string;
  hostname: string;
  role: string;
  /** ready, down, unknown. */
  state: string;
  /** active, pause, drain. */
  availability: string;
  labels: Record<string, string>;
  leader: boolean;
  /** Managers: reachable or unreachable; '' on workers. */
  reachability: string;
  addr: string;
  message: string;
  tasks: DashboardTask[];
}

export interface DashboardOverlay {
  id: string;
  name: string;
  vni: number;
  subnet: string;
  /** The hostnames of the nodes that have a VTEP for it now. */
  hosts: string[];
}

export interface DashboardPort {
  service: string;
  published: number;
  target: number;
  protocol: 'tcp' | 'udp';
  mode: 'ingress' | 'host';
}

export interface DashboardEvent {
  time: string;
  type: string;
  action: string;
  actorId: string;
  name: string;
  /** What changed, `state: starting → running` (each `x.old`/`x.new` pair of the event), '' for none. */
  change: string;
}

export interface DashboardView {
  nodes: DashboardNode[];
  /** Tasks meant to run that no node has taken yet (pending: no node fits). */
  unassigned: DashboardTask[];
  overlays: DashboardOverlay[];
  ports: DashboardPort[];
  /** Newest first. */
  events: DashboardEvent[];
}

export interface DashboardInput {
  /** With their manager status derived (readClusterView's). */
  nodes: readonly Node[];
  tasks: readonly Task[];
  services: readonly Service[];
  networks: readonly Network[];
  /** Oldest first, as a manager keeps them. */
  events: readonly Event[];
}

/** A task is shown while it is meant to run: once told to stop it leaves the page. */
const meantToRun = (t: Task) => t.desiredState <= TaskState.TASK_STATE_RUNNING;

const hostnameOf = (n: Node) => n.description?.hostname || n.id.slice(0, 12);

function taskOf(t: Task): DashboardTask {
  return { id: t.id, service: t.serviceName, slot: Number(t.slot), state: taskStateLabel(t.status?.state), message: t.status?.err || t.status?.message || '' };
}

const byTask = (a: DashboardTask, b: DashboardTask) => a.service.localeCompare(b.service) || a.slot - b.slot || a.id.localeCompare(b.id);

/** The `x.old`/`x.new` pairs of an event's attributes, as `x: old → new`, in their order. */
function changeOf(attrs: Record<string, string>): string {
  return Object.keys(attrs)
    .filter((k) => k.endsWith('.new'))
    .map((k) => {
      const key = k.slice(0, -'.new'.length);
      return `${key}: ${attrs[`${key}.old`] ?? ''} → ${attrs[k]}`;
    })
    .join(', ');
}

export function planDashboardView(input: DashboardInput): DashboardView {
  const live = input.tasks.filter(meantToRun);
  const onNode = new Map<string, DashboardTask[]>();
  const unassigned: DashboardTask[] = [];
  for (const t of live) {
    const list = t.nodeId ? onNode.get(t.nodeId) : unassigned;
    if (list) list.push(taskOf(t));
    else onNode.set(t.nodeId, [taskOf(t)]);
  }
  const nodes = [...input.nodes]
    .sort((a, b) => hostnameOf(a).localeCompare(hostnameOf(b)) || a.id.localeCompare(b.id))
    .map((n): DashboardNode => ({
      id: n.id,
      hostname: hostnameOf(n),
      role: nodeRoleLabel(n.role),
      state: nodeStateLabel(n.status?.state),
      availability: enumLabel(NodeAvailability[n.spec?.availability ?? NodeAvailability.NODE_AVAILABILITY_ACTIVE]),
      labels: { ...(n.spec?.labels ?? {}) },
      leader: Boolean(n.managerStatus?.leader),
      reachability: n.role === NodeRole.NODE_ROLE_MANAGER ? enumLabel(Reachability[n.managerStatus?.reachability ?? Reachability.REACHABILITY_UNKNOWN]).replace(/^reachability_/, '') : '',
      addr: n.status?.addr ?? '',
      message: n.status?.message ?? '',
      tasks: (onNode.get(n.id) ?? []).sort(byTask),
    }));

  const overlays = input.networks.filter((n) => n.spec?.driver === 'overlay');
  const index = new OverlayIndex([...input.tasks], [...overlays], [...input.nodes], [...input.services]);
  const hostsOf = new Map<string, string[]>();
  for (const n of nodes) {
    for (const o of index.forNode(n.id)) {
      const list = hostsOf.get(o.networkId) ?? [];
      list.push(n.hostname);
      hostsOf.set(o.networkId, list);
    }
  }

  const ports = input.services.flatMap((s) =>
    servicePorts(s).map((p): DashboardPort => ({ service: s.spec?.name ?? s.id, published: p.publishedPort, target: p.targetPort, protocol: protocolName(p.protocol), mode: isIngress(p) ? 'ingress' : 'host' })),
  );

  return {
    nodes,
    unassigned: unassigned.sort(byTask),
    overlays: overlays
      .map((n) => ({ id: n.id, name: n.spec?.name ?? n.id, vni: n.vni, subnet: n.subnet, hosts: hostsOf.get(n.id) ?? [] }))
      .sort((a, b) => a.name.localeCompare(b.name)),
    ports: ports.sort((a, b) => a.service.localeCompare(b.service) || a.published - b.published || a.protocol.localeCompare(b.protocol)),
    events: input.events
      .slice(-DASHBOARD_EVENTS)
      .reverse()
      .map((e) => ({ time: e.time, type: e.type, action: e.action, actorId: e.actorId, name: e.attributes.name ?? '', change: changeOf(e.attributes) })),
  };
}
