import { planQuorum, QuorumFacts, quorumOf } from '../../manager/quorum-plans';

describe('quorumOf', () => {
  test.each([[1, 1], [2, 2], [3, 2], [4, 3], [5, 3]])('%i members need %i', (members, needs) => {
    expect(quorumOf(members)).toBe(needs);
  });
});

describe('planQuorum', () => {
  test.each<[string, QuorumFacts]>([
    ['a member that knows a leader', { members: 3, reachable: 1, hasLeader: true }],
    ['no leader yet, but a majority up (an election under way)', { members: 3, reachable: 2, hasLeader: false }],
    ['one member of one, between leaders', { members: 1, reachable: 1, hasLeader: false }],
    ['nothing known (the local member did not answer)', { members: 0, reachable: 0, hasLeader: false }],
  ])('has quorum: %s', (_what, facts) => {
    expect(planQuorum(facts)).toEqual({ lost: false });
  });

  test.each<[QuorumFacts, string]>([
    [{ members: 3, reachable: 1, hasLeader: false }, '1 of 3 managers reachable, quorum needs 2'],
    [{ members: 2, reachable: 1, hasLeader: false }, '1 of 2 managers reachable, quorum needs 2'],
    [{ members: 5, reachable: 2, hasLeader: false }, '2 of 5 managers reachable, quorum needs 3'],
  ])('lost with %j, in one line naming the counts and the way back', (facts, counts) => {
    const verdict = planQuorum(facts);
    expect(verdict.lost).toBe(true);
    const message = verdict.lost ? verdict.message : '';
    expect(message).toBe(
      `the swarm does not have a leader: ${counts}. Make sure more than half of the managers are online, or run "swarmlet swarm init --force-new-cluster" on this manager to make it a one-manager swarm`,
    );
    expect(message).not.toMatch(/\n/);
  });
});
