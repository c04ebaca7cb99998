import * as fs from 'node:fs';
import * as os from 'node:os';
import { invalidArgument } from '../common/errors';

/** The only module that reads process.env. Precedence: flags, then environment, then file, then defaults. */

export const DEFAULT_HOST = 'unix:///run/swarmlet/swarmlet.sock';
export const DEFAULT_DATA_DIR = '/var/lib/swarmlet';
export const DEFAULT_CONFIG_FILE = '/etc/swarmlet/daemon.json';
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'];

export interface DaemonConfig {
  readonly dataDir: string;
  readonly host: string;
  readonly logLevel: string;
  readonly hostname: string;
  readonly etcdBinary: string;
  /** Task cgroups go under this one (per controller on cgroup v1). */
  readonly cgroupParent: string;
  /** Overlay sandbox namespaces are named <netnsPrefix>-<vni>. */
  readonly netnsPrefix: string;
}

export interface DaemonFlags {
  dataDir?: string;
  host?: string;
  logLevel?: string;
  config?: string;
}

type FileConfig = Partial<Pick<DaemonConfig, 'dataDir' | 'host' | 'logLevel' | 'hostname' | 'etcdBinary' | 'cgroupParent' | 'netnsPrefix'>>;

function readFileConfig(file: string, explicit: boolean): FileConfig {
  if (!fs.existsSync(file)) {
    if (explicit) throw invalidArgument(`config file ${file} does not exist`);
    return {};
  }
  try {
    const parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
    const known = ['dataDir', 'host', 'logLevel', 'hostname', 'etcdBinary', 'cgroupParent', 'netnsPrefix'];
    const unknown = Object.keys(parsed).filter((k) => !known.includes(k));
    if (unknown.length) throw new Error(`unknown keys ${unknown.join(', ')} (known: ${known.join(', ')})`);
    for (const [key, value] of Object.entries(parsed)) {
      if (typeof value !== 'string' || value === '') throw new Error(`${key} must be a non-empty string`);
    }
    return parsed as FileConfig;
  } catch (err) {
    throw invalidArgument(`config file ${file}: ${(err as Error).message}`, err);
  }
}

function validateNetnsPrefix(p: string): string {
  if (/^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$/.test(p)) return p;
  throw invalidArgument(`invalid netns prefix ${JSON.stringify(p)}: letters, digits, '.', '_' and '-', at most 40`);
}

function validateCgroupParent(p: string): string {
  if (/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/.test(p) && !p.split('/').includes('..')) return p;
  throw invalidArgument(`invalid cgroup parent ${JSON.stringify(p)}: a relative path like swarmlet or swarmlet/node1`);
}

export function validateHost(host: string): string {
  if (/^unix:\/\/\/.+/.test(host) || /^tcp:\/\/[^/]+:\d+$/.test(host)) return host;
  throw invalidArgument(`invalid host ${JSON.stringify(host)}: expected unix:///path/to.sock or tcp://IP:PORT`);
}

/** Builds the daemon's config once, validated and frozen. */
export function loadDaemonConfig(flags: DaemonFlags, env: NodeJS.ProcessEnv = process.env): DaemonConfig {
  const file = readFileConfig(flags.config ?? env.SWARMLET_CONFIG ?? DEFAULT_CONFIG_FILE, Boolean(flags.config ?? env.SWARMLET_CONFIG));
  const logLevel = flags.logLevel ?? env.SWARMLET_LOG_LEVEL ?? file.logLevel ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) throw invalidArgument(`invalid log level ${logLevel}: one of ${LOG_LEVELS.join(', ')}`);
  const host = validateHost(flags.host ?? env.SWARMLET_HOST ?? file.host ?? DEFAULT_HOST);
  if (!host.startsWith('unix://')) throw invalidArgument('the daemon serves its local API on a unix socket only; use unix:///path');
  return Object.freeze({
    dataDir: flags.dataDir ?? env.SWARMLET_DATA_DIR ?? file.dataDir ?? DEFAULT_DATA_DIR,
    host,
    logLevel,
    hostname: env.SWARMLET_HOSTNAME ?? file.hostname ?? os.hostname(),
    etcdBinary: env.SWARMLET_ETCD_BINARY ?? file.etcdBinary ?? 'etcd',
    cgroupParent: validateCgroupParent(env.SWARMLET_CGROUP_PARENT ?? file.cgroupParent ?? 'swarmlet'),
    netnsPrefix: validateNetnsPrefix(env.SWARMLET_NETNS_PREFIX ?? file.netnsPrefix ?? 'swl'),
  });
}

/** The CLI's one setting from the environment: which daemon to talk to. */
export function cliHost(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return validateHost(flag ?? env.SWARMLET_HOST ?? DEFAULT_HOST);
}

/** SWARMLET_DEBUG=1 makes the CLI print stack traces of unexpected errors. */
export const cliDebug = (env: NodeJS.ProcessEnv = process.env) => Boolean(env.SWARMLET_DEBUG);
