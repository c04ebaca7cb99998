/** Picks the plan for a service's mode. */
import { planGlobal } from './global';
import { planReplicated } from './replicated';
import { OrchestratorInput, OrchestratorPlan } from './types';

export function planService(input: OrchestratorInput): OrchestratorPlan {
  return input.service.spec?.mode?.$case === 'global' ? planGlobal(input) : planReplicated(input);
}
