import { managersChanged, planManagerOrder, planRoleTransition, Role, RoleTransition } from '../../node/membership-plans';

describe('planRoleTransition', () => {
  test.each<[Role, Role, string, RoleTransition]>([
    ['manager', 'manager', 'manager', 'none'],
    ['worker', 'worker', 'worker', 'none'],
    ['worker', 'manager', 'worker', 'promote'],
    // promoted, but the certificate came back a worker's: try again
    ['manager', 'manager', 'worker', 'promote'],
    ['manager', 'worker', 'manager', 'demote'],
    ['manager', 'worker', 'worker', 'demote'],
    // demoted already, but the worker certificate did not come: ask again
    ['worker', 'worker', 'manager', 'reissue'],
  ])('%s wanted %s with a %s certificate: %s', (current, desired, cert, want) => {
    expect(planRoleTransition(current, desired, cert)).toBe(want);
  });
});

describe('planManagerOrder', () => {
  const a = { nodeId: 'a', addr: '198.51.100.1:4242' };
  const b = { nodeId: 'b', addr: '198.51.100.2:4242' };
  const c = { nodeId: 'c', addr: '198.51.100.3:4242' };

  test('own manager first when this node runs one', () => {
    expect(planManagerOrder([a, b, c], 'b')).toEqual([b, a, c]);
  });

  test('the order as told when it runs none', () => {
    expect(planManagerOrder([a, b, c])).toEqual([a, b, c]);
    expect(planManagerOrder([a, c], 'b')).toEqual([a, c]);
  });
});

describe('managersChanged', () => {
  const a = { nodeId: 'a', addr: '198.51.100.1:4242' };
  const b = { nodeId: 'b', addr: '198.51.100.2:4242' };
  test.each([
    [[a], [a], false],
    [[a], [a, b], true],
    [[a, b], [b, a], true],
    // the dispatcher said nothing: keep what is known
    [[a], [], false],
  ])('%j told %j: %s', (known, told, want) => {
    expect(managersChanged(known, told)).toBe(want);
  });
});
