/**
 * The control-plane benchmark's count of what the manager reads from etcd (bench/etcd-read-counter.ts),
 * against a real throwaway etcd: the bytes of a range reply, and a reply over grpc's 4 MiB limit
 * seen as RESOURCE_EXHAUSTED (the figure the benchmark reports instead of hanging).
 */
import { Etcd3 } from 'etcd3';
import { EtcdReadCounter } from '../../bench/etcd-read-counter';
import { EtcdFixture, fixtureClient, startEtcd } from './etcd-fixture';

let etcd: EtcdFixture;
let client: Etcd3;
const counter = new EtcdReadCounter();

beforeAll(async () => {
  etcd = await startEtcd();
  // gRPC's default 4 MiB reply limit (a manager's client takes more), so that a reply can pass it here.
  client = fixtureClient([etcd.endpoint], { interceptors: [counter.interceptor], 'grpc.max_receive_message_length': 4 * 1024 * 1024 } as Parameters<typeof fixtureClient>[1]);
});

afterAll(async () => {
  client?.close();
  await etcd?.stop();
});

test('a range reply counts its keys and values, once per call', async () => {
  const values = { 'small/a': 'x'.repeat(100), 'small/b': 'y'.repeat(2000), 'small/c': '' };
  for (const [k, v] of Object.entries(values)) await etcd.client.put(k).value(v);
  const before = counter.snapshot();
  const got = await client.getAll().prefix('small/').strings();
  const after = counter.snapshot();
  expect(Object.keys(got).sort()).toEqual(Object.keys(values));
  const keyAndValueBytes = Object.entries(values).reduce((sum, [k, v]) => sum + k.length + v.length, 0);
  expect(after.rangeCalls - before.rangeCalls).toBe(1);
  expect(after.kvCalls - before.kvCalls).toBe(1);
  // The keys and values, and the reply's header and revisions (a few dozen bytes of strings).
  expect(after.kvBytes - before.kvBytes).toBeGreaterThanOrEqual(keyAndValueBytes);
  expect(after.kvBytes - before.kvBytes).toBeLessThan(keyAndValueBytes + 500);
  expect(counter.kvInFlight).toBe(0);
  expect(counter.exhausted).toBeUndefined();
});

test('a list over the 4 MiB reply limit is recorded as RESOURCE_EXHAUSTED', async () => {
  const mib = 'z'.repeat(1024 * 1024);
  for (let i = 0; i < 5; i++) await etcd.client.put(`big/${i}`).value(mib);
  await expect(client.getAll().prefix('big/').buffers()).rejects.toThrow(/RESOURCE_EXHAUSTED|larger than max/);
  expect(counter.exhausted).toEqual({ at: expect.any(Number), method: '/etcdserverpb.KV/Range', details: expect.stringMatching(/4194304/) });
  expect(await counter.quiet(100, 0, 5000)).toBe(true);
});
