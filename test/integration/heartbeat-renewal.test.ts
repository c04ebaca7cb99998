/**
 * An agent's heartbeats keep its node ready past its heartbeat lease's TTL: the dispatcher answers
 * each heartbeat at once and renews the lease in the background (manager/store/lease-renewer.ts).
 * Its heartbeats and its task status reports each go on one stream per session.
 * A real Manager, a real agent session (agent/session.ts, over mTLS), a real throwaway etcd.
 */
import * as grpc from '@grpc/grpc-js';
import { Etcd3, IOptions } from 'etcd3';
import pino from 'pino';
import { AgentSession, StatusSender } from '../../agent/session';
import { managerChannelOptions, managerClientCredentials } from '../../services/api/tls';
import { DispatcherClient, HeartbeatResponse, SessionMessage, UpdateTaskStatusResponse } from '../../services/gen/swarmlet/v1/dispatcher';
import { ClusterSpec, NodeState, TaskState } from '../../services/gen/swarmlet/v1/types';
import { HEARTBEAT_MISSED, NODE_LEFT } from '../../manager/node-plans';
import { fixtureClient, useEtcd } from './etcd-fixture';
import { ManagerFixture, startManager } from '../support/manager-fixture';
import { waitFor } from '../support/runtime-wait';
import { keys } from '../../manager/store/keys';

const etcd = useEtcd();
const log = pino({ level: 'silent' });
let managerEtcd: Etcd3 | undefined;
let fixture: ManagerFixture | undefined;
let session: AgentSession | undefined;

afterEach(async () => {
  await session?.stop();
  await fixture?.stop();
  managerEtcd?.close();
});

/** Starts the manager m1 for a cluster with `spec`, its etcd client (`managerEtcd`) made with `etcd`'s gRPC options. */
function startM1(spec: Partial<ClusterSpec>, more: { server?: grpc.ServerOptions; without?: string[]; etcd?: IOptions['grpcOptions'] } = {}): Promise<ManagerFixture> {
  managerEtcd = fixtureClient([etcd.endpoint], more.etcd);
  return startManager({ etcd: etcd.client, endpoint: etcd.endpoint, managerEtcd, spec, log, server: more.server, without: more.without });
}

/** Waits for m1 to show w1 ready. */
const w1Ready = () => waitFor('w1 to be ready', async () => (await fixture!.setup.getNode('w1'))?.status?.state === NodeState.NODE_STATE_READY, 30000);

/** A server interceptor that counts the calls the server takes, by method name (`Heartbeat`). */
function callCounter(): { counts: Map<string, number>; interceptor: grpc.ServerInterceptor } {
  const counts = new Map<string, number>();
  return {
    counts,
    interceptor: (method, call) => {
      const name = method.path.split('/').pop()!;
      counts.set(name, (counts.get(name) ?? 0) + 1);
      return new grpc.ServerInterceptingCall(call);
    },
  };
}

/** What the agent of w1 says of its node. */
const W1_DESCRIPTION = { hostname: 'w1', os: 'linux', arch: 'x64', engineVersion: '0.1.0', interfaces: [], containerPorts: [] };

function agentSession(apiAddr: string, worker: ManagerFixture['worker']): AgentSession {
  return new AgentSession({
    log,
    nodeId: 'w1',
    advertiseAddr: '127.0.0.2',
    apiAddr: '127.0.0.2:4242',
    description: W1_DESCRIPTION,
    tls: () => worker,
    managers: () => [{ nodeId: 'm1', addr: apiAddr }],
  });
}

/** What w1 shows, state and heartbeat key (and its status message with `withMessage`), over `ms`. */
async function observe(setup: ManagerFixture['setup'], ms: number, withMessage = false): Promise<string[]> {
  const seen = new Set<string>();
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const [n, beating] = await Promise.all([setup.getNode('w1'), setup.heartbeatingNodes()]);
    seen.add(`${NodeState[n!.status!.state]}${withMessage ? ` (${n!.status!.message})` : ''}, heartbeat key ${beating.has('w1') ? 'held' : 'gone'}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return [...seen];
}

test('an agent beats on one Heartbeats stream, not a call per beat, and its node stays ready', async () => {
  const calls = callCounter();
  fixture = await startM1({ heartbeatPeriodMs: 500, nodeDownAfterMs: 2000 }, { server: { interceptors: [calls.interceptor] } });
  session = agentSession(fixture.apiAddr, fixture.worker);
  session.start();
  await w1Ready();
  expect(await observe(fixture.setup, 3000)).toEqual(['NODE_STATE_READY, heartbeat key held']);
  expect([calls.counts.get('Heartbeats'), calls.counts.get('Heartbeat')]).toEqual([1, undefined]);
});

test('against an older manager (no Heartbeats) an agent falls back to a Heartbeat call per beat, and its node stays ready', async () => {
  const older = callCounter();
  fixture = await startM1({ heartbeatPeriodMs: 500, nodeDownAfterMs: 2000 }, { server: { interceptors: [older.interceptor] }, without: ['heartbeats'] });
  session = agentSession(fixture.apiAddr, fixture.worker);
  session.start();
  await w1Ready();
  expect(await observe(fixture.setup, 3000)).toEqual(['NODE_STATE_READY, heartbeat key held']);
  expect(older.counts.get('Heartbeat')).toBeGreaterThanOrEqual(4);
});

/** A manager (heartbeats every 700 ms), and a session of w1 opened on it by hand, no agent: what `use` gets. */
async function withRawSession(use: (client: DispatcherClient, sessionId: string) => Promise<void>): Promise<void> {
  fixture = await startM1({ heartbeatPeriodMs: 700, nodeDownAfterMs: 2000 });
  const client = new DispatcherClient(fixture.apiAddr, managerClientCredentials(fixture.caCertPem, fixture.worker), managerChannelOptions);
  try {
    const opened = client.session({ description: W1_DESCRIPTION, advertiseAddr: '127.0.0.2', apiAddr: '127.0.0.2:4242', acceptsDeltas: false });
    opened.on('error', () => undefined);
    const sessionId = await new Promise<string>((resolve) => opened.once('data', (m: SessionMessage) => resolve(m.sessionId)));
    await use(client, sessionId);
    opened.cancel();
  } finally {
    client.close();
  }
}

test('Heartbeats answers each beat with the period, and ends with NOT_FOUND on a session the manager does not hold', async () => {
  await withRawSession(async (client, sessionId) => {
    const beats = client.heartbeats();
    const answers: HeartbeatResponse[] = [];
    const ended = new Promise<grpc.ServiceError>((resolve) => beats.on('error', resolve));
    beats.on('data', (res: HeartbeatResponse) => answers.push(res));
    beats.write({ sessionId });
    beats.write({ sessionId });
    await waitFor('two answers', async () => answers.length === 2, 10000);
    expect(answers).toEqual([{ periodMs: 700 }, { periodMs: 700 }]);
    beats.write({ sessionId: 'not-a-session' });
    const err = await ended;
    expect([err.code, err.details]).toEqual([grpc.status.NOT_FOUND, 'unknown session; open a new one']);
  });
});

test('a heartbeating node stays ready through several lease lifetimes, and goes down once its agent stops', async () => {
  // Heartbeats every 0.5 s; the key goes after 1 s of silence (two periods), its lease lives 2 s; the grace of a node whose host answers is 2 s.
  fixture = await startM1({ heartbeatPeriodMs: 500, nodeDownAfterMs: 2000 });
  const { apiAddr, worker, setup } = fixture;
  const s = agentSession(apiAddr, worker);
  session = s;
  const messages: SessionMessage[] = [];
  s.on('message', (msg: SessionMessage) => messages.push(msg));
  s.start();
  await w1Ready();
  // The agent works from whole messages (deltas applied): its node among them.
  await waitFor('a message with w1 ready', async () => messages[messages.length - 1]?.node?.status?.state === NodeState.NODE_STATE_READY, 30000);

  // Three lease lifetimes: without renewals the key would go after the first, and the node with it.
  const seen = new Set<string>();
  const until = Date.now() + 6000;
  while (Date.now() < until) {
    const [n, beating] = await Promise.all([setup.getNode('w1'), setup.heartbeatingNodes()]);
    seen.add(`${NodeState[n!.status!.state]}, heartbeat key ${beating.has('w1') ? 'held' : 'gone'}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  expect([...seen]).toEqual(['NODE_STATE_READY, heartbeat key held']);

  // The agent stops: its lease is ended after a silence; its host (loopback) still answers, so the node is ready
  // through its grace, marked as missing heartbeats, then down.
  await s.stop();
  session = undefined;
  await waitFor('w1 to miss heartbeats', async () => (await setup.getNode('w1'))?.status?.message === HEARTBEAT_MISSED, 30000);
  await waitFor('w1 to be down', async () => (await setup.getNode('w1'))?.status?.state === NodeState.NODE_STATE_DOWN, 30000);
});

test('an agent that leaves makes its node down at once, with its heartbeat key gone, and opens no new session', async () => {
  // A long grace and a host that answers (127.0.0.2 here): without the leave, w1 would stay ready for 60 s.
  const calls = callCounter();
  fixture = await startM1({ heartbeatPeriodMs: 500, nodeDownAfterMs: 60000 }, { server: { interceptors: [calls.interceptor] } });
  session = agentSession(fixture.apiAddr, fixture.worker);
  session.start();
  await w1Ready();
  await session.leave();
  const n = await fixture.setup.getNode('w1');
  expect([NodeState[n!.status!.state], n!.status!.message]).toEqual(['NODE_STATE_DOWN', NODE_LEFT]);
  expect((await fixture.setup.heartbeatingNodes()).has('w1')).toBe(false);
  expect(await observe(fixture.setup, 2000, true)).toEqual([`NODE_STATE_DOWN (${NODE_LEFT}), heartbeat key gone`]);
  expect([calls.counts.get('Session'), calls.counts.get('NodeLeave')]).toEqual([1, 1]);
});


/** An etcd client interceptor that counts the lease keepalives it sends, by lease id. */
function keepaliveCounter(): { counts: Map<string, number>; interceptor: grpc.Interceptor } {
  const counts = new Map<string, number>();
  return {
    counts,
    interceptor: (options, nextCall) =>
      new grpc.InterceptingCall(nextCall(options), {
        sendMessage: (message: { ID?: string }, next) => {
          if (options.method_definition.path.endsWith('/LeaseKeepAlive') && message.ID !== undefined) counts.set(String(message.ID), (counts.get(String(message.ID)) ?? 0) + 1);
          next(message);
        },
      }),
  };
}

/** The lease holding w1's heartbeat key, if the key is there. */
async function heartbeatLease(client: Etcd3): Promise<string | undefined> {
  const kv = (await client.get(keys.heartbeat('w1')).exec()).kvs[0];
  return kv?.lease;
}

test('the heartbeat lease lives two silences and is renewed about once a silence, not on every heartbeat', async () => {
  const keepalives = keepaliveCounter();
  fixture = await startM1({ heartbeatPeriodMs: 500, nodeDownAfterMs: 2000 }, { etcd: { interceptors: [keepalives.interceptor] } });
  session = agentSession(fixture.apiAddr, fixture.worker);
  session.start();
  await w1Ready();
  const lease = (await heartbeatLease(etcd.client))!;
  const granted = await etcd.client.leaseClient.leaseTimeToLive({ ID: lease });
  expect(Number(granted.grantedTTL)).toBe(2);
  // Four seconds of heartbeats every 0.5 s: eight of them, and about four renewals (one a second).
  const before = keepalives.counts.get(lease) ?? 0;
  expect(await observe(fixture.setup, 4000)).toEqual(['NODE_STATE_READY, heartbeat key held']);
  const renewals = (keepalives.counts.get(lease) ?? 0) - before;
  expect(await heartbeatLease(etcd.client)).toBe(lease);
  expect(renewals).toBeGreaterThanOrEqual(2);
  expect(renewals).toBeLessThanOrEqual(5);
});

test("an agent's silence ends its heartbeat lease: the key goes with seconds of the lease still left", async () => {
  // Heartbeats every 1.5 s: the key goes after 3 s of silence; its lease lives 6 s.
  const keepalives = keepaliveCounter();
  fixture = await startM1({ heartbeatPeriodMs: 1500, nodeDownAfterMs: 60000 }, { etcd: { interceptors: [keepalives.interceptor] } });
  const s = agentSession(fixture.apiAddr, fixture.worker);
  session = s;
  s.start();
  await w1Ready();
  const lease = (await heartbeatLease(etcd.client))!;
  // The agent stops just after a renewal: the lease then has about 6 s left, and its silence ends it after 3.
  const renewed = keepalives.counts.get(lease) ?? 0;
  await waitFor('a renewal', async () => (keepalives.counts.get(lease) ?? 0) > renewed, 30000);
  await s.stop();
  session = undefined;
  let left = Infinity;
  await waitFor('the heartbeat key to go', async () => {
    const [held, ttl] = await Promise.all([heartbeatLease(etcd.client), etcd.client.leaseClient.leaseTimeToLive({ ID: lease })]);
    if (held !== undefined) left = Number(ttl.TTL);
    return held === undefined;
  }, 30000);
  // A lease that ran out would last have been seen with a second or none left.
  expect(left).toBeGreaterThanOrEqual(2);
});

/** Starts an agent session; resolves once it has its first message (its reports have a session to go to then). */
async function established(s: AgentSession): Promise<void> {
  const first = new Promise((resolve) => s.once('message', resolve));
  s.start();
  await first;
}

/** A report of a task the store does not hold: the dispatcher takes it (and drops it) as any other. */
const report = (taskId: string) => [{ taskId, status: { state: TaskState.TASK_STATE_RUNNING, timestamp: new Date().toISOString(), message: 'started', err: '', container: undefined } }];

test("an agent's status reports go on one TaskStatuses stream, each answered", async () => {
  const calls = callCounter();
  fixture = await startM1({ heartbeatPeriodMs: 500, nodeDownAfterMs: 2000 }, { server: { interceptors: [calls.interceptor] } });
  session = agentSession(fixture.apiAddr, fixture.worker);
  await established(session);
  // Several in flight at once, each answered (in order) once written.
  await Promise.all(['a', 'b', 'c', 'd', 'e'].map((id) => session!.reportStatus(report(id))));
  await session.reportStatus(report('f'));
  expect([calls.counts.get('TaskStatuses'), calls.counts.get('UpdateTaskStatus')]).toEqual([1, undefined]);
});

test('against an older manager (no TaskStatuses) an agent falls back to an UpdateTaskStatus call per report', async () => {
  const older = callCounter();
  fixture = await startM1({ heartbeatPeriodMs: 500, nodeDownAfterMs: 2000 }, { server: { interceptors: [older.interceptor] }, without: ['taskStatuses'] });
  session = agentSession(fixture.apiAddr, fixture.worker);
  await established(session);
  await session.reportStatus(report('a'));
  await session.reportStatus(report('b'));
  // The server refuses the stream before its interceptors (UNIMPLEMENTED): only the calls are counted.
  expect([older.counts.get('TaskStatuses'), older.counts.get('UpdateTaskStatus')]).toEqual([undefined, 2]);
});

test('TaskStatuses answers each report once written, and ends with NOT_FOUND on a session the manager does not hold', async () => {
  await withRawSession(async (client, sessionId) => {
    const reports = client.taskStatuses();
    const answers: UpdateTaskStatusResponse[] = [];
    const ended = new Promise<grpc.ServiceError>((resolve) => reports.on('error', resolve));
    reports.on('data', (res: UpdateTaskStatusResponse) => answers.push(res));
    reports.write({ sessionId, updates: report('a') });
    reports.write({ sessionId, updates: report('b') });
    await waitFor('two answers', async () => answers.length === 2, 10000);
    reports.write({ sessionId: 'not-a-session', updates: report('c') });
    const err = await ended;
    expect([err.code, err.details]).toEqual([grpc.status.NOT_FOUND, 'unknown session; open a new one']);
    expect(answers).toHaveLength(2);
    // The agent's sender: a report that ends its stream fails alone; the next one opens a new stream.
    const sender = new StatusSender(client);
    await expect(sender.report('not-a-session', report('d'), 5000)).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    await sender.report(sessionId, report('e'), 5000);
    sender.close();
    await expect(sender.report(sessionId, report('f'), 5000)).rejects.toMatchObject({ code: grpc.status.CANCELLED });
  });
});
