/** The kinds of failure every layer sorts its errors into; gRPC codes are mapped only at the API edge. */
export type ErrorKind = 'InvalidArgument' | 'NotFound' | 'Conflict' | 'FailedPrecondition' | 'PermissionDenied' | 'Unavailable' | 'Retryable' | 'Internal';

/** The one error class of swarmlet. `message` is a sentence fit for a user; `cause` keeps the underlying error. */
export class SwarmletError extends Error {
  readonly kind: ErrorKind;

  constructor(kind: ErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SwarmletError';
    this.kind = kind;
  }
}

export const invalidArgument = (message: string, cause?: unknown) => new SwarmletError('InvalidArgument', message, { cause });
export const notFound = (message: string, cause?: unknown) => new SwarmletError('NotFound', message, { cause });
export const conflict = (message: string, cause?: unknown) => new SwarmletError('Conflict', message, { cause });
export const failedPrecondition = (message: string, cause?: unknown) => new SwarmletError('FailedPrecondition', message, { cause });
export const permissionDenied = (message: string, cause?: unknown) => new SwarmletError('PermissionDenied', message, { cause });
export const unavailable = (message: string, cause?: unknown) => new SwarmletError('Unavailable', message, { cause });
export const internal = (message: string, cause?: unknown) => new SwarmletError('Internal', message, { cause });

/** Wraps anything thrown into a SwarmletError, keeping it as the cause. */
export function asSwarmletError(err: unknown, fallbackKind: ErrorKind = 'Internal'): SwarmletError {
  if (err instanceof SwarmletError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new SwarmletError(fallbackKind, message, { cause: err });
}

/** The swarm has no leader because too few managers are online (quorum lost): kind Unavailable, with a message whole for a user. */
export class NoLeaderError extends SwarmletError {
  constructor(message: string, cause?: unknown) {
    super('Unavailable', message, { cause });
    this.name = 'NoLeaderError';
  }
}
