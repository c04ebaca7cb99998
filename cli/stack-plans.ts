/**
 * `stack deploy` as docker does it, client-side: a compose project (services/compose) becomes
 * swarm objects named NAME_KEY and labelled com.docker.stack.namespace=NAME: an overlay network per
 * network of the file (NAME_default when a service names none), secrets and configs from their
 * files, and one service per compose service. Given what exists, the plan says what to create,
 * what to update (only services whose spec changed), and with --prune what to remove. Pure.
 */
import { invalidArgument } from '../services/common/errors';
import { ComposeFileReference, ComposePort, ComposeProject, ComposeService, ComposeUpdateConfig } from '../services/compose/model';
import {
  Config,
  ConfigReference,
  EndpointMode,
  HealthConfig,
  Mount,
  MountType,
  Network,
  NetworkSpec,
  PortConfig,
  PortProtocol,
  PublishMode,
  RestartCondition,
  Secret,
  SecretReference,
  Service,
  ServiceSpec,
  UpdateConfig,
  UpdateFailureAction,
  UpdateOrder,
} from '../services/gen/swarmlet/v1/types';

export const LABEL_STACK = 'com.docker.stack.namespace';
export const LABEL_STACK_IMAGE = 'com.docker.stack.image';

/** The keys `stack deploy` acts on; every other key a file sets is named in one warning. */
export const STACK_SUPPORTED_KEYS = [
  'version',
  'name',
  'services.*.image',
  'services.*.command',
  'services.*.entrypoint',
  'services.*.environment',
  'services.*.env_file',
  'services.*.ports',
  'services.*.volumes',
  'services.*.healthcheck',
  'services.*.networks',
  'services.*.hostname',
  'services.*.user',
  'services.*.working_dir',
  'services.*.tty',
  'services.*.stdin_open',
  'services.*.stop_grace_period',
  'services.*.secrets',
  'services.*.configs',
  'services.*.deploy.mode',
  'services.*.deploy.replicas',
  'services.*.deploy.labels',
  'services.*.deploy.endpoint_mode',
  'services.*.deploy.placement.constraints',
  'services.*.deploy.resources',
  'services.*.deploy.restart_policy',
  'services.*.deploy.update_config',
  'services.*.deploy.rollback_config',
  'networks.*.name',
  'networks.*.external',
  'networks.*.driver',
  'networks.*.driver_opts',
  'networks.*.ipam',
  'networks.*.internal',
  'networks.*.attachable',
  'networks.*.labels',
  'volumes.*.name',
  'volumes.*.external',
  'volumes.*.driver',
  'volumes.*.labels',
  'secrets.*.name',
  'secrets.*.file',
  'secrets.*.external',
  'secrets.*.labels',
  'configs.*.name',
  'configs.*.file',
  'configs.*.external',
  'configs.*.labels',
];

/** A stack's name: what docker accepts (it prefixes every object's name). */
export function validateStackName(name: string): void {
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name)) throw invalidArgument(`invalid stack name ${JSON.stringify(name)}: letters, digits, '_', '.' and '-', starting with a letter or digit`);
}

/** NAME_KEY, unless the entry is external (its key) or has a `name:`. */
export const stackObjectName = (stack: string, key: string, r: { name?: string; external: boolean }): string => r.name ?? (r.external ? key : `${stack}_${key}`);

export interface StackExisting {
  services: Service[];
  networks: Network[];
  secrets: Secret[];
  configs: Config[];
}

export interface StackPlan {
  networks: NetworkSpec[];
  /** Secrets and configs to create: their name, labels and the absolute file their value is read from. */
  secrets: { name: string; labels: Record<string, string>; file: string }[];
  configs: { name: string; labels: Record<string, string>; file: string }[];
  create: ServiceSpec[];
  /** Existing services whose spec changed: the current one and the new spec. */
  update: { current: Service; spec: ServiceSpec }[];
  /** Existing services of the stack the file no longer has (removed with --prune). */
  prune: Service[];
}

const isStack = (stack: string) => (o: { spec?: { labels?: Record<string, string> } }) => o.spec?.labels?.[LABEL_STACK] === stack;

/** The services, networks, secrets and configs of a stack, by its label. */
export function stackObjects(stack: string, existing: StackExisting): StackExisting {
  return {
    services: existing.services.filter(isStack(stack)),
    networks: existing.networks.filter(isStack(stack)),
    secrets: existing.secrets.filter(isStack(stack)),
    configs: existing.configs.filter(isStack(stack)),
  };
}

const PROTOCOLS: Record<ComposePort['protocol'], PortProtocol> = { tcp: PortProtocol.PORT_PROTOCOL_TCP, udp: PortProtocol.PORT_PROTOCOL_UDP };
const RESTART: Record<string, RestartCondition> = { any: RestartCondition.RESTART_CONDITION_ANY, 'on-failure': RestartCondition.RESTART_CONDITION_ON_FAILURE, none: RestartCondition.RESTART_CONDITION_NONE };
const FAILURE: Record<string, UpdateFailureAction> = { pause: UpdateFailureAction.UPDATE_FAILURE_ACTION_PAUSE, continue: UpdateFailureAction.UPDATE_FAILURE_ACTION_CONTINUE, rollback: UpdateFailureAction.UPDATE_FAILURE_ACTION_ROLLBACK };
const ORDER: Record<string, UpdateOrder> = { 'stop-first': UpdateOrder.UPDATE_ORDER_STOP_FIRST, 'start-first': UpdateOrder.UPDATE_ORDER_START_FIRST };

function updateConfig(u: ComposeUpdateConfig | undefined): UpdateConfig | undefined {
  if (!u) return undefined;
  return UpdateConfig.fromPartial({
    ...(u.parallelism !== undefined ? { parallelism: u.parallelism } : {}),
    delayMs: u.delayMs ?? 0,
    failureAction: FAILURE[u.failureAction ?? 'pause'],
    ...(u.monitorMs !== undefined ? { monitorMs: u.monitorMs } : {}),
    maxFailureRatio: u.maxFailureRatio ?? 0,
    order: ORDER[u.order ?? 'stop-first'],
  });
}

function fileId(v: string | undefined, what: string): number {
  if (v === undefined || v === '') return 0;
  if (!/^\d+$/.test(v)) throw invalidArgument(`${what} ${JSON.stringify(v)}: a numeric id`);
  return Number(v);
}

function fileRef(project: ComposeProject, stack: string, kind: 'secret' | 'config', r: ComposeFileReference, service: string): { name: string; file: { name: string; uid: number; gid: number; mode: number } } {
  const top = (kind === 'secret' ? project.secrets : project.configs)[r.source];
  if (!top) throw invalidArgument(`services.${service}.${kind}s: ${kind} ${JSON.stringify(r.source)} is not declared in the top-level ${kind}s`);
  const name = stackObjectName(stack, r.source, top);
  const target = r.target || (kind === 'secret' ? r.source : `/${r.source}`);
  return { name, file: { name: target, uid: fileId(r.uid, `services.${service}.${kind}s uid`), gid: fileId(r.gid, `services.${service}.${kind}s gid`), mode: r.mode ?? 0 } };
}

function mounts(project: ComposeProject, stack: string, s: ComposeService): Mount[] {
  return s.volumes.map((v) => {
    if (v.type === 'volume') {
      const top = v.source ? project.volumes[v.source] : undefined;
      if (v.source && !top) throw invalidArgument(`services.${s.name}.volumes: volume ${JSON.stringify(v.source)} is not declared in the top-level volumes`);
      return { type: MountType.MOUNT_TYPE_VOLUME, source: top ? stackObjectName(stack, v.source, top) : '', target: v.target, readonly: v.readOnly, tmpfsSizeBytes: 0 };
    }
    if (v.type === 'bind') return { type: MountType.MOUNT_TYPE_BIND, source: v.source, target: v.target, readonly: v.readOnly, tmpfsSizeBytes: 0 };
    return { type: MountType.MOUNT_TYPE_TMPFS, source: '', target: v.target, readonly: v.readOnly, tmpfsSizeBytes: v.tmpfsSizeBytes ?? 0 };
  });
}

/** One compose service as the swarm service NAME_SERVICE. */
export function planServiceSpec(project: ComposeProject, stack: string, s: ComposeService): ServiceSpec {
  if (!s.image) throw invalidArgument(`services.${s.name}: stack deploy needs an image (it does not build: build and push it first)`);
  const d = s.deploy;
  const networks = Object.keys(s.networks).map((key) => {
    const top = project.networks[key] ?? (key === 'default' ? { external: false } : undefined);
    if (!top) throw invalidArgument(`services.${s.name}.networks: network ${JSON.stringify(key)} is not declared in the top-level networks`);
    return stackObjectName(stack, key, top);
  });
  // As docker's stack deploy: the service answers to its compose name on each of its networks, and to the file's aliases there.
  const networkAliases = Object.values(s.networks).map((n, i) => ({ network: networks[i], aliases: [...new Set([s.name, ...n.aliases])] }));
  const secrets: SecretReference[] = s.secrets.map((r) => {
    const { name, file } = fileRef(project, stack, 'secret', r, s.name);
    return { secretId: '', secretName: name, file };
  });
  const configs: ConfigReference[] = s.configs.map((r) => {
    const { name, file } = fileRef(project, stack, 'config', r, s.name);
    return { configId: '', configName: name, file };
  });
  const h = s.healthcheck;
  const healthcheck: HealthConfig | undefined = h
    ? { test: h.test, intervalMs: h.intervalMs ?? 0, timeoutMs: h.timeoutMs ?? 0, retries: h.retries ?? 0, startPeriodMs: h.startPeriodMs ?? 0 }
    : undefined;
  const rp = d.restartPolicy;
  const res = (r: { nanoCpus?: number; memoryBytes?: number }) => ({ nanoCpus: r.nanoCpus ?? 0, memoryBytes: r.memoryBytes ?? 0, pids: 0 });
  const ports: PortConfig[] = s.ports.map((p) => ({
    protocol: PROTOCOLS[p.protocol],
    targetPort: p.target,
    publishedPort: p.published ?? 0,
    publishMode: p.mode === 'host' ? PublishMode.PUBLISH_MODE_HOST : PublishMode.PUBLISH_MODE_INGRESS,
  }));
  const spec = ServiceSpec.fromPartial({
    name: `${stack}_${s.name}`,
    labels: { ...d.labels, [LABEL_STACK]: stack, [LABEL_STACK_IMAGE]: s.image },
    task: {
      container: {
        image: s.image,
        command: s.entrypoint ?? [],
        args: s.command ?? [],
        env: Object.entries(s.environment).map(([k, v]) => `${k}=${v}`).sort(),
        dir: s.workingDir ?? '',
        user: s.user ?? '',
        hostname: s.hostname ?? '',
        healthcheck,
        stopGracePeriodMs: s.stopGracePeriodMs ?? 0,
        mounts: mounts(project, stack, s),
        tty: s.tty,
        openStdin: s.stdinOpen,
        secrets,
        configs,
      },
      resources: { limits: res(d.resources.limits), reservations: res(d.resources.reservations) },
      restart: rp ? { condition: RESTART[rp.condition], ...(rp.delayMs !== undefined ? { delayMs: rp.delayMs } : {}), maxAttempts: rp.maxAttempts ?? 0, windowMs: rp.windowMs ?? 0 } : undefined,
      placement: { constraints: [...d.placement.constraints] },
      networks,
      networkAliases,
    },
    update: updateConfig(d.updateConfig),
    rollback: updateConfig(d.rollbackConfig),
    endpoint: { mode: d.endpointMode === 'dnsrr' ? EndpointMode.ENDPOINT_MODE_DNSRR : EndpointMode.ENDPOINT_MODE_VIP, ports },
  });
  spec.mode = d.mode === 'global' ? { $case: 'global', value: {} } : { $case: 'replicated', value: { replicas: d.replicas ?? 1 } };
  return spec;
}

/** The networks the stack's services use, as they are to be made (the external ones are not made). */
function planNetworks(project: ComposeProject, stack: string): { make: NetworkSpec[]; external: string[] } {
  const used = new Set(Object.values(project.services).flatMap((s) => Object.keys(s.networks)));
  const make: NetworkSpec[] = [];
  const external: string[] = [];
  for (const key of [...used].sort()) {
    const n = project.networks[key] ?? (key === 'default' ? { external: false, driverOpts: {}, attachable: false, internal: false, labels: {}, subnets: [] } : undefined);
    if (!n) continue; // planServiceSpec names it
    const name = stackObjectName(stack, key, n);
    if (n.external) {
      external.push(name);
      continue;
    }
    const driver = 'driver' in n && n.driver ? n.driver : 'overlay';
    const subnet = 'subnets' in n ? n.subnets[0] : undefined;
    make.push(
      NetworkSpec.fromPartial({
        name,
        driver,
        attachable: 'attachable' in n ? n.attachable : false,
        internal: 'internal' in n ? n.internal : false,
        options: 'driverOpts' in n ? { ...n.driverOpts } : {},
        labels: { ...('labels' in n ? n.labels : {}), [LABEL_STACK]: stack },
        ipam: subnet ? { subnet: subnet.subnet, gateway: subnet.gateway ?? '', ipRange: subnet.ipRange ?? '' } : undefined,
      }),
    );
  }
  return { make, external };
}

/**
 * What `stack deploy` must do. `normalise` turns a spec into what the managers would store (their
 * defaults filled, references resolved), so an unchanged service is left alone; it may throw for a
 * spec the managers would refuse, which is then sent as it is for their message.
 */
export function planStackDeploy(project: ComposeProject, stack: string, existing: StackExisting, normalise: (spec: ServiceSpec) => ServiceSpec): StackPlan {
  validateStackName(stack);
  const specs = Object.values(project.services)
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((s) => planServiceSpec(project, stack, s));
  const { make, external } = planNetworks(project, stack);
  for (const name of external) {
    if (!existing.networks.some((n) => n.spec?.name === name || n.id === name)) throw invalidArgument(`network ${JSON.stringify(name)} is declared as external, but could not be found. You need to create a swarm-scoped network before the stack is deployed`);
  }
  const files = (kind: 'secret' | 'config') => {
    const top = kind === 'secret' ? project.secrets : project.configs;
    const have = (kind === 'secret' ? existing.secrets : existing.configs).map((o) => o.spec?.name);
    const used = new Set(Object.values(project.services).flatMap((s) => (kind === 'secret' ? s.secrets : s.configs).map((r) => r.source)));
    const out: StackPlan['secrets'] = [];
    for (const key of [...used].sort()) {
      const o = top[key];
      if (!o) continue; // planServiceSpec names it
      const name = stackObjectName(stack, key, o);
      if (o.external) {
        if (!have.includes(name)) throw invalidArgument(`${kind} not found: ${name}`);
        continue;
      }
      if (have.includes(name)) continue; // made by an earlier deploy: values never change
      if (!o.file) throw invalidArgument(`${kind}s.${key}: a file is required (or external: true)`);
      out.push({ name, labels: { ...o.labels, [LABEL_STACK]: stack }, file: o.file });
    }
    return out;
  };
  const byName = new Map(existing.services.map((s) => [s.spec?.name, s]));
  const create: ServiceSpec[] = [];
  const update: StackPlan['update'] = [];
  for (const spec of specs) {
    const current = byName.get(spec.name);
    if (!current) create.push(spec);
    else if (!sameSpec(current.spec, spec, normalise)) update.push({ current, spec });
  }
  const wanted = new Set(specs.map((s) => s.name));
  return {
    networks: make.filter((n) => !existing.networks.some((e) => e.spec?.name === n.name)),
    secrets: files('secret'),
    configs: files('config'),
    create,
    update,
    prune: existing.services.filter(isStack(stack)).filter((s) => !wanted.has(s.spec?.name ?? '')),
  };
}

function sameSpec(current: ServiceSpec | undefined, next: ServiceSpec, normalise: (spec: ServiceSpec) => ServiceSpec): boolean {
  if (!current) return false;
  let normalised: ServiceSpec;
  try {
    normalised = normalise(next);
  } catch {
    return false;
  }
  return JSON.stringify(ServiceSpec.toJSON(current)) === JSON.stringify(ServiceSpec.toJSON(normalised));
}

/** `stack ls` rows: each stack (by its services' label) and how many services it has. */
export function stackRows(services: Service[]): string[][] {
  const counts = new Map<string, number>();
  for (const s of services) {
    const stack = s.spec?.labels?.[LABEL_STACK];
    if (stack) counts.set(stack, (counts.get(stack) ?? 0) + 1);
  }
  return [...counts].sort(([a], [b]) => a.localeCompare(b)).map(([name, n]) => [name, String(n)]);
}
