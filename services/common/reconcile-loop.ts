import { exponentialBackoff, sleep } from './backoff';
import { Logger } from './logger';
import { metrics } from '../metrics/metrics';

/** What a loop can watch: a store whose changes under some prefixes call the listener (which then reads again). */
export interface Watchable {
  /** Calls `listener` after anything under one of the prefixes changes; resolves to the unwatch. */
  watchPrefixes(prefixes: string[], listener: () => void): Promise<() => Promise<void>>;
}

/** What a pass is told about itself. */
export interface PassInfo {
  /** The periodic resync (or a caller, through `request({ resync: true })`) asked for this pass: check everything, trust no cache. */
  resync: boolean;
}

export interface ReconcileLoopOptions {
  name: string;
  /** Store prefixes whose changes make the loop run again (none for a loop without a store). */
  watch: string[];
  /** Reads the whole state it needs and makes it so; must be safe to run again. */
  reconcile: (signal: AbortSignal, pass: PassInfo) => Promise<void>;
  /** A full pass also runs this often, whatever the watches said (default 30 s; Infinity: never). */
  resyncMs?: number;
  /**
   * After a change, wait this long before the next pass, so that a burst of changes (a thousand
   * nodes turning ready, a hundred tasks created) makes one pass, not one each (default 0). The
   * first pass does not wait.
   */
  coalesceMs?: number;
  /**
   * With coalesceMs: a change after a quiet spell is passed at once, and the wait comes after the
   * pass instead (what changes during it and the wait makes one more pass). A burst still makes
   * few passes, and a lone change (a task that stopped) goes out without the wait.
   */
  coalesceLeading?: boolean;
  /**
   * With coalesceLeading: the wait after a pass is at least this many times what the pass took,
   * up to LOADED_WAIT_MAX_MS. A loop whose passes grow with the load (the dispatcher's, over a
   * thousand sessions while tasks are created by the thousand) then spends a bounded share of its
   * time in them, and each pass carries the changes of a longer wait. When passes are quick, the
   * wait stays coalesceMs.
   */
  coalescePassFactor?: number;
}

/** The longest a loop waits after a pass for coalescePassFactor's sake. */
export const LOADED_WAIT_MAX_MS = 1000;

/**
 * The shape every reconcile loop has: subscribe, then take a snapshot; after that recompute from
 * the whole state whenever something changed (never from an event's payload). Changes that arrive
 * during a pass coalesce into one more pass. Failures retry with bounded backoff. The manager's
 * loops and the dispatcher watch the store; the agent's worker and network controller have no store
 * and are poked instead. A caller that must know when its change is made (the network controller,
 * before the worker starts a message's tasks) asks with `request()`.
 */
export class ReconcileLoop {
  private dirty = true;
  /** The next pass is a resync (the timer ran out, or a request asked for one). */
  private resyncDue = false;
  /** Requests the next pass that ends well answers, in the order they were made. */
  private waiting: (() => void)[] = [];
  private stopped = false;
  private wake?: () => void;
  private controller?: AbortController;
  private done?: Promise<void>;

  constructor(private readonly store: Watchable | undefined, private readonly opts: ReconcileLoopOptions, private readonly log: Logger) {}

  start(parent?: AbortSignal): void {
    const controller = new AbortController();
    this.controller = controller;
    const onAbort = () => {
      controller.abort();
      this.wake?.();
    };
    parent?.addEventListener('abort', onAbort, { once: true });
    // Once the loop has ended, the parent (a manager's, whose leadership comes and goes) keeps no listener of it.
    this.done = this.run(controller.signal).finally(() => parent?.removeEventListener('abort', onAbort));
  }

  async stop(): Promise<void> {
    this.controller?.abort();
    this.wake?.();
    await this.done;
    this.ended();
  }

  /** Asks for a pass soon (for callers that know something changed outside the watched prefixes). */
  poke(): void {
    this.dirty = true;
    this.wake?.();
  }

  /**
   * Asks for a pass and resolves once a pass that began after this call has ended well (a pass
   * under way now does not count: it may have read the state before the caller changed it). A
   * failed pass leaves the request to its retry. Requests made together share one pass and
   * resolve in the order they were made; all resolve when the loop stops.
   */
  request(opts: { resync?: boolean } = {}): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      if (opts.resync) this.resyncDue = true;
      this.poke();
    });
  }

  private async run(signal: AbortSignal): Promise<void> {
    const backoff = exponentialBackoff(200, 5000);
    let unwatch: (() => Promise<void>) | undefined;
    while (!signal.aborted) {
      try {
        if (!unwatch && this.store) unwatch = await this.store.watchPrefixes(this.opts.watch, () => this.poke());
        if (this.dirty) {
          this.dirty = false;
          const began = Date.now();
          await this.pass(signal);
          backoff.reset();
          if (this.opts.coalesceMs && this.opts.coalesceLeading) await sleep(this.waitAfter(Date.now() - began), signal);
        }
        await this.idle(signal);
        if (this.opts.coalesceMs && !this.opts.coalesceLeading) await sleep(this.opts.coalesceMs, signal);
      } catch (err) {
        this.dirty = true;
        const delay = backoff.next();
        this.log.warn({ err, loop: this.opts.name, delayMs: delay }, 'reconcile failed; retrying');
        await sleep(delay, signal);
      }
    }
    await unwatch?.();
    this.ended();
  }

  /** How long the loop waits after a pass that took `passMs` (coalesceLeading). */
  private waitAfter(passMs: number): number {
    const loaded = Math.min(LOADED_WAIT_MAX_MS, (this.opts.coalescePassFactor ?? 0) * passMs);
    return Math.max(this.opts.coalesceMs ?? 0, loaded);
  }

  /** No pass runs any more: the requests still waiting resolve, and later ones at once. */
  private ended(): void {
    this.stopped = true;
    for (const resolve of this.waiting.splice(0)) resolve();
  }

  /** One pass; the requests made before it began resolve when it ends well, else wait for the retry. */
  private async pass(signal: AbortSignal): Promise<void> {
    const served = this.waiting.splice(0);
    const resync = this.resyncDue;
    this.resyncDue = false;
    const timer = metrics.reconcileSeconds.startTimer({ loop: this.opts.name });
    try {
      await this.opts.reconcile(signal, { resync });
      timer();
    } catch (err) {
      metrics.reconcileErrors.inc({ loop: this.opts.name });
      this.waiting.unshift(...served);
      this.resyncDue ||= resync;
      throw err;
    }
    for (const resolve of served) resolve();
  }

  private idle(signal: AbortSignal): Promise<void> {
    if (this.dirty || signal.aborted) return Promise.resolve();
    const resyncMs = this.opts.resyncMs ?? 30000;
    return new Promise((resolve) => {
      const timer = Number.isFinite(resyncMs)
        ? setTimeout(() => {
            this.dirty = true;
            this.resyncDue = true;
            finish();
          }, resyncMs)
        : undefined;
      timer?.unref();
      const finish = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      this.wake = finish;
    });
  }
}
