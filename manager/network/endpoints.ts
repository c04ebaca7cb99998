/**
 * What a node's agent must know of services, for its embedded DNS, its VIP load balancer, the
 * routing mesh and host-mode ports. The dispatcher sends it with the node's tasks, and again on
 * every change, so that a task that stops, fails its health check or is told to shut down drops
 * out of the next message. Pure.
 */
import { ContainerRecord, HostPort, IngressConfig, IngressPort, NetworkServices, ServiceRecord, ServiceTask } from '../../services/gen/swarmlet/v1/dispatcher';
import { EndpointMode, Network, Node, Service, Task, TaskState } from '../../services/gen/swarmlet/v1/types';
import { ingressNetwork } from './network-spec';
import { isIngress } from './ports';

export interface NodeEndpoints {
  services: NetworkServices[];
  ingress: IngressConfig | undefined;
  hostPorts: HostPort[];
}

export interface NodeEndpointsInput {
  nodeId: string;
  tasks: Task[];
  networks: Network[];
  services: Service[];
  nodes: Node[];
}

const RUNNING = TaskState.TASK_STATE_RUNNING;
const state = (t: Task) => t.status?.state ?? TaskState.TASK_STATE_NEW;
const bareIp = (cidr: string) => cidr.split('/')[0];
const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
/** Numeric order (web.2 before web.10); one collator, not one per comparison. */
const numeric = new Intl.Collator('en', { numeric: true }).compare;

/** `web.2.<task id>`, or `web.<node id>.<task id>` for a global service's task: its DNS name, as docker's. */
export const taskDnsName = (t: Task) => `${t.serviceName}.${t.slot ? t.slot : t.nodeId}.${t.id}`;

/** The task's hostname: its spec's, else its id's first 12 characters (as the agent sets it). */
export const taskHostnameOf = (t: Task) => t.spec?.container?.hostname || t.id.slice(0, 12);

/** Runs, is meant to, and is healthy (or has no health check): it gets traffic. */
export function isServing(t: Task): boolean {
  if (state(t) !== RUNNING || t.desiredState !== RUNNING) return false;
  const test = t.spec?.container?.healthcheck?.test ?? [];
  if (test.length === 0 || test[0] === 'NONE') return true;
  return t.status?.container?.health === 'healthy';
}

/** Networks whose services a node's DNS and VIP rules know: overlays and user-defined bridges. */
const recordsKept = (n: Network | undefined): n is Network => n !== undefined && !n.builtin && (n.spec?.driver === 'overlay' || n.spec?.driver === 'bridge');

/**
 * A container's record on its attachment's network: from the allocation (ASSIGNED) until it ends
 * or is told to; the attachment task goes when the container leaves the network.
 */
function containerRecord(t: Task): ContainerRecord | undefined {
  const a = t.spec?.attachment;
  const address = t.networks?.[0]?.address;
  if (!a || !address || t.desiredState > RUNNING || state(t) < TaskState.TASK_STATE_ASSIGNED || state(t) > RUNNING) return undefined;
  return { containerId: a.containerId, name: a.containerName, aliases: [...a.aliases], ip: bareIp(address) };
}

/**
 * What every node's endpoints are planned from, worked out once for the whole cluster: the tasks
 * of each node, the running tasks of each service, and (lazily, then kept) each network's service
 * records and the routing mesh's ports, which every node there gets alike. Build it once per read
 * of the cluster state, then ask it for as many nodes as needed.
 */
export class EndpointsIndex {
  private readonly networkById: Map<string, Network>;
  private readonly serviceById: Map<string, Service>;
  private readonly tasksOfNode = new Map<string, Task[]>();
  private readonly runningOf = new Map<string, Task[]>();
  /** Containers' records by the network they are attached to. */
  private readonly containersOn = new Map<string, ContainerRecord[]>();
  private readonly records = new Map<string, NetworkServices>();
  private ingressPorts?: IngressPort[];
  private nodeById?: Map<string, Node>;

  constructor(private readonly input: Omit<NodeEndpointsInput, 'nodeId'>) {
    this.networkById = new Map(input.networks.map((n) => [n.id, n]));
    this.serviceById = new Map(input.services.map((s) => [s.id, s]));
    for (const t of input.tasks) {
      push(this.tasksOfNode, t.nodeId, t);
      if (state(t) === RUNNING) push(this.runningOf, t.serviceId, t);
      const container = containerRecord(t);
      if (container) push(this.containersOn, t.networks[0].networkId, container);
    }
  }

  forNode(nodeId: string): NodeEndpoints {
    return { services: this.networkServices(nodeId), ingress: this.ingress(nodeId), hostPorts: this.hostPorts(nodeId) };
  }

  /**
   * Per network that a live task (or container attachment) of this node is on: every service
   * with a VIP or a task there, and every container attached to it.
   */
  networkServices(nodeId: string): NetworkServices[] {
    const here = new Set<string>();
    for (const t of this.tasksOfNode.get(nodeId) ?? []) {
      if (state(t) > RUNNING || state(t) < TaskState.TASK_STATE_ASSIGNED) continue;
      for (const a of t.networks ?? []) if (recordsKept(this.networkById.get(a.networkId))) here.add(a.networkId);
    }
    const out = [...here].map((id) => this.recordsOf(id));
    return out.sort((a, b) => byText(a.name, b.name) || byText(a.networkId, b.networkId));
  }

  private recordsOf(id: string): NetworkServices {
    const cached = this.records.get(id);
    if (cached) return cached;
    const records: ServiceRecord[] = [];
    for (const service of this.input.services) {
      const vip = service.endpoint?.virtualIps?.find((v) => v.networkId === id);
      const tasks: ServiceTask[] = [];
      for (const t of this.runningOf.get(service.id) ?? []) {
        const a = (t.networks ?? []).find((x) => x.networkId === id);
        if (!a?.address) continue;
        tasks.push({ taskId: t.id, ip: bareIp(a.address), name: taskDnsName(t), hostname: taskHostnameOf(t), serving: isServing(t) });
      }
      if (!vip && tasks.length === 0) continue;
      const dnsrr = service.spec?.endpoint?.mode === EndpointMode.ENDPOINT_MODE_DNSRR;
      tasks.sort((a, b) => numeric(a.name, b.name));
      records.push({ serviceId: service.id, name: service.spec?.name ?? '', vip: vip && !dnsrr ? bareIp(vip.addr) : '', tasks, aliases: this.aliasesOf(service, id) });
    }
    records.sort((a, b) => byText(a.name, b.name) || byText(a.serviceId, b.serviceId));
    const containers = [...(this.containersOn.get(id) ?? [])].sort((a, b) => byText(a.name, b.name) || byText(a.containerId, b.containerId));
    const entry = { networkId: id, name: this.networkById.get(id)!.spec?.name ?? '', services: records, containers };
    this.records.set(id, entry);
    return entry;
  }

  /** The service's aliases on network `id`: those its spec gives that network, by id or name. */
  private aliasesOf(service: Service, id: string): string[] {
    const name = this.networkById.get(id)?.spec?.name;
    const entries = (service.spec?.task?.networkAliases ?? []).filter((e) => e.network === id || (name !== undefined && e.network === name));
    return [...new Set(entries.flatMap((e) => e.aliases).filter((a) => a && a !== service.spec?.name))];
  }

  /** The routing mesh, when a service publishes a port in ingress mode and the node has its endpoint. */
  ingress(nodeId: string): IngressConfig | undefined {
    const ingress = ingressNetwork(this.input.networks);
    this.nodeById ??= new Map(this.input.nodes.map((n) => [n.id, n]));
    const endpoint = this.nodeById.get(nodeId)?.ingress;
    if (!ingress || !endpoint?.address) return undefined;
    this.ingressPorts ??= this.planIngressPorts(ingress);
    if (this.ingressPorts.length === 0) return undefined;
    return { networkId: ingress.id, vni: ingress.vni, endpoint, ports: this.ingressPorts };
  }

  private planIngressPorts(ingress: Network): IngressPort[] {
    const ports: IngressPort[] = [];
    for (const service of this.input.services) {
      const published = (service.endpoint?.ports ?? []).filter(isIngress);
      if (published.length === 0) continue;
      const backends = (this.runningOf.get(service.id) ?? [])
        .filter(isServing)
        .map((t) => (t.networks ?? []).find((a) => a.networkId === ingress.id)?.address ?? '')
        .filter((a) => a)
        .map(bareIp)
        .sort(numeric);
      for (const p of published) {
        ports.push({ protocol: p.protocol, publishedPort: p.publishedPort, targetPort: p.targetPort, serviceId: service.id, serviceName: service.spec?.name ?? '', backends: [...backends] });
      }
    }
    return ports.sort((a, b) => a.publishedPort - b.publishedPort || a.protocol - b.protocol);
  }

  /** Host-mode ports of this node's tasks that are placed and meant to run. */
  hostPorts(nodeId: string): HostPort[] {
    const out: HostPort[] = [];
    for (const t of this.tasksOfNode.get(nodeId) ?? []) {
      if (t.desiredState !== RUNNING || state(t) < TaskState.TASK_STATE_ASSIGNED || state(t) > RUNNING) continue;
      for (const p of this.serviceById.get(t.serviceId)?.endpoint?.ports ?? []) {
        if (!isIngress(p)) out.push({ taskId: t.id, protocol: p.protocol, publishedPort: p.publishedPort, targetPort: p.targetPort });
      }
    }
    return out.sort((a, b) => a.publishedPort - b.publishedPort || a.protocol - b.protocol || byText(a.taskId, b.taskId));
  }
}

function push<T>(map: Map<string, T[]>, key: string, value: T): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

export function planNodeEndpoints(input: NodeEndpointsInput): NodeEndpoints {
  return new EndpointsIndex(input).forNode(input.nodeId);
}

export const planNetworkServices = (input: NodeEndpointsInput): NetworkServices[] => new EndpointsIndex(input).networkServices(input.nodeId);
export const planIngress = (input: NodeEndpointsInput): IngressConfig | undefined => new EndpointsIndex(input).ingress(input.nodeId);
export const planHostPorts = (input: NodeEndpointsInput): HostPort[] => new EndpointsIndex(input).hostPorts(input.nodeId);
