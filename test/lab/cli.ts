/**
 * The old way to a lab by hand, kept working: `node dist/test/lab/cli.js up|status|down [--prefix P] [--hosts N]`
 * runs `swarmlet lab up|status|down [--name P] [--hosts N]` (lab/swarm-lab.ts), which also forms the swarm.
 */
import { spawnSync } from 'node:child_process';
import { requireBuiltCli } from './lab';

const args = process.argv.slice(2).map((a) => (a === '--prefix' ? '--name' : a.startsWith('--prefix=') ? `--name=${a.slice('--prefix='.length)}` : a));
if (args.includes('--no-daemons')) {
  process.stderr.write('lab: --no-daemons is gone: `swarmlet lab up` starts the daemons and forms the swarm (the tests build bare labs with Lab.create)\n');
  process.exit(2);
}
const res = spawnSync(process.execPath, [requireBuiltCli(), 'lab', ...args], { stdio: 'inherit' });
process.exit(res.status ?? 1);
