/** Helpers for end-to-end tests on a lab: run the CLI, wait for the cluster to say something, form a swarm. */
import { apiInfo, apiNodes, apiServiceTasks } from './api-reads';
import { Lab, LabClient, LabHost, requireBuiltCli } from '../lab/lab';
import { BusyboxImageOptions, pushBusybox } from '../support/image-build';
import { TestRegistry, startRegistry } from '../support/registry';
import { uniqueSuffix } from '../support/unique';
import { sw } from '../../lab/swarm';

export interface NodeJson {
  id: string;
  role?: string;
  spec?: { desiredRole?: string; availability?: string; labels?: Record<string, string> };
  description?: { hostname?: string; engineVersion?: string };
  status?: { state?: string; message?: string; addr?: string };
  managerStatus?: { addr?: string; leader?: boolean; reachability?: string };
}

export { formSwarm, joinCommand, sw, waitFor } from '../../lab/swarm';

export async function nodes(lab: Lab, h: LabHost): Promise<NodeJson[]> {
  return apiNodes(h);
}

export async function info(lab: Lab, h: LabHost): Promise<Record<string, any>> {
  return apiInfo(h);
}

export const byHost = (list: NodeJson[], h: LabHost) => list.find((n) => n.description?.hostname === h.name);

/** A task as `service ps --format api` prints it: the fields the tests read. */
export interface TaskJson {
  id: string;
  slot?: number;
  nodeId?: string;
  desiredState?: string;
  status?: { state?: string; err?: string; container?: { pid?: number } };
  networks?: { networkName?: string; networkId?: string; address?: string; mac?: string; vni?: number }[];
}

/** The tasks of `service` that run and are meant to, as the manager `h` lists them. */
export async function runningTasks(lab: Lab, h: LabHost, service: string): Promise<TaskJson[]> {
  return ((await apiServiceTasks(h, service)) as TaskJson[]).filter(
    (t) => t.desiredState === 'TASK_STATE_RUNNING' && t.status?.state === 'TASK_STATE_RUNNING',
  );
}

/** The lab host a task runs on, by a node list. */
export const hostIn = (lab: Lab, list: NodeJson[], t: TaskJson): LabHost => lab.hosts.find((host) => byHost(list, host)?.id === t.nodeId)!;

/** The lab host a task runs on, by the node list of the manager `h`. */
export async function hostOfTask(lab: Lab, h: LabHost, t: TaskJson): Promise<LabHost> {
  return hostIn(lab, await nodes(lab, h), t);
}

/** Runs node with `script` inside a task's network namespace, on `host`, the task's host. */
export function nodeInTask(lab: Lab, host: LabHost, t: TaskJson, script: string, args: string[] = []) {
  return lab.exec(host, ['nsenter', `--net=/proc/${t.status!.container!.pid}/ns/net`, process.execPath, '-e', script, ...args]);
}

/**
 * A registry in a client namespace of the lab (at `listen`, which the lab's daemons must trust as
 * insecure) holding the busybox test image (built with `build`'s files and config, if given): what
 * the container and terminal tests run.
 */
export async function busyboxRegistry(lab: Lab, listen: string, build: BusyboxImageOptions = {}): Promise<{ client: LabClient; registry: TestRegistry; image: string }> {
  const client = await lab.addClient();
  const registry = await startRegistry({ listen, netns: client.netns, baseDir: lab.baseDir });
  const image = (await pushBusybox(registry, { ...build, baseDir: lab.baseDir, netns: client.netns })).reference;
  return { client, registry, image };
}

/** Where `oneHostWithBusybox` puts its registry: the lab's first client namespace. */
export const LAB_REGISTRY = '198.51.100.200:5000';

/**
 * The set-up of the one-host container tests: a lab of one host (names prefixed `prefix` and a
 * unique suffix) whose daemon, in no swarm, trusts a busybox registry at LAB_REGISTRY, started after
 * the registry since the daemon reads its insecure registries at start. If a step fails, what was
 * made is removed before the error goes on.
 */
export async function oneHostWithBusybox(prefix: string, build: BusyboxImageOptions = {}): Promise<{ lab: Lab; h: LabHost; client: LabClient; registry: TestRegistry; image: string }> {
  requireBuiltCli();
  const lab = await Lab.create({ prefix: `${prefix}${uniqueSuffix()}`, hosts: 1, insecureRegistries: [LAB_REGISTRY] });
  let made: Awaited<ReturnType<typeof busyboxRegistry>> | undefined;
  try {
    made = await busyboxRegistry(lab, LAB_REGISTRY, build);
    const h = lab.host(1);
    await lab.startDaemon(h);
    return { lab, h, ...made };
  } catch (err) {
    await tearDownLab(lab, made?.registry);
    throw err;
  }
}

/** Stops a lab's registry, then removes the lab; either may be missing when set-up failed early. */
export async function tearDownLab(lab?: Lab, registry?: TestRegistry): Promise<void> {
  await registry?.stop();
  await lab?.destroy();
}

/** A lab-side TCP server (node -e) on port 80 that answers each connection with the address it came from. */
export const ADDRESS_ECHO_SERVER = `require('net').createServer((c) => c.end(c.remoteAddress + '\\n')).listen(80, '0.0.0.0', () => console.log('up'));`;
const ASK = [
  'const s = require("net").connect(Number(process.argv[2]), process.argv[1]); let d = "";',
  's.on("data", (x) => (d += x)); s.on("end", () => console.log(d.trim()));',
  's.on("error", (e) => { console.log("ERR " + e.code); process.exitCode = 1; });',
  'setTimeout(() => { console.log("ERR timeout"); process.exit(1); }, 3000).unref();',
].join(' ');

/** Connects from a lab namespace to addr:port and returns what came back, or `ERR <code>`. */
export const askFrom = async (lab: Lab, from: { netns: string }, addr: string, port: number): Promise<string> =>
  (await lab.exec(from, [process.execPath, '-e', ASK, addr, String(port)])).stdout.trim();
