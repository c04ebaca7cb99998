import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import { invalidArgument } from '../common/errors';
import { isRegistryHost } from '../common/image-ref';
import { isIPv4 } from '../common/cidr';

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
  /** Registries (host[:port]) images may be pulled from over plain HTTP or unverified TLS. */
  readonly insecureRegistries: readonly string[];
  /** The embedded DNS's upstream resolvers (IP or IP:PORT, in order); unset: the host's /etc/resolv.conf. */
  readonly dnsUpstreams?: readonly string[];
  /** Where the Prometheus metrics are served (GET /metrics); unset: not served. No host: the node's advertise address. */
  readonly metricsAddr?: MetricsAddr;
  /** Where a manager serves the web dashboard (HTTPS); unset: not served. No host: the node's advertise address. */
  readonly dashboardAddr?: ServeAddr;
}

/** Where a daemon serves something over HTTP(S): `IP:PORT`, or `:PORT` for the node's advertise address. */
export interface ServeAddr {
  readonly host?: string;
  readonly port: number;
}

/** `--metrics-addr IP:PORT`, or `:PORT` for the node's advertise address (loopback while the node is in no swarm). */
export type MetricsAddr = ServeAddr;

export interface DaemonFlags {
  dataDir?: string;
  host?: string;
  logLevel?: string;
  config?: string;
  metricsAddr?: string;
  dashboardAddr?: string;
}

type FileConfig = Partial<Pick<DaemonConfig, 'dataDir' | 'host' | 'logLevel' | 'hostname' | 'etcdBinary' | 'cgroupParent' | 'netnsPrefix'>> & { metricsAddr?: string; dashboardAddr?: string; insecureRegistries?: string[]; dnsUpstreams?: string[] };

function readFileConfig(file: string, explicit: boolean): FileConfig {
  if (!fs.existsSync(file)) {
    if (explicit) throw invalidArgument(`config file ${file} does not exist`);
    return {};
  }
  try {
    const parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
    const known = ['dataDir', 'host', 'logLevel', 'hostname', 'etcdBinary', 'cgroupParent', 'netnsPrefix', 'insecureRegistries', 'dnsUpstreams', 'metricsAddr', 'dashboardAddr'];
    const unknown = Object.keys(parsed).filter((k) => !known.includes(k));
    if (unknown.length) throw new Error(`unknown keys ${unknown.join(', ')} (known: ${known.join(', ')})`);
    for (const [key, value] of Object.entries(parsed)) {
      if (key === 'insecureRegistries') {
        if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) throw new Error('insecureRegistries must be a list of host[:port] strings');
        continue;
      }
      if (key === 'dnsUpstreams') {
        if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) throw new Error('dnsUpstreams must be a list of IP or IP:PORT strings');
        continue;
      }
      if (typeof value !== 'string' || value === '') throw new Error(`${key} must be a non-empty string`);
    }
    return parsed as FileConfig;
  } catch (err) {
    throw invalidArgument(`config file ${file}: ${(err as Error).message}`, err);
  }
}

function validateInsecureRegistries(list: readonly string[]): readonly string[] {
  const hosts = list.map((h) => h.trim()).filter(Boolean);
  const bad = hosts.find((h) => !isRegistryHost(h));
  if (bad !== undefined) throw invalidArgument(`invalid insecure registry ${JSON.stringify(bad)}: expected host[:port], e.g. 10.0.0.5:5000`);
  return Object.freeze([...new Set(hosts)]);
}

/** IP, IP:PORT or [IPv6]:PORT each; an empty list is no setting (the host's resolv.conf). */
function validateDnsUpstreams(list: readonly string[] | undefined): { dnsUpstreams?: readonly string[] } {
  const ups = (list ?? []).map((u) => u.trim()).filter(Boolean);
  const valid = (u: string) => {
    const m = /^\[([^\]]+)\]:(\d+)$/.exec(u) ?? /^([\d.]+):(\d+)$/.exec(u) ?? [u, u, '53'];
    return net.isIP(m[1]) !== 0 && Number(m[2]) >= 1 && Number(m[2]) <= 65535;
  };
  const bad = ups.find((u) => !valid(u));
  if (bad !== undefined) throw invalidArgument(`invalid DNS upstream ${JSON.stringify(bad)}: expected IP or IP:PORT`);
  return ups.length > 0 ? { dnsUpstreams: Object.freeze(ups) } : {};
}

/** `IP:PORT` or `:PORT`; '' is no setting (that server off). `what` names it in the error, `example` shows a good value. */
function parseServeAddr(text: string | undefined, what: string, example: string): ServeAddr | undefined {
  const s = (text ?? '').trim();
  if (!s) return undefined;
  const m = /^([\d.]*):(\d+)$/.exec(s);
  if (!m || (m[1] && !isIPv4(m[1]))) throw invalidArgument(`invalid ${what} address ${JSON.stringify(text)}: expected IP:PORT or :PORT (the node's advertise address), e.g. ${example}`);
  const port = Number(m[2]);
  if (port < 1 || port > 65535) throw invalidArgument(`invalid port in ${what} address ${JSON.stringify(text)}`);
  return Object.freeze({ ...(m[1] && { host: m[1] }), port });
}

/** `IP:PORT` or `:PORT`; '' is no setting (metrics off). */
export function parseMetricsAddr(text: string | undefined): { metricsAddr?: MetricsAddr } {
  const at = parseServeAddr(text, 'metrics', ':9323');
  return at ? { metricsAddr: at } : {};
}

/** `IP:PORT` or `:PORT`; '' is no setting (no dashboard). */
export function parseDashboardAddr(text: string | undefined): { dashboardAddr?: ServeAddr } {
  const at = parseServeAddr(text, 'dashboard', ':9443');
  return at ? { dashboardAddr: at } : {};
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
    insecureRegistries: validateInsecureRegistries(env.SWARMLET_INSECURE_REGISTRIES?.split(',') ?? file.insecureRegistries ?? []),
    ...validateDnsUpstreams(env.SWARMLET_DNS_UPSTREAMS?.split(',') ?? file.dnsUpstreams),
    ...parseMetricsAddr(flags.metricsAddr ?? env.SWARMLET_METRICS_ADDR ?? file.metricsAddr),
    ...parseDashboardAddr(flags.dashboardAddr ?? env.SWARMLET_DASHBOARD_ADDR ?? file.dashboardAddr),
  });
}

/** The CLI's one setting from the environment: which daemon to talk to. */
export function cliHost(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return validateHost(flag ?? env.SWARMLET_HOST ?? DEFAULT_HOST);
}

/** docker login's credentials file: $DOCKER_CONFIG/config.json, else ~/.docker/config.json. */
export function dockerConfigFile(env: NodeJS.ProcessEnv = process.env): string {
  return env.DOCKER_CONFIG ? `${env.DOCKER_CONFIG}/config.json` : `${env.HOME || os.homedir()}/.docker/config.json`;
}

/** SWARMLET_LAB: the lab `swarmlet lab` acts on when no --name is given. */
export const labNameFromEnv = (env: NodeJS.ProcessEnv = process.env): string | undefined => env.SWARMLET_LAB || undefined;

/** SWARMLET_DEBUG=1 makes the CLI print stack traces of unexpected errors. */
export const cliDebug = (env: NodeJS.ProcessEnv = process.env) => Boolean(env.SWARMLET_DEBUG);

/** The caller's environment, for `run -e KEY` (docker takes KEY's value from it). */
export function callerEnvironment(): Record<string, string | undefined> {
  return { ...process.env };
}
