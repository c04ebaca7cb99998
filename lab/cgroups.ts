/**
 * The lab's cgroups: every daemon of a lab puts its tasks under one tree named for the lab, so
 * that tear-down finds task processes wherever they run (they live in namespaces of their own,
 * and outlive the daemon that started them) and removes the cgroups too.
 */
import { existsSync, readdirSync, readFileSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { sleep } from './process-tree';

const ROOT = '/sys/fs/cgroup';

export const labCgroupRoot = (prefix: string) => `swarmlet-lab-${prefix}`;

/** Every directory of the tree `name` in every hierarchy (v1 controllers, or the v2 unified one). */
function trees(name: string): string[] {
  if (!existsSync(ROOT)) return [];
  const v2 = existsSync(join(ROOT, 'cgroup.controllers'));
  const bases = v2 ? [ROOT] : readdirSync(ROOT).map((d) => join(ROOT, d)).filter((d) => statSync(d).isDirectory());
  return bases.map((b) => join(b, name)).filter((d) => existsSync(d));
}

function walk(dir: string): string[] {
  const children = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => join(dir, e.name));
  return [...children.flatMap(walk), dir];
}

function pidsIn(dir: string): number[] {
  try {
    return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number).filter((p) => p > 0);
  } catch {
    return [];
  }
}

/** SIGKILLs every process in the tree, then removes its cgroups, deepest first. */
export async function removeCgroupTree(name: string): Promise<void> {
  for (const tree of trees(name)) {
    const dirs = walk(tree);
    for (let attempt = 0; attempt < 50; attempt++) {
      const pids = dirs.flatMap(pidsIn);
      if (pids.length === 0) break;
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      await sleep(100);
    }
    for (const dir of dirs) {
      try {
        rmdirSync(dir);
      } catch {
        // a cgroup still busy; the sandbox's end takes care of its processes
      }
    }
  }
}

/**
 * The child cgroups of `name` (in any hierarchy) and whether a process runs in each one's subtree:
 * name -> busy. A task's cgroup is <daemon's cgroup parent>/<task id>.
 */
export function childCgroups(name: string): Map<string, boolean> {
  const out = new Map<string, boolean>();
  for (const tree of trees(name)) {
    let entries: string[] = [];
    try {
      entries = readdirSync(tree, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    } catch {
      // removed meanwhile
    }
    for (const child of entries) {
      let busy = false;
      try {
        busy = walk(join(tree, child)).some((d) => pidsIn(d).length > 0);
      } catch {
        // removed meanwhile
      }
      out.set(child, (out.get(child) ?? false) || busy);
    }
  }
  return out;
}
