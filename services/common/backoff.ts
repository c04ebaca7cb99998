/** Bounded exponential backoff with jitter, for retries in loops. */
export interface Backoff {
  next(): number;
  reset(): void;
}

export function exponentialBackoff(initialMs: number, maxMs: number, random: () => number = Math.random): Backoff {
  let attempt = 0;
  return {
    next() {
      const base = Math.min(maxMs, initialMs * 2 ** attempt);
      attempt += 1;
      return Math.round(base / 2 + (random() * base) / 2);
    },
    reset() {
      attempt = 0;
    },
  };
}

/** Resolves after `ms`, or at once when the signal aborts; the timer never holds the process open. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    timer.unref();
    function done() {
      signal?.removeEventListener('abort', done);
      clearTimeout(timer);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
