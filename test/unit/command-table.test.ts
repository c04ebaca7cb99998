import yargs from 'yargs';
import { commandWord, splitCommandLine, type CommandLine } from '../../cli/argv';
import { COMMAND_GROUPS, groupsFor } from '../../cli/command-table';
import type { GlobalArgs } from '../../cli/commands/context';

const line: CommandLine = { args: [], serviceCommand: [], runCommand: [], execCommand: [], composeExecCommand: [] };

/** The top-level words (names and aliases) a group's module really registers. */
function registered(load: () => (p: yargs.Argv<GlobalArgs>, l: CommandLine) => yargs.Argv<GlobalArgs>): string[] {
  const parser = load()(yargs([]) as unknown as yargs.Argv<GlobalArgs>, line);
  const handlers = (parser as unknown as { getInternalMethods(): { getCommandInstance(): { getCommandHandlers(): Record<string, unknown> } } }).getInternalMethods().getCommandInstance().getCommandHandlers();
  return Object.keys(handlers).sort();
}

test.each(COMMAND_GROUPS.map((g) => [g.words.join(','), g] as const))('the words of %s are what its module registers', (_name, group) => {
  expect(registered(group.load)).toEqual([...group.words].sort());
});

test('no word belongs to two groups', () => {
  const words = COMMAND_GROUPS.flatMap((g) => g.words);
  expect(new Set(words).size).toBe(words.length);
});

test.each([
  [['service', 'ls'], 'service'],
  [['-H', 'unix:///x.sock', 'info'], 'info'],
  [['--host=unix:///x.sock', 'ps', '-a'], 'ps'],
  [['--format', 'api', 'node', 'ls'], 'node'],
  [['--cert-dir', '/c', '-H', 'tcp://10.0.0.1:2377', 'run', '-dit', 'alpine'], 'run'],
  [['--help'], undefined],
  [[], undefined],
  [['--', 'service'], undefined],
])('the command word of %j is %s', (args, word) => expect(commandWord(args)).toBe(word));

test('a known word loads its group alone; none, or an unknown one, loads them all', () => {
  expect(groupsFor('ps').map((g) => g.words[0])).toEqual(['container']);
  expect(groupsFor('info').map((g) => g.words[0])).toEqual(['init']);
  expect(groupsFor(undefined)).toBe(COMMAND_GROUPS);
  expect(groupsFor('servcie')).toBe(COMMAND_GROUPS);
});

test('the commands after an image, a container or a compose service are split off', () => {
  expect(splitCommandLine(['service', 'create', '--replicas', '5', 'alpine', 'ping', '-c', '1', 'x'])).toMatchObject({ args: ['service', 'create', '--replicas', '5', 'alpine'], serviceCommand: ['ping', '-c', '1', 'x'] });
  expect(splitCommandLine(['run', '-dit', '--name', 'alpine1', 'alpine', 'ash'])).toMatchObject({ args: ['run', '-dit', '--name', 'alpine1', 'alpine'], runCommand: ['ash'] });
  expect(splitCommandLine(['exec', '-it', 'alpine1', 'ping', '-c', '2', 'alpine2'])).toMatchObject({ args: ['exec', '-it', 'alpine1'], execCommand: ['ping', '-c', '2', 'alpine2'] });
  expect(splitCommandLine(['compose', 'exec', 'web', 'sh', '-c', 'echo -f'])).toMatchObject({ args: ['compose', 'exec', 'web'], composeExecCommand: ['sh', '-c', 'echo -f'] });
  expect(splitCommandLine(['service', 'update', '--limit-memory', '-5M', 'web']).args).toEqual(['service', 'update', '--limit-memory=-5M', 'web']);
});

describe('completion: which names complete the word being typed', () => {
  const { namesFor } = require('../../cli/completion') as typeof import('../../cli/completion');
  test.each([
    [['service', 'rm'], 'service'],
    [['service', 'scale', 'web=2'], 'service'],
    [['-H', 'unix:///x', 'service', 'inspect', '--pretty'], 'service'],
    [['exec', '-it'], 'container'],
    [['container', 'stop'], 'container'],
    [['network', 'inspect'], 'network'],
    [['node', 'promote'], 'node'],
    [['stack', 'ps'], 'stack'],
    [['service'], undefined],
    [['service', 'create'], undefined],
    [['swarm', 'init'], undefined],
    [[], undefined],
  ])('%j -> %s', (words, kind) => expect(namesFor(words)).toBe(kind));
});
