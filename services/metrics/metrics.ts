import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * The daemon's Prometheus metrics, one set per process (one daemon per host). Components record
 * into them with a line at the place the thing happens; the metrics server (metrics-server.ts)
 * renders them on a scrape. Label values are bounded: fixed words (states, roles, loop names, RPC
 * operations, DNS types and rcodes), and service names and task ids only on the gauges that are
 * about them.
 */
export const metricsRegistry = new Registry();

/** Seconds buckets from 0.5 ms to 10 s: store requests, DNS answers, nft and netlink applies. */
const FAST = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Seconds buckets from 10 ms to 5 min: reconcile passes, task starts, image pulls. */
const SLOW = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

const registers = [metricsRegistry];

export const metrics = {
  leader: new Gauge({ name: 'swarmlet_manager_leader', help: '1 on the leading manager, 0 on the other managers (the cluster gauges are the leader\'s alone)', registers }),
  nodes: new Gauge({ name: 'swarmlet_nodes', help: 'Nodes of the swarm by state and role (leader only)', labelNames: ['state', 'role'] as const, registers }),
  tasks: new Gauge({ name: 'swarmlet_tasks', help: 'Tasks by state (leader only)', labelNames: ['state'] as const, registers }),
  serviceTasks: new Gauge({ name: 'swarmlet_service_tasks', help: 'Tasks by service and state (leader only)', labelNames: ['service', 'state'] as const, registers }),
  reconcileSeconds: new Histogram({ name: 'swarmlet_reconcile_duration_seconds', help: 'Reconcile passes by loop', labelNames: ['loop'] as const, buckets: SLOW, registers }),
  reconcileErrors: new Counter({ name: 'swarmlet_reconcile_errors_total', help: 'Reconcile passes that failed, by loop', labelNames: ['loop'] as const, registers }),
  etcdSeconds: new Histogram({ name: 'swarmlet_etcd_request_duration_seconds', help: 'Cluster store requests by operation (as the manager\'s store makes them)', labelNames: ['operation'] as const, buckets: FAST, registers }),
  etcdErrors: new Counter({ name: 'swarmlet_etcd_request_errors_total', help: 'Cluster store requests that failed, by operation', labelNames: ['operation'] as const, registers }),
  dispatcherSessions: new Gauge({ name: 'swarmlet_dispatcher_sessions', help: 'Agent sessions open on this manager\'s dispatcher', registers }),
  dnsQueries: new Counter({ name: 'swarmlet_dns_queries_total', help: 'Queries to the embedded DNS by type', labelNames: ['type'] as const, registers }),
  dnsAnswers: new Counter({ name: 'swarmlet_dns_answers_total', help: 'Answers of the embedded DNS by query type and rcode', labelNames: ['type', 'rcode'] as const, registers }),
  dnsSeconds: new Histogram({ name: 'swarmlet_dns_query_duration_seconds', help: 'Time from a query to its answer (upstream ones included)', buckets: FAST, registers }),
  nftSeconds: new Histogram({ name: 'swarmlet_nft_apply_duration_seconds', help: 'nft transactions applied (one atomic table replacement or chain update each)', buckets: FAST, registers }),
  processesStarted: new Counter({ name: 'swarmlet_agent_processes_started_total', help: 'Processes the agent started through its spawning helper and for its namespace helpers, by program', labelNames: ['program'] as const, registers }),
  netlinkSeconds: new Histogram({ name: 'swarmlet_netlink_apply_duration_seconds', help: 'Network drivers\' passes on this node (netlink: links, addresses, FDB and neighbour entries), by driver', labelNames: ['driver'] as const, buckets: SLOW, registers }),
  taskStartSeconds: new Histogram({ name: 'swarmlet_task_start_duration_seconds', help: 'Tasks from assigned to running on this node', buckets: SLOW, registers }),
  imagePullBytes: new Counter({ name: 'swarmlet_image_pull_bytes_total', help: 'Image layer bytes pulled from registries', registers }),
  imagePullSeconds: new Histogram({ name: 'swarmlet_image_pull_duration_seconds', help: 'Image pulls that fetched something', buckets: SLOW, registers }),
  taskCpu: new Counter({ name: 'swarmlet_task_cpu_seconds_total', help: 'CPU time of each running task on this node (cgroup cpu.stat)', labelNames: ['service', 'task_id'] as const, registers }),
  taskMemory: new Gauge({ name: 'swarmlet_task_memory_bytes', help: 'Memory of each running task on this node (cgroup memory.current, less inactive file cache)', labelNames: ['service', 'task_id'] as const, registers }),
  taskRx: new Counter({ name: 'swarmlet_task_network_receive_bytes_total', help: 'Bytes received on the interfaces of each running task on this node', labelNames: ['service', 'task_id'] as const, registers }),
  taskTx: new Counter({ name: 'swarmlet_task_network_transmit_bytes_total', help: 'Bytes sent on the interfaces of each running task on this node', labelNames: ['service', 'task_id'] as const, registers }),
};

/** Runs `fn`, and records how long it took in `histogram` (failed or not). */
export async function timed<T>(histogram: { startTimer(): () => unknown }, fn: () => Promise<T>): Promise<T> {
  const end = histogram.startTimer();
  try {
    return await fn();
  } finally {
    end();
  }
}
