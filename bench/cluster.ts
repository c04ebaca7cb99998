/**
 * Cluster benchmark: how long swarmlet takes to form a swarm and to heal it, on a lab of 3 hosts
 * (198.51.100.0/24 underlay). Every figure is printed beside the figure of its reference, from the
 * same run, with their ratio:
 *
 *   init       `swarmlet init` on a fresh daemon, CLI start to exit   vs  a lone etcd becoming healthy (measured here)
 *   join       `swarmlet join` as a worker, and as a manager          vs  the same etcd figure
 *   failover   the leader's host killed until another manager takes a
 *              write (`node update --label-add`), names a new leader,
 *              and lists the dead one Down                            vs  swarmkit's election timeout, 10 s (documented)
 *   node down  a worker's host killed until `node ls` says Down       vs  swarmkit's 3 missed 5 s heartbeats, 15 s (documented)
 *   tasks      the same kill until its tasks run on another node      vs  one more task of the same service (scale +1) to running, measured
 *   load       100 `service create`s from two managers at once: how
 *              many times a node was marked Down, and the leader changed (none is right)
 *   restart    a worker's daemon SIGKILLed and started again at once: whether its node was ever
 *              marked Down (it must not be) and how long until it heartbeats again
 *
 * Run it through bench/run.sh (`npm run bench:cluster -- --runs 3`): that puts it in throwaway
 * network, mount and pid namespaces, so nothing it makes can touch the host's network.
 *
 *   node dist/bench/cluster.js [--runs N] [--prefix P] [--keep-logs DIR]
 *
 * --runs (default 5) runs of each figure; --prefix (default swb) names the lab; --keep-logs copies
 * the daemons' and etcd's logs to DIR before the lab is destroyed. The table goes to stdout, then
 * one line `BENCH_JSON {...}`; progress goes to stderr.
 *
 * Helpers run inside a lab host's netns: etcd-start-probe.js (the etcd reference) and
 * etcd-status-probe.js (whether the leader about to be killed also leads etcd's raft; failover is
 * reported split by that, among the observations).
 *
 * Polls go through the CLI, as an operator would see it: one probe 100 ms after the previous one
 * ended, with a second one beside it when a probe hangs for over a second (a manager whose store
 * is unavailable answers only at its 5 s deadline). Probes are not overlapped further, because each
 * CLI call costs a Node start (~0.4 s of CPU) and this machine may have few cores: the figures
 * therefore carry up to one CLI round trip of extra time, printed as the poll resolution.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { SwarmletError } from '../services/common/errors';
import { type CommandResult, type Lab, type LabHost } from '../test/lab/lab';
import { sleep } from '../test/lab/process-tree';
import { POLL_MS, firstLine, parseBenchArgs, pollUntil, progress, ratio, seconds, summarize, waitUntil, withLab, type BenchOptions, type Summary, benchMain } from './lab-helpers';

export type { BenchOptions, Summary } from './lab-helpers';

/** A node as `node ls --format api` prints it: only the fields the benchmark reads. */
interface NodeJson {
  id: string;
  role?: string;
  description?: { hostname?: string };
  status?: { state?: string; message?: string };
  managerStatus?: { leader?: boolean; reachability?: string };
}

/** What `info --format api` prints: only the fields the benchmark reads. */
interface InfoJson {
  localState: string;
  nodeId: string;
  isManager: boolean;
  leaderId: string;
  error: string;
  clusterSpec?: { heartbeatPeriodMs?: number; nodeDownAfterMs?: number };
}

interface Reference {
  label: string;
  ms: number;
  kind: 'measured' | 'documented';
}

/** A task as `service ps --format api` prints it: only the fields the benchmark reads. */
interface TaskJson {
  id: string;
  nodeId?: string;
  desiredState?: string;
  status?: { state?: string };
}

interface FailoverRun {
  /** kill -> a write accepted by another manager. */
  ms: number;
  /** kill -> another manager names a new leader. */
  leaderMs: number;
  /** kill -> another manager lists the dead leader Down. */
  downMs: number;
  killed: string;
  observer: string;
  /** Whether the killed host's etcd member led etcd's raft; null when it could not be told. */
  alsoEtcdLeader: boolean | null;
}

interface Figure {
  key: string;
  label: string;
  summary: Summary;
  /** Undefined for the row that is itself the reference of others. */
  reference: Reference | undefined;
}

const HOSTS = 3;
const CLI_TIMEOUT_MS = 30_000;
const ETCD_CLIENT_PORT = 12379;
const ETCD_PEER_PORT = 12380;
const DAEMON_ETCD_CLIENT_PORT = 2379;
const ETCD_SAMPLES_PER_RUN = 3;
/** etcd (strict reconfig check) refuses to add or remove a member until every member has been connected for 5 s. */
const ETCD_SETTLE_MS = 6_000;
/** swarmkit's documented defaults (api/types.proto, docs): not measured here. */
const SWARMKIT_ELECTION_TIMEOUT_MS = 10_000;
const SWARMKIT_HEARTBEAT_MS = 5_000;
const SWARMKIT_NODE_DOWN_MS = 3 * SWARMKIT_HEARTBEAT_MS;

const MANAGER = 'NODE_ROLE_MANAGER';
const READY = 'NODE_STATE_READY';
const DOWN = 'NODE_STATE_DOWN';
const REACHABLE = 'REACHABILITY_REACHABLE';
const RUNNING = 'TASK_STATE_RUNNING';
/** The load under which false Downs are counted: this many `service create`s, half from each of two managers, LOAD_CONCURRENCY at a time on each. */
const LOAD_CREATES = 100;
const LOAD_CONCURRENCY = 2;

export function parseArgs(argv: string[]): BenchOptions {
  return parseBenchArgs(argv, { script: 'cluster.js', runs: 5, prefix: 'swb' });
}

class ClusterBench {
  readonly notes: string[] = [];
  private readonly h1: LabHost;
  private readonly h2: LabHost;
  private readonly h3: LabHost;

  constructor(private readonly lab: Lab, private readonly opts: BenchOptions) {
    [this.h1, this.h2, this.h3] = [lab.host(1), lab.host(2), lab.host(3)];
  }

  note(msg: string): void {
    this.notes.push(msg);
    progress(`note: ${msg}`);
  }

  // ---- the CLI --------------------------------------------------------------------------------

  cli(h: LabHost, args: string[], timeoutMs: number = CLI_TIMEOUT_MS): Promise<CommandResult> {
    return this.lab.cli(h, args, { timeoutMs });
  }

  async cliOk(h: LabHost, args: string[]): Promise<string> {
    const r = await this.cli(h, args);
    if (r.code !== 0) throw new SwarmletError('Internal', `swarmlet ${args.join(' ')} on ${h.name} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
    return r.stdout;
  }

  /** Wall time of one CLI command, from spawning `ip netns exec ... swarmlet` to its exit; fails on a non-zero exit. */
  async timedCli(h: LabHost, args: string[]): Promise<number> {
    const started = performance.now();
    const r = await this.cli(h, args);
    const ms = performance.now() - started;
    if (r.code !== 0) throw new SwarmletError('Internal', `swarmlet ${args.join(' ')} on ${h.name} exited ${r.code} after ${seconds(ms)}: ${r.stderr.trim() || r.stdout.trim()}`);
    return ms;
  }

  async info(h: LabHost): Promise<InfoJson> {
    return JSON.parse(await this.cliOk(h, ['info', '--format', 'api'])) as InfoJson;
  }

  async nodes(h: LabHost): Promise<NodeJson[]> {
    return JSON.parse(await this.cliOk(h, ['node', 'ls', '--format', 'api'])) as NodeJson[];
  }

  nodeOf(nodes: NodeJson[], h: LabHost): NodeJson | undefined {
    return nodes.find((n) => n.description?.hostname === h.name);
  }

  // ---- the figures ----------------------------------------------------------------------------

  /** A lone etcd in h's netns, fresh data dir, loopback ports away from the daemon's 2379/2380. */
  async etcdStart(h: LabHost, tag: string): Promise<number> {
    const probe = join(this.lab.repoRoot, 'dist', 'bench', 'etcd-start-probe.js');
    const dataDir = join(this.lab.baseDir, `etcd-reference-${tag}`);
    const r = await this.lab.exec(h, [process.execPath, probe, '--data-dir', dataDir, '--client-port', String(ETCD_CLIENT_PORT), '--peer-port', String(ETCD_PEER_PORT)], { timeoutMs: CLI_TIMEOUT_MS });
    if (r.code !== 0) throw new SwarmletError('Internal', `the etcd reference probe failed (exit ${r.code}): ${r.stderr.trim()}`);
    return (JSON.parse(r.stdout) as { readyMs: number }).readyMs;
  }

  /** The CLI's own cost: `info` against a daemon that is in no swarm. Context, not a figure. */
  async cliFloor(): Promise<Summary> {
    const samples: number[] = [];
    for (let i = 0; i < this.opts.runs; i++) samples.push(await this.timedCli(this.h2, ['info', '--format', 'api']));
    return summarize(samples);
  }

  /**
   * init on a fresh daemon each run, each after ETCD_SAMPLES_PER_RUN lone etcd starts in the same
   * netns. A new single-member etcd elects itself after a random 1 to 10 ticks of 100 ms, so one
   * start takes anything from 0.1 to 1.1 s: the reference takes more samples than the figure.
   */
  async initAndEtcd(): Promise<{ init: Summary; etcd: Summary }> {
    const { h1 } = this;
    const init: number[] = [];
    const etcd: number[] = [];
    for (let run = 1; run <= this.opts.runs; run++) {
      if (run > 1) await this.freshDaemon(h1);
      const refs: number[] = [];
      for (let k = 0; k < ETCD_SAMPLES_PER_RUN; k++) refs.push(await this.etcdStart(h1, `${run}-${k + 1}`));
      etcd.push(...refs);
      init.push(await this.timedCli(h1, ['init', '--advertise-addr', h1.addr]));
      progress(`init ${run}/${this.opts.runs}: ${seconds(init[run - 1] as number)} (etcd alone: ${refs.map(seconds).join(', ')})`);
    }
    return { init: summarize(init), etcd: summarize(etcd) };
  }

  /** The last manager leaves by force, then its daemon restarts on an empty data dir. */
  async freshDaemon(h: LabHost): Promise<void> {
    const left = await this.cli(h, ['swarm', 'leave', '--force']);
    if (left.code !== 0) this.note(`swarm leave --force of the only manager ${h.name} failed: ${firstLine(left.stderr)}`);
    await this.lab.stopDaemon(h, 'term');
    rmSync(h.dataDir, { recursive: true, force: true });
    mkdirSync(h.dataDir, { recursive: true });
    await this.lab.startDaemon(h);
  }

  /** h2 joins through h1 as a worker, leaves by force, and is removed from the node list. */
  async workerJoins(): Promise<Summary> {
    const { h1, h2 } = this;
    const token = (await this.cliOk(h1, ['swarm', 'join-token', 'worker', '-q'])).trim();
    const samples: number[] = [];
    for (let run = 1; run <= this.opts.runs; run++) {
      samples.push(await this.timedCli(h2, ['join', '--token', token, h1.addr]));
      progress(`worker join ${run}/${this.opts.runs}: ${seconds(samples[run - 1] as number)}`);
      const { nodeId } = await this.info(h2);
      await this.cliOk(h2, ['swarm', 'leave', '--force']);
      await this.cliOk(h1, ['node', 'rm', '--force', nodeId]);
    }
    return summarize(samples);
  }

  /**
   * h2 joins through h1 as a manager, leaves, and once h1 no longer lists it as a manager it is
   * removed. It stays ETCD_SETTLE_MS first: etcd refuses to remove a member connected for under
   * 5 s ("unhealthy cluster"), and swarmlet's leave has by then already marked the node a worker
   * in the store, so the node later stops its etcd member without removing it and h1, alone with a
   * dead member, loses its quorum for good (with or without --force).
   */
  async managerJoins(): Promise<Summary> {
    const { h1, h2 } = this;
    const token = (await this.cliOk(h1, ['swarm', 'join-token', 'manager', '-q'])).trim();
    const samples: number[] = [];
    for (let run = 1; run <= this.opts.runs; run++) {
      samples.push(await this.timedCli(h2, ['join', '--token', token, h1.addr]));
      const joined = performance.now();
      progress(`manager join ${run}/${this.opts.runs}: ${seconds(samples[run - 1] as number)}`);
      const { nodeId } = await this.info(h2);
      await sleep(Math.max(0, joined + ETCD_SETTLE_MS - performance.now()));
      await this.leaveManager(h2);
      await waitUntil(`${h1.name} to stop listing ${h2.name} as a manager`, 30_000, async () => {
        const n = (await this.nodes(h1)).find((x) => x.id === nodeId);
        return !n || n.role !== MANAGER ? true : undefined;
      });
      if ((await this.nodes(h1)).some((x) => x.id === nodeId)) await this.cliOk(h1, ['node', 'rm', '--force', nodeId]);
    }
    return summarize(samples);
  }

  /** Leaves without --force (so that a refusal shows); when refused, notes why and leaves with --force. */
  async leaveManager(h: LabHost): Promise<void> {
    const r = await this.cli(h, ['swarm', 'leave']);
    if (r.code === 0) return;
    this.note(`${h.name}: 'swarm leave' of a manager was refused (${firstLine(r.stderr).replace(/^Error: /, '')}); left with --force`);
    await this.cliOk(h, ['swarm', 'leave', '--force']);
  }

  /** The tasks of `service` that run and are meant to, as h lists them. */
  async running(h: LabHost, service: string): Promise<TaskJson[]> {
    const tasks = JSON.parse(await this.cliOk(h, ['service', 'ps', service, '--format', 'api'])) as TaskJson[];
    return tasks.filter((t) => t.desiredState === RUNNING && t.status?.state === RUNNING);
  }

  /**
   * h3 is a worker. Each run: a service of 2 replicas (one on h1, one on h3), scaled to 3 (the
   * reference: one more task to running); then h3's host is killed (every process, its link cut):
   * time until h1 lists it Down, and until the service runs 3 tasks none of them on h3. The host
   * comes back (link up, daemon started) before the next run. Then, once per run, h3's daemon
   * alone is SIGKILLed and started again at once: whether h1 ever lists it Down meanwhile.
   */
  async nodeDown(): Promise<{ summary: Summary; tasks: Summary; scaleRef: Summary; spec: InfoJson['clusterSpec'] }> {
    const { h1, h3 } = this;
    const token = (await this.cliOk(h1, ['swarm', 'join-token', 'worker', '-q'])).trim();
    await this.cliOk(h3, ['join', '--token', token, h1.addr]);
    const spec = (await this.info(h1)).clusterSpec;
    const samples: number[] = [];
    const tasks: number[] = [];
    const scale: number[] = [];
    for (let run = 1; run <= this.opts.runs; run++) {
      await waitUntil(`${h3.name} to be Ready`, 60_000, async () => (this.nodeOf(await this.nodes(h1), h3)?.status?.state === READY ? true : undefined));
      const h3Id = this.nodeOf(await this.nodes(h1), h3)?.id;
      const service = `bench-dead-${run}`;
      await this.cliOk(h1, ['service', 'create', '-d', '--name', service, '--replicas', '2', 'exec:/', 'sleep', '100000']);
      await waitUntil(`${service} running on ${h1.name} and ${h3.name}`, 60_000, async () => {
        const t = await this.running(h1, service);
        return t.length === 2 && t.some((x) => x.nodeId === h3Id) ? true : undefined;
      });
      const s0 = performance.now();
      await this.cliOk(h1, ['service', 'scale', '-d', `${service}=3`]);
      scale.push((await pollUntil(`${service} to run 3 tasks`, s0, 60_000, async () => (await this.running(h1, service)).length === 3)).ms);
      const t0 = performance.now();
      await this.lab.killHost(h3);
      const [down, moved] = await Promise.all([
        pollUntil(`${h1.name} to list ${h3.name} as Down`, t0, 60_000, async () => this.nodeOf(await this.nodes(h1), h3)?.status?.state === DOWN),
        pollUntil(`${service}'s tasks to run off ${h3.name}`, t0, 60_000, async () => {
          const t = await this.running(h1, service);
          return t.length === 3 && t.every((x) => x.nodeId !== h3Id);
        }),
      ]);
      samples.push(down.ms);
      tasks.push(moved.ms);
      progress(`node down ${run}/${this.opts.runs}: Down ${seconds(down.ms)}, tasks elsewhere ${seconds(moved.ms)} (scale +1 reference ${seconds(scale[run - 1] as number)})`);
      await this.lab.setHostLink(h3, 'up');
      await this.lab.startDaemon(h3);
      await this.cliOk(h1, ['service', 'rm', service]);
    }
    await this.daemonRestarts();
    return { summary: summarize(samples), tasks: summarize(tasks), scaleRef: summarize(scale), spec };
  }

  /** h3's daemon SIGKILLed and started again at once, once per run: whether h1 ever lists it Down before it heartbeats again. */
  async daemonRestarts(): Promise<void> {
    const { h1, h3 } = this;
    const back: number[] = [];
    let downs = 0;
    for (let run = 1; run <= this.opts.runs; run++) {
      await waitUntil(`${h3.name} to be Ready`, 60_000, async () => {
        const n = this.nodeOf(await this.nodes(h1), h3);
        return n?.status?.state === READY && !n.status.message ? true : undefined;
      });
      const t0 = performance.now();
      await this.lab.stopDaemon(h3, 'kill');
      await this.lab.startDaemon(h3);
      let sawDown = false;
      let sawMissed = false;
      const { ms } = await pollUntil(`${h3.name} to heartbeat again`, t0, 60_000, async () => {
        const n = this.nodeOf(await this.nodes(h1), h3);
        if (n?.status?.state === DOWN) sawDown = true;
        if (n?.status?.message?.startsWith('heartbeat missed')) sawMissed = true;
        if (n?.status?.state !== READY || n.status.message) return false;
        // Back once the leader saw the gap and then heartbeats again; or, when the restart was
        // quicker than the heartbeat lease and the leader saw no gap, once the new daemon is in
        // the swarm again.
        if (sawMissed) return true;
        const res = await this.lab.cli(h3, ['info', '--format', 'api']);
        return res.code === 0 && (JSON.parse(res.stdout) as InfoJson).localState === 'active';
      });
      back.push(ms);
      if (sawDown) downs++;
      progress(`daemon restart ${run}/${this.opts.runs}: heartbeating again after ${seconds(ms)}${sawDown ? ', marked Down meanwhile' : ''}`);
    }
    const r = summarize(back);
    this.note(`a worker's daemon SIGKILLed and started again at once: heartbeating again after ${seconds(r.medianMs)} (median; ${seconds(r.minMs)}-${seconds(r.maxMs)}); its node listed Down meanwhile in ${downs} of ${back.length} runs (0 is right: its host answered, so it stayed Ready through the grace)`);
  }

  /**
   * The load of issue 14: LOAD_CREATES `service create`s from h1 and h2 at once, while h3 is
   * watched every POLL_MS for a node marked Down and a leader change. On this lab every node is a
   * manager then, so the load and the etcd members share the machine's cores. Notes what it saw.
   */
  async falseDownsUnderLoad(): Promise<void> {
    const { h1, h2, h3 } = this;
    const watchStart = await this.nodes(h3);
    let leader = (await this.info(h3)).leaderId;
    let leaderChanges = 0;
    let downs = 0;
    let missed = 0;
    let refused = 0;
    const wasDown = new Set(watchStart.filter((n) => n.status?.state === DOWN).map((n) => n.id));
    const wasMissed = new Set<string>();
    let loading = true;
    const watcher = (async () => {
      while (loading) {
        try {
          const [list, info] = await Promise.all([this.nodes(h3), this.info(h3)]);
          for (const n of list) {
            const down = n.status?.state === DOWN;
            if (down && !wasDown.has(n.id)) downs++;
            if (down) wasDown.add(n.id);
            else wasDown.delete(n.id);
            const m = Boolean(n.status?.message?.startsWith('heartbeat missed'));
            if (m && !wasMissed.has(n.id)) missed++;
            if (m) wasMissed.add(n.id);
            else wasMissed.delete(n.id);
          }
          if (info.leaderId && info.leaderId !== leader) {
            if (leader) leaderChanges++;
            leader = info.leaderId;
          }
        } catch {
          // a probe that failed under the load: the next one looks again
        }
        await sleep(POLL_MS);
      }
    })();
    const t0 = performance.now();
    const names = Array.from({ length: LOAD_CREATES }, (_, i) => `bench-load-${i + 1}`);
    const from = (h: LabHost, mine: string[]) =>
      Promise.all(
        Array.from({ length: LOAD_CONCURRENCY }, async (_, k) => {
          for (let i = k; i < mine.length; i += LOAD_CONCURRENCY) {
            const r = await this.cli(h, ['service', 'create', '-d', '--name', mine[i] as string, 'exec:/', 'sleep', '100000']);
            if (r.code !== 0) refused++;
          }
        }),
      );
    await Promise.all([from(h1, names.filter((_, i) => i % 2 === 0)), from(h2, names.filter((_, i) => i % 2 === 1))]);
    const ms = performance.now() - t0;
    loading = false;
    await watcher;
    this.note(
      `under load (${LOAD_CREATES} service creates from ${h1.name} and ${h2.name}, ${LOAD_CONCURRENCY} at a time on each, ${seconds(ms)}; nodes and leader watched from ${h3.name} every ${POLL_MS} ms): ` +
        `${downs} node(s) marked Down, ${leaderChanges} leader change(s), ${missed} node(s) missed heartbeats but stayed Ready (host answered), ${refused} create(s) refused`,
    );
    progress(this.notes[this.notes.length - 1] as string);
    for (let i = 0; i < names.length; i += 25) await this.cli(h1, ['service', 'rm', ...names.slice(i, i + 25)]);
  }

  /** Three managers: h3 leaves as a worker; h2, then (ETCD_SETTLE_MS later, see managerJoins) h3 join as managers. */
  async threeManagers(): Promise<void> {
    const { h1, h2, h3 } = this;
    const token = (await this.cliOk(h1, ['swarm', 'join-token', 'manager', '-q'])).trim();
    const { nodeId } = await this.info(h3);
    await this.cliOk(h3, ['swarm', 'leave', '--force']);
    await this.cliOk(h1, ['node', 'rm', '--force', nodeId]);
    await this.joinForSetup(h2, token);
    await sleep(ETCD_SETTLE_MS);
    await this.joinForSetup(h3, token);
    await this.waitForManagers(h1, 60_000);
    await sleep(ETCD_SETTLE_MS);
  }

  /** A join that is not timed: a refusal is retried for 30 s, and noted. */
  async joinForSetup(h: LabHost, token: string): Promise<void> {
    const started = performance.now();
    const errors = new Set<string>();
    for (;;) {
      const r = await this.cli(h, ['join', '--token', token, this.h1.addr]);
      if (r.code === 0) break;
      errors.add(firstLine(r.stderr).replace(/^Error: /, ''));
      if (performance.now() - started > 30_000) throw new SwarmletError('Unavailable', `${h.name} could not join for 30 s: ${[...errors].join(' | ')}`);
      await sleep(500);
    }
    if (errors.size > 0) this.note(`${h.name}'s manager join was refused for ${seconds(performance.now() - started)} before it worked: ${[...errors].join(' | ')}`);
  }

  /** Until `observer` lists three Ready, Reachable managers, one of them the leader. */
  async waitForManagers(observer: LabHost, timeoutMs: number): Promise<NodeJson[]> {
    return waitUntil('three reachable managers and a leader', timeoutMs, async () => {
      const managers = (await this.nodes(observer)).filter((n) => n.role === MANAGER);
      const ok = managers.length === HOSTS && managers.every((n) => n.managerStatus?.reachability === REACHABLE && n.status?.state === READY) && managers.some((n) => n.managerStatus?.leader);
      return ok ? managers : undefined;
    });
  }

  /** Whether h's etcd member leads etcd's raft; undefined when its etcd does not say. */
  async leadsEtcdRaft(h: LabHost): Promise<boolean | undefined> {
    const probe = join(this.lab.repoRoot, 'dist', 'bench', 'etcd-status-probe.js');
    const r = await this.lab.exec(h, [process.execPath, probe, '--port', String(DAEMON_ETCD_CLIENT_PORT)], { timeoutMs: 10_000 });
    if (r.code !== 0) return undefined;
    const status = JSON.parse(r.stdout) as { memberId: string; leaderId: string };
    return status.memberId === status.leaderId;
  }

  /**
   * Kills the leader's host (every process, its link cut); times until another manager takes a
   * write (`node update --label-add` of itself), names a new leader, and lists the dead leader
   * Down. Each run also records whether the killed host's etcd member led etcd's raft, since then
   * etcd must elect a leader first. The host comes back (link up, daemon started) before the next run.
   */
  async failover(): Promise<{ summary: Summary; leader: Summary; down: Summary; runs: FailoverRun[] }> {
    const hosts = [this.h1, this.h2, this.h3];
    const runs: FailoverRun[] = [];
    const rejoins: number[] = [];
    let observer = this.h1;
    for (let run = 1; run <= this.opts.runs; run++) {
      const managers = await this.waitForManagers(observer, 90_000);
      const leader = managers.find((n) => n.managerStatus?.leader) as NodeJson;
      const leaderHost = hosts.find((h) => h.name === leader.description?.hostname);
      if (!leaderHost) throw new SwarmletError('Internal', `the leader ${leader.id} is on no lab host (hostname ${leader.description?.hostname})`);
      observer = hosts.find((h) => h !== leaderHost) as LabHost;
      const alsoEtcdLeader = await this.leadsEtcdRaft(leaderHost);
      const t0 = performance.now();
      await this.lab.killHost(leaderHost);
      const [write, named, down] = await Promise.all([
        pollUntil(`${observer.name} to take a write`, t0, 60_000, async () => (await this.cli(observer, ['node', 'update', '--label-add', `failover=${run}`, observer.name])).code === 0),
        pollUntil(`${observer.name} to name a new leader`, t0, 60_000, async () => {
          const info = await this.info(observer);
          return Boolean(info.leaderId) && info.leaderId !== leader.id;
        }),
        pollUntil(`${observer.name} to list ${leaderHost.name} Down`, t0, 60_000, async () => this.nodeOf(await this.nodes(observer), leaderHost)?.status?.state === DOWN),
      ]);
      runs.push({ ms: Math.round(write.ms), leaderMs: Math.round(named.ms), downMs: Math.round(down.ms), killed: leaderHost.name, observer: observer.name, alsoEtcdLeader: alsoEtcdLeader ?? null });
      const etcdWord = alsoEtcdLeader === undefined ? 'etcd raft leader unknown' : alsoEtcdLeader ? 'it also led etcd raft' : 'it did not lead etcd raft';
      progress(`failover ${run}/${this.opts.runs}: write ${seconds(write.ms)}, new leader ${seconds(named.ms)}, Down ${seconds(down.ms)} (killed ${leaderHost.name}, ${etcdWord}; watched from ${observer.name})`);
      const restarted = performance.now();
      await this.lab.setHostLink(leaderHost, 'up');
      await this.lab.startDaemon(leaderHost);
      await waitUntil(`${leaderHost.name} to serve node ls again`, 60_000, async () => ((await this.cli(leaderHost, ['node', 'ls'])).code === 0 ? true : undefined));
      await this.waitForManagers(observer, 90_000);
      rejoins.push(performance.now() - restarted);
    }
    const r = summarize(rejoins);
    this.note(`a killed manager host brought back (link up, daemon started) was back (serving node ls, all three managers Reachable) ${seconds(r.medianMs)} later (median; ${seconds(r.minMs)}-${seconds(r.maxMs)})`);
    for (const [alsoEtcd, words] of [[true, 'also led etcd raft'], [false, 'did not lead etcd raft']] as const) {
      const these = runs.filter((x) => x.alsoEtcdLeader === alsoEtcd).map((x) => x.ms);
      if (these.length > 0) this.note(`failover (write accepted) when the killed leader ${words}: median ${seconds(summarize(these).medianMs)} (${these.length} of ${runs.length} runs: ${these.map(seconds).join(', ')})`);
    }
    return { summary: summarize(runs.map((x) => x.ms)), leader: summarize(runs.map((x) => x.leaderMs)), down: summarize(runs.map((x) => x.downMs)), runs };
  }

}

function render(figures: Figure[], context: { cliFloor: Summary; spec: InfoJson['clusterSpec']; runs: number; notes: string[]; pollResolution: string }): string {
  const head = ['figure', 'median', 'min', 'max', 'reference (same run)', 'ref', 'ratio'];
  const rows = figures.map((f) => [
    f.label,
    seconds(f.summary.medianMs),
    seconds(f.summary.minMs),
    seconds(f.summary.maxMs),
    f.reference ? `${f.reference.label}${f.reference.kind === 'documented' ? ' [documented, not measured]' : ' [measured]'}` : '(the reference of init and join)',
    f.reference ? seconds(f.reference.ms) : '',
    f.reference ? ratio(f.summary.medianMs, f.reference.ms) : '',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 || i === 4 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ').trimEnd();
  const out = [
    `swarmlet cluster benchmark: ${HOSTS} hosts on 198.51.100.0/24, ${context.runs} runs of each figure; ratio = median / reference`,
    '',
    line(head),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
    '',
    `configured (info --format api on h1): clusterSpec.nodeDownAfterMs = ${context.spec?.nodeDownAfterMs ?? '?'} ms, heartbeatPeriodMs = ${context.spec?.heartbeatPeriodMs ?? '?'} ms`,
    `swarmkit references are its documented defaults (raft election timeout 10 s; node down after 3 missed 5 s heartbeats), not measured here`,
    `init and join are CLI wall times; the CLI alone (info on an idle daemon) takes ${seconds(context.cliFloor.medianMs)} median (${seconds(context.cliFloor.minMs)}-${seconds(context.cliFloor.maxMs)})`,
    `failover and node down are read through the CLI; poll resolution: ${context.pollResolution}`,
    `a killed host is Down once its heartbeat lease (two heartbeat periods) runs out and its address does not answer; a host that answers (its daemon restarting) keeps its node Ready for nodeDownAfterMs`,
  ];
  if (context.notes.length > 0) out.push('', 'observations:', ...context.notes.map((n) => `  - ${n}`));
  return `${out.join('\n')}\n`;
}

export async function runClusterBench(opts: BenchOptions): Promise<void> {
  progress(`building lab ${opts.prefix} (${HOSTS} hosts), ${opts.runs} runs each`);
  await withLab(opts, HOSTS, async (lab) => {
    const bench = new ClusterBench(lab, opts);
    for (const h of lab.hosts) await lab.startDaemon(h);
    const cliFloor = await bench.cliFloor();
    progress(`CLI floor: ${seconds(cliFloor.medianMs)}`);
    const { init, etcd } = await bench.initAndEtcd();
    const workerJoin = await bench.workerJoins();
    const managerJoin = await bench.managerJoins();
    const { summary: nodeDown, tasks: tasksMoved, scaleRef, spec } = await bench.nodeDown();
    await bench.threeManagers();
    const { summary: failover, leader: newLeader, down: leaderDown, runs: failoverRuns } = await bench.failover();
    await bench.falseDownsUnderLoad();

    const etcdRef: Reference = { label: 'lone etcd start to healthy', ms: etcd.medianMs, kind: 'measured' };
    const figures: Figure[] = [
      { key: 'etcdStart', label: `lone etcd, start to healthy (${etcd.n} starts)`, summary: etcd, reference: undefined },
      { key: 'init', label: 'init (CLI wall time)', summary: init, reference: etcdRef },
      { key: 'joinWorker', label: 'join as worker (CLI wall time)', summary: workerJoin, reference: etcdRef },
      { key: 'joinManager', label: 'join as manager (CLI wall time)', summary: managerJoin, reference: etcdRef },
      { key: 'leaderFailover', label: "leader's host killed -> a write accepted", summary: failover, reference: { label: 'swarmkit raft election timeout', ms: SWARMKIT_ELECTION_TIMEOUT_MS, kind: 'documented' } },
      { key: 'newLeader', label: "leader's host killed -> new leader named", summary: newLeader, reference: { label: 'swarmkit raft election timeout', ms: SWARMKIT_ELECTION_TIMEOUT_MS, kind: 'documented' } },
      { key: 'leaderDown', label: "leader's host killed -> it is Down", summary: leaderDown, reference: { label: 'swarmkit 3 missed 5 s heartbeats', ms: SWARMKIT_NODE_DOWN_MS, kind: 'documented' } },
      { key: 'nodeDown', label: "worker's host killed -> Down", summary: nodeDown, reference: { label: 'swarmkit 3 missed 5 s heartbeats', ms: SWARMKIT_NODE_DOWN_MS, kind: 'documented' } },
      { key: 'tasksElsewhere', label: "worker's host killed -> its task runs elsewhere", summary: tasksMoved, reference: { label: 'scale +1 -> the new task running', ms: scaleRef.medianMs, kind: 'measured' } },
    ];
    const pollResolution = `one CLI round trip (~${seconds(cliFloor.medianMs)}) + ${POLL_MS} ms between probes`;
    process.stdout.write(render(figures, { cliFloor, spec, runs: opts.runs, notes: bench.notes, pollResolution }));
    const json = {
      runs: opts.runs,
      hosts: HOSTS,
      prefix: opts.prefix,
      cliFloorMs: cliFloor,
      configured: { nodeDownAfterMs: spec?.nodeDownAfterMs ?? null, heartbeatPeriodMs: spec?.heartbeatPeriodMs ?? null },
      figures: Object.fromEntries(
        figures.map((f) => [
          f.key,
          { ...f.summary, reference: f.reference ? { ...f.reference } : null, ratio: f.reference && f.reference.ms > 0 ? Number((f.summary.medianMs / f.reference.ms).toFixed(3)) : null },
        ]),
      ),
      failoverRuns,
      notes: bench.notes,
    };
    process.stdout.write(`BENCH_JSON ${JSON.stringify(json)}\n`);
  });
}

if (require.main === module) benchMain('cluster', parseArgs, runClusterBench);
