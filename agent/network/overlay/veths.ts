/**
 * The overlay driver's veth plumbing: per task and overlay network, a veth pair whose sandbox end
 * `v<vni>-<task id>` is a port of the network's bridge and whose other end is the task's `eth<i>`.
 */
import { SwarmletError, asSwarmletError, conflict, invalidArgument } from '../../../services/common/errors';
import { readCidr } from '../../../services/common/cidr';
import type { Logger } from '../../../services/common/logger';
import type { NetworkAttachment } from '../../../services/gen/swarmlet/v1/types';
import type { RunningTask } from '../driver';
import { Netlink } from '../netlink';
import type { LinkInfo } from '../netlink';
import { parseMac } from '../netlink/encode';
import { WantedOverlay, bridgeName } from '../plans/overlay-plan';
import { OverlaySandboxes, Sandbox, fileId } from './sandboxes';

/**
 * The sandbox-side veth of a task on the network `vni`: `v<vni>-<task id>`, cut to 15 characters
 * (9 of a task id for VNIs up to 99999, at least 5 for the largest). Only unique within the VNI's
 * sandbox, which is all it needs; attach() refuses to take over one that belongs to another task.
 */
export function overlayVethName(vni: number, taskId: string): string {
  return `v${vni}-${taskId.replace(/[^A-Za-z0-9_.-]/g, '_')}`.slice(0, 15);
}

/** One of a task's overlay attachments on a network as the plan takes it. */
export interface Port {
  a: NetworkAttachment;
  /** Its index among the task's attachments: the task side is `eth<index>`. */
  index: number;
  want: WantedOverlay;
}

/** A task's overlay attachments with their index; refuses one without a usable address or MAC. */
export function overlayAttachments(attachments: NetworkAttachment[]): { a: NetworkAttachment; index: number }[] {
  const mine = attachments.map((a, index) => ({ a, index })).filter(({ a }) => a.driver === 'overlay');
  for (const { a } of mine) {
    if (!a.address || !readCidr(a.address)) throw invalidArgument(`the task's address on ${a.networkName || a.networkId} is not a CIDR: ${JSON.stringify(a.address)}`);
    if (a.mac && !parseMac(a.mac)) throw invalidArgument(`the task's MAC on ${a.networkName || a.networkId} is invalid: ${JSON.stringify(a.mac)}`);
  }
  return mine;
}

/**
 * Plugs the task's ports into their sandboxes (which exist): veth pair, bridge port, the task
 * side's MAC, address and up state. Returns how many veth pairs were made.
 */
export async function plugTask(sandboxes: OverlaySandboxes, log: Logger, taskId: string, taskNetns: string, ports: Port[]): Promise<number> {
  const task = await Netlink.inNetns(taskNetns);
  let made = 0;
  try {
    for (const { a, index, want } of ports) {
      const sb = sandboxes.get(want.vni) as Sandbox;
      const veth = overlayVethName(want.vni, taskId);
      const eth = `eth${index}`;
      if (!(await checkVethOwner(sb, task, veth, eth, taskId))) {
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
      log.debug({ taskId, networkId: want.networkId, vni: want.vni, veth, eth, address: a.address }, 'task attached to overlay');
    }
  } finally {
    task.close();
  }
  return made;
}

/**
 * Plugs in again the running tasks' ports that are not plugged in: a sandbox-side veth missing,
 * off the bridge or down. The rest is only looked at (one link listing per sandbox).
 */
export async function replugTasks(sandboxes: OverlaySandboxes, log: Logger, wanted: WantedOverlay[], tasks: RunningTask[]): Promise<void> {
  const byNetwork = new Map(wanted.map((w) => [w.networkId, w]));
  const links = new Map<number, LinkInfo[]>();
  const failures: { taskId: string; err: SwarmletError }[] = [];
  for (const t of tasks) {
    const taskLog = log.child({ taskId: t.taskId });
    try {
      const ports: Port[] = [];
      for (const { a, index } of overlayAttachments(t.attachments)) {
        const want = byNetwork.get(a.networkId);
        const sb = want && sandboxes.get(want.vni);
        if (!want || !sb) continue; // not wanted here (yet): nothing to plug into
        let list = links.get(want.vni);
        if (!list) {
          list = await sandboxes.guarded(sb, () => sb.nl.listLinks());
          links.set(want.vni, list);
        }
        const veth = list.find((l) => l.name === overlayVethName(want.vni, t.taskId));
        const bridge = list.find((l) => l.name === bridgeName(want.vni));
        if (veth && bridge && veth.masterIndex === bridge.index && veth.up) continue;
        ports.push({ a, index, want });
      }
      if (ports.length === 0) continue;
      if ((await fileId(t.netns)) === undefined) {
        taskLog.debug({ netns: t.netns }, 'task namespace gone; not plugging it in again');
        continue;
      }
      await plugTask(sandboxes, log, t.taskId, t.netns, ports);
      taskLog.info({ networks: ports.map((p) => p.want.networkId) }, 'task plugged into its overlay networks again');
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
async function checkVethOwner(sb: Sandbox, task: Netlink, veth: string, eth: string, taskId: string): Promise<boolean> {
  const existing = await sb.nl.getLink(veth);
  if (!existing) return false;
  const peer = await task.getLink(eth);
  const ours = existing.kind === 'veth' && peer?.kind === 'veth' && existing.veth?.peerIndex === peer.index && peer.veth?.peerIndex === existing.index;
  if (!ours) {
    throw conflict(`sandbox ${sb.name} already has ${veth}, which is not plugged into ${eth} of task ${taskId}: another task's, or an earlier sandbox of this task that still exists`);
  }
  return true;
}
