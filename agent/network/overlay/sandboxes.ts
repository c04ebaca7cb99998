/**
 * The overlay driver's sandbox handles: a netlink handle per sandbox namespace `<prefix>-<vni>`
 * (/run/netns) and one on the host's namespace, opened on first use and reopened when the
 * namespace under the name was replaced or a helper process died.
 */
import { stat } from 'node:fs/promises';
import { asSwarmletError, failedPrecondition } from '../../../services/common/errors';
import type { Logger } from '../../../services/common/logger';
import { isSwarmVni } from '../../../services/common/vxlan';
import { Netlink, NetlinkError } from '../netlink';
import type { LinkInfo } from '../netlink';
import { SANDBOX_SYSCTLS, SandboxReading, bridgeName, planSysctlWrites, vxlanName } from '../plans/overlay-plan';
import { netnsOps } from '../../runtime/netns-ops';
import { deleteNetns, isNetnsMounted, listNetns, netnsPath } from '../sandbox';

const HOST_VXLAN = /^vx-[1-9][0-9]*$/;

export interface Sandbox {
  vni: number;
  name: string;
  path: string;
  nl: Netlink;
  /** dev:inode of the namespace file when the handle was opened. */
  id: string;
}

/** dev:inode of a file; undefined when it is not there. */
export async function fileId(path: string): Promise<string | undefined> {
  try {
    const s = await stat(path);
    return `${s.dev}:${s.ino}`;
  } catch {
    return undefined;
  }
}

/** Errors after which a netlink handle is no use: its helper process is gone. */
const deadHandle = (err: unknown) => err instanceof NetlinkError && (err.errno === 'EPIPE' || err.errno === 'EBADF');

/** The host's netlink handle, as the driver keeps it (host-netlink-driver.ts). */
export interface HostHandle {
  nl(): Promise<Netlink>;
  /** Lets go of it; the next nl() opens a fresh one. */
  release(): void;
}

export class OverlaySandboxes {
  private readonly open = new Map<number, Sandbox>();

  constructor(
    private readonly settings: { readonly prefix: string; readonly localVtep: string },
    private readonly host: HostHandle,
    private readonly log: Logger,
  ) {}

  /** The sandbox namespace name of a VNI. */
  name(vni: number): string {
    return `${this.settings.prefix}-${vni}`;
  }

  /** The handle opened last for a VNI, if any. */
  get(vni: number): Sandbox | undefined {
    return this.open.get(vni);
  }

  /** The VNIs with a handle open. */
  openVnis(): number[] {
    return [...this.open.keys()];
  }

  /** The VNIs that have a sandbox name in /run/netns, and whether it is a mounted namespace. */
  async discover(): Promise<{ vni: number; mounted: boolean }[]> {
    const head = `${this.settings.prefix}-`;
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
  async openSandbox(vni: number): Promise<Sandbox> {
    const name = this.name(vni);
    const path = netnsPath(name);
    const id = await fileId(path);
    const open = this.open.get(vni);
    if (open && open.id === id) return open;
    if (open) await this.drop(vni, true);
    if (!id) throw failedPrecondition(`the sandbox namespace ${name} does not exist`);
    const nl = await Netlink.inNetns(path);
    const sb: Sandbox = { vni, name, path, nl, id };
    this.open.set(vni, sb);
    await this.ensureSysctls(sb);
    return sb;
  }

  /**
   * The sandbox's kernel settings (SANDBOX_SYSCTLS: br_netfilter off), written once per handle:
   * when the sandbox is made, and when an agent opens one it finds (one made by an earlier agent).
   * Through the namespace helper: no process. A file the kernel does not have (br_netfilter not
   * loaded) is skipped; another failure is logged and the sandbox used all the same: it only costs speed.
   */
  private async ensureSysctls(sb: Sandbox): Promise<void> {
    for (const { path, value } of planSysctlWrites(SANDBOX_SYSCTLS)) {
      try {
        await netnsOps.write(sb.path, path, value);
      } catch (err) {
        const e = asSwarmletError(err);
        if (e.kind === 'NotFound') continue;
        this.log.warn({ vni: sb.vni, netns: sb.name, err: e.message }, 'sandbox kernel settings not applied');
        return;
      }
    }
  }

  /**
   * Closes a handle. With `orphaned`, its namespace is no longer the one under its name: what the
   * driver made in it is deleted first (best effort), so its VXLAN device frees the VNI.
   */
  async drop(vni: number, orphaned: boolean): Promise<void> {
    const sb = this.open.get(vni);
    if (!sb) return;
    this.open.delete(vni);
    if (orphaned) {
      this.log.warn({ vni, netns: sb.name }, 'the sandbox namespace was replaced or removed behind the driver; cleaning the old one');
      for (const link of [vxlanName(vni), bridgeName(vni)]) await sb.nl.deleteLink(link).catch(() => undefined);
    }
    sb.nl.close();
  }

  /** Closes the handle and deletes the namespace. */
  async remove(vni: number): Promise<void> {
    await this.drop(vni, false);
    await deleteNetns(this.name(vni));
    this.log.info({ vni, netns: this.name(vni) }, 'overlay sandbox removed');
  }

  hostNl(): Promise<Netlink> {
    return this.host.nl();
  }

  /** VXLAN devices of ours in the host namespace: only ever there between creation and move. */
  async hostLeftovers(): Promise<LinkInfo[]> {
    const links = await (await this.hostNl()).listLinks();
    return links.filter((l) => l.kind === 'vxlan' && HOST_VXLAN.test(l.name) && l.vxlan?.local === this.settings.localVtep);
  }

  /** The sandbox's links, and the VXLAN device's FDB and IPv4 neighbour entries. */
  async read(sb: Sandbox): Promise<SandboxReading> {
    return this.guarded(sb, async () => {
      const links = await sb.nl.listLinks();
      const vx = links.find((l) => l.name === vxlanName(sb.vni));
      if (!vx) return { vni: sb.vni, links, fdb: [], neigh: [] };
      const fdb = await sb.nl.listFdb(vx.name);
      const neigh = (await sb.nl.listNeighbours(vx.name)).filter((n) => n.family === 4);
      return { vni: sb.vni, links, fdb, neigh };
    });
  }

  /**
   * Runs `fn` on a sandbox's handle. After an error that says a helper process is gone, the
   * sandbox's handle and the host's (createVxlan uses both) are let go, to be opened again next time.
   */
  async guarded<T>(sb: Sandbox, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (deadHandle(err)) {
        this.log.warn({ vni: sb.vni, err: asSwarmletError(err).message }, 'a netlink helper is gone; reopening next time');
        if (this.open.get(sb.vni) === sb) this.open.delete(sb.vni);
        sb.nl.close();
        this.host.release();
      }
      throw err;
    }
  }

  /** Closes every sandbox's handle (and its helper process); the kernel objects stay. */
  closeAll(): void {
    for (const sb of this.open.values()) sb.nl.close();
    this.open.clear();
  }
}
