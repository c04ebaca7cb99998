/** The orchestrator and scheduler plans: pure functions from cluster state to actions. */
export type { EffectiveRestartPolicy, EffectiveUpdateConfig } from './defaults';
export { SERVICE_DEFAULTS, restartPolicyOf, updateConfigOf, withRestartDefaults, withUpdateDefaults } from './defaults';
export type { Constraint } from './constraints';
export { matchConstraints, parseConstraint } from './constraints';
export { MAX_REPLICAS, validateServiceSpec } from './service-spec';
export type { SchedulingInput, SchedulingPlan } from './scheduler';
export { explainRefusals, planScheduling } from './scheduler';
export type { OrchestratorAction, OrchestratorInput, OrchestratorPlan } from './types';
export { planReplicated } from './replicated';
export { planGlobal } from './global';
export { planService } from './plan-service';
export type { UpdateInput, UpdatePlan } from './update';
export { planUpdate } from './update';
export type { RestartDecision } from './restart';
export { planRestart } from './restart';
export type { SlotView } from './slots';
export { isOutOfDate } from './tasks';
