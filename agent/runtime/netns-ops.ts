/**
 * Work inside network namespaces without a process per operation: nft transactions and listings,
 * rtnetlink requests, sysctl writes, a link set up and sockets bound there, in any namespace by
 * its path (a /run/netns/NAME, a task's /proc/PID/ns/net) or in this process's own.
 *
 * It all goes to one long-lived native helper (native/netns-ops.c, built into dist/native by `npm
 * run build`), started on first use: it enters the namespace with setns(2), does the operation
 * (nft rulesets through libnftables, what the nft CLI is made of: the same parser, one
 * transaction, the same output and error text) and comes back. So a rule change is one write to
 * a pipe and one reply, where `nsenter --net=PATH nft -f -` cost two process starts (0.3-0.6 s
 * each on a loaded host, on the path from a task's exit to the rules that drop it), and plugging
 * a task in needs no Node helper process in its namespace (netlink/ops-transport.ts). Sockets
 * bound in a namespace come over Node's IPC channel as handles, ready to serve. The helper does
 * one request at a time, in order; most take well under a millisecond.
 *
 * The helper exits when its stdin closes (this process ends); its pipes are unreferenced while no
 * request is in flight, so it never keeps the daemon alive. A helper that died (or did not answer
 * in time, and was killed) is started again by the next request.
 */
import { ChildProcess, spawn } from 'node:child_process';
import type { Socket as UdpSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import type { Server } from 'node:net';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import { SwarmletError, internal, notFound } from '../../services/common/errors';
import { metrics } from '../../services/metrics/metrics';

export const NETNS_OPS_NAME = 'swarmlet-netns-ops';
const REQUEST_TIMEOUT_MS = 15000;
const HEADER = 16;

/** The built helper: <repo>/dist/native/swarmlet-netns-ops, from the sources or from dist/. */
export function netnsOpsBinary(): string {
  for (let dir = __dirname; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'native'))) return join(dir, 'dist', 'native', NETNS_OPS_NAME);
    if (dirname(dir) === dir) return join(__dirname, NETNS_OPS_NAME);
  }
}

/** errno number -> name ('ENOENT'), as Node's own errors carry them. */
const ERRNO_NAMES = new Map(Object.entries(constants.errno).map(([name, n]) => [n, name]));

const OPS = { nft: 'n', rtnl: 'r', write: 'w', up: 'u', udp: 'b', tcp: 'l', open: 'o', close: 'c' } as const;
type Op = keyof typeof OPS;

/**
 * A namespace held open by the helper (pin()): requests made with it go to that very namespace,
 * also after its name was deleted or made again (what a handle on a replaced overlay sandbox
 * cleans up). Good only with the helper process that opened it.
 */
export interface PinnedNetns {
  readonly path: string;
  readonly fd: number;
  readonly generation: number;
}

/** Where a request goes: a namespace file's path, a pinned namespace, or (undefined) this process's own. */
export type NetnsTarget = string | PinnedNetns | undefined;

interface Pending {
  what: string;
  resolve: (out: Buffer, handle?: unknown) => void;
  reject: (err: Error) => void;
  /** A socket request: the handle, once it came over the IPC channel. */
  handle?: unknown;
  /** A socket request: the reply, once it came (the handle may come after it). */
  replied?: Buffer;
  wantsHandle: boolean;
}

/** The namespace helper (see the top of this file). */
export class NetnsOps {
  private child?: ChildProcess;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private buffer: Buffer = Buffer.alloc(0);
  private timer?: NodeJS.Timeout;
  /** Counts helper processes started: a pinned namespace belongs to one. */
  private generation = 0;

  constructor(private readonly binary: () => string = netnsOpsBinary) {}

  /**
   * Runs nft commands (a ruleset text for `nft -f`, or one command such as `list table ip T`) in
   * the namespace at `netns` (this process's when undefined), as one transaction; resolves with
   * what nft printed. Rejects with nft's own error text.
   */
  async nft(netns: string | undefined, commands: string): Promise<string> {
    const what = `nft ${commands.includes('\n') ? '-f -' : commands.trim()}`;
    return (await this.request('nft', netns, Buffer.from(commands), what)).toString();
  }

  /** One rtnetlink request (a formatted netlink message) in the namespace; resolves with the kernel's reply messages, up to the ACK or the end of the dump. */
  rtnl(netns: NetnsTarget, message: Buffer): Promise<Buffer> {
    return this.request('rtnl', netns, message, 'netlink request');
  }

  /** Writes `value` to `path` opened inside the namespace (a /proc/sys/net sysctl is that namespace's). */
  async write(netns: string | undefined, path: string, value: string): Promise<void> {
    await this.request('write', netns, Buffer.from(`${path}\n${value}`), `writing ${path}`);
  }

  /** Sets the link named `name` up in the namespace (nothing when it is up already). */
  async linkUp(netns: string | undefined, name: string): Promise<void> {
    await this.request('up', netns, Buffer.from(name), `ip link set ${name} up`);
  }

  /** A UDP socket bound to addr:port inside the namespace (its lo set up first), for this process to serve. */
  async bindUdp(netns: NetnsTarget, addr: string, port: number): Promise<UdpSocket> {
    return (await this.socket('udp', netns, addr, port)) as UdpSocket;
  }

  /** A TCP listener on addr:port inside the namespace (its lo set up first), for this process to serve. */
  async listenTcp(netns: NetnsTarget, addr: string, port: number): Promise<Server> {
    return (await this.socket('tcp', netns, addr, port)) as Server;
  }

  /** Opens a file in the helper (a namespace file, for a request that names one by fd); its fd number there. */
  async openFd(path: string): Promise<number> {
    return Number((await this.request('open', undefined, Buffer.from(path), `opening ${path}`)).toString());
  }

  async closeFd(fd: number): Promise<void> {
    await this.request('close', undefined, Buffer.from(String(fd)), `closing fd ${fd}`);
  }

  /** Holds the namespace at `path` open in the helper, for requests that must reach that very namespace; unpin() lets it go. */
  async pin(path: string): Promise<PinnedNetns> {
    const fd = await this.openFd(path);
    return { path, fd, generation: this.generation };
  }

  /** Lets go of a pinned namespace (nothing when the helper that held it is gone). */
  async unpin(p: PinnedNetns): Promise<void> {
    if (p.generation === this.generation && this.child) await this.closeFd(p.fd);
  }

  /** The helper's pid, while it runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Ends the helper (the next request starts another). */
  close(): void {
    const child = this.child;
    this.child = undefined;
    child?.stdin?.end();
    if (child?.connected) child.disconnect();
  }

  private socket(op: 'udp' | 'tcp', netns: NetnsTarget, addr: string, port: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.send(op, netns, Buffer.from(`${addr}\n${port}`), `${op === 'udp' ? 'binding udp' : 'listening on tcp'} ${addr}:${port}`, true, (_out, handle) => resolve(handle), reject);
    });
  }

  private request(op: Op, netns: NetnsTarget, body: Buffer, what: string): Promise<Buffer> {
    return new Promise((resolve, reject) => this.send(op, netns, body, what, false, resolve, reject));
  }

  private send(op: Op, netns: NetnsTarget, body: Buffer, what: string, wantsHandle: boolean, resolve: Pending['resolve'], reject: Pending['reject']): void {
    const pinned = typeof netns === 'object' ? netns : undefined;
    const where = `${what}${netns ? ` in ${pinned ? pinned.path : netns}` : ''}`;
    if (pinned && (pinned.generation !== this.generation || !this.child)) {
      // Its fd was the helper's that is gone: the namespace must be opened again.
      reject(withErrno(internal(`${where}: the namespace helper was started again since the namespace was opened`), 'EBADF'));
      return;
    }
    let child: ChildProcess;
    try {
      child = this.helper();
    } catch (err) {
      reject(internal(`${where}: ${(err as Error).message}`, err));
      return;
    }
    const id = this.nextId;
    this.nextId = (this.nextId % 0xffffffff) + 1;
    const ns = Buffer.from(pinned ? `fd:${pinned.fd}` : typeof netns === 'string' ? netns : '');
    const head = Buffer.alloc(HEADER);
    head.writeUInt32LE(id, 0);
    head.writeUInt32LE(OPS[op].charCodeAt(0), 4);
    head.writeUInt32LE(ns.length, 8);
    head.writeUInt32LE(body.length, 12);
    this.pending.set(id, { what: where, resolve, reject, wantsHandle });
    this.busy(child);
    child.stdin!.write(Buffer.concat([head, ns, body]));
  }

  private helper(): ChildProcess {
    if (this.child) return this.child;
    const binary = this.binary();
    if (!existsSync(binary)) throw new Error(`${binary} is missing: run 'npm run build' (it needs gcc and nftables)`);
    // The IPC channel carries the sockets bound in namespaces (as Node handles); requests and replies go over stdin and stdout.
    const child = spawn(binary, [], { stdio: ['pipe', 'pipe', 'inherit', 'ipc'] });
    metrics.processesStarted.inc({ program: NETNS_OPS_NAME });
    this.child = child;
    this.generation += 1;
    this.buffer = Buffer.alloc(0);
    const gone = (why: string) => {
      if (this.child === child) this.child = undefined;
      this.failAll(internal(`the namespace helper ${why}`));
    };
    child.once('error', (err) => gone(`could not run: ${err.message}`));
    child.once('exit', (code, signal) => gone(`exited (${signal ?? `code ${code}`})`));
    child.stdin!.on('error', () => undefined);
    child.stdout!.on('data', (chunk: Buffer) => this.onData(chunk));
    child.on('message', (msg: { netnsOps?: number }, handle: unknown) => this.onHandle(msg, handle));
    this.idle(child);
    return child;
  }

  private onHandle(msg: { netnsOps?: number }, handle: unknown): void {
    const p = msg && typeof msg.netnsOps === 'number' ? this.pending.get(msg.netnsOps) : undefined;
    if (!p) {
      (handle as { close?: () => void } | undefined)?.close?.();
      return;
    }
    p.handle = handle;
    if (p.replied) this.settle(msg.netnsOps!, p, p.replied);
  }

  private onData(chunk: Buffer): void {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    while (this.buffer.length >= HEADER) {
      const outLen = this.buffer.readUInt32LE(8);
      const errLen = this.buffer.readUInt32LE(12);
      if (this.buffer.length < HEADER + outLen + errLen) return;
      const id = this.buffer.readUInt32LE(0);
      const code = this.buffer.readInt32LE(4);
      const out = Buffer.from(this.buffer.subarray(HEADER, HEADER + outLen));
      const err = this.buffer.toString('utf8', HEADER + outLen, HEADER + outLen + errLen);
      this.buffer = this.buffer.subarray(HEADER + outLen + errLen);
      const p = this.pending.get(id);
      if (!p) continue;
      if (code !== 0) {
        this.pending.delete(id);
        p.reject(this.failure(p.what, code, err));
      } else if (p.wantsHandle && p.handle === undefined) {
        // The socket is on its way over the IPC channel.
        p.replied = out;
      } else {
        this.settle(id, p, out);
      }
    }
    if (this.child) this.idle(this.child);
  }

  private settle(id: number, p: Pending, out: Buffer): void {
    this.pending.delete(id);
    p.resolve(out, p.handle);
    if (this.child) this.idle(this.child);
  }

  private failure(what: string, code: number, text: string): SwarmletError {
    const message = `${what} failed: ${text.trim() || `error ${code}`}`;
    // -1 is nft's own refusal; other codes are the errno of opening or entering the namespace, or of the operation.
    const errno = code > 0 ? ERRNO_NAMES.get(code) : undefined;
    const err = errno === 'ENOENT' ? notFound(message) : internal(message);
    return errno ? withErrno(err, errno) : err;
  }

  private failAll(err: SwarmletError): void {
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(withErrno(internal(`${p.what}: ${err.message}`, err), 'EPIPE'));
    }
    this.clearTimer();
  }

  /** While a request is in flight: the helper is referenced, and one that does not answer in time is killed. */
  private busy(child: ChildProcess): void {
    child.ref();
    (child.stdout as { ref?: () => void } | null)?.ref?.();
    child.channel?.ref();
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.child === child) this.child = undefined;
      child.kill('SIGKILL');
      this.failAll(internal(`the namespace helper did not answer within ${REQUEST_TIMEOUT_MS / 1000} s`));
    }, REQUEST_TIMEOUT_MS);
  }

  private idle(child: ChildProcess): void {
    if (this.pending.size > 0) {
      // Something was answered: the clock starts again for the rest.
      this.timer?.refresh();
      return;
    }
    this.clearTimer();
    child.unref();
    (child.stdout as { unref?: () => void } | null)?.unref?.();
    (child.stdin as { unref?: () => void } | null)?.unref?.();
    child.channel?.unref();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** `err` with the errno name (`code`, as Node's own errors carry it) that callers tell a lost helper or namespace by. */
function withErrno(err: SwarmletError, code: string): SwarmletError {
  return Object.assign(err, { code });
}

/** This process's namespace helper. */
export const netnsOps = new NetnsOps();
