import { planPeerAccess, AccessView } from '../../manager/access-plans';
import { NodeRole } from '../../services/gen/swarmlet/v1/types';
import { PeerIdentity } from '../../services/pki/ca';

const peer = (role: PeerIdentity['role'], nodeId = 'n1', serial = 'ab01'): PeerIdentity => ({ nodeId, clusterId: 'c', role, notAfter: new Date(0), serial });
const view: AccessView = { nodes: new Map([['n1', NodeRole.NODE_ROLE_MANAGER], ['n2', NodeRole.NODE_ROLE_WORKER]]), revokedOperators: new Set(['dead']) };

describe('planPeerAccess', () => {
  test('a manager certificate of a current manager passes', () => {
    expect(planPeerAccess(peer('manager'), view, { managerRole: true })).toBeUndefined();
  });
  test('a node that is no longer in the swarm is refused, whatever its certificate says', () => {
    expect(planPeerAccess(peer('manager', 'gone'), view, { managerRole: true })).toMatch(/not in this swarm \(it was removed\)/);
    expect(planPeerAccess(peer('worker', 'gone'), view, { managerRole: false })).toMatch(/not in this swarm/);
  });
  test('a manager certificate of a demoted node is refused where the manager role is asked for', () => {
    expect(planPeerAccess(peer('manager', 'n2'), view, { managerRole: true })).toMatch(/no longer a manager/);
    expect(planPeerAccess(peer('manager', 'n2'), view, { managerRole: false })).toBeUndefined();
  });
  test('an operator certificate passes until its serial is revoked', () => {
    expect(planPeerAccess(peer('operator', 'ci-bot', 'beef'), view, { managerRole: true })).toBeUndefined();
    expect(planPeerAccess(peer('operator', 'ci-bot', 'dead'), view, { managerRole: true })).toMatch(/ci-bot \(serial dead\) has been revoked/);
  });
});
