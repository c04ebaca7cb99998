/**
 * Published ports: what a service's endpoint spec claims, cluster-wide. Pure: the Control API
 * reads the claims in the store, asks planServicePorts, and writes the service and its claims in
 * one transaction (so two managers never hand out the same port).
 *
 * An ingress-mode port is open on every node: one service holds each (protocol, port). A host-mode
 * port is open only where a task runs: services may share one (the scheduler keeps their tasks
 * apart), but never with another service's ingress port. A published port of 0 (ingress only) is
 * the lowest free one of 30000-32767, kept across updates while the spec still asks for it.
 */
import { conflict, unavailable } from '../../services/common/errors';
import { Endpoint, EndpointSpec, Node, PortConfig, PortProtocol, PublishMode, Service } from '../../services/gen/swarmlet/v1/types';

export const DYNAMIC_PORT_MIN = 30000;
export const DYNAMIC_PORT_MAX = 32767;

export const protocolName = (p: PortProtocol): 'tcp' | 'udp' => (p === PortProtocol.PORT_PROTOCOL_UDP ? 'udp' : 'tcp');
export const isIngress = (p: PortConfig): boolean => p.publishMode !== PublishMode.PUBLISH_MODE_HOST;
/** `tcp/8080`: how a claim is named (also its key's tail in the store). */
export const claimName = (protocol: PortProtocol, port: number): string => `${protocolName(protocol)}/${port}`;
/** `8080/tcp`, as messages show a port. */
export const portLabel = (protocol: PortProtocol, port: number): string => `${port}/${protocolName(protocol)}`;

/** The ports a service publishes now (resolved), else none. */
export const servicePorts = (s: Service): PortConfig[] => s.endpoint?.ports ?? [];
export const serviceIngressPorts = (s: Service): PortConfig[] => servicePorts(s).filter(isIngress);
export const serviceHostPorts = (s: Service): PortConfig[] => servicePorts(s).filter((p) => !isIngress(p));

/** A host port a node's own container publishes (its description's container_ports), by claim name: `container C on node N`. */
export function containerHeldPorts(nodes: readonly Node[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const n of [...nodes].sort((a, b) => (a.description?.hostname ?? a.id).localeCompare(b.description?.hostname ?? b.id))) {
    for (const p of n.description?.containerPorts ?? []) {
      const name = claimName(p.protocol, p.publishedPort);
      if (!out.has(name)) out.set(name, `container ${p.container} on node ${n.description?.hostname || n.id}`);
    }
  }
  return out;
}

export interface PortClaims {
  /** Ingress claims to make: none may exist. */
  claim: string[];
  /** Ingress claims the service holds and keeps: they must still be its own. */
  keep: string[];
  /** The service's own claims it gives up. */
  release: string[];
  /** Host-mode ports: no service may hold them in ingress mode. */
  unclaimed: string[];
}

export interface ServicePortsInput {
  serviceId: string;
  spec: EndpointSpec | undefined;
  /** What the service's endpoint was before (update), else undefined (create). */
  previous: Endpoint | undefined;
  /** Every ingress claim in the store: claim name -> service id. */
  claims: Map<string, string>;
  /** Every other service, for host-mode ports and the names in messages. */
  services: Service[];
  /**
   * Host ports nodes' own containers publish (containerHeldPorts): an ingress port (open on every
   * node) may not take one, and a dynamic port passes over them. A host-mode port may: the
   * scheduler keeps its tasks off those nodes.
   */
  containerPorts?: Map<string, string>;
  /**
   * Free ports a dynamic port passes over before it takes one (default 0: the lowest free). After
   * a write lost a race for a port, the caller spreads its next try with a random skip, so that
   * managers racing for the lowest free port do not meet again.
   */
  skipFree?: number;
}

export interface ServicePortsPlan {
  ports: PortConfig[];
  claims: PortClaims;
}

/** Resolves the spec's ports and says which claims to make, keep and release; Conflict when a port is taken. */
export function planServicePorts(input: ServicePortsInput): ServicePortsPlan {
  const { serviceId } = input;
  const others = input.services.filter((s) => s.id !== serviceId).sort((a, b) => (a.spec?.name ?? '').localeCompare(b.spec?.name ?? ''));
  const nameOf = (id: string) => input.services.find((s) => s.id === id)?.spec?.name ?? id;
  const hostHeld = new Map<string, string>();
  for (const s of others) for (const p of serviceHostPorts(s)) if (!hostHeld.has(claimName(p.protocol, p.publishedPort))) hostHeld.set(claimName(p.protocol, p.publishedPort), s.spec?.name ?? s.id);
  const mine = new Set([...input.claims].filter(([, id]) => id === serviceId).map(([name]) => name));
  const specPorts = input.spec?.ports ?? [];
  const taken = (name: string) => {
    const owner = input.claims.get(name);
    return (owner !== undefined && owner !== serviceId) || hostHeld.has(name) || (input.containerPorts?.has(name) ?? false);
  };

  const ports: PortConfig[] = specPorts.map((p) => ({ ...p }));
  // Fixed ports first: a dynamic one must not take a port the spec names.
  const named = new Set(ports.filter((p) => p.publishedPort > 0).map((p) => claimName(p.protocol, p.publishedPort)));
  for (const p of ports) {
    if (p.publishedPort > 0) continue;
    const kept = previousDynamic(input.previous, p);
    if (kept && mine.has(claimName(p.protocol, kept)) && !named.has(claimName(p.protocol, kept))) {
      p.publishedPort = kept;
    } else {
      p.publishedPort = lowestFree(p.protocol, (name) => taken(name) || named.has(name), input.skipFree ?? 0);
    }
    named.add(claimName(p.protocol, p.publishedPort));
  }

  const claims: PortClaims = { claim: [], keep: [], release: [], unclaimed: [] };
  for (const p of ports) {
    const name = claimName(p.protocol, p.publishedPort);
    const owner = input.claims.get(name);
    if (isIngress(p)) {
      if (owner !== undefined && owner !== serviceId) throw conflict(`port ${portLabel(p.protocol, p.publishedPort)} is already published by service ${nameOf(owner)}`);
      const host = hostHeld.get(name);
      if (host) throw conflict(`port ${portLabel(p.protocol, p.publishedPort)} is already published by service ${host} in host mode`);
      const container = input.containerPorts?.get(name);
      if (container) throw conflict(`port ${portLabel(p.protocol, p.publishedPort)} is already published by ${container}: an ingress port is open on every node`);
      (owner === serviceId ? claims.keep : claims.claim).push(name);
    } else {
      if (owner !== undefined && owner !== serviceId) throw conflict(`port ${portLabel(p.protocol, p.publishedPort)} is already published by service ${nameOf(owner)}`);
      // One this service held in ingress mode is released in the same write, so it is free.
      if (!mine.has(name)) claims.unclaimed.push(name);
    }
  }
  const still = new Set([...claims.claim, ...claims.keep]);
  claims.release = [...mine].filter((name) => !still.has(name)).sort();
  return { ports, claims };
}

/** The port a dynamic spec port got last time, when the previous spec had the same one. */
function previousDynamic(previous: Endpoint | undefined, p: PortConfig): number | undefined {
  const before = previous?.spec?.ports ?? [];
  const i = before.findIndex((q) => q.publishedPort === 0 && q.targetPort === p.targetPort && q.protocol === p.protocol && isIngress(q) === isIngress(p));
  const port = i >= 0 ? previous?.ports?.[i]?.publishedPort : undefined;
  return port && port >= DYNAMIC_PORT_MIN && port <= DYNAMIC_PORT_MAX ? port : undefined;
}

function lowestFree(protocol: PortProtocol, taken: (name: string) => boolean, skip: number): number {
  let first: number | undefined;
  let left = skip;
  for (let port = DYNAMIC_PORT_MIN; port <= DYNAMIC_PORT_MAX; port++) {
    if (taken(claimName(protocol, port))) continue;
    first ??= port;
    if (left-- <= 0) return port;
  }
  if (first !== undefined) return first; // fewer free ports than the skip: the lowest
  throw unavailable(`no free ${protocolName(protocol)} port in ${DYNAMIC_PORT_MIN}-${DYNAMIC_PORT_MAX} to publish: give --publish a published port`);
}

/** Claims a removed service gives up. */
export function releasedOnRemoval(serviceId: string, claims: Map<string, string>): PortClaims {
  return { claim: [], keep: [], unclaimed: [], release: [...claims].filter(([, id]) => id === serviceId).map(([name]) => name).sort() };
}
