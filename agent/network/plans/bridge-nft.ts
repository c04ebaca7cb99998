/**
 * The nftables ruleset of the bridge driver, rendered as text for `nft -f -` (pure; no kernel).
 *
 * One table, `inet swarmlet-bridge`, replaced as a whole: the text first adds the table (a no-op
 * when it exists), deletes it, then declares it again, all in one transaction, so the kernel goes
 * from the old rules to the new ones atomically.
 *   - postrouting (nat): traffic from a non-internal bridge network's subnet leaving through an
 *     interface that is not one of the driver's bridges is masqueraded (takes the host's address);
 *   - forward (filter): traffic between two different bridges of the driver is dropped; an
 *     internal network's bridge neither sends to nor receives from any other interface.
 * Traffic between tasks of the same bridge is switched by the bridge and never seen here; an
 * isolated bridge (the gateway bridge, whose ports the driver isolates from each other) also
 * drops what would be routed from it back to itself. Connections the host DNATed (published
 * ports, lb-nft.ts) pass both drops: a task reaches a port its own node publishes.
 */
import { invalidArgument } from '../../../services/common/errors';

export const BRIDGE_NFT_TABLE = 'swarmlet-bridge';

export interface BridgeNftNetwork {
  /** The Linux bridge of the network. */
  bridge: string;
  /** IPv4 CIDR of the network, e.g. 10.1.2.0/24. */
  subnet: string;
  internal: boolean;
  /** Tasks on it must not reach each other (the gateway bridge). */
  isolated?: boolean;
}

const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;
const CIDR4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;

function checkNetwork(n: BridgeNftNetwork): void {
  if (!IFNAME.test(n.bridge)) throw invalidArgument(`invalid bridge name ${JSON.stringify(n.bridge)}`);
  const m = CIDR4.exec(n.subnet);
  if (!m || m.slice(1, 5).some((o) => Number(o) > 255) || Number(m[5]) > 32) throw invalidArgument(`invalid IPv4 subnet ${JSON.stringify(n.subnet)}`);
}

const q = (name: string) => `"${name}"`;
const set = (names: string[]) => (names.length === 1 ? q(names[0]) : `{ ${names.map(q).join(', ')} }`);

/** The whole `nft -f -` input for these networks (sorted by bridge name, duplicates dropped). */
export function renderBridgeNft(networks: BridgeNftNetwork[]): string {
  for (const n of networks) checkNetwork(n);
  const byBridge = new Map<string, BridgeNftNetwork>();
  for (const n of [...networks].sort((a, b) => (a.bridge < b.bridge ? -1 : a.bridge > b.bridge ? 1 : 0))) {
    if (!byBridge.has(n.bridge)) byBridge.set(n.bridge, n);
  }
  const list = [...byBridge.values()];
  const bridges = list.map((n) => n.bridge);

  const forward: string[] = [];
  for (const n of list) {
    if (n.internal) {
      forward.push(`iifname ${q(n.bridge)} oifname != ${q(n.bridge)} drop`);
      forward.push(`oifname ${q(n.bridge)} iifname != ${q(n.bridge)} drop`);
      continue;
    }
    if (n.isolated) forward.push(`iifname ${q(n.bridge)} oifname ${q(n.bridge)} ct status ! dnat drop`);
    const others = bridges.filter((b) => b !== n.bridge);
    if (others.length) forward.push(`iifname ${q(n.bridge)} oifname ${set(others)} ct status ! dnat drop`);
  }
  const postrouting = list.filter((n) => !n.internal).map((n) => `ip saddr ${n.subnet} oifname != ${set(bridges)} masquerade`);

  const lines = [
    `table inet ${BRIDGE_NFT_TABLE}`,
    `delete table inet ${BRIDGE_NFT_TABLE}`,
    `table inet ${BRIDGE_NFT_TABLE} {`,
    '\tchain forward {',
    '\t\ttype filter hook forward priority filter; policy accept;',
    ...forward.map((r) => `\t\t${r}`),
    '\t}',
    '\tchain postrouting {',
    '\t\ttype nat hook postrouting priority srcnat; policy accept;',
    ...postrouting.map((r) => `\t\t${r}`),
    '\t}',
    '}',
  ];
  return `${lines.join('\n')}\n`;
}

/** The `nft -f -` input that removes the table (adding it first, so a missing table is fine). */
export function renderBridgeNftRemoval(): string {
  return `table inet ${BRIDGE_NFT_TABLE}\ndelete table inet ${BRIDGE_NFT_TABLE}\n`;
}
