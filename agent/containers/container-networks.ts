export interface ContainerEndpointRequest { containerId: string; containerName: string;
  network: string /* name or id */; aliases: string[]; ipv4?: string; netns: string /* path */ }
export interface ContainerEndpoint { networkId: string; networkName: string; driver: string;
  ipv4Cidr: string /* address/prefix */; gateway?: string; mac?: string; aliases: string[] }
export interface ContainerNetworks {
  /** Allocates the container's address on the network and plugs an interface into its netns. */
  attach(req: ContainerEndpointRequest): Promise<ContainerEndpoint>;
  /** Unplugs and releases; fine when not attached. */
  detach(containerId: string, network: string): Promise<void>;
}
