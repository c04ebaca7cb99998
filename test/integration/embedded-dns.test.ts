/**
 * EmbeddedDns against real namespaces, inside the test runner's sandbox (test/run.sh). A "task" is
 * a bare network namespace; the resolver (in this process) gets its sockets on 127.0.0.11:53
 * there, and `dig` run inside the namespace asks it. The upstream is a small dns-packet server on
 * this sandbox's loopback (127.0.0.53:5353, UDP and TCP), and a UDP socket on 127.0.0.54:5353
 * that never answers stands for a dead one. Namespaces carry a prefix unique to the run and are
 * removed in afterAll, also when a test fails.
 */
import { execFile } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server } from 'node:net';
import { decode, encode, type Packet } from 'dns-packet';
import { EmbeddedDns } from '../../agent/dns/embedded-dns';
import { createRootLogger } from '../../services/common/logger';
import { metrics } from '../../services/metrics/metrics';
import { NetworkServices } from '../../services/gen/swarmlet/v1/dispatcher';
import { Task } from '../../services/gen/swarmlet/v1/types';
import { addNetns, deleteNetns, netnsPath } from '../support/netns';
import { uniqueSuffix } from '../support/unique';

const P = `dns${uniqueSuffix()}`;
const NS1 = `${P}-t1`;
const NS2 = `${P}-t2`;
/** Tasks on the other network only. */
const OTHERS = [`${P}-o1`, `${P}-o2`, `${P}-o3`, `${P}-o4`, `${P}-o5`];
const UPSTREAM = { host: '127.0.0.53', port: 5353 };
const DEAD = { host: '127.0.0.54', port: 5353 };

const log = createRootLogger('silent');
const sv = (taskId: string, ip: string, name: string, serving = true) => ({ taskId, ip, name, hostname: taskId, serving });
const front = (webTasks = [sv('w1', '10.0.1.5', 'web.1.w1'), sv('w2', '10.0.1.6', 'web.2.w2')]) =>
  NetworkServices.fromPartial({ networkId: 'nf', name: 'front', services: [{ serviceId: 's1', name: 'web', vip: '10.0.1.2', tasks: webTasks }] });
const other = NetworkServices.fromPartial({
  networkId: 'no',
  name: 'other',
  services: [{ serviceId: 's2', name: 'secret', vip: '10.0.3.2', tasks: [sv('x1', '10.0.3.5', 'secret.1.x1')] }],
});
const asker = (id: string) =>
  Task.fromPartial({ id, networks: [{ networkId: 'nf', networkName: 'front', driver: 'overlay', address: '10.0.1.9/24' }] });

/** What the upstream has been asked, by protocol and name. */
const upstreamSeen: string[] = [];
let upUdp: UdpSocket;
let upTcp: Server;
let dead: UdpSocket;
const resolvers: EmbeddedDns[] = [];
let dns: EmbeddedDns;

/** example.test -> 192.0.2.10; big.test -> TC over UDP, 192.0.2.11 over TCP; silent.test: no answer. */
function upstreamAnswer(msg: Buffer, protocol: 'udp' | 'tcp'): Buffer | undefined {
  const q = decode(msg);
  const name = q.questions?.[0]?.name ?? '';
  upstreamSeen.push(`${protocol}:${name}`);
  if (name === 'silent.test') return undefined;
  const base: Packet = { type: 'response', id: q.id, flags: 0x0100 | 0x0080, questions: q.questions };
  if (name === 'big.test' && protocol === 'udp') return encode({ ...base, flags: (base.flags ?? 0) | 0x0200, answers: [] });
  const ip = name === 'example.test' ? '192.0.2.10' : name === 'big.test' ? '192.0.2.11' : undefined;
  if (!ip) return encode({ ...base, flags: (base.flags ?? 0) | 3 });
  return encode({ ...base, answers: [{ type: 'A', name, ttl: 60, class: 'IN', data: ip }] });
}

interface Dig {
  status: string;
  flags: string;
  answers: string[];
  raw: string;
}

/** `dig` run inside the namespace, asking 127.0.0.11 (asynchronous: the resolver is this process). */
function dig(ns: string, args: string[], timeSec = 5): Promise<Dig> {
  const argv = [`--net=${netnsPath(ns)}`, '--', 'dig', '@127.0.0.11', `+time=${timeSec}`, '+tries=1', '+noall', '+comments', '+answer', ...args];
  return new Promise((resolve) => {
    execFile('nsenter', argv, { encoding: 'utf8' }, (_err, stdout) => {
      const status = /status: (\w+)/.exec(stdout)?.[1] ?? 'NONE';
      const flags = /;; flags: ([^;]*);/.exec(stdout)?.[1] ?? '';
      const answers = stdout
        .split('\n')
        .filter((l) => l && !l.startsWith(';'))
        .map((l) => l.trim().split(/\s+/).pop() ?? '');
      resolve({ status, flags, answers, raw: stdout });
    });
  });
}

/** Sends raw bytes to 127.0.0.11:53 over UDP from inside the namespace; the reply in hex, or 'none'. */
function sendRaw(ns: string, hex: string): Promise<string> {
  const src = `const s = require('dgram').createSocket('udp4');
    s.on('message', (m) => { console.log(m.toString('hex')); process.exit(0); });
    setTimeout(() => { console.log('none'); process.exit(0); }, 1500);
    s.send(Buffer.from('${hex}', 'hex'), 53, '127.0.0.11');`;
  return new Promise((resolve) => {
    execFile('nsenter', [`--net=${netnsPath(ns)}`, '--', process.execPath, '-e', src], { encoding: 'utf8' }, (_e, out) => resolve(out.trim()));
  });
}

beforeAll(async () => {
  addNetns(NS1);
  addNetns(NS2);
  upUdp = createSocket('udp4');
  upUdp.on('message', (m, r) => {
    const reply = upstreamAnswer(m, 'udp');
    if (reply) upUdp.send(reply, r.port, r.address);
  });
  await new Promise<void>((res) => upUdp.bind(UPSTREAM.port, UPSTREAM.host, res));
  upTcp = createServer((c) => {
    let buf = Buffer.alloc(0);
    c.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length < 2 || buf.length < 2 + buf.readUInt16BE(0)) return;
      const reply = upstreamAnswer(buf.subarray(2, 2 + buf.readUInt16BE(0)), 'tcp');
      if (!reply) return;
      const len = Buffer.alloc(2);
      len.writeUInt16BE(reply.length);
      c.end(Buffer.concat([len, reply]));
    });
    c.on('error', () => undefined);
  });
  await new Promise<void>((res) => upTcp.listen(UPSTREAM.port, UPSTREAM.host, res));
  dead = createSocket('udp4');
  await new Promise<void>((res) => dead.bind(DEAD.port, DEAD.host, res));

  dns = new EmbeddedDns({ log, upstreams: [`${UPSTREAM.host}:${UPSTREAM.port}`] });
  resolvers.push(dns);
  dns.apply([front(), other]);
  await dns.attach(asker('task-one'), netnsPath(NS1));
});

afterAll(async () => {
  for (const r of resolvers) await r.close();
  upUdp?.close();
  upTcp?.close();
  dead?.close();
  deleteNetns([NS1, NS2, ...OTHERS]);
});

test('a service name resolves to its VIP', async () => {
  const r = await dig(NS1, ['web', 'A']);
  expect(r.status).toBe('NOERROR');
  expect(r.flags.split(' ')).toContain('aa');
  expect(r.answers).toEqual(['10.0.1.2']);
});

test('tasks.<service> resolves to the serving tasks, on the network name too', async () => {
  expect((await dig(NS1, ['tasks.web', 'A'])).answers.sort()).toEqual(['10.0.1.5', '10.0.1.6']);
  expect((await dig(NS1, ['tasks.web.front.', 'A'])).answers.sort()).toEqual(['10.0.1.5', '10.0.1.6']);
  expect((await dig(NS1, ['-x', '10.0.1.5'])).answers).toEqual(['web.1.w1.']);
});

test('tasks.<service> turns its answers from one query to the next; the name comes back as asked', async () => {
  const first = await dig(NS1, ['tasks.web', 'A']);
  const second = await dig(NS1, ['tasks.web', 'A']);
  expect([first.answers.slice().sort(), second.answers.slice().sort()]).toEqual([['10.0.1.5', '10.0.1.6'], ['10.0.1.5', '10.0.1.6']]);
  expect(second.answers).toEqual(first.answers.slice().reverse());
  const mixed = await dig(NS1, ['WeB.FrOnT', 'A']);
  expect(mixed.raw).toMatch(/^WeB\.FrOnT\.\s+1\s+IN\s+A\s+10\.0\.1\.2$/m);
});

test('each query is counted by type and rcode, and timed', async () => {
  const value = async (metric: { get(): Promise<{ values: { labels: Record<string, unknown>; value: number; metricName?: string }[] }> }, labels: Record<string, string>, name?: string) =>
    (await metric.get()).values.find((v) => (!name || v.metricName === name) && Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value ?? 0;
  const before = [await value(metrics.dnsQueries, { type: 'A' }), await value(metrics.dnsAnswers, { type: 'A', rcode: 'NOERROR' }), await value(metrics.dnsSeconds, {}, 'swarmlet_dns_query_duration_seconds_count')];
  expect((await dig(NS1, ['web', 'A'])).answers).toEqual(['10.0.1.2']);
  const after = [await value(metrics.dnsQueries, { type: 'A' }), await value(metrics.dnsAnswers, { type: 'A', rcode: 'NOERROR' }), await value(metrics.dnsSeconds, {}, 'swarmlet_dns_query_duration_seconds_count')];
  expect(after.map((x, i) => x - (before[i] as number))).toEqual([1, 1, 1]);
});

test('a service of a network the task is not on is NXDOMAIN', async () => {
  const r = await dig(NS1, ['secret', 'A']);
  expect(r.status).toBe('NXDOMAIN');
  expect(r.answers).toEqual([]);
});

test('names outside the cluster are forwarded upstream, over UDP and over TCP', async () => {
  expect((await dig(NS1, ['example.test', 'A'])).answers).toEqual(['192.0.2.10']);
  expect(upstreamSeen).toContain('udp:example.test');
  expect((await dig(NS1, ['+tcp', 'example.test', 'A'])).answers).toEqual(['192.0.2.10']);
  expect(upstreamSeen).toContain('tcp:example.test');
});

test("a truncated upstream answer keeps its TC bit; the client's TCP retry gets the full one", async () => {
  const udp = await dig(NS1, ['+ignore', 'big.test', 'A']);
  expect(udp.flags.split(' ')).toContain('tc');
  expect(udp.answers).toEqual([]);
  expect((await dig(NS1, ['big.test', 'A'])).answers).toEqual(['192.0.2.11']);
});

test('a TCP query of a cluster name is answered', async () => {
  const r = await dig(NS1, ['+tcp', 'web', 'A']);
  expect(r.status).toBe('NOERROR');
  expect(r.answers).toEqual(['10.0.1.2']);
});

test('one resolver answers each task from its own networks (tasks opened together)', async () => {
  const onOther = (id: string) =>
    Task.fromPartial({ id, networks: [{ networkId: 'no', networkName: 'other', driver: 'bridge', address: '10.0.3.9/24' }] });
  for (const ns of OTHERS) addNetns(ns);
  await Promise.all(OTHERS.map((ns, i) => dns.attach(onOther(`task-other-${i}`), netnsPath(ns))));
  for (const ns of OTHERS) {
    expect((await dig(ns, ['secret', 'A'])).answers).toEqual(['10.0.3.2']);
    expect((await dig(ns, ['web', 'A'])).status).toBe('NXDOMAIN');
  }
  expect((await dig(NS1, ['secret', 'A'])).status).toBe('NXDOMAIN');
  expect((await dig(NS1, ['web', 'A'])).answers).toEqual(['10.0.1.2']);
  await Promise.all(OTHERS.map((_ns, i) => dns.detach(`task-other-${i}`)));
});

test('records given by apply() are what the next query sees', async () => {
  dns.apply([front([sv('w1', '10.0.1.5', 'web.1.w1', false), sv('w3', '10.0.1.7', 'web.3.w3')]), other]);
  expect((await dig(NS1, ['tasks.web', 'A'])).answers).toEqual(['10.0.1.7']);
  dns.apply([other]);
  expect((await dig(NS1, ['web', 'A'])).status).toBe('NXDOMAIN');
  dns.apply([front(), other]);
  expect((await dig(NS1, ['web', 'A'])).answers).toEqual(['10.0.1.2']);
});

test('an answer too large for UDP is truncated with TC; over TCP it is whole', async () => {
  const many = Array.from({ length: 60 }, (_, i) => sv(`m${i}`, `10.0.1.${100 + i}`, `many.${i + 1}.m${i}`));
  dns.apply([front(), other, NetworkServices.fromPartial({ networkId: 'nf', name: 'front', services: [{ serviceId: 's9', name: 'many', vip: '', tasks: many }] })]);
  // Two NetworkServices with one id: the last wins (apply takes the dispatcher's list as it is).
  const udp = await dig(NS1, ['+ignore', '+noedns', 'tasks.many', 'A']);
  expect(udp.flags.split(' ')).toContain('tc');
  expect(udp.answers.length).toBeGreaterThan(0);
  expect(udp.answers.length).toBeLessThan(60);
  const tcp = await dig(NS1, ['+tcp', 'tasks.many', 'A']);
  expect(tcp.answers.sort()).toEqual(many.map((t) => t.ip).sort());
  dns.apply([front(), other]);
});

test('a malformed packet gets FORMERR and the resolver keeps answering', async () => {
  // id 0xabcd, a query header announcing one question that is not there.
  const reply = await sendRaw(NS1, 'abcd01000001000000000000ff');
  expect(reply.slice(0, 4)).toBe('abcd');
  expect(parseInt(reply.slice(4, 8), 16) & 0x800f).toBe(0x8001);
  expect(await sendRaw(NS1, 'ab')).toBe('none');
  expect((await dig(NS1, ['web', 'A'])).answers).toEqual(['10.0.1.2']);
});

test('upstreams are tried in order; when none answers, SERVFAIL', async () => {
  const slow = new EmbeddedDns({ log, upstreams: [`${DEAD.host}:${DEAD.port}`, `${UPSTREAM.host}:${UPSTREAM.port}`] });
  resolvers.push(slow);
  slow.apply([front()]);
  await slow.attach(asker('task-two'), netnsPath(NS2));
  expect((await dig(NS2, ['example.test', 'A'], 10)).answers).toEqual(['192.0.2.10']);
  const r = await dig(NS2, ['silent.test', 'A'], 10);
  expect(r.status).toBe('SERVFAIL');
  expect(upstreamSeen).toContain('udp:silent.test');
  await slow.close();
});

test('detach closes the sockets; reconcile opens what a running task misses; check says what is off', async () => {
  const running = [{ taskId: 'task-one', netns: netnsPath(NS1), attachments: asker('task-one').networks }];
  expect(dns.check([front(), other], running)).toEqual([]);
  await dns.detach('task-one');
  expect((await dig(NS1, ['web', 'A'], 1)).status).toBe('NONE');
  expect(dns.check([front()], running)).toEqual([
    'dns: network other: records held for a network no task here is on',
    'dns: task task-one has no resolver socket',
  ]);
  await dns.reconcile(running);
  expect((await dig(NS1, ['web', 'A'])).answers).toEqual(['10.0.1.2']);
  // Again, and attach on top: both keep the sockets they have (a second bind would fail).
  await dns.reconcile(running);
  await dns.attach(asker('task-one'), netnsPath(NS1));
  expect((await dig(NS1, ['web', 'A'])).answers).toEqual(['10.0.1.2']);
  await dns.reconcile([]);
  expect(dns.check([front(), other], [])).toEqual([]);
  expect((await dig(NS1, ['web', 'A'], 1)).status).toBe('NONE');
});

test('a task that does not use the embedded DNS gets no sockets', async () => {
  const plain = Task.fromPartial({ id: 'task-plain', networks: [{ networkId: 'b', networkName: 'bridge', driver: 'bridge', address: '172.17.0.5/16' }] });
  await dns.attach(plain, netnsPath(NS2));
  expect(dns.check([front(), other], [])).toEqual([]);
  expect((await dig(NS2, ['web', 'A'], 1)).status).toBe('NONE');
});
