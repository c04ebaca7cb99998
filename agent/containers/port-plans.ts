/**
 * Containers' published ports (docker's -p/--publish, -P, `port`), pure: the flag's forms, the
 * choice of host ports against those already taken (other containers', services'), the host's DNAT
 * rules (lb-nft.ts renders them), and the shapes `ps`, `inspect` and `port` print.
 */
import { conflict, invalidArgument, notFound, unavailable } from '../../services/common/errors';
import type { Container, ContainerConfig, ContainerPortBinding } from '../../services/gen/swarmlet/v1/control';
import type { SessionMessage } from '../../services/gen/swarmlet/v1/dispatcher';
import { PortProtocol } from '../../services/gen/swarmlet/v1/types';
import type { NftProtocol, PublishRule } from '../network/plans/lb-nft';

/** Where a host port of 0 is chosen from: Linux's default ephemeral range, as docker reads it. */
export const CONTAINER_PORT_MIN = 32768;
export const CONTAINER_PORT_MAX = 60999;

/** A host port in use: by a container's binding or a service's published port ('' host IP: every address). */
export interface TakenPort {
  protocol: string;
  hostIp: string;
  hostPort: number;
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const isIpv4 = (ip: string) => {
  const m = IPV4.exec(ip);
  return Boolean(m) && m!.slice(1, 5).every((o) => Number(o) <= 255);
};

/** `80` or `8000-8010` -> [first, last]; undefined when malformed. */
function portRange(text: string): [number, number] | undefined {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  if (!m) return undefined;
  const first = Number(m[1]);
  const last = m[2] === undefined ? first : Number(m[2]);
  if (first < 1 || last > 65535 || last < first) return undefined;
  return [first, last];
}

/** '' for 0.0.0.0: every address of the host. */
const normalIp = (ip: string) => (ip === '0.0.0.0' ? '' : ip);

/**
 * One `-p` value: `[[HOST_IP:][HOST_PORT]:]CONTAINER_PORT[/PROTO]`, ports may be ranges of equal
 * length (`8080-8081:80-81`); no host port (or `HOST_IP::PORT`): a free one is chosen at start.
 */
export function parsePublish(text: string): ContainerPortBinding[] {
  const [spec, proto = 'tcp', ...extra] = text.trim().split('/');
  if (extra.length) throw invalidArgument(`invalid port specification: ${JSON.stringify(text)}`);
  const protocol = proto.toLowerCase();
  if (protocol !== 'tcp' && protocol !== 'udp') throw invalidArgument(`invalid proto: ${proto}`);
  const parts = spec.split(':');
  if (parts.length > 3) throw invalidArgument(`invalid port specification: ${JSON.stringify(text)}`);
  const containerText = parts[parts.length - 1];
  const hostText = parts.length >= 2 ? parts[parts.length - 2] : '';
  const ipText = parts.length === 3 ? parts[0] : '';
  if (ipText && !isIpv4(ipText)) throw invalidArgument(`invalid IP address: ${ipText}`);
  const containerPorts = portRange(containerText);
  if (!containerPorts) throw invalidArgument(`invalid containerPort: ${containerText}`);
  const hostPorts = hostText ? portRange(hostText) : undefined;
  if (hostText && !hostPorts) throw invalidArgument(`invalid hostPort: ${hostText}`);
  const count = containerPorts[1] - containerPorts[0] + 1;
  if (hostPorts && hostPorts[1] - hostPorts[0] + 1 !== count) throw invalidArgument(`invalid ranges specified for container and host Ports: ${text}`);
  return Array.from({ length: count }, (_, i) => ({
    protocol,
    containerPort: containerPorts[0] + i,
    hostIp: normalIp(ipText),
    hostPort: hostPorts ? hostPorts[0] + i : 0,
  }));
}

/** `80/tcp` as an image's ExposedPorts key says it -> the port and protocol; undefined when malformed. */
function parseExposed(key: string): { containerPort: number; protocol: string } | undefined {
  const [port, proto = 'tcp'] = key.split('/');
  const range = portRange(port);
  const protocol = proto.toLowerCase();
  if (!range || range[0] !== range[1] || (protocol !== 'tcp' && protocol !== 'udp')) return undefined;
  return { containerPort: range[0], protocol };
}

/** Bad bindings refused before anything is made (the daemon's own check: the API takes them from any client). */
export function validatePortBindings(cfg: Pick<ContainerConfig, 'portBindings'>): void {
  for (const b of cfg.portBindings ?? []) {
    if (b.protocol !== 'tcp' && b.protocol !== 'udp') throw invalidArgument(`invalid proto: ${b.protocol}`);
    if (!Number.isInteger(b.containerPort) || b.containerPort < 1 || b.containerPort > 65535) throw invalidArgument(`invalid containerPort: ${b.containerPort}`);
    if (b.hostPort > 65535) throw invalidArgument(`invalid hostPort: ${b.hostPort}`);
    if (b.hostIp && !isIpv4(b.hostIp)) throw invalidArgument(`invalid IP address: ${b.hostIp}`);
  }
}

/** What the container asks for: its -p bindings (duplicates once), then with -P each exposed port not bound yet, on a free port. */
export function planRequestedPorts(cfg: Pick<ContainerConfig, 'portBindings' | 'publishAll'>, exposed: string[]): ContainerPortBinding[] {
  const out: ContainerPortBinding[] = [];
  const key = (b: ContainerPortBinding) => `${b.protocol}/${b.containerPort}/${normalIp(b.hostIp)}/${b.hostPort}`;
  const seen = new Set<string>();
  for (const b of cfg.portBindings ?? []) {
    const n = { ...b, hostIp: normalIp(b.hostIp) };
    if (!seen.has(key(n))) out.push(n);
    seen.add(key(n));
  }
  if (cfg.publishAll) {
    for (const e of exposed.map(parseExposed)) {
      if (!e || out.some((b) => b.containerPort === e.containerPort && b.protocol === e.protocol)) continue;
      out.push({ ...e, hostIp: '', hostPort: 0 });
    }
  }
  return out;
}

const overlaps = (a: TakenPort, b: TakenPort) => a.protocol === b.protocol && a.hostPort === b.hostPort && (!a.hostIp || !b.hostIp || a.hostIp === b.hostIp);

/** Docker's words for a host port already in use. */
export const portTakenMessage = (b: Pick<TakenPort, 'hostIp' | 'hostPort'>) => `Bind for ${b.hostIp || '0.0.0.0'}:${b.hostPort} failed: port is already allocated`;

/**
 * The host ports the container gets: each asked port unless taken (Conflict, in docker's words),
 * each port 0 the lowest free one of CONTAINER_PORT_MIN..MAX.
 */
export function planPortBindings(requested: ContainerPortBinding[], taken: TakenPort[]): ContainerPortBinding[] {
  const used = [...taken];
  const out: ContainerPortBinding[] = [];
  for (const b of requested.filter((r) => r.hostPort !== 0)) {
    if (used.some((t) => overlaps(t, b))) throw conflict(portTakenMessage(b));
    used.push(b);
    out.push(b);
  }
  for (const b of requested.filter((r) => r.hostPort === 0)) {
    let port = CONTAINER_PORT_MIN;
    while (port <= CONTAINER_PORT_MAX && used.some((t) => overlaps(t, { ...b, hostPort: port }))) port++;
    if (port > CONTAINER_PORT_MAX) throw unavailable(`no free host port left in ${CONTAINER_PORT_MIN}-${CONTAINER_PORT_MAX} for ${b.containerPort}/${b.protocol}`);
    const chosen = { ...b, hostPort: port };
    used.push(chosen);
    out.push(chosen);
  }
  return out;
}

/** The host's DNAT rules of a container's published ports, to its address on the bridge `device`. */
export function planContainerPublishRules(ports: ContainerPortBinding[], address: string, device: string | undefined): PublishRule[] {
  return ports.map((p) => ({ protocol: p.protocol as NftProtocol, publishedPort: p.hostPort, hostIp: p.hostIp || undefined, address, targetPort: p.containerPort, device }));
}

const byPort = (a: ContainerPortBinding, b: ContainerPortBinding) => a.containerPort - b.containerPort || a.protocol.localeCompare(b.protocol) || a.hostPort - b.hostPort;

/** `ps`'s PORTS: `0.0.0.0:8080->80/tcp, 127.0.0.1:8443->443/tcp`. */
export function planPortsText(c: Pick<Container, 'ports'>): string {
  return [...(c.ports ?? [])].sort(byPort).map((p) => `${p.hostIp || '0.0.0.0'}:${p.hostPort}->${p.containerPort}/${p.protocol}`).join(', ');
}

type Bindings = Record<string, { HostIp: string; HostPort: string }[]>;

function group(ports: ContainerPortBinding[], shape: (p: ContainerPortBinding) => { HostIp: string; HostPort: string }): Bindings {
  const out: Bindings = {};
  for (const p of [...ports].sort(byPort)) (out[`${p.containerPort}/${p.protocol}`] ??= []).push(shape(p));
  return out;
}

/** inspect's HostConfig.PortBindings (as asked: HostPort '' for a free one) and NetworkSettings.Ports (published now), and Config.ExposedPorts. */
export function planInspectPorts(c: Pick<Container, 'config' | 'ports'>): { PortBindings: Bindings; Ports: Bindings; ExposedPorts?: Record<string, object> } {
  const asked = c.config?.portBindings ?? [];
  const exposed = [...new Set(asked.map((p) => `${p.containerPort}/${p.protocol}`))];
  return {
    PortBindings: group(asked, (p) => ({ HostIp: p.hostIp, HostPort: p.hostPort ? String(p.hostPort) : '' })),
    Ports: group(c.ports ?? [], (p) => ({ HostIp: p.hostIp || '0.0.0.0', HostPort: String(p.hostPort) })),
    ...(exposed.length ? { ExposedPorts: Object.fromEntries(exposed.map((e) => [e, {}])) } : {}),
  };
}

/**
 * `port NAME`: `80/tcp -> 0.0.0.0:8080` a line; `port NAME 80[/tcp]`: that port's `0.0.0.0:8080`
 * lines, or docker's error when it is not published.
 */
export function planPortLines(c: Pick<Container, 'name' | 'ports'>, privatePort?: string): string[] {
  const ports = [...(c.ports ?? [])].sort(byPort);
  const host = (p: ContainerPortBinding) => `${p.hostIp || '0.0.0.0'}:${p.hostPort}`;
  if (privatePort === undefined || privatePort === '') return ports.map((p) => `${p.containerPort}/${p.protocol} -> ${host(p)}`);
  const [port, proto = 'tcp'] = privatePort.split('/');
  const range = portRange(port);
  if (!range || range[0] !== range[1] || (proto !== 'tcp' && proto !== 'udp')) throw invalidArgument(`invalid port specification: ${JSON.stringify(privatePort)}`);
  const lines = ports.filter((p) => p.containerPort === range[0] && p.protocol === proto).map(host);
  if (!lines.length) throw notFound(`No public port '${range[0]}/${proto}' published for ${c.name}`);
  return lines;
}

/**
 * The host ports services hold on this node, from the last session message: every ingress port
 * (the routing mesh opens it on every node) and the host-mode ports of this node's tasks.
 */
export function planServiceTakenPorts(msg: Pick<SessionMessage, 'ingress' | 'hostPorts'> | undefined): TakenPort[] {
  const protocol = (p: PortProtocol) => (p === PortProtocol.PORT_PROTOCOL_UDP ? 'udp' : 'tcp');
  return [...(msg?.ingress?.ports ?? []), ...(msg?.hostPorts ?? [])].map((p) => ({ protocol: protocol(p.protocol), hostIp: '', hostPort: p.publishedPort }));
}
