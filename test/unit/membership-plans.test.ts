import { managersChanged, planForcedRetirements, planManagerOrder, planRoleTransition, Role, RoleTransition } from '../../node/membership-plans';
import { Node, NodeAvailability, NodeRole } from '../../services/gen/swarmlet/v1/types';

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

describe('planForcedRetirements', () => {
  const node = (id: string, role: NodeRole, desiredRole = role): Node => ({
    id,
    role,
    spec: { desiredRole, availability: NodeAvailability.NODE_AVAILABILITY_ACTIVE, labels: {} },
  });
  const M = NodeRole.NODE_ROLE_MANAGER;
  const W = NodeRole.NODE_ROLE_WORKER;

  test('retires every other manager that still votes, and no worker', () => {
    expect(planForcedRetirements([node('self', M), node('m2', M), node('m3', M), node('w1', W)], 'self')).toEqual(['m2', 'm3']);
  });

  test('a manager already being demoted, or a worker being promoted, is left as it is', () => {
    expect(planForcedRetirements([node('self', M), node('m2', M, W), node('w1', W, M)], 'self')).toEqual([]);
  });

  test('a swarm of one manager retires no one', () => {
    expect(planForcedRetirements([node('self', M)], 'self')).toEqual([]);
  });
});
