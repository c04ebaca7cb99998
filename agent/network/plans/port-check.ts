/**
 * What `network doctor` says about a task's interfaces, from link and address listings. Pure.
 */
import type { AddressInfo, LinkInfo } from '../netlink/types';

/**
 * A task's host-side veth `veth` (in `where`: a sandbox or the host) must be there, a port of
 * `master` and up; the sentence says what is wrong, or undefined.
 */
export function checkTaskPort(links: LinkInfo[], veth: string, master: string, where: string, taskId: string): string | undefined {
  const link = links.find((l) => l.name === veth);
  if (!link || link.kind !== 'veth') return `task ${taskId}: missing veth ${veth} in ${where} (want a port of ${master})`;
  const bridge = links.find((l) => l.name === master && l.kind === 'bridge');
  if (!bridge || link.masterIndex !== bridge.index) return `task ${taskId}: veth ${veth} in ${where} is not a port of ${master}`;
  if (!link.up) return `task ${taskId}: veth ${veth} in ${where} is down`;
  return undefined;
}

/** The task's own end `eth` (in its namespace) must be there and up. */
export function checkTaskEnd(links: LinkInfo[], eth: string, network: string, taskId: string): string | undefined {
  const link = links.find((l) => l.name === eth);
  if (!link) return `task ${taskId}: missing ${eth} (network ${network}) in its namespace`;
  if (!link.up) return `task ${taskId}: ${eth} (network ${network}) is down in its namespace`;
  return undefined;
}

/**
 * A bridge that holds a subnet's gateway must be there, up, with `want` (gateway/prefix), and be
 * the only interface of its namespace with an address in that subnet (`inSubnet` says whether an
 * address lies in it).
 */
export function checkGatewayBridge(links: LinkInfo[], addresses: AddressInfo[], bridge: string, want: string, inSubnet: (address: string) => boolean, what: string): string[] {
  const link = links.find((l) => l.name === bridge);
  if (!link || link.kind !== 'bridge') return [`missing bridge ${bridge} (${what})`];
  const lines: string[] = [];
  if (!link.up) lines.push(`bridge ${bridge} (${what}) is down`);
  if (!addresses.some((a) => a.index === link.index && a.family === 4 && a.cidr === want)) lines.push(`bridge ${bridge} (${what}) lacks its address ${want}`);
  for (const a of addresses) {
    if (a.family === 4 && a.index !== link.index && inSubnet(a.address)) lines.push(`${a.ifname} holds ${a.cidr}, inside the subnet of bridge ${bridge} (${what})`);
  }
  return lines;
}
