import { Mutex } from 'async-mutex';
import { asSwarmletError, failedPrecondition } from '../../services/common/errors';
import { Netlink } from './netlink';

/**
 * What the network drivers share (bridge, macvlan, overlay): one netlink handle in the host's
 * network namespace, opened on first use, and one call at a time. Errors come out as
 * SwarmletErrors; a failed call lets go of the handle (the next opens a fresh one) and tells the
 * subclass, which may forget what it had cached.
 */
export abstract class HostNetlinkDriver {
  private host?: Netlink;
  private readonly mutex = new Mutex();
  private closed = false;

  protected constructor(private readonly what: string, protected readonly hostNetns?: string) {}

  /** Lets go of the netlink handles, after the calls already waiting; the kernel objects stay. */
  close(): Promise<void> {
    const done = this.mutex.runExclusive(async () => {
      this.releaseHost();
      this.afterClose();
    });
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
        this.releaseHost();
        this.afterFailure();
        throw asSwarmletError(err);
      }
    });
  }

  /** Called after a call failed, once the handle is gone. */
  protected afterFailure(): void {}

  /** Called by close(), once the host's handle is gone: for handles of the subclass's own. */
  protected afterClose(): void {}

  /** Lets go of the host's handle; the next hostNl() opens a fresh one. */
  protected releaseHost(): void {
    this.host?.close();
    this.host = undefined;
  }
}
