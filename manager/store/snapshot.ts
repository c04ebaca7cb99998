import { Etcd3, IKeyValue, Watcher } from 'etcd3';
import { Logger, componentLogger } from '../../services/common/logger';
import { unavailable } from '../../services/common/errors';
import { newReadCounters, rangePrefix, ReadCounters } from './paged-range';

/**
 * One key as the snapshot holds it: its bytes until a reader decodes it, then only what the reader
 * made of them (`decoded`); the bytes are dropped then, as nothing reads them again (30,000 tasks
 * held both ways, bytes and objects, were tens of MiB). `mod` is its mod revision, what a fresh
 * list is diffed on.
 */
interface Entry {
  mod: string;
  kv?: IKeyValue;
  decoded?: unknown;
}

/**
 * The entry of a key as etcd sent it, with its key and value copied out of the reply. etcd3 hands
 * them over as views into the whole gRPC message (a watch reply of thousands of events, a page of
 * a list): one key held from it kept all of it in memory, hundreds of MiB at 30,000 tasks.
 */
const own = (kv: IKeyValue): Entry => ({ mod: kv.mod_revision, kv: { ...kv, key: Buffer.from(kv.key), value: Buffer.from(kv.value) } });

/** What `decode` makes of the entry, made once; its bytes go then. */
function decoded<T>(entry: Entry, decode: (kv: IKeyValue) => T): T {
  if (entry.kv) {
    entry.decoded = decode(entry.kv);
    entry.kv = undefined;
  }
  return entry.decoded as T;
}

/**
 * One change the watch applied to a held key: the entry before it (if the key was held) and after
 * it (a put's), each decoded on demand through `heldValue` and cached as reads cache it.
 */
export interface HeldChange {
  key: string;
  kind: 'put' | 'delete';
  revision: number;
  before?: HeldEntry;
  after?: HeldEntry;
}

/** A held key's entry, opaque outside the snapshot. */
export type HeldEntry = Entry;

/** What `decode` makes of a held entry, made once and kept, as `read` keeps it. */
export const heldValue = <T>(entry: HeldEntry, decode: (kv: IKeyValue) => T): T => decoded(entry, decode);

/** What the snapshot cost and did, for the benchmark and for tests (a no-op pass reads nothing). */
export interface SnapshotStats extends ReadCounters {
  /** Full lists made: the first one and every resync. */
  lists: number;
  /** Watch events applied. */
  events: number;
  /** The store revision the snapshot is current to. */
  revision: number;
  /** Keys held. */
  held: number;
  /** Bytes of the values held not decoded yet (a value read is held decoded alone). */
  rawBytes: number;
}

/** How long a read waits for the watch to deliver a write this manager made, before it lists again. */
const CATCH_UP_MS = 3000;

/**
 * An in-memory copy of some prefixes of etcd, kept current from a watch, as swarmkit's MemoryStore
 * is kept by raft and flannel's subnet cache by its watch. It lists each prefix once (paged, at one
 * revision), then watches from that revision on; after a compaction or a lost watch it lists again
 * and tells its listeners what may have changed. Readers never trust an event's payload: they read
 * the snapshot again.
 *
 * It watches one stream per root. The first root holds every key this manager's stores write: its
 * watch alone moves the revision a read-your-writes waits for. The others (the election's keys, which
 * etcd3 keeps outside the cluster's root) are kept as current as their watch, as etcd3's own
 * LeaderObserver would keep them.
 */
export class WatchedSnapshot {
  /** Held keys, by the held prefix they are under. */
  private readonly entries = new Map<string, Map<string, Entry>>();
  private revision = 0;
  /** The highest revision a write made through a store over this snapshot reached. */
  private written = 0;
  private readonly counters = { ...newReadCounters(), lists: 0, events: 0 };
  private readonly listeners = new Set<{ prefixes: string[]; fn: () => void }>();
  private readonly changeListeners = new Set<(changes: HeldChange[]) => void>();
  private waiters: { revision: number; resolve: () => void }[] = [];
  private watchers: Watcher[] = [];
  private starting?: Promise<void>;
  private stopped = false;
  private readonly log: Logger;

  /** Each of `roots` is watched (one stream each, the first for every key the stores write); the keys under `prefixes` are held. */
  constructor(private readonly client: Etcd3, private readonly roots: string[], readonly prefixes: string[], parentLog: Logger) {
    this.log = componentLogger(parentLog, 'snapshot');
    for (const p of prefixes) this.entries.set(p, new Map());
  }

  /** Lists and starts watching; reads wait for it. Safe to call again: it starts once. */
  start(): Promise<void> {
    this.starting ??= this.sync().catch((err) => {
      this.starting = undefined;
      throw unavailable('could not read the cluster store', err);
    });
    return this.starting;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.cancelWatchers();
    for (const w of this.waiters) w.resolve();
    this.waiters = [];
  }

  /** Whether every key under `prefix` is held. */
  covers(prefix: string): boolean {
    return this.prefixOf(prefix) !== undefined;
  }

  /** The held prefix `key` (or a narrower prefix) is under, if any. */
  private prefixOf(key: string): string | undefined {
    return this.prefixes.find((p) => key.startsWith(p));
  }

  /**
   * The values under `prefix`, as `decode` makes them (each decoded once per change, then cached):
   * current at least to every write made through this snapshot's stores. Callers must not change them.
   */
  async read<T>(prefix: string, decode: (kv: IKeyValue) => T): Promise<{ values: T[]; revision: number }> {
    await this.current();
    const values: T[] = [];
    const under = this.entries.get(this.prefixOf(prefix)!) ?? new Map<string, Entry>();
    // A read of a whole held prefix (what the loops make) tests no key.
    if (this.entries.has(prefix)) for (const entry of under.values()) values.push(decoded(entry, decode));
    else
      for (const [key, entry] of under) {
        if (!key.startsWith(prefix)) continue;
        values.push(decoded(entry, decode));
      }
    return { values, revision: this.revision };
  }

  /** The values of those of `keys` that are held and exist, as `read` makes them (and as current). */
  async get<T>(keys: string[], decode: (kv: IKeyValue) => T): Promise<T[]> {
    await this.current();
    const values: T[] = [];
    for (const key of keys) {
      const entry = this.entries.get(this.prefixOf(key) ?? '')?.get(key);
      if (!entry) continue;
      values.push(decoded(entry, decode));
    }
    return values;
  }

  /** Notes a write's revision: reads after it see it (read-your-writes). */
  wrote(revision: number | string): void {
    this.written = Math.max(this.written, Number(revision));
  }

  /** Calls `fn` after a change under one of `prefixes` reaches the snapshot (and after every resync). */
  onChange(prefixes: string[], fn: () => void): () => void {
    const listener = { prefixes, fn };
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Calls `fn` with the changes of each watch reply, in order, as they are applied (not after a
   * resync's fresh list: what changed in between is not known key by key). What the cluster's
   * events are made from, with no watch of their own.
   */
  onChanges(fn: (changes: HeldChange[]) => void): () => void {
    this.changeListeners.add(fn);
    return () => this.changeListeners.delete(fn);
  }

  stats(): SnapshotStats {
    let held = 0;
    let rawBytes = 0;
    for (const m of this.entries.values()) {
      held += m.size;
      for (const e of m.values()) rawBytes += e.kv?.value.length ?? 0;
    }
    return { ...this.counters, revision: this.revision, held, rawBytes };
  }

  /** Waits for the start, and for the watch to reach this manager's last write; lists again if it does not in time. */
  private async current(): Promise<void> {
    await this.start();
    const want = this.written;
    if (this.revision >= want || this.stopped) return;
    let timer: NodeJS.Timeout | undefined;
    const reached = await new Promise<boolean>((resolve) => {
      this.waiters.push({ revision: want, resolve: () => resolve(true) });
      timer = setTimeout(() => resolve(false), CATCH_UP_MS);
      timer.unref();
    });
    clearTimeout(timer);
    if (!reached && this.revision < want) await this.resync('the watch did not deliver a write in time');
  }

  /** Lists every held prefix at one revision, replaces the held keys with them, and watches from there. */
  private async sync(): Promise<void> {
    await this.cancelWatchers();
    const listed = new Map<string, IKeyValue>();
    let revision: number | undefined;
    for (const prefix of this.prefixes) {
      const res = await rangePrefix(this.client, prefix, revision, this.counters);
      revision ??= res.revision;
      for (const kv of res.kvs) listed.set(kv.key.toString(), kv);
    }
    this.counters.lists += 1;
    // The diff against what was held: a key whose mod revision did not change keeps its decoded value.
    for (const under of this.entries.values()) for (const key of [...under.keys()]) if (!listed.has(key)) under.delete(key);
    for (const [key, kv] of listed) {
      const under = this.entries.get(this.prefixOf(key)!)!;
      const held = under.get(key);
      if (!held || held.mod !== kv.mod_revision) under.set(key, own(kv));
    }
    this.advance(revision!);
    for (const [i, root] of this.roots.entries()) {
      if (this.stopped) break;
      const watcher = await this.client.watch().prefix(root).startRevision(String(revision! + 1)).create();
      this.watchers.push(watcher);
      watcher.on('data', (res) => this.apply(res.events, i === 0 ? Number(res.header.revision) : undefined));
      // A watch etcd cancels (its start revision compacted away) or that fails: list again and diff.
      // etcd3 has dropped it already; cancelling it again on the stream the other watches share would wait forever.
      watcher.on('error', (err) => {
        this.watchers = this.watchers.filter((w) => w !== watcher);
        void this.resync(`the watch failed: ${(err as Error).message}`);
      });
    }
    if (this.stopped) {
      await this.cancelWatchers();
      return;
    }
    this.notify();
  }

  private async cancelWatchers(): Promise<void> {
    const watchers = this.watchers;
    this.watchers = [];
    await Promise.all(watchers.map((w) => w.cancel().catch(() => undefined)));
  }

  private resyncing?: Promise<void>;

  private resync(reason: string): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.resyncing ??= (async () => {
      this.log.warn({ reason }, 'listing the cluster store again');
      for (let attempt = 0; !this.stopped; attempt++) {
        try {
          await this.sync();
          return;
        } catch (err) {
          this.log.warn({ err: (err as Error).message }, 'could not list the cluster store; trying again');
          await new Promise((r) => setTimeout(r, Math.min(5000, 200 * 2 ** attempt)).unref());
        }
      }
    })().finally(() => {
      this.resyncing = undefined;
    });
    return this.resyncing;
  }

  /** Applies a watch's events; `revision` (the first root's watch only) is what the snapshot is now current to. */
  private apply(events: { type: string; kv: IKeyValue }[], revision: number | undefined): void {
    const changed: string[] = [];
    const held: HeldChange[] | undefined = this.changeListeners.size ? [] : undefined;
    for (const ev of events) {
      const key = ev.kv.key.toString();
      const prefix = this.prefixOf(key);
      if (prefix === undefined) continue;
      this.counters.events += 1;
      changed.push(key);
      const under = this.entries.get(prefix)!;
      const before = held ? under.get(key) : undefined;
      let after: Entry | undefined;
      if (ev.type === 'Put') under.set(key, (after = own(ev.kv)));
      else under.delete(key);
      held?.push({ key, kind: ev.type === 'Put' ? 'put' : 'delete', revision: Number(ev.kv.mod_revision), before, after });
    }
    if (revision !== undefined) this.advance(revision);
    if (held?.length) {
      for (const fn of this.changeListeners) {
        try {
          fn(held);
        } catch (err) {
          this.log.warn({ err: (err as Error).message }, 'a change listener failed');
        }
      }
    }
    if (changed.length) this.notify(changed);
  }

  private advance(revision: number): void {
    this.revision = Math.max(this.revision, revision);
    const still: typeof this.waiters = [];
    for (const w of this.waiters) (w.revision <= this.revision ? w.resolve() : still.push(w));
    this.waiters = still;
  }

  /** Tells the listeners whose prefixes one of `changed` is under; everyone when undefined (a fresh list). */
  private notify(changed?: string[]): void {
    for (const l of this.listeners) {
      if (!changed || changed.some((k) => l.prefixes.some((p) => k.startsWith(p)))) l.fn();
    }
  }
}
