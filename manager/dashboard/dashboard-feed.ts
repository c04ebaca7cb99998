import { Logger, componentLogger } from '../../services/common/logger';
import { ReconcileLoop } from '../../services/common/reconcile-loop';
import { Event } from '../../services/gen/swarmlet/v1/control';
import { readClusterView } from '../cluster-view';
import { keys } from '../store/keys';
import { Store } from '../store/store';
import { DashboardView, planDashboardView } from './dashboard-plans';

export interface DashboardFeedOptions {
  /** A store over the manager's watched snapshot: what the dispatcher reads, on every manager. */
  store: Store;
  /** The leader now (from the same snapshot). */
  leaderId: () => Promise<string | undefined>;
  /** The manager's latest cluster events, oldest first (the `swarmlet events` source). */
  events: () => readonly Event[];
  log: Logger;
}

/** A change to what the page shows reaches it within this long even when no watched key moved (new events). */
const RESYNC_MS = 1000;

/** What makes the page change: every object it shows, the heartbeats and managers (node state, reachability) and the election (leader). */
const WATCHED = [keys.nodesPrefix, keys.tasksPrefix, keys.servicesPrefix, keys.networksPrefix, keys.managersPrefix, keys.electionPrefix];

/**
 * The dashboard's data: a view read on demand, and a feed that sends each subscriber the view
 * (as JSON) whenever it differs from what that subscriber last got. One reconcile loop over the
 * snapshot recomputes the view after any change (and every second, for events); with no
 * subscriber its passes read nothing.
 */
export class DashboardFeed {
  private readonly loop: ReconcileLoop;
  /** Each subscriber, with the JSON it got last. */
  private readonly subscribers = new Map<(json: string) => void, string>();

  constructor(private readonly opts: DashboardFeedOptions) {
    const log = componentLogger(opts.log, 'dashboard');
    this.loop = new ReconcileLoop(opts.store, { name: 'dashboard', watch: WATCHED, resyncMs: RESYNC_MS, coalesceMs: 50, reconcile: () => this.send() }, log);
  }

  start(): void {
    this.loop.start();
  }

  async stop(): Promise<void> {
    await this.loop.stop();
    this.subscribers.clear();
  }

  async view(): Promise<DashboardView> {
    const { store } = this.opts;
    const [{ nodes }, tasks, services, networks] = await Promise.all([readClusterView(store, this.opts.leaderId), store.listTasks(), store.listServices(), store.listNetworks()]);
    return planDashboardView({ nodes, tasks, services, networks, events: this.opts.events() });
  }

  /** `send` gets the view now, and again after every change; the returned function ends that. */
  subscribe(send: (json: string) => void): () => void {
    this.subscribers.set(send, '');
    this.loop.poke();
    return () => void this.subscribers.delete(send);
  }

  private async send(): Promise<void> {
    if (this.subscribers.size === 0) return;
    const json = JSON.stringify(await this.view());
    for (const [send, last] of this.subscribers) {
      if (last === json || !this.subscribers.has(send)) continue;
      this.subscribers.set(send, json);
      send(json);
    }
  }
}
