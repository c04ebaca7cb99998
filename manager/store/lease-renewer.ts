import { Etcd3, Lease } from 'etcd3';

type KeepAliveStream = Awaited<ReturnType<Etcd3['leaseClient']['leaseKeepAlive']>>;

/** How long a renewal waits for etcd's answer before it counts as failed. */
const RENEW_TIMEOUT_MS = 5000;

/**
 * Renews etcd leases over one LeaseKeepAlive stream per client, opened on first use and again
 * after it fails. etcd3's `Lease.keepaliveOnce()` opens a new stream for every renewal: with a
 * thousand agents heartbeating each second, that was a thousand new etcd streams a second, and
 * etcd's unary calls behind them ran into their deadlines. etcd answers a stream's keepalives in
 * the order it got them, each naming its lease.
 */
export class LeaseRenewer {
  private stream?: Promise<KeepAliveStream>;
  /** Lease id -> the renewals waiting for etcd's answer, oldest first. */
  private readonly waiting = new Map<string, ((ttl: number | undefined) => void)[]>();

  constructor(private readonly client: Etcd3, private readonly timeoutMs = RENEW_TIMEOUT_MS) {}

  /** One keepalive for `lease`: its TTL in seconds as etcd answered it (0: it had run out), or undefined when etcd did not answer. */
  async renew(lease: Lease): Promise<number | undefined> {
    let id: string;
    let stream: KeepAliveStream;
    try {
      id = await lease.grant();
      stream = await this.open();
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

  /** Ends the stream; renewals still waiting get no answer. */
  close(): void {
    const stream = this.stream;
    this.stream = undefined;
    void stream?.then((s) => s.end(), () => undefined);
    this.failAll();
  }

  private open(): Promise<KeepAliveStream> {
    if (this.stream) return this.stream;
    const opening = this.client.leaseClient.leaseKeepAlive().then((s) => {
      const broken = () => {
        if (this.stream !== opening) return;
        this.stream = undefined;
        this.failAll();
      };
      s.on('data', (res: { ID: string; TTL: string }) => this.waiting.get(String(res.ID))?.[0]?.(Number(res.TTL)));
      s.on('error', broken);
      s.on('end', broken);
      return s;
    });
    opening.catch(() => {
      if (this.stream === opening) this.stream = undefined;
    });
    this.stream = opening;
    return opening;
  }

  private failAll(): void {
    for (const queue of [...this.waiting.values()]) for (const settle of [...queue]) settle(undefined);
  }
}
