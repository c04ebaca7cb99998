import type { Argv } from 'yargs';
import { invalidArgument } from '../../services/common/errors';
import { LocalNodeClient } from '../../services/gen/swarmlet/v1/control';
import { Clients } from '../client';
import { localSize, runTerminal } from '../terminal-client';
import { GlobalArgs, withClients } from './context';

const repeated = (v: unknown): string[] => (v === undefined ? [] : ([] as string[]).concat(v as string | string[]));

function local(c: Clients): LocalNodeClient {
  if (!c.local) throw invalidArgument("exec and attach reach this node's tasks: run them on the node, against its daemon's unix:// socket");
  return c.local;
}

/** The CLI's exit code becomes the process's, as docker's does. */
async function exitWith(code: number): Promise<never> {
  // Output to a pipe is written asynchronously: let it drain first.
  await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
  await new Promise<void>((resolve) => process.stderr.write('', () => resolve()));
  process.exit(code < 0 || code > 255 ? 1 : code);
}

/** `exec`: a command in a running task or container on this node (also `container exec`). */
export function execCommand(y: Argv<GlobalArgs>, execArgv: string[]): Argv<GlobalArgs> {
  const execCommand = execArgv;
  return y.command(
      'exec <target>',
      'Run a command in a running task on this node (TARGET: task id, unique prefix, or SERVICE.SLOT.TASKID)',
      (a) =>
        a
          .positional('target', { type: 'string', demandOption: true })
          .option('interactive', { alias: 'i', type: 'boolean', default: false, describe: 'Keep STDIN open even if not attached' })
          .option('tty', { alias: 't', type: 'boolean', default: false, describe: 'Allocate a pseudo-TTY' })
          .option('detach', { alias: 'd', type: 'boolean', default: false, hidden: true })
          .option('env', { alias: 'e', type: 'string', describe: 'Set environment variables KEY=VALUE (repeatable)' })
          .option('user', { alias: 'u', type: 'string', describe: 'Username or UID (format: "<name|uid>[:<group|gid>]")' })
          .option('workdir', { alias: 'w', type: 'string', describe: 'Working directory inside the task' }),
      async (argv) => {
        if (execCommand.length === 0) throw invalidArgument('"swarmlet exec" requires at least 2 arguments: swarmlet exec [OPTIONS] TARGET COMMAND [ARG...]');
        if (argv.detach) throw invalidArgument('exec --detach is not supported');
        const env = repeated(argv.env);
        for (const e of env) if (!e || e.startsWith('=')) throw invalidArgument(`invalid environment variable: ${JSON.stringify(e)}`);
        const tty = Boolean(argv.tty);
        if (tty && argv.interactive && !process.stdin.isTTY) throw invalidArgument('the input device is not a TTY');
        const code = await withClients(argv, async (c, host) => {
          const l = local(c);
          const size = tty ? localSize() : undefined;
          const start = {
            msg: {
              $case: 'exec' as const,
              value: { target: argv.target as string, argv: execCommand, tty, stdin: Boolean(argv.interactive), env, user: (argv.user as string) ?? '', workdir: (argv.workdir as string) ?? '', size },
            },
          };
          return runTerminal(l.exec(), start, { stdin: Boolean(argv.interactive), detachKeys: false, host });
        });
        await exitWith(code);
      },
    ) as unknown as Argv<GlobalArgs>;
}

/** `attach`: a running task's or container's main process (also `container attach`). */
export function attachCommand(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y.command(
      'attach <target>',
      "Attach local standard input, output, and error streams to a running task's main process (Ctrl-P Ctrl-Q detaches)",
      (a) => a.positional('target', { type: 'string', demandOption: true }),
      async (argv) => {
        const code = await withClients(argv, async (c, host) => {
          const l = local(c);
          const start = { msg: { $case: 'attach' as const, value: { target: argv.target as string, size: localSize() } } };
          return runTerminal(l.attach(), start, { stdin: true, detachKeys: true, host });
        });
        await exitWith(code);
      },
    ) as unknown as Argv<GlobalArgs>;
}

/** `swarmlet exec` and `swarmlet attach`: a task's or a container's terminal on this node. */
export function terminalCommands(y: Argv<GlobalArgs>, execArgv: string[]): Argv<GlobalArgs> {
  return attachCommand(execCommand(y, execArgv));
}
