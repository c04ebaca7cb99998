import * as grpc from '@grpc/grpc-js';
import { invalidArgument, permissionDenied, failedPrecondition } from '../services/common/errors';
import { Logger, componentLogger } from '../services/common/logger';
import { isIPv4, parseHostPort, formatHostPort } from '../services/common/addr';
import { unary } from '../services/api/handlers';
import { requirePeer } from '../services/api/tls';
import { CAServer, IssueNodeCertificateRequest, IssueNodeCertificateResponse, RenewNodeCertificateRequest } from '../services/gen/swarmlet/v1/dispatcher';
import { Cluster, Node, NodeAvailability, NodeRole, NodeState } from '../services/gen/swarmlet/v1/types';
import { newRandomId, signCertificate } from '../services/pki/ca';
import { matchJoinToken, parseJoinToken } from '../services/pki/tokens';
import { managerPeers, readClusterView, votingManagers } from './cluster-view';
import { addressHolder, planManagerAddition } from './node-plans';
import { SealKeySource } from './service-secrets';
import { EtcdStore } from './store/etcd-store';

export interface CAServiceDeps {
  store: EtcdStore;
  log: Logger;
  leaderId: () => Promise<string | undefined>;
  /** The managers' seal key: handed to nodes whose certificate says manager. */
  sealKey?: SealKeySource;
}

const roleName = (r: NodeRole) => (r === NodeRole.NODE_ROLE_MANAGER ? 'manager' : 'worker');

/**
 * Issues node certificates. A joining node proves itself with a join token and sends only a
 * certificate request: its private key never leaves it. Nothing is written to the cluster
 * state until the token, the request and the addresses have all been checked.
 */
export function caService(deps: CAServiceDeps): CAServer {
  const log = componentLogger(deps.log, 'ca');

  const sealKeyFor = (role: NodeRole) => (role === NodeRole.NODE_ROLE_MANAGER ? deps.sealKey?.() : undefined) ?? Buffer.alloc(0);

  async function sign(cluster: Cluster, node: Node, csrPem: string): Promise<string> {
    const role = roleName(node.role) as 'manager' | 'worker';
    return signCertificate(cluster.rootCa!, csrPem, { nodeId: node.id, clusterId: cluster.id, role, ipAddresses: [node.status!.addr] });
  }

  return {
    issueNodeCertificate: unary(async (req: IssueNodeCertificateRequest): Promise<IssueNodeCertificateResponse> => {
      const parsed = parseJoinToken(req.token);
      if (!isIPv4(req.advertiseAddr)) throw invalidArgument(`invalid advertise address ${JSON.stringify(req.advertiseAddr)}`);
      const listen = parseHostPort(req.listenAddr || '0.0.0.0', undefined, 'listen address');
      const view = await readClusterView(deps.store, deps.leaderId);
      const { cluster } = view;
      if (parsed.caDigest !== cluster.rootCa!.digest) throw permissionDenied('the join token is for another swarm: its CA digest does not match this swarm\'s');
      const which = matchJoinToken(req.token, cluster.joinTokens!);
      if (!which) throw permissionDenied('invalid join token: it is not one of this swarm\'s current tokens (it may have been rotated)');
      const role = which === 'manager' ? NodeRole.NODE_ROLE_MANAGER : NodeRole.NODE_ROLE_WORKER;
      if (role === NodeRole.NODE_ROLE_MANAGER && cluster.etcd?.embedded) {
        const reason = planManagerAddition(votingManagers(view.nodes));
        if (reason) throw failedPrecondition(`cannot add a manager now: ${reason}`);
      }
      const clash = addressHolder(view.nodes, req.advertiseAddr, await deps.store.heartbeatingNodes());
      if (clash) throw failedPrecondition(`a ready node (${clash.id}) already uses the address ${req.advertiseAddr}; remove it or choose another --advertise-addr`);
      const now = new Date().toISOString();
      const node: Node = {
        id: newRandomId(),
        role,
        spec: { desiredRole: role, availability: NodeAvailability.NODE_AVAILABILITY_ACTIVE, labels: {} },
        description: req.description,
        status: { state: NodeState.NODE_STATE_UNKNOWN, message: 'joining', addr: req.advertiseAddr, updatedAt: now, apiAddr: formatHostPort(req.advertiseAddr, listen.port) },
        managerStatus: { addr: formatHostPort(req.advertiseAddr, listen.port), leader: false, reachability: 0 },
      };
      const certPem = await sign(cluster, node, req.csrPem);
      await deps.store.createNode(node);
      log.info({ nodeId: node.id, role: which, addr: req.advertiseAddr, hostname: req.description?.hostname }, 'node joined');
      return { nodeId: node.id, clusterId: cluster.id, role, certPem, caCertPem: cluster.rootCa!.certPem, managers: managerPeers(view.nodes), etcd: cluster.etcd, sealKey: sealKeyFor(role) };
    }),

    renewNodeCertificate: unary(async (req: RenewNodeCertificateRequest, call: grpc.ServerUnaryCall<RenewNodeCertificateRequest, IssueNodeCertificateResponse>) => {
      const view = await readClusterView(deps.store, deps.leaderId);
      const { cluster } = view;
      const peer = requirePeer(call, cluster.rootCa!.certPem, ['manager', 'worker']);
      const current = view.nodes.find((n) => n.id === peer.nodeId);
      if (!current) throw permissionDenied('this node was removed from the swarm');
      const desired = current.spec?.desiredRole ?? current.role;
      const certPem = await sign(cluster, { ...current, role: desired }, req.csrPem);
      const node = await deps.store.mutateNode(current.id, (n) => (n.role === desired ? undefined : { ...n, role: desired }));
      log.info({ nodeId: node.id, role: roleName(desired) }, 'node certificate renewed');
      return { nodeId: node.id, clusterId: cluster.id, role: desired, certPem, caCertPem: cluster.rootCa!.certPem, managers: managerPeers(view.nodes), etcd: cluster.etcd, sealKey: sealKeyFor(desired) };
    }),
  };
}
