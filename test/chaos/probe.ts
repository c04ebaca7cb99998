/**
 * The chaos suite's steady client: GETs each URL one after another (a new connection each, a
 * timeout of TIMEOUT_MS, PAUSE_MS between two), and prints one JSON line per second: the second
 * (unix time) and, per URL, how many requests ended ok (HTTP 200) and failed in it. Runs until
 * killed; run it inside a lab namespace (a client, or a task's net and mount namespaces so that a
 * service name resolves through the embedded DNS).
 *
 *   node dist/test/chaos/probe.js URL...
 */
import { get } from 'node:http';

const TIMEOUT_MS = 1000;
const PAUSE_MS = 100;

function once(url: string): Promise<boolean> {
  return new Promise((done) => {
    const req = get(url, { agent: false, headers: { connection: 'close' }, timeout: TIMEOUT_MS }, (res) => {
      res.resume();
      res.on('end', () => done(res.statusCode === 200));
      res.on('error', () => done(false));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => done(false));
  });
}

function main(): void {
  const urls = process.argv.slice(2);
  if (urls.length === 0) {
    process.stderr.write('usage: probe URL...\n');
    process.exit(2);
  }
  const counts = new Map<number, Record<string, [number, number]>>();
  const add = (url: string, ok: boolean) => {
    const t = Math.floor(Date.now() / 1000);
    const r = counts.get(t) ?? {};
    const c = r[url] ?? [0, 0];
    c[ok ? 0 : 1]++;
    r[url] = c;
    counts.set(t, r);
  };
  for (const url of urls) {
    void (async () => {
      for (;;) {
        add(url, await once(url));
        await new Promise((r) => setTimeout(r, PAUSE_MS));
      }
    })();
  }
  // Each second, the seconds that are over: a request is counted in the second it ended.
  setInterval(() => {
    const now = Math.floor(Date.now() / 1000);
    for (const [t, r] of [...counts].sort((a, b) => a[0] - b[0])) {
      if (t >= now) continue;
      process.stdout.write(`${JSON.stringify({ t, r })}\n`);
      counts.delete(t);
    }
  }, 1000);
  process.on('SIGTERM', () => process.exit(0));
}

if (require.main === module) main();
