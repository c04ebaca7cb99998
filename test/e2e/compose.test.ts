/**
 * `swarmlet compose` on one lab host whose daemon is in no swarm, with exec:/ images: the notes'
 * voting app on front-end and back-end networks (names resolve on the networks a service shares,
 * not across them); a web service that waits for its database's health check and reaches it by
 * name; .env and ${VAR:-default} interpolation with the shell winning; `up` twice leaving running
 * containers alone and recreating only a changed service; `down` (with -v) removing what `up` made
 * and nothing else; a file with a mistake that prints one line and makes nothing. Run through
 * test/run.sh.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab, LabClient, LabHost } from '../lab/lab';
import { ADDRESS_ECHO_SERVER, askFrom, oneHostWithBusybox, sw, tearDownLab, waitFor } from './cluster-helpers';
import type { TestRegistry } from '../support/registry';

interface PsEntry {
  ID: string;
  Name: string;
  Service: string;
  State: string;
}

let lab: Lab;
let h: LabHost;
let registry: TestRegistry;
let client: LabClient;
let image: string;

/** Writes a project directory's files under the lab's base dir; returns the compose file's path. */
function project(dir: string, files: Record<string, string>): string {
  const root = join(lab.baseDir, 'compose', dir);
  mkdirSync(root, { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(root, name), text);
  return join(root, 'docker-compose.yml');
}

const compose = (file: string, args: string[], env?: Record<string, string>) => lab.cli(h, ['compose', '-f', file, ...args], { env, timeoutMs: 120_000 });

async function composeOk(file: string, args: string[], env?: Record<string, string>): Promise<{ stdout: string; stderr: string }> {
  const r = await compose(file, args, env);
  if (r.code !== 0) throw new Error(`compose ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}\n--- daemon log ---\n${lab.logTail(h, 40)}`);
  return r;
}

const ps = async (file: string, all = false): Promise<PsEntry[]> => JSON.parse((await composeOk(file, ['ps', ...(all ? ['-a'] : []), '--format', 'api'])).stdout) as PsEntry[];
const containerNames = async (): Promise<string[]> => (JSON.parse(await sw(lab, h, ['ps', '-a', '--format', 'api'])) as { Name: string }[]).map((c) => c.Name.replace(/^\//, '')).sort();
const networkNames = async (): Promise<string[]> => (JSON.parse(await sw(lab, h, ['network', 'ls', '--format', 'api'])) as { spec?: { name?: string }; Name?: string }[]).map((n) => n.spec?.name ?? n.Name ?? '').sort();
const volumeNames = async (): Promise<string[]> => (JSON.parse(await sw(lab, h, ['volume', 'ls', '--format', 'api'])) as { name?: string; Name?: string }[]).map((v) => v.name ?? v.Name ?? '').sort();

beforeAll(async () => {
  ({ lab, h, client, registry, image } = await oneHostWithBusybox('swcm'));
}, 180000);

afterAll(() => tearDownLab(lab, registry), 60000);

const SLEEP = '["busybox", "sleep", "1000"]';

test("the notes' voting app: two networks, names resolve where services share one, ps and down", async () => {
  const file = project('voting', {
    'docker-compose.yml': `version: 2
services:
  redis:
    image: exec:/
    command: ${SLEEP}
    networks:
      - back-end
  db:
    image: exec:/
    command: ${SLEEP}
    networks:
      - front-end
  vote:
    image: exec:/
    command: ${SLEEP}
    networks:
      - front-end
      - back-end
  result:
    image: exec:/
    command: ${SLEEP}
    networks:
      - front-end
      - back-end
  worker:
    image: exec:/
    command: ${SLEEP}
    depends_on: [redis, db]
    networks:
      - front-end
      - back-end
networks:
  front-end:
  back-end:
`,
  });
  const up = await composeOk(file, ['up', '-d']);
  expect(up.stderr).toContain('the attribute `version` is obsolete');
  expect(up.stderr).toMatch(/^ Network voting_front-end {2}Created$/m);
  expect(up.stderr).toMatch(/^ Container voting-worker-1 {2}Started$/m);
  // worker after what it depends on
  expect(up.stderr.indexOf(' Container voting-worker-1  Started')).toBeGreaterThan(up.stderr.indexOf(' Container voting-redis-1  Started'));
  expect((await ps(file)).map((c) => `${c.Name} ${c.Service} ${c.State}`)).toEqual([
    'voting-db-1 db running',
    'voting-redis-1 redis running',
    'voting-result-1 result running',
    'voting-vote-1 vote running',
    'voting-worker-1 worker running',
  ]);
  expect(await networkNames()).toEqual(expect.arrayContaining(['voting_back-end', 'voting_front-end']));

  const ping = (from: string, to: string) => compose(file, ['exec', '-T', from, 'busybox', 'ping', '-c', '1', '-W', '2', to]);
  expect((await ping('vote', 'redis')).code).toBe(0);
  expect((await ping('vote', 'db')).code).toBe(0);
  expect((await ping('worker', 'voting-db-1')).code).toBe(0);
  // redis is on back-end only, db on front-end only: neither finds the other
  expect((await ping('redis', 'db')).code).not.toBe(0);

  const down = await composeOk(file, ['down']);
  expect(down.stderr).toMatch(/^ Network voting_back-end {2}Removed$/m);
  expect(await ps(file, true)).toEqual([]);
  expect(await networkNames()).not.toEqual(expect.arrayContaining(['voting_back-end']));
  expect(await networkNames()).not.toContain('voting_front-end');
});

test("web waits for db's health check, then reaches it by name", async () => {
  const mark = join(lab.baseDir, 'compose', 'health', 'db-ready');
  const file = project('health', {
    'docker-compose.yml': `services:
  db:
    image: exec:/
    command: ["sh", "-c", "sleep 2; touch ${mark}; exec busybox sleep 1000"]
    healthcheck:
      test: ["CMD", "test", "-f", "${mark}"]
      interval: 500ms
      timeout: 2s
      retries: 30
  web:
    image: exec:/
    command: ["sh", "-c", "test -f ${mark} && echo db was healthy; busybox ping -c 1 -W 2 db >/dev/null && echo reached db; exec busybox sleep 1000"]
    depends_on:
      db:
        condition: service_healthy
`,
  });
  const up = await composeOk(file, ['up', '-d']);
  expect(up.stderr).toMatch(/^ Container health-db-1 {2}Healthy$/m);
  expect(up.stderr.indexOf(' Container health-web-1  Started')).toBeGreaterThan(up.stderr.indexOf(' Container health-db-1  Healthy'));
  const logs = await waitFor('web reaching db', async () => {
    const out = (await composeOk(file, ['logs', 'web'])).stdout;
    return out.includes('reached db') ? out : undefined;
  });
  expect(logs).toMatch(/^health-web-1 {2}\| db was healthy$/m);
  await composeOk(file, ['down']);
});

test('.env and ${VAR:-default}: the shell wins over .env, .env over the default; ports, restart and memory limits apply', async () => {
  const file = project('envapp', {
    '.env': 'GREETING=hello from .env\nWHO=dotenv\n',
    'web.env': 'FROM_FILE=env_file value\n',
    'docker-compose.yml': `services:
  web:
    image: exec:/
    command: ["sh", "-c", "echo \\"$$GREETING|$$WHO|$$FALLBACK|$$FROM_FILE\\"; exec busybox sleep 1000"]
    env_file: web.env
    environment:
      GREETING: \${GREETING}
      WHO: \${WHO:-nobody}
      FALLBACK: \${NOT_SET:-the default}
  echo:
    image: exec:/
    command: ${JSON.stringify([process.execPath, '-e', ADDRESS_ECHO_SERVER])}
    ports: ["\${ECHO_PORT:-8080}:80"]
    restart: on-failure:2
    deploy:
      resources:
        limits: { memory: 64m }
`,
  });
  await composeOk(file, ['up', '-d'], { WHO: 'the shell' });
  const line = await waitFor('the greeting', async () => {
    const out = (await composeOk(file, ['logs', 'web'])).stdout;
    return out.includes('|') ? out.trim() : undefined;
  });
  expect(line).toMatch(/^envapp-web-1 {2}\| hello from \.env\|the shell\|the default\|env_file value$/m);
  // ports, restart and deploy.resources.limits reach the container
  expect(await waitFor('the published port', async () => {
    const got = await askFrom(lab, client, h.addr, 8080);
    return got.startsWith('ERR') ? undefined : got;
  })).toBe(client.addr);
  const echo = (JSON.parse(await sw(lab, h, ['inspect', 'envapp-echo-1'])) as { HostConfig: { Memory: number; RestartPolicy: { Name: string; MaximumRetryCount: number } } }[])[0];
  expect(echo.HostConfig).toMatchObject({ Memory: 64 * 1024 * 1024, RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 2 } });
  await composeOk(file, ['down']);
});

test('up twice: running containers are left alone; a changed service alone is recreated', async () => {
  const text = (greeting: string) => `services:
  api:
    image: exec:/
    command: ${SLEEP}
  web:
    image: exec:/
    command: ${SLEEP}
    environment: { GREETING: ${greeting} }
`;
  const file = project('twice', { 'docker-compose.yml': text('one') });
  await composeOk(file, ['up', '-d']);
  const first = await ps(file);
  const again = await composeOk(file, ['up', '-d']);
  expect(again.stderr).toMatch(/^ Container twice-api-1 {2}Running$/m);
  expect(again.stderr).toMatch(/^ Container twice-web-1 {2}Running$/m);
  expect(again.stderr).not.toMatch(/Created|Recreate/);
  expect((await ps(file)).map((c) => c.ID)).toEqual(first.map((c) => c.ID));

  writeFileSync(file, text('two'));
  const changed = await composeOk(file, ['up', '-d']);
  expect(changed.stderr).toMatch(/^ Container twice-web-1 {2}Recreated$/m);
  expect(changed.stderr).toMatch(/^ Container twice-api-1 {2}Running$/m);
  const after = await ps(file);
  expect(after.find((c) => c.Service === 'api')?.ID).toBe(first.find((c) => c.Service === 'api')?.ID);
  expect(after.find((c) => c.Service === 'web')?.ID).not.toBe(first.find((c) => c.Service === 'web')?.ID);
  await composeOk(file, ['down']);
});

test('down -v removes what up made and nothing else: an outside network, container and volume, and an external network, stay', async () => {
  await sw(lab, h, ['network', 'create', 'outsider-net']);
  await sw(lab, h, ['network', 'create', 'shared-net']);
  await sw(lab, h, ['volume', 'create', 'outsider-vol']);
  await sw(lab, h, ['run', '-d', '--name', 'outsider', '--network', 'outsider-net', 'exec:/', 'busybox', 'sleep', '1000']);
  const before = { containers: await containerNames(), networks: await networkNames(), volumes: await volumeNames() };
  const file = project('keep', {
    'docker-compose.yml': `services:
  app:
    image: exec:/
    command: ${SLEEP}
    volumes: ["data:/data"]
    networks: [default, shared]
networks:
  shared:
    external: true
    name: shared-net
volumes:
  data:
`,
  });
  await composeOk(file, ['up', '-d']);
  expect(await volumeNames()).toContain('keep_data');
  expect(await networkNames()).toContain('keep_default');
  await composeOk(file, ['down', '-v']);
  expect({ containers: await containerNames(), networks: await networkNames(), volumes: await volumeNames() }).toEqual(before);
  await sw(lab, h, ['rm', '-f', 'outsider']);
});

test('a file with a mistake prints one line with its file, line and key, and makes nothing', async () => {
  const before = { containers: await containerNames(), networks: await networkNames(), volumes: await volumeNames() };
  const file = project('broken', {
    'docker-compose.yml': `services:
  db:
    image: exec:/
    command: ${SLEEP}
    volumes: ["data:/data"]
  web:
    image: exec:/
    command: ${SLEEP}
    ports:
      - "8080:http"
volumes:
  data:
`,
  });
  const r = await compose(file, ['up', '-d']);
  expect(r.code).toBe(1);
  expect(r.stderr).toBe('Error: docker-compose.yml:10: services.web.ports[0]: invalid port "8080:http": use a port from 1 to 65535, or a range like 8000-8010\n'.replace('docker-compose.yml', file));
  expect({ containers: await containerNames(), networks: await networkNames(), volumes: await volumeNames() }).toEqual(before);

  // valid by the schema, but not doable: refused before a network or volume is made
  const undoable = project('undoable', {
    'docker-compose.yml': `services:
  web:
    image: exec:/
    command: ${SLEEP}
    container_name: the-web
    volumes: ["data:/data"]
    deploy: { replicas: 2 }
volumes:
  data:
`,
  });
  const r2 = await compose(undoable, ['up', '-d']);
  expect(r2.code).toBe(1);
  expect(r2.stderr).toBe('Error: service "web": container_name "the-web" cannot be used with 2 replicas\n');
  expect({ containers: await containerNames(), networks: await networkNames(), volumes: await volumeNames() }).toEqual(before);
});

test('pull fetches the images; up --build builds PROJECT-SERVICE with its build args and runs it', async () => {
  const file = project('built', {
    Dockerfile: `FROM ${image}\nARG GREETING=unset\nRUN echo "$GREETING from the build" > /greeting\n`,
    'docker-compose.yml': `services:
  app:
    build:
      context: .
      args:
        GREETING: hi
    command: ["sh", "-c", "cat /greeting; exec sleep 1000"]
  cache:
    image: ${image}
    command: ["sleep", "1000"]
`,
  });
  const pulled = await composeOk(file, ['pull']);
  expect(pulled.stderr).toContain(` Image ${image}  Pulled`);
  const up = await composeOk(file, ['up', '-d', '--build']);
  expect(up.stderr).toMatch(/^ Service app {2}Built$/m);
  const logs = await waitFor('the built greeting', async () => {
    const out = (await composeOk(file, ['logs', 'app'])).stdout;
    return out.includes('from the build') ? out : undefined;
  });
  expect(logs).toBe('built-app-1  | hi from the build\n');
  expect(await sw(lab, h, ['image', 'ls'])).toMatch(/built-app/);
  await composeOk(file, ['down']);
}, 240000);
