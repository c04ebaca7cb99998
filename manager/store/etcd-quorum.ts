import * as net from 'node:net';
import { Etcd3 } from 'etcd3';
import { planQuorum, QuorumFacts, QuorumVerdict } from '../quorum-plans';

/** How long a look at the etcd cluster holds before it is taken again. */
const FRESH_MS = 1000;
/** How long the local member's status, and a peer's port, may take to answer. */
const PROBE_MS = 700;

/**
 * Tells whether this manager's embedded etcd cluster has quorum, quickly: the local member's
 * status (served by the member alone, no consensus) says whether it knows a leader; when it does
 * not, the member list (also local) and a TCP connect to each peer's port count who is there.
 * A member restarted while the others are gone never answers at all (etcd serves clients only once
 * it has published itself through a quorum): then the peers this node last knew (`knownPeers`,
 * peer URLs, itself included) are counted the same way.
 * A verdict is kept for a second, so a burst of calls looks once.
 */
export class EtcdQuorum {
  private last?: { at: number; verdict: Promise<QuorumVerdict> };

  constructor(
    private readonly etcd: Etcd3,
    private readonly knownPeers: () => string[] = () => [],
    private readonly now: () => number = Date.now,
  ) {}

  /** The verdict now (`fresh`: look again even if the last look is recent). */
  check(fresh = false): Promise<QuorumVerdict> {
    if (!fresh && this.last && this.now() - this.last.at < FRESH_MS) return this.last.verdict;
    const verdict = this.look().then(planQuorum, () => ({ lost: false }) as const);
    this.last = { at: this.now(), verdict };
    return verdict;
  }

  private async look(): Promise<QuorumFacts> {
    const deadline = () => ({ deadline: this.now() + PROBE_MS });
    const status = await this.etcd.maintenance.status(deadline()).catch(() => undefined);
    if (status && status.leader !== '0') return { members: 1, reachable: 1, hasLeader: true };
    const list = status && (await this.etcd.cluster.memberList({}, deadline()).catch(() => undefined));
    if (!list) {
      // The local member does not answer (restarting, or not ready without a quorum): count the peers last known.
      const peers = this.knownPeers();
      const answers = await Promise.all(peers.map(peerAnswers));
      return { members: peers.length, reachable: answers.filter(Boolean).length, hasLeader: false };
    }
    const self = status?.header.member_id;
    const voting = (list.members ?? []).filter((m) => !m.isLearner);
    const answers = await Promise.all(voting.map((m) => (m.ID === self ? Promise.resolve(Boolean(status)) : peerAnswers(m.peerURLs?.[0]))));
    return { members: voting.length, reachable: answers.filter(Boolean).length, hasLeader: false };
  }
}

/** Whether something listens on a peer URL's host and port. */
function peerAnswers(url: string | undefined): Promise<boolean> {
  let target: URL;
  try {
    target = new URL(url ?? '');
  } catch {
    return Promise.resolve(false);
  }
  return new Promise((resolve) => {
    const s = net.connect({ host: target.hostname, port: Number(target.port) || 2380, timeout: PROBE_MS });
    const done = (ok: boolean) => (s.destroy(), resolve(ok));
    s.once('connect', () => done(true));
    s.once('timeout', () => done(false));
    s.once('error', () => done(false));
  });
}
