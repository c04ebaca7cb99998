/**
 * Asks SERVER for NAME's A records every EVERY_MS ms over UDP, and prints one JSON line each time
 * the answer changes: {"at": Date.now() of the answer, "rcode": ..., "addrs": [...sorted]}. A query
 * unanswered within 500 ms prints {"at", "error": "timeout"} once per streak. Runs until killed. Run
 * it inside a task's network namespace (nsenter --net=/proc/PID/ns/net) to watch its resolver.
 *
 *   node dist/test/support/dns-watch.js SERVER NAME [EVERY_MS=10]
 */
import { createSocket } from 'node:dgram';
import { decode, encode } from 'dns-packet';

const TIMEOUT_MS = 500;

function main(): void {
  const [server, name, every = '10'] = process.argv.slice(2);
  if (!server || !name) {
    process.stderr.write('usage: dns-watch SERVER NAME [EVERY_MS]\n');
    process.exit(2);
  }
  const sock = createSocket('udp4');
  let id = 0;
  let pending: { id: number; timer: NodeJS.Timeout } | undefined;
  let last = '';
  const print = (line: string) => {
    if (line === last) return;
    last = line;
    process.stdout.write(`${JSON.stringify({ at: Date.now(), ...JSON.parse(line) })}\n`);
  };
  const ask = () => {
    if (pending) return;
    id = (id + 1) & 0xffff;
    const q = encode({ type: 'query', id, flags: 0x0100, questions: [{ type: 'A', name }] });
    pending = { id, timer: setTimeout(() => { pending = undefined; print(JSON.stringify({ error: 'timeout' })); }, TIMEOUT_MS) };
    sock.send(q, 53, server);
  };
  sock.on('message', (msg) => {
    let p: ReturnType<typeof decode>;
    try {
      p = decode(msg);
    } catch {
      return;
    }
    if (!pending || p.id !== pending.id) return;
    clearTimeout(pending.timer);
    pending = undefined;
    const addrs = (p.answers ?? []).flatMap((a) => (a.type === 'A' ? [String(a.data)] : [])).sort();
    print(JSON.stringify({ rcode: (p as { rcode?: string }).rcode ?? 'NOERROR', addrs }));
  });
  sock.bind(0, () => setInterval(ask, Number(every)));
  process.on('SIGTERM', () => process.exit(0));
}

if (require.main === module) main();
