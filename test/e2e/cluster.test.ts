/**
 * The cluster foundation, end to end on a lab of network namespaces: init, join with the printed
 * commands, roles, token checks, leader failover, node down, node commands, leave.
 * Run through test/run.sh (private network, mount and pid namespaces).
 */
import * as path from 'node:path';
import { Lab, LabHost, requireBuiltCli } from '../lab/lab';
import { byHost, formSwarm, info, joinCommand, nodes, sw, waitFor } from './cluster-helpers';
import { uniqueSuffix } from '../support/unique';

const prefix = `swe${uniqueSuffix()}`;
let lab: Lab;
let h1: LabHost, h2: LabHost, h3: LabHost, h4: LabHost, h5: LabHost;

beforeAll(async () => {
  requireBuiltCli();
  lab = await Lab.create({ prefix, hosts: 5 });
  [h1, h2, h3, h4, h5] = lab.hosts;
}, 60000);

afterAll(async () => {
  await lab?.destroy();
}, 60000);

describe('a swarm of three managers and a worker', () => {
  test('init prints the join command, and the printed commands join a worker and two managers', async () => {
    await Promise.all([h1, h2, h3, h4, h5].map((h) => lab.startDaemon(h)));
    const initOut = await sw(lab, h1, ['init', '--advertise-addr', h1.addr]);
    expect(initOut).toMatch(/^Swarm initialized: current node \([a-z0-9]{25}\) is now a manager\./);
    const workerJoin = joinCommand(initOut);
    expect(workerJoin).toEqual(['join', '--token', expect.stringMatching(/^SWLTKN-1-[0-9a-z]{50}-[0-9a-z]{25}$/), `${h1.addr}:2377`]);

    expect(await sw(lab, h2, workerJoin)).toBe('This node joined a swarm as a worker.\n');
    const managerJoin = joinCommand(await sw(lab, h1, ['swarm', 'join-token', 'manager']));
    expect(await sw(lab, h3, managerJoin)).toBe('This node joined a swarm as a manager.\n');
    expect(await sw(lab, h4, managerJoin)).toBe('This node joined a swarm as a manager.\n');
  }, 120000);

  test('node ls on every manager shows four ready nodes with the right roles', async () => {
    for (const m of [h1, h3, h4]) {
      const list = await waitFor(`four ready nodes on ${m.name}`, async () => {
        const l = await nodes(lab, m);
        return l.length === 4 && l.every((n) => n.status?.state === 'NODE_STATE_READY') ? l : undefined;
      });
      expect(byHost(list, h1)?.managerStatus).toMatchObject({ leader: true, reachability: 'REACHABILITY_REACHABLE' });
      for (const h of [h3, h4]) expect(byHost(list, h)?.managerStatus).toMatchObject({ reachability: 'REACHABILITY_REACHABLE' });
      expect(byHost(list, h2)?.role ?? 'NODE_ROLE_WORKER').toBe('NODE_ROLE_WORKER');
      expect(byHost(list, h2)?.managerStatus).toBeUndefined();
    }
    const table = await sw(lab, h3, ['node', 'ls']);
    expect(table.split('\n')[0]).toMatch(/^ID\s+HOSTNAME\s+STATUS\s+AVAILABILITY\s+MANAGER STATUS\s+ENGINE VERSION$/);
    expect(table).toMatch(new RegExp(`\\*\\s+${h3.name}\\s+Ready\\s+Active\\s+Reachable`));
    expect(table).toMatch(new RegExp(`${h1.name}\\s+Ready\\s+Active\\s+Leader`));
  }, 60000);

  test('a worker cannot see or change cluster state, on its socket or with its certificate over TCP', async () => {
    const local = await lab.cli(h2, ['node', 'ls']);
    expect(local.code).toBe(1);
    expect(local.stderr).toMatch(/^Error: this node is not a swarm manager/);
    expect(local.stderr.trim().split('\n')).toHaveLength(1);

    const certDir = path.join(h2.dataDir, 'certs');
    const overTcp = await lab.cli(h2, ['-H', `tcp://${h1.addr}:2377`, '--cert-dir', certDir, 'node', 'ls']);
    expect(overTcp.code).toBe(1);
    expect(overTcp.stderr).toMatch(/manager or operator certificate is required/);

    const asManager = await lab.cli(h3, ['-H', `tcp://${h1.addr}:2377`, '--cert-dir', path.join(h3.dataDir, 'certs'), 'node', 'ls', '-q']);
    expect(asManager.code).toBe(0);
    expect(asManager.stdout.trim().split('\n')).toHaveLength(4);
  }, 60000);

  test('an operator certificate lets a program off the cluster use the Control API over TCP', async () => {
    const dir = path.join(lab.baseDir, 'operator');
    expect(await sw(lab, h1, ['swarm', 'operator-cert', '--out', dir, '--name', 'ci-bot'])).toMatch(/^Operator certificate ci-bot written to /);
    const again = await lab.cli(h1, ['swarm', 'operator-cert', '--out', dir]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already exist/);
    const client = await lab.addClient();
    const res = await lab.exec(client, [process.execPath, requireBuiltCli(), '-H', `tcp://${h3.addr}:2377`, '--cert-dir', dir, 'node', 'ls', '-q']);
    expect(res.stderr).toBe('');
    expect(res.stdout.trim().split('\n')).toHaveLength(4);
  }, 60000);

  test('bad tokens are refused with clear errors and leave no trace', async () => {
    const before = (await nodes(lab, h1)).map((n) => n.id).sort();
    const workerToken = (await sw(lab, h1, ['swarm', 'join-token', 'worker', '-q'])).trim();
    const expectRefused = async (args: string[], message: RegExp) => {
      const res = await lab.cli(h5, args);
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(message);
      expect(res.stderr.trim().split('\n')).toHaveLength(1);
      expect((await info(lab, h5)).localState).toBe('inactive');
    };

    await expectRefused(['join', '--token', 'SWLTKN-1-nonsense', h1.addr], /^Error: .*join token/i);
    const wrongSecret = workerToken.replace(/-[0-9a-z]{25}$/, `-${'0'.repeat(25)}`);
    await expectRefused(['join', '--token', wrongSecret, h1.addr], /invalid join token/);

    // A token of another swarm: h5 makes its own swarm, keeps its token, and leaves it.
    await sw(lab, h5, ['init', '--advertise-addr', h5.addr]);
    const foreign = (await sw(lab, h5, ['swarm', 'join-token', 'worker', '-q'])).trim();
    await sw(lab, h5, ['swarm', 'leave', '--force']);
    await expectRefused(['join', '--token', foreign, h1.addr], /belongs to another swarm/);

    // A rotated-out token.
    const rotated = await sw(lab, h1, ['swarm', 'join-token', 'worker', '--rotate']);
    expect(rotated).toMatch(/^Successfully rotated worker join token\./);
    expect(joinCommand(rotated)[2]).not.toBe(workerToken);
    await expectRefused(['join', '--token', workerToken, h1.addr], /invalid join token/);

    expect((await nodes(lab, h1)).map((n) => n.id).sort()).toEqual(before);
  }, 120000);

  test("killing the leader's host elects a new leader that serves the API, and the old one shows down", async () => {
    const oldLeader = (await info(lab, h3)).leaderId;
    expect(byHost(await nodes(lab, h3), h1)?.id).toBe(oldLeader);
    // The host dies (a daemon killed alone on a live host keeps its node Ready through the grace: failover.test.ts).
    await lab.killHost(h1);
    const newLeader = await waitFor('a new leader', async () => {
      const i = await info(lab, h3);
      return i.leaderId && i.leaderId !== oldLeader ? i.leaderId : undefined;
    });
    expect([byHost(await nodes(lab, h3), h3)?.id, byHost(await nodes(lab, h3), h4)?.id]).toContain(newLeader);
    // Its heartbeat lease and its presence lease run out within a second or so of each other.
    const down = await waitFor('h1 down and unreachable', async () => {
      const n = byHost(await nodes(lab, h4), h1);
      return n?.status?.state === 'NODE_STATE_DOWN' && n.managerStatus?.reachability === 'REACHABILITY_UNREACHABLE' ? n : undefined;
    });
    expect(down.status?.message).toBe('heartbeat failure');
    // The worker fails over to a live manager and stays ready throughout.
    expect(byHost(await nodes(lab, h4), h2)?.status?.state).toBe('NODE_STATE_READY');
  }, 90000);

  test('the killed manager comes back as a reachable manager when its host and daemon restart', async () => {
    await lab.setHostLink(h1, 'up');
    await lab.startDaemon(h1);
    await waitFor('h1 ready and reachable again', async () => {
      const n = byHost(await nodes(lab, h3), h1);
      return n?.status?.state === 'NODE_STATE_READY' && n.managerStatus?.reachability === 'REACHABILITY_REACHABLE' ? n : undefined;
    });
    expect((await info(lab, h1)).isManager).toBe(true);
  }, 90000);
});

describe('node commands', () => {
  test('update sets availability and labels; inspect shows them; bad input changes nothing', async () => {
    expect((await sw(lab, h1, ['node', 'update', '--availability', 'drain', '--label-add', 'zone=a', '--label-add', 'ssd', h2.name])).trim()).toMatch(/^[a-z0-9]{25}$/);
    const [inspected] = JSON.parse(await sw(lab, h3, ['node', 'inspect', '--format', 'api', h2.name]));
    expect(inspected.spec).toMatchObject({ availability: 'NODE_AVAILABILITY_DRAIN', labels: { zone: 'a', ssd: '' } });

    const badChoice = await lab.cli(h1, ['node', 'update', '--availability', 'sleep', h2.name]);
    expect(badChoice.code).toBe(2);
    expect(badChoice.stderr).toMatch(/^Error: .*availability/);
    const missing = await lab.cli(h1, ['node', 'update', '--label-rm', 'nope', h2.name]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/has no label nope/);
    const unknown = await lab.cli(h1, ['node', 'inspect', '--format', 'api', 'no-such-node']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe('Error: node no-such-node not found\n');
    const [after] = JSON.parse(await sw(lab, h3, ['node', 'inspect', '--format', 'api', h2.name]));
    expect(after.spec).toEqual(inspected.spec);
    expect(after.meta.version).toBe(inspected.meta.version);

    await sw(lab, h1, ['node', 'update', '--availability', 'active', '--label-rm', 'ssd', h2.name]);
    const [restored] = JSON.parse(await sw(lab, h1, ['node', 'inspect', '--format', 'api', h2.name]));
    expect(restored.spec).toMatchObject({ availability: 'NODE_AVAILABILITY_ACTIVE', labels: { zone: 'a' } });
  }, 60000);

  test('promote makes a worker a manager, demote makes it a worker again', async () => {
    expect(await sw(lab, h1, ['node', 'promote', h2.name])).toBe(`Node ${h2.name} promoted to a manager in the swarm.\n`);
    await waitFor('h2 a reachable manager', async () => {
      const n = byHost(await nodes(lab, h1), h2);
      return n?.role === 'NODE_ROLE_MANAGER' && n.managerStatus?.reachability === 'REACHABILITY_REACHABLE' ? n : undefined;
    }, 60000);
    expect((await sw(lab, h2, ['node', 'ls', '-q'])).trim().split('\n')).toHaveLength(4);

    expect(await sw(lab, h1, ['node', 'demote', h2.name])).toBe(`Node ${h2.name} demoted to a worker in the swarm.\n`);
    await waitFor('h2 a worker again', async () => {
      const n = byHost(await nodes(lab, h1), h2);
      const i = await info(lab, h2);
      return n?.role !== 'NODE_ROLE_MANAGER' && !i.isManager && n?.status?.state === 'NODE_STATE_READY' ? n : undefined;
    }, 60000);
    expect((await info(lab, h1)).managerCount).toBe(3);
  }, 150000);

  test('demoting would break quorum when too few managers are reachable, and is refused', async () => {
    await lab.stopDaemon(h4, 'kill');
    await waitFor('h4 unreachable', async () => {
      const n = byHost(await nodes(lab, h1), h4);
      return n?.managerStatus?.reachability === 'REACHABILITY_UNREACHABLE' ? n : undefined;
    });
    const res = await lab.cli(h1, ['node', 'demote', h3.name]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/cannot demote node .*quorum/);
    const leave = await lab.cli(h3, ['swarm', 'leave']);
    expect(leave.code).toBe(1);
    expect(leave.stderr).toMatch(/leaving would break the swarm.*--force/);
    await lab.startDaemon(h4);
    await waitFor('h4 reachable', async () => {
      const n = byHost(await nodes(lab, h1), h4);
      return n?.managerStatus?.reachability === 'REACHABILITY_REACHABLE' ? n : undefined;
    });
  }, 90000);

  test('rm refuses a ready node; a worker that leaves goes down and can then be removed', async () => {
    const ready = await lab.cli(h1, ['node', 'rm', h2.name]);
    expect(ready.code).toBe(1);
    expect(ready.stderr).toMatch(/is not down and can't be removed/);
    expect(await sw(lab, h2, ['swarm', 'leave'])).toBe('Node left the swarm.\n');
    expect((await info(lab, h2)).localState).toBe('inactive');
    // Its agent told the manager as it left: Down at once, not after the grace its answering host would get.
    const down = await waitFor('h2 down', async () => {
      const n = byHost(await nodes(lab, h1), h2);
      return n?.status?.state === 'NODE_STATE_DOWN' ? n : undefined;
    }, 60000);
    expect(down.status?.message).toBe('node left the swarm');
    await sw(lab, h1, ['node', 'rm', h2.name]);
    expect(byHost(await nodes(lab, h1), h2)).toBeUndefined();
  }, 90000);

  test('a manager that leaves takes its etcd member with it; the others keep quorum', async () => {
    expect(await sw(lab, h4, ['swarm', 'leave'])).toBe('Node left the swarm.\n');
    const i = await waitFor('two managers', async () => {
      const x = await info(lab, h1);
      return x.managerCount === 2 ? x : undefined;
    });
    expect(i.leaderId).toBeTruthy();
    await sw(lab, h3, ['node', 'ls']);
  }, 60000);

  test('swarm update changes the timings, within bounds', async () => {
    const tooShort = await lab.cli(h1, ['swarm', 'update', '--node-down-after', '1s']);
    expect(tooShort.code).toBe(1);
    expect(tooShort.stderr).toMatch(/at least 2s/);
    const bad = await lab.cli(h1, ['swarm', 'update', '--node-down-after', 'soon']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe('Error: invalid --node-down-after "soon": use a number with a unit, like 500ms, 5s, 1m30s\n');
    expect(await sw(lab, h1, ['swarm', 'update', '--dispatcher-heartbeat', '500ms', '--node-down-after', '3s'])).toBe(
      'Swarm updated: heartbeat every 500ms, node down after 3s.\n',
    );
    expect((await info(lab, h3)).clusterSpec).toEqual({ heartbeatPeriodMs: 500, nodeDownAfterMs: 3000 });
    // Leases follow the new bound; the nodes that run stay ready across it.
    await new Promise((r) => setTimeout(r, 4000));
    const list = await nodes(lab, h1);
    for (const h of [h1, h3]) expect(byHost(list, h)?.status?.state).toBe('NODE_STATE_READY');
  }, 60000);
});
