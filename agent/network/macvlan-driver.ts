/**
 * The host side of macvlan networks: per task attachment with driver 'macvlan' at index i, a
 * macvlan link (bridge mode) on the network's parent interface (`options.parent`), made in the
 * host's network namespace under a temporary unique name, moved into the task's namespace and
 * renamed `eth<i>` there, with the task's MAC and address, up; when it is the task's first
 * attachment and the network is not internal, the task's default route goes via the gateway.
 *
 * Nothing is left in the host namespace: the link dies with the task's namespace, so detach has
 * nothing to do. All calls are serialized and idempotent (an `eth<i>` macvlan already in the task
 * namespace is kept and only its settings are made sure of).
 */
import { randomBytes } from 'node:crypto';
import { asSwarmletError, failedPrecondition, invalidArgument } from '../../services/common/errors';
import { Logger, componentLogger } from '../../services/common/logger';
import type { NetworkAttachment, Task } from '../../services/gen/swarmlet/v1/types';
import type { NetworkDriver } from './driver';
import { Netlink } from './netlink';
import { HostNetlinkDriver } from './host-netlink-driver';
import { parseCidr, parseMac } from './netlink/encode';

export interface MacvlanDriverOptions {
  log: Logger;
  /** Path of the host's network namespace (where the parent interfaces are); default: this process's. */
  hostNetns?: string;
}

/** Interface names the kernel takes: 1 to 15 characters, no '/', no whitespace, not '.' or '..'. */
const IFNAME = /^(?!\.{1,2}$)[^/\s:]{1,15}$/;

export class MacvlanDriver extends HostNetlinkDriver implements NetworkDriver {
  readonly label = 'macvlan networks';
  private readonly log: Logger;

  constructor(opts: MacvlanDriverOptions) {
    super('macvlan driver', opts.hostNetns);
    this.log = componentLogger(opts.log, 'macvlan-driver');
  }

  /** Nothing to make on the host: a macvlan network is its parent interface, which the host has. */
  async reconcileNetworks(): Promise<void> {}

  attachTask(task: Task, netns: string): Promise<void> {
    return this.attach(task.id, netns, task.networks);
  }

  detachTask(taskId: string): Promise<void> {
    return this.detach(taskId);
  }

  /** Its macvlan link lives in the task's namespace: `eth<index>` goes from there. */
  detachInterface(task: { taskId: string; netns: string }, index: number, a: NetworkAttachment): Promise<void> {
    if (a.driver !== 'macvlan') return Promise.resolve();
    return this.exclusive(async () => {
      const nl = await Netlink.inNetns(task.netns);
      try {
        const link = await nl.getLink(`eth${index}`);
        if (link?.kind === 'macvlan') await nl.deleteLink(link.name);
      } finally {
        nl.close();
      }
    });
  }

  /** Nothing kept on the host to check: a task's macvlan end is checked with its other ends. */
  async doctorNetworks(): Promise<string[]> {
    return [];
  }

  /**
   * Plugs a task into its macvlan networks before its command starts: attachment i (driver
   * 'macvlan') becomes `eth<i>` in `taskNetns`. Attachments of other drivers are left alone.
   * A parent interface missing on this host is an InvalidArgument.
   */
  attach(taskId: string, taskNetns: string, attachments: NetworkAttachment[]): Promise<void> {
    return this.exclusive(async () => {
      if (!taskId) throw invalidArgument('a task id is needed to attach a task');
      const mine = attachments.map((a, index) => ({ a, index })).filter(({ a }) => a.driver === 'macvlan');
      if (mine.length === 0) return;
      const net = (a: NetworkAttachment) => a.networkName || a.networkId;
      for (const { a } of mine) {
        const parent = a.options?.parent ?? '';
        if (!parent) throw invalidArgument(`macvlan network ${net(a)} has no parent interface`);
        if (!IFNAME.test(parent)) throw invalidArgument(`macvlan network ${net(a)}: invalid parent interface ${JSON.stringify(parent)}`);
        if (!a.address || parseCidr(a.address)?.family !== 4) throw invalidArgument(`the task's address on ${net(a)} is not an IPv4 CIDR: ${JSON.stringify(a.address)}`);
        if (a.mac && !parseMac(a.mac)) throw invalidArgument(`the task's MAC on ${net(a)} is invalid: ${JSON.stringify(a.mac)}`);
      }
      const host = await this.hostNl();
      for (const { a } of mine) {
        const parent = a.options.parent;
        if (!(await host.getLink(parent))) throw invalidArgument(`parent interface ${parent} not found on this host`);
      }
      const task = await Netlink.inNetns(taskNetns);
      try {
        for (const { a, index } of mine) {
          const eth = `eth${index}`;
          const parent = a.options.parent;
          const existing = await task.getLink(eth);
          if (existing && existing.kind !== 'macvlan') throw failedPrecondition(`the task's ${eth} is a ${existing.kind} link, not a macvlan`);
          if (!existing) {
            const temp = `mv${randomBytes(6).toString('hex')}`;
            try {
              await host.ensureMacvlan(temp, parent, 'bridge');
              await host.moveToNetns(temp, taskNetns);
            } catch (err) {
              await host.deleteLink(temp).catch(() => undefined);
              throw err;
            }
            try {
              await task.rename(temp, eth);
            } catch (err) {
              await task.deleteLink(temp).catch(() => undefined);
              throw err;
            }
          }
          if (a.mac) await task.setMac(eth, a.mac);
          await task.ensureAddress(eth, a.address);
          await task.setUp(eth);
          if (index === 0 && !a.internal && a.gateway) await task.ensureRoute({ dst: 'default', gateway: a.gateway });
          this.log.debug({ taskId, networkId: a.networkId, parent, eth, address: a.address }, 'task attached to macvlan network');
        }
      } finally {
        task.close();
      }
      this.log.info({ taskId, networks: mine.map(({ a }) => a.networkId) }, 'task plugged into its macvlan networks');
    });
  }

  /** Nothing to do: a task's macvlan links live in its namespace and go with it. Kept for symmetry. */
  detach(taskId: string): Promise<void> {
    return this.exclusive(async () => {
      if (!taskId) throw invalidArgument('a task id is needed to detach a task');
    });
  }

}
