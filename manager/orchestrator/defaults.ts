/**
 * The defaults a service spec gets when the operator leaves something out (docker's values), and
 * the accessors the plans use so that an unvalidated spec still behaves as a validated one would.
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

export const SERVICE_DEFAULTS = Object.freeze({
  replicas: 1,
  restart: Object.freeze<RestartPolicy>({ condition: RestartCondition.RESTART_CONDITION_ANY, delayMs: 5000, maxAttempts: 0, windowMs: 0 }),
  stopGracePeriodMs: 10000,
  update: Object.freeze<UpdateConfig>({
    parallelism: 1,
    delayMs: 0,
    failureAction: UpdateFailureAction.UPDATE_FAILURE_ACTION_PAUSE,
    monitorMs: 5000,
    maxFailureRatio: 0,
    order: UpdateOrder.UPDATE_ORDER_STOP_FIRST,
  }),
  rollback: Object.freeze<UpdateConfig>({
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

/** The restart policy of a spec, with defaults when it has none. */
export function restartPolicyOf(spec: ServiceSpec | undefined): RestartPolicy {
  return spec?.task?.restart ?? SERVICE_DEFAULTS.restart;
}

/** The update (or rollback) configuration of a spec, with defaults when it has none. */
export function updateConfigOf(spec: ServiceSpec | undefined, rollback: boolean): UpdateConfig {
  return (rollback ? spec?.rollback : spec?.update) ?? (rollback ? SERVICE_DEFAULTS.rollback : SERVICE_DEFAULTS.update);
}
