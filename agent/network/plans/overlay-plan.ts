/**
 * The overlay driver's reconcile plan for one host. Pure: the driver reads the kernel (links, FDB
 * and neighbour entries of its sandbox namespaces) and what the cluster wants, calls `planOverlay`,
 * and applies the operations in order; running it again on the result gives no operations.
 *
 * Per wanted overlay network, named by its VNI (names stay within IFNAMSIZ: "vx-16777215" is 11):
 *   - a bridge `br-<vni>` and a VXLAN device `vx-<vni>` (that VNI, the host's VTEP as local
 *     address, UDP port 4789, no learning), both with the network's MTU, the VXLAN device a port
 *     of the bridge, both up;
 *   - for every REMOTE peer (a task of the network on another host): an FDB entry on `vx-<vni>`
 *     (task MAC -> that host's VTEP, self, permanent) and a neighbour entry on `vx-<vni>` (task IP
 *     -> task MAC, NUD permanent), from which the VXLAN device answers the tasks' ARP requests
 *     itself (ARP proxy; an entry on the bridge would only serve the sandbox's own IP stack).
 *     Local peers sit on the bridge itself and need neither.
 *
 * What the plan owns, and so may remove: links named `br-<vni>` of kind bridge and `vx-<vni>` of
 * kind vxlan (a VNI from 4096 up); FDB entries on a `vx-<vni>` device that have a destination (the
 * kernel's own entries, the bridge's local and learned ones, have none); neighbour entries on a
 * `vx-<vni>` device in state permanent (the ones the kernel learned are left to age out). Anything
 * else in the namespaces (loopback, task veths, the bridge's neighbours, the kernel's entries) is
 * never touched.
 *
 * A VXLAN device with the wrong VNI, local address, port or learning is deleted and made again
 * (the kernel cannot change those in place); its FDB and neighbour entries go with it and are
 * added again. A bridge made again keeps them: they are the VXLAN device's.
 *
 * MAC addresses compare without case and are written in lower case; IPs and VTEPs are dotted quads.
 *
 * Operations come in this order: every deletion of a link first (so a VNI or name is free before
 * anything is made with it), then per network by VNI: links, their MTU, master and up state, then
 * stale FDB and neighbour entries out, then missing ones in.
 */

import { isIPv4, readCidr, readIpv4 } from '../../../services/common/cidr';
import { invalidArgument } from '../../../services/common/errors';
import { VNI_MAX, VNI_MIN, VXLAN_OVERHEAD, VXLAN_PORT, isSwarmVni } from '../../../services/common/vxlan';

export const bridgeName = (vni: number): string => `br-${vni}`;
export const vxlanName = (vni: number): string => `vx-${vni}`;

export interface OverlayPeer {
  /** The task's address on the network, without prefix length. */
  ip: string;
  mac: string;
  /** The underlay address of the host the task runs on. */
  vtep: string;
}

export interface WantedOverlay {
  networkId: string;
  vni: number;
  /** CIDR, e.g. 10.0.1.0/24 */
  subnet: string;
  gateway: string;
  mtu: number;
  /** This host's underlay address: the VXLAN device's source address. */
  localVtep: string;
  /** Every task of the network that has an address, on any host (local ones are skipped). */
  peers: OverlayPeer[];
}

export interface KernelLink {
  name: string;
  /** bridge | vxlan | veth | ... as netlink's IFLA_INFO_KIND */
  kind: string;
  vni?: number;
  local?: string;
  mtu: number;
  up: boolean;
  master?: string;
  /** VXLAN destination port, when the reader reports it. */
  port?: number;
  /** VXLAN learning, when the reader reports it. */
  learning?: boolean;
}

export interface KernelFdbEntry {
  dev: string;
  mac: string;
  /** The remote VTEP, on VXLAN devices; absent on the kernel's own entries. */
  dst?: string;
  self: boolean;
}

export interface KernelNeighbour {
  dev: string;
  ip: string;
  mac: string;
  /** NUD_PERMANENT: made by someone (this plan, on vx-<vni>), never learned. */
  permanent: boolean;
}

export interface KernelState {
  links: KernelLink[];
  fdb: KernelFdbEntry[];
  neigh: KernelNeighbour[];
}

export interface OverlayPlanInput {
  /** The overlay networks that have tasks on this host. */
  wanted: WantedOverlay[];
  kernel: KernelState;
}

/** Every operation names the VNI of the network it is for, which selects its sandbox namespace. */
export type OverlayOp =
  | { op: 'deleteLink'; vni: number; name: string }
  /** address: the gateway, with the subnet's prefix length, put on the bridge when it is made. */
  | { op: 'createBridge'; vni: number; name: string; mtu: number; address: string }
  | { op: 'createVxlan'; vni: number; name: string; local: string; port: number; learning: false; mtu: number }
  | { op: 'setMtu'; vni: number; name: string; mtu: number }
  | { op: 'setMaster'; vni: number; name: string; master: string }
  | { op: 'setUp'; vni: number; name: string }
  /** self, permanent */
  | { op: 'addFdb'; vni: number; dev: string; mac: string; dst: string }
  | { op: 'delFdb'; vni: number; dev: string; mac: string; dst: string }
  /** NUD permanent; replaces an entry the kernel has for that IP (a learned one, or another MAC). */
  | { op: 'addNeigh'; vni: number; dev: string; ip: string; mac: string }
  | { op: 'delNeigh'; vni: number; dev: string; ip: string; mac: string };

export type OverlayOpName = OverlayOp['op'];

/** The overlay MTU: the one asked for (`--opt mtu`), else the underlay's less the VXLAN overhead. */
export function planOverlayMtu(underlayMtu: number, optMtu?: number): number {
  if (optMtu !== undefined && optMtu > 0) return optMtu;
  return underlayMtu - VXLAN_OVERHEAD;
}

// ---- the comparison both the plan and the report are made from ------------------------------

type LinkProblem =
  | { kind: 'missing' }
  | { kind: 'wrongKind'; have: string }
  | { kind: 'wrongVni'; have?: number }
  | { kind: 'wrongLocal'; have?: string }
  | { kind: 'wrongPort'; have: number }
  | { kind: 'learning' };

interface LinkCheck {
  name: string;
  /** Why the link must be (re)made; undefined when it is there and right. */
  remake?: LinkProblem;
  /** Present when the link is kept, or made again: what else to fix. */
  mtu?: { have: number };
  master?: { have?: string };
  down: boolean;
}

interface RemotePeer {
  ip: string;
  mac: string;
  vtep: string;
}

interface NetworkDiff {
  want: WantedOverlay;
  bridge: LinkCheck;
  vxlan: LinkCheck;
  /** Entries on the VXLAN device with a destination that no remote peer wants. */
  staleFdb: KernelFdbEntry[];
  missingFdb: RemotePeer[];
  /** Permanent entries on the VXLAN device that no remote peer wants. */
  staleNeigh: KernelNeighbour[];
  /** Remote peers whose IP has no entry, or one not permanent or with another MAC. */
  missingNeigh: { peer: RemotePeer; have?: KernelNeighbour }[];
}

interface OverlayDiff {
  /** Links of overlay networks this host no longer wants. */
  unwanted: { vni: number; link: KernelLink }[];
  networks: NetworkDiff[];
}

const OWN_LINK = /^(br|vx)-([1-9][0-9]*)$/;
const normMac = (mac: string): string => mac.toLowerCase();

function ownedVni(link: KernelLink): number | undefined {
  const m = OWN_LINK.exec(link.name);
  if (!m) return undefined;
  const vni = Number(m[2]);
  if (!isSwarmVni(vni)) return undefined;
  const kind = m[1] === 'br' ? 'bridge' : 'vxlan';
  return link.kind === kind ? vni : undefined;
}

function compare(input: OverlayPlanInput): OverlayDiff {
  // One entry per VNI (the first by network id if the caller sent two); sorted for a stable plan.
  const wanted = new Map<number, WantedOverlay>();
  for (const w of [...input.wanted].sort((a, b) => a.vni - b.vni || cmp(a.networkId, b.networkId))) {
    if (!wanted.has(w.vni)) wanted.set(w.vni, w);
  }
  const links = new Map(input.kernel.links.map((l) => [l.name, l]));

  const unwanted: OverlayDiff['unwanted'] = [];
  for (const link of [...input.kernel.links].sort((a, b) => cmp(a.name, b.name))) {
    const vni = ownedVni(link);
    if (vni !== undefined && !wanted.has(vni)) unwanted.push({ vni, link });
  }

  const networks: NetworkDiff[] = [];
  for (const want of wanted.values()) {
    const br = bridgeName(want.vni);
    const vx = vxlanName(want.vni);
    const bridge = checkLink(links.get(br), br, want, (l) => (l.kind !== 'bridge' ? { kind: 'wrongKind', have: l.kind } : undefined));
    const vxLink = links.get(vx);
    const vxlan = checkLink(vxLink, vx, want, (l) => vxlanProblem(l, want));
    // A VXLAN device made again needs its master set anyway; a kept one when it is not a port of
    // the bridge, or when the bridge is made again (deleting a bridge releases its ports).
    if (vxLink && !vxlan.remake && (bridge.remake || vxLink.master !== br)) vxlan.master = { have: bridge.remake ? undefined : vxLink.master };

    // Remote peers, one per MAC (FDB) and per IP (neighbour), first in a sorted order winning.
    const remote = [...want.peers]
      .filter((p) => p.ip && p.mac && p.vtep && p.vtep !== want.localVtep)
      .map((p) => ({ ip: p.ip, mac: normMac(p.mac), vtep: p.vtep }))
      .sort((a, b) => cmpIp(a.ip, b.ip) || cmp(a.mac, b.mac) || cmpIp(a.vtep, b.vtep));
    const fdbWanted = new Map<string, RemotePeer>();
    const neighWanted = new Map<string, RemotePeer>();
    for (const p of remote) {
      if (!fdbWanted.has(p.mac)) fdbWanted.set(p.mac, p);
      if (!neighWanted.has(p.ip)) neighWanted.set(p.ip, p);
    }

    // FDB entries: stale unless a remote peer wants exactly that MAC -> VTEP (each listed once).
    const present = new Set<string>();
    const stale = new Map<string, KernelFdbEntry>();
    for (const e of vxlan.remake ? [] : input.kernel.fdb) {
      if (e.dev !== vx || !e.dst) continue;
      const mac = normMac(e.mac);
      if (fdbWanted.get(mac)?.vtep === e.dst) present.add(mac);
      else if (!stale.has(`${mac} ${e.dst}`)) stale.set(`${mac} ${e.dst}`, e);
    }
    const staleFdb = [...stale.values()].sort((a, b) => cmp(normMac(a.mac), normMac(b.mac)) || cmpIp(a.dst ?? '', b.dst ?? ''));
    const missingFdb = [...fdbWanted.values()].filter((p) => !present.has(p.mac));

    // Neighbour entries on the VXLAN device, by IP (the kernel keeps one per IP and device).
    const neighHave = new Map<string, KernelNeighbour>();
    for (const n of vxlan.remake ? [] : input.kernel.neigh) if (n.dev === vx && !neighHave.has(n.ip)) neighHave.set(n.ip, n);
    const staleNeigh = [...neighHave.values()]
      .filter((n) => n.permanent && !neighWanted.has(n.ip)) // a wanted IP with another MAC is replaced, not deleted
      .sort((a, b) => cmpIp(a.ip, b.ip));
    const missingNeigh = [...neighWanted.values()]
      .map((peer) => ({ peer, have: neighHave.get(peer.ip) }))
      .filter(({ peer, have }) => !have || !have.permanent || normMac(have.mac) !== peer.mac);

    networks.push({ want, bridge, vxlan, staleFdb, missingFdb, staleNeigh, missingNeigh });
  }
  return { unwanted, networks };
}

function checkLink(
  link: KernelLink | undefined,
  name: string,
  want: WantedOverlay,
  problem: (l: KernelLink) => LinkProblem | undefined,
): LinkCheck {
  if (!link) return { name, remake: { kind: 'missing' }, down: true };
  const remake = problem(link);
  if (remake) return { name, remake, down: true };
  return { name, mtu: link.mtu !== want.mtu ? { have: link.mtu } : undefined, down: !link.up };
}

function vxlanProblem(l: KernelLink, want: WantedOverlay): LinkProblem | undefined {
  if (l.kind !== 'vxlan') return { kind: 'wrongKind', have: l.kind };
  if (l.vni !== want.vni) return { kind: 'wrongVni', have: l.vni };
  if (l.local !== want.localVtep) return { kind: 'wrongLocal', have: l.local };
  if (l.port !== undefined && l.port !== VXLAN_PORT) return { kind: 'wrongPort', have: l.port };
  if (l.learning === true) return { kind: 'learning' };
  return undefined;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Dotted quads in numeric order (10.0.1.9 before 10.0.1.10); anything else after them, as text. */
function cmpIp(a: string, b: string): number {
  const ka = readIpv4(a);
  const kb = readIpv4(b);
  if (ka !== undefined && kb !== undefined) return ka - kb;
  if (ka !== undefined) return -1;
  if (kb !== undefined) return 1;
  return cmp(a, b);
}

// ---- the plan ---------------------------------------------------------------------------------

/** The operations that make the kernel match the wanted overlays, in the order to apply them. */
export function planOverlay(input: OverlayPlanInput): OverlayOp[] {
  const diff = compare(input);
  const ops: OverlayOp[] = [];

  // Deletions first: links of networks no longer wanted (VXLAN devices before their bridges), then
  // links to be made again.
  const unwanted = [...diff.unwanted].sort((a, b) => a.vni - b.vni || (a.link.kind === 'vxlan' ? -1 : 1) - (b.link.kind === 'vxlan' ? -1 : 1));
  for (const { vni, link } of unwanted) ops.push({ op: 'deleteLink', vni, name: link.name });
  for (const n of diff.networks) {
    for (const check of [n.vxlan, n.bridge]) {
      if (check.remake && check.remake.kind !== 'missing') ops.push({ op: 'deleteLink', vni: n.want.vni, name: check.name });
    }
  }

  for (const n of diff.networks) {
    const { want, bridge, vxlan } = n;
    const vni = want.vni;
    if (bridge.remake) ops.push({ op: 'createBridge', vni, name: bridge.name, mtu: want.mtu, address: gatewayAddress(want) });
    if (vxlan.remake) {
      ops.push({ op: 'createVxlan', vni, name: vxlan.name, local: want.localVtep, port: VXLAN_PORT, learning: false, mtu: want.mtu });
    }
    if (vxlan.mtu) ops.push({ op: 'setMtu', vni, name: vxlan.name, mtu: want.mtu });
    if (bridge.mtu) ops.push({ op: 'setMtu', vni, name: bridge.name, mtu: want.mtu });
    if (vxlan.remake || vxlan.master) ops.push({ op: 'setMaster', vni, name: vxlan.name, master: bridge.name });
    if (vxlan.down) ops.push({ op: 'setUp', vni, name: vxlan.name });
    if (bridge.down) ops.push({ op: 'setUp', vni, name: bridge.name });

    for (const e of n.staleFdb) ops.push({ op: 'delFdb', vni, dev: vxlan.name, mac: normMac(e.mac), dst: e.dst ?? '' });
    for (const e of n.staleNeigh) ops.push({ op: 'delNeigh', vni, dev: vxlan.name, ip: e.ip, mac: normMac(e.mac) });
    for (const p of n.missingFdb) ops.push({ op: 'addFdb', vni, dev: vxlan.name, mac: p.mac, dst: p.vtep });
    for (const { peer } of n.missingNeigh) ops.push({ op: 'addNeigh', vni, dev: vxlan.name, ip: peer.ip, mac: peer.mac });
  }
  return ops;
}

/** The gateway with the subnet's prefix length ("10.0.1.1/24"); the gateway alone if the subnet has none. */
function gatewayAddress(want: WantedOverlay): string {
  if (!want.gateway) return '';
  const slash = want.subnet.indexOf('/');
  return slash < 0 ? want.gateway : `${want.gateway}${want.subnet.slice(slash)}`;
}

// ---- the report -------------------------------------------------------------------------------

/** What differs between the kernel and the wanted overlays, one sentence a line (`network doctor`). */
export function diffReport(input: OverlayPlanInput): string[] {
  const diff = compare(input);
  const lines: string[] = [];
  for (const { vni, link } of diff.unwanted) lines.push(`stale link ${link.name} (VNI ${vni} is not wanted on this host)`);
  for (const n of diff.networks) {
    const { want, bridge, vxlan } = n;
    for (const check of [bridge, vxlan]) {
      if (check.remake) lines.push(linkProblemText(check.name, check.remake, want));
      if (check.mtu) lines.push(`wrong MTU ${check.mtu.have} on ${check.name} (want ${want.mtu})`);
      if (!check.remake && check.down) lines.push(`link ${check.name} is down`);
    }
    if (!vxlan.remake && vxlan.master) {
      lines.push(vxlan.master.have ? `link ${vxlan.name} is a port of ${vxlan.master.have} (want ${bridge.name})` : `link ${vxlan.name} is not a port of ${bridge.name}`);
    }
    for (const e of n.staleFdb) lines.push(`stale FDB entry ${normMac(e.mac)} -> ${e.dst} on ${vxlan.name}`);
    for (const p of n.missingFdb) lines.push(`missing FDB entry for ${p.ip} (${p.mac} -> ${p.vtep}) on ${vxlan.name}`);
    for (const e of n.staleNeigh) lines.push(`stale neighbour ${e.ip} -> ${normMac(e.mac)} on ${vxlan.name}`);
    for (const { peer, have } of n.missingNeigh) {
      if (!have) lines.push(`missing neighbour entry for ${peer.ip} (-> ${peer.mac}) on ${vxlan.name}`);
      else if (normMac(have.mac) !== peer.mac) lines.push(`wrong neighbour entry ${peer.ip} -> ${normMac(have.mac)} on ${vxlan.name} (want ${peer.mac})`);
      else lines.push(`neighbour entry ${peer.ip} -> ${peer.mac} on ${vxlan.name} is not permanent`);
    }
  }
  return lines;
}

function linkProblemText(name: string, p: LinkProblem, want: WantedOverlay): string {
  switch (p.kind) {
    case 'missing':
      return `missing link ${name}`;
    case 'wrongKind':
      return `link ${name} is a ${p.have || 'link of unknown kind'} (want ${name.startsWith('br-') ? 'bridge' : 'vxlan'})`;
    case 'wrongVni':
      return `wrong VNI ${p.have ?? 'none'} on ${name} (want ${want.vni})`;
    case 'wrongLocal':
      return `wrong local address ${p.have || 'none'} on ${name} (want ${want.localVtep})`;
    case 'wrongPort':
      return `wrong port ${p.have} on ${name} (want ${VXLAN_PORT})`;
    case 'learning':
      return `link ${name} has learning on (want off)`;
  }
}

// ---- a whole pass over the sandboxes as the driver reads them ----------------------------------
//
// What planOverlay does not model, and the driver needs: the VXLAN device's ARP proxy (a device
// with proxy off is deleted and made again), the bridge's FDB entries that mirror the remote peers
// (master, NUD_NOARP: the bridge sends their frames to the VXLAN port instead of flooding), and the
// check of an overlay network as the dispatcher sends it.

/**
 * Kernel settings of every sandbox namespace, as files under /proc/sys: br_netfilter off. A
 * sandbox's bridge only switches frames between its VXLAN port and the tasks' veths, and nothing
 * in a sandbox filters or NATs; yet with bridge-nf-call-* on (the kernel's default in each
 * namespace once br_netfilter is loaded, as docker loads it) every frame it bridges is prepared
 * for the IP hooks and walked through them: measured, a few per cent of the CPU of a request
 * through the routing mesh.
 */
export const SANDBOX_SYSCTLS: Readonly<Record<string, string>> = Object.freeze({
  'net/bridge/bridge-nf-call-iptables': '0',
  'net/bridge/bridge-nf-call-ip6tables': '0',
  'net/bridge/bridge-nf-call-arptables': '0',
});

/**
 * The files and values that write these settings in a namespace: /proc/sys paths. Names are
 * letters, digits, `_`, `-`, `.` and `/`, with no `..`; values digits.
 */
export function planSysctlWrites(sysctls: Readonly<Record<string, string>>): { path: string; value: string }[] {
  return Object.entries(sysctls).map(([name, value]) => {
    if (!/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/.test(name) || name.split('/').includes('..')) throw invalidArgument(`invalid sysctl name ${JSON.stringify(name)}`);
    if (!/^[0-9]+$/.test(value)) throw invalidArgument(`invalid value ${JSON.stringify(value)} for sysctl ${name}`);
    return { path: `/proc/sys/${name}`, value: `${value}\n` };
  });
}

/** A link in a sandbox namespace, as the driver reads it (netlink's LinkInfo fits). */
export interface SandboxLink {
  name: string;
  index: number;
  kind: string;
  mtu: number;
  up: boolean;
  masterIndex?: number;
  vxlan?: { vni: number; local?: string; port: number; learning: boolean; proxy: boolean };
}

/** An FDB entry of `vx-<vni>`, its own (self) or the bridge's for it (master). */
export interface SandboxFdbEntry {
  mac: string;
  dst?: string;
  self: boolean;
  master: boolean;
  permanent: boolean;
  noarp: boolean;
}

/** One sandbox namespace as the driver reads it. */
export interface SandboxReading {
  vni: number;
  links: SandboxLink[];
  /** Entries of vx-<vni> (its own and the bridge's for it); [] without the device. */
  fdb: SandboxFdbEntry[];
  /** IPv4 neighbours of vx-<vni>; [] without the device. */
  neigh: { ip: string; mac: string; permanent: boolean }[];
}

/** The bridge's FDB entry for a remote peer's MAC on the VXLAN port (master, NUD_NOARP). */
export type BridgeFdbOp = { op: 'addBridgeFdb' | 'delBridgeFdb'; vni: number; dev: string; mac: string };
/** What the driver applies: the plan's operations and the bridge's FDB entries. */
export type SandboxOp = OverlayOp | BridgeFdbOp;

/** An overlay network as the dispatcher sends it, as far as it is checked here. */
export interface OverlayNetworkSpec {
  vni: number;
  subnet: string;
  gateway: string;
  mtu: number;
}

/** What is wrong with an overlay network the dispatcher sent; undefined when it can be made. */
export function planOverlayProblem(o: OverlayNetworkSpec): string | undefined {
  if (!isSwarmVni(o.vni)) return `VNI must be from ${VNI_MIN} to ${VNI_MAX}`;
  if (!readCidr(o.subnet)) return `invalid subnet ${JSON.stringify(o.subnet)}`;
  if (o.gateway && !isIPv4(o.gateway)) return `invalid gateway ${JSON.stringify(o.gateway)}`;
  if (o.mtu && !(o.mtu >= 68 && o.mtu <= 65535)) return `invalid MTU ${o.mtu}`;
  return undefined;
}

/** Remote peers' MACs of a network, lower case, once each: the plan's rule for FDB entries. */
function remoteMacs(want: WantedOverlay): Set<string> {
  return new Set(want.peers.filter((p) => p.ip && p.mac && p.vtep && p.vtep !== want.localVtep).map((p) => p.mac.toLowerCase()));
}

/**
 * The bridge's FDB entries (master, NUD_NOARP) for the VXLAN port: one per remote peer MAC. When
 * the bridge or the VXLAN device is (re)made in `ops`, what the kernel has now goes with it.
 */
export function planBridgeFdb(want: WantedOverlay, state: SandboxReading, ops: SandboxOp[] = []): BridgeFdbOp[] {
  const vni = want.vni;
  const dev = vxlanName(vni);
  const remade = ops.some((o) => o.vni === vni && (o.op === 'createVxlan' || o.op === 'createBridge'));
  const have = new Set(remade ? [] : state.fdb.filter((e) => e.master && e.noarp && !e.permanent).map((e) => e.mac));
  const wantMacs = remoteMacs(want);
  const out: BridgeFdbOp[] = [];
  for (const mac of [...have].sort()) if (!wantMacs.has(mac)) out.push({ op: 'delBridgeFdb', vni, dev, mac });
  for (const mac of [...wantMacs].sort()) if (!have.has(mac)) out.push({ op: 'addBridgeFdb', vni, dev, mac });
  return out;
}

/**
 * The plan's view of the sandboxes: their own br-<vni>/vx-<vni> only (never task veths or lo),
 * with the VXLAN device's FDB and neighbour entries. With `hideNoProxy`, a VXLAN device with
 * proxy off is left out (with its entries), so that the plan makes it again; `noProxy` names them.
 */
export function planKernelState(states: SandboxReading[], hideNoProxy: boolean): { kernel: KernelState; noProxy: number[] } {
  const kernel: KernelState = { links: [], fdb: [], neigh: [] };
  const noProxy: number[] = [];
  for (const s of states) {
    const br = bridgeName(s.vni);
    const vx = vxlanName(s.vni);
    const byIndex = new Map(s.links.map((l) => [l.index, l.name]));
    const vxLink = s.links.find((l) => l.name === vx);
    const hidden = hideNoProxy && vxLink?.kind === 'vxlan' && vxLink.vxlan !== undefined && !vxLink.vxlan.proxy;
    if (hidden) noProxy.push(s.vni);
    for (const l of s.links) {
      if (l.name !== br && !(l.name === vx && !hidden)) continue;
      kernel.links.push({
        name: l.name,
        kind: l.kind,
        vni: l.vxlan?.vni,
        local: l.vxlan?.local,
        mtu: l.mtu,
        up: l.up,
        master: l.masterIndex === undefined ? undefined : byIndex.get(l.masterIndex),
        port: l.vxlan?.port,
        learning: l.vxlan?.learning,
      });
    }
    if (hidden) continue;
    for (const e of s.fdb) if (e.self) kernel.fdb.push({ dev: vx, mac: e.mac, dst: e.dst, self: true });
    for (const n of s.neigh) kernel.neigh.push({ dev: vx, ip: n.ip, mac: n.mac, permanent: n.permanent });
  }
  return { kernel, noProxy };
}

/**
 * One pass of the driver over the sandboxes it read: VXLAN devices with ARP proxy off deleted (to
 * be made again), then planOverlay's operations, then the bridges' FDB entries. [] when the
 * kernel is as wanted.
 */
export function planSandboxes(wanted: WantedOverlay[], states: SandboxReading[]): { ops: SandboxOp[]; noProxy: number[] } {
  const { kernel, noProxy } = planKernelState(states, true);
  const ops: SandboxOp[] = noProxy.map((vni): OverlayOp => ({ op: 'deleteLink', vni, name: vxlanName(vni) }));
  ops.push(...planOverlay({ wanted, kernel }));
  for (const w of wanted) {
    const state = states.find((s) => s.vni === w.vni);
    if (state) ops.push(...planBridgeFdb(w, state, ops));
  }
  return { ops, noProxy };
}

/** The doctor's report on the sandboxes it read: diffReport, and ARP proxy and bridge FDB entries. */
export function sandboxReport(wanted: WantedOverlay[], states: SandboxReading[]): string[] {
  const lines = diffReport({ wanted, kernel: planKernelState(states, false).kernel });
  for (const s of states) {
    const vx = s.links.find((l) => l.name === vxlanName(s.vni) && l.kind === 'vxlan');
    if (vx && vx.vxlan && !vx.vxlan.proxy) lines.push(`link ${vx.name} has ARP proxy off (want on)`);
    const want = wanted.find((w) => w.vni === s.vni);
    if (want && vx) {
      for (const op of planBridgeFdb(want, s)) {
        lines.push(op.op === 'addBridgeFdb' ? `missing bridge FDB entry ${op.mac} on ${op.dev}` : `stale bridge FDB entry ${op.mac} on ${op.dev}`);
      }
    }
  }
  return lines;
}
