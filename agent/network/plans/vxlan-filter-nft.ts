/**
 * The host's VXLAN filter, rendered as `nft list table` prints it (pure; no kernel): the part of
 * docker's encrypted overlay this kernel can do without IPsec. Only the swarm's nodes may send
 * VXLAN to this host: UDP to port 4789 from any other address is dropped.
 *
 * One `ip swarmlet-vxlan` table in the host's network namespace, where the VXLAN devices' UDP
 * sockets are (the devices are made there, then moved into their sandboxes: the socket stays; see
 * overlay-driver.ts). The sockets are IPv4 (the local VTEP is the node's IPv4 advertise address),
 * so an `ip` table sees every packet they could receive. Applied atomically with renderNftReplace.
 */
import { VXLAN_PORT } from '../../../services/common/vxlan';
import { FILTER_INPUT, renderTable, sortedAddresses } from './lb-nft';

export const VXLAN_NFT_TABLE = 'swarmlet-vxlan';

/**
 * The table that admits VXLAN from these VTEPs (the advertise addresses of the swarm's nodes,
 * this one's included) and drops it from every other source; invalid addresses are left out.
 * '' (no table) when there is none: a manager that sends no node addresses filters nothing.
 */
export function renderVxlanFilterNft(vteps: string[]): string {
  const allowed = sortedAddresses(vteps);
  if (allowed.length === 0) return '';
  const from = allowed.length === 1 ? allowed[0] : `{ ${allowed.join(', ')} }`;
  return renderTable(VXLAN_NFT_TABLE, [{ name: 'input', hook: FILTER_INPUT, rules: [`udp dport ${VXLAN_PORT} ip saddr != ${from} drop`] }]);
}
