/**
 * A small typed layer over rtnetlink (the `netlink` package 0.3.0), so that network drivers deal
 * in names, text addresses and NetlinkErrors, never in raw buffers or "Request rejected: EEXIST".
 *
 * One `Netlink` per network namespace:
 * - `Netlink.open()` uses a socket of this process, in this process's namespace.
 * - `Netlink.inNetns(path)` works in another namespace (/run/netns/NAME, /proc/PID/ns/net). A
 *   netlink socket lives in the namespace of the thread that made it; Node has no setns(), and the
 *   `netlink` addon can neither adopt an fd made elsewhere nor take a namespace option. So the
 *   requests for a foreign namespace are formatted here and sent by the agent's one namespace
 *   helper (ops-transport.ts, runtime/netns-ops.ts: a small native process that enters the
 *   namespace for each request), with no process per namespace; a path naming our own namespace
 *   gets a local socket. (IFLA_TARGET_NETNSID would reach links and addresses of another
 *   namespace from here, but not routes, neighbours or FDB entries.) A handle costs nothing to
 *   open or keep; close() it all the same when done.
 *
 * Kernel and package behaviour this relies on (measured on 6.18 with netlink 0.3.0):
 * - IFLA_LINKINFO is a raw buffer in the package; encode.ts builds and reads it.
 * - RTM_GETLINK honours IFLA_TARGET_NETNSID (used to check a veth peer in another namespace);
 *   RTM_SETLINK answers EINVAL to it, so a peer's MTU is changed from inside its namespace.
 * - A bridge cannot move to another namespace (EINVAL): it is created where it is used.
 * - The bridge reports its FDB entries with NDA_MASTER but without NTF_MASTER.
 *
 * Every `ensure*` compares what the kernel has with what is wanted and changes only the
 * difference, so calling it again changes nothing (same ifindex). A link of the wanted name but
 * another kind is a Conflict (EEXIST), never silently deleted; a VXLAN device with another VNI,
 * local address, port, learning or underlay device, a veth whose peer is not the wanted one, and a
 * macvlan on another parent or mode are deleted and created again. `delete*` of something already
 * gone succeeds. Requests on one socket are serialized, because the kernel refuses a second dump
 * on a socket while one is running (EBUSY).
 */
import { VXLAN_PORT } from '../../../services/common/vxlan';
import { Mutex } from 'async-mutex';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { FlagsNew, rt } from 'netlink';
import {
  AF_BRIDGE,
  AF_INET,
  AF_INET6,
  AF_UNSPEC,
  Cidr,
  RTM_GETNSID,
  RTM_NEWNSID,
  RTM_SETLINK,
  RTN_UNICAST,
  RT_TABLE_MAIN,
  bridgeLinkInfo,
  bridgePortIsolatedRequest,
  decodeAddress,
  decodeFdb,
  decodeLink,
  decodeNeighbour,
  decodeRoute,
  formatIp,
  getNsidRequest,
  isMacvlanMode,
  macvlanLinkInfo,
  networkOf,
  parseCidr,
  parseIp,
  parseMac,
  parseNsidReply,
  u32,
  vethLinkInfo,
  vxlanLinkInfo,
} from './encode';
import { NetlinkError, errnoOf, invalidNetlinkArgument, netlinkError } from './errors';
import { OpsTransport } from './ops-transport';
import { LocalTransport, REQUEST_TIMEOUT_MS, RtnlArgs, RtnlMethod, RtnlResult, RtnlTransport } from './transport';
import type {
  AddressInfo,
  BridgeOptions,
  FdbEntry,
  FdbOptions,
  LinkInfo,
  MacvlanMode,
  NeighbourInfo,
  NeighbourOptions,
  RouteInfo,
  RouteSpec,
  VethOptions,
  VxlanInfo,
  VxlanOptions,
} from './types';

export { NetlinkError } from './errors';
export type { NetlinkErrno } from './errors';
export type * from './types';

const CREATE_EXCL = FlagsNew.CREATE | FlagsNew.EXCL;
const CREATE_REPLACE = FlagsNew.CREATE | FlagsNew.REPLACE;

const IFNAME = /^[^\s/:]{1,15}$/;

function checkName(operation: string, name: string): void {
  if (!IFNAME.test(name) || name === '.' || name === '..') throw invalidNetlinkArgument(operation, `invalid interface name ${JSON.stringify(name)}`);
}

function checkMtu(operation: string, mtu: number | undefined): void {
  if (mtu !== undefined && !(Number.isInteger(mtu) && mtu >= 68 && mtu <= 65535)) throw invalidNetlinkArgument(operation, `invalid MTU ${mtu}`);
}

function macOf(operation: string, mac: string): Buffer {
  const buf = parseMac(mac);
  if (!buf) throw invalidNetlinkArgument(operation, `invalid MAC address ${JSON.stringify(mac)}`);
  return buf;
}

function ipOf(operation: string, ip: string, family?: 4): Buffer {
  const buf = parseIp(ip);
  if (!buf || (family === 4 && buf.length !== 4)) throw invalidNetlinkArgument(operation, `invalid ${family === 4 ? 'IPv4 ' : 'IP '}address ${JSON.stringify(ip)}`);
  return buf;
}

function cidrOf(operation: string, text: string): Cidr {
  const c = parseCidr(text);
  if (!c) throw invalidNetlinkArgument(operation, `invalid CIDR ${JSON.stringify(text)}`);
  return c;
}

const af = (family: 4 | 6) => (family === 4 ? AF_INET : AF_INET6);
const sameIp = (a: string | undefined, b: string | undefined) => (a === undefined || b === undefined ? a === b : parseIp(a)?.equals(parseIp(b) ?? Buffer.alloc(0)) === true);

/** Why an existing VXLAN device is not the wanted one, or '' when it is. */
function vxlanMismatch(have: VxlanInfo | undefined, want: Required<Omit<VxlanOptions, 'mtu' | 'dev'>> & { devIndex?: number }): string {
  if (!have) return 'no VXLAN attributes';
  if (have.vni !== want.vni) return `vni ${have.vni} vs ${want.vni}`;
  if (!sameIp(have.local, want.local)) return `local ${have.local ?? 'unset'} vs ${want.local}`;
  if (have.port !== want.port) return `port ${have.port} vs ${want.port}`;
  if (have.learning !== want.learning) return `learning ${have.learning} vs ${want.learning}`;
  if (have.proxy !== want.proxy) return `proxy ${have.proxy} vs ${want.proxy}`;
  if (want.devIndex !== undefined && have.devIndex !== want.devIndex) return `dev ${have.devIndex ?? 'unset'} vs ${want.devIndex}`;
  return '';
}

async function sameFile(a: string, b: string): Promise<boolean> {
  const [sa, sb] = await Promise.all([stat(a), stat(b)]).catch(() => [undefined, undefined]);
  return Boolean(sa && sb && sa.dev === sb.dev && sa.ino === sb.ino);
}

/** One queue per socket, whichever handles share it (see the top of this file). */
const queues = new WeakMap<RtnlTransport, Mutex>();

export class Netlink {
  private closed = false;
  private readonly queue: Mutex;

  private constructor(
    private readonly transport: RtnlTransport,
    /** The namespace file this handle works in; undefined for the process's own. */
    readonly netns: string | undefined,
    private readonly release: () => void = () => transport.close(),
  ) {
    let queue = queues.get(transport);
    if (!queue) {
      queue = new Mutex();
      queues.set(transport, queue);
    }
    this.queue = queue;
  }

  /** Rtnetlink in this process's network namespace. */
  static open(): Netlink {
    try {
      return new Netlink(new LocalTransport(), undefined);
    } catch (err) {
      throw netlinkError('opening netlink socket', err);
    }
  }

  /** Rtnetlink in the network namespace at `path` (/run/netns/NAME, /proc/PID/ns/net). */
  static async inNetns(path: string): Promise<Netlink> {
    const operation = `opening netlink in netns ${path}`;
    try {
      await stat(path);
    } catch (err) {
      throw netlinkError(operation, err);
    }
    if (await sameFile(path, '/proc/self/ns/net')) {
      try {
        return new Netlink(new LocalTransport(), path);
      } catch (err) {
        throw netlinkError(operation, err);
      }
    }
    try {
      return new Netlink(await OpsTransport.open(path), path);
    } catch (err) {
      throw netlinkError(operation, err);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.release();
  }

  /**
   * A UDP socket bound and a TCP listener on `addr`:`port` in this handle's namespace (bound
   * there by the namespace helper, lo made up first), for this process to serve.
   */
  async openSockets(addr: string, port: number): Promise<{ udp: UdpSocket; tcp: Server }> {
    if (this.transport instanceof OpsTransport) {
      const udp = await this.transport.bindUdp(addr, port);
      try {
        return { udp, tcp: await this.transport.listenTcp(addr, port) };
      } catch (err) {
        udp.close();
        throw err;
      }
    }
    const udp = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(port, addr, () => resolve());
    });
    const tcp = createServer();
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen({ host: addr, port, exclusive: true }, () => resolve());
      });
    } catch (err) {
      udp.close();
      throw err;
    }
    return { udp, tcp };
  }

  // ---------------------------------------------------------------------------------------------
  // Links

  async listLinks(): Promise<LinkInfo[]> {
    const msgs = await this.req('listing links', 'getLinks', undefined, undefined, this.opts());
    return msgs.map(decodeLink);
  }

  /** The link of that name, or undefined. */
  async getLink(name: string): Promise<LinkInfo | undefined> {
    checkName(`looking up link ${name}`, name);
    try {
      const [msg] = await this.exec('getLink', {}, { ifname: name }, this.opts());
      return msg ? decodeLink(msg) : undefined;
    } catch (err) {
      if (errnoOf(err) === 'ENODEV') return undefined;
      throw netlinkError(`looking up link ${name}`, err);
    }
  }

  async ensureBridge(name: string, options: BridgeOptions = {}): Promise<LinkInfo> {
    const operation = `creating bridge ${name}`;
    checkName(operation, name);
    checkMtu(operation, options.mtu);
    const mac = options.mac === undefined ? undefined : macOf(operation, options.mac);
    let link = await this.getLink(name);
    if (link && link.kind !== 'bridge') throw new NetlinkError(operation, 'EEXIST', { detail: `a ${link.kind} link has that name` });
    if (!link) {
      await this.create(operation, { ifname: name, address: mac, linkinfo: bridgeLinkInfo() });
      link = await this.requireLink(operation, name);
    }
    // The MTU is set after creation, so the bridge keeps it instead of following its ports'.
    return this.applyLinkSettings(link, { mtu: options.mtu, mac: options.mac });
  }

  /** A VXLAN device; one with another VNI, local address, port, learning or dev is replaced. */
  async ensureVxlan(name: string, options: VxlanOptions): Promise<LinkInfo> {
    const operation = `creating vxlan ${name}`;
    checkName(operation, name);
    const want = Object.freeze({
      vni: options.vni,
      local: options.local,
      port: options.port ?? VXLAN_PORT,
      learning: options.learning ?? false,
      proxy: options.proxy ?? false,
    });
    if (!(Number.isInteger(want.vni) && want.vni > 0 && want.vni < 1 << 24)) throw invalidNetlinkArgument(operation, `invalid VNI ${want.vni}`);
    if (!(Number.isInteger(want.port) && want.port > 0 && want.port < 65536)) throw invalidNetlinkArgument(operation, `invalid port ${want.port}`);
    checkMtu(operation, options.mtu);
    const local = ipOf(operation, want.local, 4);
    const devIndex = options.dev === undefined ? undefined : (await this.requireLink(operation, options.dev)).index;
    let link = await this.getLink(name);
    if (link && link.kind !== 'vxlan') throw new NetlinkError(operation, 'EEXIST', { detail: `a ${link.kind} link has that name` });
    if (link) {
      const mismatch = vxlanMismatch(link.vxlan, { ...want, devIndex });
      if (!mismatch) return this.applyLinkSettings(link, { mtu: options.mtu });
      await this.deleteIndex(`replacing vxlan ${name} (${mismatch})`, link.index);
    }
    await this.create(operation, {
      ifname: name,
      mtu: options.mtu,
      linkinfo: vxlanLinkInfo({ vni: want.vni, local, port: want.port, learning: want.learning, proxy: want.proxy, devIndex }),
    });
    link = await this.requireLink(operation, name);
    return link;
  }

  /**
   * A veth pair `name` <-> `peerName`, the peer created directly in `peerNetns` when given (by fd).
   * Returns this side. An existing `name` whose peer has another name or namespace is replaced.
   */
  async ensureVethPair(name: string, peerName: string, options: VethOptions = {}): Promise<LinkInfo> {
    const operation = `creating veth pair ${name}/${peerName}`;
    checkName(operation, name);
    checkName(operation, peerName);
    checkMtu(operation, options.mtu);
    const peerNetns = options.peerNetns && !(await sameFile(options.peerNetns, this.netns ?? '/proc/self/ns/net')) ? options.peerNetns : undefined;
    let link = await this.getLink(name);
    if (link && link.kind !== 'veth') throw new NetlinkError(operation, 'EEXIST', { detail: `a ${link.kind} link has that name` });
    if (link) {
      const peer = await this.vethPeer(operation, link, peerNetns);
      if (peer && peer.name === peerName) {
        if (options.mtu !== undefined && peer.mtu !== options.mtu) await this.setPeerMtu(peerName, peerNetns, options.mtu);
        return this.applyLinkSettings(link, { mtu: options.mtu });
      }
      await this.deleteIndex(`replacing veth ${name} (peer is not ${peerName}${peerNetns ? ` in ${peerNetns}` : ''})`, link.index);
    }
    await this.withNetnsFd(operation, peerNetns, (netnsFd) =>
      this.create(operation, { ifname: name, mtu: options.mtu, linkinfo: vethLinkInfo({ name: peerName, mtu: options.mtu, netnsFd }) }),
    );
    link = await this.requireLink(operation, name);
    return link;
  }

  async ensureMacvlan(name: string, parent: string, mode: MacvlanMode = 'bridge'): Promise<LinkInfo> {
    const operation = `creating macvlan ${name} on ${parent}`;
    checkName(operation, name);
    if (!isMacvlanMode(mode)) throw invalidNetlinkArgument(operation, `invalid macvlan mode ${JSON.stringify(mode)}`);
    const lower = await this.requireLink(operation, parent);
    let link = await this.getLink(name);
    if (link && link.kind !== 'macvlan') throw new NetlinkError(operation, 'EEXIST', { detail: `a ${link.kind} link has that name` });
    if (link) {
      const m = link.macvlan;
      if (m && m.parentIndex === lower.index && m.parentNetnsId === undefined && m.mode === mode) return link;
      await this.deleteIndex(`replacing macvlan ${name} (parent or mode differs)`, link.index);
    }
    await this.create(operation, { ifname: name, link: u32(lower.index), linkinfo: macvlanLinkInfo(mode) });
    link = await this.requireLink(operation, name);
    return link;
  }

  /** Makes `name` a port of `bridgeName`, or of no bridge with null. */
  async setMaster(name: string, bridgeName: string | null): Promise<void> {
    const operation = bridgeName === null ? `releasing ${name} from its bridge` : `adding ${name} to bridge ${bridgeName}`;
    const link = await this.requireLink(operation, name);
    if (bridgeName === null) {
      if (link.masterIndex !== undefined) await this.req(operation, 'setLink', { index: link.index }, { master: 0 }, this.opts());
      return;
    }
    const bridge = await this.requireLink(operation, bridgeName);
    if (link.masterIndex !== bridge.index) await this.req(operation, 'setLink', { index: link.index }, { master: bridge.index }, this.opts());
  }

  /** Sets the bridge port `name` isolated or not (IFLA_BRPORT_ISOLATED), as `bridge link set dev NAME isolated on|off` does. */
  async setBridgePortIsolated(name: string, isolated: boolean): Promise<void> {
    const operation = `setting bridge port ${name} isolated ${isolated ? 'on' : 'off'}`;
    const link = await this.requireLink(operation, name);
    if (this.closed) throw new NetlinkError(operation, 'EBADF', { detail: 'the netlink handle is closed' });
    try {
      await this.queue.runExclusive(() => this.transport.raw(RTM_SETLINK, bridgePortIsolatedRequest(link.index, isolated)));
    } catch (err) {
      throw netlinkError(operation, err);
    }
  }

  async setUp(name: string): Promise<void> {
    const operation = `setting ${name} up`;
    const link = await this.requireLink(operation, name);
    if (!link.up) await this.req(operation, 'setLink', { index: link.index, change: { up: true }, flags: { up: true } }, {}, this.opts());
  }

  async setDown(name: string): Promise<void> {
    const operation = `setting ${name} down`;
    const link = await this.requireLink(operation, name);
    if (link.up) await this.req(operation, 'setLink', { index: link.index, change: { up: true }, flags: {} }, {}, this.opts());
  }

  async setMtu(name: string, mtu: number): Promise<void> {
    const operation = `setting MTU of ${name} to ${mtu}`;
    checkMtu(operation, mtu);
    await this.applyLinkSettings(await this.requireLink(operation, name), { mtu });
  }

  async setMac(name: string, mac: string): Promise<void> {
    const operation = `setting MAC of ${name} to ${mac}`;
    macOf(operation, mac);
    await this.applyLinkSettings(await this.requireLink(operation, name), { mac });
  }

  /**
   * Renames a link; done already when `name` is gone and `newName` exists. An up link is taken
   * down for the rename and brought up again (the kernel refuses to rename it up: EBUSY).
   */
  async rename(name: string, newName: string): Promise<void> {
    const operation = `renaming ${name} to ${newName}`;
    checkName(operation, newName);
    if (name === newName) return;
    const link = await this.getLink(name);
    if (!link) {
      if (await this.getLink(newName)) return;
      throw new NetlinkError(operation, 'ENODEV');
    }
    try {
      await this.exec('setLink', { index: link.index }, { ifname: newName }, this.opts());
      return;
    } catch (err) {
      if (errnoOf(err) !== 'EBUSY' || !link.up) throw netlinkError(operation, err);
    }
    await this.req(operation, 'setLink', { index: link.index, change: { up: true }, flags: {} }, {}, this.opts());
    try {
      await this.req(operation, 'setLink', { index: link.index }, { ifname: newName }, this.opts());
    } finally {
      await this.req(operation, 'setLink', { index: link.index, change: { up: true }, flags: { up: true } }, {}, this.opts());
    }
  }

  /** Deletes a link (a veth takes its peer with it); a missing link is fine. */
  async deleteLink(name: string): Promise<void> {
    const operation = `deleting link ${name}`;
    checkName(operation, name);
    const link = await this.getLink(name);
    if (link) await this.deleteIndex(operation, link.index);
  }

  /** Moves a link into the network namespace at `netnsPath` (by fd); it keeps its name there. */
  async moveToNetns(name: string, netnsPath: string): Promise<void> {
    const operation = `moving ${name} to netns ${netnsPath}`;
    const link = await this.requireLink(operation, name);
    await this.withNetnsFd(operation, netnsPath, (netNsFd) => this.req(operation, 'setLink', { index: link.index }, { netNsFd }, this.opts()));
  }

  // ---------------------------------------------------------------------------------------------
  // Addresses

  async listAddresses(ifname?: string): Promise<AddressInfo[]> {
    const operation = ifname ? `listing addresses of ${ifname}` : 'listing addresses';
    const index = ifname === undefined ? undefined : (await this.requireLink(operation, ifname)).index;
    const [names, msgs] = [await this.names(operation), await this.req(operation, 'getAddresses', undefined, undefined, this.opts())];
    return msgs
      .map((m) => decodeAddress(m, (i) => names.get(i) ?? ''))
      .filter((a): a is AddressInfo => a !== undefined && (index === undefined || a.index === index));
  }

  /** The address `cidr` (IP/LEN) on `ifname`; the same IP with another prefix length is replaced. */
  async ensureAddress(ifname: string, cidr: string): Promise<void> {
    const operation = `adding address ${cidr} to ${ifname}`;
    const c = cidrOf(operation, cidr);
    const link = await this.requireLink(operation, ifname);
    const ip = formatIp(c.ip);
    const existing = (await this.listAddresses(ifname)).find((a) => a.family === c.family && a.address === ip);
    if (existing?.prefixLength === c.prefixLength) return;
    if (existing) await this.removeAddress(operation, link.index, cidrOf(operation, existing.cidr));
    try {
      await this.exec('newAddress', { family: af(c.family), prefixlen: c.prefixLength, index: link.index }, { local: c.ip, address: c.ip }, this.opts(CREATE_EXCL));
    } catch (err) {
      if (errnoOf(err) !== 'EEXIST') throw netlinkError(operation, err);
    }
  }

  /** Removes the address; a missing address or link is fine. */
  async deleteAddress(ifname: string, cidr: string): Promise<void> {
    const operation = `deleting address ${cidr} from ${ifname}`;
    const c = cidrOf(operation, cidr);
    const link = await this.getLink(ifname);
    if (link) await this.removeAddress(operation, link.index, c);
  }

  // ---------------------------------------------------------------------------------------------
  // Routes

  /** Routes of one table (default main), IPv4 and IPv6 unless `family` says. */
  async listRoutes(filter: { table?: number; family?: 4 | 6 } = {}): Promise<RouteInfo[]> {
    const operation = 'listing routes';
    const table = filter.table ?? RT_TABLE_MAIN;
    const [names, msgs] = [await this.names(operation), await this.req(operation, 'getRoutes', undefined, undefined, this.opts())];
    return msgs
      .map((m) => decodeRoute(m, (i) => names.get(i) ?? ''))
      .filter((r): r is RouteInfo => r !== undefined && r.table === table && (filter.family === undefined || r.family === filter.family));
  }

  /** A route to `dst` (in its table, at its metric) via `gateway` and/or `dev`; a different one is replaced. */
  async ensureRoute(route: RouteSpec): Promise<void> {
    const operation = `adding route ${route.dst}${route.gateway ? ` via ${route.gateway}` : ''}${route.dev ? ` dev ${route.dev}` : ''}`;
    const r = await this.routeRequest(operation, route);
    const existing = (await this.listRoutes({ table: r.table, family: r.family })).find((x) => x.dst === r.dst && x.metric === r.metric && x.type === 'unicast');
    if (
      existing &&
      sameIp(existing.gateway, route.gateway) &&
      (r.oif === undefined || existing.devIndex === r.oif) &&
      (route.src === undefined || sameIp(existing.src, route.src))
    ) {
      return;
    }
    await this.req(operation, 'newRoute', r.data, r.attrs, this.opts(CREATE_REPLACE));
  }

  /** Removes the route to `dst` (matching gateway and dev when given); a missing route is fine. */
  async deleteRoute(route: RouteSpec): Promise<void> {
    const operation = `deleting route ${route.dst}`;
    let r: Awaited<ReturnType<Netlink['routeRequest']>>;
    try {
      r = await this.routeRequest(operation, route, true);
    } catch (err) {
      if (err instanceof NetlinkError && err.errno === 'ENODEV') return;
      throw err;
    }
    try {
      await this.exec('delRoute', { ...r.data, scope: 'NOWHERE', protocol: undefined, type: undefined }, r.attrs, this.opts());
    } catch (err) {
      if (errnoOf(err) !== 'ESRCH') throw netlinkError(operation, err);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Neighbours (ARP / NDP)

  async listNeighbours(ifname: string): Promise<NeighbourInfo[]> {
    const operation = `listing neighbours of ${ifname}`;
    const link = await this.requireLink(operation, ifname);
    const msgs = await this.req(operation, 'getNeighbors', { family: AF_UNSPEC }, undefined, this.opts());
    return msgs
      .map((m) => decodeNeighbour(m, () => link.name))
      .filter((n): n is NeighbourInfo => n !== undefined && n.index === link.index);
  }

  /** `ip` -> `mac` on `ifname`, permanent unless told otherwise. */
  async ensureNeighbour(ifname: string, ip: string, mac: string, options: NeighbourOptions = {}): Promise<void> {
    const operation = `adding neighbour ${ip} -> ${mac} on ${ifname}`;
    const permanent = options.permanent ?? true;
    const dst = ipOf(operation, ip);
    const lladdr = macOf(operation, mac);
    const link = await this.requireLink(operation, ifname);
    const text = formatIp(dst);
    const existing = (await this.listNeighbours(ifname)).find((n) => n.ip === text);
    if (existing && existing.mac === mac.toLowerCase() && existing.permanent === permanent) return;
    await this.req(
      operation,
      'newNeighbor',
      { family: dst.length === 4 ? AF_INET : AF_INET6, ifindex: link.index, state: permanent ? { permanent: true } : { reachable: true }, type: RTN_UNICAST },
      { dst, lladdr },
      this.opts(CREATE_REPLACE),
    );
  }

  /** Removes the neighbour entry; a missing entry or link is fine. */
  async deleteNeighbour(ifname: string, ip: string): Promise<void> {
    const operation = `deleting neighbour ${ip} on ${ifname}`;
    const dst = ipOf(operation, ip);
    const link = await this.getLink(ifname);
    if (!link) return;
    try {
      await this.exec('delNeighbor', { family: dst.length === 4 ? AF_INET : AF_INET6, ifindex: link.index }, { dst }, this.opts());
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') throw netlinkError(operation, err);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Bridge forwarding database

  /** FDB entries of `ifname`: its own (`self`, e.g. a VXLAN device's) and its bridge's for it (`master`). */
  async listFdb(ifname: string): Promise<FdbEntry[]> {
    const operation = `listing fdb of ${ifname}`;
    const link = await this.requireLink(operation, ifname);
    const msgs = await this.req(operation, 'getNeighbors', { family: AF_BRIDGE }, undefined, this.opts());
    return msgs.map((m) => decodeFdb(m, () => link.name)).filter((e): e is FdbEntry => e !== undefined && e.index === link.index);
  }

  /**
   * `mac` on `ifname`: with `self`, in the device's own table (a VXLAN device: to the remote VTEP
   * `dst`), NUD_PERMANENT; otherwise in the table of the bridge `ifname` is a port of, NUD_NOARP.
   */
  async ensureFdb(ifname: string, mac: string, options: FdbOptions): Promise<void> {
    const operation = `adding fdb entry ${mac}${options.dst ? ` dst ${options.dst}` : ''} on ${ifname} ${options.self ? 'self' : 'master'}`;
    const lladdr = macOf(operation, mac);
    const dst = options.dst === undefined ? undefined : ipOf(operation, options.dst, 4);
    const link = await this.requireLink(operation, ifname);
    const want = mac.toLowerCase();
    const entries = (await this.listFdb(ifname)).filter((e) => e.mac === want && (options.self ? e.self : e.master));
    const ok = options.self
      ? entries.some((e) => e.permanent && sameIp(e.dst, options.dst))
      : entries.some((e) => e.noarp && !e.permanent);
    if (ok) return;
    await this.req(
      operation,
      'newNeighbor',
      {
        family: AF_BRIDGE,
        ifindex: link.index,
        state: options.self ? { permanent: true } : { noarp: true },
        flags: options.self ? { self: true } : { master: true },
      },
      dst ? { lladdr, dst } : { lladdr },
      this.opts(CREATE_REPLACE),
    );
  }

  /** Removes the FDB entry; a missing entry or link is fine. */
  async deleteFdb(ifname: string, mac: string, options: FdbOptions): Promise<void> {
    const operation = `deleting fdb entry ${mac} on ${ifname} ${options.self ? 'self' : 'master'}`;
    const lladdr = macOf(operation, mac);
    const dst = options.dst === undefined ? undefined : ipOf(operation, options.dst, 4);
    const link = await this.getLink(ifname);
    if (!link) return;
    try {
      await this.exec(
        'delNeighbor',
        { family: AF_BRIDGE, ifindex: link.index, flags: options.self ? { self: true } : { master: true } },
        dst ? { lladdr, dst } : { lladdr },
        this.opts(),
      );
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') throw netlinkError(operation, err);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Internals

  private opts(flags = 0) {
    return { flags, timeout: REQUEST_TIMEOUT_MS };
  }

  /** One request, after those already queued on this socket. */
  private exec<M extends RtnlMethod>(method: M, ...args: RtnlArgs<M>): Promise<RtnlResult<M>> {
    if (this.closed) return Promise.reject(Object.assign(new Error('the netlink handle is closed'), { code: 'EBADF' }));
    return this.queue.runExclusive(() => this.transport.call(method, ...args));
  }

  /** exec(), with failures as NetlinkErrors naming the operation. */
  private async req<M extends RtnlMethod>(operation: string, method: M, ...args: RtnlArgs<M>): Promise<RtnlResult<M>> {
    try {
      return await this.exec(method, ...args);
    } catch (err) {
      throw netlinkError(operation, err);
    }
  }

  private async requireLink(operation: string, name: string): Promise<LinkInfo> {
    checkName(operation, name);
    const link = await this.getLink(name);
    if (!link) throw new NetlinkError(operation, 'ENODEV', { detail: `no link ${name}` });
    return link;
  }

  private async names(operation: string): Promise<Map<number, string>> {
    const links = await this.req(operation, 'getLinks', undefined, undefined, this.opts());
    return new Map(links.map((m) => [m.data.index ?? 0, m.attrs.ifname ?? '']));
  }

  private async create(operation: string, attrs: RtnlArgs<'newLink'>[1]): Promise<void> {
    await this.req(operation, 'newLink', {}, attrs, this.opts(CREATE_EXCL));
  }

  private async deleteIndex(operation: string, index: number): Promise<void> {
    try {
      await this.exec('delLink', { index }, {}, this.opts());
    } catch (err) {
      if (errnoOf(err) !== 'ENODEV') throw netlinkError(operation, err);
    }
  }

  /** Sets what differs of MTU and MAC; returns the link as it is afterwards. */
  private async applyLinkSettings(link: LinkInfo, want: { mtu?: number; mac?: string }): Promise<LinkInfo> {
    let changed = false;
    if (want.mtu !== undefined && link.mtu !== want.mtu) {
      await this.req(`setting MTU of ${link.name} to ${want.mtu}`, 'setLink', { index: link.index }, { mtu: want.mtu }, this.opts());
      changed = true;
    }
    if (want.mac !== undefined && link.mac !== want.mac.toLowerCase()) {
      const operation = `setting MAC of ${link.name} to ${want.mac}`;
      await this.req(operation, 'setLink', { index: link.index }, { address: macOf(operation, want.mac) }, this.opts());
      changed = true;
    }
    return changed ? this.requireLink(`reading link ${link.name}`, link.name) : link;
  }

  private async removeAddress(operation: string, index: number, c: Cidr): Promise<void> {
    try {
      await this.exec('delAddress', { family: af(c.family), prefixlen: c.prefixLength, index }, { local: c.ip, address: c.ip }, this.opts());
    } catch (err) {
      const errno = errnoOf(err);
      if (errno !== 'EADDRNOTAVAIL' && errno !== 'ENODEV') throw netlinkError(operation, err);
    }
  }

  /** Opens the namespace file in the socket's process for `fn`, and closes it after. */
  private async withNetnsFd<T>(operation: string, path: string | undefined, fn: (fd: number | undefined) => Promise<T>): Promise<T> {
    if (path === undefined) return fn(undefined);
    let fd: number;
    try {
      fd = await this.transport.openNetns(path);
    } catch (err) {
      throw netlinkError(`${operation}: opening netns ${path}`, err);
    }
    try {
      return await fn(fd);
    } finally {
      await this.transport.closeFd(fd).catch(() => undefined);
    }
  }

  /**
   * RTM_SETLINK ignores IFLA_TARGET_NETNSID (EINVAL), unlike RTM_GETLINK: a peer in another
   * namespace has its MTU changed through a handle in that namespace (rare: MTUs seldom change).
   */
  private async setPeerMtu(peerName: string, peerNetns: string | undefined, mtu: number): Promise<void> {
    if (peerNetns === undefined) return this.setMtu(peerName, mtu);
    const there = await Netlink.inNetns(peerNetns);
    try {
      await there.setMtu(peerName, mtu);
    } finally {
      there.close();
    }
  }

  /** The nsid this namespace gives the one at `path`. */
  private async nsidOf(operation: string, path: string): Promise<number | undefined> {
    return this.withNetnsFd(operation, path, async (fd) => {
      const queued = this.queue.runExclusive(() => this.transport.raw(RTM_GETNSID, getNsidRequest(fd as number)));
      try {
        const replies = await queued;
        const reply = replies.find((r) => r.type === RTM_NEWNSID);
        return reply ? parseNsidReply(reply.data) : undefined;
      } catch (err) {
        throw netlinkError(`${operation}: looking up nsid of ${path}`, err);
      }
    });
  }

  /** The peer of a veth, when it is in the wanted namespace (this one when `peerNetns` is undefined). */
  private async vethPeer(operation: string, link: LinkInfo, peerNetns: string | undefined): Promise<{ name: string; index: number; mtu: number; nsid?: number } | undefined> {
    const peerIndex = link.veth?.peerIndex;
    if (!peerIndex) return undefined;
    let nsid: number | undefined;
    if (peerNetns === undefined) {
      if (link.veth?.peerNetnsId !== undefined) return undefined;
    } else {
      nsid = await this.nsidOf(operation, peerNetns);
      if (nsid === undefined || link.veth?.peerNetnsId !== nsid) return undefined;
    }
    try {
      const [msg] = await this.exec('getLink', { index: peerIndex }, nsid === undefined ? {} : { targetNetnsid: nsid }, this.opts());
      const peer = msg ? decodeLink(msg) : undefined;
      return peer && peer.kind === 'veth' ? { name: peer.name, index: peer.index, mtu: peer.mtu, nsid } : undefined;
    } catch (err) {
      if (errnoOf(err) === 'ENODEV') return undefined;
      throw netlinkError(`${operation}: looking up the peer of ${link.name}`, err);
    }
  }

  private async routeRequest(operation: string, route: RouteSpec, forDelete = false) {
    let family: 4 | 6;
    let dstLen: number;
    let dstIp: Buffer | undefined;
    if (route.dst === 'default') {
      const gw = route.gateway === undefined ? undefined : ipOf(operation, route.gateway);
      family = gw && gw.length === 16 ? 6 : 4;
      dstLen = 0;
    } else {
      const c = networkOf(cidrOf(operation, route.dst));
      family = c.family;
      dstLen = c.prefixLength;
      dstIp = dstLen > 0 ? c.ip : undefined;
    }
    const gateway = route.gateway === undefined ? undefined : ipOf(operation, route.gateway);
    const src = route.src === undefined ? undefined : ipOf(operation, route.src);
    if ((gateway && gateway.length !== (family === 4 ? 4 : 16)) || (src && src.length !== (family === 4 ? 4 : 16))) {
      throw invalidNetlinkArgument(operation, 'addresses of different families');
    }
    if (!forDelete && !gateway && route.dev === undefined) throw invalidNetlinkArgument(operation, 'a route needs a gateway or a dev');
    const metric = route.metric ?? 0;
    const table = route.table ?? RT_TABLE_MAIN;
    const oif = route.dev === undefined ? undefined : (await this.requireLink(operation, route.dev)).index;
    const data: rt.Route = {
      family: af(family),
      dstLen,
      table: table < 256 ? table : 252,
      protocol: 'STATIC',
      scope: gateway ? 'UNIVERSE' : 'LINK',
      type: 'UNICAST',
    };
    const attrs: rt.RouteAttrs = {};
    if (dstIp) attrs.dst = dstIp;
    if (gateway) attrs.gateway = gateway;
    if (oif !== undefined) attrs.oif = oif;
    if (src) attrs.prefsrc = src;
    if (metric) attrs.priority = metric;
    if (table >= 256) attrs.table = table;
    const dst = dstLen === 0 ? 'default' : `${formatIp(dstIp as Buffer)}/${dstLen}`;
    return { family, dst, metric, table, oif, data, attrs };
  }
}
