/**
 * Pure plans for secrets and configs (swarmkit's model): valid names and values, which one a
 * reference means, what a service's references become once resolved (ids, file targets), and
 * which services use one. No I/O.
 */
import { failedPrecondition, invalidArgument, notFound } from '../services/common/errors';
import { checkRef } from '../services/common/object-ref';
import { Config, ConfigReference, FileTarget, Secret, SecretReference, Service, ServiceSpec } from '../services/gen/swarmlet/v1/types';
import type { FileObjectKind } from './store/store';

/** Where a task's secrets are, as docker has them. */
export const SECRETS_DIR = '/run/secrets';
/** docker's default file mode of a secret or config. */
export const DEFAULT_FILE_MODE = 0o444;
/** swarmkit's limits: 500 KiB for a secret, 1000 KiB for a config. */
export const MAX_DATA_BYTES: Record<FileObjectKind, number> = { secret: 500 * 1024, config: 1000 * 1024 };

const NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$/;

export type FileObject = Secret | Config;

/** Refuses a name or value docker would refuse. */
export function validateFileObject(kind: FileObjectKind, name: string, data: Uint8Array): void {
  if (!name) throw invalidArgument(`a ${kind} needs a name`);
  if (name.length > 64 || !NAME.test(name)) throw invalidArgument(`invalid ${kind} name ${JSON.stringify(name)}: up to 64 letters, digits, '.', '_' and '-', starting and ending with a letter or digit`);
  if (data.length === 0) throw invalidArgument(`${kind} data must be larger than 0 and less than ${MAX_DATA_BYTES[kind] / 1024} KB`);
  if (data.length > MAX_DATA_BYTES[kind]) throw invalidArgument(`${kind} data must be larger than 0 and less than ${MAX_DATA_BYTES[kind] / 1024} KB`);
}

/** Finds a secret or config by full id, name, or unique id prefix. */
export function resolveFileObject<T extends FileObject>(kind: FileObjectKind, objects: T[], ref: string): T {
  const wanted = ref.trim();
  if (!wanted) throw invalidArgument(`a ${kind} name or id is required`);
  checkRef(kind, wanted);
  const exact = objects.find((o) => o.id === wanted || o.spec?.name === wanted);
  if (exact) return exact;
  const byPrefix = objects.filter((o) => o.id.startsWith(wanted));
  if (byPrefix.length === 1) return byPrefix[0];
  if (byPrefix.length > 1) throw invalidArgument(`${kind} id prefix ${wanted} is ambiguous (${byPrefix.length} matches)`);
  throw notFound(`no such ${kind}: ${wanted}`);
}

/** A path's parts, refused when it could leave where it is put (`..`), or holds a NUL. */
function pathParts(kind: FileObjectKind, target: string): string[] {
  if (target.includes('\0')) throw invalidArgument(`${kind} target ${JSON.stringify(target)} holds a NUL byte`);
  const parts = target.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..')) throw invalidArgument(`${kind} target ${JSON.stringify(target)} may not hold '..'`);
  return parts;
}

/** A secret's file, relative to /run/secrets: its target there (absolute only inside /run/secrets), default its name. */
export function secretFileName(target: string, name: string): string {
  const t = target || name;
  if (t.startsWith('/')) {
    const parts = pathParts('secret', t);
    if (parts[0] !== 'run' || parts[1] !== 'secrets' || parts.length < 3) throw invalidArgument(`secret target ${t} must be a file name, or a path inside ${SECRETS_DIR}`);
    return parts.slice(2).join('/');
  }
  const parts = pathParts('secret', t);
  if (parts.length === 0) throw invalidArgument(`secret target ${JSON.stringify(t)} names no file`);
  return parts.join('/');
}

/** A config's file: an absolute path (a relative one is taken from /, as docker does), default /NAME. */
export function configFilePath(target: string, name: string): string {
  const parts = pathParts('config', target || name);
  if (parts.length === 0) throw invalidArgument(`config target ${JSON.stringify(target)} names no file`);
  return `/${parts.join('/')}`;
}

function fileTarget(kind: FileObjectKind, file: FileTarget | undefined, name: string): FileTarget {
  const mode = file?.mode || DEFAULT_FILE_MODE;
  if (mode > 0o777) throw invalidArgument(`${kind} ${name}: mode ${mode.toString(8)} is not a file mode (0 to 0777)`);
  const path = kind === 'secret' ? secretFileName(file?.name ?? '', name) : configFilePath(file?.name ?? '', name);
  return { name: path, uid: file?.uid ?? 0, gid: file?.gid ?? 0, mode };
}

function resolveRef(kind: FileObjectKind, objects: FileObject[], id: string, name: string): FileObject {
  const byId = id ? objects.find((o) => o.id === id) : undefined;
  if (byId) return byId;
  checkRef(kind, id);
  if (!name) throw notFound(`no such ${kind}: ${id}`);
  return resolveFileObject(kind, objects, name);
}

/**
 * The spec with its secret and config references resolved against what exists: each gets the
 * object's id and name, and its file target with every default filled in. A reference to what
 * does not exist, or two files on the same target, are refused.
 */
export function planFileReferences(spec: ServiceSpec, secrets: Secret[], configs: Config[]): ServiceSpec {
  const c = spec.task?.container;
  if (!c || (c.secrets.length === 0 && c.configs.length === 0)) return spec;
  const seen = new Map<string, string>();
  const claim = (path: string, what: string) => {
    const other = seen.get(path);
    if (other) throw invalidArgument(`${what} and ${other} have the same target ${path}`);
    seen.set(path, what);
  };
  const secretRefs: SecretReference[] = c.secrets.map((r) => {
    const s = resolveRef('secret', secrets, r.secretId, r.secretName);
    const file = fileTarget('secret', r.file, s.spec!.name);
    claim(`${SECRETS_DIR}/${file.name}`, `secret ${s.spec!.name}`);
    return { secretId: s.id, secretName: s.spec!.name, file };
  });
  const configRefs: ConfigReference[] = c.configs.map((r) => {
    const o = resolveRef('config', configs, r.configId, r.configName);
    const file = fileTarget('config', r.file, o.spec!.name);
    claim(file.name, `config ${o.spec!.name}`);
    return { configId: o.id, configName: o.spec!.name, file };
  });
  return { ...spec, task: { ...spec.task!, container: { ...c, secrets: secretRefs, configs: configRefs } } };
}

/** The ids of the secrets (or configs) a spec refers to. */
export function referencedIds(kind: FileObjectKind, spec: ServiceSpec | undefined): string[] {
  const c = spec?.task?.container;
  if (!c) return [];
  return kind === 'secret' ? c.secrets.map((r) => r.secretId) : c.configs.map((r) => r.configId);
}

/** Refuses to remove a secret or config that a service uses (its spec, or the previous one a rollback would bring back), naming the services. */
export function checkUnused(kind: FileObjectKind, obj: FileObject, services: Service[]): void {
  const users = services.filter((s) => referencedIds(kind, s.spec).includes(obj.id) || referencedIds(kind, s.previousSpec).includes(obj.id));
  if (users.length === 0) return;
  const names = users.map((s) => s.spec?.name ?? s.id).sort();
  throw failedPrecondition(`${kind} '${obj.spec?.name}' is in use by the following service${names.length === 1 ? '' : 's'}: ${names.join(', ')}`);
}

/** What the API returns of a secret or config: never its value, sealed or not. */
export const withoutData = <T extends FileObject>(o: T): T => ({ ...o, dataSealed: Buffer.alloc(0) });
