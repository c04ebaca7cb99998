import * as fs from 'node:fs';
import type { Argv } from 'yargs';
import { invalidArgument, SwarmletError } from '../../services/common/errors';
import { callerEnvironment } from '../../services/config/config';
import { Container, ContainerConfig, ContainerLogLine, ContainerUsage, LocalNodeClient } from '../../services/gen/swarmlet/v1/control';
import { planLogSince, planTimestampText } from '../../agent/runtime/log-plans';
import { localSize, runTerminal } from '../terminal-client';
import { matchesFilters, parseFilters, planInspect, planPsRows } from '../../agent/containers/container-plans';
import { planPortLines } from '../../agent/containers/port-plans';
import { Clients, call } from '../client';
import { ContainerFlags, containerConfigFromFlags, parseEnvFile, parseTail } from '../container-flags';
import { formatInspect, formatList, json, rowObjects, table, wantsJson } from '../format';
import { GlobalArgs, out, withClients } from './context';
import { attachCommand, execCommand } from './terminal';
import { STATS_TITLES, StatsEntry, planStatsEntry, planStatsRow } from '../../agent/containers/stats-plans';
import { savedContainerRegistryAuth } from '../registry-auth';

const repeated = (v: unknown): string[] | undefined => (v === undefined ? undefined : ([] as string[]).concat(v as string | string[]));

export function local(c: Clients): LocalNodeClient {
  if (!c.local) throw invalidArgument("containers belong to one node: run this on the node, against its daemon's unix:// socket");
  return c.local;
}

/** run/create options, with docker's names. */
function createOptions<T>(a: Argv<T>) {
  const str = (describe: string) => ({ type: 'string' as const, describe });
  const arr = (describe: string) => ({ type: 'string' as const, describe: `${describe} (repeatable)` });
  return a
    .positional('image', { type: 'string', describe: 'Image: a registry reference (oci runtime) or exec:/ (exec runtime)' })
    .option('name', str('Assign a name to the container'))
    .option('detach', { alias: 'd', type: 'boolean', default: false, describe: 'Run container in background and print container ID' })
    .option('interactive', { alias: 'i', type: 'boolean', default: false, describe: 'Keep STDIN open even if not attached' })
    .option('tty', { alias: 't', type: 'boolean', default: false, describe: 'Allocate a pseudo-TTY' })
    .option('rm', { type: 'boolean', default: false, describe: 'Automatically remove the container when it exits' })
    .option('env', { alias: 'e', ...arr('Set environment variables (KEY=VALUE, or KEY from your environment)') })
    .option('env-file', arr('Read in a file of environment variables'))
    .option('workdir', { alias: 'w', ...str('Working directory inside the container') })
    .option('user', { alias: 'u', ...str('Username or UID (format: <name|uid>[:<group|gid>])') })
    .option('hostname', str('Container host name'))
    .option('entrypoint', str('Overwrite the default ENTRYPOINT of the image'))
    .option('label', { alias: 'l', ...arr('Set meta data on a container') })
    .option('network', { alias: 'net', ...arr('Connect a container to a network (default bridge)') })
    .option('network-alias', arr('Add network-scoped alias for the container'))
    .option('ip', str('IPv4 address (e.g., 172.30.100.104)'))
    .option('publish', { alias: 'p', ...arr("Publish a container's port(s) to the host ([ip:][hostPort:]containerPort[/proto])") })
    .option('publish-all', { alias: 'P', type: 'boolean', default: false, describe: 'Publish all exposed ports to random ports' })
    .option('volume', { alias: 'v', ...arr('Bind mount a volume (name:/path[:ro] or /host/path:/path[:ro])') })
    .option('mount', arr('Attach a filesystem mount to the container'))
    .option('read-only', { type: 'boolean', default: false, describe: "Mount the container's root filesystem as read only" })
    .option('init', { type: 'boolean', default: false, describe: 'Run an init inside the container that forwards signals and reaps processes' })
    .option('tmpfs', arr('Mount a tmpfs directory (/path[:size=64m])'))
    .option('memory', { alias: 'm', ...str('Memory limit') })
    .option('memory-swap', str("Swap limit equal to memory plus swap: '-1' to enable unlimited swap"))
    .option('cpus', str('Number of CPUs'))
    .option('pids-limit', str('Tune container pids limit (set -1 for unlimited)'))
    .option('restart', { type: 'string', default: 'no', describe: 'Restart policy to apply when a container exits (no, on-failure[:max-retries], always, unless-stopped)' })
    .option('stop-timeout', str('Timeout (in seconds) to stop a container'));
}

function flagsOf(argv: Record<string, unknown>): ContainerFlags {
  const envFiles = repeated(argv['env-file']) ?? [];
  const envFileLines = envFiles.flatMap((f) => {
    let text: string;
    try {
      text = fs.readFileSync(f, 'utf8');
    } catch {
      throw invalidArgument(`open ${f}: no such file or directory`);
    }
    return parseEnvFile(text);
  });
  return {
    name: argv.name as string | undefined,
    env: repeated(argv.env),
    envFileLines,
    workdir: argv.workdir as string | undefined,
    user: argv.user as string | undefined,
    hostname: argv.hostname as string | undefined,
    entrypoint: argv.entrypoint as string | undefined,
    label: repeated(argv.label),
    network: repeated(argv.network),
    networkAlias: repeated(argv['network-alias']),
    ip: argv.ip as string | undefined,
    publish: repeated(argv.publish),
    publishAll: Boolean(argv['publish-all']),
    volume: repeated(argv.volume),
    mount: repeated(argv.mount),
    readOnly: Boolean(argv['read-only']),
    init: Boolean(argv.init),
    tmpfs: repeated(argv.tmpfs),
    memory: argv.memory as string | undefined,
    memorySwap: argv['memory-swap'] as string | undefined,
    cpus: argv.cpus as string | undefined,
    pidsLimit: argv['pids-limit'] as string | undefined,
    restart: argv.restart as string | undefined,
    stopTimeout: argv['stop-timeout'] as string | undefined,
    rm: Boolean(argv.rm),
    interactive: Boolean(argv.interactive),
    tty: Boolean(argv.tty),
  };
}

/** One record of a container's output, to the stream it came from; with `timestamps`, after its time (docker's `logs -t`). */
function writeLogLine(m: ContainerLogLine, timestamps: boolean): void {
  const text = `${timestamps && m.time ? `${planTimestampText(m.time)} ` : ''}${m.line}${m.partial ? '' : '\n'}`;
  if (m.stream === 'stderr') process.stderr.write(text);
  else out(text);
}

/**
 * `run` without -d, as docker's: follows the created container's output, starts it, prints what
 * it writes until it exits, then exits with its code. A container that cannot start is removed
 * (a `run` that fails leaves nothing).
 */
async function runAttached(l: LocalNodeClient, c: Container, host: string): Promise<never> {
  let printed = 0;
  const stream = l.containerLogs({ container: c.id, follow: true, tail: -1, since: '' });
  stream.on('data', (m: ContainerLogLine) => {
    printed += 1;
    writeLogLine(m, false);
  });
  // The daemon ends the follow once the container has exited and every line is given (with --rm,
  // once its log is gone, after its last lines); true when it ended so, false on an error.
  const ended = new Promise<boolean>((resolve) => {
    stream.on('end', () => resolve(true));
    stream.on('error', () => resolve(false));
  });
  try {
    await call(l, l.startContainer, { container: c.id }, host, 300000);
  } catch (err) {
    stream.cancel();
    await call(l, l.removeContainer, { container: c.id, force: true }, host).catch(() => undefined);
    throw err;
  }
  const { statusCode } = await call(l, l.waitContainer, { container: c.id }, host, 24 * 3600 * 1000);
  // Cancelling the follow here lost the lines it had not given yet (a --rm container's last ones).
  if (await ended) process.exit(statusCode);
  // The follow failed: what it had not printed, from the log, which stays until the container is
  // removed (one that --rm has removed ends the read with NotFound: what the follow gave is all).
  const rest: ContainerLogLine[] = [];
  await new Promise<void>((resolve) => {
    const s = l.containerLogs({ container: c.id, follow: false, tail: -1, since: '' });
    s.on('data', (m: ContainerLogLine) => rest.push(m));
    s.on('error', () => resolve());
    s.on('end', () => resolve());
  });
  for (const m of rest.slice(printed)) writeLogLine(m, false);
  process.exit(statusCode);
}

/** What followed the image on the command line (main.ts separates it before yargs parses the options). */
let afterImage: string[] = [];

async function runOrCreate(argv: Record<string, unknown> & GlobalArgs, start: boolean): Promise<void> {
  const image = argv.image as string | undefined;
  const command = afterImage;
  const config = containerConfigFromFlags(flagsOf(argv), image ?? '', command, callerEnvironment());
  if ((config.portBindings.length || config.publishAll) && config.spec?.networks?.includes('host')) process.stderr.write('WARNING: Published ports are discarded when using host network mode\n');
  const spec = config.spec?.container;
  if (start && !argv.detach && (spec?.tty || spec?.openStdin)) return runInteractive(argv, config);
  await withClients(argv, async (c, host) => {
    const l = local(c);
    const attached = start && !argv.detach;
    const created = await call(l, l.createContainer, { config, start: start && !attached, registryAuth: savedContainerRegistryAuth(config) }, host, 300000);
    if (!attached) return out(`${created.id}\n`);
    await runAttached(l, created, host);
  });
}

/**
 * `run -it` / `run -i`: create the container, attach to its held process, then start it, so the
 * first prompt is not missed; the CLI exits with the container's code (Ctrl-P Ctrl-Q detaches).
 */
async function runInteractive(argv: GlobalArgs, config: ContainerConfig): Promise<void> {
  const tty = Boolean(config.spec?.container?.tty);
  if (tty && config.spec?.container?.openStdin && !process.stdin.isTTY) throw invalidArgument('the input device is not a TTY');
  const code = await withClients(argv, async (c, host) => {
    const l = local(c);
    const created = await call(l, l.createContainer, { config, start: false, registryAuth: savedContainerRegistryAuth(config) }, host, 300000);
    const startMsg = { msg: { $case: 'attach' as const, value: { target: created.id, size: tty ? localSize() : undefined } } };
    return runTerminal(l.attach(), startMsg, {
      stdin: Boolean(config.spec?.container?.openStdin),
      detachKeys: tty,
      host,
      onStarted: async () => {
        await call(l, l.startContainer, { container: created.id }, host, 300000);
      },
    });
  });
  process.exit(code);
}

/**
 * Runs `op` for each container named, printing each name as docker does; one line per failure, then a
 * non-zero exit. With `parallel` (stop, kill, rm, as docker runs them) the containers are worked on
 * at once, so `stop a b c d` waits one grace period, not four; names still print in the order given.
 */
async function eachContainer(argv: GlobalArgs & { containers?: unknown }, op: (l: LocalNodeClient, ref: string, host: string) => Promise<unknown>, parallel = false): Promise<void> {
  await withClients(argv, async (c, host) => {
    const l = local(c);
    const refs = (argv.containers as string[]).map(String);
    const errors: string[] = [];
    const settle = (ref: string) =>
      op(l, ref, host).then(
        () => undefined,
        (err: Error) => err,
      );
    const outcomes = parallel ? refs.map(settle) : [];
    for (const [i, ref] of refs.entries()) {
      const err = await (parallel ? outcomes[i] : settle(ref));
      if (err) errors.push(err.message);
      else out(`${ref}\n`);
    }
    if (errors.length) throw new SwarmletError('FailedPrecondition', errors.join('; '));
  });
}

const timeoutOption = <T>(a: Argv<T>) =>
  a.positional('containers', { type: 'string', array: true, demandOption: true }).option('time', { alias: 't', type: 'number', describe: 'Seconds to wait before killing the container' });

type Builder = (y: Argv<GlobalArgs>) => Argv<GlobalArgs>;

const runCmd: Builder = (y) =>
  y.command('run <image> [command..]', 'Create and run a new container from an image', (a) => createOptions(a), (argv) => runOrCreate(argv as never, true));
const createCmd: Builder = (y) =>
  y.command('create <image> [command..]', 'Create a new container', (a) => createOptions(a), (argv) => runOrCreate(argv as never, false));
const startCmd: Builder = (y) =>
  y.command('start <containers..>', 'Start one or more stopped containers', (a) => a.positional('containers', { type: 'string', array: true, demandOption: true }), (argv) =>
    eachContainer(argv, (l, ref, host) => call(l, l.startContainer, { container: ref }, host, 300000)),
  );
const stopCmd: Builder = (y) =>
  y.command('stop <containers..>', 'Stop one or more running containers', timeoutOption, (argv) =>
    eachContainer(argv, (l, ref, host) => call(l, l.stopContainer, { container: ref, timeoutSeconds: argv.time === undefined ? undefined : Number(argv.time) }, host, 300000), true),
  );
const restartCmd: Builder = (y) =>
  y.command('restart <containers..>', 'Restart one or more containers', timeoutOption, (argv) =>
    eachContainer(argv, (l, ref, host) => call(l, l.restartContainer, { container: ref, timeoutSeconds: argv.time === undefined ? undefined : Number(argv.time) }, host, 300000)),
  );
const killCmd: Builder = (y) =>
  y.command(
    'kill <containers..>',
    'Kill one or more running containers',
    (a) => a.positional('containers', { type: 'string', array: true, demandOption: true }).option('signal', { alias: 's', type: 'string', default: 'KILL', describe: 'Signal to send to the container' }),
    (argv) => eachContainer(argv, (l, ref, host) => call(l, l.killContainer, { container: ref, signal: argv.signal as string }, host), true),
  );
const rmCmd: Builder = (y) =>
  y.command(
    ['rm <containers..>', 'remove <containers..>'],
    'Remove one or more containers',
    (a) => a.positional('containers', { type: 'string', array: true, demandOption: true }).option('force', { alias: 'f', type: 'boolean', default: false, describe: 'Force the removal of a running container (uses SIGKILL)' }),
    (argv) => eachContainer(argv, (l, ref, host) => call(l, l.removeContainer, { container: ref, force: Boolean(argv.force) }, host, 60000), true),
  );
const psCmd = (names: string[]): Builder => (y) =>
  y.command(
    names,
    'List containers',
    (a) =>
      a
        .option('all', { alias: 'a', type: 'boolean', default: false, describe: 'Show all containers (default shows just running)' })
        .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'Only display container IDs' })
        .option('filter', { alias: 'f', type: 'string', describe: 'Filter output based on conditions provided (id, name, label, status, exited, network, ancestor)' }),
    async (argv) => {
      const filters = parseFilters(repeated(argv.filter) ?? []);
      await withClients(argv, async (c, host) => {
        const l = local(c);
        const { containers } = await call(l, l.listContainers, { all: Boolean(argv.all) || filters.length > 0 }, host);
        const shown = containers.filter((x) => matchesFilters(x, filters) && (argv.all || x.state?.status === 'running' || x.state?.status === 'restarting' || filters.some(([k]) => k === 'status' || k === 'exited')));
        if (argv.quiet) return out(shown.map((x) => `${x.id.slice(0, 12)}\n`).join(''));
        const headers = ['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES'];
        const rows = planPsRows(shown, new Date());
        const objects = rowObjects(headers, rows, { 'CONTAINER ID': 'ID', CREATED: 'RunningFor' }).map((r, i) => ({ ...r, State: shown[i].state?.status ?? '', CreatedAt: shown[i].createdAt }));
        out(formatList(argv.format, objects, () => table(headers, rows), () => shown.map(planInspect)));
      });
    },
  );
const logsCmd: Builder = (y) =>
  y.command(
    'logs <container>',
    'Fetch the logs of a container',
    (a) =>
      a
        .positional('container', { type: 'string', demandOption: true })
        .option('follow', { alias: 'f', type: 'boolean', default: false, describe: 'Follow log output' })
        .option('tail', { alias: 'n', type: 'string', default: 'all', describe: 'Number of lines to show from the end of the logs' })
        .option('timestamps', { alias: 't', type: 'boolean', default: false, describe: 'Show timestamps' })
        .option('since', { type: 'string', describe: 'Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)' }),
    async (argv) => {
      const tail = parseTail(argv.tail as string);
      const since = argv.since !== undefined && argv.since !== '' ? planLogSince(String(argv.since), new Date()) : '';
      const timestamps = Boolean(argv.timestamps);
      await withClients(argv, async (c, host) => {
        const l = local(c);
        await call(l, l.inspectContainer, { container: argv.container as string }, host);
        await new Promise<void>((resolve, reject) => {
          const stream = l.containerLogs({ container: argv.container as string, follow: Boolean(argv.follow), tail, since });
          stream.on('data', (m: ContainerLogLine) => writeLogLine(m, timestamps));
          stream.on('error', (err) => reject(err));
          stream.on('end', () => resolve());
        }).catch((err) => {
          throw new SwarmletError('Unavailable', (err as { details?: string }).details || (err as Error).message);
        });
      });
    },
  );
const inspectCmd: Builder = (y) =>
  y.command('inspect <containers..>', 'Display detailed information on one or more containers', (a) => a.positional('containers', { type: 'string', array: true, demandOption: true }), async (argv) => {
    await withClients(argv, async (c, host) => {
      const l = local(c);
      const found: unknown[] = [];
      const errors: string[] = [];
      for (const ref of (argv.containers as string[]).map(String)) {
        try {
          found.push(planInspect(await call(l, l.inspectContainer, { container: ref }, host)));
        } catch (err) {
          errors.push((err as Error).message);
        }
      }
      out(formatInspect(argv.format, found));
      if (errors.length) throw new SwarmletError('NotFound', errors.join('; '));
    });
  });
const portCmd: Builder = (y) =>
  y.command(
    'port <container> [private]',
    'List port mappings or a specific mapping for the container',
    (a) => a.positional('container', { type: 'string', demandOption: true }).positional('private', { type: 'string', describe: 'PRIVATE_PORT[/PROTO]' }),
    async (argv) => {
      await withClients(argv, async (c, host) => {
        const l = local(c);
        const container = await call(l, l.inspectContainer, { container: argv.container as string }, host);
        const lines = planPortLines(container, argv.private === undefined ? undefined : String(argv.private));
        out(lines.map((line) => `${line}\n`).join(''));
      });
    },
  );
const waitCmd: Builder = (y) =>
  y.command('wait <containers..>', 'Block until one or more containers stop, then print their exit codes', (a) => a.positional('containers', { type: 'string', array: true, demandOption: true }), async (argv) => {
    await withClients(argv, async (c, host) => {
      const l = local(c);
      for (const ref of (argv.containers as string[]).map(String)) out(`${(await call(l, l.waitContainer, { container: ref }, host, 24 * 3600 * 1000)).statusCode}\n`);
    });
  });

const STATS_INTERVAL_MS = 1000;
const sleepMs = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * `stats`: docker's live table of the containers' CPU, memory, network, block I/O and pids,
 * refreshed every second until interrupted; `--no-stream` prints one table (from two readings a
 * second apart, so that CPU % means something). Without names: the running containers (all with
 * -a), listed again at each refresh as docker does.
 */
const statsCmd: Builder = (y) =>
  y.command(
    'stats [containers..]',
    'Display a live stream of container(s) resource usage statistics',
    (a) =>
      a
        .positional('containers', { type: 'string', array: true })
        .option('all', { alias: 'a', type: 'boolean', default: false, describe: 'Show all containers (default shows just running)' })
        .option('no-stream', { type: 'boolean', default: false, describe: 'Disable streaming stats and only pull the first result' })
        .option('no-trunc', { type: 'boolean', default: false, describe: "Don't truncate output" }),
    async (argv) => {
      const named = ((argv.containers as string[] | undefined) ?? []).map(String);
      await withClients(argv, async (c, host) => {
        const l = local(c);
        const prev = new Map<string, ContainerUsage>();
        const read = async (): Promise<{ entries: StatsEntry[]; errors: string[] }> => {
          const refs = named.length ? named : (await call(l, l.listContainers, { all: Boolean(argv.all) }, host)).containers.map((x) => x.id);
          const entries: StatsEntry[] = [];
          const errors: string[] = [];
          for (const ref of refs) {
            try {
              const u = await call(l, l.containerStats, { container: ref }, host);
              const e = planStatsEntry(u, prev.get(u.id));
              if (argv['no-trunc']) e.ID = e.Container = u.id;
              entries.push(e);
              prev.set(u.id, u);
            } catch (err) {
              // A container removed between the listing and its reading is left out; a named one is an error.
              if (named.length) errors.push((err as Error).message);
            }
          }
          return { entries, errors };
        };
        const render = (entries: StatsEntry[]) =>
          wantsJson(argv.format) ? entries.map((e) => `${JSON.stringify(e)}\n`).join('') : table(STATS_TITLES, entries.map(planStatsRow));
        const first = await read();
        if (first.errors.length) throw new SwarmletError('NotFound', first.errors.join('; '));
        for (;;) {
          await sleepMs(STATS_INTERVAL_MS);
          const { entries } = await read();
          if (argv['no-stream']) return out(render(entries));
          out(`\x1b[2J\x1b[H${render(entries)}`);
        }
      });
    },
  );

/** `top`: the container's processes, as docker top shows them (ps -ef's columns). */
const topCmd: Builder = (y) =>
  y.command('top <container>', 'Display the running processes of a container', (a) => a.positional('container', { type: 'string', demandOption: true }), async (argv) => {
    await withClients(argv, async (c, host) => {
      const l = local(c);
      const r = await call(l, l.containerTop, { container: argv.container as string }, host);
      if (wantsJson(argv.format)) return out(json({ Titles: r.titles, Processes: r.processes.map((p) => p.fields) }));
      out(table(r.titles, r.processes.map((p) => p.fields)));
    });
  });

/** `swarmlet container ...` and docker's shortcuts (run, ps, logs, stop, start, rm, inspect): this node's containers. */
export function containerCommands(y: Argv<GlobalArgs>, command: string[], execArgv: string[] = []): Argv<GlobalArgs> {
  afterImage = command;
  const execCmd: Builder = (a) => execCommand(a, execArgv);
  const all = [runCmd, createCmd, startCmd, stopCmd, restartCmd, killCmd, rmCmd, psCmd(['ls', 'ps', 'list']), logsCmd, inspectCmd, waitCmd, statsCmd, topCmd, execCmd, attachCommand, portCmd];
  y = y.command('container', "Manage this node's containers", (s: Argv<GlobalArgs>) =>
    all.reduce((acc, b) => b(acc), s).demandCommand(1, 'container needs a subcommand: run, create, start, stop, restart, kill, rm, ls, ps, logs, inspect, wait, port, stats, top, exec or attach'),
  );
  for (const b of [runCmd, psCmd(['ps']), logsCmd, stopCmd, startCmd, restartCmd, killCmd, waitCmd, rmCmd, inspectCmd, statsCmd, topCmd, portCmd]) y = b(y);
  return y;
}
