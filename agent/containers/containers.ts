import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { access } from 'node:fs/promises';
import { Mutex } from 'async-mutex';
import { sleep } from '../../services/common/backoff';
import { asSwarmletError, conflict, failedPrecondition, invalidArgument, notFound } from '../../services/common/errors';
import { Logger, componentLogger } from '../../services/common/logger';
import { Container, ContainerConfig, ContainerEndpointInfo, ContainerTopResponse, ContainerUsage } from '../../services/gen/swarmlet/v1/control';
import { NetworkAttachment } from '../../services/gen/swarmlet/v1/types';
import type { LogsOptions, Runtime, RuntimeTaskState } from '../runtime/runtime';
import type { LogRecord } from '../runtime/log-plans';
import { readLogRecords } from '../runtime/log-reader';
import { ContainerNetworks, NO_PLUG_DRIVERS } from './container-networks';
import type { ContainerPorts } from './container-ports';
import {
  parseRestartPolicy,
  planContainerName,
  planContainerNetworks,
  planContainerTask,
  planGeneratedName,
  planRestart,
  planRestartDelayMs,
  resolveContainer,
  validateContainerConfig,
} from './container-plans';
import { ContainerRecord, ContainerStore } from './container-store';
import { ContainerUsageReader } from './container-usage';
import { TOP_TITLES, planTopRows } from './stats-plans';
import { planSignal } from './signal-plans';
import { signalProcess } from '../runtime/proc';

const DEFAULT_STOP_MS = 10000;

export interface ContainersOptions {
  store: ContainerStore;
  /** A runtime of the containers' own (state dirs and cgroups apart from the tasks'). */
  runtime: Runtime;
  /** The network endpoints' implementation for the node's current membership. */
  networks: () => ContainerNetworks;
  log: Logger;
  /** Published ports (-p, -P); without it a container publishes none. */
  ports?: ContainerPorts;
  /** How often running containers are inspected for an exit (default 250 ms). */
  monitorMs?: number;
  random?: () => number;
  now?: () => Date;
  /** Reads the figures of `stats` and `top` (default: from this host's /proc and cgroups). */
  usage?: ContainerUsageReader;
}

/** An endpoint a running container holds, as the networks take it back after a daemon restart. */
export interface HeldEndpoint {
  containerId: string;
  containerName: string;
  netns: string;
  endpoint: ContainerEndpointInfo;
}

/** The drivers the runtime must know before prepare: host (the host's netns) or none; every other network is plugged in later. */
function runtimeAttachments(networks: string[]): NetworkAttachment[] {
  return networks.map((n) => ({ networkId: n, networkName: n, driver: NO_PLUG_DRIVERS.has(n) ? n : 'bridge', address: '', mac: '', gateway: '', vni: 0, internal: false, options: {} }));
}

/**
 * This node's containers (docker's `container` commands): records on disk (container-store.ts),
 * processes through the Runtime port as Task-shaped objects (container-plans.ts), endpoints from
 * the ContainerNetworks port. Operations on one container run one at a time; a monitor notices
 * exits and applies the restart policy and --rm. Containers outlive the daemon: open() adopts
 * them again (running ones keep running).
 */
/** What a container's event says (see Containers.events). */
export interface ContainerEvent {
  action: 'create' | 'start' | 'die' | 'destroy';
  id: string;
  name: string;
  image: string;
  exitCode: number;
}

export class Containers {
  private readonly log: Logger;
  private readonly recs = new Map<string, ContainerRecord>();
  private readonly locks = new Map<string, Mutex>();
  /** Names are taken under this lock, with the records. */
  private readonly createLock = new Mutex();
  /** Exit codes of containers removed by --rm, for a `wait` or an attach that was under way. */
  private readonly removedExits = new Map<string, number>();
  private readonly controller = new AbortController();
  private timer?: NodeJS.Timeout;
  private readonly random: () => number;
  private readonly now: () => Date;
  private reader?: ContainerUsageReader;
  /** Emits 'event' with a ContainerEvent at create, start, die and destroy (what `events` shows of containers). */
  readonly events = new EventEmitter();

  private emitEvent(action: ContainerEvent['action'], c: Container): void {
    this.events.emit('event', { action, id: c.id, name: c.name, image: c.config?.spec?.container?.image ?? '', exitCode: c.state?.exitCode ?? 0 } satisfies ContainerEvent);
  }

  constructor(private readonly opts: ContainersOptions) {
    this.log = componentLogger(opts.log, 'containers');
    this.random = opts.random ?? Math.random;
    this.now = opts.now ?? (() => new Date());
  }

  private lock(id: string): Mutex {
    let m = this.locks.get(id);
    if (!m) this.locks.set(id, (m = new Mutex()));
    return m;
  }

  /** Loads the records and adopts what the runtime still runs; restarts what the policy brings back; then watches. */
  async open(restoreNetworks?: (held: HeldEndpoint[]) => Promise<void>): Promise<void> {
    for (const rec of await this.opts.store.list()) this.recs.set(rec.container.id, rec);
    const held: HeldEndpoint[] = [];
    for (const rec of this.recs.values()) {
      const c = rec.container;
      const rt = await this.opts.runtime.inspect(c.id);
      if (rt.state === 'running') {
        c.state = { ...c.state!, status: 'running', pid: rt.pid ?? 0 };
        for (const endpoint of c.endpoints) held.push({ containerId: c.id, containerName: c.name, netns: `/proc/${rt.pid}/ns/net`, endpoint });
        this.log.info({ containerId: c.id, name: c.name, pid: rt.pid }, 'container adopted');
      } else if (c.state?.status === 'running' || c.state?.status === 'restarting') {
        // It ended while the daemon was away: its exit is handled as any other.
        await this.exited(rec, rt);
      }
    }
    try {
      await restoreNetworks?.(held);
    } catch (err) {
      this.log.warn({ err: asSwarmletError(err).message }, 'could not restore the networks of the containers');
    }
    await this.opts.ports?.restore(this.list(false)).catch((err) => this.log.warn({ err: asSwarmletError(err).message }, 'could not restore the published ports of the containers'));
    const tick = () => {
      this.timer = setTimeout(() => void this.monitor().finally(() => !this.controller.signal.aborted && tick()), this.opts.monitorMs ?? 250);
      this.timer.unref();
    };
    tick();
  }

  /** Stops watching; the containers keep running. */
  close(): void {
    this.controller.abort();
    clearTimeout(this.timer);
  }

  private async save(rec: ContainerRecord): Promise<void> {
    await this.opts.store.put(rec);
  }

  private find(ref: string): ContainerRecord {
    const c = resolveContainer([...this.recs.values()].map((r) => r.container), ref);
    return this.recs.get(c.id)!;
  }

  list(all: boolean): Container[] {
    const out = [...this.recs.values()].map((r) => r.container).filter((c) => all || c.state?.status === 'running' || c.state?.status === 'restarting');
    return out.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  }

  get(ref: string): Container {
    return this.find(ref).container;
  }

  /** Whether `id` is one of this node's containers (a full id). */
  has(id: string): boolean {
    return this.recs.has(id);
  }

  /**
   * `create` (and the first half of `run`): the record and the runtime's held sandbox; nothing is
   * left when it fails. `pull.registryAuth` (user:password) pulls the image, and is not kept.
   */
  async create(cfg: ContainerConfig, pull: { registryAuth?: string } = {}): Promise<Container> {
    validateContainerConfig(cfg);
    this.opts.ports?.check(cfg);
    const networks = planContainerNetworks(cfg);
    const rec = await this.createLock.runExclusive(async () => {
      const existing = [...this.recs.values()].map((r) => r.container);
      const name = cfg.name ? planContainerName(cfg.name, existing) : planGeneratedName(this.random, new Set(existing.map((c) => c.name)));
      const id = randomBytes(32).toString('hex');
      const container: Container = {
        id,
        name,
        createdAt: this.now().toISOString(),
        config: { ...cfg, name, spec: { ...cfg.spec!, networks } },
        state: { status: 'created', pid: 0, exitCode: 0, oomKilled: false, startedAt: '', finishedAt: '', error: '', restartCount: 0 },
        endpoints: [],
        ports: [],
      };
      const r: ContainerRecord = { container, manuallyStopped: false };
      this.recs.set(id, r);
      return r;
    });
    const { id } = rec.container;
    try {
      await this.lock(id).runExclusive(async () => {
        for (const n of networks) if (!NO_PLUG_DRIVERS.has(n)) this.checkNetwork(n);
        const registryAuth = pull.registryAuth ? { registryAuth: pull.registryAuth } : {};
        await this.opts.runtime.prepare(planContainerTask(rec.container, runtimeAttachments(networks)), { logFile: this.opts.store.logFile(id), ...registryAuth });
        await this.save(rec);
      });
    } catch (err) {
      await this.discard(rec);
      throw err;
    }
    this.log.info({ containerId: id, name: rec.container.name, image: cfg.spec?.container?.image }, 'container created');
    this.emitEvent('create', rec.container);
    return rec.container;
  }

  /** A network the container names exists (a cheap check before anything is made). */
  private checkNetwork(ref: string): void {
    const networks = this.opts.networks() as ContainerNetworks & { resolve?: (ref: string) => unknown };
    networks.resolve?.(ref);
  }

  /** Forgets a container whose creation failed: runtime state, endpoints, record. */
  private async discard(rec: ContainerRecord): Promise<void> {
    const { id } = rec.container;
    await this.opts.runtime.stop(id, 0).catch(() => undefined);
    await this.opts.runtime.remove(id).catch((err) => this.log.warn({ containerId: id, err: asSwarmletError(err).message }, 'runtime state not removed'));
    await this.detachAll(rec).catch(() => undefined);
    await this.opts.store.remove(id).catch(() => undefined);
    this.recs.delete(id);
    this.locks.delete(id);
  }

  private async detachAll(rec: ContainerRecord): Promise<void> {
    const c = rec.container;
    await this.opts.ports?.unpublish(c.id);
    c.ports = [];
    for (const n of c.config?.spec?.networks ?? []) await this.opts.networks().detach(c.id, n);
    c.endpoints = [];
  }

  /** `start`: a created or exited container runs (again); a running one is left as it is. */
  async start(ref: string): Promise<Container> {
    const rec = this.find(ref);
    await this.lock(rec.container.id).runExclusive(() => this.startLocked(rec));
    return rec.container;
  }

  private async startLocked(rec: ContainerRecord): Promise<void> {
    const c = rec.container;
    const rt = this.opts.runtime;
    let st = await rt.inspect(c.id);
    if (st.state === 'running') return;
    const networks = c.config?.spec?.networks ?? [];
    if (st.state !== 'created') {
      // A sandbox runs once: an exited container starts again in a fresh one.
      await rt.remove(c.id);
      await rt.prepare(planContainerTask(c, runtimeAttachments(networks)), { logFile: this.opts.store.logFile(c.id) });
      st = await rt.inspect(c.id);
    }
    try {
      if (!st.pid) throw failedPrecondition(`container ${c.name} has no sandbox process`);
      c.endpoints = [];
      for (const [i, network] of networks.entries()) {
        if (NO_PLUG_DRIVERS.has(network)) {
          c.endpoints.push({ networkId: network, networkName: network, driver: network, ipv4Cidr: '', gateway: '', mac: '', aliases: [], interfaceName: '' });
          continue;
        }
        const set = c.config?.endpointSettings?.find((x) => x.network === network);
        await this.attachLocked(rec, network, set ? { aliases: set.aliases, ipv4: set.ipv4 } : { aliases: i === 0 ? c.config?.aliases ?? [] : [], ipv4: i === 0 ? c.config?.ipv4 ?? '' : '' }, st.pid);
      }
      c.ports = (await this.opts.ports?.publish(c)) ?? [];
      await rt.start(c.id);
    } catch (err) {
      await rt.stop(c.id, 0).catch(() => undefined);
      await this.detachAll(rec).catch(() => undefined);
      c.state = { ...c.state!, status: c.state?.status === 'created' ? 'created' : 'exited', error: asSwarmletError(err).message };
      await this.save(rec);
      throw err;
    }
    const now = await rt.inspect(c.id);
    rec.manuallyStopped = false;
    c.state = { ...c.state!, status: now.state === 'running' ? 'running' : 'exited', pid: now.pid ?? 0, startedAt: now.startedAt ?? this.now().toISOString(), finishedAt: '', error: '', exitCode: 0, oomKilled: false };
    await this.save(rec);
    this.emitEvent('start', c);
    if (now.state !== 'running') await this.exited(rec, now);
    this.log.info({ containerId: c.id, name: c.name, pid: now.pid }, 'container started');
  }

  /** `run`: create, then start; when the start fails, nothing of the container is left. */
  async run(cfg: ContainerConfig, pull: { registryAuth?: string } = {}): Promise<Container> {
    const c = await this.create(cfg, pull);
    const rec = this.recs.get(c.id)!;
    try {
      await this.lock(c.id).runExclusive(() => this.startLocked(rec));
    } catch (err) {
      await this.lock(c.id).runExclusive(() => this.discard(rec));
      throw err;
    }
    return rec.container;
  }

  /** One more endpoint of a running container (the next interface: eth1, eth2...). */
  private async attachLocked(rec: ContainerRecord, network: string, set: { aliases: string[]; ipv4: string }, pid: number): Promise<void> {
    const c = rec.container;
    const e = await this.opts.networks().attach({ containerId: c.id, containerName: c.name, network, aliases: set.aliases, ipv4: set.ipv4 || undefined, netns: `/proc/${pid}/ns/net` });
    c.endpoints.push({ ...e, gateway: e.gateway ?? '', mac: e.mac ?? '', interfaceName: e.interfaceName ?? '' });
  }

  /** The network a name or id stands for, as the node's networks know it (the reference itself when they cannot tell). */
  private networkIdOf(ref: string): string {
    const networks = this.opts.networks() as ContainerNetworks & { resolve?: (ref: string) => { id: string } };
    try {
      return networks.resolve?.(ref).id ?? ref;
    } catch {
      return ref;
    }
  }

  /** Whether the entry of spec.networks `entry` and the endpoint `e` (or the reference `ref`) are the same network. */
  private sameNetwork(entry: string, ref: string, e?: ContainerEndpointInfo): boolean {
    if (entry === ref || (e && (entry === e.networkName || entry === e.networkId))) return true;
    const id = this.networkIdOf(entry);
    return id === this.networkIdOf(ref) || (e !== undefined && id === e.networkId);
  }

  private endpointOf(c: Container, ref: string): ContainerEndpointInfo | undefined {
    return c.endpoints.find((e) => e.networkName === ref || e.networkId === ref || (ref.length >= 12 && e.networkId.startsWith(ref)) || e.networkId === this.networkIdOf(ref));
  }

  /**
   * `network connect`: a running container gets its next interface at once (and the names of the
   * network's containers, and they its own); a stopped one is plugged in at its next start.
   */
  async connect(ref: string, network: string, set: { aliases: string[]; ipv4: string }): Promise<Container> {
    const rec = this.find(ref);
    await this.lock(rec.container.id).runExclusive(async () => {
      const c = rec.container;
      const nets = c.config?.spec?.networks ?? [];
      if (!NO_PLUG_DRIVERS.has(network)) this.checkNetwork(network);
      const running = c.state?.status === 'running';
      if ((running && this.endpointOf(c, network)) || nets.some((n) => this.sameNetwork(n, network))) throw conflict(`container ${c.name} is already attached to network ${network}`);
      if (NO_PLUG_DRIVERS.has(network) || nets.includes('host')) throw invalidArgument('container cannot be disconnected from host network or connected to host network');
      // Started with --network none: docker refuses; disconnected from its last network (no network left): it may join one again.
      if (nets.includes('none')) throw invalidArgument('container cannot be connected to multiple networks with one of the networks in private (none) mode');
      if (running) {
        const st = await this.opts.runtime.inspect(c.id);
        if (!st.pid) throw failedPrecondition(`container ${c.name} has no sandbox process`);
        await this.attachLocked(rec, network, set, st.pid);
      }
      c.config = { ...c.config!, spec: { ...c.config!.spec!, networks: [...nets, network] } };
      if (set.aliases.length || set.ipv4) c.config.endpointSettings = [...(c.config.endpointSettings ?? []).filter((x) => x.network !== network), { network, aliases: set.aliases, ipv4: set.ipv4 }];
      await this.save(rec);
      this.log.info({ containerId: c.id, name: c.name, network, live: running }, 'container connected to network');
    });
    return rec.container;
  }

  /** `network disconnect`: the interface goes at once from a running container; a stopped one no longer joins at start. */
  async disconnect(ref: string, network: string, force: boolean): Promise<Container> {
    const rec = this.find(ref);
    await this.lock(rec.container.id).runExclusive(async () => {
      const c = rec.container;
      const nets = c.config?.spec?.networks ?? [];
      const e = this.endpointOf(c, network);
      const entry = nets.find((n) => this.sameNetwork(n, network, e));
      if (!e && entry === undefined) {
        if (force) return;
        throw failedPrecondition(`container ${c.name} is not connected to network ${network}`);
      }
      if (nets.length === 1 && NO_PLUG_DRIVERS.has(nets[0]) && !force) throw invalidArgument('container cannot be disconnected from host network or connected to host network');
      if (e) {
        if (!NO_PLUG_DRIVERS.has(e.driver)) await this.opts.networks().detach(c.id, e.networkId);
        c.endpoints = c.endpoints.filter((x) => x !== e);
      }
      const rest = nets.filter((n) => n !== entry);
      c.config = { ...c.config!, spec: { ...c.config!.spec!, networks: rest }, endpointSettings: (c.config!.endpointSettings ?? []).filter((x) => x.network !== entry) };
      await this.save(rec);
      this.log.info({ containerId: c.id, name: c.name, network }, 'container disconnected from network');
    });
    return rec.container;
  }

  /** `stop` (SIGTERM, then SIGKILL after the timeout) and `kill` (timeout 0): no restart policy brings it back. */
  async stop(ref: string, timeoutMs?: number): Promise<Container> {
    const rec = this.find(ref);
    await this.lock(rec.container.id).runExclusive(() => this.stopLocked(rec, timeoutMs));
    return rec.container;
  }

  private async stopLocked(rec: ContainerRecord, timeoutMs?: number): Promise<void> {
    const c = rec.container;
    const grace = timeoutMs ?? (Number(c.config?.spec?.container?.stopGracePeriodMs ?? 0) || DEFAULT_STOP_MS);
    rec.manuallyStopped = true;
    const before = await this.opts.runtime.inspect(c.id);
    if (before.state === 'running' || before.state === 'created') await this.opts.runtime.stop(c.id, grace);
    if (c.state?.status === 'running' || c.state?.status === 'restarting') await this.exited(rec, await this.opts.runtime.inspect(c.id));
    else await this.save(rec);
  }

  async restart(ref: string, timeoutMs?: number): Promise<Container> {
    const rec = this.find(ref);
    await this.lock(rec.container.id).runExclusive(async () => {
      await this.stopLocked(rec, timeoutMs);
      await this.startLocked(rec);
    });
    return rec.container;
  }

  /** `kill`: KILL and TERM stop the container as `stop` does; any other signal goes to its main process, which goes on running. */
  async kill(ref: string, signal: string): Promise<Container> {
    const sig = planSignal(signal);
    if (!sig) throw invalidArgument(`invalid signal: ${signal}`);
    const rec = this.find(ref);
    const c = rec.container;
    if (c.state?.status !== 'running') throw failedPrecondition(`Cannot kill container: ${ref}: Container ${c.id} is not running`);
    if (sig === 'KILL') return this.stop(ref, 0);
    if (sig === 'TERM') return this.stop(ref, Number(c.config?.spec?.container?.stopGracePeriodMs ?? 0) || DEFAULT_STOP_MS);
    await this.lock(c.id).runExclusive(async () => {
      if (c.state?.status !== 'running' || !c.state.pid || !signalProcess(c.state.pid, `SIG${sig}` as NodeJS.Signals)) {
        throw failedPrecondition(`Cannot kill container: ${ref}: Container ${c.id} is not running`);
      }
    });
    this.log.info({ containerId: c.id, name: c.name, signal: sig }, 'container signalled');
    return c;
  }

  /** `rm`: refused for a running container unless forced (then it is killed first). */
  async remove(ref: string, force: boolean): Promise<void> {
    const rec = this.find(ref);
    const { id } = rec.container;
    await this.lock(id).runExclusive(async () => {
      const st = rec.container.state?.status;
      if ((st === 'running' || st === 'restarting') && !force) {
        throw failedPrecondition(`You cannot remove a running container ${id}. Stop the container before attempting removal or force remove`);
      }
      rec.manuallyStopped = true;
      await this.opts.runtime.stop(id, 0);
      await this.opts.runtime.remove(id);
      await this.detachAll(rec);
      await this.opts.store.remove(id);
      this.recs.delete(id);
    });
    this.locks.delete(id);
    this.log.info({ containerId: id, name: rec.container.name }, 'container removed');
    this.emitEvent('destroy', rec.container);
  }

  /** The exit code of a container that --rm removed as it ended, while it is remembered. */
  removedExitCode(id: string): number | undefined {
    return this.recs.has(id) ? undefined : this.removedExits.get(id);
  }

  /** `wait`: the exit code once the container is no longer running. */
  async wait(ref: string, signal?: AbortSignal): Promise<number> {
    // A --rm container may be gone already when its `run` asks (by full id).
    const gone = this.removedExits.get(ref);
    if (gone !== undefined && !this.recs.has(ref)) return gone;
    const { id } = this.find(ref).container;
    for (;;) {
      const rec = this.recs.get(id);
      if (!rec) {
        const code = this.removedExits.get(id);
        if (code === undefined) throw notFound(`No such container: ${ref}`);
        return code;
      }
      const st = rec.container.state?.status;
      if (st === 'exited' || st === 'dead' || st === 'created') return rec.container.state?.exitCode ?? 0;
      await sleep(100, signal);
      if (signal?.aborted) throw failedPrecondition('wait cancelled');
    }
  }

  /**
   * A container's records: from its own log (container-store.ts), which every start appends to;
   * one made before containers had their own log is read where its runtime keeps it.
   */
  private async *records(id: string, opts: LogsOptions): AsyncIterable<LogRecord> {
    const file = this.opts.store.logFile(id);
    const own = await access(file).then(() => true, () => false);
    yield* own ? readLogRecords(file, opts) : this.opts.runtime.logs(id, opts);
  }

  /**
   * `logs`: every run's output (a restart appends to it, as docker's), the last `tail` records from
   * `since` on; with follow, those appended until the container has exited (or is removed), then
   * the stream ends, as docker's does.
   */
  async *logs(ref: string, opts: LogsOptions): AsyncIterable<LogRecord> {
    const { id } = this.find(ref).container;
    if (!opts.follow) {
      yield* this.records(id, opts);
      return;
    }
    // A created one is followed too: `run` without -d follows its container before it starts it.
    // A removed one (--rm) too: its follow ends when its log goes, after the last lines are read.
    const live = () => {
      const rec = this.recs.get(id);
      const st = rec?.container.state?.status;
      return !rec || st === 'running' || st === 'restarting' || st === 'created';
    };
    // Where the follow starts, in records, so that what is written between the exit and the end of the follow is given once.
    let lines = 0;
    for await (const _ of this.records(id, { tail: -1, follow: false, signal: opts.signal, since: opts.since })) lines += 1;
    const start = opts.tail < 0 ? 0 : Math.max(0, lines - opts.tail);
    // Once the container is no longer live, the follow gives what its log holds to the end, then ends.
    const drain = new AbortController();
    const timer = setInterval(() => !live() && drain.abort(), this.opts.monitorMs ?? 250);
    timer.unref();
    let given = 0;
    try {
      if (live()) {
        for await (const record of this.records(id, { ...opts, drain: drain.signal })) {
          given += 1;
          yield record;
        }
      }
      if (opts.signal.aborted || !this.recs.has(id)) return;
      let i = 0;
      for await (const record of this.records(id, { tail: -1, follow: false, signal: opts.signal, since: opts.since })) {
        if (i++ >= start + given) yield record;
      }
    } finally {
      clearInterval(timer);
    }
  }

  /** `stats`: one reading of the container's counters (zeros for one that is not running). */
  async stats(ref: string): Promise<ContainerUsage> {
    const { id, name, state } = this.find(ref).container;
    if (state?.status === 'running' && state.pid) {
      const u = await this.usageReader().usage(id, name, state.pid);
      // It may have exited while it was read: then it shows as stopped.
      if (u.pids > 0) return u;
    }
    return { id, name, running: false, systemCpuNs: 0, cpuNs: 0, onlineCpus: 0, memoryBytes: 0, memoryLimitBytes: 0, netRxBytes: 0, netTxBytes: 0, blockReadBytes: 0, blockWriteBytes: 0, pids: 0 };
  }

  /** `top`: the container's processes as `ps -ef` shows them. */
  async top(ref: string): Promise<ContainerTopResponse> {
    const { id, state } = this.find(ref).container;
    if (state?.status !== 'running' || !state.pid) throw failedPrecondition(`container ${id} is not running`);
    const { procs, users, bootMs } = await this.usageReader().processes(state.pid);
    if (!procs.length) throw failedPrecondition(`container ${id} is not running`);
    return { titles: TOP_TITLES, processes: planTopRows(procs, users, bootMs, this.now()).map((fields) => ({ fields })) };
  }

  private usageReader(): ContainerUsageReader {
    this.reader ??= this.opts.usage ?? new ContainerUsageReader();
    return this.reader;
  }

  /** Notices exits of running containers (one that is busy is looked at next time). */
  private async monitor(): Promise<void> {
    for (const rec of [...this.recs.values()]) {
      if (rec.container.state?.status !== 'running') continue;
      const lock = this.lock(rec.container.id);
      if (lock.isLocked()) continue;
      await lock
        .runExclusive(async () => {
          if (rec.container.state?.status !== 'running' || !this.recs.has(rec.container.id)) return;
          const st = await this.opts.runtime.inspect(rec.container.id);
          if (st.state !== 'running') await this.exited(rec, st);
        })
        .catch((err) => this.log.error({ containerId: rec.container.id, err: asSwarmletError(err).message }, 'container check failed'));
    }
  }

  /** A container's process ended: its state, then --rm or the restart policy. Runs under the container's lock. */
  private async exited(rec: ContainerRecord, st: RuntimeTaskState): Promise<void> {
    const c = rec.container;
    c.state = {
      ...c.state!,
      status: 'exited',
      pid: 0,
      exitCode: st.exitCode ?? (st.state === 'missing' ? 255 : 0),
      oomKilled: Boolean(st.oomKilled),
      finishedAt: st.finishedAt ?? this.now().toISOString(),
    };
    await this.detachAll(rec).catch((err) => this.log.warn({ containerId: c.id, err: asSwarmletError(err).message }, 'endpoints not detached'));
    this.log.info({ containerId: c.id, name: c.name, exitCode: c.state.exitCode, oomKilled: c.state.oomKilled }, 'container exited');
    this.emitEvent('die', c);
    if (c.config?.autoRemove) {
      this.removedExits.set(c.id, c.state.exitCode);
      await this.opts.runtime.remove(c.id).catch(() => undefined);
      await this.opts.store.remove(c.id);
      this.recs.delete(c.id);
      this.emitEvent('destroy', c);
      return;
    }
    const policy = parseRestartPolicy(c.config?.restart ?? '');
    if (!planRestart(policy, c.state.exitCode, c.state.restartCount, rec.manuallyStopped)) {
      await this.save(rec);
      return;
    }
    c.state = { ...c.state, status: 'restarting' };
    await this.save(rec);
    const delay = planRestartDelayMs(c.state.restartCount);
    const timer = setTimeout(() => {
      void this.lock(c.id)
        .runExclusive(async () => {
          if (!this.recs.has(c.id) || c.state?.status !== 'restarting' || rec.manuallyStopped) return;
          c.state = { ...c.state, restartCount: c.state.restartCount + 1 };
          await this.startLocked(rec);
        })
        .catch((err) => this.log.warn({ containerId: c.id, err: asSwarmletError(err).message }, 'container restart failed'));
    }, delay);
    timer.unref();
  }
}
