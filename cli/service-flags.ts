/**
 * From `service create` and `service update` flags to a ServiceSpec, with docker's names. Pure:
 * the orchestrator's validateServiceSpec fills defaults and checks the whole spec afterwards.
 */
import { parseDuration } from '../services/common/duration';
import { parseMountFlag, planMountChange } from './mount-flags';
import { parseConfigFlag, parseSecretFlag, planConfigChange, planSecretChange } from './file-flags';
import { applyEndpointFlags } from './publish-flags';
import { invalidArgument } from '../services/common/errors';
import { parseBytes, parseCpus } from '../services/common/units';
import { withRestartDefaults, withUpdateDefaults } from '../manager/orchestrator/defaults';
import {
  HealthConfig,
  PullPolicy,
  RestartCondition,
  restartConditionToJSON,
  RestartPolicy,
  Service,
  ServiceSpec,
  TaskSpec,
  UpdateConfig,
  UpdateFailureAction,
  updateFailureActionToJSON,
  UpdateOrder,
  updateOrderToJSON,
} from '../services/gen/swarmlet/v1/types';

// Sizes and CPUs are parsed in services/common/units.ts (compose files use them too).
export { parseBytes, parseCpus };

function parseCount(text: string | number, what: string): number {
  const s = String(text).trim();
  if (!/^\d+$/.test(s)) throw invalidArgument(`invalid ${what} ${JSON.stringify(text)}: a whole number, 0 or more`);
  return Number(s);
}

function choice<T>(text: string, what: string, choices: Record<string, T>): T {
  const v = choices[text];
  if (v === undefined) throw invalidArgument(`invalid ${what} ${JSON.stringify(text)}: one of ${Object.keys(choices).join(', ')}`);
  return v;
}

const RESTART_CONDITIONS = { any: RestartCondition.RESTART_CONDITION_ANY, 'on-failure': RestartCondition.RESTART_CONDITION_ON_FAILURE, none: RestartCondition.RESTART_CONDITION_NONE };
const FAILURE_ACTIONS = { pause: UpdateFailureAction.UPDATE_FAILURE_ACTION_PAUSE, continue: UpdateFailureAction.UPDATE_FAILURE_ACTION_CONTINUE, rollback: UpdateFailureAction.UPDATE_FAILURE_ACTION_ROLLBACK };
const ORDERS = { 'stop-first': UpdateOrder.UPDATE_ORDER_STOP_FIRST, 'start-first': UpdateOrder.UPDATE_ORDER_START_FIRST };

/** Flags shared by create and update; every one optional (update changes only what is given). */
export interface SpecFlags {
  name?: string;
  replicas?: string | number;
  mode?: string;
  constraint?: string[];
  reserveCpu?: string;
  reserveMemory?: string;
  limitCpu?: string;
  limitMemory?: string;
  limitPids?: string | number;
  env?: string[];
  workdir?: string;
  user?: string;
  hostname?: string;
  label?: string[];
  restartCondition?: string;
  restartDelay?: string;
  restartMaxAttempts?: string | number;
  restartWindow?: string;
  updateParallelism?: string | number;
  updateDelay?: string;
  updateFailureAction?: string;
  updateMonitor?: string;
  updateMaxFailureRatio?: string | number;
  updateOrder?: string;
  rollbackParallelism?: string | number;
  rollbackDelay?: string;
  rollbackFailureAction?: string;
  rollbackMonitor?: string;
  rollbackMaxFailureRatio?: string | number;
  rollbackOrder?: string;
  healthCmd?: string;
  healthInterval?: string;
  healthRetries?: string | number;
  healthTimeout?: string;
  healthStartPeriod?: string;
  noHealthcheck?: boolean;
  /** docker's --tty: the task's command gets a pty. */
  tty?: boolean;
  /** docker's --interactive: the task's stdin stays open for attach. */
  interactive?: boolean;
  stopGracePeriod?: string;
  /** When nodes pull the image: missing (default), always, never. */
  pull?: string;
  /** Networks to join, names or ids, in order (create only: update has --network-add/--network-rm). */
  network?: string[];
  /** Mounts, docker's --mount syntax (create only: update has --mount-add/--mount-rm). */
  mount?: string[];
  /** Published ports, docker's --publish syntax (create only: update has --publish-add/--publish-rm). */
  publish?: string[];
  endpointMode?: string;
  /** secrets and configs, docker's --secret/--config syntax (create only: update has -add/-rm). */
  secret?: string[];
  config?: string[];
}

/** Update-only flags. */
export interface UpdateFlags extends SpecFlags {
  image?: string;
  args?: string[];
  envAdd?: string[];
  envRm?: string[];
  constraintAdd?: string[];
  constraintRm?: string[];
  labelAdd?: string[];
  labelRm?: string[];
  networkAdd?: string[];
  networkRm?: string[];
  mountAdd?: string[];
  /** Mount targets to remove. */
  mountRm?: string[];
  publishAdd?: string[];
  /** Published ports to remove: PORT[/PROTOCOL]. */
  publishRm?: string[];
  secretAdd?: string[];
  /** Secrets to remove, by name or id. */
  secretRm?: string[];
  configAdd?: string[];
  configRm?: string[];
  force?: boolean;
}

function applyUpdateConfig(base: UpdateConfig | undefined, f: Record<string, unknown>, prefix: 'update' | 'rollback'): UpdateConfig {
  const get = (k: string) => f[`${prefix}${k}`] as string | number | undefined;
  const c: UpdateConfig = { ...(base ?? UpdateConfig.fromPartial({})) };
  if (get('Parallelism') !== undefined) c.parallelism = parseCount(get('Parallelism')!, `--${prefix}-parallelism`);
  if (get('Delay') !== undefined) c.delayMs = parseDuration(String(get('Delay')), `--${prefix}-delay`);
  if (get('FailureAction') !== undefined) c.failureAction = choice(String(get('FailureAction')), `--${prefix}-failure-action`, FAILURE_ACTIONS);
  if (get('Monitor') !== undefined) c.monitorMs = parseDuration(String(get('Monitor')), `--${prefix}-monitor`);
  if (get('MaxFailureRatio') !== undefined) {
    const r = Number(get('MaxFailureRatio'));
    if (!(r >= 0 && r <= 1)) throw invalidArgument(`invalid --${prefix}-max-failure-ratio ${JSON.stringify(get('MaxFailureRatio'))}: a number from 0 to 1`);
    c.maxFailureRatio = r;
  }
  if (get('Order') !== undefined) c.order = choice(String(get('Order')), `--${prefix}-order`, ORDERS);
  return c;
}

function labels(items: string[] | undefined, base: Record<string, string> = {}): Record<string, string> {
  const out = { ...base };
  for (const item of items ?? []) {
    const eq = item.indexOf('=');
    const key = eq < 0 ? item : item.slice(0, eq);
    if (!key) throw invalidArgument(`invalid label ${JSON.stringify(item)}: expected KEY or KEY=VALUE`);
    out[key] = eq < 0 ? '' : item.slice(eq + 1);
  }
  return out;
}

/** Applies the shared flags to a spec (a fresh one for create, the current one for update). */
export function applySpecFlags(spec: ServiceSpec, f: SpecFlags): ServiceSpec {
  const task: TaskSpec = structuredClone(spec.task ?? TaskSpec.fromPartial({}));
  const c = (task.container ??= TaskSpec.fromPartial({ container: {} }).container!);
  const out: ServiceSpec = { ...spec, task };
  if (f.name !== undefined) out.name = f.name;
  if (f.mode !== undefined) {
    if (f.mode === 'global') out.mode = { $case: 'global', value: {} };
    else if (f.mode === 'replicated') out.mode = out.mode?.$case === 'replicated' ? out.mode : { $case: 'replicated', value: { replicas: 1 } };
    else throw invalidArgument(`invalid --mode ${JSON.stringify(f.mode)}: replicated or global`);
  }
  if (f.replicas !== undefined) {
    if (out.mode?.$case === 'global') throw invalidArgument('--replicas applies to replicated services only');
    out.mode = { $case: 'replicated', value: { replicas: parseCount(f.replicas, '--replicas') } };
  }
  if (f.label) out.labels = labels(f.label, out.labels);
  if (f.constraint) task.placement = { constraints: f.constraint };
  if (f.network) task.networks = [...f.network];
  if (f.mount) c.mounts = f.mount.map(parseMountFlag);
  if (f.secret) c.secrets = f.secret.map(parseSecretFlag);
  if (f.config) c.configs = f.config.map(parseConfigFlag);
  if (f.publish || f.endpointMode !== undefined) out.endpoint = applyEndpointFlags(out.endpoint, { publish: f.publish, endpointMode: f.endpointMode });
  const res = (task.resources ??= { limits: undefined, reservations: undefined });
  if (f.limitCpu !== undefined) res.limits = { ...(res.limits ?? { memoryBytes: 0, pids: 0 }), nanoCpus: parseCpus(f.limitCpu, '--limit-cpu') };
  if (f.limitMemory !== undefined) res.limits = { ...(res.limits ?? { nanoCpus: 0, pids: 0 }), memoryBytes: parseBytes(f.limitMemory, '--limit-memory') };
  if (f.limitPids !== undefined) res.limits = { ...(res.limits ?? { nanoCpus: 0, memoryBytes: 0 }), pids: parseCount(f.limitPids, '--limit-pids') };
  if (f.reserveCpu !== undefined) res.reservations = { ...(res.reservations ?? { memoryBytes: 0, pids: 0 }), nanoCpus: parseCpus(f.reserveCpu, '--reserve-cpu') };
  if (f.reserveMemory !== undefined) res.reservations = { ...(res.reservations ?? { nanoCpus: 0, pids: 0 }), memoryBytes: parseBytes(f.reserveMemory, '--reserve-memory') };
  if (f.env) c.env = f.env;
  if (f.workdir !== undefined) c.dir = f.workdir;
  if (f.user !== undefined) c.user = f.user;
  if (f.hostname !== undefined) c.hostname = f.hostname;
  if (f.stopGracePeriod !== undefined) c.stopGracePeriodMs = parseDuration(f.stopGracePeriod, '--stop-grace-period');
  if (f.pull !== undefined) c.pull = parsePullPolicy(f.pull);
  if (f.tty !== undefined) c.tty = f.tty;
  if (f.interactive !== undefined) c.openStdin = f.interactive;
  const r: RestartPolicy = { ...(task.restart ?? RestartPolicy.fromPartial({})) };
  if (f.restartCondition !== undefined) r.condition = choice(f.restartCondition, '--restart-condition', RESTART_CONDITIONS);
  if (f.restartDelay !== undefined) r.delayMs = parseDuration(f.restartDelay, '--restart-delay');
  if (f.restartMaxAttempts !== undefined) r.maxAttempts = parseCount(f.restartMaxAttempts, '--restart-max-attempts');
  if (f.restartWindow !== undefined) r.windowMs = parseDuration(f.restartWindow, '--restart-window');
  task.restart = r;
  const hc: HealthConfig = { ...(c.healthcheck ?? HealthConfig.fromPartial({})) };
  if (f.healthCmd !== undefined) hc.test = ['CMD-SHELL', f.healthCmd];
  if (f.healthInterval !== undefined) hc.intervalMs = parseDuration(f.healthInterval, '--health-interval');
  if (f.healthTimeout !== undefined) hc.timeoutMs = parseDuration(f.healthTimeout, '--health-timeout');
  if (f.healthStartPeriod !== undefined) hc.startPeriodMs = parseDuration(f.healthStartPeriod, '--health-start-period');
  if (f.healthRetries !== undefined) hc.retries = parseCount(f.healthRetries, '--health-retries');
  if (f.noHealthcheck) {
    if (f.healthCmd !== undefined) throw invalidArgument('--no-healthcheck conflicts with --health-cmd');
    hc.test = ['NONE'];
  }
  c.healthcheck = hc;
  out.update = applyUpdateConfig(out.update, f as Record<string, unknown>, 'update');
  out.rollback = applyUpdateConfig(out.rollback, f as Record<string, unknown>, 'rollback');
  return out;
}

/** The spec `service create` asks for. */
export function specFromCreateFlags(f: SpecFlags, image: string, command: string[]): ServiceSpec {
  const base = ServiceSpec.fromPartial({ name: f.name ?? '', task: { container: { image, command: [], args: command } } });
  base.mode = f.mode === 'global' ? { $case: 'global', value: {} } : { $case: 'replicated', value: { replicas: 1 } };
  if (f.mode !== undefined && f.mode !== 'global' && f.mode !== 'replicated') throw invalidArgument(`invalid --mode ${JSON.stringify(f.mode)}: replicated or global`);
  return applySpecFlags(base, { ...f, mode: undefined });
}

/**
 * `--network-rm` then `--network-add` on a service's networks, kept as written: removing one the
 * service is not on is refused (a typo would otherwise change nothing, silently); adding one it is
 * on already changes nothing; new ones go last, in the order given.
 */
export function planNetworkChange(current: string[], add: string[], rm: string[]): string[] {
  for (const ref of rm) {
    if (!current.includes(ref)) {
      throw invalidArgument(`--network-rm ${ref}: the service is not on network ${ref} (${current.length ? `its networks: ${current.join(', ')}` : 'it has none'})`);
    }
  }
  const kept = current.filter((ref) => !rm.includes(ref));
  for (const ref of add) if (!kept.includes(ref)) kept.push(ref);
  return kept;
}

/** The spec `service update` asks for, from the current one. */
export function specFromUpdateFlags(current: ServiceSpec, f: UpdateFlags): ServiceSpec {
  if (f.mode !== undefined) throw invalidArgument("a service's mode can't be changed; remove and create it again");
  let spec = applySpecFlags(current, { ...f, env: undefined, constraint: undefined, label: undefined, network: undefined, mount: undefined, publish: undefined, secret: undefined, config: undefined });
  const c = spec.task!.container!;
  if (f.image !== undefined) c.image = f.image;
  if (f.args !== undefined) c.args = f.args;
  if (f.envAdd || f.envRm) {
    const rm = new Set(f.envRm ?? []);
    const added = new Map((f.envAdd ?? []).map((e) => [e.split('=')[0], e]));
    c.env = [...c.env.filter((e) => !rm.has(e.split('=')[0]) && !added.has(e.split('=')[0])), ...added.values()];
  }
  if (f.constraintAdd || f.constraintRm) {
    const rm = new Set(f.constraintRm ?? []);
    const kept = (spec.task!.placement?.constraints ?? []).filter((x) => !rm.has(x));
    spec.task!.placement = { constraints: [...kept, ...(f.constraintAdd ?? []).filter((x) => !kept.includes(x))] };
  }
  if (f.mountAdd || f.mountRm) c.mounts = planMountChange(c.mounts ?? [], f.mountAdd ?? [], f.mountRm ?? []);
  if (f.secretAdd || f.secretRm) c.secrets = planSecretChange(c.secrets ?? [], f.secretAdd ?? [], f.secretRm ?? []);
  if (f.configAdd || f.configRm) c.configs = planConfigChange(c.configs ?? [], f.configAdd ?? [], f.configRm ?? []);
  if (f.publishAdd || f.publishRm) spec.endpoint = applyEndpointFlags(spec.endpoint, { publishAdd: f.publishAdd, publishRm: f.publishRm });
  if (f.networkAdd || f.networkRm) {
    const networks = planNetworkChange(spec.task!.networks ?? [], f.networkAdd ?? [], f.networkRm ?? []);
    // A network left takes the service's aliases there with it, as docker's attachment config does.
    spec.task!.networkAliases = (spec.task!.networkAliases ?? []).filter((a) => networks.includes(a.network));
    spec.task!.networks = networks;
  }
  if (f.labelAdd || f.labelRm) {
    const next = labels(f.labelAdd, spec.labels);
    for (const k of f.labelRm ?? []) delete next[k];
    spec = { ...spec, labels: next };
  }
  if (f.force) spec.task!.forceUpdate = (spec.task!.forceUpdate ?? 0) + 1;
  return spec;
}

const PULL_POLICIES: Record<string, PullPolicy> = { missing: PullPolicy.PULL_POLICY_MISSING, always: PullPolicy.PULL_POLICY_ALWAYS, never: PullPolicy.PULL_POLICY_NEVER };

/** `--pull missing|always|never`. */
export function parsePullPolicy(v: string): PullPolicy {
  const p = PULL_POLICIES[v];
  if (p === undefined) throw invalidArgument(`invalid --pull ${JSON.stringify(v)}: use missing, always or never`);
  return p;
}

/**
 * `service inspect`'s JSON with the restart policy and the update and rollback configs written out
 * in full, zeros included (proto JSON leaves zeros out), so every effective value shows, as in docker.
 */
export function withEffectivePolicies(json: Record<string, any>, s: Service): Record<string, any> {
  for (const key of ['spec', 'previousSpec'] as const) {
    const spec = s[key];
    const out = json[key];
    if (!spec || !out) continue;
    const r = withRestartDefaults(spec.task?.restart);
    out.task = { ...out.task, restart: { condition: restartConditionToJSON(r.condition), delayMs: r.delayMs, maxAttempts: r.maxAttempts, windowMs: r.windowMs } };
    for (const which of ['update', 'rollback'] as const) {
      const u = withUpdateDefaults(spec[which], which === 'rollback');
      out[which] = {
        parallelism: u.parallelism,
        delayMs: u.delayMs,
        failureAction: updateFailureActionToJSON(u.failureAction),
        monitorMs: u.monitorMs,
        maxFailureRatio: u.maxFailureRatio,
        order: updateOrderToJSON(u.order),
      };
    }
  }
  return json;
}
