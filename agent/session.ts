import * as grpc from '@grpc/grpc-js';
import { EventEmitter } from 'node:events';
import { exponentialBackoff, sleep } from '../services/common/backoff';
import { Logger, componentLogger } from '../services/common/logger';
import { isNodeRemoved } from '../services/api/grpc-errors';
import { callUnary } from '../services/api/handlers';
import { managerChannelOptions, managerClientCredentials, TlsMaterial } from '../services/api/tls';
import { unavailable } from '../services/common/errors';
import { applySessionDelta } from '../services/api/session-delta';
import { AttachNetworkRequest, AttachNetworkResponse, DispatcherClient, HeartbeatRequest, HeartbeatResponse, SessionMessage, TaskStatusUpdate, UpdateTaskStatusRequest, UpdateTaskStatusResponse } from '../services/gen/swarmlet/v1/dispatcher';
import { ContainerHostPort, ManagerPeer, NodeDescription } from '../services/gen/swarmlet/v1/types';

export interface AgentSessionOptions {
  log: Logger;
  nodeId: string;
  advertiseAddr: string;
  /** IP:PORT of this node's TCP API, so managers can reach its Agent service. */
  apiAddr: string;
  description: NodeDescription;
  /** Read at every connection, so a renewed certificate is used from the next one on. */
  tls: () => TlsMaterial;
  /** Managers to try, in order; the session's messages keep the list fresh. */
  managers: () => ManagerPeer[];
  /** The containers this node has, listed when a session opens (their network attachments are kept, the others' dropped); unset: none are listed. */
  containerIds?: () => string[];
  /** The host ports this node's containers publish: sent in the description when a session opens, and by reportContainerPorts(). */
  containerPorts?: () => ContainerHostPort[];
}

/**
 * The agent's side of the dispatcher: one session with one manager at a time. Heartbeats go
 * up every period; if one fails, or the stream ends, the agent moves on to the next manager.
 * Emits 'message' (SessionMessage, always whole: deltas are applied here) and 'removed' (this node
 * was removed from the swarm).
 */
export class AgentSession extends EventEmitter {
  private readonly log: Logger;
  private readonly controller = new AbortController();
  private done?: Promise<void>;
  private cursor = 0;
  /** Set by leave(): the session that ends is not followed by another. */
  private leaving = false;
  connectedTo?: ManagerPeer;
  /** The live session, if any: where task status reports go. */
  private current?: { client: DispatcherClient; sessionId: string; statuses: StatusSender };
  /** The client of the session being opened or live (the live one's too): a leave goes through it even before the session's first message. */
  private client?: DispatcherClient;

  constructor(private readonly opts: AgentSessionOptions) {
    super();
    this.log = componentLogger(opts.log, 'agent-session', { nodeId: opts.nodeId });
  }

  start(): void {
    this.done = this.run(this.controller.signal);
  }

  async stop(): Promise<void> {
    this.controller.abort();
    await this.done;
  }

  /**
   * Tells the manager of the current session that this node leaves the swarm, so that it shows
   * down at once, then stops; no new session opens after the ask. A node leaves all the same when
   * no manager answers within `timeoutMs` (it is then down after the node-down grace).
   */
  async leave(timeoutMs = 3000): Promise<void> {
    this.leaving = true;
    // The manager knows the node by its certificate: the session's client serves before its first message too.
    const client = this.client;
    try {
      if (client) await callUnary(client.nodeLeave.bind(client), {}, timeoutMs);
    } catch (err) {
      this.log.warn({ err: (err as grpc.ServiceError).details ?? (err as Error).message }, 'the manager was not told that this node leaves; it shows down after the node-down grace');
    } finally {
      await this.stop();
    }
  }

  /** Sends task status to the manager of the current session; Unavailable when there is none (the caller retries). */
  async reportStatus(updates: TaskStatusUpdate[]): Promise<void> {
    const current = this.current;
    if (!current) throw unavailable('no dispatcher session');
    await current.statuses.report(current.sessionId, updates, 10000);
  }

  /** Asks the manager of the current session for a container's network attachment (Dispatcher.AttachNetwork). */
  async attachNetwork(req: AttachNetworkRequest): Promise<AttachNetworkResponse> {
    const current = this.current;
    if (!current) throw unavailable('no dispatcher session: the managers cannot be reached');
    return callUnary(current.client.attachNetwork.bind(current.client), req, 20000);
  }

  /**
   * Tells the managers the host ports this node's containers publish now
   * (Dispatcher.ReportContainerPorts); Unavailable without a session (the next one's description
   * carries them).
   */
  async reportContainerPorts(): Promise<void> {
    const current = this.current;
    if (!current) throw unavailable('no dispatcher session: the managers cannot be reached');
    await callUnary(current.client.reportContainerPorts.bind(current.client), { ports: this.opts.containerPorts?.() ?? [] }, 10000);
  }

  /** Removes one of this node's network attachments (Dispatcher.DetachNetwork); fine when it is gone. */
  async detachNetwork(attachmentId: string): Promise<void> {
    const current = this.current;
    if (!current) throw unavailable('no dispatcher session: the managers cannot be reached');
    await callUnary(current.client.detachNetwork.bind(current.client), { attachmentId }, 10000);
  }

  private async run(signal: AbortSignal): Promise<void> {
    const backoff = exponentialBackoff(100, 2000);
    while (!signal.aborted) {
      const managers = this.opts.managers();
      if (managers.length === 0) {
        this.log.warn('no manager known; waiting');
        await sleep(backoff.next(), signal);
        continue;
      }
      const peer = managers[this.cursor % managers.length];
      const outcome = await this.session(peer, signal);
      if (this.leaving) return;
      if (outcome === 'removed') {
        this.emit('removed');
        return;
      }
      if (outcome === 'healthy') backoff.reset();
      this.cursor += 1;
      if (!signal.aborted && this.cursor % managers.length === 0) await sleep(backoff.next(), signal);
    }
  }

  /** One session with one manager, until it fails. 'healthy' if it got as far as a message. */
  private async session(peer: ManagerPeer, signal: AbortSignal): Promise<'healthy' | 'failed' | 'removed'> {
    const tls = this.opts.tls();
    const client = new DispatcherClient(peer.addr, managerClientCredentials(tls.caCertPem, tls), managerChannelOptions);
    this.client = client;
    const log = this.log.child({ manager: peer.addr });
    let healthy = false;
    try {
      return await new Promise<'healthy' | 'failed' | 'removed'>((resolve) => {
        let heartbeat: NodeJS.Timeout | undefined;
        // A manager whose host is gone never answers at all: give up on it and try the next.
        const firstMessage = setTimeout(() => finish('failed', 'no answer within 3 s'), 3000);
        firstMessage.unref();
        const finish = (outcome: 'healthy' | 'failed' | 'removed', why?: string) => {
          clearTimeout(heartbeat);
          beats.close();
          statuses.close();
          clearTimeout(firstMessage);
          signal.removeEventListener('abort', onAbort);
          stream.removeAllListeners();
          stream.on('error', () => undefined);
          stream.cancel();
          if (why && !signal.aborted && !this.leaving) log.warn({ reason: why }, 'session ended');
          resolve(outcome);
        };
        const onAbort = () => finish(healthy ? 'healthy' : 'failed');
        signal.addEventListener('abort', onAbort, { once: true });
        const containers = this.opts.containerIds ? { containerIds: this.opts.containerIds() } : undefined;
        const description = { ...this.opts.description, containerPorts: this.opts.containerPorts?.() ?? this.opts.description.containerPorts };
        const stream = client.session({ description, advertiseAddr: this.opts.advertiseAddr, apiAddr: this.opts.apiAddr, containers, acceptsDeltas: true });
        /** The whole message the session's last one stood for: what its next delta applies to. */
        let last: SessionMessage | undefined;
        const beats = new HeartbeatSender(client, () => log.info('this manager takes heartbeats one call at a time'));
        const statuses = new StatusSender(client, () => log.info('this manager takes status reports one call at a time'));
        const beat = (sessionId: string, periodMs: number) => {
          heartbeat = setTimeout(async () => {
            try {
              const res = await beats.beat(sessionId, periodMs * 2 + 500);
              beat(sessionId, res.periodMs || periodMs);
            } catch (err) {
              finish(healthy ? 'healthy' : 'failed', `heartbeat failed: ${(err as grpc.ServiceError).details ?? (err as Error).message}`);
            }
          }, periodMs);
          heartbeat.unref();
        };
        stream.on('data', (delta: SessionMessage) => {
          let msg: SessionMessage;
          try {
            msg = applySessionDelta(last, delta);
          } catch (err) {
            finish(healthy ? 'healthy' : 'failed', (err as Error).message);
            return;
          }
          last = msg;
          if (!healthy) {
            healthy = true;
            clearTimeout(firstMessage);
            this.connectedTo = peer;
            this.current = { client, sessionId: msg.sessionId, statuses };
            log.info({ sessionId: msg.sessionId }, 'session established');
            // Ports that changed while the session opened go up now.
            if (this.opts.containerPorts && JSON.stringify(this.opts.containerPorts()) !== JSON.stringify(description.containerPorts)) {
              this.reportContainerPorts().catch((err) => log.warn({ err: (err as Error).message }, 'container ports not reported; the next session carries them'));
            }
            beat(msg.sessionId, msg.clusterSpec?.heartbeatPeriodMs || 1000);
          }
          this.emit('message', msg);
        });
        stream.on('error', (err: grpc.ServiceError) => {
          if (isNodeRemoved(err)) {
            log.error({ reason: err.details }, 'this node was removed from the swarm');
            finish('removed');
            return;
          }
          finish(healthy ? 'healthy' : 'failed', err.details || err.message);
        });
        stream.on('end', () => finish(healthy ? 'healthy' : 'failed', 'stream ended'));
      });
    } finally {
      this.connectedTo = undefined;
      this.current = undefined;
      if (this.client === client) this.client = undefined;
      client.close();
    }
  }
}

/**
 * Calls of one of the dispatcher's unary methods, sent instead as requests on one bidi stream
 * (opened at the first call, living as long as the session), each answered in order by one
 * response. When the stream fails, or a call's answer is later than `timeoutMs` (as a unary call
 * past its deadline would), the calls waiting on it fail, and the next call opens a new one. A
 * manager without the stream method (UNIMPLEMENTED: an older one) gets the unary method from then on.
 */
export class StreamedCalls<Req, Res> {
  private stream?: grpc.ClientDuplexStream<Req, Res>;
  /** Calls sent and not answered yet, oldest first: the stream answers them in that order. */
  private readonly waiting: { resolve: (res: Res) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }[] = [];
  private closed?: Error;
  private unary = false;

  constructor(
    private readonly what: { stream: string; stopped: string },
    private readonly open: () => grpc.ClientDuplexStream<Req, Res>,
    private readonly call: (req: Req, timeoutMs: number) => Promise<Res>,
    private readonly onUnary: () => void = () => undefined,
  ) {}

  async send(req: Req, timeoutMs: number): Promise<Res> {
    if (this.unary) return this.call(req, timeoutMs);
    try {
      return await this.onStream(req, timeoutMs);
    } catch (err) {
      if ((err as grpc.ServiceError).code !== grpc.status.UNIMPLEMENTED) throw err;
      if (!this.unary) this.onUnary();
      this.unary = true;
      return this.call(req, timeoutMs);
    }
  }

  /** Ends the stream; the calls waiting and every later one fail. */
  close(): void {
    this.closed ??= Object.assign(new Error(this.what.stopped), { code: grpc.status.CANCELLED, details: this.what.stopped });
    this.fail(this.closed);
  }

  private onStream(req: Req, timeoutMs: number): Promise<Res> {
    if (this.closed) return Promise.reject(this.closed);
    if (!this.stream) {
      const stream = this.open();
      this.stream = stream;
      stream.on('data', (res: Res) => this.answer(res));
      stream.on('error', (err: grpc.ServiceError) => this.fail(err));
      const ended = `${this.what.stream} stream ended`;
      stream.on('end', () => this.fail(Object.assign(new Error(ended), { code: grpc.status.UNAVAILABLE, details: ended })));
    }
    const stream = this.stream;
    return new Promise<Res>((resolve, reject) => {
      const timer = setTimeout(() => this.fail(Object.assign(new Error('Deadline exceeded'), { code: grpc.status.DEADLINE_EXCEEDED, details: 'Deadline exceeded' })), timeoutMs);
      timer.unref();
      this.waiting.push({ resolve, reject, timer });
      stream.write(req);
    });
  }

  /** The oldest call's answer. */
  private answer(res: Res): void {
    const w = this.waiting.shift();
    if (!w) return;
    clearTimeout(w.timer);
    w.resolve(res);
  }

  /** The stream is done for: it ends, and the calls waiting on it fail with `err`. */
  private fail(err: Error): void {
    const stream = this.stream;
    this.stream = undefined;
    if (stream) {
      stream.removeAllListeners();
      stream.on('error', () => undefined);
      stream.cancel();
    }
    for (const w of this.waiting.splice(0)) {
      clearTimeout(w.timer);
      w.reject(err);
    }
  }
}

/**
 * A session's heartbeats, one at a time, on one Dispatcher.Heartbeats stream opened at the first
 * beat (StreamedCalls); a manager without Heartbeats gets the unary Heartbeat.
 */
export class HeartbeatSender {
  private readonly calls: StreamedCalls<HeartbeatRequest, HeartbeatResponse>;

  constructor(client: DispatcherClient, onUnary: () => void = () => undefined) {
    this.calls = new StreamedCalls({ stream: 'heartbeat', stopped: 'heartbeats stopped' }, () => client.heartbeats(), (req, timeoutMs) => callUnary(client.heartbeat.bind(client), req, timeoutMs), onUnary);
  }

  beat(sessionId: string, timeoutMs: number): Promise<HeartbeatResponse> {
    return this.calls.send({ sessionId }, timeoutMs);
  }

  close(): void {
    this.calls.close();
  }
}

/**
 * A session's task status reports, on one Dispatcher.TaskStatuses stream opened at the first
 * report (StreamedCalls); a manager without TaskStatuses gets the unary UpdateTaskStatus.
 */
export class StatusSender {
  private readonly calls: StreamedCalls<UpdateTaskStatusRequest, UpdateTaskStatusResponse>;

  constructor(client: DispatcherClient, onUnary: () => void = () => undefined) {
    this.calls = new StreamedCalls({ stream: 'status', stopped: 'status reports stopped' }, () => client.taskStatuses(), (req, timeoutMs) => callUnary(client.updateTaskStatus.bind(client), req, timeoutMs), onUnary);
  }

  async report(sessionId: string, updates: TaskStatusUpdate[], timeoutMs: number): Promise<void> {
    await this.calls.send({ sessionId, updates }, timeoutMs);
  }

  close(): void {
    this.calls.close();
  }
}
