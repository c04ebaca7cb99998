/**
 * `--mount` (docker's CSV syntax), `--mount-add` and `--mount-rm` -> ContainerSpec.mounts. Pure:
 * the orchestrator's validateMounts checks paths, names and duplicates afterwards.
 */
import { invalidArgument } from '../services/common/errors';
import { Mount, MountType, Service } from '../services/gen/swarmlet/v1/types';
import { cleanAbsolutePath, mountTypeName } from '../manager/orchestrator/mount-spec';

const TYPES: Record<string, MountType> = { volume: MountType.MOUNT_TYPE_VOLUME, bind: MountType.MOUNT_TYPE_BIND, tmpfs: MountType.MOUNT_TYPE_TMPFS };
const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, m: 1024 ** 2, mb: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3 };
const KEYS = 'type, source (src), target (dst, destination), readonly (ro), tmpfs-size';

function bool(value: string | undefined, key: string, text: string): boolean {
  if (value === undefined) return true;
  const v = value.toLowerCase();
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw invalidArgument(`invalid --mount ${JSON.stringify(text)}: ${key} is true or false, not ${JSON.stringify(value)}`);
}

function size(value: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)([a-z]*)$/i.exec(value.trim());
  const unit = m ? SIZE_UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) throw invalidArgument(`invalid --mount ${JSON.stringify(text)}: tmpfs-size is a size like 64m, 1g or 512k`);
  return Math.round(Number(m[1]) * unit);
}

/**
 * `type=volume,source=data,target=/data,readonly` -> a Mount. As in docker, the type defaults to
 * volume, and a key appears at most once.
 */
export function parseMountFlag(text: string): Mount {
  const m: Mount = { type: MountType.MOUNT_TYPE_VOLUME, source: '', target: '', readonly: false, tmpfsSizeBytes: 0 };
  const seen = new Set<string>();
  for (const field of text.split(',')) {
    if (!field.trim()) throw invalidArgument(`invalid --mount ${JSON.stringify(text)}: an empty field`);
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).trim().toLowerCase();
    const value = eq < 0 ? undefined : field.slice(eq + 1);
    const canonical = { src: 'source', dst: 'target', destination: 'target', ro: 'readonly' }[key] ?? key;
    if (seen.has(canonical)) throw invalidArgument(`invalid --mount ${JSON.stringify(text)}: ${canonical} is given twice`);
    seen.add(canonical);
    if (value === undefined && canonical !== 'readonly') throw invalidArgument(`invalid --mount ${JSON.stringify(text)}: ${key} needs a value (${key}=...)`);
    switch (canonical) {
      case 'type':
        if (TYPES[value!] === undefined) throw invalidArgument(`invalid --mount ${JSON.stringify(text)}: type is volume, bind or tmpfs, not ${JSON.stringify(value)}`);
        m.type = TYPES[value!];
        break;
      case 'source':
        m.source = value!;
        break;
      case 'target':
        m.target = value!;
        break;
      case 'readonly':
        m.readonly = bool(value, key, text);
        break;
      case 'tmpfs-size':
        m.tmpfsSizeBytes = size(value!, text);
        break;
      default:
        throw invalidArgument(`invalid --mount ${JSON.stringify(text)}: unknown key ${JSON.stringify(key)} (keys: ${KEYS})`);
    }
  }
  if (!m.target) throw invalidArgument(`invalid --mount ${JSON.stringify(text)}: target=/path in the task is required`);
  if (m.tmpfsSizeBytes && m.type !== MountType.MOUNT_TYPE_TMPFS) throw invalidArgument(`invalid --mount ${JSON.stringify(text)}: tmpfs-size needs type=tmpfs`);
  if (m.type === MountType.MOUNT_TYPE_TMPFS && m.source) throw invalidArgument(`invalid --mount ${JSON.stringify(text)}: a tmpfs mount takes no source`);
  if (m.type === MountType.MOUNT_TYPE_BIND && !m.source) throw invalidArgument(`invalid --mount ${JSON.stringify(text)}: a bind mount needs source=/path on the node`);
  return m;
}

const sameTarget = (a: string, b: string) => (cleanAbsolutePath(a) ?? a) === (cleanAbsolutePath(b) ?? b);

/**
 * `--mount-rm TARGET` then `--mount-add SPEC` on a service's mounts: removing a target the service
 * does not mount is refused (a typo would otherwise change nothing, silently); an added mount
 * replaces one on the same target; new ones go last, in the order given.
 */
export function planMountChange(current: Mount[], add: string[], rm: string[]): Mount[] {
  for (const target of rm) {
    if (!current.some((m) => sameTarget(m.target, target))) {
      const targets = current.map((m) => m.target);
      throw invalidArgument(`--mount-rm ${target}: the service mounts nothing there (${targets.length ? `its mount targets: ${targets.join(', ')}` : 'it has no mounts'})`);
    }
  }
  const added = add.map(parseMountFlag);
  const kept = current.filter((m) => !rm.some((t) => sameTarget(m.target, t)) && !added.some((a) => sameTarget(m.target, a.target)));
  return [...kept.map((m) => ({ ...m })), ...added];
}

/** A mount as `service inspect` shows it: every field, the type as a word (ts-proto's JSON drops a bind mount's type, the enum's zero). */
export function mountJson(m: Mount): Record<string, unknown> {
  return { type: mountTypeName(m.type), source: m.source, target: m.target, readonly: m.readonly, ...(m.tmpfsSizeBytes ? { tmpfsSizeBytes: m.tmpfsSizeBytes } : {}) };
}

/** Service.toJSON with the mounts of its spec and previous spec shown whole. */
export function serviceJsonWithMounts(s: Service): unknown {
  const out = Service.toJSON(s) as Record<string, any>;
  for (const key of ['spec', 'previousSpec'] as const) {
    const mounts = s[key]?.task?.container?.mounts ?? [];
    const container = out[key]?.task?.container;
    if (container && mounts.length) container.mounts = mounts.map(mountJson);
  }
  return out;
}
