/**
 * What the dispatcher sends down each agent's session, planned for every node from one read of
 * the cluster state. What nodes share (a network's peers and service records, the routing mesh's
 * ports, the VTEPs, the managers) is worked out once per read, not once per node; and each node's
 * message has a signature, so that a pass builds and sends only the messages of the nodes that a
 * change concerns. Pure.
 */
import { SessionMessage, TaskCredential, TaskFileValue } from '../services/gen/swarmlet/v1/dispatcher';
import { Cluster, Network, Node, NodeState, Service, Task, TaskState } from '../services/gen/swarmlet/v1/types';
import { byTaskId } from '../services/api/session-delta';
import { managerPeers } from './cluster-view';
import { EndpointsIndex } from './network/endpoints';
import { ingressNetwork } from './network/network-spec';
import { OverlayIndex, planVteps } from './network/peers';
import { serviceHostPorts, serviceIngressPorts } from './network/ports';
import { Versions, versionsOf } from './versions';

/**
 * What a node's message is made from, beside what every node's is (SessionPlan.globalSignature):
 * its tasks' versions, and the rest (the node, its services, its networks). Two reads with all
 * equal make the same message. They are apart so that a change of the tasks alone can be told
 * from the rest: most of those are the node's own reports, which go nowhere (SessionWire).
 */
export interface NodeSignature {
  tasks: string;
  rest: string;
}

/** A session's message, but for the session's own id. */
export type NodeMessage = Omit<SessionMessage, 'sessionId'>;

export interface SessionPlanInput {
  cluster: Cluster;
  /** The nodes as the cluster view derives them (manager status filled in). */
  nodes: Node[];
  leaderId?: string;
  tasks: Task[];
  networks: Network[];
  services: Service[];
}

/** The registry credentials a node's assigned tasks need (the dispatcher unseals them). */
export type CredentialsOf = (assigned: Task[], services: Service[]) => TaskCredential[];

/** the values of the secrets and configs a node's assigned tasks use (the dispatcher unseals them). */
export type FileValuesOf = (assigned: Task[]) => TaskFileValue[];

/** The plan of every session's message from one read of the cluster state. Build one per read. */
export class SessionPlan {
  private readonly nodeById: Map<string, Node>;
  private readonly serviceById: Map<string, Service>;
  private readonly networkById: Map<string, Network>;
  private readonly tasksOfNode = new Map<string, Task[]>();
  private readonly assignedOf = new Map<string, Task[]>();
  /** Per network: the tasks attached to it (in any state), and the services with a task or a VIP there. */
  private readonly onNetwork = new Map<string, { tasks: Versions; services: Set<string> }>();
  private readonly networkSignatures = new Map<string, string>();
  private readonly ingress: Network | undefined;
  private global?: string;
  private shared?: { managers: NodeMessage['managers']; vteps: string[]; overlays: OverlayIndex; endpoints: EndpointsIndex };

  constructor(private readonly input: SessionPlanInput, private readonly credentialsOf: CredentialsOf, private readonly fileValuesOf: FileValuesOf = () => []) {
    this.nodeById = new Map(input.nodes.map((n) => [n.id, n]));
    this.serviceById = new Map(input.services.map((s) => [s.id, s]));
    this.networkById = new Map(input.networks.map((n) => [n.id, n]));
    for (const t of input.tasks) {
      if (t.nodeId) {
        const mine = this.tasksOfNode.get(t.nodeId);
        if (mine) mine.push(t);
        else this.tasksOfNode.set(t.nodeId, [t]);
      }
      for (const a of t.networks) {
        const on = this.networkEntry(a.networkId);
        on.tasks.add(t);
        on.services.add(t.serviceId);
      }
    }
    for (const s of input.services) for (const vip of s.endpoint?.virtualIps ?? []) this.networkEntry(vip.networkId).services.add(s.id);
    this.ingress = ingressNetwork(input.networks);
  }

  hasNode(nodeId: string): boolean {
    return this.nodeById.has(nodeId);
  }

  /**
   * A summary of what the node's message is made from, beside what every node's is made from
   * (`globalSignature`): two reads with both equal make the same message. Undefined when it cannot
   * tell (objects without versions): build it. The two are kept apart because the global part
   * grows with the cluster (every node's address): held whole per session, a thousand nodes held
   * a thousand copies of 36 KB.
   */
  signature(nodeId: string): NodeSignature | undefined {
    const node = this.nodeById.get(nodeId);
    if (!node) return undefined;
    const tasks = this.tasksOfNode.get(nodeId) ?? [];
    const services = new Set<Service>();
    const networks = new Set<string>();
    for (const t of tasks) {
      const s = this.serviceById.get(t.serviceId);
      if (s) services.add(s);
      for (const a of t.networks) networks.add(a.networkId);
    }
    if (this.ingress) networks.add(this.ingress.id);
    const parts = [`${node.meta?.version ?? 0}`, JSON.stringify(node.managerStatus ?? null), versionsOf(services)];
    if (!node.meta?.version) return undefined;
    for (const id of [...networks].sort()) parts.push(this.networkSignature(id));
    const signature = { tasks: versionsOf(tasks), rest: parts.join(' ') };
    return signature.tasks.includes('?') || signature.rest.includes('?') ? undefined : signature;
  }

  /**
   * Whether a report of the task's state can change its node's message beyond the task itself:
   * its service publishes ports in host mode (the node's host ports follow its live tasks). What
   * else a task's state shows in (its networks' records and peers) is in their signatures.
   */
  reportShows(task: Task): boolean {
    const service = this.serviceById.get(task.serviceId);
    return service !== undefined && serviceHostPorts(service).length > 0;
  }

  /**
   * The node's message: its own object, its assigned tasks, and what it must know of the cluster.
   * The tasks are the stored objects, meta and all: their versions tell the wire which ones the
   * session has already, and it leaves meta out of those it encodes (a copy of every task of the
   * node per message was a tenth of what the leader allocated under load).
   */
  message(nodeId: string): NodeMessage {
    const node = this.nodeById.get(nodeId)!;
    const shared = this.sharedParts();
    const assigned = this.assignedTo(nodeId);
    const endpoints = shared.endpoints.forNode(nodeId);
    return {
      node: { ...node, meta: undefined },
      managers: shared.managers,
      clusterSpec: this.input.cluster.spec,
      tasks: assigned,
      overlays: shared.overlays.forNode(nodeId),
      services: endpoints.services,
      ingress: endpoints.ingress,
      hostPorts: endpoints.hostPorts,
      credentials: this.credentialsOf(assigned, this.input.services),
      vteps: shared.vteps,
      fileValues: this.fileValuesOf(assigned),
    };
  }

  /** The tasks in the node's message, as stored: those placed on it (ASSIGNED or past), by id. Made once per node. */
  assignedTo(nodeId: string): Task[] {
    let assigned = this.assignedOf.get(nodeId);
    if (!assigned) this.assignedOf.set(nodeId, (assigned = (this.tasksOfNode.get(nodeId) ?? []).filter((t) => (t.status?.state ?? 0) >= TaskState.TASK_STATE_ASSIGNED).sort(byTaskId)));
    return assigned;
  }

  private sharedParts(): NonNullable<SessionPlan['shared']> {
    const { tasks, networks, nodes, services } = this.input;
    this.shared ??= { managers: managerPeers(nodes), vteps: planVteps(nodes), overlays: new OverlayIndex(tasks, networks, nodes, services), endpoints: new EndpointsIndex({ tasks, networks, services, nodes }) };
    return this.shared;
  }

  /** What every node's message depends on: the cluster, the leader, the managers, the nodes' addresses, the networks, the routing mesh. Undefined when it cannot tell. */
  globalSignature(): string | undefined {
    if (this.global !== undefined) return this.global.includes('?') ? undefined : this.global;
    const { cluster, nodes, networks, services, leaderId } = this.input;
    const published = services.filter((s) => serviceIngressPorts(s).length > 0);
    const parts = [
      `${cluster.meta?.version ?? 0}`,
      leaderId ?? '',
      JSON.stringify(managerPeers(nodes)),
      // A node going down or coming back changes the overlays' peers everywhere.
      nodes.map((n) => `${n.id}=${n.status?.addr ?? ''}${n.status?.state === NodeState.NODE_STATE_DOWN ? ' down' : ''}`).join(','),
      versionsOf(networks),
      versionsOf(published),
    ];
    if (!cluster.meta?.version) parts.push('?');
    // While the mesh is on, every node's ingress endpoint is a peer of the ingress network everywhere.
    if (published.length > 0) parts.push(JSON.stringify(nodes.map((n) => n.ingress ?? null)));
    this.global = parts.join(' ');
    return this.globalSignature();
  }

  /** What a network's part of a message depends on: the network, its tasks and its services. */
  private networkSignature(id: string): string {
    let signature = this.networkSignatures.get(id);
    if (signature === undefined) {
      const on = this.onNetwork.get(id);
      const network = this.networkById.get(id);
      signature = `${id}:${network ? versionsOf([network]) : '-'}:${on?.tasks ?? '-'}:${on ? versionsOf([...on.services].flatMap((s) => this.serviceById.get(s) ?? [])) : '-'}`;
      this.networkSignatures.set(id, signature);
    }
    return signature;
  }

  private networkEntry(id: string): { tasks: Versions; services: Set<string> } {
    let entry = this.onNetwork.get(id);
    if (!entry) this.onNetwork.set(id, (entry = { tasks: new Versions(), services: new Set() }));
    return entry;
  }
}
