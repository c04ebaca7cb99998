/**
 * The one place where an error of the etcd client (etcd3, grpc-js underneath) becomes a
 * SwarmletError. etcd tells some conditions apart only in its text (etcd3 has no class for a
 * leader change, nor grpc-js for its reply size limit), so that text is read here, once; every
 * caller above decides by kind and class.
 */
import { invalidArgument, SwarmletError, unavailable } from '../../services/common/errors';

/** etcd's own limit on a request's size (its default `--max-request-bytes`). */
export const ETCD_MAX_REQUEST_BYTES = 1.5 * 1024 * 1024;

/**
 * The gRPC options of a manager's etcd client. A watch reply carries every event etcd has for the
 * watcher at once (etcd3 asks for no fragments): with tens of thousands of tasks written in
 * batches, one reply passed grpc-js's default 4 MiB limit, the watch failed and the snapshot listed
 * everything again. Ranges are paged (paged-range.ts); watch replies cannot be. No channelz, as
 * on the node's own servers and channels (NODE_SERVER_OPTIONS).
 */
export const ETCD_CLIENT_GRPC_OPTIONS = { 'grpc.max_receive_message_length': 256 * 1024 * 1024, 'grpc.enable_channelz': 0 } as const;

/**
 * etcd is between leaders, or settling a membership change ("unhealthy cluster"): the same
 * request succeeds again within seconds. Kind Unavailable.
 */
export class EtcdSettlingError extends SwarmletError {
  constructor(message: string, cause: unknown) {
    super('Unavailable', message, { cause });
    this.name = 'EtcdSettlingError';
  }
}

const textOf = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** What etcd says when it is between leaders; with `membership`, also while a new member is not yet connected. */
const SETTLING = /leader changed|no leader/;
const SETTLING_MEMBERSHIP = /unhealthy cluster|leader changed|no leader/;

export function requestTooLarge(bytes: number, limit: number, cause?: unknown): SwarmletError {
  return invalidArgument(`request too large: ${bytes} bytes, limit ${limit}`, cause);
}

/** A failed etcd call: EtcdSettlingError while etcd is between leaders, else Unavailable. Our own errors pass through. */
export function etcdUnavailable(err: unknown, what = 'the cluster store is unavailable'): SwarmletError {
  if (err instanceof SwarmletError) return err;
  const message = `${what}: ${textOf(err)}`;
  return SETTLING.test(textOf(err)) ? new EtcdSettlingError(message, err) : unavailable(message, err);
}

/** A failed etcd request or transaction: as etcdUnavailable, but a request too large for etcd (or for the reply limit) is InvalidArgument. */
export function etcdRequestError(err: unknown): SwarmletError {
  if (err instanceof SwarmletError) return err;
  const text = textOf(err);
  const tooLarge = /larger than max \((\d+) vs\. (\d+)\)/.exec(text);
  if (tooLarge) return requestTooLarge(Number(tooLarge[1]), Number(tooLarge[2]), err);
  if (/request is too large/.test(text)) return invalidArgument(`request too large: more than etcd's limit of ${ETCD_MAX_REQUEST_BYTES} bytes`, err);
  return etcdUnavailable(err);
}

/** A refused etcd membership change: EtcdSettlingError while etcd settles (between leaders, or a member just joined), else Unavailable. */
export function etcdMembershipError(err: unknown, what: string): SwarmletError {
  if (err instanceof SwarmletError) return err;
  const message = `${what} (${textOf(err)}); try again in a few seconds`;
  return SETTLING_MEMBERSHIP.test(textOf(err)) ? new EtcdSettlingError(message, err) : unavailable(message, err);
}

/** What etcd's fatal line says when its data dir is damaged: its WAL, its snapshot or its bolt database (a damaged record also fails to decode: `proto: ...`). */
const CORRUPT = /crc mismatch|\b(wal|walpb|snap|snappb|proto): |invalid database|file is not a database|checksum error|failed to find database snapshot|failed to recover v3 backend|unexpected EOF|corrupt/i;

/** The reason etcd gave for refusing its data dir, from the last lines of its log (zap JSON), if that reason is damage. */
export function corruptionIn(logTail: string): string | undefined {
  const fatal = logTail.split('\n').reverse().find((l) => /"level":"(fatal|panic)"/.test(l));
  if (!fatal) return undefined;
  let why: string;
  try {
    const line = JSON.parse(fatal) as { msg?: string; error?: string };
    why = line.error ?? line.msg ?? '';
  } catch {
    why = fatal;
  }
  return CORRUPT.test(why) ? why : undefined;
}

/** A manager's etcd member refuses its damaged data dir: one line naming the dir and the way back. Kind FailedPrecondition; starting again will not help. */
export class EtcdDataCorruptError extends SwarmletError {
  constructor(readonly dataDir: string, why: string) {
    super(
      'FailedPrecondition',
      `etcd's data dir ${dataDir} is corrupt (${why}), so this manager cannot start: if the swarm has other managers, run "swarmlet swarm leave --force" here and join again with the manager token; ` +
        'if this was the last manager, restore a backup on a fresh node with "swarmlet swarm restore FILE"',
    );
    this.name = 'EtcdDataCorruptError';
  }
}
