import * as grpc from '@grpc/grpc-js';
import { toServiceError } from './grpc-errors';

/** An async unary handler; what it throws becomes a gRPC status. */
export type AsyncUnary<Req, Res> = (request: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>;

export function unary<Req, Res>(fn: AsyncUnary<Req, Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    fn(call.request, call).then(
      (res) => callback(null, res),
      (err) => callback(toServiceError(err)),
    );
  };
}

/** Promise wrapper for a generated grpc-js client's unary method. */
export function callUnary<Req, Res>(
  method: (req: Req, metadata: grpc.Metadata, options: Partial<grpc.CallOptions>, cb: (err: grpc.ServiceError | null, res: Res) => void) => unknown,
  req: Req,
  timeoutMs = 15000,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    method(req, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(err) : resolve(res)));
  });
}
