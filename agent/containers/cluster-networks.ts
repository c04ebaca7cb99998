/**
 * ContainerNetworks for a node in a swarm: a container joins a cluster network (the
 * built-in `bridge`, a user bridge, an attachable overlay) swarmkit's way. The managers make a
 * network-attachment task for it on this node and give it its address (Dispatcher.AttachNetwork);
 * the task comes down in the session's assignments, and the network controller plugs it into the
 * container's namespace with the drivers that plug tasks in. Detaching unplugs it at once and then
 * asks the managers to drop the task, which takes the container's DNS records and overlay peers
 * away on every node.
 */
import { existsSync } from 'node:fs';
import { fromServiceError } from '../../services/api/grpc-errors';
import { asSwarmletError, invalidArgument } from '../../services/common/errors';
import { Logger, componentLogger } from '../../services/common/logger';
import { AttachNetworkRequest, AttachNetworkResponse } from '../../services/gen/swarmlet/v1/dispatcher';
import { Task } from '../../services/gen/swarmlet/v1/types';
import { ContainerNetnsRegistry } from '../container-netns';
import { ContainerEndpoint, ContainerEndpointRequest, ContainerNetworks } from './container-networks';

/** What the cluster side needs of the agent: its dispatcher session and its network controller. */
export interface ClusterAttachmentPorts {
  attachNetwork(req: AttachNetworkRequest): Promise<AttachNetworkResponse>;
  detachNetwork(attachmentId: string): Promise<void>;
  /** The container attachments of the last session message, by container id. */
  containerAttachments(): Map<string, Task[]>;
  waitPlugged(containerId: string, attachmentId: string, timeoutMs: number): Promise<void>;
  unplug(attachmentId: string): Promise<void>;
}

export interface ClusterContainerNetworksOptions {
  log: Logger;
  ports: ClusterAttachmentPorts;
  registry: ContainerNetnsRegistry;
  /** How long attach waits for the interface once the managers answered (default 30 s). */
  plugTimeoutMs?: number;
}

/** A gRPC failure as the SwarmletError it stands for; a SwarmletError as it is. */
const asError = (err: unknown, what: string) => ((err as { code?: unknown }).code !== undefined ? fromServiceError(err, what) : asSwarmletError(err));

export class ClusterContainerNetworks implements ContainerNetworks {
  private readonly log: Logger;
  private readonly plugTimeoutMs: number;

  constructor(private readonly opts: ClusterContainerNetworksOptions) {
    this.log = componentLogger(opts.log, 'cluster-networks');
    this.plugTimeoutMs = opts.plugTimeoutMs ?? 30000;
  }

  async attach(req: ContainerEndpointRequest): Promise<ContainerEndpoint> {
    if (!req.containerId) throw invalidArgument('a container id is required');
    if (!req.netns) throw invalidArgument('the container has no network namespace');
    if (!existsSync(req.netns)) throw invalidArgument(`the container's network namespace ${req.netns} does not exist`);
    const { registry, ports } = this.opts;
    const log = this.log.child({ containerId: req.containerId, network: req.network });
    const hadNetns = registry.get(req.containerId) !== undefined;
    registry.set(req.containerId, req.netns);
    let res: AttachNetworkResponse;
    try {
      res = await ports.attachNetwork({ network: req.network, containerId: req.containerId, containerName: req.containerName, aliases: req.aliases, ipv4Address: req.ipv4 ?? '' });
    } catch (err) {
      if (!hadNetns) registry.delete(req.containerId);
      throw asError(err, 'asking the managers for the network attachment');
    }
    try {
      await ports.waitPlugged(req.containerId, res.attachmentId, this.plugTimeoutMs);
    } catch (err) {
      // Nothing is left behind: the managers drop the attachment again.
      await ports.detachNetwork(res.attachmentId).catch((e) => log.warn({ err: asError(e, 'detaching').message }, 'attachment not removed after a failed attach'));
      if (!hadNetns) registry.delete(req.containerId);
      throw asSwarmletError(err);
    }
    const a = res.attachment!;
    log.info({ attachmentId: res.attachmentId, address: a.address }, 'container attached to a cluster network');
    return { networkId: a.networkId, networkName: a.networkName, driver: a.driver, ipv4Cidr: a.address, gateway: a.gateway || undefined, mac: a.mac || undefined, aliases: [...req.aliases] };
  }

  async detach(containerId: string, network: string): Promise<void> {
    const { registry, ports } = this.opts;
    const all = ports.containerAttachments().get(containerId) ?? [];
    const mine = all.filter((t) => t.networks[0]?.networkId === network || t.networks[0]?.networkName === network || (network.length >= 12 && t.networks[0]?.networkId.startsWith(network)));
    for (const t of mine) {
      await ports.unplug(t.id);
      try {
        await ports.detachNetwork(t.id);
      } catch (err) {
        throw asError(err, 'asking the managers to remove the network attachment');
      }
      this.log.info({ containerId, attachmentId: t.id, networkId: t.networks[0]?.networkId }, 'container detached from a cluster network');
    }
    if (mine.length === all.length) registry.delete(containerId);
  }
}
