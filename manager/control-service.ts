import { Etcd3 } from 'etcd3';
import { Logger, componentLogger } from '../services/common/logger';
import { unary } from '../services/api/handlers';
import { ControlServer, GetJoinTokenRequest, GetNodeRequest, IssueOperatorCertificateRequest, NodeRoleRequest, RevokeOperatorCertificateRequest, RemoveNodeRequest, UpdateClusterRequest, UpdateNodeRequest } from '../services/gen/swarmlet/v1/control';
import { Node, NodeRole } from '../services/gen/swarmlet/v1/types';
import { formatJoinToken } from '../services/pki/tokens';
import { certificateInfo, newRandomId, newTokenSecret, normalizeSerial, signCertificate } from '../services/pki/ca';
import { invalidArgument, unavailable } from '../services/common/errors';
import { readClusterView, votingManagers } from './cluster-view';
import { retireManager, retireThroughPeer } from './members-service';
import { planClusterSpec, planNodeRemoval, planNodeUpdate, planRoleChange, resolveNode } from './node-plans';
import { networkControl } from './network-control';
import { serviceControl } from './service-control';
import { fileObjectControl } from './file-object-control';
import { Store } from './store/store';
import { TlsMaterial } from '../services/api/tls';
import { SealKeySource } from './service-secrets';
import { OperatorCertRegistry } from './store/operator-certs';
import { EventSource, eventsHandler } from './events/event-stream';
import { dashboardControl } from './dashboard/dashboard-control';
import { DashboardTokens } from './store/dashboard-token';

const NO_EVENTS: EventSource = { stream: async () => Promise.reject(unavailable('this manager does not serve events')) };

export interface ControlDeps {
  /** Reads what any manager has just written: in a manager, a store that reads etcd on every call (no snapshot). */
  store: Store;
  etcd: Etcd3;
  log: Logger;
  /** This manager's node certificate, as it is now (for calls to agents and other managers). */
  tls: () => TlsMaterial;
  nodeId: string;
  leaderId: () => Promise<string | undefined>;
  /** This manager's API address, printed in join commands. */
  apiAddr: string;
  /** The managers' seal key for services' registry credentials. */
  sealKey?: SealKeySource;
  /** Issued operator certificates and the revocation list. */
  operators: OperatorCertRegistry;
  /** The cluster's events (the Events stream); without, the stream is refused as unavailable. */
  events?: EventSource;
  /** The swarm's dashboard token, and this manager's dashboard address if its daemon serves one. */
  dashboard: { tokens: DashboardTokens; url?: string };
}

/** The operator API. Every write is a compare-and-swap on what was read, so a refused request changes nothing. */
export function controlService(deps: ControlDeps): ControlServer {
  const log = componentLogger(deps.log, 'control');
  const view = () => readClusterView(deps.store, deps.leaderId);

  async function changeRoles(refs: string[], role: NodeRole): Promise<{ messages: string[] }> {
    const messages: string[] = [];
    for (const ref of refs) {
      const { nodes, cluster } = await view();
      const target = resolveNode(nodes, ref);
      const plan = planRoleChange(target, role, votingManagers(nodes));
      if (plan.node) {
        if (role === NodeRole.NODE_ROLE_MANAGER) await deps.store.updateNode(plan.node);
        // A demotion takes the etcd member out first; this manager cannot take out its own
        // member and still record the change, so another manager does that.
        else if (target.id === deps.nodeId) await retireThroughPeer(nodes, deps.nodeId, deps.tls(), target.id, false);
        else await retireManager(deps.store, deps.etcd, cluster.etcd?.embedded ?? true, target.id, false, log);
        log.info({ nodeId: target.id, role: role === NodeRole.NODE_ROLE_MANAGER ? 'manager' : 'worker' }, 'node role changed');
      }
      messages.push(plan.message);
    }
    return { messages };
  }

  return {
    ...serviceControl({ store: deps.store, log: deps.log, tls: deps.tls, sealKey: deps.sealKey }),
    ...networkControl({ store: deps.store, log: deps.log, tls: deps.tls }),
    ...fileObjectControl({ store: deps.store, log: deps.log, sealKey: deps.sealKey }),
    ...dashboardControl({ ...deps.dashboard, log: deps.log }),
    events: eventsHandler(() => [deps.events ?? NO_EVENTS]),

    getJoinToken: unary(async (req: GetJoinTokenRequest) => {
      let { cluster } = await view();
      const manager = req.role === NodeRole.NODE_ROLE_MANAGER;
      if (req.rotate) {
        const token = formatJoinToken(cluster.rootCa!.digest, newTokenSecret());
        const joinTokens = { ...cluster.joinTokens!, [manager ? 'manager' : 'worker']: token };
        cluster = await deps.store.updateCluster({ ...cluster, joinTokens });
        log.info({ role: manager ? 'manager' : 'worker' }, 'join token rotated');
      }
      return { token: manager ? cluster.joinTokens!.manager : cluster.joinTokens!.worker, managerAddr: deps.apiAddr };
    }),

    listNodes: unary(async () => {
      const { nodes } = await view();
      return { nodes: nodes.sort((a, b) => (a.description?.hostname ?? '').localeCompare(b.description?.hostname ?? '') || a.id.localeCompare(b.id)) };
    }),

    getNode: unary(async (req: GetNodeRequest) => resolveNode((await view()).nodes, req.node)),

    updateNode: unary(async (req: UpdateNodeRequest): Promise<Node> => {
      const target = resolveNode((await view()).nodes, req.node);
      const next = planNodeUpdate(target, { availability: req.availability, labelAdd: req.labelAdd, labelRm: req.labelRm });
      const updated = await deps.store.updateNode(next);
      log.info({ nodeId: target.id, availability: updated.spec?.availability }, 'node updated');
      return updated;
    }),

    promoteNode: unary(async (req: NodeRoleRequest) => changeRoles(req.nodes, NodeRole.NODE_ROLE_MANAGER)),
    demoteNode: unary(async (req: NodeRoleRequest) => changeRoles(req.nodes, NodeRole.NODE_ROLE_WORKER)),

    updateCluster: unary(async (req: UpdateClusterRequest) => {
      const { cluster } = await view();
      const spec = planClusterSpec(cluster.spec!, { heartbeatPeriodMs: req.heartbeatPeriodMs, nodeDownAfterMs: req.nodeDownAfterMs });
      const updated = await deps.store.updateCluster({ ...cluster, spec });
      log.info({ spec }, 'cluster spec updated');
      return updated.spec!;
    }),

    issueOperatorCertificate: unary(async (req: IssueOperatorCertificateRequest) => {
      const name = req.name || `operator-${newRandomId()}`;
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(name)) throw invalidArgument(`invalid operator name ${JSON.stringify(name)}: letters, digits, '.', '_' and '-'`);
      const { cluster } = await view();
      const certPem = await signCertificate(cluster.rootCa!, req.csrPem, { nodeId: name, clusterId: cluster.id, role: 'operator' });
      const info = certificateInfo(certPem);
      const serial = normalizeSerial(info.serial);
      await deps.operators.record({ serial, name, notAfter: info.notAfter.toISOString(), issuedAt: new Date().toISOString() });
      log.info({ operator: name, serial }, 'operator certificate issued');
      return { certPem, caCertPem: cluster.rootCa!.certPem, name, serial };
    }),

    revokeOperatorCertificate: unary(async (req: RevokeOperatorCertificateRequest) => {
      const serial = normalizeSerial(req.serial);
      if (!/^[0-9a-f]{1,40}$/.test(serial)) throw invalidArgument(`invalid certificate serial ${JSON.stringify(req.serial)}: expected hex digits, as "swarmlet swarm operator-cert" printed it`);
      const rec = await deps.operators.revoke(serial, new Date());
      log.info({ operator: rec.name, serial }, 'operator certificate revoked');
      return { name: rec.name, serial };
    }),

    removeNode: unary(async (req: RemoveNodeRequest) => {
      const target = resolveNode((await view()).nodes, req.node);
      planNodeRemoval(target, req.force);
      await deps.store.deleteNode(target);
      log.info({ nodeId: target.id, force: req.force }, 'node removed');
      return {};
    }),
  };
}
