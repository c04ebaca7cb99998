/**
 * `stack deploy` end to end on a lab of three hosts (h1 manager, h2 and h3 workers) with a
 * registry in the lab holding busybox: a stack of 3 services (web behind a published port, an API,
 * a redis-like store with a volume and a secret) answers through the routing mesh on every node;
 * deploying again with one changed service updates only that one; `stack rm` removes the stack's
 * services, network and secret, and leaves an unrelated service and network alone.
 * Run through test/run.sh after `npm run build`.
 */
import { apiServices } from './api-reads';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Lab, LabHost, requireBuiltCli } from '../lab/lab';
import { TestRegistry } from '../support/registry';
import { busyboxRegistry, formSwarm, runningTasks, sw, TaskJson, waitFor } from './cluster-helpers';
import { uniqueSuffix } from '../support/unique';

const REGISTRY = '198.51.100.200:5000';
const prefix = `swst${uniqueSuffix()}`;
let lab: Lab;
let h1: LabHost;
let registry: TestRegistry | undefined;
let image: string;

const compose = (apiVersion: string) => `
services:
  web:
    image: ${image}
    command: ["sh", "-c", "mkdir -p /www && echo hello from web > /www/index.html && exec httpd -f -p 80 -h /www"]
    ports:
      - "8080:80"
    networks:
      default:
        aliases: [www]
    deploy:
      replicas: 2
  api:
    image: ${image}
    command: ["sh", "-c", "while :; do echo \\"api $$VERSION\\" | nc -l -p 8000; done"]
    environment:
      VERSION: "${apiVersion}"
  store:
    image: ${image}
    command: ["sh", "-c", "test -s /run/secrets/store_password && echo kept > /data/x && exec sleep 100000"]
    volumes:
      - data:/data
    secrets:
      - source: store_password
        mode: 0400
volumes:
  data: {}
secrets:
  store_password:
    file: ./pw.txt
`;

beforeAll(async () => {
  requireBuiltCli();
  lab = await Lab.create({ prefix, hosts: 3, insecureRegistries: [REGISTRY] });
  [h1] = lab.hosts;
  const made = await busyboxRegistry(lab, REGISTRY);
  registry = made.registry;
  image = made.image;
  await formSwarm(lab, [h1], [lab.host(2), lab.host(3)]);
  writeFileSync(join(lab.baseDir, 'pw.txt'), 'store-secret-value');
}, 180000);

afterAll(async () => {
  await registry?.stop();
  await lab?.destroy();
}, 60000);

interface ServiceJson {
  id: string;
  specVersion?: number;
  spec?: { name?: string; labels?: Record<string, string> };
}

const services = async (): Promise<ServiceJson[]> => (await apiServices(h1));
const deploy = async (file: string) => sw(lab, h1, ['stack', 'deploy', '-c', join(lab.baseDir, file), 'app']);
const allRunning = async (name: string, n: number): Promise<TaskJson[]> =>
  waitFor(`${n} running tasks of ${name}`, async () => {
    const ts = await runningTasks(lab, h1, name);
    return ts.length === n ? ts : undefined;
  }, 120000);

test('a stack of web, api and store: deployed, reached through the mesh, updated where it changed, removed alone', async () => {
  writeFileSync(join(lab.baseDir, 'v1.yml'), compose('1'));
  writeFileSync(join(lab.baseDir, 'v2.yml'), compose('2'));
  // What stack rm must leave alone.
  await sw(lab, h1, ['network', 'create', '--driver', 'overlay', 'keep']);
  await sw(lab, h1, ['service', 'create', '--name', 'lonely', '--network', 'keep', '-d', 'exec:/', 'sleep', '100000']);

  const first = await deploy('v1.yml');
  expect(first).toBe(['Creating network app_default', 'Creating secret app_store_password', 'Creating service app_api', 'Creating service app_store', 'Creating service app_web', ''].join('\n'));
  expect(await sw(lab, h1, ['stack', 'ls'])).toMatch(/^NAME\s+SERVICES\napp\s+3\n$/);
  expect(await sw(lab, h1, ['stack', 'services', 'app', '-q'])).toMatch(/^(\w+\n){3}$/);
  await allRunning('app_web', 2);
  const [apiTask] = await allRunning('app_api', 1);
  const [storeTask] = await allRunning('app_store', 1);
  expect((await sw(lab, h1, ['stack', 'ps', 'app'])).split('\n').filter((l) => /\bRunning\b/.test(l))).toHaveLength(4);
  expect((await lab.execInTask(storeTask.status!.container!.pid!, ['cat', '/run/secrets/store_password'])).stdout).toBe('store-secret-value');

  // The web answers through the routing mesh on every node; the api by its name on the stack's network.
  for (const h of lab.hosts) {
    const body = await waitFor(`web through ${h.name}`, async () => {
      const r = await lab.exec(h, ['curl', '-s', '--max-time', '2', `http://${h.addr}:8080/`]);
      return r.code === 0 && r.stdout ? r.stdout : undefined;
    }, 60000);
    expect(body).toBe('hello from web\n');
  }
  const fromWeb = await waitFor('the api from a web task', async () => {
    const [web] = await runningTasks(lab, h1, 'app_web');
    const r = await lab.execInTask(web.status!.container!.pid!, ['sh', '-c', 'nc -w 2 api 8000 </dev/null'], { timeoutMs: 10000 });
    return r.stdout.includes('api 1') ? r.stdout : undefined;
  }, 60000);
  expect(fromWeb).toContain('api 1');
  // As docker's stack deploy: each service answers to its compose name, and to the file's aliases, on the stack's network.
  for (const name of ['web', 'www', 'app_web']) {
    const got = await waitFor(`the web as ${name} from the api task`, async () => {
      // An HTTP GET by nc: the lab's static busybox wget crashes on its error paths.
      const r = await lab.execInTask(apiTask.status!.container!.pid!, ['sh', '-c', `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 ${name} 80`], { timeoutMs: 10000 });
      if (r.code !== 0) throw new Error(`nc exited ${r.code}: ${r.stderr.trim()}`);
      return r.stdout;
    }, 60000);
    expect(got).toMatch(/^HTTP\/1\.[01] 200 .*\r\n\r\nhello from web\n$/s);
  }

  // Deploying again with the api changed: only it is updated.
  const before = new Map((await services()).map((s) => [s.spec?.name, s]));
  const webTasks = (await runningTasks(lab, h1, 'app_web')).map((t) => t.id).sort();
  const second = await deploy('v2.yml');
  expect(second).toBe(`Updating service app_api (id: ${before.get('app_api')!.id})\n`);
  const after = new Map((await services()).map((s) => [s.spec?.name, s]));
  expect(after.get('app_api')!.specVersion).toBe(before.get('app_api')!.specVersion! + 1);
  expect(after.get('app_web')!.specVersion).toBe(before.get('app_web')!.specVersion);
  expect(after.get('app_store')!.specVersion).toBe(before.get('app_store')!.specVersion);
  await waitFor('the api updated', async () => {
    const ts = await runningTasks(lab, h1, 'app_api');
    return ts.length === 1 && ts[0].id !== apiTask.id ? ts : undefined;
  }, 120000);
  expect((await runningTasks(lab, h1, 'app_web')).map((t) => t.id).sort()).toEqual(webTasks);
  expect((await runningTasks(lab, h1, 'app_store')).map((t) => t.id)).toEqual([storeTask.id]);
  // The same file again changes nothing.
  expect(await deploy('v2.yml')).toBe('');

  // stack rm: the stack's services, network and secret go; the rest stays.
  const removed = await sw(lab, h1, ['stack', 'rm', 'app']);
  expect(removed.split('\n').filter(Boolean)).toEqual(['Removing service app_api', 'Removing service app_store', 'Removing service app_web', 'Removing secret app_store_password', 'Removing network app_default']);
  expect((await services()).map((s) => s.spec?.name)).toEqual(['lonely']);
  const networks = (await sw(lab, h1, ['network', 'ls', '--format', 'api']));
  expect(networks).toContain('"keep"');
  expect(networks).not.toContain('app_default');
  expect(await sw(lab, h1, ['secret', 'ls', '-q'])).toBe('');
  expect(await sw(lab, h1, ['stack', 'ls'])).toMatch(/^NAME\s+SERVICES\n$/);
}, 600000);

test('a bad compose file is one clear line naming the file, and nothing is deployed', async () => {
  writeFileSync(join(lab.baseDir, 'bad.yml'), 'services:\n  web:\n    image: x\n    ports:\n      - "notaport"\n');
  const res = await lab.cli(h1, ['stack', 'deploy', '-c', join(lab.baseDir, 'bad.yml'), 'bad']);
  expect(res.code).not.toBe(0);
  expect(res.stderr.trim().split('\n')).toHaveLength(1);
  expect(res.stderr).toContain('bad.yml');
  expect((await services()).map((s) => s.spec?.name)).not.toContain('bad_web');
  expect((await sw(lab, h1, ['network', 'ls', '--format', 'api']))).not.toContain('bad_default');
}, 60000);

test('stack deploy -c - reads the compose file from standard input', async () => {
  const text = `services:\n  solo:\n    image: ${image}\n    command: ["sleep", "100000"]\n`;
  const res = await lab.cli(h1, ['stack', 'deploy', '-c', '-', 'piped'], { input: text });
  expect(res.stderr).toBe('');
  expect(res.stdout).toBe('Creating network piped_default\nCreating service piped_solo\n');
  await allRunning('piped_solo', 1);
  await sw(lab, h1, ['stack', 'rm', 'piped']);
}, 180000);
