import { checkTerminalSize, isPtySlave, planExecEnv, planExitCode, planScriptArgv, shellJoin, shellQuote } from '../../agent/runtime/terminal-plans';
import { planTerminalTarget, taskContainerName } from '../../node/terminal-target';

describe('shellQuote', () => {
  test.each([
    ['plain', 'plain'],
    ['/usr/bin/env', '/usr/bin/env'],
    ['', "''"],
    ['a b', "'a b'"],
    ["it's", "'it'\\''s'"],
    ['$HOME', "'$HOME'"],
    ['--wd=/x', '--wd=/x'],
  ])('%j -> %s', (word, quoted) => expect(shellQuote(word)).toBe(quoted));

  test('a joined command comes back word for word from a shell', () => {
    expect(shellJoin(['sh', '-c', 'echo "$1"; exit 3', 'x y'])).toBe(`sh -c 'echo "$1"; exit 3' 'x y'`);
  });
});

describe('planScriptArgv', () => {
  test('script -q -e runs the command with exec on a pty, with the size set first', () => {
    expect(planScriptArgv(['nsenter', '--target=7', '--', 'sh'], { rows: 24, cols: 80 })).toEqual([
      'script', '-q', '-e', '-c', 'stty rows 24 cols 80 2>/dev/null; exec nsenter --target=7 -- sh', '/dev/null',
    ]);
    expect(planScriptArgv(['sh'])).toEqual(['script', '-q', '-e', '-c', 'exec sh', '/dev/null']);
    expect(() => planScriptArgv([])).toThrow(/a command is needed/);
  });

  test('refuses a size the kernel would not take', () => {
    expect(() => checkTerminalSize({ rows: 0, cols: 80 })).toThrow(/not valid/);
    expect(() => checkTerminalSize({ rows: 24, cols: 70000 })).toThrow(/not valid/);
    expect(() => planScriptArgv(['sh'], { rows: 1.5, cols: 80 })).toThrow(/not valid/);
  });
});

test('isPtySlave: majors 136 to 143, also with the high bits of a large dev_t', () => {
  expect(isPtySlave(136 * 256 + 3)).toBe(true);
  expect(isPtySlave(143 * 256 + 255)).toBe(true);
  expect(isPtySlave(1 * 256 + 3)).toBe(false); // /dev/null
  expect(isPtySlave(5 * 256 + 2)).toBe(false); // /dev/ptmx
  expect(isPtySlave(136 * 256 + 4096 * 2 ** 32)).toBe(false); // major 136 + 4096
});

test('planExitCode: a code, or 128+N for a signal', () => {
  expect(planExitCode(3, undefined)).toBe(3);
  expect(planExitCode(null, 9)).toBe(137);
});

test("planExecEnv: the task's env, then the exec's, which wins", () => {
  expect(planExecEnv(['PATH=/bin', 'A=1'], ['A=2', 'B=x=y'])).toEqual(['PATH=/bin', 'A=2', 'B=x=y']);
  expect(() => planExecEnv([], ['=1'])).toThrow(/not valid/);
});

describe('planTerminalTarget', () => {
  const tasks = [
    { id: 'abc123def456ghi789', names: [taskContainerName({ id: 'abc123def456ghi789', serviceName: 'web', slot: 1, nodeId: 'n1' })] },
    { id: 'abd999', names: [taskContainerName({ id: 'abd999', serviceName: 'agent', slot: 0, nodeId: 'node7' })] },
  ];
  test.each([
    ['abc123def456ghi789', 'abc123def456ghi789'],
    ['web.1.abc123def456ghi789', 'abc123def456ghi789'],
    ['agent.node7.abd999', 'abd999'],
    ['abc', 'abc123def456ghi789'],
  ])('%s -> %s', (target, id) => expect(planTerminalTarget(target, tasks)).toBe(id));

  test.each([
    ['ab', /multiple IDs found with provided prefix: ab/],
    ['web.1', /No such container: web.1/],
    ['zzz', /No such container: zzz/],
    ['', /required/],
  ])('refuses %j', (target, message) => expect(() => planTerminalTarget(target, tasks)).toThrow(message));
});
