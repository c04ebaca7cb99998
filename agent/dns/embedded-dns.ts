/**
 * The embedded DNS: one resolver per host, in the daemon's process, with a UDP socket and a TCP
 * listener on 127.0.0.11:53 inside each task namespace that uses it (netns-sockets.ts). The
 * socket a query arrives on says which task asks, so it answers from the records of that task's
 * networks alone (answer.ts); what it does not know goes to the upstream resolvers from the
 * host's namespace (upstream.ts). Records come from apply() (the dispatcher's NetworkServices)
 * and hold for the next query at once. The sockets hold the task's namespace: detach (or
 * reconcile) when the task is gone lets it go. A daemon restart loses them; reconcile reopens.
 */
import { KeyedMutex } from '../../services/common/keyed-mutex';
import type { Socket as UdpSocket, RemoteInfo } from 'node:dgram';
import type { Server, Socket } from 'node:net';
import { decode, encode, encodingLength, type Packet, type Question } from 'dns-packet';
import { countDns, observeDns } from '../../services/metrics/dns-metrics';
import { asSwarmletError } from '../../services/common/errors';
import { Logger, componentLogger } from '../../services/common/logger';
import type { NetworkServices } from '../../services/gen/swarmlet/v1/dispatcher';
import type { NetworkAttachment, Task } from '../../services/gen/swarmlet/v1/types';
import { DnsIndex, FLAG_TC, RCODE, planDnsAnswer, planDnsIndex, planServfail, udpLimit } from './answer';
import { openNetnsDnsSockets } from './netns-sockets';
import { planDnsRecordDifferences } from './records-diff';
import { dnsNetworkIds, usesEmbeddedDns } from './resolv-conf';
import { Upstream, forwardQuery, parseUpstream, readHostUpstreams } from './upstream';
import { type WireTable, planWireReply, planWireTable } from './wire-answer';

export interface EmbeddedDnsOptions {
  log: Logger;
  /** 'ip' or 'ip:port', tried in order; empty: the nameservers of this host's /etc/resolv.conf. */
  upstreams: readonly string[];
}

export interface DnsRunningTask {
  taskId: string;
  netns: string;
  attachments: NetworkAttachment[];
}

interface Endpoint {
  taskId: string;
  netns: string;
  networkIds: string[];
  subnets: string[];
  udp: UdpSocket;
  tcp: Server;
  conns: Set<Socket>;
  index?: DnsIndex;
  /** The index's answers in wire form (wire-answer.ts), built at the first query after the records change. */
  table?: WireTable;
  closed: boolean;
}

const TCP_IDLE_MS = 10000;
/** Forwarded queries waiting on an upstream at once (each holds a socket); past it, SERVFAIL at once. */
const MAX_FORWARDS = 512;
/** Socket helpers (a node process each) running at once: many tasks starting together queue. */
const OPEN_CONCURRENCY = 4;
const TCP_MAX_CONNS = 64;
const QR = 0x8000;

/** A header-only FORMERR for bytes that do not decode; undefined when there is no query header to answer. */
function formErr(buf: Buffer): Buffer | undefined {
  if (buf.length < 12 || buf[2] & 0x80) return undefined;
  const out = Buffer.alloc(12);
  buf.copy(out, 0, 0, 2);
  out.writeUInt16BE(QR | (buf.readUInt16BE(2) & 0x7800) | RCODE.FORMERR, 2);
  return out;
}

/** Encodes an answer; over UDP, drops answers until it fits the client's limit and sets TC. */
function encodeAnswer(packet: Packet, query: Packet, protocol: 'udp' | 'tcp'): Buffer {
  if (protocol === 'udp') {
    const limit = udpLimit(query);
    if (encodingLength(packet) > limit) {
      const answers = [...(packet.answers ?? [])];
      while (answers.length > 0 && encodingLength({ ...packet, answers }) > limit) answers.pop();
      return encode({ ...packet, answers, flags: (packet.flags ?? 0) | FLAG_TC });
    }
  }
  return encode(packet);
}

export class EmbeddedDns {
  private readonly log: Logger;
  private readonly upstreams: Upstream[];
  private records = new Map<string, NetworkServices>();
  private readonly endpoints = new Map<string, Endpoint>();
  private readonly ops = new KeyedMutex();
  private seq = 0;
  private closed = false;
  private opening = 0;
  private forwarding = 0;
  private readonly openQueue: (() => void)[] = [];

  constructor(opts: EmbeddedDnsOptions) {
    this.log = componentLogger(opts.log, 'dns');
    this.upstreams = opts.upstreams.length > 0 ? opts.upstreams.map(parseUpstream) : readHostUpstreams();
    if (this.upstreams.length === 0) this.log.warn('no upstream resolver: names outside the cluster get SERVFAIL');
    else this.log.debug({ upstreams: this.upstreams.map((u) => `${u.host}:${u.port}`) }, 'upstream resolvers');
  }

  /** The records of every network this node's tasks are on; the next query sees them. */
  apply(services: NetworkServices[]): void {
    this.records = new Map(services.map((n) => [n.networkId, n]));
    for (const ep of this.endpoints.values()) {
      ep.index = undefined;
      ep.table = undefined;
    }
  }

  /** Opens the resolver's sockets in the task's namespace (nothing for a task that does not use the embedded DNS). */
  attach(task: Task, netnsPath: string): Promise<void> {
    return this.serial(task.id, () => this.ensure({ taskId: task.id, netns: netnsPath, attachments: task.networks ?? [] }));
  }

  detach(taskId: string): Promise<void> {
    return this.serial(taskId, async () => this.closeEndpoint(taskId));
  }

  /** Opens what running tasks miss (after a restart, or a socket lost); closes what belongs to no running task. */
  async reconcile(running: DnsRunningTask[]): Promise<void> {
    const wanted = new Map(running.filter((r) => usesEmbeddedDns(r.attachments)).map((r) => [r.taskId, r]));
    const gone = [...this.endpoints.keys()].filter((id) => !wanted.has(id));
    await Promise.all(gone.map((id) => this.detach(id)));
    await Promise.all(
      [...wanted.values()].map((r) =>
        this.serial(r.taskId, () => this.ensure(r)).catch((err) =>
          this.log.warn({ taskId: r.taskId, err: asSwarmletError(err).message }, 'resolver sockets not opened; the next pass tries again'),
        ),
      ),
    );
  }

  /** Network doctor: records held against `services`, and running tasks without (or sockets without) a task. */
  check(services: NetworkServices[], running: DnsRunningTask[]): string[] {
    const out = planDnsRecordDifferences([...this.records.values()], services);
    const wanted = new Set(running.filter((r) => usesEmbeddedDns(r.attachments)).map((r) => r.taskId));
    for (const id of [...wanted].sort()) if (!this.endpoints.has(id)) out.push(`dns: task ${id} has no resolver socket`);
    for (const id of [...this.endpoints.keys()].sort()) if (!wanted.has(id)) out.push(`dns: resolver socket open for task ${id}, which does not run here`);
    return out;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.ops.idle();
    for (const id of [...this.endpoints.keys()]) this.closeEndpoint(id);
  }

  private serial(taskId: string, fn: () => Promise<void>): Promise<void> {
    return this.ops.runExclusive(taskId, fn);
  }

  private async ensure(r: DnsRunningTask): Promise<void> {
    if (this.closed || !usesEmbeddedDns(r.attachments)) return;
    const have = this.endpoints.get(r.taskId);
    const networkIds = dnsNetworkIds(r.attachments);
    const subnets = r.attachments.filter((a) => networkIds.includes(a.networkId)).map((a) => a.address).filter(Boolean);
    if (have && !have.closed && have.netns === r.netns) {
      if (have.networkIds.join() !== networkIds.join() || have.subnets.join() !== subnets.join()) {
        Object.assign(have, { networkIds, subnets, index: undefined, table: undefined });
      }
      return;
    }
    if (have) this.closeEndpoint(r.taskId);
    const { udp, tcp } = await this.limited(() => openNetnsDnsSockets(r.netns));
    if (this.closed) {
      udp.close();
      tcp.close();
      return;
    }
    const ep: Endpoint = { taskId: r.taskId, netns: r.netns, networkIds, subnets, udp, tcp, conns: new Set(), closed: false };
    this.endpoints.set(r.taskId, ep);
    this.serve(ep);
    this.log.info({ taskId: r.taskId, networks: networkIds }, 'resolver listening in the task');
  }

  private async limited<T>(fn: () => Promise<T>): Promise<T> {
    // A slot is handed straight to the next waiter when one is done.
    if (this.opening >= OPEN_CONCURRENCY) await new Promise<void>((resolve) => this.openQueue.push(resolve));
    else this.opening += 1;
    try {
      return await fn();
    } finally {
      const next = this.openQueue.shift();
      if (next) next();
      else this.opening -= 1;
    }
  }

  private closeEndpoint(taskId: string): void {
    const ep = this.endpoints.get(taskId);
    if (!ep) return;
    this.endpoints.delete(taskId);
    ep.closed = true;
    try {
      ep.udp.close();
    } catch {
      // already closed
    }
    ep.tcp.close();
    for (const c of ep.conns) c.destroy();
    this.log.info({ taskId }, 'resolver closed in the task');
  }

  /** A socket that failed under us: forget it, so that the next reconcile opens it again. */
  private lost(ep: Endpoint, err: unknown): void {
    if (ep.closed) return;
    this.log.warn({ taskId: ep.taskId, err: asSwarmletError(err).message }, 'resolver socket lost');
    if (this.endpoints.get(ep.taskId) === ep) this.closeEndpoint(ep.taskId);
  }

  private serve(ep: Endpoint): void {
    const sent = (err: Error | null) => err && this.log.debug({ taskId: ep.taskId, err: err.message }, 'answer not sent');
    ep.udp.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
      // The table's answers go back at once, in the same turn; the rest take the decoded path.
      const started = performance.now();
      const reply = this.fromTable(ep, msg, 'udp');
      if (reply) {
        // No callback: a reply that cannot go is dropped without one more turn per query (dgram emits nothing for it).
        ep.udp.send(reply, rinfo.port, rinfo.address);
        countDns(msg, reply, (performance.now() - started) / 1000);
        return;
      }
      void observeDns(msg, () => this.answerDecoded(ep, msg, 'udp')).then((reply) => {
        if (!reply || ep.closed) return;
        ep.udp.send(reply, rinfo.port, rinfo.address, sent);
      });
    });
    ep.udp.on('error', (err) => this.lost(ep, err));
    ep.udp.on('close', () => this.lost(ep, new Error('udp socket closed')));
    ep.tcp.on('connection', (conn: Socket) => this.serveTcp(ep, conn));
    ep.tcp.on('error', (err) => this.lost(ep, err));
    ep.tcp.on('close', () => this.lost(ep, new Error('tcp listener closed')));
  }

  /** Length-prefixed queries, answered in turn; idle connections close after a while. */
  private serveTcp(ep: Endpoint, conn: Socket): void {
    if (ep.closed || ep.conns.size >= TCP_MAX_CONNS) {
      conn.destroy();
      return;
    }
    ep.conns.add(conn);
    conn.setTimeout(TCP_IDLE_MS, () => conn.destroy());
    conn.on('close', () => ep.conns.delete(conn));
    conn.on('error', () => conn.destroy());
    let buf = Buffer.alloc(0);
    let chain = Promise.resolve();
    conn.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        chain = chain.then(async () => {
          const reply = await observeDns(msg, () => this.handle(ep, msg, 'tcp'));
          if (!reply) {
            conn.destroy();
            return;
          }
          if (conn.destroyed) return;
          const len = Buffer.alloc(2);
          len.writeUInt16BE(reply.length);
          conn.write(Buffer.concat([len, reply]));
        });
      }
    });
  }

  private indexOf(ep: Endpoint): DnsIndex {
    ep.index ??= planDnsIndex(
      ep.networkIds.flatMap((id) => this.records.get(id) ?? []),
      ep.subnets,
    );
    return ep.index;
  }

  /** The reply to a query whose question the table holds (wire-answer.ts); undefined for any other. Never throws. */
  private fromTable(ep: Endpoint, msg: Buffer, protocol: 'udp' | 'tcp'): Buffer | undefined {
    try {
      ep.table ??= planWireTable(this.indexOf(ep));
      const reply = planWireReply(msg, ep.table, this.seq, protocol);
      if (!reply) return undefined;
      this.seq += 1;
      if (this.log.isLevelEnabled('debug')) this.debugTableAnswer(ep, msg, protocol);
      return reply;
    } catch (err) {
      this.log.debug({ taskId: ep.taskId, err: asSwarmletError(err).message }, 'table answer failed; decoding instead');
      return undefined;
    }
  }

  private debugTableAnswer(ep: Endpoint, msg: Buffer, protocol: 'udp' | 'tcp'): void {
    let q: Question | undefined;
    try {
      q = decode(msg).questions?.[0];
    } catch {
      q = undefined;
    }
    this.log.debug({ taskId: ep.taskId, name: q?.name, type: q?.type, protocol, decision: 'answer', from: 'table' }, 'query');
  }

  /** The reply to one query from the task of `ep`; undefined: no reply (not a query). Never throws. */
  private async handle(ep: Endpoint, msg: Buffer, protocol: 'udp' | 'tcp'): Promise<Buffer | undefined> {
    return this.fromTable(ep, msg, protocol) ?? this.answerDecoded(ep, msg, protocol);
  }

  /** handle() for a query the table does not hold: decoded, planned (answer.ts), encoded or forwarded. */
  private async answerDecoded(ep: Endpoint, msg: Buffer, protocol: 'udp' | 'tcp'): Promise<Buffer | undefined> {
    let query: Packet;
    try {
      query = decode(msg);
    } catch {
      return formErr(msg);
    }
    try {
      const decision = planDnsAnswer(query, this.indexOf(ep), this.seq++);
      if (this.log.isLevelEnabled('debug')) {
        const q = query.questions?.[0];
        this.log.debug({ taskId: ep.taskId, name: q?.name, type: q?.type, protocol, decision: decision.kind }, 'query');
      }
      if (decision.kind === 'drop') return undefined;
      if (decision.kind === 'answer') return encodeAnswer(decision.packet, query, protocol);
      if (this.forwarding >= MAX_FORWARDS) return encodeAnswer(planServfail(query), query, protocol);
      this.forwarding += 1;
      const reply = await forwardQuery(msg, this.upstreams, protocol).finally(() => (this.forwarding -= 1));
      return reply ?? encodeAnswer(planServfail(query), query, protocol);
    } catch (err) {
      this.log.debug({ taskId: ep.taskId, err: asSwarmletError(err).message }, 'query failed');
      try {
        return encode(planServfail(query));
      } catch {
        return undefined;
      }
    }
  }
}
