/**
 * The scheduler alone: 30,000 pending tasks of 300 services placed on 1,000 simulated nodes, in
 * one plan. Prints tasks per second and the heap in use, and, in the same run, the figures of a
 * naive plan with the same filters that scans every node for every task (O(tasks × nodes)), with
 * the ratio of the two. The two must place every task on the same node; the run fails otherwise.
 *
 *   npm run bench:scheduler            (builds, then runs dist/bench/scheduler.js)
 *   node dist/bench/scheduler.js [--nodes 1000] [--services 300] [--tasks 30000] [--runs 5]
 */
import { performance } from 'node:perf_hooks';
import { Node, NodeAvailability, NodeRole, NodeState, Task, TaskState } from '../services/gen/swarmlet/v1/types';
import { Constraint, matchConstraints, parseConstraint } from '../manager/orchestrator/constraints';
import { SchedulingPlan, planScheduling } from '../manager/orchestrator/scheduler';

const GiB = 1024 ** 3;

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

/** A deterministic pseudo-random sequence, so every run measures the same cluster. */
function lcg(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
}

export function cluster(nodeCount: number, serviceCount: number, taskCount: number): { nodes: Node[]; running: Task[]; pending: Task[] } {
  const random = lcg(7);
  const zones = ['a', 'b', 'c', 'd'];
  const nodes: Node[] = Array.from({ length: nodeCount }, (_, i) => {
    const availability = i % 50 === 7 ? NodeAvailability.NODE_AVAILABILITY_DRAIN : i % 50 === 13 ? NodeAvailability.NODE_AVAILABILITY_PAUSE : NodeAvailability.NODE_AVAILABILITY_ACTIVE;
    const role = i < 3 ? NodeRole.NODE_ROLE_MANAGER : NodeRole.NODE_ROLE_WORKER;
    return Node.fromPartial({
      id: `node-${(i * 7919) % nodeCount}-${i}`,
      role,
      spec: { desiredRole: role, availability, labels: { zone: zones[i % zones.length], ssd: i % 3 === 0 ? 'true' : 'false' } },
      description: { hostname: `host-${i}`, os: 'linux', arch: 'x64', engineVersion: '0.1.0', resources: { nanoCpus: 8e9, memoryBytes: 16 * GiB } },
      status: { state: i % 100 === 42 ? NodeState.NODE_STATE_DOWN : NodeState.NODE_STATE_READY },
    });
  });
  const constraintChoices = [[], [], [], ['node.labels.zone==a'], ['node.labels.zone!=d'], ['node.role==worker', 'node.labels.ssd==true']];
  const services = Array.from({ length: serviceCount }, (_, s) => ({
    id: `svc-${s}`,
    constraints: constraintChoices[s % constraintChoices.length],
    cpu: [0, 1e8, 2.5e8, 5e8][s % 4],
    mem: [0, 64 * 1024 ** 2, 256 * 1024 ** 2][s % 3],
  }));
  const makeTask = (id: string, svc: (typeof services)[number], nodeId: string): Task =>
    Task.fromPartial({
    id,
    serviceId: svc.id,
    serviceName: svc.id,
    slot: 1,
    nodeId,
    spec: {
      container: undefined,
      resources: { limits: undefined, reservations: { nanoCpus: svc.cpu, memoryBytes: svc.mem } },
      restart: undefined,
      placement: { constraints: svc.constraints },
      forceUpdate: 0,
    },
    specVersion: 1,
    desiredState: TaskState.TASK_STATE_RUNNING,
    status: { state: nodeId ? TaskState.TASK_STATE_RUNNING : TaskState.TASK_STATE_PENDING, timestamp: '', message: '', err: '', container: undefined },
    createdAt: '',
    });
  // Some load already: 5,000 tasks running on random nodes.
  const running = Array.from({ length: 5000 }, (_, i) => makeTask(`running-${i}`, services[Math.floor(random() * serviceCount)], nodes[Math.floor(random() * nodeCount)].id));
  const perService = Math.ceil(taskCount / serviceCount);
  const pending: Task[] = [];
  for (const svc of services) for (let k = 0; k < perService && pending.length < taskCount; k++) pending.push(makeTask(`${svc.id}-${k + 1}`, svc, ''));
  return { nodes, running, pending };
}

/** The reference: for each task, scan every node with the same filters and spread order. */
function naivePlan(nodesIn: Node[], tasks: Task[], pending: Task[]): SchedulingPlan {
  const nodes = [...nodesIn].sort((a, b) => (a.id < b.id ? -1 : 1));
  const ok = (n: Node) => n.status?.state === NodeState.NODE_STATE_READY && n.spec?.availability === NodeAvailability.NODE_AVAILABILITY_ACTIVE;
  const used = new Map(nodes.map((n) => [n.id, { cpu: 0, mem: 0, total: 0, per: new Map<string, number>() }]));
  const add = (t: Task, nodeId: string) => {
    const u = used.get(nodeId)!;
    u.cpu += t.spec?.resources?.reservations?.nanoCpus ?? 0;
    u.mem += t.spec?.resources?.reservations?.memoryBytes ?? 0;
    u.total++;
    u.per.set(t.serviceId, (u.per.get(t.serviceId) ?? 0) + 1);
  };
  for (const t of tasks) if (t.nodeId && used.has(t.nodeId)) add(t, t.nodeId);
  const plan: SchedulingPlan = { assignments: [], unassigned: [] };
  for (const t of pending) {
    const constraints: Constraint[] = (t.spec?.placement?.constraints ?? []).map(parseConstraint);
    const cpu = t.spec?.resources?.reservations?.nanoCpus ?? 0;
    const mem = t.spec?.resources?.reservations?.memoryBytes ?? 0;
    let best: Node | undefined;
    let bestMine = 0;
    let bestTotal = 0;
    for (const n of nodes) {
      if (!ok(n) || !matchConstraints(n, constraints)) continue;
      const u = used.get(n.id)!;
      const cap = n.description?.resources;
      if (cpu > 0 && cap?.nanoCpus && u.cpu + cpu > cap.nanoCpus) continue;
      if (mem > 0 && cap?.memoryBytes && u.mem + mem > cap.memoryBytes) continue;
      const mine = u.per.get(t.serviceId) ?? 0;
      if (best && (mine > bestMine || (mine === bestMine && u.total >= bestTotal))) continue;
      best = n;
      bestMine = mine;
      bestTotal = u.total;
    }
    if (best) {
      add(t, best.id);
      plan.assignments.push({ taskId: t.id, nodeId: best.id });
    } else plan.unassigned.push({ taskId: t.id, message: 'no suitable node' });
  }
  return plan;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function timed(runs: number, fn: () => SchedulingPlan): { ms: number; plan: SchedulingPlan } {
  const times: number[] = [];
  let plan!: SchedulingPlan;
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    plan = fn();
    times.push(performance.now() - start);
  }
  return { ms: median(times), plan };
}

function measure(name: string, runs: number, fn: () => SchedulingPlan): { ms: number; plan: SchedulingPlan } {
  const m = timed(runs, fn);
  process.stdout.write(`${name}: median ${m.ms.toFixed(1)} ms of ${runs} runs\n`);
  return m;
}

/** The pure plan's figure (as this benchmark computes it): pending tasks placed per second, median of `runs` plans. */
export function pureSchedulerRate(nodeCount: number, serviceCount: number, taskCount: number, runs = 5): { tasksPerSecond: number; placed: number; pending: number } {
  const { nodes, running, pending } = cluster(nodeCount, serviceCount, taskCount);
  const tasks = [...running, ...pending];
  const { ms, plan } = timed(runs, () => planScheduling({ nodes, tasks, pending }));
  return { tasksPerSecond: pending.length / (ms / 1000), placed: plan.assignments.length, pending: pending.length };
}

function main(): void {
  const nodeCount = arg('nodes', 1000);
  const serviceCount = arg('services', 300);
  const taskCount = arg('tasks', 30000);
  const runs = arg('runs', 5);
  const { nodes, running, pending } = cluster(nodeCount, serviceCount, taskCount);
  const tasks = [...running, ...pending];
  const mb = (bytes: number) => `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  const heapBefore = process.memoryUsage().heapUsed;
  process.stdout.write(`scheduler: ${pending.length} pending tasks of ${serviceCount} services, ${nodeCount} nodes, ${running.length} tasks already running\n`);

  const fast = measure('planScheduling', runs, () => planScheduling({ nodes, tasks, pending }));
  const heapAfter = process.memoryUsage().heapUsed;
  const naive = measure('naive scan', Math.max(1, Math.min(runs, 3)), () => naivePlan(nodes, tasks, pending));

  const same = fast.plan.assignments.length === naive.plan.assignments.length && fast.plan.assignments.every((a, i) => naive.plan.assignments[i].taskId === a.taskId && naive.plan.assignments[i].nodeId === a.nodeId);
  const rate = (ms: number) => pending.length / (ms / 1000);
  process.stdout.write(`placed ${fast.plan.assignments.length}, unassigned ${fast.plan.unassigned.length}\n`);
  process.stdout.write(`planScheduling: ${Math.round(rate(fast.ms))} tasks/s\n`);
  process.stdout.write(`naive scan:     ${Math.round(rate(naive.ms))} tasks/s\n`);
  process.stdout.write(`ratio (planScheduling / naive): ${(rate(fast.ms) / rate(naive.ms)).toFixed(1)}x\n`);
  process.stdout.write(`heap used: ${mb(heapAfter)} after the plans (${mb(heapBefore)} with the cluster state loaded, before planning); rss ${mb(process.memoryUsage().rss)}\n`);
  process.stdout.write(`same placements as the naive scan: ${same ? 'yes' : 'NO'}\n`);
  if (!same) process.exitCode = 1;
}

if (require.main === module) main();
