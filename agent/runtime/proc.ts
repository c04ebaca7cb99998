import { readFile, readdir } from 'node:fs/promises';

/** A process known by pid and start time (clock ticks since boot, /proc/<pid>/stat field 22): a reused pid has another start time. */
export interface ProcessRef {
  pid: number;
  startTime: number;
}

interface ProcStat {
  state: string;
  ppid: number;
  startTime: number;
}

async function readStat(pid: number): Promise<ProcStat | undefined> {
  let text: string;
  try {
    text = await readFile(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // comm (field 2) may hold spaces and parentheses: the fields that follow start after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0], ppid: Number(fields[1]), startTime: Number(fields[19]) };
}

/** The reference of a live process, or undefined if it is gone (or a zombie). */
export async function processRef(pid: number): Promise<ProcessRef | undefined> {
  const stat = await readStat(pid);
  if (!stat || stat.state === 'Z' || stat.state === 'X') return undefined;
  return { pid, startTime: stat.startTime };
}

/** True if the very process `ref` names still runs (not a zombie, and not another process that got its pid). */
export async function isAlive(ref: ProcessRef | undefined): Promise<boolean> {
  if (!ref) return false;
  const stat = await readStat(ref.pid);
  return !!stat && stat.state !== 'Z' && stat.state !== 'X' && stat.startTime === ref.startTime;
}

/** The parent of a live process and its command name (/proc/<pid>/comm), or undefined if it is gone. */
export async function parentOf(pid: number): Promise<{ pid: number; comm: string } | undefined> {
  const stat = await readStat(pid);
  if (!stat || stat.ppid <= 0) return undefined;
  const comm = await readFile(`/proc/${stat.ppid}/comm`, 'utf8').catch(() => undefined);
  return comm === undefined ? undefined : { pid: stat.ppid, comm: comm.trim() };
}

/** The children of a process (from /proc/<pid>/task/<pid>/children, or a scan of /proc without it). */
export async function childrenOf(pid: number): Promise<number[]> {
  try {
    const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8');
    return text.split(' ').filter(Boolean).map(Number);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (!(await readStat(pid))) return [];
  const found: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readStat(Number(name));
    if (stat?.ppid === pid) found.push(Number(name));
  }
  return found;
}

/** Sends a signal, ignoring a process that is already gone. */
export function signalProcess(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}
