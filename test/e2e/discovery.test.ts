/**
 * Service discovery and the routing mesh end to end, on a lab of three hosts and a client
 * namespace on the underlay that is not a node (198.51.100.200, which also runs the upstream
 * resolver the daemons forward to: dnsmasq answering upstream.test and NXDOMAIN for the rest).
 *
 * - `web`: 3 replicas on h1 and h2 only, on the overlay `front`, publishing 8080 -> 8000 in ingress
 *   mode; each task runs test/support/whoami-server (answers with its host name: the first 12
 *   characters of its task id). 300 connections from the client to each host's 8080 (h3 runs no
 *   task) all succeed and reach the 3 tasks in roughly even shares.
 * - `client` (on `front`): `web` resolves to the VIP `service inspect` shows, the VIP spreads over
 *   the 3 tasks, `tasks.web` is exactly the running tasks' addresses and drops a task that is
 *   scaled away or killed (the time it took is printed), names outside the cluster come from the
 *   upstream resolver.
 *   Also `web.front`, `tasks.web.front`, a task's name and hostname, AAAA (no data) and PTR.
 * - `lonely` (on the overlay `back` alone): NXDOMAIN for `web`.
 * - Publishing: a taken port is refused, a port left out is chosen from 30000-32767, host mode
 *   answers only on the node that runs the task; `--endpoint-mode dnsrr` answers with task IPs.
 *
 * Run through test/run.sh after `npm run build`; DISCOVERY_KEEP_LOGS=DIR keeps the logs.
 */
import { apiServiceTasks } from './api-reads';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Lab, LabClient, LabHost, requireBuiltCli } from '../lab/lab';
import { byHost, formSwarm, nodes, sw, waitFor } from './cluster-helpers';
import { runCommand } from '../lab/ip-command';
import { uniqueSuffix } from '../support/unique';
import type { ProbeResult } from '../support/http-probe';

interface TaskJson {
  id: string;
  slot?: number;
  nodeId?: string;
  desiredState?: string;
  status?: { state?: string; err?: string; container?: { pid?: number } };
  networks?: { networkName?: string; networkId?: string; address?: string }[];
}

interface ServiceJson {
  id: string;
  spec?: { name?: string };
  endpoint?: {
    ports?: { protocol?: string; targetPort?: number; publishedPort?: number; publishMode?: string }[];
    virtualIps?: { networkId?: string; addr?: string }[];
  };
}

interface DigAnswer {
  status: string;
  addrs: string[];
}

const prefix = `swd${uniqueSuffix()}`;
const UPSTREAM_NAME = 'upstream.test';
const UPSTREAM_ADDR = '192.0.2.53';
/** The lab's first client: the lab gives 198.51.100.(199+n) to its n-th client. */
const CLIENT_ADDR = '198.51.100.200';
const PUBLISHED = 8080;
const TARGET = 8000;
const MESH_CONNECTIONS = 300;
const VIP_CONNECTIONS = 60;
/** tasks.web polls after a task goes: up to this many, DNS_POLL_MS apart (each is one dig in the task, some ms). */
const DNS_POLLS = 40;
const DNS_POLL_MS = 25;

let lab: Lab;
let h1: LabHost, h2: LabHost, h3: LabHost;
let client: LabClient;
let upstream: ChildProcess | undefined;
let whoami: string;
let probeJs: string;
/** The task the kill test killed. */
let killedTask = '';

const running = async (service: string): Promise<TaskJson[]> =>
  ((await apiServiceTasks(h1, service)) as TaskJson[]).filter(
    (t) => t.desiredState === 'TASK_STATE_RUNNING' && t.status?.state === 'TASK_STATE_RUNNING',
  );

/** Waits until `n` tasks of `service` run; on timeout the error lists every task's states. */
async function runningN(service: string, n: number, timeoutMs = 60000): Promise<TaskJson[]> {
  try {
    return await waitFor(`${n} running tasks of ${service}`, async () => {
      const r = await running(service);
      return r.length === n ? r : undefined;
    }, timeoutMs, 300);
  } catch (err) {
    const all = (await apiServiceTasks(h1, service)) as TaskJson[];
    const states = all.map((t) => `${t.id} desired ${t.desiredState} state ${t.status?.state}${t.status?.err ? ` (${t.status.err})` : ''} on ${t.nodeId ?? '-'}`);
    throw new Error(`${(err as Error).message}; service ps ${service}:\n${states.join('\n')}`);
  }
}

async function hostOf(t: TaskJson): Promise<LabHost> {
  const list = await nodes(lab, h1);
  return lab.hosts.find((h) => byHost(list, h)?.id === t.nodeId)!;
}

const ipOf = (t: TaskJson, net: string) => {
  const a = t.networks?.find((n) => n.networkName === net)?.address;
  if (!a) throw new Error(`task ${t.id} has no address on ${net}: ${JSON.stringify(t.networks)}`);
  return a.split('/')[0];
};
const nameOf = (t: TaskJson) => t.id.slice(0, 12);
const pidOf = (t: TaskJson) => {
  const pid = t.status?.container?.pid;
  if (!pid) throw new Error(`task ${t.id} has no pid: ${JSON.stringify(t.status)}`);
  return pid;
};
const sorted = (xs: string[]) => [...xs].sort();

/** `dig` in the task's namespaces (its /etc/resolv.conf): the status and the answer's records of `type` (their data). */
async function dig(t: TaskJson, name: string, timeS = 1, type = 'A'): Promise<DigAnswer> {
  const r = await lab.execInTask(pidOf(t), ['dig', `+time=${timeS}`, '+tries=2', name, type], { timeoutMs: 20000 });
  const status = /status: ([A-Z]+)/.exec(r.stdout)?.[1] ?? `no answer (exit ${r.code}: ${r.stdout.trim().split('\n').pop()} ${r.stderr.trim()})`;
  const addrs: string[] = [];
  let inAnswer = false;
  for (const line of r.stdout.split('\n')) {
    if (line.startsWith(';; ANSWER SECTION')) inAnswer = true;
    else if (inAnswer && line.trim() === '') inAnswer = false;
    else if (inAnswer) {
      const f = line.trim().split(/\s+/);
      if (f[3] === type && f[4]) addrs.push(f[4]);
    }
  }
  return { status, addrs: sorted(addrs) };
}

/** The probe (test/support/http-probe) in the client namespace, or inside a task's. */
async function probe(where: LabClient | LabHost | TaskJson, url: string, count: number): Promise<ProbeResult> {
  const argv = [process.execPath, probeJs, url, String(count), '10', '3000'];
  const r = 'netns' in where ? await lab.exec(where, argv, { timeoutMs: 120000 }) : await lab.execInTask(pidOf(where), argv, { timeoutMs: 120000 });
  if (r.code !== 0) throw new Error(`http-probe ${url} exited ${r.code}: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as ProbeResult;
}

/** Polls `tasks.web` in `t` until its answer satisfies `done` (up to DNS_POLLS tries); returns the last answer, the tries and the ms since t0. */
async function pollTasksRecord(t: TaskJson, done: (addrs: string[]) => boolean, t0: number): Promise<{ answer: DigAnswer; tries: number; ms: number }> {
  let answer: DigAnswer = { status: 'not asked', addrs: [] };
  for (let tries = 1; tries <= DNS_POLLS; tries++) {
    answer = await dig(t, 'tasks.web');
    if (answer.status === 'NOERROR' && done(answer.addrs)) return { answer, tries, ms: Math.round(performance.now() - t0) };
    await new Promise((r) => setTimeout(r, DNS_POLL_MS));
  }
  return { answer, tries: DNS_POLLS, ms: Math.round(performance.now() - t0) };
}

function startUpstream(): ChildProcess {
  const log = join(lab.baseDir, 'upstream-dnsmasq.log');
  const child = spawn('ip', [
    'netns', 'exec', client.netns, 'dnsmasq', '--keep-in-foreground', '--no-resolv', '--no-hosts', '--user=root', '--pid-file=',
    `--listen-address=${client.addr}`, '--bind-interfaces', `--address=/${UPSTREAM_NAME}/${UPSTREAM_ADDR}`, '--address=/#/',
    '--log-queries', `--log-facility=${log}`,
  ], { stdio: ['ignore', 'ignore', openSync(join(lab.baseDir, 'upstream-dnsmasq.err'), 'a')] });
  child.on('error', () => undefined);
  return child;
}

beforeAll(async () => {
  requireBuiltCli();
  // The daemons forward names outside the cluster to the resolver in the client namespace.
  lab = await Lab.create({ prefix, hosts: 3, dnsUpstreams: [CLIENT_ADDR] });
  [h1, h2, h3] = lab.hosts;
  whoami = join(lab.repoRoot, 'dist', 'test', 'support', 'whoami-server.js');
  probeJs = join(lab.repoRoot, 'dist', 'test', 'support', 'http-probe.js');
  for (const f of [whoami, probeJs]) if (!existsSync(f)) throw new Error(`${f} is missing: run 'npm run build' first`);
  // The client (and upstream resolver) comes first: the daemons are told its address when they start.
  client = await lab.addClient();
  expect(client.addr).toBe(CLIENT_ADDR);
  upstream = startUpstream();
  await formSwarm(lab, [h1], [h2, h3]);
  await sw(lab, h1, ['network', 'create', '-d', 'overlay', 'front']);
  await sw(lab, h1, ['network', 'create', '-d', 'overlay', 'back']);
  await sw(lab, h1, ['service', 'create', '-d', '--name', 'web', '--replicas', '3', '--network', 'front', '--constraint', `node.hostname!=${h3.name}`,
    '-p', `${PUBLISHED}:${TARGET}`, 'exec:/', process.execPath, whoami, String(TARGET)]);
  await sw(lab, h1, ['service', 'create', '-d', '--name', 'client', '--network', 'front', 'exec:/', 'sleep', '100000']);
  await sw(lab, h1, ['service', 'create', '-d', '--name', 'lonely', '--network', 'back', 'exec:/', 'sleep', '100000']);
}, 150000);

afterAll(async () => {
  upstream?.kill('SIGTERM');
  // DISCOVERY_KEEP_LOGS=DIR keeps the daemons' and the upstream resolver's logs for a post-mortem.
  const keep = process.env.DISCOVERY_KEEP_LOGS;
  if (keep && lab) {
    mkdirSync(keep, { recursive: true });
    for (const f of readdirSync(lab.baseDir).filter((x) => x.endsWith('.log'))) copyFileSync(join(lab.baseDir, f), join(keep, f));
  }
  await lab?.destroy();
}, 60000);

test('a published port answers on every node, the one without a task too, and spreads connections evenly over the tasks', async () => {
  const web = await runningN('web', 3);
  const hosts = await Promise.all(web.map(hostOf));
  expect(hosts).not.toContain(h3);
  const names = sorted(web.map(nameOf));
  for (const h of [h1, h2, h3]) {
    const url = `http://${h.addr}:${PUBLISHED}/`;
    // The mesh is programmed a moment after the tasks run: wait until the node answers at all.
    await waitFor(`${url} answering`, async () => ((await probe(client, url, 3)).ok === 3 ? true : undefined), 30000, 300);
    const r = await probe(client, url, MESH_CONNECTIONS);
    console.log(`mesh via ${h.name} (${h === h3 ? 'no task' : 'runs a task'}): ${r.ok}/${r.count} ok in ${r.ms} ms, by task ${JSON.stringify(r.by)}${r.failed ? `, errors ${JSON.stringify(r.errors)}` : ''}`);
    expect({ host: h.name, ok: r.ok, errors: r.errors }).toEqual({ host: h.name, ok: MESH_CONNECTIONS, errors: {} });
    expect(sorted(Object.keys(r.by))).toEqual(names);
    for (const n of names) expect(r.by[n]).toBeGreaterThanOrEqual(MESH_CONNECTIONS * 0.15);
  }
}, 120000);

test('the published port answers each node itself, on 127.0.0.1 and on its own address, and a task through its own node', async () => {
  const web = await runningN('web', 3);
  const names = sorted(web.map(nameOf));
  for (const h of [h1, h2, h3]) {
    for (const url of [`http://127.0.0.1:${PUBLISHED}/`, `http://${h.addr}:${PUBLISHED}/`]) {
      const r = await probe(h, url, 30);
      expect({ host: h.name, url, ok: r.ok, errors: r.errors }).toEqual({ host: h.name, url, ok: 30, errors: {} });
      expect(sorted(Object.keys(r.by))).toEqual(names);
    }
  }
  // A task asking the node it runs on: out of the gateway bridge and back into it, to the sandbox.
  const [c] = await runningN('client', 1);
  const own = await hostOf(c);
  const r = await probe(c, `http://${own.addr}:${PUBLISHED}/`, 30);
  expect({ host: own.name, ok: r.ok, errors: r.errors }).toEqual({ host: own.name, ok: 30, errors: {} });
  expect(sorted(Object.keys(r.by))).toEqual(names);
}, 60000);

test('service inspect shows the VIP and the published port; from a task on the network, the service name resolves to the VIP, which reaches every task', async () => {
  const nets = JSON.parse(await sw(lab, h1, ['network', 'ls', '--format', 'api'])) as { id: string; spec?: { name?: string } }[];
  const front = nets.find((n) => n.spec?.name === 'front')!;
  const [svc] = JSON.parse(await sw(lab, h1, ['service', 'inspect', '--format', 'api', 'web'])) as ServiceJson[];
  const vipCidr = svc.endpoint?.virtualIps?.find((v) => v.networkId === front.id)?.addr;
  expect(vipCidr).toMatch(/^10\.\d+\.\d+\.\d+\/\d+$/);
  const vip = vipCidr!.split('/')[0];
  expect(svc.endpoint?.ports).toEqual([expect.objectContaining({ targetPort: TARGET, publishedPort: PUBLISHED })]);

  const [c] = await runningN('client', 1);
  const resolv = await lab.execInTask(pidOf(c), ['cat', '/etc/resolv.conf']);
  expect(resolv.stdout).toMatch(/^nameserver 127\.0\.0\.11$/m);
  const answer = await waitFor('web to resolve in the client task', async () => {
    const a = await dig(c, 'web');
    return a.status === 'NOERROR' && a.addrs.length > 0 ? a : undefined;
  }, 20000, 300);
  expect(answer.addrs).toEqual([vip]);

  const web = await runningN('web', 3);
  const r = await probe(c, `http://${vip}:${TARGET}/`, VIP_CONNECTIONS);
  console.log(`through the VIP ${vip}: ${r.ok}/${r.count} ok, by task ${JSON.stringify(r.by)}`);
  expect({ ok: r.ok, errors: r.errors }).toEqual({ ok: VIP_CONNECTIONS, errors: {} });
  expect(sorted(Object.keys(r.by))).toEqual(sorted(web.map(nameOf)));
}, 90000);

test('tasks.<service> is exactly the running tasks\' addresses, and drops a task scaled away or killed', async () => {
  const [c] = await runningN('client', 1);
  const before = await runningN('web', 3);
  const first = await dig(c, 'tasks.web');
  expect(first).toEqual({ status: 'NOERROR', addrs: sorted(before.map((t) => ipOf(t, 'front'))) });

  // Scale down: the record loses the task the orchestrator stops (which one is its choice).
  const beforeIps = before.map((t) => ipOf(t, 'front'));
  await sw(lab, h1, ['service', 'scale', '-d', 'web=2']);
  const t0 = performance.now();
  const scaled = await pollTasksRecord(c, (addrs) => addrs.length === 2 && addrs.every((a) => beforeIps.includes(a)), t0);
  console.log(`tasks.web after scale web=2: ${JSON.stringify(scaled.answer.addrs)} after ${scaled.ms} ms (${scaled.tries} digs, from the return of 'service scale -d')`);
  const left = await runningN('web', 2);
  expect(scaled.answer).toEqual({ status: 'NOERROR', addrs: sorted(left.map((t) => ipOf(t, 'front'))) });

  // kill -9 one task's process: the record loses it before its replacement (restart delay 5 s) runs.
  const [victim, survivor] = left;
  killedTask = victim.id;
  const victimIp = ipOf(victim, 'front');
  const t1 = performance.now();
  process.kill(pidOf(victim), 'SIGKILL');
  const killed = await pollTasksRecord(c, (addrs) => addrs.join() === ipOf(survivor, 'front'), t1);
  console.log(`tasks.web after kill -9 of ${victim.id} (${victimIp}): ${JSON.stringify(killed.answer.addrs)} after ${killed.ms} ms (${killed.tries} digs)`);
  // How soon is printed above and measured in bench/discovery.ts; a test asserts no wall-clock time.
  expect(killed.answer).toEqual({ status: 'NOERROR', addrs: [ipOf(survivor, 'front')] });
  // The rules let it go too: the client task's VIP table, and the ingress table of every node (by its ingress address).
  const tables = async () => {
    const list = (argv: string[]) => runCommand(argv).then((r) => r.stdout);
    return [
      await list(['nsenter', `--net=/proc/${pidOf(c)}/ns/net`, '--', 'nft', 'list', 'table', 'ip', 'swarmlet-lb']),
      ...(await Promise.all([h1, h2, h3].map((h) => list(['ip', 'netns', 'exec', `${h.netns}-net-ingress`, 'nft', 'list', 'table', 'ip', 'swarmlet-ingress'])))),
    ];
  };
  const has = (text: string, ip: string) => new RegExp(`(?<![\\d.])${ip.replace(/\./g, '\\.')}(?![\\d])`).test(text);
  const [vipTable, ...ingressTables] = await waitFor(`${victim.id} out of the client's VIP table and every node's ingress table`, async () => {
    const t = await tables();
    return !has(t[0], victimIp) && t.slice(1).every((x) => !has(x, ipOf(victim, 'ingress'))) ? t : undefined;
  }, 20000, 100);
  expect(has(vipTable, ipOf(survivor, 'front'))).toBe(true);
  for (const t of ingressTables) expect(has(t, ipOf(survivor, 'ingress'))).toBe(true);
}, 120000);

test('the replacement of a killed task comes into tasks.<service>', async () => {
  const [c] = await runningN('client', 1);
  const back = await runningN('web', 2, 30000);
  expect(back.map((t) => t.id)).not.toContain(killedTask);
  await waitFor('tasks.web to list the replacement', async () => {
    const a = await dig(c, 'tasks.web');
    return a.addrs.join() === sorted(back.map((t) => ipOf(t, 'front'))).join() ? a : undefined;
  }, 20000, 200);
}, 120000);

test('the other names: <service>.<network>, tasks.<service>.<network>, a task\'s name and hostname, AAAA (no data) and PTR', async () => {
  const [c] = await runningN('client', 1);
  const web = await runningN('web', 2);
  const ips = sorted(web.map((t) => ipOf(t, 'front')));
  const vip = (await dig(c, 'web')).addrs;
  expect(vip).toHaveLength(1);
  expect(await dig(c, 'web.front')).toEqual({ status: 'NOERROR', addrs: vip });
  expect(await dig(c, 'tasks.web.front')).toEqual({ status: 'NOERROR', addrs: ips });
  expect(await dig(c, 'web', 1, 'AAAA')).toEqual({ status: 'NOERROR', addrs: [] });
  const [t] = web;
  expect(await dig(c, `web.${t.slot}.${t.id}`)).toEqual({ status: 'NOERROR', addrs: [ipOf(t, 'front')] });
  expect(await dig(c, nameOf(t))).toEqual({ status: 'NOERROR', addrs: [ipOf(t, 'front')] });
  const reverse = `${ipOf(t, 'front').split('.').reverse().join('.')}.in-addr.arpa`;
  const ptr = await dig(c, reverse, 1, 'PTR');
  expect(ptr.status).toBe('NOERROR');
  expect(ptr.addrs.join(' ')).toContain(t.id);
  expect((await dig(c, 'nosuchservice')).status).toBe('NXDOMAIN');
}, 60000);

test('a task that is not on the network gets NXDOMAIN for the service', async () => {
  const [l] = await runningN('lonely', 1);
  const resolv = await lab.execInTask(pidOf(l), ['cat', '/etc/resolv.conf']);
  expect(resolv.stdout).toMatch(/^nameserver 127\.0\.0\.11$/m);
  // Its resolver answers at all (upstream.test), so the NXDOMAIN below is an answer, not a timeout.
  await waitFor('the resolver of lonely to answer', async () => ((await dig(l, UPSTREAM_NAME, 3)).status === 'NOERROR' ? true : undefined), 20000, 300);
  expect(await dig(l, 'web')).toEqual({ status: 'NXDOMAIN', addrs: [] });
  expect(await dig(l, 'tasks.web')).toEqual({ status: 'NXDOMAIN', addrs: [] });
}, 60000);

test('names outside the cluster are answered by the upstream resolver', async () => {
  // The upstream itself answers a node (else the failure below is the test's, not the resolver's).
  const direct = await lab.exec(h1, ['dig', '+short', '+time=1', '+tries=2', `@${CLIENT_ADDR}`, UPSTREAM_NAME]);
  if (direct.stdout.trim() !== UPSTREAM_ADDR) {
    const err = readFileSync(join(lab.baseDir, 'upstream-dnsmasq.err'), 'utf8');
    throw new Error(`the upstream dnsmasq in ${client.netns} does not answer ${h1.name}: ${direct.stdout}${direct.stderr}; its stderr: ${err}`);
  }
  const [c] = await runningN('client', 1);
  // Forwarded answers may take up to the resolver's upstream timeout: dig waits 3 s per try.
  expect(await dig(c, UPSTREAM_NAME, 3)).toEqual({ status: 'NOERROR', addrs: [UPSTREAM_ADDR] });
  expect((await dig(c, `nosuch.${UPSTREAM_NAME}x`, 3)).status).toBe('NXDOMAIN');
  // The query reached the resolver in the client namespace, from a node's address.
  const log = readFileSync(join(lab.baseDir, 'upstream-dnsmasq.log'), 'utf8');
  expect(log).toMatch(new RegExp(`query\\[A\\] ${UPSTREAM_NAME.replace('.', '\\.')} from 198\\.51\\.100\\.1[1-3]\\b`));
}, 60000);

test('publishing: a taken port is refused, a port left out is chosen from 30000-32767, host mode opens the port only where a task runs', async () => {
  const serve = ['exec:/', process.execPath, whoami, String(TARGET)];
  const taken = await lab.cli(h1, ['service', 'create', '-d', '--name', 'clash', '--network', 'front', '-p', `${PUBLISHED}:${TARGET}`, ...serve]);
  expect(taken.code).toBe(1);
  expect(taken.stderr).toMatch(new RegExp(`port ${PUBLISHED}\\b.*already published by service web`));
  expect(await sw(lab, h1, ['service', 'ls'])).not.toMatch(/clash/);

  await sw(lab, h1, ['service', 'create', '-d', '--name', 'auto', '--network', 'front', '-p', String(TARGET), ...serve]);
  const [auto] = JSON.parse(await sw(lab, h1, ['service', 'inspect', '--format', 'api', 'auto'])) as ServiceJson[];
  const chosen = auto.endpoint?.ports?.[0]?.publishedPort ?? 0;
  expect(chosen).toBeGreaterThanOrEqual(30000);
  expect(chosen).toBeLessThanOrEqual(32767);
  const [a] = await runningN('auto', 1);
  await waitFor(`auto answering on ${h3.addr}:${chosen}`, async () => ((await probe(client, `http://${h3.addr}:${chosen}/`, 3)).by[nameOf(a)] === 3 ? true : undefined), 30000, 300);

  await sw(lab, h1, ['service', 'create', '-d', '--name', 'hostmode', '--network', 'front', '--constraint', `node.hostname==${h2.name}`, '-p', `published=8090,target=${TARGET},mode=host`, ...serve]);
  const [hm] = await runningN('hostmode', 1);
  await waitFor(`hostmode answering on ${h2.addr}:8090`, async () => ((await probe(client, `http://${h2.addr}:8090/`, 3)).by[nameOf(hm)] === 3 ? true : undefined), 30000, 300);
  expect((await probe(h2, 'http://127.0.0.1:8090/', 3)).by).toEqual({ [nameOf(hm)]: 3 });
  for (const h of [h1, h3]) {
    const r = await probe(client, `http://${h.addr}:8090/`, 3);
    expect({ host: h.name, ok: r.ok }).toEqual({ host: h.name, ok: 0 });
  }
  await sw(lab, h1, ['service', 'rm', 'auto', 'hostmode']);
}, 90000);

test('--endpoint-mode dnsrr: no VIP; the service name answers with the running tasks\' addresses', async () => {
  await sw(lab, h1, ['service', 'create', '-d', '--name', 'rr', '--replicas', '2', '--network', 'front', '--endpoint-mode', 'dnsrr', 'exec:/', 'sleep', '100000']);
  const tasks = await runningN('rr', 2);
  const [svc] = JSON.parse(await sw(lab, h1, ['service', 'inspect', '--format', 'api', 'rr'])) as ServiceJson[];
  expect(svc.endpoint?.virtualIps ?? []).toEqual([]);
  const [c] = await runningN('client', 1);
  const want = sorted(tasks.map((t) => ipOf(t, 'front')));
  const answer = await waitFor('rr to resolve to its tasks', async () => {
    const a = await dig(c, 'rr');
    return a.addrs.join() === want.join() ? a : undefined;
  }, 20000, 200);
  expect(answer).toEqual({ status: 'NOERROR', addrs: want });
  await sw(lab, h1, ['service', 'rm', 'rr']);
}, 60000);

