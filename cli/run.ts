import type yargs from 'yargs';
import { SwarmletError } from '../services/common/errors';
import { VERSION } from '../services/common/version';
import { cliDebug } from '../services/config/config';
import { GlobalArgs } from './commands/context';
import { commandWord, splitCommandLine } from './argv';
import { groupsFor } from './command-table';
import { completeNames, completionCommand } from './completion';

/** One line for the user, never a stack trace for their mistake; exit 1 for failures, 2 for bad usage. */
function fail(message: string, code: number): never {
  process.stderr.write(`Error: ${message.replace(/\s+/g, ' ').trim()}\n`);
  process.exit(code);
}

export async function main(args: string[]): Promise<void> {
  if (args.length === 1 && args[0] === '--version') {
    // The commonest call of all, answered before the option parser is even loaded.
    process.stdout.write(`${VERSION}\n`);
    return;
  }
  if (await completeNames(args)) return;
  // Options of `service create`, `run` and `exec` stop at the image or container, and those of
  // `compose exec` at the service: what follows is the task's or the container's command.
  const line = splitCommandLine(args);
  // yargs picks the completion script's shell from the environment: `completion zsh|bash` names it.
  const shell = commandWord(line.args) === 'completion' ? line.args[line.args.indexOf('completion') + 1] : undefined;
  if (shell === 'zsh') process.env.ZSH_NAME = 'zsh';
  else if (shell === 'bash') {
    delete process.env.ZSH_NAME;
    process.env.SHELL = '/bin/bash';
  } else if (shell !== undefined) throw new SwarmletError('InvalidArgument', `completion scripts are for bash or zsh, not ${JSON.stringify(shell)}`);
  const parse = require('yargs') as typeof yargs;
  let parser = parse(line.args)
    .scriptName('swarmlet')
    .option('host', { alias: 'H', type: 'string', global: true, describe: 'Daemon to talk to: unix:///path.sock or tcp://IP:PORT (env SWARMLET_HOST)' })
    .option('cert-dir', { type: 'string', global: true, describe: 'For tcp:// hosts: directory with ca.pem, node.pem, node-key.pem' })
    .option('format', { type: 'string', global: true, describe: 'Output: table, json (docker\'s fields), api (the API\'s objects), or a Go template such as "{{.Name}} {{.Status}}" or "table {{.ID}}\\t{{.Name}}"' }) as unknown as yargs.Argv<GlobalArgs>;
  for (const group of groupsFor(commandWord(line.args))) parser = group.load()(parser, line);
  parser = completionCommand(parser);
  await parser
    .demandCommand(1, 'a command is required')
    // --no-trunc and --no-healthcheck are flags of their own, not negations.
    .parserConfiguration({ 'boolean-negation': false })
    // A completion request carries yargs' own flag, which strict mode would refuse.
    .strict(!args.includes('--get-yargs-completions'))
    .version(VERSION)
    .help()
    .wrap(Math.min(110, process.stdout.columns || 110))
    .fail((msg, err) => {
      if (err) throw err;
      fail(`${msg} (see 'swarmlet --help')`, 2);
    })
    .parseAsync();
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof SwarmletError) fail(err.message, 1);
  const e = err as Error;
  if (cliDebug()) process.stderr.write(`${e?.stack}\n`);
  fail(e?.message ?? String(err), 1);
});
