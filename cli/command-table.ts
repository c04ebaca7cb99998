/**
 * Which module registers which top-level command. A call loads only the module its first word
 * names (`swarmlet service ls` loads cli/commands/service and nothing of the other commands); a
 * call with no known word (`--help`, a typo) loads them all, so help and usage errors are
 * unchanged. test/unit/command-table.test.ts checks these words against what each module
 * registers.
 */
import type { Argv } from 'yargs';
import type { GlobalArgs } from './commands/context';
import type { CommandLine } from './argv';

export type Register = (parser: Argv<GlobalArgs>, line: CommandLine) => Argv<GlobalArgs>;

export interface CommandGroup {
  /** The top-level words (commands and their aliases) the group registers. */
  words: readonly string[];
  load: () => Register;
}

export const COMMAND_GROUPS: readonly CommandGroup[] = [
  { words: ['daemon'], load: () => (p) => (require('./commands/daemon') as typeof import('./commands/daemon')).daemonCommand(p) },
  { words: ['init', 'join', 'swarm', 'info'], load: () => (p) => { const m = require('./commands/swarm') as typeof import('./commands/swarm'); return m.infoCommand(m.swarmCommands(p)); } },
  { words: ['node'], load: () => (p) => (require('./commands/node') as typeof import('./commands/node')).nodeCommands(p) },
  { words: ['service'], load: () => (p, line) => (require('./commands/service') as typeof import('./commands/service')).serviceCommands(p, line.serviceCommand) },
  { words: ['network'], load: () => (p) => (require('./commands/network') as typeof import('./commands/network')).networkCommands(p) },
  { words: ['image', 'build', 'pull', 'push', 'tag', 'images', 'rmi'], load: () => (p) => (require('./commands/image') as typeof import('./commands/image')).imageCommands(p) },
  { words: ['login', 'logout'], load: () => (p) => (require('./commands/login') as typeof import('./commands/login')).loginCommands(p) },
  { words: ['volume'], load: () => (p) => (require('./commands/volume') as typeof import('./commands/volume')).volumeCommands(p) },
  { words: ['secret'], load: () => (p) => (require('./commands/secret') as typeof import('./commands/secret')).secretCommands(p) },
  { words: ['config'], load: () => (p) => (require('./commands/config') as typeof import('./commands/config')).configCommands(p) },
  { words: ['stack'], load: () => (p) => (require('./commands/stack') as typeof import('./commands/stack')).stackCommands(p) },
  { words: ['exec', 'attach'], load: () => (p, line) => (require('./commands/terminal') as typeof import('./commands/terminal')).terminalCommands(p, line.execCommand) },
  {
    words: ['container', 'run', 'ps', 'logs', 'stop', 'start', 'restart', 'kill', 'wait', 'rm', 'inspect', 'stats', 'top', 'port'],
    load: () => (p, line) => (require('./commands/container') as typeof import('./commands/container')).containerCommands(p, line.runCommand, line.execCommand),
  },
  { words: ['dashboard'], load: () => (p) => (require('./commands/dashboard') as typeof import('./commands/dashboard')).dashboardCommand(p) },
  { words: ['events'], load: () => (p) => (require('./commands/events') as typeof import('./commands/events')).eventsCommand(p) },
  { words: ['lab'], load: () => (p) => (require('./commands/lab') as typeof import('./commands/lab')).labCommands(p) },
  { words: ['compose'], load: () => (p, line) => (require('./commands/compose') as typeof import('./commands/compose')).composeCommands(p, line.composeExecCommand) },
];

/** The groups a call needs: the one its command word names, or all of them. */
export function groupsFor(word: string | undefined): readonly CommandGroup[] {
  const group = word === undefined ? undefined : COMMAND_GROUPS.find((g) => g.words.includes(word));
  return group ? [group] : COMMAND_GROUPS;
}
