/**
 * The port a container's network endpoints come from (the cluster side, for a node
 * in a swarm, implements it in its own file). The node picks the implementation by its
 * membership: LocalContainerNetworks (local-container-networks.ts) on a node in no swarm.
 */

export interface ContainerEndpointRequest {
  containerId: string;
  containerName: string;
  /** name or id */
  network: string;
  aliases: string[];
  ipv4?: string;
  /** path of the container's network namespace */
  netns: string;
}

export interface ContainerEndpoint {
  networkId: string;
  networkName: string;
  driver: string;
  /** address/prefix; '' on host and none */
  ipv4Cidr: string;
  gateway?: string;
  mac?: string;
  aliases: string[];
  /** The container's interface on the network (eth0, eth1...), when the implementation names it: kept in the record, so a daemon restart keeps the names. */
  interfaceName?: string;
}

export interface ContainerNetworks {
  /** Allocates the container's address on the network and plugs an interface into its netns. */
  attach(req: ContainerEndpointRequest): Promise<ContainerEndpoint>;
  /** Unplugs and releases; fine when not attached. */
  detach(containerId: string, network: string): Promise<void>;
}

/** The network modes that plug nothing in: the runtime gives `none` a namespace with lo alone, `host` the host's. */
export const NO_PLUG_DRIVERS = new Set(['host', 'none']);
