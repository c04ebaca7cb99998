/**
 * What an etcd client reads, counted by a gRPC interceptor given to it (`grpcOptions.interceptors`):
 * the bytes of the KV service's replies and of watch events, the KV calls in flight, and the
 * first call that failed with RESOURCE_EXHAUSTED (a reply over the client's 4 MiB limit).
 */
import * as grpc from '@grpc/grpc-js';
import { sleep } from '../test/lab/process-tree';

/** Sums the bytes (key and value bytes, and any other bytes or string fields) of a decoded reply. */
export function payloadBytes(v: unknown): number {
  if (v === null || v === undefined) return 0;
  if (Buffer.isBuffer(v)) return v.length;
  if (typeof v === 'string') return v.length;
  if (Array.isArray(v)) return v.reduce((sum: number, x) => sum + payloadBytes(x), 0);
  if (typeof v === 'object') {
    let sum = 0;
    for (const x of Object.values(v as Record<string, unknown>)) sum += payloadBytes(x);
    return sum;
  }
  return 0;
}

export interface ReadCounts {
  /** KV calls (Range, Txn, Put, ...) started, and the bytes of their replies. */
  kvCalls: number;
  kvBytes: number;
  rangeCalls: number;
  /** Bytes of watch replies (the events). */
  watchBytes: number;
}

/**
 * A gRPC interceptor for the manager's etcd client: counts what the KV service returns, the KV
 * calls in flight, and the first RESOURCE_EXHAUSTED (with its details and when).
 */
export class EtcdReadCounter {
  readonly counts: ReadCounts = { kvCalls: 0, kvBytes: 0, rangeCalls: 0, watchBytes: 0 };
  kvInFlight = 0;
  lastKvActivity = Date.now();
  exhausted?: { at: number; method: string; details: string };
  /**
   * Whether watch replies are counted (walking each reply costs the client's process CPU: the
   * benchmark counts them only around the pass it measures).
   */
  countWatches = true;

  readonly interceptor: grpc.Interceptor = (options, nextCall) => {
    const method = options.method_definition.path;
    const kv = method.startsWith('/etcdserverpb.KV/');
    const watch = method.startsWith('/etcdserverpb.Watch/');
    return new grpc.InterceptingCall(nextCall(options), {
      start: (metadata, listener, next) => {
        if (kv) {
          this.counts.kvCalls++;
          if (method.endsWith('/Range')) this.counts.rangeCalls++;
          this.kvInFlight++;
          this.lastKvActivity = Date.now();
        }
        next(metadata, {
          onReceiveMessage: (message, nextMessage) => {
            if (kv) this.counts.kvBytes += payloadBytes(message);
            else if (watch && this.countWatches) this.counts.watchBytes += payloadBytes(message);
            nextMessage(message);
          },
          onReceiveStatus: (status, nextStatus) => {
            if (kv) {
              this.kvInFlight--;
              this.lastKvActivity = Date.now();
            }
            if (status.code === grpc.status.RESOURCE_EXHAUSTED && !this.exhausted) this.exhausted = { at: Date.now(), method, details: status.details };
            nextStatus(status);
          },
        });
      },
    });
  };

  snapshot(): ReadCounts {
    return { ...this.counts };
  }

  /** Resolves once no KV call has been in flight or started for `quietMs` (at least `minMs` from now), or after `timeoutMs`. */
  async quiet(quietMs: number, minMs: number, timeoutMs: number): Promise<boolean> {
    const start = Date.now();
    for (;;) {
      const now = Date.now();
      if (now - start >= minMs && this.kvInFlight === 0 && now - this.lastKvActivity >= quietMs) return true;
      if (now - start > timeoutMs) return false;
      await sleep(100);
    }
  }
}
