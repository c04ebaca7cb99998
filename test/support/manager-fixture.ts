/**
 * A real Manager leading a one-worker cluster, as `swarmlet swarm init` and a join make it, against
 * a real etcd: its CA, its mTLS gRPC server on loopback, and the worker's certificate for sessions.
 */
import * as grpc from '@grpc/grpc-js';
import { Etcd3 } from 'etcd3';
import { Logger } from 'pino';
import { Manager } from '../../manager/manager';
import { EtcdStore } from '../../manager/store/etcd-store';
import { CertificateSource, managerServerCredentials, TlsMaterial } from '../../services/api/tls';
import { Cluster, ClusterSpec, Node, NodeAvailability, NodeRole, NodeState } from '../../services/gen/swarmlet/v1/types';
import { createKeyAndCSR, createRootCA, newRandomId, newTokenSecret, signCertificate } from '../../services/pki/ca';
import { formatJoinToken } from '../../services/pki/tokens';
import { waitFor } from './runtime-wait';

export interface ManagerFixture {
  manager: Manager;
  apiAddr: string;
  caCertPem: string;
  /** The worker w1's certificate and key. */
  worker: TlsMaterial;
  /** A store straight on etcd, for the test's own reads and writes. */
  setup: EtcdStore;
  stop(): Promise<void>;
}

/** A node record as join writes it, for a manager fixture's store. */
export const fixtureNode = (id: string, role: NodeRole, apiAddr: string) =>
  Node.fromPartial({
    id,
    role,
    spec: { desiredRole: role, availability: NodeAvailability.NODE_AVAILABILITY_ACTIVE, labels: {} },
    description: { hostname: id, os: 'linux', arch: 'x64' },
    status: { state: NodeState.NODE_STATE_UNKNOWN, addr: '127.0.0.1', apiAddr },
    managerStatus: role === NodeRole.NODE_ROLE_MANAGER ? { addr: apiAddr } : undefined,
  });

/** Manager m1 leading, on `managerEtcd` (its own client: the test may count what it reads), with worker w1 joined. */
export async function startManager(opts: {
  etcd: Etcd3;
  endpoint: string;
  managerEtcd: Etcd3;
  spec: Partial<ClusterSpec>;
  log: Logger;
  /** The gRPC server's options (interceptors that count calls, say). */
  server?: grpc.ServerOptions;
  /** Methods the server leaves out (by their name in the service definition), as an older manager lacks them. */
  without?: string[];
}): Promise<ManagerFixture> {
  const clusterId = newRandomId();
  const ca = await createRootCA(clusterId);
  const managerKey = await createKeyAndCSR('m1');
  const tls: TlsMaterial = { caCertPem: ca.certPem, certPem: await signCertificate(ca, managerKey.csrPem, { nodeId: 'm1', clusterId, role: 'manager', ipAddresses: ['127.0.0.1'] }), keyPem: managerKey.keyPem };
  const workerKey = await createKeyAndCSR('w1');
  const worker = { caCertPem: ca.certPem, certPem: await signCertificate(ca, workerKey.csrPem, { nodeId: 'w1', clusterId, role: 'worker' }), keyPem: workerKey.keyPem };
  const server = new grpc.Server(opts.server);
  let manager: Manager | undefined;
  const stop = async () => {
    await manager?.stop();
    server.forceShutdown();
  };
  try {
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', managerServerCredentials(new CertificateSource(tls)), (err, p) => (err ? reject(err) : resolve(p))));
    const apiAddr = `127.0.0.1:${port}`;
    const setup = new EtcdStore(opts.etcd);
    await setup.createCluster(
      Cluster.fromPartial({
        id: clusterId,
        spec: opts.spec,
        joinTokens: { worker: formatJoinToken(ca.digest, newTokenSecret()), manager: formatJoinToken(ca.digest, newTokenSecret()) },
        rootCa: { certPem: ca.certPem, keyPem: ca.keyPem, digest: ca.digest },
        etcd: { embedded: false, endpoints: [opts.endpoint] },
      }),
      fixtureNode('m1', NodeRole.NODE_ROLE_MANAGER, apiAddr),
    );
    await setup.createNode(fixtureNode('w1', NodeRole.NODE_ROLE_WORKER, '127.0.0.2:4242'));
    const m = new Manager({ nodeId: 'm1', etcd: opts.managerEtcd, tls: () => tls, apiAddr, embeddedEtcd: false, log: opts.log });
    manager = m;
    const without = opts.without ?? [];
    m.registerServices(!without.length ? server : Object.assign(Object.create(server) as grpc.Server, {
      addService: (def: grpc.ServiceDefinition, impl: grpc.UntypedServiceImplementation) => server.addService(Object.fromEntries(Object.entries(def).filter(([name]) => !without.includes(name))) as grpc.ServiceDefinition, impl),
    }));
    await m.start();
    await waitFor('the manager to lead', async () => (await m.leaderId()) === 'm1');
    return { manager: m, apiAddr, caCertPem: ca.certPem, worker, setup, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
