import { EventEmitter } from 'node:events';
import { metrics, timed } from '../../services/metrics/metrics';
import { BridgeDriver, gatewayIndexOf, needsGatewayBridge } from './bridge-driver';
import { EmbeddedDns } from '../dns/embedded-dns';
import type { NetworkDriver, RunningTask, WantedNetworks } from './driver';
import { INGRESS_TASK_ID, IngressSandbox, nftProtocol, usableIngress } from './ingress-driver';
import { NftTables, devicesOf, ensurePublishSysctls, listNftTable, readRouteLocalnet } from './lb-driver';
import { MacvlanDriver } from './macvlan-driver';
import { Netlink } from './netlink';
import type { LinkInfo } from './netlink';
import { checkTaskEnd } from './plans/port-check';
import { ServedEndpoints, planEndpointsDown } from './plans/endpoints-down';
import { ContainerLayout, planContainerLayout } from './plans/container-layout';
import { OverlayDriver } from './overlay-driver';
import { VxlanFilter } from './vxlan-filter';
import { LB_NFT_TABLE, PUBLISH_NFT_TABLE, PublishRule, diffNftTable, planTaskVips, renderPublishNft, renderTaskLbNft } from './plans/lb-nft';
import { TaskNetworks } from '../worker';
import { GATEWAY_BRIDGE_SUBNET, planAttachmentOverlap } from '../../services/common/subnet-overlap';
import { containsAddress, parseCidr, parseIpv4 } from '../../services/common/cidr';
import { SwarmletError, asSwarmletError, conflict, unavailable } from '../../services/common/errors';
import { Logger, componentLogger } from '../../services/common/logger';
import { ReconcileLoop } from '../../services/common/reconcile-loop';
import { CheckOverlaysRequest, HostPort, IngressConfig, NetworkServices, OverlayNetwork, SessionMessage } from '../../services/gen/swarmlet/v1/dispatcher';
import { HostInterface, NetworkAttachment, Task, TaskState } from '../../services/gen/swarmlet/v1/types';
import { hostInterfaceSubnets } from '../host-interfaces';

/** How often the kernel is checked against the last word of the dispatcher when nothing changed (default). */
const RESYNC_MS = 10000;
/** Name prefix of the bridge driver's bridges and veths in the host's network namespace. */
export const BRIDGE_PREFIX = 'swb';
/** The key of the host's publish table among the nft tables. */
const HOST_KEY = 'host';

/** What a session message says about this node's networks (no `vteps`: no VXLAN filter). */
export type SessionNetworks = Pick<SessionMessage, 'overlays' | 'tasks' | 'services' | 'ingress' | 'hostPorts'> & Partial<Pick<SessionMessage, 'vteps'>>;

const NOTHING: SessionNetworks = Object.freeze({ overlays: [], tasks: [], services: [], ingress: undefined, hostPorts: [], vteps: [] });

export interface NetworkControllerOptions {
  log: Logger;
  /** This node's advertise address: the local VTEP of its overlays. */
  localVtep: string;
  /** Overlay sandbox namespaces are named <netnsPrefix>-<vni>; the ingress sandbox <netnsPrefix>-ingress. */
  netnsPrefix: string;
  /** Task id -> network namespace of the tasks running here (the worker knows). */
  runningNetns: () => Map<string, string>;
  /** The embedded DNS's upstream resolvers ('ip' or 'ip:port'); []: the host's. */
  dnsUpstreams?: readonly string[];
  /** Container id -> network namespace of this node's containers (agent/container-netns.ts): their network attachments are plugged in there. */
  containerNetns?: () => Map<string, string>;
  /** Called after a pass plugged or unplugged containers (pluggedAttachments() says which attachments are in). */
  onContainersChanged?: () => void;
  /** The subnets on the host's own interfaces, read when a task is plugged in; default: this namespace's (hostInterfaceSubnets). */
  hostInterfaces?: () => HostInterface[];
  /** How often a pass reads the kernel even when no message came (default 10 s; Infinity: only when asked, by resync()). */
  resyncMs?: number;
}

/** A container with its network attachment tasks (in their order of creation) and its namespace. */
interface ContainerPlug {
  containerId: string;
  netns: string;
  tasks: Task[];
}

/** A container as plugged in: its layout, and as the drivers see it (free slots are attachments of driver `none`). */
interface PluggedContainer {
  key: string;
  /** The attachments plugged in (those of `layout` whose plugging has not failed). */
  attachmentIds: string[];
  layout: ContainerLayout;
  running: RunningTask;
}

/** What a container is to be plugged in with: its namespace, attachments and their addresses. */
const plugKey = (c: ContainerPlug) => [c.netns, ...c.tasks.map((t) => `${t.id}=${t.networks[0].address}`)].join(',');

/** A free interface slot of a container, as the drivers take it: an attachment of driver `none` (nothing to plug). */
const FREE_SLOT: NetworkAttachment = Object.freeze(NetworkAttachment.fromPartial({ driver: 'none' }));

/** The container with this layout as the drivers take it. */
function containerAsRunning(c: ContainerPlug, layout: ContainerLayout): RunningTask {
  const byId = new Map(c.tasks.map((t) => [t.id, t.networks[0]]));
  return { taskId: c.containerId, netns: c.netns, attachments: layout.slots.map((id) => (id !== undefined && byId.get(id)) || FREE_SLOT), gatewayIndex: layout.gateway };
}

/** A running task's attachments without a container's free slots. */
const realAttachments = (t: RunningTask) => t.attachments.filter((a) => a !== FREE_SLOT);

/** A task's `ip swarmlet-lb` table for these services ('' for none). */
const lbTableOf = (attachments: NetworkAttachment[], services: NetworkServices[]) => renderTaskLbNft(planTaskVips(attachments, services));

/** Whether the task has a network namespace of its own (not the host's): only those get a VIP table. */
const ownNetns = (t: RunningTask) => t.attachments.some((a) => a.driver !== 'host' && a.driver !== 'none');


/**
 * The network controller: this node's networks, as the dispatcher describes them: the host's VXLAN filter (VXLAN from the
 * swarm's nodes alone), overlays (sandboxes, VXLAN, peers),
 * bridge networks, the gateway bridge that gives overlay tasks their way out, the embedded DNS,
 * the VIP load-balancing table in each running task's namespace, the ingress sandbox of the
 * routing mesh, and the host's table of published ports. Each session message is applied before
 * the worker sees its tasks: the DNS records and the rules that follow them (the tasks' VIP
 * tables, the ingress table) at once, beside any pass under way; then the kernel (overlays,
 * bridges, ingress sandbox, the tasks' tables, the host's table) by a pass of the controller's
 * ReconcileLoop. A task this node sees stop leaves the records and those rules here before the
 * managers hear of it (stopServing). The loop also runs every few seconds, reading the kernel
 * then, so that what was deleted by hand comes back. The network
 * drivers (overlay, bridge with the gateway bridge, macvlan) implement one port (driver.ts) that
 * this controller loops over, in that order; each plugs in the attachments of its own kind and
 * leaves the others alone. The ingress sandbox (made before the overlays and filled after the
 * bridges), the nft tables and the DNS are steps of their own around them.
 */
export class NetworkController implements TaskNetworks {
  readonly overlay: OverlayDriver;
  private readonly bridge: BridgeDriver;
  private readonly macvlan: MacvlanDriver;
  /** The drivers, in the order tasks are plugged in. */
  private readonly drivers: readonly NetworkDriver[];
  private readonly dns: EmbeddedDns;
  private readonly tables: NftTables;
  private readonly ingress: IngressSandbox;
  private readonly vxlanFilter: VxlanFilter;
  private readonly log: Logger;
  private state: SessionNetworks = NOTHING;
  /** A session message was applied: before that, a pass leaves the kernel alone. */
  private received = false;
  /** One pass at a time; messages that arrive during one coalesce into the next. */
  private readonly loop: ReconcileLoop;
  /** Container id -> what it is plugged in with (plugKey), its attachment ids and its layout. */
  private readonly plugged = new Map<string, PluggedContainer>();
  /** Containers whose last plugging failed, with the attachments it was for and why. */
  private readonly plugFailures = new Map<string, { attachmentIds: string[]; error: SwarmletError }>();
  /** Attachments being detached: unplugged at once, before the managers drop them. */
  private readonly unplugging = new Set<string>();
  /** This node's tasks that stopped serving (exited, or being stopped) before the managers said so (plans/endpoints-down.ts). */
  private readonly down = new Set<string>();
  /** served() of the state and the down set it was computed from: each VIP table's turn reads it, once per change. */
  private servedMemo?: { state: unknown; downSize: number; value: ServedEndpoints };
  /** 'plugged' after a container's interfaces changed. */
  private readonly events = new EventEmitter();

  constructor(private readonly opts: NetworkControllerOptions) {
    this.log = componentLogger(opts.log, 'networks');
    this.overlay = new OverlayDriver({ log: opts.log, localVtep: opts.localVtep, sandboxPrefix: opts.netnsPrefix });
    this.bridge = new BridgeDriver({ log: opts.log, namePrefix: BRIDGE_PREFIX, gatewaySubnet: GATEWAY_BRIDGE_SUBNET });
    this.macvlan = new MacvlanDriver({ log: opts.log });
    this.dns = new EmbeddedDns({ log: opts.log, upstreams: [...(opts.dnsUpstreams ?? [])] });
    this.tables = new NftTables({ log: opts.log });
    this.ingress = new IngressSandbox({ log: opts.log, netnsPrefix: opts.netnsPrefix, overlay: this.overlay, bridge: this.bridge, tables: this.tables });
    this.vxlanFilter = new VxlanFilter({ log: opts.log });
    this.drivers = [this.overlay, this.bridge, this.macvlan];
    this.loop = new ReconcileLoop(undefined, { name: 'networks', watch: [], resyncMs: opts.resyncMs ?? RESYNC_MS, reconcile: (_signal, pass) => this.reconcile(pass.resync) }, this.log);
    this.loop.start();
  }

  /**
   * Applies what a session message says: the DNS records at once, then the kernel; resolves once
   * a pass that began after the call has made the kernel match it (a step's failure is logged; the
   * next pass tries again). Callers are answered in the order they called.
   */
  apply(msg: SessionNetworks): Promise<void> {
    this.state = { overlays: msg.overlays, tasks: msg.tasks, services: msg.services, ingress: msg.ingress, hostPorts: msg.hostPorts, vteps: msg.vteps ?? [] };
    this.received = true;
    const ids = new Set(msg.tasks.map((t) => t.id));
    for (const id of [...this.unplugging]) if (!ids.has(id)) this.unplugging.delete(id);
    for (const id of [...this.down]) if (!ids.has(id)) this.down.delete(id);
    // The records and the rules that follow them at once, beside (not after) a pass under way.
    const endpoints = this.applyEndpoints();
    return Promise.all([endpoints, this.loop.request()]).then(() => undefined);
  }

  /**
   * The task (one of this node's) serves no more: its process exited, or it is about to be
   * stopped. It leaves its services' DNS records and the VIP and ingress backends on this node now,
   * in one go, without waiting for the managers to hear of it (plans/endpoints-down.ts); resolves
   * once the rules are applied (a failure is logged; the next pass applies them).
   */
  async stopServing(taskId: string): Promise<void> {
    if (!this.received || this.down.has(taskId)) return;
    this.down.add(taskId);
    if (this.served() === this.state) return;
    this.log.info({ taskId }, 'task stopped serving; its endpoints leave the records and rules on this node');
    await this.applyEndpoints();
  }

  /** A pass soon (a container's namespace was registered or went); nothing before the first message. */
  poke(): void {
    if (this.received) this.loop.poke();
  }

  /**
   * Resolves once the container is plugged in with the attachment (the session message brought
   * it and a pass plugged it). Rejects with the reason when plugging it failed for a reason a
   * retry does not cure (its namespace is gone, its subnet overlaps the host's), and Unavailable
   * after `timeoutMs`.
   */
  waitPlugged(containerId: string, attachmentId: string, timeoutMs: number): Promise<void> {
    const done = () => this.plugged.get(containerId)?.attachmentIds.includes(attachmentId) ?? false;
    const failed = () => {
      const f = this.plugFailures.get(containerId);
      return f?.attachmentIds.includes(attachmentId) && f.error.kind !== 'Unavailable' && f.error.kind !== 'Retryable' ? f.error : undefined;
    };
    if (done()) return Promise.resolve();
    if (failed()) return Promise.reject(failed());
    return new Promise((resolve, reject) => {
      const check = () => {
        const error = failed();
        if (!done() && !error) return;
        clearTimeout(timer);
        this.events.off('plugged', check);
        if (error) reject(error);
        else resolve();
      };
      const timer = setTimeout(() => {
        this.events.off('plugged', check);
        reject(unavailable(`the network attachment ${attachmentId} was not plugged into container ${containerId} within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      timer.unref();
      this.events.on('plugged', check);
    });
  }

  /** The attachment tasks plugged into their containers now. */
  pluggedAttachments(): Set<string> {
    return new Set([...this.plugged.values()].flatMap((p) => p.attachmentIds));
  }

  /** Takes the attachment out of its container now (the managers drop it after); resolves after the pass. */
  unplug(attachmentId: string): Promise<void> {
    this.unplugging.add(attachmentId);
    return this.loop.request();
  }

  /** The container attachments of the last session message, by container id (those being unplugged aside). */
  containerAttachments(): Map<string, Task[]> {
    const out = new Map<string, Task[]>();
    for (const t of this.state.tasks) {
      const containerId = t.spec?.attachment?.containerId;
      if (!containerId || t.desiredState > TaskState.TASK_STATE_RUNNING || !t.networks[0]?.address || this.unplugging.has(t.id)) continue;
      out.set(containerId, [...(out.get(containerId) ?? []), t]);
    }
    for (const list of out.values()) list.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
    return out;
  }

  /** The last message's records and ingress backends, less the tasks this node knows are down. */
  private served(): ServedEndpoints {
    // The down set only grows between messages (apply() replaces the state when it shrinks it).
    const m = this.servedMemo;
    if (m && m.state === this.state && m.downSize === this.down.size) return m.value;
    const value = planEndpointsDown(this.state, this.state.tasks, this.down);
    this.servedMemo = { state: this.state, downSize: this.down.size, value };
    return value;
  }

  /**
   * The DNS records, then every running task's VIP table and the ingress sandbox's table (side by
   * side), from served(): what follows the services' backends, applied in one go.
   */
  private async applyEndpoints(): Promise<void> {
    if (!this.received) return;
    this.dns.apply(this.served().services);
    const ingress = usableIngress(this.state.ingress);
    const running = this.running(this.state.tasks);
    await Promise.all([
      this.step('VIP tables not updated', () => this.reconcileLb(running, false)),
      ingress ? this.step('ingress table not updated', () => this.ingress.applyRules(ingress, () => this.served().ingress)) : undefined,
    ]);
  }

  /** A pass that reads the kernel's tables instead of trusting what it applied last; nothing before the first message. */
  resync(): Promise<void> {
    return this.loop.request({ resync: true });
  }

  /** Networks, then the VIP table, then the DNS sockets: all before the task's command starts. */
  async attach(task: Task, netns: string): Promise<void> {
    const overlap = planAttachmentOverlap(task.networks, (this.opts.hostInterfaces ?? (() => hostInterfaceSubnets(BRIDGE_PREFIX)))(), 'this host');
    if (overlap) throw conflict(overlap);
    const wanted = this.wanted(false);
    for (const driver of this.drivers) await driver.attachTask(task, netns, wanted);
    await this.tables.ensure(task.id, netns, LB_NFT_TABLE, () => lbTableOf(task.networks, this.served().services));
    await this.dns.attach(task, netns);
    // Its host-mode ports point at its address, known now.
    if (this.state.hostPorts.some((p) => p.taskId === task.id)) this.loop.poke();
  }

  async detach(taskId: string): Promise<void> {
    this.tables.forget(taskId);
    await Promise.all([this.dns.detach(taskId), ...this.drivers.map((d) => d.detachTask(taskId))]);
  }

  async close(): Promise<void> {
    await this.loop.stop();
    this.events.removeAllListeners();
    await this.dns.close();
    for (const driver of this.drivers) await driver.close();
  }

  /** On leaving the swarm: every sandbox, bridge and rule this node's networks made goes. */
  static async removeAll(opts: Omit<NetworkControllerOptions, 'runningNetns'>): Promise<void> {
    const networks = new NetworkController({ ...opts, runningNetns: () => new Map() });
    networks.dns.apply([]);
    networks.received = true;
    // Reading the kernel: tables of an earlier run go too.
    await networks.resync();
    await networks.close();
  }

  /**
   * What differs between the kernel and the request (network doctor), one sentence a line: the
   * overlays and the VXLAN filter (against the last session message's nodes); with checkServices also the DNS records, the running tasks' VIP tables, the ingress
   * sandbox and the host's table of published ports. Changes nothing. A doctor of one network
   * sends only that network's part: where the request is silent (networks it does not name; no
   * ingress and no host port at all), the last session message stands in, so the rest of the node
   * is not reported stale.
   */
  async doctor(req: CheckOverlaysRequest): Promise<string[]> {
    const named = new Set([...req.overlays.map((o) => o.networkId), ...req.services.map((n) => n.networkId)]);
    const overlays = [...req.overlays, ...this.state.overlays.filter((o) => !named.has(o.networkId))];
    // The running tasks alone (not the ingress sandbox, which has checks of its own below).
    const wanted: WantedNetworks = { ...this.wanted(false), overlays, running: this.running(this.state.tasks) };
    const lines: string[] = [];
    try {
      lines.push(...(await this.vxlanFilter.check(this.state.vteps ?? [])));
    } catch (err) {
      lines.push(`cannot check the VXLAN filter: ${asSwarmletError(err).message}`);
    }
    // The drivers' host-side ends, then the tasks' own ends right after: a pass that plugs a task
    // in again between the two would hide one of a pair's missing ends.
    for (const driver of this.drivers) {
      try {
        lines.push(...(await driver.doctorNetworks(wanted)));
      } catch (err) {
        lines.push(`cannot check the ${driver.label}: ${asSwarmletError(err).message}`);
      }
    }
    lines.push(...(await this.checkTaskEnds(overlays)));
    if (!req.checkServices) return lines;
    const silent = !req.ingress && req.hostPorts.length === 0;
    // What this node knows to be down ahead of the managers is down in what is checked, too.
    const { services, ingress } = planEndpointsDown({ services: [...req.services, ...this.state.services.filter((n) => !named.has(n.networkId))], ingress: silent ? this.state.ingress : req.ingress }, this.state.tasks, this.down);
    const hostPorts = silent ? this.state.hostPorts : req.hostPorts;
    const running = this.running(this.state.tasks);
    lines.push(...this.dns.check(services, running));
    // A task stopped serving here keeps whatever table it had (reconcileLb leaves it alone).
    for (const t of running.filter((x) => ownNetns(x) && !this.down.has(x.taskId))) {
      try {
        const diff = diffNftTable(`VIP table ${LB_NFT_TABLE} of task ${t.taskId}`, await listNftTable(t.netns, LB_NFT_TABLE), lbTableOf(t.attachments, services));
        if (diff) lines.push(diff);
      } catch (err) {
        lines.push(`cannot read the VIP table of task ${t.taskId}: ${asSwarmletError(err).message}`);
      }
    }
    lines.push(...(await this.ingress.check(ingress)));
    try {
      const usable = usableIngress(ingress);
      const sandboxAddress = usable && (await this.ingress.gatewayAddress(usable));
      const rules = await this.publishRules(usable, sandboxAddress, hostPorts, this.state.tasks);
      const diff = diffNftTable(`host table ${PUBLISH_NFT_TABLE}`, await listNftTable(undefined, PUBLISH_NFT_TABLE), renderPublishNft(rules));
      if (diff) lines.push(diff);
      for (const dev of devicesOf(rules)) {
        if ((await readRouteLocalnet(dev)) === '0') lines.push(`route_localnet is off on ${dev}: published ports do not answer on 127.0.0.1`);
      }
    } catch (err) {
      lines.push(`cannot check the host table ${PUBLISH_NFT_TABLE}: ${asSwarmletError(err).message}`);
    }
    return lines;
  }

  /** The running tasks' own ends of their links (network doctor), in their namespaces. */
  private async checkTaskEnds(overlays: OverlayNetwork[]): Promise<string[]> {
    const running = this.running(this.state.tasks);
    const wantedOverlays = new Set(overlays.map((o) => o.networkId));
    const lines: string[] = [];
    for (const t of running.filter(ownNetns)) {
      let links: LinkInfo[];
      try {
        const nl = await Netlink.inNetns(t.netns);
        try {
          links = await nl.listLinks();
        } finally {
          nl.close();
        }
      } catch (err) {
        lines.push(`cannot read the namespace of task ${t.taskId}: ${asSwarmletError(err).message}`);
        continue;
      }
      t.attachments.forEach((a, index) => {
        // An overlay not wanted here (yet) has nothing to plug into, as the overlay driver sees it.
        if (a.driver === 'host' || a.driver === 'none' || (a.driver === 'overlay' && !wantedOverlays.has(a.networkId))) return;
        const line = checkTaskEnd(links, `eth${index}`, a.networkName || a.networkId, t.taskId);
        if (line) lines.push(line);
      });
      const gatewayIndex = gatewayIndexOf(t);
      if (gatewayIndex !== undefined) {
        const line = checkTaskEnd(links, `eth${gatewayIndex}`, 'the gateway bridge', t.taskId);
        if (line) lines.push(line);
      }
    }
    return lines;
  }

  /** One pass over everything (none before the first message); each step's failure is logged and the next steps still run. */
  private async reconcile(verify: boolean): Promise<void> {
    if (!this.received) return;
    const { tasks, hostPorts } = this.state;
    const ingress = usableIngress(this.state.ingress);
    if (this.state.ingress && !ingress) this.log.warn({ networkId: this.state.ingress.networkId }, 'the ingress config has no usable endpoint for this node; no ingress sandbox');
    // First the records and the rules that follow the services' backends (VIP tables, the ingress
    // table): a stopped task leaves the rules when it leaves DNS, not after the overlays and
    // bridges have been gone over (the steps below apply them again on verify).
    await this.applyEndpoints();
    // Before the overlays: a new peer's VTEP is admitted before its FDB entries point at it.
    await this.step('VXLAN filter not applied', () => this.vxlanFilter.ensure(this.state.vteps ?? [], verify));
    if (ingress) await this.step('ingress sandbox not prepared', () => this.ingress.prepare(ingress, verify));
    // Running tasks too: those a remade sandbox unplugged are plugged in again (the ingress sandbox as well).
    const wanted = this.wanted(true);
    for (const driver of this.drivers) await this.step(`${driver.label} not reconciled`, () => timed(metrics.netlinkSeconds.labels(driver.label.split(" ")[0]), () => driver.reconcileNetworks(wanted)));
    await this.reconcileContainers();
    const running = this.running(tasks);
    const sandboxAddress = ingress ? await this.step('ingress sandbox not reconciled', () => this.ingress.ensure(ingress, verify, () => this.served().ingress)) : await this.step('ingress sandbox not removed', () => this.ingress.remove());
    await this.step('VIP tables not reconciled', () => this.reconcileLb(running, verify));
    await this.step('published ports not reconciled', () => this.reconcilePublish(ingress, sandboxAddress || undefined, hostPorts, tasks, verify));
    await this.step('DNS sockets not reconciled', () => this.dns.reconcile(running));
  }

  /**
   * Plugs each container with attachments here into them, and unplugs those that have none left or
   * whose namespace is no longer registered. A container whose attachments changed (network
   * connect, disconnect) has the interfaces concerned alone plugged or unplugged: the others, and
   * the connections over them, are not touched (plans/container-layout.ts says which `eth<i>`).
   */
  private async reconcileContainers(): Promise<void> {
    const wanted = new Map(this.containers().map((c) => [c.containerId, c]));
    for (const id of [...this.plugged.keys()]) {
      if (wanted.has(id)) continue;
      await this.step(`container ${id} not unplugged`, () => this.detach(id));
      this.plugged.delete(id);
      this.plugFailures.delete(id);
      this.log.info({ containerId: id }, 'container unplugged from its cluster networks');
      this.events.emit('plugged');
    }
    for (const [id, c] of wanted) {
      const key = plugKey(c);
      const had = this.plugged.get(id);
      if (had?.key === key) continue;
      // A namespace other than the one plugged in is a new one: it starts from what it has.
      const before = had && had.running.netns === c.netns ? had : undefined;
      const ids = c.tasks.map((t) => t.id);
      let layout: ContainerLayout | undefined;
      let running: RunningTask | undefined;
      try {
        // After an agent restart, the interfaces keep the names the kernel has for them.
        const prev = before?.layout ?? (await this.layoutInKernel(c));
        layout = planContainerLayout(prev, ids, needsGatewayBridge(c.tasks.map((t) => t.networks[0])));
        running = containerAsRunning(c, layout);
        await this.replugContainer(before, running, layout);
        this.plugged.set(id, { key, attachmentIds: ids, layout, running });
        this.plugFailures.delete(id);
        this.log.info({ containerId: id, attachments: ids, interfaces: layout.slots }, 'container plugged into its cluster networks');
      } catch (err) {
        const error = asSwarmletError(err);
        const kept = new Set(before?.attachmentIds ?? []);
        if (layout && running) this.plugged.set(id, { key: '', attachmentIds: ids.filter((x) => kept.has(x)), layout, running });
        else this.plugged.delete(id);
        this.plugFailures.set(id, { attachmentIds: ids, error });
        this.log.warn({ containerId: id, err: error.message }, 'container not plugged into its cluster networks; the next pass tries again');
      }
      this.events.emit('plugged');
    }
    for (const id of [...this.plugFailures.keys()]) if (!wanted.has(id)) this.plugFailures.delete(id);
    if (this.plugged.size > 0 || wanted.size > 0) this.opts.onContainersChanged?.();
  }

  /**
   * Takes the container from what it is plugged in with (`before`; nothing: a first plugging, every
   * interface made sure of) to `running`: the interfaces of attachments that went come out, the new
   * ones go in, the gateway bridge's follows; then its VIP table and resolver.
   */
  private async replugContainer(before: PluggedContainer | undefined, running: RunningTask, layout: ContainerLayout): Promise<void> {
    const wanted = this.wanted(false);
    const id = running.taskId;
    const plugged = new Set(before?.attachmentIds ?? []);
    if (before) {
      for (const [index, a] of before.running.attachments.entries()) {
        const attachmentId = before.layout.slots[index];
        if (a === FREE_SLOT || attachmentId === undefined) continue;
        if (layout.slots[index] === attachmentId && running.attachments[index].address === a.address) continue;
        for (const driver of this.drivers) await driver.detachInterface(running, index, a, wanted);
        plugged.delete(attachmentId);
      }
      if (before.layout.gateway !== undefined && before.layout.gateway !== layout.gateway) await this.bridge.detach(id, before.layout.gateway);
    }
    const added = running.attachments.map((a, index) => (layout.slots[index] !== undefined && !plugged.has(layout.slots[index]!) ? a : FREE_SLOT));
    const overlap = planAttachmentOverlap(realAttachments({ ...running, attachments: added }), (this.opts.hostInterfaces ?? (() => hostInterfaceSubnets(BRIDGE_PREFIX)))(), 'this host');
    if (overlap) throw conflict(overlap);
    const gateway = layout.gateway !== undefined && (!before || before.layout.gateway !== layout.gateway) ? layout.gateway : undefined;
    const task = Task.fromPartial({ id, networks: added });
    for (const driver of this.drivers) await driver.attachTask(task, running.netns, wanted, { gateway });
    const real = realAttachments(running);
    await this.tables.ensure(id, running.netns, LB_NFT_TABLE, () => lbTableOf(real, this.served().services));
    await this.dns.attach(Task.fromPartial({ id, networks: real }), running.netns);
  }

  /** The container's interfaces as its namespace has them (after an agent restart): each attachment's by its address, the gateway bridge's by its subnet. */
  private async layoutInKernel(c: ContainerPlug): Promise<ContainerLayout | undefined> {
    let addresses: { ifname: string; cidr: string }[];
    try {
      const nl = await Netlink.inNetns(c.netns);
      try {
        addresses = (await nl.listAddresses()).filter((a) => a.family === 4).map((a) => ({ ifname: a.ifname, cidr: `${a.address}/${a.prefixLength}` }));
      } finally {
        nl.close();
      }
    } catch {
      return undefined;
    }
    const slotOf = (ifname: string) => (/^eth(\d+)$/.test(ifname) ? Number(ifname.slice(3)) : undefined);
    const slots: (string | undefined)[] = [];
    for (const t of c.tasks) {
      const i = addresses.map((a) => (a.cidr === t.networks[0].address ? slotOf(a.ifname) : undefined)).find((x) => x !== undefined);
      if (i !== undefined && slots[i] === undefined) slots[i] = t.id;
    }
    const gw = parseCidr(GATEWAY_BRIDGE_SUBNET);
    const gateway = addresses.map((a) => (slots[slotOf(a.ifname) ?? -1] === undefined && containsAddress(gw, parseIpv4(a.cidr.split('/')[0])) ? slotOf(a.ifname) : undefined)).find((x) => x !== undefined);
    return { slots: Array.from(slots), gateway };
  }

  /** The containers registered here that have attachments, with their namespaces. */
  private containers(): ContainerPlug[] {
    const netns = this.opts.containerNetns?.() ?? new Map<string, string>();
    return [...this.containerAttachments()].flatMap(([containerId, tasks]) => {
      const path = netns.get(containerId);
      return path ? [{ containerId, netns: path, tasks }] : [];
    });
  }

  private async step<T>(what: string, fn: () => Promise<T>): Promise<T | undefined> {
    try {
      return await fn();
    } catch (err) {
      this.log.warn({ err: asSwarmletError(err).message }, `${what}; the next pass tries again`);
      return undefined;
    }
  }

  /**
   * Each running task's VIP table, from the records as served() has them when the table's turn
   * comes; the tables of tasks no longer running are forgotten (they went with their namespace).
   */
  private async reconcileLb(all: RunningTask[], verify: boolean): Promise<void> {
    // A task that stopped serving here has no use for its own table (its namespace is going, or gone).
    const running = all.filter((t) => ownNetns(t) && !this.down.has(t.taskId));
    const ids = new Set(running.map((t) => t.taskId));
    for (const key of this.tables.keys()) if (key !== HOST_KEY && key !== INGRESS_TASK_ID && !ids.has(key)) this.tables.forget(key);
    const results = await Promise.allSettled(running.map((t) => this.tables.ensure(t.taskId, t.netns, LB_NFT_TABLE, () => lbTableOf(t.attachments, this.served().services), verify)));
    const failed = running.flatMap((t, i) => {
      const r = results[i];
      return r.status === 'rejected' ? [`task ${t.taskId}: ${asSwarmletError(r.reason).message}`] : [];
    });
    if (failed.length) throw new Error(failed.join('; '));
  }

  private async reconcilePublish(ingress: IngressConfig | undefined, sandboxAddress: string | undefined, hostPorts: HostPort[], tasks: Task[], verify: boolean): Promise<void> {
    const rules = await this.publishRules(ingress, sandboxAddress, hostPorts, tasks);
    const body = renderPublishNft(rules);
    const changed = await this.tables.ensure(HOST_KEY, undefined, PUBLISH_NFT_TABLE, body, verify);
    if (body && (changed || verify)) await ensurePublishSysctls(rules);
  }

  /**
   * The host's DNAT rules: ingress ports to the ingress sandbox (same port), host-mode ports to
   * their task's address (its first bridge network's, else its gateway bridge's) and target port.
   * A port whose address is not known (yet) is left out.
   */
  private async publishRules(ingress: IngressConfig | undefined, sandboxAddress: string | undefined, hostPorts: HostPort[], tasks: Task[]): Promise<PublishRule[]> {
    const rules: PublishRule[] = [];
    if (ingress && sandboxAddress) {
      const device = this.bridge.gatewayBridgeName();
      for (const p of ingress.ports) rules.push({ protocol: nftProtocol(p.protocol), publishedPort: p.publishedPort, address: sandboxAddress, targetPort: 0, device });
    }
    if (hostPorts.length === 0) return rules;
    const byId = new Map(tasks.map((t) => [t.id, t]));
    const published = hostPorts.map((p) => byId.get(p.taskId)).filter((t): t is Task => t !== undefined);
    const gateway = await this.bridge.gatewayAddresses(published.map((t) => ({ taskId: t.id, attachments: t.networks })));
    for (const p of hostPorts) {
      const task = byId.get(p.taskId);
      const onBridge = task?.networks.find((n) => n.driver === 'bridge' && n.address);
      const address = onBridge ? onBridge.address.split('/')[0] : task && gateway.get(task.id);
      if (!address) {
        this.log.debug({ taskId: p.taskId, port: p.publishedPort }, 'host-mode port left out: the task has no address on this host yet');
        continue;
      }
      const device = onBridge ? this.bridge.bridgeName(onBridge.networkId) : this.bridge.gatewayBridgeName();
      rules.push({ protocol: nftProtocol(p.protocol), publishedPort: p.publishedPort, address, targetPort: p.targetPort, device });
    }
    return rules;
  }

  /**
   * What the drivers are to make of the last session message: the running tasks, and with
   * `withSandbox` the ingress sandbox among them (plugged into the ingress overlay as a task is).
   */
  private wanted(withSandbox: boolean): WantedNetworks {
    const { overlays, tasks } = this.state;
    const running = this.running(tasks);
    const sandbox = withSandbox ? this.ingress.asTask(usableIngress(this.state.ingress)) : undefined;
    return {
      overlays,
      tasks,
      running: sandbox ? [...running, sandbox] : running,
      gateway: tasks.some((t) => needsGatewayBridge(t.networks)) || usableIngress(this.state.ingress) !== undefined,
    };
  }

  /**
   * The assigned tasks running here that have networks, with their namespaces; and the containers
   * plugged into their attachments as they are wanted (a container whose attachments changed is
   * left to reconcileContainers, which plugs it in again).
   */
  private running(tasks: Task[]): RunningTask[] {
    const netns = this.opts.runningNetns();
    const own = tasks.flatMap((t) => {
      const path = netns.get(t.id);
      return path && t.networks.length > 0 && !t.spec?.attachment ? [{ taskId: t.id, netns: path, attachments: t.networks }] : [];
    });
    const containers = this.containers().flatMap((c) => {
      const p = this.plugged.get(c.containerId);
      return p && p.key === plugKey(c) ? [p.running] : [];
    });
    return [...own, ...containers];
  }
}
