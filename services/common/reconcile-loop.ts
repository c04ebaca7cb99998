import { exponentialBackoff, sleep } from './backoff';
import { Logger } from './logger';

/** What a loop can watch: a store whose changes under some prefixes call the listener (which then reads again). */
export interface Watchable {
  /** Calls `listener` after anything under one of the prefixes changes; resolves to the unwatch. */
  watchPrefixes(prefixes: string[], listener: () => void): Promise<() => Promise<void>>;
}

export interface ReconcileLoopOptions {
  name: string;
  /** Store prefixes whose changes make the loop run again (none for a loop without a store). */
  watch: string[];
  /** Reads the whole state it needs and makes it so; must be safe to run again. */
  reconcile: (signal: AbortSignal) => Promise<void>;
  /** A full pass also runs this often, whatever the watches said (default 30 s). */
  resyncMs?: number;
}

/**
 * The shape every reconcile loop has: subscribe, then take a snapshot; after that recompute from
 * the whole state whenever something changed (never from an event's payload). Changes that arrive
 * during a pass coalesce into one more pass. Failures retry with bounded backoff. The manager's
 * loops and the dispatcher watch the store; the agent's worker has no store and is poked instead.
 */
export class ReconcileLoop {
  private dirty = true;
  private wake?: () => void;
  private controller?: AbortController;
  private done?: Promise<void>;

  constructor(private readonly store: Watchable | undefined, private readonly opts: ReconcileLoopOptions, private readonly log: Logger) {}

  start(parent?: AbortSignal): void {
    const controller = new AbortController();
    this.controller = controller;
    parent?.addEventListener('abort', () => {
      controller.abort();
      this.wake?.();
    }, { once: true });
    this.done = this.run(controller.signal);
  }

  async stop(): Promise<void> {
    this.controller?.abort();
    this.wake?.();
    await this.done;
  }

  /** Asks for a pass soon (for callers that know something changed outside the watched prefixes). */
  poke(): void {
    this.dirty = true;
    this.wake?.();
  }

  private async run(signal: AbortSignal): Promise<void> {
    const backoff = exponentialBackoff(200, 5000);
    let unwatch: (() => Promise<void>) | undefined;
    while (!signal.aborted) {
      try {
        if (!unwatch && this.store) unwatch = await this.store.watchPrefixes(this.opts.watch, () => this.poke());
        if (this.dirty) {
          this.dirty = false;
          await this.opts.reconcile(signal);
          backoff.reset();
        }
        await this.idle(signal);
      } catch (err) {
        this.dirty = true;
        const delay = backoff.next();
        this.log.warn({ err, loop: this.opts.name, delayMs: delay }, 'reconcile failed; retrying');
        await sleep(delay, signal);
      }
    }
    await unwatch?.();
  }

  private idle(signal: AbortSignal): Promise<void> {
    if (this.dirty || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.dirty = true;
        finish();
      }, this.opts.resyncMs ?? 30000);
      timer.unref();
      const finish = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      this.wake = finish;
    });
  }
}
