/**
 * The global-service plan: one task on every node that is ready, active and satisfies the
 * constraints. A drained node, or one that no longer satisfies the constraints, has its task shut
 * down; a paused node keeps its task but gets no new one (no restart, no update); a node that is
 * down (or not yet known to be up) is left alone, as swarmkit does, until it comes back or is
 * removed; a removed node's tasks are shut down and forgotten. Created tasks carry their node id:
 * the scheduler only checks that node. Restarts and rolling updates work per node as they do per
 * slot for a replicated service. Pure.
 */
import { invalidArgument } from '../../services/common/errors';
import { Node, NodeAvailability, NodeState, Task } from '../../services/gen/swarmlet/v1/types';
import { parseConstraint, matchConstraints } from './constraints';
import { SERVICE_DEFAULTS } from './defaults';
import { PlanBuilder, SlotView, finishSlots, nodesById, openSlot, retireSlot, trimHistory } from './slots';
import { OrchestratorInput, OrchestratorPlan } from './types';

type NodeVerdict = { kind: 'run' } | { kind: 'keep' } | { kind: 'stop'; message: string; keepHistory: boolean };

export function planGlobal(input: OrchestratorInput): OrchestratorPlan {
  const { service } = input;
  if (service.spec?.mode?.$case !== 'global') throw invalidArgument(`service ${service.spec?.name ?? service.id} is not a global service`);
  const nodes = nodesById(input);
  const b = new PlanBuilder(service, input.now, input.newId, nodes);
  const constraints = (service.spec.task?.placement?.constraints ?? []).map(parseConstraint);

  const byNode = new Map<string, Task[]>();
  for (const t of input.tasks) {
    const list = byNode.get(t.nodeId);
    if (list) list.push(t);
    else byNode.set(t.nodeId, [t]);
  }
  const ids = new Set<string>([...byNode.keys(), ...nodes.keys()]);

  const views: SlotView[] = [];
  for (const id of [...ids].sort()) {
    const tasks = byNode.get(id) ?? [];
    const node = nodes.get(id);
    const verdict: NodeVerdict = judge(node, constraints);
    if (verdict.kind === 'stop') {
      retireSlot(b, tasks, verdict.message, verdict.keepHistory ? SERVICE_DEFAULTS.taskHistory : 0);
      continue;
    }
    const view = openSlot(b, id, 0, id, tasks);
    if (verdict.kind === 'run') views.push(view);
    else trimHistory(b, view.tasks);
  }

  return finishSlots(b, service, views, input.now);
}

function judge(node: Node | undefined, constraints: ReturnType<typeof parseConstraint>[]): NodeVerdict {
  if (!node) return { kind: 'stop', message: 'node removed', keepHistory: false };
  if (node.spec?.availability === NodeAvailability.NODE_AVAILABILITY_DRAIN) return { kind: 'stop', message: 'node drained', keepHistory: true };
  if (node.status?.state !== NodeState.NODE_STATE_READY) return { kind: 'keep' };
  if (!matchConstraints(node, constraints)) return { kind: 'stop', message: 'node no longer satisfies the constraints', keepHistory: true };
  if (node.spec?.availability === NodeAvailability.NODE_AVAILABILITY_PAUSE) return { kind: 'keep' };
  return { kind: 'run' };
}
