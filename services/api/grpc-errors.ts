import * as grpc from '@grpc/grpc-js';
import { ErrorKind, NoLeaderError, SwarmletError, asSwarmletError } from '../common/errors';

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
  // A request over the server's size limit (MAX_REQUEST_BYTES): the caller's input is too large.
  [grpc.status.RESOURCE_EXHAUSTED, 'InvalidArgument'],
  [grpc.status.CANCELLED, 'Unavailable'],
]);

/** The trailer that marks an UNAVAILABLE as the swarm's lost quorum (NoLeaderError), whose message needs nothing added. */
const NO_LEADER_TRAILER = 'swarmlet-no-leader';

/** Server side: any error thrown by a handler becomes a gRPC status with a user-readable message. */
export function toServiceError(err: unknown): Partial<grpc.ServiceError> {
  const e = asSwarmletError(err);
  const details = boundedDetails(e.message);
  const status: Partial<grpc.ServiceError> = { code: kindToCode[e.kind], details, message: details };
  if (e instanceof NoLeaderError) {
    status.metadata = new grpc.Metadata();
    status.metadata.set(NO_LEADER_TRAILER, '1');
  }
  return status;
}

/**
 * The longest status message sent. It travels in an HTTP/2 trailer, and a client drops trailers
 * over its metadata limit (8 KiB in grpc-js): a longer one, which can only repeat input nobody
 * checked, is cut so the caller still gets the status.
 */
export const MAX_STATUS_DETAILS = 1024;

function boundedDetails(message: string): string {
  return message.length <= MAX_STATUS_DETAILS ? message : `${message.slice(0, MAX_STATUS_DETAILS - 1)}…`;
}

/** Client side: a gRPC failure becomes a SwarmletError of the matching kind. */
export function fromServiceError(err: unknown, what = 'request'): SwarmletError {
  const e = err as Partial<grpc.ServiceError>;
  if (typeof e?.code !== 'number') return asSwarmletError(err);
  const kind = codeToKind.get(e.code) ?? 'Internal';
  const details = e.details || e.message || 'unknown error';
  if (e.code === grpc.status.UNAVAILABLE && e.metadata?.get(NO_LEADER_TRAILER)[0] === '1') return new NoLeaderError(details, err);
  if (e.code === grpc.status.UNAVAILABLE || e.code === grpc.status.DEADLINE_EXCEEDED) {
    return new SwarmletError(kind, `${what} failed: ${details}`, { cause: err });
  }
  return new SwarmletError(kind, details, { cause: err });
}

/** The trailer that marks a session ended because its node was removed (PERMISSION_DENIED alone also means a refused certificate). */
const NODE_REMOVED_TRAILER = 'swarmlet-node-removed';
export const NODE_REMOVED = 'this node was removed from the swarm';

/** Server side: what the dispatcher ends a removed node's session with. */
export function nodeRemovedStatus(): Error & Partial<grpc.ServiceError> {
  const metadata = new grpc.Metadata();
  metadata.set(NODE_REMOVED_TRAILER, '1');
  return Object.assign(new Error(NODE_REMOVED), { code: grpc.status.PERMISSION_DENIED, details: NODE_REMOVED, metadata });
}

/** Client side: whether a session ended because this node was removed from the swarm. */
export function isNodeRemoved(err: Partial<grpc.ServiceError>): boolean {
  return err.code === grpc.status.PERMISSION_DENIED && err.metadata?.get(NODE_REMOVED_TRAILER)[0] === '1';
}

/**
 * Ends a server stream with `status` (code, details, trailers). grpc-js sends a stream's status
 * from its 'error' event: a stream ended by destroy() sends none, and its client waits on.
 */
export function endServerStream(stream: grpc.ServerWritableStream<unknown, unknown>, status: Error & Partial<grpc.ServiceError>): void {
  stream.emit('error', status);
}
