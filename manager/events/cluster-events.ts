import { Etcd3, IEvent, Watcher } from 'etcd3';
import { failedPrecondition, unavailable } from '../../services/common/errors';
import { Logger, componentLogger } from '../../services/common/logger';
import { Event, EventsRequest } from '../../services/gen/swarmlet/v1/control';
import { keys } from '../store/keys';
import { EventFilter, eventMs, planObjectEvents, planStoreEvents, StoreChange } from './event-plans';
import type { ObjectChange } from '../store/store';
import { EventSource } from './event-stream';

/** How many recent cluster events a manager keeps for `events --since TIME`. */
export const EVENT_HISTORY_SIZE = 1000;

const changeOf = (ev: IEvent): StoreChange => ({
  key: ev.kv.key.toString(),
  kind: ev.type === 'Put' ? 'put' : 'delete',
  value: ev.type === 'Put' ? ev.kv.value.toString() : undefined,
  previous: ev.prev_kv?.value.toString(),
  revision: Number(ev.kv.mod_revision),
});

/**
 * The cluster's events, from the store's watch. A manager keeps the latest EVENT_HISTORY_SIZE in
 * memory (what a time-based `since` starts from); each stream watches the store from its own start
 * revision with the previous values, so a client that resumes after revision N gets exactly the
 * events of N+1 on, as long as etcd keeps them (swarmlet does not compact its history).
 */
export class ClusterEvents implements EventSource {
  private history: Event[] = [];
  private watcher?: Watcher;
  private readonly log: Logger;

  private unfollow?: () => void;

  /**
   * With `objects` (a store's watchObjects over the manager's watched snapshot), the history is made
   * from the snapshot's watch, whose objects are decoded once for every reader; else from a watch of its own.
   */
  constructor(
    private readonly etcd: Etcd3,
    parentLog: Logger,
    private readonly size = EVENT_HISTORY_SIZE,
    private readonly objects?: (listener: (changes: ObjectChange[]) => void) => (() => void) | undefined,
  ) {
    this.log = componentLogger(parentLog, 'events');
  }

  async start(): Promise<void> {
    const keep = (ev: Event[]) => {
      for (const e of ev) this.history.push(e);
      if (this.history.length > this.size) this.history.splice(0, this.history.length - this.size);
    };
    this.unfollow = this.objects?.((changes) => {
      const now = new Date().toISOString();
      keep(changes.flatMap((c) => this.withRemovalTime(planObjectEvents(c, now))));
    });
    if (this.unfollow) return;
    this.watcher = await this.watchFrom((await this.currentRevision()) + 1, keep);
    this.watcher.on('error', (err) => this.log.warn({ err: (err as Error).message }, 'the events history stopped following the store'));
  }

  async stop(): Promise<void> {
    this.unfollow?.();
    this.unfollow = undefined;
    await this.watcher?.cancel().catch(() => undefined);
    this.watcher = undefined;
  }

  /** The events kept, oldest first (for tests and the dashboard). */
  recent(): readonly Event[] {
    return this.history;
  }

  async stream(req: EventsRequest, filter: EventFilter, write: (e: Event) => void, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    const from = req.sinceRevision > 0 ? req.sinceRevision + 1 : filter.sinceMs !== undefined ? await this.startOf(filter.sinceMs) : (await this.currentRevision()) + 1;
    let failed: (err: unknown) => void = () => undefined;
    let seen = from - 1;
    /** Once `until` has passed: the store's revision then, which the stream ends at. */
    let last: number | undefined;
    let caughtUp: () => void = () => undefined;
    const done = new Promise<void>((resolve, reject) => {
      failed = reject;
      caughtUp = resolve;
    });
    const watcher = await this.watchFrom(from, (events, revision) => {
      for (const e of events) if (last === undefined || e.revision <= last) write(e);
      seen = Math.max(seen, revision);
      if (last !== undefined && seen >= last) caughtUp();
    });
    watcher.on('error', (err) => {
      const compacted = /compact/i.test((err as Error).message);
      failed(compacted ? failedPrecondition(`revision ${from - 1} is no longer in the cluster store's history: resume from a later one or a time`, err) : unavailable("lost the cluster store's watch; resume from the last revision seen", err));
    });
    signal.addEventListener('abort', () => caughtUp(), { once: true });
    let timer: NodeJS.Timeout | undefined;
    if (filter.untilMs !== undefined) {
      // At `until`, the stream goes on to the revision the store had then (what happened before it), and ends.
      const atUntil = () =>
        this.currentRevision().then((revision) => {
          last = revision;
          if (seen >= last) caughtUp();
        }, failed);
      const wait = filter.untilMs - Date.now();
      if (wait <= 0) void atUntil();
      else if (wait < 2 ** 31 - 1) timer = setTimeout(() => void atUntil(), wait);
    }
    try {
      await done;
    } finally {
      clearTimeout(timer);
      await watcher.cancel().catch(() => undefined);
    }
  }

  /** The revision a stream since `ms` starts at: that of the first kept event at or after it, else the next one. */
  private async startOf(ms: number): Promise<number> {
    const first = this.history.find((e) => eventMs(e) >= ms);
    return first ? first.revision : (await this.currentRevision()) + 1;
  }

  private async currentRevision(): Promise<number> {
    try {
      const res = await this.etcd.get(keys.cluster).exec();
      return Number(res.header.revision);
    } catch (err) {
      throw unavailable('could not read the cluster store', err);
    }
  }

  /** A watch of every key from `revision` on, with previous values; `onEvents` gets each reply's cluster events and the last revision it held. */
  private async watchFrom(revision: number, onEvents: (events: Event[], revision: number) => void): Promise<Watcher> {
    // Every key, not only the cluster's: each revision then comes with an event, which tells a stream how far it has got.
    const watcher = await this.etcd.watch().prefix('').startRevision(String(revision)).withPreviousKV().create();
    watcher.on('data', (res) => {
      const now = new Date().toISOString();
      const events = res.events.flatMap((ev) => this.withRemovalTime(planStoreEvents(changeOf(ev), now)));
      onEvents(events, Math.max(0, ...res.events.map((ev) => Number(ev.kv.mod_revision))));
    });
    return watcher;
  }

  /** A removal has no time of its own in the store: the history's, when it saw it. */
  private withRemovalTime(events: Event[]): Event[] {
    return events.map((e) => (e.action === 'remove' ? { ...e, time: this.history.find((h) => h.revision === e.revision && h.actorId === e.actorId)?.time ?? e.time } : e));
  }
}
