/** The plain data the netlink layer takes and returns: names, text addresses, no buffers. */

/** IFLA_INFO_KIND of a link; 'loopback' and 'device' for links that have none (lo, physical NICs). */
export type LinkKind = 'bridge' | 'vxlan' | 'veth' | 'macvlan' | 'tun' | 'loopback' | 'device' | (string & {});

export type MacvlanMode = 'private' | 'vepa' | 'bridge' | 'passthru' | 'source';

export interface VxlanInfo {
  vni: number;
  /** Local VTEP address (IFLA_VXLAN_LOCAL), when set. */
  local?: string;
  /** UDP destination port. */
  port: number;
  learning: boolean;
  /** Answers ARP from the device's neighbour table (IFLA_VXLAN_PROXY). */
  proxy: boolean;
  /** ifindex of the underlay device (IFLA_VXLAN_LINK), when set. */
  devIndex?: number;
}

export interface VethInfo {
  /** ifindex of the peer, in the peer's network namespace. */
  peerIndex?: number;
  /** The peer's namespace as seen from here (IFLA_LINK_NETNSID); absent when the peer is in this one. */
  peerNetnsId?: number;
}

export interface MacvlanInfo {
  mode?: MacvlanMode;
  parentIndex?: number;
  parentNetnsId?: number;
}

export interface LinkInfo {
  name: string;
  index: number;
  kind: LinkKind;
  mtu: number;
  /** Lower-case `aa:bb:cc:dd:ee:ff`; '' when the link has no hardware address. */
  mac: string;
  /** Administratively up (IFF_UP). */
  up: boolean;
  /** Operationally up: up with carrier (IFF_LOWER_UP). */
  lowerUp: boolean;
  /** ifindex of the bridge this link is a port of. */
  masterIndex?: number;
  vxlan?: VxlanInfo;
  veth?: VethInfo;
  macvlan?: MacvlanInfo;
}

export interface AddressInfo {
  ifname: string;
  index: number;
  family: 4 | 6;
  address: string;
  prefixLength: number;
  /** `address/prefixLength`, e.g. 10.0.0.2/24. */
  cidr: string;
  scope: 'universe' | 'site' | 'link' | 'host' | 'nowhere' | (string & {});
}

export interface RouteSpec {
  /** A CIDR ('10.0.1.0/24'; a bare address means /32 or /128) or 'default'. */
  dst: string;
  gateway?: string;
  /** Output interface by name. */
  dev?: string;
  /** Preferred source address. */
  src?: string;
  /** Route priority (metric); default 0. */
  metric?: number;
  /** Routing table; default main (254). */
  table?: number;
}

export interface RouteInfo {
  family: 4 | 6;
  /** 'default' or a CIDR. */
  dst: string;
  gateway?: string;
  dev?: string;
  devIndex?: number;
  src?: string;
  metric: number;
  table: number;
  protocol: string;
  scope: string;
  type: string;
}

export interface NeighbourInfo {
  ifname: string;
  index: number;
  family: 4 | 6;
  ip: string;
  /** '' while unresolved. */
  mac: string;
  /** NUD states set, lower-case: 'permanent', 'noarp', 'reachable', 'stale', ... */
  state: string[];
  permanent: boolean;
}

export interface FdbEntry {
  ifname: string;
  index: number;
  mac: string;
  /** Remote VTEP of a VXLAN device entry (NDA_DST). */
  dst?: string;
  vlan?: number;
  /** The entry belongs to the device itself (NTF_SELF), e.g. a VXLAN device's own table. */
  self: boolean;
  /** The entry belongs to the bridge the device is a port of (NTF_MASTER). */
  master: boolean;
  /** ifindex of the bridge, for `master` entries. */
  masterIndex?: number;
  state: string[];
  permanent: boolean;
  noarp: boolean;
}

export interface BridgeOptions {
  mtu?: number;
  mac?: string;
}

export interface VxlanOptions {
  vni: number;
  /** Local VTEP address: always set, so packets never leave with the wrong source (moby#53004). */
  local: string;
  /** UDP port; default 4789. */
  port?: number;
  mtu?: number;
  /** MAC learning; default false (peers are programmed statically). */
  learning?: boolean;
  /** Answer ARP from the neighbour entries of the device; default false. */
  proxy?: boolean;
  /** Underlay interface name. */
  dev?: string;
}

export interface VethOptions {
  mtu?: number;
  /** Network namespace the peer is created in (a path such as /run/netns/NAME or /proc/PID/ns/net). */
  peerNetns?: string;
}

export interface NeighbourOptions {
  /** NUD_PERMANENT (default true); otherwise NUD_REACHABLE, which the kernel may age out. */
  permanent?: boolean;
}

export interface FdbOptions {
  /** Remote VTEP (IPv4), for an entry on a VXLAN device. */
  dst?: string;
  /**
   * true: on the device itself (NTF_SELF, NUD_PERMANENT), what a VXLAN device needs.
   * false: on the bridge the device is a port of (NTF_MASTER, NUD_NOARP alone; with NUD_PERMANENT
   * the bridge would take the MAC as its own and stop the frames).
   */
  self: boolean;
}
