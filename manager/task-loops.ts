/**
 * The leader's loops that move services to tasks and tasks to nodes. Each reads the whole state
 * it needs, asks a pure plan what to do, and writes the result back with compare-and-swap; they
 * never call each other, only watch the store.
 *   orchestrator: services -> tasks (replicas, global, restarts, rolling updates, history)
 *   allocator:    NEW -> PENDING, with addresses on the task's networks
 *   scheduler:    PENDING -> ASSIGNED to a node
 */
import { Backoff, exponentialBackoff } from '../services/common/backoff';
import { SwarmletError } from '../services/common/errors';
import { Logger, componentLogger } from '../services/common/logger';
import { Node, NodeState, Service, Task, TaskState, UpdateState } from '../services/gen/swarmlet/v1/types';
import { newRandomId } from '../services/pki/ca';
import { isAttachmentTask, planOrphanedAttachments } from './network/attachments';
import { planBuiltinNetworks } from './network/ipam';
import { BUILTIN_NETWORKS } from './network/network-spec';
import { EndpointAllocationPlan, planAllocation, planEndpointAllocation } from './network-plans';
import { planGlobal } from './orchestrator/global';
import { OrchestratorPlan, planReplicated } from './orchestrator/replicated';
import { planScheduling } from './orchestrator/scheduler';
import { planNewTasks } from './new-task-plans';
import { versionsOf } from './versions';
import { ReconcileLoop } from '../services/common/reconcile-loop';
import { applyServiceUpdate } from './service-endpoint';
import { DeposedError, inFlight, TXNS_IN_FLIGHT } from './store/etcd-store';
import { Store } from './store/store';
import { keys } from './store/keys';

/** How long the leader's loops wait after a change, so that a burst of writes (services created together, a pass's batches) makes one pass. */
export const LOOP_COALESCE_MS = 50;

const isTerminal = (t: Task) => (t.status?.state ?? 0) >= TaskState.TASK_STATE_COMPLETE;
const stamp = (now: Date) => now.toISOString();

export function orchestratorLoop(store: Store, parentLog: Logger, now: () => Date = () => new Date()): ReconcileLoop {
  const log = componentLogger(parentLog, 'orchestrator');
  let wakeTimer: NodeJS.Timeout | undefined;
  /** Services whose last pass failed, held back until their backoff runs out. */
  const failing = new Map<string, { backoff: Backoff; until: Date }>();
  /**
   * Services whose last plan had nothing to do (and no time to wake at), by what it was made
   * from: the service's version, its tasks' versions and the nodes'. A plan is a function of
   * those (and of the time, which a resync pass catches up with): until one changes, the service
   * is not planned again. A pass then plans the services a change concerns, not all of them.
   */
  const settled = new Map<string, string>();
  const loop: ReconcileLoop = new ReconcileLoop(
    store,
    {
      name: 'orchestrator',
      coalesceMs: LOOP_COALESCE_MS,
      watch: [keys.servicesPrefix, keys.tasksPrefix, keys.nodesPrefix],
      resyncMs: 10000,
      reconcile: async (_signal, info) => {
        const [services, tasks, nodes] = await Promise.all([store.listServices(), store.listTasks(), store.listNodes()]);
        const pass: PassTasks = { retired: new Map(), deleted: new Set(), created: [] };
        const byService = byServiceId(tasks);
        const nodeVersions = versionsOf(nodes);
        const nodeById = new Map(nodes.map((n) => [n.id, n]));
        let planned = 0;
        let wakeAt: Date | undefined;
        const later = (at: Date) => {
          if (!wakeAt || at < wakeAt) wakeAt = at;
        };
        const holdBack = (serviceId: string, err: Error) => {
          const entry = failing.get(serviceId) ?? { backoff: exponentialBackoff(1000, 30000), until: now() };
          const delayMs = entry.backoff.next();
          entry.until = new Date(now().getTime() + delayMs);
          failing.set(serviceId, entry);
          log.warn({ serviceId, err: err.message, delayMs }, 'service not reconciled; retrying it later');
          later(entry.until);
        };
        for (const service of services) {
          const held = failing.get(service.id);
          if (held && held.until > now()) {
            later(held.until);
            continue;
          }
          const serviceTasks = byService.get(service.id) ?? [];
          const inputs = `${versionsOf([service])} ${versionsOf(serviceTasks)} ${nodeVersions}`;
          if (!info.resync && settled.get(service.id) === inputs && !inputs.includes('?')) continue;
          settled.delete(service.id);
          planned++;
          const input = { service, tasks: serviceTasks, nodes, nodeById, now: now(), newId: newRandomId };
          const plan = service.spec?.mode?.$case === 'global' ? planGlobal(input) : planReplicated(input);
          try {
            await applyPlan(store, service, serviceTasks, plan, pass, log.child({ serviceId: service.id }));
            failing.delete(service.id);
          } catch (err) {
            // A deposed leader stops its whole pass; any other failure holds back this service alone.
            if (err instanceof DeposedError) throw err;
            holdBack(service.id, err as Error);
            continue;
          }
          if (plan.wakeAt) later(plan.wakeAt);
          else if (plan.actions.length === 0 && !updateStatusChanges(plan, service)) settled.set(service.id, inputs);
        }
        const serviceIds = new Set(services.map((s) => s.id));
        for (const id of failing.keys()) if (!serviceIds.has(id)) failing.delete(id);
        for (const id of settled.keys()) if (!serviceIds.has(id)) settled.delete(id);
        if (pass.created.length) {
          const after = tasks.flatMap((t) => (pass.deleted.has(t.id) ? [] : [pass.retired.get(t.id) ?? t]));
          for (const [serviceId, err] of await createPlaced(store, pass.created, after, services, nodes, now(), log)) holdBack(serviceId, err);
        }
        await retireOrphans(store, tasks, serviceIds, nodes, log);
        log.debug({ services: services.length, planned, created: pass.created.length, resync: info.resync }, 'orchestrator pass');
        clearTimeout(wakeTimer);
        if (wakeAt) {
          wakeTimer = setTimeout(() => loop.poke(), Math.max(0, wakeAt.getTime() - now().getTime()) + 10);
          wakeTimer.unref();
        }
      },
    },
    log,
  );
  return loop;
}

/** Tasks by their service's id. */
function byServiceId(tasks: Task[]): Map<string, Task[]> {
  const byService = new Map<string, Task[]>();
  for (const t of tasks) {
    const list = byService.get(t.serviceId);
    if (list) list.push(t);
    else byService.set(t.serviceId, [t]);
  }
  return byService;
}

/** What a pass's writes did to the tasks it read (retired, deleted), and the ones it makes, written together at its end (createPlaced). */
interface PassTasks {
  retired: Map<string, Task>;
  deleted: Set<string>;
  created: Task[];
}

/** Whether the plan's update status is one the service does not have yet (applyPlan writes it). */
const updateStatusChanges = (plan: OrchestratorPlan, service: Service): boolean =>
  plan.updateStatus !== undefined && JSON.stringify(plan.updateStatus) !== JSON.stringify(service.updateStatus);

/** Writes a service's plan, all but its new tasks: those go into `pass`, with what its retirements and deletes did. */
async function applyPlan(store: Store, service: Service, tasks: Task[], plan: OrchestratorPlan, pass: PassTasks, log: Logger): Promise<void> {
  const creates: Task[] = [];
  const byId = new Map(tasks.map((t) => [t.id, t]));
  const retire: { before: Task; after: Task }[] = [];
  for (const action of plan.actions) {
    if (action.kind === 'create') creates.push(action.task);
    else if (action.kind === 'setDesired') {
      const t = byId.get(action.taskId);
      if (!t || t.desiredState >= action.desired) continue;
      retire.push({ before: t, after: { ...t, desiredState: action.desired } });
      log.info({ taskId: action.taskId, desired: TaskState[action.desired], reason: action.message }, 'task retired');
    }
  }
  // Retirements go out in one batch (a scale-down stops its tasks together); what lost a race is read again.
  for (const lost of await store.updateTasks(retire)) {
    await store.mutateTask(lost.id, (t) => (t.desiredState >= lost.desiredState ? undefined : { ...t, desiredState: lost.desiredState }));
  }
  for (const r of retire) pass.retired.set(r.after.id, r.after);
  if (creates.length) {
    pass.created.push(...creates);
    // At debug: each pass says at info what it created ('tasks created'); this line names every slot of every service.
    log.debug({ count: creates.length, slots: creates.map((t) => t.slot || t.nodeId) }, 'tasks to create');
  }
  const deletes = plan.actions.filter((a) => a.kind === 'delete').map((a) => (a as { taskId: string }).taskId);
  if (deletes.length) await store.deleteTasks(deletes);
  for (const id of deletes) pass.deleted.add(id);
  if (plan.updateStatus && updateStatusChanges(plan, service)) {
    const startsRollback = plan.updateStatus.state === UpdateState.UPDATE_STATE_ROLLBACK_STARTED && service.updateStatus?.state !== UpdateState.UPDATE_STATE_ROLLBACK_STARTED;
    if (startsRollback && service.previousSpec) {
      // The update failed and asked for a rollback: the previous spec becomes the spec again.
      const next = { ...service, spec: service.previousSpec, previousSpec: service.spec, specVersion: service.specVersion + 1, updateStatus: plan.updateStatus };
      // Its published ports go back too; one another service took meanwhile keeps the ports as they are.
      await applyServiceUpdate(store, next).catch(async (err) => {
        if (!(err instanceof SwarmletError && err.kind === 'Conflict')) throw err;
        log.warn({ err: err.message }, 'rollback keeps the published ports');
        await store.updateService(next);
      });
      log.warn({ message: plan.updateStatus.message }, 'update failed; rolling back');
    } else {
      await store.updateService({ ...service, updateStatus: plan.updateStatus });
      log.info({ state: UpdateState[plan.updateStatus.state], message: plan.updateStatus.message }, 'update status changed');
    }
  }
}

/**
 * Writes the pass's new tasks once each, as planNewTasks makes them: with their addresses and
 * their node (ASSIGNED), else PENDING or NEW with the reason, for the scheduler or the allocator
 * to try again. The addresses VIPs and ingress endpoints hold (or are about to) are kept clear.
 */
async function createPlaced(store: Store, created: Task[], tasks: Task[], services: Service[], nodes: Node[], at: Date, log: Logger): Promise<Map<string, Error>> {
  const networks = await store.listNetworks();
  const { reserved } = planEndpointAllocation({ services, networks, nodes, tasks });
  const placed = planNewTasks({ created, tasks, networks, services, nodes, reserved, now: at });
  const failed = new Map<string, Error>();
  try {
    await store.createTasks(placed);
  } catch (err) {
    if (err instanceof DeposedError) throw err;
    // One service's tasks may be what failed (too large for etcd, say): each service's go on their own then, and a service whose fail is held back alone.
    for (const [serviceId, ts] of byServiceId(placed)) {
      await store.createTasks(ts).catch((e: Error) => {
        if (e instanceof DeposedError) throw e;
        failed.set(serviceId, e);
      });
    }
  }
  const written = failed.size ? placed.filter((t) => !failed.has(t.serviceId)) : placed;
  const count = (state: TaskState) => written.filter((t) => t.status?.state === state).length;
  if (written.length) log.info({ count: written.length, assigned: count(TaskState.TASK_STATE_ASSIGNED), pending: count(TaskState.TASK_STATE_PENDING), unallocated: count(TaskState.TASK_STATE_NEW) }, 'tasks created');
  for (const t of written) if (t.status?.state === TaskState.TASK_STATE_NEW) log.info({ taskId: t.id, reason: t.status.message }, 'task cannot be allocated yet');
  return failed;
}

/**
 * Tasks of removed services: told to go, and forgotten once they are gone (or could never have
 * run). Network attachments of a removed or down node are forgotten too.
 */
async function retireOrphans(store: Store, tasks: Task[], serviceIds: Set<string>, nodes: Node[], log: Logger): Promise<void> {
  const nodeState = new Map(nodes.map((n) => [n.id, n.status?.state]));
  // Containers' network attachments are no service's: they go with their node alone.
  const forget: string[] = planOrphanedAttachments(tasks, nodes);
  for (const t of tasks) {
    if (isAttachmentTask(t)) continue;
    const neverRan = (t.status?.state ?? 0) < TaskState.TASK_STATE_ASSIGNED && t.desiredState > TaskState.TASK_STATE_RUNNING;
    if (serviceIds.has(t.serviceId)) {
      if (neverRan) forget.push(t.id);
      continue;
    }
    if (t.desiredState < TaskState.TASK_STATE_REMOVE) {
      await store.mutateTask(t.id, (x) => (x.desiredState >= TaskState.TASK_STATE_REMOVE ? undefined : { ...x, desiredState: TaskState.TASK_STATE_REMOVE }));
      continue;
    }
    const nodeGone = !t.nodeId || !nodeState.has(t.nodeId) || nodeState.get(t.nodeId) === NodeState.NODE_STATE_DOWN;
    if (isTerminal(t) || neverRan || nodeGone) forget.push(t.id);
  }
  if (forget.length) {
    await store.deleteTasks(forget);
    log.info({ count: forget.length }, 'retired tasks forgotten');
  }
}

/**
 * NEW -> PENDING. Tasks whose spec names networks get their addresses first (planAllocation);
 * those that cannot get them stay NEW and say why, and are tried again when tasks or networks
 * change (an address freed, a network made). Before the tasks, each pass gives every node its
 * ingress endpoint and every service its VIPs (planEndpointAllocation), so that no task takes
 * their addresses.
 */
export function allocatorLoop(store: Store, parentLog: Logger, now: () => Date = () => new Date()): ReconcileLoop {
  const log = componentLogger(parentLog, 'allocator');
  return new ReconcileLoop(
    store,
    {
      name: 'allocator',
      coalesceMs: LOOP_COALESCE_MS,
      watch: [keys.tasksPrefix, keys.networksPrefix, keys.servicesPrefix, keys.nodesPrefix],
      resyncMs: 10000,
      reconcile: async () => {
        const [tasks, networks, services, nodes] = await Promise.all([store.listTasks(), store.listNetworks(), store.listServices(), store.listNodes()]);
        const endpoints = planEndpointAllocation({ services, networks, nodes, tasks });
        await applyEndpointAllocation(store, endpoints, services, log);
        const plan = planAllocation(tasks, networks, now(), { services, reserved: endpoints.reserved });
        if (plan.changes.length === 0) return;
        const lost = await store.updateTasks(plan.changes);
        if (plan.allocated) log.info({ count: plan.allocated, lost: lost.length }, 'tasks allocated');
        // A waiting task is in the changes only when its reason is new.
        for (const c of plan.changes) if (c.after.status?.state === TaskState.TASK_STATE_NEW) log.info({ taskId: c.after.id, reason: c.after.status.message }, 'task cannot be allocated yet');
      },
    },
    log,
  );
}

/**
 * Writes nodes' ingress endpoints and services' VIPs. A service is written at the version the plan
 * read (its networks may have changed since); a write that loses a race waits for the next pass.
 */
async function applyEndpointAllocation(store: Store, plan: EndpointAllocationPlan, services: Service[], log: Logger): Promise<void> {
  // Several nodes at a time: a thousand nodes joining at once each need their ingress endpoint.
  await inFlight(plan.nodes, TXNS_IN_FLIGHT, async ({ nodeId, ingress }) => {
    try {
      await store.mutateNode(nodeId, (n) => (JSON.stringify(n.ingress) === JSON.stringify(ingress) ? undefined : { ...n, ingress }));
      log.info({ nodeId, address: ingress?.address ?? '' }, 'node ingress endpoint allocated');
    } catch (err) {
      log.warn({ nodeId, err: (err as Error).message }, 'node ingress endpoint not written');
    }
  });
  const byId = new Map(services.map((s) => [s.id, s]));
  for (const { serviceId, virtualIps } of plan.services) {
    const service = byId.get(serviceId)!;
    try {
      await store.updateService({ ...service, endpoint: { spec: service.endpoint?.spec ?? service.spec?.endpoint, ports: service.endpoint?.ports ?? [], virtualIps } });
      log.info({ serviceId, vips: virtualIps.map((v) => v.addr) }, 'service VIPs allocated');
    } catch (err) {
      if (!(err instanceof SwarmletError && err.kind === 'Retryable')) throw err;
    }
  }
  for (const f of plan.failed) log.warn({ id: f.id, reason: f.message }, 'endpoint address not allocated');
}

/**
 * Makes the built-in networks (bridge, host, none, ingress) that the store lacks. Runs on the
 * leader; a create that loses to another manager's is a Conflict on the name, and harmless; one
 * that loses a VNI race is Retryable, and the loop runs again.
 */
export function builtinNetworksLoop(store: Store, parentLog: Logger): ReconcileLoop {
  const log = componentLogger(parentLog, 'networks');
  return new ReconcileLoop(
    store,
    {
      name: 'builtin-networks',
      watch: [keys.networksPrefix],
      resyncMs: 60000,
      reconcile: async () => {
        const read = await store.listNetworksAt();
        let revision = read.revision;
        for (const network of planBuiltinNetworks(BUILTIN_NETWORKS, read.networks, () => newRandomId())) {
          try {
            // The ingress network's VNI was chosen against the networks read: written only if no other changed since.
            const created = await store.createNetwork(network, network.vni ? revision : undefined);
            revision = Math.max(revision, created.meta?.version ?? 0);
            log.info({ networkId: network.id, name: network.spec?.name }, 'built-in network created');
          } catch (err) {
            if (!(err instanceof SwarmletError && err.kind === 'Conflict')) throw err;
          }
        }
      },
    },
    log,
  );
}

/** PENDING -> ASSIGNED: the scheduler plan picks nodes; tasks it cannot place say why. */
export function schedulerLoop(store: Store, parentLog: Logger, now: () => Date = () => new Date()): ReconcileLoop {
  const log = componentLogger(parentLog, 'scheduler');
  return new ReconcileLoop(
    store,
    {
      name: 'scheduler',
      coalesceMs: LOOP_COALESCE_MS,
      watch: [keys.tasksPrefix, keys.nodesPrefix],
      resyncMs: 5000,
      reconcile: async () => {
        const [tasks, nodes, services] = await Promise.all([store.listTasks(), store.listNodes(), store.listServices()]);
        const pending = tasks.filter((t) => t.status?.state === TaskState.TASK_STATE_PENDING && t.desiredState <= TaskState.TASK_STATE_RUNNING);
        if (pending.length === 0) return;
        const plan = planScheduling({ nodes, tasks, pending, services });
        const byId = new Map(pending.map((t) => [t.id, t]));
        const at = stamp(now());
        const assigned = plan.assignments.map((a) => {
          const t = byId.get(a.taskId)!;
          return { before: t, after: { ...t, nodeId: a.nodeId, status: { ...t.status!, state: TaskState.TASK_STATE_ASSIGNED, message: 'assigned', timestamp: at } } };
        });
        const waiting = plan.unassigned
          .map((u) => ({ t: byId.get(u.taskId)!, message: u.message }))
          .filter(({ t, message }) => t.status?.message !== message)
          .map(({ t, message }) => ({ before: t, after: { ...t, status: { ...t.status!, message, timestamp: at } } }));
        const lost = await store.updateTasks([...assigned, ...waiting]);
        if (assigned.length) log.info({ count: assigned.length - lost.length }, 'tasks assigned');
      },
    },
    log,
  );
}
