/**
 * Whether the swarm's managers have quorum, as seen from one manager, and what to tell a user
 * when they have not. Pure: the probe (store/etcd-quorum.ts) gathers the facts.
 */

/** What one manager sees of the etcd cluster. */
export interface QuorumFacts {
  /** Voting members in the local member's list (learners do not vote). */
  members: number;
  /** Of those, the members that answer: the local one if its status answered, the others if their peer port accepts. */
  reachable: number;
  /** Whether the local member knows a raft leader. */
  hasLeader: boolean;
}

export type QuorumVerdict = { lost: false } | { lost: true; message: string };

/** How many voting members a cluster of `members` needs to elect a leader and commit a write. */
export const quorumOf = (members: number) => Math.floor(members / 2) + 1;

/** What the user runs on a surviving manager to make it a one-manager swarm again. */
export const FORCE_NEW_CLUSTER = 'swarmlet swarm init --force-new-cluster';

/**
 * Quorum is lost when fewer members answer than a majority: then no leader can be elected until
 * managers come back. A cluster between leaders with a majority up is not lost (it elects one
 * within a second or two), so calls wait for it rather than fail.
 */
export function planQuorum(f: QuorumFacts): QuorumVerdict {
  if (f.hasLeader || f.members === 0) return { lost: false };
  const needs = quorumOf(f.members);
  if (f.reachable >= needs) return { lost: false };
  return {
    lost: true,
    // docker's words: "The swarm does not have a leader. It's possible that too few managers are online. Make sure more than half of the managers are online."
    message:
      `the swarm does not have a leader: ${f.reachable} of ${f.members} managers reachable, quorum needs ${needs}. ` +
      `Make sure more than half of the managers are online, or run "${FORCE_NEW_CLUSTER}" on this manager to make it a one-manager swarm`,
  };
}
