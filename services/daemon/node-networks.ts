import { BridgeDriver, bridgeNetworksOf, needsGatewayBridge } from '../../agent/network/bridge-driver';
import { MacvlanDriver } from '../../agent/network/macvlan-driver';
import { OverlayDriver, RunningTask } from '../../agent/network/overlay-driver';
import { TaskNetworks } from '../../agent/worker';
import { asSwarmletError } from '../common/errors';
import { Logger, componentLogger } from '../common/logger';
import { OverlayNetwork } from '../gen/swarmlet/v1/dispatcher';
import { Task } from '../gen/swarmlet/v1/types';

/** How often the kernel is checked against the last word of the dispatcher when nothing changed. */
const RESYNC_MS = 10000;
/** Name prefix of the bridge driver's bridges and veths in the host's network namespace. */
const BRIDGE_PREFIX = 'swb';

export interface NodeNetworksOptions {
  log: Logger;
  /** This node's advertise address: the local VTEP of its overlays. */
  localVtep: string;
  /** Overlay sandbox namespaces are named <netnsPrefix>-<vni>. */
  netnsPrefix: string;
  /** Task id -> network namespace of the tasks running here (the worker knows). */
  runningNetns: () => Map<string, string>;
}

/**
 * This node's networks, as the dispatcher describes them: overlays (sandboxes, VXLAN, peers),
 * bridge networks, and the gateway bridge that gives overlay tasks their way out. Each session
 * message is applied to the kernel before the worker sees its tasks, one message after another,
 * and again every few seconds, so that what was deleted by hand comes back. Each driver plugs in
 * the attachments of its own kind and leaves the others alone.
 */
export class NodeNetworks implements TaskNetworks {
  readonly overlay: OverlayDriver;
  private readonly bridge: BridgeDriver;
  private readonly macvlan: MacvlanDriver;
  private readonly log: Logger;
  private overlays: OverlayNetwork[] = [];
  private tasks: Task[] = [];
  private queue: Promise<void> = Promise.resolve();
  private timer?: NodeJS.Timeout;

  constructor(private readonly opts: NodeNetworksOptions) {
    this.log = componentLogger(opts.log, 'networks');
    this.overlay = new OverlayDriver({ log: opts.log, localVtep: opts.localVtep, sandboxPrefix: opts.netnsPrefix });
    this.bridge = new BridgeDriver({ log: opts.log, namePrefix: BRIDGE_PREFIX });
    this.macvlan = new MacvlanDriver({ log: opts.log });
  }

  /** Applies what a session message says; resolves once the kernel matches it (failures are logged; the next pass tries again). */
  apply(overlays: OverlayNetwork[], tasks: Task[]): Promise<void> {
    this.overlays = overlays;
    this.tasks = tasks;
    this.queue = this.queue.then(() => this.reconcile());
    return this.queue;
  }

  startResync(): void {
    clearInterval(this.timer);
    this.timer = setInterval(() => {
      this.queue = this.queue.then(() => this.reconcile());
    }, RESYNC_MS);
    this.timer.unref();
  }

  async attach(task: Task, netns: string): Promise<void> {
    await this.overlay.attach(task.id, netns, task.networks, this.overlays);
    await this.bridge.attach(task.id, netns, task.networks, bridgeNetworksOf([task.networks]));
    await this.macvlan.attach(task.id, netns, task.networks);
    // A task on overlays alone gets its way out through the gateway bridge, after its overlay interfaces.
    await this.bridge.attachGateway(task.id, netns, task.networks);
  }

  async detach(taskId: string): Promise<void> {
    await Promise.all([this.overlay.detach(taskId), this.bridge.detach(taskId), this.macvlan.detach(taskId)]);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.queue;
    await this.overlay.close();
    await this.bridge.close();
    await this.macvlan.close();
  }

  /** On leaving the swarm: every sandbox, bridge and rule this node's networks made goes. */
  static async removeAll(opts: Omit<NodeNetworksOptions, 'runningNetns'>): Promise<void> {
    const networks = new NodeNetworks({ ...opts, runningNetns: () => new Map() });
    await networks.apply([], []);
    await networks.close();
  }

  private async reconcile(): Promise<void> {
    const tasks = this.tasks;
    // Running tasks too: those a remade sandbox unplugged are plugged in again.
    await this.overlay
      .reconcile(this.overlays, this.running(tasks))
      .catch((err) => this.log.warn({ err: asSwarmletError(err).message }, 'overlay networks not reconciled; the next pass tries again'));
    await this.bridge
      .reconcile(bridgeNetworksOf(tasks.map((t) => t.networks)), { gateway: tasks.some((t) => needsGatewayBridge(t.networks)) })
      .catch((err) => this.log.warn({ err: asSwarmletError(err).message }, 'bridge networks not reconciled; the next pass tries again'));
  }

  /** The assigned tasks running here that have networks, with their namespaces. */
  private running(tasks: Task[]): RunningTask[] {
    const netns = this.opts.runningNetns();
    return tasks.flatMap((t) => {
      const path = netns.get(t.id);
      return path && t.networks.length > 0 ? [{ taskId: t.id, netns: path, attachments: t.networks }] : [];
    });
  }
}
