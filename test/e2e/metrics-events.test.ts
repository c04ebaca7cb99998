/**
 * Metrics and events end to end, on a lab of two hosts (h1 manager, h2 worker), each daemon
 * serving Prometheus metrics at :9323 (its advertise address). Scrapes are real HTTP GETs from
 * inside the lab, parsed strictly (test/support/prom-text.ts), and checked against the cluster;
 * events come from the CLI (`swarmlet events`), live and replayed from a store revision.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Lab, LabHost, requireBuiltCli } from '../lab/lab';
import { formSwarm, hostOfTask, runningTasks, sw, TaskJson, waitFor } from './cluster-helpers';
import { Family, parsePromText, sampleSum, sampleValue } from '../support/prom-text';
import { uniqueSuffix } from '../support/unique';

const prefix = `sme${uniqueSuffix()}`;
const METRICS_PORT = 9323;
let lab: Lab;
let h1: LabHost, h2: LabHost;

interface EventJson {
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: string;
  time: number;
  timeNano: number;
  revision: number;
}

const GET = [
  'const [url, method] = process.argv.slice(1);',
  'const req = require("http").request(url, { method }, (res) => { let d = ""; res.on("data", (c) => (d += c)); res.on("end", () => console.log(JSON.stringify({ status: res.statusCode, type: res.headers["content-type"], body: d }))); });',
  'req.on("error", (e) => { console.log(JSON.stringify({ error: e.code })); }); req.end();',
].join(' ');

/** An HTTP request to a host's metrics port, made from inside the host's namespace. */
async function http(h: LabHost, path: string, method = 'GET'): Promise<{ status?: number; type?: string; body?: string; error?: string }> {
  const r = await lab.exec(h, [process.execPath, '-e', GET, `http://${h.addr}:${METRICS_PORT}${path}`, method]);
  return JSON.parse(r.stdout);
}

async function scrape(h: LabHost): Promise<Map<string, Family>> {
  const r = await http(h, '/metrics');
  if (r.status !== 200) throw new Error(`scrape of ${h.name}: ${JSON.stringify(r).slice(0, 300)}`);
  return parsePromText(r.body!);
}

/** `events` replayed from `since` up to now, as JSON. */
async function eventsSince(since: number | string, filters: string[] = []): Promise<EventJson[]> {
  const out = await sw(lab, h1, ['events', '--since', String(since), '--until', new Date().toISOString(), '--format', 'json', ...filters.flatMap((f) => ['--filter', f])]);
  return out.split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

/** The store revision of the latest cluster event so far. */
async function lastRevision(): Promise<number> {
  return Math.max(...(await eventsSince(1)).map((e) => e.revision));
}

async function waitRunning(service: string, n: number): Promise<TaskJson[]> {
  return waitFor(`${n} running tasks of ${service}`, async () => {
    const ts = await runningTasks(lab, h1, service);
    return ts.length === n ? ts : undefined;
  }, 60000);
}

beforeAll(async () => {
  requireBuiltCli();
  lab = await Lab.create({ prefix, hosts: 2 });
  [h1, h2] = lab.hosts;
  await formSwarm(lab, [h1], [h2], ['--metrics-addr', `:${METRICS_PORT}`]);
  await sw(lab, h1, ['network', 'create', '--driver', 'overlay', 'front']);
  await sw(lab, h1, ['service', 'create', '--name', 'web', '--replicas', '3', '--network', 'front', 'exec:/', 'sleep', '100000']);
  await waitRunning('web', 3);
}, 180000);

afterAll(async () => {
  await lab?.destroy();
}, 60000);

describe('metrics', () => {
  test('the leader counts the cluster: 3 running tasks of web, the nodes by state and role, its loops and store requests', async () => {
    const m = await waitFor('the gauge of web to say 3', async () => {
      const f = await scrape(h1);
      return sampleValue(f, 'swarmlet_service_tasks', { service: 'web', state: 'running' }) === 3 ? f : undefined;
    });
    expect(sampleValue(m, 'swarmlet_manager_leader')).toBe(1);
    expect(sampleValue(m, 'swarmlet_nodes', { state: 'ready', role: 'manager' })).toBe(1);
    expect(sampleValue(m, 'swarmlet_nodes', { state: 'ready', role: 'worker' })).toBe(1);
    expect(sampleValue(m, 'swarmlet_dispatcher_sessions')).toBe(2);
    expect(sampleValue(m, 'swarmlet_reconcile_duration_seconds_count', { loop: 'scheduler' })).toBeGreaterThan(0);
    expect(sampleSum(m, 'swarmlet_etcd_request_duration_seconds_count')).toBeGreaterThan(0);
    expect(m.get('swarmlet_etcd_request_duration_seconds')?.type).toBe('histogram');
    // Its tasks' overlay and VIP tables were applied on it too.
    expect(sampleValue(m, 'swarmlet_netlink_apply_duration_seconds_count', { driver: 'overlay' })).toBeGreaterThan(0);
    expect(sampleValue(m, 'swarmlet_nft_apply_duration_seconds_count')).toBeGreaterThan(0);
  });

  test('a worker has no cluster gauges, and reads its tasks\' memory, CPU and network from their cgroups and interfaces', async () => {
    const onH2 = [];
    for (const t of await runningTasks(lab, h1, 'web')) if ((await hostOfTask(lab, h1, t)).name === h2.name) onH2.push(t);
    expect(onH2.length).toBeGreaterThan(0);
    const m = await scrape(h2);
    expect(sampleValue(m, 'swarmlet_manager_leader')).toBe(0);
    expect(m.get('swarmlet_service_tasks')?.samples).toEqual([]);
    for (const t of onH2) {
      expect(sampleValue(m, 'swarmlet_task_memory_bytes', { service: 'web', task_id: t.id })).toBeGreaterThan(0);
      expect(sampleValue(m, 'swarmlet_task_cpu_seconds_total', { service: 'web', task_id: t.id })).toBeGreaterThanOrEqual(0);
      expect(sampleValue(m, 'swarmlet_task_network_receive_bytes_total', { service: 'web', task_id: t.id })).toBeGreaterThanOrEqual(0);
    }
  });

  test('a DNS query from a task moves the counters of its node', async () => {
    const [t] = await runningTasks(lab, h1, 'web');
    const host = await hostOfTask(lab, h1, t);
    const before = await scrape(host);
    const dig = await lab.execInTask(t.status!.container!.pid!, ['dig', '+time=2', '+tries=1', 'web', 'A'], { timeoutMs: 20000 });
    expect(dig.stdout).toMatch(/status: NOERROR/);
    const after = await scrape(host);
    const moved = (name: string, labels: Record<string, string>) => (sampleValue(after, name, labels) ?? 0) - (sampleValue(before, name, labels) ?? 0);
    expect(moved('swarmlet_dns_queries_total', { type: 'A' })).toBeGreaterThanOrEqual(1);
    expect(moved('swarmlet_dns_answers_total', { type: 'A', rcode: 'NOERROR' })).toBeGreaterThanOrEqual(1);
    expect(moved('swarmlet_dns_query_duration_seconds_count', {})).toBeGreaterThanOrEqual(1);
  });

  test('a task start moves the start-latency histogram', async () => {
    const starts = async () => sampleSum(await scrape(h1), 'swarmlet_task_start_duration_seconds_count') + sampleSum(await scrape(h2), 'swarmlet_task_start_duration_seconds_count');
    const before = await starts();
    await sw(lab, h1, ['service', 'scale', 'web=4']);
    await waitRunning('web', 4);
    await waitFor('the histogram to count the start', async () => ((await starts()) >= before + 1 ? true : undefined));
  });

  test('only GET /metrics is served', async () => {
    expect(await http(h1, '/metrics')).toMatchObject({ status: 200, type: expect.stringMatching(/^text\/plain; version=0\.0\.4/) });
    expect(await http(h1, '/')).toMatchObject({ status: 404 });
    expect(await http(h1, '/metrics/x')).toMatchObject({ status: 404 });
    expect(await http(h1, '/metrics', 'POST')).toMatchObject({ status: 405 });
    expect(await http(h1, '/metrics', 'DELETE')).toMatchObject({ status: 405 });
  });
});

describe('events', () => {
  test('a scale shows the service update, then its new task created and running, in order', async () => {
    const from = await lastRevision();
    await sw(lab, h1, ['service', 'scale', 'web=5']);
    await waitRunning('web', 5);
    const evs = await eventsSince(from, ['type=service', 'type=task']);
    expect(evs.every((e) => e.revision > from)).toBe(true);
    expect(evs.map((e) => e.revision)).toEqual([...evs.map((e) => e.revision)].sort((a, b) => a - b));
    const update = evs.findIndex((e) => e.Type === 'service' && e.Action === 'update');
    expect(evs[update].Actor.Attributes).toMatchObject({ name: 'web', 'replicas.old': '4', 'replicas.new': '5' });
    const created = evs.findIndex((e) => e.Type === 'task' && e.Action === 'create');
    expect(evs[created].Actor.Attributes).toMatchObject({ service: 'web', name: 'web.5' });
    const running = evs.findIndex((e) => e.Type === 'task' && e.Actor.ID === evs[created].Actor.ID && e.Actor.Attributes['state.new'] === 'running');
    expect(update).toBeGreaterThanOrEqual(0);
    expect(created).toBeGreaterThan(update);
    expect(running).toBeGreaterThan(created);
    expect(evs.every((e) => e.scope === 'swarm')).toBe(true);
  });

  test('a task that exits 1 shows running -> failed with its reason', async () => {
    const flag = join(lab.baseDir, 'fail-now');
    await sw(lab, h1, ['service', 'create', '--name', 'job', '--restart-condition', 'none', 'exec:/', 'sh', '-c', `while [ ! -e ${flag} ]; do sleep 0.2; done; exit 1`]);
    const [t] = await waitRunning('job', 1);
    const from = await lastRevision();
    writeFileSync(flag, '');
    const failed = await waitFor('the failure event', async () => (await eventsSince(from, ['type=task', 'event=update'])).find((e) => e.Actor.ID === t.id && e.Actor.Attributes['state.new'] === 'failed'));
    expect(failed.Actor.Attributes).toMatchObject({ name: 'job.1', service: 'job', 'state.old': 'running', 'state.new': 'failed', err: 'task: non-zero exit (1)' });
  });

  test('a client that resumes from a revision gets exactly the events after it', async () => {
    const all = await eventsSince(1);
    const middle = all[Math.floor(all.length / 2)].revision;
    const last = all[all.length - 1].revision;
    const resumed = (await eventsSince(middle)).filter((e) => e.revision <= last);
    const key = (e: EventJson) => JSON.stringify([e.revision, e.Type, e.Action, e.Actor]);
    expect(resumed.map(key)).toEqual(all.filter((e) => e.revision > middle).map(key));
  });

  test('--until ends a live stream; --filter keeps the events asked for; the line is docker\'s', async () => {
    const file = join(lab.baseDir, 'token.txt');
    writeFileSync(file, 's3cret');
    // Long enough for the two commands on a loaded machine; the stream ends by itself at `until`.
    const until = new Date(Date.now() + 15000).toISOString();
    const live = lab.cli(h1, ['events', '--until', until, '--filter', 'type=secret', '--filter', 'event=create']);
    await new Promise((r) => setTimeout(r, 1500));
    await sw(lab, h1, ['network', 'create', '--driver', 'overlay', 'ignored']);
    const id = (await sw(lab, h1, ['secret', 'create', 'token', file])).trim();
    const res = await live;
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout.split('\n').filter(Boolean)).toEqual([expect.stringMatching(new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{9}Z secret create ${id} \\(name=token\\)$`))]);
  });

  test('Ctrl-C ends the stream cleanly', async () => {
    const child = spawn('ip', ['netns', 'exec', h1.netns, process.execPath, requireBuiltCli(), '-H', h1.socket, 'events', '--filter', 'type=config'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.on('data', (d) => (stdout += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // Once an event has come through, the stream is open (and the CLI's handler of SIGINT in place).
    const file = join(lab.baseDir, 'app.ini');
    writeFileSync(file, '[app]\n');
    await waitFor('the stream to print an event', async () => {
      if (!stdout.includes('config create')) await lab.cli(h1, ['config', 'create', `app${Date.now()}`, file]);
      return stdout.includes('config create') ? true : undefined;
    }, 60000, 1000);
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(stderr).toBe('');
  });

  test('a node shows its own container events: create, start, die with the exit code, destroy', async () => {
    const out = await sw(lab, h2, ['container', 'run', '-d', '--name', 'quick', '--network', 'none', 'exec:/', 'sh', '-c', 'exit 3']);
    const id = out.trim();
    await waitFor('the container to exit', async () => ((await sw(lab, h2, ['container', 'inspect', 'quick'])).includes('"exited"') ? true : undefined));
    await sw(lab, h2, ['container', 'rm', 'quick']);
    const lines = (await sw(lab, h2, ['events', '--since', '2m', '--until', new Date().toISOString(), '--filter', 'type=container'])).split('\n').filter(Boolean);
    expect(lines.map((l) => l.split(' ').slice(1, 4).join(' '))).toEqual([`container create ${id}`, `container start ${id}`, `container die ${id}`, `container destroy ${id}`]);
    expect(lines[2]).toMatch(/\(exitCode=3, image=exec:\/, name=quick\)$/);
  });

  test('bad input: one line, non-zero exit, nothing streamed', async () => {
    for (const args of [['--filter', 'type=pod'], ['--since', 'yesterday'], ['--format', '{{.Nope}}'], ['--filter', 'service=web']]) {
      const res = await lab.cli(h1, ['events', ...args]);
      expect(res.code).not.toBe(0);
      expect(res.stdout).toBe('');
      expect(res.stderr.trim().split('\n')).toHaveLength(1);
    }
  });
});
