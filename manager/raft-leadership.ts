import { Etcd3 } from 'etcd3';
import { sleep } from '../services/common/backoff';
import { Logger } from '../services/common/logger';

/**
 * Keeps etcd's raft leadership away from the swarm leader's own member. When both live on one
 * host and it dies, etcd first elects a new raft leader, and that leader grants every lease a
 * fresh TTL, the dead leader's election lease included: the swarm waits for both. With raft led
 * elsewhere, a dead swarm leader is replaced as soon as its lease runs out.
 * Works on this manager's local member (the only one its client reaches); runs while it leads.
 */
export async function keepRaftLeaderElsewhere(etcd: Etcd3, log: Logger, signal: AbortSignal, everyMs = 5000): Promise<void> {
  while (!signal.aborted) {
    try {
      const status = await etcd.maintenance.status();
      const self = status.header.member_id;
      if (status.leader === self) {
        const { members } = await etcd.cluster.memberList({});
        const target = (members ?? []).find((m) => m.ID !== self && m.name && (m.clientURLs ?? []).length > 0);
        if (target && (members ?? []).length >= 3) {
          await etcd.maintenance.moveLeader({ targetID: target.ID });
          log.info({ to: target.name }, 'moved etcd raft leadership off the swarm leader');
        }
      }
    } catch (err) {
      log.debug({ err: (err as Error).message }, 'could not check etcd raft leadership');
    }
    await sleep(everyMs, signal);
  }
}
