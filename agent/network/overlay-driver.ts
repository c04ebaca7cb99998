/**
 * The host side of overlay networks: makes this host's kernel match the overlay networks its tasks
 * are on, and plugs tasks into them.
 *
 * Per overlay network (VNI) with tasks here, a sandbox network namespace `<prefix>-<vni>`
 * (/run/netns) holds:
 *   - the bridge `br-<vni>` with the gateway address (so the subnet's connected route lives in the
 *     sandbox, never in the host's namespace: the host gets no route to an overlay subnet);
 *   - the VXLAN device `vx-<vni>`: created in the HOST namespace (local VTEP = this host's
 *     advertise address, port 4789, learning off, proxy on), then moved into the sandbox. Its UDP
 *     socket stays in the namespace it was created in, so encapsulated packets use the host's
 *     underlay while the device itself is a port of the sandbox's bridge. No underlay `dev` is
 *     set: after the move its ifindex would name a link of another namespace;
 *   - for every task of the network on another host: an FDB entry on `vx-<vni>` (task MAC -> that
 *     host's VTEP, self, permanent), the same MAC on the bridge (master, NUD_NOARP) so the bridge
 *     sends it to the VXLAN port instead of flooding, and a neighbour entry on `vx-<vni>` (task IP
 *     -> task MAC), from which the VXLAN device answers the tasks' ARP requests itself (proxy).
 *     ARP never crosses the underlay: there is no default (all-zero) FDB destination, so
 *     broadcasts stay on the host.
 *   - per task on this host, a veth `v<vni>-<task id>` on the bridge, whose peer is the task's
 *     `eth<i>`.
 *
 * The decisions come from planOverlay (plans/overlay-plan.ts); this file reads the kernel, feeds
 * the plan, and carries out its operations, adding what the plan does not model yet:
 *   - the plan does not check `proxy`: a `vx-<vni>` with proxy off is deleted and made again;
 *   - the bridge's FDB entries mirror the remote peers (addBridgeFdb/delBridgeFdb);
 *   - a `vx-<vni>` left in the host namespace (the agent died between creating and moving it) is
 *     removed on the next full reconcile.
 * After applying, the kernel is read and planned again until nothing is left to do (normally one
 * extra read), so a device made again gets back every entry that went with the old one.
 *
 * A sandbox namespace deleted behind the driver's back is noticed by its inode: the driver cleans
 * what it still reaches through its old handle (the VXLAN device would otherwise keep the VNI
 * taken in the host's namespace) and opens the new one. The veths of tasks plugged into the old
 * sandbox went with it. The agent passes reconcile() the tasks running here (it knows them, also
 * after a restart, from the runtime); after the networks, reconcile plugs in again each one whose
 * sandbox-side veth is missing, off the bridge or down, as attach() would. Healthy tasks are only
 * looked at (one link listing per sandbox). The driver keeps no record of its own of what it
 * attached: what is wanted comes in with each call, what is there from the kernel.
 *
 * All calls are serialized. Every call is idempotent and starts from what the kernel has, so it is
 * safe after an agent restart, a reboot (sandboxes gone), or a manual `ip link del`.
 */
import { Mutex } from 'async-mutex';
import { stat } from 'node:fs/promises';
import { SwarmletError, asSwarmletError, conflict, failedPrecondition, internal, invalidArgument, unavailable } from '../../services/common/errors';
import { Logger, componentLogger } from '../../services/common/logger';
import { VNI_MAX, VNI_MIN, isSwarmVni } from '../../services/common/vxlan';
import type { OverlayNetwork } from '../../services/gen/swarmlet/v1/dispatcher';
import type { NetworkAttachment, Task } from '../../services/gen/swarmlet/v1/types';
import type { NetworkDriver, RunningTask, WantedNetworks } from './driver';
import { Netlink, NetlinkError } from './netlink';
import type { FdbEntry, LinkInfo, NeighbourInfo } from './netlink';
import { parseCidr, parseIp, parseMac } from './netlink/encode';
import { KernelState, OverlayOp, WantedOverlay, bridgeName, diffReport, planOverlay, planOverlayMtu, vxlanName } from './plans';
import { checkTaskPort } from './plans/port-check';
import { deleteNetns, ensureNetns, isNetnsMounted, listNetns, netnsPath } from './sandbox';

export interface OverlayDriverOptions {
  log: Logger;
  /** This host's advertise IP: the source address of its VXLAN packets. */
  localVtep: string;
  /** Path of the host's network namespace; default: this process's. */
  hostNetns?: string;
  /** Name prefix of the sandbox namespaces `<prefix>-<vni>`; default 'swl'. */
  sandboxPrefix?: string;
  /** Default: the MTU of the interface holding localVtep. */
  underlayMtu?: number;
}

interface Settings {
  readonly localVtep: string;
  readonly hostNetns?: string;
  readonly sandboxPrefix: string;
  readonly underlayMtu?: number;
}

const PREFIX = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;
const HOST_VXLAN = /^vx-[1-9][0-9]*$/;
/** Applying a plan and reading again: normally 1 pass, 2 when a device was made again. */
const MAX_PASSES = 3;

/**
 * The sandbox-side veth of a task on the network `vni`: `v<vni>-<task id>`, cut to 15 characters
 * (9 of a task id for VNIs up to 99999, at least 5 for the largest). Only unique within the VNI's
 * sandbox, which is all it needs; attach() refuses to take over one that belongs to another task.
 */
export function overlayVethName(vni: number, taskId: string): string {
  return `v${vni}-${taskId.replace(/[^A-Za-z0-9_.-]/g, '_')}`.slice(0, 15);
}


/** One of a task's overlay attachments on a network as the plan takes it. */
interface Port {
  a: NetworkAttachment;
  /** Its index among the task's attachments: the task side is `eth<index>`. */
  index: number;
  want: WantedOverlay;
}

/** A task's overlay attachments with their index; refuses one without a usable address or MAC. */
function overlayAttachments(attachments: NetworkAttachment[]): { a: NetworkAttachment; index: number }[] {
  const mine = attachments.map((a, index) => ({ a, index })).filter(({ a }) => a.driver === 'overlay');
  for (const { a } of mine) {
    if (!a.address || !parseCidr(a.address)) throw invalidArgument(`the task's address on ${a.networkName || a.networkId} is not a CIDR: ${JSON.stringify(a.address)}`);
    if (a.mac && !parseMac(a.mac)) throw invalidArgument(`the task's MAC on ${a.networkName || a.networkId} is invalid: ${JSON.stringify(a.mac)}`);
  }
  return mine;
}

/** The driver's own operations, beyond the plan's. */
type BridgeFdbOp = { op: 'addBridgeFdb' | 'delBridgeFdb'; vni: number; dev: string; mac: string };
type DriverOp = OverlayOp | BridgeFdbOp;

interface Sandbox {
  vni: number;
  name: string;
  path: string;
  nl: Netlink;
  /** dev:inode of the namespace file when the handle was opened. */
  id: string;
}

interface SandboxState {
  vni: number;
  links: LinkInfo[];
  /** Entries of vx-<vni> (its own and the bridge's for it); [] without the device. */
  fdb: FdbEntry[];
  /** IPv4 neighbours of vx-<vni>; [] without the device. */
  neigh: NeighbourInfo[];
}

async function fileId(path: string): Promise<string | undefined> {
  try {
    const s = await stat(path);
    return `${s.dev}:${s.ino}`;
  } catch {
    return undefined;
  }
}

const describeOp = (op: DriverOp): string => {
  const { op: name, vni, ...rest } = op;
  return `${name} ${JSON.stringify(rest)} (VNI ${vni})`;
};

/** Remote peers' MACs of a network, lower case, once each: the plan's rule for FDB entries. */
function remoteMacs(want: WantedOverlay): Set<string> {
  return new Set(want.peers.filter((p) => p.ip && p.mac && p.vtep && p.vtep !== want.localVtep).map((p) => p.mac.toLowerCase()));
}

/** Whether two IPv4 CIDRs share any address. */
function overlaps(a: string, b: string): boolean {
  const ca = parseCidr(a);
  const cb = parseCidr(b);
  if (!ca || !cb || ca.family !== 4 || cb.family !== 4) return false;
  const len = Math.min(ca.prefixLength, cb.prefixLength);
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return ((ca.ip.readUInt32BE(0) & mask) >>> 0) === ((cb.ip.readUInt32BE(0) & mask) >>> 0);
}

/** Errors after which a netlink handle is no use: its helper process is gone. */
const deadHandle = (err: unknown) => err instanceof NetlinkError && (err.errno === 'EPIPE' || err.errno === 'EBADF');

export class OverlayDriver implements NetworkDriver {
  readonly label = 'overlay networks';
  private readonly settings: Settings;
  private readonly log: Logger;
  private host?: Netlink;
  private readonly sandboxes = new Map<number, Sandbox>();
  private readonly mutex = new Mutex();
  private closed = false;

  constructor(opts: OverlayDriverOptions) {
    const prefix = opts.sandboxPrefix ?? 'swl';
    if (!PREFIX.test(prefix)) throw invalidArgument(`invalid sandbox prefix ${JSON.stringify(prefix)}`);
    const vtep = parseIp(opts.localVtep);
    if (!vtep || vtep.length !== 4) throw invalidArgument(`the local VTEP must be an IPv4 address, not ${JSON.stringify(opts.localVtep)}`);
    if (opts.underlayMtu !== undefined && !(Number.isInteger(opts.underlayMtu) && opts.underlayMtu >= 118 && opts.underlayMtu <= 65535)) {
      throw invalidArgument(`invalid underlay MTU ${opts.underlayMtu}`);
    }
    this.settings = Object.freeze({ localVtep: opts.localVtep, hostNetns: opts.hostNetns, sandboxPrefix: prefix, underlayMtu: opts.underlayMtu });
    this.log = componentLogger(opts.log, 'overlay-driver');
  }

  /** The sandbox namespace name of a VNI. */
  sandboxName(vni: number): string {
    return `${this.settings.sandboxPrefix}-${vni}`;
  }

  /**
   * Makes the kernel match `overlays` (the overlay networks with tasks on this host, as the
   * dispatcher sends them): sandboxes, links and peer entries of wanted networks are made or
   * fixed; those of networks not in the list are removed, sandbox namespaces included.
   *
   * `tasks` are the tasks running here. A task whose sandbox-side veth on a wanted network is
   * missing (its sandbox was made again, and its old veth pair went with the old one), not a port
   * of the bridge (the bridge was made again) or down is plugged in again as attach() does; the
   * others are not touched. A task whose namespace is gone is left to the worker.
   */
  reconcile(overlays: OverlayNetwork[], tasks: RunningTask[] = []): Promise<void> {
    return this.exclusive(async () => {
      const wanted = await this.wantedOf(overlays, 'skip');
      await this.converge(wanted, true);
      await this.replug(wanted, tasks);
    });
  }

  /**
   * Plugs a task into its overlay networks before its command starts. Attachment i (driver
   * 'overlay') becomes `eth<i>` in `taskNetns`, with its MAC, address and the network's MTU, up;
   * its other end `v<vni>-<task id>` is a port of the network's bridge. No default route (no
   * egress yet); the subnet's connected route comes with the address. The networks are set up
   * first if they are not yet (nothing else is touched). Attachments of other drivers are left to
   * their drivers, but keep their index.
   */
  attach(taskId: string, taskNetns: string, attachments: NetworkAttachment[], overlays: OverlayNetwork[]): Promise<void> {
    return this.exclusive(async () => {
      if (!taskId) throw invalidArgument('a task id is needed to attach a task');
      const log = this.log.child({ taskId });
      const mine = overlayAttachments(attachments);
      if (mine.length === 0) return;
      const networks = mine.map(({ a }) => {
        const o = overlays.find((x) => x.networkId === a.networkId);
        if (!o) throw unavailable(`overlay network ${a.networkName || a.networkId} is not known on this node yet`);
        return o;
      });
      const wanted = await this.wantedOf(networks, 'throw');
      await this.converge(wanted, false);
      const ports = mine.map(({ a, index }, k) => ({ a, index, want: wanted.find((w) => w.networkId === networks[k].networkId) as WantedOverlay }));
      const made = await this.plug(taskId, taskNetns, ports);
      if (made) log.info({ networks: wanted.map((w) => w.networkId) }, 'task plugged into its overlay networks');
      else log.debug({ networks: wanted.map((w) => w.networkId) }, 'task already plugged into its overlay networks');
    });
  }

  /** Removes the task's sandbox-side veths (the task's own ends go with them, or went with its netns). */
  detach(taskId: string): Promise<void> {
    return this.exclusive(async () => {
      if (!taskId) throw invalidArgument('a task id is needed to detach a task');
      for (const { vni, mounted } of await this.discover()) {
        if (!mounted) continue;
        const sb = await this.openSandbox(vni);
        await this.guarded(sb, () => sb.nl.deleteLink(overlayVethName(vni, taskId)));
      }
      this.log.debug({ taskId }, 'task detached from overlay networks');
    });
  }

  reconcileNetworks(wanted: WantedNetworks): Promise<void> {
    return this.reconcile(wanted.overlays, wanted.running);
  }

  attachTask(task: Task, netns: string, wanted: WantedNetworks): Promise<void> {
    return this.attach(task.id, netns, task.networks, wanted.overlays);
  }

  detachTask(taskId: string): Promise<void> {
    return this.detach(taskId);
  }

  /** doctor(), then checkTasks(). */
  async doctorNetworks(wanted: WantedNetworks): Promise<string[]> {
    return [...(await this.doctor(wanted.overlays)), ...(await this.checkTasks(wanted.overlays, wanted.running))];
  }

  /** What differs between the kernel and `overlays`, one sentence a line; [] when they match. Changes nothing. */
  doctor(overlays: OverlayNetwork[]): Promise<string[]> {
    return this.exclusive(async () => {
      const lines: string[] = [];
      const wanted = await this.wantedOf(overlays, (msg) => lines.push(msg));
      const wantedVnis = new Set(wanted.map((w) => w.vni));
      const found = new Map((await this.discover()).map((s) => [s.vni, s.mounted]));
      const states: SandboxState[] = [];
      for (const w of wanted) if (!found.get(w.vni)) lines.push(`missing sandbox namespace ${this.sandboxName(w.vni)} (VNI ${w.vni})`);
      for (const [vni, mounted] of [...found].sort((a, b) => a[0] - b[0])) {
        if (!wantedVnis.has(vni)) lines.push(`stale sandbox namespace ${this.sandboxName(vni)} (VNI ${vni} is not wanted on this host)`);
        if (!mounted) continue;
        try {
          states.push(await this.readSandbox(await this.openSandbox(vni)));
        } catch (err) {
          lines.push(`cannot read sandbox namespace ${this.sandboxName(vni)}: ${asSwarmletError(err).message}`);
        }
      }
      const kernel = this.kernelStateOf(states, false).kernel;
      lines.push(...diffReport({ wanted, kernel }));
      for (const s of states) {
        const vx = s.links.find((l) => l.name === vxlanName(s.vni) && l.kind === 'vxlan');
        if (vx && vx.vxlan && !vx.vxlan.proxy) lines.push(`link ${vx.name} has ARP proxy off (want on)`);
        const want = wanted.find((w) => w.vni === s.vni);
        if (want && vx) {
          for (const op of this.planBridgeFdb(want, s, [])) {
            lines.push(op.op === 'addBridgeFdb' ? `missing bridge FDB entry ${op.mac} on ${op.dev}` : `stale bridge FDB entry ${op.mac} on ${op.dev}`);
          }
        }
      }
      try {
        const host = await this.hostNl();
        for (const l of await this.hostLeftovers()) lines.push(`stale link ${l.name} in the host network namespace (VNI ${l.vxlan?.vni})`);
        for (const r of await host.listRoutes({ family: 4 })) {
          if (r.dst === 'default') continue;
          for (const w of wanted) if (overlaps(r.dst, w.subnet)) lines.push(`the host network namespace has a route to ${r.dst}, inside overlay subnet ${w.subnet}`);
        }
      } catch (err) {
        lines.push(`cannot read the host network namespace: ${asSwarmletError(err).message}`);
      }
      return lines;
    });
  }

  /**
   * What is wrong with the running tasks' sandbox-side veths (network doctor): each on a network
   * wanted here must be there, a port of the network's bridge and up. A missing sandbox is
   * doctor()'s to report. Changes nothing.
   */
  checkTasks(overlays: OverlayNetwork[], tasks: RunningTask[]): Promise<string[]> {
    return this.exclusive(async () => {
      const vnis = new Map(overlays.map((o) => [o.networkId, o.vni]));
      const links = new Map<number, LinkInfo[] | undefined>();
      const lines: string[] = [];
      for (const t of tasks) {
        for (const a of t.attachments) {
          const vni = vnis.get(a.networkId);
          if (a.driver !== 'overlay' || vni === undefined) continue;
          if (!links.has(vni)) {
            try {
              const sb = await this.openSandbox(vni);
              links.set(vni, await this.guarded(sb, () => sb.nl.listLinks()));
            } catch {
              links.set(vni, undefined);
            }
          }
          const list = links.get(vni);
          if (!list) continue;
          const line = checkTaskPort(list, overlayVethName(vni, t.taskId), bridgeName(vni), `sandbox ${this.sandboxName(vni)}`, t.taskId);
          if (line) lines.push(line);
        }
      }
      return lines;
    });
  }

  /** Closes the netlink handles (and their helper processes); the kernel objects stay. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // After the calls already waiting.
    await this.mutex.runExclusive(async () => {
      for (const sb of this.sandboxes.values()) sb.nl.close();
      this.sandboxes.clear();
      this.host?.close();
      this.host = undefined;
    });
  }

  // ---- convergence ------------------------------------------------------------------------------

  /**
   * Applies plans until the kernel matches `wanted`. With `everything`, the whole host: sandboxes
   * of other VNIs and host-namespace leftovers go. Without, only the wanted networks' sandboxes
   * are looked at (attach), and nothing else is touched.
   */
  private async converge(wanted: WantedOverlay[], everything: boolean): Promise<void> {
    const wantedVnis = new Set(wanted.map((w) => w.vni));
    const unwanted: number[] = [];
    if (everything) {
      for (const { vni, mounted } of await this.discover()) {
        if (wantedVnis.has(vni)) continue;
        if (mounted) unwanted.push(vni);
        else await deleteNetns(this.sandboxName(vni));
      }
      // Handles whose namespace vanished from /run/netns: clean through them and let them go.
      for (const vni of [...this.sandboxes.keys()]) if (!wantedVnis.has(vni) && !unwanted.includes(vni)) await this.dropSandbox(vni, true);
    }
    // `ip netns add` one at a time (its first run makes /run/netns a shared mount), handles side by side.
    for (const vni of wantedVnis) {
      if (await ensureNetns(this.sandboxName(vni))) this.log.info({ vni, netns: this.sandboxName(vni) }, 'overlay sandbox created');
    }
    await Promise.all([...wantedVnis].map((vni) => this.openSandbox(vni)));
    for (const vni of unwanted) await this.openSandbox(vni);
    if (everything) {
      for (const l of await this.hostLeftovers()) {
        this.log.warn({ link: l.name }, 'removing a VXLAN device left in the host network namespace');
        await (await this.hostNl()).deleteLink(l.name);
      }
    }

    const vnis = [...wantedVnis, ...unwanted].sort((a, b) => a - b);
    let applied = 0;
    const failures: { vni: number; err: SwarmletError }[] = [];
    for (let pass = 1; ; pass++) {
      const states = await Promise.all(vnis.map((vni) => this.readSandbox(this.sandboxes.get(vni) as Sandbox)));
      const ops = this.planPass(wanted, states);
      if (ops.length === 0) break;
      if (pass > MAX_PASSES) {
        failures.push({ vni: ops[0].vni, err: internal(`the kernel does not converge after ${MAX_PASSES} passes; left: ${ops.slice(0, 5).map(describeOp).join('; ')}`) });
        break;
      }
      failures.push(...(await this.applyOps(ops)));
      applied += ops.length;
      if (failures.length) break;
    }
    for (const vni of unwanted) {
      await this.removeSandbox(vni).catch((err) => failures.push({ vni, err: asSwarmletError(err) }));
    }
    if (applied > 0 || unwanted.length > 0) {
      this.log.info({ operations: applied, networks: [...wantedVnis], removed: unwanted }, 'overlay networks reconciled');
    } else {
      this.log.debug({ networks: [...wantedVnis] }, 'overlay networks already as wanted');
    }
    if (failures.length) {
      const [first] = failures;
      const what = failures.map((f) => `VNI ${f.vni}: ${f.err.message}`).join('; ');
      throw new SwarmletError(first.err.kind, `overlay networks not reconciled: ${what}`, { cause: first.err });
    }
  }

  /** The plan for what the kernel has now, plus the driver's own operations. */
  private planPass(wanted: WantedOverlay[], states: SandboxState[]): DriverOp[] {
    const { kernel, noProxy } = this.kernelStateOf(states, true);
    const ops: DriverOp[] = noProxy.map((vni): OverlayOp => ({ op: 'deleteLink', vni, name: vxlanName(vni) }));
    for (const vni of noProxy) this.log.warn({ vni }, `${vxlanName(vni)} has ARP proxy off; making it again`);
    ops.push(...planOverlay({ wanted, kernel }));
    for (const w of wanted) {
      const state = states.find((s) => s.vni === w.vni);
      if (state) ops.push(...this.planBridgeFdb(w, state, ops));
    }
    return ops;
  }

  /**
   * The bridge's FDB entries (master, NUD_NOARP) for the VXLAN port: one per remote peer MAC.
   * When the bridge or the VXLAN device is (re)made in `ops`, what the kernel has now goes with it.
   */
  private planBridgeFdb(want: WantedOverlay, state: SandboxState, ops: DriverOp[]): BridgeFdbOp[] {
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
   * proxy off is left out (with its entries), so that the plan makes it again.
   */
  private kernelStateOf(states: SandboxState[], hideNoProxy: boolean): { kernel: KernelState; noProxy: number[] } {
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

  /** Applies the operations, one VNI's in order, the VNIs side by side; returns the VNIs that failed. */
  private async applyOps(ops: DriverOp[]): Promise<{ vni: number; err: SwarmletError }[]> {
    const byVni = new Map<number, DriverOp[]>();
    for (const op of ops) byVni.set(op.vni, [...(byVni.get(op.vni) ?? []), op]);
    const results = await Promise.allSettled(
      [...byVni].map(async ([vni, list]) => {
        const sb = this.sandboxes.get(vni) as Sandbox;
        for (const op of list) {
          this.log.debug({ vni, op: describeOp(op) }, 'overlay operation');
          await this.guarded(sb, () => this.applyOp(sb, op));
        }
      }),
    );
    const failures: { vni: number; err: SwarmletError }[] = [];
    [...byVni.keys()].forEach((vni, i) => {
      const r = results[i];
      if (r.status === 'rejected') failures.push({ vni, err: asSwarmletError(r.reason) });
    });
    return failures;
  }

  private async applyOp(sb: Sandbox, op: DriverOp): Promise<void> {
    const nl = sb.nl;
    switch (op.op) {
      case 'deleteLink':
        return nl.deleteLink(op.name);
      case 'createBridge':
        await nl.ensureBridge(op.name, { mtu: op.mtu });
        if (op.address) await nl.ensureAddress(op.name, op.address);
        return;
      case 'createVxlan': {
        // Made in the host's namespace, so that its UDP socket is there, then moved (kept name).
        const host = await this.hostNl();
        await host.ensureVxlan(op.name, { vni: op.vni, local: op.local, port: op.port, learning: false, proxy: true, mtu: op.mtu });
        await host.moveToNetns(op.name, sb.path);
        return;
      }
      case 'setMtu':
        return nl.setMtu(op.name, op.mtu);
      case 'setMaster':
        return nl.setMaster(op.name, op.master);
      case 'setUp':
        return nl.setUp(op.name);
      case 'addFdb':
        return nl.ensureFdb(op.dev, op.mac, { dst: op.dst, self: true });
      case 'delFdb':
        return nl.deleteFdb(op.dev, op.mac, { dst: op.dst || undefined, self: true });
      case 'addNeigh':
        return nl.ensureNeighbour(op.dev, op.ip, op.mac);
      case 'delNeigh':
        return nl.deleteNeighbour(op.dev, op.ip);
      case 'addBridgeFdb':
        return nl.ensureFdb(op.dev, op.mac, { self: false });
      case 'delBridgeFdb':
        return nl.deleteFdb(op.dev, op.mac, { self: false });
    }
  }

  // ---- reading ----------------------------------------------------------------------------------

  private async readSandbox(sb: Sandbox): Promise<SandboxState> {
    return this.guarded(sb, async () => {
      const links = await sb.nl.listLinks();
      const vx = links.find((l) => l.name === vxlanName(sb.vni));
      if (!vx) return { vni: sb.vni, links, fdb: [], neigh: [] };
      const fdb = await sb.nl.listFdb(vx.name);
      const neigh = (await sb.nl.listNeighbours(vx.name)).filter((n) => n.family === 4);
      return { vni: sb.vni, links, fdb, neigh };
    });
  }

  /** The overlays as the plan takes them; invalid ones are refused ('throw'), or logged and left out. */
  private async wantedOf(overlays: OverlayNetwork[], onInvalid: 'throw' | 'skip' | ((message: string) => void)): Promise<WantedOverlay[]> {
    const out: WantedOverlay[] = [];
    let underlay: number | undefined;
    for (const o of overlays) {
      const problem = this.overlayProblem(o);
      if (problem) {
        const message = `overlay network ${o.name || o.networkId} (VNI ${o.vni}): ${problem}`;
        if (onInvalid === 'throw') throw invalidArgument(message);
        if (onInvalid === 'skip') this.log.error({ networkId: o.networkId, vni: o.vni }, `${message}; left out`);
        else onInvalid(message);
        continue;
      }
      if (!o.mtu && underlay === undefined) underlay = await this.underlayMtu();
      const mtu = planOverlayMtu(underlay ?? 0, o.mtu || undefined);
      out.push({
        networkId: o.networkId,
        vni: o.vni,
        subnet: o.subnet,
        gateway: o.gateway,
        mtu,
        localVtep: this.settings.localVtep,
        peers: o.peers.map((p) => ({ ip: p.ip, mac: p.mac, vtep: p.vtep })),
      });
    }
    return out;
  }

  private overlayProblem(o: OverlayNetwork): string | undefined {
    if (!isSwarmVni(o.vni)) return `VNI must be from ${VNI_MIN} to ${VNI_MAX}`;
    const subnet = parseCidr(o.subnet);
    if (!subnet || subnet.family !== 4) return `invalid subnet ${JSON.stringify(o.subnet)}`;
    if (o.gateway && parseIp(o.gateway)?.length !== 4) return `invalid gateway ${JSON.stringify(o.gateway)}`;
    if (o.mtu && !(o.mtu >= 68 && o.mtu <= 65535)) return `invalid MTU ${o.mtu}`;
    return undefined;
  }

  private async underlayMtu(): Promise<number> {
    if (this.settings.underlayMtu !== undefined) return this.settings.underlayMtu;
    const host = await this.hostNl();
    const addr = (await host.listAddresses()).find((a) => a.family === 4 && a.address === this.settings.localVtep);
    const link = addr && (await host.listLinks()).find((l) => l.index === addr.index);
    if (!link) throw failedPrecondition(`no interface of the host network namespace has the local VTEP address ${this.settings.localVtep}`);
    return link.mtu;
  }

  /** VXLAN devices of ours in the host namespace: only ever there between creation and move. */
  private async hostLeftovers(): Promise<LinkInfo[]> {
    const links = await (await this.hostNl()).listLinks();
    return links.filter((l) => l.kind === 'vxlan' && HOST_VXLAN.test(l.name) && l.vxlan?.local === this.settings.localVtep);
  }

  // ---- sandboxes and handles ----------------------------------------------------------------------

  /** The VNIs that have a sandbox name in /run/netns, and whether it is a mounted namespace. */
  private async discover(): Promise<{ vni: number; mounted: boolean }[]> {
    const head = `${this.settings.sandboxPrefix}-`;
    const out: { vni: number; mounted: boolean }[] = [];
    for (const name of await listNetns()) {
      if (!name.startsWith(head) || !/^[1-9][0-9]*$/.test(name.slice(head.length))) continue;
      const vni = Number(name.slice(head.length));
      if (!isSwarmVni(vni)) continue;
      out.push({ vni, mounted: await isNetnsMounted(name) });
    }
    return out.sort((a, b) => a.vni - b.vni);
  }

  /** A handle on the VNI's sandbox as /run/netns has it now. */
  private async openSandbox(vni: number): Promise<Sandbox> {
    const name = this.sandboxName(vni);
    const path = netnsPath(name);
    const id = await fileId(path);
    const open = this.sandboxes.get(vni);
    if (open && open.id === id) return open;
    if (open) await this.dropSandbox(vni, true);
    if (!id) throw failedPrecondition(`the sandbox namespace ${name} does not exist`);
    const nl = await Netlink.inNetns(path);
    const sb: Sandbox = { vni, name, path, nl, id };
    this.sandboxes.set(vni, sb);
    return sb;
  }

  /**
   * Closes a handle. With `orphaned`, its namespace is no longer the one under its name: what the
   * driver made in it is deleted first (best effort), so its VXLAN device frees the VNI.
   */
  private async dropSandbox(vni: number, orphaned: boolean): Promise<void> {
    const sb = this.sandboxes.get(vni);
    if (!sb) return;
    this.sandboxes.delete(vni);
    if (orphaned) {
      this.log.warn({ vni, netns: sb.name }, 'the sandbox namespace was replaced or removed behind the driver; cleaning the old one');
      for (const link of [vxlanName(vni), bridgeName(vni)]) await sb.nl.deleteLink(link).catch(() => undefined);
    }
    sb.nl.close();
  }

  private async removeSandbox(vni: number): Promise<void> {
    await this.dropSandbox(vni, false);
    await deleteNetns(this.sandboxName(vni));
    this.log.info({ vni, netns: this.sandboxName(vni) }, 'overlay sandbox removed');
  }

  private async hostNl(): Promise<Netlink> {
    if (!this.host) this.host = this.settings.hostNetns === undefined ? Netlink.open() : await Netlink.inNetns(this.settings.hostNetns);
    return this.host;
  }

  /**
   * Runs `fn` on a sandbox's handle. After an error that says a helper process is gone, the
   * sandbox's handle and the host's (createVxlan uses both) are let go, to be opened again next time.
   */
  private async guarded<T>(sb: Sandbox, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (deadHandle(err)) {
        this.log.warn({ vni: sb.vni, err: asSwarmletError(err).message }, 'a netlink helper is gone; reopening next time');
        if (this.sandboxes.get(sb.vni) === sb) this.sandboxes.delete(sb.vni);
        sb.nl.close();
        this.host?.close();
        this.host = undefined;
      }
      throw err;
    }
  }

  // ---- tasks ------------------------------------------------------------------------------------

  /**
   * Plugs the task's ports into their sandboxes (which exist): veth pair, bridge port, the task
   * side's MAC, address and up state. Returns how many veth pairs were made.
   */
  private async plug(taskId: string, taskNetns: string, ports: Port[]): Promise<number> {
    const task = await Netlink.inNetns(taskNetns);
    let made = 0;
    try {
      for (const { a, index, want } of ports) {
        const sb = this.sandboxes.get(want.vni) as Sandbox;
        const veth = overlayVethName(want.vni, taskId);
        const eth = `eth${index}`;
        if (!(await this.checkVethOwner(sb, task, veth, eth, taskId))) {
          made++;
          // The task's end of a pair whose sandbox end is gone (its sandbox was made again; the old
          // namespace, and this end with it, may take a moment to go) would keep the name taken.
          const stale = await task.getLink(eth);
          if (stale?.kind === 'veth') await task.deleteLink(eth);
        }
        await sb.nl.ensureVethPair(veth, eth, { mtu: want.mtu, peerNetns: taskNetns });
        await sb.nl.setMaster(veth, bridgeName(want.vni));
        await sb.nl.setUp(veth);
        if (a.mac) await task.setMac(eth, a.mac);
        await task.ensureAddress(eth, a.address);
        await task.setUp(eth);
        this.log.debug({ taskId, networkId: want.networkId, vni: want.vni, veth, eth, address: a.address }, 'task attached to overlay');
      }
    } finally {
      task.close();
    }
    return made;
  }

  /** Plugs in again the running tasks' ports that are not plugged in (see reconcile); the rest is left alone. */
  private async replug(wanted: WantedOverlay[], tasks: RunningTask[]): Promise<void> {
    const byNetwork = new Map(wanted.map((w) => [w.networkId, w]));
    const links = new Map<number, LinkInfo[]>();
    const failures: { taskId: string; err: SwarmletError }[] = [];
    for (const t of tasks) {
      const log = this.log.child({ taskId: t.taskId });
      try {
        const ports: Port[] = [];
        for (const { a, index } of overlayAttachments(t.attachments)) {
          const want = byNetwork.get(a.networkId);
          const sb = want && this.sandboxes.get(want.vni);
          if (!want || !sb) continue; // not wanted here (yet): nothing to plug into
          let list = links.get(want.vni);
          if (!list) {
            list = await this.guarded(sb, () => sb.nl.listLinks());
            links.set(want.vni, list);
          }
          const veth = list.find((l) => l.name === overlayVethName(want.vni, t.taskId));
          const bridge = list.find((l) => l.name === bridgeName(want.vni));
          if (veth && bridge && veth.masterIndex === bridge.index && veth.up) continue;
          ports.push({ a, index, want });
        }
        if (ports.length === 0) continue;
        if ((await fileId(t.netns)) === undefined) {
          log.debug({ netns: t.netns }, 'task namespace gone; not plugging it in again');
          continue;
        }
        await this.plug(t.taskId, t.netns, ports);
        log.info({ networks: ports.map((p) => p.want.networkId) }, 'task plugged into its overlay networks again');
      } catch (err) {
        failures.push({ taskId: t.taskId, err: asSwarmletError(err) });
      }
    }
    if (failures.length) {
      const [first] = failures;
      const what = failures.map((f) => `task ${f.taskId}: ${f.err.message}`).join('; ');
      throw new SwarmletError(first.err.kind, `tasks not plugged into their overlay networks again: ${what}`, { cause: first.err });
    }
  }

  /** Whether the task's veth is there already; refuses to take over one whose peer is not this task's `eth`. */
  private async checkVethOwner(sb: Sandbox, task: Netlink, veth: string, eth: string, taskId: string): Promise<boolean> {
    const existing = await sb.nl.getLink(veth);
    if (!existing) return false;
    const peer = await task.getLink(eth);
    const ours = existing.kind === 'veth' && peer?.kind === 'veth' && existing.veth?.peerIndex === peer.index && peer.veth?.peerIndex === existing.index;
    if (!ours) {
      throw conflict(`sandbox ${sb.name} already has ${veth}, which is not plugged into ${eth} of task ${taskId}: another task's, or an earlier sandbox of this task that still exists`);
    }
    return true;
  }

  /** One call at a time; errors come out as SwarmletErrors. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(failedPrecondition('the overlay driver is closed'));
    return this.mutex.runExclusive(fn).catch((err: unknown) => {
      throw asSwarmletError(err);
    });
  }
}
