/**
 * Failover end to end, on a lab of three managers and a worker: a worker's daemon restarted within
 * the grace keeps its node Ready and its tasks; the leader's host killed, the others take writes,
 * elect a leader, show it Down and run its tasks; a worker's host killed, its tasks run elsewhere
 * and the entries pointing at it leave the other hosts; a manager cut off the underlay refuses
 * writes in one line, and once healed rejoins with the replica counts right and no duplicates.
 * No timing is asserted here: bench/cluster.ts measures them.
 * Run through test/run.sh (private network, mount and pid namespaces).
 */
import * as fs from 'node:fs';
import { Lab, LabHost, requireBuiltCli } from '../lab/lab';
import { byHost, formSwarm, info, NodeJson, nodes, runningTasks, sw, TaskJson, waitFor } from './cluster-helpers';
import { uniqueSuffix } from '../support/unique';

const prefix = `swf${uniqueSuffix()}`;
let lab: Lab;
let h1: LabHost, h2: LabHost, h3: LabHost, h4: LabHost;
let managers: LabHost[];

const alive = (pid: number | undefined) => pid !== undefined && fs.existsSync(`/proc/${pid}`);
const READY = 'NODE_STATE_READY';
const DOWN = 'NODE_STATE_DOWN';

/** The lab host a node id belongs to. */
const hostOfNode = (list: NodeJson[], id: string | undefined) => lab.hosts.find((h) => byHost(list, h)?.id === id);

/** Until `observer` lists three Ready, Reachable managers, one of them the leader: the host of that leader. */
async function waitForThreeManagers(observer: LabHost): Promise<LabHost> {
  return waitFor('three ready, reachable managers and a leader', async () => {
    const list = await nodes(lab, observer);
    const ms = list.filter((n) => n.role === 'NODE_ROLE_MANAGER');
    const ok = ms.length === 3 && ms.every((n) => n.status?.state === READY && n.managerStatus?.reachability === 'REACHABILITY_REACHABLE');
    const leader = ms.find((n) => n.managerStatus?.leader);
    return ok && leader ? hostOfNode(list, leader.id) : undefined;
  }, 90000, 500);
}

/** Until `service` has `n` running tasks (as `observer` lists them), none on `notOn`: those tasks. */
async function waitForRunning(observer: LabHost, service: string, n: number, notOn?: LabHost): Promise<TaskJson[]> {
  return waitFor(`${n} running tasks of ${service}${notOn ? ` off ${notOn.name}` : ''}`, async () => {
    const [tasks, list] = await Promise.all([runningTasks(lab, observer, service), nodes(lab, observer)]);
    if (tasks.length !== n) return undefined;
    if (notOn && tasks.some((t) => t.nodeId === byHost(list, notOn)?.id)) return undefined;
    return tasks;
  }, 60000, 300);
}

/** The network namespaces of `h`'s overlay sandbox for `vni`, and what its FDB and neighbour tables hold. */
async function overlayTables(h: LabHost, vni: number): Promise<{ fdb: string; neigh: string } | undefined> {
  const netns = { netns: `${prefix}-h${h.index}-net-${vni}` };
  const fdb = await lab.exec(netns, ['bridge', 'fdb', 'show', 'dev', `vx-${vni}`]);
  if (fdb.code !== 0) return undefined;
  const neigh = await lab.exec(netns, ['ip', 'neigh', 'show']);
  return { fdb: fdb.stdout.toLowerCase(), neigh: neigh.stdout.toLowerCase() };
}

beforeAll(async () => {
  requireBuiltCli();
  lab = await Lab.create({ prefix, hosts: 4 });
  [h1, h2, h3, h4] = lab.hosts;
  managers = [h1, h2, h3];
  await formSwarm(lab, managers, [h4]);
}, 180000);

afterAll(async () => {
  await lab?.destroy();
}, 60000);

test('a worker daemon killed and restarted within the grace keeps its node Ready and the same tasks', async () => {
  await sw(lab, h1, ['service', 'create', '-d', '--name', 'stay', '--replicas', '2', '--constraint', `node.hostname==${h4.name}`, 'exec:/', 'sleep', '100000']);
  const before = await waitForRunning(h1, 'stay', 2);
  expect(before.every((t) => alive(t.status?.container?.pid))).toBe(true);

  await lab.stopDaemon(h4, 'kill');
  const killedAt = Date.now();
  const missed = await waitFor('h4 to miss its heartbeats', async () => {
    const n = byHost(await nodes(lab, h1), h4);
    return n?.status?.message?.startsWith('heartbeat missed') ? n : undefined;
  });
  // Its host answers: it stays Ready, past the 5 s a node used to be marked down after.
  expect(missed.status?.state).toBe(READY);
  await new Promise((r) => setTimeout(r, Math.max(0, killedAt + 6000 - Date.now())));
  expect(byHost(await nodes(lab, h1), h4)?.status?.state).toBe(READY);
  await lab.startDaemon(h4);

  await waitFor('h4 heartbeating again', async () => {
    const n = byHost(await nodes(lab, h1), h4);
    return n?.status?.state === READY && !n.status.message ? n : undefined;
  });
  const after = await waitForRunning(h1, 'stay', 2);
  expect(after.map((t) => t.id).sort()).toEqual(before.map((t) => t.id).sort());
  expect(after.map((t) => t.status?.container?.pid).sort()).toEqual(before.map((t) => t.status?.container?.pid).sort());
  expect(before.every((t) => alive(t.status?.container?.pid))).toBe(true);
  await sw(lab, h1, ['service', 'rm', 'stay']);
}, 120000);

test("the leader's host killed: the others take writes, elect a leader, show it Down and run its tasks", async () => {
  const leaderHost = await waitForThreeManagers(h1);
  const observer = managers.find((h) => h !== leaderHost)!;
  const oldLeader = (await info(lab, observer)).leaderId;
  await sw(lab, observer, ['service', 'create', '-d', '--name', 'onmgr', '--replicas', '3', '--constraint', 'node.role==manager', 'exec:/', 'sleep', '100000']);
  const placed = await waitForRunning(observer, 'onmgr', 3);
  const list = await nodes(lab, observer);
  const deadId = byHost(list, leaderHost)!.id;
  expect(placed.some((t) => t.nodeId === deadId)).toBe(true);

  await lab.killHost(leaderHost);
  // A write through a surviving manager.
  await waitFor('a write on a surviving manager', async () => ((await lab.cli(observer, ['service', 'create', '-d', '--name', 'afterkill', 'exec:/', 'sleep', '100000'])).code === 0 ? true : undefined), 60000, 100);
  const newLeader = await waitFor('a new leader', async () => {
    const i = await info(lab, observer);
    return i.leaderId && i.leaderId !== oldLeader ? i.leaderId : undefined;
  });
  expect(hostOfNode(list, newLeader)).not.toBe(leaderHost);
  const down = await waitFor(`${leaderHost.name} down`, async () => {
    const n = byHost(await nodes(lab, observer), leaderHost);
    return n?.status?.state === DOWN ? n : undefined;
  });
  expect(down.status?.message).toBe('heartbeat failure');
  await waitForRunning(observer, 'onmgr', 3, leaderHost);

  // The host comes back (its data dir kept): a Reachable manager again.
  await lab.setHostLink(leaderHost, 'up');
  await lab.startDaemon(leaderHost);
  await waitForThreeManagers(observer);
  await waitForRunning(observer, 'onmgr', 3);
  await sw(lab, observer, ['service', 'rm', 'onmgr', 'afterkill']);
}, 240000);

test("a worker's host killed: Down, its tasks run elsewhere, and the FDB and neighbour entries pointing at it leave the other hosts", async () => {
  await sw(lab, h1, ['network', 'create', '-d', 'overlay', 'fnet']);
  await sw(lab, h1, ['service', 'create', '-d', '--name', 'spread', '--replicas', '4', '--network', 'fnet', 'exec:/', 'sleep', '100000']);
  const placed = await waitForRunning(h1, 'spread', 4);
  const list = await nodes(lab, h1);
  const onWorker = placed.filter((t) => t.nodeId === byHost(list, h4)?.id);
  expect(onWorker.length).toBeGreaterThan(0);
  const attachment = (t: TaskJson) => t.networks!.find((n) => n.networkName === 'fnet')!;
  const vni = attachment(placed[0]).vni!;
  const gone = onWorker.map((t) => ({ mac: attachment(t).mac!.toLowerCase(), ip: attachment(t).address!.split('/')[0] }));
  // Before: every other host with a task of the network has the worker's tasks in its tables.
  const others = [h1, h2, h3].filter((h) => placed.some((t) => t.nodeId === byHost(list, h)?.id));
  for (const h of others) {
    const tables = await waitFor(`${h.name}'s entries for the worker's tasks`, async () => {
      const t = await overlayTables(h, vni);
      return t && gone.every((g) => t.fdb.includes(g.mac) && t.neigh.includes(g.ip)) ? t : undefined;
    });
    expect(tables.fdb).toContain(h4.addr);
  }

  await lab.killHost(h4);
  const down = await waitFor('h4 down', async () => {
    const n = byHost(await nodes(lab, h1), h4);
    return n?.status?.state === DOWN ? n : undefined;
  });
  expect(down.status?.message).toBe('heartbeat failure');
  await waitForRunning(h1, 'spread', 4, h4);
  for (const h of [h1, h2, h3]) {
    await waitFor(`no entry pointing at h4 on ${h.name}`, async () => {
      const t = await overlayTables(h, vni);
      if (!t) return true;
      return gone.every((g) => !t.fdb.includes(g.mac) && !t.neigh.includes(g.ip + ' ')) && !t.fdb.includes(`dst ${h4.addr} `) ? true : undefined;
    }, 30000, 300);
  }

  await lab.setHostLink(h4, 'up');
  await lab.startDaemon(h4);
  await waitFor('h4 ready again', async () => (byHost(await nodes(lab, h1), h4)?.status?.state === READY ? true : undefined), 60000);
  await sw(lab, h1, ['service', 'rm', 'spread']);
}, 240000);

test('a manager cut off the underlay refuses writes in one line; the majority carries on; healed, it rejoins with the counts right and no duplicates', async () => {
  const cut = await waitForThreeManagers(h1);
  const majority = managers.filter((h) => h !== cut);
  const observer = majority[0];
  const oldLeader = (await info(lab, observer)).leaderId;
  await sw(lab, observer, ['service', 'create', '-d', '--name', 'part', '--replicas', '3', '--constraint', 'node.role==manager', 'exec:/', 'sleep', '100000']);
  const placed = await waitForRunning(observer, 'part', 3);
  const cutId = byHost(await nodes(lab, observer), cut)!.id;
  const onCut = placed.filter((t) => t.nodeId === cutId);
  expect(onCut).toHaveLength(1);
  const logFrom = fs.statSync(cut.logFile).size;

  await lab.setHostLink(cut, 'down');
  // The cut-off manager: one line naming the missing quorum, exit 1, and nothing written.
  const refused = await waitFor('the cut-off manager to refuse a write', async () => {
    const r = await lab.cli(cut, ['service', 'create', '-d', '--name', 'minority', 'exec:/', 'sleep', '100000'], { timeoutMs: 30000 });
    return /quorum/.test(r.stderr) ? r : undefined;
  }, 60000, 500);
  expect(refused.code).toBe(1);
  expect(refused.stderr.trim().split('\n')).toHaveLength(1);
  expect(refused.stderr).toMatch(/^Error: the swarm does not have a leader: 1 of 3 managers reachable, quorum needs 2\./);
  // It stopped leading, if it led.
  if (cutId === oldLeader) {
    await waitFor('the cut-off leader to stop leading', async () => (fs.readFileSync(cut.logFile, 'utf8').slice(logFrom).includes('no longer leader') ? true : undefined));
  }
  // The majority: a leader among them, writes taken, the cut-off node Down and its task replaced.
  await sw(lab, observer, ['service', 'create', '-d', '--name', 'majority', 'exec:/', 'sleep', '100000']);
  await waitFor('a leader in the majority', async () => {
    const i = await info(lab, observer);
    return i.leaderId && i.leaderId !== cutId ? true : undefined;
  });
  await waitFor(`${cut.name} down`, async () => (byHost(await nodes(lab, observer), cut)?.status?.state === DOWN ? true : undefined));
  await waitForRunning(observer, 'part', 3, cut);
  // Cut off, the host's task keeps running.
  expect(alive(onCut[0].status?.container?.pid)).toBe(true);

  await lab.setHostLink(cut, 'up');
  // Healed without a manual step: it rejoins, serves the API, and its replaced task is shut down.
  await waitForThreeManagers(cut);
  await waitFor('the duplicate shut down on the healed host', async () => (alive(onCut[0].status?.container?.pid) ? undefined : true), 30000, 300);
  const finalTasks = await waitForRunning(cut, 'part', 3);
  expect(new Set(finalTasks.map((t) => t.slot)).size).toBe(3);
  const services = JSON.parse(await sw(lab, cut, ['service', 'ls', '--format', 'api'])) as { spec?: { name?: string } }[];
  expect(services.map((x) => x.spec?.name).sort()).toEqual(['majority', 'part']);
}, 300000);
