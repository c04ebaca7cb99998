import type { Argv } from 'yargs';
import { invalidArgument, SwarmletError } from '../../services/common/errors';
import { parseImageReference } from '../../services/common/image-ref';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ClientReadableStream } from '@grpc/grpc-js';
import type { Image, ImageDetail, LocalNodeClient } from '../../services/gen/swarmlet/v1/control';
import { Clients, call, controlApi, grpcErrors } from '../client';
import { formatInspect, formatList, json, rowObjects, table, wantsJson } from '../format';
import { readRegistryAuth, savedRegistryAuth, savedRegistryAuths } from '../registry-auth';
import { GlobalArgs, out, withClients } from './context';

/** A pull may take minutes (the node gives up after 5). */
const PULL_TIMEOUT_MS = 6 * 60 * 1000;
/** A build runs as long as it needs (the node stops it after an hour). */
const BUILD_TIMEOUT_MS = 61 * 60 * 1000;

type Builder = (y: Argv<GlobalArgs>) => Argv<GlobalArgs>;

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

/** A flag given once or several times (-t a -t b), as a list. */
const many = (v: unknown): string[] => ([] as unknown[]).concat(v ?? []).map(String);

/** --build-arg K=V (or K alone: the value from the caller's environment, as docker takes it). */
export function parseBuildArgs(args: string[], env: Record<string, string | undefined>): Record<string, string> {
  const outArgs: Record<string, string> = {};
  for (const a of args) {
    const eq = a.indexOf('=');
    if (eq === 0 || !a) throw invalidArgument(`invalid --build-arg ${JSON.stringify(a)}: it must be KEY=VALUE`);
    if (eq < 0) {
      if (env[a] !== undefined) outArgs[a] = env[a]!;
      continue;
    }
    outArgs[a.slice(0, eq)] = a.slice(eq + 1);
  }
  return outArgs;
}

/** Reads a server stream to its end; its failure as a SwarmletError with the server's message. */
function drain<T>(stream: ClientReadableStream<T>, onData: (m: T) => void, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    stream.on('data', onData);
    stream.on('error', (err) => reject(grpcErrors().fromServiceError(err, `the call to ${host}`)));
    stream.on('end', () => resolve());
  });
}

const shortImageId = (id: string) => id.replace(/^sha256:/, '').slice(0, 12);

/** docker's `image inspect` object for an image: its config as stored, references, size, layers. The tasks that use it are in `--format api`. */
export function planImageInspect(d: ImageDetail): Record<string, unknown> {
  const img = d.image!;
  let cfg: { created?: string; author?: string; architecture?: string; os?: string; config?: Record<string, unknown>; rootfs?: { diff_ids?: string[] } } = {};
  try {
    cfg = JSON.parse(d.configJson || '{}');
  } catch {
    cfg = {};
  }
  const tags = img.references.filter((r) => !r.includes('@'));
  const names = [...new Set(img.references.map((r) => splitReference(r)[0]))];
  return {
    Id: img.id,
    RepoTags: tags,
    RepoDigests: img.digest ? names.map((n) => `${n}@${img.digest}`) : [],
    Created: cfg.created ?? img.createdAt,
    Author: cfg.author ?? '',
    // docker's keys, each there (null or '' when the image leaves it out), then whatever else the config holds.
    Config: { User: '', ExposedPorts: null, Env: null, Cmd: null, Volumes: null, WorkingDir: '', Entrypoint: null, Labels: null, ...(cfg.config ?? {}) },
    Architecture: cfg.architecture ?? '',
    Os: cfg.os ?? '',
    Size: Number(img.sizeBytes),
    RootFS: { Type: 'layers', Layers: cfg.rootfs?.diff_ids ?? d.layers.map((l) => l.digest) },
  };
}

export interface HistoryRow {
  id: string;
  created: string;
  createdBy: string;
  sizeBytes: number;
  comment: string;
}

/** `image history`: the config's history entries, newest first, each non-empty one with its layer's size; the top one carries the image id. */
export function planImageHistory(d: ImageDetail): HistoryRow[] {
  let history: { created?: string; created_by?: string; comment?: string; empty_layer?: boolean }[] = [];
  try {
    history = (JSON.parse(d.configJson || '{}') as { history?: typeof history }).history ?? [];
  } catch {
    history = [];
  }
  let layer = 0;
  const rows = history.map((h) => {
    const size = h.empty_layer ? 0 : Number(d.layers[layer++]?.sizeBytes ?? 0);
    return { id: '<missing>', created: h.created ?? '', createdBy: h.created_by ?? '', sizeBytes: size, comment: h.comment ?? '' };
  });
  rows.reverse();
  if (rows.length) rows[0].id = d.image!.id;
  else rows.push({ id: d.image!.id, created: d.image!.createdAt, createdBy: '', sizeBytes: Number(d.image!.sizeBytes), comment: '' });
  return rows;
}

const truncate = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

export const imageJson = (img: Image) => ({ ...(controlApi().Image.toJSON(img) as object), references: [...img.references], usedBy: [...img.usedBy], sizeBytes: Number(img.sizeBytes) });

const lsCmd = (names: string | string[]): Builder => (y) =>
  y.command(
    names,
    'List images',
    (a) => a.option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'Only ids' }),
    async (argv) => {
      await withClients(argv, async (c, host) => {
        const l = local(c);
        const { images } = await call(l, l.listImages, {}, host);
        if (argv.quiet) return out(images.map((i) => `${i.id}\n`).join(''));
        const headers = ['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE', 'USED BY'];
        const rows = imageRows(images, new Date());
        out(formatList(argv.format, rowObjects(headers, rows, { 'IMAGE ID': 'ID', CREATED: 'CreatedSince' }), () => table(headers, rows), () => images.map(imageJson)));
      });
    },
  );

const pullCmd: Builder = (y) =>
  y.command(
    'pull <reference>',
    'Pull an image from its registry onto this node',
    (a) =>
      a
        .positional('reference', { type: 'string', demandOption: true, describe: 'busybox, registry:5000/app:1.0, name@sha256:...' })
        .option('registry-auth-file', { type: 'string', describe: 'A file holding user:password for the registry' })
        .option('with-registry-auth', { type: 'boolean', default: false, describe: "Use docker login's config.json entry for the registry (used anyway when there is one)" }),
    async (argv) => {
      const reference = argv.reference as string;
      const registryAuth =
        readRegistryAuth({ withRegistryAuth: argv.withRegistryAuth as boolean, registryAuthFile: argv.registryAuthFile as string | undefined }, reference) ?? savedRegistryAuth(reference) ?? '';
      await withClients(argv, async (c, host) => {
        const l = local(c);
        const img = await call(l, l.pullImage, { reference, registryAuth }, host, PULL_TIMEOUT_MS);
        if (wantsJson(argv.format)) return out(json(imageJson(img)));
        out(`${img.id}\n`);
      });
    },
  );

const rmCmd = (names: string[]): Builder => (y) =>
  y.command(
    names,
    'Remove images (by reference, or id prefix); refused while a container or task uses one, unless --force',
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
  );

const pruneCmd: Builder = (y) =>
  y.command(
    'prune',
    'Remove images no container or task uses that have no reference (with -a: every image none uses), and the build cache',
    (a) =>
      a
        .option('all', { alias: 'a', type: 'boolean', default: false, describe: 'Also images with a reference' })
        .option('force', { alias: 'f', type: 'boolean', default: false, describe: 'Do not ask (swarmlet never asks; accepted for docker compatibility)' }),
    async (argv) => {
      await withClients(argv, async (c, host) => {
        const l = local(c);
        const res = await call(l, l.pruneImages, { all: Boolean(argv.all) }, host);
        if (wantsJson(argv.format)) return out(json({ removed: res.removed, reclaimedBytes: Number(res.reclaimedBytes) }));
        if (res.removed.length) out(`Deleted Images:\n${res.removed.map((id) => `deleted: ${id}\n`).join('')}\n`);
        out(`Total reclaimed space: ${humanSize(Number(res.reclaimedBytes))}\n`);
      });
    },
  );

/** The build context and Dockerfile as absolute paths, checked here (the daemon reads them on this machine). */
export function resolveBuildPaths(context: string, file: string | undefined, cwd: string): { contextDir: string; dockerfile: string } {
  const contextDir = path.resolve(cwd, context);
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(contextDir);
  } catch {
    st = undefined;
  }
  if (!st) throw invalidArgument(`unable to prepare context: path ${JSON.stringify(context)} not found`);
  if (!st.isDirectory()) throw invalidArgument(`unable to prepare context: context must be a directory: ${contextDir}`);
  if (file === '-') throw invalidArgument('a Dockerfile from stdin (-f -) is not supported: give a file');
  const dockerfile = file ? path.resolve(cwd, file) : ['Dockerfile', 'Containerfile'].map((f) => path.join(contextDir, f)).find((f) => fs.existsSync(f)) ?? '';
  if (!dockerfile || !fs.existsSync(dockerfile)) throw invalidArgument(`Cannot locate specified Dockerfile: ${file ?? 'Dockerfile'}`);
  return { contextDir, dockerfile };
}

const buildCmd: Builder = (y) =>
  y.command(
    'build <context>',
    'Build an image from a Dockerfile (with buildah, on this node) into its image store',
    (a) =>
      a
        .positional('context', { type: 'string', demandOption: true, describe: 'The build context: a directory' })
        .option('tag', { alias: 't', type: 'string', requiresArg: true, describe: "Name and optionally a tag in the 'name:tag' format (repeatable)" })
        .option('file', { alias: 'f', type: 'string', requiresArg: true, describe: "Name of the Dockerfile (default: 'PATH/Dockerfile')" })
        .option('build-arg', { type: 'string', requiresArg: true, describe: 'Set build-time variables KEY=VALUE (repeatable)' })
        .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'Suppress the build output and print image ID on success' })
        .option('no-cache', { type: 'boolean', default: false, describe: 'Do not use cache when building the image' })
        .option('target', { type: 'string', requiresArg: true, describe: 'Set the target build stage to build' }),
    async (argv) => {
      const { contextDir, dockerfile } = resolveBuildPaths(argv.context as string, argv.file as string | undefined, process.cwd());
      const tags = many(argv.tag);
      const buildArgs = parseBuildArgs(many(argv.buildArg), { ...process.env });
      const quiet = Boolean(argv.quiet);
      await withClients(argv, async (c, host) => {
        const l = local(c);
        let imageId = '';
        const stream = l.buildImage(
          { contextDir, dockerfile, tags, buildArgs, quiet, noCache: Boolean(argv.noCache), target: (argv.target as string | undefined) ?? '', registryAuths: savedRegistryAuths() },
          { deadline: Date.now() + BUILD_TIMEOUT_MS },
        );
        await drain(stream, (m) => {
          if (m.imageId) imageId = m.imageId;
          else if (m.stream === 'stderr') process.stderr.write(m.text);
          else out(m.text);
        }, host);
        if (quiet) return out(`${imageId}\n`);
        out(`Successfully built ${shortImageId(imageId)}\n${tags.map((t) => `Successfully tagged ${familiarRef(t)}\n`).join('')}`);
      });
    },
  );

/** A tag as the store names it (docker.io/library/app:latest for app). */
const normalizedRef = (t: string): string => parseImageReference(t).normalized;
/** A tag as docker shows it: app:latest for docker.io/library/app:latest. */
export const familiarRef = (t: string): string => normalizedRef(t).replace(/^docker\.io\/(library\/)?/, '');

const tagCmd: Builder = (y) =>
  y.command(
    'tag <source> <target>',
    'Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE',
    (a) => a.positional('source', { type: 'string', demandOption: true }).positional('target', { type: 'string', demandOption: true }),
    async (argv) => {
      await withClients(argv, async (c, host) => {
        const l = local(c);
        await call(l, l.tagImage, { source: argv.source as string, target: argv.target as string }, host);
      });
    },
  );

const pushCmd: Builder = (y) =>
  y.command(
    'push <reference>',
    "Push an image from this node to its registry (with the registry's saved login, if any)",
    (a) =>
      a
        .positional('reference', { type: 'string', demandOption: true, describe: 'NAME[:TAG], e.g. localhost:5000/my-image' })
        .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'Suppress verbose output' }),
    async (argv) => {
      const reference = argv.reference as string;
      const registryAuth = savedRegistryAuth(reference) ?? '';
      await withClients(argv, async (c, host) => {
        const l = local(c);
        let digest = '';
        await drain(l.pushImage({ reference, registryAuth }, { deadline: Date.now() + PULL_TIMEOUT_MS }), (m) => {
          if (m.digest) digest = m.digest;
          else if (!argv.quiet) out(m.text);
        }, host);
        const tag = splitReference(normalizedRef(reference))[1];
        out(argv.quiet ? `${normalizedRef(reference)}\n` : `${tag}: digest: ${digest}\n`);
      });
    },
  );

const inspectCmd: Builder = (y) =>
  y.command('inspect <images..>', 'Display detailed information on one or more images', (a) => a.positional('images', { type: 'string', array: true, demandOption: true }), async (argv) => {
    await withClients(argv, async (c, host) => {
      const l = local(c);
      const found: ImageDetail[] = [];
      const errors: string[] = [];
      for (const image of (argv.images as string[]).map(String)) {
        try {
          found.push(await call(l, l.inspectImage, { image }, host));
        } catch (err) {
          errors.push((err as Error).message);
        }
      }
      out(formatInspect(argv.format, found.map(planImageInspect), () => found.map((d) => controlApi().ImageDetail.toJSON(d))));
      if (errors.length) throw new SwarmletError('NotFound', errors.join('; '));
    });
  });

const historyCmd: Builder = (y) =>
  y.command(
    'history <image>',
    'Show the history of an image',
    (a) =>
      a
        .positional('image', { type: 'string', demandOption: true })
        .option('no-trunc', { type: 'boolean', default: false, describe: "Don't truncate output" })
        .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'Only show image IDs' }),
    async (argv) => {
      await withClients(argv, async (c, host) => {
        const l = local(c);
        const rows = planImageHistory(await call(l, l.inspectImage, { image: argv.image as string }, host));
        if (wantsJson(argv.format)) return out(json(rows));
        const full = Boolean(argv.noTrunc);
        const id = (s: string) => (s === '<missing>' || full ? s : shortImageId(s));
        if (argv.quiet) return out(rows.map((r) => `${id(r.id)}\n`).join(''));
        const now = new Date();
        out(
          table(
            ['IMAGE', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT'],
            rows.map((r) => [id(r.id), r.created ? humanAge(r.created, now) : '', full ? r.createdBy : truncate(r.createdBy, 45), humanSize(r.sizeBytes), r.comment]),
          ),
        );
      });
    },
  );

/** `swarmlet image ...`: this node's images, through the local daemon; and docker's top-level shortcuts (build, pull, push, tag, images, rmi). */
export function imageCommands(y: Argv<GlobalArgs>) {
  const sub: Builder[] = [lsCmd(['ls', 'list']), pullCmd, rmCmd(['rm <images..>', 'remove <images..>', 'rmi <images..>']), pruneCmd, buildCmd, tagCmd, pushCmd, inspectCmd, historyCmd];
  let p = y.command('image', "Manage this node's images (oci runtime)", (s: Argv<GlobalArgs>) =>
    sub.reduce((acc, b) => b(acc), s).demandCommand(1, 'image needs a subcommand: ls, pull, push, build, tag, inspect, history, rm or prune'),
  );
  for (const b of [buildCmd, pullCmd, pushCmd, tagCmd, lsCmd('images'), rmCmd(['rmi <images..>'])]) p = b(p);
  return p;
}
