/**
 * The host's VXLAN filter, rendered as `nft list table` prints it (pure; no kernel): the part of
 * docker's encrypted overlay this kernel can do without IPsec. Only the swarm's nodes may send
 * VXLAN to this host: UDP to port 4789 from any other address is dropped.
 *
 * One `ip swarmlet-vxlan` table in the host's network namespace, where the VXLAN devices' UDP
 * sockets are (the devices are made there, then moved into their sandboxes: the socket stays; see
 * overlay-driver.ts). The sockets are IPv4 (the local VTEP is the node's IPv4 advertise address),
 * so an `ip` table sees every packet they could receive. Applied atomically with renderNftReplace.
 *
 * The same table takes VXLAN out of connection tracking (`notrack` at the raw priority, in
 * prerouting and output): nothing NATs or follows VXLAN's UDP, yet with the host's own NAT tables
 * loaded every encapsulated packet would be looked up and kept in the conntrack table twice per
 * hop (sender's output, receiver's prerouting); measured, that lookup was the largest netfilter
 * cost of a request through the routing mesh from a node without the task. The filter does not
 * need the state: it matches the source address alone.
 */
import { VXLAN_PORT } from '../../../services/common/vxlan';
import { FILTER_INPUT, renderTable, sortedAddresses } from './lb-nft';

export const VXLAN_NFT_TABLE = 'swarmlet-vxlan';

const RAW_PREROUTING = 'type filter hook prerouting priority raw; policy accept;';
const RAW_OUTPUT = 'type filter hook output priority raw; policy accept;';

/**
 * The table that admits VXLAN from these VTEPs (the advertise addresses of the swarm's nodes,
 * this one's included) and drops it from every other source, and keeps VXLAN out of connection
 * tracking; invalid addresses are left out.
 * '' (no table) when there is none: a manager that sends no node addresses filters nothing.
 */
export function renderVxlanFilterNft(vteps: string[]): string {
  const allowed = sortedAddresses(vteps);
  if (allowed.length === 0) return '';
  const from = allowed.length === 1 ? allowed[0] : `{ ${allowed.join(', ')} }`;
  const notrack = `udp dport ${VXLAN_PORT} notrack`;
  return renderTable(VXLAN_NFT_TABLE, [
    { name: 'raw-prerouting', hook: RAW_PREROUTING, rules: [notrack] },
    { name: 'raw-output', hook: RAW_OUTPUT, rules: [notrack] },
    { name: 'input', hook: FILTER_INPUT, rules: [`udp dport ${VXLAN_PORT} ip saddr != ${from} drop`] },
  ]);
}
