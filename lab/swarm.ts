/** A swarm on a lab: run the CLI on a host, wait for the cluster to say something, form the swarm as an operator would. */
import { SwarmletError } from '../services/common/errors';
import type { Lab, LabHost } from './lab';
import { sleep } from './process-tree';

/** Runs a swarmlet command on a host that must succeed; on failure the error names the command, its stderr and the daemon's log. */
export async function sw(lab: Lab, h: LabHost, args: string[]): Promise<string> {
  const res = await lab.cli(h, args);
  if (res.code !== 0) {
    throw new SwarmletError('Unavailable', `swarmlet ${args.join(' ')} on ${h.name} exited ${res.code}: ${res.stderr.trim()}\n--- ${h.name} log ---\n${lab.logTail(h, 40)}`);
  }
  return res.stdout;
}

/** Polls `check` until it returns a value (not undefined), or fails with `what` and the last error after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30000, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new SwarmletError('Unavailable', `timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await sleep(everyMs);
  }
}

/** The `swarmlet join ...` line of an init or join-token output, as argv. */
export function joinCommand(output: string): string[] {
  const line = output.split('\n').find((l) => l.trim().startsWith('swarmlet join '));
  if (!line) throw new SwarmletError('Internal', `no join command in:\n${output}`);
  return line.trim().split(/\s+/).slice(1);
}

/** Starts daemons (with `daemonArgs`), inits on the first manager and joins the rest with the printed commands; waits until all are ready. */
export async function formSwarm(lab: Lab, managers: LabHost[], workers: LabHost[], daemonArgs: string[] = []): Promise<void> {
  await Promise.all([...managers, ...workers].map((h) => lab.startDaemon(h, daemonArgs)));
  const [first, ...others] = managers;
  const initOut = await sw(lab, first, ['init', '--advertise-addr', first.addr]);
  const managerJoin = joinCommand(await sw(lab, first, ['swarm', 'join-token', 'manager']));
  for (const h of others) await sw(lab, h, managerJoin);
  const workerJoin = joinCommand(initOut);
  await Promise.all(workers.map((h) => sw(lab, h, workerJoin)));
  await waitFor('every node ready', async () => {
    const list = JSON.parse(await sw(lab, first, ['node', 'ls', '--format', 'api'])) as { status?: { state?: string } }[];
    return list.length === managers.length + workers.length && list.every((n) => n.status?.state === 'NODE_STATE_READY') ? list : undefined;
  });
}
