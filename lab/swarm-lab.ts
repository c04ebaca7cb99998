/**
 * `swarmlet lab`: a swarm of several hosts on one machine for students, built on the lab of the
 * tests (lab/lab.ts). Everything it makes carries the lab's name, and its state lives in
 * /run/swarmlet/lab/<name>:
 *
 *   netns <name>-ul        the underlay: bridge br0, 198.51.100.0/24, no address of its own
 *   netns <name>-hN        host N: eth0 198.51.100.(10+N), its daemon, and its tasks' namespaces
 *   netns <name>-hN-net*   the overlay sandboxes host N's daemon makes
 *   netns <name>-reg       with --registry: docker-registry at 198.51.100.2:5000
 *   cgroup swarmlet-lab-<name>/hN, .../hN-oci   host N's tasks
 *
 * The namespace it runs from (the machine's own) gets no link, address, route, rule or sysctl.
 */
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SwarmletError } from '../services/common/errors';
import { canConnect, destroyLabsByPrefix, Lab, mountsUnder, readLabState, socketPath, type LabHost, type LabState } from './lab';
import { listNetns, runCommand } from './ip-command';
import { DEFAULT_LAB_NAME, LAB_STATE_ROOT, LAB_NAME_RE, planRoles, planShellRc, resolveHost, type LabPlan } from './plans';
import { isAlive, readProcStat } from './process-tree';
import { ensureLabRegistry, LAB_REGISTRY } from './registry';
import { formSwarm } from './swarm';

/** What `lab up` adds to lab.json's neighbour, swarm.json: the swarm's shape. */
export interface LabSwarm {
  managers: number[];
  workers: number[];
  registry?: string;
}

const SWARM_FILE = 'swarm.json';

export const labBaseDir = (name: string) => join(LAB_STATE_ROOT, name);

/** The lab's state, or NotFound saying how to make one. */
export function readLab(name: string): { state: LabState; swarm: LabSwarm | undefined } {
  const state = readLabState(labBaseDir(name));
  if (!state) throw new SwarmletError('NotFound', `no lab ${name} (no ${join(labBaseDir(name), 'lab.json')}): make one with 'swarmlet lab up${name === DEFAULT_LAB_NAME ? '' : ` --name ${name}`}'`);
  let swarm: LabSwarm | undefined;
  try {
    swarm = JSON.parse(readFileSync(join(labBaseDir(name), SWARM_FILE), 'utf8')) as LabSwarm;
  } catch {
    swarm = undefined;
  }
  return { state, swarm };
}

function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new SwarmletError('PermissionDenied', 'swarmlet lab must run as root: it makes network namespaces, a bridge and cgroups (try sudo)');
}

/**
 * Makes the lab: namespaces and the underlay, the registry if asked, a daemon per host, the swarm
 * (init on h1, the next managers joined one by one, the workers together). Waits until every node
 * is Ready. If anything fails, removes everything it made before the error goes on.
 */
export async function labUp(plan: LabPlan, progress: (line: string) => void = () => undefined): Promise<{ lab: Lab; swarm: LabSwarm }> {
  requireRoot();
  const lab = await Lab.create({ prefix: plan.name, hosts: plan.hosts, baseDir: labBaseDir(plan.name), logLevel: 'info', insecureRegistries: plan.registry ? [LAB_REGISTRY] : [] });
  try {
    const roles = planRoles(plan);
    const swarm: LabSwarm = { ...roles, ...(plan.registry ? { registry: LAB_REGISTRY } : {}) };
    writeFileSync(join(lab.baseDir, SWARM_FILE), `${JSON.stringify(swarm, null, 2)}\n`);
    if (plan.registry) {
      progress(`starting the registry at ${LAB_REGISTRY}`);
      await ensureLabRegistry(lab);
    }
    progress(`starting ${plan.hosts} daemon${plan.hosts === 1 ? '' : 's'}, then the swarm: init on h1, ${roles.managers.length - 1} more manager(s), ${roles.workers.length} worker(s)`);
    await formSwarm(lab, roles.managers.map((i) => lab.host(i)), roles.workers.map((i) => lab.host(i)));
    for (const h of lab.hosts) writeFileSync(rcFile(lab.baseDir, h), planShellRc(h.name));
    return { lab, swarm };
  } catch (err) {
    await lab.destroy().catch(() => undefined);
    // Its first line says what failed; the daemons' log tails after it went with the lab.
    const what = ((err as Error).message ?? String(err)).split('\n')[0];
    throw new SwarmletError(err instanceof SwarmletError ? err.kind : 'Internal', `lab ${plan.name} was not made (nothing of it is left): ${what}`, { cause: err });
  }
}

const rcFile = (baseDir: string, h: Pick<LabHost, 'index'>) => join(baseDir, `h${h.index}.bashrc`);

/** The host `word` names and its shell's rc file, for `lab shell`. */
export function labShellTarget(name: string, word: string): { host: LabHost; rcFile: string } {
  const { state } = readLab(name);
  const host = resolveHost(name, state.hosts, word);
  const rc = rcFile(state.baseDir, host);
  if (!existsSync(rc)) writeFileSync(rc, planShellRc(host.name));
  return { host, rcFile: rc };
}

/**
 * Removes lab `name`: every process in its namespaces (and what descends from them, task
 * processes in its cgroups), its namespaces, cgroups, mounts and state dir. Nothing there is fine
 * (returns false): safe to run twice. Only namespaces named `<name>-...` are touched, and only
 * when /run/swarmlet/lab/<name>/lab.json says a lab of that name was made here.
 */
export async function labDown(name: string): Promise<{ removed: string[] } | undefined> {
  requireRoot();
  const baseDir = labBaseDir(name);
  if (!readLabState(baseDir)) return undefined;
  const removed = await destroyLabsByPrefix(name, LAB_STATE_ROOT);
  // What the daemons mounted under their data dirs (tasks' roots, secrets' tmpfs), deepest first.
  for (const m of mountsUnder(baseDir)) await runCommand(['umount', '-l', m]);
  rmSync(baseDir, { recursive: true, force: true });
  return { removed };
}

/** The labs made on this machine (those whose state dir is there). */
export function listLabs(): { name: string; state: LabState; swarm: LabSwarm | undefined }[] {
  if (!existsSync(LAB_STATE_ROOT)) return [];
  return readdirSync(LAB_STATE_ROOT)
    .filter((n) => LAB_NAME_RE.test(n) && readLabState(labBaseDir(n)) !== undefined)
    .sort()
    .map((n) => ({ name: n, ...readLab(n) }));
}

export interface LabHostStatus {
  host: LabHost;
  role: 'manager' | 'worker' | '';
  netns: boolean;
  daemonPid: number | undefined;
  socket: boolean;
}

/** Per host of lab `name`: its role, whether its netns is there, its daemon runs and its socket answers. */
export async function labStatus(name: string): Promise<{ state: LabState; swarm: LabSwarm | undefined; underlay: boolean; hosts: LabHostStatus[]; peers: { netns: string; addr: string; up: boolean }[] }> {
  const { state, swarm } = readLab(name);
  const netns = await listNetns();
  const hosts: LabHostStatus[] = [];
  for (const h of state.hosts) {
    const d = state.daemons.find((x) => x.host === h.name);
    const running = d !== undefined && isAlive(d.pid) && readProcStat(d.pid)?.startTime === d.startTime;
    hosts.push({
      host: h,
      role: swarm?.managers.includes(h.index) ? 'manager' : swarm?.workers.includes(h.index) ? 'worker' : '',
      netns: netns.includes(h.netns),
      daemonPid: running ? d.pid : undefined,
      socket: await canConnect(socketPath(h)),
    });
  }
  return { state, swarm, underlay: netns.includes(state.underlayNetns), hosts, peers: state.clients.map((c) => ({ ...c, up: netns.includes(c.netns) })) };
}
