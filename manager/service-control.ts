import * as grpc from '@grpc/grpc-js';
import { Logger, componentLogger } from '../services/common/logger';
import { conflict } from '../services/common/errors';
import { unary } from '../services/api/handlers';
import { failCall, nodeClientCredentials, TlsMaterial } from '../services/api/tls';
import { ControlServer, CreateServiceRequest, GetServiceRequest, ListTasksRequest, RemoveServiceRequest, ServiceLogsRequest, UpdateServiceRequest } from '../services/gen/swarmlet/v1/control';
import { AgentClient } from '../services/gen/swarmlet/v1/dispatcher';
import { LogLine, Node, Service, ServiceSpec, Task, TaskState, UpdateState } from '../services/gen/swarmlet/v1/types';
import { planFileReferences } from './file-object-plans';
import { newRandomId } from '../services/pki/ca';
import { validateServiceNetworks } from './network-plans';
import { validateServiceSpec } from './orchestrator/service-spec';
import { applyServiceCreate, applyServiceRemoval, applyServiceUpdate, unchangedSince } from './service-endpoint';
import { planServiceRollback, planServiceUpdate, resolveService, serviceCounts } from './service-plans';
import { SealKeySource, sealForCreate, sealForUpdate, withoutSecrets } from './service-secrets';
import { Store } from './store/store';

export interface ServiceControlDeps {
  /** Reads what any manager has just written (see ControlDeps). */
  store: Store;
  log: Logger;
  /** This manager's node certificate: it calls agents with it, for their tasks' logs. */
  tls: () => TlsMaterial;
  /** The managers' seal key for services' registry credentials. */
  sealKey?: SealKeySource;
}

type ServiceHandlers = Pick<ControlServer, 'createService' | 'listServices' | 'getService' | 'updateService' | 'removeService' | 'listTasks' | 'serviceLogs'>;

/** The service half of the Control API. */
export function serviceControl(deps: ServiceControlDeps): ServiceHandlers {
  const { store } = deps;
  const log = componentLogger(deps.log, 'control');
  const find = async (ref: string) => resolveService(await store.listServices(), ref);
  /** the spec's secrets and configs resolved against the cluster's (a rollback's too: one may have gone). */
  const withFileReferences = async (spec: ServiceSpec) => {
    const c = spec.task?.container;
    if (!c?.secrets.length && !c?.configs.length) return spec;
    const [secrets, configs] = await Promise.all([store.listFileObjects('secret'), store.listFileObjects('config')]);
    return planFileReferences(spec, secrets, configs);
  };

  return {
    createService: unary(async (req: CreateServiceRequest) => {
      const spec = await withFileReferences(validateServiceSpec(req.spec!));
      // The networks are read only when the spec names some: nothing else checks them.
      if (spec.task?.networks?.length) validateServiceNetworks(spec.task.networks, await store.listNetworks());
      const now = new Date().toISOString();
      const id = newRandomId();
      const service: Service = {
        id,
        spec,
        specVersion: 1,
        previousSpec: undefined,
        endpoint: undefined,
        registryAuthSealed: sealForCreate(deps.sealKey, req.registryAuth, id, spec.task?.container?.image ?? ''),
        updateStatus: { state: UpdateState.UPDATE_STATE_COMPLETED, startedAt: now, completedAt: now, message: 'created', lastBatchAt: '', failures: 0 },
      };
      const created = await applyServiceCreate(store, service);
      log.info({ serviceId: created.id, name: spec.name, registryAuth: created.registryAuthSealed.length > 0 }, 'service created');
      return withoutSecrets(created);
    }),

    listServices: unary(async () => {
      const [services, tasks] = await Promise.all([store.listServices(), store.listTasks()]);
      return {
        services: services.sort((a, b) => (a.spec?.name ?? '').localeCompare(b.spec?.name ?? '')).map((service) => ({ service: withoutSecrets(service), ...serviceCounts(service, tasks) })),
      };
    }),

    getService: unary(async (req: GetServiceRequest) => withoutSecrets(await find(req.service))),

    updateService: unary(async (req: UpdateServiceRequest) => {
      const current = await find(req.service);
      if (req.version && !(await unchangedSince(store, current, req.version))) throw conflict(`service ${current.spec?.name} changed since version ${req.version} was read; read it again`);
      const planned = req.rollback ? planServiceRollback(current, new Date()) : planServiceUpdate(current, await withFileReferences(validateServiceSpec(req.spec!)), new Date());
      if (req.rollback) planned.spec = await withFileReferences(planned.spec!);
      const next = { ...planned, registryAuthSealed: sealForUpdate(deps.sealKey, current, req, planned.spec?.task?.container?.image ?? '') };
      // A rollback's spec is checked too: a network it names may have been removed since.
      validateServiceNetworks(next.spec?.task?.networks ?? [], await store.listNetworks());
      const updated = await applyServiceUpdate(store, next, current);
      log.info({ serviceId: updated.id, specVersion: updated.specVersion, rollback: req.rollback }, 'service updated');
      return withoutSecrets(updated);
    }),

    removeService: unary(async (req: RemoveServiceRequest) => {
      const service = await find(req.service);
      await applyServiceRemoval(store, service);
      log.info({ serviceId: service.id, name: service.spec?.name }, 'service removed');
      return {};
    }),

    listTasks: unary(async (req: ListTasksRequest) => {
      const [services, tasks, nodes] = await Promise.all([store.listServices(), store.listTasks(), store.listNodes()]);
      const serviceId = req.service ? resolveService(services, req.service).id : undefined;
      const nodeId = req.node ? nodes.find((n) => n.id === req.node || n.description?.hostname === req.node)?.id ?? req.node : undefined;
      const picked = tasks
        .filter((t) => (!serviceId || t.serviceId === serviceId) && (!nodeId || t.nodeId === nodeId))
        .filter((t) => req.all || t.desiredState <= TaskState.TASK_STATE_RUNNING)
        .sort((a, b) => a.serviceName.localeCompare(b.serviceName) || Number(a.slot) - Number(b.slot) || b.createdAt.localeCompare(a.createdAt));
      const used = new Set(picked.map((t) => t.nodeId));
      return { tasks: picked, nodes: nodes.filter((n) => used.has(n.id)) };
    }),

    serviceLogs: (call: grpc.ServerWritableStream<ServiceLogsRequest, LogLine>) => {
      streamServiceLogs(deps, call).catch((err) => failCall(call, undefined, err));
    },
  };
}

/**
 * Gathers a service's logs from the nodes its tasks ran on, straight from each node's agent.
 * With follow, tasks that start later are picked up too.
 */
async function streamServiceLogs(deps: ServiceControlDeps, call: grpc.ServerWritableStream<ServiceLogsRequest, LogLine>): Promise<void> {
  const { store } = deps;
  const req = call.request;
  const service = resolveService(await store.listServices(), req.service);
  const seen = new Set<string>();
  const open: grpc.ClientReadableStream<LogLine>[] = [];
  const clients = new Map<string, AgentClient>();
  let live = 0;
  let ended = false;
  const finish = (err?: unknown) => {
    if (ended) return;
    ended = true;
    open.forEach((s) => s.cancel());
    clients.forEach((c) => c.close());
    if (err) failCall(call, undefined, err);
    else call.end();
  };
  call.on('cancelled', () => finish());

  const subscribe = async () => {
    const [tasks, nodes] = await Promise.all([store.listTasks(), store.listNodes()]);
    const fresh = tasks.filter((t) => t.serviceId === service.id && t.nodeId && (t.status?.state ?? 0) >= TaskState.TASK_STATE_STARTING && !seen.has(t.id));
    const byNode = new Map<string, Task[]>();
    for (const t of fresh) byNode.set(t.nodeId, [...(byNode.get(t.nodeId) ?? []), t]);
    for (const [nodeId, nodeTasks] of byNode) {
      const node = nodes.find((n: Node) => n.id === nodeId);
      if (!node?.status?.apiAddr) continue;
      nodeTasks.forEach((t) => seen.add(t.id));
      let client = clients.get(nodeId);
      if (!client) {
        client = new AgentClient(node.status.apiAddr, nodeClientCredentials(deps.tls(), nodeId));
        clients.set(nodeId, client);
      }
      const byId = new Map(nodeTasks.map((t) => [t.id, t]));
      const stream = client.taskLogs({ taskIds: nodeTasks.map((t) => t.id), follow: req.follow, tail: req.tail });
      open.push(stream);
      live += 1;
      stream.on('data', (line: LogLine) => {
        const t = byId.get(line.taskId);
        if (!ended) call.write({ ...line, nodeId, serviceName: t?.serviceName ?? '', slot: t?.slot ?? 0 });
      });
      // A node that cannot be reached costs its lines, not the whole request.
      stream.on('error', () => undefined);
      stream.on('close', () => {
        live -= 1;
        if (!req.follow && live === 0) finish();
      });
    }
  };

  await subscribe();
  if (!req.follow) {
    if (live === 0) finish();
    return;
  }
  while (!ended) {
    await new Promise((r) => setTimeout(r, 1000).unref());
    if (!ended) await subscribe().catch(() => undefined);
  }
}
