/**
 * `swarmlet compose [-f FILE]... [-p PROJECT] up|down|ps|logs|build|pull|restart|exec` (docker
 * compose's words): a compose file's services as containers on this node, through the daemon's
 * local API. services/compose loads the files and plans; this file applies the plans, waits for
 * depends_on conditions, and prints docker compose's progress lines (to stderr, as it does).
 */
import { createHash } from 'node:crypto';
import type { Argv } from 'yargs';
import { invalidArgument, SwarmletError } from '../../services/common/errors';
import { callerEnvironment } from '../../services/config/config';
import type { Container, ContainerLogLine, LocalNodeClient, TerminalOutput } from '../../services/gen/swarmlet/v1/control';
import type { ComposeProject } from '../../services/compose';
import type { ContainerAction } from '../../services/compose/local-plan';
import type { HealthProgress } from '../../agent/worker-plans';
import { planCommandText, planStatusText } from '../../agent/containers/container-plans';
import { planPortsText } from '../../agent/containers/port-plans';
import type { HealthConfig } from '../../services/gen/swarmlet/v1/types';
import { Clients, call } from '../client';
import { savedContainerRegistryAuth } from '../registry-auth';
import { parseTail } from '../container-flags';
import { json, table, wantsJson } from '../format';
import { localSize, runTerminal } from '../terminal-client';
import { GlobalArgs, out, withClients } from './context';
import { fromManagerOrNode } from './network';

// The compose model (yaml, ajv and the schema) and the plans (the generated messages) load on
// first use, so that other commands, --help and --version do not pay for them (cli/client.ts).
const composeModel = (): typeof import('../../services/compose') => require('../../services/compose');
const composeFiles = (): typeof import('../../services/compose/fs-io') => require('../../services/compose/fs-io');
const plans = (): typeof import('../../services/compose/local-plan') => require('../../services/compose/local-plan');
const health = (): typeof import('../../agent/worker-plans') => require('../../agent/worker-plans');

interface ComposeArgs extends GlobalArgs {
  file?: string | string[];
  projectName?: string;
  projectDirectory?: string;
}

const progress = (line: string) => process.stderr.write(`${line}\n`);
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function local(c: Clients): LocalNodeClient {
  if (!c.local) throw invalidArgument("compose runs containers on one node: run it on the node, against its daemon's unix:// socket");
  return c.local;
}

/** Loads the project the flags name, printing docker compose's warnings and the one line of keys swarmlet ignores. */
function loadProject(argv: ComposeArgs): ComposeProject {
  const cwd = process.cwd();
  const files = composeFiles().findComposeFiles(([] as string[]).concat(argv.file ?? []).map(String), cwd);
  const { project, warnings } = composeModel().loadComposeProject(
    { files, projectName: argv.projectName, env: callerEnvironment(), workingDir: argv.projectDirectory ? fsPath(cwd, argv.projectDirectory) : undefined },
    composeFiles().composeIoFor(files),
  );
  for (const w of warnings) progress(`WARNING: ${w}`);
  const ignored = composeModel().formatUnsupportedWarning(composeModel().unsupportedKeys(project, plans().COMPOSE_SUPPORTED_KEYS));
  if (ignored) progress(ignored);
  return project;
}

const fsPath = (cwd: string, p: string) => (p.startsWith('/') ? p : `${cwd}/${p}`);

/** The networks this node knows: the manager's, or on a node in no swarm its own (with their labels). */
const listNetworks = async (c: Clients, host: string) =>
  (await fromManagerOrNode(c, () => call(c.control, c.control.listNetworks, {}, host), (l) => call(l, l.listNetworks, {}, host))).networks;

const listAll = async (l: LocalNodeClient, host: string): Promise<Container[]> => (await call(l, l.listContainers, { all: true }, host)).containers;

function selected(project: ComposeProject, services: unknown): string[] {
  const names = ((services as string[] | undefined) ?? []).map(String);
  for (const n of names) if (!project.services[n]) throw invalidArgument(`no such service: ${n}`);
  return names.length ? names : Object.keys(project.services);
}

// ---- build and pull ----

async function buildService(l: LocalNodeClient, host: string, project: ComposeProject, name: string): Promise<void> {
  const s = project.services[name];
  if (!s.build) return;
  const tag = plans().serviceImage(project, s);
  progress(` Service ${name}  Building`);
  await new Promise<void>((resolve, reject) => {
    const stream = l.buildImage({
      contextDir: s.build!.context,
      dockerfile: s.build!.dockerfile.startsWith('/') ? s.build!.dockerfile : `${s.build!.context}/${s.build!.dockerfile}`,
      tags: [tag],
      buildArgs: s.build!.args,
      quiet: false,
      noCache: false,
      target: s.build!.target ?? '',
      registryAuths: {},
    });
    stream.on('data', (m: { text: string }) => m.text && process.stderr.write(m.text));
    stream.on('error', (err: Error & { details?: string }) => reject(new SwarmletError('FailedPrecondition', `failed to build service "${name}": ${err.details || err.message}`)));
    stream.on('end', () => resolve());
  });
  progress(` Service ${name}  Built`);
}

async function pullService(l: LocalNodeClient, host: string, project: ComposeProject, name: string): Promise<void> {
  const s = project.services[name];
  if (!s.image) return; // a build alone has nothing to pull
  progress(` Image ${s.image}  Pulling`);
  await call(l, l.pullImage, { reference: s.image, registryAuth: '' }, host, 600000);
  progress(` Image ${s.image}  Pulled`);
}

// ---- depends_on ----

/** Runs `argv` in a container without a terminal; its exit code, or undefined when it could not run or took longer than `timeoutMs`. */
function probe(l: LocalNodeClient, container: string, argv: string[], timeoutMs: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const stream = l.exec();
    const timer = setTimeout(() => {
      stream.cancel();
      resolve(undefined);
    }, timeoutMs);
    const done = (code: number | undefined) => {
      clearTimeout(timer);
      resolve(code);
    };
    stream.on('data', (m: TerminalOutput) => {
      if (m.msg?.$case === 'exitCode') done(m.msg.value);
    });
    stream.on('error', () => done(undefined));
    stream.on('end', () => done(undefined));
    stream.write({ msg: { $case: 'exec', value: { target: container, argv, tty: false, stdin: false, env: [], user: '', workdir: '', size: undefined } } });
    stream.end();
  });
}

/**
 * Waits until a container's health check passes, by docker's rules (interval, timeout, retries,
 * start period): swarmlet's containers do not run checks themselves, so compose probes through exec.
 */
async function waitHealthy(l: LocalNodeClient, host: string, c: Container, config: HealthConfig | undefined): Promise<void> {
  const check = health().planHealthCheck(config);
  if (!check) throw new SwarmletError('FailedPrecondition', `dependency failed to start: container ${c.name} has no healthcheck configured`);
  const startedAt = Date.now();
  let progressOf: HealthProgress = health().HEALTH_START;
  for (;;) {
    const now = await call(l, l.inspectContainer, { container: c.id }, host);
    if (now.state?.status !== 'running' && now.state?.status !== 'restarting') {
      throw new SwarmletError('FailedPrecondition', `dependency failed to start: container ${c.name} exited (${now.state?.exitCode ?? 0})`);
    }
    const code = await probe(l, c.id, check.argv, check.timeoutMs);
    progressOf = health().nextHealth(progressOf, { ok: code === 0, inStartPeriod: Date.now() - startedAt < check.startPeriodMs }, check.retries);
    if (progressOf.status === 'healthy') return;
    if (progressOf.status === 'unhealthy') throw new SwarmletError('FailedPrecondition', `dependency failed to start: container ${c.name} is unhealthy`);
    await sleep(check.intervalMs);
  }
}

async function waitForDependencies(l: LocalNodeClient, host: string, project: ComposeProject, service: string): Promise<void> {
  for (const [dep, condition] of Object.entries(project.services[service].dependsOn)) {
    if (condition === 'service_started') continue;
    const containers = plans().projectContainers(project.name, await listAll(l, host), dep);
    for (const c of containers) {
      progress(` Container ${c.name}  Waiting`);
      if (condition === 'service_healthy') {
        await waitHealthy(l, host, c, c.config?.spec?.container?.healthcheck);
        progress(` Container ${c.name}  Healthy`);
      } else {
        const { statusCode } = await call(l, l.waitContainer, { container: c.id }, host, 24 * 3600 * 1000);
        if (statusCode !== 0) throw new SwarmletError('FailedPrecondition', `service "${dep}" didn't complete successfully: exit ${statusCode}`);
        progress(` Container ${c.name}  Exited`);
      }
    }
  }
}

// ---- up ----

async function applyContainerAction(l: LocalNodeClient, host: string, a: ContainerAction): Promise<void> {
  const stopTimeout = (id: string) => ({ container: id, timeoutSeconds: undefined });
  switch (a.kind) {
    case 'running':
      progress(` Container ${a.name}  Running`);
      return;
    case 'start':
      progress(` Container ${a.name}  Starting`);
      await call(l, l.startContainer, { container: a.id }, host, 300000);
      progress(` Container ${a.name}  Started`);
      return;
    case 'remove':
      progress(` Container ${a.name}  Stopping`);
      await call(l, l.stopContainer, stopTimeout(a.id), host, 300000);
      await call(l, l.removeContainer, { container: a.id, force: true }, host, 60000);
      progress(` Container ${a.name}  Removed`);
      return;
    case 'recreate': {
      progress(` Container ${a.name}  Recreate`);
      await call(l, l.stopContainer, stopTimeout(a.id), host, 300000);
      await call(l, l.removeContainer, { container: a.id, force: true }, host, 60000);
      await call(l, l.createContainer, { config: a.config, start: false, registryAuth: savedContainerRegistryAuth(a.config) }, host, 300000);
      progress(` Container ${a.name}  Recreated`);
      break;
    }
    case 'create':
      progress(` Container ${a.name}  Creating`);
      await call(l, l.createContainer, { config: a.config, start: false, registryAuth: savedContainerRegistryAuth(a.config) }, host, 300000);
      progress(` Container ${a.name}  Created`);
      break;
  }
  progress(` Container ${a.name}  Starting`);
  await call(l, l.startContainer, { container: a.name }, host, 300000);
  progress(` Container ${a.name}  Started`);
}

async function up(argv: ComposeArgs & Record<string, unknown>): Promise<void> {
  const project = loadProject(argv);
  const named = ((argv.services as string[] | undefined) ?? []).length ? selected(project, argv.services) : undefined;
  // `up web` starts web and what it depends on; with --no-deps, web alone
  const services = plans().planStartOrder(project, named).filter((s) => !argv.noDeps || !named || named.includes(s));
  await withClients(argv, async (c, host) => {
    const l = local(c);
    // what the file asks that cannot be done is refused before anything is made
    for (const s of services) plans().planServiceUp(project, s, [], sha256);
    if (argv.build) for (const s of services) await buildService(l, host, project, s);
    const networks = await listNetworks(c, host);
    const { volumes } = await call(l, l.listVolumes, {}, host);
    const { actions, warnings } = plans().planResources(project, services, networks, volumes);
    for (const w of warnings) progress(`WARNING: ${w}`);
    for (const a of actions) {
      if (a.kind === 'createNetwork') {
        progress(` Network ${a.name}  Creating`);
        await call(c.control, c.control.createNetwork, { spec: a.spec }, host);
        progress(` Network ${a.name}  Created`);
      } else {
        progress(` Volume "${a.name}"  Creating`);
        await call(l, l.createVolume, { name: a.name, driver: 'local', labels: a.labels }, host);
        progress(` Volume "${a.name}"  Created`);
      }
    }
    const existing = await listAll(l, host);
    const orphans = plans().planOrphans(project, existing);
    if (orphans.length) {
      if (argv.removeOrphans) {
        for (const o of orphans) await applyContainerAction(l, host, { kind: 'remove', name: o.name, id: o.id });
      } else {
        progress(`WARNING: Found orphan containers (${orphans.map((o) => o.name).join(', ')}) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.`);
      }
    }
    for (const s of services) {
      const plan = plans().planServiceUp(project, s, existing, sha256, Boolean(argv.forceRecreate));
      if (plan.some((a) => a.kind !== 'running')) await waitForDependencies(l, host, project, s);
      for (const a of plan) await applyContainerAction(l, host, a);
    }
    if (argv.detach) return;
    // attached: the services' output until Ctrl-C, which stops them (docker compose's up)
    const mine = plans().projectContainers(project.name, await listAll(l, host)).filter((x) => services.includes(x.config?.labels?.[plans().LABEL_SERVICE] ?? ''));
    const stop = async () => {
      progress('Gracefully stopping... (press Ctrl+C again to force)');
      for (const x of mine) await call(l, l.stopContainer, { container: x.id, timeoutSeconds: undefined }, host, 300000).catch(() => undefined);
      process.exit(130);
    };
    process.once('SIGINT', () => void stop());
    await followLogs(l, mine, { follow: true, tail: -1 });
  });
}

// ---- logs ----

function followLogs(l: LocalNodeClient, containers: Container[], opts: { follow: boolean; tail: number }): Promise<void> {
  const width = Math.max(0, ...containers.map((c) => c.name.length));
  return Promise.all(
    containers.map(
      (c) =>
        new Promise<void>((resolve) => {
          const stream = l.containerLogs({ container: c.id, follow: opts.follow, tail: opts.tail, since: '' });
          const prefix = `${c.name.padEnd(width)}  | `;
          stream.on('data', (m: ContainerLogLine) => out(`${prefix}${m.line}${m.partial ? '' : '\n'}`));
          stream.on('error', () => resolve());
          stream.on('end', () => resolve());
        }),
    ),
  ).then(() => undefined);
}

// ---- the commands ----

type Builder = (y: Argv<ComposeArgs>) => Argv<ComposeArgs>;
const servicesArg = <T>(a: Argv<T>) => a.positional('services', { type: 'string', array: true, describe: 'Services (default: all)' });

const upCmd: Builder = (y) =>
  y.command(
    'up [services..]',
    'Create and start containers',
    (a) =>
      servicesArg(a)
        .option('detach', { alias: 'd', type: 'boolean', default: false, describe: 'Detached mode: Run containers in the background' })
        .option('build', { type: 'boolean', default: false, describe: 'Build images before starting containers' })
        .option('force-recreate', { type: 'boolean', default: false, describe: "Recreate containers even if their configuration and image haven't changed" })
        .option('no-deps', { type: 'boolean', default: false, describe: "Don't start linked services" })
        .option('remove-orphans', { type: 'boolean', default: false, describe: 'Remove containers for services not defined in the Compose file' }),
    (argv) => up(argv as never),
  );

const downCmd: Builder = (y) =>
  y.command(
    'down',
    'Stop and remove containers, networks',
    (a) =>
      a
        .option('volumes', { alias: 'v', type: 'boolean', default: false, describe: 'Remove named volumes declared in the "volumes" section of the Compose file' })
        .option('remove-orphans', { type: 'boolean', default: false, describe: 'Remove containers for services not defined in the Compose file (always done)' })
        .option('timeout', { alias: 't', type: 'number', describe: 'Specify a shutdown timeout in seconds' }),
    async (argv) => {
      const project = loadProject(argv);
      await withClients(argv, async (c, host) => {
        const l = local(c);
        const networks = await listNetworks(c, host);
        const { volumes } = await call(l, l.listVolumes, {}, host);
        const plan = plans().planDown(project.name, await listAll(l, host), networks, volumes, Boolean(argv.volumes));
        const timeoutSeconds = argv.timeout === undefined ? undefined : Number(argv.timeout);
        for (const x of plan.containers) {
          progress(` Container ${x.name}  Stopping`);
          await call(l, l.stopContainer, { container: x.id, timeoutSeconds }, host, 300000);
          progress(` Container ${x.name}  Stopped`);
          await call(l, l.removeContainer, { container: x.id, force: true }, host, 60000);
          progress(` Container ${x.name}  Removed`);
        }
        for (const n of plan.networks) {
          progress(` Network ${n}  Removing`);
          await call(c.control, c.control.removeNetwork, { network: n }, host);
          progress(` Network ${n}  Removed`);
        }
        for (const v of plan.volumes) {
          progress(` Volume ${v}  Removing`);
          await call(l, l.removeVolume, { name: v, force: false }, host);
          progress(` Volume ${v}  Removed`);
        }
      });
    },
  );

const psCmd: Builder = (y) =>
  y.command(
    'ps [services..]',
    'List containers',
    (a) =>
      servicesArg(a)
        .option('all', { alias: 'a', type: 'boolean', default: false, describe: 'Show all stopped containers' })
        .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'Only display IDs' }),
    async (argv) => {
      const project = loadProject(argv);
      const services = selected(project, argv.services);
      await withClients(argv, async (c, host) => {
        const l = local(c);
        const shown = plans().projectContainers(project.name, await listAll(l, host))
          .filter((x) => services.includes(x.config?.labels?.[plans().LABEL_SERVICE] ?? '') || !project.services[x.config?.labels?.[plans().LABEL_SERVICE] ?? ''])
          .filter((x) => argv.all || x.state?.status === 'running' || x.state?.status === 'restarting')
          .sort((a, b) => a.name.localeCompare(b.name));
        if (argv.quiet) return out(shown.map((x) => `${x.id}\n`).join(''));
        const now = new Date();
        if (wantsJson(argv.format)) {
          return out(json(shown.map((x) => ({ ID: x.id, Name: x.name, Image: x.config?.spec?.container?.image ?? '', Command: planCommandText(x, false), Project: project.name, Service: x.config?.labels?.[plans().LABEL_SERVICE] ?? '', State: x.state?.status ?? '', Status: planStatusText(x, now), ExitCode: x.state?.exitCode ?? 0, Publishers: x.ports }))));
        }
        const rows = shown.map((x) => [x.name, x.config?.spec?.container?.image ?? '', planCommandText(x), x.config?.labels?.[plans().LABEL_SERVICE] ?? '', `${agoText(x.createdAt, now)}`, planStatusText(x, now), planPortsText(x)]);
        out(table(['NAME', 'IMAGE', 'COMMAND', 'SERVICE', 'CREATED', 'STATUS', 'PORTS'], rows));
      });
    },
  );

function agoText(createdAt: string, now: Date): string {
  const s = Math.max(0, Math.round((now.getTime() - Date.parse(createdAt)) / 1000));
  if (s < 60) return `${s} seconds ago`;
  if (s < 3600) return `${Math.round(s / 60)} minutes ago`;
  return `${Math.round(s / 3600)} hours ago`;
}

const logsCmd: Builder = (y) =>
  y.command(
    'logs [services..]',
    'View output from containers',
    (a) =>
      servicesArg(a)
        .option('follow', { alias: 'f', type: 'boolean', default: false, describe: 'Follow log output' })
        .option('tail', { alias: 'n', type: 'string', default: 'all', describe: 'Number of lines to show from the end of the logs for each container' }),
    async (argv) => {
      const project = loadProject(argv);
      const services = selected(project, argv.services);
      const tail = parseTail(argv.tail as string);
      await withClients(argv, async (c, host) => {
        const l = local(c);
        const mine = plans().projectContainers(project.name, await listAll(l, host)).filter((x) => services.includes(x.config?.labels?.[plans().LABEL_SERVICE] ?? ''));
        await followLogs(l, mine.sort((a, b) => a.name.localeCompare(b.name)), { follow: Boolean(argv.follow), tail });
      });
    },
  );

const buildCmd: Builder = (y) =>
  y.command('build [services..]', 'Build or rebuild services', servicesArg, async (argv) => {
    const project = loadProject(argv as ComposeArgs);
    const services = selected(project, argv.services);
    await withClients(argv as ComposeArgs, async (c, host) => {
      const l = local(c);
      for (const s of services) await buildService(l, host, project, s);
    });
  });

const pullCmd: Builder = (y) =>
  y.command('pull [services..]', 'Pull service images', servicesArg, async (argv) => {
    const project = loadProject(argv as ComposeArgs);
    const services = selected(project, argv.services);
    await withClients(argv as ComposeArgs, async (c, host) => {
      const l = local(c);
      for (const s of services) await pullService(l, host, project, s);
    });
  });

const restartCmd: Builder = (y) =>
  y.command(
    'restart [services..]',
    'Restart service containers',
    (a) => servicesArg(a).option('timeout', { alias: 't', type: 'number', describe: 'Specify a shutdown timeout in seconds' }),
    async (argv) => {
      const project = loadProject(argv);
      const named = selected(project, argv.services);
      const services = plans().planStartOrder(project, named).filter((s) => named.includes(s));
      await withClients(argv, async (c, host) => {
        const l = local(c);
        const all = await listAll(l, host);
        for (const s of services) {
          for (const x of plans().projectContainers(project.name, all, s)) {
            progress(` Container ${x.name}  Restarting`);
            await call(l, l.restartContainer, { container: x.id, timeoutSeconds: argv.timeout === undefined ? undefined : Number(argv.timeout) }, host, 300000);
            progress(` Container ${x.name}  Started`);
          }
        }
      });
    },
  );

const execCmd = (command: string[]): Builder => (y) =>
  y.command(
    'exec <service>',
    'Execute a command in a running container',
    (a) =>
      a
        .positional('service', { type: 'string', demandOption: true })
        .option('no-TTY', { alias: 'T', type: 'boolean', default: false, describe: 'Disable pseudo-TTY allocation (default: auto-detected)' })
        .option('env', { alias: 'e', type: 'string', describe: 'Set environment variables (repeatable)' })
        .option('user', { alias: 'u', type: 'string', describe: 'Run the command as this user' })
        .option('workdir', { alias: 'w', type: 'string', describe: 'Path to workdir directory for this command' })
        .option('index', { type: 'number', default: 1, describe: 'Index of the container if service has multiple replicas' }),
    async (argv) => {
      if (command.length === 0) throw invalidArgument('"compose exec" requires at least 2 arguments: compose exec [OPTIONS] SERVICE COMMAND [ARGS...]');
      const project = loadProject(argv);
      const service = String(argv.service);
      if (!project.services[service]) throw invalidArgument(`no such service: ${service}`);
      const tty = !argv.T && Boolean(process.stdin.isTTY);
      const code = await withClients(argv, async (c, host) => {
        const l = local(c);
        const target = plans().projectContainers(project.name, await listAll(l, host), service).find((x) => x.config?.labels?.['com.docker.compose.container-number'] === String(argv.index) && x.state?.status === 'running');
        if (!target) throw new SwarmletError('FailedPrecondition', `service "${service}" is not running`);
        const env = ([] as string[]).concat((argv.env as string | string[] | undefined) ?? []);
        const start = { msg: { $case: 'exec' as const, value: { target: target.id, argv: command, tty, stdin: tty, env, user: (argv.user as string) ?? '', workdir: (argv.workdir as string) ?? '', size: tty ? localSize() : undefined } } };
        return runTerminal(l.exec(), start, { stdin: tty, detachKeys: false, host });
      });
      await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
      process.exit(code < 0 || code > 255 ? 1 : code);
    },
  );

/** `swarmlet compose ...`: a compose project's containers on this node. */
export function composeCommands(y: Argv<GlobalArgs>, execCommand: string[] = []): Argv<GlobalArgs> {
  return y.command('compose', 'Define and run multi-container applications on this node (docker compose)', (s: Argv<GlobalArgs>) => {
    const a = (s as Argv<ComposeArgs>)
      // -f before the subcommand (prepareComposeArgs makes it --file); after it, `logs -f` follows
      .option('file', { type: 'string', requiresArg: true, describe: 'Compose configuration files (-f, repeatable)' })
      .option('project-name', { alias: 'p', type: 'string', describe: 'Project name' })
      .option('project-directory', { type: 'string', describe: 'Alternate working directory (default: the path of the first file)' }) as unknown as Argv<ComposeArgs>;
    return [upCmd, downCmd, psCmd, logsCmd, buildCmd, pullCmd, restartCmd, execCmd(execCommand)]
      .reduce((acc: Argv<ComposeArgs>, b: Builder) => b(acc), a)
      .demandCommand(1, 'compose needs a subcommand: up, down, ps, logs, build, pull, restart or exec') as unknown as Argv<GlobalArgs>;
  });
}
