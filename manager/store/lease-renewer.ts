import { Etcd3, Lease } from 'etcd3';

type KeepAliveStream = Awaited<ReturnType<Etcd3['leaseClient']['leaseKeepAlive']>>;

/** How long a renewal waits for etcd's answer before it counts as failed. */
const RENEW_TIMEOUT_MS = 5000;

/**
 * How many keepalive streams a client keeps. etcd answers the keepalives of one stream one after
 * another (each renewal waits for its applied index): on a single stream, a thousand renewals a
 * second under a heavy write load fell behind until leases ran out.
 */
export const RENEW_STREAMS = 8;

/**
 * Renews etcd leases over a few LeaseKeepAlive streams per client (a lease always on the same
 * one), each opened on first use and again after it fails. etcd3's `Lease.keepaliveOnce()` opens
 * a new stream for every renewal: with a thousand agents heartbeating each second, that was a
 * thousand new etcd streams a second, and etcd's unary calls behind them ran into their
 * deadlines. etcd answers a stream's keepalives in the order it got them, each naming its lease.
 */
export class LeaseRenewer {
  private readonly streams: (Promise<KeepAliveStream> | undefined)[];
  /** Lease id -> the renewals waiting for etcd's answer, oldest first. */
  private readonly waiting = new Map<string, ((ttl: number | undefined) => void)[]>();

  constructor(private readonly client: Etcd3, private readonly timeoutMs = RENEW_TIMEOUT_MS, streams = RENEW_STREAMS) {
    this.streams = new Array(streams).fill(undefined);
  }

  /** One keepalive for `lease`: its TTL in seconds as etcd answered it (0: it had run out), or undefined when etcd did not answer. */
  async renew(lease: Lease): Promise<number | undefined> {
    let id: string;
    let stream: KeepAliveStream;
    try {
      id = await lease.grant();
      stream = await this.open(this.streamOf(id));
    } catch {
      return undefined;
    }
    return new Promise((resolve) => {
      const queue = this.waiting.get(id) ?? [];
      this.waiting.set(id, queue);
      const timer = setTimeout(() => settle(undefined), this.timeoutMs);
      timer.unref();
      const settle = (ttl: number | undefined) => {
        clearTimeout(timer);
        const q = this.waiting.get(id);
        const i = q?.indexOf(settle) ?? -1;
        if (i < 0) return; // already answered
        q!.splice(i, 1);
        if (q!.length === 0) this.waiting.delete(id);
        resolve(ttl);
      };
      queue.push(settle);
      try {
        stream.write({ ID: id });
      } catch {
        settle(undefined);
      }
    });
  }

  /** Ends the streams; renewals still waiting get no answer. */
  close(): void {
    for (const [i, stream] of this.streams.entries()) {
      this.streams[i] = undefined;
      void stream?.then((s) => s.end(), () => undefined);
    }
    this.failAll();
  }

  private open(i: number): Promise<KeepAliveStream> {
    const open = this.streams[i];
    if (open) return open;
    const opening = this.client.leaseClient.leaseKeepAlive().then((s) => {
      // A broken stream fails the renewals waiting on it (the next heartbeat opens it again).
      const broken = () => {
        if (this.streams[i] !== opening) return;
        this.streams[i] = undefined;
        this.failAll(i);
      };
      s.on('data', (res: { ID: string; TTL: string }) => this.waiting.get(String(res.ID))?.[0]?.(Number(res.TTL)));
      s.on('error', broken);
      s.on('end', broken);
      return s;
    });
    opening.catch(() => {
      if (this.streams[i] === opening) this.streams[i] = undefined;
    });
    this.streams[i] = opening;
    return opening;
  }

  /** The stream a lease's renewals go on: always the same one, so that etcd answers them in order. */
  private streamOf(id: string): number {
    return Number(BigInt(id) % BigInt(this.streams.length));
  }

  /** Renewals waiting on stream `i` (on every stream when undefined) get no answer. */
  private failAll(i?: number): void {
    for (const [id, queue] of [...this.waiting.entries()]) {
      if (i === undefined || this.streamOf(id) === i) for (const settle of [...queue]) settle(undefined);
    }
  }
}
