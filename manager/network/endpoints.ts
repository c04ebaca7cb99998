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
const numeric = (a: string, b: string) => a.localeCompare(b, 'en', { numeric: true });

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

export function planNodeEndpoints(input: NodeEndpointsInput): NodeEndpoints {
  return { services: planNetworkServices(input), ingress: planIngress(input), hostPorts: planHostPorts(input) };
}

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
 * Per network that a live task (or container attachment) of this node is on: every service with
 * a VIP or a task there, and every container attached to it.
 */
export function planNetworkServices(input: NodeEndpointsInput): NetworkServices[] {
  const byId = new Map(input.networks.map((n) => [n.id, n]));
  const here = new Set<string>();
  for (const t of input.tasks) {
    if (t.nodeId !== input.nodeId || state(t) > RUNNING || state(t) < TaskState.TASK_STATE_ASSIGNED) continue;
    for (const a of t.networks ?? []) if (recordsKept(byId.get(a.networkId))) here.add(a.networkId);
  }
  const running = new Map<string, Task[]>();
  for (const t of input.tasks) {
    if (state(t) !== RUNNING) continue;
    const list = running.get(t.serviceId);
    if (list) list.push(t);
    else running.set(t.serviceId, [t]);
  }
  const out: NetworkServices[] = [];
  for (const id of here) {
    const network = byId.get(id)!;
    const records: ServiceRecord[] = [];
    for (const service of input.services) {
      const vip = service.endpoint?.virtualIps?.find((v) => v.networkId === id);
      const tasks: ServiceTask[] = [];
      for (const t of running.get(service.id) ?? []) {
        const a = (t.networks ?? []).find((x) => x.networkId === id);
        if (!a?.address) continue;
        tasks.push({ taskId: t.id, ip: bareIp(a.address), name: taskDnsName(t), hostname: taskHostnameOf(t), serving: isServing(t) });
      }
      if (!vip && tasks.length === 0) continue;
      const dnsrr = service.spec?.endpoint?.mode === EndpointMode.ENDPOINT_MODE_DNSRR;
      tasks.sort((a, b) => numeric(a.name, b.name));
      records.push({ serviceId: service.id, name: service.spec?.name ?? '', vip: vip && !dnsrr ? bareIp(vip.addr) : '', tasks });
    }
    records.sort((a, b) => byText(a.name, b.name) || byText(a.serviceId, b.serviceId));
    const containers = input.tasks
      .filter((t) => t.networks?.[0]?.networkId === id)
      .flatMap((t) => containerRecord(t) ?? [])
      .sort((a, b) => byText(a.name, b.name) || byText(a.containerId, b.containerId));
    out.push({ networkId: id, name: network.spec?.name ?? '', services: records, containers });
  }
  return out.sort((a, b) => byText(a.name, b.name) || byText(a.networkId, b.networkId));
}

/** The routing mesh, when a service publishes a port in ingress mode and the node has its endpoint. */
export function planIngress(input: NodeEndpointsInput): IngressConfig | undefined {
  const ingress = ingressNetwork(input.networks);
  const endpoint = input.nodes.find((n) => n.id === input.nodeId)?.ingress;
  if (!ingress || !endpoint?.address) return undefined;
  const ports: IngressPort[] = [];
  for (const service of input.services) {
    const published = (service.endpoint?.ports ?? []).filter(isIngress);
    if (published.length === 0) continue;
    const backends = input.tasks
      .filter((t) => t.serviceId === service.id && isServing(t))
      .map((t) => (t.networks ?? []).find((a) => a.networkId === ingress.id)?.address ?? '')
      .filter((a) => a)
      .map(bareIp)
      .sort(numeric);
    for (const p of published) {
      ports.push({ protocol: p.protocol, publishedPort: p.publishedPort, targetPort: p.targetPort, serviceId: service.id, serviceName: service.spec?.name ?? '', backends: [...backends] });
    }
  }
  if (ports.length === 0) return undefined;
  ports.sort((a, b) => a.publishedPort - b.publishedPort || a.protocol - b.protocol);
  return { networkId: ingress.id, vni: ingress.vni, endpoint, ports };
}

/** Host-mode ports of this node's tasks that are placed and meant to run. */
export function planHostPorts(input: NodeEndpointsInput): HostPort[] {
  const services = new Map(input.services.map((s) => [s.id, s]));
  const out: HostPort[] = [];
  for (const t of input.tasks) {
    if (t.nodeId !== input.nodeId || t.desiredState !== RUNNING || state(t) < TaskState.TASK_STATE_ASSIGNED || state(t) > RUNNING) continue;
    for (const p of services.get(t.serviceId)?.endpoint?.ports ?? []) {
      if (!isIngress(p)) out.push({ taskId: t.id, protocol: p.protocol, publishedPort: p.publishedPort, targetPort: p.targetPort });
    }
  }
  return out.sort((a, b) => a.publishedPort - b.publishedPort || a.protocol - b.protocol || byText(a.taskId, b.taskId));
}
