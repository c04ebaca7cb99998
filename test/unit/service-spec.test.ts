import { SwarmletError } from '../../services/common/errors';
import {
  Node,
  NodeAvailability,
  NodeRole,
  NodeState,
  RestartCondition,
  RestartPolicy,
  ServiceSpec,
  UpdateConfig,
  UpdateFailureAction,
  UpdateOrder,
} from '../../services/gen/swarmlet/v1/types';
import { MAX_SPEC_BYTES, SERVICE_DEFAULTS, matchConstraints, parseConstraint, validateServiceSpec } from '../../manager/orchestrator/service-spec';

const MiB = 1024 * 1024;

function spec(over: Partial<ServiceSpec> = {}, container: Record<string, unknown> = {}): ServiceSpec {
  return {
    name: 'web',
    labels: {},
    task: {
      container: { image: 'exec:/', command: ['sleep', '1000'], args: [], env: [], dir: '', user: '', hostname: '', stopGracePeriodMs: 0, ...container },
      forceUpdate: 0,
    },
    mode: { $case: 'replicated', value: { replicas: 3 } },
    ...over,
  } as ServiceSpec;
}

function refusal(fn: () => unknown): SwarmletError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SwarmletError);
    expect((err as SwarmletError).kind).toBe('InvalidArgument');
    return err as SwarmletError;
  }
  throw new Error('expected an InvalidArgument error, nothing was thrown');
}

describe('validateServiceSpec: refusals', () => {
  const task = (t: Record<string, unknown>) => ({ ...spec().task!, ...t });
  const cases: [string, ServiceSpec, RegExp][] = [
    ['empty name', spec({ name: '' }), /name is required/],
    ['uppercase name', spec({ name: 'Web' }), /invalid service name "Web"/],
    ['name starting with -', spec({ name: '-web' }), /invalid service name/],
    ['name ending with -', spec({ name: 'web-' }), /invalid service name/],
    ['name ending with _', spec({ name: 'web_' }), /invalid service name/],
    ['name with .', spec({ name: 'my.web' }), /invalid service name/],
    ['negative CPU limit', spec({ task: task({ resources: { limits: { nanoCpus: -5e8, memoryBytes: 0, pids: 0 } } }) }), /invalid CPU limit -500000000/],
    ['CPU limit beyond 1024', spec({ task: task({ resources: { limits: { nanoCpus: 1e6 * 1e9, memoryBytes: 0, pids: 0 } } }) }), /a CPU limit of 1000000 is too large: the most is 1024 CPUs/],
    ['CPU reservation beyond 1024', spec({ task: task({ resources: { reservations: { nanoCpus: 2000 * 1e9, memoryBytes: 0, pids: 0 } } }) }), /a CPU reservation of 2000 is too large/],
    ['negative memory reservation', spec({ task: task({ resources: { reservations: { nanoCpus: 0, memoryBytes: -5 * MiB, pids: 0 } } }) }), /invalid memory reservation/],
    ['memory limit beyond 16TiB', spec({ task: task({ resources: { limits: { nanoCpus: 0, memoryBytes: 17 * 1024 ** 4, pids: 0 } } }) }), /memory limit of \d+ bytes is too large: the most is 16TiB/],
    ['pids limit beyond pid_max', spec({ task: task({ resources: { limits: { nanoCpus: 0, memoryBytes: 0, pids: 5_000_000 } } }) }), /pids limit of 5000000 is too large/],
    ['name of 64 characters', spec({ name: 'a'.repeat(64) }), /1 to 63/],
    ['no image', spec({}, { image: '' }), /an image is required: use an image reference \(busybox, registry:5000\/app:1.0\) or exec:\/ \(the host's filesystem\) or exec:\/path \(a root directory\)/],
    ['a blank image', spec({}, { image: '  ' }), /an image is required/],
    ['an image with whitespace', spec({}, { image: 'nginx latest' }), /invalid image "nginx latest": an image has no whitespace or NUL characters/],
    ['an image with NUL', spec({}, { image: 'nginx\0' }), /no whitespace or NUL/],
    ['relative exec root', spec({}, { image: 'exec:rootfs' }), /not supported/],
    ['exec root with ..', spec({}, { image: 'exec:/srv/../etc' }), /unclean path/],
    ['too many replicas', spec({ mode: { $case: 'replicated', value: { replicas: 10001 } } }), /10001 replicas is too many: a service runs at most 10000/],
    ['fractional replicas', spec({ mode: { $case: 'replicated', value: { replicas: 1.5 } } }), /invalid replicas 1.5/],
    ['NaN replicas', spec({ mode: { $case: 'replicated', value: { replicas: NaN } } }), /invalid replicas NaN/],
    ['constraint with one =', spec({ task: task({ placement: { constraints: ['node.role=manager'] } }) }), /invalid constraint "node.role=manager"/],
    ['constraint on an unknown key', spec({ task: task({ placement: { constraints: ['engine.os==linux'] } }) }), /unknown key "engine.os"/],
    ['constraint without value', spec({ task: task({ placement: { constraints: ['node.hostname=='] } }) }), /the value is missing/],
    ['constraint on a bad role', spec({ task: task({ placement: { constraints: ['node.role==boss'] } }) }), /either manager or worker/],
    ['env without =', spec({}, { env: ['FOO'] }), /invalid environment entry "FOO": write it as KEY=VALUE/],
    ['env without a name', spec({}, { env: ['=1'] }), /variable name is missing/],
    ['relative working directory', spec({}, { dir: 'srv' }), /must be an absolute path/],
    ['memory limit under 4MiB', spec({ task: task({ resources: { limits: { nanoCpus: 0, memoryBytes: 4 * MiB - 1 } } }) }), /too small: the least is 4MiB/],
    [
      'memory reservation over the limit',
      spec({ task: task({ resources: { limits: { nanoCpus: 0, memoryBytes: 64 * MiB }, reservations: { nanoCpus: 0, memoryBytes: 65 * MiB } } }) }),
      /memory reservation .* is larger than the memory limit/,
    ],
    [
      'CPU reservation over the limit',
      spec({ task: task({ resources: { limits: { nanoCpus: 5e8, memoryBytes: 0 }, reservations: { nanoCpus: 1e9, memoryBytes: 0 } } }) }),
      /CPU reservation \(1\) is larger than the CPU limit \(0.5\)/,
    ],
    ['negative memory', spec({ task: task({ resources: { limits: { nanoCpus: 0, memoryBytes: -1 } } }) }), /invalid memory limit -1/],
    [
      'negative restart delay',
      spec({ task: task({ restart: { condition: RestartCondition.RESTART_CONDITION_ANY, delayMs: -5, maxAttempts: 0, windowMs: 0 } }) }),
      /invalid restart delay -5/,
    ],
    [
      'NaN restart window',
      spec({ task: task({ restart: { condition: RestartCondition.RESTART_CONDITION_ANY, delayMs: 0, maxAttempts: 0, windowMs: NaN } }) }),
      /invalid restart window NaN/,
    ],
    ['unknown restart condition', spec({ task: task({ restart: { condition: 7 as RestartCondition, delayMs: 0, maxAttempts: 0, windowMs: 0 } }) }), /invalid restart condition 7/],
    ['failure ratio over 1', spec({ update: { ...SERVICE_DEFAULTS.update, maxFailureRatio: 1.5 } }), /invalid update max failure ratio 1.5: use a number from 0 to 1/],
    ['negative failure ratio', spec({ rollback: { ...SERVICE_DEFAULTS.rollback, maxFailureRatio: -0.1 } }), /invalid rollback max failure ratio/],
    ['fractional parallelism', spec({ update: { ...SERVICE_DEFAULTS.update, parallelism: 0.5 } }), /invalid update parallelism 0.5/],
    ['negative monitor', spec({ update: { ...SERVICE_DEFAULTS.update, monitorMs: -1 } }), /invalid update monitor -1/],
    ['unknown failure action', spec({ update: { ...SERVICE_DEFAULTS.update, failureAction: 9 as UpdateFailureAction } }), /invalid update failure action 9/],
    ['unknown update order', spec({ update: { ...SERVICE_DEFAULTS.update, order: 3 as UpdateOrder } }), /invalid update order 3/],
    ['bad health check kind', spec({}, { healthcheck: { test: ['curl', 'x'], intervalMs: 0, timeoutMs: 0, retries: 0, startPeriodMs: 0 } }), /invalid health check "curl"/],
  ];
  test.each(cases)('%s', (_name, input, message) => {
    expect(refusal(() => validateServiceSpec(input)).message).toMatch(message);
  });

  test('a spec larger than 256 KiB is refused with the limit and why; one just under it is accepted', () => {
    const big = (n: number) => spec({}, { env: [`CONFIG=${'x'.repeat(n)}`] });
    const { message } = refusal(() => validateServiceSpec(big(MAX_SPEC_BYTES)));
    expect(message).toMatch(/^the service spec is too large \(257 KiB\): the most is 256 KiB, because every task carries a copy of it/);
    expect(validateServiceSpec(big(MAX_SPEC_BYTES - 2048)).task?.container?.env?.[0]).toHaveLength(MAX_SPEC_BYTES - 2048 + 'CONFIG='.length);
  });

  test('every refusal is one sentence on one line', () => {
    for (const [, input] of cases) {
      const { message } = refusal(() => validateServiceSpec(input));
      expect(message).not.toMatch(/\n/);
      expect(message.length).toBeLessThan(200);
    }
  });
});

describe('validateServiceSpec: defaults', () => {
  test('a bare spec gets docker defaults', () => {
    const out = validateServiceSpec(spec({ mode: undefined }));
    expect(out.mode).toEqual({ $case: 'replicated', value: { replicas: 1 } });
    expect(out.task?.restart).toEqual({ condition: RestartCondition.RESTART_CONDITION_ANY, delayMs: 5000, maxAttempts: 0, windowMs: 0 });
    expect(out.task?.container?.stopGracePeriodMs).toBe(10000);
    const stopFirstPause = {
      parallelism: 1,
      delayMs: 0,
      failureAction: UpdateFailureAction.UPDATE_FAILURE_ACTION_PAUSE,
      monitorMs: 5000,
      maxFailureRatio: 0,
      order: UpdateOrder.UPDATE_ORDER_STOP_FIRST,
    };
    expect(out.update).toEqual(stopFirstPause);
    expect(out.rollback).toEqual(stopFirstPause);
    expect(out.task?.placement).toEqual({ constraints: [] });
    expect(out.task?.resources).toEqual({ limits: { nanoCpus: 0, memoryBytes: 0, pids: 0 }, reservations: { nanoCpus: 0, memoryBytes: 0, pids: 0 } });
  });

  // What a client sends when it sets nothing: present but empty messages, through the wire as gRPC carries them.
  const wire = (s: ServiceSpec) => ServiceSpec.decode(ServiceSpec.encode(ServiceSpec.fromPartial(s)).finish());

  test('empty restart, update and rollback messages get every default, field by field', () => {
    const input = spec({ update: UpdateConfig.fromPartial({}), rollback: UpdateConfig.fromPartial({}) });
    input.task = { ...input.task!, restart: RestartPolicy.fromPartial({}) };
    const out = validateServiceSpec(wire(input));
    expect(out.task?.restart).toEqual({ condition: RestartCondition.RESTART_CONDITION_ANY, delayMs: 5000, maxAttempts: 0, windowMs: 0 });
    const defaults = { parallelism: 1, delayMs: 0, failureAction: UpdateFailureAction.UPDATE_FAILURE_ACTION_PAUSE, monitorMs: 5000, maxFailureRatio: 0, order: UpdateOrder.UPDATE_ORDER_STOP_FIRST };
    expect(out.update).toEqual(defaults);
    expect(out.rollback).toEqual(defaults);
  });

  test('a message that sets some fields gets the defaults of the others', () => {
    const input = spec({ update: UpdateConfig.fromPartial({ delayMs: 2000 }), rollback: UpdateConfig.fromPartial({ parallelism: 3 }) });
    input.task = { ...input.task!, restart: RestartPolicy.fromPartial({ maxAttempts: 2 }) };
    const out = validateServiceSpec(wire(input));
    expect(out.task?.restart).toMatchObject({ delayMs: 5000, maxAttempts: 2 });
    expect(out.update).toMatchObject({ parallelism: 1, delayMs: 2000, monitorMs: 5000 });
    expect(out.rollback).toMatchObject({ parallelism: 3, monitorMs: 5000 });
  });

  test('an explicit 0 survives the wire and stays 0 (parallelism 0: all at once)', () => {
    const input = spec({ update: UpdateConfig.fromPartial({ parallelism: 0, monitorMs: 0 }) });
    input.task = { ...input.task!, restart: RestartPolicy.fromPartial({ delayMs: 0 }) };
    const out = validateServiceSpec(wire(input));
    expect(out.update).toMatchObject({ parallelism: 0, monitorMs: 0 });
    expect(out.task?.restart?.delayMs).toBe(0);
    // And the effective spec, stored and read back, keeps them.
    expect(wire(out).update).toMatchObject({ parallelism: 0, monitorMs: 0 });
    expect(ServiceSpec.fromJSON(ServiceSpec.toJSON(out)).task?.restart?.delayMs).toBe(0);
  });

  test('1024 CPUs and 16TiB are the most a limit may be', () => {
    const out = validateServiceSpec(spec({ task: { ...spec().task!, resources: { limits: { nanoCpus: 1024e9, memoryBytes: 16 * 1024 ** 4, pids: 0 }, reservations: undefined } } }));
    expect(out.task?.resources?.limits).toEqual({ nanoCpus: 1024e9, memoryBytes: 16 * 1024 ** 4, pids: 0 });
  });

  test('a health check gets interval, timeout and retries', () => {
    const out = validateServiceSpec(spec({}, { healthcheck: { test: ['CMD-SHELL', 'true'], intervalMs: 0, timeoutMs: 0, retries: 0, startPeriodMs: 0 } }));
    expect(out.task?.container?.healthcheck).toEqual({ test: ['CMD-SHELL', 'true'], intervalMs: 30000, timeoutMs: 30000, retries: 3, startPeriodMs: 0 });
  });

  test('values the operator gave are kept, zeros included where they mean something', () => {
    const input = spec({
      mode: { $case: 'replicated', value: { replicas: 0 } },
      update: { parallelism: 0, delayMs: 10000, failureAction: UpdateFailureAction.UPDATE_FAILURE_ACTION_ROLLBACK, monitorMs: 0, maxFailureRatio: 0.25, order: UpdateOrder.UPDATE_ORDER_START_FIRST },
      task: {
        ...spec().task!,
        restart: { condition: RestartCondition.RESTART_CONDITION_ON_FAILURE, delayMs: 0, maxAttempts: 3, windowMs: 60000 },
        placement: { constraints: ['node.labels.zone==a', 'node.role!=manager'] },
        resources: { limits: { nanoCpus: 1e9, memoryBytes: 64 * MiB, pids: 0 }, reservations: { nanoCpus: 5e8, memoryBytes: 64 * MiB, pids: 0 } },
      },
    });
    const out = validateServiceSpec(input);
    expect(out.mode).toEqual({ $case: 'replicated', value: { replicas: 0 } });
    expect(out.update).toEqual(input.update);
    expect(out.task?.restart).toEqual(input.task?.restart);
    expect(out.task?.placement?.constraints).toEqual(['node.labels.zone==a', 'node.role!=manager']);
    expect(out.task?.resources).toEqual(input.task?.resources);
  });

  test('global mode, env and the input left untouched', () => {
    const input = spec({ mode: { $case: 'global', value: {} } }, { env: ['A=1', 'B=x=y', 'C='] });
    const before = JSON.stringify(input);
    const out = validateServiceSpec(input);
    expect(out.mode).toEqual({ $case: 'global', value: {} });
    expect(out.task?.container?.env).toEqual(['A=1', 'B=x=y', 'C=']);
    expect(JSON.stringify(input)).toBe(before);
  });

  test.each(['exec:/', 'exec:/srv/rootfs', 'exec:/var/lib/swarmlet/roots/alpine'])('image %s is accepted', (image) => {
    expect(validateServiceSpec(spec({}, { image })).task?.container?.image).toBe(image);
  });

  // The node parses OCI references strictly; the manager passes even a malformed one (the task is rejected with the reason).
  test.each(['busybox', 'nginx:alpine', '198.51.100.200:5000/busybox:latest', 'Bad:Ref!!'])('OCI image %s is accepted, with no command', (image) => {
    expect(validateServiceSpec(spec({}, { image, command: [] })).task?.container?.image).toBe(image);
  });

  test.each(['a', 'web', 'web-1', '0abc', 'a'.repeat(63), 'my_nginx', 'a_-_b'])('name %s is accepted', (name) => {
    expect(validateServiceSpec(spec({ name })).name).toBe(name);
  });
});

describe('constraints', () => {
  test.each([
    ['node.role==manager', { key: 'node.role', op: '==', value: 'manager' }],
    [' node.hostname != lab-2 ', { key: 'node.hostname', op: '!=', value: 'lab-2' }],
    ['node.labels.zone==eu-1', { key: 'node.labels.zone', op: '==', value: 'eu-1' }],
    ['NODE.ID==abc', { key: 'node.id', op: '==', value: 'abc' }],
    ['node.labels.Disk.Type!=ssd', { key: 'node.labels.Disk.Type', op: '!=', value: 'ssd' }],
  ])('parseConstraint(%j)', (text, parsed) => {
    expect(parseConstraint(text)).toEqual(parsed);
  });

  test.each(['', 'node.role', 'node.role=manager', '==x', 'node.labels.==x', 'node.labels.a==b==c', 'node.id<>x'])('parseConstraint(%j) is refused', (text) => {
    refusal(() => parseConstraint(text));
  });

  const node: Node = Node.fromPartial({
    id: 'n1',
    role: NodeRole.NODE_ROLE_MANAGER,
    spec: { desiredRole: NodeRole.NODE_ROLE_MANAGER, availability: NodeAvailability.NODE_AVAILABILITY_ACTIVE, labels: { zone: 'eu-1', ssd: 'true' } },
    description: { hostname: 'lab-1', os: 'linux', arch: 'x64', engineVersion: '0' },
    status: { state: NodeState.NODE_STATE_READY },
  });
  test.each<[string[], boolean]>([
    [[], true],
    [['node.id==n1'], true],
    [['node.id!=n1'], false],
    [['node.hostname==lab-1'], true],
    [['node.hostname==LAB-1'], true],
    [['node.role==manager'], true],
    [['node.role==worker'], false],
    [['node.role!=worker'], true],
    [['node.labels.zone==eu-1'], true],
    [['node.labels.zone==eu-2'], false],
    [['node.labels.zone!=eu-2'], true],
    [['node.labels.rack==r1'], false],
    [['node.labels.rack!=r1'], true],
    [['node.labels.Zone==eu-1'], false],
    [['node.labels.zone==eu-1', 'node.role==worker'], false],
    [['node.labels.zone==eu-1', 'node.labels.ssd==true'], true],
  ])('matchConstraints(%j) on a manager in eu-1', (constraints, expected) => {
    expect(matchConstraints(node, constraints)).toBe(expected);
    expect(matchConstraints(node, constraints.map(parseConstraint))).toBe(expected);
  });

  test('a worker with no labels', () => {
    const worker: Node = { ...node, role: NodeRole.NODE_ROLE_WORKER, spec: undefined };
    expect(matchConstraints(worker, ['node.role==worker', 'node.labels.zone!=eu-1'])).toBe(true);
    expect(matchConstraints(worker, ['node.labels.zone==eu-1'])).toBe(false);
  });
});

test('network aliases are kept for the task\'s own networks; others, and empty or spaced names, are refused', () => {
  const withAliases = (networkAliases: { network: string; aliases: string[] }[]) => {
    const s = spec();
    return { ...s, task: { ...s.task!, networks: ['app_default'], networkAliases } } as ServiceSpec;
  };
  expect(validateServiceSpec(withAliases([{ network: 'app_default', aliases: ['web', 'www', 'web'] }])).task?.networkAliases).toEqual([{ network: 'app_default', aliases: ['web', 'www'] }]);
  expect(validateServiceSpec(spec()).task?.networkAliases).toEqual([]);
  expect(refusal(() => validateServiceSpec(withAliases([{ network: 'other', aliases: ['x'] }]))).message).toBe('network aliases of "other": the service is not attached to that network');
  expect(refusal(() => validateServiceSpec(withAliases([{ network: 'app_default', aliases: ['a b'] }]))).message).toBe('invalid network alias "a b"');
  expect(refusal(() => validateServiceSpec(withAliases([{ network: 'app_default', aliases: [''] }]))).message).toBe('invalid network alias ""');
  expect(refusal(() => validateServiceSpec(withAliases([{ network: 'app_default', aliases: ['a\x01'] }]))).message).toBe('invalid network alias "a\\u0001"');
});
