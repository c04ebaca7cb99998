import type { Argv } from 'yargs';
import { invalidArgument, SwarmletError } from '../../services/common/errors';
import type { LocalNodeClient, Volume } from '../../services/gen/swarmlet/v1/control';
import { Clients, call, controlApi } from '../client';
import { formatInspect, formatList, json, rowObjects, table, wantsJson } from '../format';
import { GlobalArgs, out, withClients } from './context';

const repeated = (v: unknown): string[] => (v === undefined ? [] : ([] as string[]).concat(v as string | string[]));

function local(c: Clients): LocalNodeClient {
  if (!c.local) throw invalidArgument("volumes belong to one node: run this on the node, against its daemon's unix:// socket");
  return c.local;
}

/** `--label k=v` (repeatable) -> labels. */
export function volumeLabels(items: string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    const key = eq < 0 ? item : item.slice(0, eq);
    if (!key) throw invalidArgument(`invalid --label ${JSON.stringify(item)}: expected KEY=VALUE or KEY`);
    labels[key] = eq < 0 ? '' : item.slice(eq + 1);
  }
  return labels;
}

/** A volume as `inspect` and `ls --format json` show it: labels and users even when there are none. */
export const volumeJson = (v: Volume) => ({ ...(controlApi().Volume.toJSON(v) as object), labels: { ...v.labels }, usedBy: [...v.usedBy] });

/** docker's `volume inspect` object: its keys and words; the tasks that use the volume are in `--format api`. */
export const volumeInspect = (v: Volume) => ({
  CreatedAt: v.createdAt,
  Driver: v.driver || 'local',
  Labels: { ...v.labels },
  Mountpoint: v.mountpoint,
  Name: v.name,
  Options: null,
  Scope: 'local',
});

/** `volume ls` rows, as docker shows them, with the tasks that use each volume. */
export function volumeRows(volumes: Volume[]): string[][] {
  return volumes.map((v) => [v.driver, v.name, v.usedBy.length ? v.usedBy.map((id) => id.slice(0, 12)).join(',') : '']);
}

/** `swarmlet volume ...`: this node's volumes, through the local daemon. */
export function volumeCommands(y: Argv<GlobalArgs>) {
  return y.command('volume', "Manage this node's volumes (local driver)", (s: Argv<GlobalArgs>) =>
    s
      .command(
        'create [name]',
        'Create a volume (a random name when none is given); an existing one of that name is kept as it is',
        (a) =>
          a
            .positional('name', { type: 'string', describe: 'Volume name: letters, digits, _ . -' })
            .option('driver', { alias: 'd', type: 'string', default: 'local', describe: 'Volume driver (local only)' })
            .option('label', { type: 'string', describe: 'Volume label KEY=VALUE (repeatable)' }),
        async (argv) => {
          const labels = volumeLabels(repeated(argv.label));
          await withClients(argv, async (c, host) => {
            const l = local(c);
            const v = await call(l, l.createVolume, { name: (argv.name as string | undefined) ?? '', driver: argv.driver as string, labels }, host);
            out(`${v.name}\n`);
          });
        },
      )
      .command(
        ['ls', 'list'],
        'List volumes',
        (a) => a.option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'Only names' }),
        async (argv) => {
          await withClients(argv, async (c, host) => {
            const l = local(c);
            const { volumes } = await call(l, l.listVolumes, {}, host);
            if (argv.quiet) return out(volumes.map((v) => `${v.name}\n`).join(''));
            const headers = ['DRIVER', 'VOLUME NAME', 'USED BY'];
            out(formatList(argv.format, rowObjects(headers, volumeRows(volumes), { 'VOLUME NAME': 'Name' }), () => table(headers, volumeRows(volumes)), () => volumes.map(volumeJson)));
          });
        },
      )
      .command(
        'inspect <volumes..>',
        'Display detailed information on one or more volumes (docker\'s JSON; --format api: with the tasks that use them)',
        (a) => a.positional('volumes', { type: 'string', array: true, demandOption: true }),
        async (argv) => {
          await withClients(argv, async (c, host) => {
            const l = local(c);
            const volumes: Volume[] = [];
            for (const name of argv.volumes as string[]) volumes.push(await call(l, l.getVolume, { name }, host));
            out(formatInspect(argv.format, volumes.map(volumeInspect), () => volumes.map(volumeJson)));
          });
        },
      )
      .command(
        ['rm <volumes..>', 'remove <volumes..>'],
        'Remove volumes and their data; refused while a task uses one, unless --force',
        (a) =>
          a
            .positional('volumes', { type: 'string', array: true, demandOption: true })
            .option('force', { alias: 'f', type: 'boolean', default: false, describe: 'Remove even if in use; no error for a missing one' }),
        async (argv) => {
          await withClients(argv, async (c, host) => {
            const l = local(c);
            const errors: string[] = [];
            for (const name of argv.volumes as string[]) {
              try {
                await call(l, l.removeVolume, { name, force: Boolean(argv.force) }, host);
                out(`${name}\n`);
              } catch (err) {
                errors.push((err as Error).message);
              }
            }
            if (errors.length) throw new SwarmletError('FailedPrecondition', errors.join('; '));
          });
        },
      )
      .command(
        'prune',
        'Remove every volume no task uses, with its data',
        (a) => a.option('force', { alias: 'f', type: 'boolean', default: false, describe: 'Do not ask (swarmlet never asks; accepted for docker compatibility)' }),
        async (argv) => {
          await withClients(argv, async (c, host) => {
            const l = local(c);
            const { removed } = await call(l, l.pruneVolumes, {}, host);
            if (wantsJson(argv.format)) return out(json(removed));
            if (removed.length) out(`Deleted Volumes:\n${removed.map((n) => `${n}\n`).join('')}`);
          });
        },
      )
      .demandCommand(1, 'volume needs a subcommand: create, ls, inspect, rm or prune'),
  );
}
