/**
 * From `run` and `container create` flags (docker's names and defaults) to a ContainerConfig.
 * Pure: the daemon checks names, networks and images.
 */
import { invalidArgument } from '../services/common/errors';
import { ContainerConfig } from '../services/gen/swarmlet/v1/control';
import { Mount, MountType, PullPolicy } from '../services/gen/swarmlet/v1/types';
import { parseMountFlag } from './mount-flags';
import { parsePublish } from '../agent/containers/port-plans';
import { parseBytes, parseCpus } from './service-flags';
import { volumeLabels } from './commands/volume';

export interface ContainerFlags {
  name?: string;
  env?: string[];
  /** KEY=VALUE lines of the --env-file files, read by the caller. */
  envFileLines?: string[];
  workdir?: string;
  user?: string;
  hostname?: string;
  entrypoint?: string;
  label?: string[];
  network?: string[];
  networkAlias?: string[];
  ip?: string;
  /** -p/--publish */
  publish?: string[];
  /** -P/--publish-all */
  publishAll?: boolean;
  volume?: string[];
  mount?: string[];
  readOnly?: boolean;
  /** --init */
  init?: boolean;
  tmpfs?: string[];
  memory?: string;
  memorySwap?: string;
  cpus?: string;
  pidsLimit?: string | number;
  restart?: string;
  stopTimeout?: string | number;
  rm?: boolean;
  interactive?: boolean;
  tty?: boolean;
}

/** `-v name:/path[:ro]`, `-v /host/path:/path[:ro|rw]`, `-v /path` (an anonymous volume). */
export function parseVolumeFlag(text: string): Mount {
  const parts = text.split(':');
  const bad = () => invalidArgument(`invalid volume specification: '${text}'`);
  let mode = '';
  if (parts.length === 3) mode = parts.pop()!;
  if (parts.length > 2 || parts.some((p) => p === '')) throw bad();
  if (mode && mode !== 'ro' && mode !== 'rw') throw invalidArgument(`invalid mode: ${mode}`);
  const readonly = mode === 'ro';
  if (parts.length === 1) {
    if (!parts[0].startsWith('/')) throw invalidArgument(`invalid volume specification: '${text}': the mount point must be an absolute path`);
    return { type: MountType.MOUNT_TYPE_VOLUME, source: '', target: parts[0], readonly, tmpfsSizeBytes: 0 };
  }
  const [source, target] = parts;
  if (!target.startsWith('/')) throw invalidArgument(`invalid volume specification: '${text}': the mount point must be an absolute path`);
  if (source.startsWith('/')) return { type: MountType.MOUNT_TYPE_BIND, source, target, readonly, tmpfsSizeBytes: 0 };
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(source)) throw invalidArgument(`invalid volume specification: '${text}': "${source}" includes invalid characters for a local volume name`);
  return { type: MountType.MOUNT_TYPE_VOLUME, source, target, readonly, tmpfsSizeBytes: 0 };
}

/** `--tmpfs /path[:size=64m]`. */
export function parseTmpfsFlag(text: string): Mount {
  const [target, opts] = [text.split(':')[0], text.split(':').slice(1).join(':')];
  if (!target.startsWith('/')) throw invalidArgument(`invalid --tmpfs ${JSON.stringify(text)}: the mount point must be an absolute path`);
  let size = 0;
  for (const o of opts ? opts.split(',') : []) {
    if (o.startsWith('size=')) size = parseBytes(o.slice(5), '--tmpfs size');
    else if (o !== 'rw' && o !== 'noexec' && o !== 'nosuid' && o !== 'nodev' && o !== 'exec') throw invalidArgument(`invalid --tmpfs option ${JSON.stringify(o)}: size=SIZE is supported`);
  }
  return { type: MountType.MOUNT_TYPE_TMPFS, source: '', target, readonly: false, tmpfsSizeBytes: size };
}

/** `KEY=VALUE` and `KEY` lines of an env file; blank lines and # comments skipped (docker's format). */
export function parseEnvFile(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.replace(/\r$/, ''))
    .filter((l) => l.trim() !== '' && !l.trimStart().startsWith('#'))
    .map((l) => {
      if (/\s/.test(l.split('=')[0])) throw invalidArgument(`invalid env file line ${JSON.stringify(l)}: variable name contains whitespaces`);
      return l;
    });
}

function count(v: string | number, what: string, min = 0): number {
  const s = String(v).trim();
  if (!/^-?\d+$/.test(s) || Number(s) < min) throw invalidArgument(`invalid argument "${v}" for "${what}" flag: a whole number`);
  return Number(s);
}

/**
 * docker's `--memory-swap` (memory plus swap): -1 unlimited swap, N (>= --memory) N - memory of
 * swap; 0 or absent: none beyond the memory limit (swarmlet's default). Docker's messages.
 */
export function parseMemorySwap(text: string | undefined, memory: number): number {
  if (text === undefined || text === '' || text === '0') return 0;
  const swap = text === '-1' ? -1 : parseBytes(text, '--memory-swap');
  if (!memory) throw invalidArgument('You should always set the Memory limit when using Memoryswap limit, see usage');
  if (swap !== -1 && swap < memory) throw invalidArgument('Minimum memoryswap limit should be larger than memory limit, see usage');
  return swap;
}

/** The config `run`/`create` send, from the flags, the image and what follows it. */
export function containerConfigFromFlags(f: ContainerFlags, image: string, command: string[], env: Record<string, string | undefined> = {}): ContainerConfig {
  if (!image) throw invalidArgument('"run" requires at least 1 argument: an image');
  const memory = f.memory !== undefined ? parseBytes(f.memory, '--memory') : 0;
  const memorySwap = parseMemorySwap(f.memorySwap, memory);
  const nanoCpus = f.cpus !== undefined ? parseCpus(f.cpus, '--cpus') : 0;
  const pids = f.pidsLimit !== undefined ? count(f.pidsLimit, 'pids-limit', -1) : 0;
  const stop = f.stopTimeout !== undefined ? count(f.stopTimeout, 'stop-timeout', 0) : undefined;
  // `-e KEY` takes KEY's value from the caller's environment, as docker's; unset: left out.
  const envList = [...(f.envFileLines ?? []), ...(f.env ?? [])].flatMap((e) => (e.includes('=') ? [e] : env[e] !== undefined ? [`${e}=${env[e]}`] : []));
  const mounts = [...(f.volume ?? []).map(parseVolumeFlag), ...(f.mount ?? []).map(parseMountFlag), ...(f.tmpfs ?? []).map(parseTmpfsFlag)];
  const entrypoint = f.entrypoint !== undefined ? [f.entrypoint] : [];
  return {
    name: f.name ?? '',
    spec: {
      container: {
        image,
        command: entrypoint,
        args: command,
        env: envList,
        dir: f.workdir ?? '',
        user: f.user ?? '',
        hostname: f.hostname ?? '',
        healthcheck: undefined,
        stopGracePeriodMs: stop !== undefined ? stop * 1000 : 0,
        mounts,
        pull: PullPolicy.PULL_POLICY_MISSING,
        tty: Boolean(f.tty),
        openStdin: Boolean(f.interactive),
        secrets: [],
        configs: [],
        ...(f.readOnly ? { readOnly: true } : {}),
        ...(f.init ? { init: true } : {}),
      },
      resources:
        memory || nanoCpus || pids > 0
          ? { limits: { memoryBytes: memory, nanoCpus, pids: Math.max(0, pids), ...(memorySwap ? { memorySwapBytes: memorySwap } : {}) }, reservations: undefined }
          : undefined,
      restart: undefined,
      placement: undefined,
      forceUpdate: 0,
      networks: f.network ?? [],
      networkAliases: [],
    },
    labels: volumeLabels(f.label ?? []),
    restart: f.restart ?? 'no',
    autoRemove: Boolean(f.rm),
    aliases: f.networkAlias ?? [],
    ipv4: f.ip ?? '',
    tty: Boolean(f.tty),
    openStdin: Boolean(f.interactive),
    portBindings: (f.publish ?? []).flatMap(parsePublish),
    publishAll: Boolean(f.publishAll),
    endpointSettings: [],
  };
}

/** `--tail N|all` -> N (-1 all). */
export function parseTail(v: string | number): number {
  if (v === 'all') return -1;
  const n = Number(v);
  if (!Number.isInteger(n) || n < -1) throw invalidArgument(`invalid --tail ${JSON.stringify(v)}: a whole number or all`);
  return n;
}
