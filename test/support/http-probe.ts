/**
 * Makes COUNT HTTP GETs to URL, each on a new TCP connection, CONCURRENCY at a time, and prints
 * one JSON line: how many succeeded, the errors by code, and the answers (a whoami server's host
 * name) by count.
 *
 *   node dist/test/support/http-probe.js URL [COUNT=300] [CONCURRENCY=10] [TIMEOUT_MS=3000]
 */
import { get } from 'node:http';

export interface ProbeResult {
  url: string;
  count: number;
  ok: number;
  failed: number;
  errors: Record<string, number>;
  by: Record<string, number>;
  ms: number;
}

function once(url: string, timeoutMs: number): Promise<{ body?: string; error?: string }> {
  return new Promise((done) => {
    const req = get(url, { agent: false, headers: { connection: 'close' }, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => done(res.statusCode === 200 ? { body: body.trim() } : { error: `HTTP${res.statusCode}` }));
      res.on('error', (e: NodeJS.ErrnoException) => done({ error: e.code ?? e.message }));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (e: NodeJS.ErrnoException) => done({ error: e.code ?? e.message }));
  });
}

async function probe(url: string, count: number, concurrency: number, timeoutMs: number): Promise<ProbeResult> {
  const result: ProbeResult = { url, count, ok: 0, failed: 0, errors: {}, by: {}, ms: 0 };
  const t0 = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      const r = await once(url, timeoutMs);
      if (r.body !== undefined) {
        result.ok++;
        result.by[r.body] = (result.by[r.body] ?? 0) + 1;
      } else {
        result.failed++;
        const code = r.error ?? 'unknown';
        result.errors[code] = (result.errors[code] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  result.ms = Math.round(performance.now() - t0);
  return result;
}

if (require.main === module) {
  const [url, count = '300', concurrency = '10', timeoutMs = '3000'] = process.argv.slice(2);
  if (!url) {
    process.stderr.write('usage: http-probe URL [COUNT] [CONCURRENCY] [TIMEOUT_MS]\n');
    process.exit(2);
  }
  probe(url, Number(count), Number(concurrency), Number(timeoutMs)).then((r) => process.stdout.write(`${JSON.stringify(r)}\n`));
}
