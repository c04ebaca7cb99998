/**
 * The embedded DNS's answers, as pure functions: what one task may resolve (planDnsIndex, from
 * the records of the networks it is attached to) and what a query gets (planDnsAnswer): an
 * answer packet, "forward upstream", or nothing (not a query). No sockets here.
 *
 * Names, case-insensitive: `<service>` and `<service>.<network>`, and the same of each of the
 * service's aliases on that network -> the VIP (or the serving
 * tasks' IPs in dnsrr mode, turned per query); `tasks.<service>[.<network>]` -> the serving
 * tasks' IPs; a task's name and hostname [.<network>] -> its IP; an attached container's name
 * and aliases [.<network>] -> its IP. A records; AAAA and other types
 * of a known name: no data. PTR of task IPs and VIPs. NXDOMAIN for unknown names of the
 * cluster's domain (one label, `tasks.<x>`, or ending in a network name of the asker's);
 * everything else is forwarded. TTL 1: answers are never stale for long.
 */
import type { Answer, Packet, Question } from 'dns-packet';
import { type Ipv4Cidr, containsAddress, readCidr, readIpv4 } from '../../services/common/cidr';
import type { NetworkServices } from '../../services/gen/swarmlet/v1/dispatcher';

export const DNS_TTL = 1;
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
export const FLAG_AA = 1 << 10;
export const FLAG_TC = 1 << 9;
export const FLAG_RD = 1 << 8;
export const FLAG_RA = 1 << 7;
/** The largest UDP answer for a query without EDNS, and the cap of what EDNS may ask for. */
export const UDP_MIN = 512;
export const UDP_MAX = 4096;

export const REVERSE_V4 = '.in-addr.arpa';

/** Higher wins when names collide: a service name over a task's name over a hostname. */
const PRIORITY = { service: 3, taskName: 2, hostname: 1 } as const;

interface NameEntry {
  ips: string[];
  /** dnsrr and tasks.*: the order turns per query. */
  rotate: boolean;
  priority: number;
}

/** What one asker may resolve; built once per task and records version. */
export interface DnsIndex {
  /** Lower-case name without the trailing dot -> IPv4 addresses. */
  names: Map<string, NameEntry>;
  /** d.c.b.a.in-addr.arpa -> names. */
  ptr: Map<string, string[]>;
  /** The asker's networks' names, lower-case. */
  networkNames: Set<string>;
  /** The asker's networks' IPv4 subnets. */
  subnets: Ipv4Cidr[];
}

export type DnsDecision = { kind: 'answer'; packet: Packet } | { kind: 'forward' } | { kind: 'drop' };

const uniq = (xs: string[]) => [...new Set(xs)];

export function normalizeName(name: string): string {
  return name.toLowerCase().replace(/\.+$/, '');
}

/** 10.0.1.5 -> 5.1.0.10.in-addr.arpa */
export function reverseName(ip: string): string {
  return `${ip.split('.').reverse().join('.')}${REVERSE_V4}`;
}

/** 5.1.0.10.in-addr.arpa -> 10.0.1.5; undefined for anything else (partial names included). */
function ipOfReverseName(name: string): string | undefined {
  if (!name.endsWith(REVERSE_V4)) return undefined;
  const ip = name.slice(0, -REVERSE_V4.length).split('.').reverse().join('.');
  return readIpv4(ip) === undefined ? undefined : ip;
}

function addName(names: Map<string, NameEntry>, name: string, ips: string[], priority: number, rotate = false): void {
  const key = normalizeName(name);
  if (!key) return;
  const have = names.get(key);
  if (!have || have.priority < priority) names.set(key, { ips: uniq(ips), rotate, priority });
  else if (have.priority === priority) names.set(key, { ips: uniq([...have.ips, ...ips]), rotate: have.rotate || rotate, priority });
}

function addPtr(ptr: Map<string, string[]>, ip: string, name: string): void {
  if (!ip || !name || readIpv4(ip) === undefined) return;
  const key = reverseName(ip);
  ptr.set(key, uniq([...(ptr.get(key) ?? []), name]));
}

/**
 * What a task attached to `networks` (the records of those networks alone) may resolve;
 * `subnets` are its attachments' addresses (CIDR), for NXDOMAIN on unheld addresses.
 */
export function planDnsIndex(networks: NetworkServices[], subnets: string[] = []): DnsIndex {
  const names = new Map<string, NameEntry>();
  const ptr = new Map<string, string[]>();
  const networkNames = new Set<string>();
  for (const net of networks) {
    const netName = normalizeName(net.name);
    if (netName) networkNames.add(netName);
    const suffixes = netName ? ['', `.${netName}`] : [''];
    for (const svc of net.services) {
      const serving = svc.tasks.filter((t) => t.serving && t.ip).map((t) => t.ip);
      for (const name of [svc.name, ...(svc.aliases ?? [])]) {
        for (const sfx of suffixes) {
          addName(names, `${name}${sfx}`, svc.vip ? [svc.vip] : serving, PRIORITY.service, !svc.vip);
          addName(names, `tasks.${name}${sfx}`, serving, PRIORITY.service, true);
        }
      }
      if (svc.vip) addPtr(ptr, svc.vip, svc.name);
      for (const t of svc.tasks) {
        if (!t.ip) continue;
        for (const sfx of suffixes) {
          if (t.name) addName(names, `${t.name}${sfx}`, [t.ip], PRIORITY.taskName);
          if (t.hostname) addName(names, `${t.hostname}${sfx}`, [t.ip], PRIORITY.hostname);
        }
        addPtr(ptr, t.ip, t.name || t.hostname);
      }
    }
    // Containers attached to the network: their name and aliases, as a task's name.
    for (const c of net.containers ?? []) {
      if (!c.ip) continue;
      for (const name of [c.name, ...c.aliases]) for (const sfx of suffixes) if (name) addName(names, `${name}${sfx}`, [c.ip], PRIORITY.taskName);
      addPtr(ptr, c.ip, c.name || c.containerId.slice(0, 12));
    }
  }
  const parsed = subnets.map(readCidr).filter((s): s is Ipv4Cidr => s !== undefined);
  return { names, ptr, networkNames, subnets: parsed };
}

function rotated<T>(xs: T[], seq: number): T[] {
  if (xs.length < 2) return xs;
  const k = ((seq % xs.length) + xs.length) % xs.length;
  return [...xs.slice(k), ...xs.slice(0, k)];
}

/** One label, `tasks.<x>`, or a last label that names one of the asker's networks. */
function inClusterDomain(name: string, index: DnsIndex): boolean {
  const labels = name.split('.');
  if (labels.length === 1) return true;
  if (labels.length === 2 && labels[0] === 'tasks') return true;
  return index.networkNames.has(labels[labels.length - 1]);
}

function inSubnets(ip: string, index: DnsIndex): boolean {
  const addr = readIpv4(ip);
  return addr !== undefined && index.subnets.some((s) => containsAddress(s, addr));
}

/** The response header for `query`: same id and question, RD copied, RA set. */
export function planResponse(query: Packet, rcode: number, answers: Answer[] = [], authoritative = true): Packet {
  const rd = (query.flags ?? 0) & FLAG_RD;
  return {
    type: 'response',
    id: query.id ?? 0,
    flags: (authoritative ? FLAG_AA : 0) | FLAG_RA | rd | rcode,
    questions: query.questions ?? [],
    answers,
  };
}

function answerName(q: Question, index: DnsIndex, seq: number): DnsDecision | undefined {
  const name = normalizeName(q.name);
  const entry = index.names.get(name);
  if (!entry) return undefined;
  if (q.type !== 'A' && (q.type as string) !== 'ANY') return { kind: 'answer', packet: { answers: [] } };
  const ips = entry.rotate ? rotated(entry.ips, seq) : entry.ips;
  return { kind: 'answer', packet: { answers: ips.map((ip) => ({ type: 'A', name: q.name, ttl: DNS_TTL, class: 'IN', data: ip })) } };
}

function answerPtr(q: Question, index: DnsIndex): DnsDecision | undefined {
  const name = normalizeName(q.name);
  const ip = ipOfReverseName(name);
  if (ip === undefined) return undefined;
  const targets = index.ptr.get(name);
  if (targets) return { kind: 'answer', packet: { answers: targets.map((t) => ({ type: 'PTR', name: q.name, ttl: DNS_TTL, class: 'IN', data: t })) } };
  if (inSubnets(ip, index)) return { kind: 'answer', packet: { flags: RCODE.NXDOMAIN } };
  return undefined;
}

/**
 * The decision for one decoded query from the asker whose index is `index`. `seq` turns the
 * order of round-robin answers (a counter the caller increments per query).
 */
export function planDnsAnswer(query: Packet, index: DnsIndex, seq = 0): DnsDecision {
  if (query.type === 'response') return { kind: 'drop' };
  const questions = query.questions ?? [];
  const opcode = ((query.flags ?? 0) >> 11) & 0xf;
  if (opcode !== 0) return { kind: 'answer', packet: planResponse(query, RCODE.NOTIMP, [], false) };
  if (questions.length !== 1) return { kind: 'answer', packet: planResponse(query, RCODE.FORMERR, [], false) };
  const q = questions[0];
  if (q.class !== undefined && q.class !== 'IN') return { kind: 'forward' };
  const name = normalizeName(q.name);
  if (!name) return { kind: 'forward' };
  const found = (q.type === 'PTR' ? answerPtr(q, index) : undefined) ?? answerName(q, index, seq);
  if (found?.kind === 'answer') {
    return { kind: 'answer', packet: planResponse(query, found.packet.flags ?? RCODE.NOERROR, found.packet.answers ?? []) };
  }
  if (inClusterDomain(name, index)) return { kind: 'answer', packet: planResponse(query, RCODE.NXDOMAIN) };
  return { kind: 'forward' };
}

/** The answer when every upstream failed or timed out. */
export function planServfail(query: Packet): Packet {
  return planResponse(query, RCODE.SERVFAIL, [], false);
}

/** How large a UDP answer to `query` may be: its EDNS payload size (within 512..4096), else 512. */
export function udpLimit(query: Packet): number {
  const opt = (query.additionals ?? []).find((a) => a.type === 'OPT') as { udpPayloadSize?: number } | undefined;
  const size = opt?.udpPayloadSize ?? UDP_MIN;
  return Math.min(UDP_MAX, Math.max(UDP_MIN, size));
}
