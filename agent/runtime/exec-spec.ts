/**
 * The pure part of the exec runtime: what a task's spec means for the process that runs it (its
 * root, user, environment, argv), and the argv that runs a command that way. No I/O here; the
 * runtime reads the root's passwd and group files and hands them in.
 */
import { invalidArgument } from '../../services/common/errors';

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
export const IMAGE_FORMS = 'exec:/ (the host\'s filesystem) or exec:/path (an existing directory to chroot into)';

/** Everything needed to run the task's command, or a health check beside it; kept in the task's state dir. */
export interface ExecConfig {
  /** "/" for the host's filesystem, else the directory the command is chrooted into. */
  root: string;
  /** Inside the root. */
  workdir: string;
  /** Undefined: the command runs as the agent's user (root), untouched. */
  user?: { uid: number; gid: number; groups: number[] };
  /** KEY=VALUE, the command's whole environment. */
  env: string[];
  hostname: string;
  argv: string[];
  /** The task shares the host's network namespace (`--network host`); else it has its own. */
  hostNetwork?: boolean;
  /** The command runs on a pty (docker's --tty). */
  tty?: boolean;
  /** The command's stdin stays open for attach (docker's --interactive). */
  openStdin?: boolean;
}

/** The root an exec: image names ("/" or an absolute path without . or .. parts). */
export function parseExecImage(image: string): string {
  if (!image.startsWith('exec:')) {
    throw invalidArgument(`image ${JSON.stringify(image)} is not supported by the exec runtime: use ${IMAGE_FORMS}`);
  }
  const root = image.slice('exec:'.length);
  if (!root.startsWith('/') || root.split('/').some((p) => p === '.' || p === '..') || root.includes('\0')) {
    throw invalidArgument(`image ${JSON.stringify(image)} is not valid: use ${IMAGE_FORMS}`);
  }
  const trimmed = root.replace(/\/+/g, '/').replace(/(.)\/$/, '$1');
  return trimmed;
}

/**
 * Whether a task runs in the host's network namespace: its attachments (the allocator's) are the
 * built-in host network's alone. Any other task, `none` included, gets a namespace of its own.
 */
export function usesHostNetwork(attachments: { driver: string }[]): boolean {
  return attachments.length > 0 && attachments.every((a) => a.driver === 'host');
}

/** command then args; command empty: args alone; both empty: refused. */
export function taskArgv(command: string[], args: string[]): string[] {
  const argv = [...command, ...args];
  if (argv.length === 0 || argv[0] === '') throw invalidArgument('the task has no command: give a command or args');
  if (argv.some((a) => a.includes('\0'))) throw invalidArgument('the task\'s command holds a NUL byte');
  return argv;
}

export function taskHostname(taskId: string, hostname: string): string {
  const name = hostname || taskId.slice(0, 12);
  if (name.length > 64 || !/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(name)) {
    throw invalidArgument(`hostname ${JSON.stringify(name)} is not valid: letters, digits, '.' and '-', at most 64 characters`);
  }
  return name;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

function parsePasswd(text: string): PasswdEntry[] {
  return text.split('\n').flatMap((line) => {
    const f = line.split(':');
    if (f.length < 7 || line.startsWith('#') || !/^\d+$/.test(f[2]) || !/^\d+$/.test(f[3])) return [];
    return [{ name: f[0], uid: Number(f[2]), gid: Number(f[3]), home: f[5] }];
  });
}

function parseGroup(text: string): GroupEntry[] {
  return text.split('\n').flatMap((line) => {
    const f = line.split(':');
    if (f.length < 4 || line.startsWith('#') || !/^\d+$/.test(f[2])) return [];
    return [{ name: f[0], gid: Number(f[2]), members: f[3].split(',').filter(Boolean) }];
  });
}

export interface ResolvedUser {
  uid: number;
  gid: number;
  /** Supplementary groups (the primary one included), from the root's /etc/group. */
  groups: number[];
  home: string;
}

/**
 * Resolves a user spec (name, uid, name:group, uid:gid) against the root's /etc/passwd and
 * /etc/group (their text, or undefined when missing), as docker does: a name must exist; a
 * number need not (its gid is then 0 unless given).
 */
export function resolveUser(spec: string, passwdText: string | undefined, groupText: string | undefined): ResolvedUser {
  const [userPart, groupPart, extra] = spec.split(':');
  if (extra !== undefined || userPart === '' || groupPart === '') throw invalidArgument(`user ${JSON.stringify(spec)} is not valid: use user, uid, user:group or uid:gid`);
  const passwd = parsePasswd(passwdText ?? '');
  const groups = parseGroup(groupText ?? '');
  const isNumber = (s: string) => /^\d+$/.test(s) && Number(s) < 2 ** 32 - 1;
  let entry: PasswdEntry | undefined;
  let uid: number;
  if (isNumber(userPart)) {
    uid = Number(userPart);
    entry = passwd.find((p) => p.uid === uid);
  } else {
    entry = passwd.find((p) => p.name === userPart);
    if (!entry) throw invalidArgument(`unable to find user ${userPart}: no matching entries in passwd file`);
    uid = entry.uid;
  }
  let gid = entry?.gid ?? 0;
  if (groupPart !== undefined) {
    if (isNumber(groupPart)) gid = Number(groupPart);
    else {
      const g = groups.find((x) => x.name === groupPart);
      if (!g) throw invalidArgument(`unable to find group ${groupPart}: no matching entries in group file`);
      gid = g.gid;
    }
  }
  const supplementary = entry ? groups.filter((g) => g.members.includes(entry!.name)).map((g) => g.gid) : [];
  return { uid, gid, groups: [...new Set([gid, ...supplementary])], home: entry?.home || '/' };
}

/** The command's environment: PATH, HOSTNAME and HOME defaults, then the spec's entries (which win). */
export function taskEnv(specEnv: string[], hostname: string, home: string): string[] {
  const env = new Map<string, string>([
    ['PATH', DEFAULT_PATH],
    ['HOSTNAME', hostname],
    ['HOME', home],
  ]);
  for (const entry of specEnv) {
    const eq = entry.indexOf('=');
    if (eq <= 0 || entry.startsWith('-') || entry.includes('\0')) {
      throw invalidArgument(`environment entry ${JSON.stringify(entry)} is not valid: use KEY=VALUE`);
    }
    env.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  return [...env].map(([k, v]) => `${k}=${v}`);
}

/** The value of a variable in a KEY=VALUE list. */
export function envValue(env: string[], key: string): string | undefined {
  const found = env.find((e) => e.startsWith(`${key}=`));
  return found?.slice(key.length + 1);
}

/**
 * The argv that runs `argv` as the task's config says, from a process in the task's namespaces on
 * the host's filesystem: `env` (clean environment, default signal handling), then util-linux
 * `unshare` with no namespaces (chroot and working directory), then `setpriv` (user and groups) on
 * the host's root. In a chroot `setpriv` may not exist: unshare sets uid and gid there itself, and
 * supplementary groups are cleared. The working directory is left alone when `opts.cwd` says the
 * command starts in it already.
 */
export function wrapCommand(cfg: ExecConfig, argv: string[], opts: { cwd?: string } = {}): string[] {
  const out = ['env', '-i', '--default-signal', ...cfg.env];
  if (cfg.root === '/') {
    // `opts.cwd`: the directory the caller starts it in (the task's pid 1: /). unshare is then
    // needed only to keep env from taking a command NAME=VALUE for a variable (one exec less).
    const inWorkdir = opts.cwd === cfg.workdir && (cfg.user !== undefined || !argv[0]?.includes('='));
    if (!inWorkdir) out.push('unshare', `--wd=${cfg.workdir}`, '--');
    if (cfg.user) {
      const { uid, gid, groups } = cfg.user;
      out.push('setpriv', `--reuid=${uid}`, `--regid=${gid}`, groups.length > 0 ? `--groups=${groups.join(',')}` : '--clear-groups', '--');
    }
  } else {
    out.push('unshare', `--root=${cfg.root}`, `--wd=${cfg.workdir}`);
    if (cfg.user) out.push(`--setgid=${cfg.user.gid}`, `--setuid=${cfg.user.uid}`);
    out.push('--');
  }
  return [...out, ...argv];
}

/** The signal's name when an exit code says a signal ended the process (128+N). */
export function signalOfExitCode(exitCode: number, signals: Record<string, number>): string | undefined {
  if (exitCode <= 128 || exitCode > 128 + 64) return undefined;
  return Object.keys(signals).find((name) => signals[name] === exitCode - 128);
}

/**
 * the shim's mounts file for a task's secrets and configs: one line per mount, tab-separated
 * `d|f SOURCE TARGET` (d: the secrets' directory, made in the root when missing; f: a config,
 * mounted over a file the root must have). Empty when there is nothing to mount.
 */
export function renderExecFileMounts(m: { secretsDir?: string; configs: { source: string; target: string }[] } | undefined): string {
  if (!m) return '';
  const lines = [...(m.secretsDir ? [['d', m.secretsDir, '/run/secrets']] : []), ...m.configs.map((c) => ['f', c.source, c.target])];
  for (const l of lines) if (l.some((p) => /[\t\n\0]/.test(p))) throw invalidArgument(`mount path ${JSON.stringify(l[2])} holds a tab, newline or NUL`);
  return lines.map((l) => `${l.join('\t')}\n`).join('');
}
