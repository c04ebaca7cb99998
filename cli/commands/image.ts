import type { Argv } from 'yargs';
import { invalidArgument, SwarmletError } from '../../services/common/errors';
import type { Image, LocalNodeClient } from '../../services/gen/swarmlet/v1/control';
import { Clients, call, controlApi } from '../client';
import { json, table } from '../format';
import { readRegistryAuth } from '../registry-auth';
import { GlobalArgs, out, withClients } from './context';

/** A pull may take minutes (the node gives up after 5). */
const PULL_TIMEOUT_MS = 6 * 60 * 1000;

function local(c: Clients): LocalNodeClient {
  if (!c.local) throw invalidArgument("images belong to one node: run this on the node, against its daemon's unix:// socket");
  return c.local;
}

/** docker's sizes: SI units, 3 significant digits. */
export function humanSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = bytes;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i += 1;
  }
  return `${i === 0 ? v : Number(v.toPrecision(3))}${units[i]}`;
}

/** `2 hours ago`, as docker shows an image's age. */
export function humanAge(iso: string, now: Date): string {
  const s = Math.max(0, Math.floor((now.getTime() - Date.parse(iso)) / 1000));
  if (Number.isNaN(s)) return '';
  const steps: [number, string][] = [[365 * 86400, 'year'], [30 * 86400, 'month'], [7 * 86400, 'week'], [86400, 'day'], [3600, 'hour'], [60, 'minute']];
  for (const [n, unit] of steps) if (s >= n) return `${Math.floor(s / n)} ${unit}${Math.floor(s / n) > 1 ? 's' : ''} ago`;
  return 'less than a minute ago';
}

/** A reference as docker's REPOSITORY and TAG columns: name:tag, name@digest (TAG <none>). */
function splitReference(ref: string): [string, string] {
  const at = ref.indexOf('@');
  if (at >= 0) return [ref.slice(0, at).replace(/:[^/:]+$/, ''), '<none>'];
  const colon = ref.lastIndexOf(':');
  return colon > ref.lastIndexOf('/') ? [ref.slice(0, colon), ref.slice(colon + 1)] : [ref, '<none>'];
}

/** `image ls` rows: one per reference (an image without one shows <none> <none>), with the tasks that use it. */
export function imageRows(images: Image[], now: Date): string[][] {
  return images.flatMap((img) => {
    const refs = img.references.length ? img.references : ['<none>:<none>'];
    const id = img.id.replace(/^sha256:/, '').slice(0, 12);
    const used = img.usedBy.map((t) => t.slice(0, 12)).join(',');
    return refs.map((r) => {
      const [repo, tag] = r === '<none>:<none>' ? ['<none>', '<none>'] : splitReference(r);
      return [repo, tag, id, humanAge(img.createdAt, now), humanSize(Number(img.sizeBytes)), used];
    });
  });
}

export const imageJson = (img: Image) => ({ ...(controlApi().Image.toJSON(img) as object), references: [...img.references], usedBy: [...img.usedBy], sizeBytes: Number(img.sizeBytes) });

/** `swarmlet image ...`: this node's images, through the local daemon. */
export function imageCommands(y: Argv<GlobalArgs>) {
  return y.command('image', "Manage this node's images (oci runtime)", (s: Argv<GlobalArgs>) =>
    s
      .command(
        ['ls', 'list'],
        'List images',
        (a) => a.option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'Only ids' }),
        async (argv) => {
          await withClients(argv, async (c, host) => {
            const l = local(c);
            const { images } = await call(l, l.listImages, {}, host);
            if (argv.format === 'json') return out(json(images.map(imageJson)));
            if (argv.quiet) return out(images.map((i) => `${i.id}\n`).join(''));
            out(table(['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE', 'USED BY'], imageRows(images, new Date())));
          });
        },
      )
      .command(
        'pull <reference>',
        'Pull an image from its registry onto this node',
        (a) =>
          a
            .positional('reference', { type: 'string', demandOption: true, describe: 'busybox, registry:5000/app:1.0, name@sha256:...' })
            .option('registry-auth-file', { type: 'string', describe: 'A file holding user:password for the registry' })
            .option('with-registry-auth', { type: 'boolean', default: false, describe: "Use docker login's config.json entry for the registry" }),
        async (argv) => {
          const reference = argv.reference as string;
          const registryAuth = readRegistryAuth({ withRegistryAuth: argv.withRegistryAuth as boolean, registryAuthFile: argv.registryAuthFile as string | undefined }, reference) ?? '';
          await withClients(argv, async (c, host) => {
            const l = local(c);
            const img = await call(l, l.pullImage, { reference, registryAuth }, host, PULL_TIMEOUT_MS);
            if (argv.format === 'json') return out(json(imageJson(img)));
            out(`${img.id}\n`);
          });
        },
      )
      .command(
        ['rm <images..>', 'remove <images..>', 'rmi <images..>'],
        'Remove images (by reference, or id prefix); refused while a task uses one, unless --force',
        (a) =>
          a
            .positional('images', { type: 'string', array: true, demandOption: true })
            .option('force', { alias: 'f', type: 'boolean', default: false, describe: 'Remove even with several references or in use (an image in use is only untagged)' }),
        async (argv) => {
          await withClients(argv, async (c, host) => {
            const l = local(c);
            const errors: string[] = [];
            for (const image of argv.images as string[]) {
              try {
                const { removed } = await call(l, l.removeImage, { image, force: Boolean(argv.force) }, host);
                out(removed.map((line) => `${line}\n`).join(''));
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
        'Remove images no task uses that have no reference (with -a: every image no task uses)',
        (a) =>
          a
            .option('all', { alias: 'a', type: 'boolean', default: false, describe: 'Also images with a reference' })
            .option('force', { alias: 'f', type: 'boolean', default: false, describe: 'Do not ask (swarmlet never asks; accepted for docker compatibility)' }),
        async (argv) => {
          await withClients(argv, async (c, host) => {
            const l = local(c);
            const res = await call(l, l.pruneImages, { all: Boolean(argv.all) }, host);
            if (argv.format === 'json') return out(json({ removed: res.removed, reclaimedBytes: Number(res.reclaimedBytes) }));
            if (res.removed.length) out(`Deleted Images:\n${res.removed.map((id) => `deleted: ${id}\n`).join('')}\n`);
            out(`Total reclaimed space: ${humanSize(Number(res.reclaimedBytes))}\n`);
          });
        },
      )
      .demandCommand(1, 'image needs a subcommand: ls, pull, rm or prune'),
  );
}
