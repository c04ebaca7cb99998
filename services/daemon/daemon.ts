import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { noop } from 'cockatiel';
import { Etcd3 } from 'etcd3';
import { AgentSession } from '../../agent/session';
import { readClusterView, votingManagers } from '../../manager/cluster-view';
import { clientUrl, EmbeddedEtcd, ETCD_CLIENT_HOSTNAME, peerUrl } from '../../manager/embedded-etcd';
import { Manager, MANAGER_SERVICES } from '../../manager/manager';
import { agentService } from '../../agent/agent-service';
import { ExecRuntime } from '../../agent/runtime/exec-runtime';
import { CrunRuntime } from '../../agent/runtime/crun-runtime';
import { RuntimeRouter } from '../../agent/runtime/runtime-router';
import { Runtime } from '../../agent/runtime/runtime';
import { Worker } from '../../agent/worker';
import { VolumeStore } from '../../agent/volumes/volume-store';
import { ImageStore } from '../../agent/images/image-store';
import { retireThroughPeer } from '../../manager/members-service';
import { planClusterSpec, planManagerRemoval } from '../../manager/node-plans';
import { EtcdStore } from '../../manager/store/etcd-store';
import { DEFAULT_API_PORT, formatHostPort, isIPv4, parseHostPort } from '../common/addr';
import { exponentialBackoff, sleep } from '../common/backoff';
import { asSwarmletError, failedPrecondition, invalidArgument, unavailable } from '../common/errors';
import { Logger, componentLogger } from '../common/logger';
import { VERSION } from '../common/version';
import { DaemonConfig } from '../config/config';
import { fromServiceError } from '../api/grpc-errors';
import { callUnary, unary } from '../api/handlers';
import { addStandardServices, bindServer, shutdownServer } from '../api/server-extras';
import { CertificateSource, failCall, managerChannelOptions, managerClientCredentials, managerServerCredentials, TlsMaterial } from '../api/tls';
import { ControlServer, ControlService, GetNetworkRequest, InfoResponse, InitRequest, InitResponse, JoinRequest, JoinResponse, LeaveRequest, LocalNodeServer, LocalNodeService } from '../gen/swarmlet/v1/control';
import { AgentService, CAClient, IssueNodeCertificateResponse, MembersClient, SessionMessage } from '../gen/swarmlet/v1/dispatcher';
import { Cluster, Node, NodeAvailability, NodeDescription, NodeRole, NodeState as NodeStatusState } from '../gen/swarmlet/v1/types';
import { certificateInfo, createKeyAndCSR, createRootCA, newRandomId, newTokenSecret, signCertificate } from '../pki/ca';
import { planCertRenewal, renewalFraction } from '../pki/renewal';
import { newSealKey } from '../pki/seal';
import { formatJoinToken, parseJoinToken } from '../pki/tokens';
import { hostInterfaceSubnets, isLocalAddress, pickAdvertiseAddr } from './advertise';
import { BRIDGE_PREFIX, NetworkController as NodeNetworks } from '../../agent/network/network-controller';
import { planLocalNetworkDetail, planLocalNetworks } from './local-networks';
import { NodeState, NodeStateDir } from './node-state';
import { volumeService } from './volume-service';
import { imageService } from './image-service';
import { fetchPinnedRootCA } from './remote-ca';

export const DEFAULT_CLUSTER_SPEC = Object.freeze({ heartbeatPeriodMs: 1000, nodeDownAfterMs: 5000 });

const NOT_IN_SWARM = 'this node is not part of a swarm; run "swarmlet init" or "swarmlet join" first';
const NOT_A_MANAGER =
  "this node is not a swarm manager: worker nodes can't be used to view or modify cluster state; run this on a manager node or promote this node to a manager";

const roleOf = (r: NodeRole) => (r === NodeRole.NODE_ROLE_MANAGER ? 'manager' : 'worker');

/** What the daemon's etcd client presents and trusts; `serverName` when the server's certificate does not name the dialed address. */
interface EtcdClientTls extends TlsMaterial {
  serverName?: string;
}

/**
 * An etcd client without etcd3's default circuit breaker: with one endpoint (the local member),
 * a breaker opened during a brief loss of quorum would refuse every call for a while after the
 * quorum came back. Our loops retry on their own, with backoff.
 */
function etcdClient(hosts: string[], tls?: EtcdClientTls): Etcd3 {
  return new Etcd3({
    hosts,
    ...(tls && {
      credentials: { rootCertificate: Buffer.from(tls.caCertPem), certChain: Buffer.from(tls.certPem), privateKey: Buffer.from(tls.keyPem) },
      grpcOptions: tls.serverName ? { 'grpc.ssl_target_name_override': tls.serverName, 'grpc.default_authority': tls.serverName } : undefined,
    }),
    dialTimeout: 3000,
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + 5000 }),
    faultHandling: { host: () => noop, global: noop },
  });
}

/**
 * The node daemon: one per host. It serves the local API on a unix socket, remembers its swarm
 * in the data dir, and runs what its role needs: always an agent session; on managers also the
 * embedded etcd member and the manager. Membership changes (init, join, leave, role changes)
 * run one at a time, and each either completes or leaves the node as it found it.
 */
export class Daemon {
  private readonly log: Logger;
  private readonly dir: NodeStateDir;
  private readonly unixServer = new grpc.Server();
  private readonly controller = new AbortController();
  private state?: NodeState;
  private etcd?: EmbeddedEtcd;
  private etcdClient?: Etcd3;
  private manager?: Manager;
  private agent?: AgentSession;
  private worker?: Worker;
  private networks?: NodeNetworks;
  private server?: grpc.Server;
  private certificate?: CertificateSource;
  private readonly runtime: Runtime;
  /** This node's volumes, under `<dataDir>/volumes`. */
  readonly volumes: VolumeStore;
  /** This node's images (oci runtime), under `<dataDir>/images`. */
  readonly images: ImageStore;
  private lastMessage?: SessionMessage;
  private queue: Promise<unknown> = Promise.resolve();
  private activating?: Promise<void>;
  private renewalTimer?: NodeJS.Timeout;
  /** Where in its life this node renews its certificate, drawn once. */
  private readonly renewAt = renewalFraction(Math.random());

  constructor(private readonly cfg: DaemonConfig, private readonly rootLog: Logger) {
    this.log = componentLogger(rootLog, 'daemon');
    this.dir = new NodeStateDir(cfg.dataDir);
    this.volumes = new VolumeStore({ root: path.join(cfg.dataDir, 'volumes'), log: rootLog });
    this.images = new ImageStore({ root: path.join(cfg.dataDir, 'images'), log: rootLog, insecureRegistries: cfg.insecureRegistries });
    // exec: images on the exec runtime, OCI references on crun; each with its own state dir and cgroup parent.
    this.runtime = new RuntimeRouter({
      exec: new ExecRuntime({ stateDir: this.dir.tasksDir, cgroupParent: cfg.cgroupParent, log: rootLog }),
      oci: new CrunRuntime({ stateDir: path.join(cfg.dataDir, 'containers'), cgroupParent: `${cfg.cgroupParent}-oci`, log: rootLog, images: this.images, volumes: this.volumes }),
    });
  }

  get description(): NodeDescription {
    return {
      hostname: this.cfg.hostname,
      os: process.platform,
      arch: process.arch,
      engineVersion: VERSION,
      resources: { nanoCpus: os.cpus().length * 1e9, memoryBytes: os.totalmem(), pids: 0 },
      interfaces: hostInterfaceSubnets(BRIDGE_PREFIX),
    };
  }

  async start(): Promise<void> {
    this.dir.ensure();
    this.state = this.dir.readState();
    this.unixServer.addService(LocalNodeService, this.localNodeService());
    this.unixServer.addService(ControlService, this.controlOnManager());
    addStandardServices(this.unixServer, ['swarmlet.v1.LocalNode', 'swarmlet.v1.Control']);
    const socketPath = this.cfg.host.slice('unix://'.length);
    await prepareSocketPath(socketPath);
    await bindServer(this.unixServer, this.cfg.host, grpc.ServerCredentials.createInsecure());
    fs.chmodSync(socketPath, 0o660);
    this.log.info({ host: this.cfg.host, dataDir: this.cfg.dataDir, nodeId: this.state?.nodeId, role: this.state?.role }, 'daemon listening');
    if (this.state) this.activating = this.activateWithRetry(this.state);
  }

  async stop(): Promise<void> {
    this.controller.abort();
    await this.activating;
    await this.serialize(() => this.deactivate());
    await shutdownServer(this.unixServer, 1000);
    this.log.info('daemon stopped');
  }

  // ---- local API ---------------------------------------------------------------------------

  private localNodeService(): LocalNodeServer {
    return {
      init: unary((req: InitRequest) => this.serialize(() => this.init(req))),
      join: unary((req: JoinRequest) => this.serialize(() => this.join(req))),
      leave: unary((req: LeaveRequest) => this.serialize(() => this.leave(req.force))),
      info: unary(() => this.info()),
      listNetworks: unary(async () => ({ networks: planLocalNetworks(this.state ? this.lastMessage : undefined) })),
      getNetwork: unary(async (req: GetNetworkRequest) => planLocalNetworkDetail(this.state ? this.lastMessage : undefined, req.network)),
      ...this.nodeStoreService(),
    };
  }

  /** Images and volumes of this node. */
  private nodeStoreService(): Pick<LocalNodeServer, 'listImages' | 'pullImage' | 'removeImage' | 'pruneImages' | 'createVolume' | 'listVolumes' | 'getVolume' | 'removeVolume' | 'pruneVolumes'> {
    return { ...imageService(this.images), ...volumeService(this.volumes) };
  }

  /** The Control service on the unix socket: the manager's own handlers, or a clear refusal on workers. */
  private controlOnManager(): ControlServer {
    type Handler = (call: any, callback?: grpc.sendUnaryData<unknown>) => void;
    const handlers: Record<string, Handler> = {};
    for (const name of Object.keys(ControlService)) {
      handlers[name] = (call, callback) => {
        const control = this.manager?.control as unknown as Record<string, Handler> | undefined;
        if (!control) return failCall(call, callback, failedPrecondition(this.state ? NOT_A_MANAGER : NOT_IN_SWARM));
        control[name](call, callback);
      };
    }
    return handlers as unknown as ControlServer;
  }

  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async init(req: InitRequest): Promise<InitResponse> {
    if (this.state) throw failedPrecondition('this node is already part of a swarm; use "swarmlet swarm leave" to leave it first');
    const advertiseAddr = req.advertiseAddr || pickAdvertiseAddr();
    if (!isIPv4(advertiseAddr)) throw invalidArgument(`invalid --advertise-addr ${JSON.stringify(advertiseAddr)}: expected an IPv4 address`);
    if (!isLocalAddress(advertiseAddr)) throw invalidArgument(`--advertise-addr ${advertiseAddr} is not an address of this host`);
    const listen = parseHostPort(req.listenAddr || `0.0.0.0:${DEFAULT_API_PORT}`, DEFAULT_API_PORT, '--listen-addr');
    const external = req.etcdEndpoints.map((e) => e.trim()).filter(Boolean);
    for (const e of external) if (!/^https?:\/\/[^/\s]+$/.test(e)) throw invalidArgument(`invalid etcd endpoint ${JSON.stringify(e)}: expected http://HOST:PORT`);

    const spec = planClusterSpec(DEFAULT_CLUSTER_SPEC, { heartbeatPeriodMs: req.heartbeatPeriodMs, nodeDownAfterMs: req.nodeDownAfterMs });
    const clusterId = newRandomId();
    const nodeId = newRandomId();
    const ca = await createRootCA(clusterId);
    const { keyPem, csrPem } = await createKeyAndCSR(nodeId);
    const certPem = await signCertificate(ca, csrPem, { nodeId, clusterId, role: 'manager', ipAddresses: [advertiseAddr] });
    const apiAddr = formatHostPort(advertiseAddr, listen.port);
    const cluster: Cluster = {
      id: clusterId,
      spec,
      joinTokens: { worker: formatJoinToken(ca.digest, newTokenSecret()), manager: formatJoinToken(ca.digest, newTokenSecret()) },
      rootCa: { certPem: ca.certPem, keyPem: ca.keyPem, digest: ca.digest },
      etcd: { embedded: external.length === 0, endpoints: external },
    };
    const node: Node = {
      id: nodeId,
      role: NodeRole.NODE_ROLE_MANAGER,
      spec: { desiredRole: NodeRole.NODE_ROLE_MANAGER, availability: NodeAvailability.NODE_AVAILABILITY_ACTIVE, labels: {} },
      description: this.description,
      status: { state: NodeStatusState.NODE_STATE_UNKNOWN, message: 'initializing', addr: advertiseAddr, updatedAt: new Date().toISOString(), apiAddr },
      managerStatus: { addr: apiAddr, leader: false, reachability: 0 },
    };
    const state: NodeState = {
      nodeId,
      clusterId,
      role: 'manager',
      advertiseAddr,
      listenAddr: formatHostPort(listen.host, listen.port),
      managers: [{ nodeId, addr: apiAddr }],
      etcd: cluster.etcd!,
    };
    const log = this.log.child({ nodeId, clusterId });
    try {
      this.dir.writeTls({ caCertPem: ca.certPem, certPem, keyPem });
      this.dir.writeSealKey(newSealKey());
      await this.startEtcd(state, { initialCluster: `${nodeId}=${peerUrl(advertiseAddr)}`, state: 'new' });
      await new EtcdStore(this.etcdClient!, undefined, () => this.dir.readSealKey()).createCluster(cluster, node);
      this.state = state;
      await this.startRole(state);
      this.dir.writeState(state);
      log.info({ advertiseAddr, apiAddr, etcd: cluster.etcd }, 'swarm initialized');
      return { nodeId, clusterId, workerToken: cluster.joinTokens!.worker, managerAddr: apiAddr };
    } catch (err) {
      log.error({ err: asSwarmletError(err).message }, 'init failed; undoing');
      this.state = undefined;
      await this.deactivate();
      this.dir.wipe();
      throw err;
    }
  }

  private async join(req: JoinRequest): Promise<JoinResponse> {
    if (this.state) throw failedPrecondition('this node is already part of a swarm; use "swarmlet swarm leave" to leave it first');
    const token = parseJoinToken(req.token);
    const remote = parseHostPort(req.remoteAddr, DEFAULT_API_PORT, 'manager address');
    if (req.advertiseAddr && !isIPv4(req.advertiseAddr)) throw invalidArgument(`invalid --advertise-addr ${JSON.stringify(req.advertiseAddr)}: expected an IPv4 address`);
    if (req.advertiseAddr && !isLocalAddress(req.advertiseAddr)) throw invalidArgument(`--advertise-addr ${req.advertiseAddr} is not an address of this host`);
    const listen = parseHostPort(req.listenAddr || `0.0.0.0:${DEFAULT_API_PORT}`, DEFAULT_API_PORT, '--listen-addr');
    const { caCertPem, localAddress } = await fetchPinnedRootCA(remote.host, remote.port, token.caDigest);
    const advertiseAddr = req.advertiseAddr || localAddress;
    const { keyPem, csrPem } = await createKeyAndCSR('joining');
    const ca = new CAClient(formatHostPort(remote.host, remote.port), managerClientCredentials(caCertPem), managerChannelOptions);
    let issued: IssueNodeCertificateResponse;
    try {
      issued = await callUnary(ca.issueNodeCertificate.bind(ca), {
        token: req.token.trim(),
        csrPem,
        description: this.description,
        advertiseAddr,
        listenAddr: formatHostPort(listen.host, listen.port),
      });
    } catch (err) {
      throw fromServiceError(err, `joining through ${remote.host}:${remote.port}`);
    } finally {
      ca.close();
    }
    const role = roleOf(issued.role);
    const state: NodeState = {
      nodeId: issued.nodeId,
      clusterId: issued.clusterId,
      role,
      advertiseAddr,
      listenAddr: formatHostPort(listen.host, listen.port),
      managers: issued.managers.length ? issued.managers : [{ nodeId: '', addr: formatHostPort(remote.host, remote.port) }],
      etcd: issued.etcd ?? { embedded: true, endpoints: [] },
    };
    const log = this.log.child({ nodeId: state.nodeId, clusterId: state.clusterId, role });
    try {
      const tls = { caCertPem: issued.caCertPem, certPem: issued.certPem, keyPem };
      this.dir.writeTls(tls);
      this.keepSealKey(issued);
      if (role === 'manager') await this.becomeEtcdMember(state, tls);
      this.state = state;
      await this.startRole(state);
      this.dir.writeState(state);
      log.info({ advertiseAddr, via: req.remoteAddr }, 'joined the swarm');
      return { nodeId: state.nodeId, clusterId: state.clusterId, role: issued.role };
    } catch (err) {
      log.error({ err: asSwarmletError(err).message }, 'join failed; undoing');
      this.state = undefined;
      await this.deactivate();
      this.dir.wipe();
      throw err;
    }
  }

  private async leave(force: boolean): Promise<Record<string, never>> {
    const state = this.state;
    if (!state) throw failedPrecondition(NOT_IN_SWARM);
    const log = this.log.child({ nodeId: state.nodeId });
    if (this.manager) {
      try {
        const view = await readClusterView(this.manager.store, () => this.manager!.leaderId());
        const voting = votingManagers(view.nodes);
        const reason = planManagerRemoval(voting, state.nodeId);
        if (reason && !force) throw failedPrecondition(`this node is a manager and leaving would break the swarm: ${reason}. Use --force to leave anyway`);
        // Another manager takes this one's etcd member out and records it: that manager's etcd stays up to do so.
        if (voting.length > 1) await retireThroughPeer(view.nodes, state.nodeId, this.dir.readTls(), state.nodeId, true);
      } catch (err) {
        if (!force) throw err;
        log.warn({ err: asSwarmletError(err).message }, 'leaving by force despite an error');
      }
    } else if (state.role === 'manager' && !force) {
      throw failedPrecondition('this manager is not running, so leaving safely cannot be checked; use --force to leave anyway');
    }
    await this.deactivate();
    await this.removeAllTasks(state);
    this.dir.wipe();
    this.state = undefined;
    log.info('left the swarm');
    return {};
  }

  private async info(): Promise<InfoResponse> {
    const s = this.state;
    const base: InfoResponse = {
      localState: s ? 'active' : 'inactive',
      nodeId: s?.nodeId ?? '',
      clusterId: s?.clusterId ?? '',
      role: s?.role === 'manager' ? NodeRole.NODE_ROLE_MANAGER : NodeRole.NODE_ROLE_WORKER,
      nodeAddr: s?.advertiseAddr ?? '',
      isManager: Boolean(this.manager),
      leaderId: '',
      managers: s?.managers ?? [],
      nodeCount: 0,
      managerCount: 0,
      engineVersion: VERSION,
      clusterSpec: undefined,
      error: '',
    };
    if (!this.manager) return base;
    try {
      const view = await readClusterView(this.manager.store, () => this.manager!.leaderId());
      const managers = view.nodes.filter((n) => n.role === NodeRole.NODE_ROLE_MANAGER);
      return {
        ...base,
        leaderId: view.leaderId ?? '',
        managers: managers.map((n) => ({ nodeId: n.id, addr: n.managerStatus?.addr ?? '' })),
        nodeCount: view.nodes.length,
        managerCount: managers.length,
        clusterSpec: view.cluster.spec,
      };
    } catch (err) {
      return { ...base, error: asSwarmletError(err).message };
    }
  }

  // ---- running a role ----------------------------------------------------------------------

  private async activateWithRetry(state: NodeState): Promise<void> {
    const backoff = exponentialBackoff(500, 10000);
    while (!this.controller.signal.aborted) {
      try {
        await this.serialize(() => this.startRole(state));
        return;
      } catch (err) {
        const delay = backoff.next();
        this.log.error({ err: asSwarmletError(err).message, delayMs: delay }, 'could not start this node; retrying');
        await this.serialize(() => this.deactivate());
        await sleep(delay, this.controller.signal);
      }
    }
  }

  /**
   * Starts what the node's role needs: on every node the task worker, the TCP server (the Agent
   * service) and the agent session; on managers also the etcd member and the manager, whose
   * services join the same server.
   */
  private async startRole(state: NodeState): Promise<void> {
    const tls = this.dir.readTls();
    const apiAddr = formatHostPort(state.advertiseAddr, parseHostPort(state.listenAddr).port);
    this.certificate = new CertificateSource(tls);
    if (state.role === 'manager') {
      if (!this.etcdClient) await this.startEtcd(state, { initialCluster: `${state.nodeId}=${peerUrl(state.advertiseAddr)}`, state: 'existing' });
      this.manager = new Manager({ nodeId: state.nodeId, etcd: this.etcdClient!, tls: () => this.dir.readTls(), apiAddr, embeddedEtcd: state.etcd.embedded, log: this.rootLog, sealKey: () => this.dir.readSealKey() });
    }
    const networks = new NodeNetworks({
      log: this.rootLog,
      localVtep: state.advertiseAddr,
      netnsPrefix: this.cfg.netnsPrefix,
      dnsUpstreams: this.cfg.dnsUpstreams,
      runningNetns: () => this.worker?.runningNetns() ?? new Map(),
    });
    this.networks = networks;
    this.worker = new Worker({
      runtime: this.runtime,
      log: this.rootLog,
      report: (updates) => this.agent ? this.agent.reportStatus(updates) : Promise.reject(unavailable('no agent session')),
      networks,
    });
    await this.worker.start();
    // Image and volume uses recorded for tasks the runtime no longer has (their state went while the daemon was down) are dropped.
    try {
      const ids = await this.runtime.list();
      this.images.retainUses(ids);
      await this.volumes.releaseAllExcept(ids);
    } catch (err) {
      this.log.warn({ err: asSwarmletError(err).message }, 'could not check the image and volume uses of tasks');
    }
    const server = new grpc.Server({ 'grpc.keepalive_permit_without_calls': 1, 'grpc.http2.min_ping_interval_without_data_ms': 5000 });
    server.addService(AgentService, agentService(this.runtime, networks, tls.caCertPem, this.rootLog));
    this.manager?.registerServices(server);
    addStandardServices(server, ['swarmlet.v1.Agent', ...(this.manager ? MANAGER_SERVICES : [])]);
    this.server = server;
    await bindServer(server, state.listenAddr, managerServerCredentials(this.certificate));
    await this.manager?.start();
    this.startAgent(state, apiAddr);
    this.scheduleRenewal();
    networks.startResync();
  }

  /** Checks now and then whether the node certificate is due for renewal, and renews it then. */
  private scheduleRenewal(): void {
    clearInterval(this.renewalTimer);
    const check = () =>
      this.serialize(() => this.renewIfDue()).catch((err) => this.log.warn({ err: asSwarmletError(err).message }, 'certificate renewal failed; will retry'));
    this.renewalTimer = setInterval(check, 10 * 60 * 1000);
    this.renewalTimer.unref();
    check();
  }

  private async renewIfDue(): Promise<void> {
    const state = this.state;
    if (!state || !this.agent) return;
    const cert = certificateInfo(this.dir.readTls().certPem);
    if (!planCertRenewal(cert, new Date(), this.renewAt)) return;
    const tls = await this.renewCertificate(state, false);
    this.certificate?.set(tls);
    this.log.info({ nodeId: state.nodeId, notAfter: certificateInfo(tls.certPem).notAfter }, 'node certificate renewed');
    if (state.role === 'manager' && state.etcd.embedded) {
      // The etcd client presents the certificate it was made with, and the embedded member refuses
      // it once it expires: the manager role starts again on the new one, as after a role change.
      this.log.info({ nodeId: state.nodeId }, 'restarting the manager role so that its etcd client presents the renewed certificate');
      await this.deactivate();
      await this.startRole(state);
    }
  }

  private async startEtcd(state: NodeState, opts: { initialCluster: string; state: 'new' | 'existing' }): Promise<void> {
    if (state.etcd.embedded) {
      this.etcd = new EmbeddedEtcd(
        {
          name: state.nodeId,
          dataDir: this.dir.etcdDir,
          advertiseAddr: state.advertiseAddr,
          tls: this.dir.certFiles,
          initialCluster: opts.initialCluster,
          initialClusterState: opts.state,
          clusterToken: state.clusterId,
          logFile: this.dir.etcdLog,
          binary: this.cfg.etcdBinary,
        },
        componentLogger(this.rootLog, 'etcd', { nodeId: state.nodeId }),
      );
      this.etcd.on('removed', () => this.log.info({ nodeId: state.nodeId }, 'this node\'s etcd member was removed; its manager stops when the demotion arrives'));
      await this.etcd.start();
    }
    // The embedded member demands this manager's certificate of its clients.
    this.etcdClient = state.etcd.embedded ? etcdClient([clientUrl()], { ...this.dir.readTls(), serverName: ETCD_CLIENT_HOSTNAME }) : etcdClient(state.etcd.endpoints);
  }

  /** A new manager asks an existing one to add its etcd member, then starts it to join the others. */
  private async becomeEtcdMember(state: NodeState, tls: TlsMaterial): Promise<void> {
    if (!state.etcd.embedded) {
      this.etcdClient = etcdClient(state.etcd.endpoints);
      return;
    }
    // etcd refuses a new member until the last one added has been connected for a few seconds
    // (its strict reconfiguration check): managers joining in quick succession wait their turn.
    const deadline = Date.now() + 30000;
    const addMember = () =>
      this.withManager(state, async (addr) => {
        const members = new MembersClient(addr, managerClientCredentials(tls.caCertPem, tls), managerChannelOptions);
        try {
          return await callUnary(members.addEtcdMember.bind(members), { peerUrl: peerUrl(state.advertiseAddr) });
        } finally {
          members.close();
        }
      });
    let added;
    for (const backoff = exponentialBackoff(250, 2000); ; ) {
      try {
        added = await addMember();
        break;
      } catch (err) {
        if (asSwarmletError(err).kind !== 'Unavailable' || Date.now() > deadline) throw err;
        await sleep(backoff.next(), this.controller.signal);
      }
    }
    this.dir.wipeEtcd();
    await this.startEtcd(state, { initialCluster: added.initialCluster, state: 'existing' });
  }

  private startAgent(state: NodeState, apiAddr: string): void {
    const agent = new AgentSession({
      log: this.rootLog,
      nodeId: state.nodeId,
      advertiseAddr: state.advertiseAddr,
      apiAddr,
      description: this.description,
      tls: () => this.dir.readTls(),
      managers: () => this.orderedManagers(),
    });
    agent.on('message', (msg: SessionMessage) => this.onSessionMessage(msg));
    agent.on('removed', () => this.log.error({ nodeId: state.nodeId }, 'this node was removed from the swarm; run "swarmlet swarm leave" to reset it'));
    agent.start();
    this.agent = agent;
  }

  /** This node's own manager first, if it runs one; then the others as the managers last told us. */
  private orderedManagers() {
    const managers = this.state?.managers ?? [];
    const own = this.manager && this.state ? managers.filter((m) => m.nodeId === this.state!.nodeId) : [];
    return [...own, ...managers.filter((m) => !own.includes(m))];
  }

  /** Stops what startRole started. Tasks keep running: a restarted daemon adopts them again. */
  private async deactivate(): Promise<void> {
    const { agent, worker, server, manager, etcdClient, etcd, networks } = this;
    this.agent = this.worker = this.server = this.manager = this.etcdClient = this.etcd = this.networks = undefined;
    clearInterval(this.renewalTimer);
    await agent?.stop();
    await worker?.stop();
    await networks?.close();
    await manager?.stop().catch((err) => this.log.warn({ err: err.message }, 'manager did not stop cleanly'));
    if (server) await shutdownServer(server, 1000);
    etcdClient?.close();
    await etcd?.stop();
  }

  /** On leaving the swarm: this node's tasks stop and are forgotten, and its overlay sandboxes go. */
  private async removeAllTasks(state: NodeState): Promise<void> {
    for (const id of await this.runtime.list()) {
      await this.runtime.stop(id, 10000).catch((err) => this.log.warn({ taskId: id, err: err.message }, 'task did not stop'));
      await this.runtime.remove(id).catch((err) => this.log.warn({ taskId: id, err: err.message }, 'task not removed'));
    }
    await NodeNetworks.removeAll({ log: this.rootLog, localVtep: state.advertiseAddr, netnsPrefix: this.cfg.netnsPrefix });
  }

  // ---- what the dispatcher tells us ----------------------------------------------------------

  private onSessionMessage(msg: SessionMessage): void {
    this.lastMessage = msg;
    // Networks first: a task's networks must be up on this host before the worker starts it.
    const worker = this.worker;
    void (this.networks?.apply(msg) ?? Promise.resolve()).then(() => worker?.assign(msg.tasks, msg.credentials));
    const state = this.state;
    if (!state) return;
    if (msg.managers.length && JSON.stringify(msg.managers) !== JSON.stringify(state.managers)) {
      state.managers = msg.managers;
      this.dir.writeState(state);
    }
    this.serialize(() => this.reconcileRole()).catch((err) => {
      this.log.warn({ err: asSwarmletError(err).message }, 'role change failed; will retry');
      const retry = setTimeout(() => this.lastMessage === msg && this.onSessionMessage(msg), 2000);
      retry.unref();
    });
  }

  /** Makes this node's certificate, etcd membership and manager match the role the cluster wants for it. */
  private async reconcileRole(): Promise<void> {
    const state = this.state;
    const node = this.lastMessage?.node;
    if (!state || !node?.spec || this.controller.signal.aborted) return;
    const desired = roleOf(node.spec.desiredRole);
    const certRole = certificateInfo(this.dir.readTls().certPem).role;
    if (desired === state.role && desired === certRole) return;
    const log = this.log.child({ nodeId: state.nodeId, from: state.role, to: desired });
    log.info('changing role');
    if (desired === 'manager') {
      const tls = await this.renewCertificate(state, false);
      if (certificateInfo(tls.certPem).role !== 'manager') return;
      await this.deactivate();
      await this.becomeEtcdMember(state, tls);
      this.setState({ ...state, role: 'manager' });
      await this.startRole(this.state!);
    } else {
      if (state.role === 'manager') {
        await this.deactivate();
        this.dir.wipeEtcd();
        this.setState({ ...state, role: 'worker' });
        await this.startRole(this.state!);
      }
      const tls = await this.renewCertificate(this.state!, true);
      this.certificate?.set(tls);
    }
    log.info('role changed');
  }

  private setState(state: NodeState): void {
    this.dir.writeState(state);
    this.state = state;
  }

  /** Asks a manager (another one, when this node is leaving the managers) for a certificate for its current role. */
  private async renewCertificate(state: NodeState, excludeSelf: boolean): Promise<TlsMaterial> {
    const current = this.dir.readTls();
    const { keyPem, csrPem } = await createKeyAndCSR(state.nodeId);
    const issued = await this.withManager(state, async (addr) => {
      const ca = new CAClient(addr, managerClientCredentials(current.caCertPem, current), managerChannelOptions);
      try {
        return await callUnary(ca.renewNodeCertificate.bind(ca), { csrPem });
      } finally {
        ca.close();
      }
    }, excludeSelf);
    const tls = { caCertPem: issued.caCertPem, certPem: issued.certPem, keyPem };
    this.dir.writeTls(tls);
    this.keepSealKey(issued);
    return tls;
  }

  /** A manager keeps the seal key it is handed (an empty one changes nothing); a worker keeps none. */
  private keepSealKey(issued: IssueNodeCertificateResponse): void {
    if (issued.role !== NodeRole.NODE_ROLE_MANAGER) this.dir.writeSealKey(undefined);
    else if (issued.sealKey.length) this.dir.writeSealKey(Buffer.from(issued.sealKey));
  }

  /** Tries `fn` against each known manager in turn until one answers. */
  private async withManager<T>(state: NodeState, fn: (addr: string) => Promise<T>, excludeSelf = false): Promise<T> {
    const candidates = state.managers.filter((m) => !(excludeSelf && m.nodeId === state.nodeId));
    let last: unknown = unavailable('no manager is known to this node');
    for (const m of candidates) {
      try {
        return await fn(m.addr);
      } catch (err) {
        last = fromServiceError(err, `asking the manager at ${m.addr}`);
        if (!['Unavailable', 'Internal'].includes((last as { kind: string }).kind)) throw last;
      }
    }
    throw last;
  }
}

/** A socket file left by a daemon that died is removed; one a live daemon listens on is an error. */
async function prepareSocketPath(socketPath: string): Promise<void> {
  fs.mkdirSync(path.dirname(socketPath), { recursive: true, mode: 0o755 });
  if (!fs.existsSync(socketPath)) return;
  const live = await new Promise<boolean>((resolve) => {
    const s = net.connect(socketPath);
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
  if (live) throw failedPrecondition(`another daemon is already listening on ${socketPath}`);
  fs.rmSync(socketPath, { force: true });
}
