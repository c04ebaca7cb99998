/**
 * The dashboard server of a manager that does not lead, against a real etcd and a real leading
 * Manager: HTTPS with a certificate of the swarm's CA, the token kept in etcd (the same for every
 * manager, sealed with the managers' key), 401 without it, the view read from the non-leader's
 * watched snapshot, the stream sending a change, a rotation ending the stream at once, and client
 * certificates let in as the Control API lets them in.
 */
import * as https from 'node:https';
import { Etcd3 } from 'etcd3';
import pino from 'pino';
import { Manager } from '../../manager/manager';
import { DashboardServer } from '../../manager/dashboard/dashboard-server';
import type { DashboardView } from '../../manager/dashboard/dashboard-plans';
import { CertificateSource, TlsMaterial } from '../../services/api/tls';
import { certificateInfo, createKeyAndCSR, createRootCA, normalizeSerial, signCertificate } from '../../services/pki/ca';
import { newSealKey } from '../../services/pki/seal';
import { DashboardTokens } from '../../manager/store/dashboard-token';
import { keys } from '../../manager/store/keys';
import { OperatorCertRegistry } from '../../manager/store/operator-certs';
import { fixtureClient, useEtcd } from './etcd-fixture';
import { ManagerFixture, startManager } from '../support/manager-fixture';
import { waitFor } from '../support/runtime-wait';

const etcd = useEtcd();
const log = pino({ level: 'silent' });
let fixture: ManagerFixture | undefined;
let clients: Etcd3[] = [];
let m2: Manager | undefined;
let server: DashboardServer | undefined;
let caCertPem: string;

afterEach(async () => {
  await server?.close();
  await m2?.stop().catch(() => undefined);
  await fixture?.stop();
  for (const c of clients.splice(0)) c.close();
  server = m2 = fixture = undefined;
});

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A GET to the server that trusts only the swarm's CA (its certificate must name 127.0.0.1), with a token or a client certificate. */
function get(path: string, token?: string, cert?: { certPem: string; keyPem: string }): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.get(`https://${server!.address}${path}`, { ca: caCertPem, headers: token ? { authorization: `Bearer ${token}` } : {}, ...(cert && { cert: cert.certPem, key: cert.keyPem }), agent: false }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
  });
}

/** The stream's views as they come, and whether it has ended. */
function stream(token: string): { views: DashboardView[]; ended: () => boolean; close: () => void } {
  const views: DashboardView[] = [];
  let ended = false;
  let buffer = '';
  const req = https.get(`https://${server!.address}/api/stream`, { ca: caCertPem, headers: { authorization: `Bearer ${token}` } }, (res) => {
    res.setEncoding('utf8');
    res.on('data', (c: string) => {
      buffer += c;
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const data = buffer.slice(0, end).split('\n').find((l) => l.startsWith('data: '));
        buffer = buffer.slice(end + 2);
        if (data) views.push(JSON.parse(data.slice(6)));
      }
    });
    res.on('end', () => (ended = true));
    res.on('close', () => (ended = true));
  });
  req.on('error', () => (ended = true));
  return { views, ended: () => ended, close: () => req.destroy() };
}

/** Manager m2 beside the fixture's leader m1 (on its own etcd client, never campaigning), with a certificate for 127.0.0.1. */
async function secondManager(f: ManagerFixture): Promise<{ manager: Manager; tls: TlsMaterial }> {
  const cluster = (await f.setup.getCluster())!;
  const key = await createKeyAndCSR('m2');
  const tls = { caCertPem: cluster.rootCa!.certPem, certPem: await signCertificate(cluster.rootCa!, key.csrPem, { nodeId: 'm2', clusterId: cluster.id, role: 'manager', ipAddresses: ['127.0.0.1'] }), keyPem: key.keyPem };
  const client = fixtureClient([etcd.endpoint]);
  clients.push(client);
  return { manager: new Manager({ nodeId: 'm2', etcd: client, tls: () => tls, apiAddr: '127.0.0.1:1', embeddedEtcd: false, log }), tls };
}

/** The leading fixture m1, and m2's dashboard server on a free loopback port, with client certificates checked as the daemon checks them. */
async function startDashboard(): Promise<{ fixture: ManagerFixture; second: { manager: Manager; tls: TlsMaterial } }> {
  const managerEtcd = fixtureClient([etcd.endpoint]);
  clients.push(managerEtcd);
  const f = await startManager({ etcd: etcd.client, endpoint: etcd.endpoint, managerEtcd, spec: { heartbeatPeriodMs: 60000, nodeDownAfterMs: 600000 }, log });
  fixture = f;
  const second = await secondManager(f);
  const manager = second.manager;
  m2 = manager;
  caCertPem = second.tls.caCertPem;
  server = new DashboardServer({ log, feed: manager.dashboardFeed(log), tokens: manager.dashboardTokens, certificate: new CertificateSource(second.tls), checkPeer: (peer) => manager.checkOperator(peer) });
  await server.listen('127.0.0.1', 0);
  return { fixture: f, second };
}

test('a non-leader manager serves the view over HTTPS to the token alone, streams a change, and ends the stream when the token is rotated', async () => {
  const { fixture: f, second } = await startDashboard();

  // The page is public, with its policy; before any token is made, nothing else is.
  const page = await get('/');
  expect(page.status).toBe(200);
  expect(page.headers['content-security-policy']).toMatch(/script-src 'self'/);
  expect((await get('/dashboard.js')).body).toContain('/api/stream');
  expect((await get('/api/view', 'swldash-guess')).status).toBe(401);

  // One token for the swarm: made through one manager, taken by the other.
  const token = await second.manager.dashboardTokens.ensure();
  expect(await f.manager.dashboardTokens.ensure()).toBe(token);
  for (const t of [undefined, `${token}x`, token.slice(0, -1)]) {
    const res = await get('/api/view', t);
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(res.body).not.toMatch(/m1|w1|127\.0\.0\.1/);
  }
  const res = await get('/api/view', token);
  expect(res.status).toBe(200);
  const view = JSON.parse(res.body) as DashboardView;
  expect(view.nodes.map((n) => [n.hostname, n.role, n.leader])).toEqual([
    ['m1', 'manager', true],
    ['w1', 'worker', false],
  ]);

  // The stream: the view at once, then a label put on w1 through the store.
  const s = stream(token);
  try {
    await waitFor('the first view', async () => s.views.length > 0);
    const w1 = (await f.setup.getNode('w1'))!;
    await f.setup.updateNode({ ...w1, spec: { ...w1.spec!, labels: { zone: '<b>east</b>' } } });
    await waitFor('the label on the stream', async () => s.views.at(-1)!.nodes.find((n) => n.hostname === 'w1')?.labels.zone === '<b>east</b>');

    // Rotated through the other manager: this one's stream ends at once, the old token is refused, the new one taken.
    const rotated = await f.manager.dashboardTokens.rotate();
    await waitFor('the stream to end', async () => s.ended());
    expect((await get('/api/view', token)).status).toBe(401);
    expect((await get('/api/view', rotated)).status).toBe(200);
  } finally {
    s.close();
  }
});

test('a client certificate of the swarm lets in its operators and managers, not a worker, a revoked operator or another CA', async () => {
  const { fixture: f, second } = await startDashboard();
  const cluster = (await f.setup.getCluster())!;
  const issue = async (nodeId: string, role: 'operator' | 'manager') => {
    const key = await createKeyAndCSR(nodeId);
    return { certPem: await signCertificate(cluster.rootCa!, key.csrPem, { nodeId, clusterId: cluster.id, role }), keyPem: key.keyPem };
  };

  const operator = await issue('alice', 'operator');
  expect((await get('/api/view', undefined, operator)).status).toBe(200);
  // A manager certificate of m1, a manager of the swarm; not m2's, whose node is not in the swarm; not a worker's.
  expect((await get('/api/view', undefined, await issue('m1', 'manager'))).status).toBe(200);
  expect((await get('/api/view', undefined, second.tls)).status).toBe(401);
  expect((await get('/api/view', undefined, f.worker)).status).toBe(401);

  const serial = normalizeSerial(certificateInfo(operator.certPem).serial);
  const registry = new OperatorCertRegistry(etcd.client);
  await registry.record({ serial, name: 'alice', notAfter: new Date(Date.now() + 3600e3).toISOString(), issuedAt: new Date().toISOString() });
  await registry.revoke(serial, new Date());
  expect((await get('/api/view', undefined, operator)).status).toBe(401);

  // A certificate of another CA is not verified by TLS: no way in.
  const other = await createRootCA('other');
  const key = await createKeyAndCSR('mallory');
  const foreign = { certPem: await signCertificate(other, key.csrPem, { nodeId: 'mallory', clusterId: 'other', role: 'operator' }), keyPem: key.keyPem };
  expect((await get('/api/view', undefined, foreign)).status).toBe(401);
});

test('with the managers\' seal key the token is kept sealed in etcd, and read back by any manager holding the key', async () => {
  const key = newSealKey();
  const a = new DashboardTokens(etcd.client, () => key);
  const token = await a.ensure();
  const raw = (await etcd.client.get(keys.dashboardToken).string())!;
  expect(raw).toMatch(/^sealed:/);
  expect(raw).not.toContain(token.slice('swldash-'.length));
  expect(await new DashboardTokens(etcd.client, () => key).ensure()).toBe(token);
  expect(await new DashboardTokens(etcd.client, () => key).current()).toBe(token);
  await expect(new DashboardTokens(etcd.client).current()).rejects.toThrow(/no seal key/);
});
