import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { asSwarmletError, unavailable } from '../services/common/errors';
import { AgentService, CheckOverlaysRequest, SessionMessage } from '../services/gen/swarmlet/v1/dispatcher';
import { ManagerPeer, NodeRole, TaskState, TaskStatus } from '../services/gen/swarmlet/v1/types';
import { Logger, componentLogger } from '../services/common/logger';
import { NetworkController } from './network/network-controller';
import { agentService } from './agent-service';
import { Runtime } from './runtime/runtime';
import { AgentSession, AgentSessionOptions } from './session';
import { TaskFilesPort, Worker } from './worker';
import { ContainerNetnsRegistry } from './container-netns';
import { ClusterContainerNetworks } from './containers/cluster-networks';
import { ContainerNetworks } from './containers/container-networks';

/** The gRPC service name the Agent serves on the node's TCP server. */
export const AGENT_SERVICE = 'swarmlet.v1.Agent';

/** The session's options (AgentSessionOptions), and what the agent's networks and worker need. */
export interface AgentOptions extends AgentSessionOptions {
  runtime: Runtime;
  /** Overlay sandbox namespaces are named <netnsPrefix>-<vni>. */
  netnsPrefix: string;
  /** The embedded DNS's upstream resolvers; []: the host's. */
  dnsUpstreams?: readonly string[];
  /** The node's own checks for `network doctor` beside the networks': its containers' published ports. */
  doctorContainers?: () => Promise<string[]>;
  /** where tasks' secrets and configs are written (a tmpfs). */
  taskFiles?: TaskFilesPort;
}

/** What the cluster wants of this node, as the latest session message says. */
export interface DesiredNode {
  /** The role the cluster wants this node in; undefined when the message does not say. */
  role?: 'manager' | 'worker';
  /** The swarm's managers, as the dispatcher knows them ([] when it does not say). */
  managers: ManagerPeer[];
}

/**
 * The agent: one per node, as swarmkit's agent/agent.go. It owns the dispatcher session, this
 * node's networks and the task worker, and routes each session message through them: networks
 * first (a task's networks are up on this host before the worker starts it), then the worker.
 * It emits what the node itself must act on: 'desired' (DesiredNode) after each message, and
 * 'removed' when this node was removed from the swarm.
 */
export class Agent extends EventEmitter {
  private readonly networks: NetworkController;
  private readonly worker: Worker;
  private session?: AgentSession;
  /** This node's containers' network namespaces: their cluster networks are plugged in there. */
  readonly containerNetns = new ContainerNetnsRegistry();
  /** Containers' endpoints on cluster networks (ContainerNetworks for a node in a swarm). */
  readonly containerNetworks: ContainerNetworks;
  /** Attachments reported running, until a message says they are (or they are gone). */
  private readonly reportedRunning = new Set<string>();
  private readonly log: Logger;
  private last?: SessionMessage;
  private portsReport: Promise<void> = Promise.resolve();

  constructor(private readonly opts: AgentOptions) {
    super();
    this.log = componentLogger(opts.log, 'agent');
    this.networks = new NetworkController({
      log: opts.log,
      localVtep: opts.advertiseAddr,
      netnsPrefix: opts.netnsPrefix,
      dnsUpstreams: opts.dnsUpstreams,
      runningNetns: () => this.worker.runningNetns(),
      containerNetns: () => this.containerNetns.entries(),
      onContainersChanged: () => this.reportAttachments(),
    });
    this.containerNetns.on('change', () => this.networks.poke());
    const noSession = () => Promise.reject(unavailable('no dispatcher session: the managers cannot be reached'));
    this.containerNetworks = new ClusterContainerNetworks({
      log: opts.log,
      registry: this.containerNetns,
      ports: {
        attachNetwork: (req) => (this.session ? this.session.attachNetwork(req) : noSession()),
        detachNetwork: (id) => (this.session ? this.session.detachNetwork(id) : noSession()),
        containerAttachments: () => this.networks.containerAttachments(),
        waitPlugged: (containerId, attachmentId, timeoutMs) => this.networks.waitPlugged(containerId, attachmentId, timeoutMs),
        unplug: (id) => this.networks.unplug(id),
      },
    });
    this.worker = new Worker({
      runtime: opts.runtime,
      log: opts.log,
      report: (updates) => (this.session ? this.session.reportStatus(updates) : Promise.reject(unavailable('no agent session'))),
      networks: this.networks,
      files: opts.taskFiles,
    });
  }

  /** The latest session message, if one came: what this node knows of its networks. */
  get lastMessage(): SessionMessage | undefined {
    return this.last;
  }

  /** The containers' published ports changed: the managers hear of them (one report at a time; without a session, the next one's description carries them). */
  containerPortsChanged(): void {
    this.portsReport = this.portsReport
      .then(() => this.session?.reportContainerPorts())
      .catch((err) => this.log.warn({ err: asSwarmletError(err).message }, 'container ports not reported; the next session carries them'));
  }

  /** Re-adopts the tasks the runtime has; the session starts with connect(). */
  async start(): Promise<void> {
    await this.worker.start();
  }

  /** Adds the Agent service (task logs, network doctor) to the node's TCP server. */
  registerServices(server: grpc.Server, caCertPem: string): void {
    const networks = {
      doctor: async (req: CheckOverlaysRequest) => [...(await this.networks.doctor(req)), ...(req.checkServices && this.opts.doctorContainers ? await this.opts.doctorContainers() : [])],
    };
    server.addService(AgentService, agentService(this.opts.runtime, networks, caCertPem, this.opts.log));
  }

  /** Opens the dispatcher session (once the node's server is up); the network controller checks the kernel against its messages. */
  connect(): void {
    const { log, nodeId, advertiseAddr, apiAddr, description, tls, managers } = this.opts;
    const session = new AgentSession({ log, nodeId, advertiseAddr, apiAddr, description, tls, managers, containerIds: () => this.containerNetns.ids(), containerPorts: this.opts.containerPorts });
    session.on('message', (msg: SessionMessage) => this.route(msg));
    session.on('removed', () => this.emit('removed'));
    session.start();
    this.session = session;
  }

  /** This node leaves the swarm: the manager is told (its node shows down at once), and the session ends. */
  async leave(): Promise<void> {
    await this.session?.leave();
  }

  /** Stops the session, the worker and the networks' loops. Tasks keep running: a restarted agent adopts them again. */
  async stop(): Promise<void> {
    const session = this.session;
    this.session = undefined;
    await session?.stop();
    await this.worker.stop();
    await this.networks.close();
  }

  /**
   * Attachments plugged into their containers are reported running (swarmkit's attachment tasks
   * are); a report that fails is sent again after the next pass, until a message says running.
   */
  private reportAttachments(): void {
    const session = this.session;
    if (!session || !this.last) return;
    const plugged = this.networks.pluggedAttachments();
    const at = new Date().toISOString();
    const updates = this.last.tasks
      .filter((t) => t.spec?.attachment && plugged.has(t.id) && (t.status?.state ?? 0) < TaskState.TASK_STATE_RUNNING && !this.reportedRunning.has(t.id))
      .map((t) => ({ taskId: t.id, status: TaskStatus.fromPartial({ state: TaskState.TASK_STATE_RUNNING, message: 'attached to its container', timestamp: at }) }));
    if (updates.length === 0) return;
    updates.forEach((u) => this.reportedRunning.add(u.taskId));
    session.reportStatus(updates).catch((err) => {
      updates.forEach((u) => this.reportedRunning.delete(u.taskId));
      this.log.debug({ err: (err as Error).message }, 'attachment states not reported; the next pass tries again');
    });
  }

  private route(msg: SessionMessage): void {
    this.last = msg;
    // Containers' network attachments are the network controller's alone: the worker never runs them.
    const tasks = msg.tasks.filter((t) => !t.spec?.attachment);
    for (const id of [...this.reportedRunning]) if (!msg.tasks.some((t) => t.id === id && (t.status?.state ?? 0) < TaskState.TASK_STATE_RUNNING)) this.reportedRunning.delete(id);
    void this.networks.apply(msg).then(() => this.worker.assign(tasks, msg.credentials, msg.fileValues));
    const desired: DesiredNode = { role: msg.node?.spec ? roleName(msg.node.spec.desiredRole) : undefined, managers: msg.managers };
    this.emit('desired', desired);
  }
}

/** A role as the node's state and certificates name it. */
export const roleName = (r: NodeRole): 'manager' | 'worker' => (r === NodeRole.NODE_ROLE_MANAGER ? 'manager' : 'worker');
