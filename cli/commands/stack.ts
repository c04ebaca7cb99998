/**
 * `swarmlet stack deploy|ls|ps|services|rm` (docker's words). As in docker, the CLI does the
 * work: it loads the compose files (services/compose), plans the stack's objects (stack-plans.ts)
 * and applies the plan through a manager's Control API.
 */
import { readFileSync } from 'node:fs';
import type { Argv } from 'yargs';
import { invalidArgument, SwarmletError } from '../../services/common/errors';
import { callerEnvironment } from '../../services/config/config';
import type { ListTasksResponse } from '../../services/gen/swarmlet/v1/control';
import { ServiceSpec, Task } from '../../services/gen/swarmlet/v1/types';
import { Clients, call } from '../client';
import { formatList, json, table } from '../format';
import { readRegistryAuth } from '../registry-auth';
import { LABEL_STACK, planStackDeploy, STACK_SUPPORTED_KEYS, stackObjects, stackRows, validateStackName } from '../stack-plans';
import { GlobalArgs, out, withClients } from './context';
import { formatServiceList, formatTaskList } from './service';

const progress = (line: string) => out(`${line}\n`);

/** Everything of the swarm a stack plan looks at. */
async function existing(c: Clients, host: string) {
  const ctl = c.control;
  const [services, networks, secrets, configs] = await Promise.all([
    call(ctl, ctl.listServices, {}, host),
    call(ctl, ctl.listNetworks, {}, host),
    call(ctl, ctl.listSecrets, {}, host),
    call(ctl, ctl.listConfigs, {}, host),
  ]);
  return { services: services.services.map((s) => s.service!), networks: networks.networks, secrets: secrets.secrets, configs: configs.configs };
}

const readValue = (file: string): Buffer => {
  try {
    return readFileSync(file);
  } catch (err) {
    throw invalidArgument(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`, err);
  }
};

interface DeployArgs extends GlobalArgs {
  composeFile?: string | string[];
  stack: string;
  prune?: boolean;
  withRegistryAuth?: boolean;
}

async function deploy(argv: DeployArgs): Promise<void> {
  // Loaded here, not at every CLI start: the compose loader brings ajv and the compose-spec schema.
  const { formatUnsupportedWarning, loadComposeProject, unsupportedKeys }: typeof import('../../services/compose') = require('../../services/compose');
  const { composeIoFor, findComposeFiles }: typeof import('../../services/compose/fs-io') = require('../../services/compose/fs-io');
  const { validateServiceSpec }: typeof import('../../manager/orchestrator/service-spec') = require('../../manager/orchestrator/service-spec');
  const { planFileReferences }: typeof import('../../manager/file-object-plans') = require('../../manager/file-object-plans');
  validateStackName(argv.stack);
  const named = ([] as string[]).concat(argv.composeFile ?? []).map(String);
  if (named.length === 0) throw invalidArgument('please specify a compose file (with --compose-file or -c)');
  const files = findComposeFiles(named, process.cwd());
  const { project, warnings } = loadComposeProject({ files, projectName: argv.stack, env: callerEnvironment() }, composeIoFor(files));
  for (const w of warnings) process.stderr.write(`WARNING: ${w}\n`);
  const ignored = formatUnsupportedWarning(unsupportedKeys(project, STACK_SUPPORTED_KEYS));
  if (ignored) process.stderr.write(`${ignored}\n`);
  await withClients(argv, async (c, host) => {
    const ctl = c.control;
    const now = await existing(c, host);
    const plan = planStackDeploy(project, argv.stack, now, (spec: ServiceSpec) => planFileReferences(validateServiceSpec(spec), now.secrets, now.configs));
    // Everything is read and checked before anything is made: a bad file changes nothing.
    const values = [...plan.secrets.map((s) => readValue(s.file)), ...plan.configs.map((s) => readValue(s.file))];
    const auth = (spec: ServiceSpec) => (argv.withRegistryAuth ? readRegistryAuth({ withRegistryAuth: true }, spec.task?.container?.image) ?? '' : '');
    const auths = new Map([...plan.create, ...plan.update.map((u) => u.spec)].map((s) => [s.name, auth(s)]));
    for (const n of plan.networks) {
      progress(`Creating network ${n.name}`);
      await call(ctl, ctl.createNetwork, { spec: n }, host);
    }
    let v = 0;
    for (const s of plan.secrets) {
      progress(`Creating secret ${s.name}`);
      await call(ctl, ctl.createSecret, { spec: { name: s.name, labels: s.labels }, data: values[v++] }, host);
    }
    for (const s of plan.configs) {
      progress(`Creating config ${s.name}`);
      await call(ctl, ctl.createConfig, { spec: { name: s.name, labels: s.labels }, data: values[v++] }, host);
    }
    if (argv.prune) {
      for (const s of plan.prune) {
        progress(`Removing service ${s.spec?.name}`);
        await call(ctl, ctl.removeService, { service: s.id }, host);
      }
    }
    for (const spec of plan.update) {
      progress(`Updating service ${spec.spec.name} (id: ${spec.current.id})`);
      await call(ctl, ctl.updateService, { service: spec.current.id, version: spec.current.meta?.version ?? 0, spec: spec.spec, rollback: false, registryAuth: auths.get(spec.spec.name) ?? '', clearRegistryAuth: false }, host);
    }
    for (const spec of plan.create) {
      progress(`Creating service ${spec.name}`);
      await call(ctl, ctl.createService, { spec, registryAuth: auths.get(spec.name) ?? '' }, host);
    }
  });
}

/** Removes what can go now; a network still in use by tasks that are stopping is tried again for a while. */
async function remove(argv: GlobalArgs & { stacks: string[] }): Promise<void> {
  await withClients(argv, async (c, host) => {
    const ctl = c.control;
    for (const stack of argv.stacks) {
      const mine = stackObjects(stack, await existing(c, host));
      if (!mine.services.length && !mine.networks.length && !mine.secrets.length && !mine.configs.length) {
        progress(`Nothing found in stack: ${stack}`);
        continue;
      }
      for (const s of mine.services.sort((a, b) => (a.spec?.name ?? '').localeCompare(b.spec?.name ?? ''))) {
        progress(`Removing service ${s.spec?.name}`);
        await call(ctl, ctl.removeService, { service: s.id }, host);
      }
      for (const s of mine.secrets) {
        progress(`Removing secret ${s.spec?.name}`);
        await call(ctl, ctl.removeSecret, { secret: s.id }, host);
      }
      for (const s of mine.configs) {
        progress(`Removing config ${s.spec?.name}`);
        await call(ctl, ctl.removeConfig, { config: s.id }, host);
      }
      for (const n of mine.networks) {
        progress(`Removing network ${n.spec?.name}`);
        const deadline = Date.now() + 60000;
        for (;;) {
          try {
            await call(ctl, ctl.removeNetwork, { network: n.id }, host);
            break;
          } catch (err) {
            // The services' tasks leave the network as they stop.
            if (!(err instanceof SwarmletError) || !/in use/.test(err.message) || Date.now() > deadline) throw err;
            await new Promise((r) => setTimeout(r, 500));
          }
        }
      }
    }
  });
}

/** `swarmlet stack ...`. */
export function stackCommands(y: Argv<GlobalArgs>) {
  return y.command('stack', 'Manage swarm stacks (compose files deployed as services)', (s: Argv<GlobalArgs>) =>
    s
      .command(
        ['deploy <stack>', 'up <stack>'],
        'Deploy a new stack or update an existing stack',
        (a) =>
          a
            .positional('stack', { type: 'string', demandOption: true })
            .option('compose-file', { alias: 'c', type: 'string', describe: 'Path to a Compose file, or "-" to read from stdin (repeatable)' })
            .option('prune', { type: 'boolean', default: false, describe: 'Prune services that are no longer referenced' })
            .option('with-registry-auth', { type: 'boolean', default: false, describe: 'Send registry authentication details to Swarm agents' }),
        (argv) => deploy(argv as unknown as DeployArgs),
      )
      .command(
        ['ls', 'list'],
        'List stacks',
        () => undefined,
        async (argv) => {
          await withClients(argv, async (c, host) => {
            const { services } = await call(c.control, c.control.listServices, {}, host);
            const rows = stackRows(services.map((s) => s.service!));
            const objects = rows.map(([Name, Services]) => ({ Name, Services }));
            out(formatList(argv.format, objects, () => table(['NAME', 'SERVICES'], rows), () => objects));
          });
        },
      )
      .command(
        'services <stack>',
        'List the services in the stack',
        (a) => a.positional('stack', { type: 'string', demandOption: true }).option('quiet', { alias: 'q', type: 'boolean', default: false }),
        async (argv) => {
          await withClients(argv, async (c, host) => {
            const { services } = await call(c.control, c.control.listServices, {}, host);
            const mine = services.filter((s) => s.service?.spec?.labels?.[LABEL_STACK] === argv.stack);
            if (!mine.length) return process.stderr.write(`Nothing found in stack: ${argv.stack}\n`);
            if (argv.quiet) return out(mine.map((s) => `${s.service!.id}\n`).join(''));
            out(formatServiceList(argv.format, mine));
          });
        },
      )
      .command(
        'ps <stack>',
        'List the tasks in the stack',
        (a) => a.positional('stack', { type: 'string', demandOption: true }).option('no-trunc', { type: 'boolean', default: false }).option('quiet', { alias: 'q', type: 'boolean', default: false }),
        async (argv) => {
          await withClients(argv, async (c, host) => {
            const { services } = await call(c.control, c.control.listServices, {}, host);
            const mine = services.filter((s) => s.service?.spec?.labels?.[LABEL_STACK] === argv.stack);
            if (!mine.length) return process.stderr.write(`Nothing found in stack: ${argv.stack}\n`);
            const all: ListTasksResponse = { tasks: [], nodes: [] };
            for (const s of mine) {
              const res = await call(c.control, c.control.listTasks, { service: s.service!.id, node: '', all: true }, host);
              all.tasks.push(...res.tasks);
              all.nodes.push(...res.nodes.filter((n) => !all.nodes.some((m) => m.id === n.id)));
            }
            if (argv.quiet) return out(all.tasks.map((t) => `${t.id}\n`).join(''));
            out(formatTaskList(argv.format, all, Boolean(argv.noTrunc)));
          });
        },
      )
      .command(
        ['rm <stacks..>', 'remove <stacks..>', 'down <stacks..>'],
        'Remove one or more stacks',
        (a) => a.positional('stacks', { type: 'string', array: true, demandOption: true }),
        (argv) => remove(argv as unknown as GlobalArgs & { stacks: string[] }),
      )
      .demandCommand(1, 'a stack command is required'),
  );
}
