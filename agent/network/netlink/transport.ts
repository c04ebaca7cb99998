/**
 * How requests reach an rtnetlink socket: directly (a socket of this process, so in this process's
 * network namespace) or through the agent's namespace helper, which sends them from inside
 * another namespace (ops-transport.ts). The
 * Netlink class speaks only this interface, so every typed operation works the same in both.
 */
import { closeSync, openSync } from 'node:fs';
import { RtNetlinkSocket, createRtNetlink } from 'netlink';

/** The RtNetlinkSocket methods the layer uses; the helper accepts these and no others. */
export const RTNL_METHODS = [
  'getLink',
  'getLinks',
  'newLink',
  'setLink',
  'delLink',
  'getAddresses',
  'newAddress',
  'delAddress',
  'getRoutes',
  'newRoute',
  'delRoute',
  'getNeighbors',
  'newNeighbor',
  'delNeighbor',
] as const;

export type RtnlMethod = (typeof RTNL_METHODS)[number];
export type RtnlArgs<M extends RtnlMethod> = Parameters<RtNetlinkSocket[M]>;
export type RtnlResult<M extends RtnlMethod> = Awaited<ReturnType<RtNetlinkSocket[M]>>;

/** A reply of a raw request: message type and payload. */
export interface RawReply {
  type: number;
  data: Buffer;
}

export interface RtnlTransport {
  /** Calls one RtNetlinkSocket method with these arguments, in the transport's namespace. */
  call<M extends RtnlMethod>(method: M, ...args: RtnlArgs<M>): Promise<RtnlResult<M>>;
  /** A request of a type the package does not parse (RTM_GETNSID); replies as raw payloads. */
  raw(type: number, payload: Buffer, flags?: number): Promise<RawReply[]>;
  /** Opens a namespace file in the process that owns the socket; the fd is valid in its requests. */
  openNetns(path: string): Promise<number>;
  closeFd(fd: number): Promise<void>;
  close(): void;
}

/** Requests that get no answer within this time fail with ETIMEDOUT instead of hanging a reconcile. */
export const REQUEST_TIMEOUT_MS = 15000;

export class LocalTransport implements RtnlTransport {
  private readonly socket: RtNetlinkSocket;

  constructor() {
    this.socket = createRtNetlink();
  }

  call<M extends RtnlMethod>(method: M, ...args: RtnlArgs<M>): Promise<RtnlResult<M>> {
    const fn = this.socket[method] as (...a: unknown[]) => Promise<RtnlResult<M>>;
    return fn.apply(this.socket, args);
  }

  async raw(type: number, payload: Buffer, flags = 0): Promise<RawReply[]> {
    const [msgs] = await this.socket.socket.request(type, payload, { flags, timeout: REQUEST_TIMEOUT_MS });
    return msgs.map((m) => ({ type: m.type, data: m.data }));
  }

  async openNetns(path: string): Promise<number> {
    return openSync(path, 'r');
  }

  async closeFd(fd: number): Promise<void> {
    closeSync(fd);
  }

  close(): void {
    this.socket.socket.close();
  }
}
