import { ErrorKind, SwarmletError } from '../../../services/common/errors';

/**
 * The errno names this layer reports. Those from the kernel come through as they are
 * ('EEXIST', 'ENODEV', ...); 'EUNKNOWN' is for a failure that carried none.
 */
export type NetlinkErrno =
  | 'EEXIST'
  | 'ENOENT'
  | 'ENODEV'
  | 'EBUSY'
  | 'EINVAL'
  | 'ERANGE'
  | 'EPERM'
  | 'EACCES'
  | 'ESRCH'
  | 'EADDRNOTAVAIL'
  | 'EADDRINUSE'
  | 'ENETUNREACH'
  | 'EOPNOTSUPP'
  | 'EAFNOSUPPORT'
  | 'ENOTSUP'
  | 'ETIMEDOUT'
  | 'EPIPE'
  | 'EBADF'
  | 'EUNKNOWN'
  | (string & {});

const KIND_OF_ERRNO: Record<string, ErrorKind> = {
  EEXIST: 'Conflict',
  EADDRINUSE: 'Conflict',
  ENOENT: 'NotFound',
  ENODEV: 'NotFound',
  ESRCH: 'NotFound',
  EADDRNOTAVAIL: 'NotFound',
  ENETUNREACH: 'FailedPrecondition',
  EBUSY: 'Retryable',
  EAGAIN: 'Retryable',
  EINVAL: 'InvalidArgument',
  ERANGE: 'InvalidArgument',
  EOPNOTSUPP: 'InvalidArgument',
  ENOTSUP: 'InvalidArgument',
  EAFNOSUPPORT: 'InvalidArgument',
  EPERM: 'PermissionDenied',
  EACCES: 'PermissionDenied',
  ETIMEDOUT: 'Unavailable',
  EPIPE: 'Unavailable',
  EBADF: 'FailedPrecondition',
};

/**
 * A failed netlink operation: `errno` says what the kernel (or this layer) refused with, and the
 * message names the operation: "creating vxlan vx-4097: EEXIST". The original error is the cause.
 */
export class NetlinkError extends SwarmletError {
  readonly errno: NetlinkErrno;
  readonly operation: string;

  constructor(operation: string, errno: NetlinkErrno, options?: { cause?: unknown; detail?: string }) {
    const detail = options?.detail ? ` (${options.detail})` : '';
    super(KIND_OF_ERRNO[errno] ?? 'Internal', `${operation}: ${errno}${detail}`, { cause: options?.cause });
    this.name = 'NetlinkError';
    this.errno = errno;
    this.operation = operation;
  }
}

const REJECTED = /^Request rejected: (\S+)$/;

/** The errno name of anything the `netlink` package or Node threw, or 'EUNKNOWN'. */
export function errnoOf(err: unknown): NetlinkErrno {
  if (err instanceof NetlinkError) return err.errno;
  if (err && typeof err === 'object') {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && /^E[A-Z0-9]+$/.test(code)) return code;
    const message = (err as { message?: unknown }).message;
    if (typeof message === 'string') {
      const m = REJECTED.exec(message);
      if (m) return m[1];
      if (message === 'Timeout has been reached') return 'ETIMEDOUT';
    }
  }
  return 'EUNKNOWN';
}

/** Wraps what an operation threw into a NetlinkError naming that operation (a NetlinkError passes through). */
export function netlinkError(operation: string, err: unknown): NetlinkError {
  if (err instanceof NetlinkError) return err;
  const errno = errnoOf(err);
  const detail = errno === 'EUNKNOWN' && err instanceof Error ? err.message : undefined;
  return new NetlinkError(operation, errno, { cause: err, detail });
}

/** A NetlinkError raised by this layer before anything reached the kernel. */
export const invalidNetlinkArgument = (operation: string, detail: string) => new NetlinkError(operation, 'EINVAL', { detail });
