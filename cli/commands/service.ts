import type { Argv } from 'yargs';
import { invalidArgument, SwarmletError } from '../../services/common/errors';
import { ListServicesResponse, ListTasksResponse } from '../../services/gen/swarmlet/v1/control';
import { Service, ServiceSpec, Task, TaskState, taskStateToJSON, UpdateState, updateStateToJSON } from '../../services/gen/swarmlet/v1/types';
import { isOutOfDate } from '../../manager/orchestrator/tasks';
import { shellWords } from '../argv';
import { Clients, call } from '../client';
import { enumWord, formatInspect, formatList, json, rowObjects, table } from '../format';
import { SpecFlags, specFromCreateFlags, specFromUpdateFlags, UpdateFlags, withEffectivePolicies } from '../service-flags';
import { serviceJsonWithMounts } from '../mount-flags';
import { formatPorts, prettyService, serviceInspect, withVipNames } from '../publish-flags';
import { readRegistryAuth } from '../registry-auth';
import { GlobalArgs, out, withClients } from './context';

const repeated = (v: unknown): string[] | undefined => (v === undefined ? undefined : ([] as string[]).concat(v as string | string[]));

function specOptions<T>(a: Argv<T>) {
  const str = (describe: string) => ({ type: 'string' as const, describe });
  return a
    .option('replicas', str('Number of tasks (replicated mode)'))
    .option('constraint', str('Placement constraint, e.g. node.labels.zone==a (repeatable)'))
    .option('reserve-cpu', str('Reserve CPUs, e.g. 0.5'))
    .option('reserve-memory', str('Reserve memory, e.g. 64m'))
    .option('limit-cpu', str('Limit CPUs, e.g. 0.5'))
    .option('limit-memory', str('Limit memory, e.g. 64m'))
    .option('limit-pids', str('Limit the number of processes in a task (0: no limit)'))
    .option('env', { ...str('Environment variable KEY=VALUE (repeatable)'), alias: 'e' })
    .option('workdir', { ...str('Working directory of the command'), alias: 'w' })
    .option('user', { ...str('User (name or uid[:gid]) the command runs as'), alias: 'u' })
    .option('hostname', str('Hostname inside the task'))
    .option('label', { ...str('Service label KEY=VALUE (repeatable)'), alias: 'l' })
    .option('restart-condition', str('none, on-failure or any (default any)'))
    .option('restart-delay', str('Delay between restarts (default 5s)'))
    .option('restart-max-attempts', str('Maximum restarts before giving up (default unlimited)'))
    .option('restart-window', str('Window in which restarts are counted'))
    .option('update-parallelism', str('Tasks updated at once (0: all; default 1)'))
    .option('update-delay', str('Delay between batches of an update'))
    .option('update-failure-action', str('pause, continue or rollback (default pause)'))
    .option('update-monitor', str('How long a new task is watched for failure (default 5s)'))
    .option('update-max-failure-ratio', str('Failures tolerated during an update, 0 to 1'))
    .option('update-order', str('stop-first or start-first (default stop-first)'))
    .option('rollback-parallelism', str('Tasks rolled back at once'))
    .option('rollback-delay', str('Delay between batches of a rollback'))
    .option('rollback-failure-action', str('pause or continue'))
    .option('rollback-monitor', str('How long a rolled-back task is watched for failure'))
    .option('rollback-max-failure-ratio', str('Failures tolerated during a rollback, 0 to 1'))
    .option('rollback-order', str('stop-first or start-first'))
    .option('health-cmd', str('Command run inside the task to check its health (exit 0: healthy)'))
    .option('health-interval', str('Time between health checks (default 30s)'))
    .option('health-retries', str('Failures in a row before the task is unhealthy (default 3)'))
    .option('health-timeout', str('Longest a health check may run (default 30s)'))
    .option('health-start-period', str('Time before failing checks count'))
    .option('no-healthcheck', { type: 'boolean', describe: 'Disable the health check' })
    .option('tty', { alias: 't', type: 'boolean', describe: 'Allocate a pseudo-TTY to each task (--tty=false to remove it)' })
    .option('interactive', { alias: 'i', type: 'boolean', describe: "Keep each task's STDIN open, for attach (--interactive=false to close it)" })
    .option('stop-grace-period', str('Time to wait after SIGTERM before SIGKILL (default 10s)'))
    .option('pull', str('When nodes pull the image: missing (default), always, never'))
    .option('with-registry-auth', { type: 'boolean', describe: "Send the registry credentials of docker login's config.json for the image's registry to the nodes (sealed by the managers)" })
    .option('registry-auth-file', str('Send the registry credentials in this file (user:password) instead'))
    .option('endpoint-mode', str('vip (a virtual IP load-balanced over the tasks) or dnsrr (DNS round robin); default vip'))
    .option('detach', { alias: 'd', type: 'boolean', default: false, describe: 'Return at once instead of waiting for the service to converge' });
}

/** yargs arguments -> our flag shape (repeatable flags as arrays). */
function flagsOf(argv: Record<string, unknown>): UpdateFlags {
  const f: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(argv)) if (!k.includes('-') && k !== '_' && k !== '$0' && v !== undefined) f[k] = v;
  for (const k of ['constraint', 'env', 'label', 'network', 'envAdd', 'envRm', 'constraintAdd', 'constraintRm', 'labelAdd', 'labelRm', 'networkAdd', 'networkRm', 'mount', 'mountAdd', 'mountRm', 'publish', 'publishAdd', 'publishRm', 'secret', 'secretAdd', 'secretRm', 'config', 'configAdd', 'configRm']) f[k] = repeated(f[k]);
  return f as UpdateFlags;
}

const shortId = (id: string, noTrunc?: boolean) => (noTrunc ? id : id.slice(0, 12));
const modeOf = (s: ServiceSpec | undefined) => (s?.mode?.$case === 'global' ? 'global' : 'replicated');

export function ago(iso: string | undefined, now = Date.now()): string {
  if (!iso) return '';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return s < 2 ? 'about a second ago' : `${s} seconds ago`;
  const m = Math.round(s / 60);
  if (m < 60) return m === 1 ? 'about a minute ago' : `${m} minutes ago`;
  const h = Math.round(m / 60);
  return h === 1 ? 'about an hour ago' : `${h} hours ago`;
}

/** `service ls` (and `stack services`) as docker prints it. */
const SERVICE_LS_HEADERS = ['ID', 'NAME', 'MODE', 'REPLICAS', 'IMAGE', 'PORTS'];
const serviceLsRows = (services: ListServicesResponse['services']) => services.map((s) => [shortId(s.service!.id), s.service!.spec!.name, modeOf(s.service!.spec), `${s.running}/${s.desired}`, s.service!.spec!.task?.container?.image ?? '', formatPorts(s.service!.endpoint)]);

/** `service ls` (and `stack services`) as --format asks: docker's table, docker-shaped rows, a template, or the API's objects. */
export const formatServiceList = (format: string | undefined, services: ListServicesResponse['services']) =>
  formatList(format, rowObjects(SERVICE_LS_HEADERS, serviceLsRows(services)), () => table(SERVICE_LS_HEADERS, serviceLsRows(services)), () => services.map((s) => ({ ...(Service.toJSON(s.service!) as object), running: s.running, desired: s.desired })));

export const PS_HEADERS = ['ID', 'NAME', 'IMAGE', 'NODE', 'DESIRED STATE', 'CURRENT STATE', 'ERROR'];

/** `service ps`, `stack ps` and `node ps` as --format asks. */
export const formatTaskList = (format: string | undefined, res: ListTasksResponse, noTrunc: boolean) =>
  formatList(format, rowObjects(PS_HEADERS, psRows(res, noTrunc)), () => table(PS_HEADERS, psRows(res, noTrunc)), () => res.tasks.map((t) => Task.toJSON(t)));

export const taskName = (t: Task) => `${t.serviceName}.${t.slot ? t.slot : t.nodeId}`;

/** `service ps` rows: the live task of each slot, then its history marked \_, as docker shows them. */
export function psRows(res: ListTasksResponse, noTrunc = false, now = Date.now()): string[][] {
  const host = new Map(res.nodes.map((n) => [n.id, n.description?.hostname ?? n.id]));
  const groups = new Map<string, Task[]>();
  for (const t of res.tasks) groups.set(`${t.serviceId}/${t.slot || t.nodeId}`, [...(groups.get(`${t.serviceId}/${t.slot || t.nodeId}`) ?? []), t]);
  const rows: string[][] = [];
  for (const tasks of groups.values()) {
    tasks.sort((a, b) => Number(a.desiredState > TaskState.TASK_STATE_RUNNING) - Number(b.desiredState > TaskState.TASK_STATE_RUNNING) || b.createdAt.localeCompare(a.createdAt));
    tasks.forEach((t, i) => {
      const state = t.status?.state ?? TaskState.TASK_STATE_NEW;
      rows.push([
        shortId(t.id, noTrunc),
        `${i > 0 ? ' \\_ ' : ''}${taskName(t)}`,
        t.spec?.container?.image ?? '',
        t.nodeId ? host.get(t.nodeId) ?? t.nodeId : '',
        enumWord(taskStateToJSON(t.desiredState)),
        `${enumWord(taskStateToJSON(state))} ${ago(t.status?.timestamp, now)}`.trim(),
        (t.status?.err || (state === TaskState.TASK_STATE_PENDING || stuck(t) ? t.status?.message ?? '' : '')).slice(0, noTrunc ? undefined : 60),
      ]);
    });
  }
  return rows;
}

/** Why a task waits for something that may never come: no node can take it, or it cannot get its addresses. */
function stuck(t: Task): 'placed' | 'allocated' | undefined {
  const message = t.status?.message ?? '';
  const state = t.status?.state ?? TaskState.TASK_STATE_NEW;
  if (state === TaskState.TASK_STATE_PENDING && /no suitable node/.test(message)) return 'placed';
  if (state === TaskState.TASK_STATE_NEW && /network|address/.test(message)) return 'allocated';
  return undefined;
}

interface Progress {
  converged: boolean;
  failed?: string;
  lines: string[];
}

/** Where a service stands against what it should run: what `create` and `update` show until it converges. Pure. */
export function planProgress(service: Service, tasks: Task[], since: string, pendingSince: Map<string, number>, now: number): Progress {
  const live = tasks.filter((t) => t.serviceId === service.id && t.desiredState === TaskState.TASK_STATE_RUNNING);
  const current = live.filter((t) => !isOutOfDate(service, t));
  const running = current.filter((t) => t.status?.state === TaskState.TASK_STATE_RUNNING);
  const desired = service.spec?.mode?.$case === 'replicated' ? Number(service.spec.mode.value.replicas) : live.length;
  const lines = [`overall progress: ${running.length} out of ${desired} tasks`];
  for (const t of current.sort((a, b) => Number(a.slot) - Number(b.slot))) {
    const state = t.status?.state ?? TaskState.TASK_STATE_NEW;
    const label = t.slot ? `${t.slot}/${desired}` : t.nodeId.slice(0, 12);
    lines.push(`${label}: ${taskStateToJSON(state).replace('TASK_STATE_', '').toLowerCase()}${stuck(t) ? ` (${t.status!.message})` : ''}`);
  }
  const u = service.updateStatus?.state;
  if (u === UpdateState.UPDATE_STATE_PAUSED || u === UpdateState.UPDATE_STATE_ROLLBACK_PAUSED) {
    return { converged: false, failed: `update ${updateStateToJSON(u).replace('UPDATE_STATE_', '').toLowerCase().replace('_', ' ')}: ${service.updateStatus?.message}`, lines };
  }
  const failures = tasks.filter((t) => t.serviceId === service.id && t.createdAt >= since && (t.status?.state === TaskState.TASK_STATE_FAILED || t.status?.state === TaskState.TASK_STATE_REJECTED));
  if (failures.length >= 3) {
    const last = failures.sort((a, b) => (a.status?.timestamp ?? '').localeCompare(b.status?.timestamp ?? '')).at(-1)!;
    return { converged: false, failed: `task ${taskName(last)} failed ${failures.length} times; last: ${last.status?.err || last.status?.message}`, lines };
  }
  for (const t of current) {
    const why = stuck(t);
    if (why) {
      const first = pendingSince.get(t.id) ?? now;
      pendingSince.set(t.id, first);
      if (now - first > 5000) return { converged: false, failed: `task ${taskName(t)} cannot be ${why}: ${t.status!.message}`, lines };
    } else pendingSince.delete(t.id);
  }
  const updating = u === UpdateState.UPDATE_STATE_UPDATING || u === UpdateState.UPDATE_STATE_ROLLBACK_STARTED;
  const stale = live.length > current.length;
  return { converged: running.length === desired && current.length === desired && !updating && !stale, lines };
}

/**
 * Polls until the service converges, printing progress; fails with the reason when it cannot. A
 * rollback that was asked for (`rollback`) and completed is a success; an update that the system
 * rolled back on failure is not.
 */
async function waitConverged(c: Clients, host: string, serviceId: string, since: string, rollback = false): Promise<void> {
  const pendingSince = new Map<string, number>();
  let shown = new Set<string>();
  for (;;) {
    const service = await call(c.control, c.control.getService, { service: serviceId }, host);
    const { tasks } = await call(c.control, c.control.listTasks, { service: serviceId, node: '', all: true }, host);
    const p = planProgress(service, tasks, since, pendingSince, Date.now());
    const next = new Set(p.lines);
    for (const line of p.lines) if (!shown.has(line)) out(`${line}\n`);
    shown = next;
    if (p.failed) throw new SwarmletError('FailedPrecondition', p.failed);
    if (p.converged) {
      if (service.updateStatus?.state === UpdateState.UPDATE_STATE_ROLLBACK_COMPLETED && service.updateStatus.startedAt >= since) {
        if (!rollback) throw new SwarmletError('FailedPrecondition', `the update was rolled back: ${service.updateStatus.message}`);
        out(`rollback: ${service.updateStatus.message}\n`);
      }
      out('verify: Service converged\n');
      return;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** `createCommand`: the words after the image of `service create`, kept away from the option parser. */
export function serviceCommands(y: Argv<GlobalArgs>, createCommand: string[]) {
  return y.command('service', 'Manage services (on a manager)', (s: Argv<GlobalArgs>) =>
    s
      .command(
        'create <image>',
        'Create a service: IMAGE is an image reference (busybox, registry:5000/app:1.0), or exec:/ (the host\'s filesystem) or exec:/path (a root directory)',
        (a) =>
          specOptions(a)
            .positional('image', { type: 'string', demandOption: true, describe: 'then the command and its arguments' })
            .option('name', { type: 'string', describe: 'Service name (a DNS label)' })
            .option('network', { type: 'string', describe: 'Network to join, by name or id (repeatable; the first is eth0)' })
            .option('publish', { alias: 'p', type: 'string', describe: 'Publish a port: published=P,target=T[,protocol=tcp|udp][,mode=ingress|host], or P:T[/udp], or T (a port from 30000-32767 is chosen) (repeatable)' })
            .option('mount', { type: 'string', describe: 'Mount: type=volume|bind|tmpfs,source=...,target=/path[,readonly][,tmpfs-size=64m] (repeatable)' })
            .option('secret', { type: 'string', describe: 'Give the tasks a secret at /run/secrets/TARGET: NAME, or source=NAME[,target=T][,uid=0][,gid=0][,mode=0444] (repeatable)' })
            .option('config', { type: 'string', describe: 'Give the tasks a config at its target (default /NAME): NAME, or source=NAME[,target=/path][,uid][,gid][,mode] (repeatable)' })
            .option('mode', { type: 'string', describe: 'replicated or global (default replicated)' }),
        async (argv) => {
          const spec = specFromCreateFlags(flagsOf(argv) as SpecFlags, argv.image as string, createCommand);
          if (!spec.name) throw invalidArgument('--name is required');
          await withClients(argv, async (c, host) => {
            const since = new Date().toISOString();
            const registryAuth = readRegistryAuth(argv, spec.task?.container?.image) ?? '';
            const service = await call(c.control, c.control.createService, { spec, registryAuth }, host);
            out(`${service.id}\n`);
            if (!argv.detach) await waitConverged(c, host, service.id, since);
          });
        },
      )
      .command(
        ['ls', 'list'],
        'List services',
        (a) => a.option('quiet', { alias: 'q', type: 'boolean', default: false }),
        async (argv) => {
          await withClients(argv, async (c, host) => {
            const { services } = await call(c.control, c.control.listServices, {}, host);
            if (argv.quiet) return out(services.map((s) => `${s.service!.id}\n`).join(''));
            out(formatServiceList(argv.format, services));
          });
        },
      )
      .command(
        'ps <services..>',
        'List the tasks of services, with their history',
        (a) =>
          a
            .positional('services', { type: 'string', array: true, demandOption: true })
            .option('no-trunc', { type: 'boolean', default: false })
            .option('quiet', { alias: 'q', type: 'boolean', default: false }),
        async (argv) => {
          await withClients(argv, async (c, host) => {
            const all: ListTasksResponse = { tasks: [], nodes: [] };
            for (const ref of argv.services as string[]) {
              const res = await call(c.control, c.control.listTasks, { service: ref, node: '', all: true }, host);
              all.tasks.push(...res.tasks);
              all.nodes.push(...res.nodes);
            }
            if (argv.quiet) return out(all.tasks.map((t) => `${t.id}\n`).join(''));
            out(formatTaskList(argv.format, all, argv.noTrunc));
          });
        },
      )
      .command(
        'inspect <services..>',
        'Show services in detail (JSON, or text with --pretty)',
        (a) => a.positional('services', { type: 'string', array: true, demandOption: true }).option('pretty', { type: 'boolean', default: false, describe: 'Print a summary as text' }),
        async (argv) => {
          await withClients(argv, async (c, host) => {
            const services: unknown[] = [];
            const got: Service[] = [];
            for (const ref of argv.services as string[]) got.push(await call(c.control, c.control.getService, { service: ref }, host));
            const networkNames = new Map((await call(c.control, c.control.listNetworks, {}, host)).networks.map((n) => [n.id, n.spec?.name ?? n.id]));
            if (argv.pretty) return out(got.map((s) => prettyService(s, networkNames)).join('\n'));
            for (const s of got) services.push(withVipNames(withEffectivePolicies(serviceJsonWithMounts(s) as Record<string, any>, s), networkNames));
            out(formatInspect(argv.format, got.map((s) => serviceInspect(s, networkNames)), () => services));
          });
        },
      )
      .command(
        'scale <pairs..>',
        'Scale replicated services: NAME=REPLICAS ...',
        (a) => a.positional('pairs', { type: 'string', array: true, demandOption: true }).option('detach', { alias: 'd', type: 'boolean', default: false }),
        async (argv) => {
          const pairs = (argv.pairs as string[]).map((p) => {
            const m = /^([^=]+)=(\d+)$/.exec(p);
            if (!m) throw invalidArgument(`invalid scale argument ${JSON.stringify(p)}: expected SERVICE=REPLICAS with REPLICAS a whole number`);
            return { ref: m[1], replicas: m[2] };
          });
          await withClients(argv, async (c, host) => {
            for (const { ref, replicas } of pairs) {
              const since = new Date().toISOString();
              const current = await call(c.control, c.control.getService, { service: ref }, host);
              if (current.spec?.mode?.$case !== 'replicated') throw invalidArgument(`${current.spec?.name}: scale can only be used with replicated services`);
              const spec = specFromUpdateFlags(current.spec, { replicas });
              await call(c.control, c.control.updateService, { service: current.id, version: current.meta!.version, spec, rollback: false, registryAuth: '', clearRegistryAuth: false }, host);
              out(`${current.spec.name} scaled to ${replicas}\n`);
              if (!argv.detach) await waitConverged(c, host, current.id, since);
            }
          });
        },
      )
      .command(
        'update <service>',
        'Change a service; a change to its tasks rolls out as a rolling update',
        (a) =>
          specOptions(a)
            .positional('service', { type: 'string', demandOption: true })
            .option('image', { type: 'string', describe: 'New image' })
            .option('args', { type: 'string', describe: 'New command and arguments, as one shell-quoted string' })
            .option('env-add', { type: 'string', describe: 'Add or change an environment variable (repeatable)' })
            .option('env-rm', { type: 'string', describe: 'Remove an environment variable (repeatable)' })
            .option('constraint-add', { type: 'string', describe: 'Add a placement constraint (repeatable)' })
            .option('constraint-rm', { type: 'string', describe: 'Remove a placement constraint (repeatable)' })
            .option('label-add', { type: 'string', describe: 'Add or change a service label (repeatable)' })
            .option('label-rm', { type: 'string', describe: 'Remove a service label (repeatable)' })
            .option('network-add', { type: 'string', describe: 'Join a network (repeatable)' })
            .option('network-rm', { type: 'string', describe: 'Leave a network (repeatable)' })
            .option('publish-add', { type: 'string', describe: 'Publish a port (repeatable; --publish syntax)' })
            .option('publish-rm', { type: 'string', describe: 'Stop publishing a port: PORT[/PROTOCOL] (repeatable)' })
            .option('mount-add', { type: 'string', describe: 'Add a mount, or replace the one on its target (repeatable; --mount syntax)' })
            .option('mount-rm', { type: 'string', describe: 'Remove the mount on a target path (repeatable)' })
            .option('secret-add', { type: 'string', describe: 'Add or replace a secret (repeatable; --secret syntax)' })
            .option('secret-rm', { type: 'string', describe: 'Remove a secret, by name (repeatable)' })
            .option('config-add', { type: 'string', describe: 'Add or replace a config (repeatable; --config syntax)' })
            .option('config-rm', { type: 'string', describe: 'Remove a config, by name (repeatable)' })
            .option('force', { type: 'boolean', default: false, describe: 'Replace the tasks even if nothing changed' })
            .option('rollback', { type: 'boolean', default: false, describe: 'Roll back to the previous spec' })
            .option('clear-registry-auth', { type: 'boolean', default: false, describe: 'Forget the registry credentials sent with --with-registry-auth' }),
        async (argv) => {
          const flags = flagsOf(argv);
          if (argv.args !== undefined) {
            try {
              flags.args = shellWords(argv.args as string);
            } catch (err) {
              throw invalidArgument(`invalid --args: ${(err as Error).message}`);
            }
          }
          await withClients(argv, async (c, host) => {
            const since = new Date().toISOString();
            const current = await call(c.control, c.control.getService, { service: argv.service as string }, host);
            const spec = argv.rollback ? current.spec! : specFromUpdateFlags(current.spec!, flags);
            const registryAuth = readRegistryAuth(argv, spec.task?.container?.image) ?? '';
            const clearRegistryAuth = Boolean(argv.clearRegistryAuth);
            await call(c.control, c.control.updateService, { service: current.id, version: current.meta!.version, spec, rollback: Boolean(argv.rollback), registryAuth, clearRegistryAuth }, host);
            out(`${current.spec!.name}\n`);
            if (!argv.detach) await waitConverged(c, host, current.id, since, Boolean(argv.rollback));
          });
        },
      )
      .command(
        'rollback <service>',
        'Go back to the service\'s previous spec',
        (a) => a.positional('service', { type: 'string', demandOption: true }).option('detach', { alias: 'd', type: 'boolean', default: false }),
        async (argv) => {
          await withClients(argv, async (c, host) => {
            const since = new Date().toISOString();
            const current = await call(c.control, c.control.getService, { service: argv.service as string }, host);
            await call(c.control, c.control.updateService, { service: current.id, version: current.meta!.version, spec: current.spec, rollback: true, registryAuth: '', clearRegistryAuth: false }, host);
            out(`${current.spec!.name}\nrollback: manually requested rollback\n`);
            if (!argv.detach) await waitConverged(c, host, current.id, since, true);
          });
        },
      )
      .command(
        ['rm <services..>', 'remove <services..>'],
        'Remove services; their tasks stop',
        (a) => a.positional('services', { type: 'string', array: true, demandOption: true }),
        async (argv) => {
          await withClients(argv, async (c, host) => {
            for (const ref of argv.services as string[]) {
              await call(c.control, c.control.removeService, { service: ref }, host);
              out(`${ref}\n`);
            }
          });
        },
      )
      .command(
        'logs <service>',
        'Show the output of a service\'s tasks, from every node',
        (a) =>
          a
            .positional('service', { type: 'string', demandOption: true })
            .option('follow', { alias: 'f', type: 'boolean', default: false, describe: 'Keep printing new output' })
            .option('tail', { type: 'string', default: 'all', describe: 'Lines from the end of each task\'s output (default all)' }),
        async (argv) => {
          const tail = argv.tail === 'all' ? -1 : Number(argv.tail);
          if (!Number.isInteger(tail) || tail < -1) throw invalidArgument(`invalid --tail ${JSON.stringify(argv.tail)}: a whole number or all`);
          await withClients(argv, async (c, host) => {
            const nodes = new Map((await call(c.control, c.control.listNodes, {}, host)).nodes.map((n) => [n.id, n.description?.hostname ?? n.id]));
            await new Promise<void>((resolve, reject) => {
              const stream = c.control.serviceLogs({ service: argv.service as string, follow: argv.follow, tail });
              stream.on('data', (l) => out(`${l.serviceName}.${l.slot || l.nodeId}.${l.taskId.slice(0, 12)}@${nodes.get(l.nodeId) ?? l.nodeId}    | ${l.line}\n`));
              stream.on('error', (err) => reject(err));
              stream.on('end', () => resolve());
            }).catch((err) => {
              throw new SwarmletError('Unavailable', (err as { details?: string }).details || (err as Error).message);
            });
          });
        },
      )
      .demandCommand(1, 'service needs a subcommand: create, ls, ps, inspect, scale, update, rollback, rm or logs'),
  );
}
