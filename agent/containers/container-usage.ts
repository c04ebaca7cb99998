import { readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { ContainerUsage } from '../../services/gen/swarmlet/v1/control';
import { CgroupLayout, detectCgroups } from '../runtime/cgroups';
import {
  TopProcess,
  parseIoStat,
  parseKeyed,
  parseMemTotal,
  parseNetDev,
  parseOnlineCpus,
  parsePasswd,
  parseProcIo,
  parseProcStat,
  parseSystemCpuNs,
  planMemory,
} from './stats-plans';

/**
 * Reads what `stats` and `top` show from the kernel: the container's cgroup (found from its
 * process's /proc/<pid>/cgroup, so it works for whichever runtime made it), the processes of its
 * pid namespace and its network namespace's interfaces. Parsing and formatting are stats-plans.ts.
 */

const read = (path: string) => readFile(path, 'utf8').catch(() => '');

/** The container's cgroup directory for a v1 controller (or the v2 unified one). */
async function cgroupDir(layout: CgroupLayout, pid: number, controller: 'memory' | 'pids' | 'cpu' | 'unified'): Promise<string | undefined> {
  const lines = (await read(`/proc/${pid}/cgroup`)).split('\n').filter(Boolean);
  if (layout.version === 2) {
    const path = lines.find((l) => l.startsWith('0::'))?.slice(3);
    return path === undefined ? undefined : join(layout.root, path);
  }
  const mount = layout.mounts[controller as 'memory'];
  if (!mount) return undefined;
  for (const l of lines) {
    const [, ctrls, path] = l.split(':');
    if (ctrls?.split(',').includes(controller)) return join(mount, path);
  }
  return undefined;
}

/** The pids of the container's processes: those of its cgroup in its pid namespace (not the shim's). */
async function containerPids(layout: CgroupLayout, pid: number): Promise<number[]> {
  const ns = await readlink(`/proc/${pid}/ns/pid`).catch(() => undefined);
  if (!ns) return [];
  const dir = (await cgroupDir(layout, pid, 'pids')) ?? (await cgroupDir(layout, pid, 'memory'));
  const listed = dir ? (await read(join(dir, 'cgroup.procs'))).split('\n').filter(Boolean).map(Number) : [pid];
  const out: number[] = [];
  for (const p of listed) {
    if ((await readlink(`/proc/${p}/ns/pid`).catch(() => undefined)) === ns) out.push(p);
  }
  return out;
}

export class ContainerUsageReader {
  private layout?: Promise<CgroupLayout>;

  constructor(private readonly cgroups?: CgroupLayout) {}

  private cgroupLayout(): Promise<CgroupLayout> {
    this.layout ??= this.cgroups ? Promise.resolve(this.cgroups) : detectCgroups();
    return this.layout;
  }

  /** One reading of a running container whose process is `pid`. */
  async usage(id: string, name: string, pid: number): Promise<ContainerUsage> {
    const layout = await this.cgroupLayout();
    const procStat = await read('/proc/stat');
    const pids = await containerPids(layout, pid);
    const stats = await Promise.all(pids.map(async (p) => ({ pid: p, stat: parseProcStat(await read(`/proc/${p}/stat`)), io: parseProcIo(await read(`/proc/${p}/io`)) })));
    const mem = await cgroupDir(layout, pid, 'memory');
    const v2 = layout.version === 2 ? await cgroupDir(layout, pid, 'unified') : undefined;
    const memory = planMemory(
      Number((await read(join(mem ?? '/nonexistent', layout.version === 2 ? 'memory.current' : 'memory.usage_in_bytes'))) || 0),
      mem ? await read(join(mem, 'memory.stat')) : '',
      mem ? await read(join(mem, layout.version === 2 ? 'memory.max' : 'memory.limit_in_bytes')) : '',
      parseMemTotal(await read('/proc/meminfo')),
    );
    const cpuUsec = v2 ? parseKeyed(await read(join(v2, 'cpu.stat')), 'usage_usec') : undefined;
    const cpuNs = cpuUsec !== undefined ? cpuUsec * 1000 : stats.reduce((s, p) => s + (p.stat?.cpuTicks ?? 0), 0) * 1e7;
    const io = v2 ? parseIoStat(await read(join(v2, 'io.stat'))) : stats.reduce((s, p) => ({ read: s.read + p.io.read, write: s.write + p.io.write }), { read: 0, write: 0 });
    const net = parseNetDev(await read(`/proc/${pid}/net/dev`));
    return {
      id,
      name,
      running: true,
      systemCpuNs: parseSystemCpuNs(procStat),
      cpuNs,
      onlineCpus: parseOnlineCpus(procStat),
      memoryBytes: memory.used,
      memoryLimitBytes: memory.limit,
      netRxBytes: net.rx,
      netTxBytes: net.tx,
      blockReadBytes: io.read,
      blockWriteBytes: io.write,
      pids: stats.reduce((s, p) => s + (p.stat?.threads ?? 0), 0),
    };
  }

  /** The container's processes, for `top`; `users` is the host's passwd (ps shows host user names, as docker top does). */
  async processes(pid: number): Promise<{ procs: TopProcess[]; users: Map<number, string>; bootMs: number }> {
    const layout = await this.cgroupLayout();
    const procs: TopProcess[] = [];
    for (const p of await containerPids(layout, pid)) {
      const stat = parseProcStat(await read(`/proc/${p}/stat`));
      if (!stat) continue;
      const uid = Number(/^Uid:\s+(\d+)/m.exec(await read(`/proc/${p}/status`))?.[1] ?? 0);
      procs.push({ pid: p, uid, stat, cmdline: await read(`/proc/${p}/cmdline`) });
    }
    const btime = Number(/^btime (\d+)$/m.exec(await read('/proc/stat'))?.[1] ?? 0);
    return { procs, users: parsePasswd(await read('/etc/passwd')), bootMs: btime * 1000 };
  }
}
