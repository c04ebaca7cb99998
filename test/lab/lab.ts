/**
 * The lab the tests, benchmarks and the chaos suite build on: the product's own (lab/lab.ts, what
 * `swarmlet lab` uses), plus what only tests ask of it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { LabHost } from '../../lab/lab';

export * from '../../lab/lab';

/** The etcd member's pid whose data dir is under h's. */
export function etcdPid(h: LabHost): number | undefined {
  const dataDir = join(h.dataDir, 'etcd');
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (basename(argv[0] ?? '') === 'etcd' && argv[argv.indexOf('--data-dir') + 1] === dataDir) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}
