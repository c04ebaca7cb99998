import type { ContainerUsage } from '../../services/gen/swarmlet/v1/control';

/**
 * Pure: docker's `stats` and `top` figures from what /proc and the cgroup files hold. The reading
 * adapter (container-usage.ts) collects raw text and counters; these functions parse and format.
 */

/** Clock ticks per second of /proc's times (USER_HZ: 100 on Linux). */
export const CLOCK_TICKS = 100;

/** What /proc/<pid>/stat says about a process (fields after the last ')': state is field 3). */
export interface ProcStatFields {
  comm: string;
  state: string;
  ppid: number;
  ttyNr: number;
  /** utime + stime, in clock ticks. */
  cpuTicks: number;
  /** Since boot, in clock ticks. */
  startTicks: number;
  threads: number;
}

export function parseProcStat(text: string): ProcStatFields | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const f = text.slice(close + 2).trim().split(/\s+/);
  if (f.length < 20) return undefined;
  return {
    comm: text.slice(open + 1, close),
    state: f[0],
    ppid: Number(f[1]),
    ttyNr: Number(f[4]),
    cpuTicks: Number(f[11]) + Number(f[12]),
    threads: Number(f[17]),
    startTicks: Number(f[19]),
  };
}

/** The host's total CPU time in ns, from the `cpu ` line of /proc/stat (as docker's system_cpu_usage). */
export function parseSystemCpuNs(procStat: string): number {
  const line = procStat.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) return 0;
  const ticks = line.trim().split(/\s+/).slice(1, 8).reduce((s, v) => s + Number(v), 0);
  return (ticks * 1e9) / CLOCK_TICKS;
}

/** Online CPUs: the `cpuN` lines of /proc/stat. */
export function parseOnlineCpus(procStat: string): number {
  return procStat.split('\n').filter((l) => /^cpu\d+ /.test(l)).length || 1;
}

/** rx and tx bytes over every interface of /proc/<pid>/net/dev but lo (docker counts the container's endpoints). */
export function parseNetDev(text: string): { rx: number; tx: number } {
  let rx = 0;
  let tx = 0;
  for (const line of text.split('\n').slice(2)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    if (line.slice(0, colon).trim() === 'lo') continue;
    const f = line.slice(colon + 1).trim().split(/\s+/).map(Number);
    rx += f[0] || 0;
    tx += f[8] || 0;
  }
  return { rx, tx };
}

/** read_bytes / write_bytes of /proc/<pid>/io (block I/O a process caused). */
export function parseProcIo(text: string): { read: number; write: number } {
  const get = (k: string) => Number(new RegExp(`^${k}: (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
  return { read: get('read_bytes'), write: get('write_bytes') };
}

/** cgroup v2 io.stat: rbytes and wbytes summed over devices. */
export function parseIoStat(text: string): { read: number; write: number } {
  let read = 0;
  let write = 0;
  for (const m of text.matchAll(/\brbytes=(\d+)/g)) read += Number(m[1]);
  for (const m of text.matchAll(/\bwbytes=(\d+)/g)) write += Number(m[1]);
  return { read, write };
}

/** A key of a `key value` file (memory.stat, cpu.stat); undefined when absent. */
export function parseKeyed(text: string, key: string): number | undefined {
  const m = new RegExp(`^${key} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

/**
 * Memory as docker shows it: usage minus the inactive file cache (v1: total_inactive_file, v2:
 * inactive_file); the limit is the host's memory when the cgroup has none (v1's huge number, v2's "max").
 */
export function planMemory(usage: number, memoryStat: string, limitText: string, hostTotal: number): { used: number; limit: number } {
  const inactive = parseKeyed(memoryStat, 'total_inactive_file') ?? parseKeyed(memoryStat, 'inactive_file') ?? 0;
  const used = inactive < usage ? usage - inactive : usage;
  const raw = limitText.trim();
  const n = raw === 'max' || raw === '' ? Infinity : Number(raw);
  return { used, limit: Number.isFinite(n) && n < hostTotal ? n : hostTotal };
}

/** MemTotal of /proc/meminfo in bytes. */
export function parseMemTotal(meminfo: string): number {
  return Number(/^MemTotal:\s+(\d+) kB$/m.exec(meminfo)?.[1] ?? 0) * 1024;
}

// Sizes as docker's stats prints them (go-units): memory in binary units with 4 significant digits
// (BytesSize), network and block I/O in decimal ones with 3 (HumanSizeWithPrecision(v, 3)).
function humanSize(n: number, base: number, units: string[], precision: number): string {
  let i = 0;
  let v = n;
  while (v >= base && i < units.length - 1) {
    v /= base;
    i += 1;
  }
  return `${Number(v.toPrecision(precision))}${units[i]}`;
}
export const bytesSize = (n: number) => humanSize(n, 1024, ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'], 4);
export const decimalSize = (n: number) => humanSize(n, 1000, ['B', 'kB', 'MB', 'GB', 'TB', 'PB'], 3);

export const STATS_TITLES = ['CONTAINER ID', 'NAME', 'CPU %', 'MEM USAGE / LIMIT', 'MEM %', 'NET I/O', 'BLOCK I/O', 'PIDS'];

/** docker's JSON line for `stats --format json`. */
export interface StatsEntry {
  BlockIO: string;
  CPUPerc: string;
  Container: string;
  ID: string;
  MemPerc: string;
  MemUsage: string;
  Name: string;
  NetIO: string;
  PIDs: string;
}

/**
 * One `stats` row from two readings of the same container (docker's formula: the container's CPU
 * time over the host's, times the online CPUs). Without a previous reading, or for a stopped
 * container, CPU is 0; a stopped container shows zeros and "--" as docker does.
 */
export function planStatsEntry(cur: ContainerUsage, prev: ContainerUsage | undefined): StatsEntry {
  const id = cur.id.slice(0, 12);
  if (!cur.running) {
    return { BlockIO: '--', CPUPerc: '0.00%', Container: id, ID: id, MemPerc: '0.00%', MemUsage: '0B / 0B', Name: cur.name, NetIO: '--', PIDs: '0' };
  }
  let cpu = 0;
  if (prev && prev.running) {
    const dCpu = cur.cpuNs - prev.cpuNs;
    const dSys = cur.systemCpuNs - prev.systemCpuNs;
    if (dCpu > 0 && dSys > 0) cpu = (dCpu / dSys) * (cur.onlineCpus || 1) * 100;
  }
  const mem = cur.memoryLimitBytes > 0 ? (cur.memoryBytes / cur.memoryLimitBytes) * 100 : 0;
  return {
    BlockIO: `${decimalSize(cur.blockReadBytes)} / ${decimalSize(cur.blockWriteBytes)}`,
    CPUPerc: `${cpu.toFixed(2)}%`,
    Container: id,
    ID: id,
    MemPerc: `${mem.toFixed(2)}%`,
    MemUsage: `${bytesSize(cur.memoryBytes)} / ${bytesSize(cur.memoryLimitBytes)}`,
    Name: cur.name,
    NetIO: `${decimalSize(cur.netRxBytes)} / ${decimalSize(cur.netTxBytes)}`,
    PIDs: String(cur.pids),
  };
}

export function planStatsRow(e: StatsEntry): string[] {
  return [e.ID, e.Name, e.CPUPerc, e.MemUsage, e.MemPerc, e.NetIO, e.BlockIO, e.PIDs];
}

/** One process as `top` lists it. */
export interface TopProcess {
  pid: number;
  uid: number;
  stat: ProcStatFields;
  /** NUL-separated argv from /proc/<pid>/cmdline ('' for kernel threads and zombies). */
  cmdline: string;
}

export const TOP_TITLES = ['UID', 'PID', 'PPID', 'C', 'STIME', 'TTY', 'TIME', 'CMD'];

const pad2 = (n: number) => String(n).padStart(2, '0');
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** ps's TTY column from tty_nr: pts/N for the pseudo-terminals (major 136-143), else '?'. */
export function planTty(ttyNr: number): string {
  if (!ttyNr) return '?';
  const major = (ttyNr >> 8) & 0xfff;
  const minor = (ttyNr & 0xff) | ((ttyNr >> 12) & 0xfff00);
  if (major >= 136 && major <= 143) return `pts/${(major - 136) * 256 + minor}`;
  if (major === 4 && minor < 64) return `tty${minor}`;
  return '?';
}

/** ps's TIME: [DD-]HH:MM:SS of CPU time. */
export function planCpuTime(ticks: number): string {
  const s = Math.floor(ticks / CLOCK_TICKS);
  const days = Math.floor(s / 86400);
  const hms = `${pad2(Math.floor((s % 86400) / 3600))}:${pad2(Math.floor((s % 3600) / 60))}:${pad2(s % 60)}`;
  return days > 0 ? `${days}-${hms}` : hms;
}

/**
 * `ps -ef`'s rows for the container's processes (what docker top shows): user names from the
 * host's passwd, C as CPU time over lifetime in percent, STIME as HH:MM today or "Mon DD" before.
 * `bootMs` is when the host booted (ms since the epoch), `now` the time of the reading.
 */
export function planTopRows(procs: TopProcess[], users: Map<number, string>, bootMs: number, now: Date): string[][] {
  return [...procs]
    .sort((a, b) => a.pid - b.pid)
    .map((p) => {
      const started = new Date(bootMs + (p.stat.startTicks * 1000) / CLOCK_TICKS);
      const lifeTicks = Math.max(1, ((now.getTime() - started.getTime()) * CLOCK_TICKS) / 1000);
      const c = Math.min(99, Math.floor((p.stat.cpuTicks * 100) / lifeTicks));
      const sameDay = started.getFullYear() === now.getFullYear() && started.getMonth() === now.getMonth() && started.getDate() === now.getDate();
      const stime = sameDay ? `${pad2(started.getHours())}:${pad2(started.getMinutes())}` : `${MONTHS[started.getMonth()]}${pad2(started.getDate())}`;
      const cmd = planTopCommand(p.cmdline, p.stat.comm);
      return [users.get(p.uid) ?? String(p.uid), String(p.pid), String(p.stat.ppid), String(c), stime, planTty(p.stat.ttyNr), planCpuTime(p.stat.cpuTicks), cmd];
    });
}

/**
 * ps's CMD: the arguments joined by spaces, control characters as '?'; [comm] without any. A
 * runtime's own shell script (`/bin/sh -c SCRIPT swarmlet-init CMD...`: the exec runtime's pid 1,
 * which forwards signals to the command as docker's --init does) shows by its name, not its script.
 */
export function planTopCommand(cmdline: string, comm: string): string {
  const argv = cmdline.replace(/\0+$/, '');
  if (!argv) return `[${comm}]`;
  let args = argv.split('\0');
  if (args.length >= 4 && args[1] === '-c' && /^swarmlet-[a-z]+$/.test(args[3])) args = args.slice(3);
  // eslint-disable-next-line no-control-regex
  return args.join(' ').replace(/[\x00-\x1f\x7f]/g, '?');
}

/** uid -> name from an /etc/passwd text. */
export function parsePasswd(text: string): Map<number, string> {
  const m = new Map<number, string>();
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length >= 3 && /^\d+$/.test(f[2]) && !m.has(Number(f[2]))) m.set(Number(f[2]), f[0]);
  }
  return m;
}
