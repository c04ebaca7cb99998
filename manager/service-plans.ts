/** Pure plans for the service API: which service a name means, what an update or rollback changes. */
import { checkRef } from '../services/common/object-ref';
import { failedPrecondition, invalidArgument, notFound } from '../services/common/errors';
import { PortConfig, PublishMode, Service, ServiceSpec, Task, TaskSpec, TaskState, UpdateState } from '../services/gen/swarmlet/v1/types';

/** Finds a service by full id, name, or unique id prefix. */
export function resolveService(services: Service[], ref: string): Service {
  const wanted = ref.trim();
  if (!wanted) throw invalidArgument('a service name or id is required');
  checkRef('service', wanted);
  const exact = services.find((s) => s.id === wanted || s.spec?.name === wanted);
  if (exact) return exact;
  const byPrefix = services.filter((s) => s.id.startsWith(wanted));
  if (byPrefix.length === 1) return byPrefix[0];
  if (byPrefix.length > 1) throw invalidArgument(`service id prefix ${wanted} is ambiguous (${byPrefix.length} matches)`);
  throw notFound(`service ${wanted} not found`);
}

/**
 * Whether these ports (a spec's, or a service's allocated endpoint's) publish one in ingress mode:
 * the service's tasks then join the ingress network.
 */
export const publishesIngress = (ports: PortConfig[] | undefined): boolean => (ports ?? []).some((p) => p.publishMode !== PublishMode.PUBLISH_MODE_HOST);

const sameTaskSpec = (a: TaskSpec | undefined, b: TaskSpec | undefined) => JSON.stringify(TaskSpec.toJSON(a ?? TaskSpec.fromPartial({}))) === JSON.stringify(TaskSpec.toJSON(b ?? TaskSpec.fromPartial({})));

/**
 * The service after an operator's update. Only a change to the task spec makes a new spec
 * version (and so a rolling update); scaling or changing update settings does not.
 */
export function planServiceUpdate(current: Service, spec: ServiceSpec, now: Date): Service {
  if (spec.name !== current.spec?.name) throw invalidArgument(`a service's name can't be changed (${current.spec?.name} to ${spec.name})`);
  if (spec.mode?.$case !== current.spec?.mode?.$case) throw invalidArgument(`a service can't change between replicated and global mode`);
  // Tasks join the ingress network only when the service has ingress ports: gaining or losing them replaces the tasks.
  if (sameTaskSpec(spec.task, current.spec?.task) && publishesIngress(spec.endpoint?.ports) === publishesIngress(current.spec?.endpoint?.ports)) return { ...current, spec };
  return {
    ...current,
    spec,
    previousSpec: current.spec,
    specVersion: current.specVersion + 1,
    updateStatus: { state: UpdateState.UPDATE_STATE_UPDATING, startedAt: now.toISOString(), completedAt: '', message: 'update in progress', lastBatchAt: '', failures: 0 },
  };
}

/** `service rollback`: the previous spec becomes the spec again, rolled out with the rollback settings. */
export function planServiceRollback(current: Service, now: Date): Service {
  if (!current.previousSpec) throw failedPrecondition(`service ${current.spec?.name} has no previous spec to roll back to`);
  const taskChanged = !sameTaskSpec(current.previousSpec.task, current.spec?.task) || publishesIngress(current.previousSpec.endpoint?.ports) !== publishesIngress(current.spec?.endpoint?.ports);
  return {
    ...current,
    spec: current.previousSpec,
    previousSpec: current.spec,
    specVersion: taskChanged ? current.specVersion + 1 : current.specVersion,
    updateStatus: { state: UpdateState.UPDATE_STATE_ROLLBACK_STARTED, startedAt: now.toISOString(), completedAt: '', message: 'manually requested rollback', lastBatchAt: '', failures: 0 },
  };
}

/** Running and desired task counts, as `service ls` shows them. */
export function serviceCounts(service: Service, tasks: Task[]): { running: number; desired: number } {
  const live = tasks.filter((t) => t.serviceId === service.id && t.desiredState === TaskState.TASK_STATE_RUNNING);
  const running = live.filter((t) => t.status?.state === TaskState.TASK_STATE_RUNNING).length;
  const desired = service.spec?.mode?.$case === 'replicated' ? Number(service.spec.mode.value.replicas) : live.length;
  return { running, desired };
}
