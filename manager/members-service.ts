import { Etcd3 } from 'etcd3';
import * as grpc from '@grpc/grpc-js';
import { sleep } from '../services/common/backoff';
import { failedPrecondition, invalidArgument, unavailable } from '../services/common/errors';
import { Logger, componentLogger } from '../services/common/logger';
import { fromServiceError } from '../services/api/grpc-errors';
import { callUnary, unary } from '../services/api/handlers';
import { nodeClientCredentials, requirePeer, TlsMaterial } from '../services/api/tls';
import { AddEtcdMemberRequest, AddEtcdMemberResponse, MembersClient, MembersServer, RetireManagerRequest, RetireManagerResponse } from '../services/gen/swarmlet/v1/dispatcher';
import { Node, NodeRole, Reachability } from '../services/gen/swarmlet/v1/types';
import { EtcdSettlingError, etcdMembershipError } from './store/etcd-errors';
import { EtcdStore } from './store/etcd-store';
import { Store } from './store/store';

/** The managers' own API: etcd membership. Manager certificates only. */
export function membersService(store: EtcdStore, etcd: Etcd3, selfId: string, parentLog: Logger): MembersServer {
  const log = componentLogger(parentLog, 'members');
  return {
    addEtcdMember: unary(async (req: AddEtcdMemberRequest, call: grpc.ServerUnaryCall<AddEtcdMemberRequest, AddEtcdMemberResponse>) => {
      const cluster = await store.getCluster();
      if (!cluster) throw unavailable('the cluster store holds no cluster');
      const peer = requirePeer(call, cluster.rootCa!.certPem, ['manager']);
      if (!cluster.etcd?.embedded) throw failedPrecondition('this swarm uses an external etcd; managers connect to it directly');
      if (!/^https:\/\/[0-9.]+:\d+$/.test(req.peerUrl)) throw invalidArgument(`invalid peer URL ${JSON.stringify(req.peerUrl)}`);
      try {
        const res = await addEtcdMember(etcd, peer.nodeId, req.peerUrl, log);
        log.info({ nodeId: peer.nodeId, memberId: res.memberId, peerUrl: req.peerUrl }, 'etcd member added');
        return res;
      } catch (err) {
        // Most often etcd's strict reconfiguration check while the previous new member settles: worth a retry.
        throw unavailable(`could not add an etcd member now: ${(err as Error).message}`, err);
      }
    }),

    retireManager: unary(async (req: RetireManagerRequest, call: grpc.ServerUnaryCall<RetireManagerRequest, RetireManagerResponse>) => {
      const cluster = await store.getCluster();
      if (!cluster) throw unavailable('the cluster store holds no cluster');
      requirePeer(call, cluster.rootCa!.certPem, ['manager']);
      if (req.nodeId === selfId) throw failedPrecondition('a manager cannot retire itself: ask another manager');
      await retireManager(store, etcd, cluster.etcd?.embedded ?? true, req.nodeId, req.left, log);
      return {};
    }),
  };
}

/** How often, and how far apart, a manager's etcd member removal is tried while etcd is settling. */
const MEMBER_REMOVE_ATTEMPTS = 10;
const MEMBER_REMOVE_RETRY_MS = 500;

/**
 * Takes a manager out: its etcd member goes first, so that a refusal (etcd will not remove a
 * member that joined moments ago, or while a peer is unhealthy, and this waits up to about 5 s
 * for that to pass) changes nothing; then its record says worker, and its daemon, hearing that,
 * stops its manager and etcd.
 */
export async function retireManager(store: Store, etcd: Etcd3, embedded: boolean, nodeId: string, left: boolean, log: Logger): Promise<void> {
  if (embedded) {
    // etcd refuses a removal while a member is only just connected ("unhealthy cluster") or while
    // it elects a leader: both pass within seconds, so wait them out before giving up.
    for (let attempt = 1; ; attempt++) {
      try {
        await removeEtcdMember(etcd, nodeId);
        break;
      } catch (err) {
        const refused = etcdMembershipError(err, 'etcd would not remove the member now');
        if (attempt < MEMBER_REMOVE_ATTEMPTS && refused instanceof EtcdSettlingError) {
          log.debug({ nodeId, attempt, err: refused.message }, 'etcd would not remove the member yet; trying again');
          await sleep(MEMBER_REMOVE_RETRY_MS);
          continue;
        }
        throw refused;
      }
    }
  }
  await store.mutateNode(nodeId, (n) => ({
    ...n,
    role: left ? NodeRole.NODE_ROLE_WORKER : n.role,
    spec: { ...n.spec!, desiredRole: NodeRole.NODE_ROLE_WORKER },
    status: left ? { ...n.status!, message: 'left the swarm' } : n.status,
  }));
  log.info({ nodeId, left }, 'manager retired');
}

/** Asks another manager to retire `nodeId` (used when that node is the one asking). */
export async function retireThroughPeer(nodes: Node[], selfId: string, tls: TlsMaterial, nodeId: string, left: boolean): Promise<void> {
  const peers = nodes.filter((n) => n.id !== selfId && n.role === NodeRole.NODE_ROLE_MANAGER && n.managerStatus?.reachability === Reachability.REACHABILITY_REACHABLE && n.managerStatus.addr);
  let last: unknown = unavailable('no other reachable manager to carry out the change');
  for (const peer of peers) {
    const client = new MembersClient(peer.managerStatus!.addr, nodeClientCredentials(tls, peer.id));
    try {
      await callUnary(client.retireManager.bind(client), { nodeId, left });
      return;
    } catch (err) {
      last = fromServiceError(err, `asking the manager at ${peer.managerStatus!.addr}`);
      if ((last as { kind: string }).kind !== 'Unavailable') throw last;
    } finally {
      client.close();
    }
  }
  throw last;
}

async function addEtcdMember(etcd: Etcd3, nodeId: string, peerUrl: string, log: Logger): Promise<AddEtcdMemberResponse> {
  // A member added earlier for the same node or URL that never started would block the add: replace it.
  const before = await etcd.cluster.memberList({});
  for (const m of before.members ?? []) {
    if (m.name === nodeId || (m.peerURLs ?? []).includes(peerUrl)) {
      log.warn({ nodeId, memberId: m.ID }, 'replacing a stale etcd member');
      await etcd.cluster.memberRemove({ ID: m.ID });
    }
  }
  const added = await etcd.cluster.memberAdd({ peerURLs: [peerUrl] });
  const initialCluster = (added.members ?? [])
    .map((m) => `${m.ID === added.member.ID ? nodeId : m.name}=${(m.peerURLs ?? [])[0]}`)
    .filter((s) => !s.startsWith('='))
    .join(',');
  return { initialCluster, memberId: String(added.member.ID) };
}

/** Removes the etcd member of a manager (by its node id, which is its member name), if there is one. */
export async function removeEtcdMember(etcd: Etcd3, nodeId: string): Promise<boolean> {
  const list = await etcd.cluster.memberList({});
  const member = (list.members ?? []).find((m) => m.name === nodeId);
  if (!member) return false;
  await etcd.cluster.memberRemove({ ID: member.ID });
  return true;
}
