/**
 * The chaos suite's faults. Each one picks its victim from the swarm as it is now, injects the
 * fault, says what "detected" means and how to probe it, how long the fault holds, and how it is
 * undone. The runner (main.ts) times detection, holds, recovers, then waits for convergence.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SwarmletError } from '../../services/common/errors';
import { labCgroupRoot } from '../lab/cgroups';
import { etcdPid, readLabState, type LabHost } from '../lab/lab';
import { groupMembers, sleep } from '../lab/process-tree';
import { ChaosSwarm } from './swarm';

export interface FaultRun {
  /** What the detect probe waits for, in words (the table's footnote). */
  detectWhat: string;
  /** True once the fault shows; polled from the injection until convergence. */
  detect: () => Promise<boolean>;
  /** The fault holds at least minHoldMs, and once detected (or at maxHoldMs) for afterDetectMs more. */
  minHoldMs: number;
  maxHoldMs: number;
  afterDetectMs: number;
  /**
   * A host that stays down while the fault holds: once detected, the stale-state invariants (DNS,
   * nft, FDB and neighbours) are checked for anything still pointing at it, and the fault holds
   * until nothing does (or maxHoldMs).
   */
  downHost?: LabHost;
  recover: () => Promise<void>;
  /** Lines for the table's notes, gathered while the fault held. */
  notes: string[];
}

export interface Fault {
  name: string;
  inject(swarm: ChaosSwarm): Promise<FaultRun>;
}

/** Whether an up manager other than `not` lists `h` as Down. */
async function shownDown(swarm: ChaosSwarm, h: LabHost): Promise<boolean> {
  for (const m of swarm.upManagers()) {
    if (m === h) continue;
    const n = (await swarm.nodes(m).catch(() => [])).find((x) => x.description?.hostname === h.name);
    if (n) return !ChaosSwarm.isReady(n);
  }
  return false;
}

/** Whether an up manager other than `old` names another leader and serves node ls. */
async function newLeader(swarm: ChaosSwarm, old: LabHost): Promise<boolean> {
  for (const m of swarm.upManagers()) {
    if (m === old) continue;
    const nodes = await swarm.nodes(m).catch(() => undefined);
    const name = nodes?.find((n) => n.managerStatus?.leader)?.description?.hostname;
    if (name && name !== old.name) return true;
  }
  return false;
}

async function leaderOrFail(swarm: ChaosSwarm): Promise<LabHost> {
  return swarm.waitLeader(30_000);
}

async function restartDaemon(swarm: ChaosSwarm, h: LabHost): Promise<void> {
  await swarm.lab.startDaemon(h);
  swarm.reconnect(h);
  swarm.away.delete(h.name);
}


/** Samples `fn` every `everyMs` while the fault holds; stop() ends it. */
function sampler(everyMs: number, fn: () => Promise<void>): { stop: () => Promise<void> } {
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      await fn().catch(() => undefined);
      await sleep(everyMs);
    }
  })();
  return { stop: async () => ((stopped = true), await loop) };
}

const leaderDaemonKill: Fault = {
  name: 'leader-daemon-kill',
  async inject(swarm) {
    const l = await leaderOrFail(swarm);
    swarm.away.add(l.name);
    await swarm.lab.stopDaemon(l, 'kill');
    return {
      detectWhat: `another manager names a new leader (kill -9 of ${l.name}'s daemon and etcd)`,
      detect: () => newLeader(swarm, l),
      minHoldMs: 0,
      maxHoldMs: 30_000,
      afterDetectMs: 2000,
      recover: () => restartDaemon(swarm, l),
      notes: [],
    };
  },
};

/** Every process of a host killed and its link cut, as a power cut; it comes back as after a reboot. */
function hostKill(name: string, who: string, pick: (swarm: ChaosSwarm) => Promise<LabHost>): Fault {
  return {
    name,
    async inject(swarm) {
      const h = await pick(swarm);
      swarm.away.add(h.name);
      await swarm.lab.killHost(h);
      return {
        detectWhat: `${who} shows ${h.name} Down (every process of the host killed, its link cut)`,
        detect: () => shownDown(swarm, h),
        minHoldMs: 0,
        maxHoldMs: 45_000,
        afterDetectMs: 5000,
        downHost: h,
        recover: async () => {
          await swarm.lab.setHostLink(h, 'up');
          await restartDaemon(swarm, h);
        },
        notes: [`${h.name} came back as after a reboot: link up, its daemon started on its data dir`],
      };
    },
  };
}

const leaderHostKill = hostKill('leader-host-kill', 'another manager', leaderOrFail);

const workerDaemonRestart: Fault = {
  name: 'worker-daemon-restart',
  async inject(swarm) {
    const w = swarm.workers[0] as LabHost;
    swarm.away.add(w.name);
    await swarm.lab.stopDaemon(w, 'kill');
    return {
      detectWhat: `a manager shows ${w.name} Down, which it should not (its daemon is killed and started again 3 s later)`,
      detect: () => shownDown(swarm, w),
      minHoldMs: 3000,
      maxHoldMs: 3000,
      afterDetectMs: 0,
      recover: () => restartDaemon(swarm, w),
      notes: [],
    };
  },
};

const workerHostKill = hostKill('worker-host-kill', 'a manager', async (swarm) => swarm.workers[0] as LabHost);

const etcdMemberKill: Fault = {
  name: 'etcd-member-kill',
  async inject(swarm) {
    const l = await leaderOrFail(swarm);
    const m = swarm.managers.find((h) => h !== l) as LabHost;
    const pid = etcdPid(m);
    if (!pid) throw new SwarmletError('NotFound', `no etcd process of ${m.name} to kill`);
    process.kill(pid, 'SIGKILL');
    return {
      detectWhat: `${m.name}'s daemon runs a new etcd member (its etcd alone killed with kill -9)`,
      detect: async () => {
        const now = etcdPid(m);
        return now !== undefined && now !== pid;
      },
      minHoldMs: 0,
      maxHoldMs: 30_000,
      afterDetectMs: 2000,
      recover: async () => undefined,
      notes: [],
    };
  },
};

function partition(name: string, pick: (swarm: ChaosSwarm) => Promise<LabHost>, manager: boolean): Fault {
  return {
    name,
    async inject(swarm) {
      const v = await pick(swarm);
      swarm.away.add(v.name);
      await swarm.lab.setHostLink(v, 'down');
      const notes: string[] = [];
      // What the cut-off side believes: does the partitioned manager still name itself leader?
      let lastSelfLeader = -1;
      const t0 = Date.now();
      const watch = manager
        ? sampler(1000, async () => {
            const nodes = await swarm.nodes(v);
            if (nodes.find((n) => n.managerStatus?.leader)?.description?.hostname === v.name) lastSelfLeader = Date.now() - t0;
          })
        : undefined;
      return {
        detectWhat: manager ? `a manager on the majority side names a new leader (${v.name}, the leader, cut off for 30 s)` : `a manager shows ${v.name} Down (cut off for 30 s)`,
        detect: () => (manager ? newLeader(swarm, v) : shownDown(swarm, v)),
        minHoldMs: 30_000,
        maxHoldMs: 30_000,
        afterDetectMs: 0,
        recover: async () => {
          await watch?.stop();
          if (manager) notes.push(lastSelfLeader < 0 ? `${v.name} never named itself leader while cut off` : `${v.name} still named itself leader ${(lastSelfLeader / 1000).toFixed(1)} s after the cut`);
          await swarm.lab.setHostLink(v, 'up');
          swarm.away.delete(v.name);
        },
        notes,
      };
    },
  };
}

const quorumLoss: Fault = {
  name: 'quorum-loss',
  async inject(swarm) {
    const l = await leaderOrFail(swarm);
    const survivor = swarm.managers.find((h) => h !== l) as LabHost;
    const gone = swarm.managers.filter((h) => h !== survivor);
    for (const h of gone) swarm.away.add(h.name);
    await Promise.all(gone.map((h) => swarm.lab.stopDaemon(h, 'kill')));
    return {
      detectWhat: `the survivor ${survivor.name} says the swarm has no leader (${gone.map((h) => h.name).join(' and ')} killed), then both restarted`,
      detect: async () => {
        try {
          await swarm.nodes(survivor);
          return false;
        } catch (err) {
          return /leader|quorum/i.test((err as Error).message);
        }
      },
      minHoldMs: 0,
      maxHoldMs: 40_000,
      afterDetectMs: 10_000,
      recover: async () => {
        for (const h of gone) await restartDaemon(swarm, h);
      },
      notes: [],
    };
  },
};

/** The cgroup v1 cpu hierarchy's mount, or the v2 root; and whether it is v2. */
function cpuRoot(): { dir: string; v2: boolean } {
  if (existsSync('/sys/fs/cgroup/cgroup.controllers')) return { dir: '/sys/fs/cgroup', v2: true };
  for (const d of ['/sys/fs/cgroup/cpu', '/sys/fs/cgroup/cpu,cpuacct']) if (existsSync(join(d, 'cpu.cfs_quota_us'))) return { dir: d, v2: false };
  throw new SwarmletError('NotFound', 'no cpu cgroup hierarchy under /sys/fs/cgroup');
}

/** The cgroup path of pid in the cpu hierarchy (v1) or the unified one (v2). */
function cpuCgroupOf(pid: number, v2: boolean): string | undefined {
  for (const line of readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n')) {
    const [, ctrls, path] = line.split(':');
    if (path === undefined) continue;
    if (v2 ? ctrls === '' : (ctrls ?? '').split(',').includes('cpu')) return path;
  }
  return undefined;
}

const QUOTA_US = 20_000;
const PERIOD_US = 100_000;

const cpuLoad: Fault = {
  name: 'cpu-load',
  async inject(swarm) {
    const l = await leaderOrFail(swarm);
    const d = readLabState(swarm.lab.baseDir)?.daemons.find((x) => x.host === l.name);
    if (!d) throw new SwarmletError('NotFound', `no daemon recorded for ${l.name}`);
    const pids = [d.pid, ...groupMembers(d.pid, d.startTime)].filter((p, i, a) => a.indexOf(p) === i);
    const { dir, v2 } = cpuRoot();
    const cg = join(dir, labCgroupRoot(swarm.lab.prefix), 'chaos-cpu');
    mkdirSync(cg, { recursive: true });
    if (v2) writeFileSync(join(cg, 'cpu.max'), `${QUOTA_US} ${PERIOD_US}`);
    else {
      writeFileSync(join(cg, 'cpu.cfs_period_us'), String(PERIOD_US));
      writeFileSync(join(cg, 'cpu.cfs_quota_us'), String(QUOTA_US));
    }
    const home = new Map(pids.map((p) => [p, cpuCgroupOf(p, v2)]));
    // Two busy loops share the cgroup with the host's daemon and its etcd: together they get a fifth of a core.
    const loops: ChildProcess[] = [0, 1].map(() => spawn('nsenter', [`--net=/run/netns/${l.netns}`, '--', process.execPath, '-e', 'for (;;) {}'], { stdio: 'ignore' }));
    await sleep(200);
    for (const p of [...pids, ...loops.map((c) => c.pid as number)]) {
      try {
        writeFileSync(join(cg, 'cgroup.procs'), String(p));
      } catch {
        // exited meanwhile
      }
    }
    const t0 = Date.now();
    let leaderChanges = 0;
    let downs = 0;
    let lastLeader = l.name;
    const seenDown = new Set<string>();
    const watch = sampler(500, async () => {
      const observer = swarm.managers.find((m) => m !== l) as LabHost;
      const nodes = await swarm.nodes(observer);
      const leader = nodes.find((n) => n.managerStatus?.leader)?.description?.hostname;
      if (leader && leader !== lastLeader) {
        leaderChanges++;
        lastLeader = leader;
      }
      for (const n of nodes) {
        const name = n.description?.hostname ?? n.id;
        if (!ChaosSwarm.isReady(n) && !seenDown.has(name)) {
          seenDown.add(name);
          downs++;
        }
        if (ChaosSwarm.isReady(n)) seenDown.delete(name);
      }
    });
    const notes: string[] = [];
    return {
      detectWhat: `a false failure: the leader changes or a node is shown Down (${l.name}, the leader, has its daemon and etcd with two busy loops in a cgroup of ${QUOTA_US / PERIOD_US} CPU for 30 s)`,
      detect: async () => leaderChanges > 0 || downs > 0,
      minHoldMs: 30_000,
      maxHoldMs: 30_000,
      afterDetectMs: 0,
      recover: async () => {
        for (const c of loops) c.kill('SIGKILL');
        for (const [p, path] of home) {
          try {
            if (path !== undefined) writeFileSync(join(dir, path, 'cgroup.procs'), String(p));
          } catch {
            // exited meanwhile
          }
        }
        await sleep(200);
        try {
          rmdirSync(cg);
        } catch {
          // the lab's tear-down removes it
        }
        await watch.stop();
        notes.push(`while loaded (${((Date.now() - t0) / 1000).toFixed(0)} s): ${leaderChanges} leader changes, ${downs} nodes shown Down`);
      },
      notes,
    };
  },
};

export const FAULTS: readonly Fault[] = [
  leaderDaemonKill,
  leaderHostKill,
  workerDaemonRestart,
  workerHostKill,
  etcdMemberKill,
  partition('manager-partition', leaderOrFail, true),
  partition('worker-partition', async (swarm) => swarm.workers[0] as LabHost, false),
  quorumLoss,
  cpuLoad,
];
