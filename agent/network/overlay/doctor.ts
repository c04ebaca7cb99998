/** The overlay driver's doctor: what differs between the kernel and the wanted overlays. Changes nothing. */
import { asSwarmletError } from '../../../services/common/errors';
import { cidrsOverlap, readCidr } from '../../../services/common/cidr';
import type { RunningTask } from '../driver';
import type { LinkInfo } from '../netlink';
import { SandboxReading, WantedOverlay, bridgeName, sandboxReport } from '../plans/overlay-plan';
import { checkTaskPort } from '../plans/port-check';
import { OverlaySandboxes } from './sandboxes';
import { overlayVethName } from './veths';

/** Whether two IPv4 CIDRs share any address. */
function overlaps(a: string, b: string): boolean {
  const ca = readCidr(a);
  const cb = readCidr(b);
  return ca !== undefined && cb !== undefined && cidrsOverlap(ca, cb);
}

/** The sandboxes, their links and entries, and the host's namespace, against `wanted`; one sentence a line. */
export async function doctorOverlays(sandboxes: OverlaySandboxes, wanted: WantedOverlay[]): Promise<string[]> {
  const lines: string[] = [];
  const wantedVnis = new Set(wanted.map((w) => w.vni));
  const found = new Map((await sandboxes.discover()).map((s) => [s.vni, s.mounted]));
  const states: SandboxReading[] = [];
  for (const w of wanted) if (!found.get(w.vni)) lines.push(`missing sandbox namespace ${sandboxes.name(w.vni)} (VNI ${w.vni})`);
  for (const [vni, mounted] of [...found].sort((a, b) => a[0] - b[0])) {
    if (!wantedVnis.has(vni)) lines.push(`stale sandbox namespace ${sandboxes.name(vni)} (VNI ${vni} is not wanted on this host)`);
    if (!mounted) continue;
    try {
      states.push(await sandboxes.read(await sandboxes.openSandbox(vni)));
    } catch (err) {
      lines.push(`cannot read sandbox namespace ${sandboxes.name(vni)}: ${asSwarmletError(err).message}`);
    }
  }
  lines.push(...sandboxReport(wanted, states));
  try {
    const host = await sandboxes.hostNl();
    for (const l of await sandboxes.hostLeftovers()) lines.push(`stale link ${l.name} in the host network namespace (VNI ${l.vxlan?.vni})`);
    for (const r of await host.listRoutes({ family: 4 })) {
      if (r.dst === 'default') continue;
      for (const w of wanted) if (overlaps(r.dst, w.subnet)) lines.push(`the host network namespace has a route to ${r.dst}, inside overlay subnet ${w.subnet}`);
    }
  } catch (err) {
    lines.push(`cannot read the host network namespace: ${asSwarmletError(err).message}`);
  }
  return lines;
}

/**
 * What is wrong with the running tasks' sandbox-side veths: each on a network wanted here (VNI
 * by network id in `vnis`) must be there, a port of the network's bridge and up. A missing
 * sandbox is doctorOverlays()'s to report.
 */
export async function checkOverlayTasks(sandboxes: OverlaySandboxes, vnis: Map<string, number>, tasks: RunningTask[]): Promise<string[]> {
  const links = new Map<number, LinkInfo[] | undefined>();
  const lines: string[] = [];
  for (const t of tasks) {
    for (const a of t.attachments) {
      const vni = vnis.get(a.networkId);
      if (a.driver !== 'overlay' || vni === undefined) continue;
      if (!links.has(vni)) {
        try {
          const sb = await sandboxes.openSandbox(vni);
          links.set(vni, await sandboxes.guarded(sb, () => sb.nl.listLinks()));
        } catch {
          links.set(vni, undefined);
        }
      }
      const list = links.get(vni);
      if (!list) continue;
      const line = checkTaskPort(list, overlayVethName(vni, t.taskId), bridgeName(vni), `sandbox ${sandboxes.name(vni)}`, t.taskId);
      if (line) lines.push(line);
    }
  }
  return lines;
}
