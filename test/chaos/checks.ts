/**
 * The chaos suite's pure checks: each takes what was read from the real system (the API, the
 * kernel of the lab's hosts, the probes' counts) and says what is wrong, one sentence per problem.
 * No I/O here: invariants.ts reads, these judge (unit-tested in test/unit/chaos-checks.test.ts).
 */

/** One write of the workload: what it set, and whether the CLI acknowledged it (exit 0). */
export interface WriteRecord {
  seq: number;
  replicas: number;
  /** Set on the writes that also changed the tasks' env (CHAOS_GEN=gen, a rolling update). */
  gen?: number;
  acked: boolean;
  /** The service's specVersion read back right after the ack; undefined when it could not be read. */
  specVersion?: number;
  /** ms since the run started. */
  at: number;
  via: string;
  error?: string;
}

/** What the service's spec says now, as far as the writes are concerned. */
export interface ObservedSpec {
  /** The service's chaos.seq label. */
  seq: number | undefined;
  replicas: number;
  /** The tasks' CHAOS_GEN env var. */
  gen: number | undefined;
  specVersion: number;
}

/**
 * No acknowledged write lost: the spec holds the last acknowledged write, or a later one that was
 * attempted (a write whose CLI call failed may still have been applied; that is not a loss).
 */
export function checkWrites(writes: readonly WriteRecord[], seen: ObservedSpec): string[] {
  const acked = writes.filter((w) => w.acked);
  const last = acked[acked.length - 1];
  if (!last) return [];
  const problems: string[] = [];
  if (seen.seq === undefined || seen.seq < last.seq) {
    problems.push(`acknowledged write #${last.seq} (replicas ${last.replicas}) lost: the spec holds ${seen.seq === undefined ? 'no write of the workload' : `#${seen.seq}`}`);
  } else if (seen.seq === last.seq) {
    if (seen.replicas !== last.replicas) problems.push(`acknowledged write #${last.seq} set replicas ${last.replicas}, the spec says ${seen.replicas}`);
  } else {
    const w = writes.find((x) => x.seq === seen.seq);
    if (!w) problems.push(`the spec holds write #${seen.seq}, which the workload never made`);
    else if (seen.replicas !== w.replicas) problems.push(`the spec holds write #${w.seq} (not acknowledged) with replicas ${seen.replicas}, not the ${w.replicas} it set`);
  }
  const lastGen = [...acked].reverse().find((w) => w.gen !== undefined)?.gen;
  const maxGen = Math.max(0, ...writes.map((w) => w.gen ?? 0));
  if (lastGen !== undefined && (seen.gen === undefined || seen.gen < lastGen)) problems.push(`acknowledged rolling update CHAOS_GEN=${lastGen} lost: the tasks' spec has ${seen.gen === undefined ? 'none' : `CHAOS_GEN=${seen.gen}`}`);
  else if (seen.gen !== undefined && seen.gen > maxGen) problems.push(`the tasks' spec has CHAOS_GEN=${seen.gen}, which the workload never set`);
  const versions = acked.map((w) => w.specVersion).filter((v): v is number => v !== undefined);
  const maxVersion = Math.max(0, ...versions);
  if (seen.specVersion < maxVersion) problems.push(`specVersion went back from ${maxVersion} (read after an ack) to ${seen.specVersion}`);
  return problems;
}

/** A task as the checks need it. */
export interface TaskView {
  id: string;
  serviceName: string;
  slot: number;
  nodeId: string;
  running: boolean;
  desiredRunning: boolean;
  specVersion: number;
  /** network name -> address without prefix, mac, vni. */
  networks: { name: string; addr: string; mac: string; vni: number }[];
}

/** Replica counts converge: every service has as many running tasks as it wants, each at its current spec, and none left over. */
export function checkReplicas(services: readonly { name: string; replicas: number; specVersion: number }[], tasks: readonly TaskView[]): string[] {
  const problems: string[] = [];
  for (const s of services) {
    const mine = tasks.filter((t) => t.serviceName === s.name);
    const running = mine.filter((t) => t.running && t.desiredRunning);
    const current = running.filter((t) => t.specVersion === s.specVersion);
    if (running.length !== s.replicas) problems.push(`${s.name}: ${running.length} tasks running, ${s.replicas} wanted`);
    else if (current.length !== running.length) problems.push(`${s.name}: ${running.length - current.length} running tasks are of an older spec than ${s.specVersion}`);
    const leftover = mine.filter((t) => t.running && !t.desiredRunning);
    if (leftover.length > 0) problems.push(`${s.name}: ${leftover.length} tasks still running though told to stop (${leftover.map((t) => t.id.slice(0, 12)).join(', ')})`);
  }
  return problems;
}

/**
 * No duplicate task beyond what the update order allows: `live` is the task ids whose cgroup on a
 * host holds a process. With stop-first updates (the default) a slot runs at most one task.
 */
export function checkDuplicates(tasks: readonly TaskView[], live: readonly { taskId: string; host: string }[], perSlot = 1): string[] {
  const byId = new Map(tasks.map((t) => [t.id, t]));
  const slots = new Map<string, string[]>();
  const unknown: string[] = [];
  for (const l of live) {
    const t = byId.get(l.taskId);
    if (!t) {
      unknown.push(`${l.taskId.slice(0, 12)} on ${l.host}`);
      continue;
    }
    const key = `${t.serviceName}.${t.slot}`;
    slots.set(key, [...(slots.get(key) ?? []), `${t.id.slice(0, 12)} on ${l.host}`]);
  }
  const problems = [...slots].filter(([, ids]) => ids.length > perSlot).map(([slot, ids]) => `slot ${slot} runs ${ids.length} task processes: ${ids.join(', ')}`);
  if (unknown.length > 0) problems.push(`task processes the swarm does not know: ${unknown.join(', ')}`);
  return problems;
}

const sameSet = (a: readonly string[], b: readonly string[]) => [...a].sort().join() === [...b].sort().join();

/** No stale DNS: `tasks.NAME` answers exactly the running tasks' addresses, NAME the VIP. */
export function checkDns(name: string, answers: { tasks: string[]; vip: string[] }, want: { tasks: string[]; vip: string }): string[] {
  const problems: string[] = [];
  if (!sameSet(answers.tasks, want.tasks)) {
    const stale = answers.tasks.filter((a) => !want.tasks.includes(a));
    const missing = want.tasks.filter((a) => !answers.tasks.includes(a));
    problems.push(`tasks.${name} answers [${[...answers.tasks].sort().join(', ')}]${stale.length ? `, stale ${stale.join(', ')}` : ''}${missing.length ? `, missing ${missing.join(', ')}` : ''}`);
  }
  if (!sameSet(answers.vip, [want.vip])) problems.push(`${name} answers [${answers.vip.join(', ')}], not the VIP ${want.vip}`);
  return problems;
}

/** A remote endpoint a host's overlay must know: its MAC and address on the network, and the VTEP (node address) behind it. */
export interface Endpoint {
  mac: string;
  addr: string;
  vtep: string;
}

/** `bridge -j fdb show dev vx-N` entries that point at a VTEP, and `ip -j neigh show dev vx-N`. */
export interface OverlayReading {
  host: string;
  vni: number;
  fdb: { mac: string; dst: string }[];
  neigh: { dst: string; lladdr: string }[];
}

/**
 * No stale FDB or neighbour entries: on each host's `vx-<vni>`, every entry names a remote endpoint
 * that exists now, at its VTEP, and every such endpoint has its entries.
 */
export function checkOverlay(r: OverlayReading, remote: readonly Endpoint[]): string[] {
  const problems: string[] = [];
  const where = `${r.host} vx-${r.vni}`;
  const macs = new Map(remote.map((e) => [e.mac.toLowerCase(), e]));
  const addrs = new Map(remote.map((e) => [e.addr, e]));
  for (const f of r.fdb) {
    const e = macs.get(f.mac.toLowerCase());
    if (!e) problems.push(`${where}: stale FDB entry ${f.mac} -> ${f.dst} (no such endpoint now)`);
    else if (e.vtep !== f.dst) problems.push(`${where}: FDB entry ${f.mac} -> ${f.dst}, but it lives at ${e.vtep}`);
  }
  for (const n of r.neigh) {
    const e = addrs.get(n.dst);
    if (!e) problems.push(`${where}: stale neighbour entry ${n.dst} -> ${n.lladdr} (no such endpoint now)`);
    else if (e.mac.toLowerCase() !== n.lladdr.toLowerCase()) problems.push(`${where}: neighbour entry ${n.dst} -> ${n.lladdr}, but its MAC is ${e.mac}`);
  }
  const fdbMacs = new Set(r.fdb.map((f) => f.mac.toLowerCase()));
  const neighAddrs = new Set(r.neigh.map((n) => n.dst));
  for (const e of remote) {
    if (!fdbMacs.has(e.mac.toLowerCase())) problems.push(`${where}: no FDB entry for ${e.mac} (${e.addr} at ${e.vtep})`);
    if (!neighAddrs.has(e.addr)) problems.push(`${where}: no neighbour entry for ${e.addr}`);
  }
  return problems;
}

/** Every IPv4 address written in `text` (an `nft list` output), as a whole address. */
export function addressesIn(text: string): Set<string> {
  return new Set(text.match(/(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.])/g) ?? []);
}

/**
 * No stale nft elements: the ruleset `text` names every live backend and no address of a task
 * that is gone (unless a live task holds it again).
 */
export function checkNft(where: string, text: string, live: readonly string[], gone: readonly string[]): string[] {
  const found = addressesIn(text);
  const problems: string[] = [];
  const stale = [...new Set(gone)].filter((a) => found.has(a) && !live.includes(a));
  const missing = live.filter((a) => !found.has(a));
  if (stale.length > 0) problems.push(`${where}: stale backends ${stale.join(', ')}`);
  if (missing.length > 0) problems.push(`${where}: missing backends ${missing.join(', ')}`);
  return problems;
}

/** One second of a probe: requests that succeeded and failed, per target. */
export interface ProbeSecond {
  /** Unix time, whole seconds. */
  t: number;
  r: Record<string, [number, number]>;
}

/** Requests that succeeded and failed in [fromMs, toMs) (unix ms), over the targets `pick` accepts. */
export function countWindow(series: readonly ProbeSecond[], fromMs: number, toMs: number, pick: (target: string) => boolean = () => true): { ok: number; failed: number; seconds: number } {
  let ok = 0;
  let failed = 0;
  let seconds = 0;
  for (const s of series) {
    if (s.t * 1000 < fromMs || s.t * 1000 >= toMs) continue;
    seconds++;
    for (const [target, [o, f]] of Object.entries(s.r)) {
      if (!pick(target)) continue;
      ok += o;
      failed += f;
    }
  }
  return { ok, failed, seconds };
}

/**
 * The reference for a window of `windowMs`: the failures of the same client over a fault-free
 * baseline, taken over an equal length (scaled when the window is longer than the baseline).
 */
export function referenceFailed(baseline: readonly ProbeSecond[], baseFromMs: number, baseToMs: number, windowMs: number, pick: (target: string) => boolean = () => true): number {
  const span = baseToMs - baseFromMs;
  if (span <= 0) return 0;
  if (windowMs <= span) return countWindow(baseline, baseFromMs, baseFromMs + windowMs, pick).failed;
  return Math.round((countWindow(baseline, baseFromMs, baseToMs, pick).failed * windowMs) / span);
}

/** One parsed line of a probe's output, or undefined. */
export function parseProbeLine(line: string): ProbeSecond | undefined {
  try {
    const v = JSON.parse(line) as ProbeSecond;
    return typeof v.t === 'number' && v.r && typeof v.r === 'object' ? v : undefined;
  } catch {
    return undefined;
  }
}

/** `bridge -j fdb show` output: the entries that name a remote VTEP. */
export function parseFdb(json: string): { mac: string; dst: string }[] {
  const rows = json.trim() ? (JSON.parse(json) as { mac?: string; dst?: string }[]) : [];
  return rows.filter((r) => r.mac && r.dst && r.mac !== '00:00:00:00:00:00').map((r) => ({ mac: r.mac as string, dst: r.dst as string }));
}

/** `ip -j neigh show` output: the entries with a link-layer address. */
export function parseNeigh(json: string): { dst: string; lladdr: string }[] {
  const rows = json.trim() ? (JSON.parse(json) as { dst?: string; lladdr?: string }[]) : [];
  return rows.filter((r) => r.dst && r.lladdr).map((r) => ({ dst: r.dst as string, lladdr: r.lladdr as string }));
}

/**
 * The problems that are about a dead host: those naming its address or an address its tasks had
 * (what must not outlive it), as opposed to the churn of the workload's own updates meanwhile.
 */
export function aboutHost(problems: readonly string[], addrs: readonly string[]): string[] {
  const wanted = new Set(addrs.filter(Boolean));
  return problems.filter((p) => [...addressesIn(p)].some((a) => wanted.has(a)));
}

/** A fault's row of the table. */
export interface FaultRow {
  fault: string;
  /** What "detect" means for this fault. */
  detectWhat: string;
  detectMs: number | null;
  convergeMs: number | null;
  failed: { mesh: number; vip: number };
  reference: { mesh: number; vip: number };
  requests: { mesh: number; vip: number };
  writes: { acked: number; failed: number };
  /** Invariants that did not hold when the fault's convergence wait ended: name -> its problems. */
  broken: Record<string, string[]>;
  /**
   * For a host that stays down: whether DNS, nft rules, FDB and neighbour entries stopped pointing
   * at it and its tasks while it was still down (ms from the injection until they did, or null
   * with what still did). Undefined: not checked.
   */
  whileDown?: { ms: number | null; broken: Record<string, string[]> };
  notes: string[];
  skipped?: string;
}

const verdictWord = (broken: Record<string, string[]>) => (Object.keys(broken).length === 0 ? 'yes' : `broke ${Object.keys(broken).join(', ')}`);
const secs = (ms: number | null) => (ms === null ? '-' : `${(ms / 1000).toFixed(1)} s`);

/** The table, one row per fault, and below it every broken invariant in full. */
export function renderTable(rows: readonly FaultRow[]): string {
  const head = ['fault', 'detected', 'converged', 'failed mesh (ref)', 'failed VIP (ref)', 'writes ok/failed', 'invariants'];
  const cells = rows.map((r) =>
    r.skipped
      ? [r.fault, '-', '-', '-', '-', '-', `not run: ${r.skipped}`]
      : [
          r.fault,
          secs(r.detectMs),
          r.convergeMs === null ? 'no' : secs(r.convergeMs),
          `${r.failed.mesh}/${r.requests.mesh} (${r.reference.mesh})`,
          `${r.failed.vip}/${r.requests.vip} (${r.reference.vip})`,
          `${r.writes.acked}/${r.writes.failed}`,
          `${r.whileDown ? `while down: ${verdictWord(r.whileDown.broken)}; after: ` : ''}${verdictWord(r.broken)}`,
        ],
  );
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] as string).length)));
  const line = (c: string[]) => c.map((x, i) => (i === 0 || i === 6 ? x.padEnd(widths[i] as number) : x.padStart(widths[i] as number))).join('  ').trimEnd();
  const out = [line(head), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)];
  const details: string[] = [];
  for (const r of rows) {
    if (r.skipped) continue;
    details.push(`${r.fault}: detected = ${r.detectWhat}`);
    if (r.whileDown) {
      details.push(`  while down: ${r.whileDown.ms === null ? 'these still pointed at the dead host or its tasks when it came back' : `nothing pointed at the dead host or its tasks any more ${secs(r.whileDown.ms)} after the kill`}`);
      for (const [name, problems] of Object.entries(r.whileDown.broken)) for (const p of problems.slice(0, 8)) details.push(`    ${name}: ${p}`);
    }
    for (const [name, problems] of Object.entries(r.broken)) for (const p of problems.slice(0, 8)) details.push(`  ${name}: ${p}${problems.length > 8 && p === problems[7] ? ` (and ${problems.length - 8} more)` : ''}`);
    for (const n of r.notes) details.push(`  note: ${n}`);
  }
  return `${[...out, '', ...details].join('\n')}\n`;
}
