/**
 * Containers on an attachable overlay, end to end, on a lab of two hosts (h1 manager, h2 worker):
 * docker's `network create --driver overlay --attachable my-attachable-overlay`, then a container
 * on each host on it. Containers come in issue 12's part C; until then a namespace made by the
 * test stands in for each container's, attached through the node's own API
 * (LocalNode.AttachContainerNetwork: the ContainerNetworks port the container code calls).
 *
 * - alpine1 on h1 and alpine2 on h2 resolve each other by name (and alias) through the embedded
 *   DNS and ping each other over the overlay; a service task on the overlay resolves them, and
 *   they resolve the service;
 * - a non-attachable overlay is refused with docker's message, and nothing is left behind;
 * - detaching takes the container's interface and its DNS record away, on every host.
 *
 * Run through test/run.sh after `npm run build`.
 */
import { apiServiceTasks } from './api-reads';
import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Lab, LabHost, requireBuiltCli } from '../lab/lab';
import { ip } from '../lab/ip-command';
import { ContainerEndpointInfo, ControlClient, ListTasksResponse, LocalNodeClient } from '../../services/gen/swarmlet/v1/control';
import { TaskState } from '../../services/gen/swarmlet/v1/types';
import { formSwarm, sw, waitFor } from './cluster-helpers';
import { uniqueSuffix } from '../support/unique';

interface TaskJson {
  id: string;
  desiredState?: string;
  status?: { state?: string; container?: { pid?: number } };
  networks?: { networkName?: string; address?: string }[];
}

const prefix = `swt${uniqueSuffix()}`;
let lab: Lab;
let h1: LabHost, h2: LabHost;
let resolvConf: string;
const clients: (LocalNodeClient | ControlClient)[] = [];
/** The namespaces standing in for containers' (all carry the lab's prefix). */
const made: string[] = [];

const containerId = () => randomBytes(32).toString('hex');
const bare = (cidr: string) => cidr.split('/')[0];

function client(h: LabHost): LocalNodeClient {
  const c = new LocalNodeClient(h.socket, grpc.credentials.createInsecure());
  clients.push(c);
  return c;
}

function call<Req, Res>(c: LocalNodeClient, method: 'attachContainerNetwork' | 'detachContainerNetwork', req: Req): Promise<Res> {
  return new Promise((resolve, reject) =>
    (c[method] as any).call(c, req, new grpc.Metadata(), { deadline: Date.now() + 60000 }, (err: grpc.ServiceError | null, res: Res) => (err ? reject(err) : resolve(res))),
  );
}

/** The attachment tasks of a container, as the managers have them (Control.ListTasks on h1). */
async function attachmentsOf(id: string): Promise<ListTasksResponse['tasks']> {
  const c = new ControlClient(h1.socket, grpc.credentials.createInsecure());
  clients.push(c);
  const res = await new Promise<ListTasksResponse>((resolve, reject) =>
    c.listTasks({ service: '', node: '', all: true }, new grpc.Metadata(), { deadline: Date.now() + 20000 }, (err, r) => (err ? reject(err) : resolve(r))),
  );
  return res.tasks.filter((t) => t.spec?.attachment?.containerId === id);
}

/** A namespace standing in for a container's: lo up, nothing else. */
async function containerNetns(name: string): Promise<string> {
  const ns = `${prefix}-${name}`;
  await ip(['netns', 'add', ns]);
  made.push(ns);
  await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
  return ns;
}

function attach(h: LabHost, id: string, name: string, network: string, ns: string, aliases: string[] = []): Promise<ContainerEndpointInfo> {
  return call(client(h), 'attachContainerNetwork', { containerId: id, containerName: name, network, aliases, ipv4Address: '', netns: `/run/netns/${ns}` });
}

/** `dig` against the embedded DNS inside a container's namespace: the A records, or the status when there are none. */
async function digIn(ns: string, name: string): Promise<string[] | string> {
  const r = await lab.exec({ netns: ns }, ['dig', '@127.0.0.11', '+time=1', '+tries=2', name], { timeoutMs: 20000 });
  return parseDig(r.stdout, r.code);
}

function parseDig(out: string, code: number): string[] | string {
  const status = /status: ([A-Z]+)/.exec(out)?.[1];
  if (!status) return `no answer (exit ${code})`;
  const addrs = out
    .split('\n')
    .filter((l) => /\sIN\s+A\s/.test(l) && !l.startsWith(';'))
    .map((l) => l.trim().split(/\s+/).pop()!);
  return status === 'NOERROR' && addrs.length ? addrs.sort() : status;
}

/**
 * `ping` inside a container's namespace, by name or address. Names go to the embedded DNS, as in
 * a container: a resolv.conf naming 127.0.0.11 is bind-mounted over /etc/resolv.conf inside the
 * mount namespace `ip netns exec` makes for the command alone.
 */
const ping = (ns: string, target: string) =>
  lab.exec({ netns: ns }, ['sh', '-c', 'mount --bind "$0" /etc/resolv.conf && exec busybox ping -c 1 -W 2 "$1"', resolvConf, target], { timeoutMs: 20000 });

async function links(ns: string): Promise<string[]> {
  const r = await lab.exec({ netns: ns }, ['ip', '-o', 'link', 'show']);
  return r.stdout.split('\n').filter(Boolean).map((l) => l.split(':')[1].trim().split('@')[0]);
}

async function webTask(): Promise<TaskJson> {
  return waitFor('the web task running', async () => {
    const tasks = (await apiServiceTasks(h1, 'web')) as TaskJson[];
    return tasks.find((t) => t.desiredState === 'TASK_STATE_RUNNING' && t.status?.state === 'TASK_STATE_RUNNING' && t.status.container?.pid);
  }, 60000, 300);
}

beforeAll(async () => {
  requireBuiltCli();
  lab = await Lab.create({ prefix, hosts: 2 });
  h1 = lab.host(1);
  h2 = lab.host(2);
  resolvConf = join(lab.baseDir, 'resolv.conf');
  writeFileSync(resolvConf, 'nameserver 127.0.0.11\noptions ndots:0\n');
  await formSwarm(lab, [h1], [h2]);
  await sw(lab, h1, ['network', 'create', '--driver', 'overlay', '--attachable', 'my-attachable-overlay']);
  await sw(lab, h1, ['network', 'create', '--driver', 'overlay', 'plain']);
  await sw(lab, h1, ['service', 'create', '-d', '--name', 'web', '--network', 'my-attachable-overlay', '--constraint', `node.hostname==${h2.name}`, 'exec:/', 'sleep', '100000']);
}, 180000);

afterAll(async () => {
  clients.forEach((c) => c.close());
  for (const ns of made) await ip(['netns', 'del', ns]).catch(() => undefined);
  await lab?.destroy();
}, 120000);

test('containers on two hosts reach each other by name over an attachable overlay; a service resolves them and they resolve it', async () => {
  const [x1, x2] = [await containerNetns('x1'), await containerNetns('x2')];
  const [c1, c2] = [containerId(), containerId()];
  const e1 = await attach(h1, c1, 'alpine1', 'my-attachable-overlay', x1, ['first']);
  const e2 = await attach(h2, c2, 'alpine2', 'my-attachable-overlay', x2);
  expect(e1).toMatchObject({ networkName: 'my-attachable-overlay', driver: 'overlay', aliases: ['first'] });
  expect(e1.ipv4Cidr).toMatch(/^10\.\d+\.\d+\.\d+\/24$/);
  expect(e2.ipv4Cidr).not.toBe(e1.ipv4Cidr);
  // Plugged when attach returns: eth0 with its address (and eth1 on the gateway bridge, for egress).
  expect(await links(x1)).toEqual(expect.arrayContaining(['lo', 'eth0']));
  expect((await lab.exec({ netns: x1 }, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0'])).stdout).toContain(e1.ipv4Cidr);
  // The managers' attachment task: on h1, reported running by the node once plugged in.
  await waitFor('alpine1\'s attachment running', async () => {
    const [t] = await attachmentsOf(c1);
    return t?.status?.state === TaskState.TASK_STATE_RUNNING ? t : undefined;
  }, 20000);

  await waitFor('alpine2 to resolve in alpine1', async () => ((await digIn(x1, 'alpine2')).toString() === bare(e2.ipv4Cidr) ? true : undefined), 20000);
  await waitFor('alpine1 and its alias to resolve in alpine2', async () => {
    const [byName, byAlias] = [await digIn(x2, 'alpine1'), await digIn(x2, 'first.my-attachable-overlay')];
    return byName.toString() === bare(e1.ipv4Cidr) && byAlias.toString() === bare(e1.ipv4Cidr) ? true : undefined;
  }, 20000);
  // By name, both ways, over the overlay.
  const there = await ping(x1, 'alpine2');
  expect(`${there.code} ${there.stdout} ${there.stderr}`).toMatch(new RegExp(`^0 PING alpine2 \\(${bare(e2.ipv4Cidr).replace(/\./g, '\\.')}\\).*1 packets received`, 's'));
  const back = await ping(x2, 'first');
  expect(`${back.code} ${back.stdout} ${back.stderr}`).toMatch(new RegExp(`^0 PING first \\(${bare(e1.ipv4Cidr).replace(/\./g, '\\.')}\\).*1 packets received`, 's'));

  // The service's task (on h2) resolves the containers; the containers resolve the service's VIP and reach its task.
  const task = await webTask();
  const taskIp = bare(task.networks!.find((n) => n.networkName === 'my-attachable-overlay')!.address!);
  const inTask = async (name: string) => {
    const r = await lab.execInTask(task.status!.container!.pid!, ['dig', '+time=1', '+tries=2', name], { timeoutMs: 20000 });
    return parseDig(r.stdout, r.code);
  };
  await waitFor('alpine1 to resolve in the web task', async () => ((await inTask('alpine1')).toString() === bare(e1.ipv4Cidr) ? true : undefined), 20000);
  const [service] = JSON.parse(await sw(lab, h1, ['service', 'inspect', '--format', 'api', 'web'])) as { endpoint: { virtualIps: { addr: string }[] } }[];
  expect(await digIn(x1, 'web')).toEqual([bare(service.endpoint.virtualIps[0].addr)]);
  expect(await digIn(x1, 'tasks.web')).toEqual([taskIp]);
  expect((await ping(x1, taskIp)).code).toBe(0);

  // network inspect lists the containers by name.
  const [net] = JSON.parse(await sw(lab, h1, ['network', 'inspect', 'my-attachable-overlay', '--format', 'api'])) as { endpoints: { taskName: string; address: string }[] }[];
  expect(net.endpoints.map((e) => e.taskName)).toEqual(expect.arrayContaining(['alpine1', 'alpine2']));

  // Detach: the interface goes at once, the record everywhere (the other container, the task).
  await call(client(h1), 'detachContainerNetwork', { containerId: c1, network: 'my-attachable-overlay' });
  expect(await links(x1)).toEqual(['lo']);
  await waitFor('alpine1 gone from alpine2\'s DNS', async () => ((await digIn(x2, 'alpine1')) === 'NXDOMAIN' ? true : undefined), 20000);
  await waitFor('alpine1 gone from the task\'s DNS', async () => ((await inTask('alpine1')) === 'NXDOMAIN' ? true : undefined), 20000);
  const [after] = JSON.parse(await sw(lab, h1, ['network', 'inspect', 'my-attachable-overlay', '--format', 'api'])) as { endpoints: { taskName: string }[] }[];
  expect(after.endpoints.map((e) => e.taskName)).not.toContain('alpine1');
  expect(await attachmentsOf(c1)).toEqual([]);
  // Again: fine.
  await call(client(h1), 'detachContainerNetwork', { containerId: c1, network: 'my-attachable-overlay' });
}, 180000);

test('a non-attachable overlay is refused with docker\'s message, and nothing is left behind', async () => {
  const x3 = await containerNetns('x3');
  const before = JSON.parse(await sw(lab, h1, ['network', 'inspect', 'plain', '--format', 'api']))[0].endpoints;
  const c3 = containerId();
  const err = (await attach(h2, c3, 'alpine3', 'plain', x3).then(
    () => undefined,
    (e: grpc.ServiceError) => e,
  ))!;
  expect(err).toBeDefined();
  expect(err.code).toBe(grpc.status.PERMISSION_DENIED);
  expect(err.details).toBe('Could not attach to network plain: rpc error: code = PermissionDenied desc = network plain not manually attachable');
  expect(await links(x3)).toEqual(['lo']);
  expect(await attachmentsOf(c3)).toEqual([]);
  expect(JSON.parse(await sw(lab, h1, ['network', 'inspect', 'plain', '--format', 'api']))[0].endpoints).toEqual(before);
  // A namespace that is not there: refused before the managers are asked.
  const missing = (await attach(h1, containerId(), 'alpine4', 'my-attachable-overlay', `${prefix}-nope`).then(
    () => undefined,
    (e: grpc.ServiceError) => e,
  ))!;
  expect(missing.code).toBe(grpc.status.INVALID_ARGUMENT);
  expect(missing.details).toBe(`the container's network namespace /run/netns/${prefix}-nope does not exist`);
  // No sandbox for the refused overlay on h2, no attachment task anywhere.
  const sandboxes = await ip(['netns', 'list']);
  const [plain] = JSON.parse(await sw(lab, h1, ['network', 'inspect', 'plain', '--format', 'api'])) as { vni: number }[];
  expect(sandboxes).not.toMatch(new RegExp(`-${plain.vni}\\b`));
}, 120000);
