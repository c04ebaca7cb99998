/**
 * The control plane under load: the real manager (its election, the orchestrator, allocator,
 * scheduler and node-health loops, and the real Dispatcher) against a real etcd, with 1,000
 * simulated nodes and 30,000 tasks in 300 services of 100 replicas.
 *
 *   npm run bench:control-plane                     (builds, then runs in scripts/sandbox.sh)
 *   bash bench/run.sh control-plane [--tasks 30000] [--nodes 1000] [--timeout SECONDS] [--log FILE] [--cpu-profile FILE] [--heap-snapshot FILE] [--alloc-profile FILE] [--agents-cpu-profile FILE]
 *
 * This process is the leader: a `Manager` on a loopback gRPC server with the manager's mTLS
 * credentials, its etcd client counting what it reads (a gRPC interceptor sums the key and value
 * bytes of every KV reply, by method). A child process (this file with `--agents`) plays the nodes:
 * one mTLS Dispatcher session per node, with a certificate from the cluster's CA, heartbeating and
 * reporting every task it is given as running; it also watches the tasks prefix with its own etcd
 * client, to time when every task was persisted assigned and running. The services are created
 * through the Control API (CreateService), as the CLI does.
 *
 * The report: tasks placed and persisted per second (first create to all assigned), beside the
 * pure plan's figure on the same tasks and nodes (as bench:scheduler computes it); time to all
 * running; the leader's RSS; the bytes the leader read from etcd in the passes one unchanged write
 * of a node key sets off (a no-op pass). A limit of etcd or gRPC that a loop hits (a list over
 * 4 MiB: RESOURCE_EXHAUSTED) is a figure ("failed: ... at N tasks"), not a failure of the
 * benchmark: it exits non-zero only when it could not run (its own bugs, a bad argument).
 */
import { ChildProcess, fork } from 'node:child_process';
import { setMaxListeners } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import { Session as InspectorSession } from 'node:inspector';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { Etcd3 } from 'etcd3';
import { SwarmletError } from '../services/common/errors';
import { createRootLogger } from '../services/common/logger';
import { callUnary } from '../services/api/handlers';
import { NODE_SERVER_OPTIONS } from '../services/api/server-extras';
import { applySessionDelta } from '../services/api/session-delta';
import { CertificateSource, managerChannelOptions, managerClientCredentials, managerServerCredentials, TlsMaterial } from '../services/api/tls';
import { createKeyAndCSR, createRootCA, newRandomId, newTokenSecret, signCertificate } from '../services/pki/ca';
import { formatJoinToken } from '../services/pki/tokens';
import { ControlClient } from '../services/gen/swarmlet/v1/control';
import { DispatcherClient, SessionMessage, TaskStatusUpdate } from '../services/gen/swarmlet/v1/dispatcher';
import { Cluster, Node, NodeAvailability, NodeDescription, NodeRole, NodeState, ServiceSpec, TaskState, taskStateFromJSON } from '../services/gen/swarmlet/v1/types';
import { Manager } from '../manager/manager';
import { HeartbeatSender, StatusSender } from '../agent/session';
import { EtcdStore } from '../manager/store/etcd-store';
import { keys } from '../manager/store/keys';
import { fixtureClient, startEtcd } from '../test/integration/etcd-fixture';
import { sleep } from '../test/lab/process-tree';
import { firstLine, positiveInteger, progress, readFlags, renderReport, seconds } from './lab-helpers';
import { pureSchedulerRate } from './scheduler';
import { EtcdReadCounter, ReadCounts } from './etcd-read-counter';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const REPLICAS_PER_SERVICE = 100;
/** The cluster's timings, as `swarmlet swarm init` sets them by default. */
const CLUSTER_SPEC = { heartbeatPeriodMs: 1000, nodeDownAfterMs: 5000 };
const TARGETS = { tasksPerSecond: 5000, rssBytes: 500 * MiB, noopReadBytes: 0 };
/** How long the run waits without progress, once a loop has hit a limit, before it reports what it reached. */
const STALL_AFTER_LIMIT_MS = 20000;

interface Options {
  tasks: number;
  nodes: number;
  timeoutMs: number;
  logFile: string;
  /** Where the leader's CPU profile (first create to all assigned) goes, if anywhere. */
  cpuProfile?: string;
  /** Where a heap snapshot of the leader, taken once every task is assigned (or at the end of the wait), goes, if anywhere. */
  heapSnapshot?: string;
  allocProfile?: string;
  agentsCpuProfile?: string;
}

function parseArgs(argv: string[]): Options {
  const flags = readFlags(argv, ['--tasks', '--nodes', '--timeout', '--log', '--cpu-profile', '--heap-snapshot', '--alloc-profile', '--agents-cpu-profile'], 'control-plane [--tasks N] [--nodes M] [--timeout SECONDS] [--log FILE] [--cpu-profile FILE] [--heap-snapshot FILE] [--alloc-profile FILE] [--agents-cpu-profile FILE]');
  const tasks = positiveInteger('--tasks', Number(flags.get('--tasks') ?? 30000));
  const nodes = positiveInteger('--nodes', Number(flags.get('--nodes') ?? 1000));
  const timeoutS = Number(flags.get('--timeout') ?? 0);
  if (timeoutS !== 0 && !(timeoutS > 0)) throw new SwarmletError('InvalidArgument', `--timeout must be a positive number of seconds, not ${timeoutS}`);
  // By default: 2 minutes, and 20 ms more per task (10 minutes for 30,000).
  const timeoutMs = timeoutS ? timeoutS * 1000 : Math.max(120000, tasks * 20);
  return { tasks, nodes, timeoutMs, logFile: flags.get('--log') ?? path.join(os.tmpdir(), `swarmlet-control-plane-${process.pid}.log`), cpuProfile: flags.get('--cpu-profile'), heapSnapshot: flags.get('--heap-snapshot'), allocProfile: flags.get('--alloc-profile'), agentsCpuProfile: flags.get('--agents-cpu-profile') };
}

// ---- what the agents process reports ------------------------------------------------------------

interface NodeCredentials {
  nodeId: string;
  certPem: string;
  keyPem: string;
}

/** Parent -> agents. */
type ToAgents =
  | { kind: 'start'; managerAddr: string; caCertPem: string; etcdEndpoint: string; nodes: NodeCredentials[]; tasks: number }
  /** Profile the simulated nodes' CPU from now until 'profile-stop'; the file is written at 'stop'. */
  | { kind: 'profile-start'; file: string }
  | { kind: 'profile-stop' }
  | { kind: 'stop' };

/** Agents -> parent: counts as of `at` (Date.now()), and when each threshold was first reached. */
interface AgentsStatus {
  kind: 'status';
  at: number;
  sessions: number;
  /** Tasks the watch has seen stored, assigned (or further), running (or further). */
  stored: number;
  assigned: number;
  running: number;
  /** Date.now() when `assigned` (`running`) first reached the wanted total. */
  allAssignedAt?: number;
  allRunningAt?: number;
  /** Status reports the dispatcher refused, and the last reason. */
  failedReports: number;
  sessionFailures: number;
  /** The most the agents process's event loop ran late in the last 5 s (ms): a stalled node process fails heartbeats too. */
  loopMaxMs: number;
  /** Why sessions failed: reason (numbers taken out) -> how many times. */
  failureReasons: Record<string, number>;
  lastError?: string;
  /** Session messages the nodes got (whole or deltas), and the tasks they carried, since the sessions opened. */
  messages: number;
  messageTasks: number;
}

type FromAgents = AgentsStatus | { kind: 'ready' } | { kind: 'fatal'; message: string };

// ---- the leader ---------------------------------------------------------------------------------

const loopbackAddr = (i: number) => `127.1.${(i >> 8) & 255}.${i & 255}`;

function description(hostname: string): NodeDescription {
  return NodeDescription.fromPartial({ hostname, os: 'linux', arch: 'x64', engineVersion: '0.1.0', resources: { nanoCpus: 8e9, memoryBytes: 16 * GiB } });
}

/** Runs `fn` over `items`, `width` at a time. */
async function inParallel<T>(items: T[], width: number, fn: (t: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i] as T, i);
    }
  }));
}

/** Bounds a promise: rejects with `what` timed out after `ms`. */
function within<T>(what: string, ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new SwarmletError('Unavailable', `timed out after ${seconds(ms)} waiting for ${what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

async function waitFor(what: string, timeoutMs: number, ok: () => Promise<boolean> | boolean, intervalMs = 200): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      if (await ok()) return;
    } catch (err) {
      last = firstLine((err as Error).message);
    }
    if (Date.now() > deadline) throw new SwarmletError('Unavailable', `timed out after ${seconds(timeoutMs)} waiting for ${what}${last ? `; last error: ${last}` : ''}`);
    await sleep(intervalMs);
  }
}

interface Figures {
  created: number;
  /** When the last CreateService was answered (ms from the first create), and the median and p99 of their latencies (ms). */
  creates?: { lastAnsweredMs: number; p50: number; p99: number };
  /** ms from the first create */
  allAssignedMs?: number;
  allRunningMs?: number;
  /** Session messages the nodes got from the first create to the end of the wait, and the tasks in them. */
  messages?: { messages: number; tasks: number };
  last?: AgentsStatus;
  limit?: { details: string; method: string; storedTasks: number };
  timedOut: boolean;
  createErrors: number;
  lastCreateError?: string;
  rssPeak: number;
  /** The leader's CPU time (user + system), from the first create to when it saw every task assigned; a figure the other load on the machine changes little. */
  cpuToAssignedMs?: number;
  /** The etcd member's CPU time over the same span. */
  etcdCpuToAssignedMs?: number;
  /** The simulated nodes' (the agents process's) CPU time over the same span: it runs on the same cores. */
  agentsCpuToAssignedMs?: number;
  rssEnd: number;
  memoryAtPeak?: NodeJS.MemoryUsage;
  noop?: { reads: ReadCounts; quiet: boolean };
  /** From the manager's log: times it stopped leading, failed loop passes and the last one's reason. */
  leadershipLost?: number;
  /** From the first session opened to every session open and node ready (or the timeout). */
  /** `memory`: the leader's process.memoryUsage() with the sessions open, before the first create. */
  setup: { ms: number; ready: boolean; readyNodes: number; sessions: number; memory: NodeJS.MemoryUsage };
  loadAvg?: { start: number; end: number };
  /** How late the leader's event loop ran, from the first create to the end of the wait. */
  loopDelayMs?: { p99: number; max: number };
  failedPasses?: number;
  lastFailure?: string;
}

async function runLeader(opts: Options): Promise<void> {
  const serviceCount = Math.ceil(opts.tasks / REPLICAS_PER_SERVICE);
  progress(`control plane: ${opts.tasks} tasks in ${serviceCount} services, ${opts.nodes} nodes; manager log in ${opts.logFile}`);
  const logStream = fs.createWriteStream(opts.logFile);
  // The manager's log goes to the file; the lines that tell of lost leadership and failed passes are counted on the way.
  const events = { leadershipLost: 0, failedPasses: 0, lastFailure: '' };
  const log = createRootLogger('info', {
    write: (line: string) => {
      logStream.write(line);
      if (line.includes('"msg":"no longer leader"')) events.leadershipLost++;
      if (line.includes('"msg":"reconcile failed; retrying"')) {
        events.failedPasses++;
        events.lastFailure = line;
      }
    },
  });
  const etcd = await startEtcd();
  // Interrupted: the etcd member and its data go with the run (the agents process ends when this one does).
  const onSignal = () => void etcd.stop().finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const counter = new EtcdReadCounter();
  // Watch replies are counted around the no-op pass alone: walking every one of them was 3% of the leader's CPU.
  counter.countWatches = false;
  const managerEtcd = fixtureClient([etcd.endpoint], { interceptors: [counter.interceptor] } as Parameters<typeof fixtureClient>[1]);
  // The options a node's server has (node/daemon.ts).
  const server = new grpc.Server(NODE_SERVER_OPTIONS);
  let manager: Manager | undefined;
  let agents: ChildProcess | undefined;
  let control: ControlClient | undefined;
  let rssPeak = 0;
  const loopDelay = monitorEventLoopDelay({ resolution: 20 });
  /** process.memoryUsage() near the RSS peak (taken again only when the RSS grew 2% past it): what the peak was made of. */
  let atPeak: NodeJS.MemoryUsage | undefined;
  // memoryUsage() costs milliseconds with a large heap (it was 1% of the leader's CPU): the RSS alone is sampled.
  const rssTimer = setInterval(() => {
    const rss = process.memoryUsage.rss();
    rssPeak = Math.max(rssPeak, rss);
    if (!atPeak || rss > atPeak.rss * 1.02) atPeak = process.memoryUsage();
  }, 500);
  try {
    // The cluster, its CA and the manager's node, as `swarmlet swarm init` makes them.
    const clusterId = newRandomId();
    const managerId = newRandomId();
    const ca = await createRootCA(clusterId);
    const managerKey = await createKeyAndCSR(managerId);
    const tls: TlsMaterial = { caCertPem: ca.certPem, certPem: await signCertificate(ca, managerKey.csrPem, { nodeId: managerId, clusterId, role: 'manager', ipAddresses: ['127.0.0.1'] }), keyPem: managerKey.keyPem };
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', managerServerCredentials(new CertificateSource(tls)), (err, p) => (err ? reject(err) : resolve(p))));
    const apiAddr = `127.0.0.1:${port}`;
    const cluster = Cluster.fromPartial({
      id: clusterId,
      spec: CLUSTER_SPEC,
      joinTokens: { worker: formatJoinToken(ca.digest, newTokenSecret()), manager: formatJoinToken(ca.digest, newTokenSecret()) },
      rootCa: { certPem: ca.certPem, keyPem: ca.keyPem, digest: ca.digest },
      etcd: { embedded: false, endpoints: [etcd.endpoint] },
    });
    const now = () => new Date().toISOString();
    const setup = new EtcdStore(etcd.client);
    await setup.createCluster(cluster, Node.fromPartial({
      id: managerId,
      role: NodeRole.NODE_ROLE_MANAGER,
      spec: { desiredRole: NodeRole.NODE_ROLE_MANAGER, availability: NodeAvailability.NODE_AVAILABILITY_ACTIVE, labels: {} },
      description: description('manager'),
      status: { state: NodeState.NODE_STATE_UNKNOWN, message: 'initializing', addr: '127.0.0.1', updatedAt: now(), apiAddr },
      managerStatus: { addr: apiAddr, leader: false, reachability: 0 },
    }));

    // The workers, as the CA service admits them: a node object and a certificate the CA signed.
    progress(`issuing ${opts.nodes} node certificates`);
    const nodeKeys = await makeNodeKeys(opts.nodes);
    const nodes: NodeCredentials[] = new Array(opts.nodes);
    await inParallel(Array.from({ length: opts.nodes }, (_, i) => i), 16, async (i) => {
      const { nodeId, keyPem, csrPem } = nodeKeys[i]!;
      const certPem = await signCertificate(ca, csrPem, { nodeId, clusterId, role: 'worker' });
      const addr = loopbackAddr(i + 1);
      await setup.createNode(Node.fromPartial({
        id: nodeId,
        role: NodeRole.NODE_ROLE_WORKER,
        spec: { desiredRole: NodeRole.NODE_ROLE_WORKER, availability: NodeAvailability.NODE_AVAILABILITY_ACTIVE, labels: {} },
        description: description(`node-${i + 1}`),
        status: { state: NodeState.NODE_STATE_UNKNOWN, message: 'joining', addr, updatedAt: now(), apiAddr: `${addr}:4242` },
        managerStatus: { addr: `${addr}:4242`, leader: false, reachability: 0 },
      }));
      nodes[i] = { nodeId, certPem, keyPem };
    });

    // The manager, as a manager node's daemon runs it.
    manager = new Manager({ nodeId: managerId, etcd: managerEtcd, tls: () => tls, apiAddr, embeddedEtcd: false, log });
    manager.registerServices(server);
    await manager.start();
    const m = manager;
    await waitFor('the manager to lead', 30000, async () => (await m.leaderId()) === managerId);
    progress('the manager leads');

    // The agents.
    let status: AgentsStatus | undefined;
    let agentsFailed: string | undefined;
    let agentsReady = false;
    const child = fork(__filename, ['--agents'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    agents = child;
    child.on('message', (msg: FromAgents) => {
      if (msg.kind === 'status') status = msg;
      else if (msg.kind === 'ready') agentsReady = true;
      else if (msg.kind === 'fatal') agentsFailed = msg.message;
    });
    child.on('exit', (code, signal) => {
      if (!agentsFailed && agents) agentsFailed = `the agents process exited (code ${code}, signal ${signal})`;
    });
    const agentsOk = () => {
      if (agentsFailed) throw new SwarmletError('Internal', agentsFailed);
      return true;
    };
    child.send({ kind: 'start', managerAddr: apiAddr, caCertPem: ca.certPem, etcdEndpoint: etcd.endpoint, nodes, tasks: opts.tasks } satisfies ToAgents);
    progress(`opening ${opts.nodes} sessions`);
    // Until every session is open and every node ready; a control plane too slow for that is a figure, not a failure.
    const tSessions = Date.now();
    let readyNodes = 0;
    let lastSetupLine = Date.now();
    const setupLoop = monitorEventLoopDelay({ resolution: 20 });
    setupLoop.enable();
    // The longest garbage collection since the last progress line: a long one stalls every session's heartbeat.
    let gcMaxMs = 0;
    const gcObserver = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) gcMaxMs = Math.max(gcMaxMs, e.duration);
    });
    gcObserver.observe({ entryTypes: ['gc'] });
    const stalls = () => {
      const line = `leader's event loop late at most ${(setupLoop.max / 1e6).toFixed(0)} ms (longest GC ${gcMaxMs.toFixed(0)} ms), agents' ${status?.loopMaxMs.toFixed(0) ?? '-'} ms`;
      setupLoop.reset();
      gcMaxMs = 0;
      return line;
    };
    const nodesReady = await waitFor(`${opts.nodes} sessions and ready nodes`, opts.timeoutMs, async () => {
      agentsOk();
      readyNodes = (await setup.listNodes()).filter((n) => n.role === NodeRole.NODE_ROLE_WORKER && n.status?.state === NodeState.NODE_STATE_READY).length;
      if (Date.now() - lastSetupLine > 5000) {
        lastSetupLine = Date.now();
        const top = Object.entries(status?.failureReasons ?? {}).sort((a, b) => b[1] - a[1])[0];
        progress(`sessions ${status?.sessions ?? 0}, ${readyNodes} nodes ready; sessions failed ${status?.sessionFailures ?? 0}${top ? ` (most: ${top[1]} x ${top[0]})` : ''}; ${stalls()}`);
      }
      return agentsReady && readyNodes >= opts.nodes;
    }, 500).then(
      () => true,
      (err: Error) => {
        progress(`${err.message}; going on with ${readyNodes} ready nodes`);
        return false;
      },
    );
    const setupFigure = { ms: Date.now() - tSessions, ready: nodesReady, readyNodes, sessions: status?.sessions ?? 0, memory: process.memoryUsage() };
    progress(`${readyNodes} of ${opts.nodes} nodes ready; rss ${(setupFigure.memory.rss / MiB).toFixed(0)} MiB`);
    const raw = etcd.client;

    // The services, through the Control API, as the CLI creates them.
    control = new ControlClient(apiAddr, managerClientCredentials(ca.certPem, tls), managerChannelOptions);
    const c = control;
    const figures: Figures = { created: 0, timedOut: false, createErrors: 0, rssPeak: 0, rssEnd: 0, setup: setupFigure };
    const profiler = opts.cpuProfile ? await startProfile('cpu', opts.cpuProfile) : opts.allocProfile ? await startProfile('alloc', opts.allocProfile) : undefined;
    if (opts.agentsCpuProfile) agents!.send({ kind: 'profile-start', file: path.resolve(opts.agentsCpuProfile) } satisfies ToAgents);
    const t0 = Date.now();
    const cpu0 = process.cpuUsage();
    const etcdCpu0 = processCpuMs(etcd.pid);
    const agentsCpu0 = processCpuMs(agents!.pid!);
    const messages0 = { messages: status?.messages ?? 0, tasks: status?.messageTasks ?? 0 };
    loopDelay.enable();
    figures.loadAvg = { start: os.loadavg()[0] as number, end: 0 };
    const createMs: number[] = [];
    const creating = inParallel(Array.from({ length: serviceCount }, (_, s) => s), 4, async (s) => {
      const replicas = Math.min(REPLICAS_PER_SERVICE, opts.tasks - s * REPLICAS_PER_SERVICE);
      const spec = ServiceSpec.fromPartial({ name: `svc-${s + 1}`, task: { container: { image: 'exec:/', args: ['sleep', 'infinity'] } }, mode: { $case: 'replicated', value: { replicas } } });
      const asked = Date.now();
      try {
        await callUnary(c.createService.bind(c), { spec, registryAuth: '' }, 60000);
        figures.created++;
      } catch (err) {
        figures.createErrors++;
        figures.lastCreateError = firstLine((err as grpc.ServiceError).details ?? (err as Error).message);
      }
      createMs.push(Date.now() - asked);
    }).then(() => {
      const sorted = [...createMs].sort((a, b) => a - b);
      const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
      figures.creates = { lastAnsweredMs: Date.now() - t0, p50: at(0.5), p99: at(0.99) };
    });
    progress(`creating ${serviceCount} services`);

    // Until every task runs, a loop is stuck on a limit, or the time is up.
    let lastProgressAt = Date.now();
    let lastCounts = '';
    let lastLine = 0;
    for (;;) {
      agentsOk();
      await sleep(250);
      const s = status;
      if (!s) continue;
      const counts = `${s.stored}/${s.assigned}/${s.running}`;
      if (counts !== lastCounts) {
        lastCounts = counts;
        lastProgressAt = Date.now();
      }
      if (Date.now() - lastLine > 5000) {
        lastLine = Date.now();
        progress(`services ${figures.created}/${serviceCount}; tasks stored ${s.stored}, assigned ${s.assigned}, running ${s.running} of ${opts.tasks}; sessions ${s.sessions} (failed ${s.sessionFailures}); rss ${(process.memoryUsage().rss / MiB).toFixed(0)} MiB; ${stalls()}`);
      }
      if (counter.exhausted && !figures.limit) {
        figures.limit = { ...counter.exhausted, storedTasks: s.stored };
        progress(`a loop hit ${counter.exhausted.method}: RESOURCE_EXHAUSTED (${counter.exhausted.details}) with ${s.stored} tasks stored`);
      }
      if (s.allAssignedAt && figures.cpuToAssignedMs === undefined) {
        const used = process.cpuUsage(cpu0);
        figures.cpuToAssignedMs = (used.user + used.system) / 1000;
        figures.etcdCpuToAssignedMs = processCpuMs(etcd.pid) - etcdCpu0;
        figures.agentsCpuToAssignedMs = processCpuMs(agents!.pid!) - agentsCpu0;
        await profiler?.stop();
        if (opts.agentsCpuProfile) agents!.send({ kind: 'profile-stop' } satisfies ToAgents);
        if (opts.heapSnapshot) takeHeapSnapshot(opts.heapSnapshot);
      }
      if (s.allRunningAt) break;
      if (figures.limit && Date.now() - lastProgressAt > STALL_AFTER_LIMIT_MS) break;
      if (Date.now() - t0 > opts.timeoutMs) {
        figures.timedOut = true;
        break;
      }
    }
    await within('the service creates to end', 70000, creating).catch(() => undefined);
    if (opts.heapSnapshot && !fs.existsSync(opts.heapSnapshot)) takeHeapSnapshot(opts.heapSnapshot);
    const s = status!;
    figures.last = s;
    figures.allAssignedMs = s.allAssignedAt && s.allAssignedAt - t0;
    figures.allRunningMs = s.allRunningAt && s.allRunningAt - t0;
    figures.messages = { messages: s.messages - messages0.messages, tasks: s.messageTasks - messages0.tasks };
    loopDelay.disable();
    setupLoop.disable();
    gcObserver.disconnect();
    figures.loadAvg!.end = os.loadavg()[0] as number;
    figures.loopDelayMs = { p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 };
    figures.rssEnd = process.memoryUsage().rss;
    figures.rssPeak = Math.max(rssPeak, figures.rssEnd);
    figures.memoryAtPeak = atPeak;

    // One no-op pass: an unchanged write of a node key wakes every loop, and none has anything to do.
    progress('measuring a no-op pass');
    await counter.quiet(2000, 0, 30000);
    const key = keys.node(nodes[0]!.nodeId);
    const value = await raw.get(key).buffer();
    counter.countWatches = true;
    const before = counter.snapshot();
    if (value) await raw.put(key).value(value).exec();
    const quiet = await counter.quiet(1000, 1000, 30000);
    const after = counter.snapshot();
    figures.noop = { reads: { kvCalls: after.kvCalls - before.kvCalls, kvBytes: after.kvBytes - before.kvBytes, rangeCalls: after.rangeCalls - before.rangeCalls, watchBytes: after.watchBytes - before.watchBytes }, quiet };

    progress('computing the pure plan reference');
    const reference = pureSchedulerRate(opts.nodes, serviceCount, opts.tasks, 3);
    figures.leadershipLost = events.leadershipLost;
    figures.failedPasses = events.failedPasses;
    if (events.lastFailure) {
      const l = JSON.parse(events.lastFailure) as { loop?: string; err?: { message?: string } };
      figures.lastFailure = `${l.loop}: ${firstLine(l.err?.message ?? '')}`.slice(0, 200);
    }
    process.stdout.write(report(opts, serviceCount, figures, reference));
    if (profiler) {
      await profiler.stop();
      profiler.write();
    }
  } finally {
    clearInterval(rssTimer);
    if (agents && agents.exitCode === null) {
      const child = agents;
      agents = undefined;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.send({ kind: 'stop' } satisfies ToAgents, () => undefined);
      await within('the agents process to exit', 10000, exited).catch(() => child.kill('SIGKILL'));
    }
    control?.close();
    await within('the manager to stop', 15000, manager?.stop() ?? Promise.resolve()).catch((err) => progress(`manager stop: ${(err as Error).message}`));
    server.forceShutdown();
    managerEtcd.close();
    await etcd.stop();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    logStream.end();
  }
}

function report(opts: Options, serviceCount: number, f: Figures, reference: { tasksPerSecond: number; placed: number; pending: number }): string {
  const s = f.last!;
  const rate = (n: number, ms: number) => `${Math.round(n / (ms / 1000))} tasks/s`;
  const mib = (b: number) => `${(b / MiB).toFixed(0)} MiB`;
  const reached = `reached ${s.assigned} assigned, ${s.running} running of ${opts.tasks}, ${s.stored} stored`;
  const failure = f.limit
    ? `failed: RESOURCE_EXHAUSTED at ${f.limit.storedTasks} tasks (${reached})`
    : f.timedOut
      ? `failed: timed out after ${seconds(opts.timeoutMs)} (${reached})`
      : `failed: stopped (${reached})`;
  const placed = f.allAssignedMs !== undefined ? rate(opts.tasks, f.allAssignedMs) : failure;
  const running = f.allRunningMs !== undefined ? seconds(f.allRunningMs) : failure;
  const noop = f.noop!;
  const noopCell = `${noop.reads.kvBytes} B in ${noop.reads.kvCalls} KV calls (${noop.reads.rangeCalls} ranges)${noop.quiet ? '' : ', not quiet after 30 s'}`;
  const cells = [
    ['placed and persisted (create to all assigned)', placed, `pure plan ${Math.round(reference.tasksPerSecond)} tasks/s`, `>= ${TARGETS.tasksPerSecond} tasks/s`],
    ['leader CPU time, create to all assigned', f.cpuToAssignedMs !== undefined ? `${seconds(f.cpuToAssignedMs)} (${(f.cpuToAssignedMs / opts.tasks).toFixed(2)} ms per task)` : '-', '-', '-'],
    ['etcd CPU time, create to all assigned', f.etcdCpuToAssignedMs !== undefined ? `${seconds(f.etcdCpuToAssignedMs)} (${(f.etcdCpuToAssignedMs / opts.tasks).toFixed(2)} ms per task)` : '-', '-', '-'],
    ['simulated nodes\' CPU time, same span', f.agentsCpuToAssignedMs !== undefined ? `${seconds(f.agentsCpuToAssignedMs)} (${(f.agentsCpuToAssignedMs / opts.tasks).toFixed(2)} ms per task)` : '-', '-', '-'],
    ['services created (4 CreateService calls in flight)', f.creates ? `last answered at ${seconds(f.creates.lastAnsweredMs)}` : '-', f.creates ? `latency p50 ${f.creates.p50} ms, p99 ${f.creates.p99} ms` : '-', '-'],
    ['time to all running', running, f.allAssignedMs !== undefined ? `all assigned at ${seconds(f.allAssignedMs)}` : '-', '-'],
    ['session messages to the nodes, first create to all running', f.messages ? `${f.messages.messages} carrying ${f.messages.tasks} tasks` : '-', `${opts.tasks} tasks`, '-'],
    ['sessions open and nodes ready', f.setup.ready ? seconds(f.setup.ms) : `failed: timed out after ${seconds(f.setup.ms)} (${f.setup.sessions} sessions, ${f.setup.readyNodes} of ${opts.nodes} nodes ready)`, '-', '-'],
    ['leader RSS (peak / at the end)', `${mib(f.rssPeak)} / ${mib(f.rssEnd)}`, '-', `<= ${mib(TARGETS.rssBytes)}`],
    ['read from etcd by one no-op pass', noopCell, `watch events ${noop.reads.watchBytes} B`, `${TARGETS.noopReadBytes} B`],
  ];
  const met = {
    placement: f.allAssignedMs !== undefined && opts.tasks / (f.allAssignedMs / 1000) >= TARGETS.tasksPerSecond,
    rss: f.rssPeak <= TARGETS.rssBytes,
    noop: noop.quiet && noop.reads.kvBytes <= TARGETS.noopReadBytes,
  };
  const notes = [
    `${opts.tasks} tasks in ${serviceCount} services (up to ${REPLICAS_PER_SERVICE} replicas each) on ${opts.nodes} simulated nodes (one mTLS dispatcher session each, heartbeating every ${CLUSTER_SPEC.heartbeatPeriodMs} ms); services created through the Control API: ${f.created} created, ${f.createErrors} refused${f.lastCreateError ? ` (last: ${f.lastCreateError})` : ''}.`,
    `The machine's load average (1 min): ${f.loadAvg!.start.toFixed(1)} at the first create, ${f.loadAvg!.end.toFixed(1)} at the end of the wait, on ${os.cpus().length} cores.`,
    `Targets met: placement ${met.placement ? 'yes' : 'NO'}, RSS ${met.rss ? 'yes' : 'NO'}, no-op pass ${met.noop ? 'yes' : 'NO'}.`,
    f.limit ? `Limit hit: ${f.limit.method} RESOURCE_EXHAUSTED (${f.limit.details}) when ${f.limit.storedTasks} tasks were stored.` : '',
    `Pure plan: planScheduling of ${reference.pending} pending tasks on ${opts.nodes} nodes with 5,000 already running, as bench:scheduler builds them (median of 3; ${reference.placed} placed).`,
    'Times run from the first CreateService to the moment the tasks watch (a separate etcd client) saw the last task stored as assigned (running).',
    "Leader CPU time: this process's user and system time (process.cpuUsage) from the first create until it saw the last task assigned: what the control plane cost, which other load on the machine slows but hardly changes. etcd CPU time: the etcd member's (from /proc) over the same span; the simulated nodes' likewise (one process for all of them, on the same cores as the leader and etcd).",
    "RSS: this process's, which runs the manager (its loops, dispatcher and gRPC server); the simulated nodes and the timing watch run in a child process.",
    `With the sessions open, before the first create: RSS ${mib(f.setup.memory.rss)}, JS heap ${mib(f.setup.memory.heapUsed)} used of ${mib(f.setup.memory.heapTotal)}, external ${mib(f.setup.memory.external)} (array buffers ${mib(f.setup.memory.arrayBuffers)}).`,
    f.memoryAtPeak ? `At the RSS peak: JS heap ${mib(f.memoryAtPeak.heapUsed)} used of ${mib(f.memoryAtPeak.heapTotal)}, external ${mib(f.memoryAtPeak.external)} (array buffers ${mib(f.memoryAtPeak.arrayBuffers)}).` : '',
    "No-op pass: the key and value bytes of the KV replies to the manager's etcd client (counted by a gRPC interceptor) from one unchanged write of a node key until its KV calls were quiet for 1 s; watch events (the write itself, to each watching loop) are shown apart.",
    `Sessions failed (and opened again): ${s.sessionFailures}; status reports refused: ${s.failedReports}${s.lastError ? ` (last: ${s.lastError})` : ''}.`,
    s.sessionFailures ? `Why sessions failed (most often first): ${Object.entries(s.failureReasons).sort((a, b) => b[1] - a[1]).slice(0, 4).map(([why, n]) => `${n} x ${why}`).join('; ')}.` : '',
    `The leader's event loop, from the first create: p99 ${f.loopDelayMs!.p99.toFixed(0)} ms late, at most ${seconds(f.loopDelayMs!.max)} (an agent's heartbeat gives up after 2.5 s).`,
    `The manager lost its leadership ${f.leadershipLost ?? 0} times; loop passes failed ${f.failedPasses ?? 0} times${f.lastFailure ? ` (last: ${f.lastFailure})` : ''}.`,
  ].filter(Boolean);
  return renderReport(`bench:control-plane: ${opts.tasks} tasks, ${opts.nodes} nodes`, ['figure', 'measured', 'reference (same run)', 'target'], cells, [0, 1, 2], notes);
}

/** A process's CPU time so far (user + system, ms), from /proc; 0 if it cannot be read. */
function processCpuMs(pid: number): number {
  try {
    // After the command's name (in parentheses, which may hold spaces): utime and stime are the 12th and 13th fields.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

/** Linux's USER_HZ: the unit of /proc/PID/stat's times. */
const CLOCK_TICKS = 100;

/** A heap snapshot of this process (the leader): what holds its memory (open it in Chrome's DevTools, Memory tab). */
function takeHeapSnapshot(file: string): void {
  v8.writeHeapSnapshot(file);
  progress(`the leader's heap snapshot is in ${file}`);
}

/**
 * A profile of this process (the leader, or the simulated nodes) from now until `stop`: its CPU
 * ('cpu', a .cpuprofile file), or where it allocates ('alloc', a .heapprofile file of sampled
 * allocations, those the GC collected since included). Stopped when every task is assigned, it is
 * written by `write` only once the run's figures are taken: serializing it stalls the process, and
 * the no-op pass measured after it saw that.
 */
async function startProfile(kind: 'cpu' | 'alloc', file: string, whose = "the leader's"): Promise<{ stop: () => Promise<void>; write: () => void }> {
  const session = new InspectorSession();
  session.connect();
  const post = <T>(method: string, params?: object) =>
    new Promise<T>((resolve, reject) => session.post(method, params ?? {}, (err, res) => (err ? reject(err) : resolve(res as T))));
  if (kind === 'cpu') {
    await post('Profiler.enable');
    await post('Profiler.setSamplingInterval', { interval: 1000 });
    await post('Profiler.start');
  } else {
    await post('HeapProfiler.enable');
    await post('HeapProfiler.startSampling', { samplingInterval: 32 * 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  }
  let profile: object | undefined;
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= post<{ profile: object }>(kind === 'cpu' ? 'Profiler.stop' : 'HeapProfiler.stopSampling').then((res) => {
      profile = res.profile;
      session.disconnect();
    }));
  return {
    stop,
    write: () => {
      if (!profile) return;
      fs.writeFileSync(file, JSON.stringify(profile));
      profile = undefined;
      progress(`${whose} ${kind === 'cpu' ? 'CPU' : 'allocation'} profile, first create to all assigned, is in ${file}`);
    },
  };
}

// ---- the simulated nodes' keys (a child process) ------------------------------------------------

/** A node's own key and the CSR it sends the CA. */
interface NodeKey {
  nodeId: string;
  keyPem: string;
  csrPem: string;
}

/**
 * The simulated nodes' keys and CSRs, made in a process of their own as each node makes its own:
 * the leader's process only signs the CSRs, as its CA does when nodes join. (Making the 1,000 keys
 * took its RSS from 84 to 140 MiB before any session; what the sessions then take hid the
 * difference, but it was work no leader does.)
 */
function makeNodeKeys(count: number): Promise<NodeKey[]> {
  const child = fork(__filename, ['--node-keys', String(count)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('message', (made: NodeKey[]) => resolve(made));
    child.once('exit', (code, signal) => reject(new SwarmletError('Internal', `the node keys process exited before it answered (code ${code}, signal ${signal})`)));
  });
}

/** The child of makeNodeKeys: makes the keys, sends them, and exits. */
async function nodeKeysProcess(count: number): Promise<void> {
  const made: NodeKey[] = new Array(count);
  await inParallel(Array.from({ length: count }, (_, i) => i), 16, async (i) => {
    const nodeId = newRandomId();
    made[i] = { nodeId, ...(await createKeyAndCSR(nodeId)) };
  });
  process.send!(made, () => process.exit(0));
}

// ---- the simulated nodes (the child process) ----------------------------------------------------

function runAgents(): void {
  const send = (msg: FromAgents) => process.send?.(msg);
  const controller = new AbortController();
  let profiler: Awaited<ReturnType<typeof startProfile>> | undefined;
  process.on('message', (msg: ToAgents) => {
    if (msg.kind === 'stop') {
      controller.abort();
      // Written now, once the figures are taken: writing it stalls the nodes.
      const written = profiler ? profiler.stop().then(() => profiler!.write()) : Promise.resolve();
      void written.catch(() => undefined).finally(() => setTimeout(() => process.exit(0), 200).unref());
    } else if (msg.kind === 'profile-start') {
      void startProfile('cpu', msg.file, "the simulated nodes'").then((p) => (profiler = p), () => undefined);
    } else if (msg.kind === 'profile-stop') {
      void profiler?.stop().catch(() => undefined);
    } else if (msg.kind === 'start') {
      agents(msg, controller.signal, send).catch((err: unknown) => {
        send({ kind: 'fatal', message: (err as Error).message });
        setTimeout(() => process.exit(1), 200).unref();
      });
    }
  });
  // The parent gone (killed, crashed): so are the nodes.
  process.on('disconnect', () => process.exit(0));
}

async function agents(start: Extract<ToAgents, { kind: 'start' }>, signal: AbortSignal, send: (msg: FromAgents) => void): Promise<void> {
  const status: AgentsStatus = { kind: 'status', at: Date.now(), sessions: 0, stored: 0, assigned: 0, running: 0, failedReports: 0, sessionFailures: 0, failureReasons: {}, loopMaxMs: 0, messages: 0, messageTasks: 0 };
  const agentsLoop = monitorEventLoopDelay({ resolution: 20 });
  agentsLoop.enable();
  const loopWindow = setInterval(() => {
    status.loopMaxMs = agentsLoop.max / 1e6;
    agentsLoop.reset();
  }, 5000);
  setMaxListeners(0, signal);

  // The timing watch: every task as stored. Only tasks meant to run count (not those retired).
  const etcd: Etcd3 = fixtureClient([start.etcdEndpoint]);
  const tasks = new Map<string, { state: TaskState; active: boolean }>();
  const count = (t: { state: TaskState; active: boolean } | undefined, sign: 1 | -1) => {
    if (!t?.active) return;
    status.stored += sign;
    if (t.state >= TaskState.TASK_STATE_ASSIGNED) status.assigned += sign;
    if (t.state >= TaskState.TASK_STATE_RUNNING) status.running += sign;
  };
  // All assigned (running) when the watch delivers the write that makes it so, not at the next report.
  const stamp = () => {
    if (!status.allAssignedAt && status.assigned >= start.tasks) status.allAssignedAt = Date.now();
    if (!status.allRunningAt && status.running >= start.tasks) status.allRunningAt = Date.now();
  };
  const watcher = await etcd.watch().prefix(keys.tasksPrefix).create();
  // It reads the three fields it counts by, not the whole task: it shares the cores with the leader.
  watcher.on('put', (kv) => {
    let task: { id?: string; desiredState?: unknown; status?: { state?: unknown } };
    try {
      task = JSON.parse(kv.value.toString());
    } catch {
      return;
    }
    if (typeof task.id !== 'string') return;
    const state = taskStateFromJSON(task.status?.state ?? TaskState.TASK_STATE_NEW);
    const desired = taskStateFromJSON(task.desiredState ?? TaskState.TASK_STATE_NEW);
    const next = { state, active: desired <= TaskState.TASK_STATE_RUNNING && state <= TaskState.TASK_STATE_RUNNING };
    count(tasks.get(task.id), -1);
    count(next, 1);
    tasks.set(task.id, next);
    stamp();
  });
  watcher.on('delete', (kv) => {
    const id = kv.key.toString().slice(keys.tasksPrefix.length);
    count(tasks.get(id), -1);
    tasks.delete(id);
  });
  const timer = setInterval(() => {
    status.at = Date.now();
    send({ ...status });
  }, 100);
  signal.addEventListener('abort', () => {
    clearInterval(timer);
    clearInterval(loopWindow);
    void watcher.cancel().finally(() => etcd.close());
  }, { once: true });

  // Sessions open 50 at a time, 100 ms apart, as agents of a booting lab would.
  await Promise.all(start.nodes.map((n, i) => sleep(Math.floor(i / 50) * 100).then(() => simulatedNode(start, n, signal, status))));
  send({ kind: 'ready' });
}

/**
 * One node, as the agent's session and worker behave: a session with the dispatcher, heartbeats
 * at the period it is told, every task it is given reported running on the session's status
 * stream (one batch in flight at a time; what was refused is sent again after a backoff, through
 * whichever session is open then),
 * and a new session after a short backoff when one fails. Resolves once the first session is open.
 */
function simulatedNode(start: Extract<ToAgents, { kind: 'start' }>, creds: NodeCredentials, signal: AbortSignal, status: AgentsStatus): Promise<void> {
  const client = new DispatcherClient(start.managerAddr, managerClientCredentials(start.caCertPem, creds), managerChannelOptions);
  const reported = new Set<string>();
  const pending = new Map<string, TaskStatusUpdate>();
  let sessionId = '';
  /** The open session's status stream (agent/session.ts's StatusSender, as the agent reports). */
  let statuses: StatusSender | undefined;
  let reporting = false;
  let retryMs = 100;
  signal.addEventListener('abort', () => client.close(), { once: true });
  const flush = () => {
    if (reporting || pending.size === 0 || !sessionId || !statuses || signal.aborted) return;
    const updates = [...pending.values()];
    pending.clear();
    reporting = true;
    statuses.report(sessionId, updates, 30000).then(
      () => {
        retryMs = 100;
        reporting = false;
        flush();
      },
      (err: grpc.ServiceError) => {
        status.failedReports++;
        status.lastError = `status report: ${err.details ?? err.message}`;
        for (const u of updates) if (!pending.has(u.taskId)) pending.set(u.taskId, u);
        setTimeout(() => {
          reporting = false;
          flush();
        }, retryMs);
        retryMs = Math.min(5000, retryMs * 2);
      },
    );
  };
  return new Promise<void>((opened) => {
    const session = (attempt: number) => {
      if (signal.aborted) return;
      let over = false;
      let heartbeat: NodeJS.Timeout | undefined;
      const stream = client.session({ description: description(creds.nodeId), advertiseAddr: '', apiAddr: '', acceptsDeltas: true });
      let last: SessionMessage | undefined;
      const end = (why: string) => {
        if (over) return;
        over = true;
        clearTimeout(heartbeat);
        beats.close();
        reports.close();
        signal.removeEventListener('abort', onAbort);
        stream.removeAllListeners();
        stream.on('error', () => undefined);
        stream.cancel();
        const established = sessionId !== '';
        if (established) status.sessions--;
        sessionId = '';
        if (signal.aborted) return;
        status.sessionFailures++;
        status.lastError = why;
        const reason = why.replace(/[\d.]+/g, 'N').slice(0, 100);
        status.failureReasons[reason] = (status.failureReasons[reason] ?? 0) + 1;
        setTimeout(() => session(established ? 0 : attempt + 1), Math.min(2000, 200 * 2 ** attempt));
      };
      const onAbort = () => end('stopped');
      signal.addEventListener('abort', onAbort, { once: true });
      // As the agent beats (agent/session.ts): on one Heartbeats stream per session.
      const beats = new HeartbeatSender(client);
      const reports = new StatusSender(client);
      statuses = reports;
      const beat = (periodMs: number) => {
        heartbeat = setTimeout(() => {
          beats.beat(sessionId, periodMs * 2 + 500).then(
            (res) => !over && beat(res.periodMs || periodMs),
            (err: grpc.ServiceError) => end(`heartbeat: ${err.details ?? err.message}`),
          );
        }, periodMs);
      };
      stream.on('data', (delta: SessionMessage) => {
        // As the agent does (agent/session.ts): a delta applied to the whole message before it.
        let msg: SessionMessage;
        try {
          msg = applySessionDelta(last, delta);
        } catch (err) {
          end(`session: ${(err as Error).message}`);
          return;
        }
        last = msg;
        status.messages += 1;
        status.messageTasks += delta.tasks.length;
        if (!sessionId) {
          sessionId = msg.sessionId;
          status.sessions++;
          beat(msg.clusterSpec?.heartbeatPeriodMs || 1000);
          opened();
        }
        for (const t of msg.tasks) {
          const state = t.status?.state ?? TaskState.TASK_STATE_NEW;
          if (t.desiredState > TaskState.TASK_STATE_RUNNING || state >= TaskState.TASK_STATE_RUNNING || reported.has(t.id)) continue;
          reported.add(t.id);
          pending.set(t.id, { taskId: t.id, status: { state: TaskState.TASK_STATE_RUNNING, timestamp: new Date().toISOString(), message: 'started', err: '', container: undefined } });
        }
        flush();
      });
      stream.on('error', (err: grpc.ServiceError) => end(`session: ${err.details ?? err.message}`));
      stream.on('end', () => end('session: stream ended'));
    };
    session(0);
  });
}

// ---- entry --------------------------------------------------------------------------------------

if (process.argv[2] === '--agents') {
  runAgents();
} else if (process.argv[2] === '--node-keys') {
  nodeKeysProcess(Number(process.argv[3])).catch((err: unknown) => {
    process.stderr.write(`bench/control-plane: node keys: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
} else {
  let opts: Options;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`bench/control-plane: ${(err as Error).message}\n`);
    process.exit(2);
  }
  runLeader(opts).then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`bench/control-plane: failed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
