import { Mutex } from 'async-mutex';

/**
 * One async-mutex per key: calls for one key run one at a time, in order; calls for different
 * keys run side by side. A key's mutex is dropped once nobody holds or waits for it.
 */
export class KeyedMutex {
  private readonly locks = new Map<string, { mutex: Mutex; users: number }>();

  async runExclusive<T>(key: string, fn: () => Promise<T>): Promise<T> {
    let lock = this.locks.get(key);
    if (!lock) {
      lock = { mutex: new Mutex(), users: 0 };
      this.locks.set(key, lock);
    }
    lock.users++;
    try {
      return await lock.mutex.runExclusive(fn);
    } finally {
      if (--lock.users === 0 && this.locks.get(key) === lock) this.locks.delete(key);
    }
  }

  /** Resolves once every call made so far, for any key, has finished. */
  async idle(): Promise<void> {
    await Promise.all([...this.locks.values()].map((l) => l.mutex.waitForUnlock()));
  }
}
