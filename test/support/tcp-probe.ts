/**
 * A TCP probe for load-balancing tests: from inside a network namespace, N connections one after
 * another to ip:port, each sending 'ping' and reading the reply to the end (the echo servers of
 * test/support/netns.ts answer 'pong:<name>:<peer address>'). Resolves with how many connections
 * got each reply, failures counted as 'error: CODE' or 'timeout'.
 */
import { spawn } from 'node:child_process';

export async function probeTcp(netns: string, ip: string, port: number, count: number, timeoutMs = 2000): Promise<Record<string, number>> {
  const script = `
    const net = require('net');
    const counts = {};
    const one = () => new Promise((resolve) => {
      let got = '';
      let done = false;
      const finish = (what) => { if (!done) { done = true; c.destroy(); counts[what] = (counts[what] || 0) + 1; resolve(); } };
      const c = net.connect(${port}, '${ip}', () => c.write('ping'));
      c.on('data', (d) => (got += d));
      c.on('end', () => finish(got));
      c.on('error', (e) => finish('error: ' + e.code));
      c.setTimeout(${timeoutMs}, () => finish('timeout'));
    });
    (async () => { for (let i = 0; i < ${count}; i++) await one(); console.log(JSON.stringify(counts)); })();`;
  const child = spawn('nsenter', [`--net=${netns}`, '--', process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`probe in ${netns} failed (exit ${code}): ${err.trim()}`);
  return JSON.parse(out);
}

/** The responders' names in probe counts ('pong:<name>:<peer>' -> name), with their counts. */
export function byResponder(counts: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [reply, n] of Object.entries(counts)) {
    const name = reply.startsWith('pong:') ? reply.split(':')[1] : reply;
    out[name] = (out[name] ?? 0) + n;
  }
  return out;
}
