/**
 * Everything that touches raw netlink bytes, in one place: the nested IFLA_LINKINFO attributes
 * the `netlink` package 0.3.0 leaves as buffers (bridge, VXLAN, veth peer, macvlan), RTM_GETNSID,
 * and the conversions between its parsed messages and this layer's plain data (text addresses,
 * names, booleans). Nothing here does I/O.
 */
import ipaddr from 'ipaddr.js';
import { ifla, rt } from 'netlink';
import { isIPv4 } from '../../../services/common/cidr';
import type {
  AddressInfo,
  FdbEntry,
  LinkInfo,
  LinkKind,
  MacvlanInfo,
  MacvlanMode,
  NeighbourInfo,
  RouteInfo,
  VxlanInfo,
} from './types';

export const AF_UNSPEC = 0;
export const AF_INET = 2;
export const AF_BRIDGE = 7;
export const AF_INET6 = 10;

export const RT_TABLE_MAIN = 254;
export const RTN_UNICAST = 1;

const IFLA_ADDRESS = 1;
const IFLA_IFNAME = 3;
const IFLA_MTU = 4;
const IFLA_LINKINFO = 18;
const IFLA_NET_NS_FD = 28;
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const VETH_INFO_PEER = 1;
const IFINFOMSG_LENGTH = 16;

const IFLA_VXLAN_ID = 1;
const IFLA_VXLAN_LINK = 3;
const IFLA_VXLAN_LOCAL = 4;
const IFLA_VXLAN_LEARNING = 7;
const IFLA_VXLAN_PROXY = 11;
const IFLA_VXLAN_PORT = 15;

const IFLA_MACVLAN_MODE = 1;
const MACVLAN_MODES: Record<MacvlanMode, number> = { private: 1, vepa: 2, bridge: 4, passthru: 8, source: 16 };

export const RTM_NEWNSID = 88;
export const RTM_GETNSID = 90;
const NETNSA_NSID = 1;
const NETNSA_FD = 3;

// ---------------------------------------------------------------------------------------------
// Attributes (struct nlattr: u16 length, u16 type, payload, padding to 4 bytes; host byte order).

function align4(n: number): number {
  return (n + 3) & ~3;
}

/** One attribute, padded. */
export function nlattr(type: number, payload: Buffer): Buffer {
  const length = 4 + payload.length;
  const out = Buffer.alloc(align4(length));
  out.writeUInt16LE(length, 0);
  out.writeUInt16LE(type, 2);
  payload.copy(out, 4);
  return out;
}

export function u8(value: number): Buffer {
  return Buffer.from([value & 0xff]);
}

export function u32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value >>> 0, 0);
  return b;
}

function u16be(value: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(value, 0);
  return b;
}

function cstring(value: string): Buffer {
  return Buffer.concat([Buffer.from(value, 'utf8'), Buffer.alloc(1)]);
}

/** Splits a stream of attributes into type -> payload (the last one wins). */
export function parseAttrs(buf: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let offset = 0;
  while (offset + 4 <= buf.length) {
    const length = buf.readUInt16LE(offset);
    const type = buf.readUInt16LE(offset + 2) & 0x3fff;
    if (length < 4 || offset + length > buf.length) break;
    out.set(type, buf.subarray(offset + 4, offset + length));
    offset += align4(length);
  }
  return out;
}

const readU32 = (b: Buffer | undefined) => (b && b.length >= 4 ? b.readUInt32LE(0) : undefined);

// ---------------------------------------------------------------------------------------------
// IFLA_LINKINFO payloads (the value of LinkAttrs.linkinfo).

function linkInfo(kind: string, data?: Buffer): Buffer {
  const parts = [nlattr(IFLA_INFO_KIND, cstring(kind))];
  if (data) parts.push(nlattr(IFLA_INFO_DATA, data));
  return Buffer.concat(parts);
}

export const bridgeLinkInfo = (): Buffer => linkInfo('bridge');

export interface VxlanWire {
  vni: number;
  local: Buffer;
  port: number;
  learning: boolean;
  proxy: boolean;
  devIndex?: number;
}

export function vxlanLinkInfo(v: VxlanWire): Buffer {
  const data = [
    nlattr(IFLA_VXLAN_ID, u32(v.vni)),
    nlattr(v.local.length === 4 ? IFLA_VXLAN_LOCAL : 17 /* IFLA_VXLAN_LOCAL6 */, v.local),
    nlattr(IFLA_VXLAN_PORT, u16be(v.port)),
    nlattr(IFLA_VXLAN_LEARNING, u8(v.learning ? 1 : 0)),
    nlattr(IFLA_VXLAN_PROXY, u8(v.proxy ? 1 : 0)),
  ];
  if (v.devIndex !== undefined) data.push(nlattr(IFLA_VXLAN_LINK, u32(v.devIndex)));
  return linkInfo('vxlan', Buffer.concat(data));
}

/**
 * A veth pair: the peer is described by a struct ifinfomsg followed by its own link attributes
 * (name, MTU, and the namespace to create it in, as an fd valid in the process that sends this).
 */
export function vethLinkInfo(peer: { name: string; mtu?: number; netnsFd?: number }): Buffer {
  const attrs = [Buffer.alloc(IFINFOMSG_LENGTH), nlattr(IFLA_IFNAME, cstring(peer.name))];
  if (peer.mtu !== undefined) attrs.push(nlattr(IFLA_MTU, u32(peer.mtu)));
  if (peer.netnsFd !== undefined) attrs.push(nlattr(IFLA_NET_NS_FD, u32(peer.netnsFd)));
  return linkInfo('veth', nlattr(VETH_INFO_PEER, Buffer.concat(attrs)));
}

export function macvlanLinkInfo(mode: MacvlanMode): Buffer {
  return linkInfo('macvlan', nlattr(IFLA_MACVLAN_MODE, u32(MACVLAN_MODES[mode])));
}

export function isMacvlanMode(mode: string): mode is MacvlanMode {
  return Object.prototype.hasOwnProperty.call(MACVLAN_MODES, mode);
}

// ---------------------------------------------------------------------------------------------
// RTM_SETLINK of a bridge port's own flags (family AF_BRIDGE, IFLA_PROTINFO nested), as `bridge link set` sends it.

export const RTM_SETLINK = 19;
const IFLA_PROTINFO = 12;
const NLA_F_NESTED = 0x8000;
const IFLA_BRPORT_ISOLATED = 33;

/** struct ifinfomsg (AF_BRIDGE, the port's index) + IFLA_PROTINFO { IFLA_BRPORT_ISOLATED }. */
export function bridgePortIsolatedRequest(index: number, isolated: boolean): Buffer {
  const head = Buffer.alloc(IFINFOMSG_LENGTH);
  head.writeUInt8(AF_BRIDGE, 0);
  head.writeInt32LE(index, 4);
  return Buffer.concat([head, nlattr(IFLA_PROTINFO | NLA_F_NESTED, nlattr(IFLA_BRPORT_ISOLATED, u8(isolated ? 1 : 0)))]);
}

// RTM_GETNSID: which nsid this namespace gives the namespace behind an fd.

/** struct rtgenmsg (1 byte, padded to 4) + NETNSA_FD. */
export function getNsidRequest(fd: number): Buffer {
  return Buffer.concat([Buffer.alloc(4), nlattr(NETNSA_FD, u32(fd))]);
}

/** The nsid in an RTM_NEWNSID reply; undefined when none is assigned (-1). */
export function parseNsidReply(data: Buffer): number | undefined {
  const nsid = parseAttrs(data.subarray(4)).get(NETNSA_NSID);
  if (!nsid || nsid.length < 4) return undefined;
  const value = nsid.readInt32LE(0);
  return value < 0 ? undefined : value;
}

// ---------------------------------------------------------------------------------------------
// Addresses in text.


/** 4 or 16 bytes for an IPv4 or IPv6 address in text; undefined when it is neither. */
export function parseIp(text: string): Buffer | undefined {
  if (isIPv4(text)) return Buffer.from(ipaddr.IPv4.parse(text).toByteArray());
  // Plain IPv6 text only: no zone (%eth0) and no embedded dotted quad.
  if (!/^[0-9a-fA-F:]+$/.test(text) || !text.includes(':') || !ipaddr.IPv6.isValid(text)) return undefined;
  return Buffer.from(ipaddr.IPv6.parse(text).toByteArray());
}

/** Text of a 4- or 16-byte address (IPv6 in RFC 5952 form). */
export function formatIp(buf: Buffer): string {
  if (buf.length === 4) return Array.from(buf).join('.');
  if (buf.length !== 16) return buf.toString('hex');
  const words = Array.from({ length: 8 }, (_, i) => buf.readUInt16BE(i * 2));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (ws: number[]) => ws.map((w) => w.toString(16)).join(':');
  if (best < 0) return hex(words);
  return `${hex(words.slice(0, best))}::${hex(words.slice(best + bestLen))}`;
}

export interface Cidr {
  ip: Buffer;
  prefixLength: number;
  family: 4 | 6;
}

/** `IP/LEN`, or a bare IP (a host prefix); undefined when malformed. */
export function parseCidr(text: string): Cidr | undefined {
  const [addr, len, extra] = text.split('/');
  if (extra !== undefined) return undefined;
  const ip = parseIp(addr);
  if (!ip) return undefined;
  const max = ip.length * 8;
  const prefixLength = len === undefined ? max : /^\d{1,3}$/.test(len) ? Number(len) : NaN;
  if (!(prefixLength >= 0 && prefixLength <= max)) return undefined;
  return { ip, prefixLength, family: ip.length === 4 ? 4 : 6 };
}

/** The network of a CIDR: host bits cleared, as routes are keyed. */
export function networkOf(c: Cidr): Cidr {
  const ip = Buffer.from(c.ip);
  for (let bit = c.prefixLength; bit < ip.length * 8; bit++) ip[bit >> 3] &= ~(0x80 >> (bit & 7));
  return { ...c, ip };
}

const MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

export function parseMac(text: string): Buffer | undefined {
  return MAC.test(text) ? Buffer.from(text.split(':').map((h) => parseInt(h, 16))) : undefined;
}

export function formatMac(buf: Buffer | undefined): string {
  if (!buf || buf.length === 0) return '';
  return Array.from(buf, (b) => b.toString(16).padStart(2, '0')).join(':');
}

// ---------------------------------------------------------------------------------------------
// Parsed messages of the `netlink` package -> plain data.

function decodeVxlan(data: Buffer): VxlanInfo {
  const v = ifla.parseVxlan(data);
  const port = v.port && v.port.length >= 2 ? v.port.readUInt16BE(0) : 0;
  return {
    vni: v.id ?? 0,
    local: v.local ? formatIp(v.local) : v.local6 ? formatIp(v.local6) : undefined,
    port,
    learning: Boolean(v.learning),
    proxy: Boolean(v.proxy),
    devIndex: v.link ? v.link : undefined,
  };
}

function decodeMacvlan(data: Buffer | undefined): Pick<MacvlanInfo, 'mode'> {
  const mode = data ? readU32(parseAttrs(data).get(IFLA_MACVLAN_MODE)) : undefined;
  const name = (Object.keys(MACVLAN_MODES) as MacvlanMode[]).find((m) => MACVLAN_MODES[m] === mode);
  return { mode: name };
}

export function decodeLink(msg: rt.LinkMessage): LinkInfo {
  const { data, attrs } = msg;
  const flags = data.flags ?? {};
  const info = attrs.linkinfo ? ifla.parseInfo(attrs.linkinfo) : undefined;
  const kind: LinkKind = info?.kind ?? (flags.loopback ? 'loopback' : 'device');
  const linkIndex = readU32(attrs.link);
  const link: LinkInfo = {
    name: attrs.ifname ?? '',
    index: data.index ?? 0,
    kind,
    mtu: attrs.mtu ?? 0,
    mac: formatMac(attrs.address),
    up: Boolean(flags.up),
    lowerUp: Boolean(flags.lowerUp),
  };
  if (attrs.master) link.masterIndex = attrs.master;
  if (kind === 'vxlan' && info?.data) link.vxlan = decodeVxlan(info.data);
  if (kind === 'veth') link.veth = { peerIndex: linkIndex || undefined, peerNetnsId: attrs.linkNetnsid };
  if (kind === 'macvlan') link.macvlan = { ...decodeMacvlan(info?.data), parentIndex: linkIndex || undefined, parentNetnsId: attrs.linkNetnsid };
  return link;
}

const familyOf = (af: number | undefined): 4 | 6 | undefined => (af === AF_INET ? 4 : af === AF_INET6 ? 6 : undefined);

function scopeName(scope: number | undefined): string {
  switch (scope ?? 0) {
    case 0:
      return 'universe';
    case 200:
      return 'site';
    case 253:
      return 'link';
    case 254:
      return 'host';
    case 255:
      return 'nowhere';
    default:
      return String(scope);
  }
}

export function decodeAddress(msg: rt.AddressMessage, nameOf: (index: number) => string): AddressInfo | undefined {
  const family = familyOf(msg.data.family);
  const ip = msg.attrs.local ?? msg.attrs.address;
  if (!family || !ip) return undefined;
  const index = msg.data.index ?? 0;
  const address = formatIp(ip);
  const prefixLength = msg.data.prefixlen ?? 0;
  return { ifname: nameOf(index), index, family, address, prefixLength, cidr: `${address}/${prefixLength}`, scope: scopeName(msg.data.scope) };
}

const lower = (v: string | number | undefined) => (typeof v === 'string' ? v.toLowerCase() : String(v ?? 0));

export function decodeRoute(msg: rt.RouteMessage, nameOf: (index: number) => string): RouteInfo | undefined {
  const { data, attrs } = msg;
  const family = familyOf(data.family);
  if (!family) return undefined;
  const dstLen = data.dstLen ?? 0;
  const dst = attrs.dst && dstLen > 0 ? `${formatIp(attrs.dst)}/${dstLen}` : dstLen === 0 ? 'default' : '';
  const route: RouteInfo = {
    family,
    dst,
    metric: attrs.priority ?? 0,
    table: attrs.table ?? data.table ?? 0,
    protocol: lower(data.protocol),
    scope: lower(data.scope),
    type: lower(data.type),
  };
  if (attrs.gateway) route.gateway = formatIp(attrs.gateway);
  if (attrs.oif) {
    route.devIndex = attrs.oif;
    route.dev = nameOf(attrs.oif);
  }
  if (attrs.prefsrc) route.src = formatIp(attrs.prefsrc);
  return route;
}

function states(state: rt.NeighborState | undefined): string[] {
  return Object.keys(state ?? {}).filter((k) => k !== '__unknown');
}

export function decodeNeighbour(msg: rt.NeighborMessage, nameOf: (index: number) => string): NeighbourInfo | undefined {
  const family = familyOf(msg.data.family);
  if (!family || !msg.attrs.dst) return undefined;
  const index = msg.data.ifindex ?? 0;
  const state = states(msg.data.state);
  return {
    ifname: nameOf(index),
    index,
    family,
    ip: formatIp(msg.attrs.dst),
    mac: formatMac(msg.attrs.lladdr),
    state,
    permanent: state.includes('permanent'),
  };
}

export function decodeFdb(msg: rt.NeighborMessage, nameOf: (index: number) => string): FdbEntry | undefined {
  if (msg.data.family !== AF_BRIDGE || !msg.attrs.lladdr) return undefined;
  const index = msg.data.ifindex ?? 0;
  const state = states(msg.data.state);
  const flags = msg.data.flags ?? {};
  const entry: FdbEntry = {
    ifname: nameOf(index),
    index,
    mac: formatMac(msg.attrs.lladdr),
    self: Boolean(flags.self),
    // The bridge reports its entries with NDA_MASTER but without NTF_MASTER in the flags.
    master: Boolean(flags.master) || (msg.attrs.master !== undefined && !flags.self),
    state,
    permanent: state.includes('permanent'),
    noarp: state.includes('noarp'),
  };
  if (msg.attrs.dst) entry.dst = formatIp(msg.attrs.dst);
  if (msg.attrs.vlan) entry.vlan = msg.attrs.vlan;
  if (msg.attrs.master) entry.masterIndex = msg.attrs.master;
  return entry;
}
