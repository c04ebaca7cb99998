/**
 * Replicated and global services end to end on a lab: placement and spread, scaling, global
 * tasks on joining nodes, constraints, drain, restarts, host failure, rolling updates, memory
 * limits, logs, agent restarts, and refusals of bad input. Run through test/run.sh.
 */
import { apiServiceTasks } from './api-reads';
import { Lab, LabHost, requireBuiltCli } from '../lab/lab';
import { byHost, formSwarm, info, joinCommand, nodes, sw, waitFor } from './cluster-helpers';
import { uniqueSuffix } from '../support/unique';

interface TaskJson {
  id: string;
  serviceName: string;
  slot?: number;
  nodeId?: string;
  specVersion?: number;
  spec?: { container?: { args?: string[] } };
  desiredState?: string;
  createdAt?: string;
  status?: { state?: string; message?: string; err?: string; container?: { pid?: number; exitCode?: number; oomKilled?: boolean } };
}

const prefix = `sws${uniqueSuffix()}`;
let lab: Lab;
let h1: LabHost, h2: LabHost, h3: LabHost, h4: LabHost;

async function tasks(service: string): Promise<TaskJson[]> {
  return (await apiServiceTasks(h1, service));
}
const live = (ts: TaskJson[]) => ts.filter((t) => t.desiredState === 'TASK_STATE_RUNNING');
const running = (ts: TaskJson[]) => live(ts).filter((t) => t.status?.state === 'TASK_STATE_RUNNING');

async function nodeIds(): Promise<Map<string, LabHost>> {
  const list = await nodes(lab, h1);
  return new Map(lab.hosts.map((h) => [byHost(list, h)?.id ?? '', h]));
}

/** Waits until the service runs exactly `n` tasks, all of them at its current spec. */
async function waitRunning(service: string, n: number, timeoutMs = 60000): Promise<TaskJson[]> {
  return waitFor(`${n} running tasks of ${service}`, async () => {
    const r = running(await tasks(service));
    return r.length === n && live(await tasks(service)).length === n ? r : undefined;
  }, timeoutMs);
}

function perHost(ts: TaskJson[], ids: Map<string, LabHost>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const t of ts) counts[ids.get(t.nodeId ?? '')?.name ?? '?'] = (counts[ids.get(t.nodeId ?? '')?.name ?? '?'] ?? 0) + 1;
  return counts;
}

beforeAll(async () => {
  requireBuiltCli();
  lab = await Lab.create({ prefix, hosts: 4 });
  [h1, h2, h3, h4] = lab.hosts;
  await formSwarm(lab, [h1], [h2, h3]);
}, 120000);

afterAll(async () => {
  await lab?.destroy();
}, 60000);

describe('replicated services', () => {
  test('create --replicas 6 runs two tasks on each node, and waits until it has converged', async () => {
    const out = await sw(lab, h1, ['service', 'create', '--name', 'web', '--replicas', '6', 'exec:/', 'sh', '-c', 'echo hello from $HOSTNAME; exec sleep 1000']);
    expect(out).toMatch(/^[a-z0-9]{25}\n/);
    expect(out).toMatch(/overall progress: 6 out of 6 tasks\n/);
    expect(out.trim().split('\n').at(-1)).toBe('verify: Service converged');
    const ts = await waitRunning('web', 6);
    expect(Object.values(perHost(ts, await nodeIds())).sort()).toEqual([2, 2, 2]);
    const ls = await sw(lab, h1, ['service', 'ls']);
    expect(ls).toMatch(/web\s+replicated\s+6\/6\s+exec:\//);
  }, 120000);

  test('logs come from every node', async () => {
    const out = await sw(lab, h1, ['service', 'logs', 'web']);
    const lines = out.trim().split('\n');
    expect(lines).toHaveLength(6);
    for (const h of [h1, h2, h3]) expect(out).toContain(`@${h.name}    | hello from `);
    expect(lines[0]).toMatch(/^web\.\d\.[a-z0-9]{12}@\S+ {4}\| hello from [a-z0-9]{12}$/);
  }, 60000);

  test('scale to 9 and back to 3', async () => {
    expect(await sw(lab, h1, ['service', 'scale', 'web=9'])).toMatch(/^web scaled to 9\n[\s\S]*verify: Service converged\n$/);
    expect(Object.values(perHost(await waitRunning('web', 9), await nodeIds())).sort()).toEqual([3, 3, 3]);
    await sw(lab, h1, ['service', 'scale', 'web=3']);
    const ts = await waitRunning('web', 3);
    expect(ts.map((t) => t.slot).sort()).toEqual([1, 2, 3]);
  }, 120000);

  test('killing a task\'s process gets it restarted in its slot', async () => {
    const [victim] = running(await tasks('web'));
    const host = (await nodeIds()).get(victim.nodeId!)!;
    const kill = await lab.exec(host, ['kill', '-9', String(victim.status!.container!.pid)]);
    expect(kill.code).toBe(0);
    const replacement = await waitFor('a replacement in the slot', async () => {
      const t = running(await tasks('web')).find((x) => x.slot === victim.slot);
      return t && t.id !== victim.id ? t : undefined;
    });
    expect(replacement.slot).toBe(victim.slot);
    const old = (await tasks('web')).find((t) => t.id === victim.id)!;
    expect(old.status?.state).toBe('TASK_STATE_FAILED');
    expect(old.status?.err).toMatch(/exit/);
    expect(await sw(lab, h1, ['service', 'ps', 'web'])).toMatch(/\\_ web\.\d/);
  }, 90000);

  test('constraints restrict placement; an unsatisfiable one leaves tasks pending with the reason', async () => {
    await sw(lab, h1, ['node', 'update', '--label-add', 'zone=a', h2.name]);
    await sw(lab, h1, ['service', 'create', '--name', 'zoned', '--replicas', '2', '--constraint', 'node.labels.zone==a', 'exec:/', 'sleep', '1000']);
    const zoned = await waitRunning('zoned', 2);
    const ids = await nodeIds();
    expect(zoned.every((t) => ids.get(t.nodeId!) === h2)).toBe(true);

    const res = await lab.cli(h1, ['service', 'create', '--name', 'nowhere', '--constraint', 'node.labels.zone==mars', 'exec:/', 'sleep', '1000']);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/cannot be placed: no suitable node \(scheduling constraints not satisfied on 3 nodes\)/);
    const [pending] = await tasks('nowhere');
    expect(pending.status?.state).toBe('TASK_STATE_PENDING');
    await sw(lab, h1, ['service', 'rm', 'nowhere', 'zoned']);
  }, 90000);

  test('drain moves a node\'s tasks to the others', async () => {
    await sw(lab, h1, ['service', 'scale', 'web=6']);
    await sw(lab, h1, ['node', 'update', '--availability', 'drain', h3.name]);
    const ids = await nodeIds();
    await waitFor('no task on the drained node', async () => {
      const r = await waitRunning('web', 6);
      return r.every((t) => ids.get(t.nodeId!) !== h3) ? r : undefined;
    });
    await sw(lab, h1, ['node', 'update', '--availability', 'active', h3.name]);
  }, 120000);

  test('the agent restarts without restarting its tasks', async () => {
    const before = running(await tasks('web'));
    const ids = await nodeIds();
    const onH2 = before.filter((t) => ids.get(t.nodeId!) === h2);
    expect(onH2.length).toBeGreaterThan(0);
    await lab.stopDaemon(h2, 'term');
    await lab.startDaemon(h2);
    await waitFor('h2 ready again', async () => (byHost(await nodes(lab, h1), h2)?.status?.state === 'NODE_STATE_READY' ? true : undefined));
    await new Promise((r) => setTimeout(r, 2000));
    const after = running(await tasks('web'));
    for (const t of onH2) {
      const same = after.find((x) => x.id === t.id);
      expect(same?.status?.container?.pid).toBe(t.status?.container?.pid);
    }
  }, 90000);
});

describe('global services', () => {
  test('one task on every node, also on a node that joins later', async () => {
    await sw(lab, h1, ['service', 'create', '--name', 'agent', '--mode', 'global', 'exec:/', 'sleep', '1000']);
    const ids = await nodeIds();
    expect(Object.values(perHost(await waitRunning('agent', 3), ids)).sort()).toEqual([1, 1, 1]);
    await lab.startDaemon(h4);
    const token = (await sw(lab, h1, ['swarm', 'join-token', 'worker'])).trim();
    await sw(lab, h4, joinCommand(token));
    const four = await waitRunning('agent', 4);
    const ids4 = await nodeIds();
    expect(four.some((t) => ids4.get(t.nodeId!) === h4)).toBe(true);
    const ls = await sw(lab, h1, ['service', 'ls']);
    expect(ls).toMatch(/agent\s+global\s+4\/4/);
  }, 120000);
});

describe('rolling updates', () => {
  test('a failing new command with parallelism 2 pauses the update, and running tasks of the old spec stay', async () => {
    await sw(lab, h1, ['service', 'create', '--name', 'roll', '--replicas', '6', '--update-parallelism', '2', '--update-monitor', '2s', '--restart-delay', '1s', 'exec:/', 'sleep', '1000']);
    await waitRunning('roll', 6);
    const res = await lab.cli(h1, ['service', 'update', '--args', 'sh -c "exit 3"', 'roll']);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/update paused/);
    const svc = JSON.parse(await sw(lab, h1, ['service', 'inspect', '--format', 'api', 'roll']))[0];
    expect(svc.updateStatus.state).toBe('UPDATE_STATE_PAUSED');
    // At most one batch (2 tasks) was taken down.
    expect(running(await tasks('roll')).length).toBeGreaterThanOrEqual(4);
    await sw(lab, h1, ['service', 'rm', 'roll']);
  }, 120000);

  test('with failure action rollback the service goes back to the previous spec', async () => {
    await sw(lab, h1, ['service', 'create', '--name', 'back', '--replicas', '4', '--update-parallelism', '2', '--update-monitor', '2s', '--update-failure-action', 'rollback', '--restart-delay', '1s', 'exec:/', 'sleep', '1000']);
    await waitRunning('back', 4);
    const res = await lab.cli(h1, ['service', 'update', '--args', 'sh -c "exit 3"', 'back']);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/rolled back|rollback/);
    await waitFor('rollback completed', async () => {
      const svc = JSON.parse(await sw(lab, h1, ['service', 'inspect', '--format', 'api', 'back']))[0];
      return svc.updateStatus.state === 'UPDATE_STATE_ROLLBACK_COMPLETED' ? svc : undefined;
    }, 90000);
    const r = await waitRunning('back', 4);
    const svc = JSON.parse(await sw(lab, h1, ['service', 'inspect', '--format', 'api', 'back']))[0];
    expect(svc.spec.task.container.args).toEqual(['sleep', '1000']);
    // Only the slots the failed update had replaced are replaced again.
    expect(r.map((t) => t.spec?.container?.args)).toEqual(Array(4).fill(['sleep', '1000']));
    await sw(lab, h1, ['service', 'rm', 'back']);
  }, 150000);

  test('a rollback that was asked for and completed exits 0; the update is reverted', async () => {
    await sw(lab, h1, ['service', 'create', '--name', 'rb', '--replicas', '2', '--update-monitor', '1s', '--rollback-monitor', '1s', 'exec:/', 'sleep', '1000']);
    await waitRunning('rb', 2);
    await sw(lab, h1, ['service', 'update', '--env-add', 'X=1', 'rb']);
    const res = await lab.cli(h1, ['service', 'rollback', 'rb']);
    expect({ code: res.code, stderr: res.stderr }).toEqual({ code: 0, stderr: '' });
    expect(res.stdout).toMatch(/^rb\nrollback: manually requested rollback\n/);
    expect(res.stdout.trim().split('\n').slice(-2)).toEqual(['rollback: rollback completed', 'verify: Service converged']);
    const svc = JSON.parse(await sw(lab, h1, ['service', 'inspect', '--format', 'api', 'rb']))[0];
    expect(svc.updateStatus.state).toBe('UPDATE_STATE_ROLLBACK_COMPLETED');
    expect(svc.spec.task.container.env ?? []).not.toContain('X=1');
    await sw(lab, h1, ['service', 'rm', 'rb']);
  }, 120000);

  test('start-first never drops below the expected running count', async () => {
    await sw(lab, h1, ['service', 'create', '--name', 'sf', '--replicas', '3', '--update-order', 'start-first', '--update-parallelism', '1', '--update-monitor', '1s', 'exec:/', 'sleep', '1000']);
    await waitRunning('sf', 3);
    await sw(lab, h1, ['service', 'update', '-d', '--args', 'sleep 2000', 'sf']);
    let min = Infinity;
    await waitFor('the update done', async () => {
      const ts = await tasks('sf');
      min = Math.min(min, ts.filter((t) => t.status?.state === 'TASK_STATE_RUNNING').length);
      const svc = JSON.parse(await sw(lab, h1, ['service', 'inspect', '--format', 'api', 'sf']))[0];
      return svc.updateStatus.state === 'UPDATE_STATE_COMPLETED' && running(ts).length === 3 && running(ts).every((t) => t.specVersion === svc.specVersion) ? true : undefined;
    }, 120000, 100);
    expect(min).toBeGreaterThanOrEqual(3);
    await sw(lab, h1, ['service', 'rm', 'sf']);
  }, 150000);
});

describe('defaults and accepted input', () => {
  test('a service created without restart or update flags shows docker defaults in inspect; explicit zeros stay 0', async () => {
    await sw(lab, h1, ['service', 'create', '-d', '--name', 'dflt', 'exec:/', 'sleep', '1000']);
    const svc = JSON.parse(await sw(lab, h1, ['service', 'inspect', '--format', 'api', 'dflt']))[0];
    expect(svc.spec.task.restart).toEqual({ condition: 'RESTART_CONDITION_ANY', delayMs: 5000, maxAttempts: 0, windowMs: 0 });
    const defaults = { parallelism: 1, delayMs: 0, failureAction: 'UPDATE_FAILURE_ACTION_PAUSE', monitorMs: 5000, maxFailureRatio: 0, order: 'UPDATE_ORDER_STOP_FIRST' };
    expect(svc.spec.update).toEqual(defaults);
    expect(svc.spec.rollback).toEqual(defaults);
    await sw(lab, h1, ['service', 'create', '-d', '--name', 'zeros', '--update-parallelism', '0', '--restart-delay', '0s', 'exec:/', 'sleep', '1000']);
    const zeros = JSON.parse(await sw(lab, h1, ['service', 'inspect', '--format', 'api', 'zeros']))[0];
    expect(zeros.spec.update).toEqual({ ...defaults, parallelism: 0 });
    expect(zeros.spec.task.restart.delayMs).toBe(0);
    // An update that sets other flags keeps them.
    await sw(lab, h1, ['service', 'update', '-d', '--update-delay', '2s', 'zeros']);
    expect(JSON.parse(await sw(lab, h1, ['service', 'inspect', '--format', 'api', 'zeros']))[0].spec.update).toEqual({ ...defaults, parallelism: 0, delayMs: 2000 });
    await sw(lab, h1, ['service', 'rm', 'dflt', 'zeros']);
  }, 60000);

  test('my_nginx with --limit-cpu .5 and --reserve-cpu .25 is created and runs', async () => {
    await sw(lab, h1, ['service', 'create', '--name', 'my_nginx', '--limit-cpu', '.5', '--reserve-cpu', '.25', 'exec:/', 'sleep', '1000']);
    await waitRunning('my_nginx', 1);
    const svc = JSON.parse(await sw(lab, h1, ['service', 'inspect', '--format', 'api', 'my_nginx']))[0];
    expect(svc.spec.task.resources).toEqual({ limits: { nanoCpus: 500000000 }, reservations: { nanoCpus: 250000000 } });
    await sw(lab, h1, ['service', 'rm', 'my_nginx']);
  }, 60000);
});

describe('limits and bad input', () => {
  test('--limit-memory kills a task that goes past it, and the task says so', async () => {
    await sw(lab, h1, ['service', 'create', '-d', '--name', 'hog', '--limit-memory', '32m', '--restart-condition', 'none', 'exec:/', 'python3', '-c', 'x = bytearray(200 * 1024 * 1024); import time; time.sleep(100)']);
    const [t] = await waitFor('the hog to fail', async () => {
      const ts = (await tasks('hog')).filter((x) => x.status?.state === 'TASK_STATE_FAILED');
      return ts.length ? ts : undefined;
    });
    expect(t.status?.err).toMatch(/OOM/);
    expect(t.status?.container?.oomKilled).toBe(true);
    await sw(lab, h1, ['service', 'rm', 'hog']);
  }, 90000);

  test.each([
    [['service', 'create', '--name', 'x', '--bogus', 'exec:/', 'true'], 2, /Unknown argument/],
    [['service', 'create', '--name', 'x', '--replicas', '-2', 'exec:/', 'true'], 1, /invalid --replicas/],
    [['service', 'create', '--name', 'x', '--constraint', 'node.labels.zone=a', 'exec:/', 'true'], 1, /constraint/],
    [['service', 'create', '--name', 'web', 'exec:/', 'true'], 1, /already exists/],
    [['service', 'create', '--name', 'Not_A_Label', 'exec:/', 'true'], 1, /name/],
    [['service', 'create', '--name', 'x', '--limit-cpu', '1000000', 'exec:/', 'true'], 1, /a CPU limit of 1000000 is too large: the most is 1024 CPUs/],
    [['service', 'create', '--name', 'x', '--limit-cpu', '-1', 'exec:/', 'true'], 1, /invalid --limit-cpu "-1"/],
    [['service', 'create', '--name', 'x', '-p', '-1:80', 'exec:/', 'true'], 1, /invalid --publish "-1:80"/],
    [['service', 'create', '--name', 'x', '--limit-memory', '-5M', 'exec:/', 'true'], 1, /invalid --limit-memory "-5M"/],
    [['service', 'update', '--limit-memory', '-5M', 'web'], 1, /invalid --limit-memory "-5M"/],
    // OCI references run on the oci runtime now; what an exec: task cannot have is still refused.
    [['service', 'create', '--name', 'x', '--mount', 'type=volume,target=/data', 'exec:/', 'true'], 1, /--mount needs an oci image/],
    [['service', 'update', '--replicas', '2', 'no-such-service'], 1, /service no-such-service not found/],
    [['service', 'scale', 'web=lots'], 1, /invalid scale argument/],
  ])('%j is refused and changes nothing', async (args, code, message) => {
    const before = await sw(lab, h1, ['service', 'ls', '-q']);
    const res = await lab.cli(h1, args);
    expect(res.code).toBe(code);
    expect(res.stderr).toMatch(message);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(await sw(lab, h1, ['service', 'ls', '-q'])).toBe(before);
  }, 30000);

  test('a spec over 256 KiB is refused with the limit, and nothing is created', async () => {
    // Three variables of 100 KiB: one argument may be at most 128 KiB (the kernel's MAX_ARG_STRLEN).
    const res = await lab.cli(h1, ['service', 'create', '--name', 'big', ...[1, 2, 3].flatMap((n) => ['-e', `C${n}=${'x'.repeat(100 * 1024)}`]), 'exec:/', 'true']);
    expect(res.code).toBe(1);
    expect(res.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^Error: the service spec is too large \(\d+ KiB\): the most is 256 KiB/)]);
    expect((await lab.cli(h1, ['service', 'inspect', '--format', 'api', 'big'])).stderr).toMatch(/service big not found/);
  }, 30000);
});

describe('health checks', () => {
  test('a failing health check fails the task with the reason; a passing one reports healthy', async () => {
    await sw(lab, h1, ['service', 'create', '-d', '--name', 'sick', '--health-cmd', 'test -e /nonexistent', '--health-interval', '500ms', '--health-retries', '2', '--restart-delay', '5s', 'exec:/', 'sleep', '1000']);
    await sw(lab, h1, ['service', 'create', '-d', '--name', 'fine', '--health-cmd', 'test -e /proc/1', '--health-interval', '500ms', 'exec:/', 'sleep', '1000']);
    const failed = await waitFor('an unhealthy task', async () => (await tasks('sick')).find((t) => t.status?.state === 'TASK_STATE_FAILED'));
    expect(failed.status?.err).toBe('unhealthy container');
    const healthy = await waitFor('a healthy task', async () => running(await tasks('fine')).find((t) => (t.status?.container as { health?: string })?.health === 'healthy'));
    expect(healthy).toBeDefined();
    await sw(lab, h1, ['service', 'rm', 'sick', 'fine']);
  }, 60000);
});

describe('node failure', () => {
  test('tasks of a node whose daemon died run elsewhere; when it comes back, the old ones are shut down', async () => {
    await sw(lab, h1, ['service', 'scale', 'web=6']);
    const ids = await nodeIds();
    const onH2 = (await waitRunning('web', 6)).filter((t) => ids.get(t.nodeId!) === h2);
    expect(onH2.length).toBeGreaterThan(0);
    // The daemon alone dies; its tasks go on running, out of the cluster's sight. Its host still
    // answers, so the node stays Ready for the grace: 3 s here rather than the default 20 s.
    await sw(lab, h1, ['swarm', 'update', '--node-down-after', '3s']);
    await lab.stopDaemon(h2, 'kill');
    await waitFor('six tasks running off h2', async () => {
      const r = await waitRunning('web', 6);
      return r.every((t) => ids.get(t.nodeId!) !== h2) ? r : undefined;
    }, 60000);
    for (const t of onH2) expect((await lab.exec(h2, ['kill', '-0', String(t.status!.container!.pid)])).code).toBe(0);
    await lab.startDaemon(h2);
    await waitFor('the replaced tasks stopped on h2', async () => {
      for (const t of onH2) if ((await lab.exec(h2, ['kill', '-0', String(t.status!.container!.pid)])).code === 0) return undefined;
      return true;
    }, 60000);
    const states = (await tasks('web')).filter((t) => onH2.some((o) => o.id === t.id)).map((t) => t.status?.state);
    expect(states.every((s) => s === 'TASK_STATE_SHUTDOWN')).toBe(true);
    expect(live(await tasks('web'))).toHaveLength(6);
    await sw(lab, h1, ['swarm', 'update', '--node-down-after', '20s']);
  }, 150000);

  test('killing a host gets its tasks running elsewhere', async () => {
    await sw(lab, h1, ['service', 'scale', 'web=6']);
    await waitRunning('web', 6);
    await lab.killHost(h3);
    const ids = await nodeIds();
    const moved = await waitFor('six tasks on the hosts left', async () => {
      const r = running(await tasks('web'));
      return r.length === 6 && r.every((t) => ids.get(t.nodeId!) !== h3) ? r : undefined;
    }, 60000);
    expect(moved).toHaveLength(6);
    expect((await info(lab, h1)).nodeCount).toBe(4);
  }, 90000);
});
