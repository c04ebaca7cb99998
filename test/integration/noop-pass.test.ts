/**
 * A no-op pass reads nothing from etcd (issue 11): the leader's loops and the dispatcher, woken by a
 * change that asks nothing of them, answer from the watched snapshot. A real Manager with one agent
 * session (mTLS) against a real throwaway etcd; its etcd client counts what it reads with the
 * benchmark's gRPC interceptor (bench/etcd-read-counter.ts).
 */
import { Etcd3 } from 'etcd3';
import pino from 'pino';
import { EtcdReadCounter, ReadCounts } from '../../bench/etcd-read-counter';
import { keys } from '../../manager/store/keys';
import { managerChannelOptions, managerClientCredentials } from '../../services/api/tls';
import { DispatcherClient, SessionMessage } from '../../services/gen/swarmlet/v1/dispatcher';
import { NodeState } from '../../services/gen/swarmlet/v1/types';
import { fixtureClient, useEtcd } from './etcd-fixture';
import { ManagerFixture, startManager } from '../support/manager-fixture';
import { waitFor } from '../support/runtime-wait';

const etcd = useEtcd();
const log = pino({ level: 'silent' });
const counter = new EtcdReadCounter();
let managerEtcd: Etcd3 | undefined;
let fixture: ManagerFixture | undefined;
let client: DispatcherClient | undefined;

afterEach(async () => {
  client?.close();
  await fixture?.stop();
  managerEtcd?.close();
});

/** What the manager read from etcd between `before` and the moment its KV calls went quiet. */
async function readSince(before: ReadCounts): Promise<{ kvCalls: number; kvBytes: number }> {
  expect(await counter.quiet(500, 500, 30000)).toBe(true);
  const after = counter.snapshot();
  return { kvCalls: after.kvCalls - before.kvCalls, kvBytes: after.kvBytes - before.kvBytes };
}

test('a pass woken by a change that needs no write reads nothing from etcd', async () => {
  // The cluster as `swarmlet swarm init` makes it, with a node-down bound the test never reaches.
  managerEtcd = fixtureClient([etcd.endpoint], { interceptors: [counter.interceptor] } as Parameters<typeof fixtureClient>[1]);
  fixture = await startManager({ etcd: etcd.client, endpoint: etcd.endpoint, managerEtcd, spec: { heartbeatPeriodMs: 60000, nodeDownAfterMs: 600000 }, log });
  const { apiAddr, caCertPem, worker, setup } = fixture;

  // The worker's session: what the dispatcher sends it shows its pass ran.
  client = new DispatcherClient(apiAddr, managerClientCredentials(caCertPem, worker), managerChannelOptions);
  const messages: SessionMessage[] = [];
  const stream = client.session({ description: undefined, advertiseAddr: '', apiAddr: '', acceptsDeltas: false });
  stream.on('data', (msg: SessionMessage) => messages.push(msg));
  stream.on('error', () => undefined);
  await waitFor('the session to open', async () => messages.length > 0);
  await waitFor('the worker to be ready', async () => (await setup.getNode('w1'))?.status?.state === NodeState.NODE_STATE_READY);
  expect(await counter.quiet(1000, 0, 30000)).toBe(true);

  // An unchanged write of a node key (written past the manager's client) wakes every loop.
  const key = keys.node('w1');
  let before = counter.snapshot();
  await etcd.client.put(key).value((await etcd.client.get(key).buffer())!);
  expect(await readSince(before)).toEqual({ kvCalls: 0, kvBytes: 0 });

  // A label on the worker: the dispatcher sends it down (so its pass ran), and no loop has anything to write.
  before = counter.snapshot();
  const sent = messages.length;
  const labelled = await setup.mutateNode('w1', (n) => ({ ...n, spec: { ...n.spec!, labels: { zone: 'a' } } }));
  expect(labelled.spec?.labels).toEqual({ zone: 'a' });
  await waitFor('the dispatcher to send the label', async () => messages.slice(sent).some((msg) => msg.node?.spec?.labels.zone === 'a'));
  expect(await readSince(before)).toEqual({ kvCalls: 0, kvBytes: 0 });
});
