/**
 * The host side of overlay networks: makes this host's kernel match the overlay networks its tasks
 * are on, and plugs tasks into them.
 *
 * Per overlay network (VNI) with tasks here, a sandbox network namespace `<prefix>-<vni>`
 * (/run/netns) holds:
 *   - the bridge `br-<vni>` with the gateway address (so the subnet's connected route lives in the
 *     sandbox, never in the host's namespace: the host gets no route to an overlay subnet);
 *   - the VXLAN device `vx-<vni>`: created in the HOST namespace (local VTEP = this host's
 *     advertise address, port 4789, learning off, proxy on), then moved into the sandbox. Its UDP
 *     socket stays in the namespace it was created in, so encapsulated packets use the host's
 *     underlay while the device itself is a port of the sandbox's bridge. No underlay `dev` is
 *     set: after the move its ifindex would name a link of another namespace;
 *   - for every task of the network on another host: an FDB entry on `vx-<vni>` (task MAC -> that
 *     host's VTEP, self, permanent), the same MAC on the bridge (master, NUD_NOARP) so the bridge
 *     sends it to the VXLAN port instead of flooding, and a neighbour entry on `vx-<vni>` (task IP
 *     -> task MAC), from which the VXLAN device answers the tasks' ARP requests itself (proxy).
 *     ARP never crosses the underlay: there is no default (all-zero) FDB destination, so
 *     broadcasts stay on the host.
 *   - per task on this host, a veth `v<vni>-<task id>` on the bridge, whose peer is the task's
 *     `eth<i>`;
 *   - br_netfilter off (bridge-nf-call-* 0: plans/overlay-plan.ts SANDBOX_SYSCTLS), set when a
 *     handle on the sandbox is opened: nothing there filters, so bridged frames skip the IP hooks.
 *
 * The decisions come from the pure plan (plans/overlay-plan.ts: planSandboxes, which also makes a
 * `vx-<vni>` with ARP proxy off again and mirrors the remote peers in the bridges' FDB). This file
 * is the driver's front; its parts live in overlay/: the sandbox handles (sandboxes.ts), the
 * converge loop that reads, plans and applies until nothing is left to do (converge.ts), the
 * veth plumbing of tasks (veths.ts) and the doctor (doctor.ts). A `vx-<vni>` left in the host
 * namespace (the agent died between creating and moving it) is removed on the next full reconcile.
 *
 * A sandbox namespace deleted behind the driver's back is noticed by its inode: the driver cleans
 * what it still reaches through its old handle (the VXLAN device would otherwise keep the VNI
 * taken in the host's namespace) and opens the new one. The veths of tasks plugged into the old
 * sandbox went with it. The agent passes reconcile() the tasks running here (it knows them, also
 * after a restart, from the runtime); after the networks, reconcile plugs in again each one whose
 * sandbox-side veth is missing, off the bridge or down, as attach() would. Healthy tasks are only
 * looked at (one link listing per sandbox). The driver keeps no record of its own of what it
 * attached: what is wanted comes in with each call, what is there from the kernel.
 *
 * All calls are serialized. Every call is idempotent and starts from what the kernel has, so it is
 * safe after an agent restart, a reboot (sandboxes gone), or a manual `ip link del`.
 */
import { failedPrecondition, invalidArgument, unavailable } from '../../services/common/errors';
import { isIPv4 } from '../../services/common/cidr';
import { Logger, componentLogger } from '../../services/common/logger';
import type { OverlayNetwork } from '../../services/gen/swarmlet/v1/dispatcher';
import type { NetworkAttachment, Task } from '../../services/gen/swarmlet/v1/types';
import type { NetworkDriver, RunningTask, WantedNetworks } from './driver';
import { HostNetlinkDriver } from './host-netlink-driver';
import { WantedOverlay, planOverlayMtu, planOverlayProblem } from './plans/overlay-plan';
import { convergeOverlays } from './overlay/converge';
import { checkOverlayTasks, doctorOverlays } from './overlay/doctor';
import { OverlaySandboxes } from './overlay/sandboxes';
import { overlayAttachments, overlayVethName, plugTask, replugTasks } from './overlay/veths';

export interface OverlayDriverOptions {
  log: Logger;
  /** This host's advertise IP: the source address of its VXLAN packets. */
  localVtep: string;
  /** Path of the host's network namespace; default: this process's. */
  hostNetns?: string;
  /** Name prefix of the sandbox namespaces `<prefix>-<vni>`; default 'swl'. */
  sandboxPrefix?: string;
  /** Default: the MTU of the interface holding localVtep. */
  underlayMtu?: number;
}

const PREFIX = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;

export class OverlayDriver extends HostNetlinkDriver implements NetworkDriver {
  readonly label = 'overlay networks';
  private readonly localVtep: string;
  private readonly underlayMtuOpt?: number;
  private readonly log: Logger;
  private readonly sandboxes: OverlaySandboxes;

  constructor(opts: OverlayDriverOptions) {
    super('overlay driver', opts.hostNetns);
    const prefix = opts.sandboxPrefix ?? 'swl';
    if (!PREFIX.test(prefix)) throw invalidArgument(`invalid sandbox prefix ${JSON.stringify(prefix)}`);
    if (!isIPv4(opts.localVtep)) throw invalidArgument(`the local VTEP must be an IPv4 address, not ${JSON.stringify(opts.localVtep)}`);
    if (opts.underlayMtu !== undefined && !(Number.isInteger(opts.underlayMtu) && opts.underlayMtu >= 118 && opts.underlayMtu <= 65535)) {
      throw invalidArgument(`invalid underlay MTU ${opts.underlayMtu}`);
    }
    this.localVtep = opts.localVtep;
    this.underlayMtuOpt = opts.underlayMtu;
    this.log = componentLogger(opts.log, 'overlay-driver');
    this.sandboxes = new OverlaySandboxes({ prefix, localVtep: opts.localVtep }, { nl: () => this.hostNl(), release: () => this.releaseHost() }, this.log);
  }

  /** The sandbox namespace name of a VNI. */
  sandboxName(vni: number): string {
    return this.sandboxes.name(vni);
  }

  /**
   * Makes the kernel match `overlays` (the overlay networks with tasks on this host, as the
   * dispatcher sends them): sandboxes, links and peer entries of wanted networks are made or
   * fixed; those of networks not in the list are removed, sandbox namespaces included.
   *
   * `tasks` are the tasks running here. A task whose sandbox-side veth on a wanted network is
   * missing (its sandbox was made again, and its old veth pair went with the old one), not a port
   * of the bridge (the bridge was made again) or down is plugged in again as attach() does; the
   * others are not touched. A task whose namespace is gone is left to the worker.
   */
  reconcile(overlays: OverlayNetwork[], tasks: RunningTask[] = []): Promise<void> {
    return this.exclusive(async () => {
      const wanted = await this.wantedOf(overlays, 'skip');
      await convergeOverlays(this.sandboxes, this.log, wanted, true);
      await replugTasks(this.sandboxes, this.log, wanted, tasks);
    });
  }

  /**
   * Plugs a task into its overlay networks before its command starts. Attachment i (driver
   * 'overlay') becomes `eth<i>` in `taskNetns`, with its MAC, address and the network's MTU, up;
   * its other end `v<vni>-<task id>` is a port of the network's bridge. No default route (no
   * egress yet); the subnet's connected route comes with the address. The networks are set up
   * first if they are not yet (nothing else is touched). Attachments of other drivers are left to
   * their drivers, but keep their index.
   */
  attach(taskId: string, taskNetns: string, attachments: NetworkAttachment[], overlays: OverlayNetwork[]): Promise<void> {
    return this.exclusive(async () => {
      if (!taskId) throw invalidArgument('a task id is needed to attach a task');
      const log = this.log.child({ taskId });
      const mine = overlayAttachments(attachments);
      if (mine.length === 0) return;
      const networks = mine.map(({ a }) => {
        const o = overlays.find((x) => x.networkId === a.networkId);
        if (!o) throw unavailable(`overlay network ${a.networkName || a.networkId} is not known on this node yet`);
        return o;
      });
      const wanted = await this.wantedOf(networks, 'throw');
      await convergeOverlays(this.sandboxes, this.log, wanted, false);
      const ports = mine.map(({ a, index }, k) => ({ a, index, want: wanted.find((w) => w.networkId === networks[k].networkId) as WantedOverlay }));
      const made = await plugTask(this.sandboxes, this.log, taskId, taskNetns, ports);
      if (made) log.info({ networks: wanted.map((w) => w.networkId) }, 'task plugged into its overlay networks');
      else log.debug({ networks: wanted.map((w) => w.networkId) }, 'task already plugged into its overlay networks');
    });
  }

  /** Removes the task's sandbox-side veths (the task's own ends go with them, or went with its netns). */
  detach(taskId: string): Promise<void> {
    return this.exclusive(async () => {
      if (!taskId) throw invalidArgument('a task id is needed to detach a task');
      for (const { vni, mounted } of await this.sandboxes.discover()) {
        if (!mounted) continue;
        const sb = await this.sandboxes.openSandbox(vni);
        await this.sandboxes.guarded(sb, () => sb.nl.deleteLink(overlayVethName(vni, taskId)));
      }
      this.log.debug({ taskId }, 'task detached from overlay networks');
    });
  }

  /** Removes the task's sandbox-side veth on the attachment's overlay alone (its `eth<i>` goes with it). */
  detachInterface(task: { taskId: string }, _index: number, a: NetworkAttachment, wanted: WantedNetworks): Promise<void> {
    if (a.driver !== 'overlay') return Promise.resolve();
    const vni = wanted.overlays.find((o) => o.networkId === a.networkId)?.vni || a.vni;
    return this.exclusive(async () => {
      for (const s of await this.sandboxes.discover()) {
        if (s.vni !== vni || !s.mounted) continue;
        const sb = await this.sandboxes.openSandbox(vni);
        await this.sandboxes.guarded(sb, () => sb.nl.deleteLink(overlayVethName(vni, task.taskId)));
      }
      this.log.debug({ taskId: task.taskId, networkId: a.networkId, vni }, 'task detached from one overlay network');
    });
  }

  reconcileNetworks(wanted: WantedNetworks): Promise<void> {
    return this.reconcile(wanted.overlays, wanted.running);
  }

  attachTask(task: Task, netns: string, wanted: WantedNetworks): Promise<void> {
    return this.attach(task.id, netns, task.networks, wanted.overlays);
  }

  detachTask(taskId: string): Promise<void> {
    return this.detach(taskId);
  }

  /** doctor(), then checkTasks(). */
  async doctorNetworks(wanted: WantedNetworks): Promise<string[]> {
    return [...(await this.doctor(wanted.overlays)), ...(await this.checkTasks(wanted.overlays, wanted.running))];
  }

  /** What differs between the kernel and `overlays`, one sentence a line; [] when they match. Changes nothing. */
  doctor(overlays: OverlayNetwork[]): Promise<string[]> {
    return this.exclusive(async () => {
      const lines: string[] = [];
      const wanted = await this.wantedOf(overlays, (msg) => lines.push(msg));
      lines.push(...(await doctorOverlays(this.sandboxes, wanted)));
      return lines;
    });
  }

  /**
   * What is wrong with the running tasks' sandbox-side veths (network doctor): each on a network
   * wanted here must be there, a port of the network's bridge and up. A missing sandbox is
   * doctor()'s to report. Changes nothing.
   */
  checkTasks(overlays: OverlayNetwork[], tasks: RunningTask[]): Promise<string[]> {
    return this.exclusive(() => checkOverlayTasks(this.sandboxes, new Map(overlays.map((o) => [o.networkId, o.vni])), tasks));
  }

  /** close() closes the sandboxes' handles (and their helper processes) too. */
  protected override afterClose(): void {
    this.sandboxes.closeAll();
  }

  /** The overlays as the plan takes them; invalid ones are refused ('throw'), or logged and left out. */
  private async wantedOf(overlays: OverlayNetwork[], onInvalid: 'throw' | 'skip' | ((message: string) => void)): Promise<WantedOverlay[]> {
    const out: WantedOverlay[] = [];
    let underlay: number | undefined;
    for (const o of overlays) {
      const problem = planOverlayProblem(o);
      if (problem) {
        const message = `overlay network ${o.name || o.networkId} (VNI ${o.vni}): ${problem}`;
        if (onInvalid === 'throw') throw invalidArgument(message);
        if (onInvalid === 'skip') this.log.error({ networkId: o.networkId, vni: o.vni }, `${message}; left out`);
        else onInvalid(message);
        continue;
      }
      if (!o.mtu && underlay === undefined) underlay = await this.underlayMtu();
      const mtu = planOverlayMtu(underlay ?? 0, o.mtu || undefined);
      out.push({
        networkId: o.networkId,
        vni: o.vni,
        subnet: o.subnet,
        gateway: o.gateway,
        mtu,
        localVtep: this.localVtep,
        peers: o.peers.map((p) => ({ ip: p.ip, mac: p.mac, vtep: p.vtep })),
      });
    }
    return out;
  }

  private async underlayMtu(): Promise<number> {
    if (this.underlayMtuOpt !== undefined) return this.underlayMtuOpt;
    const host = await this.hostNl();
    const addr = (await host.listAddresses()).find((a) => a.family === 4 && a.address === this.localVtep);
    const link = addr && (await host.listLinks()).find((l) => l.index === addr.index);
    if (!link) throw failedPrecondition(`no interface of the host network namespace has the local VTEP address ${this.localVtep}`);
    return link.mtu;
  }
}
