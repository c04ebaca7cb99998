import { Mutex } from 'async-mutex';
import { asSwarmletError, failedPrecondition } from '../../services/common/errors';
import { Netlink } from './netlink';

/**
 * What the drivers that work in the host's network namespace share: one netlink handle there,
 * opened on first use, and one call at a time. Errors come out as SwarmletErrors; a failed call
 * lets go of the handle (the next opens a fresh one) and tells the subclass, which may forget
 * what it had cached.
 */
export abstract class HostNetlinkDriver {
  private host?: Netlink;
  private readonly mutex = new Mutex();
  private closed = false;

  protected constructor(private readonly what: string, protected readonly hostNetns?: string) {}

  /** Lets go of the netlink handle; the kernel objects stay. */
  close(): Promise<void> {
    const done = this.mutex.runExclusive(async () => this.release());
    this.closed = true;
    return done;
  }

  protected async hostNl(): Promise<Netlink> {
    if (!this.host) this.host = this.hostNetns === undefined ? Netlink.open() : await Netlink.inNetns(this.hostNetns);
    return this.host;
  }

  protected exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(failedPrecondition(`the ${this.what} is closed`));
    return this.mutex.runExclusive(async () => {
      try {
        return await fn();
      } catch (err) {
        this.release();
        this.afterFailure();
        throw asSwarmletError(err);
      }
    });
  }

  /** Called after a call failed, once the handle is gone. */
  protected afterFailure(): void {}

  private release(): void {
    this.host?.close();
    this.host = undefined;
  }
}
