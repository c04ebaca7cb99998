/**
 * OCI containers end to end on a lab of three hosts: a registry (Debian's docker-registry) in a
 * lab namespace on the underlay, an image built from busybox-static pushed there, and daemons
 * told that registry is insecure. A 3-replica service of the image serves, with httpd on every
 * node that has a task, a page that names the task; a named volume keeps a file across a task's
 * replacement and outlives its service; a bind mount is readable, and read-only when asked; a
 * memory limit kills a task with the OOM reason; one task's filesystem changes stay its own; a
 * missing image, a malformed reference, an unreachable registry and a wrong credential reject the
 * task with a clear message and leave the image store as it was. Run through test/run.sh.
 */
import { apiServiceTasks } from './api-reads';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Lab, LabClient, LabHost, requireBuiltCli } from '../lab/lab';
import { byHost, formSwarm, nodes, sw, waitFor } from './cluster-helpers';
import { pushBusybox } from '../support/image-build';
import { TestRegistry, startRegistry } from '../support/registry';
import { uniqueSuffix } from '../support/unique';

interface TaskJson {
  id: string;
  slot?: number;
  nodeId?: string;
  desiredState?: string;
  status?: { state?: string; err?: string; message?: string; container?: { pid?: number; health?: string } };
  networks?: { networkName?: string; address?: string }[];
}

const prefix = `swc${uniqueSuffix()}`;
// The lab's first client namespace: 198.51.100.200. The daemons must know the registry before they start.
const REGISTRY_HOST = '198.51.100.200';
const REGISTRY = `${REGISTRY_HOST}:5000`;
const PRIVATE_REGISTRY = `${REGISTRY_HOST}:5001`;
const CREDS = { user: 'alice', password: 'pw-e2e-4d1c' };
let lab: Lab;
let client: LabClient;
let registry: TestRegistry;
let privateRegistry: TestRegistry;
let h1: LabHost, h2: LabHost, h3: LabHost;
let image: string;

const tasksOf = async (service: string): Promise<TaskJson[]> => (await apiServiceTasks(h1, service)) as TaskJson[];
const running = async (service: string): Promise<TaskJson[]> =>
  (await tasksOf(service)).filter((t) => t.desiredState === 'TASK_STATE_RUNNING' && t.status?.state === 'TASK_STATE_RUNNING');

async function runningN(service: string, n: number, timeoutMs = 60000): Promise<TaskJson[]> {
  return waitFor(`${n} running tasks of ${service}`, async () => {
    const r = await running(service);
    return r.length === n ? r : undefined;
  }, timeoutMs, 300);
}

async function hostOf(t: TaskJson): Promise<LabHost> {
  const list = await nodes(lab, h1);
  return lab.hosts.find((h) => byHost(list, h)?.id === t.nodeId)!;
}

const imageIds = async (h: LabHost): Promise<string[]> => (JSON.parse(await sw(lab, h, ['image', 'ls', '--format', 'api'])) as { id: string }[]).map((i) => i.id).sort();

beforeAll(async () => {
  requireBuiltCli();
  lab = await Lab.create({ prefix, hosts: 3, insecureRegistries: [REGISTRY, PRIVATE_REGISTRY] });
  [h1, h2, h3] = lab.hosts;
  client = await lab.addClient();
  expect(client.addr).toBe(REGISTRY_HOST);
  registry = await startRegistry({ listen: REGISTRY, netns: client.netns, baseDir: lab.baseDir });
  privateRegistry = await startRegistry({ listen: PRIVATE_REGISTRY, netns: client.netns, baseDir: lab.baseDir, auth: CREDS });
  image = (await pushBusybox(registry, { baseDir: lab.baseDir, netns: client.netns })).reference;
  await pushBusybox(privateRegistry, { baseDir: lab.baseDir, netns: client.netns, name: 'private/busybox' });
  await formSwarm(lab, [h1], [h2, h3]);
}, 180000);

afterAll(async () => {
  await registry?.stop();
  await privateRegistry?.stop();
  await lab?.destroy();
}, 60000);

test('three replicas serve a page naming their task with httpd, one on every node; health checks run in the container', async () => {
  await sw(lab, h1, ['network', 'create', '-d', 'bridge', 'webnet']);
  const script = 'mkdir -p /www && echo "served by task $HOSTNAME" > /www/index.html && exec httpd -f -p 80 -h /www';
  await sw(lab, h1, [
    'service', 'create', '--name', 'web', '--replicas', '3', '--network', 'webnet', '--stop-grace-period', '1s',
    '--health-cmd', 'wget -q -O- http://127.0.0.1/ | grep -q "served by task $HOSTNAME"', '--health-interval', '500ms',
    image, 'sh', '-c', script,
  ]);
  await runningN('web', 3);
  const tasks = await waitFor('three healthy tasks', async () => {
    const r = await running('web');
    return r.length === 3 && r.every((t) => t.status?.container?.health === 'healthy') ? r : undefined;
  }, 30000, 300);
  const hosts = await Promise.all(tasks.map(hostOf));
  expect(new Set(hosts.map((h) => h.name)).size).toBe(3);
  for (const [i, t] of tasks.entries()) {
    const ip = t.networks!.find((n) => n.networkName === 'webnet')!.address!.split('/')[0];
    // From the host's own network namespace to the task's address on the node's bridge.
    const page = await waitFor(`the page of task ${t.id}`, async () => {
      const r = await lab.exec(hosts[i], ['curl', '-s', '--max-time', '2', `http://${ip}/`]);
      return r.code === 0 && r.stdout.includes('served by') ? r.stdout : undefined;
    }, 20000, 300);
    expect(page.trim()).toBe(`served by task ${t.id.slice(0, 12)}`);
  }
  // The image was pulled on each node once, and the store says which task uses it.
  for (const h of lab.hosts) {
    const list = JSON.parse(await sw(lab, h, ['image', 'ls', '--format', 'api'])) as { references: string[]; usedBy: string[] }[];
    expect(list).toHaveLength(1);
    expect(list[0].references).toEqual([image]);
    expect(list[0].usedBy).toHaveLength(1);
  }
  await sw(lab, h1, ['service', 'rm', 'web']);
  // httpd as pid 1 ignores SIGTERM: gone after its grace period. A daemon stopping meanwhile would wait for that.
  await waitFor('the web tasks gone', async () => {
    const left = await Promise.all(lab.hosts.map(async (h) => (JSON.parse(await sw(lab, h, ['image', 'ls', '--format', 'api'])) as { usedBy: string[] }[]).flatMap((i) => i.usedBy)));
    return left.flat().length === 0 ? true : undefined;
  }, 30000, 300);
}, 180000);

test('a restarted daemon adopts its running containers again', async () => {
  await sw(lab, h1, ['service', 'create', '--name', 'adopt', '--constraint', `node.hostname==${h3.name}`, image, 'sh', '-c', 'echo up; exec sleep 100000']);
  const [before] = await runningN('adopt', 1);
  await lab.stopDaemon(h3, 'term');
  await lab.startDaemon(h3);
  // The same task, with the same pid, still running; its logs still readable through the new daemon.
  await waitFor('the node ready again', async () => ((await nodes(lab, h1)).find((n) => n.description?.hostname === h3.name)?.status?.state === 'NODE_STATE_READY' ? true : undefined));
  const [after] = await runningN('adopt', 1);
  expect(after.id).toBe(before.id);
  expect(after.status?.container?.pid).toBe(before.status?.container?.pid);
  expect(await sw(lab, h1, ['service', 'logs', 'adopt'])).toContain('up');
  await sw(lab, h1, ['service', 'rm', 'adopt']);
}, 120000);

test('a named volume keeps a file across the task\'s replacement on the same node, and outlives the service', async () => {
  const script = 'echo "$HOSTNAME" >> /data/seen; exec sleep 100000';
  await sw(lab, h1, ['service', 'create', '--name', 'vol', '--stop-grace-period', '1s', '--constraint', `node.hostname==${h2.name}`, '--mount', 'type=volume,source=keep,target=/data', image, 'sh', '-c', script]);
  const [first] = await runningN('vol', 1);
  await sw(lab, h1, ['service', 'update', '--force', 'vol']);
  const [second] = await waitFor('the replacement task', async () => {
    const r = await running('vol');
    return r.length === 1 && r[0].id !== first.id ? r : undefined;
  }, 60000, 300);
  expect((await hostOf(second)).name).toBe(h2.name);
  const seenFile = join(h2.dataDir, 'volumes', 'keep', '_data', 'seen');
  const seen = await waitFor('both tasks in the volume', async () => {
    const text = readFileSync(seenFile, 'utf8');
    return text.trim().split('\n').length === 2 ? text : undefined;
  });
  expect(seen).toBe(`${first.id.slice(0, 12)}\n${second.id.slice(0, 12)}\n`);
  await sw(lab, h1, ['service', 'rm', 'vol']);
  await waitFor('the task gone from the node', async () => ((await sw(lab, h2, ['volume', 'inspect', '--format', 'api', 'keep'])).includes(second.id) ? undefined : true));
  const volumes = JSON.parse(await sw(lab, h2, ['volume', 'ls', '--format', 'api'])) as { name: string }[];
  expect(volumes.map((v) => v.name)).toContain('keep');
  expect(readFileSync(seenFile, 'utf8')).toBe(seen);
}, 180000);

test('a bind mount is readable, and read-only when asked', async () => {
  const dir = join(lab.baseDir, 'bind-src');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'msg'), 'hello from the node\n');
  const script = 'cat /conf/msg; if touch /conf/new 2>/dev/null; then echo writable; else echo read-only; fi; cat /rw/msg; touch /rw/new && echo rw-ok; exec sleep 100000';
  await sw(lab, h1, [
    'service', 'create', '--name', 'bind', '--constraint', `node.hostname==${h3.name}`,
    '--mount', `type=bind,source=${dir},target=/conf,readonly`, '--mount', `type=bind,source=${dir},target=/rw`,
    image, 'sh', '-c', script,
  ]);
  await runningN('bind', 1);
  const logs = await waitFor('the task\'s output', async () => {
    const out = await sw(lab, h1, ['service', 'logs', 'bind']);
    return out.includes('rw-ok') ? out : undefined;
  });
  expect(logs).toContain('hello from the node');
  expect(logs).toContain('read-only');
  expect(logs).not.toContain('writable');
  expect(readdirSync(dir).sort()).toEqual(['msg', 'new']);
  await sw(lab, h1, ['service', 'rm', 'bind']);
}, 120000);

test('a bind mount of a path that does not exist rejects the task', async () => {
  await sw(lab, h1, ['service', 'create', '-d', '--name', 'nobind', '--mount', 'type=bind,source=/no/such/path,target=/x', image, 'sleep', '100']);
  const t = await waitFor('a rejected task', async () => (await tasksOf('nobind')).find((x) => x.status?.state === 'TASK_STATE_REJECTED'));
  expect(t.status!.err).toContain('bind source path does not exist: /no/such/path');
  await sw(lab, h1, ['service', 'rm', 'nobind']);
}, 60000);

test('a task past its memory limit is killed and shows the OOM reason', async () => {
  await sw(lab, h1, ['service', 'create', '-d', '--name', 'hog', '--limit-memory', '32m', '--restart-condition', 'none', image, 'sh', '-c', 'x=$(head -c 100000000 /dev/zero | tr "\\0" a); sleep 1000']);
  const t = await waitFor('the failed task', async () => (await tasksOf('hog')).find((x) => x.status?.state === 'TASK_STATE_FAILED'), 60000, 300);
  expect(t.status!.err).toBe('OOM killed: memory limit of 32 MiB exceeded');
  await sw(lab, h1, ['service', 'rm', 'hog']);
}, 90000);

test('a task\'s filesystem changes do not leak to another task of the same image', async () => {
  const script = 'if [ -e /etc/marker ]; then echo "leaked from $(cat /etc/marker)"; else echo clean; fi; echo "$HOSTNAME" > /etc/marker; exec sleep 100000';
  await sw(lab, h1, ['service', 'create', '--name', 'leak', '--constraint', `node.hostname==${h1.name}`, image, 'sh', '-c', script]);
  await runningN('leak', 1);
  await sw(lab, h1, ['service', 'scale', 'leak=2']);
  await runningN('leak', 2);
  const logs = await waitFor('both tasks\' output', async () => {
    const out = await sw(lab, h1, ['service', 'logs', 'leak']);
    return out.split('\n').filter((l) => /clean|leaked/.test(l)).length === 2 ? out : undefined;
  });
  expect(logs).not.toContain('leaked');
  // The image's own root filesystem is untouched.
  const rootfsMarkers = readdirSync(join(h1.dataDir, 'images'), { recursive: true, encoding: 'utf8' }).filter((p) => p.endsWith('etc/marker'));
  expect(rootfsMarkers).toEqual([]);
  await sw(lab, h1, ['service', 'rm', 'leak']);
}, 120000);

test('a missing image, a malformed reference, an unreachable registry and a wrong credential reject the task and leave no trace in the image store', async () => {
  const before = await Promise.all(lab.hosts.map(imageIds));
  const authFile = join(lab.baseDir, 'wrong-auth');
  writeFileSync(authFile, `${CREDS.user}:not-the-password\n`, { mode: 0o600 });
  const cases: [string, string[], RegExp][] = [
    ['missing', [`${REGISTRY}/nosuch:latest`], new RegExp(`image ${REGISTRY}/nosuch:latest not found in registry ${REGISTRY}`)],
    ['malformed', ['Bad//Ref::x'], /invalid reference format/],
    ['unreachable', [`${REGISTRY_HOST}:5999/busybox:latest`], new RegExp(`registry ${REGISTRY_HOST}:5999 unreachable`)],
    ['badcreds', ['--registry-auth-file', authFile, `${PRIVATE_REGISTRY}/private/busybox:latest`], new RegExp(`registry ${PRIVATE_REGISTRY} refused the credentials`)],
  ];
  for (const [name, args, message] of cases) {
    await sw(lab, h1, ['service', 'create', '-d', '--name', name, '--restart-condition', 'none', ...args, 'sleep', '100']);
    const t = await waitFor(`a rejected task of ${name}`, async () => (await tasksOf(name)).find((x) => x.status?.state === 'TASK_STATE_REJECTED'), 60000, 300);
    expect(t.status!.err).toMatch(message);
    await sw(lab, h1, ['service', 'rm', name]);
  }
  expect(await Promise.all(lab.hosts.map(imageIds))).toEqual(before);
  // The store makes its tmp dir at its first pull: a host that never pulled has none.
  for (const h of lab.hosts) {
    const tmp = join(h.dataDir, 'images', 'tmp');
    expect(existsSync(tmp) ? readdirSync(tmp) : []).toEqual([]);
  }
  expect(readFileSync(join(lab.baseDir, 'h1.log'), 'utf8')).not.toContain('not-the-password');
}, 180000);
