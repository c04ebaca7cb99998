/** Calling the Control API's unary handlers in process, as grpc-js would, without a server. */
import * as grpc from '@grpc/grpc-js';
import { SwarmletError } from '../../services/common/errors';

/** The status codes the handlers answer with, back to the kinds they were thrown as. */
const KINDS: Record<number, string> = { 3: 'InvalidArgument', 5: 'NotFound', 6: 'Conflict', 9: 'FailedPrecondition', 10: 'Retryable', 14: 'Unavailable' };

/** Calls a unary handler as grpc-js would; a failure comes back as the SwarmletError it was (kind from the status code). */
export function invoke<Req, Res>(handler: grpc.handleUnaryCall<Req, Res>, request: Req): Promise<Res> {
  return new Promise((resolve, reject) => {
    handler({ request } as grpc.ServerUnaryCall<Req, Res>, (err, res) => {
      if (!err) return resolve(res as Res);
      reject(new SwarmletError((KINDS[err.code ?? 2] ?? 'Internal') as never, err.details ?? ''));
    });
  });
}

/** The kind and message of the refusal `p` must end in. */
export async function refused(p: Promise<unknown>): Promise<[string, string]> {
  try {
    await p;
  } catch (err) {
    return [(err as SwarmletError).kind, (err as SwarmletError).message];
  }
  throw new Error('expected a refusal');
}
