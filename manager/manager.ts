import * as grpc from '@grpc/grpc-js';
import { Campaign, Election, Etcd3, Lease } from 'etcd3';
import { exponentialBackoff, sleep } from '../services/common/backoff';
import { permissionDenied } from '../services/common/errors';
import { Logger, componentLogger } from '../services/common/logger';
import { requireRoles, TlsMaterial } from '../services/api/tls';
import { PeerIdentity } from '../services/pki/ca';
import { ControlServer, ControlService } from '../services/gen/swarmlet/v1/control';
import { CAService, MembersService } from '../services/gen/swarmlet/v1/dispatcher';
import { caService } from './ca-service';
import { controlService } from './control-service';
import { Dispatcher, dispatcherServiceDefinition } from './dispatcher';
import { heartbeatSilenceSeconds } from './node-plans';
import { ClusterSpec } from '../services/gen/swarmlet/v1/types';
import { membersService } from './members-service';
import { PeerAccess } from './peer-access';
import { OperatorCertRegistry } from './store/operator-certs';
import { nodeHealthLoop } from './node-health';
import { keepRaftLeaderElsewhere } from './raft-leadership';
import { allocatorLoop, builtinNetworksLoop, orchestratorLoop, schedulerLoop } from './task-loops';
import { ReconcileLoop } from '../services/common/reconcile-loop';
import { SealKeySource } from './service-secrets';
import { EtcdStore, LeadershipFence } from './store/etcd-store';
import { keys, SNAPSHOT_PREFIXES, SNAPSHOT_ROOTS } from './store/keys';
import { WatchedSnapshot } from './store/snapshot';
import { timedStore } from './store/timed-store';
import { ClusterEvents } from './events/cluster-events';
import { DashboardTokens } from './store/dashboard-token';
import { DashboardFeed } from './dashboard/dashboard-feed';
import { hasClearSecrets } from './store/cluster-secrets';
import { EtcdQuorum } from './store/etcd-quorum';
import { guardQuorum } from './quorum-guard';
import { Node, Task } from '../services/gen/swarmlet/v1/types';

/**
 * Resolves with what `start` resolves (or undefined once `signal` aborts), and then leaves no
 * listener on `signal`: the manager's signal lives as long as the manager, through many leases
 * and campaigns.
 */
function untilAborted<T = void>(signal: AbortSignal, start: (resolve: (value: T) => void) => void): Promise<T | undefined> {
  let onAbort: () => void = () => undefined;
  return new Promise<T | undefined>((resolve) => {
    onAbort = () => resolve(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
    start(resolve);
  }).finally(() => signal.removeEventListener('abort', onAbort));
}

/**
 * How long a dead leader keeps its title: its election lease's TTL, in seconds (etcd's shortest,
 * with the embedded members' 500 ms election timeout). etcd drops an expired lease within 500 ms
 * more, and the next campaign takes office: a new leader within 1.5 s of the old one's last keepalive.
 */
export const LEADER_LEASE_SECONDS = 1;

/** How long a manager's presence key outlives its daemon (what `node ls` shows as Reachable): 2 s, or an agent's heartbeat silence if longer. */
export const presenceLeaseSeconds = (spec: ClusterSpec | undefined) => Math.max(2, heartbeatSilenceSeconds(spec));

export interface ManagerOptions {
  nodeId: string;
  etcd: Etcd3;
  /** The node's certificate as it is now (renewals replace it). */
  tls: () => TlsMaterial;
  /** What other nodes dial, IP:PORT. */
  apiAddr: string;
  /** Whether managers run their own etcd members (else an external etcd). */
  embeddedEtcd: boolean;
  log: Logger;
  /** The managers' shared key for registry credentials (kept in the data dir). */
  sealKey?: SealKeySource;
  /** The etcd peer URLs of the managers this node last knew (itself included): how quorum is judged when its own member does not answer. */
  knownEtcdPeers?: () => string[];
  /** https://IP:PORT/ where this manager's daemon serves the web dashboard, if it does. */
  dashboardUrl?: string;
}

/** The names of the services a manager adds to its node's TCP server. */
export const MANAGER_SERVICES = ['swarmlet.v1.Control', 'swarmlet.v1.CA', 'swarmlet.v1.Members', 'swarmlet.v1.Dispatcher'];

/**
 * A manager: the Control, CA, Members and Dispatcher services (on its node's TCP server), a presence key
 * that says it is running, and a campaign for leadership. Only the leader runs the loops that
 * write derived state (node health, orchestration, allocation, scheduling). Any manager serves the API, since
 * all of them read and write the same etcd.
 */
export class Manager {
  /** Reads etcd directly: what the Control API uses (a CLI reads what any manager just wrote). */
  readonly store: EtcdStore;
  /** The cluster state the dispatcher and the leader's loops read, kept current by one watch; `stats()` says what it read. */
  readonly snapshot: WatchedSnapshot;
  private readonly loopStore: EtcdStore;
  readonly control: ControlServer;
  /** Whether the managers' embedded etcd has quorum (undefined with an external etcd, whose members are not managers). */
  readonly quorum?: EtcdQuorum;
  private readonly log: Logger;
  private readonly election: Election;
  private readonly dispatcher: Dispatcher;
  private readonly access: PeerAccess;
  private readonly controller = new AbortController();
  private campaign?: Campaign;
  private presence?: Lease;
  private leaderLoops: ReconcileLoop[] = [];
  private tasks: Promise<void>[] = [];
  private stopRaftWatch?: () => void;
  /** The cluster's events, with a history of the latest ones. */
  readonly events: ClusterEvents;
  /** The swarm's web dashboard token. */
  readonly dashboardTokens: DashboardTokens;

  constructor(private readonly opts: ManagerOptions) {
    this.log = componentLogger(opts.log, 'manager', { nodeId: opts.nodeId });
    this.store = timedStore(new EtcdStore(opts.etcd, undefined, opts.sealKey));
    this.snapshot = new WatchedSnapshot(opts.etcd, SNAPSHOT_ROOTS, SNAPSHOT_PREFIXES, opts.log);
    this.loopStore = this.store.withSnapshot(this.snapshot);
    const operators = new OperatorCertRegistry(opts.etcd);
    this.access = new PeerAccess(this.store, operators, opts.log);
    this.election = opts.etcd.election(keys.election, LEADER_LEASE_SECONDS);
    const leaderId = () => this.leaderId();
    // The dispatcher's passes learn the leader from the snapshot's watch of the election: a pass reads nothing from etcd.
    this.dispatcher = new Dispatcher(this.loopStore, opts.log, () => this.loopStore.leaderId(), opts.sealKey);
    // The events history follows the snapshot's watch: no second watch of every key, no second decoding.
    this.events = new ClusterEvents(opts.etcd, opts.log, undefined, (listener) => this.loopStore.watchObjects(listener));
    this.dashboardTokens = new DashboardTokens(opts.etcd, opts.sealKey);
    const dashboard = { tokens: this.dashboardTokens, url: opts.dashboardUrl };
    const control = controlService({ events: this.events, store: this.store, etcd: opts.etcd, log: opts.log, leaderId, apiAddr: opts.apiAddr, tls: opts.tls, nodeId: opts.nodeId, sealKey: opts.sealKey, operators, dashboard });
    if (opts.embeddedEtcd) this.quorum = new EtcdQuorum(opts.etcd, opts.knownEtcdPeers);
    this.control = this.quorum ? guardQuorum(control, this.quorum) : control;
  }

  /** Adds the manager's services to the node's TCP server (before it starts). */
  registerServices(server: grpc.Server): void {
    // On TCP the Control API is for operator and manager certificates; the unix socket is guarded by file permissions.
    // A certificate works only while its node is in the swarm with that role (operators: until revoked).
    const caCertPem = this.opts.tls().caCertPem;
    const asManager = (peer: PeerIdentity) => this.access.check(peer, { managerRole: true });
    const control = requireRoles(this.control, caCertPem, ['manager', 'operator'], asManager);
    // A caller's access is checked in etcd first: without quorum that check fails, and is named too.
    server.addService(ControlService, this.quorum ? guardQuorum(control, this.quorum, false) : control);
    server.addService(CAService, caService({ store: this.store, log: this.opts.log, leaderId: () => this.leaderId(), sealKey: this.opts.sealKey }));
    server.addService(MembersService, requireRoles(membersService(this.store, this.opts.etcd, this.opts.nodeId, this.opts.log), caCertPem, ['manager'], asManager));
    server.addService(dispatcherServiceDefinition, this.dispatcher.service());
  }

  async start(): Promise<void> {
    await this.access.start();
    // Without its history, `events --since TIME` starts from now; the rest works.
    await this.events.start().catch((err) => this.log.warn({ err: (err as Error).message }, 'could not start the events history'));
    await this.sealClusterSecrets();
    this.dispatcher.start();
    this.tasks.push(this.keepPresence(this.controller.signal), this.keepCampaigning(this.controller.signal));
    this.log.info('manager started');
  }

  async stop(): Promise<void> {
    this.controller.abort();
    await this.stopLeading();
    await this.campaign?.resign().catch(() => undefined);
    await Promise.all(this.tasks);
    await this.dispatcher.stop();
    await this.snapshot.stop();
    await this.events.stop();
    await this.access.stop();
    await this.presence?.revoke().catch(() => undefined);
    this.log.info('manager stopped');
  }

  /** A cluster made before its CA key and join tokens were sealed in etcd is sealed now (a rewrite seals it). */
  private async sealClusterSecrets(): Promise<void> {
    try {
      const raw = await this.opts.etcd.get(keys.cluster).string();
      if (!raw || !hasClearSecrets(JSON.parse(raw)) || !this.opts.sealKey?.()) return;
      const cluster = await this.store.getCluster();
      if (cluster) await this.store.updateCluster(cluster);
      this.log.info('sealed the CA key and join tokens in the cluster store');
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not seal the CA key and join tokens in the cluster store; another manager or the next change will');
    }
  }

  /** What a metrics scrape reads: whether this manager leads, its open sessions, and the nodes and tasks of its watched snapshot (no etcd read). */
  async metricsView(): Promise<{ leading: boolean; sessions: number; nodes: Node[]; tasks: Task[] }> {
    const leading = this.leaderLoops.length > 0;
    const [nodes, tasks] = leading ? await Promise.all([this.loopStore.listNodes(), this.loopStore.listTasks()]) : [[], []];
    return { leading, sessions: this.dispatcher.sessionCount, nodes, tasks };
  }

  /** Whether a caller with this verified certificate may use what the Control API gives (a manager or operator, not removed, demoted or revoked); rejects if not. */
  async checkOperator(peer: PeerIdentity): Promise<void> {
    if (peer.role !== 'manager' && peer.role !== 'operator') throw permissionDenied(`a manager or operator certificate is required; this one is for a ${peer.role}`);
    await this.access.check(peer, { managerRole: true });
  }

  /** What the web dashboard reads, on any manager: a store over the watched snapshot (what the dispatcher reads), and the latest events. */
  dashboardFeed(log: Logger): DashboardFeed {
    return new DashboardFeed({ store: this.loopStore, leaderId: () => this.loopStore.leaderId(), events: () => this.events.recent(), log });
  }

  /** The leader now, read from etcd (what the Control API shows). */
  async leaderId(): Promise<string | undefined> {
    return this.store.leaderId();
  }

  /** The presence key lives as long as this manager's lease; a lost lease is granted again. */
  private async keepPresence(signal: AbortSignal): Promise<void> {
    const backoff = exponentialBackoff(200, 5000);
    while (!signal.aborted) {
      const cluster = await this.store.getCluster().catch(() => undefined);
      const lease = this.opts.etcd.lease(presenceLeaseSeconds(cluster?.spec));
      this.presence = lease;
      try {
        await this.store.putLeased(keys.manager(this.opts.nodeId), this.opts.apiAddr, lease);
        backoff.reset();
        await untilAborted(signal, (resolve) => lease.once('lost', () => resolve()));
        if (!signal.aborted) this.log.warn('presence lease lost; granting a new one');
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'could not write presence; retrying');
        lease.release();
        await sleep(backoff.next(), signal);
      }
    }
  }

  private async keepCampaigning(signal: AbortSignal): Promise<void> {
    const backoff = exponentialBackoff(200, 5000);
    while (!signal.aborted) {
      const campaign = this.election.campaign(this.opts.nodeId);
      this.campaign = campaign;
      let over = false;
      let deposed: () => void = () => undefined;
      const failed = untilAborted<Error>(signal, (resolve) => {
        campaign.on('error', (err: Error) => resolve(err));
        deposed = () => resolve(new Error('this manager no longer holds the leadership it was elected with'));
      });
      campaign.on('elected', () => {
        // etcd3 emits 'elected' even after the campaign was resigned or lost: such a campaign never leads.
        if (over || signal.aborted) return;
        void this.takeOffice(campaign, () => over || signal.aborted, deposed, signal).then((leading) => leading && backoff.reset());
      });
      const err = await failed;
      over = true;
      await this.stopLeading();
      if (signal.aborted) return;
      this.log.warn({ err: err?.message }, 'lost the election campaign; campaigning again');
      await campaign.resign().catch(() => undefined);
      await sleep(backoff.next(), signal);
    }
  }

  /**
   * Starts leading if the campaign's election key is the oldest one now, with every write of the
   * leader's loops fenced on that key: once it is gone (lease lost, resigned), they all fail.
   */
  private async takeOffice(campaign: Campaign, over: () => boolean, deposed: () => void, signal: AbortSignal): Promise<boolean> {
    try {
      const key = await campaign.getCampaignKey();
      const fence = await this.store.leadershipFence(key.slice(0, key.lastIndexOf('/') + 1), key);
      if (over()) return false;
      if (!fence) {
        this.log.warn({ key }, 'told it was elected, but its election key is not the oldest; not leading');
        deposed();
        return false;
      }
      this.startLeading(this.loopStore.fenced(fence, deposed), fence, signal);
      return true;
    } catch (err) {
      if (!over()) this.log.warn({ err: (err as Error).message }, 'could not confirm its election; campaigning again');
      deposed();
      return false;
    }
  }

  private startLeading(store: EtcdStore, fence: LeadershipFence, signal: AbortSignal): void {
    if (signal.aborted || this.leaderLoops.length > 0) return;
    this.log.info({ electionKey: fence.key, electionRevision: fence.createRevision }, 'elected leader');
    this.leaderLoops = [
      nodeHealthLoop(store, this.opts.log),
      orchestratorLoop(store, this.opts.log),
      builtinNetworksLoop(store, this.opts.log),
      allocatorLoop(store, this.opts.log),
      schedulerLoop(store, this.opts.log),
    ];
    for (const loop of this.leaderLoops) loop.start(signal);
    const raft = new AbortController();
    const onAbort = () => raft.abort();
    this.stopRaftWatch = () => {
      signal.removeEventListener('abort', onAbort);
      raft.abort();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    if (this.opts.embeddedEtcd) void keepRaftLeaderElsewhere(this.opts.etcd, this.store, this.log, raft.signal);
  }

  private async stopLeading(): Promise<void> {
    const loops = this.leaderLoops;
    this.leaderLoops = [];
    this.stopRaftWatch?.();
    if (loops.length > 0) this.log.info('no longer leader');
    await Promise.all(loops.map((l) => l.stop()));
  }
}
