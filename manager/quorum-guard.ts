import * as grpc from '@grpc/grpc-js';
import { NoLeaderError } from '../services/common/errors';
import { toServiceError } from '../services/api/grpc-errors';
import { failCall } from '../services/api/tls';
import { QuorumVerdict } from './quorum-plans';

/** What the guard asks: the quorum verdict now (`fresh`: not a cached one). */
export interface QuorumSource {
  check(fresh?: boolean): Promise<QuorumVerdict>;
}

type Handler = (call: grpc.ServerUnaryCall<unknown, unknown> & grpc.ServerWritableStream<unknown, unknown>, callback?: grpc.sendUnaryData<unknown>) => void;

/**
 * Wraps every handler of a manager's service so that a swarm without quorum is named, in one
 * line, instead of each call waiting for its etcd deadline: a call is refused at once (UNAVAILABLE,
 * NoLeaderError) while the quorum is known lost, and a unary call that failed UNAVAILABLE is
 * told so too when the quorum turns out lost meanwhile. With `refuseEarly` false only the
 * latter: for a service whose callers must first be let in (a check that itself reads etcd).
 */
export function guardQuorum<S extends object>(service: S, quorum: QuorumSource, refuseEarly = true): S {
  const wrapped: Record<string, Handler> = {};
  for (const [name, handler] of Object.entries(service as Record<string, Handler>)) {
    wrapped[name] = (call, callback) => {
      void (refuseEarly ? quorum.check() : Promise.resolve({ lost: false } as const)).then((verdict) => {
        if (verdict.lost) return failCall(call, callback, new NoLeaderError(verdict.message));
        if (typeof callback !== 'function') return handler(call);
        handler(call, (err, ...rest) => {
          if (err?.code !== grpc.status.UNAVAILABLE) return callback(err, ...rest);
          void quorum.check(true).then((again) => callback(again.lost ? toServiceError(new NoLeaderError(again.message)) : err, ...rest));
        });
      });
    };
  }
  return wrapped as unknown as S;
}
