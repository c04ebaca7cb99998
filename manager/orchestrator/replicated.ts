/**
 * The replicated-service plan: slots 1..replicas, each with one current task. Scale up creates the
 * missing slots; scale down shuts down the highest ones. A task on a node that is gone, down or
 * drained is shut down and replaced in its slot; a task that ended is restarted per its restart
 * policy; out-of-date slots are replaced by the rolling update (./update.ts). Pure.
 */
import { invalidArgument } from '../../services/common/errors';
import { Task } from '../../services/gen/swarmlet/v1/types';
import { PlanBuilder, SlotView, finishSlots, nodeProblem, nodesById, openSlot, retireSlot, trimHistory } from './slots';
import { OrchestratorInput, OrchestratorPlan } from './types';

export type { OrchestratorAction, OrchestratorInput, OrchestratorPlan } from './types';

export function planReplicated(input: OrchestratorInput): OrchestratorPlan {
  const { service } = input;
  const mode = service.spec?.mode;
  if (mode?.$case !== 'replicated') throw invalidArgument(`service ${service.spec?.name ?? service.id} is not a replicated service`);
  const replicas = mode.value.replicas;
  const nodes = nodesById(input);
  const b = new PlanBuilder(service, input.now, input.newId, nodes);

  const bySlot = new Map<number, Task[]>();
  for (const t of input.tasks) {
    const list = bySlot.get(t.slot);
    if (list) list.push(t);
    else bySlot.set(t.slot, [t]);
  }
  const numbers = new Set<number>(bySlot.keys());
  for (let n = 1; n <= replicas; n++) numbers.add(n);

  const views: SlotView[] = [];
  for (const n of [...numbers].sort((x, y) => x - y)) {
    const tasks = bySlot.get(n) ?? [];
    if (n < 1 || n > replicas) {
      retireSlot(b, tasks, 'scaled down', 0);
      continue;
    }
    views.push(openSlot(b, String(n), n, '', tasks, (t) => nodeProblem(nodes, t.nodeId)));
  }

  return finishSlots(b, service, views, input.now);
}
