import { ChildProcess, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { exponentialBackoff, sleep } from '../services/common/backoff';
import { unavailable } from '../services/common/errors';
import { corruptionIn, EtcdDataCorruptError } from './store/etcd-errors';
import { Logger } from '../services/common/logger';

export const ETCD_CLIENT_PORT = 2379;
export const ETCD_PEER_PORT = 2380;

export interface EmbeddedEtcdOptions {
  name: string;
  dataDir: string;
  advertiseAddr: string;
  tls: { caFile: string; certFile: string; keyFile: string };
  /** `name=https://ip:2380,...`; only read by etcd when its data dir is new. */
  initialCluster: string;
  initialClusterState: 'new' | 'existing';
  /** Start as a one-member cluster from the data dir, dropping every other member (etcd's --force-new-cluster). */
  forceNewCluster?: boolean;
  clusterToken: string;
  logFile: string;
  binary?: string;
}

export const peerUrl = (addr: string) => `https://${addr}:${ETCD_PEER_PORT}`;
export const clientUrl = () => `https://127.0.0.1:${ETCD_CLIENT_PORT}`;
/** The name in manager certificates that etcd's client port demands of its clients (and serves under). */
export const ETCD_CLIENT_HOSTNAME = 'swarmlet-manager';

/**
 * Runs and supervises this manager's etcd member (Debian's etcd-server). Clients reach it on
 * loopback only, over TLS with a manager certificate (a process on the manager's host without
 * one is refused); peers reach it on the advertise address over TLS with manager certificates.
 * The member dies with the daemon (parent-death signal), and is restarted with backoff if it
 * dies alone. Emits 'removed' when etcd says this member was removed from the cluster, and
 * 'corrupt' (with the error) when it refuses its data dir as damaged: then it is not restarted.
 */
export class EmbeddedEtcd extends EventEmitter {
  private child?: ChildProcess;
  private stopping = false;
  private ready = false;
  private readonly backoff = exponentialBackoff(500, 10000);
  /** Where in etcd's log the running member's lines begin (the log keeps earlier runs). */
  private logStart = 0;

  constructor(private readonly opts: EmbeddedEtcdOptions, private readonly log: Logger) {
    super();
  }

  get clientUrl(): string {
    return clientUrl();
  }

  async start(): Promise<void> {
    this.stopping = false;
    this.ready = false;
    fs.mkdirSync(this.opts.dataDir, { recursive: true, mode: 0o700 });
    this.spawnMember();
    try {
      await this.waitListening(30000);
      this.ready = true;
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }

  private args(): string[] {
    const o = this.opts;
    return [
      '--name', o.name,
      '--data-dir', o.dataDir,
      '--listen-client-urls', clientUrl(),
      '--advertise-client-urls', clientUrl(),
      '--listen-peer-urls', peerUrl(o.advertiseAddr),
      '--initial-advertise-peer-urls', peerUrl(o.advertiseAddr),
      '--initial-cluster', o.initialCluster,
      '--initial-cluster-state', o.initialClusterState,
      '--initial-cluster-token', o.clusterToken,
      '--client-cert-auth',
      '--trusted-ca-file', o.tls.caFile,
      '--cert-file', o.tls.certFile,
      '--key-file', o.tls.keyFile,
      '--client-cert-allowed-hostname', ETCD_CLIENT_HOSTNAME,
      '--peer-client-cert-auth',
      '--peer-trusted-ca-file', o.tls.caFile,
      '--peer-cert-file', o.tls.certFile,
      '--peer-key-file', o.tls.keyFile,
      '--peer-cert-allowed-hostname', ETCD_CLIENT_HOSTNAME,
      // A dead raft leader is replaced within about a second; leases may be as short as 1 s
      // (etcd's floor is 1.5 election timeouts, rounded up to whole seconds). Pre-vote: a member
      // back from a partition does not depose the leader the majority kept meanwhile.
      '--heartbeat-interval', '100',
      '--election-timeout', '500',
      '--pre-vote',
      '--logger', 'zap',
      ...(o.forceNewCluster ? ['--force-new-cluster'] : []),
    ];
  }

  private spawnMember(): void {
    const out = fs.openSync(this.opts.logFile, 'a');
    this.logStart = fs.fstatSync(out).size;
    // setpriv makes the kernel kill etcd when the daemon dies, however it dies.
    const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', this.opts.binary ?? 'etcd', ...this.args()], { stdio: ['ignore', out, out] });
    fs.closeSync(out);
    this.child = child;
    this.log.info({ pid: child.pid, peerUrl: peerUrl(this.opts.advertiseAddr) }, 'etcd member started');
    const healthy = setTimeout(() => this.backoff.reset(), 30000);
    healthy.unref();
    child.on('exit', (code, signal) => {
      clearTimeout(healthy);
      if (this.child !== child) return;
      if (this.stopping || !this.ready) {
        this.log.info({ code, signal }, 'etcd member stopped');
        return;
      }
      const why = corruptionIn(this.logTail());
      if (why) {
        const err = new EtcdDataCorruptError(path.resolve(this.opts.dataDir), why);
        this.log.error({ code, signal }, err.message);
        this.emit('corrupt', err);
        return;
      }
      if (this.wasRemoved()) {
        this.log.info('etcd member was removed from the cluster');
        this.emit('removed');
        return;
      }
      const delay = this.backoff.next();
      this.log.warn({ code, signal, delayMs: delay }, 'etcd member exited; restarting');
      sleep(delay).then(() => {
        if (!this.stopping && this.child === child) this.spawnMember();
      });
    });
  }

  private wasRemoved(): boolean {
    return /removed from the cluster|member has already been removed|the member has been permanently removed/.test(this.logTail());
  }

  /** The last 16 KiB of what the running member wrote to etcd's log ('' if it cannot be read). */
  private logTail(): string {
    try {
      const size = fs.statSync(this.opts.logFile).size;
      const fd = fs.openSync(this.opts.logFile, 'r');
      const buf = Buffer.alloc(Math.max(0, Math.min(size - this.logStart, 16384)));
      fs.readSync(fd, buf, 0, buf.length, size - buf.length);
      fs.closeSync(fd);
      return buf.toString();
    } catch {
      return '';
    }
  }

  private async waitListening(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) break;
      const ok = await new Promise<boolean>((resolve) => {
        const s = net.connect(ETCD_CLIENT_PORT, '127.0.0.1');
        s.once('connect', () => (s.destroy(), resolve(true)));
        s.once('error', () => resolve(false));
      });
      if (ok) return;
      await sleep(100);
    }
    const why = corruptionIn(this.logTail());
    if (why) throw new EtcdDataCorruptError(path.resolve(this.opts.dataDir), why);
    throw unavailable(`etcd did not start; see ${path.resolve(this.opts.logFile)}`);
  }
}
