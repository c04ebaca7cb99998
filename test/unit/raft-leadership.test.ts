import { chooseRaftTarget, RaftMember } from '../../manager/raft-leadership';

const member = (id: string, o: Partial<RaftMember> = {}): RaftMember => ({ id, name: `node-${id}`, clientUrls: [`https://198.51.100.${id}:2379`], isLearner: false, ...o });

describe('chooseRaftTarget', () => {
  const members = [member('1'), member('2'), member('3')];

  test('never the dead member first in the list: the next one whose manager runs', () => {
    expect(chooseRaftTarget(members, '1', new Set(['node-1', 'node-3']), new Set())?.id).toBe('3');
  });

  test('no target when no other manager runs', () => {
    expect(chooseRaftTarget(members, '1', new Set(['node-1']), new Set())).toBeUndefined();
  });

  test('passes over a member that just failed a transfer', () => {
    expect(chooseRaftTarget(members, '1', new Set(['node-1', 'node-2', 'node-3']), new Set(['2']))?.id).toBe('3');
  });

  test('never itself, a learner, or a member that has not started', () => {
    const odd = [member('1'), member('2', { isLearner: true }), member('3', { name: '', clientUrls: [] }), member('4')];
    const running = new Set(['node-1', 'node-2', 'node-3', 'node-4', '']);
    expect(chooseRaftTarget(odd, '1', running, new Set())?.id).toBe('4');
  });

  test('leaves a cluster of fewer than three members alone', () => {
    expect(chooseRaftTarget(members.slice(0, 2), '1', new Set(['node-1', 'node-2']), new Set())).toBeUndefined();
  });
});
