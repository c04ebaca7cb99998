/**
 * A real Manager on a TCP server as a node's daemon runs it (the daemon's server options and
 * credentials, mutual TLS with the cluster CA) against a real throwaway etcd holding the cluster
 * as `swarmlet swarm init` makes it, with one worker node. Certificates for a manager, a worker and
 * an operator come with it, for tests that call the API as each of them.
 */
import * as grpc from '@grpc/grpc-js';
import { Etcd3 } from 'etcd3';
import pino from 'pino';
import { Manager } from '../../manager/manager';
import { EtcdStore } from '../../manager/store/etcd-store';
import { ROOT } from '../../manager/store/keys';
import { bindServer, NODE_SERVER_OPTIONS } from '../../services/api/server-extras';
import { CertificateSource, managerChannelOptions, managerClientCredentials, managerServerCredentials, TlsMaterial } from '../../services/api/tls';
import { ControlClient } from '../../services/gen/swarmlet/v1/control';
import { Cluster, NodeRole } from '../../services/gen/swarmlet/v1/types';
import { createKeyAndCSR, createRootCA, newRandomId, newTokenSecret, RootCAMaterial, signCertificate } from '../../services/pki/ca';
import { formatJoinToken } from '../../services/pki/tokens';
import { EtcdFixture, fixtureClient } from './etcd-fixture';
import { fixtureNode } from '../support/manager-fixture';
import { waitFor } from '../support/runtime-wait';

export interface TlsManager {
  apiAddr: string;
  ca: RootCAMaterial;
  manager: Manager;
  /** The manager node's own certificate (it may call Control). */
  managerCert: TlsMaterial;
  /** A worker node's certificate (it may not). */
  workerCert: TlsMaterial;
  /** A Control client with the manager's certificate. */
  control(cert?: TlsMaterial): ControlClient;
  stop(): Promise<void>;
}

async function certFor(ca: RootCAMaterial, clusterId: string, nodeId: string, role: 'manager' | 'worker'): Promise<TlsMaterial> {
  const key = await createKeyAndCSR(nodeId);
  return { caCertPem: ca.certPem, certPem: await signCertificate(ca, key.csrPem, { nodeId, clusterId, role, ipAddresses: ['127.0.0.1'] }), keyPem: key.keyPem };
}

/** Starts manager m1 (leading) on 127.0.0.1 with worker w1 in the swarm; the etcd's swarmlet keys are cleared first. `serverOptions` go over the daemon's. */
export async function startTlsManager(etcd: EtcdFixture, serverOptions: grpc.ServerOptions = {}): Promise<TlsManager> {
  await etcd.client.delete().prefix(ROOT).exec();
  const clusterId = newRandomId();
  const ca = await createRootCA(clusterId);
  const managerCert = await certFor(ca, clusterId, 'm1', 'manager');
  const workerCert = await certFor(ca, clusterId, 'w1', 'worker');
  const server = new grpc.Server({ ...NODE_SERVER_OPTIONS, ...serverOptions });
  const port = await bindServer(server, '127.0.0.1:0', managerServerCredentials(new CertificateSource(managerCert)));
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
    fixtureNode('m1', NodeRole.NODE_ROLE_MANAGER, apiAddr),
  );
  await setup.createNode(fixtureNode('w1', NodeRole.NODE_ROLE_WORKER, '127.0.0.2:4242'));

  const managerEtcd: Etcd3 = fixtureClient([etcd.endpoint]);
  const manager = new Manager({ nodeId: 'm1', etcd: managerEtcd, tls: () => managerCert, apiAddr, embeddedEtcd: false, log: pino({ level: 'silent' }) });
  manager.registerServices(server);
  await manager.start();
  await waitFor('the manager to lead', async () => (await manager.leaderId()) === 'm1');
  const clients: ControlClient[] = [];
  return {
    apiAddr,
    ca,
    manager,
    managerCert,
    workerCert,
    control(cert = managerCert) {
      const client = new ControlClient(apiAddr, managerClientCredentials(ca.certPem, cert), managerChannelOptions);
      clients.push(client);
      return client;
    },
    async stop() {
      for (const c of clients) c.close();
      await manager.stop();
      server.forceShutdown();
      managerEtcd.close();
    },
  };
}
