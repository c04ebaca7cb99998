/**
 * Validation of a service's mounts (ContainerSpec.mounts), with paths cleaned. Pure: the agent's
 * volume store and the CLI share the volume name rule from here.
 */
import { invalidArgument } from '../../services/common/errors';
import { Mount, MountType } from '../../services/gen/swarmlet/v1/types';
import { isVolumeName } from '../../services/common/volume-name';

export const EXEC_MOUNTS_REFUSED = "--mount needs an oci image; exec: tasks see the host's filesystem";

/** `/a//b/./c/../d/` -> `/a/b/d` (as Go's path.Clean); undefined for a relative path or one with NUL. */
export function cleanAbsolutePath(p: string): string | undefined {
  if (!p.startsWith('/') || p.includes('\0')) return undefined;
  const parts: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return `/${parts.join('/')}`;
}

const TYPE_NAMES: Record<number, string> = { [MountType.MOUNT_TYPE_BIND]: 'bind', [MountType.MOUNT_TYPE_VOLUME]: 'volume', [MountType.MOUNT_TYPE_TMPFS]: 'tmpfs' };

export const mountTypeName = (t: MountType): string => TYPE_NAMES[t] ?? String(t);

/** Throws InvalidArgument for mounts a task of `image` cannot have; returns them with clean paths. */
export function validateMounts(mounts: Mount[], image: string): Mount[] {
  if (mounts.length === 0) return [];
  if (image.startsWith('exec:')) throw invalidArgument(EXEC_MOUNTS_REFUSED);
  const targets = new Set<string>();
  return mounts.map((m) => {
    const out = validateMount(m);
    if (targets.has(out.target)) throw invalidArgument(`duplicate mount target ${out.target}: each target takes one mount`);
    targets.add(out.target);
    return out;
  });
}

function validateMount(m: Mount): Mount {
  const type = m.type ?? MountType.MOUNT_TYPE_BIND;
  if (TYPE_NAMES[type] === undefined) throw invalidArgument(`invalid mount type ${type}: use volume, bind or tmpfs`);
  const what = `${TYPE_NAMES[type]} mount`;
  const rawTarget = m.target ?? '';
  if (!rawTarget) throw invalidArgument(`a ${what} needs a target (target=/path in the task)`);
  const target = cleanAbsolutePath(rawTarget);
  if (!target) throw invalidArgument(`invalid ${what} target ${JSON.stringify(rawTarget)}: it must be an absolute path`);
  if (target === '/') throw invalidArgument(`invalid ${what} target ${JSON.stringify(rawTarget)}: a mount can't cover the task's root`);
  const size = m.tmpfsSizeBytes ?? 0;
  if (!Number.isSafeInteger(size) || size < 0) throw invalidArgument(`invalid tmpfs size ${size}: use a size of 0 (the kernel's default) or more`);
  if (size > 0 && type !== MountType.MOUNT_TYPE_TMPFS) throw invalidArgument(`a ${what} takes no tmpfs size`);
  const readonly = Boolean(m.readonly);
  const rawSource = m.source ?? '';
  let source = rawSource;
  if (type === MountType.MOUNT_TYPE_BIND) {
    if (!rawSource) throw invalidArgument(`a bind mount needs a source (source=/path on the node) for target ${target}`);
    const clean = cleanAbsolutePath(rawSource);
    if (!clean) throw invalidArgument(`invalid bind mount source ${JSON.stringify(rawSource)}: it must be an absolute path on the node`);
    source = clean;
  } else if (type === MountType.MOUNT_TYPE_VOLUME) {
    if (rawSource && !isVolumeName(rawSource)) {
      throw invalidArgument(`invalid volume name ${JSON.stringify(rawSource)}: use letters, digits, '_', '.' and '-', starting with a letter or digit`);
    }
  } else if (rawSource) {
    throw invalidArgument(`a tmpfs mount takes no source (got ${JSON.stringify(rawSource)})`);
  }
  return { type, source, target, readonly, tmpfsSizeBytes: size };
}
