import { SwarmletError } from '../../services/common/errors';
import { Network, NetworkAttachment, Service, ServiceSpec, Task, TaskState, UpdateState } from '../../services/gen/swarmlet/v1/types';
import {
  checkNetworkRemoval,
  networkEndpoints,
  networkUsers,
  planAllocation,
  resolveNetwork,
  validateServiceNetworks,
} from '../../manager/network-plans';
import { planNetworkChange, specFromCreateFlags, specFromUpdateFlags } from '../../cli/service-flags';
import { networkInspect, networkJson, networkRows, networkSpecFromFlags } from '../../cli/commands/network';
import { planProgress } from '../../cli/commands/service';

const { TASK_STATE_NEW, TASK_STATE_PENDING, TASK_STATE_RUNNING, TASK_STATE_SHUTDOWN, TASK_STATE_COMPLETE, TASK_STATE_FAILED } = TaskState;

function network(id: string, name: string, driver = 'overlay', subnet = '10.0.0.0/24', o: Partial<Network> = {}): Network {
  const noAddresses = driver === 'host' || driver === 'none';
  return {
    id,
    meta: undefined,
    spec: { name, driver, ipam: { subnet: '', gateway: '', ipRange: '' }, attachable: false, internal: false, options: {}, labels: {} },
    vni: driver === 'overlay' ? 4096 : 0,
    subnet: noAddresses ? '' : subnet,
    gateway: noAddresses ? '' : subnet.replace(/0\/\d+$/, '1'),
    builtin: false,
    ...o,
  };
}

const FRONT = network('f00d1111', 'front', 'overlay', '10.0.0.0/24');
const BACK = network('beef2222', 'back', 'overlay', '10.0.1.0/24', { vni: 4097 });
const BRIDGE = network('b1', 'bridge', 'bridge', '172.17.0.0/16', { builtin: true });
const HOST = network('h1', 'host', 'host', '', { builtin: true });
const NONE = network('n1', 'none', 'none', '', { builtin: true });
const MACVLAN = network('m1', 'lan', 'macvlan', '192.168.7.0/24');
const ALL = [FRONT, BACK, BRIDGE, HOST, NONE, MACVLAN];

interface TaskOptions {
  slot?: number;
  node?: string;
  state?: TaskState;
  desired?: TaskState;
  refs?: string[];
  attached?: { net: Network; address: string }[];
  message?: string;
  created?: number;
  service?: string;
  specVersion?: number;
}

function task(id: string, o: TaskOptions = {}): Task {
  const createdAt = new Date(Date.UTC(2025, 0, 1, 0, 0, o.created ?? 0)).toISOString();
  const attachments: NetworkAttachment[] = (o.attached ?? []).map(({ net, address }) => ({
    networkId: net.id,
    networkName: net.spec!.name,
    driver: net.spec!.driver,
    address,
    mac: `02:42:${address}`,
    gateway: net.gateway,
    vni: net.vni,
    internal: false,
    options: {},
  }));
  return {
    id,
    meta: { version: 7, createdAt, updatedAt: createdAt },
    serviceId: `svc-${o.service ?? 'web'}`,
    serviceName: o.service ?? 'web',
    slot: o.slot ?? 0,
    nodeId: o.node ?? '',
    spec: { networkAliases: [], container: undefined, resources: undefined, restart: undefined, placement: undefined, forceUpdate: 0, networks: o.refs ?? [] },
    specVersion: o.specVersion ?? 1,
    desiredState: o.desired ?? TASK_STATE_RUNNING,
    status: { state: o.state ?? TASK_STATE_NEW, timestamp: createdAt, message: o.message ?? 'created', err: '', container: undefined },
    createdAt,
    networks: attachments,
  };
}

function service(name: string, refs: string[]): Service {
  return {
    id: `svc-${name}`,
    meta: undefined,
    spec: ServiceSpec.fromPartial({ name, mode: { $case: 'replicated', value: { replicas: 1 } }, task: { networks: refs } }),
    specVersion: 1,
    previousSpec: undefined,
    updateStatus: undefined,
    endpoint: undefined,
    registryAuthSealed: Buffer.alloc(0),
  };
}

function thrown(fn: () => unknown): SwarmletError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SwarmletError);
    return err as SwarmletError;
  }
  throw new Error('expected a throw');
}

describe('resolveNetwork', () => {
  const ambiguous = [network('abc111', 'one'), network('abc222', 'two'), network('abc111x', 'abc2')];
  test.each([
    ['full id', ALL, 'f00d1111', 'f00d1111'],
    ['name', ALL, 'back', 'beef2222'],
    ['unique id prefix', ALL, 'bee', 'beef2222'],
    ['white space around', ALL, ' front ', 'f00d1111'],
    ['an id wins over a name that looks like it', ambiguous, 'abc111', 'abc111'],
    ['a name wins over an id prefix', ambiguous, 'abc2', 'abc111x'],
  ])('%s', (_title, networks, ref, id) => {
    expect(resolveNetwork(networks, ref).id).toBe(id);
  });

  test.each([
    ['', 'InvalidArgument', 'a network name or id is required'],
    ['abc', 'InvalidArgument', 'network id prefix abc is ambiguous (3 matches)'],
    ['nope', 'NotFound', 'network nope not found'],
  ])('%j is refused', (ref, kind, message) => {
    const err = thrown(() => resolveNetwork(ambiguous, ref));
    expect([err.kind, err.message]).toEqual([kind, message]);
  });
});

describe('validateServiceNetworks', () => {
  test.each([
    ['none at all', []],
    ['by name, in order', ['back', 'front']],
    ['by full id', ['f00d1111']],
    ['host alone', ['host']],
    ['none alone', ['none']],
    ['a macvlan network with others', ['front', 'lan']],
  ])('accepts %s', (_title, refs) => {
    expect(() => validateServiceNetworks(refs, ALL)).not.toThrow();
  });

  test.each([
    ['a missing network', ['front', 'ghost'], 'NotFound', 'network ghost not found'],
    ['an id prefix (the allocator resolves names and full ids only)', ['f00d'], 'NotFound', 'network f00d not found'],
    ['an empty name', [''], 'InvalidArgument', 'a network name is required: use --network NAME'],
    ['the same name twice', ['front', 'back', 'front'], 'InvalidArgument', 'network front is listed more than once'],
    ['a name and the id of the same network', ['front', 'f00d1111'], 'InvalidArgument', 'network f00d1111 is listed more than once'],
    ['host with another', ['front', 'host'], 'InvalidArgument', 'network host cannot be combined with other networks'],
    ['none with another', ['none', 'back'], 'InvalidArgument', 'network none cannot be combined with other networks'],
  ])('refuses %s', (_title, refs, kind, message) => {
    const err = thrown(() => validateServiceNetworks(refs, ALL));
    expect([err.kind, err.message]).toEqual([kind, message]);
  });
});

describe('who uses a network', () => {
  const tasks = [
    task('t1', { slot: 1, state: TASK_STATE_RUNNING, attached: [{ net: FRONT, address: '10.0.0.2/24' }] }),
    task('t10', { slot: 10, state: TASK_STATE_RUNNING, attached: [{ net: FRONT, address: '10.0.0.11/24' }] }),
    task('t2', { slot: 2, state: TASK_STATE_RUNNING, desired: TASK_STATE_SHUTDOWN, attached: [{ net: FRONT, address: '10.0.0.3/24' }] }),
    task('t3', { slot: 3, state: TASK_STATE_COMPLETE, attached: [{ net: FRONT, address: '10.0.0.4/24' }] }),
    task('t4', { slot: 4, state: TASK_STATE_NEW, refs: ['front'] }),
    task('t5', { slot: 5, state: TASK_STATE_NEW, refs: ['beef2222'] }),
    task('g1', { service: 'agent', node: 'node-a', state: TASK_STATE_RUNNING, attached: [{ net: BACK, address: '10.0.1.2/24' }] }),
  ];

  test('tasks that have not ended, attached or asking by name or id; services that name it', () => {
    expect(networkUsers(FRONT, [service('web', ['front']), service('db', ['back'])], tasks)).toEqual({ tasks: ['web.1', 'web.2', 'web.4', 'web.10'], services: ['web'], containers: [] });
    expect(networkUsers(BACK, [service('db', ['beef2222'])], tasks)).toEqual({ tasks: ['agent.node-a', 'web.5'], services: ['db'], containers: [] });
    expect(networkUsers(network('x', 'idle'), [service('web', ['front'])], tasks)).toEqual({ tasks: [], services: [], containers: [] });
  });

  test('a container on it (its attachment task): listed, and removal refused in docker\'s words', () => {
    const att = task('a1', { state: TASK_STATE_RUNNING, attached: [{ net: FRONT, address: '10.0.0.9/24' }] });
    att.spec = { ...att.spec!, attachment: { containerId: 'c0ffee', containerName: 'alpine1' } as never };
    const users = networkUsers(FRONT, [], [att]);
    expect(users.containers).toEqual(['alpine1']);
    const err = thrown(() => checkNetworkRemoval(FRONT, users));
    expect([err.kind, err.message]).toEqual(['FailedPrecondition', `error while removing network: network front id ${FRONT.id} has active endpoints`]);
  });

  test('a task with attachments is judged by them, not by its spec', () => {
    const moved = task('t', { slot: 1, state: TASK_STATE_RUNNING, refs: ['front'], attached: [{ net: BACK, address: '10.0.1.9/24' }] });
    expect(networkUsers(FRONT, [], [moved]).tasks).toEqual([]);
  });

  test.each([
    ['built in', BRIDGE, { tasks: [], services: [] }, 'InvalidArgument', 'network bridge is built in and can\'t be removed'],
    ['one task', FRONT, { tasks: ['web.1'], services: ['web'] }, 'FailedPrecondition', 'network front is in use by 1 task (web.1)'],
    ['many tasks', FRONT, { tasks: ['web.1', 'web.2', 'web.3', 'web.4', 'web.5', 'web.6'], services: [] }, 'FailedPrecondition', 'network front is in use by 6 tasks (web.1, web.2, web.3, web.4, web.5, ...)'],
    ['a service without tasks', FRONT, { tasks: [], services: ['web'] }, 'FailedPrecondition', 'network front is in use by service web'],
    ['services without tasks', FRONT, { tasks: [], services: ['db', 'web'] }, 'FailedPrecondition', 'network front is in use by 2 services db, web'],
  ])('removal refused: %s', (_title, net, users, kind, message) => {
    const err = thrown(() => checkNetworkRemoval(net, users));
    expect([err.kind, err.message]).toEqual([kind, message]);
  });

  test('an unused network may go', () => {
    expect(() => checkNetworkRemoval(FRONT, { tasks: [], services: [] })).not.toThrow();
  });
});

describe('networkEndpoints', () => {
  test('attachments of tasks meant to run and not ended, in task name order', () => {
    const tasks = [
      task('t10', { slot: 10, node: 'a', state: TASK_STATE_RUNNING, attached: [{ net: BACK, address: '10.0.1.3/24' }, { net: FRONT, address: '10.0.0.11/24' }] }),
      task('t2', { slot: 2, node: 'b', state: TASK_STATE_PENDING, attached: [{ net: FRONT, address: '10.0.0.3/24' }] }),
      task('t3', { slot: 3, node: 'b', state: TASK_STATE_RUNNING, desired: TASK_STATE_SHUTDOWN, attached: [{ net: FRONT, address: '10.0.0.4/24' }] }),
      task('t4', { slot: 4, node: 'a', state: TASK_STATE_FAILED, attached: [{ net: FRONT, address: '10.0.0.5/24' }] }),
      task('g', { service: 'agent', node: 'node-a', state: TASK_STATE_RUNNING, attached: [{ net: FRONT, address: '10.0.0.6/24' }] }),
    ];
    expect(networkEndpoints(FRONT, tasks)).toEqual([
      { taskId: 'g', taskName: 'agent.node-a', nodeId: 'node-a', address: '10.0.0.6/24', mac: '02:42:10.0.0.6/24', containerId: '' },
      { taskId: 't2', taskName: 'web.2', nodeId: 'b', address: '10.0.0.3/24', mac: '02:42:10.0.0.3/24', containerId: '' },
      { taskId: 't10', taskName: 'web.10', nodeId: 'a', address: '10.0.0.11/24', mac: '02:42:10.0.0.11/24', containerId: '' },
    ]);
  });
});

describe('planAllocation', () => {
  const now = new Date('2025-01-01T01:00:00.000Z');
  const at = now.toISOString();

  test('tasks without networks go to PENDING as they are', () => {
    const t = task('t1', { slot: 1 });
    const plan = planAllocation([t], ALL, now);
    expect(plan.allocated).toBe(1);
    expect(plan.changes).toEqual([{ before: t, after: { ...t, status: { ...t.status!, state: TASK_STATE_PENDING, message: 'pending task scheduling', timestamp: at } } }]);
  });

  test('tasks on networks get their attachments, oldest first, around addresses in use', () => {
    const running = task('old', { slot: 9, state: TASK_STATE_RUNNING, attached: [{ net: FRONT, address: '10.0.0.2/24' }] });
    const younger = task('b', { slot: 2, refs: ['front', 'back'], created: 5 });
    const older = task('a', { slot: 1, refs: ['front'], created: 1 });
    const plan = planAllocation([running, younger, older], ALL, now);
    expect(plan.failed).toEqual([]);
    expect(plan.changes.map((c) => [c.after.id, c.after.status!.state, c.after.networks.map((n) => `${n.networkName}=${n.address}`)])).toEqual([
      ['a', TASK_STATE_PENDING, ['front=10.0.0.3/24']],
      ['b', TASK_STATE_PENDING, ['front=10.0.0.4/24', 'back=10.0.1.2/24']],
    ]);
    expect(plan.changes[1].after.networks[1]).toMatchObject({ networkId: 'beef2222', driver: 'overlay', mac: '02:42:0a:00:01:02', gateway: '10.0.1.1', vni: 4097 });
  });

  test('a task that cannot get its addresses stays NEW and says why, once', () => {
    const tiny = network('tiny1', 'tiny', 'overlay', '10.9.0.0/30');
    const holder = task('h', { slot: 1, state: TASK_STATE_RUNNING, attached: [{ net: tiny, address: '10.9.0.2/30' }] });
    const waiting = task('w', { slot: 2, refs: ['tiny'] });
    const plan = planAllocation([holder, waiting], [tiny], now);
    const message = 'network tiny: no free address in 10.9.0.0/30 (2 in use)'; // the gateway and the holder's
    expect(plan).toEqual({ allocated: 0, failed: [{ taskId: 'w', message }], changes: [{ before: waiting, after: { ...waiting, status: { ...waiting.status!, message, timestamp: at } } }] });
    const again = planAllocation([holder, { ...waiting, status: { ...waiting.status!, message } }], [tiny], now);
    expect(again.changes).toEqual([]);
    expect(again.failed).toEqual([{ taskId: 'w', message }]);
  });

  test('a network that does not exist (yet) keeps the task NEW', () => {
    const plan = planAllocation([task('w', { refs: ['later'] })], ALL, now);
    expect(plan.changes[0].after.status).toMatchObject({ state: TASK_STATE_NEW, message: 'network later not found' });
  });

  test('tasks not NEW, or not meant to run, are left alone', () => {
    const tasks = [task('p', { state: TASK_STATE_PENDING, refs: ['front'] }), task('s', { desired: TASK_STATE_SHUTDOWN, refs: ['front'] })];
    expect(planAllocation(tasks, ALL, now)).toEqual({ changes: [], allocated: 0, failed: [] });
  });

  test('host gives an attachment with no address', () => {
    const plan = planAllocation([task('t', { refs: ['host'] })], ALL, now);
    expect(plan.changes[0].after.networks).toEqual([expect.objectContaining({ networkName: 'host', driver: 'host', address: '', mac: '' })]);
  });
});

describe('service flags for networks', () => {
  test('create keeps --network in order, as written', () => {
    const spec = specFromCreateFlags({ name: 'web', network: ['front', 'beef2222'] }, 'exec:/', ['sleep', '1']);
    expect(spec.task?.networks).toEqual(['front', 'beef2222']);
    expect(specFromCreateFlags({ name: 'web' }, 'exec:/', ['sleep', '1']).task?.networks).toEqual([]);
  });

  test('update adds and removes, and leaves them alone otherwise', () => {
    const current = specFromCreateFlags({ name: 'web', network: ['a', 'b'] }, 'exec:/', ['sleep', '1']);
    expect(specFromUpdateFlags(current, { networkAdd: ['c', 'a'], networkRm: ['a'] }).task?.networks).toEqual(['b', 'c', 'a']);
    expect(specFromUpdateFlags(current, { replicas: '3' }).task?.networks).toEqual(['a', 'b']);
    expect(specFromUpdateFlags(current, { network: ['z'] } as never).task?.networks).toEqual(['a', 'b']);
  });

  test('a network left takes the service\'s aliases there with it', () => {
    const created = specFromCreateFlags({ name: 'web', network: ['a', 'b'] }, 'exec:/', ['sleep', '1']);
    const current = { ...created, task: { ...created.task!, networkAliases: [{ network: 'a', aliases: ['web'] }, { network: 'b', aliases: ['web', 'w'] }] } };
    expect(specFromUpdateFlags(current, { networkRm: ['a'] }).task?.networkAliases).toEqual([{ network: 'b', aliases: ['web', 'w'] }]);
    expect(specFromUpdateFlags(current, { replicas: '3' }).task?.networkAliases).toEqual(current.task.networkAliases);
  });

  test.each([
    [['a'], ['c'], [], ['a', 'c']],
    [['a', 'b'], ['b'], [], ['a', 'b']],
    [['a', 'b'], [], ['a'], ['b']],
    [['a', 'b'], ['d', 'c'], ['a', 'b'], ['d', 'c']],
  ])('planNetworkChange(%j, add %j, rm %j)', (current, add, rm, expected) => {
    expect(planNetworkChange(current, add, rm)).toEqual(expected);
  });

  test('removing a network the service is not on is refused', () => {
    const err = thrown(() => planNetworkChange(['a', 'b'], [], ['c']));
    expect([err.kind, err.message]).toEqual(['InvalidArgument', '--network-rm c: the service is not on network c (its networks: a, b)']);
    expect(thrown(() => planNetworkChange([], [], ['c'])).message).toBe('--network-rm c: the service is not on network c (it has none)');
  });
});

describe('network create flags and output', () => {
  test('flags become a spec; the driver left for the manager when not given', () => {
    expect(
      networkSpecFromFlags('front', { driver: 'overlay', subnet: '10.5.0.0/24', gateway: '10.5.0.254', ipRange: '10.5.0.128/25', attachable: true, internal: true, opt: ['mtu=1400'], label: ['team=web', 'x'] }),
    ).toEqual({
      name: 'front',
      driver: 'overlay',
      ipam: { subnet: '10.5.0.0/24', gateway: '10.5.0.254', ipRange: '10.5.0.128/25' },
      attachable: true,
      internal: true,
      options: { mtu: '1400' },
      labels: { team: 'web', x: '' },
    });
    expect(networkSpecFromFlags('n', {})).toMatchObject({ driver: '', ipam: { subnet: '', gateway: '', ipRange: '' }, options: {}, labels: {} });
  });

  test.each([
    [{ opt: ['mtu'] }, 'invalid --opt "mtu": expected KEY=VALUE'],
    [{ opt: ['=1'] }, 'invalid --opt "=1": expected KEY=VALUE'],
    [{ label: ['=x'] }, 'invalid --label "=x": expected KEY=VALUE or KEY'],
  ])('refuses %j', (flags, message) => {
    expect(thrown(() => networkSpecFromFlags('n', flags)).message).toBe(message);
  });

  test('ls rows: short id, name, driver, scope (local for bridge, host and none, as in docker), subnet', () => {
    const id = 'f00d1111222233334444';
    expect(networkRows([{ ...FRONT, id }, HOST, BRIDGE])).toEqual([
      ['f00d11112222', 'front', 'overlay', 'swarm', '10.0.0.0/24'],
      ['h1', 'host', 'host', 'local', ''],
      ['b1', 'bridge', 'bridge', 'local', '172.17.0.0/16'],
    ]);
    expect(networkRows([{ ...FRONT, id }], true)[0][0]).toBe(id);
  });

  test('inspect: the network\'s fields and its endpoints', () => {
    const endpoints = [{ taskId: 't', taskName: 'web.1', nodeId: 'a', address: '10.0.0.2/24', mac: '02:42:0a:00:00:02', containerId: '' }];
    expect(networkJson({ network: FRONT, endpoints })).toMatchObject({ id: 'f00d1111', spec: { name: 'front', driver: 'overlay' }, subnet: '10.0.0.0/24', vni: 4096, endpoints, Containers: {} });
  });

  test("inspect: docker's Containers map of the containers on the network, by container id", () => {
    const endpoints = [
      { taskId: 't', taskName: 'web.1', nodeId: 'a', address: '10.0.0.2/24', mac: '02:42:0a:00:00:02', containerId: '' },
      { taskId: 'att1', taskName: 'alpine1', nodeId: 'a', address: '10.0.0.3/24', mac: '02:42:0a:00:00:03', containerId: 'c0ffee' },
    ];
    expect((networkJson({ network: FRONT, endpoints }) as { Containers: unknown }).Containers).toEqual({
      c0ffee: { Name: 'alpine1', EndpointID: 'att1', MacAddress: '02:42:0a:00:00:03', IPv4Address: '10.0.0.3/24', IPv6Address: '' },
    });
  });

  test("inspect, docker's way: docker's keys and words, the containers on it, the overlay's VNI in Options", () => {
    const endpoints = [
      { taskId: 't', taskName: 'web.1', nodeId: 'a', address: '10.0.0.2/24', mac: '02:42:0a:00:00:02', containerId: '' },
      { taskId: 'att1', taskName: 'alpine1', nodeId: 'a', address: '10.0.0.3/24', mac: '02:42:0a:00:00:03', containerId: 'c0ffee' },
    ];
    const front = { ...FRONT, meta: { version: 3, createdAt: '2026-12-05T10:00:00Z', updatedAt: '' }, spec: { ...FRONT.spec!, attachable: true, labels: { team: 'a' } } };
    expect(networkInspect({ network: front, endpoints })).toEqual({
      Name: 'front',
      Id: 'f00d1111',
      Created: '2026-12-05T10:00:00Z',
      Scope: 'swarm',
      Driver: 'overlay',
      EnableIPv6: false,
      IPAM: { Driver: 'default', Options: {}, Config: [{ Subnet: '10.0.0.0/24', Gateway: '10.0.0.1' }] },
      Internal: false,
      Attachable: true,
      Ingress: false,
      ConfigFrom: { Network: '' },
      ConfigOnly: false,
      Containers: { c0ffee: { Name: 'alpine1', EndpointID: 'att1', MacAddress: '02:42:0a:00:00:03', IPv4Address: '10.0.0.3/24', IPv6Address: '' } },
      Options: { 'com.docker.network.driver.overlay.vxlanid_list': '4096' },
      Labels: { team: 'a' },
    });
    expect(networkInspect({ network: BRIDGE, endpoints: [] })).toMatchObject({ Name: 'bridge', Scope: 'local', Driver: 'bridge', IPAM: { Config: [{ Subnet: '172.17.0.0/16', Gateway: '172.17.0.1' }] }, Options: {} });
    expect(networkInspect({ network: HOST, endpoints: [] })).toMatchObject({ Name: 'host', Driver: 'host', IPAM: { Config: [] } });
    expect(networkInspect({ network: network('i1', 'ingress'), endpoints: [] })).toMatchObject({ Ingress: true, Scope: 'swarm' });
    expect(networkInspect({ network: MACVLAN, endpoints: [] })).toMatchObject({ Scope: 'local', Driver: 'macvlan' });
  });
});

describe('planProgress: tasks that cannot be allocated', () => {
  const svc: Service = { ...service('web', ['tiny']), updateStatus: { state: UpdateState.UPDATE_STATE_COMPLETED, startedAt: '', completedAt: '', message: '', lastBatchAt: '', failures: 0 } };
  const message = 'network tiny: no free address in 10.9.0.0/30 (1 in use)';

  test('shown at once, failed after 5 s', () => {
    const tasks = [task('t1', { slot: 1, state: TASK_STATE_NEW, message })];
    const since = new Map<string, number>();
    const first = planProgress(svc, tasks, '', since, 1000);
    expect(first.failed).toBeUndefined();
    expect(first.lines).toContain(`1/1: new (${message})`);
    expect(planProgress(svc, tasks, '', since, 5000).failed).toBeUndefined();
    expect(planProgress(svc, tasks, '', since, 6500).failed).toBe(`task web.1 cannot be allocated: ${message}`);
  });

  test('a NEW task with another message is just new', () => {
    const since = new Map<string, number>();
    const tasks = [task('t1', { slot: 1, state: TASK_STATE_NEW, message: 'created' })];
    planProgress(svc, tasks, '', since, 0);
    const later = planProgress(svc, tasks, '', since, 10000);
    expect(later.failed).toBeUndefined();
    expect(later.lines).toContain('1/1: new');
  });
});
