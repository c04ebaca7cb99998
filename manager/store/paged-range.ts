import { Etcd3, GRPCResourceExhastedError, IKeyValue } from 'etcd3';

/** The end of the key range a prefix spans (its last byte plus one), for ranges and compares over a prefix. */
export function prefixEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix);
  end[end.length - 1] += 1;
  return end;
}

/** What paged reads cost: for the benchmark and for tests that check a pass read nothing. */
export interface ReadCounters {
  /** Range requests sent. */
  ranges: number;
  keys: number;
  /** Bytes of keys and values received. */
  bytes: number;
}

export const newReadCounters = (): ReadCounters => ({ ranges: 0, keys: 0, bytes: 0 });

/** The most keys one page asks for. */
const MAX_PAGE_KEYS = 1000;
/** A page aims at this many bytes: well under grpc-js's 4 MiB reply limit the etcd client keeps. */
const PAGE_BYTES = 1024 * 1024;

/**
 * Every key-value under `prefix`, at one revision (the first page's, or `revision`), read in pages:
 * each range has a limit and continues after the last key read, and the limit follows the sizes
 * seen so far so that no reply comes near the gRPC limit, whatever the number or size of objects.
 * A page that is refused as too large is asked again with half the limit.
 */
export async function rangePrefix(client: Etcd3, prefix: string, revision?: number, counters?: ReadCounters): Promise<{ kvs: IKeyValue[]; revision: number }> {
  const kvs: IKeyValue[] = [];
  const end = prefixEnd(prefix);
  let from = Buffer.from(prefix);
  let limit = 100;
  let rev = revision;
  for (;;) {
    let res;
    try {
      res = await client.kv.range({ key: from, range_end: end, limit, revision: rev });
    } catch (err) {
      if (limit > 1 && err instanceof GRPCResourceExhastedError) {
        limit = Math.max(1, Math.floor(limit / 2));
        continue;
      }
      throw err;
    }
    rev ??= Number(res.header.revision);
    let bytes = 0;
    for (const kv of res.kvs) bytes += kv.key.length + kv.value.length;
    if (counters) {
      counters.ranges += 1;
      counters.keys += res.kvs.length;
      counters.bytes += bytes;
    }
    kvs.push(...res.kvs);
    if (!res.more || res.kvs.length === 0) return { kvs, revision: rev };
    from = Buffer.concat([res.kvs[res.kvs.length - 1].key, Buffer.from([0])]);
    const perKey = Math.max(1, bytes / res.kvs.length);
    limit = Math.max(1, Math.min(MAX_PAGE_KEYS, Math.floor(PAGE_BYTES / perKey)));
  }
}
