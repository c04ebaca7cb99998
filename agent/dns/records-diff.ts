/**
 * Network doctor's view of the embedded DNS: the records the resolver holds against the ones the
 * cluster gives, as plain lines. Pure.
 */
import type { NetworkServices, ServiceRecord } from '../../services/gen/swarmlet/v1/dispatcher';

function describeService(s: ServiceRecord): string {
  const tasks = s.tasks
    .map((t) => `${t.name || t.taskId}=${t.ip}${t.serving ? '' : '(not serving)'}`)
    .sort()
    .join(' ');
  return `${s.vip ? `vip ${s.vip}` : 'dnsrr'}; tasks [${tasks}]`;
}

function servicesByName(n: NetworkServices): Map<string, string> {
  return new Map(n.services.map((s) => [s.name, describeService(s)]));
}

/** Each difference between the records `held` and the records `want`, one line each, per network. */
export function planDnsRecordDifferences(held: NetworkServices[], want: NetworkServices[]): string[] {
  const out: string[] = [];
  const heldById = new Map(held.map((n) => [n.networkId, n]));
  const wantIds = new Set(want.map((n) => n.networkId));
  for (const w of want) {
    const h = heldById.get(w.networkId);
    const label = `dns: network ${w.name || w.networkId}`;
    if (!h) {
      out.push(`${label}: the resolver holds no records`);
      continue;
    }
    const hs = servicesByName(h);
    const ws = servicesByName(w);
    for (const [name, desc] of ws) {
      const have = hs.get(name);
      if (have === undefined) out.push(`${label}: service ${name} missing (want ${desc})`);
      else if (have !== desc) out.push(`${label}: service ${name}: holds ${have}, want ${desc}`);
    }
    for (const name of hs.keys()) if (!ws.has(name)) out.push(`${label}: service ${name} held but gone from the cluster`);
  }
  for (const h of held) {
    if (!wantIds.has(h.networkId)) out.push(`dns: network ${h.name || h.networkId}: records held for a network no task here is on`);
  }
  return out;
}
