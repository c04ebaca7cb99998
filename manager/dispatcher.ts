import * as grpc from '@grpc/grpc-js';
import { Semaphore } from 'async-mutex';
import { notFound, SwarmletError, unavailable } from '../services/common/errors';
import { Logger, componentLogger } from '../services/common/logger';
import { endServerStream, nodeRemovedStatus, toServiceError } from '../services/api/grpc-errors';
import { unary } from '../services/api/handlers';
import { requirePeer } from '../services/api/tls';
import { AttachNetworkRequest, DetachNetworkRequest, DispatcherServer, DispatcherService, HeartbeatRequest, HeartbeatResponse, NodeLeaveRequest, ReportContainerPortsRequest, SessionMessage, SessionRequest, UpdateTaskStatusRequest } from '../services/gen/swarmlet/v1/dispatcher';
import { ClusterSpec, ContainerHostPort, NodeDescription } from '../services/gen/swarmlet/v1/types';
import { newRandomId } from '../services/pki/ca';
import { readClusterView } from './cluster-view';
import { NetworkAttachments } from './network-attachments';
import { SessionPlan } from './session-plans';
import { heartbeatLeaseSeconds, heartbeatSilenceSeconds, planLeftNode } from './node-plans';
import { ReconcileLoop } from '../services/common/reconcile-loop';
import { SealKeySource, taskCredentials } from './service-secrets';
import { taskFileValues } from './file-values';
import { SentState, SessionWire, hasTasks } from './session-wire';
import { TaskStatusWriter } from './task-status-writer';
import { HeartbeatLease, Store } from './store/store';
import { keys } from './store/keys';

interface Session {
  id: string;
  nodeId: string;
  ttl: number;
  lease?: HeartbeatLease;
  /** When the lease's last renewal (or its grant) was asked for, in ms: it lives `ttl` from about then. */
  renewedAt: number;
  /** The lease renewal under way, if any (one at a time per session). */
  renewing?: Promise<void>;
  /** Runs when the agent has been silent for a silence (heartbeatSilenceSeconds): its lease ends then. */
  silence?: NodeJS.Timeout;
  silenceMs?: number;
  stream: grpc.ServerWritableStream<SessionRequest, SessionMessage | Buffer>;
  /** The agent takes deltas after the first message (SessionRequest.acceptsDeltas). */
  deltas: boolean;
  /** What the session was last sent, and the signature of what that was made from (its tasks' part, and the rest with the global part's epoch). */
  sent?: SentState;
  lastTasks?: string;
  lastRest?: string;
}

/** How long a heartbeat lease lives: two silences (heartbeatLeaseSeconds). */
export const leaseSeconds = (spec: ClusterSpec | undefined) => heartbeatLeaseSeconds(spec);

/** How long a session's agent may be silent before its heartbeat lease is ended, in ms (heartbeatSilenceSeconds). */
const silenceMs = (spec: ClusterSpec | undefined) => heartbeatSilenceSeconds(spec) * 1000;

/**
 * How many sessions this manager sets up at once (the store reads and writes of openSession).
 * A thousand agents that connect together would otherwise queue thousands of etcd calls at
 * once, and the leader's own lease keepalives and election behind them.
 */
const SESSION_SETUPS_IN_FLIGHT = 16;

/**
 * How long the broadcast waits after a pass before the next, so a burst (a thousand nodes turning
 * ready, a scheduler pass's batches) makes few passes over the sessions rather than one per
 * change. A change after a quiet spell (a task that stopped) goes out at once (coalesceLeading).
 */
const BROADCAST_COALESCE_MS = 100;

/**
 * Under load the wait is twice what the pass took (up to 1 s; ReconcileLoop's coalescePassFactor).
 * swarmkit's dispatcher waits 100 ms per node's batch of assignments; here one pass serves every
 * session, and with 30,000 tasks created on 1,000 nodes (bench:control-plane) passes of 100-300 ms
 * sent each node a few tasks at a time, about 10 messages a node. With this wait the same tasks go
 * in half as many messages, each of which the node answers with a status report.
 */
const BROADCAST_PASS_FACTOR = 2;

/** A pass over the sessions lets other work (heartbeats above all) run after this many sessions. */
const SESSIONS_PER_TURN = 64;

/**
 * The Dispatcher service as a manager serves it: a session message may go down already encoded
 * (sendAll encodes it part by part, SessionWire).
 */
export const dispatcherServiceDefinition = {
  ...DispatcherService,
  session: {
    ...DispatcherService.session,
    responseSerialize: (value: SessionMessage | Buffer): Buffer => (Buffer.isBuffer(value) ? value : DispatcherService.session.responseSerialize(value)),
  },
};

/** How a session ends: a status code, and a message for the agent's log. */
const sessionEnd = (code: grpc.status, message: string) => Object.assign(new Error(message), { code, details: message });

/**
 * One session per agent. Down the stream goes what the node must know (its own object, the
 * managers it can fail over to, the cluster's timings), sent again whenever that changes.
 * Heartbeats keep a lease that holds the node's heartbeat key: when they stop for a silence (two
 * periods), the dispatcher ends the lease, the key goes, and the leader looks at the node. The
 * lease lives two silences, so it is renewed on every other heartbeat at most, and runs out alone
 * only when the manager that held the session is gone too. Any manager can serve any agent; the
 * key outlives a dispatcher, so an agent that fails over keeps its node ready.
 */
export class Dispatcher {
  private readonly sessions = new Map<string, Session>();
  /** The silence timers not run yet, of open sessions and of ended ones whose lease may still hold their node's key. */
  private readonly silences = new Set<NodeJS.Timeout>();
  private readonly log: Logger;
  private readonly broadcast: ReconcileLoop;
  /** Containers' network attachments (AttachNetwork, DetachNetwork, the session-start reconcile). */
  private readonly attachments: NetworkAttachments;
  /** The cluster's timings as last read; the broadcast loop keeps it fresh. */
  private spec?: ClusterSpec;
  /** What every node's message was last made from (SessionPlan.globalSignature), and how many times that changed. */
  private lastGlobal?: string;
  private globalEpoch = 0;
  /** The cluster's root certificate, as read when a session opened (what node certificates are checked against). */
  private rootCaPem?: string;
  private readonly sessionSetups = new Semaphore(SESSION_SETUPS_IN_FLIGHT);
  private readonly wire = new SessionWire();
  /** Agents' task reports, from every session, written together. */
  private readonly statuses: TaskStatusWriter;

  constructor(
    private readonly store: Store,
    parentLog: Logger,
    private readonly leaderId: () => Promise<string | undefined>,
    private readonly sealKey?: SealKeySource,
  ) {
    this.log = componentLogger(parentLog, 'dispatcher');
    this.attachments = new NetworkAttachments(store, this.log);
    this.statuses = new TaskStatusWriter(store, this.log);
    this.broadcast = new ReconcileLoop(store, { name: 'dispatcher', watch: [keys.nodesPrefix, keys.managersPrefix, keys.cluster, keys.tasksPrefix, keys.networksPrefix, keys.servicesPrefix], reconcile: () => this.sendAll(), resyncMs: 15000, coalesceMs: BROADCAST_COALESCE_MS, coalesceLeading: true, coalescePassFactor: BROADCAST_PASS_FACTOR }, this.log);
  }

  /** Sessions open now (what the metrics show). */
  get sessionCount(): number {
    return this.sessions.size;
  }

  start(): void {
    this.broadcast.start();
  }

  async stop(): Promise<void> {
    await this.broadcast.stop();
    // The leases of the sessions here run out alone now (or their agents, failed over, hold new ones).
    for (const timer of this.silences) clearTimeout(timer);
    this.silences.clear();
    for (const s of this.sessions.values()) s.stream.destroy(Object.assign(new Error('manager is shutting down'), { code: grpc.status.UNAVAILABLE }));
    this.sessions.clear();
  }

  service(): DispatcherServer {
    return {
      session: (stream) => {
        this.sessionSetups.runExclusive(() => (stream.cancelled ? undefined : this.openSession(stream))).catch((err) => {
          this.log.warn({ err: err.message }, 'session refused');
          stream.destroy(Object.assign(new Error(toServiceError(err).details), toServiceError(err)));
        });
      },
      heartbeat: unary(async (req: HeartbeatRequest) => this.heartbeat(req)),
      heartbeats: (call) => {
        // One stream for all of a session's heartbeats: each request answered as Heartbeat answers it.
        let over = false;
        call.on('data', (req: HeartbeatRequest) => {
          if (over) return;
          try {
            call.write(this.heartbeat(req));
          } catch (err) {
            over = true;
            endServerStream(call as unknown as grpc.ServerWritableStream<unknown, unknown>, Object.assign(new Error(toServiceError(err).details), toServiceError(err)));
          }
        });
        call.on('end', () => {
          if (!over) call.end();
          over = true;
        });
        call.on('error', () => {
          over = true;
        });
      },
      updateTaskStatus: unary(async (req: UpdateTaskStatusRequest) => {
        await this.recordStatus(req);
        return {};
      }),
      taskStatuses: (call) => {
        // One stream for all of a session's reports: each answered in order, once written, as UpdateTaskStatus answers it.
        let over = false;
        let answered = Promise.resolve();
        const fail = (err: unknown) => {
          if (over) return;
          over = true;
          endServerStream(call as unknown as grpc.ServerWritableStream<unknown, unknown>, Object.assign(new Error(toServiceError(err).details), toServiceError(err)));
        };
        call.on('data', (req: UpdateTaskStatusRequest) => {
          if (over) return;
          // Recorded at once (reports from every session go out together); answered after the ones before it.
          const written = this.recordStatus(req);
          written.catch(fail);
          answered = answered
            .then(() => written)
            .then(
              () => void (over || call.write({})),
              () => undefined,
            );
        });
        call.on('end', () => {
          void answered.then(() => {
            if (!over) call.end();
            over = true;
          });
        });
        call.on('error', () => {
          over = true;
        });
      },
      attachNetwork: unary(async (req: AttachNetworkRequest, call) => this.attachments.attach(await this.callerNode(call), req)),
      detachNetwork: unary(async (req: DetachNetworkRequest, call) => {
        await this.attachments.detach(await this.callerNode(call), req.attachmentId);
        return {};
      }),
      reportContainerPorts: unary(async (req: ReportContainerPortsRequest, call) => {
        const nodeId = await this.callerNode(call);
        const ports = req.ports.map((p) => ContainerHostPort.fromPartial(p));
        await this.store.mutateNode(nodeId, (n) => {
          if (JSON.stringify(n.description?.containerPorts ?? []) === JSON.stringify(ports)) return undefined;
          return { ...n, description: NodeDescription.fromPartial({ ...n.description, containerPorts: ports }) };
        });
        return {};
      }),
      nodeLeave: unary(async (_req: NodeLeaveRequest, call) => {
        await this.leave(await this.callerNode(call));
        return {};
      }),
    };
  }

  /**
   * The node leaves the swarm: its sessions here end and their heartbeat keys go at once, then the
   * node is written down. Without this its host, still answering, kept it ready for the whole
   * node-down grace. The agent opens no new session after asking.
   */
  private async leave(nodeId: string): Promise<void> {
    const log = this.log.child({ nodeId });
    for (const session of [...this.sessions.values()]) {
      if (session.nodeId !== nodeId) continue;
      this.endSession(session, sessionEnd(grpc.status.CANCELLED, 'the node left the swarm'));
      this.quiet(session);
      await session.renewing;
      const lease = session.lease;
      session.lease = undefined;
      await lease?.release();
    }
    await this.store.mutateNode(nodeId, (n) => {
      const status = planLeftNode(n, new Date());
      return status && { ...n, status };
    });
    log.info('node left the swarm');
  }

  /** A heartbeat (Heartbeat, or one on Heartbeats): renews the session's lease; NotFound for a session this manager does not hold. */
  private heartbeat(req: HeartbeatRequest): HeartbeatResponse {
    const session = this.sessions.get(req.sessionId);
    if (!session) throw notFound('unknown session; open a new one');
    this.heard(session);
    this.renewLease(session);
    return { periodMs: this.spec?.heartbeatPeriodMs || 1000 };
  }

  /** Records a session's status report; resolves once it is written (or dropped). NotFound for a session this manager does not hold. */
  private async recordStatus(req: UpdateTaskStatusRequest): Promise<void> {
    const session = this.sessions.get(req.sessionId);
    if (!session) throw notFound('unknown session; open a new one');
    await this.statuses.record(session.nodeId, req.updates);
  }

  /** The node a call comes from, by its certificate (never by what the request says). */
  private async callerNode(call: Parameters<typeof requirePeer>[0]): Promise<string> {
    this.rootCaPem ??= (await this.store.getCluster())?.rootCa?.certPem;
    if (!this.rootCaPem) throw unavailable('this manager has not read the cluster yet; try again');
    return requirePeer(call, this.rootCaPem, ['manager', 'worker']).nodeId;
  }

  private async openSession(stream: grpc.ServerWritableStream<SessionRequest, SessionMessage>): Promise<void> {
    const cluster = await this.store.getCluster();
    this.spec = cluster?.spec;
    this.rootCaPem = cluster?.rootCa?.certPem;
    const peer = requirePeer(stream, cluster!.rootCa!.certPem, ['manager', 'worker']);
    const req = stream.request;
    // One read of the node, for whether it is still in the swarm and for what the agent says of it.
    const node = await this.store
      .mutateNode(peer.nodeId, (n) => {
        const addr = req.advertiseAddr || n.status?.addr || '';
        const apiAddr = req.apiAddr || n.status?.apiAddr || '';
        if (JSON.stringify(n.description) === JSON.stringify(req.description) && n.status?.addr === addr && n.status?.apiAddr === apiAddr) return undefined;
        return { ...n, description: req.description ?? n.description, status: { ...n.status!, addr, apiAddr } };
      })
      .catch((err) => {
        if (err instanceof SwarmletError && err.kind === 'NotFound') return undefined;
        throw err;
      });
    if (!node) {
      this.log.info({ nodeId: peer.nodeId }, 'session refused: node removed');
      endServerStream(stream, nodeRemovedStatus());
      return;
    }
    // The node lists the containers it still has: attachments of the others go.
    if (req.containers) await this.attachments.reconcileNode(node.id, req.containers.containerIds);
    const session: Session = { id: newRandomId(), nodeId: node.id, ttl: leaseSeconds(cluster?.spec), renewedAt: 0, stream, deltas: req.acceptsDeltas };
    await this.attachLease(session);
    this.heard(session);
    for (const old of this.sessions.values()) {
      if (old.nodeId === node.id) this.endSession(old, sessionEnd(grpc.status.ABORTED, 'replaced by a newer session of the same node'));
    }
    this.sessions.set(session.id, session);
    const log = this.log.child({ nodeId: node.id, sessionId: session.id });
    log.info('session opened');
    // The lease is not ended with the session, but a silence after its last heartbeat, as for an
    // agent still connected: one that restarts, or moves to another manager, within it keeps its node ready.
    stream.on('cancelled', () => {
      if (this.sessions.get(session.id) !== session) return;
      this.sessions.delete(session.id);
      log.info('session closed by the agent');
    });
    this.broadcast.poke();
  }

  /**
   * Renews the session's heartbeat lease, in the background: the heartbeat is answered at once, as
   * swarmkit's dispatcher answers from memory. Awaiting etcd made every heartbeat as slow as etcd
   * under load (a thousand nodes creating tasks), and agents ended their sessions for it. The lease
   * (two silences long) is renewed once a silence has passed since its last renewal, with a
   * silence of it still left: the next heartbeats renew it in time, and if none comes, the silence
   * timer ends it first. While one renewal is under way, the session's next heartbeats add none.
   */
  private renewLease(session: Session): void {
    if (session.renewing) return;
    const ttl = leaseSeconds(this.spec);
    if (session.lease && session.ttl === ttl && Date.now() - session.renewedAt < silenceMs(this.spec)) return;
    session.renewing = (async () => {
      const asked = Date.now();
      const renewed = session.ttl === ttl && (await session.lease?.renew());
      if (renewed) {
        session.renewedAt = asked;
        return;
      }
      if (this.sessions.get(session.id) !== session) return;
      // First beat after the old lease ended, or the cluster's heartbeat period changed.
      session.ttl = ttl;
      await this.attachLease(session);
    })()
      .catch((err: Error) => this.log.warn({ nodeId: session.nodeId, err: err.message }, 'heartbeat lease not renewed; the next heartbeat tries again'))
      .finally(() => {
        session.renewing = undefined;
      });
  }

  /** Puts the node's heartbeat key under a new lease (at session start, or after the old one ended). */
  private async attachLease(session: Session): Promise<void> {
    const asked = Date.now();
    session.lease = await this.store.holdHeartbeat(session.nodeId, session.id, session.ttl);
    session.renewedAt = asked;
  }

  /** The session's agent was heard (its session opened, or a heartbeat): its silence starts again. */
  private heard(session: Session): void {
    const ms = silenceMs(this.spec);
    if (session.silence && session.silenceMs === ms) {
      session.silence.refresh();
      return;
    }
    this.quiet(session);
    const timer = setTimeout(() => {
      this.silences.delete(timer);
      session.silence = undefined;
      void this.silent(session);
    }, ms);
    timer.unref();
    this.silences.add(timer);
    session.silence = timer;
    session.silenceMs = ms;
  }

  /** Stops the session's silence timer (the node left, or the timer's length changed). */
  private quiet(session: Session): void {
    if (!session.silence) return;
    clearTimeout(session.silence);
    this.silences.delete(session.silence);
    session.silence = undefined;
  }

  /**
   * The agent has said nothing for a silence: its heartbeat key goes now, when its lease of one
   * silence ran out before. A heartbeat that comes later holds a new lease (renewLease).
   */
  private async silent(session: Session): Promise<void> {
    await session.renewing;
    const lease = session.lease;
    if (!lease || session.silence) return; // heard again meanwhile
    session.lease = undefined;
    this.log.info({ nodeId: session.nodeId, sessionId: session.id, silentMs: session.silenceMs }, 'no heartbeat: heartbeat key released');
    await lease.release().catch((err: Error) => this.log.warn({ nodeId: session.nodeId, err: err.message }, 'heartbeat lease not ended; it runs out alone'));
  }

  private endSession(session: Session, status: Error & Partial<grpc.ServiceError>): void {
    this.sessions.delete(session.id);
    endServerStream(session.stream, status);
  }

  /**
   * Sends each session the message its node must have now, if that changed. One plan per pass
   * works out what nodes share once; a node whose message is made from the same objects at the
   * same versions as the last one sent (its signature) is skipped without building it.
   */
  private async sendAll(): Promise<void> {
    if (this.sessions.size === 0) return;
    const [view, tasks, networks, services, secrets, configs] = await Promise.all([readClusterView(this.store, this.leaderId), this.store.listTasks(), this.store.listNetworks(), this.store.listServices(), this.store.listFileObjects('secret'), this.store.listFileObjects('config')]);
    this.spec = view.cluster.spec;
    const plan = new SessionPlan({ cluster: view.cluster, nodes: view.nodes, leaderId: view.leaderId, tasks, networks, services }, (assigned, all) => taskCredentials(assigned, all, this.sealKey, this.log), (assigned) => taskFileValues(assigned, secrets, configs, this.sealKey, this.log));
    this.wire.newPass();
    // Every session is looked at in every pass, so a session's signature carries a count of the global part's changes rather than that part.
    const global = plan.globalSignature();
    if (global === undefined || global !== this.lastGlobal) this.globalEpoch += 1;
    this.lastGlobal = global;
    let seen = 0;
    for (const session of [...this.sessions.values()]) {
      // A pass over a thousand sessions must not hold up their heartbeats: other callbacks run now and then.
      if (++seen % SESSIONS_PER_TURN === 0) await new Promise((resolve) => setImmediate(resolve));
      if (this.sessions.get(session.id) !== session) continue; // ended meanwhile
      if (!plan.hasNode(session.nodeId)) {
        this.log.info({ nodeId: session.nodeId }, 'node removed; ending its session');
        this.endSession(session, nodeRemovedStatus());
        continue;
      }
      const own = plan.signature(session.nodeId);
      const rest = own === undefined || global === undefined ? undefined : `${this.globalEpoch} ${own.rest}`;
      if (rest !== undefined && rest === session.lastRest) {
        if (own!.tasks === session.lastTasks) continue;
        // Only the node's tasks changed: mostly its own reports, which would not go. Nothing is built then.
        if (session.sent && hasTasks(plan.assignedTo(session.nodeId), session.sent, (t) => plan.reportShows(t))) {
          session.lastTasks = own!.tasks;
          continue;
        }
      }
      session.lastRest = rest;
      session.lastTasks = own?.tasks;
      // Encoded here, part by part, and sent as bytes (dispatcherServiceDefinition): whole, or what changed.
      const next = this.wire.message(session.id, plan.message(session.nodeId), session.sent, session.deltas);
      if (!next) continue;
      session.sent = next.sent;
      session.stream.write(Buffer.from(next.bytes.buffer, next.bytes.byteOffset, next.bytes.byteLength));
    }
  }
}
