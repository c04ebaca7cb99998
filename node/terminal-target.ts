/**
 * Which process `exec` and `attach` mean: pure. A target is an id, a unique prefix of one, or a
 * name; candidates come from several sources (this node's tasks and its containers),
 * each a list of what it has, merged by resolveTerminalTarget.
 */
import { failedPrecondition, invalidArgument, notFound } from '../services/common/errors';

/** Something exec and attach can reach: the runtime's id for it and the names it answers to. */
export interface TerminalTarget {
  id: string;
  names: string[];
}

/** A source of targets (this node's tasks; later its containers). */
export type TerminalTargetSource = () => Promise<TerminalTarget[]>;

/** A task's name, as docker names a service task's container: SERVICE.SLOT.TASKID, or SERVICE.NODEID.TASKID for a global service. */
export function taskContainerName(task: { id: string; serviceName: string; slot: number; nodeId: string }): string {
  return `${task.serviceName}.${task.slot > 0 ? task.slot : task.nodeId}.${task.id}`;
}

/** The id `target` means: an exact id, then an exact name, then a unique id prefix. */
export function planTerminalTarget(target: string, candidates: TerminalTarget[]): string {
  if (!target) throw invalidArgument('a container or task is required');
  const exact = candidates.find((c) => c.id === target) ?? candidates.find((c) => c.names.includes(target));
  if (exact) return exact.id;
  const ids = [...new Set(candidates.filter((c) => c.id.startsWith(target)).map((c) => c.id))];
  if (ids.length === 1) return ids[0];
  if (ids.length > 1) throw failedPrecondition(`multiple IDs found with provided prefix: ${target}`);
  throw notFound(`No such container: ${target}`);
}

export async function resolveTerminalTarget(target: string, sources: TerminalTargetSource[]): Promise<string> {
  const all = (await Promise.all(sources.map((s) => s()))).flat();
  return planTerminalTarget(target, all);
}
