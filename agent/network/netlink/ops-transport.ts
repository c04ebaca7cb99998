/**
 * Rtnetlink in another network namespace through the agent's one namespace helper
 * (runtime/netns-ops.ts), with no process of its own: the `netlink` package formats each request
 * and parses each reply here, as it does for a socket of this process, and the helper sends the
 * bytes on a socket it makes inside the namespace for that request. The package's NetlinkSocket
 * (sequence numbers, multipart replies, errors) and RtNetlinkSocket (the typed calls) sit on a
 * small stand-in for its raw socket whose send() is a request to the helper and whose 'message'
 * is the helper's reply, so the typed layer (index.ts) cannot tell it from a local socket.
 *
 * The namespace is held open by the helper from open() to close() (a handle names the namespace
 * it was opened on, not whatever its path names later). Namespace files opened for
 * IFLA_NET_NS_FD are opened in the helper, whose requests use them; the resolver's sockets are
 * bound there and handed over (dns/netns-sockets.ts).
 */
import { EventEmitter } from 'node:events';
import type { Socket as UdpSocket } from 'node:dgram';
import type { Server } from 'node:net';
import { NetlinkSocket, RtNetlinkSocket } from 'netlink';
import { NetnsOps, PinnedNetns, netnsOps } from '../../runtime/netns-ops';
import { RawReply, RtnlArgs, RtnlMethod, RtnlResult, RtnlTransport, REQUEST_TIMEOUT_MS } from './transport';

/** What NetlinkSocket needs of its raw socket: send() goes to the helper, the reply comes back as 'message'. */
class HelperRawSocket extends EventEmitter {
  constructor(private readonly netns: PinnedNetns, private readonly ops: NetnsOps) {
    super();
  }

  send(data: Uint8Array | Uint8Array[], _options: unknown, callback?: (error?: Error) => void): void {
    const message = Buffer.concat((Array.isArray(data) ? data : [data]).map((d) => Buffer.from(d.buffer, d.byteOffset, d.byteLength)));
    this.ops.rtnl(this.netns, message).then(
      (reply) => {
        callback?.();
        this.emit('message', reply, {});
      },
      (err: Error) => (callback ? callback(err) : this.emit('error', err)),
    );
  }

  address(): { port: number } {
    return { port: 0 };
  }

  ref(): void {}
  unref(): void {}
  close(): void {
    this.ops.unpin(this.netns).catch(() => undefined);
  }
}

export class OpsTransport implements RtnlTransport {
  private readonly nl: NetlinkSocket;
  private readonly rtnl: RtNetlinkSocket;

  private constructor(private readonly netns: PinnedNetns, private readonly ops: NetnsOps) {
    this.nl = new NetlinkSocket(new HelperRawSocket(netns, ops) as never);
    this.rtnl = new RtNetlinkSocket(this.nl);
  }

  /**
   * A transport to the namespace at `path` as it is now: the helper holds it open until close(),
   * so requests reach that namespace even once its name is deleted or names another (as a
   * process inside it would).
   */
  static async open(path: string, ops: NetnsOps = netnsOps): Promise<OpsTransport> {
    return new OpsTransport(await ops.pin(path), ops);
  }

  call<M extends RtnlMethod>(method: M, ...args: RtnlArgs<M>): Promise<RtnlResult<M>> {
    const fn = this.rtnl[method] as (...a: unknown[]) => Promise<RtnlResult<M>>;
    return fn.apply(this.rtnl, args);
  }

  async raw(type: number, payload: Buffer, flags = 0): Promise<RawReply[]> {
    const [msgs] = await this.nl.request(type, payload, { flags, timeout: REQUEST_TIMEOUT_MS });
    return msgs.map((m) => ({ type: m.type, data: m.data }));
  }

  openNetns(path: string): Promise<number> {
    return this.ops.openFd(path);
  }

  closeFd(fd: number): Promise<void> {
    return this.ops.closeFd(fd);
  }

  bindUdp(addr: string, port: number): Promise<UdpSocket> {
    return this.ops.bindUdp(this.netns, addr, port);
  }

  listenTcp(addr: string, port: number): Promise<Server> {
    return this.ops.listenTcp(this.netns, addr, port);
  }

  close(): void {
    this.ops.unpin(this.netns).catch(() => undefined);
  }
}
