/**
 * Three managers' elections against a real throwaway etcd (issue 10, section 4): a follower whose
 * campaign lost its lease, then the leader gone; only one manager may start leading after that.
 */
import { getEventListeners } from 'node:events';
import { Etcd3 } from 'etcd3';
import pino from 'pino';
import { Manager } from '../../manager/manager';
import { ROOT, keys } from '../../manager/store/keys';
import { EtcdFixture, fixtureClient, startEtcd } from './etcd-fixture';

let etcd: EtcdFixture;
const clients: Etcd3[] = [];
const managers: Manager[] = [];
/** Every log line the managers wrote, in order. */
const lines: { nodeId?: string; msg: string }[] = [];

beforeAll(async () => {
  etcd = await startEtcd();
  await etcd.client.delete().prefix(ROOT).exec();
});

afterAll(async () => {
  await Promise.all(managers.map((m) => m.stop().catch(() => undefined)));
  for (const c of clients) c.close();
  await etcd?.stop();
});

function manager(nodeId: string): Manager {
  const client = fixtureClient([etcd.endpoint]);
  clients.push(client);
  const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  const m = new Manager({ nodeId, etcd: client, tls: () => { throw new Error('no TLS in this test'); }, apiAddr: '127.0.0.1:1', embeddedEtcd: false, log });
  managers.push(m);
  return m;
}

const electionPrefix = `election/${keys.election}/`;

/** The election keys, oldest first, with the manager each belongs to. */
async function campaignKeys(): Promise<{ key: string; nodeId: string }[]> {
  const res = await etcd.client.getAll().prefix(electionPrefix).sort('Create', 'Ascend').exec();
  return res.kvs.map((kv) => ({ key: kv.key.toString(), nodeId: kv.value.toString() }));
}

async function waitFor(what: string, ok: () => Promise<boolean> | boolean, timeoutMs = 30000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const said = (nodeId: string, msg: string, from = 0) => lines.slice(from).some((l) => l.nodeId === nodeId && l.msg === msg);

test('a follower whose campaign was lost never leads on that campaign once the leader goes', async () => {
  const [m1, m2, m3] = [manager('m1'), manager('m2'), manager('m3')];
  await m1.start();
  await waitFor('m1 to lead', () => said('m1', 'elected leader'));
  await m2.start();
  await waitFor('m2 to campaign', async () => (await campaignKeys()).length === 2);
  await m3.start();
  await waitFor('m3 to campaign', async () => (await campaignKeys()).length === 3);

  // m2's election lease ends as when its etcd member was paused past the TTL.
  const m2Key = (await campaignKeys()).find((k) => k.nodeId === 'm2')!.key;
  await etcd.client.leaseClient.leaseRevoke({ ID: m2Key.slice(electionPrefix.length) });
  await waitFor('m2 to lose its campaign', () => said('m2', 'lost the election campaign; campaigning again'));
  await waitFor('m2 to campaign again', async () => (await campaignKeys()).some((k) => k.nodeId === 'm2'));

  // The leader goes: its election key is deleted.
  const from = lines.length;
  await m1.stop();
  await waitFor('a new leader', () => said('m2', 'elected leader', from) || said('m3', 'elected leader', from));
  // m3's campaign is older than m2's new one: m3 leads. Give a stale campaign of m2's time to speak up.
  await new Promise((r) => setTimeout(r, 3000));
  const elected = lines.slice(from).filter((l) => l.msg === 'elected leader').map((l) => l.nodeId);
  expect(elected).toEqual(['m3']);
  expect(await m2.leaderId()).toBe('m3');
});

test('a manager elected again and again keeps no listeners of its old terms on its signal', async () => {
  await Promise.all(managers.map((x) => x.stop()));
  const m = manager('m4');
  const signal = (m as unknown as { controller: AbortController }).controller.signal;
  await m.start();
  await waitFor('m4 to lead', () => said('m4', 'elected leader'));
  const first = getEventListeners(signal, 'abort').length;
  for (let term = 0; term < 4; term++) {
    // Its election lease ends (a paused etcd member, say): it steps down and campaigns again.
    const from = lines.length;
    const key = (await campaignKeys()).find((k) => k.nodeId === 'm4')!.key;
    await etcd.client.leaseClient.leaseRevoke({ ID: key.slice(electionPrefix.length) });
    await waitFor('m4 to lead again', () => said('m4', 'elected leader', from));
  }
  expect(getEventListeners(signal, 'abort').length).toBeLessThanOrEqual(first);
});
