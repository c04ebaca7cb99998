import { metrics } from './metrics';

const TYPES: Record<number, string> = { 1: 'A', 2: 'NS', 5: 'CNAME', 6: 'SOA', 12: 'PTR', 15: 'MX', 16: 'TXT', 28: 'AAAA', 33: 'SRV', 65: 'HTTPS', 255: 'ANY' };
const RCODES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];

/** The type of a DNS message's first question, read from the wire ('other' for types not listed, 'none' without a question). */
export function planQueryType(msg: Buffer): string {
  if (msg.length < 12 || msg.readUInt16BE(4) === 0) return 'none';
  let at = 12;
  while (at < msg.length && msg[at] !== 0) {
    if ((msg[at] & 0xc0) !== 0) return 'other';
    at += msg[at] + 1;
  }
  if (at + 3 > msg.length) return 'none';
  return TYPES[msg.readUInt16BE(at + 1)] ?? 'other';
}

/** The rcode of a reply ('dropped' for none). */
export function planRcode(reply: Buffer | undefined): string {
  if (!reply || reply.length < 4) return 'dropped';
  return RCODES[reply[3] & 0x0f] ?? 'other';
}

/** Queries by type, and answers by type and rcode, not yet added to the counters. */
const pendingQueries = new Map<string, number>();
const pendingAnswers = new Map<string, Map<string, number>>();
let flushing: NodeJS.Immediate | undefined;

/** Adds the pending counts to the counters: once per turn of the event loop, not once per query. */
function flushCounts(): void {
  flushing = undefined;
  for (const [type, n] of pendingQueries) metrics.dnsQueries.inc({ type }, n);
  for (const [type, byRcode] of pendingAnswers) for (const [rcode, n] of byRcode) metrics.dnsAnswers.inc({ type, rcode }, n);
  pendingQueries.clear();
  pendingAnswers.clear();
}

/** Counts a query and its answer (by type and rcode), answered in `seconds`. The counters have it by the next turn of the event loop. */
export function countDns(msg: Buffer, reply: Buffer | undefined, seconds: number): void {
  const type = planQueryType(msg);
  const rcode = planRcode(reply);
  pendingQueries.set(type, (pendingQueries.get(type) ?? 0) + 1);
  let byRcode = pendingAnswers.get(type);
  if (!byRcode) pendingAnswers.set(type, (byRcode = new Map()));
  byRcode.set(rcode, (byRcode.get(rcode) ?? 0) + 1);
  metrics.dnsSeconds.observe(seconds);
  if (!flushing) flushing = setImmediate(flushCounts).unref();
}

/** Counts a query and its answer (by type and rcode) and times it. */
export async function observeDns(msg: Buffer, answer: () => Promise<Buffer | undefined>): Promise<Buffer | undefined> {
  const started = performance.now();
  const reply = await answer();
  countDns(msg, reply, (performance.now() - started) / 1000);
  return reply;
}
