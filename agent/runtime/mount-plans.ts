/**
 * A task's mounts as OCI runtime-spec mount entries (config.json `mounts`). Pure: the host
 * directories of volumes are resolved beforehand (prepareMounts in mounts.ts).
 */
import { internal } from '../../services/common/errors';
import { Mount, MountType } from '../../services/gen/swarmlet/v1/types';

/** One entry of an OCI config.json's `mounts`. */
export interface OciMount {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

/** As docker mounts them: tmpfs with no exec, suid or devices; sticky and world-writable like /tmp. */
const TMPFS_OPTIONS = ['nosuid', 'nodev', 'noexec'];
const TMPFS_MODE = '1777';

const depth = (p: string) => p.split('/').filter(Boolean).length;

/**
 * The OCI mounts of a task's mounts, parents before children (a mount on /a/b after one on /a
 * stays visible). `resolved` maps a volume mount's target to its host directory; bind mounts use
 * their source as it is.
 */
export function planMounts(mounts: Mount[], resolved: Map<string, string>): OciMount[] {
  const ordered = mounts.map((m, i) => ({ m, i })).sort((a, b) => depth(a.m.target) - depth(b.m.target) || a.i - b.i);
  return ordered.map(({ m }) => planMount(m, resolved));
}

function planMount(m: Mount, resolved: Map<string, string>): OciMount {
  const access = m.readonly ? 'ro' : 'rw';
  switch (m.type) {
    case MountType.MOUNT_TYPE_BIND:
      return { destination: m.target, type: 'bind', source: m.source, options: ['rbind', 'rprivate', access] };
    case MountType.MOUNT_TYPE_VOLUME: {
      const source = resolved.get(m.target);
      if (!source) throw internal(`volume mount on ${m.target} has no host directory`);
      return { destination: m.target, type: 'bind', source, options: ['rbind', 'rprivate', access] };
    }
    case MountType.MOUNT_TYPE_TMPFS: {
      const size = m.tmpfsSizeBytes > 0 ? [`size=${m.tmpfsSizeBytes}`] : [];
      return { destination: m.target, type: 'tmpfs', source: 'tmpfs', options: [...TMPFS_OPTIONS, `mode=${TMPFS_MODE}`, ...size, access] };
    }
    default:
      throw internal(`unknown mount type ${m.type} on ${m.target}`);
  }
}
