/**
 * Helpers for tests that build network namespaces by hand (the network drivers' integration
 * tests): run a command, read `ip -j`, add a namespace, wait, and a TCP echo server and probe
 * that run inside a namespace. Servers are killed by `killServers` (call it in afterAll).
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';

export const netnsPath = (name: string) => `/run/netns/${name}`;

export function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** `ip -j [-n NS] ARGS`, parsed; [] when the object does not exist. */
export function ipj(args: string[], ns?: string): any[] {
  try {
    const out = run('ip', [...(ns ? ['-n', ns] : []), '-j', ...args]).trim();
    return out ? JSON.parse(out) : [];
  } catch {
    return [];
  }
}

export function addNetns(name: string): void {
  run('ip', ['netns', 'add', name]);
  run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
}

export async function waitFor<T>(what: string, fn: () => T | undefined | false, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A TCP round trip from namespace `ns` to ip:port: the reply, or 'error: ...' / 'timeout'. */
export function tcp(ns: string, ip: string, port: number, timeoutMs = 3000): string {
  return run('ip', [
    'netns', 'exec', ns, process.execPath, '-e',
    `const c = require('net').connect(${port}, '${ip}', () => c.write('ping'));
     let got = ''; c.on('data', (d) => (got += d)); c.on('end', () => { console.log(got); process.exit(0); });
     c.on('error', (e) => { console.log('error: ' + e.code); process.exit(0); });
     setTimeout(() => { console.log('timeout'); process.exit(0); }, ${timeoutMs});`,
  ]).trim();
}

const servers: ChildProcess[] = [];

/** An echo server on 0.0.0.0:port in `ns` that answers 'pong:<name>:<peer address>'; resolves once it listens. */
export async function server(ns: string, name: string, port: number): Promise<void> {
  const child = spawn('ip', [
    'netns', 'exec', ns, process.execPath, '-e',
    `require('net').createServer((c) => c.on('data', () => c.end('pong:${name}:' + c.remoteAddress))).listen(${port}, '0.0.0.0', () => console.log('listening'));
     setTimeout(() => process.exit(2), 300000).unref();`,
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  servers.push(child);
  let out = '';
  child.stdout?.on('data', (d) => (out += d));
  await waitFor(`the server in ${ns} to listen`, () => out.includes('listening'), 10000);
}

export function killServers(): void {
  for (const c of servers.splice(0)) c.kill('SIGKILL');
}

/** Deletes namespaces a test made; ones it never got to make are skipped. */
export function deleteNetns(names: Iterable<string>): void {
  for (const ns of names) {
    try {
      run('ip', ['netns', 'del', ns]);
    } catch {
      // not made
    }
  }
}
