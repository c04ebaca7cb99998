import * as grpc from '@grpc/grpc-js';
import { ImageStore } from '../agent/images/image-store';
import { VolumeStore } from '../agent/volumes/volume-store';
import { readClusterView } from '../manager/cluster-view';
import { Manager } from '../manager/manager';
import { asSwarmletError, failedPrecondition } from '../services/common/errors';
import { VERSION } from '../services/common/version';
import { unary } from '../services/api/handlers';
import { failCall } from '../services/api/tls';
import {
  AttachContainerNetworkRequest,
  BackupRequest,
  ContainerEndpointInfo,
  ControlServer,
  ControlService,
  CreateNetworkRequest,
  DetachContainerNetworkRequest,
  GetNetworkRequest,
  InfoResponse,
  InitRequest,
  JoinRequest,
  LeaveRequest,
  LocalNodeServer,
  NetworkDetail,
  RemoveNetworkRequest,
  RestoreRequest,
} from '../services/gen/swarmlet/v1/control';
import type { ContainerNetworks } from '../agent/containers/container-networks';
import { SessionMessage } from '../services/gen/swarmlet/v1/dispatcher';
import { NodeRole } from '../services/gen/swarmlet/v1/types';
import { Containers } from '../agent/containers/containers';
import { LocalContainerNetworks } from '../agent/containers/local-container-networks';
import { resolveNetwork } from '../manager/network-plans';
import { containerService } from './container-service';
import { imageService } from './image-service';
import { fromLocalNetwork, planLocalNetworkDetail, planLocalNetworks } from './local-networks';
import { Membership, NOT_IN_SWARM } from './membership';
import { volumeService } from './volume-service';
import { EventSource, eventsHandler } from '../manager/events/event-stream';
import type { Runtime } from '../agent/runtime/runtime';
import { Logger, componentLogger } from '../services/common/logger';
import { terminalService } from './terminal-service';
import { TerminalTarget, taskContainerName } from './terminal-target';

const NOT_A_MANAGER =
  "this node is not a swarm manager: worker nodes can't be used to view or modify cluster state; run this on a manager node or promote this node to a manager";

/** What the local API reads of the node. */
export interface LocalApiNode {
  readonly membership: Membership;
  /** The manager running on this node, if any. */
  readonly manager?: Manager;
  /** The latest session message: what this node knows of its networks. */
  readonly lastMessage?: SessionMessage;
  readonly images: ImageStore;
  readonly volumes: VolumeStore;
  /** The runtime this node's tasks run on (exec and attach). */
  readonly runtime: Runtime;
  readonly rootLog: Logger;
  /** Containers' endpoints on cluster networks, while the node is in a swarm. */
  readonly clusterNetworks?: ContainerNetworks;
  /** This node's containers (docker's `container` commands). */
  readonly containers: Containers;
  /** The runtime the containers run on (apart from the tasks'). */
  readonly containerRuntime: Runtime;
  /** Containers' networks on a node in no swarm, user bridges included. */
  readonly localNetworks: LocalContainerNetworks;
  /** This node's container events. */
  readonly localEvents: EventSource;
}

/** This node's tasks as exec and attach targets: those of its session (with their names), and any other the runtime still has. */
export function taskTargets(node: Pick<LocalApiNode, 'runtime' | 'lastMessage'>) {
  return async (): Promise<TerminalTarget[]> => {
    const known = (node.lastMessage?.tasks ?? []).map((t) => ({ id: t.id, names: [taskContainerName(t)] }));
    const ids = new Set(known.map((t) => t.id));
    const others = (await node.runtime.list()).filter((id) => !ids.has(id)).map((id) => ({ id, names: [] }));
    return [...known, ...others];
  };
}

/** This node's containers as exec and attach targets, by id and name. */
export function containerTargets(node: Pick<LocalApiNode, 'containers'>) {
  return async (): Promise<TerminalTarget[]> => node.containers.list(true).map((c) => ({ id: c.id, names: [c.name] }));
}

/** The LocalNode service on the unix socket: membership (init, join, leave), info, and this node's networks, images, volumes and containers. */
export function localNodeService(node: LocalApiNode): LocalNodeServer {
  const { membership } = node;
  const view = () => (membership.state ? node.lastMessage : undefined);
  return {
    init: unary((req: InitRequest) => membership.serialize(() => membership.init(req))),
    join: unary((req: JoinRequest) => membership.serialize(() => membership.join(req))),
    leave: unary((req: LeaveRequest) => membership.serialize(() => membership.leave(req.force))),
    info: unary(() => info(node)),
    backup: unary((req: BackupRequest) => membership.serialize(() => membership.backup(req.passphrase))),
    restore: unary((req: RestoreRequest) => membership.serialize(() => membership.restore(req))),
    listNetworks: unary(async () => ({ networks: membership.state ? planLocalNetworks(view()) : [...planLocalNetworks(undefined), ...userNetworks(node)] })),
    getNetwork: unary(async (req: GetNetworkRequest) => (membership.state ? planLocalNetworkDetail(view(), req.network) : localNetworkDetail(node, req.network))),
    ...imageService(node.images, node.containers),
    ...volumeService(node.volumes),
    attachContainerNetwork: unary((req: AttachContainerNetworkRequest) => attachContainerNetwork(node, req)),
    detachContainerNetwork: unary(async (req: DetachContainerNetworkRequest) => {
      await clusterNetworksOf(node).detach(req.containerId, req.network);
      return {};
    }),
    ...containerService(node.containers),
    ...terminalService({
      runtimeFor: (id) => (node.containers.has(id) ? node.containerRuntime : node.runtime),
      targets: [taskTargets(node), containerTargets(node)],
      exitCodeOf: (id) => node.containers.removedExitCode(id),
      log: componentLogger(node.rootLog, 'terminal'),
    }),
  };
}

const userNetworks = (node: LocalApiNode) => node.localNetworks.userNetworks().map(fromLocalNetwork);

/** `network inspect` on a node in no swarm: the network and the containers on it. */
function localNetworkDetail(node: LocalApiNode, ref: string): NetworkDetail {
  const network = resolveNetwork([...planLocalNetworks(undefined), ...userNetworks(node)], ref);
  const local = node.localNetworks.resolve(network.id);
  const endpoints = node.containers
    .list(true)
    .flatMap((c) => c.endpoints.filter((e) => e.networkId === local.id && e.ipv4Cidr).map((e) => ({ taskId: c.id, taskName: c.name, nodeId: '', address: e.ipv4Cidr, mac: e.mac, containerId: c.id })));
  return { network, endpoints };
}

/** On a node in no swarm, `network create` and `network rm` make and remove node-local bridges (docker's local scope). */
function localNetworkControl(node: LocalApiNode): Partial<ControlServer> {
  return {
    createNetwork: unary(async (req: CreateNetworkRequest) => fromLocalNetwork(await node.localNetworks.create(req.spec!))),
    removeNetwork: unary(async (req: RemoveNetworkRequest) => {
      await node.localNetworks.remove(req.network);
      return {};
    }),
  };
}

/** The Control service on the unix socket: the manager's own handlers, or a clear refusal on workers. */
export function controlOnManager(node: LocalApiNode): ControlServer {
  type Handler = (call: any, callback?: grpc.sendUnaryData<unknown>) => void;
  const handlers: Record<string, Handler> = {};
  const local = localNetworkControl(node) as unknown as Record<string, Handler>;
  // Events on any node: its containers', and on managers the cluster's too (docker's `events` on a worker shows its own).
  local.events = eventsHandler(() => [node.localEvents, ...(node.manager ? [node.manager.events] : [])]) as Handler;
  for (const name of Object.keys(ControlService)) {
    handlers[name] = (call, callback) => {
      const control = node.manager?.control as unknown as Record<string, Handler> | undefined;
      if (name === 'events' || (!control && !node.membership.state && local[name])) return local[name](call, callback);
      if (!control) return failCall(call, callback, failedPrecondition(node.membership.state ? NOT_A_MANAGER : NOT_IN_SWARM));
      control[name](call, callback);
    };
  }
  return handlers as unknown as ControlServer;
}

function clusterNetworksOf(node: LocalApiNode): ContainerNetworks {
  if (!node.membership.state || !node.clusterNetworks) throw failedPrecondition(NOT_IN_SWARM);
  return node.clusterNetworks;
}

async function attachContainerNetwork(node: LocalApiNode, req: AttachContainerNetworkRequest): Promise<ContainerEndpointInfo> {
  const e = await clusterNetworksOf(node).attach({ containerId: req.containerId, containerName: req.containerName, network: req.network, aliases: req.aliases, ipv4: req.ipv4Address || undefined, netns: req.netns });
  return { networkId: e.networkId, networkName: e.networkName, driver: e.driver, ipv4Cidr: e.ipv4Cidr, gateway: e.gateway ?? '', mac: e.mac ?? '', aliases: e.aliases, interfaceName: e.interfaceName ?? '' };
}

async function info(node: LocalApiNode): Promise<InfoResponse> {
  const s = node.membership.state;
  const manager = node.manager;
  const base: InfoResponse = {
    localState: s ? 'active' : 'inactive',
    nodeId: s?.nodeId ?? '',
    clusterId: s?.clusterId ?? '',
    role: s?.role === 'manager' ? NodeRole.NODE_ROLE_MANAGER : NodeRole.NODE_ROLE_WORKER,
    nodeAddr: s?.advertiseAddr ?? '',
    isManager: Boolean(manager),
    leaderId: '',
    managers: s?.managers ?? [],
    nodeCount: 0,
    managerCount: 0,
    engineVersion: VERSION,
    clusterSpec: undefined,
    error: '',
  };
  if (!manager) return { ...base, error: node.membership.startFailure ?? '' };
  const quorum = await manager.quorum?.check();
  if (quorum?.lost) return { ...base, error: quorum.message };
  try {
    const view = await readClusterView(manager.store, () => manager.leaderId());
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
