/**
 * Validation of a service spec as the operator wrote it, and the spec with every default filled
 * in. Pure: the Control API calls it before it writes anything, so bad input changes nothing.
 *
 * Defaults apply field by field, wherever a spec comes from (CLI, gRPC API): a field left out gets
 * its default. Restart and update fields whose default is not 0 are proto3 `optional`, so an
 * explicit 0 is kept (no restart delay, parallelism 0 = all at once, no monitor) and only an
 * absent field takes the default. Where 0 cannot mean anything useful (stop grace period, health
 * interval, timeout, retries), 0 means "the default", as in docker. The returned spec holds every
 * effective value, so `service inspect` shows them.
 */
import { invalidArgument } from '../../services/common/errors';
import {
  ContainerSpec,
  EndpointMode,
  EndpointSpec,
  HealthConfig,
  PortProtocol,
  PublishMode,
  Resources,
  RestartCondition,
  ServiceSpec,
  TaskSpec,
  UpdateFailureAction,
  UpdateOrder,
} from '../../services/gen/swarmlet/v1/types';
import { parseConstraint } from './constraints';
import { validateMounts } from './mount-spec';
import { EffectiveRestartPolicy, EffectiveUpdateConfig, SERVICE_DEFAULTS, withRestartDefaults, withUpdateDefaults } from './defaults';

export type { Constraint } from './constraints';
export { matchConstraints, parseConstraint } from './constraints';
export { SERVICE_DEFAULTS } from './defaults';

export const MAX_REPLICAS = 10000;
const MIN_MEMORY_LIMIT = 4 * 1024 * 1024;
const MIN_NANO_CPUS_LIMIT = 10_000_000; // 0.01 CPU: the smallest CFS quota that still runs
/** Bounds that refuse absurd values at create (a CPU count beyond any node's is refused by the scheduler, with the reason, as in docker). */
export const MAX_CPUS = 1024;
export const MAX_MEMORY_BYTES = 16 * 1024 ** 4; // 16 TiB
export const MAX_PIDS = 4_194_304; // the kernel's largest pid_max
/**
 * The largest service spec, as stored (JSON, UTF-8): every task carries a copy of its spec, and
 * tasks are written to etcd in transactions that must stay under etcd's request limit (2 MiB).
 */
export const MAX_SPEC_BYTES = 256 * 1024;
/**
 * Docker's service names (letters, digits, '-' and '_', starting and ending with a letter or digit,
 * at most 63: one DNS label; '_' is legal in DNS names), lowercase only: the embedded DNS answers
 * names case-insensitively, so `Web` and `web` would be one name for two services.
 */
const SERVICE_NAME = /^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$/;
const EXEC_HELP = 'use exec:/ (the host\'s filesystem) or exec:/path (a root directory)';
const IMAGE_HELP = `use an image reference (busybox, registry:5000/app:1.0) or exec:/ (the host's filesystem) or exec:/path (a root directory)`;

/** Throws InvalidArgument for a spec swarmlet cannot run; returns a copy with every default filled in. */
export function validateServiceSpec(spec: ServiceSpec): ServiceSpec {
  const name = spec.name ?? '';
  if (!name) throw invalidArgument('a service name is required');
  if (!SERVICE_NAME.test(name)) {
    throw invalidArgument(
      `invalid service name ${JSON.stringify(name)}: use 1 to 63 lowercase letters, digits, '-' and '_', starting and ending with a letter or digit`,
    );
  }
  const mode = validateMode(spec.mode);
  const task = validateTask(spec.task);
  const out: ServiceSpec = {
    name,
    labels: { ...(spec.labels ?? {}) },
    task,
    mode,
    update: validateUpdateConfig(withUpdateDefaults(spec.update, false), 'update'),
    rollback: validateUpdateConfig(withUpdateDefaults(spec.rollback, true), 'rollback'),
    endpoint: validateEndpoint(spec.endpoint),
  };
  const bytes = new TextEncoder().encode(JSON.stringify(ServiceSpec.toJSON(out))).length;
  if (bytes > MAX_SPEC_BYTES) {
    throw invalidArgument(
      `the service spec is too large (${Math.ceil(bytes / 1024)} KiB): the most is ${MAX_SPEC_BYTES / 1024} KiB, because every task carries a copy of it; keep large configuration in a file or volume`,
    );
  }
  return out;
}

const PROTOCOL_WORD = (p: PortProtocol) => (p === PortProtocol.PORT_PROTOCOL_UDP ? 'udp' : 'tcp');

/** Endpoint mode and published ports (docker's rules): valid ports, no (port, protocol) twice, no ingress port in dnsrr mode. */
export function validateEndpoint(e: EndpointSpec | undefined): EndpointSpec {
  const mode = e?.mode ?? EndpointMode.ENDPOINT_MODE_VIP;
  if (mode !== EndpointMode.ENDPOINT_MODE_VIP && mode !== EndpointMode.ENDPOINT_MODE_DNSRR) throw invalidArgument(`invalid endpoint mode ${mode}: use vip or dnsrr`);
  const seen = new Set<string>();
  const ports = (e?.ports ?? []).map((p) => {
    const protocol = p.protocol ?? PortProtocol.PORT_PROTOCOL_TCP;
    if (protocol !== PortProtocol.PORT_PROTOCOL_TCP && protocol !== PortProtocol.PORT_PROTOCOL_UDP) throw invalidArgument(`invalid port protocol ${protocol}: use tcp or udp`);
    const publishMode = p.publishMode ?? PublishMode.PUBLISH_MODE_INGRESS;
    if (publishMode !== PublishMode.PUBLISH_MODE_INGRESS && publishMode !== PublishMode.PUBLISH_MODE_HOST) throw invalidArgument(`invalid publish mode ${publishMode}: use ingress or host`);
    const target = p.targetPort ?? 0;
    const published = p.publishedPort ?? 0;
    if (!Number.isInteger(target) || target < 1 || target > 65535) throw invalidArgument(`invalid target port ${target}: use a port from 1 to 65535`);
    if (!Number.isInteger(published) || published < 0 || published > 65535) throw invalidArgument(`invalid published port ${published}: use a port from 1 to 65535 (or 0 to have one chosen)`);
    if (published === 0 && publishMode === PublishMode.PUBLISH_MODE_HOST) throw invalidArgument(`target port ${target}/${PROTOCOL_WORD(protocol)} in host mode needs a published port`);
    if (publishMode === PublishMode.PUBLISH_MODE_INGRESS && mode === EndpointMode.ENDPOINT_MODE_DNSRR) {
      throw invalidArgument('port published with ingress mode can\'t be used with dnsrr mode: publish in host mode, or use endpoint mode vip');
    }
    if (published > 0) {
      const key = `${published}/${PROTOCOL_WORD(protocol)}`;
      if (seen.has(key)) throw invalidArgument(`port ${key} is published more than once`);
      seen.add(key);
    }
    return { protocol, targetPort: target, publishedPort: published, publishMode };
  });
  return { mode, ports };
}

function validateMode(mode: ServiceSpec['mode']): NonNullable<ServiceSpec['mode']> {
  if (!mode) return { $case: 'replicated', value: { replicas: SERVICE_DEFAULTS.replicas } };
  if (mode.$case === 'global') return { $case: 'global', value: {} };
  const replicas = mode.value?.replicas ?? SERVICE_DEFAULTS.replicas;
  if (!Number.isInteger(replicas) || replicas < 0) throw invalidArgument(`invalid replicas ${replicas}: use a whole number of 0 or more`);
  if (replicas > MAX_REPLICAS) throw invalidArgument(`${replicas} replicas is too many: a service runs at most ${MAX_REPLICAS}`);
  return { $case: 'replicated', value: { replicas } };
}

function validateTask(task: TaskSpec | undefined): TaskSpec {
  const container = validateContainer(task?.container);
  const constraints = task?.placement?.constraints ?? [];
  constraints.forEach((c) => parseConstraint(c));
  return {
    container,
    resources: validateResources(task?.resources),
    restart: validateRestart(withRestartDefaults(task?.restart)),
    placement: { constraints: [...constraints] },
    forceUpdate: wholeNumber(task?.forceUpdate ?? 0, 'force-update counter'),
    networks: [...(task?.networks ?? [])],
    networkAliases: validateNetworkAliases(task?.networks ?? [], task?.networkAliases ?? []),
  };
}

/** Aliases only of the task's own networks, as names: no empty name, no whitespace or control character. */
function validateNetworkAliases(networks: string[], entries: TaskSpec['networkAliases']): TaskSpec['networkAliases'] {
  return entries.map((e) => {
    if (!networks.includes(e.network)) throw invalidArgument(`network aliases of ${JSON.stringify(e.network)}: the service is not attached to that network`);
    for (const a of e.aliases) if (!a || /[\s\x00-\x1f\x7f]/.test(a)) throw invalidArgument(`invalid network alias ${JSON.stringify(a)}`);
    return { network: e.network, aliases: [...new Set(e.aliases)] };
  });
}

/**
 * exec: images are checked here. Any other image is an OCI reference: refused here only when
 * empty or with whitespace or NUL; the node parses it strictly, and a malformed one rejects the
 * task with the parse error.
 */
function validateImage(image: string, c: ContainerSpec | undefined): void {
  if (!image.trim()) throw invalidArgument(`an image is required: ${IMAGE_HELP}`);
  if (/[\s\0]/.test(image)) throw invalidArgument(`invalid image ${JSON.stringify(image)}: an image has no whitespace or NUL characters`);
  if (!image.startsWith('exec:')) return;
  if (!/^exec:\//.test(image)) throw invalidArgument(`image ${JSON.stringify(image)} is not supported: ${EXEC_HELP}`);
  const root = image.slice('exec:'.length);
  if (root.split('/').some((part) => part === '..' || part === '.')) {
    throw invalidArgument(`image ${JSON.stringify(image)} names an unclean path: ${EXEC_HELP}, with no . or .. in the path`);
  }
  // The exec runtime has no image to take a default command from.
  if ((c?.command ?? []).length + (c?.args ?? []).length === 0) throw invalidArgument('a command is required: the exec runtime has no default command');
}

function validateContainer(c: ContainerSpec | undefined): ContainerSpec {
  const image = c?.image ?? '';
  validateImage(image, c);
  for (const entry of c?.env ?? []) {
    const eq = entry.indexOf('=');
    if (eq < 0) throw invalidArgument(`invalid environment entry ${JSON.stringify(entry)}: write it as KEY=VALUE`);
    if (eq === 0) throw invalidArgument(`invalid environment entry ${JSON.stringify(entry)}: the variable name is missing`);
  }
  const dir = c?.dir ?? '';
  if (dir && !dir.startsWith('/')) throw invalidArgument(`invalid working directory ${JSON.stringify(dir)}: it must be an absolute path`);
  const grace = duration(c?.stopGracePeriodMs ?? 0, 'stop grace period');
  return {
    image,
    command: [...(c?.command ?? [])],
    args: [...(c?.args ?? [])],
    env: [...(c?.env ?? [])],
    dir,
    user: c?.user ?? '',
    hostname: c?.hostname ?? '',
    healthcheck: validateHealth(c?.healthcheck),
    stopGracePeriodMs: grace || SERVICE_DEFAULTS.stopGracePeriodMs,
    mounts: validateMounts(c?.mounts ?? [], image),
    pull: c?.pull ?? 0,
    tty: c?.tty ?? false,
    openStdin: c?.openStdin ?? false,
    // resolved against the cluster's secrets and configs by the control API (file-object-plans.ts).
    secrets: [...(c?.secrets ?? [])],
    configs: [...(c?.configs ?? [])],
  };
}

function validateHealth(h: HealthConfig | undefined): HealthConfig | undefined {
  if (!h) return undefined;
  const test = [...(h.test ?? [])];
  const kind = test[0];
  if (test.length > 0) {
    if (kind === 'NONE') {
      if (test.length > 1) throw invalidArgument('a NONE health check takes no command');
    } else if (kind === 'CMD') {
      if (test.length < 2 || !test[1]) throw invalidArgument('a CMD health check needs a command');
    } else if (kind === 'CMD-SHELL') {
      if (test.length !== 2 || !test[1].trim()) throw invalidArgument('a CMD-SHELL health check takes exactly one shell command');
    } else {
      throw invalidArgument(`invalid health check ${JSON.stringify(kind)}: it starts with CMD, CMD-SHELL or NONE`);
    }
  }
  const intervalMs = duration(h.intervalMs ?? 0, 'health interval') || SERVICE_DEFAULTS.health.intervalMs;
  const timeoutMs = duration(h.timeoutMs ?? 0, 'health timeout') || SERVICE_DEFAULTS.health.timeoutMs;
  const retries = wholeNumber(h.retries ?? 0, 'health retries') || SERVICE_DEFAULTS.health.retries;
  const startPeriodMs = duration(h.startPeriodMs ?? 0, 'health start period');
  return { test, intervalMs, timeoutMs, retries, startPeriodMs };
}

function validateResources(r: TaskSpec['resources']): NonNullable<TaskSpec['resources']> {
  const limits = resources(r?.limits, 'limit');
  const reservations = resources(r?.reservations, 'reservation');
  if (limits.memoryBytes > 0 && limits.memoryBytes < MIN_MEMORY_LIMIT) {
    throw invalidArgument(`a memory limit of ${limits.memoryBytes} bytes is too small: the least is 4MiB`);
  }
  if (limits.nanoCpus > 0 && limits.nanoCpus < MIN_NANO_CPUS_LIMIT) {
    throw invalidArgument(`a CPU limit of ${limits.nanoCpus / 1e9} is too small: the least is 0.01`);
  }
  if (limits.memoryBytes > 0 && reservations.memoryBytes > limits.memoryBytes) {
    throw invalidArgument(`the memory reservation (${reservations.memoryBytes} bytes) is larger than the memory limit (${limits.memoryBytes} bytes)`);
  }
  if (limits.nanoCpus > 0 && reservations.nanoCpus > limits.nanoCpus) {
    throw invalidArgument(`the CPU reservation (${reservations.nanoCpus / 1e9}) is larger than the CPU limit (${limits.nanoCpus / 1e9})`);
  }
  return { limits, reservations };
}

function resources(r: Resources | undefined, what: string): Resources {
  const out = {
    nanoCpus: wholeNumber(r?.nanoCpus ?? 0, `CPU ${what}`),
    memoryBytes: wholeNumber(r?.memoryBytes ?? 0, `memory ${what}`),
    pids: wholeNumber(r?.pids ?? 0, `pids ${what}`),
  };
  if (out.nanoCpus > MAX_CPUS * 1e9) throw invalidArgument(`a CPU ${what} of ${out.nanoCpus / 1e9} is too large: the most is ${MAX_CPUS} CPUs`);
  if (out.memoryBytes > MAX_MEMORY_BYTES) throw invalidArgument(`a memory ${what} of ${out.memoryBytes} bytes is too large: the most is 16TiB`);
  if (out.pids > MAX_PIDS) throw invalidArgument(`a pids ${what} of ${out.pids} is too large: the most is ${MAX_PIDS}`);
  return out;
}

function validateRestart(r: EffectiveRestartPolicy): EffectiveRestartPolicy {
  if (!Object.values(RestartCondition).includes(r.condition) || r.condition === RestartCondition.UNRECOGNIZED) {
    throw invalidArgument(`invalid restart condition ${r.condition}: use none, on-failure or any`);
  }
  return {
    condition: r.condition,
    delayMs: duration(r.delayMs, 'restart delay'),
    maxAttempts: wholeNumber(r.maxAttempts, 'restart max attempts'),
    windowMs: duration(r.windowMs, 'restart window'),
  };
}

function validateUpdateConfig(u: EffectiveUpdateConfig, what: 'update' | 'rollback'): EffectiveUpdateConfig {
  if (!Object.values(UpdateFailureAction).includes(u.failureAction) || u.failureAction === UpdateFailureAction.UNRECOGNIZED) {
    throw invalidArgument(`invalid ${what} failure action ${u.failureAction}: use pause, continue or rollback`);
  }
  if (!Object.values(UpdateOrder).includes(u.order) || u.order === UpdateOrder.UNRECOGNIZED) {
    throw invalidArgument(`invalid ${what} order ${u.order}: use stop-first or start-first`);
  }
  const ratio = u.maxFailureRatio;
  if (typeof ratio !== 'number' || !Number.isFinite(ratio) || ratio < 0 || ratio > 1) {
    throw invalidArgument(`invalid ${what} max failure ratio ${ratio}: use a number from 0 to 1`);
  }
  return {
    parallelism: wholeNumber(u.parallelism, `${what} parallelism`),
    delayMs: duration(u.delayMs, `${what} delay`),
    failureAction: u.failureAction,
    monitorMs: duration(u.monitorMs, `${what} monitor`),
    maxFailureRatio: ratio,
    order: u.order,
  };
}

const MAX_DURATION_MS = 365 * 24 * 3600 * 1000;

function duration(ms: number, what: string): number {
  if (typeof ms !== 'number' || !Number.isInteger(ms) || ms < 0) throw invalidArgument(`invalid ${what} ${ms}: use a duration of 0 or more`);
  if (ms > MAX_DURATION_MS) throw invalidArgument(`invalid ${what}: ${ms}ms is longer than a year`);
  return ms;
}

function wholeNumber(n: number, what: string): number {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw invalidArgument(`invalid ${what} ${n}: use a whole number of 0 or more`);
  return n;
}
