/**
 * The chaos suite (`npm run chaos`): a lab of 3 managers and 2 workers under a steady workload, put
 * through each fault in turn; after each, the invariants are checked against the real system until
 * they all hold again (or a time-out says which did not). Prints a table per fault; measures and
 * reports, and fails the run only when it cannot run at all.
 *
 *   scripts/sandbox.sh node dist/test/chaos/main.js [--only FAULT,...] [--json FILE] [--prefix P] [--keep-logs DIR]
 *
 * The workload: service `web` (whoami-server, published on 8080, on overlay `chaosnet`) updated
 * in a loop through the CLI (replicas and an env var each time, every write recorded), service
 * `vipclient` (pinned to h5, never a victim) from whose task a probe asks http://web:8000 (the VIP,
 * by name), and a probe in a lab client namespace asking the published port on every node.
 * Faults strike h1-h4; h5 stays up so the VIP client keeps running.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { benchMain, progress, readFlags, withLab, type BenchOptions } from '../../bench/lab-helpers';
import { SwarmletError } from '../../services/common/errors';
import { formSwarm, sw } from '../e2e/cluster-helpers';
import { labCgroupRoot } from '../lab/cgroups';
import { listNetns } from '../lab/ip-command';
import { requireBuiltCli, type Lab, type LabHost } from '../lab/lab';
import { sleep } from '../lab/process-tree';
import { uniqueSuffix } from '../support/unique';
import { aboutHost, countWindow, referenceFailed, renderTable, type FaultRow } from './checks';
import { FAULTS, type Fault } from './faults';
import { Invariants, leftovers, type Verdict } from './invariants';
import { ChaosSwarm } from './swarm';
import { Prober, Writer } from './workload';

const SERVICE = 'web';
const CLIENT = 'vipclient';
const NETWORK = 'chaosnet';
const PORT = 8080;
const TARGET = 8000;
const BASELINE_MS = 20_000;
const CONVERGE_TIMEOUT_MS = 90_000;
const SETTLE_TIMEOUT_MS = 90_000;
const CHECK_EVERY_MS = 1500;
const DETECT_EVERY_MS = 300;
/** Faults not started by then are skipped: the whole run stays under 20 minutes. */
const BUDGET_MS = 14 * 60_000;
/** What must hold even while a dead host is still down: nothing may keep pointing at it. */
const STALE_STATE = ['dns', 'nft', 'overlay'] as const;
const USAGE = 'main.js [--only FAULT,...] [--json FILE] [--prefix P] [--keep-logs DIR]';

interface ChaosOptions extends BenchOptions {
  only: string[] | undefined;
  json: string | undefined;
}

export function parseArgs(argv: string[]): ChaosOptions {
  const flags = readFlags(argv, ['--only', '--json', '--prefix', '--keep-logs'], USAGE);
  const only = flags.get('--only')?.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = (only ?? []).filter((f) => !FAULTS.some((x) => x.name === f));
  if (unknown.length > 0) throw new SwarmletError('InvalidArgument', `unknown fault ${unknown.join(', ')}; the faults are: ${FAULTS.map((f) => f.name).join(', ')}`);
  if (only && only.length === 0) throw new SwarmletError('InvalidArgument', `--only needs at least one fault: ${FAULTS.map((f) => f.name).join(', ')}`);
  return Object.freeze({ runs: 1, prefix: flags.get('--prefix') ?? `chaos${uniqueSuffix()}`, keepLogs: flags.get('--keep-logs'), only, json: flags.get('--json') });
}

const started = Date.now();

class ChaosRun {
  readonly swarm: ChaosSwarm;
  readonly writer: Writer;
  readonly invariants: Invariants;
  mesh!: Prober;
  vip!: Prober;
  baseline = { from: 0, to: 0 };
  /** With no fault: from the end of the reference window's writes until every invariant held. */
  baselineConvergeMs: number | null = null;
  readonly rows: FaultRow[] = [];
  leftoverLines: string[] = [];

  constructor(readonly lab: Lab) {
    this.swarm = new ChaosSwarm(lab);
    this.writer = new Writer(this.swarm, SERVICE, started);
    this.invariants = new Invariants(this.swarm, { service: SERVICE, client: CLIENT, network: NETWORK }, this.writer);
  }

  async setUp(): Promise<void> {
    const { lab, swarm } = this;
    const whoami = join(lab.repoRoot, 'dist', 'test', 'support', 'whoami-server.js');
    const probe = join(lab.repoRoot, 'dist', 'test', 'chaos', 'probe.js');
    for (const f of [whoami, probe]) if (!existsSync(f)) throw new SwarmletError('FailedPrecondition', `${f} is missing: run 'npm run build' first`);
    const client = await lab.addClient();
    const [h1, , , , h5] = lab.hosts as [LabHost, LabHost, LabHost, LabHost, LabHost];
    progress('forming the swarm: h1-h3 managers, h4 and h5 workers');
    await formSwarm(lab, swarm.managers, swarm.workers);
    await sw(lab, h1, ['network', 'create', '-d', 'overlay', NETWORK]);
    await sw(lab, h1, ['service', 'create', '-d', '--name', SERVICE, '--replicas', '3', '--network', NETWORK, '-p', `${PORT}:${TARGET}`, 'exec:/', process.execPath, whoami, String(TARGET)]);
    await sw(lab, h1, ['service', 'create', '-d', '--name', CLIENT, '--network', NETWORK, '--constraint', `node.hostname==${h5.name}`, 'exec:/', 'sleep', '1000000']);
    await this.writer.writeOnce();
    const settled = await this.converge(SETTLE_TIMEOUT_MS);
    if (settled.ms === null) throw new SwarmletError('Unavailable', `the fresh swarm did not reach every invariant within ${SETTLE_TIMEOUT_MS / 1000} s: ${JSON.stringify(settled.verdict)}`);
    const r = this.invariants.read;
    progress(`every invariant holds (${(settled.ms / 1000).toFixed(1)} s); the last check read ${r.taskCgroups} task cgroups with processes, ${r.dnsAnswers} DNS answers, ${r.nftTables} nft tables, ${r.sandboxes} overlay sandboxes with ${r.fdb} FDB and ${r.neigh} neighbour entries`);
    this.mesh = new Prober('mesh', async () => ['nsenter', `--net=/run/netns/${client.netns}`, '--', process.execPath, probe, ...lab.hosts.map((h) => `http://${h.addr}:${PORT}/`)]);
    this.vip = new Prober('vip', async () => {
      const tasks = await swarm.anyManager((h) => swarm.tasks(h, false));
      const pid = tasks.find((t) => t.serviceName === CLIENT && ChaosSwarm.view(t).running)?.status?.container?.pid;
      if (!pid) throw new SwarmletError('Unavailable', `no running ${CLIENT} task`);
      return ['nsenter', `--net=/proc/${pid}/ns/net`, `--mount=/proc/${pid}/ns/mnt`, '--', process.execPath, probe, `http://${SERVICE}:${TARGET}/`];
    });
    this.mesh.start();
    this.vip.start();
  }

  /** Checks every CHECK_EVERY_MS until all invariants hold: ms taken (null on time-out) and the last verdict. */
  async converge(timeoutMs: number): Promise<{ ms: number | null; verdict: Verdict }> {
    const t0 = Date.now();
    let said = t0;
    for (;;) {
      const verdict = await this.invariants.check();
      if (Object.keys(verdict).length === 0) return { ms: Date.now() - t0, verdict };
      if (Date.now() - t0 > timeoutMs) return { ms: null, verdict };
      if (Date.now() - said > 20_000) {
        said = Date.now();
        progress(`  not converged after ${((said - t0) / 1000).toFixed(0)} s: ${Object.entries(verdict).map(([k, v]) => `${k} (${(v ?? [])[0]})`).join('; ')}`);
      }
      await sleep(CHECK_EVERY_MS);
    }
  }

  async measureBaseline(): Promise<void> {
    progress(`reference: ${BASELINE_MS / 1000} s of the workload with no fault`);
    await sleep(2000);
    this.writer.start();
    this.baseline.from = Date.now();
    await sleep(BASELINE_MS);
    this.baseline.to = Date.now();
    await this.writer.stop();
    const m = countWindow(this.mesh.series, this.baseline.from, this.baseline.to);
    const v = countWindow(this.vip.series, this.baseline.from, this.baseline.to);
    progress(`reference: mesh ${m.failed}/${m.ok + m.failed} failed, VIP ${v.failed}/${v.ok + v.failed} failed`);
    const settled = await this.converge(SETTLE_TIMEOUT_MS);
    this.baselineConvergeMs = settled.ms;
    if (settled.ms === null) progress(`note: after the reference window the invariants did not all hold: ${JSON.stringify(settled.verdict)}`);
    else progress(`reference: every invariant held again ${(settled.ms / 1000).toFixed(1)} s after the writes stopped`);
  }

  async runFault(f: Fault): Promise<FaultRow> {
    const row: FaultRow = { fault: f.name, detectWhat: '', detectMs: null, convergeMs: null, failed: { mesh: 0, vip: 0 }, reference: { mesh: 0, vip: 0 }, requests: { mesh: 0, vip: 0 }, writes: { acked: 0, failed: 0 }, broken: {}, notes: [] };
    const before = await this.converge(SETTLE_TIMEOUT_MS);
    if (before.ms === null) row.notes.push(`the invariants did not all hold before this fault: ${Object.keys(before.verdict).join(', ')}`);
    this.writer.start();
    await sleep(2000);
    const t0 = Date.now();
    progress(`${f.name}: injecting`);
    const run = await f.inject(this.swarm);
    row.detectWhat = run.detectWhat;
    let detectedAt: number | undefined;
    let polling = true;
    const poll = (async () => {
      while (polling && detectedAt === undefined) {
        if (await run.detect().catch(() => false)) detectedAt = Date.now();
        else await sleep(DETECT_EVERY_MS);
      }
    })();
    // Hold: at least minHoldMs; then until detected + afterDetectMs (and, for a host that stays
    // down, until the stale-state invariants hold without it), or maxHoldMs.
    let downHeld: number | undefined;
    let downVerdict: Verdict | undefined;
    for (;;) {
      const held = Date.now() - t0;
      if (held >= run.maxHoldMs) break;
      const detectedLongEnough = detectedAt !== undefined && Date.now() - detectedAt >= run.afterDetectMs;
      if (held >= run.minHoldMs && detectedLongEnough && (!run.downHost || downHeld !== undefined)) break;
      if (run.downHost && detectedAt !== undefined && downHeld === undefined) {
        const all = await this.invariants.check();
        const dead = this.invariants.addressesOf(run.downHost);
        downVerdict = Object.fromEntries(
          Object.entries(all).flatMap(([k, problems]) => {
            if (k === 'read') return [[k, problems ?? []]];
            const left = (STALE_STATE as readonly string[]).includes(k) ? aboutHost(problems ?? [], dead) : [];
            return left.length > 0 ? [[k, left]] : [];
          }),
        );
        if (Object.keys(downVerdict).length === 0) downHeld = Date.now() - t0;
        else await sleep(CHECK_EVERY_MS);
        continue;
      }
      await sleep(100);
    }
    if (run.downHost) row.whileDown = { ms: downHeld ?? null, broken: downHeld !== undefined ? {} : ((downVerdict ?? { read: ['not checked: the host was not shown Down while the fault held'] }) as Record<string, string[]>) };
    progress(`${f.name}: ${detectedAt !== undefined ? `detected after ${((detectedAt - t0) / 1000).toFixed(1)} s` : 'not detected'}; recovering`);
    await run.recover();
    const tRecovered = Date.now();
    await this.writer.stop();
    const conv = await this.converge(CONVERGE_TIMEOUT_MS);
    polling = false;
    await poll;
    const tEnd = Date.now();
    row.detectMs = detectedAt === undefined ? null : detectedAt - t0;
    row.convergeMs = conv.ms === null ? null : tEnd - tRecovered;
    if (conv.ms === null) row.broken = conv.verdict as Record<string, string[]>;
    const windowMs = tEnd - t0;
    const m = countWindow(this.mesh.series, t0, tEnd);
    const v = countWindow(this.vip.series, t0, tEnd);
    row.failed = { mesh: m.failed, vip: v.failed };
    row.requests = { mesh: m.ok + m.failed, vip: v.ok + v.failed };
    row.reference = {
      mesh: referenceFailed(this.mesh.series, this.baseline.from, this.baseline.to, windowMs),
      vip: referenceFailed(this.vip.series, this.baseline.from, this.baseline.to, windowMs),
    };
    const writes = this.writer.since(t0 - 2000);
    row.writes = { acked: writes.filter((w) => w.acked).length, failed: writes.filter((w) => !w.acked).length };
    const errors = [...new Set(writes.filter((w) => !w.acked).map((w) => w.error ?? ''))];
    if (errors.length > 0) row.notes.push(`refused writes said: ${errors.slice(0, 3).join(' | ')}`);
    row.notes.push(...run.notes);
    for (const p of [this.mesh, this.vip]) {
      const restarts = p.restarts.filter((x) => x.at >= t0 && x.at < tEnd);
      if (restarts.length > 0) row.notes.push(`the ${p.name} probe was restarted during the fault (${restarts.map((x) => x.why).join('; ')}): its requests meanwhile are not counted`);
    }
    progress(`${f.name}: ${conv.ms === null ? `did not converge within ${CONVERGE_TIMEOUT_MS / 1000} s (${Object.keys(conv.verdict).join(', ')})` : `converged ${((tEnd - tRecovered) / 1000).toFixed(1)} s after recovery`}; failed requests mesh ${m.failed}, VIP ${v.failed}`);
    return row;
  }

  /** Removes the services and the network; waits until nothing swarmlet made for them is left. */
  async removeAll(): Promise<void> {
    await this.mesh.stop();
    await this.vip.stop();
    const h = await this.swarm.waitLeader(60_000);
    const vnis = [...new Set((await this.swarm.tasks(h, true)).flatMap((t) => t.networks.filter((a) => a.networkName === NETWORK).map((a) => a.vni)))];
    await sw(this.lab, h, ['service', 'rm', SERVICE, CLIENT]);
    const t0 = Date.now();
    // As with docker, a network is refused while tasks are still on it: they stop first.
    for (;;) {
      const r = await this.lab.cli(h, ['network', 'rm', NETWORK]);
      if (r.code === 0) break;
      if (Date.now() - t0 > 60_000) throw new SwarmletError('Unavailable', `network rm ${NETWORK} still refused after 60 s: ${r.stderr.trim()}`);
      await sleep(1000);
    }
    for (;;) {
      this.leftoverLines = await leftovers(this.swarm, this.invariants.taskIds, vnis, PORT);
      if (this.leftoverLines.length === 0 || Date.now() - t0 > 60_000) break;
      await sleep(2000);
    }
    progress(this.leftoverLines.length === 0 ? `removed: every kernel object made for the services and the network is gone (${((Date.now() - t0) / 1000).toFixed(1)} s)` : `left after removal: ${this.leftoverLines.length} objects`);
  }
}

/** What of the lab is left after its tear-down (this process's view): namespaces, its directory, its cgroups. */
async function afterTearDown(prefix: string): Promise<string[]> {
  const left: string[] = [];
  for (const ns of await listNetns()) if (ns.startsWith(`${prefix}-`)) left.push(`netns ${ns}`);
  if (existsSync(join('/tmp', prefix))) left.push(`directory /tmp/${prefix}`);
  for (const d of ['/sys/fs/cgroup', '/sys/fs/cgroup/cpu', '/sys/fs/cgroup/memory', '/sys/fs/cgroup/pids', '/sys/fs/cgroup/unified']) {
    if (existsSync(join(d, labCgroupRoot(prefix)))) left.push(`cgroup ${join(d, labCgroupRoot(prefix))}`);
  }
  return left;
}

export async function runChaos(opts: ChaosOptions): Promise<void> {
  requireBuiltCli();
  const faults = FAULTS.filter((f) => !opts.only || opts.only.includes(f.name));
  progress(`chaos suite: lab ${opts.prefix} (3 managers, 2 workers); faults: ${faults.map((f) => f.name).join(', ')}`);
  let result: ChaosRun | undefined;
  await withLab(opts, 5, async (lab) => {
    const run = new ChaosRun(lab);
    result = run;
    try {
      await run.setUp();
      await run.measureBaseline();
      for (const f of faults) {
        if (Date.now() - started > BUDGET_MS) {
          run.rows.push({ fault: f.name, detectWhat: '', detectMs: null, convergeMs: null, failed: { mesh: 0, vip: 0 }, reference: { mesh: 0, vip: 0 }, requests: { mesh: 0, vip: 0 }, writes: { acked: 0, failed: 0 }, broken: {}, notes: [], skipped: 'out of the 20-minute budget' });
          continue;
        }
        try {
          run.rows.push(await run.runFault(f));
        } catch (err) {
          // A fault that cannot be run is reported, and the rest go on.
          await run.writer.stop();
          run.rows.push({ fault: f.name, detectWhat: '', detectMs: null, convergeMs: null, failed: { mesh: 0, vip: 0 }, reference: { mesh: 0, vip: 0 }, requests: { mesh: 0, vip: 0 }, writes: { acked: 0, failed: 0 }, broken: {}, notes: [], skipped: `could not run: ${(err as Error).message.split('\n')[0]}` });
          progress(`${f.name}: could not run: ${(err as Error).message}`);
        }
      }
      await run.removeAll().catch((err: unknown) => {
        run.leftoverLines = [`(the removal failed: ${(err as Error).message.split('\n')[0]})`];
      });
    } finally {
      await run.writer.stop();
      await run.mesh?.stop();
      await run.vip?.stop();
      run.swarm.close();
    }
  });
  const left = await afterTearDown(opts.prefix);
  const run = result as ChaosRun;
  const header = [
    `swarmlet chaos suite: 3 managers + 2 workers, ${run.rows.length} faults, ${((Date.now() - started) / 60_000).toFixed(1)} min, load average ${(await loadAverage()).join(' ')}`,
    `detected: from the injection until the fault shows (see each fault below); converged: from the end of the fault (recovery) until every invariant holds, "no" after ${CONVERGE_TIMEOUT_MS / 1000} s;`,
    `the same with no fault: after the reference window's writes stopped, every invariant held again ${run.baselineConvergeMs === null ? 'never (within the time-out)' : `after ${(run.baselineConvergeMs / 1000).toFixed(1)} s`} (the rolling updates catching up);`,
    'failed mesh / VIP: requests failed from the injection until converged, of all made, and (in brackets) the same client over an equal window of the fault-free reference;',
    `writes: service updates through the CLI during the fault, acknowledged / refused; invariants: ${['writes', 'replicas', 'duplicates', 'dns', 'overlay', 'nft'].join(', ')};`,
    `for a host kill, "while down": whether anything (${STALE_STATE.join(', ')}) still pointed at the dead host or its tasks before it came back (at most 45 s after the kill), "after": every invariant once it is back`,
    '',
  ];
  const footer = [
    '',
    run.leftoverLines.length === 0 ? 'after removing the services and the network: every kernel object swarmlet made for them is gone' : `after removing the services and the network, left: ${run.leftoverLines.join('; ')}`,
    left.length === 0 ? 'after the lab was destroyed: nothing left (namespaces, directory, cgroups)' : `after the lab was destroyed, left: ${left.join('; ')}`,
  ];
  process.stdout.write(`${header.join('\n')}${renderTable(run.rows)}${footer.join('\n')}\n`);
  if (opts.json) {
    writeFileSync(opts.json, `${JSON.stringify({ prefix: opts.prefix, minutes: (Date.now() - started) / 60_000, baseline: { ...run.baseline, convergeMs: run.baselineConvergeMs }, faults: run.rows, writes: run.writer.writes, leftAfterRemoval: run.leftoverLines, leftAfterTearDown: left }, null, 2)}\n`);
    progress(`JSON written to ${opts.json}`);
  }
}

async function loadAverage(): Promise<string[]> {
  const { loadavg } = await import('node:os');
  return loadavg().map((x) => x.toFixed(2));
}

if (require.main === module) benchMain('chaos', parseArgs, runChaos as (o: BenchOptions) => Promise<void>);
