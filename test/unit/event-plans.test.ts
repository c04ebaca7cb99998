import { eventJson, eventMatches, formatEventLine, planContainerEvent, planEventFilter, planEventTemplate, planSince, planStoreEvents, planTime, StoreChange, toNanoTime } from '../../manager/events/event-plans';
import { planEventFilters } from '../../cli/commands/events';
import { keys } from '../../manager/store/keys';
import { Event, EventsRequest } from '../../services/gen/swarmlet/v1/control';
import { Node, NodeRole, NodeState, Service, Task, TaskState } from '../../services/gen/swarmlet/v1/types';

const NOW = '2026-12-05T08:00:05.000Z';
const T1 = '2026-12-05T08:00:00.123Z';

const service = (replicas: number, specVersion = 1, image = 'busybox') =>
  JSON.stringify(Service.toJSON(Service.fromPartial({ id: 'svc1', meta: { updatedAt: T1 }, specVersion, spec: { name: 'web', mode: { $case: 'replicated', value: { replicas } }, task: { container: { image } } } })));
const task = (state: TaskState, err = '', desired = TaskState.TASK_STATE_RUNNING) =>
  JSON.stringify(Task.toJSON(Task.fromPartial({ id: 'task1', meta: { updatedAt: T1 }, serviceName: 'web', slot: 2, nodeId: 'node1', desiredState: desired, status: { state, err, message: err ? 'started' : '' } })));
const node = (state: NodeState, message = '') =>
  JSON.stringify(Node.toJSON(Node.fromPartial({ id: 'node1', meta: { updatedAt: T1 }, role: NodeRole.NODE_ROLE_WORKER, description: { hostname: 'h1' }, status: { state, message } })));

const change = (key: string, kind: 'put' | 'delete', value?: string, previous?: string): StoreChange => ({ key, kind, value, previous, revision: 42 });

describe('planStoreEvents', () => {
  test.each<[string, StoreChange, Partial<Event>[]]>([
    ['a new service is created, at its write time', change(keys.service('svc1'), 'put', service(1)), [{ type: 'service', action: 'create', actorId: 'svc1', attributes: { name: 'web' }, time: '2026-12-05T08:00:00.123000000Z', revision: 42, scope: 'swarm' }]],
    ['a scale is an update with the replicas', change(keys.service('svc1'), 'put', service(3, 2), service(1)), [{ action: 'update', attributes: { name: 'web', 'replicas.old': '1', 'replicas.new': '3' } }]],
    ['a new image shows too', change(keys.service('svc1'), 'put', service(1, 2, 'nginx'), service(1)), [{ action: 'update', attributes: { name: 'web', 'image.old': 'busybox', 'image.new': 'nginx' } }]],
    ['an allocation write (same spec version) is no event', change(keys.service('svc1'), 'put', service(1), service(1)), []],
    ['a removed service, at the time it was seen', change(keys.service('svc1'), 'delete', undefined, service(1)), [{ action: 'remove', attributes: { name: 'web' }, time: '2026-12-05T08:00:05.000000000Z' }]],
    ['a task failing gives its reason', change(keys.task('task1'), 'put', task(TaskState.TASK_STATE_FAILED, 'exit 1'), task(TaskState.TASK_STATE_RUNNING)), [{ type: 'task', action: 'update', attributes: { name: 'web.2', service: 'web', 'state.old': 'running', 'state.new': 'failed', node: 'node1', message: 'started', err: 'exit 1' } }]],
    ['a task told to shut down', change(keys.task('task1'), 'put', task(TaskState.TASK_STATE_RUNNING, '', TaskState.TASK_STATE_SHUTDOWN), task(TaskState.TASK_STATE_RUNNING)), [{ attributes: { name: 'web.2', service: 'web', 'desiredstate.old': 'running', 'desiredstate.new': 'shutdown' } }]],
    ['a task write that changes no state is no event', change(keys.task('task1'), 'put', task(TaskState.TASK_STATE_RUNNING), task(TaskState.TASK_STATE_RUNNING)), []],
    ['a node going down', change(keys.node('node1'), 'put', node(NodeState.NODE_STATE_DOWN, 'heartbeat failure'), node(NodeState.NODE_STATE_READY)), [{ type: 'node', action: 'update', attributes: { name: 'h1', 'state.old': 'ready', 'state.new': 'down', message: 'heartbeat failure' } }]],
    ['keys that are not objects (names, heartbeats, the cluster) make none', change(keys.serviceName('web'), 'put', 'svc1'), []],
    ['nor do heartbeats', change(keys.heartbeat('node1'), 'put', 'x'), []],
    ['a value that does not decode makes none', change(keys.service('svc1'), 'put', '{not json'), []],
  ])('%s', (_, c, want) => {
    const got = planStoreEvents(c, NOW);
    expect(got).toHaveLength(want.length);
    want.forEach((w, i) => expect(got[i]).toMatchObject(w));
  });

  test('attributes print in order: name first, then each old before its new', () => {
    const [e] = planStoreEvents(change(keys.service('svc1'), 'put', service(3, 2), service(1)), NOW);
    expect(formatEventLine(e)).toBe('2026-12-05T08:00:00.123000000Z service update svc1 (name=web, replicas.new=3, replicas.old=1)');
  });
});

describe('line, JSON and template', () => {
  const die = planContainerEvent({ action: 'die', id: 'c1', name: 'app', image: 'busybox', exitCode: 1 }, T1);

  test('a container dying prints its exit code, docker-style', () => {
    expect(formatEventLine(die)).toBe('2026-12-05T08:00:00.123000000Z container die c1 (exitCode=1, image=busybox, name=app)');
    expect(die.scope).toBe('local');
  });

  test('an event without attributes prints no parentheses', () => {
    expect(formatEventLine({ ...die, attributes: {} })).toBe('2026-12-05T08:00:00.123000000Z container die c1');
  });

  test('JSON has docker\'s fields and the revision', () => {
    expect(eventJson({ ...die, revision: 7 })).toEqual({ Type: 'container', Action: 'die', Actor: { ID: 'c1', Attributes: { name: 'app', image: 'busybox', exitCode: '1' } }, scope: 'local', time: 1796457600, timeNano: 1796457600123000000, revision: 7 });
  });

  test.each([
    ['{{.Type}} {{.Action}} {{.Actor.ID}}', 'container die c1'],
    ['{{.Actor.Attributes.name}}={{.Actor.Attributes.exitCode}}', 'app=1'],
    ['{{ .ID }}/{{.Attributes.image}}', 'c1/busybox'],
    ['{{json .Actor.Attributes}}', '{"name":"app","image":"busybox","exitCode":"1"}'],
    ['{{.Actor.Attributes.missing}}', '<no value>'],
  ])('template %s', (template, want) => {
    expect(planEventTemplate(template)(die)).toBe(want);
  });

  test.each(['{{.Nope}}', '{{range .}}x{{end}}', 'x {{'])('template %s is refused', (template) => {
    expect(() => planEventTemplate(template)).toThrow(/template/);
  });

  test('times carry nanoseconds', () => {
    expect(toNanoTime('2026-12-05T08:00:00Z')).toBe('2026-12-05T08:00:00.000000000Z');
    expect(toNanoTime('2026-12-05T08:00:00.000000001Z')).toBe('2026-12-05T08:00:00.000000001Z');
    expect(toNanoTime('2026-12-05T08:00:00.123Z')).toBe('2026-12-05T08:00:00.123000000Z');
    expect(toNanoTime('2026-12-05T10:00:00.123+02:00')).toBe('2026-12-05T08:00:00.123000000Z');
  });
});

describe('filters and times', () => {
  const req = (over: Partial<EventsRequest>): EventsRequest => ({ sinceRevision: 0, sinceTime: '', untilTime: '', types: [], actions: [], ...over });
  const ev = (type: string, action: string, time = T1): Event => ({ type, action, actorId: 'x', attributes: {}, scope: 'swarm', time: toNanoTime(time), revision: 1 });

  test('types and actions: any of each list, both lists must match', () => {
    const f = planEventFilter(req({ types: ['service', 'task'], actions: ['create'] }));
    expect([ev('service', 'create'), ev('task', 'create'), ev('service', 'update'), ev('node', 'create')].map((e) => eventMatches(f, e))).toEqual([true, true, false, false]);
  });

  test('the time window keeps its ends', () => {
    const f = planEventFilter(req({ sinceTime: T1, untilTime: '2026-12-05T08:00:01Z' }));
    expect([ev('a', 'b', T1), ev('a', 'b', '2026-12-05T08:00:00.122Z'), ev('a', 'b', '2026-12-05T08:00:01Z'), ev('a', 'b', '2026-12-05T08:00:01.001Z')].map((e) => eventMatches(f, e))).toEqual([true, false, true, false]);
  });

  test.each<[Partial<EventsRequest>, RegExp]>([
    [{ types: ['pod'] }, /invalid event type "pod"/],
    [{ actions: ['Create!'] }, /invalid event/],
    [{ sinceTime: 'soon' }, /invalid since time/],
    [{ sinceTime: '2026-12-05T09:00:00Z', untilTime: '2026-12-05T08:00:00Z' }, /--until is before --since/],
    [{ sinceRevision: -1 }, /invalid revision/],
  ])('a bad request %j is refused', (over, re) => {
    expect(() => planEventFilter(req(over))).toThrow(re);
  });

  const now = Date.parse('2026-12-05T08:00:00Z');
  test.each<[string, { sinceRevision: number; sinceTime: string }]>([
    ['1234', { sinceRevision: 1234, sinceTime: '' }],
    ['1796457600', { sinceRevision: 0, sinceTime: '2026-12-05T08:00:00.000Z' }],
    ['1796457600.5', { sinceRevision: 0, sinceTime: '2026-12-05T08:00:00.500Z' }],
    ['10m', { sinceRevision: 0, sinceTime: '2026-12-05T07:50:00.000Z' }],
    ['1h30m', { sinceRevision: 0, sinceTime: '2026-12-05T06:30:00.000Z' }],
    ['2026-12-05T07:00:00Z', { sinceRevision: 0, sinceTime: '2026-12-05T07:00:00.000Z' }],
    ['2026-12-05T09:00:00+02:00', { sinceRevision: 0, sinceTime: '2026-12-05T07:00:00.000Z' }],
  ])('--since %s', (text, want) => {
    expect(planSince(text, now)).toEqual(want);
  });

  test.each(['0', 'yesterday', '', '10x', '2026-13-45'])('--since %j is refused', (text) => {
    expect(() => planSince(text, now)).toThrow(/invalid --since/);
  });

  test('--until takes times, not revisions', () => {
    expect(planTime('5s', now, '--until')).toBe('2026-12-05T07:59:55.000Z');
    expect(() => planTime('soon', now, '--until')).toThrow(/invalid --until/);
  });

  test('--filter type=X and event=Y, nothing else', () => {
    expect(planEventFilters(['type=service', 'event=create', 'type=task'])).toEqual({ types: ['service', 'task'], actions: ['create'] });
    expect(() => planEventFilters(['service=web'])).toThrow(/invalid filter "service=web"/);
    expect(() => planEventFilters(['type='])).toThrow(/invalid filter/);
  });
});
