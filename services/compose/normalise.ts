/**
 * Merged, schema-checked compose data -> the typed model (model.ts): short and long syntaxes made
 * one, durations, sizes and CPUs parsed, references between services, networks, volumes, secrets
 * and configs checked. A mistake throws the one-line error with its file and line. Pure: files
 * (env_file) are read through the `readFile` it is given.
 */
import { isValid as isIp } from 'ipaddr.js';
import { parseDuration } from '../common/duration';
import { SwarmletError } from '../common/errors';
import { isVolumeName } from '../common/volume-name';
import { shellWords } from '../../cli/argv';
import { parseBytes, parseCpus } from '../../cli/service-flags';
import { Lookup } from './interpolate';
import { DotenvError, parseDotenv } from './dotenv';
import { composeError, Loc, Path } from './source';
import {
  ComposeBuild,
  ComposeDeploy,
  ComposeFileObject,
  ComposeFileReference,
  ComposeHealthcheck,
  ComposeMount,
  ComposeNetwork,
  ComposePort,
  ComposeProject,
  ComposeResources,
  ComposeService,
  ComposeServiceNetwork,
  ComposeUpdateConfig,
  ComposeVolume,
  DependsCondition,
} from './model';

export interface NormaliseContext {
  name: string;
  workingDir: string;
  lookup: Lookup;
  locate: (path: Path) => Loc | undefined;
  /** A file's text, or undefined if it cannot be read. */
  readFile: (absolutePath: string) => string | undefined;
}

type Obj = Record<string, any>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Resolves `p` against `base` (both POSIX), `~` as the HOME variable. */
export function resolvePath(base: string, p: string, home?: string): string {
  let s = p;
  if (s === '~' || s.startsWith('~/')) s = (home ?? '~') + s.slice(1);
  const parts = (s.startsWith('/') ? s : `${base}/${s}`).split('/');
  const out: string[] = [];
  for (const part of parts) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return '/' + out.join('/');
}

export function normaliseProject(data: Obj, ctx: NormaliseContext): ComposeProject {
  const fail = (path: Path, message: string, cause?: unknown): never => {
    throw composeError(ctx.locate(path), path, message, cause);
  };
  /** Runs a parser of common/ or cli/ and puts its message at `path`. */
  const at = <T>(path: Path, f: () => T): T => {
    try {
      return f();
    } catch (err) {
      if (err instanceof SwarmletError) return fail(path, err.message, err);
      throw err;
    }
  };
  const duration = (v: unknown, path: Path) => (v === undefined || v === null ? undefined : at(path, () => parseDuration(String(v), 'duration')));
  const home = ctx.lookup('HOME');
  const resolve = (p: string) => resolvePath(ctx.workingDir, p, home);

  const networks = mapEntries(data.networks, (key, v: Obj | null): ComposeNetwork => {
    const n = v ?? {};
    const ext = externalOf(n.external);
    return {
      name: n.name ?? ext.name,
      external: ext.external,
      driver: n.driver,
      driverOpts: stringMap(n.driver_opts),
      attachable: n.attachable === true,
      internal: n.internal === true,
      labels: listOrDict(n.labels, ctx.lookup),
      subnets: (n.ipam?.config ?? []).map((c: Obj, i: number) => {
        if (c.subnet !== undefined && !isCidr(c.subnet)) fail(['networks', key, 'ipam', 'config', i, 'subnet'], `invalid subnet ${JSON.stringify(c.subnet)}: use an address with a prefix length, like 172.28.0.0/16`);
        return { subnet: c.subnet, gateway: c.gateway, ipRange: c.ip_range };
      }),
    };
  });
  const volumes = mapEntries(data.volumes, (key, v: Obj | null): ComposeVolume => {
    const n = v ?? {};
    const ext = externalOf(n.external);
    const name = n.name ?? ext.name;
    if (name !== undefined && !isVolumeName(name)) fail(['volumes', key, 'name'], `invalid volume name ${JSON.stringify(name)}`);
    return { name, external: ext.external, driver: n.driver, driverOpts: stringMap(n.driver_opts), labels: listOrDict(n.labels, ctx.lookup) };
  });
  const fileObjects = (kind: 'secrets' | 'configs') =>
    mapEntries(data[kind], (key, v: Obj | null): ComposeFileObject => {
      const n = v ?? {};
      const ext = externalOf(n.external);
      if (!ext.external && typeof n.file !== 'string') fail([kind, key], `needs "file:" (or "external: true")`);
      return { name: n.name ?? ext.name, external: ext.external, file: ext.external ? undefined : resolve(n.file), labels: listOrDict(n.labels, ctx.lookup) };
    });
  const secrets = fileObjects('secrets');
  const configs = fileObjects('configs');

  const services: Record<string, ComposeService> = {};
  const raw: Obj = data.services ?? {};
  for (const name of Object.keys(raw).sort()) {
    const s: Obj = raw[name] ?? {};
    const p = (...rest: (string | number)[]): Path => ['services', name, ...rest];
    if (s.image === undefined && s.build === undefined) fail(p(), `service "${name}" has neither an image nor a build context`);
    const service: ComposeService = {
      name,
      image: s.image,
      build: s.build === undefined ? undefined : build(s.build, p('build')),
      entrypoint: words(s.entrypoint, p('entrypoint')),
      command: words(s.command, p('command')),
      environment: environment(s, p),
      ports: (s.ports ?? []).flatMap((v: unknown, i: number) => at(p('ports', i), () => parsePort(v))),
      expose: (s.expose ?? []).flatMap((v: unknown, i: number) => at(p('expose', i), () => parseExpose(v))),
      volumes: (s.volumes ?? []).map((v: unknown, i: number) => mount(v, p('volumes', i))),
      dependsOn: dependsOn(s.depends_on),
      healthcheck: healthcheck(s.healthcheck, p('healthcheck')),
      restart: s.restart === undefined ? undefined : restart(s.restart, p('restart')),
      deploy: deploy(s.deploy ?? {}, s.scale, p('deploy')),
      networks: serviceNetworks(s),
      networkMode: s.network_mode,
      secrets: (s.secrets ?? []).map((v: unknown) => reference(v, 'secret')),
      configs: (s.configs ?? []).map((v: unknown) => reference(v, 'config')),
      labels: listOrDict(s.labels, ctx.lookup),
      containerName: s.container_name,
      hostname: s.hostname,
      user: s.user === undefined ? undefined : String(s.user),
      workingDir: s.working_dir,
      tty: s.tty === true,
      stdinOpen: s.stdin_open === true,
      init: s.init,
      readOnly: s.read_only,
      stopGracePeriodMs: duration(s.stop_grace_period, p('stop_grace_period')),
      pullPolicy: s.pull_policy === undefined ? undefined : choice(s.pull_policy, p('pull_policy'), ['always', 'never', 'missing', 'build'] as const),
    };
    services[name] = service;
    checkReferences(service, s, p);
  }
  checkCycles(services, fail);

  if (Object.values(services).some((s) => 'default' in s.networks) && !networks.default) {
    networks.default = { external: false, driverOpts: {}, attachable: false, internal: false, labels: {}, subnets: [] };
  }
  return { name: ctx.name, workingDir: ctx.workingDir, services, networks, volumes, secrets, configs, keys: keysOf(data) };

  // ---- the parts, with `fail` and `at` in scope ----

  function choice<T extends string>(v: unknown, path: Path, allowed: readonly T[]): T {
    if (!allowed.includes(v as T)) fail(path, `must be one of ${allowed.join(', ')}, not ${JSON.stringify(v)}`);
    return v as T;
  }

  function words(v: unknown, path: Path): string[] | undefined {
    if (v === undefined || v === null) return undefined;
    if (Array.isArray(v)) return v.map(String);
    return at(path, () => {
      try {
        return shellWords(String(v));
      } catch (err) {
        throw composeError(undefined, [], `invalid command line ${JSON.stringify(v)}: ${(err as Error).message}`);
      }
    });
  }

  function build(v: unknown, path: Path): ComposeBuild {
    const b: Obj = typeof v === 'string' ? { context: v } : (v as Obj);
    const context = String(b.context ?? '.');
    if (/^(https?|git):\/\/|^git@/.test(context)) fail([...path, 'context'], `a remote build context (${context}) is not supported: use a directory`);
    return { context: resolve(context), dockerfile: b.dockerfile ?? 'Dockerfile', args: listOrDict(b.args, ctx.lookup), target: b.target };
  }

  function environment(s: Obj, p: (...rest: (string | number)[]) => Path): Record<string, string> {
    const env: Record<string, string> = {};
    const files = s.env_file === undefined ? [] : [s.env_file].flat();
    files.forEach((f: string, i: number) => {
      const path = typeof s.env_file === 'string' ? p('env_file') : p('env_file', i);
      const file = resolve(f);
      const text = ctx.readFile(file);
      if (text === undefined) fail(path, `env file ${file} not found`);
      try {
        for (const [k, v] of parseDotenv(text!, ctx.lookup)) env[k] = v;
      } catch (err) {
        if (err instanceof DotenvError) fail(path, `${file}:${err.line}: ${err.message}`, err);
        throw err;
      }
    });
    Object.assign(env, listOrDict(s.environment, ctx.lookup));
    return env;
  }

  function mount(v: unknown, path: Path): ComposeMount {
    if (typeof v === 'string') return at(path, () => parseVolumeShort(v, resolve));
    const m = v as Obj;
    const type = choice(m.type, [...path, 'type'], ['volume', 'bind', 'tmpfs'] as const);
    if (typeof m.target !== 'string' || !m.target.startsWith('/')) fail([...path, 'target'], 'needs an absolute "target:" path');
    let source = m.source === undefined ? '' : String(m.source);
    if (type === 'bind') {
      if (!source) fail(path, 'a bind mount needs "source:"');
      source = resolve(source);
    } else if (type === 'tmpfs') {
      if (source) fail([...path, 'source'], 'a tmpfs mount has no source');
    } else if (source && !isVolumeName(source)) fail([...path, 'source'], `invalid volume name ${JSON.stringify(source)}`);
    const size = m.tmpfs?.size;
    return {
      type,
      source,
      target: m.target,
      readOnly: m.read_only === true,
      ...(size !== undefined ? { tmpfsSizeBytes: at([...path, 'tmpfs', 'size'], () => parseBytes(String(size), 'tmpfs size')) } : {}),
    };
  }

  function dependsOn(v: unknown): Record<string, DependsCondition> {
    if (v === undefined || v === null) return {};
    if (Array.isArray(v)) return Object.fromEntries(v.map((n) => [String(n), 'service_started' as const]));
    return Object.fromEntries(Object.entries(v as Obj).map(([n, c]) => [n, (c?.condition ?? 'service_started') as DependsCondition]));
  }

  function healthcheck(v: Obj | undefined, path: Path): ComposeHealthcheck | undefined {
    if (v === undefined || v === null) return undefined;
    if (v.disable === true) return { test: ['NONE'] };
    let test: string[] = [];
    if (typeof v.test === 'string') test = ['CMD-SHELL', v.test];
    else if (Array.isArray(v.test)) {
      test = v.test.map(String);
      if (!['CMD', 'CMD-SHELL', 'NONE'].includes(test[0])) fail([...path, 'test'], `must start with CMD, CMD-SHELL or NONE, not ${JSON.stringify(test[0] ?? '')}`);
      if (test[0] !== 'NONE' && test.length < 2) fail([...path, 'test'], `${test[0]} needs a command after it`);
    }
    if (v.retries !== undefined && (!Number.isInteger(v.retries) || v.retries < 0)) fail([...path, 'retries'], `must be a whole number, 0 or more, not ${v.retries}`);
    return {
      test,
      intervalMs: duration(v.interval, [...path, 'interval']),
      timeoutMs: duration(v.timeout, [...path, 'timeout']),
      startPeriodMs: duration(v.start_period, [...path, 'start_period']),
      retries: v.retries,
    };
  }

  function restart(v: string, path: Path): string {
    if (!/^(no|always|unless-stopped|on-failure(:\d+)?)$/.test(v)) fail(path, `invalid restart policy ${JSON.stringify(v)}: one of no, always, on-failure[:N], unless-stopped`);
    return v;
  }

  function resources(v: Obj | undefined, path: Path): ComposeResources {
    const r: ComposeResources = {};
    if (v?.cpus !== undefined) r.nanoCpus = at([...path, 'cpus'], () => parseCpus(String(v.cpus), 'cpus'));
    if (v?.memory !== undefined) r.memoryBytes = at([...path, 'memory'], () => parseBytes(String(v.memory), 'memory'));
    return r;
  }

  function update(v: Obj | undefined, path: Path): ComposeUpdateConfig | undefined {
    if (!v) return undefined;
    const nonNegative = (k: string) => {
      if (v[k] !== undefined && !(v[k] >= 0)) fail([...path, k], `must be 0 or more, not ${v[k]}`);
      return v[k];
    };
    return {
      parallelism: nonNegative('parallelism'),
      delayMs: duration(v.delay, [...path, 'delay']),
      failureAction: v.failure_action === undefined ? undefined : choice(v.failure_action, [...path, 'failure_action'], ['continue', 'rollback', 'pause'] as const),
      monitorMs: duration(v.monitor, [...path, 'monitor']),
      maxFailureRatio: nonNegative('max_failure_ratio'),
      order: v.order,
    };
  }

  function deploy(d: Obj, scale: number | undefined, path: Path): ComposeDeploy {
    const mode = d.mode === undefined ? 'replicated' : choice(d.mode, [...path, 'mode'], ['replicated', 'global'] as const);
    const replicas = d.replicas ?? scale;
    if (replicas !== undefined && replicas < 0) fail([...path, d.replicas !== undefined ? 'replicas' : 'scale'], `must be 0 or more, not ${replicas}`);
    if (mode === 'global' && d.replicas !== undefined) fail([...path, 'replicas'], 'a global service has no replicas');
    const rp = d.restart_policy as Obj | undefined;
    return {
      mode,
      replicas,
      endpointMode: d.endpoint_mode === undefined ? undefined : choice(d.endpoint_mode, [...path, 'endpoint_mode'], ['vip', 'dnsrr'] as const),
      labels: listOrDict(d.labels, ctx.lookup),
      resources: { limits: resources(d.resources?.limits, [...path, 'resources', 'limits']), reservations: resources(d.resources?.reservations, [...path, 'resources', 'reservations']) },
      restartPolicy: rp && {
        condition: rp.condition === undefined ? 'any' : choice(rp.condition, [...path, 'restart_policy', 'condition'], ['none', 'on-failure', 'any'] as const),
        delayMs: duration(rp.delay, [...path, 'restart_policy', 'delay']),
        maxAttempts: rp.max_attempts,
        windowMs: duration(rp.window, [...path, 'restart_policy', 'window']),
      },
      updateConfig: update(d.update_config, [...path, 'update_config']),
      rollbackConfig: update(d.rollback_config, [...path, 'rollback_config']),
      placement: {
        constraints: d.placement?.constraints ?? [],
        preferences: (d.placement?.preferences ?? []).map((x: Obj) => x.spread).filter((x: unknown) => typeof x === 'string'),
        maxReplicasPerNode: d.placement?.max_replicas_per_node,
      },
    };
  }

  function serviceNetworks(s: Obj): Record<string, ComposeServiceNetwork> {
    if (s.networks === undefined || s.networks === null) return s.network_mode ? {} : { default: { aliases: [] } };
    if (Array.isArray(s.networks)) return Object.fromEntries(s.networks.map((n: string) => [n, { aliases: [] }]));
    return Object.fromEntries(Object.entries(s.networks as Obj).map(([n, v]) => [n, { aliases: (v?.aliases ?? []).map(String), ipv4Address: v?.ipv4_address }]));
  }

  function reference(v: unknown, kind: 'secret' | 'config'): ComposeFileReference {
    const r: Obj = typeof v === 'string' ? { source: v } : (v as Obj);
    const source = String(r.source ?? '');
    const target = r.target ?? (kind === 'config' ? `/${source}` : source);
    return { source, target, uid: r.uid, gid: r.gid, mode: r.mode };
  }

  function checkReferences(service: ComposeService, s: Obj, p: (...rest: (string | number)[]) => Path): void {
    for (const dep of Object.keys(service.dependsOn)) {
      if (!(dep in raw)) fail(p('depends_on', Array.isArray(s.depends_on) ? s.depends_on.indexOf(dep) : dep), `service "${service.name}" depends on undefined service "${dep}"`);
    }
    if (s.network_mode !== undefined && s.networks !== undefined && s.networks !== null) fail(p('network_mode'), '"network_mode" and "networks" cannot be used together');
    for (const n of Object.keys(service.networks)) {
      if (n !== 'default' && !networks[n]) fail(p('networks', Array.isArray(s.networks) ? s.networks.indexOf(n) : n), `service "${service.name}" refers to undefined network "${n}"`);
    }
    service.volumes.forEach((m, i) => {
      if (m.type === 'volume' && m.source && !volumes[m.source]) fail(p('volumes', i), `service "${service.name}" refers to undefined volume "${m.source}": declare it under the top-level "volumes:"`);
    });
    for (const [kind, refs, known] of [['secrets', service.secrets, secrets], ['configs', service.configs, configs]] as const) {
      refs.forEach((r, i) => {
        if (!known[r.source]) fail(p(kind, i), `service "${service.name}" refers to undefined ${kind.slice(0, -1)} "${r.source}"`);
      });
    }
  }
}

function checkCycles(services: Record<string, ComposeService>, fail: (path: Path, message: string) => never): void {
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, chain: string[]) => {
    if (state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') fail(['services', chain[0], 'depends_on'], `dependency cycle: ${[...chain.slice(chain.indexOf(name)), name].join(' -> ')}`);
    state.set(name, 'visiting');
    for (const dep of Object.keys(services[name]?.dependsOn ?? {})) visit(dep, [...chain, name]);
    state.set(name, 'done');
  };
  for (const name of Object.keys(services)) visit(name, []);
}

function mapEntries<T>(v: unknown, f: (key: string, value: any) => T): Record<string, T> {
  if (!isObj(v)) return {};
  return Object.fromEntries(Object.entries(v).filter(([k]) => !k.startsWith('x-')).map(([k, x]) => [k, f(k, x)]));
}

function externalOf(v: unknown): { external: boolean; name?: string } {
  if (isObj(v)) return { external: true, name: v.name };
  return { external: v === true };
}

function stringMap(v: unknown): Record<string, string> {
  return isObj(v) ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, String(x)])) : {};
}

/** environment / labels / args as a list of KEY=VALUE or a mapping; KEY with no value from `lookup`, or left out. */
export function listOrDict(v: unknown, lookup: Lookup): Record<string, string> {
  const out: Record<string, string> = {};
  const put = (k: string, x: unknown) => {
    if (x === null || x === undefined) {
      const from = lookup(k);
      if (from !== undefined) out[k] = from;
    } else out[k] = String(x);
  };
  if (Array.isArray(v)) {
    for (const item of v) {
      const s = String(item);
      const eq = s.indexOf('=');
      put(eq < 0 ? s : s.slice(0, eq), eq < 0 ? null : s.slice(eq + 1));
    }
  } else if (isObj(v)) for (const [k, x] of Object.entries(v)) put(k, x);
  return out;
}

function isCidr(s: string): boolean {
  const [addr, len, ...rest] = s.split('/');
  return rest.length === 0 && isIp(addr) && /^\d{1,3}$/.test(len ?? '') && Number(len) <= (addr.includes(':') ? 128 : 32);
}

const portError = (text: string, why: string) => composeError(undefined, [], `invalid port ${JSON.stringify(text)}: ${why}`);

function portRange(text: string, whole: string, zeroOk = false): [number, number] {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  const lo = m ? Number(m[1]) : NaN;
  const hi = m?.[2] !== undefined ? Number(m[2]) : lo;
  if (!m || hi > 65535 || lo > hi || (!zeroOk && lo === 0)) throw portError(whole, 'use a port from 1 to 65535, or a range like 8000-8010');
  return [lo, hi];
}

/** One short-syntax port (`80`, `8080:80`, `127.0.0.1:8080:80/udp`, `8000-8001:80-81`) or a long one. */
export function parsePort(v: unknown): ComposePort[] {
  if (isObj(v)) {
    const protocol = (v.protocol ?? 'tcp') as string;
    if (protocol !== 'tcp' && protocol !== 'udp') throw composeError(undefined, [], `invalid protocol ${JSON.stringify(protocol)}: tcp or udp`);
    const mode = (v.mode ?? 'ingress') as string;
    if (mode !== 'ingress' && mode !== 'host') throw composeError(undefined, [], `invalid mode ${JSON.stringify(mode)}: ingress or host`);
    if (!(v.target >= 1 && v.target <= 65535)) throw portError(String(v.target), 'the target must be a port from 1 to 65535');
    if (v.published !== undefined && !(v.published >= 1 && v.published <= 65535)) throw portError(String(v.published), 'the published port must be from 1 to 65535');
    if (v.host_ip !== undefined && !isIp(v.host_ip)) throw composeError(undefined, [], `invalid host_ip ${JSON.stringify(v.host_ip)}`);
    return [{ target: v.target, published: v.published, hostIp: v.host_ip, protocol, mode }];
  }
  const text = String(v).trim();
  let rest = text;
  let protocol: 'tcp' | 'udp' = 'tcp';
  const slash = rest.lastIndexOf('/');
  if (slash >= 0) {
    const p = rest.slice(slash + 1).toLowerCase();
    if (p !== 'tcp' && p !== 'udp') throw portError(text, `unknown protocol "${p}": tcp or udp`);
    protocol = p;
    rest = rest.slice(0, slash);
  }
  let hostIp: string | undefined;
  const v6 = /^\[([^\]]+)\]:(.*)$/.exec(rest);
  if (v6) {
    hostIp = v6[1];
    rest = v6[2];
  }
  const parts = rest.split(':');
  if (!v6 && parts.length === 3) hostIp = parts.shift();
  if (parts.length > 2 || parts.some((x, i) => x === '' && !(i === 0 && parts.length === 2 && hostIp !== undefined))) throw portError(text, 'use [HOST_IP:][PUBLISHED:]TARGET[/PROTOCOL]');
  if (hostIp !== undefined && !isIp(hostIp)) throw portError(text, `"${hostIp}" is not an IP address`);
  const [target, published] = parts.length === 2 ? [parts[1], parts[0]] : [parts[0], ''];
  const [tLo, tHi] = portRange(target, text);
  if (published === '') {
    return Array.from({ length: tHi - tLo + 1 }, (_, i) => ({ target: tLo + i, hostIp, protocol, mode: 'ingress' as const }));
  }
  const [pLo, pHi] = portRange(published, text);
  if (pHi - pLo !== tHi - tLo) throw portError(text, 'the published and target ranges must be of the same length');
  return Array.from({ length: tHi - tLo + 1 }, (_, i) => ({ target: tLo + i, published: pLo + i, hostIp, protocol, mode: 'ingress' as const }));
}

function parseExpose(v: unknown): number[] {
  const text = String(v).replace(/\/(tcp|udp)$/, '');
  const [lo, hi] = portRange(text, String(v));
  return Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
}

/** `name:/path[:ro]`, `./dir:/path`, `/host:/path:ro`, `/path` (anonymous volume). */
export function parseVolumeShort(text: string, resolve: (p: string) => string): ComposeMount {
  const parts = text.split(':');
  const bad = (why: string) => composeError(undefined, [], `invalid volume ${JSON.stringify(text)}: ${why}`);
  if (parts.length > 3 || parts.some((x) => x === '')) throw bad('use [SOURCE:]TARGET[:MODE]');
  let readOnly = false;
  if (parts.length === 3) {
    for (const o of parts.pop()!.split(',')) {
      if (o === 'ro') readOnly = true;
      else if (!['rw', 'z', 'Z', 'nocopy', 'cached', 'delegated', 'consistent', 'private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave'].includes(o)) throw bad(`unknown mode "${o}"`);
    }
  }
  if (parts.length === 1) {
    if (!parts[0].startsWith('/')) throw bad('the mount point must be an absolute path');
    return { type: 'volume', source: '', target: parts[0], readOnly };
  }
  const [source, target] = parts;
  if (!target.startsWith('/')) throw bad('the mount point must be an absolute path');
  if (/^[./~]/.test(source)) return { type: 'bind', source: resolve(source), target, readOnly };
  if (!isVolumeName(source)) throw bad(`"${source}" is not a volume name (a path must start with /, ./ or ~/)`);
  return { type: 'volume', source, target, readOnly };
}

/** The key paths `keys` lists (see ComposeProject.keys). */
function keysOf(data: Obj): string[] {
  const keys: string[] = [];
  const add = (prefix: string, v: unknown, nested: Record<string, Record<string, unknown> | true> = {}) => {
    if (!isObj(v)) return;
    for (const [k, x] of Object.entries(v)) {
      if (k.startsWith('x-')) continue;
      keys.push(`${prefix}.${k}`);
      const sub = nested[k];
      if (sub === true) add(`${prefix}.${k}`, x);
      else if (sub) add(`${prefix}.${k}`, x, sub as Record<string, Record<string, unknown> | true>);
    }
  };
  for (const k of Object.keys(data)) if (!k.startsWith('x-')) keys.push(k);
  const deploy = { resources: { limits: true, reservations: true }, restart_policy: true, update_config: true, rollback_config: true, placement: true };
  for (const [name, s] of Object.entries(isObj(data.services) ? data.services : {})) {
    add(`services.${name}`, s, { deploy, build: true, healthcheck: true } as Record<string, Record<string, unknown> | true>);
  }
  for (const top of ['networks', 'volumes', 'secrets', 'configs']) {
    for (const [name, v] of Object.entries(isObj(data[top]) ? data[top] : {})) add(`${top}.${name}`, v);
  }
  return keys;
}
