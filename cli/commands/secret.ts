import { readFileSync } from 'node:fs';
import type { Argv } from 'yargs';
import { invalidArgument } from '../../services/common/errors';
import type { Config, Secret } from '../../services/gen/swarmlet/v1/types';
import { call, Clients, controlApi } from '../client';

const typesApi = (): typeof import('../../services/gen/swarmlet/v1/types') => require('../../services/gen/swarmlet/v1/types');
import { formatInspect, formatList, json, rowObjects, table } from '../format';
import { GlobalArgs, out, withClients } from './context';
import { ago } from './service';
import { volumeLabels } from './volume';

/** `secret` and `config` are the same commands over two kinds of object. */
export type FileObjectKind = 'secret' | 'config';

const repeated = (v: unknown): string[] => (v === undefined ? [] : ([] as string[]).concat(v as string | string[]));

/** FILE's bytes, or stdin's for `-` (as docker reads them). */
export function readData(file: string, readStdin: () => Buffer = () => readFileSync(0)): Buffer {
  if (file === '-') return readStdin();
  try {
    return readFileSync(file);
  } catch (err) {
    throw invalidArgument(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`, err);
  }
}

/** What `inspect` shows, in docker's shape; a config's data too (base64), never a secret's. */
export function fileObjectJson(o: Secret | Config, data?: Uint8Array) {
  return {
    ID: o.id,
    Version: { Index: o.meta?.version ?? 0 },
    CreatedAt: o.meta?.createdAt ?? '',
    UpdatedAt: o.meta?.updatedAt ?? '',
    Spec: { Name: o.spec?.name ?? '', Labels: { ...(o.spec?.labels ?? {}) }, ...(data ? { Data: Buffer.from(data).toString('base64') } : {}) },
  };
}

/** `secret ls` / `config ls` rows, as docker shows them. */
export function fileObjectRows(kind: FileObjectKind, objects: (Secret | Config)[], now = Date.now()): string[][] {
  return objects.map((o) => [o.id.slice(0, 25), o.spec?.name ?? '', ...(kind === 'secret' ? [''] : []), ago(o.meta?.createdAt, now), ago(o.meta?.updatedAt, now)]);
}

function api(c: Clients, host: string, kind: FileObjectKind) {
  const ctl = c.control;
  return kind === 'secret'
    ? {
        create: (name: string, labels: Record<string, string>, data: Buffer) => call(ctl, ctl.createSecret, { spec: { name, labels }, data }, host),
        list: async () => (await call(ctl, ctl.listSecrets, {}, host)).secrets,
        get: async (ref: string) => ({ obj: await call(ctl, ctl.getSecret, { secret: ref }, host), data: undefined }),
        // The API's object, never the secret's data (not even sealed).
        apiJson: (o: Secret | Config): unknown => typesApi().Secret.toJSON({ ...(o as Secret), dataSealed: Buffer.alloc(0) }),
        remove: (ref: string) => call(ctl, ctl.removeSecret, { secret: ref }, host),
      }
    : {
        create: (name: string, labels: Record<string, string>, data: Buffer) => call(ctl, ctl.createConfig, { spec: { name, labels }, data }, host),
        list: async () => (await call(ctl, ctl.listConfigs, {}, host)).configs,
        get: async (ref: string) => {
          const res = await call(ctl, ctl.getConfig, { config: ref }, host);
          return { obj: res.config!, data: res.data };
        },
        // `ls` lists Configs; `inspect` gets what GetConfig answers, the config and its data.
        apiJson: (o: Secret | Config, data?: Uint8Array): unknown => (data === undefined ? typesApi().Config.toJSON(o) : controlApi().GetConfigResponse.toJSON({ config: o, data: Buffer.from(data) })),
        remove: (ref: string) => call(ctl, ctl.removeConfig, { config: ref }, host),
      };
}

/** `swarmlet secret ...` or `swarmlet config ...`, through a manager's Control API. */
export function fileObjectCommands(y: Argv<GlobalArgs>, kind: FileObjectKind) {
  const Kind = kind === 'secret' ? 'Secret' : 'Config';
  return y.command(kind, `Manage swarm ${kind}s`, (s: Argv<GlobalArgs>) =>
    s
      .command(
        'create <name> <file>',
        `Create a ${kind} from a file or STDIN (-) as content`,
        (a) =>
          a
            .positional('name', { type: 'string', demandOption: true })
            .positional('file', { type: 'string', demandOption: true, describe: 'Path, or - for STDIN' })
            .option('label', { alias: 'l', type: 'string', describe: `${Kind} label KEY=VALUE (repeatable)` }),
        async (argv) => {
          const labels = volumeLabels(repeated(argv.label));
          // yargs reads a lone `-` as an empty string: it is docker's STDIN.
          const data = readData(argv.file === '' ? '-' : String(argv.file));
          await withClients(argv, async (c, host) => {
            const created = await api(c, host, kind).create(String(argv.name), labels, data);
            out(`${created.id}\n`);
          });
        },
      )
      .command(
        ['ls', 'list'],
        `List ${kind}s`,
        (a) => a.option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'Only IDs' }),
        async (argv) => {
          await withClients(argv, async (c, host) => {
            const calls = api(c, host, kind);
            const objects = await calls.list();
            if (argv.quiet) return out(objects.map((o) => `${o.id}\n`).join(''));
            const headers = ['ID', 'NAME', ...(kind === 'secret' ? ['DRIVER'] : []), 'CREATED', 'UPDATED'];
            const rows = fileObjectRows(kind, objects);
            out(formatList(argv.format, rowObjects(headers, rows, { CREATED: 'CreatedAt', UPDATED: 'UpdatedAt' }), () => table(headers, rows), () => objects.map((o) => calls.apiJson(o))));
          });
        },
      )
      .command(
        `inspect <${kind}s..>`,
        kind === 'secret' ? 'Display detailed information on one or more secrets (never their values)' : 'Display detailed information on one or more configs',
        (a) => a.positional(`${kind}s`, { type: 'string', array: true, demandOption: true }),
        async (argv) => {
          await withClients(argv, async (c, host) => {
            const calls = api(c, host, kind);
            const found: { obj: Secret | Config; data?: Uint8Array }[] = [];
            for (const ref of argv[`${kind}s`] as string[]) found.push(await calls.get(ref));
            out(formatInspect(argv.format, found.map((f) => fileObjectJson(f.obj, f.data)), () => found.map((f) => calls.apiJson(f.obj, f.data))));
          });
        },
      )
      .command(
        [`rm <${kind}s..>`, `remove <${kind}s..>`],
        `Remove one or more ${kind}s`,
        (a) => a.positional(`${kind}s`, { type: 'string', array: true, demandOption: true }),
        async (argv) => {
          await withClients(argv, async (c, host) => {
            for (const ref of argv[`${kind}s`] as string[]) {
              await api(c, host, kind).remove(ref);
              out(`${ref}\n`);
            }
          });
        },
      )
      .demandCommand(1, `a ${kind} command is required`),
  );
}

export const secretCommands = (y: Argv<GlobalArgs>) => fileObjectCommands(y, 'secret');
