/**
 * The host side of bridge networks: per bridge network with tasks on this host, a Linux bridge
 * `<prefix><first 8 characters of the network id>` in the host's network namespace with the
 * network's gateway address, up; per task attachment a veth pair (host end `<prefix>-<task id
 * part><index>` on that bridge, task end `eth<i>` in the task's namespace with its address and MAC,
 * up) and, when the task's first network is a non-internal bridge, its default route via the
 * gateway. One nftables table (`inet swarmlet-bridge`, see plans/bridge-nft.ts) masquerades what
 * leaves a non-internal bridge network for a non-bridge interface and drops traffic between two
 * different bridges; IPv4 forwarding is enabled in the host namespace.
 *
 * The gateway bridge (as docker_gwbridge): a task whose attachments are all overlay networks (at
 * least one not internal) gets one more veth, `eth<number of attachments>`, on the host-local
 * bridge `<prefix>-gw` (default subnet 172.18.0.0/16, gateway .1, NAT out like a bridge network),
 * with the lowest address free on this host and its default route via the gateway. The address is
 * kept in the kernel: the host end's MAC is 06:42 and the address's four octets (the task end's is
 * 02:42 and the same), so it is read back after an agent restart. The bridge's ports are isolated
 * from each other (overlays are never bridged together through it) and the nft table drops what
 * it forwards to the swarmlet bridges or back to itself.
 *
 * reconcile() makes the host match the bridge networks wanted here and removes the bridges (and
 * our veths on them) of networks no longer wanted, and the gateway bridge when no task here needs
 * it. All calls are serialized and idempotent.
 */
import { metrics, timed } from '../../services/metrics/metrics';
import { failedPrecondition, invalidArgument } from '../../services/common/errors';
import { containsAddress, formatCidr, formatIpv4, isIPv4, macOfIpv4, readCidr } from '../../services/common/cidr';
import { Logger, componentLogger } from '../../services/common/logger';
import type { NetworkAttachment, Task } from '../../services/gen/swarmlet/v1/types';
import type { ContainerGateway, NetworkDriver, WantedNetworks } from './driver';
import { Netlink } from './netlink';
import { enableForwarding, runNft } from './netns-run';
import { HostNetlinkDriver } from './host-netlink-driver';
import { parseMac } from './netlink/encode';
import { BridgeNftNetwork, renderBridgeNft, renderBridgeNftRemoval } from './plans/bridge-nft';
import { checkGatewayBridge, checkTaskPort } from './plans/port-check';

export interface BridgeDriverOptions {
  log: Logger;
  /** Path of the host's network namespace; default: this process's. */
  hostNetns?: string;
  /** Name prefix of the bridges and host-side veths; default 'swb' (at most 7 characters). */
  namePrefix?: string;
  /** IPv4 subnet of the gateway bridge (its gateway is the first address); default 172.18.0.0/16. */
  gatewaySubnet?: string;
}

/** A bridge network as the driver takes it. */
export interface BridgeNetwork {
  networkId: string;
  /** IPv4 CIDR of the network, e.g. 172.18.0.0/24. */
  subnet: string;
  /** The bridge's address (without prefix length); '' for none. */
  gateway: string;
  internal: boolean;
  /** 0: the kernel's default. */
  mtu: number;
}

const PREFIX = /^[a-z][a-z0-9]{0,6}$/;
/** The same rules are written again at most this often (they may have been flushed by hand). */
const NFT_REFRESH_MS = 10000;

/** The network address of an IPv4 CIDR (`10.1.2.5/24` -> `10.1.2.0/24`); undefined when it is not one. */
export function subnetOfAddress(cidr: string): string | undefined {
  const c = readCidr(cidr);
  return c && formatCidr(c);
}

/** The bridge networks of these tasks' attachments (driver 'bridge'), once each, as the driver takes them. */
export function bridgeNetworksOf(attachmentLists: NetworkAttachment[][]): BridgeNetwork[] {
  const out = new Map<string, BridgeNetwork>();
  for (const list of attachmentLists) {
    for (const a of list) {
      if (a.driver !== 'bridge' || out.has(a.networkId)) continue;
      const subnet = subnetOfAddress(a.address);
      if (!subnet) continue;
      const mtu = Number(a.options?.mtu ?? 0);
      out.set(a.networkId, { networkId: a.networkId, subnet, gateway: a.gateway, internal: a.internal, mtu: Number.isInteger(mtu) && mtu >= 68 && mtu <= 65535 ? mtu : 0 });
    }
  }
  return [...out.values()];
}

function prefixLength(subnet: string): number {
  return readCidr(subnet)!.prefix;
}

/** Whether a task with these attachments needs the gateway bridge: all overlay, at least one not internal. */
export function needsGatewayBridge(attachments: NetworkAttachment[]): boolean {
  return attachments.length > 0 && attachments.every((a) => a.driver === 'overlay') && attachments.some((a) => !a.internal);
}

/** The `eth<i>` of a running task's gateway bridge interface: its layout's (a container), else after its attachments when it needs one. */
export function gatewayIndexOf(t: { attachments: NetworkAttachment[]; gatewayIndex?: number }): number | undefined {
  if (t.gatewayIndex !== undefined) return t.gatewayIndex;
  return needsGatewayBridge(t.attachments) ? t.attachments.length : undefined;
}

/** The Linux bridge a driver with name prefix `prefix` makes for a network: `<prefix><first 8 letters and digits of its id>`. */
export function bridgeNameOf(prefix: string, networkId: string): string {
  const id = networkId.toLowerCase().replace(/[^a-z0-9]/g, '').slice(0, 8);
  if (!id) throw invalidArgument(`network id ${JSON.stringify(networkId)} has no letters or digits to name its bridge`);
  return `${prefix}${id}`;
}

/** A MAC of `first:42` and the address's four octets (02 for the task end, 06 for the host end). */
const HOST_END_MAC = /^06:42:([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2})$/;

export class BridgeDriver extends HostNetlinkDriver implements NetworkDriver {
  readonly label = 'bridge networks';
  private readonly log: Logger;
  private readonly prefix: string;
  /** The networks the host has bridges for, as last made: the nft rules cover them. */
  private readonly known = new Map<string, BridgeNetwork>();
  /** The nft text last applied, and when: the same text is not written again on every call. */
  private applied?: { text: string; at: number };
  /** The gateway bridge's subnet (network address and prefix length) and gateway, as numbers. */
  private readonly gw: { base: number; len: number; gateway: number; subnet: string };
  /** Whether the gateway bridge is there: the nft rules cover it. */
  private gwActive = false;

  constructor(opts: BridgeDriverOptions) {
    super('bridge driver', opts.hostNetns);
    const prefix = opts.namePrefix ?? 'swb';
    if (!PREFIX.test(prefix)) throw invalidArgument(`invalid bridge name prefix ${JSON.stringify(prefix)}: 1 to 7 lower-case letters and digits, a letter first`);
    this.prefix = prefix;
    this.log = componentLogger(opts.log, 'bridge-driver');
    const c = readCidr(opts.gatewaySubnet ?? '172.18.0.0/16');
    if (!c || c.prefix > 30) throw invalidArgument(`invalid gateway bridge subnet ${JSON.stringify(opts.gatewaySubnet)}: an IPv4 CIDR of /30 or wider`);
    this.gw = { base: c.base, len: c.prefix, gateway: c.base + 1, subnet: formatCidr(c) };
  }

  /** The gateway bridge: `<prefix>-gw`. */
  gatewayBridgeName(): string {
    return `${this.prefix}-gw`;
  }

  /** The gateway bridge's gateway address. */
  gatewayAddress(): string {
    return formatIpv4(this.gw.gateway);
  }

  /** The Linux bridge of a network: `<prefix><first 8 letters and digits of its id>`. */
  bridgeName(networkId: string): string {
    return bridgeNameOf(this.prefix, networkId);
  }

  /** The host end of a task's veth on attachment `index`: `<prefix>-<task id part><index in base 36>`. */
  vethName(taskId: string, index: number): string {
    return `${this.vethStem(taskId)}${index.toString(36)}`;
  }

  private vethStem(taskId: string): string {
    const part = taskId.toLowerCase().replace(/[^a-z0-9]/g, '');
    if (!part) throw invalidArgument(`task id ${JSON.stringify(taskId)} has no letters or digits to name its veth`);
    return `${this.prefix}-${part.slice(0, 15 - this.prefix.length - 2)}`;
  }

  /**
   * Makes the host match `wanted` (the bridge networks with tasks on this host): their bridges
   * made or fixed, the bridges of other networks removed (with our veths on them), the nft table
   * rendered for the wanted ones, forwarding on.
   */
  reconcile(wanted: BridgeNetwork[], opts: { gateway?: boolean } = {}): Promise<void> {
    return this.exclusive(async () => {
      const nets = this.checked(wanted);
      const host = await this.hostNl();
      const names = new Set(nets.map((n) => this.bridgeName(n.networkId)));
      const links = await host.listLinks();
      const ours = new RegExp(`^${this.prefix}[a-z0-9]{1,8}$`);
      const hadAny = this.known.size > 0 || links.some((l) => l.kind === 'bridge' && ours.test(l.name));
      for (const l of links) {
        if (l.kind !== 'bridge' || !ours.test(l.name) || names.has(l.name)) continue;
        for (const port of links) {
          if (port.masterIndex === l.index && port.kind === 'veth' && port.name.startsWith(`${this.prefix}-`)) await host.deleteLink(port.name);
        }
        await host.deleteLink(l.name);
        this.log.info({ bridge: l.name }, 'bridge of a network no longer wanted here removed');
      }
      this.known.clear();
      const gwBridge = links.find((l) => l.name === this.gatewayBridgeName() && l.kind === 'bridge');
      if (opts.gateway) await this.ensureGatewayBridge(host);
      else if (gwBridge) {
        for (const port of links) {
          if (port.masterIndex === gwBridge.index && port.kind === 'veth' && port.name.startsWith(`${this.prefix}-`)) await host.deleteLink(port.name);
        }
        await host.deleteLink(gwBridge.name);
        this.log.info({ bridge: gwBridge.name }, 'gateway bridge no longer needed here removed');
      }
      if (!opts.gateway) this.gwActive = false;
      if (nets.length === 0 && !opts.gateway) {
        // Nothing here uses a bridge network: no table (and no forwarding change) on such hosts.
        if (hadAny || this.applied) await this.nft(renderBridgeNftRemoval());
        this.applied = undefined;
        return;
      }
      for (const n of nets) await this.ensureBridge(host, n);
      await this.applyRules();
    });
  }

  /**
   * Plugs a task into its bridge networks before its command starts. Attachment i (driver
   * 'bridge') becomes `eth<i>` in `taskNetns`; the networks' bridges are made first if needed
   * (nothing else is touched). Attachments of other drivers are left to their drivers.
   */
  attach(taskId: string, taskNetns: string, attachments: NetworkAttachment[], networks: BridgeNetwork[]): Promise<void> {
    return this.exclusive(async () => {
      if (!taskId) throw invalidArgument('a task id is needed to attach a task');
      const mine = attachments.map((a, index) => ({ a, index })).filter(({ a }) => a.driver === 'bridge');
      if (mine.length === 0) return;
      const nets = this.checked(networks);
      const ports = mine.map(({ a, index }) => {
        const n = nets.find((x) => x.networkId === a.networkId);
        if (!n) throw failedPrecondition(`bridge network ${a.networkName || a.networkId} is not known to the bridge driver`);
        if (!a.address || !readCidr(a.address)) throw invalidArgument(`the task's address on ${a.networkName || a.networkId} is not an IPv4 CIDR: ${JSON.stringify(a.address)}`);
        if (a.mac && !parseMac(a.mac)) throw invalidArgument(`the task's MAC on ${a.networkName || a.networkId} is invalid: ${JSON.stringify(a.mac)}`);
        return { a, index, n };
      });
      const host = await this.hostNl();
      for (const { n } of ports) await this.ensureBridge(host, n);
      await this.applyRules();
      const task = await Netlink.inNetns(taskNetns);
      try {
        for (const { a, index, n } of ports) {
          const veth = this.vethName(taskId, index);
          const eth = `eth${index}`;
          const mtu = n.mtu || undefined;
          if (!(await host.getLink(veth))) {
            // A task end left from an earlier pair would keep the name taken.
            const stale = await task.getLink(eth);
            if (stale?.kind === 'veth') await task.deleteLink(eth);
          }
          await host.ensureVethPair(veth, eth, { mtu, peerNetns: taskNetns });
          await host.setMaster(veth, this.bridgeName(n.networkId));
          await host.setUp(veth);
          if (a.mac) await task.setMac(eth, a.mac);
          await task.ensureAddress(eth, a.address);
          await task.setUp(eth);
          if (index === 0 && !n.internal && n.gateway) await task.ensureRoute({ dst: 'default', gateway: n.gateway });
          this.log.debug({ taskId, networkId: n.networkId, veth, eth, address: a.address }, 'task attached to bridge network');
        }
      } finally {
        task.close();
      }
      this.log.info({ taskId, networks: ports.map((p) => p.n.networkId) }, 'task plugged into its bridge networks');
    });
  }

  /**
   * Plugs a task whose attachments are all overlay (see needsGatewayBridge) into the gateway
   * bridge, after its overlay interfaces: `eth<attachments.length>` with the lowest address free
   * on this host (the one it has already when plugged in before) and the default route via the
   * gateway. Does nothing for other tasks. Its port is isolated from the bridge's other isolated
   * ports unless `isolated` is false (the ingress sandbox: tasks reach it through the host).
   * With `at` (a container's layout), it goes in `eth<at>` whatever the attachments.
   */
  attachGateway(taskId: string, taskNetns: string, attachments: NetworkAttachment[], isolated = true, at?: number): Promise<void> {
    return this.exclusive(async () => {
      if (!taskId) throw invalidArgument('a task id is needed to attach a task');
      if (at === undefined && !needsGatewayBridge(attachments)) return;
      const index = at ?? attachments.length;
      const veth = this.vethName(taskId, index);
      const eth = `eth${index}`;
      const host = await this.hostNl();
      const bridge = await this.ensureGatewayBridge(host);
      await this.applyRules();
      const links = await host.listLinks();
      const used = new Set<number>();
      let address: number | undefined;
      for (const l of links) {
        const n = this.addressOfHostEnd(l.mac);
        if (l.kind !== 'veth' || l.masterIndex !== bridge.index || n === undefined) continue;
        if (l.name === veth) address = n;
        else used.add(n);
      }
      const existing = links.find((l) => l.name === veth);
      if (address === undefined || used.has(address)) {
        address = undefined;
        const last = this.gw.base + 2 ** (32 - this.gw.len) - 2;
        for (let n = this.gw.gateway + 1; n <= last; n++) {
          if (!used.has(n)) {
            address = n;
            break;
          }
        }
        if (address === undefined) throw failedPrecondition(`no address left on the gateway bridge ${bridge.name} (${this.gw.subnet})`);
      }
      const task = await Netlink.inNetns(taskNetns);
      try {
        if (!existing) {
          // A task end left from an earlier pair would keep the name taken.
          const stale = await task.getLink(eth);
          if (stale?.kind === 'veth') await task.deleteLink(eth);
        }
        await host.ensureVethPair(veth, eth, { peerNetns: taskNetns });
        await host.setMac(veth, macOfIpv4(address, '06'));
        await host.setMaster(veth, bridge.name);
        await host.setBridgePortIsolated(veth, isolated);
        await host.setUp(veth);
        const cidr = `${formatIpv4(address)}/${this.gw.len}`;
        await task.setMac(eth, macOfIpv4(address, '02'));
        for (const a of await task.listAddresses(eth)) {
          if (a.family === 4 && `${a.address}/${a.prefixLength}` !== cidr) await task.deleteAddress(eth, `${a.address}/${a.prefixLength}`);
        }
        await task.ensureAddress(eth, cidr);
        await task.setUp(eth);
        await task.ensureRoute({ dst: 'default', gateway: this.gatewayAddress() });
      } finally {
        task.close();
      }
      this.log.info({ taskId, veth, eth, address: formatIpv4(address) }, 'task plugged into the gateway bridge');
    });
  }

  /**
   * The gateway bridge addresses of these tasks (task id -> address), as the kernel has them: the
   * tasks plugged into the gateway bridge only. Changes nothing.
   */
  gatewayAddresses(tasks: { taskId: string; attachments: NetworkAttachment[]; gatewayIndex?: number }[]): Promise<Map<string, string>> {
    return this.exclusive(async () => {
      const out = new Map<string, string>();
      const host = await this.hostNl();
      const links = await host.listLinks();
      const bridge = links.find((l) => l.name === this.gatewayBridgeName() && l.kind === 'bridge');
      if (!bridge) return out;
      const byName = new Map(links.map((l) => [l.name, l]));
      for (const t of tasks) {
        const index = gatewayIndexOf(t);
        if (index === undefined) continue;
        const l = byName.get(this.vethName(t.taskId, index));
        const n = l && l.kind === 'veth' && l.masterIndex === bridge.index ? this.addressOfHostEnd(l.mac) : undefined;
        if (n !== undefined) out.set(t.taskId, formatIpv4(n));
      }
      return out;
    });
  }

  /**
   * The gateway bridge address of a task or container plugged into it, whichever its `eth<i>`, as
   * the kernel has it (also before this driver plugged anything: after a restart). Changes nothing.
   */
  gatewayAddressOf(taskId: string): Promise<string | undefined> {
    return this.exclusive(async () => {
      const stem = this.vethStem(taskId);
      const links = await (await this.hostNl()).listLinks();
      const bridge = links.find((l) => l.name === this.gatewayBridgeName() && l.kind === 'bridge');
      const port = bridge && links.find((l) => l.kind === 'veth' && l.masterIndex === bridge.index && l.name.length === stem.length + 1 && l.name.startsWith(stem) && this.addressOfHostEnd(l.mac) !== undefined);
      return port ? formatIpv4(this.addressOfHostEnd(port.mac)!) : undefined;
    });
  }

  /**
   * What differs on the host from these bridge networks and running tasks (network doctor): each
   * network's bridge, and the gateway bridge when `gateway`, there, up, with its gateway address
   * and the only interface with an address in its subnet; each running task's host-side veth on
   * them there, a port of the right bridge and up. Changes nothing.
   */
  doctor(wanted: BridgeNetwork[], tasks: { taskId: string; attachments: NetworkAttachment[]; gatewayIndex?: number }[], gateway: boolean): Promise<string[]> {
    return this.exclusive(async () => {
      const host = await this.hostNl();
      const [links, addresses] = [await host.listLinks(), await host.listAddresses()];
      const lines: string[] = [];
      const inSubnet = (subnet: string) => (address: string) => subnetOfAddress(`${address}/${prefixLength(subnet)}`) === subnet;
      for (const n of this.checked(wanted)) {
        if (!n.gateway) continue;
        lines.push(...checkGatewayBridge(links, addresses, this.bridgeName(n.networkId), `${n.gateway}/${prefixLength(n.subnet)}`, inSubnet(n.subnet), `bridge network ${n.networkId}`));
      }
      if (gateway) lines.push(...checkGatewayBridge(links, addresses, this.gatewayBridgeName(), `${this.gatewayAddress()}/${this.gw.len}`, inSubnet(this.gw.subnet), 'the gateway bridge'));
      for (const t of tasks) {
        t.attachments.forEach((a, index) => {
          if (a.driver !== 'bridge') return;
          const line = checkTaskPort(links, this.vethName(t.taskId, index), this.bridgeName(a.networkId), 'the host namespace', t.taskId);
          if (line) lines.push(line);
        });
        const index = gatewayIndexOf(t);
        if (gateway && index !== undefined) {
          const line = checkTaskPort(links, this.vethName(t.taskId, index), this.gatewayBridgeName(), 'the host namespace', t.taskId);
          if (line) lines.push(line);
        }
      }
      return lines;
    });
  }

  reconcileNetworks(wanted: WantedNetworks): Promise<void> {
    return this.reconcile(bridgeNetworksOf(wanted.tasks.map((t) => t.networks)), { gateway: wanted.gateway });
  }

  /** Its bridge networks, then (a task on overlays alone) the gateway bridge, after its overlay interfaces, or where a container's layout puts it. */
  async attachTask(task: Task, netns: string, _wanted?: WantedNetworks, layout?: ContainerGateway): Promise<void> {
    await this.attach(task.id, netns, task.networks, bridgeNetworksOf([task.networks]));
    if (!layout) await this.attachGateway(task.id, netns, task.networks);
    else if (layout.gateway !== undefined) await this.attachGateway(task.id, netns, task.networks, true, layout.gateway);
  }

  detachTask(taskId: string): Promise<void> {
    return this.detach(taskId);
  }

  async detachInterface(task: { taskId: string }, index: number, a: NetworkAttachment): Promise<void> {
    if (a.driver === 'bridge') await this.detach(task.taskId, index);
  }

  doctorNetworks(wanted: WantedNetworks): Promise<string[]> {
    return this.doctor(bridgeNetworksOf(wanted.tasks.map((t) => t.networks)), wanted.running, wanted.gateway);
  }

  /**
   * Removes the task's host-side veths (the task's ends go with them, or went with its netns); with
   * `index`, only the one of attachment `index` (its `eth<index>` goes, the others stay).
   */
  detach(taskId: string, index?: number): Promise<void> {
    return this.exclusive(async () => {
      if (!taskId) throw invalidArgument('a task id is needed to detach a task');
      const stem = this.vethStem(taskId);
      const host = await this.hostNl();
      for (const l of await host.listLinks()) {
        if (index !== undefined && l.name !== this.vethName(taskId, index)) continue;
        if (l.kind === 'veth' && l.name.length === stem.length + 1 && l.name.startsWith(stem)) await host.deleteLink(l.name);
      }
    });
  }

  // ---- inside ----------------------------------------------------------------------------------

  private checked(networks: BridgeNetwork[]): BridgeNetwork[] {
    const byBridge = new Map<string, string>();
    for (const n of networks) {
      if (!readCidr(n.subnet)) throw invalidArgument(`bridge network ${n.networkId}: invalid subnet ${JSON.stringify(n.subnet)}`);
      if (n.gateway && !isIPv4(n.gateway)) throw invalidArgument(`bridge network ${n.networkId}: invalid gateway ${JSON.stringify(n.gateway)}`);
      const name = this.bridgeName(n.networkId);
      const other = byBridge.get(name);
      if (other !== undefined && other !== n.networkId) throw invalidArgument(`bridge networks ${other} and ${n.networkId} would share the bridge ${name}`);
      byBridge.set(name, n.networkId);
    }
    return networks;
  }

  private async ensureBridge(host: Netlink, n: BridgeNetwork): Promise<void> {
    const name = this.bridgeName(n.networkId);
    await host.ensureBridge(name, { mtu: n.mtu || undefined });
    if (n.gateway) {
      const want = `${n.gateway}/${prefixLength(n.subnet)}`;
      for (const a of await host.listAddresses(name)) {
        if (a.family === 4 && `${a.address}/${a.prefixLength}` !== want) await host.deleteAddress(name, `${a.address}/${a.prefixLength}`);
      }
      await host.ensureAddress(name, want);
    }
    await host.setUp(name);
    this.known.set(n.networkId, n);
  }

  /** The gateway bridge, made or fixed (address, up); the nft rules cover it from now on. */
  private async ensureGatewayBridge(host: Netlink): Promise<{ name: string; index: number }> {
    const name = this.gatewayBridgeName();
    await host.ensureBridge(name, { mac: macOfIpv4(this.gw.gateway, '02') });
    const want = `${this.gatewayAddress()}/${this.gw.len}`;
    for (const a of await host.listAddresses(name)) {
      if (a.family === 4 && `${a.address}/${a.prefixLength}` !== want) await host.deleteAddress(name, `${a.address}/${a.prefixLength}`);
    }
    await host.ensureAddress(name, want);
    await host.setUp(name);
    this.gwActive = true;
    const link = await host.getLink(name);
    if (!link) throw failedPrecondition(`the gateway bridge ${name} went away`);
    return { name, index: link.index };
  }

  /** The address a gateway bridge port's host end stands for (from its MAC), if in the subnet. */
  private addressOfHostEnd(mac: string): number | undefined {
    const m = HOST_END_MAC.exec(mac);
    if (!m) return undefined;
    const n = Buffer.from(m.slice(1, 5).map((h) => parseInt(h, 16))).readUInt32BE(0);
    return containsAddress({ base: this.gw.base, prefix: this.gw.len }, n) ? n : undefined;
  }

  /** Renders the nft table for the known networks and replaces it; turns IPv4 forwarding on. */
  private async applyRules(): Promise<void> {
    const nets: BridgeNftNetwork[] = [...this.known.values()].map((n) => ({ bridge: this.bridgeName(n.networkId), subnet: n.subnet, internal: n.internal }));
    if (this.gwActive) nets.push({ bridge: this.gatewayBridgeName(), subnet: this.gw.subnet, internal: false, isolated: true });
    const text = renderBridgeNft(nets);
    if (this.applied && this.applied.text === text && Date.now() - this.applied.at < NFT_REFRESH_MS) return;
    this.applied = undefined;
    await this.nft(text);
    await enableForwarding(this.hostNetns);
    this.applied = { text, at: Date.now() };
  }

  private async nft(text: string): Promise<void> {
    await timed(metrics.nftSeconds, () => runNft(this.hostNetns, text));
  }

  /** The nft rules are written again after a failure: what was applied is no longer known. */
  protected override afterFailure(): void {
    this.applied = undefined;
  }
}
