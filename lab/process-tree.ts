/** What the lab knows about processes, read from /proc, and how it ends them for good. */
import { readdirSync, readFileSync } from 'node:fs';
import { SwarmletError } from '../services/common/errors';
import { netnsPids } from './ip-command';

export interface ProcStat {
  pid: number;
  ppid: number;
  /** Process group id. */
  pgid: number;
  /** One letter, as in `ps`: R, S, D, T, Z, ... */
  state: string;
  /** Clock ticks since boot at which the process started; with the pid it names one process for good. */
  startTime: number;
}

/** Reads /proc/<pid>/stat; undefined when the process is gone. */
export function readProcStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name is in parentheses and may itself contain ')' or spaces.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return {
    pid,
    state: fields[0] ?? '?',
    ppid: Number(fields[1]),
    pgid: Number(fields[2]),
    startTime: Number(fields[19]),
  };
}

/** True while the process exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  const st = readProcStat(pid);
  return st !== undefined && st.state !== 'Z' && st.state !== 'X';
}

function allPids(): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number);
}

/** Live members of process group `pgid` that started no earlier than `notBefore` (so a recycled id matches nothing). */
export function groupMembers(pgid: number, notBefore: number): number[] {
  const out: number[] = [];
  for (const pid of allPids()) {
    const st = readProcStat(pid);
    if (st && st.pgid === pgid && st.startTime >= notBefore && st.state !== 'Z') out.push(pid);
  }
  return out;
}

/** Every process that descends from one of `roots` (the roots themselves excluded). */
export function descendantsOf(roots: Iterable<number>): number[] {
  const children = new Map<number, number[]>();
  for (const pid of allPids()) {
    const st = readProcStat(pid);
    if (!st) continue;
    const list = children.get(st.ppid);
    if (list) list.push(st.pid);
    else children.set(st.ppid, [st.pid]);
  }
  const seen = new Set<number>(roots);
  const out: number[] = [];
  const queue = [...seen];
  while (queue.length > 0) {
    const pid = queue.shift() as number;
    for (const child of children.get(pid) ?? []) {
      if (seen.has(child)) continue;
      seen.add(child);
      out.push(child);
      queue.push(child);
    }
  }
  return out;
}

/** A pid recorded earlier, with its start time so a reused pid is never mistaken for it. */
export interface RecordedPid {
  pid: number;
  startTime: number;
}

/** The recorded processes that are still the very same processes. */
export function stillRunning(recorded: Iterable<RecordedPid>): number[] {
  const out: number[] = [];
  for (const r of recorded) {
    const st = readProcStat(r.pid);
    if (st && st.startTime === r.startTime && st.state !== 'Z') out.push(r.pid);
  }
  return out;
}

export async function sleep(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits until none of `pids` is alive (gone or zombie); returns those still alive at the deadline. */
export async function waitGone(pids: Iterable<number>, timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  let left = [...pids].filter(isAlive);
  while (left.length > 0 && Date.now() < deadline) {
    await sleep(20);
    left = left.filter(isAlive);
  }
  return left;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

/**
 * SIGKILLs every process in the given namespaces, the given processes, and everything descending
 * from any of them (a container in a nested namespace is still a descendant of its agent).
 * Processes are stopped first and only killed once no new one turns up, so nothing can fork or
 * be reparented out of sight while we look. Never touches this process or its ancestors.
 */
export async function killEverything(opts: { netns: string[]; pids: number[] }): Promise<number[]> {
  const spared = new Set<number>([1, process.pid]);
  for (let pid = process.ppid; pid > 1 && !spared.has(pid); ) {
    spared.add(pid);
    pid = readProcStat(pid)?.ppid ?? 0;
  }
  const stopped = new Set<number>();
  for (let round = 0; round < 50; round++) {
    const found = new Set<number>(opts.pids.filter(isAlive));
    for (const ns of opts.netns) for (const pid of await netnsPids(ns)) found.add(pid);
    for (const pid of descendantsOf([...found, ...stopped])) found.add(pid);
    const fresh = [...found].filter((pid) => !stopped.has(pid) && !spared.has(pid) && isAlive(pid));
    if (fresh.length === 0) break;
    for (const pid of fresh) {
      signal(pid, 'SIGSTOP');
      stopped.add(pid);
    }
  }
  for (const pid of stopped) signal(pid, 'SIGKILL');
  const left = await waitGone(stopped, 10_000);
  if (left.length > 0) throw new SwarmletError('Internal', `processes survived SIGKILL: ${left.join(' ')}`);
  return [...stopped];
}
