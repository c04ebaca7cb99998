/**
 * The embedded DNS's hot path, as pure functions over bytes: a table built once per asker and
 * records version (planWireTable, from the asker's DnsIndex) holds each name's answer records
 * already in wire form, keyed by the name's wire form in lower case; a query whose question is in
 * the table gets its reply (planWireReply) as the query's header and question copied, the flags and
 * counts set, and the records copied after them: no decode, no encode. Every record names the
 * question by a pointer to it (0xc00c), so the name is the one asked, in the case it was asked.
 *
 * The table answers what planDnsAnswer answers the same way for every asker query of that name: A
 * (and ANY) of a known name, turned per query where the index says so; no data for the name's
 * other types; PTR of a task's or a VIP's address. Anything else (other classes, opcodes, several
 * questions, compressed or non-ASCII names, NXDOMAIN, forwarding, a record that would not encode)
 * is not in the table: planWireReply says undefined and the caller takes planDnsAnswer's path,
 * which stays the one reference. Over UDP a reply keeps the records that fit the asker's limit
 * (512, or its EDNS size up to 4096) and sets TC when some do not, as encodeAnswer does.
 */
import { DNS_TTL, FLAG_AA, FLAG_RA, FLAG_RD, FLAG_TC, REVERSE_V4, UDP_MAX, UDP_MIN, type DnsIndex } from './answer';
import { readIpv4 } from '../../services/common/cidr';

/** Records in wire form, one after the other; `starts` has each one's offset, then the end. */
export interface WireRecords {
  data: Buffer;
  starts: number[];
  /** The order turns per query (dnsrr, tasks.*). */
  rotate: boolean;
}

interface WireName {
  /** A records of a name the index knows (none: NOERROR with no data); its other types have no data. */
  a?: WireRecords;
  /** PTR records of a reverse name the index knows. */
  ptr?: WireRecords;
}

/** Lower-case wire form of a name (length-prefixed labels and the final 0, as latin1) -> its records. */
export type WireTable = Map<string, WireName>;

const TYPE_A = 1;
const TYPE_PTR = 12;
const TYPE_OPT = 41;
const TYPE_ANY = 255;
const CLASS_IN = 1;
const HEADER = 12;
/** A record's owner name: a pointer to the question's name, which starts right after the header. */
const NAME_POINTER = 0xc00c;
const MAX_NAME = 255;
const MAX_LABEL = 63;
const NO_RECORDS: WireRecords = { data: Buffer.alloc(0), starts: [0], rotate: false };

/** A name's wire form (length-prefixed labels, then 0) as a latin1 string; undefined for a name that has no plain ASCII one. */
function wireName(name: string): string | undefined {
  const n = name.replace(/\.$/, '');
  if (!/^[\x21-\x7e]+$/.test(n)) return undefined;
  let out = '';
  for (const label of n.split('.')) {
    if (label.length === 0 || label.length > MAX_LABEL) return undefined;
    out += String.fromCharCode(label.length) + label;
  }
  out += '\0';
  return out.length > MAX_NAME ? undefined : out;
}

function records(rdatas: Buffer[], type: number, rotate: boolean): WireRecords {
  const parts: Buffer[] = [];
  const starts: number[] = [];
  let at = 0;
  for (const rdata of rdatas) {
    const rr = Buffer.alloc(12 + rdata.length);
    rr.writeUInt16BE(NAME_POINTER, 0);
    rr.writeUInt16BE(type, 2);
    rr.writeUInt16BE(CLASS_IN, 4);
    rr.writeUInt32BE(DNS_TTL, 6);
    rr.writeUInt16BE(rdata.length, 10);
    rdata.copy(rr, 12);
    parts.push(rr);
    starts.push(at);
    at += rr.length;
  }
  starts.push(at);
  return { data: Buffer.concat(parts), starts, rotate };
}

function ipv4Rdata(ip: string): Buffer | undefined {
  const n = readIpv4(ip);
  if (n === undefined) return undefined;
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

/** A PTR target's wire form, in the case it has (it is data). */
function nameRdata(name: string): Buffer | undefined {
  const wire = wireName(name);
  return wire === undefined ? undefined : Buffer.from(wire, 'latin1');
}

/** The table of what `index`'s asker may resolve that always gets the same kind of answer. */
export function planWireTable(index: DnsIndex): WireTable {
  const table: WireTable = new Map();
  for (const [name, entry] of index.names) {
    // A reverse name of the asker's subnets may be NXDOMAIN for PTR: planDnsAnswer decides those.
    if (name.endsWith(REVERSE_V4)) continue;
    const key = wireName(name);
    const rdatas = entry.ips.map(ipv4Rdata);
    if (key === undefined || rdatas.some((r) => r === undefined)) continue;
    table.set(key, { a: records(rdatas as Buffer[], TYPE_A, entry.rotate && entry.ips.length > 1) });
  }
  for (const [name, targets] of index.ptr) {
    const key = wireName(name);
    const rdatas = targets.map(nameRdata);
    if (key === undefined || table.has(key) || rdatas.some((r) => r === undefined)) continue;
    table.set(key, { ptr: records(rdatas as Buffer[], TYPE_PTR, false) });
  }
  return table;
}

/** The question's name in lower case as a table key, and where the name ends; undefined when it is not plain. */
function questionName(msg: Buffer): { key: string; end: number } | undefined {
  let at = HEADER;
  let upper = false;
  for (;;) {
    if (at >= msg.length) return undefined;
    const len = msg[at] as number;
    if (len === 0) break;
    if (len > MAX_LABEL) return undefined;
    const next = at + 1 + len;
    if (next - HEADER >= MAX_NAME || next >= msg.length) return undefined;
    for (let i = at + 1; i < next; i++) {
      const c = msg[i] as number;
      if (c <= 0x20 || c >= 0x7f) return undefined;
      if (c >= 0x41 && c <= 0x5a) upper = true;
    }
    at = next;
  }
  const end = at + 1;
  const raw = msg.toString('latin1', HEADER, end);
  return { key: upper ? raw.toLowerCase() : raw, end };
}

/** The EDNS payload size of the OPT record that makes up the rest of `msg` from `at`; undefined when the rest is not one. */
function optPayloadSize(msg: Buffer, at: number): number | undefined {
  if (at + 11 > msg.length || msg[at] !== 0 || msg.readUInt16BE(at + 1) !== TYPE_OPT) return undefined;
  if (at + 11 + msg.readUInt16BE(at + 9) !== msg.length) return undefined;
  return msg.readUInt16BE(at + 3);
}

/**
 * The reply to the query `msg` from the table, or undefined when the table does not have it (the
 * caller asks planDnsAnswer). `seq` turns the order of round-robin answers, as in planDnsAnswer.
 */
export function planWireReply(msg: Buffer, table: WireTable, seq: number, protocol: 'udp' | 'tcp'): Buffer | undefined {
  if (msg.length < HEADER + 5) return undefined;
  const flags = msg.readUInt16BE(2);
  // A query (QR clear) of opcode QUERY, with one question, no answers, no authority, EDNS at most.
  if ((flags & 0xf800) !== 0 || msg.readUInt16BE(4) !== 1 || msg.readUInt16BE(6) !== 0 || msg.readUInt16BE(8) !== 0) return undefined;
  const additionals = msg.readUInt16BE(10);
  if (additionals > 1) return undefined;
  const q = questionName(msg);
  if (!q || q.end + 4 > msg.length) return undefined;
  const type = msg.readUInt16BE(q.end);
  if (msg.readUInt16BE(q.end + 2) !== CLASS_IN) return undefined;
  const questionEnd = q.end + 4;
  let limit = UDP_MIN;
  if (additionals === 1) {
    const size = optPayloadSize(msg, questionEnd);
    if (size === undefined) return undefined;
    limit = Math.min(UDP_MAX, Math.max(UDP_MIN, size));
  }
  if (protocol === 'tcp') limit = 0xffff;

  const entry = table.get(q.key);
  if (!entry) return undefined;
  const rrs = type === TYPE_PTR && entry.ptr ? entry.ptr : !entry.a ? undefined : type === TYPE_A || type === TYPE_ANY ? entry.a : NO_RECORDS;
  if (!rrs) return undefined;

  const n = rrs.starts.length - 1;
  const first = rrs.rotate ? seq % n : 0;
  // The records that fit, in the turned order; the rest are left out with TC set.
  let size = questionEnd;
  let count = 0;
  for (; count < n; count++) {
    const i = (first + count) % n;
    const len = (rrs.starts[i + 1] as number) - (rrs.starts[i] as number);
    if (size + len > limit) break;
    size += len;
  }
  const out = Buffer.allocUnsafe(size);
  msg.copy(out, 0, 0, questionEnd);
  out.writeUInt16BE(0x8000 | FLAG_AA | FLAG_RA | (flags & FLAG_RD) | (count < n ? FLAG_TC : 0), 2);
  out.writeUInt16BE(count, 6);
  out.writeUInt16BE(0, 10);
  const from = rrs.starts[first] as number;
  const tail = Math.min(size - questionEnd, rrs.data.length - from);
  rrs.data.copy(out, questionEnd, from, from + tail);
  if (tail < size - questionEnd) rrs.data.copy(out, questionEnd + tail, 0, size - questionEnd - tail);
  return out;
}
