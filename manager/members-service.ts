import { Etcd3 } from 'etcd3';
import * as grpc from '@grpc/grpc-js';
import { failedPrecondition, invalidArgument, unavailable } from '../services/common/errors';
import { Logger, componentLogger } from '../services/common/logger';
import { unary } from '../services/api/handlers';
import { requirePeer } from '../services/api/tls';
import { AddEtcdMemberRequest, AddEtcdMemberResponse, MembersServer } from '../services/gen/swarmlet/v1/dispatcher';
import { EtcdStore } from './store/etcd-store';

/** Adds a joining manager's etcd member and tells it who its peers are. Manager certificates only. */
export function membersService(store: EtcdStore, etcd: Etcd3, parentLog: Logger): MembersServer {
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
  };
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
