/**
 * A no-op pass reads nothing from etcd (issue 11): the leader's loops and the dispatcher, woken by a
 * change that asks nothing of them, answer from the watched snapshot. A real Manager with one agent
 * session (mTLS) against a real throwaway etcd; its etcd client counts what it reads with the
 * benchmark's gRPC interceptor (bench/etcd-read-counter.ts).
 */
import * as grpc from '@grpc/grpc-js';
import { Etcd3 } from 'etcd3';
import pino from 'pino';
import { EtcdReadCounter, ReadCounts } from '../../bench/etcd-read-counter';
import { Manager } from '../../manager/manager';
import { EtcdStore } from '../../manager/store/etcd-store';
import { keys } from '../../manager/store/keys';
import { CertificateSource, managerChannelOptions, managerClientCredentials, managerServerCredentials, TlsMaterial } from '../../services/api/tls';
import { DispatcherClient, SessionMessage } from '../../services/gen/swarmlet/v1/dispatcher';
import { Cluster, Node, NodeAvailability, NodeRole, NodeState } from '../../services/gen/swarmlet/v1/types';
import { createKeyAndCSR, createRootCA, newRandomId, newTokenSecret, signCertificate } from '../../services/pki/ca';
import { formatJoinToken } from '../../services/pki/tokens';
import { fixtureClient, useEtcd } from './etcd-fixture';
import { waitFor } from '../support/runtime-wait';

const etcd = useEtcd();
const log = pino({ level: 'silent' });
const counter = new EtcdReadCounter();
let managerEtcd: Etcd3 | undefined;
let server: grpc.Server | undefined;
let manager: Manager | undefined;
let client: DispatcherClient | undefined;

afterEach(async () => {
  client?.close();
  await manager?.stop();
  server?.forceShutdown();
  managerEtcd?.close();
});

const node = (id: string, role: NodeRole, apiAddr: string) =>
  Node.fromPartial({
    id,
    role,
    spec: { desiredRole: role, availability: NodeAvailability.NODE_AVAILABILITY_ACTIVE, labels: {} },
    description: { hostname: id, os: 'linux', arch: 'x64' },
    status: { state: NodeState.NODE_STATE_UNKNOWN, addr: '127.0.0.1', apiAddr },
    managerStatus: role === NodeRole.NODE_ROLE_MANAGER ? { addr: apiAddr } : undefined,
  });

/** What the manager read from etcd between `before` and the moment its KV calls went quiet. */
async function readSince(before: ReadCounts): Promise<{ kvCalls: number; kvBytes: number }> {
  expect(await counter.quiet(500, 500, 30000)).toBe(true);
  const after = counter.snapshot();
  return { kvCalls: after.kvCalls - before.kvCalls, kvBytes: after.kvBytes - before.kvBytes };
}

test('a pass woken by a change that needs no write reads nothing from etcd', async () => {
  // The cluster as `swarmlet swarm init` makes it, with a node-down bound the test never reaches.
  const clusterId = newRandomId();
  const ca = await createRootCA(clusterId);
  const managerKey = await createKeyAndCSR('m1');
  const tls: TlsMaterial = { caCertPem: ca.certPem, certPem: await signCertificate(ca, managerKey.csrPem, { nodeId: 'm1', clusterId, role: 'manager', ipAddresses: ['127.0.0.1'] }), keyPem: managerKey.keyPem };
  const workerKey = await createKeyAndCSR('w1');
  const worker = { certPem: await signCertificate(ca, workerKey.csrPem, { nodeId: 'w1', clusterId, role: 'worker' }), keyPem: workerKey.keyPem };
  const srv = new grpc.Server();
  server = srv;
  const port = await new Promise<number>((resolve, reject) => srv.bindAsync('127.0.0.1:0', managerServerCredentials(new CertificateSource(tls)), (err, p) => (err ? reject(err) : resolve(p))));
  const apiAddr = `127.0.0.1:${port}`;
  const setup = new EtcdStore(etcd.client);
  await setup.createCluster(
    Cluster.fromPartial({
      id: clusterId,
      spec: { heartbeatPeriodMs: 60000, nodeDownAfterMs: 600000 },
      joinTokens: { worker: formatJoinToken(ca.digest, newTokenSecret()), manager: formatJoinToken(ca.digest, newTokenSecret()) },
      rootCa: { certPem: ca.certPem, keyPem: ca.keyPem, digest: ca.digest },
      etcd: { embedded: false, endpoints: [etcd.endpoint] },
    }),
    node('m1', NodeRole.NODE_ROLE_MANAGER, apiAddr),
  );
  await setup.createNode(node('w1', NodeRole.NODE_ROLE_WORKER, '127.0.0.2:4242'));

  managerEtcd = fixtureClient([etcd.endpoint], { interceptors: [counter.interceptor] } as Parameters<typeof fixtureClient>[1]);
  const m = new Manager({ nodeId: 'm1', etcd: managerEtcd, tls: () => tls, apiAddr, embeddedEtcd: false, log });
  manager = m;
  m.registerServices(srv);
  await m.start();
  await waitFor('the manager to lead', async () => (await m.leaderId()) === 'm1');

  // The worker's session: what the dispatcher sends it shows its pass ran.
  client = new DispatcherClient(apiAddr, managerClientCredentials(ca.certPem, worker), managerChannelOptions);
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
