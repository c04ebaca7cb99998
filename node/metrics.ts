import { ContainerUsageReader } from '../agent/containers/container-usage';
import type { Runtime } from '../agent/runtime/runtime';
import type { Manager } from '../manager/manager';
import { metrics } from '../services/metrics/metrics';
import { planClusterCounts } from '../services/metrics/metric-plans';
import { SessionMessage } from '../services/gen/swarmlet/v1/dispatcher';

/** What a scrape reads of the node. */
export interface MetricsNode {
  readonly manager?: Manager;
  readonly lastMessage?: SessionMessage;
  readonly runtime: Runtime;
}

const usage = new ContainerUsageReader();

/**
 * Brings the gauges read on a scrape up to date: on managers the leader flag and the dispatcher's
 * sessions; on the leader the cluster's nodes and tasks (from its watched snapshot); on every node
 * the CPU, memory and network of its running tasks.
 */
export async function collectNodeMetrics(node: MetricsNode): Promise<void> {
  await Promise.all([collectCluster(node.manager), collectTasks(node)]);
}

async function collectCluster(manager: Manager | undefined): Promise<void> {
  metrics.nodes.reset();
  metrics.tasks.reset();
  metrics.serviceTasks.reset();
  metrics.leader.reset();
  metrics.dispatcherSessions.reset();
  if (!manager) return;
  const view = await manager.metricsView();
  metrics.leader.set(view.leading ? 1 : 0);
  metrics.dispatcherSessions.set(view.sessions);
  if (!view.leading) return;
  const counts = planClusterCounts(view.nodes, view.tasks);
  for (const c of counts.nodes) metrics.nodes.set(c.labels, c.value);
  for (const c of counts.tasks) metrics.tasks.set(c.labels, c.value);
  for (const c of counts.serviceTasks) metrics.serviceTasks.set(c.labels, c.value);
}

async function collectTasks(node: MetricsNode): Promise<void> {
  const readings = await Promise.all(
    (node.lastMessage?.tasks ?? []).map(async (t) => {
      const state = await node.runtime.inspect(t.id).catch(() => undefined);
      if (state?.state !== 'running' || !state.pid) return undefined;
      const u = await usage.usage(t.id, t.serviceName, state.pid).catch(() => undefined);
      return u && { labels: { service: t.serviceName, task_id: t.id }, u };
    }),
  );
  for (const counter of [metrics.taskCpu, metrics.taskMemory, metrics.taskRx, metrics.taskTx]) counter.reset();
  for (const r of readings) {
    if (!r) continue;
    metrics.taskCpu.inc(r.labels, r.u.cpuNs / 1e9);
    metrics.taskMemory.set(r.labels, r.u.memoryBytes);
    metrics.taskRx.inc(r.labels, r.u.netRxBytes);
    metrics.taskTx.inc(r.labels, r.u.netTxBytes);
  }
}
