import * as grpc from '@grpc/grpc-js';
import { ErrorKind, SwarmletError, asSwarmletError } from '../common/errors';

const kindToCode: Record<ErrorKind, grpc.status> = {
  InvalidArgument: grpc.status.INVALID_ARGUMENT,
  NotFound: grpc.status.NOT_FOUND,
  Conflict: grpc.status.ALREADY_EXISTS,
  FailedPrecondition: grpc.status.FAILED_PRECONDITION,
  PermissionDenied: grpc.status.PERMISSION_DENIED,
  Unavailable: grpc.status.UNAVAILABLE,
  Retryable: grpc.status.ABORTED,
  Internal: grpc.status.INTERNAL,
};

const codeToKind = new Map<grpc.status, ErrorKind>([
  ...Object.entries(kindToCode).map(([kind, code]) => [code, kind as ErrorKind] as const),
  [grpc.status.DEADLINE_EXCEEDED, 'Unavailable'],
  [grpc.status.UNAUTHENTICATED, 'PermissionDenied'],
  [grpc.status.OUT_OF_RANGE, 'InvalidArgument'],
  [grpc.status.CANCELLED, 'Unavailable'],
]);

/** Server side: any error thrown by a handler becomes a gRPC status with a user-readable message. */
export function toServiceError(err: unknown): Partial<grpc.ServiceError> {
  const e = asSwarmletError(err);
  return { code: kindToCode[e.kind], details: e.message, message: e.message };
}

/** Client side: a gRPC failure becomes a SwarmletError of the matching kind. */
export function fromServiceError(err: unknown, what = 'request'): SwarmletError {
  const e = err as Partial<grpc.ServiceError>;
  if (typeof e?.code !== 'number') return asSwarmletError(err);
  const kind = codeToKind.get(e.code) ?? 'Internal';
  const details = e.details || e.message || 'unknown error';
  if (e.code === grpc.status.UNAVAILABLE || e.code === grpc.status.DEADLINE_EXCEEDED) {
    return new SwarmletError(kind, `${what} failed: ${details}`, { cause: err });
  }
  return new SwarmletError(kind, details, { cause: err });
}
