import * as fs from 'node:fs';
import { phaseTimer } from '../services/common/phase-timer';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { noop } from 'cockatiel';
import { Etcd3 } from 'etcd3';
import { Agent, AGENT_SERVICE, DesiredNode } from '../agent/agent';
import { ContainerNetworks, NO_PLUG_DRIVERS } from '../agent/containers/container-networks';
import { ContainerStore } from '../agent/containers/container-store';
import { ContainerPorts } from '../agent/containers/container-ports';
import { Containers } from '../agent/containers/containers';
import { planServiceTakenPorts } from '../agent/containers/port-plans';
import { BridgeDriver, bridgeNameOf } from '../agent/network/bridge-driver';
import { GATEWAY_BRIDGE_SUBNET } from '../services/common/subnet-overlap';
import { isExecImage } from '../services/common/image-ref';
import { LocalContainerNetworks } from '../agent/containers/local-container-networks';
import { CrunRuntime } from '../agent/runtime/crun-runtime';
import { ExecRuntime } from '../agent/runtime/exec-runtime';
import { Runtime } from '../agent/runtime/runtime';
import { RuntimeRouter } from '../agent/runtime/runtime-router';
import { ImageStore } from '../agent/images/image-store';
import { VolumeStore } from '../agent/volumes/volume-store';
import { TaskFiles } from '../agent/runtime/task-files';
import { clientUrl, EmbeddedEtcd, ETCD_CLIENT_HOSTNAME, peerUrl } from '../manager/embedded-etcd';
import { ETCD_CLIENT_GRPC_OPTIONS } from '../manager/store/etcd-errors';
import { Manager, MANAGER_SERVICES } from '../manager/manager';
import { formatHostPort, parseHostPort } from '../services/common/addr';
import { asSwarmletError, failedPrecondition } from '../services/common/errors';
import { Logger, componentLogger } from '../services/common/logger';
import { VERSION } from '../services/common/version';
import { DaemonConfig } from '../services/config/config';
import { addStandardServices, bindServer, NODE_SERVER_OPTIONS, shutdownServer } from '../services/api/server-extras';
import { LOCAL_API_MESSAGE_OPTIONS } from '../services/api/limits';
import { CertificateSource, managerServerCredentials, TlsMaterial } from '../services/api/tls';
import { ControlService, LocalNodeService } from '../services/gen/swarmlet/v1/control';
import { SessionMessage } from '../services/gen/swarmlet/v1/dispatcher';
import { NodeDescription } from '../services/gen/swarmlet/v1/types';
import { BRIDGE_PREFIX, NetworkController } from '../agent/network/network-controller';
import { hostInterfaceSubnets } from '../agent/host-interfaces';
import { controlOnManager, localNodeService } from './local-api';
import { EtcdStart, Membership, NodeRoles } from './membership';
import { planManagerOrder } from './membership-plans';
import { NodeState, NodeStateDir } from './node-state';
import { collectNodeMetrics } from './metrics';
import { LocalEvents } from './local-events';
import { MetricsServer } from '../services/metrics/metrics-server';
import { DashboardServer } from '../manager/dashboard/dashboard-server';

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
    }),
    grpcOptions: { ...ETCD_CLIENT_GRPC_OPTIONS, ...(tls?.serverName && { 'grpc.ssl_target_name_override': tls.serverName, 'grpc.default_authority': tls.serverName }) },
    dialTimeout: 3000,
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + 5000 }),
    faultHandling: { host: () => noop, global: noop },
  });
}

/**
 * The node daemon: one per host, and the composition root of what runs on it (swarmkit's
 * node/node.go). It serves the local API on a unix socket (local-api.ts) and runs what the node's
 * role needs: always the agent (session, networks, worker) and the TCP server; on managers also
 * the embedded etcd member and the manager. Membership (membership.ts) decides the role and
 * starts and stops these parts.
 */
export class Daemon implements NodeRoles {
  private readonly dir: NodeStateDir;
  // The local API takes larger messages than the manager's port (a backup travels in one).
  private readonly unixServer = new grpc.Server({ ...NODE_SERVER_OPTIONS, ...LOCAL_API_MESSAGE_OPTIONS });
  private readonly controller = new AbortController();
  readonly membership: Membership;
  private etcd?: EmbeddedEtcd;
  private etcdClient?: Etcd3;
  manager?: Manager;
  private agent?: Agent;
  private server?: grpc.Server;
  private certificate?: CertificateSource;
  readonly runtime: Runtime;
  private readonly log: Logger;
  /** The latest session message of an agent that has since stopped (a role change starts a new one). */
  private previousMessage?: SessionMessage;
  private activating?: Promise<void>;
  /** This node's volumes, under `<dataDir>/volumes`. */
  readonly volumes: VolumeStore;
  /** This node's images (oci runtime), under `<dataDir>/images`. */
  readonly images: ImageStore;
  /** This node's containers (docker's `container` commands), under `<dataDir>/local-containers`, on a runtime of their own. */
  readonly containers: Containers;
  readonly containerRuntime: Runtime;
  /** The node-local networks of containers on a node in no swarm. */
  readonly localNetworks: LocalContainerNetworks;
  private readonly containerPorts: ContainerPorts;
  /** Reads (only) where containers on overlays alone are on the swarm's gateway bridge: their published ports go there. */
  private gatewayLookup?: BridgeDriver;
  /** This node's container events, for `events`. */
  readonly localEvents: LocalEvents;
  /** The Prometheus endpoint, when `metricsAddr` is set. */
  private readonly metricsServer?: MetricsServer;
  /** The web dashboard, while this node is a manager and `dashboardAddr` is set. */
  private dashboard?: DashboardServer;

  constructor(private readonly cfg: DaemonConfig, readonly rootLog: Logger) {
    this.log = componentLogger(rootLog, 'daemon');
    this.dir = new NodeStateDir(cfg.dataDir);
    if (cfg.metricsAddr) this.metricsServer = new MetricsServer({ log: rootLog, collect: () => collectNodeMetrics(this) });
    this.membership = new Membership(this.dir, this, componentLogger(rootLog, 'membership'), this.controller.signal);
    this.volumes = new VolumeStore({ root: path.join(cfg.dataDir, 'volumes'), log: rootLog });
    this.images = new ImageStore({ root: path.join(cfg.dataDir, 'images'), log: rootLog, insecureRegistries: cfg.insecureRegistries });
    // exec: images on the exec runtime, OCI references on crun; each with its own state dir and cgroup parent.
    this.runtime = new RuntimeRouter({
      exec: new ExecRuntime({ stateDir: this.dir.tasksDir, cgroupParent: cfg.cgroupParent, log: rootLog }),
      oci: new CrunRuntime({ stateDir: path.join(cfg.dataDir, 'containers'), cgroupParent: `${cfg.cgroupParent}-oci`, log: rootLog, images: this.images, volumes: this.volumes }),
    });
    // Containers run through the same runtimes, with state dirs and cgroup parents apart: beside the tasks' parents,
    // not inside them, since a runtime lists every cgroup under its parent as a task and the worker removes strays.
    const containersDir = path.join(cfg.dataDir, 'local-containers');
    this.containerRuntime = new RuntimeRouter({
      exec: new ExecRuntime({ stateDir: path.join(containersDir, 'exec'), cgroupParent: `${cfg.cgroupParent}-containers`, log: rootLog }),
      oci: new CrunRuntime({ stateDir: path.join(containersDir, 'oci'), cgroupParent: `${cfg.cgroupParent}-oci-containers`, log: rootLog, images: this.images, volumes: this.volumes }),
    });
    this.localNetworks = new LocalContainerNetworks({
      log: rootLog,
      file: path.join(cfg.dataDir, 'local-networks.json'),
      dnsUpstreams: cfg.dnsUpstreams,
      hostSubnets: () => hostInterfaceSubnets(BRIDGE_PREFIX).map((i) => ({ node: cfg.hostname, iface: i.name, subnet: i.subnet })),
    });
    this.containers = new Containers({
      store: new ContainerStore(path.join(containersDir, 'records')),
      runtime: this.containerRuntime,
      networks: () => this.containerNetworks(),
      ports: (this.containerPorts = new ContainerPorts({
        log: rootLog,
        servicePorts: () => planServiceTakenPorts(this.lastMessage),
        // In a swarm, cluster bridges are the agent's (BRIDGE_PREFIX); else the node-local ones.
        bridgeOf: (networkId) => (this.membership.state ? bridgeNameOf(BRIDGE_PREFIX, networkId) : this.localNetworks.driver.bridgeName(networkId)),
        gatewayOf: async (containerId) => {
          if (!this.membership.state) return undefined;
          this.gatewayLookup ??= new BridgeDriver({ log: rootLog, namePrefix: BRIDGE_PREFIX, gatewaySubnet: GATEWAY_BRIDGE_SUBNET });
          const address = await this.gatewayLookup.gatewayAddressOf(containerId);
          return address ? { address, device: this.gatewayLookup.gatewayBridgeName() } : undefined;
        },
        exposedPorts: async (image) => (isExecImage(image) ? [] : (await this.images.ensure(image)).config.exposedPorts ?? []),
        onChange: () => this.agent?.containerPortsChanged(),
      })),
      log: rootLog,
    });
    this.localEvents = new LocalEvents(this.containers.events);
  }

  /**
   * The container endpoints for the node's membership: node-local networks in no swarm; on a
   * swarm node, `host` and `none` here and every other network through the cluster's attachments
   * (the managers allocate the address, the agent's network controller plugs it in).
   */
  private containerNetworks(): ContainerNetworks {
    if (!this.membership.state) return this.localNetworks;
    const local = this.localNetworks;
    const cluster = () => {
      if (!this.agent) throw failedPrecondition('this node is not connected to the swarm yet; try again in a moment');
      return this.agent.containerNetworks;
    };
    return {
      attach: async (req) => (NO_PLUG_DRIVERS.has(req.network) ? local.attach(req) : cluster().attach(req)),
      detach: async (id, network) => (NO_PLUG_DRIVERS.has(network) ? local.detach(id, network) : cluster().detach(id, network)),
    };
  }

  get description(): NodeDescription {
    return {
      hostname: this.cfg.hostname,
      os: process.platform,
      arch: process.arch,
      engineVersion: VERSION,
      resources: { nanoCpus: os.cpus().length * 1e9, memoryBytes: os.totalmem(), pids: 0 },
      interfaces: hostInterfaceSubnets(BRIDGE_PREFIX),
      containerPorts: this.containerPorts?.hostPorts() ?? [],
    };
  }

  /** Containers' endpoints on cluster networks: the agent's, while the node is in a swarm. */
  get clusterNetworks(): ContainerNetworks | undefined {
    return this.agent?.containerNetworks;
  }

  get storeClient(): Etcd3 | undefined {
    return this.etcdClient;
  }

  get agentRunning(): boolean {
    return Boolean(this.agent);
  }

  /** The latest session message: what this node knows of its networks. */
  get lastMessage(): SessionMessage | undefined {
    return this.agent?.lastMessage ?? this.previousMessage;
  }

  async start(): Promise<void> {
    this.dir.ensure();
    const state = this.membership.load();
    // Containers are adopted before the API answers; on a node in no swarm, their bridges are made again.
    await this.containers.open(state ? undefined : (held) => this.localNetworks.restore(held));
    this.unixServer.addService(LocalNodeService, localNodeService(this));
    this.unixServer.addService(ControlService, controlOnManager(this));
    addStandardServices(this.unixServer, ['swarmlet.v1.LocalNode', 'swarmlet.v1.Control']);
    const socketPath = this.cfg.host.slice('unix://'.length);
    await prepareSocketPath(socketPath);
    await bindServer(this.unixServer, this.cfg.host, grpc.ServerCredentials.createInsecure());
    fs.chmodSync(socketPath, 0o660);
    this.log.info({ host: this.cfg.host, dataDir: this.cfg.dataDir, nodeId: state?.nodeId, role: state?.role }, 'daemon listening');
    await this.serveMetrics(state?.advertiseAddr);
    if (this.cfg.dashboardAddr && !state) this.log.info('the dashboard will be served once this node is a swarm manager (swarmlet init, or a join with a manager token)');
    if (state) this.activating = this.membership.activate(state);
  }

  /** Serves the metrics at the configured address; with no host there, at the node's advertise address (loopback in no swarm). */
  private async serveMetrics(advertiseAddr: string | undefined): Promise<void> {
    const at = this.cfg.metricsAddr;
    if (!this.metricsServer || !at) return;
    await this.metricsServer.listen(at.host ?? advertiseAddr ?? '127.0.0.1', at.port);
  }

  async stop(): Promise<void> {
    this.controller.abort();
    this.containers.close();
    await this.metricsServer?.close();
    await this.activating;
    await this.membership.stop();
    await shutdownServer(this.unixServer, 1000);
    // The containers keep running; their resolver sockets and bridges are taken back at the next start.
    await this.gatewayLookup?.close().catch(() => undefined);
    await this.localNetworks.close().catch((err) => this.log.warn({ err: asSwarmletError(err).message }, 'container networks did not close cleanly'));
    this.log.info('daemon stopped');
  }

  /**
   * Starts what the node's role needs: on every node the agent's worker, the TCP server (the Agent
   * service) and the agent's session; on managers also the etcd member and the manager, whose
   * services join the same server.
   */
  async startRole(state: NodeState): Promise<void> {
    // Where the role's start goes (most of a join's time on the joining node), in its log line.
    const { phasesMs, phase } = phaseTimer();
    const tls = this.dir.readTls();
    const apiAddr = formatHostPort(state.advertiseAddr, parseHostPort(state.listenAddr).port);
    this.certificate = new CertificateSource(tls);
    // The node's role starts whether or not the metrics can move to its advertise address.
    await this.serveMetrics(state.advertiseAddr).catch((err) => this.log.warn({ err: asSwarmletError(err).message }, 'metrics not served'));
    phase('metrics');
    const dashboardAt = this.cfg.dashboardAddr && { host: this.cfg.dashboardAddr.host ?? state.advertiseAddr, port: this.cfg.dashboardAddr.port };
    if (state.role === 'manager') {
      if (!this.etcdClient) await this.startEtcd(state, { initialCluster: `${state.nodeId}=${peerUrl(state.advertiseAddr)}`, state: 'existing' });
      phase('etcd');
      this.manager = new Manager({
        nodeId: state.nodeId,
        etcd: this.etcdClient!,
        tls: () => this.dir.readTls(),
        apiAddr,
        embeddedEtcd: state.etcd.embedded,
        log: this.rootLog,
        sealKey: () => this.dir.readSealKey(),
        knownEtcdPeers: () => (this.membership.state?.managers ?? []).map((m) => peerUrl(parseHostPort(m.addr).host)),
        ...(dashboardAt && { dashboardUrl: `https://${formatHostPort(dashboardAt.host, dashboardAt.port)}/` }),
      });
    }
    const agent = new Agent({
      log: this.rootLog,
      nodeId: state.nodeId,
      advertiseAddr: state.advertiseAddr,
      apiAddr,
      description: this.description,
      tls: () => this.dir.readTls(),
      managers: () => planManagerOrder(this.membership.state?.managers ?? [], this.manager ? state.nodeId : undefined),
      runtime: this.runtime,
      netnsPrefix: this.cfg.netnsPrefix,
      dnsUpstreams: this.cfg.dnsUpstreams,
      doctorContainers: () => this.containerPorts.doctor(),
      taskFiles: new TaskFiles(path.join(this.cfg.dataDir, 'task-files'), this.rootLog),
      containerPorts: () => this.containerPorts.hostPorts(),
    });
    agent.on('desired', (desired: DesiredNode) => this.membership.onDesired(desired));
    agent.on('removed', () => this.log.error({ nodeId: state.nodeId }, 'this node was removed from the swarm; run "swarmlet swarm leave" to reset it'));
    this.agent = agent;
    // Running containers on cluster networks are known to the agent before its session opens: the
    // session's start tells the managers which containers' attachments this node still has.
    for (const c of this.containers.list(false)) {
      if (c.state?.pid && c.endpoints.some((e) => !NO_PLUG_DRIVERS.has(e.driver))) agent.containerNetns.set(c.id, `/proc/${c.state.pid}/ns/net`);
    }
    phase('agent');
    await agent.start();
    phase('worker');
    // Image and volume uses recorded for tasks the runtime no longer has (their state went while the daemon was down) are dropped.
    try {
      // Containers' uses count too: they run on their own runtime.
      const ids = [...(await this.runtime.list()), ...(await this.containerRuntime.list())];
      this.images.retainUses(ids);
      await this.volumes.releaseAllExcept(ids);
    } catch (err) {
      this.log.warn({ err: asSwarmletError(err).message }, 'could not check the image and volume uses of tasks');
    }
    phase('uses');
    const server = new grpc.Server(NODE_SERVER_OPTIONS);
    agent.registerServices(server, tls.caCertPem);
    this.manager?.registerServices(server);
    addStandardServices(server, [AGENT_SERVICE, ...(this.manager ? MANAGER_SERVICES : [])]);
    this.server = server;
    await bindServer(server, state.listenAddr, managerServerCredentials(this.certificate));
    phase('server');
    await this.manager?.start();
    phase('manager');
    agent.connect();
    if (dashboardAt) {
      await this.serveDashboard(dashboardAt);
      phase('dashboard');
    }
    this.log.info({ role: state.role, phasesMs }, 'node role started');
  }

  /** Serves the web dashboard on a manager; a worker says in one line that it does not (the role starts either way). */
  private async serveDashboard(at: { host: string; port: number }): Promise<void> {
    const manager = this.manager;
    if (!manager) {
      this.log.warn({ addr: formatHostPort(at.host, at.port) }, 'the dashboard is served by managers only: this node is a worker; open it on a manager ("swarmlet dashboard" there prints its address)');
      return;
    }
    const dashboard = new DashboardServer({ log: this.rootLog, feed: manager.dashboardFeed(this.rootLog), tokens: manager.dashboardTokens, certificate: this.certificate!, checkPeer: (peer) => manager.checkOperator(peer) });
    try {
      await dashboard.listen(at.host, at.port);
      this.dashboard = dashboard;
    } catch (err) {
      this.log.warn({ err: asSwarmletError(err).message }, 'dashboard not served');
    }
  }

  /** Stops what startRole started. Tasks keep running: a restarted daemon adopts them again. */
  async stopRole(): Promise<void> {
    const { agent, server, manager, etcdClient, etcd, dashboard } = this;
    this.agent = this.server = this.manager = this.etcdClient = this.etcd = this.dashboard = undefined;
    await dashboard?.close().catch((err) => this.log.warn({ err: asSwarmletError(err).message }, 'dashboard did not close cleanly'));
    this.previousMessage = agent?.lastMessage ?? this.previousMessage;
    await agent?.stop();
    await manager?.stop().catch((err) => this.log.warn({ err: asSwarmletError(err).message }, 'manager did not stop cleanly'));
    if (server) await shutdownServer(server, 1000);
    etcdClient?.close();
    await etcd?.stop();
  }

  async startEtcd(state: NodeState, opts: EtcdStart): Promise<Etcd3> {
    if (state.etcd.embedded) {
      this.etcd = new EmbeddedEtcd(
        {
          name: state.nodeId,
          dataDir: this.dir.etcdDir,
          advertiseAddr: state.advertiseAddr,
          tls: this.dir.certFiles,
          initialCluster: opts.initialCluster,
          initialClusterState: opts.state,
          forceNewCluster: opts.forceNewCluster,
          clusterToken: state.clusterId,
          logFile: this.dir.etcdLog,
          binary: this.cfg.etcdBinary,
        },
        componentLogger(this.rootLog, 'etcd', { nodeId: state.nodeId }),
      );
      this.etcd.on('removed', () => this.log.info({ nodeId: state.nodeId }, "this node's etcd member was removed; its manager stops when the demotion arrives"));
      await this.etcd.start();
    }
    // The embedded member demands this manager's certificate of its clients.
    this.etcdClient = state.etcd.embedded ? etcdClient([clientUrl()], { ...this.dir.readTls(), serverName: ETCD_CLIENT_HOSTNAME }) : etcdClient(state.etcd.endpoints);
    return this.etcdClient;
  }

  presentCertificate(tls: TlsMaterial): void {
    this.certificate?.set(tls);
  }

  async announceLeave(): Promise<void> {
    await this.agent?.leave();
  }

  async removeAllTasks(state: NodeState): Promise<void> {
    for (const id of await this.runtime.list()) {
      await this.runtime.stop(id, 10000).catch((err) => this.log.warn({ taskId: id, err: asSwarmletError(err).message }, 'task did not stop'));
      await this.runtime.remove(id).catch((err) => this.log.warn({ taskId: id, err: asSwarmletError(err).message }, 'task not removed'));
    }
    await NetworkController.removeAll({ log: this.rootLog, localVtep: state.advertiseAddr, netnsPrefix: this.cfg.netnsPrefix });
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
