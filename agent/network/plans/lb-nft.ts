/**
 * The nftables rulesets of service load balancing, rendered as text (pure; no kernel). Each table
 * is rendered exactly as `nft list table` prints it, so what the kernel has can be compared with
 * what is wanted line for line; it is applied with renderNftReplace (add, delete, declare again:
 * one transaction, so the kernel goes from the old rules to the new ones atomically). Each VIP and
 * each published port has a chain of its own that holds its backends (kube-proxy's nftables mode
 * has one per service): when only backends change, planNftUpdate makes the change one small
 * transaction that rewrites those chains alone (`flush chain` + `add rule`), not the whole table.
 *
 *   - `ip swarmlet-lb`, in each task's namespace (client-side VIP load balancing): connections the
 *     task makes to a service VIP are DNATed to one of the service's serving tasks, picked by
 *     `numgen random` (all ports and protocols; the port is kept); a VIP with no serving task is
 *     rejected (TCP reset, else ICMP port unreachable) so clients fail fast.
 *   - `ip swarmlet-ingress`, in the node's ingress sandbox (the routing mesh, as docker's
 *     ingress_sbox): a published port is DNATed to one of its backends' ingress addresses and the
 *     target port, and masqueraded out of the ingress interface, so replies come back through the
 *     sandbox; a port with no backend is rejected.
 *   - `ip swarmlet-publish`, in the host's namespace: connections to a local address on a published
 *     port go to the ingress sandbox (ingress mode, same port) or straight to a task (host mode,
 *     target port); from outside (prerouting) and from the host itself (output), `127.0.0.1`
 *     included, as docker serves it. A connection from loopback leaves with the address of the
 *     bridge it goes out of (masquerade), and that bridge has route_localnet set (NetworkController), so
 *     the kernel routes it and its replies; the input chain drops whatever else reaches 127.0.0.0/8
 *     from outside `lo` (the guard kube-proxy added for CVE-2020-8558): only replies of those
 *     DNATed connections get in. A task's connection to a port its own node publishes goes back
 *     out of the bridge it came from: masqueraded too (hairpin), so its replies pass the host. (The
 *     ingress sandbox's port on the gateway bridge is not isolated: the kernel drops a frame that
 *     came in from an isolated port when the host routes it out to another isolated one.)
 */
import type { NetworkServices } from '../../../services/gen/swarmlet/v1/dispatcher';
import { invalidArgument } from '../../../services/common/errors';

export const LB_NFT_TABLE = 'swarmlet-lb';
export const INGRESS_NFT_TABLE = 'swarmlet-ingress';
export const PUBLISH_NFT_TABLE = 'swarmlet-publish';
/** The host's table of containers' published ports (agent/containers/container-ports.ts): the same rules, in a table the tasks' pass leaves alone. */
export const CONTAINER_PUBLISH_NFT_TABLE = 'swarmlet-cpublish';

export type NftProtocol = 'tcp' | 'udp';

/** A service VIP as a task's table takes it. */
export interface LbVip {
  vip: string;
  /** The serving tasks' addresses on the VIP's network; [] rejects connections to the VIP. */
  backends: string[];
}

/** A port published in ingress mode, as the ingress sandbox's table takes it. */
export interface IngressRule {
  protocol: NftProtocol;
  publishedPort: number;
  targetPort: number;
  /** The serving tasks' ingress addresses; [] rejects the port. */
  backends: string[];
}

/** A port the host DNATs to an address: the ingress sandbox's, or a task's (host mode). */
export interface PublishRule {
  protocol: NftProtocol;
  publishedPort: number;
  address: string;
  /** 0: the published port (ingress mode); else the task's port (host mode). */
  targetPort: number;
  /** The bridge the address is on, which needs route_localnet for connections from 127.0.0.1. */
  device?: string;
  /** Only connections to this host address (a container's `-p 127.0.0.1:8080:80`); absent: every local address. */
  hostIp?: string;
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

/** The address as a number, or undefined when it is not a dotted IPv4 address. */
function ipv4Number(ip: string): number | undefined {
  const m = IPV4.exec(ip);
  if (!m) return undefined;
  const octets = m.slice(1, 5).map(Number);
  if (octets.some((o) => o > 255)) return undefined;
  return ((octets[0] << 24) >>> 0) + (octets[1] << 16) + (octets[2] << 8) + octets[3];
}

function checkIp(ip: string, what: string): void {
  if (ipv4Number(ip) === undefined) throw invalidArgument(`invalid IPv4 address for ${what}: ${JSON.stringify(ip)}`);
}

function checkPort(port: number, what: string): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw invalidArgument(`invalid port for ${what}: ${port}`);
}

const byAddress = (a: string, b: string) => (ipv4Number(a) as number) - (ipv4Number(b) as number);

/** Addresses sorted numerically, duplicates and invalid ones dropped. */
export function sortedAddresses(ips: string[]): string[] {
  return [...new Set(ips.filter((ip) => ipv4Number(ip) !== undefined))].sort(byAddress);
}

/**
 * The VIPs a task with these attachments balances: those of the services on its networks, each
 * with its serving tasks' addresses (sorted). A VIP met twice keeps its first record.
 */
export function planTaskVips(attachments: { networkId: string }[], services: NetworkServices[]): LbVip[] {
  const networks = new Set(attachments.map((a) => a.networkId));
  const out = new Map<string, LbVip>();
  for (const n of services) {
    if (!networks.has(n.networkId)) continue;
    for (const s of n.services) {
      if (!s.vip || ipv4Number(s.vip) === undefined || out.has(s.vip)) continue;
      out.set(s.vip, { vip: s.vip, backends: sortedAddresses(s.tasks.filter((t) => t.serving).map((t) => t.ip)) });
    }
  }
  return [...out.values()].sort((a, b) => byAddress(a.vip, b.vip));
}

/** `dnat to` one of the addresses (`:port` appended when given), as nft prints it. */
function dnatTo(backends: string[], port?: number): string {
  const suffix = port ? `:${port}` : '';
  if (backends.length === 1) return `dnat to ${backends[0]}${suffix}`;
  const map = backends.map((b, i) => `${i} : ${b}`).join(', ');
  return `dnat to numgen random mod ${backends.length} map { ${map} }${suffix}`;
}

export interface Chain {
  name: string;
  /** The base chain's `type ... hook ...` line; none for a regular chain (one that rules go to). */
  hook?: string;
  rules: string[];
}

/** A table as `nft list table` prints it. */
export function renderTable(table: string, chains: Chain[]): string {
  const body = chains.map((c) => [`\tchain ${c.name} {`, ...(c.hook ? [`\t\t${c.hook}`] : []), ...c.rules.map((r) => `\t\t${r}`), '\t}'].join('\n'));
  return `table ip ${table} {\n${body.join('\n\n')}\n}\n`;
}

/** The chains of a table as renderTable renders it (and `nft list table` prints it); [] for ''. */
export function parseTable(text: string): Chain[] {
  const chains: Chain[] = [];
  let chain: Chain | undefined;
  for (const line of text.split('\n')) {
    const head = /^\tchain (\S+) \{$/.exec(line);
    if (head) chains.push((chain = { name: head[1] as string, rules: [] }));
    else if (line === '\t}') chain = undefined;
    else if (chain && line.startsWith('\t\t')) {
      const text = line.slice(2);
      if (chain.rules.length === 0 && chain.hook === undefined && text.startsWith('type ')) chain.hook = text;
      else chain.rules.push(text);
    }
  }
  return chains;
}

/**
 * The `nft -f -` input that takes table `table` from `applied` to `wanted` (both as rendered) by
 * rewriting only the chains whose rules differ, in one transaction; '' when nothing differs. Undefined
 * when the tables differ in more than rules (a chain added, removed or changed in kind, or a table
 * made or removed): then the whole table is replaced (renderNftReplace).
 */
export function planNftUpdate(table: string, applied: string, wanted: string): string | undefined {
  if (!applied || !wanted) return undefined;
  const before = parseTable(applied);
  const after = parseTable(wanted);
  if (before.length !== after.length || before.some((c, i) => c.name !== after[i]!.name || c.hook !== after[i]!.hook)) return undefined;
  const lines: string[] = [];
  after.forEach((c, i) => {
    const was = before[i]!.rules;
    if (was.length === c.rules.length && was.every((r, j) => r === c.rules[j])) return;
    lines.push(`flush chain ip ${table} ${c.name}`, ...c.rules.map((r) => `add rule ip ${table} ${c.name} ${r}`));
  });
  return lines.length ? `${lines.join('\n')}\n` : '';
}

const NAT_OUTPUT = 'type nat hook output priority -100; policy accept;';
const NAT_PREROUTING = 'type nat hook prerouting priority dstnat; policy accept;';
const NAT_POSTROUTING = 'type nat hook postrouting priority srcnat; policy accept;';
const FILTER_OUTPUT = 'type filter hook output priority filter; policy accept;';
export const FILTER_INPUT = 'type filter hook input priority filter; policy accept;';
const FILTER_FORWARD = 'type filter hook forward priority filter; policy accept;';

/** A task's `ip swarmlet-lb` table; '' when it has no VIP to balance (no table). */
export function renderTaskLbNft(vips: LbVip[]): string {
  if (vips.length === 0) return '';
  for (const v of vips) {
    checkIp(v.vip, 'a VIP');
    for (const b of v.backends) checkIp(b, `a backend of VIP ${v.vip}`);
  }
  const byVip = new Map<string, LbVip>();
  for (const v of vips) if (!byVip.has(v.vip)) byVip.set(v.vip, v);
  const list = [...byVip.values()].sort((a, b) => byAddress(a.vip, b.vip));
  const chainOf = (v: LbVip) => `vip-${v.vip}`;
  // Every VIP goes to its own chain, which DNATs to its backends (or, without any, lets the filter chain reject).
  const reject = list.filter((v) => v.backends.length === 0).flatMap((v) => [`ip daddr ${v.vip} reject with tcp reset`, `ip daddr ${v.vip} reject`]);
  return renderTable(LB_NFT_TABLE, [
    { name: 'nat-output', hook: NAT_OUTPUT, rules: list.map((v) => `ip daddr ${v.vip} goto ${chainOf(v)}`) },
    ...list.map((v) => ({ name: chainOf(v), rules: v.backends.length > 0 ? [dnatTo(sortedAddresses(v.backends))] : [] })),
    { name: 'filter-output', hook: FILTER_OUTPUT, rules: reject },
  ]);
}

/** Rules sorted by protocol then published port; a (protocol, port, host address) met twice keeps its first rule. */
function uniquePorts<T extends { protocol: NftProtocol; publishedPort: number; hostIp?: string }>(rules: T[]): T[] {
  const seen = new Set<string>();
  const out: T[] = [];
  for (const r of rules) {
    if (r.protocol !== 'tcp' && r.protocol !== 'udp') throw invalidArgument(`invalid protocol ${JSON.stringify(r.protocol)}`);
    checkPort(r.publishedPort, 'a published port');
    const key = `${r.protocol}/${r.publishedPort}/${r.hostIp ?? ''}`;
    if (!seen.has(key)) out.push(r);
    seen.add(key);
  }
  return out.sort((a, b) => (a.protocol === b.protocol ? a.publishedPort - b.publishedPort : a.protocol < b.protocol ? -1 : 1));
}

/**
 * The ingress sandbox's `ip swarmlet-ingress` table: published ports DNATed to their backends on
 * the target port, masquerade out of `ingressIf` (the sandbox's ingress interface).
 */
export function renderIngressNft(rules: IngressRule[], ingressIf: string): string {
  if (!IFNAME.test(ingressIf)) throw invalidArgument(`invalid interface name ${JSON.stringify(ingressIf)}`);
  const ports = uniquePorts(rules);
  for (const r of ports) {
    checkPort(r.targetPort, `published port ${r.publishedPort}`);
    for (const b of r.backends) checkIp(b, `a backend of published port ${r.publishedPort}`);
  }
  const chainOf = (r: IngressRule) => `port-${r.protocol}-${r.publishedPort}`;
  // Every port goes to its own chain, which DNATs to its backends (or, without any, lets the input chain reject).
  const reject = ports.filter((r) => r.backends.length === 0).map((r) => `${r.protocol} dport ${r.publishedPort} ${r.protocol === 'tcp' ? 'reject with tcp reset' : 'reject'}`);
  return renderTable(INGRESS_NFT_TABLE, [
    { name: 'prerouting', hook: NAT_PREROUTING, rules: ports.map((r) => `${r.protocol} dport ${r.publishedPort} goto ${chainOf(r)}`) },
    // (A port mapping needs its protocol matched in the same rule.)
    ...ports.map((r) => ({ name: chainOf(r), rules: r.backends.length > 0 ? [`${r.protocol} dport ${r.publishedPort} ${dnatTo(sortedAddresses(r.backends), r.targetPort)}`] : [] })),
    { name: 'postrouting', hook: NAT_POSTROUTING, rules: [`oifname "${ingressIf}" masquerade`] },
    { name: 'input', hook: FILTER_INPUT, rules: reject },
    // The sandbox routes published ports only: nobody on the gateway bridge uses it as a router.
    { name: 'forward', hook: FILTER_FORWARD, rules: ['ct status ! dnat drop'] },
  ]);
}

/**
 * The host's `ip swarmlet-publish` table (or `table`: containers' ports have one of their own);
 * '' when nothing is published here (no table).
 */
export function renderPublishNft(rules: PublishRule[], table = PUBLISH_NFT_TABLE): string {
  const ports = uniquePorts(rules);
  if (ports.length === 0) return '';
  for (const r of ports) {
    checkIp(r.address, `published port ${r.publishedPort}`);
    if (r.hostIp !== undefined) checkIp(r.hostIp, `published port ${r.publishedPort}`);
    if (r.targetPort !== 0) checkPort(r.targetPort, `published port ${r.publishedPort}`);
  }
  const daddr = (r: PublishRule) => (r.hostIp ? `ip daddr ${r.hostIp}` : 'fib daddr type local');
  const rule = (r: PublishRule) => `${daddr(r)} ${r.protocol} dport ${r.publishedPort} dnat to ${r.address}${r.targetPort ? `:${r.targetPort}` : ''}`;
  return renderTable(table, [
    { name: 'prerouting', hook: NAT_PREROUTING, rules: ports.map(rule) },
    { name: 'output', hook: NAT_OUTPUT, rules: ports.map(rule) },
    { name: 'postrouting', hook: NAT_POSTROUTING, rules: ['ip saddr 127.0.0.0/8 oifname != "lo" masquerade', ...hairpins(ports)] },
    { name: 'input', hook: FILTER_INPUT, rules: ['iifname != "lo" ip daddr 127.0.0.0/8 ct status ! dnat drop'] },
  ]);
}

/**
 * A connection DNATed back out of the bridge it came in on (a task asking a port its own node
 * publishes) takes the bridge's address, so the replies come back through the host to be un-NATed
 * instead of going from the sandbox or task straight to the asking task.
 */
function hairpins(ports: PublishRule[]): string[] {
  const devices = [...new Set(ports.flatMap((r) => (r.device ? [r.device] : [])))].sort();
  for (const d of devices) if (!IFNAME.test(d)) throw invalidArgument(`invalid interface name ${JSON.stringify(d)}`);
  return devices.map((d) => `iifname "${d}" oifname "${d}" ct status dnat masquerade`);
}

/** The `nft -f -` input that makes `table` (an `ip` table) what `body` says: '' removes it. */
export function renderNftReplace(table: string, body: string): string {
  return `table ip ${table}\ndelete table ip ${table}\n${body}`;
}

/**
 * What differs between a table as the kernel lists it ('' when absent) and as wanted ('' for
 * none): one short sentence, or undefined when they match. `what` names the table for the reader.
 */
export function diffNftTable(what: string, kernel: string, wanted: string): string | undefined {
  if (kernel === wanted) return undefined;
  if (!kernel) return `missing ${what}`;
  if (!wanted) return `stale ${what} (nothing is wanted there)`;
  // Lines are told apart by their chain, and counted: the same rule in two chains (prerouting and
  // output) is two rules, and one of them missing is seen.
  const keyed = (text: string) => {
    let chain = '';
    return text.split('\n').map((line) => {
      chain = /^\s*chain (\S+) \{/.exec(line)?.[1] ?? chain;
      return { key: `${chain}\u0000${line}`, line: line.trim() };
    });
  };
  const beyond = (from: { key: string; line: string }[], other: { key: string }[]) => {
    const left = new Map<string, number>();
    for (const { key } of other) left.set(key, (left.get(key) ?? 0) + 1);
    return from.filter(({ key }) => {
      const n = left.get(key) ?? 0;
      left.set(key, n - 1);
      return n <= 0;
    }).map(({ line }) => line);
  };
  const have = keyed(kernel);
  const want = keyed(wanted);
  const missing = beyond(want, have);
  const extra = beyond(have, want);
  const parts = [];
  if (missing.length) parts.push(`missing rule ${JSON.stringify(missing[0])}${missing.length > 1 ? ` and ${missing.length - 1} more` : ''}`);
  if (extra.length) parts.push(`unexpected rule ${JSON.stringify(extra[0])}${extra.length > 1 ? ` and ${extra.length - 1} more` : ''}`);
  if (!parts.length) parts.push('rules in another order');
  return `${what} differs: ${parts.join('; ')}`;
}
