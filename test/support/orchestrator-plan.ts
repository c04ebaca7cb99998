import { planGlobal } from '../../manager/orchestrator/global';
import { planReplicated } from '../../manager/orchestrator/replicated';
import { OrchestratorInput, OrchestratorPlan } from '../../manager/orchestrator/types';

/** The orchestrator plan for a service's mode, picked as the manager's orchestrator loop picks it. */
export function planForMode(input: OrchestratorInput): OrchestratorPlan {
  return input.service.spec?.mode?.$case === 'global' ? planGlobal(input) : planReplicated(input);
}
