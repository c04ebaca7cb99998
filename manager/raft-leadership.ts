import { Etcd3 } from 'etcd3';
import { sleep } from '../services/common/backoff';
import { Logger } from '../services/common/logger';
import { EtcdStore } from './store/etcd-store';

/** What the choice of a raft leader needs to know of an etcd member. */
export interface RaftMember {
  id: string;
  /** The member's name: the node id of the manager that runs it (empty until it has started). */
  name: string;
  clientUrls: string[];
  isLearner: boolean;
}

/** How long a member that did not take raft leadership when asked is passed over. */
export const FAILED_TRANSFER_HOLD_MS = 60000;

/**
 * The member to hand etcd's raft leadership to, or undefined to leave it where it is. Only a
 * started voting member whose manager is running now (its presence key stands: that needs its
 * own etcd member to keep the lease alive) and that has not just failed a transfer; never a dead
 * member, whatever its place in the member list. Transfers only in clusters of three or more.
 */
export function chooseRaftTarget(members: RaftMember[], selfId: string, runningManagers: Set<string>, passedOver: Set<string>): RaftMember | undefined {
  if (members.length < 3) return undefined;
  return members.find((m) => m.id !== selfId && !m.isLearner && m.name && m.clientUrls.length > 0 && runningManagers.has(m.name) && !passedOver.has(m.id));
}

/**
 * Keeps etcd's raft leadership away from the swarm leader's own member. When both live on one
 * host and it dies, etcd first elects a new raft leader, and that leader grants every lease a
 * fresh TTL, the dead leader's election lease included: the swarm waits for both. With raft led
 * elsewhere, a dead swarm leader is replaced as soon as its lease runs out.
 * Works on this manager's local member (the only one its client reaches); runs while it leads.
 */
export async function keepRaftLeaderElsewhere(etcd: Etcd3, store: EtcdStore, log: Logger, signal: AbortSignal, everyMs = 5000, now: () => number = Date.now): Promise<void> {
  /** member id -> when it may be asked again, after a transfer to it failed. */
  const failedUntil = new Map<string, number>();
  while (!signal.aborted) {
    let target: RaftMember | undefined;
    try {
      const status = await etcd.maintenance.status();
      const self = status.header.member_id;
      if (status.leader === self) {
        const [{ members }, running] = await Promise.all([etcd.cluster.memberList({}), store.runningManagers()]);
        for (const [id, until] of failedUntil) if (until <= now()) failedUntil.delete(id);
        const candidates = (members ?? []).map((m) => ({ id: m.ID, name: m.name, clientUrls: m.clientURLs ?? [], isLearner: Boolean(m.isLearner) }));
        target = chooseRaftTarget(candidates, self, running, new Set(failedUntil.keys()));
        if (target) {
          await etcd.maintenance.moveLeader({ targetID: target.id });
          log.info({ to: target.name }, 'moved etcd raft leadership off the swarm leader');
        }
      }
    } catch (err) {
      if (target) {
        failedUntil.set(target.id, now() + FAILED_TRANSFER_HOLD_MS);
        log.warn({ to: target.name, err: (err as Error).message }, 'could not move etcd raft leadership; passing that member over for a while');
      } else {
        log.debug({ err: (err as Error).message }, 'could not check etcd raft leadership');
      }
    }
    await sleep(everyMs, signal);
  }
}
