/**
 * Rtnetlink in another network namespace, through one long-lived helper process per namespace.
 *
 * A netlink socket belongs to the namespace of the thread that created it, and Node cannot
 * switch namespace (no setns) nor adopt a socket fd made elsewhere (the `netlink` addon always
 * calls socket() itself, and Node only passes net/dgram handles between processes). So
 * `nsenter --net=PATH node -e HELPER` starts a small Node program inside the namespace; it opens
 * an rtnetlink socket there and executes the same RtNetlinkSocket calls the local transport makes,
 * answering over the IPC channel. Node's 'advanced' IPC serialization carries the Buffers, Maps
 * and bigints of the messages unchanged, so the typed layer above cannot tell the difference.
 *
 * The same helper also binds sockets in its namespace and hands them over (the embedded DNS's
 * 127.0.0.11:53, dns/netns-sockets.ts), so a task being plugged in costs one helper process, not
 * one per driver and one for its resolver (Netlink.inNetns shares it between the handles open at
 * the same time on one namespace).
 *
 * The helper exits when the channel closes (close(), or this process dying), and the channel is
 * unreferenced while no request is in flight, so an idle handle never keeps the process alive.
 */
import { ChildProcess, spawn } from 'node:child_process';
import type { Socket as UdpSocket } from 'node:dgram';
import type { Server } from 'node:net';
import { NetlinkError } from './errors';
import { nsenterArgv } from '../netns-run';
import { RTNL_METHODS, RawReply, RtnlArgs, RtnlMethod, RtnlResult, RtnlTransport, REQUEST_TIMEOUT_MS } from './transport';

/** The helper's program: plain CommonJS run with `node -e`; argv[1] is the path of the netlink package. */
const HELPER_SOURCE = `
'use strict';
const fs = require('fs');
const dgram = require('dgram');
const net = require('net');
const cp = require('child_process');
const { createRtNetlink } = require(process.argv[1]);
const METHODS = new Set(JSON.parse(process.argv[2]));
const TIMEOUT = Number(process.argv[3]);
let rtnl;
try {
  rtnl = createRtNetlink();
} catch (err) {
  process.send({ ready: false, message: String(err && err.message || err), code: err && err.code });
  process.exit(1);
}
process.on('disconnect', () => process.exit(0));
// A socket bound here (UDP, or a TCP listener) goes to the parent with the reply; lo is brought up if it is down.
function bindUdp(addr, port, retry) {
  return new Promise((resolve, reject) => {
    const u = dgram.createSocket('udp4');
    u.once('error', (err) => {
      u.close();
      if (err.code === 'EADDRNOTAVAIL' && retry) {
        try { cp.execFileSync('ip', ['link', 'set', 'lo', 'up'], { stdio: 'ignore' }); } catch (e) { return reject(e); }
        return resolve(bindUdp(addr, port, false));
      }
      reject(err);
    });
    u.bind(port, addr, () => resolve(u));
  });
}
function listenTcp(addr, port) {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen({ host: addr, port, exclusive: true }, () => resolve(s));
  });
}
async function run(m) {
  switch (m.op) {
    case 'call':
      if (!METHODS.has(m.method)) throw new Error('unknown method ' + m.method);
      return rtnl[m.method](...m.args);
    case 'raw': {
      const [msgs] = await rtnl.socket.request(m.type, m.payload, { flags: m.flags, timeout: TIMEOUT });
      return msgs.map((x) => ({ type: x.type, data: x.data }));
    }
    case 'open':
      return fs.openSync(m.path, 'r');
    case 'closeFd':
      fs.closeSync(m.fd);
      return undefined;
    case 'bindUdp':
      return { handle: await bindUdp(m.addr, m.port, true) };
    case 'listenTcp':
      return { handle: await listenTcp(m.addr, m.port) };
    default:
      throw new Error('unknown op ' + m.op);
  }
}
process.on('message', (m) => {
  run(m).then(
    (result) => (result && result.handle ? process.send({ id: m.id, ok: true }, result.handle, () => { try { result.handle.close(); } catch (e) { /* closed by send */ } }) : process.send({ id: m.id, ok: true, result })),
    (err) => process.send({ id: m.id, ok: false, message: String(err && err.message || err), code: err && err.code }),
  );
});
process.send({ ready: true });
`;

type Request =
  | { op: 'call'; method: RtnlMethod; args: unknown[] }
  | { op: 'raw'; type: number; payload: Buffer; flags: number }
  | { op: 'open'; path: string }
  | { op: 'closeFd'; fd: number }
  | { op: 'bindUdp' | 'listenTcp'; addr: string; port: number };

interface Reply {
  id?: number;
  ok?: boolean;
  ready?: boolean;
  result?: unknown;
  message?: string;
  code?: string;
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
  timer: NodeJS.Timeout;
}

/** What the helper threw, rebuilt so that errnoOf() reads it as it would a local error. */
function remoteError(reply: Reply): Error {
  const err = new Error(reply.message ?? 'netns helper failed') as Error & { code?: string };
  if (reply.code) err.code = reply.code;
  return err;
}

const STDERR_CAP = 2048;
const START_TIMEOUT_MS = 10000;

export class HelperTransport implements RtnlTransport {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private exited: NetlinkError | undefined;

  private constructor(
    private readonly child: ChildProcess,
    private readonly netnsPath: string,
  ) {
    child.on('message', (reply: Reply, handle: unknown) => this.onReply(reply, handle));
    child.on('exit', (code, signal) => {
      this.exited = new NetlinkError(`netns helper for ${netnsPath}`, 'EPIPE', { detail: `exited with ${signal ?? `code ${code}`}` });
      for (const [id, p] of this.pending) {
        clearTimeout(p.timer);
        p.reject(this.exited);
        this.pending.delete(id);
      }
    });
    this.idle();
  }

  /** Starts the helper inside the namespace at `netnsPath` and waits until its socket is open. */
  static start(netnsPath: string): Promise<HelperTransport> {
    const operation = `opening netlink in netns ${netnsPath}`;
    const [cmd, ...args] = nsenterArgv(netnsPath, [process.execPath, '-e', HELPER_SOURCE, require.resolve('netlink'), JSON.stringify(RTNL_METHODS), String(REQUEST_TIMEOUT_MS)]);
    return new Promise((resolve, reject) => {
      let child: ChildProcess;
      try {
        child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], serialization: 'advanced' });
      } catch (err) {
        reject(new NetlinkError(operation, 'EUNKNOWN', { cause: err, detail: String(err) }));
        return;
      }
      let stderr = '';
      child.stderr?.setEncoding('utf8');
      child.stderr?.on('data', (chunk: string) => {
        if (stderr.length < STDERR_CAP) stderr += chunk.slice(0, STDERR_CAP - stderr.length);
      });
      const fail = (errno: string, detail: string, cause?: unknown) => {
        clearTimeout(timer);
        child.removeAllListeners('message');
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        reject(new NetlinkError(operation, errno, { cause, detail }));
      };
      const timer = setTimeout(() => fail('ETIMEDOUT', 'the helper did not start'), START_TIMEOUT_MS);
      child.once('error', (err: NodeJS.ErrnoException) => fail(err.code ?? 'EUNKNOWN', `cannot run nsenter: ${err.message}`, err));
      child.once('exit', (code, signal) => {
        const text = stderr.trim();
        // nsenter: "cannot open /run/netns/x: No such file or directory"
        const errno = /No such file/.test(text) ? 'ENOENT' : /Operation not permitted|Permission denied/.test(text) ? 'EPERM' : 'EUNKNOWN';
        fail(errno, text || `helper exited with ${signal ?? `code ${code}`}`);
      });
      child.once('message', (reply: Reply) => {
        if (!reply.ready) {
          fail(reply.code ?? 'EUNKNOWN', reply.message ?? 'the helper could not open a netlink socket');
          return;
        }
        clearTimeout(timer);
        child.removeAllListeners('exit');
        child.removeAllListeners('error');
        child.on('error', () => undefined);
        resolve(new HelperTransport(child, netnsPath));
      });
    });
  }

  call<M extends RtnlMethod>(method: M, ...args: RtnlArgs<M>): Promise<RtnlResult<M>> {
    return this.request({ op: 'call', method, args }) as Promise<RtnlResult<M>>;
  }

  raw(type: number, payload: Buffer, flags = 0): Promise<RawReply[]> {
    return this.request({ op: 'raw', type, payload, flags }) as Promise<RawReply[]>;
  }

  openNetns(path: string): Promise<number> {
    return this.request({ op: 'open', path }) as Promise<number>;
  }

  async closeFd(fd: number): Promise<void> {
    await this.request({ op: 'closeFd', fd });
  }

  bindUdp(addr: string, port: number): Promise<UdpSocket> {
    return this.request({ op: 'bindUdp', addr, port }) as Promise<UdpSocket>;
  }

  listenTcp(addr: string, port: number): Promise<Server> {
    return this.request({ op: 'listenTcp', addr, port }) as Promise<Server>;
  }

  /** The helper is still there to take requests. */
  get usable(): boolean {
    return !this.exited && this.child.connected;
  }

  close(): void {
    if (this.child.connected) this.child.disconnect();
    // The helper exits on disconnect; make sure of it should it be stuck.
    const kill = setTimeout(() => this.child.exitCode === null && this.child.signalCode === null && this.child.kill('SIGKILL'), 2000);
    kill.unref();
  }

  private request(req: Request): Promise<unknown> {
    if (this.exited) return Promise.reject(this.exited);
    if (!this.child.connected) return Promise.reject(new NetlinkError(`netns helper for ${this.netnsPath}`, 'EPIPE', { detail: 'closed' }));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        this.idle();
        reject(new NetlinkError(`netns helper for ${this.netnsPath}`, 'ETIMEDOUT'));
      }, REQUEST_TIMEOUT_MS + 1000);
      this.pending.set(id, { resolve, reject, timer });
      this.busy();
      this.child.send({ id, ...req }, (err) => {
        if (!err) return;
        const p = this.pending.get(id);
        if (!p) return;
        clearTimeout(p.timer);
        this.pending.delete(id);
        this.idle();
        reject(new NetlinkError(`netns helper for ${this.netnsPath}`, 'EPIPE', { cause: err }));
      });
    });
  }

  private onReply(reply: Reply, handle?: unknown): void {
    if (reply.id === undefined) return;
    const p = this.pending.get(reply.id);
    if (!p) return;
    clearTimeout(p.timer);
    this.pending.delete(reply.id);
    this.idle();
    if (reply.ok) p.resolve(handle ?? reply.result);
    else p.reject(remoteError(reply));
  }

  private busy(): void {
    this.child.ref();
    this.child.channel?.ref();
  }

  private idle(): void {
    if (this.pending.size > 0) return;
    this.child.unref();
    this.child.channel?.unref();
    (this.child.stderr as { unref?: () => void } | null)?.unref?.();
  }
}
