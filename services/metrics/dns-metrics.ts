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

/** Counts a query and its answer (by type and rcode), answered in `seconds`. */
export function countDns(msg: Buffer, reply: Buffer | undefined, seconds: number): void {
  const type = planQueryType(msg);
  metrics.dnsQueries.inc({ type });
  metrics.dnsAnswers.inc({ type, rcode: planRcode(reply) });
  metrics.dnsSeconds.observe(seconds);
}

/** Counts a query and its answer (by type and rcode) and times it. */
export async function observeDns(msg: Buffer, answer: () => Promise<Buffer | undefined>): Promise<Buffer | undefined> {
  const started = performance.now();
  const reply = await answer();
  countDns(msg, reply, (performance.now() - started) / 1000);
  return reply;
}
