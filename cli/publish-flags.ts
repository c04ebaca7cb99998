/**
 * `--publish` and `--endpoint-mode` (docker's syntax) to an EndpointSpec, and the PORTS text of
 * `service ls` and `service inspect --pretty`. Pure: validateServiceSpec checks the whole spec.
 */
import { invalidArgument } from '../services/common/errors';
import { Endpoint, EndpointMode, EndpointSpec, PortConfig, PortProtocol, PublishMode, Service } from '../services/gen/swarmlet/v1/types';

const PROTOCOLS: Record<string, PortProtocol> = { tcp: PortProtocol.PORT_PROTOCOL_TCP, udp: PortProtocol.PORT_PROTOCOL_UDP };
const MODES: Record<string, PublishMode> = { ingress: PublishMode.PUBLISH_MODE_INGRESS, host: PublishMode.PUBLISH_MODE_HOST };
const HELP = 'use published=P,target=T[,protocol=tcp|udp][,mode=ingress|host], or P:T[/udp], or T';

const protocolWord = (p: PortProtocol) => (p === PortProtocol.PORT_PROTOCOL_UDP ? 'udp' : 'tcp');

function port(text: string, what: string, flag: string, zero = false): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535 || (!zero && Number(text) === 0)) {
    throw invalidArgument(`invalid ${flag} ${what} ${JSON.stringify(text)}: use a port from 1 to 65535`);
  }
  return Number(text);
}

function protocol(text: string, flag: string): PortProtocol {
  const p = PROTOCOLS[text.toLowerCase()];
  if (p === undefined) throw invalidArgument(`invalid ${flag} protocol ${JSON.stringify(text)}: tcp or udp`);
  return p;
}

/** One `--publish` value: the long form (key=value,...) or the short one (P:T[/proto], T[/proto]). */
export function parsePublish(text: string, flag = '--publish'): PortConfig {
  const value = text.trim();
  if (value.includes('=')) return parseLong(value, flag);
  const m = /^(?:(\d+):)?(\d+)(?:\/([a-zA-Z]+))?$/.exec(value);
  if (!m) throw invalidArgument(`invalid ${flag} ${JSON.stringify(text)}: ${HELP}`);
  return {
    publishedPort: m[1] === undefined ? 0 : port(m[1], 'published port', flag),
    targetPort: port(m[2], 'target port', flag),
    protocol: m[3] ? protocol(m[3], flag) : PortProtocol.PORT_PROTOCOL_TCP,
    publishMode: PublishMode.PUBLISH_MODE_INGRESS,
  };
}

function parseLong(value: string, flag: string): PortConfig {
  const out: PortConfig = { publishedPort: 0, targetPort: 0, protocol: PortProtocol.PORT_PROTOCOL_TCP, publishMode: PublishMode.PUBLISH_MODE_INGRESS };
  for (const part of value.split(',')) {
    const eq = part.indexOf('=');
    const key = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
    const v = eq < 0 ? '' : part.slice(eq + 1).trim();
    if (key === 'published') out.publishedPort = port(v, 'published port', flag, true);
    else if (key === 'target') out.targetPort = port(v, 'target port', flag);
    else if (key === 'protocol') out.protocol = protocol(v, flag);
    else if (key === 'mode') {
      const mode = MODES[v.toLowerCase()];
      if (mode === undefined) throw invalidArgument(`invalid ${flag} mode ${JSON.stringify(v)}: ingress or host`);
      out.publishMode = mode;
    } else throw invalidArgument(`invalid ${flag} ${JSON.stringify(value)}: unknown key ${JSON.stringify(key)}; ${HELP}`);
  }
  if (!out.targetPort) throw invalidArgument(`invalid ${flag} ${JSON.stringify(value)}: target=PORT is required`);
  return out;
}

export function parseEndpointMode(text: string): EndpointMode {
  if (text === 'vip') return EndpointMode.ENDPOINT_MODE_VIP;
  if (text === 'dnsrr') return EndpointMode.ENDPOINT_MODE_DNSRR;
  throw invalidArgument(`invalid --endpoint-mode ${JSON.stringify(text)}: vip or dnsrr`);
}

/** `8080` or `8080/udp` (`--publish-rm`) -> the port and protocol (tcp unless said). */
function parsePortRef(text: string): { port: number; protocol: PortProtocol } {
  const m = /^(\d+)(?:\/([a-zA-Z]+))?$/.exec(text.trim());
  if (!m) throw invalidArgument(`invalid --publish-rm ${JSON.stringify(text)}: use PORT or PORT/PROTOCOL, e.g. 8080 or 53/udp`);
  return { port: port(m[1], 'port', '--publish-rm'), protocol: m[2] ? protocol(m[2], '--publish-rm') : PortProtocol.PORT_PROTOCOL_TCP };
}

/**
 * `--publish-rm` then `--publish-add` on a spec's ports. A port to remove is matched on its
 * published port (and protocol), else on its target port as docker does; one that matches nothing
 * is refused. An added port replaces one with the same published port and protocol.
 */
export function planPortChange(current: PortConfig[], add: string[], rm: string[]): PortConfig[] {
  let ports = [...current];
  for (const ref of rm) {
    const { port: p, protocol: proto } = parsePortRef(ref);
    const byPublished = ports.filter((x) => x.publishedPort === p && x.protocol === proto);
    const gone = byPublished.length ? byPublished : ports.filter((x) => x.targetPort === p && x.protocol === proto);
    if (gone.length === 0) throw invalidArgument(`--publish-rm ${ref}: the service publishes no port ${p}/${protocolWord(proto)}`);
    ports = ports.filter((x) => !gone.includes(x));
  }
  for (const text of add) {
    const p = parsePublish(text, '--publish-add');
    ports = ports.filter((x) => !(p.publishedPort > 0 && x.publishedPort === p.publishedPort && x.protocol === p.protocol));
    ports.push(p);
  }
  return ports;
}

/** The spec's endpoint with the flags applied (undefined ones change nothing). */
export function applyEndpointFlags(endpoint: EndpointSpec | undefined, f: { publish?: string[]; endpointMode?: string; publishAdd?: string[]; publishRm?: string[] }): EndpointSpec | undefined {
  if (!f.publish && f.endpointMode === undefined && !f.publishAdd && !f.publishRm) return endpoint;
  const out: EndpointSpec = { mode: endpoint?.mode ?? EndpointMode.ENDPOINT_MODE_VIP, ports: [...(endpoint?.ports ?? [])] };
  if (f.endpointMode !== undefined) out.mode = parseEndpointMode(f.endpointMode);
  if (f.publish) out.ports = f.publish.map((p) => parsePublish(p));
  if (f.publishAdd || f.publishRm) out.ports = planPortChange(out.ports, f.publishAdd ?? [], f.publishRm ?? []);
  return out;
}

/** `*:8080->80/tcp` for the mesh, `8080->80/tcp (host)` for a host-mode port: as `service ls` shows them. */
export function formatPort(p: PortConfig): string {
  const text = `${p.publishedPort}->${p.targetPort}/${protocolWord(p.protocol)}`;
  return p.publishMode === PublishMode.PUBLISH_MODE_HOST ? `${text} (host)` : `*:${text}`;
}

/** The PORTS cell: the resolved ports (else the spec's). */
export const formatPorts = (endpoint: Endpoint | undefined): string => (endpoint?.ports?.length ? endpoint.ports : endpoint?.spec?.ports ?? []).map(formatPort).join(',');

/** A service's JSON with each VIP's network name beside its id. */
export function withVipNames(json: Record<string, any>, networkNames: Map<string, string>): Record<string, any> {
  for (const v of json.endpoint?.virtualIps ?? []) v.networkName = networkNames.get(v.networkId) ?? '';
  return json;
}

const dockerPort = (p: PortConfig) => ({
  Protocol: p.protocol === PortProtocol.PORT_PROTOCOL_UDP ? 'udp' : 'tcp',
  TargetPort: p.targetPort,
  PublishedPort: p.publishedPort,
  PublishMode: p.publishMode === PublishMode.PUBLISH_MODE_HOST ? 'host' : 'ingress',
});

/**
 * A service as `docker service inspect` shows it, in docker's field names: the keys people
 * reach for with `--format` (`{{.Spec.Name}}`, `{{.Spec.Mode.Replicated.Replicas}}`,
 * `{{json .Endpoint.VirtualIPs}}`). `--format api` shows everything the API holds.
 */
export function serviceInspect(s: Service, networkNames: Map<string, string>): Record<string, unknown> {
  const spec = s.spec;
  const c = spec?.task?.container;
  const endpointSpec = { Mode: spec?.endpoint?.mode === EndpointMode.ENDPOINT_MODE_DNSRR ? 'dnsrr' : 'vip', Ports: (spec?.endpoint?.ports ?? []).map(dockerPort) };
  return {
    ID: s.id,
    Version: { Index: s.meta?.version ?? 0 },
    CreatedAt: s.meta?.createdAt ?? '',
    UpdatedAt: s.meta?.updatedAt ?? '',
    Spec: {
      Name: spec?.name ?? '',
      Labels: spec?.labels ?? {},
      TaskTemplate: {
        ContainerSpec: { Image: c?.image ?? '', ...(c?.command.length ? { Command: c.command } : {}), ...(c?.args.length ? { Args: c.args } : {}), ...(c?.env.length ? { Env: c.env } : {}), ...(c?.dir ? { Dir: c.dir } : {}), ...(c?.user ? { User: c.user } : {}) },
        Networks: (spec?.task?.networks ?? []).map((n) => ({ Target: networkNames.get(n) ?? n })),
      },
      Mode: spec?.mode?.$case === 'global' ? { Global: {} } : { Replicated: { Replicas: spec?.mode?.value.replicas ?? 0 } },
      EndpointSpec: endpointSpec,
    },
    Endpoint: {
      Spec: endpointSpec,
      Ports: (s.endpoint?.ports ?? []).map(dockerPort),
      VirtualIPs: (s.endpoint?.virtualIps ?? []).map((v) => ({ NetworkID: v.networkId, Addr: v.addr })),
    },
  };
}

/** `service inspect --pretty`: the service's main facts and its endpoint, as text. */
export function prettyService(s: Service, networkNames: Map<string, string>): string {
  const spec = s.spec;
  const lines = [
    `ID:\t\t${s.id}`,
    `Name:\t\t${spec?.name ?? ''}`,
    spec?.mode?.$case === 'global' ? 'Service Mode:\tGlobal' : `Service Mode:\tReplicated\n Replicas:\t${spec?.mode?.value.replicas ?? 0}`,
    `Image:\t\t${spec?.task?.container?.image ?? ''}`,
    `Networks:\t${(spec?.task?.networks ?? []).join(' ')}`,
    `Endpoint Mode:\t${spec?.endpoint?.mode === EndpointMode.ENDPOINT_MODE_DNSRR ? 'dnsrr' : 'vip'}`,
  ];
  const ports = s.endpoint?.ports?.length ? s.endpoint.ports : spec?.endpoint?.ports ?? [];
  if (ports.length) {
    lines.push('Ports:');
    for (const p of ports) {
      lines.push(` PublishedPort = ${p.publishedPort || '(to be chosen)'}`, `  Protocol = ${protocolWord(p.protocol)}`, `  TargetPort = ${p.targetPort}`, `  PublishMode = ${p.publishMode === PublishMode.PUBLISH_MODE_HOST ? 'host' : 'ingress'}`);
    }
  }
  const vips = s.endpoint?.virtualIps ?? [];
  if (vips.length) {
    lines.push('Virtual IPs:');
    for (const v of vips) lines.push(` ${networkNames.get(v.networkId) ?? v.networkId}: ${v.addr}`);
  }
  return lines.join('\n') + '\n';
}
