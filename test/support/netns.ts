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

/** A TCP echo server on 0.0.0.0:port in the namespace at `netns` (a path) that keeps each connection open; resolves once it listens. */
export async function echoServer(netns: string, port: number): Promise<void> {
  const child = spawn('nsenter', [`--net=${netns}`, '--', process.execPath, '-e',
    `require('net').createServer((c) => c.pipe(c)).listen(${port}, '0.0.0.0', () => console.log('listening'));
     setTimeout(() => process.exit(2), 300000).unref();`,
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  servers.push(child);
  let out = '';
  child.stdout?.on('data', (d) => (out += d));
  await waitFor(`the echo server in ${netns} to listen`, () => out.includes('listening'), 10000);
}

/** One long-lived TCP connection from the namespace at `netns` (a path): each send() is a round trip over it. */
export interface KeptConnection {
  /** Sends a line and resolves with the line that comes back; rejects once the connection closed. */
  send(line: string): Promise<string>;
}

/** Opens a connection from the namespace at `netns` to ip:port and keeps it (the client is killed by killServers). */
export async function keepConnection(netns: string, ip: string, port: number): Promise<KeptConnection> {
  const child = spawn('nsenter', [`--net=${netns}`, '--', process.execPath, '-e',
    `const c = require('net').connect(${port}, '${ip}', () => console.log('connected'));
     c.setEncoding('utf8'); c.on('data', (d) => process.stdout.write(d));
     c.on('error', (e) => console.log('CLOSED ' + e.code)); c.on('close', () => { console.log('CLOSED'); process.exit(0); });
     process.stdin.on('data', (d) => c.write(d));`,
  ], { stdio: ['pipe', 'pipe', 'pipe'] });
  servers.push(child);
  let out = '';
  child.stdout?.on('data', (d) => (out += d));
  await waitFor(`a connection from ${netns} to ${ip}:${port}`, () => out.includes('connected') || out.includes('CLOSED'), 10000);
  if (!out.includes('connected')) throw new Error(`no connection from ${netns} to ${ip}:${port}: ${out.trim()}`);
  return {
    async send(line: string): Promise<string> {
      const from = out.length;
      child.stdin?.write(`${line}\n`);
      await waitFor(`the echo of ${line}`, () => out.slice(from).includes(`${line}\n`) || out.slice(from).includes('CLOSED'), 30000);
      if (out.slice(from).includes('CLOSED')) throw new Error(`the connection to ${ip}:${port} closed: ${out.slice(from).trim()}`);
      return line;
    },
  };
}
