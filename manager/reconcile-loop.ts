import { exponentialBackoff, sleep } from '../services/common/backoff';
import { Logger } from '../services/common/logger';
import { Watchable } from './store/store';

export interface ReconcileLoopOptions {
  name: string;
  /** Store prefixes whose changes make the loop run again. */
  watch: string[];
  /** Reads the whole state it needs and makes it so; must be safe to run again. */
  reconcile: (signal: AbortSignal) => Promise<void>;
  /** A full pass also runs this often, whatever the watches said. */
  resyncMs?: number;
}

/**
 * The shape every reconcile loop has: subscribe, then take a snapshot; after that recompute from
 * the whole state whenever something changed (never from an event's payload). Changes that arrive
 * during a pass coalesce into one more pass. Failures retry with bounded backoff.
 */
export class ReconcileLoop {
  private dirty = true;
  private wake?: () => void;
  private controller?: AbortController;
  private done?: Promise<void>;

  constructor(private readonly store: Watchable, private readonly opts: ReconcileLoopOptions, private readonly log: Logger) {}

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
        if (!unwatch) unwatch = await this.store.watchPrefixes(this.opts.watch, () => this.poke());
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
