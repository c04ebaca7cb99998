import yargs from 'yargs';
import { SwarmletError } from '../services/common/errors';
import { VERSION } from '../services/common/version';
import { cliDebug } from '../services/config/config';
import { GlobalArgs } from './commands/context';
import { daemonCommand } from './commands/daemon';
import { imageCommands } from './commands/image';
import { loginCommands } from './commands/login';
import { networkCommands } from './commands/network';
import { nodeCommands } from './commands/node';
import { SERVICE_BOOLEAN_FLAGS, serviceCommands } from './commands/service';
import { attachDashValues, separateCommand } from './argv';
import { infoCommand, swarmCommands } from './commands/swarm';
import { volumeCommands } from './commands/volume';
import { secretCommands } from './commands/secret';
import { configCommands } from './commands/config';
import { stackCommands } from './commands/stack';
import { EXEC_BOOLEAN_FLAGS, terminalCommands } from './commands/terminal';
import { containerCommands } from './commands/container';
import { CONTAINER_BOOLEAN_FLAGS } from './container-flags';
import { composeCommands, prepareComposeArgs } from './commands/compose';
import { eventsCommand } from './commands/events';

/** One line for the user, never a stack trace for their mistake; exit 1 for failures, 2 for bad usage. */
function fail(message: string, code: number): never {
  process.stderr.write(`Error: ${message.replace(/\s+/g, ' ').trim()}\n`);
  process.exit(code);
}

export async function main(args: string[]): Promise<void> {
  // Options of `service create` stop at the image: what follows is the task's command.
  // `compose -f FILE ...` and `compose exec SERVICE COMMAND...` (the command is the container's).
  const composeExec = prepareComposeArgs(args);
  const create = separateCommand(composeExec.args, ['service', 'create'], SERVICE_BOOLEAN_FLAGS);
  // So do those of `run` and `container run|create`,
  const run = [['run'], ['container', 'run'], ['container', 'create']].map((p) => separateCommand(create.args, p, CONTAINER_BOOLEAN_FLAGS)).find((r) => r.args !== create.args) ?? { args: create.args, command: [] };
  // and those of `exec` at the target.
  const exec = [['exec'], ['container', 'exec']].map((p) => separateCommand(run.args, p, EXEC_BOOLEAN_FLAGS)).find((r) => r.args !== run.args) ?? { args: run.args, command: [] };
  let parser = yargs(attachDashValues(exec.args, run.args === create.args ? SERVICE_BOOLEAN_FLAGS : CONTAINER_BOOLEAN_FLAGS))
    .scriptName('swarmlet')
    .option('host', { alias: 'H', type: 'string', global: true, describe: 'Daemon to talk to: unix:///path.sock or tcp://IP:PORT (env SWARMLET_HOST)' })
    .option('cert-dir', { type: 'string', global: true, describe: 'For tcp:// hosts: directory with ca.pem, node.pem, node-key.pem' })
    .option('format', { choices: ['table', 'json'], global: true, describe: 'Output format' }) as unknown as yargs.Argv<GlobalArgs>;
  parser = daemonCommand(parser);
  parser = swarmCommands(parser);
  parser = infoCommand(parser);
  parser = nodeCommands(parser);
  parser = serviceCommands(parser, create.command);
  parser = networkCommands(parser);
  parser = imageCommands(parser);
  parser = loginCommands(parser);
  parser = volumeCommands(parser);
  parser = secretCommands(parser);
  parser = configCommands(parser);
  parser = stackCommands(parser);
  parser = terminalCommands(parser, exec.command);
  parser = containerCommands(parser, run.command, exec.command);
  parser = composeCommands(parser, composeExec.command);
  parser = eventsCommand(parser);
  await parser
    .demandCommand(1, 'a command is required (see swarmlet --help)')
    // --no-trunc and --no-healthcheck are flags of their own, not negations.
    .parserConfiguration({ 'boolean-negation': false })
    .strict()
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
