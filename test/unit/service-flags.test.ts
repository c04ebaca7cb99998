import { attachDashValues, separateCommand, shellWords } from '../../cli/argv';
import { parseBytes, parseCpus, specFromCreateFlags, specFromUpdateFlags } from '../../cli/service-flags';
import { RestartCondition, UpdateFailureAction, UpdateOrder } from '../../services/gen/swarmlet/v1/types';

const BOOL = new Set(['-d', '--detach', '--no-healthcheck']);

describe('separateCommand', () => {
  test.each([
    [['service', 'create', '--name', 'web', 'exec:/', 'sh', '-c', 'echo -x'], ['service', 'create', '--name', 'web', 'exec:/'], ['sh', '-c', 'echo -x']],
    [['-H', 'unix:///s', 'service', 'create', '-d', '--name=web', 'exec:/', 'sleep', '9'], ['-H', 'unix:///s', 'service', 'create', '-d', '--name=web', 'exec:/'], ['sleep', '9']],
    [['service', 'create', '-e', 'A=1', '--', 'exec:/', '--weird'], ['service', 'create', '-e', 'A=1', 'exec:/'], ['--weird']],
    [['service', 'create', '--name', 'web'], ['service', 'create', '--name', 'web'], []],
    [['service', 'ls', '-q'], ['service', 'ls', '-q'], []],
  ])('%j', (args, parsed, command) => {
    expect(separateCommand(args, ['service', 'create'], BOOL)).toEqual({ args: parsed, command });
  });

  test.each([
    [['exec', '-it', 'web.1.abc', 'sh', '-l'], ['exec', '-it', 'web.1.abc'], ['sh', '-l']],
    [['exec', '-i', '-t', '-e', 'A=1', '-u', 'nobody', 'abc', 'ls', '-la'], ['exec', '-i', '-t', '-e', 'A=1', '-u', 'nobody', 'abc'], ['ls', '-la']],
    // -ix is not two boolean flags: it takes the next word as its value.
    [['exec', '-ix', 'v', 'abc', 'ls'], ['exec', '-ix', 'v', 'abc'], ['ls']],
  ])('short boolean flags together: %j', (args, parsed, command) => {
    expect(separateCommand(args, ['exec'], new Set(['-i', '-t', '-d']))).toEqual({ args: parsed, command });
  });
});

describe('attachDashValues: a value starting with - stays the value of its flag, as in docker', () => {
  test.each([
    [['service', 'create', '-p', '-1:80', 'exec:/'], ['service', 'create', '-p=-1:80', 'exec:/']],
    [['service', 'create', '--limit-memory', '-5M', '--name', 'x'], ['service', 'create', '--limit-memory=-5M', '--name', 'x']],
    [['service', 'update', '--limit-cpu', '-.5', 'web'], ['service', 'update', '--limit-cpu=-.5', 'web']],
    [['service', 'scale', '--detach', '-1'], ['service', 'scale', '--detach', '-1']],
    [['service', 'create', '--name', 'x', '-d', 'exec:/'], ['service', 'create', '--name', 'x', '-d', 'exec:/']],
    [['service', 'logs', '--', '--tail', '-5'], ['service', 'logs', '--', '--tail', '-5']],
  ])('%j', (args, out) => expect(attachDashValues(args, BOOL)).toEqual(out));
});

test.each([
  ['sh -c "echo hi"', ['sh', '-c', 'echo hi']],
  ["a 'b c' d\\ e", ['a', 'b c', 'd e']],
  ['  ', []],
  ['x ""', ['x', '']],
])('shellWords(%j)', (line, words) => expect(shellWords(line)).toEqual(words));
test('shellWords refuses an open quote', () => expect(() => shellWords('a "b')).toThrow(/unterminated/));

test.each([
  ['64m', 64 * 1024 * 1024],
  ['1g', 1024 ** 3],
  ['512k', 512 * 1024],
  ['1000', 1000],
  ['1.5m', 1.5 * 1024 * 1024],
])('parseBytes(%s)', (text, bytes) => expect(parseBytes(text, '--x')).toBe(bytes));
test.each(['', 'm', '64q', '-1m'])('parseBytes refuses %j', (text) => expect(() => parseBytes(text, '--limit-memory')).toThrow(/invalid --limit-memory/));
test('parseCpus', () => {
  expect(parseCpus('0.5', '--x')).toBe(5e8);
  expect(parseCpus('.5', '--x')).toBe(5e8);
  expect(parseCpus('2', '--x')).toBe(2e9);
  expect(parseCpus('1.', '--x')).toBe(1e9);
  expect(parseCpus('.25', '--reserve-cpu')).toBe(2.5e8);
  expect(() => parseCpus('-1', '--limit-cpu')).toThrow(/invalid --limit-cpu "-1"/);
  expect(() => parseCpus('.', '--limit-cpu')).toThrow(/invalid --limit-cpu/);
  expect(() => parseCpus('0', '--limit-cpu')).toThrow(/invalid --limit-cpu/);
  expect(() => parseCpus('half', '--limit-cpu')).toThrow(/invalid --limit-cpu/);
});

describe('specFromCreateFlags', () => {
  test('maps docker flags onto the spec', () => {
    const spec = specFromCreateFlags(
      {
        name: 'web',
        replicas: '6',
        constraint: ['node.role==worker'],
        limitMemory: '64m',
        limitCpu: '0.5',
        reserveMemory: '32m',
        env: ['A=1'],
        workdir: '/tmp',
        user: 'nobody',
        hostname: 'h',
        restartCondition: 'on-failure',
        restartDelay: '2s',
        restartMaxAttempts: '3',
        updateParallelism: '2',
        updateFailureAction: 'rollback',
        updateOrder: 'start-first',
        updateMonitor: '3s',
        healthCmd: 'true',
        healthInterval: '1s',
        healthRetries: '2',
        stopGracePeriod: '3s',
      },
      'exec:/',
      ['sleep', '100'],
    );
    expect(spec.name).toBe('web');
    expect(spec.mode).toEqual({ $case: 'replicated', value: { replicas: 6 } });
    expect(spec.task!.container).toMatchObject({ image: 'exec:/', args: ['sleep', '100'], env: ['A=1'], dir: '/tmp', user: 'nobody', hostname: 'h', stopGracePeriodMs: 3000 });
    expect(spec.task!.container!.healthcheck).toMatchObject({ test: ['CMD-SHELL', 'true'], intervalMs: 1000, retries: 2 });
    expect(spec.task!.resources).toEqual({ limits: { nanoCpus: 5e8, memoryBytes: 64 * 1024 * 1024, pids: 0 }, reservations: { nanoCpus: 0, memoryBytes: 32 * 1024 * 1024, pids: 0 } });
    expect(spec.task!.restart).toMatchObject({ condition: RestartCondition.RESTART_CONDITION_ON_FAILURE, delayMs: 2000, maxAttempts: 3 });
    expect(spec.task!.placement).toEqual({ constraints: ['node.role==worker'] });
    expect(spec.update).toMatchObject({ parallelism: 2, failureAction: UpdateFailureAction.UPDATE_FAILURE_ACTION_ROLLBACK, order: UpdateOrder.UPDATE_ORDER_START_FIRST, monitorMs: 3000 });
  });

  test.each([
    [{ replicas: '-1' }, /invalid --replicas/],
    [{ replicas: 'two' }, /invalid --replicas/],
    [{ mode: 'sideways' }, /invalid --mode/],
    [{ mode: 'global', replicas: '2' }, /--replicas applies to replicated services only/],
    [{ restartCondition: 'sometimes' }, /invalid --restart-condition/],
    [{ updateOrder: 'random' }, /invalid --update-order/],
    [{ updateMaxFailureRatio: '2' }, /invalid --update-max-failure-ratio/],
    [{ restartDelay: 'soon' }, /invalid --restart-delay/],
    [{ noHealthcheck: true, healthCmd: 'true' }, /conflicts/],
  ])('refuses %j', (flags, message) => {
    expect(() => specFromCreateFlags({ name: 'web', ...flags }, 'exec:/', ['true'])).toThrow(message);
  });
});

describe('specFromUpdateFlags', () => {
  const current = specFromCreateFlags({ name: 'web', replicas: '3', env: ['A=1', 'B=2'], constraint: ['node.role==worker'] }, 'exec:/', ['sleep', '1']);

  test('--tty and --interactive set and clear the task\'s pty and open stdin (docker\'s -t, -i)', () => {
    const created = specFromCreateFlags({ name: 'sh', tty: true, interactive: true }, 'busybox', ['ash']);
    expect(created.task!.container).toMatchObject({ tty: true, openStdin: true });
    expect(specFromUpdateFlags(created, { replicas: '2' }).task!.container).toMatchObject({ tty: true, openStdin: true });
    expect(specFromUpdateFlags(created, { tty: false }).task!.container).toMatchObject({ tty: false, openStdin: true });
  });

  test('changes only what is given', () => {
    const next = specFromUpdateFlags(current, { replicas: '5' });
    expect(next.mode).toEqual({ $case: 'replicated', value: { replicas: 5 } });
    expect(next.task).toEqual(current.task);
  });

  test('env and constraints add and remove; args replace; force bumps', () => {
    const next = specFromUpdateFlags(current, { envAdd: ['B=3', 'C=4'], envRm: ['A'], constraintAdd: ['node.labels.zone==a'], constraintRm: ['node.role==worker'], args: ['sleep', '2'], force: true });
    expect(next.task!.container!.env).toEqual(['B=3', 'C=4']);
    expect(next.task!.placement!.constraints).toEqual(['node.labels.zone==a']);
    expect(next.task!.container!.args).toEqual(['sleep', '2']);
    expect(next.task!.forceUpdate).toBe(1);
    expect(current.task!.container!.env).toEqual(['A=1', 'B=2']);
  });

  test('mode cannot change', () => expect(() => specFromUpdateFlags(current, { mode: 'global' })).toThrow(/mode can't be changed/));
});

describe('--limit-pids', () => {
  test('sets the pids limit beside the others, and update keeps them', () => {
    const spec = specFromCreateFlags({ limitMemory: '64m', limitPids: '100' }, 'registry.lab:5000/busybox', []);
    expect(spec.task!.resources!.limits).toEqual({ nanoCpus: 0, memoryBytes: 64 * 1024 * 1024, pids: 100 });
    expect(specFromUpdateFlags(spec, { limitPids: '0' }).task!.resources!.limits).toEqual({ nanoCpus: 0, memoryBytes: 64 * 1024 * 1024, pids: 0 });
  });
  test.each(['-1', 'many', '1.5'])('refuses %j', (v) => expect(() => specFromCreateFlags({ limitPids: v }, 'busybox', [])).toThrow(/invalid --limit-pids/));
});
