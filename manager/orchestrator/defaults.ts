/**
 * The defaults a service spec gets when the operator leaves something out (docker's values), and
 * the accessors the plans use so that an unvalidated spec still behaves as a validated one would.
 *
 * Defaults apply field by field: a restart policy or update config that is present but leaves a
 * field out gets that field's default. In the proto, the fields whose default is not 0 are
 * `optional` (undefined: absent), so an explicit 0 (`--update-parallelism 0`: all at once,
 * `--restart-delay 0s`) stays 0.
 */
import {
  HealthConfig,
  RestartCondition,
  RestartPolicy,
  ServiceSpec,
  UpdateConfig,
  UpdateFailureAction,
  UpdateOrder,
} from '../../services/gen/swarmlet/v1/types';

/** A message with every field filled in. */
export type Filled<T> = { [K in keyof T]-?: NonNullable<T[K]> };
export type EffectiveRestartPolicy = Filled<RestartPolicy>;
export type EffectiveUpdateConfig = Filled<UpdateConfig>;

export const SERVICE_DEFAULTS = Object.freeze({
  replicas: 1,
  restart: Object.freeze<EffectiveRestartPolicy>({ condition: RestartCondition.RESTART_CONDITION_ANY, delayMs: 5000, maxAttempts: 0, windowMs: 0 }),
  stopGracePeriodMs: 10000,
  update: Object.freeze<EffectiveUpdateConfig>({
    parallelism: 1,
    delayMs: 0,
    failureAction: UpdateFailureAction.UPDATE_FAILURE_ACTION_PAUSE,
    monitorMs: 5000,
    maxFailureRatio: 0,
    order: UpdateOrder.UPDATE_ORDER_STOP_FIRST,
  }),
  rollback: Object.freeze<EffectiveUpdateConfig>({
    parallelism: 1,
    delayMs: 0,
    failureAction: UpdateFailureAction.UPDATE_FAILURE_ACTION_PAUSE,
    monitorMs: 5000,
    maxFailureRatio: 0,
    order: UpdateOrder.UPDATE_ORDER_STOP_FIRST,
  }),
  health: Object.freeze<Omit<HealthConfig, 'test'>>({ intervalMs: 30000, timeoutMs: 30000, retries: 3, startPeriodMs: 0 }),
  /** Old tasks kept per slot (or per node, for a global service), as swarmkit's task history. */
  taskHistory: 5,
  /** How long a new task waits for the one it replaces to report that it stopped (swarmkit's old-task timeout). */
  oldTaskTimeoutMs: 60000,
});

/** `value` with each field it leaves out (undefined) taken from `defaults`. */
function fill<T extends object>(value: T | undefined, defaults: Filled<T>): Filled<T> {
  const out = { ...defaults };
  for (const key of Object.keys(defaults) as (keyof T)[]) {
    const v = value?.[key];
    if (v !== undefined && v !== null) out[key] = v as Filled<T>[keyof T];
  }
  return out;
}

/** A restart policy with the default in each field it leaves out. */
export function withRestartDefaults(policy: RestartPolicy | undefined): EffectiveRestartPolicy {
  return fill(policy, SERVICE_DEFAULTS.restart);
}

/** An update (or rollback) configuration with the default in each field it leaves out. */
export function withUpdateDefaults(config: UpdateConfig | undefined, rollback: boolean): EffectiveUpdateConfig {
  return fill(config, rollback ? SERVICE_DEFAULTS.rollback : SERVICE_DEFAULTS.update);
}

/** The restart policy of a spec, with defaults where it has none. */
export function restartPolicyOf(spec: ServiceSpec | undefined): EffectiveRestartPolicy {
  return withRestartDefaults(spec?.task?.restart);
}

/** The update (or rollback) configuration of a spec, with defaults where it has none. */
export function updateConfigOf(spec: ServiceSpec | undefined, rollback: boolean): EffectiveUpdateConfig {
  return withUpdateDefaults(rollback ? spec?.rollback : spec?.update, rollback);
}
