/**
 * A task's mounts as OCI runtime-spec mount entries (config.json `mounts`). Pure: the host
 * directories of volumes are resolved beforehand (prepareMounts in mounts.ts).
 */
import { failedPrecondition, internal, invalidArgument } from '../../services/common/errors';
import { Mount, MountType, Task } from '../../services/gen/swarmlet/v1/types';

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

// ---- secrets and configs --------------------------------------------------------------

/** Where a task's secrets are mounted. */
export const TASK_SECRETS_DIR = '/run/secrets';

/** One file a task gets from a secret or config: where it goes in the task's directory on the node's tmpfs, and its owner and mode. */
export interface TaskFile {
  kind: 'secret' | 'config';
  /** Relative to the task's directory: secrets/<target> or configs/<n>. */
  path: string;
  /** Secrets: their path under /run/secrets; configs: their absolute target in the task. */
  target: string;
  data: Uint8Array;
  uid: number;
  gid: number;
  mode: number;
}

/** What the runtime mounts of a task's files (once written on the node's tmpfs). */
export interface TaskFileMounts {
  /** The host directory holding the task's secrets: mounted read-only at /run/secrets. */
  secretsDir?: string;
  /** Each config's host file and its target in the task: mounted read-only there. */
  configs: { source: string; target: string }[];
}

/**
 * The files of a task's secrets and configs, from the values its session message carried
 * (by id). A value that did not come (the secret is gone, or no manager could open it) refuses
 * the task before anything is written.
 */
export function planTaskFiles(task: Task, values: Map<string, Uint8Array>): TaskFile[] {
  const c = task.spec?.container;
  const out: TaskFile[] = [];
  for (const r of c?.secrets ?? []) {
    const data = values.get(r.secretId);
    if (!data) throw failedPrecondition(`secret ${r.secretName || r.secretId} is not available to this node (was it removed?)`);
    const target = r.file?.name || r.secretName;
    out.push({ kind: 'secret', path: `secrets/${target}`, target, data, uid: r.file?.uid ?? 0, gid: r.file?.gid ?? 0, mode: r.file?.mode || 0o444 });
  }
  (c?.configs ?? []).forEach((r, i) => {
    const data = values.get(r.configId);
    if (!data) throw failedPrecondition(`config ${r.configName || r.configId} is not available to this node (was it removed?)`);
    out.push({ kind: 'config', path: `configs/${i}`, target: r.file?.name || `/${r.configName}`, data, uid: r.file?.uid ?? 0, gid: r.file?.gid ?? 0, mode: r.file?.mode || 0o444 });
  });
  for (const f of out) {
    const parts = f.target.split('/');
    if (f.target.includes('\0') || parts.includes('..')) throw invalidArgument(`${f.kind} target ${JSON.stringify(f.target)} is not valid`);
  }
  return out;
}

/** Where a task's files are mounted from, once written under `taskDir`. */
export function planTaskFileMounts(files: TaskFile[], taskDir: string): TaskFileMounts {
  return {
    ...(files.some((f) => f.kind === 'secret') ? { secretsDir: `${taskDir}/secrets` } : {}),
    configs: files.filter((f) => f.kind === 'config').map((f) => ({ source: `${taskDir}/${f.path}`, target: f.target })),
  };
}

/** The OCI mounts of a task's files: its secrets' directory read-only at /run/secrets, each config read-only at its target. */
export function planFileMounts(m: TaskFileMounts | undefined): OciMount[] {
  if (!m) return [];
  const ro = ['rbind', 'rprivate', 'ro', 'nosuid', 'nodev', 'noexec'];
  return [
    ...(m.secretsDir ? [{ destination: TASK_SECRETS_DIR, type: 'bind', source: m.secretsDir, options: ro }] : []),
    ...m.configs.map((c) => ({ destination: c.target, type: 'bind', source: c.source, options: ro })),
  ];
}
