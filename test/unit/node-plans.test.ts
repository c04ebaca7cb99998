import { SwarmletError } from '../../services/common/errors';
import { Node, NodeAvailability, NodeRole, NodeState, Reachability } from '../../services/gen/swarmlet/v1/types';
import {
  ManagerView,
  NodeUpdate,
  deriveManagerStatus,
  isSwarmletError,
  planManagerAddition,
  planManagerRemoval,
  planNodeRemoval,
  planNodeState,
  planLeftNode,
  NODE_LEFT,
  needsHostProbe,
  planNextHealthCheck,
  heartbeatLeaseSeconds,
  heartbeatSilenceSeconds,
  HEARTBEAT_MISSED,
  SUSPECT_REPROBE_MS,
  SUSPECT_AFTER_MS,
  planNodeUpdate,
  planRoleChange,
  quorum,
  resolveNode,
} from '../../manager/node-plans';

const NOW = new Date('2025-01-02T03:04:05.000Z');

interface NodeOptions {
  hostname?: string;
  role?: NodeRole;
  desiredRole?: NodeRole;
  state?: NodeState;
  message?: string;
  updatedAt?: string;
  labels?: Record<string, string>;
  availability?: NodeAvailability;
  noSpec?: boolean;
  noStatus?: boolean;
}

function node(id: string, o: NodeOptions = {}): Node {
  const role = o.role ?? NodeRole.NODE_ROLE_WORKER;
  return {
    id,
    meta: { version: 7, createdAt: '2025-01-01T00:00:00.000Z', updatedAt: '2025-01-01T00:00:00.000Z' },
    spec: o.noSpec
      ? undefined
      : { desiredRole: o.desiredRole ?? role, availability: o.availability ?? NodeAvailability.NODE_AVAILABILITY_ACTIVE, labels: o.labels ?? {} },
    role,
    description: { hostname: o.hostname ?? `host-${id}`, os: 'linux', arch: 'x64', engineVersion: '0.1.0', resources: undefined, interfaces: [], containerPorts: [] },
    status: o.noStatus ? undefined : { state: o.state ?? NodeState.NODE_STATE_UNKNOWN, message: o.message ?? '', addr: '198.51.100.10', updatedAt: o.updatedAt ?? '2025-01-01T00:00:00.000Z', apiAddr: '198.51.100.10:2377' },
  };
}

/** Runs `fn`, expecting a SwarmletError; returns it for further checks. */
function thrown(fn: () => unknown): SwarmletError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SwarmletError);
    return err as SwarmletError;
  }
  throw new Error('expected a SwarmletError, nothing was thrown');
}

const up = (id: string): ManagerView => ({ id, reachable: true });
const lost = (id: string): ManagerView => ({ id, reachable: false });

describe('resolveNode', () => {
  const nodes = [
    node('abc123def', { hostname: 'alpha' }),
    node('abd456', { hostname: 'beta' }),
    node('xyz789', { hostname: 'twin' }),
    node('xyw000', { hostname: 'twin' }),
    // A node whose hostname is another node's id prefix: the exact id still wins, the name beats the prefix.
    node('qqq111', { hostname: 'abd' }),
  ];

  test.each([
    ['full id', 'abc123def', 'abc123def'],
    ['full id with surrounding whitespace', '  abd456\n', 'abd456'],
    ['hostname', 'alpha', 'abc123def'],
    ['hostname before an id prefix of the same text', 'abd', 'qqq111'],
    ['unique id prefix', 'abc', 'abc123def'],
    ['unique id prefix of one character more', 'xyz', 'xyz789'],
  ])('%s: %j -> %s', (_what, ref, id) => {
    expect(resolveNode(nodes, ref).id).toBe(id);
  });

  test.each([
    ['ambiguous id prefix', 'ab', 'InvalidArgument', /prefix ab is ambiguous \(2 matches\)/],
    ['ambiguous hostname', 'twin', 'InvalidArgument', /name twin is ambiguous \(2 matches\); use its id/],
    ['not found', 'nope', 'NotFound', /node nope not found/],
    ['empty', '', 'InvalidArgument', /required/],
    ['only whitespace', '   ', 'InvalidArgument', /required/],
  ])('%s: %j is refused', (_what, ref, kind, message) => {
    const err = thrown(() => resolveNode(nodes, ref));
    expect(err.kind).toBe(kind);
    expect(err.message).toMatch(message);
  });

  test('an ambiguous hostname can still be named by id', () => {
    expect(resolveNode(nodes, 'xyw000').description?.hostname).toBe('twin');
  });

  test('no nodes at all: not found', () => {
    expect(thrown(() => resolveNode([], 'abc')).kind).toBe('NotFound');
  });
});

describe('planNodeState', () => {
  const GRACE = 15000;
  const silent = (hostAnswers?: boolean) => ({ heartbeating: false, hostAnswers });
  const beating = { heartbeating: true };
  const suspectSince = (msAgo: number) => node('n1', { state: NodeState.NODE_STATE_READY, message: HEARTBEAT_MISSED, updatedAt: new Date(NOW.getTime() - msAgo).toISOString() });

  test.each([
    ['unknown, heartbeating', NodeState.NODE_STATE_UNKNOWN, beating, NodeState.NODE_STATE_READY, ''],
    ['unknown, silent', NodeState.NODE_STATE_UNKNOWN, silent(), NodeState.NODE_STATE_DOWN, 'no heartbeat yet'],
    ['ready, silent, its host not answering', NodeState.NODE_STATE_READY, silent(false), NodeState.NODE_STATE_DOWN, 'heartbeat failure'],
    ['down, heartbeating', NodeState.NODE_STATE_DOWN, beating, NodeState.NODE_STATE_READY, ''],
  ])('%s -> state %i, message %j', (_what, from, live, state, message) => {
    const n = node('n1', { state: from, message: 'old message' });
    expect(planNodeState(n, live, NOW, GRACE)).toEqual({ state, message, addr: '198.51.100.10', apiAddr: '198.51.100.10:2377', updatedAt: NOW.toISOString() });
  });

  test.each([
    ['ready and heartbeating', NodeState.NODE_STATE_READY, beating],
    ['down and silent', NodeState.NODE_STATE_DOWN, silent(true)],
    ['down and silent, its host not answering', NodeState.NODE_STATE_DOWN, silent(false)],
  ])('no change when %s', (_what, state, live) => {
    expect(planNodeState(node('n1', { state }), live, NOW, GRACE)).toBeUndefined();
  });

  test.each([
    ['its host answering', true],
    ['its host not asked (no address)', undefined],
  ])('ready, silent, %s: ready, in its grace, once silent for SUSPECT_AFTER_MS, counted from when it fell silent', (_what, hostAnswers) => {
    const n = node('n1', { state: NodeState.NODE_STATE_READY });
    const justNow = new Date(NOW.getTime() - SUSPECT_AFTER_MS + 1);
    expect(planNodeState(n, { heartbeating: false, hostAnswers, silentSince: justNow }, NOW, GRACE)).toBeUndefined();
    expect(planNodeState(n, { heartbeating: false, hostAnswers }, NOW, GRACE)).toBeUndefined();
    const since = new Date(NOW.getTime() - SUSPECT_AFTER_MS);
    expect(planNodeState(n, { heartbeating: false, hostAnswers, silentSince: since }, NOW, GRACE)).toEqual({ state: NodeState.NODE_STATE_READY, message: HEARTBEAT_MISSED, addr: '198.51.100.10', apiAddr: '198.51.100.10:2377', updatedAt: since.toISOString() });
  });

  test('in its grace, a node whose host answers stays as it is, its grace counted from when it began (not from now)', () => {
    expect(planNodeState(suspectSince(GRACE - 1), silent(true), NOW, GRACE)).toBeUndefined();
    expect(planNodeState(suspectSince(GRACE), silent(true), NOW, GRACE)).toEqual(expect.objectContaining({ state: NodeState.NODE_STATE_DOWN, message: 'heartbeat failure (its host answered, its daemon did not for 15s)' }));
  });

  test('in its grace, a host that stops answering makes the node down at once', () => {
    expect(planNodeState(suspectSince(1000), silent(false), NOW, GRACE)).toEqual(expect.objectContaining({ state: NodeState.NODE_STATE_DOWN, message: 'heartbeat failure' }));
  });

  test('a node whose agent said it leaves is down at once, whatever it was; once so, it stays as it is', () => {
    for (const state of [NodeState.NODE_STATE_READY, NodeState.NODE_STATE_UNKNOWN, NodeState.NODE_STATE_DOWN]) {
      expect(planLeftNode(node('n1', { state, message: HEARTBEAT_MISSED }), NOW)).toEqual({ state: NodeState.NODE_STATE_DOWN, message: NODE_LEFT, addr: '198.51.100.10', apiAddr: '198.51.100.10:2377', updatedAt: NOW.toISOString() });
    }
    const left = node('n1', { state: NodeState.NODE_STATE_DOWN, message: NODE_LEFT });
    expect(planLeftNode(left, NOW)).toBeUndefined();
    // Silent from then on, it is left down by the health loop: no grace, no probe; nor does a
    // heartbeat key its last session left behind for a moment make it ready again.
    expect(planNodeState(left, silent(true), NOW, GRACE)).toBeUndefined();
    expect(planNodeState(left, beating, NOW, GRACE)).toBeUndefined();
    expect(needsHostProbe(left, false)).toBe(false);
  });

  test('a node in its grace that heartbeats again is ready, its message cleared', () => {
    expect(planNodeState(suspectSince(1000), beating, NOW, GRACE)).toEqual(expect.objectContaining({ state: NodeState.NODE_STATE_READY, message: '' }));
  });

  test('only a ready node that stopped heartbeating is probed', () => {
    expect(needsHostProbe(node('n1', { state: NodeState.NODE_STATE_READY }), false)).toBe(true);
    expect(needsHostProbe(node('n1', { state: NodeState.NODE_STATE_READY }), true)).toBe(false);
    expect(needsHostProbe(node('n1', { state: NodeState.NODE_STATE_DOWN }), false)).toBe(false);
    expect(needsHostProbe(node('n1', { state: NodeState.NODE_STATE_UNKNOWN }), false)).toBe(false);
  });

  test('a node without a status gets one, with an empty address', () => {
    expect(planNodeState(node('n1', { noStatus: true }), silent(), NOW, GRACE)).toEqual({
      state: NodeState.NODE_STATE_DOWN,
      message: 'no heartbeat yet',
      addr: '',
      updatedAt: NOW.toISOString(),
    });
  });

  test('the node it is given is left alone', () => {
    const n = node('n1', { state: NodeState.NODE_STATE_READY });
    const before = structuredClone(n);
    planNodeState(n, silent(false), NOW, GRACE);
    expect(n).toEqual(before);
  });
});

describe('planNextHealthCheck', () => {
  const GRACE = 15000;
  const suspect = (id: string, msAgo: number) => node(id, { state: NodeState.NODE_STATE_READY, message: HEARTBEAT_MISSED, updatedAt: new Date(NOW.getTime() - msAgo).toISOString() });

  test('no node in its grace: nothing to look at before the store changes', () => {
    expect(planNextHealthCheck([node('a', { state: NodeState.NODE_STATE_READY }), node('b', { state: NodeState.NODE_STATE_DOWN })], NOW, GRACE)).toBeUndefined();
  });

  test('a node in its grace: probed again within a second, or at the end of its grace if that comes first', () => {
    expect(planNextHealthCheck([suspect('a', 1000)], NOW, GRACE)).toBe(SUSPECT_REPROBE_MS);
    expect(planNextHealthCheck([suspect('a', 1000), suspect('b', GRACE - 300)], NOW, GRACE)).toBe(300);
    expect(planNextHealthCheck([suspect('a', GRACE + 5000)], NOW, GRACE)).toBe(0);
  });
});

describe('heartbeatSilenceSeconds and heartbeatLeaseSeconds', () => {
  test.each([
    [500, 1],
    [100, 1],
    [1000, 2],
    [1600, 4],
    [5000, 10],
  ])('heartbeats every %i ms: the key goes after %i s of silence, and its lease lives twice that', (periodMs, seconds) => {
    expect(heartbeatSilenceSeconds({ heartbeatPeriodMs: periodMs })).toBe(seconds);
    expect(heartbeatLeaseSeconds({ heartbeatPeriodMs: periodMs })).toBe(2 * seconds);
  });
});

describe('quorum', () => {
  test.each([
    [1, 1],
    [2, 2],
    [3, 2],
    [4, 3],
    [5, 3],
    [6, 4],
    [7, 4],
  ])('%i members need %i', (members, needed) => {
    expect(quorum(members)).toBe(needed);
  });
});

describe('planManagerRemoval', () => {
  test.each<[string, ManagerView[], string, RegExp | undefined]>([
    ['the last manager', [up('a')], 'a', /last manager/],
    ['the last manager, unreachable', [lost('a')], 'a', /last manager/],
    ['3 -> 2, all reachable', [up('a'), up('b'), up('c')], 'a', undefined],
    ['3 -> 2, removing the unreachable one', [up('a'), up('b'), lost('c')], 'c', undefined],
    ['3 -> 2, removing a reachable one while another is unreachable', [up('a'), up('b'), lost('c')], 'a', /only 1 of the 2 managers left would be reachable, fewer than the 2/],
    ['2 -> 1, both reachable', [up('a'), up('b')], 'b', undefined],
    ['2 -> 1, the one left unreachable', [up('a'), lost('b')], 'a', /no quorum to make the change/],
    ['2 -> 1, removing the unreachable one: etcd cannot commit it', [up('a'), lost('b')], 'b', /only 1 of the 2 managers are reachable/],
    ['5 -> 4, one other unreachable', [up('a'), up('b'), up('c'), up('d'), lost('e')], 'a', undefined],
    ['5 -> 4, two others unreachable', [up('a'), up('b'), up('c'), lost('d'), lost('e')], 'a', /only 2 of the 4 managers left would be reachable, fewer than the 3/],
    ['not a manager at all', [up('a'), lost('b'), lost('c')], 'zzz', undefined],
    ['no managers at all', [], 'a', undefined],
  ])('%s', (_what, managers, leaving, refusal) => {
    const reason = planManagerRemoval(managers, leaving);
    if (refusal) expect(reason).toMatch(refusal);
    else expect(reason).toBeUndefined();
  });
});

describe('planManagerAddition', () => {
  test.each<[string, ManagerView[], RegExp | undefined]>([
    ['1 reachable -> 2', [up('a')], undefined],
    ['3 reachable -> 4', [up('a'), up('b'), up('c')], undefined],
    ['3 with 1 unreachable -> 4', [up('a'), up('b'), lost('c')], undefined],
    ['3 with 2 unreachable -> 4', [up('a'), lost('b'), lost('c')], /only 1 of 3 managers are reachable; with one more, 3 must be/],
    ['2 with 1 unreachable -> 3', [up('a'), lost('b')], undefined],
    ['1 unreachable -> 2', [lost('a')], /only 0 of 1 managers are reachable; with one more, 2 must be/],
  ])('%s', (_what, managers, refusal) => {
    const reason = planManagerAddition(managers);
    if (refusal) expect(reason).toMatch(refusal);
    else expect(reason).toBeUndefined();
  });
});

describe('planNodeUpdate', () => {
  const update = (u: Partial<NodeUpdate>): NodeUpdate => ({ labelAdd: {}, labelRm: [], ...u });

  test.each<[string, Record<string, string>, Partial<NodeUpdate>, Record<string, string>]>([
    ['adds a label', {}, { labelAdd: { zone: 'a' } }, { zone: 'a' }],
    ['replaces a label', { zone: 'a' }, { labelAdd: { zone: 'b' } }, { zone: 'b' }],
    ['removes a label', { zone: 'a', disk: 'ssd' }, { labelRm: ['zone'] }, { disk: 'ssd' }],
    ['removes, then adds the same key', { zone: 'a' }, { labelRm: ['zone'], labelAdd: { zone: 'c' } }, { zone: 'c' }],
    ['an empty value', {}, { labelAdd: { flag: '' } }, { flag: '' }],
    ['keys with dots, dashes, underscores and slashes', {}, { labelAdd: { 'com.example/team_1-x': 'y', a: '1', Z9: '2' } }, { 'com.example/team_1-x': 'y', a: '1', Z9: '2' }],
    ['nothing to do', { zone: 'a' }, {}, { zone: 'a' }],
  ])('%s', (_what, before, u, after) => {
    const n = node('n1', { labels: before });
    const out = planNodeUpdate(n, update(u));
    expect(out.spec?.labels).toEqual(after);
    expect(n.spec?.labels).toEqual(before); // the input is not changed
    expect(out.id).toBe('n1');
    expect(out.meta).toEqual(n.meta); // the version stays, for the compare-and-swap
  });

  test.each(['', '-a', 'a-', '.a', 'a.', 'a b', 'a=b', 'ä', 'a:b', 'x'.repeat(254)])('refuses the label key %j', (key) => {
    const err = thrown(() => planNodeUpdate(node('n1'), update({ labelAdd: { [key]: 'v' } })));
    expect(err.kind).toBe('InvalidArgument');
    expect(err.message).toContain('invalid label key');
  });

  test('accepts a label key of the longest length', () => {
    const key = 'k'.repeat(253);
    expect(planNodeUpdate(node('n1'), update({ labelAdd: { [key]: 'v' } })).spec?.labels).toEqual({ [key]: 'v' });
  });

  test('removing a label the node does not have is refused, naming the node', () => {
    const err = thrown(() => planNodeUpdate(node('n1', { hostname: 'alpha', labels: { zone: 'a' } }), update({ labelRm: ['disk'] })));
    expect(err.kind).toBe('InvalidArgument');
    expect(err.message).toBe('node alpha has no label disk');
  });

  test('a label to remove with a control character is quoted: the refusal stays one line (found by the Control fuzz)', () => {
    const err = thrown(() => planNodeUpdate(node('n1', { hostname: 'alpha' }), update({ labelRm: ['\n'] })));
    expect(err.message).toBe('node alpha has no label "\\n"');
  });

  test('a refused update does not touch the node', () => {
    const n = node('n1', { labels: { zone: 'a' } });
    expect(() => planNodeUpdate(n, update({ labelRm: ['zone'], labelAdd: { 'bad key': 'x' } }))).toThrow(SwarmletError);
    expect(n.spec?.labels).toEqual({ zone: 'a' });
  });

  test.each([
    [NodeAvailability.NODE_AVAILABILITY_ACTIVE, NodeAvailability.NODE_AVAILABILITY_DRAIN, NodeAvailability.NODE_AVAILABILITY_DRAIN],
    [NodeAvailability.NODE_AVAILABILITY_DRAIN, NodeAvailability.NODE_AVAILABILITY_PAUSE, NodeAvailability.NODE_AVAILABILITY_PAUSE],
    [NodeAvailability.NODE_AVAILABILITY_PAUSE, NodeAvailability.NODE_AVAILABILITY_ACTIVE, NodeAvailability.NODE_AVAILABILITY_ACTIVE],
    [NodeAvailability.NODE_AVAILABILITY_DRAIN, undefined, NodeAvailability.NODE_AVAILABILITY_DRAIN],
  ])('availability %i with %p -> %i', (from, to, expected) => {
    const out = planNodeUpdate(node('n1', { availability: from, labels: { keep: 'me' } }), update({ availability: to }));
    expect(out.spec?.availability).toBe(expected);
    expect(out.spec?.labels).toEqual({ keep: 'me' });
  });

  test('a node without a spec gets a full one: its role as desired role, active, the labels', () => {
    const out = planNodeUpdate(node('n1', { noSpec: true, role: NodeRole.NODE_ROLE_MANAGER }), update({ labelAdd: { zone: 'a' } }));
    expect(out.spec).toEqual({ desiredRole: NodeRole.NODE_ROLE_MANAGER, availability: NodeAvailability.NODE_AVAILABILITY_ACTIVE, labels: { zone: 'a' } });
  });

  test('a pending role change in the spec is kept', () => {
    const n = node('n1', { role: NodeRole.NODE_ROLE_WORKER, desiredRole: NodeRole.NODE_ROLE_MANAGER });
    expect(planNodeUpdate(n, update({ labelAdd: { a: 'b' } })).spec?.desiredRole).toBe(NodeRole.NODE_ROLE_MANAGER);
  });
});

describe('planRoleChange', () => {
  const manager = (id: string) => node(id, { role: NodeRole.NODE_ROLE_MANAGER, hostname: id });
  const worker = (id: string) => node(id, { role: NodeRole.NODE_ROLE_WORKER, hostname: id });

  test.each([
    ['a manager promoted', manager('m1'), NodeRole.NODE_ROLE_MANAGER, 'node m1 is already a manager'],
    ['a worker demoted', worker('w1'), NodeRole.NODE_ROLE_WORKER, 'node w1 is already a worker'],
    ['a worker whose promotion is pending, promoted', node('w2', { hostname: 'w2', desiredRole: NodeRole.NODE_ROLE_MANAGER }), NodeRole.NODE_ROLE_MANAGER, 'node w2 is already a manager'],
  ])('%s: nothing to do', (_what, n, role, message) => {
    expect(planRoleChange(n, role, [up('m1')])).toEqual({ message });
  });

  test('promotes a worker', () => {
    const n = worker('w1');
    const out = planRoleChange(n, NodeRole.NODE_ROLE_MANAGER, [up('m1')]);
    expect(out.message).toBe('node w1 promoted to a manager in the swarm');
    expect(out.node?.spec?.desiredRole).toBe(NodeRole.NODE_ROLE_MANAGER);
    expect(out.node?.role).toBe(NodeRole.NODE_ROLE_WORKER); // the role itself changes when the node takes it up
    expect(out.node?.spec?.labels).toEqual(n.spec?.labels);
    expect(n.spec?.desiredRole).toBe(NodeRole.NODE_ROLE_WORKER);
  });

  test('demotes a manager when the rest keep quorum', () => {
    const out = planRoleChange(manager('m1'), NodeRole.NODE_ROLE_WORKER, [up('m1'), up('m2'), up('m3')]);
    expect(out.message).toBe('node m1 demoted to a worker in the swarm');
    expect(out.node?.spec?.desiredRole).toBe(NodeRole.NODE_ROLE_WORKER);
  });

  test.each<[string, ManagerView[], RegExp]>([
    ['the last manager', [up('m1')], /cannot demote node m1: it is the last manager/],
    ['another manager is unreachable', [up('m1'), up('m2'), lost('m3')], /cannot demote node m1: only 1 of the 2 managers left would be reachable/],
  ])('refuses to demote %s', (_what, managers, message) => {
    const err = thrown(() => planRoleChange(manager('m1'), NodeRole.NODE_ROLE_WORKER, managers));
    expect(err.kind).toBe('FailedPrecondition');
    expect(err.message).toMatch(message);
  });

  test('refuses to promote when the managers would lose quorum', () => {
    const err = thrown(() => planRoleChange(worker('w1'), NodeRole.NODE_ROLE_MANAGER, [up('m1'), lost('m2'), lost('m3')]));
    expect(err.kind).toBe('FailedPrecondition');
    expect(err.message).toMatch(/cannot promote node w1: only 1 of 3 managers are reachable/);
  });

  test('demoting a manager whose demotion is under way (or left by --force-new-cluster) says how it ends', () => {
    const n = node('m1', { hostname: 'm1', role: NodeRole.NODE_ROLE_MANAGER, desiredRole: NodeRole.NODE_ROLE_WORKER, state: NodeState.NODE_STATE_DOWN });
    expect(planRoleChange(n, NodeRole.NODE_ROLE_WORKER, [])).toEqual({
      message: "node m1 is being demoted: it becomes a worker when it next connects; if it is gone for good, remove it with 'swarmlet node rm --force m1' once it is down",
    });
  });

  test('a node without a hostname is named by its id', () => {
    const n = { ...worker('w1'), description: undefined };
    expect(planRoleChange(n, NodeRole.NODE_ROLE_WORKER, []).message).toBe('node w1 is already a worker');
  });
});

describe('planNodeRemoval', () => {
  test.each<[string, Node, boolean]>([
    ['a down worker', node('w1', { state: NodeState.NODE_STATE_DOWN }), false],
    ['a worker in an unknown state', node('w1', { state: NodeState.NODE_STATE_UNKNOWN }), false],
    ['a ready worker, forced', node('w1', { state: NodeState.NODE_STATE_READY }), true],
    ['a down worker, forced', node('w1', { state: NodeState.NODE_STATE_DOWN }), true],
    ['a down manager whose demotion cannot finish, forced', node('m1', { role: NodeRole.NODE_ROLE_MANAGER, desiredRole: NodeRole.NODE_ROLE_WORKER, state: NodeState.NODE_STATE_DOWN }), true],
  ])('allows %s', (_what, n, force) => {
    expect(() => planNodeRemoval(n, force)).not.toThrow();
  });

  test.each<[string, Node, boolean, RegExp]>([
    ['a manager', node('m1', { hostname: 'm1', role: NodeRole.NODE_ROLE_MANAGER, state: NodeState.NODE_STATE_DOWN }), false, /node m1 is a manager: demote it with 'swarmlet node demote m1'/],
    ['a manager, even forced', node('m1', { hostname: 'm1', role: NodeRole.NODE_ROLE_MANAGER, state: NodeState.NODE_STATE_DOWN }), true, /is a manager/],
    ['a down manager being demoted, not forced', node('m1', { hostname: 'm1', role: NodeRole.NODE_ROLE_MANAGER, desiredRole: NodeRole.NODE_ROLE_WORKER, state: NodeState.NODE_STATE_DOWN }), false, /node m1 is a manager being demoted.*node rm --force m1/],
    ['a ready manager being demoted, forced', node('m1', { hostname: 'm1', role: NodeRole.NODE_ROLE_MANAGER, desiredRole: NodeRole.NODE_ROLE_WORKER, state: NodeState.NODE_STATE_READY }), true, /node m1 is a manager being demoted/],
    ['a worker being promoted', node('w1', { hostname: 'w1', desiredRole: NodeRole.NODE_ROLE_MANAGER, state: NodeState.NODE_STATE_DOWN }), true, /node w1 is a manager/],
    ['a ready worker', node('w1', { hostname: 'w1', state: NodeState.NODE_STATE_READY }), false, /node w1 is not down and can't be removed; stop it first, or use --force/],
  ])('refuses %s', (_what, n, force, message) => {
    const err = thrown(() => planNodeRemoval(n, force));
    expect(err.kind).toBe('FailedPrecondition');
    expect(err.message).toMatch(message);
  });
});

describe('deriveManagerStatus', () => {
  const manager = (id: string, addr?: string): Node => ({
    ...node(id, { role: NodeRole.NODE_ROLE_MANAGER }),
    managerStatus: addr === undefined ? undefined : { addr, leader: false, reachability: Reachability.REACHABILITY_UNKNOWN },
  });

  test.each<[string, Node, string | undefined, string[], Node['managerStatus']]>([
    ['the leader, running', manager('m1', '198.51.100.1:2377'), 'm1', ['m1', 'm2'], { addr: '198.51.100.1:2377', leader: true, reachability: Reachability.REACHABILITY_REACHABLE }],
    ['a follower, running', manager('m2', '198.51.100.2:2377'), 'm1', ['m1', 'm2'], { addr: '198.51.100.2:2377', leader: false, reachability: Reachability.REACHABILITY_REACHABLE }],
    ['a manager not running', manager('m3', '198.51.100.3:2377'), 'm1', ['m1', 'm2'], { addr: '198.51.100.3:2377', leader: false, reachability: Reachability.REACHABILITY_UNREACHABLE }],
    ['no leader known', manager('m1', '198.51.100.1:2377'), undefined, ['m1'], { addr: '198.51.100.1:2377', leader: false, reachability: Reachability.REACHABILITY_REACHABLE }],
    ['a manager with no status yet', manager('m1'), 'm1', ['m1'], { addr: '', leader: true, reachability: Reachability.REACHABILITY_REACHABLE }],
  ])('%s', (_what, n, leader, running, expected) => {
    expect(deriveManagerStatus(n, leader, new Set(running)).managerStatus).toEqual(expected);
  });

  test('a worker has no manager status, whatever it had before', () => {
    const n: Node = { ...node('w1'), managerStatus: { addr: 'x', leader: true, reachability: Reachability.REACHABILITY_REACHABLE } };
    const out = deriveManagerStatus(n, 'w1', new Set(['w1']));
    expect(out.managerStatus).toBeUndefined();
    expect(out.id).toBe('w1');
  });

  test('the rest of the node is kept', () => {
    const n = manager('m1', 'a:1');
    const out = deriveManagerStatus(n, 'm1', new Set());
    expect({ ...out, managerStatus: undefined }).toEqual({ ...n, managerStatus: undefined });
  });
});

describe('isSwarmletError', () => {
  test.each<[unknown, SwarmletError['kind'], boolean]>([
    [new SwarmletError('NotFound', 'x'), 'NotFound', true],
    [new SwarmletError('NotFound', 'x'), 'Conflict', false],
    [new Error('x'), 'Internal', false],
    ['NotFound', 'NotFound', false],
  ])('%p is %s: %p', (err, kind, expected) => {
    expect(isSwarmletError(err, kind)).toBe(expected);
  });
});

describe('addressHolder: who keeps a joining host from an address', () => {
  const { addressHolder } = require('../../manager/node-plans') as typeof import('../../manager/node-plans');
  const at = (id: string, addr: string, state: NodeState) => ({ id, role: NodeRole.NODE_ROLE_WORKER, status: { state, message: '', addr, updatedAt: '', apiAddr: '' } }) as Node;
  const nodes = [at('old', '198.51.100.14', NodeState.NODE_STATE_READY), at('live', '198.51.100.15', NodeState.NODE_STATE_READY), at('down', '198.51.100.16', NodeState.NODE_STATE_DOWN)];
  test('a Ready node that heartbeats holds its address', () => expect(addressHolder(nodes, '198.51.100.15', new Set(['live']))?.id).toBe('live'));
  test('a Ready node whose heartbeats stopped (left, or restored from a backup) does not', () => expect(addressHolder(nodes, '198.51.100.14', new Set(['live']))).toBeUndefined());
  test('a Down node does not, nor a free address', () => {
    expect(addressHolder(nodes, '198.51.100.16', new Set(['down']))).toBeUndefined();
    expect(addressHolder(nodes, '198.51.100.99', new Set(['live', 'old']))).toBeUndefined();
  });
});
