/**
 * Overlay networks end to end on a lab of three hosts: tasks on one overlay reach each other by
 * address across hosts, another overlay's tasks cannot, scaling down clears the gone tasks'
 * FDB and neighbour entries everywhere, an agent restart leaves established connections alone,
 * removing the network removes what it made on every host, and tasks on the built-in host and
 * none networks see their host's interfaces or lo alone, and tasks of a macvlan network on the
 * hosts' underlay interface reach each other across hosts and are reached by a client of that
 * LAN at their own addresses. Run through test/run.sh.
 */
import { apiServiceTasks } from './api-reads';
import { Lab, LabHost, requireBuiltCli } from '../lab/lab';
import { byHost, formSwarm, hostIn, hostOfTask, nodeInTask, nodes, runningTasks, sw, TaskJson, waitFor } from './cluster-helpers';
import { uniqueSuffix } from '../support/unique';

const prefix = `swn${uniqueSuffix()}`;
let lab: Lab;
let h1: LabHost, h2: LabHost, h3: LabHost;

const running = (service: string) => runningTasks(lab, h1, service);
const hostOf = (t: TaskJson) => hostOfTask(lab, h1, t);

const ipOf = (t: TaskJson, net: string) => t.networks!.find((n) => n.networkName === net)!.address!.split('/')[0];

const inTask = async (t: TaskJson, script: string, args: string[] = []) => nodeInTask(lab, await hostOf(t), t, script, args);

/** Connects to each address:port; prints one line per address: ok or the error. */
const PROBE = `
const net = require('net');
const [port, ...addrs] = process.argv.slice(1);
(async () => {
  for (const a of addrs) {
    const r = await new Promise((res) => {
      const s = net.connect({ host: a, port: Number(port), timeout: 1500 });
      s.on('connect', () => { s.destroy(); res('ok'); });
      s.on('timeout', () => { s.destroy(); res('timeout'); });
      s.on('error', (e) => res(e.code));
    });
    console.log(a + ' ' + r);
  }
})();`;

beforeAll(async () => {
  requireBuiltCli();
  lab = await Lab.create({ prefix, hosts: 3 });
  [h1, h2, h3] = lab.hosts;
  await formSwarm(lab, [h1], [h2, h3]);
}, 120000);

afterAll(async () => {
  await lab?.destroy();
}, 60000);

test('network create, ls and inspect; bad input is refused', async () => {
  expect((await sw(lab, h1, ['network', 'create', '-d', 'overlay', 'appnet'])).trim()).toMatch(/^[a-z0-9]{25}$/);
  await sw(lab, h1, ['network', 'create', '-d', 'overlay', '--subnet', '10.200.0.0/24', 'othernet']);
  const ls = await sw(lab, h1, ['network', 'ls']);
  expect(ls).toMatch(/appnet\s+overlay\s+swarm\s+10\.0\.\d+\.0\/24/);
  expect(ls).toMatch(/othernet\s+overlay\s+swarm\s+10\.200\.0\.0\/24/);
  for (const [args, message] of [
    [['network', 'create', '-d', 'overlay', 'appnet'], /already exists/],
    [['network', 'create', '-d', 'overlay', '--subnet', '10.200.0.0/16', 'clash'], /overlaps/],
    [['network', 'create', '-d', 'overlay', '--subnet', '10.300.0.0/24', 'bad'], /invalid/],
    // The hosts' underlay (their agents report it), the gateway bridge's subnet, and one inside it.
    [['network', 'create', '-d', 'overlay', '--subnet', '198.51.100.0/24', 'under'], /^Error: Pool overlaps with other one on this address space: subnet 198\.51\.100\.0\/24 overlaps 198\.51\.100\.0\/24 on interface eth0 of \S+\n$/],
    [['network', 'create', '--driver', 'bridge', '--subnet', '172.18.0.0/16', 'net18'], /Pool overlaps with other one on this address space: subnet 172\.18\.0\.0\/16 overlaps the gateway bridge swb-gw \(172\.18\.0\.0\/16\)/],
    [['network', 'create', '-d', 'overlay', '--subnet', '172.18.5.0/24', 'in18'], /subnet 172\.18\.5\.0\/24 overlaps the gateway bridge swb-gw/],
  ] as [string[], RegExp][]) {
    const res = await lab.cli(h1, args);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(message);
  }
}, 90000);

test('six tasks on an overlay reach each other by address, across hosts', async () => {
  await sw(lab, h1, ['service', 'create', '--name', 'web', '--replicas', '6', '--network', 'appnet', 'exec:/', 'python3', '-m', 'http.server', '8000']);
  const tasks = await waitFor('six running tasks', async () => {
    const r = await running('web');
    return r.length === 6 ? r : undefined;
  });
  const ips = tasks.map((t) => ipOf(t, 'appnet'));
  expect(new Set(ips).size).toBe(6);
  for (const t of tasks) {
    const others = ips.filter((ip) => ip !== ipOf(t, 'appnet'));
    const res = await waitFor(`task ${t.id} reaching all others`, async () => {
      const r = await inTask(t, PROBE, ['8000', ...others]);
      return r.stdout.trim().split('\n').every((l) => l.endsWith(' ok')) ? r : undefined;
    }, 20000, 500);
    expect(res.stdout.trim().split('\n')).toHaveLength(5);
  }
}, 180000);

test('network ls and inspect on a worker show the local networks and the swarm networks it knows', async () => {
  const worker = byHost(await nodes(lab, h1), h2)!.id;
  const mine = (await running('web')).filter((t) => t.nodeId === worker);
  expect(mine.length).toBeGreaterThan(0); // six replicas spread over three hosts
  const ls = await sw(lab, h2, ['network', 'ls']);
  expect(ls).toMatch(/^NETWORK ID\s+NAME\s+DRIVER\s+SCOPE/);
  expect(ls).toMatch(/\nbridge\s+bridge\s+bridge\s+local\s+172\.17\.0\.0\/16\n/);
  expect(ls).toMatch(/\nhost\s+host\s+host\s+local\s*\n/);
  expect(ls).toMatch(/\nnone\s+none\s+none\s+local\s*\n/);
  expect(ls).toMatch(/appnet\s+overlay\s+swarm\s+10\.0\.\d+\.0\/24/);
  expect(ls).not.toMatch(/othernet/); // no task of it on this node
  const [appnet] = JSON.parse(await sw(lab, h2, ['network', 'inspect', 'appnet', '--format', 'api'])) as { id: string; endpoints: { taskId: string }[] }[];
  const [onManager] = JSON.parse(await sw(lab, h1, ['network', 'inspect', 'appnet', '--format', 'api'])) as { id: string }[];
  expect(appnet.id).toBe(onManager.id);
  expect(appnet.endpoints.map((e) => e.taskId).sort()).toEqual(mine.map((t) => t.id).sort());
  const other = await lab.cli(h2, ['network', 'inspect', 'othernet']);
  expect(other.code).toBe(1);
  expect(other.stderr).toBe('Error: network othernet not found\n');
}, 30000);

test('a task of another overlay cannot reach them', async () => {
  await sw(lab, h1, ['service', 'create', '--name', 'other', '--network', 'othernet', 'exec:/', 'sleep', '100000']);
  const [o] = await waitFor('the other task', async () => {
    const r = await running('other');
    return r.length === 1 ? r : undefined;
  });
  const web = await running('web');
  const res = await inTask(o, PROBE, ['8000', ...web.map((t) => ipOf(t, 'appnet'))]);
  expect(res.stdout.trim().split('\n').every((l) => !l.endsWith(' ok'))).toBe(true);
  await sw(lab, h1, ['service', 'rm', 'other']);
}, 60000);

test('an overlay task reaches a client outside the cluster through the gateway bridge, with its host\'s address', async () => {
  const client = await lab.addClient();
  const [t] = await running('web');
  const host = await hostOf(t);
  const route = await lab.exec(host, ['nsenter', `--net=/proc/${t.status!.container!.pid}/ns/net`, 'ip', '-j', 'route', 'show', 'default']);
  expect(JSON.parse(route.stdout)[0]).toMatchObject({ gateway: '172.18.0.1', dev: 'eth1' });
  // The client answers the first connection with the address it came from.
  const peer = lab.exec(client, [
    process.execPath, '-e',
    `const s = require('net').createServer((c) => { c.end(c.remoteAddress); s.close(); }).listen(9100, '0.0.0.0', () => console.log('up')); setTimeout(() => process.exit(1), 30000).unref();`,
  ]);
  const res = await inTask(t, `
    const [addr] = process.argv.slice(1);
    const deadline = Date.now() + 20000;
    const once = () => {
      const s = require('net').connect({ host: addr, port: 9100 });
      let got = '';
      s.on('data', (d) => (got += d));
      s.on('end', () => { console.log(got); process.exit(0); });
      s.on('error', (e) => { if (Date.now() > deadline) { console.log('error ' + e.code); process.exit(1); } setTimeout(once, 200); });
    };
    once();`, [client.addr]);
  expect(res.stdout.trim()).toBe(host.addr);
  expect((await peer).code).toBe(0);
}, 60000);

test('an agent restart leaves an established connection between tasks alone', async () => {
  const web = await running('web');
  const server = web.find((t) => t.nodeId !== web[0].nodeId)!;
  const client = web[0];
  const serverHost = await hostOf(server);
  // The client's host is known before the restart: when the server's host is the manager, it cannot be asked meanwhile.
  const clientHost = await hostOf(client);
  const echo = lab.exec(serverHost, [
    'nsenter', `--net=/proc/${server.status!.container!.pid}/ns/net`, process.execPath, '-e',
    `require('net').createServer((c) => { c.pipe(c); c.on('close', () => process.exit(0)); }).listen(9000, () => console.log('up')); setTimeout(() => process.exit(1), 30000).unref();`,
  ]);
  await new Promise((r) => setTimeout(r, 1000));
  const talk = nodeInTask(lab, clientHost, client, `
    const s = require('net').connect(9000, process.argv[1]);
    let n = 0, got = 0;
    s.on('data', (d) => { got += d.length; });
    const t = setInterval(() => { s.write('x'); if (++n === 40) { clearInterval(t); setTimeout(() => { console.log(got); process.exit(got === 40 ? 0 : 1); }, 500); } }, 200);
    s.on('error', (e) => { console.log('error ' + e.code); process.exit(1); });`, [ipOf(server, 'appnet')]);
  await new Promise((r) => setTimeout(r, 1500));
  await lab.stopDaemon(serverHost, 'term');
  await lab.startDaemon(serverHost);
  const res = await talk;
  expect(res.stdout.trim()).toBe('40');
  expect(res.code).toBe(0);
  await echo;
}, 90000);

test('scaling down removes the gone tasks\' FDB and neighbour entries on every host', async () => {
  const before = await running('web');
  const vni = before[0].networks!.find((n) => n.networkName === 'appnet')!.vni!;
  const macOf = (t: TaskJson) => t.networks!.find((n) => n.networkName === 'appnet')!.mac!;
  // First, the entries are there: every host has one for each task on the other hosts.
  const list = await nodes(lab, h1);
  for (const h of [h1, h2, h3]) {
    const fdb = await lab.exec({ netns: `${prefix}-h${h.index}-net-${vni}` }, ['bridge', 'fdb', 'show', 'dev', `vx-${vni}`]);
    expect(fdb.code).toBe(0);
    for (const t of before) if (hostIn(lab, list, t) !== h) expect(fdb.stdout).toContain(macOf(t));
  }
  await sw(lab, h1, ['service', 'scale', 'web=3']);
  const after = await running('web');
  const goneMacs = before.filter((t) => !after.some((a) => a.id === t.id)).map(macOf);
  expect(goneMacs).toHaveLength(3);
  for (const h of [h1, h2, h3]) {
    await waitFor(`no stale FDB entries on ${h.name}`, async () => {
      const sandbox = `${prefix}-h${h.index}-net-${vni}`;
      const fdb = await lab.exec({ netns: sandbox }, ['bridge', 'fdb', 'show', 'dev', `vx-${vni}`]);
      if (fdb.code !== 0) return true; // no sandbox: no task of the network on this host any more
      return goneMacs.every((m) => !fdb.stdout.includes(m)) ? true : undefined;
    }, 10000, 200);
  }
}, 60000);

/**
 * Breaks something by hand and runs `network doctor`, which must see it (exit 1). The agent's own
 * reconcile (on every session message and every 10 s) may repair it first, between the two: only
 * then (`repaired` says it is back) is it broken again, up to five times.
 */
async function doctorBeforeRepair(breakIt: () => Promise<void>, repaired: () => Promise<boolean>): Promise<{ code: number; stdout: string; stderr: string }> {
  for (let attempt = 1; ; attempt++) {
    await breakIt();
    const res = await lab.cli(h1, ['network', 'doctor']);
    if (res.code === 1 || attempt === 5 || !(await repaired())) {
      expect(res.code).toBe(1);
      return res;
    }
    await waitFor('the doctor to be happy again', async () => ((await lab.cli(h1, ['network', 'doctor'])).code === 0 ? true : undefined), 30000, 500);
  }
}

test('network doctor finds what differs from the cluster state, and the next reconcile repairs it', async () => {
  expect(await sw(lab, h1, ['network', 'doctor', 'appnet'])).toMatch(/ok\n/);
  const [t] = await running('web');
  const vni = t.networks!.find((n) => n.networkName === 'appnet')!.vni!;
  // Scaling down shuts down the highest slots, so which hosts still hold a task (and so an entry
  // for a task elsewhere) depends on the earlier placement: take the first host that has one.
  let found: { host: LabHost; sandbox: string; mac: string } | undefined;
  for (const host of [h2, h3, h1]) {
    const sandbox = `${prefix}-h${host.index}-net-${vni}`;
    const fdb = (await lab.exec({ netns: sandbox }, ['bridge', 'fdb', 'show', 'dev', `vx-${vni}`])).stdout;
    const entry = fdb.split('\n').find((l) => / dst /.test(l));
    if (entry) {
      found = { host, sandbox, mac: entry.split(' ')[0] };
      break;
    }
  }
  if (!found) throw new Error(`no host has an FDB entry for a remote task of VNI ${vni}`);
  const { host, sandbox, mac } = found;
  const res = await doctorBeforeRepair(
    async () => expect((await lab.exec({ netns: sandbox }, ['bridge', 'fdb', 'del', mac, 'dev', `vx-${vni}`, 'self'])).code).toBe(0),
    async () => (await lab.exec({ netns: sandbox }, ['bridge', 'fdb', 'show', 'dev', `vx-${vni}`])).stdout.toLowerCase().includes(mac.toLowerCase()),
  );
  expect(res.stdout).toContain(host.name);
  expect(res.stdout.toLowerCase()).toContain(mac.toLowerCase());
  expect(res.stderr).toMatch(/differs from the cluster state on 1 node/);
  // The agent checks its overlays against the kernel every few seconds and puts the entry back.
  await waitFor('the doctor to be happy again', async () => ((await lab.cli(h1, ['network', 'doctor'])).code === 0 ? true : undefined), 30000, 500);
}, 60000);

test('network doctor reports a running task\'s deleted or downed veth until it is plugged in again', async () => {
  const [t] = await running('web');
  const host = await hostOf(t);
  const vni = t.networks!.find((n) => n.networkName === 'appnet')!.vni!;
  const veth = `v${vni}-${t.id}`.slice(0, 15);
  // The host end on the gateway bridge: swb-<task id part><index 1 in base 36>.
  const gwVeth = `swb-${t.id.toLowerCase().replace(/[^a-z0-9]/g, '').slice(0, 10)}1`;
  expect(await sw(lab, h1, ['network', 'doctor'])).toMatch(/ok\n/);

  // Deleting the sandbox end takes the task's eth0 with it: the overlay reconcile plugs it in again.
  const sandbox = `${prefix}-h${host.index}-net-${vni}`;
  const res = await doctorBeforeRepair(
    async () => expect((await lab.exec({ netns: sandbox }, ['ip', 'link', 'del', veth])).code).toBe(0),
    async () => (await lab.exec({ netns: sandbox }, ['ip', 'link', 'show', veth])).code === 0,
  );
  expect(res.stdout).toContain(`task ${t.id}: missing veth ${veth} in sandbox ${prefix}-h${host.index}-net-${vni}`);
  expect(res.stdout).toContain(`task ${t.id}: missing eth0 (network appnet) in its namespace`);
  await waitFor('the doctor to be happy again', async () => ((await lab.cli(h1, ['network', 'doctor'])).code === 0 ? true : undefined), 30000, 500);

  // A gateway bridge port set down by hand is reported until it is up again.
  expect((await lab.exec(host, ['ip', 'link', 'set', gwVeth, 'down'])).code).toBe(0);
  try {
    const down = await lab.cli(h1, ['network', 'doctor']);
    expect(down.code).toBe(1);
    expect(down.stdout).toContain(`task ${t.id}: veth ${gwVeth} in the host namespace is down`);
  } finally {
    await lab.exec(host, ['ip', 'link', 'set', gwVeth, 'up']);
  }
  expect(await sw(lab, h1, ['network', 'doctor'])).toMatch(/ok\n/);
}, 90000);

test('a network in use cannot be removed; once unused, removing it clears every host', async () => {
  const inUse = await lab.cli(h1, ['network', 'rm', 'appnet']);
  expect(inUse.code).toBe(1);
  expect(inUse.stderr).toMatch(/in use/);
  const vni = (await running('web'))[0].networks!.find((n) => n.networkName === 'appnet')!.vni!;
  await sw(lab, h1, ['service', 'rm', 'web']);
  await waitFor('network rm to succeed', async () => ((await lab.cli(h1, ['network', 'rm', 'appnet'])).code === 0 ? true : undefined), 30000, 500);
  for (const h of [h1, h2, h3]) {
    await waitFor(`the sandbox gone on ${h.name}`, async () => {
      const r = await lab.exec({ netns: `${prefix}-h${h.index}-net-${vni}` }, ['true']);
      return r.code !== 0 ? true : undefined;
    }, 20000, 300);
  }
  expect(await sw(lab, h1, ['network', 'ls'])).not.toMatch(/appnet/);
}, 90000);

test('tasks of a user bridge network on one host reach each other; a task of another bridge network there cannot', async () => {
  await sw(lab, h1, ['network', 'create', '-d', 'bridge', 'localnet']);
  await sw(lab, h1, ['network', 'create', '-d', 'bridge', 'localother']);
  expect(await sw(lab, h1, ['network', 'ls'])).toMatch(/localnet\s+bridge\s+/);
  const onH2 = ['--constraint', `node.hostname==${h2.name}`];
  await sw(lab, h1, ['service', 'create', '--name', 'local', '--replicas', '2', '--network', 'localnet', ...onH2, 'exec:/', 'python3', '-m', 'http.server', '8000']);
  await sw(lab, h1, ['service', 'create', '--name', 'localx', '--network', 'localother', ...onH2, 'exec:/', 'python3', '-m', 'http.server', '8000']);
  const tasks = await waitFor('two running local tasks', async () => {
    const r = await running('local');
    return r.length === 2 ? r : undefined;
  });
  const [x] = await waitFor('the task of the other bridge network', async () => {
    const r = await running('localx');
    return r.length === 1 ? r : undefined;
  });
  for (const t of [...tasks, x]) expect(await hostOf(t)).toBe(h2);
  const ips = tasks.map((t) => ipOf(t, 'localnet'));
  for (const [i, t] of tasks.entries()) {
    const other = ips[1 - i];
    await waitFor(`task ${t.id} reaching ${other}`, async () => {
      const r = await inTask(t, PROBE, ['8000', other]);
      return r.stdout.trim() === `${other} ok` ? r : undefined;
    }, 20000, 500);
  }
  // The other network's task reaches its own address (its server is up), but neither of them.
  await waitFor('the other task serving', async () => {
    const r = await inTask(x, PROBE, ['8000', ipOf(x, 'localother')]);
    return r.stdout.trim().endsWith(' ok') ? r : undefined;
  }, 20000, 500);
  const res = await inTask(x, PROBE, ['8000', ...ips]);
  const lines = res.stdout.trim().split('\n');
  expect(lines).toHaveLength(2);
  expect(lines.every((l) => !l.endsWith(' ok'))).toBe(true);

  // The doctor checks bridge networks too: a task's port taken off its bridge is reported until it is back.
  const port = `swb-${tasks[0].id.toLowerCase().replace(/[^a-z0-9]/g, '').slice(0, 10)}0`;
  const master = (await lab.exec(h2, ['ip', '-j', 'link', 'show', port])).stdout;
  const bridge = (JSON.parse(master) as { master: string }[])[0].master;
  expect(await sw(lab, h1, ['network', 'doctor'])).toMatch(/ok\n/);
  expect((await lab.exec(h2, ['ip', 'link', 'set', port, 'nomaster'])).code).toBe(0);
  try {
    const off = await lab.cli(h1, ['network', 'doctor']);
    expect(off.code).toBe(1);
    expect(off.stdout).toContain(`task ${tasks[0].id}: veth ${port} in the host namespace is not a port of ${bridge}`);
  } finally {
    await lab.exec(h2, ['ip', 'link', 'set', port, 'master', bridge]);
  }
  expect(await sw(lab, h1, ['network', 'doctor'])).toMatch(/ok\n/);

  await sw(lab, h1, ['service', 'rm', 'local']);
  await sw(lab, h1, ['service', 'rm', 'localx']);
  for (const n of ['localnet', 'localother']) {
    await waitFor(`network rm ${n} to succeed`, async () => ((await lab.cli(h1, ['network', 'rm', n])).code === 0 ? true : undefined), 30000, 500);
  }
  await waitFor(`the bridges gone on ${h2.name}`, async () => {
    const r = await lab.exec(h2, ['ip', '-o', 'link', 'show', 'type', 'bridge']);
    return r.code === 0 && !/: swb[a-z0-9]+[:@]/.test(r.stdout) ? true : undefined;
  }, 20000, 300);
}, 120000);

test('the built-in bridge network, like docker0: tasks on one host reach each other and a client outside through NAT', async () => {
  const client = await lab.addClient();
  await sw(lab, h1, ['service', 'create', '--name', 'dflt', '--replicas', '2', '--network', 'bridge', '--constraint', `node.hostname==${h3.name}`, 'exec:/', 'python3', '-m', 'http.server', '8000']);
  const tasks = await waitFor('two running tasks on the built-in bridge', async () => {
    const r = await running('dflt');
    return r.length === 2 ? r : undefined;
  });
  const ips = tasks.map((t) => ipOf(t, 'bridge'));
  expect(ips.every((ip) => ip.startsWith('172.17.'))).toBe(true);
  await waitFor('the tasks reaching each other', async () => {
    const r = await inTask(tasks[0], PROBE, ['8000', ips[1]]);
    return r.stdout.trim() === `${ips[1]} ok` ? r : undefined;
  }, 20000, 500);
  const seen = lab.exec({ netns: client.netns }, [
    process.execPath, '-e',
    `require('net').createServer((c) => { console.log(c.remoteAddress); c.end(); process.exit(0); }).listen(9100, '0.0.0.0'); setTimeout(() => process.exit(1), 20000).unref();`,
  ]);
  await new Promise((r) => setTimeout(r, 500));
  await inTask(tasks[0], PROBE, ['9100', client.addr]);
  expect((await seen).stdout.trim()).toBe(h3.addr);
  await sw(lab, h1, ['service', 'rm', 'dflt']);
}, 90000);

test('a --network host task serves on its host\'s underlay address; a --network none task has lo alone', async () => {
  await sw(lab, h1, ['service', 'create', '--name', 'hostweb', '--network', 'host', '--constraint', `node.hostname==${h2.name}`, 'exec:/', 'python3', '-m', 'http.server', '8765']);
  await sw(lab, h1, ['service', 'create', '--name', 'isolated', '--network', 'none', 'exec:/', 'sleep', '100000']);
  const [web] = await waitFor('the host network task', async () => {
    const r = await running('hostweb');
    return r.length === 1 ? r : undefined;
  });
  expect(await hostOf(web)).toBe(h2);
  expect(web.networks).toEqual([expect.objectContaining({ networkName: 'host' })]);
  expect(web.networks![0].address ?? '').toBe('');
  // Its network namespace is its host's own.
  const taskNs = await lab.exec(h2, ['readlink', `/proc/${web.status!.container!.pid}/ns/net`]);
  const hostNs = await lab.exec(h2, ['readlink', '/proc/self/ns/net']);
  expect(taskNs.stdout.trim()).toBe(hostNs.stdout.trim());
  // Another host reaches it at h2's underlay address.
  await waitFor(`${h3.name} reaching ${h2.addr}:8765`, async () => {
    const r = await lab.exec(h3, [process.execPath, '-e', PROBE, '8765', h2.addr]);
    return r.stdout.trim() === `${h2.addr} ok` ? r : undefined;
  }, 20000, 500);

  const [iso] = await waitFor('the none network task', async () => {
    const r = await running('isolated');
    return r.length === 1 ? r : undefined;
  });
  const links = await lab.exec(await hostOf(iso), ['nsenter', `--net=/proc/${iso.status!.container!.pid}/ns/net`, 'ip', '-o', 'link']);
  expect(links.code).toBe(0);
  expect(links.stdout.trim().split('\n').map((l) => l.split(':')[1].trim())).toEqual(['lo']);

  await sw(lab, h1, ['service', 'rm', 'hostweb']);
  await sw(lab, h1, ['service', 'rm', 'isolated']);
  await waitFor(`nothing serving on ${h2.addr}:8765 any more`, async () => {
    const r = await lab.exec(h3, [process.execPath, '-e', PROBE, '8765', h2.addr]);
    return r.stdout.trim() !== '' && !r.stdout.trim().endsWith(' ok') ? r : undefined;
  }, 20000, 500);
}, 90000);

test('tasks of a macvlan network on the underlay reach each other across hosts, and a client on the LAN reaches them directly', async () => {
  await sw(lab, h1, ['network', 'create', '-d', 'macvlan', '--subnet', '198.51.100.0/24', '--ip-range', '198.51.100.128/25', '--gateway', '198.51.100.1', '--opt', 'parent=eth0', 'macnet']);
  expect(await sw(lab, h1, ['network', 'ls'])).toMatch(/macnet\s+macvlan\s+/);
  await sw(lab, h1, ['service', 'create', '--name', 'mac', '--replicas', '2', '--network', 'macnet', '--constraint', 'node.role==worker', 'exec:/', 'python3', '-m', 'http.server', '8000']);
  const tasks = await waitFor('two running macvlan tasks', async () => {
    const r = await running('mac');
    return r.length === 2 ? r : undefined;
  }, 60000);
  const hosts = await Promise.all(tasks.map(hostOf));
  expect(new Set(hosts).size).toBe(2);
  const ips = tasks.map((t) => ipOf(t, 'macnet'));
  for (const ip of ips) {
    expect(ip).toMatch(/^198\.51\.100\.\d+$/);
    expect(Number(ip.split('.')[3])).toBeGreaterThanOrEqual(128);
  }
  // The task's eth0 is a macvlan on its host's eth0, with its default route via the gateway.
  const link = await lab.exec(hosts[0], ['nsenter', `--net=/proc/${tasks[0].status!.container!.pid}/ns/net`, 'ip', '-j', '-d', 'link', 'show', 'dev', 'eth0']);
  expect(JSON.parse(link.stdout)[0].linkinfo.info_kind).toBe('macvlan');
  const route = await lab.exec(hosts[0], ['nsenter', `--net=/proc/${tasks[0].status!.container!.pid}/ns/net`, 'ip', '-j', 'route', 'show', 'default']);
  expect(JSON.parse(route.stdout)[0]).toMatchObject({ gateway: '198.51.100.1', dev: 'eth0' });
  for (const [i, t] of tasks.entries()) {
    const other = ips[1 - i];
    await waitFor(`task ${t.id} reaching ${other} across hosts`, async () => {
      const r = await inTask(t, PROBE, ['8000', other]);
      return r.stdout.trim() === `${other} ok` ? r : undefined;
    }, 20000, 500);
  }
  // A client on the LAN (not a node) reaches each task at its macvlan address, no NAT in between.
  const client = await lab.addClient();
  for (const ip of ips) {
    await waitFor(`the client reaching ${ip}`, async () => {
      const r = await lab.exec(client, [process.execPath, '-e', PROBE, '8000', ip]);
      return r.stdout.trim() === `${ip} ok` ? r : undefined;
    }, 20000, 500);
  }
  // The task sees the client's own address.
  const echo = inTask(tasks[0], `
    const s = require('net').createServer((c) => { c.end(c.remoteAddress); s.close(); }).listen(9200, '0.0.0.0', () => console.log('up'));
    setTimeout(() => process.exit(1), 20000).unref();`);
  const seen = await waitFor('the client reaching the task\'s echo server', async () => {
    const r = await lab.exec(client, [process.execPath, '-e', `
      const s = require('net').connect({ host: process.argv[1], port: 9200 });
      let got = ''; s.on('data', (d) => (got += d)); s.on('end', () => { console.log(got); process.exit(0); });
      s.on('error', (e) => { console.log('error ' + e.code); process.exit(0); });`, ips[0]]);
    return r.stdout.trim() && !r.stdout.startsWith('error') ? r.stdout.trim() : undefined;
  }, 20000, 300);
  expect(seen).toBe(client.addr);
  expect((await echo).code).toBe(0);

  // A parent missing on the host: the task is rejected with a clear message.
  await sw(lab, h1, ['network', 'create', '-d', 'macvlan', '--subnet', '192.0.2.0/24', '--opt', 'parent=nosuch0', 'macbad']);
  const create = await lab.cli(h1, ['service', 'create', '--name', 'macbad', '--network', 'macbad', 'exec:/', 'sleep', '100000']);
  expect(create.code).toBe(1);
  expect(create.stderr).toMatch(/parent interface nosuch0 not found on this host/);
  const failed = await waitFor('the macbad task to fail', async () => {
    const r = (await apiServiceTasks(h1, 'macbad')) as TaskJson[];
    return r.find((t) => /parent interface nosuch0 not found on this host/.test(t.status?.err ?? ''));
  }, 30000, 300);
  expect(failed.status?.state).not.toBe('TASK_STATE_RUNNING');

  await sw(lab, h1, ['service', 'rm', 'mac']);
  await sw(lab, h1, ['service', 'rm', 'macbad']);
  for (const n of ['macnet', 'macbad']) {
    await waitFor(`network rm ${n} to succeed`, async () => ((await lab.cli(h1, ['network', 'rm', n])).code === 0 ? true : undefined), 30000, 500);
  }
}, 120000);

test('a host whose interface took a network\'s subnet after it was made rejects the network\'s tasks, naming both', async () => {
  await sw(lab, h1, ['network', 'create', '-d', 'overlay', '--subnet', '10.201.0.0/24', 'late']);
  expect((await lab.exec(h2, ['ip', 'addr', 'add', '10.201.0.5/24', 'dev', 'eth0'])).code).toBe(0);
  try {
    const message = /network late: Pool overlaps with other one on this address space: subnet 10\.201\.0\.0\/24 overlaps 10\.201\.0\.0\/24 on interface eth0 of this host/;
    const create = await lab.cli(h1, ['service', 'create', '--name', 'late', '--network', 'late', '--constraint', `node.hostname==${h2.name}`, 'exec:/', 'sleep', '100000']);
    expect(create.code).toBe(1);
    const rejected = await waitFor('the late task to be rejected', async () => {
      const r = (await apiServiceTasks(h1, 'late')) as TaskJson[];
      return r.find((t) => message.test(t.status?.err ?? ''));
    }, 30000, 300);
    expect(rejected.status?.state).not.toBe('TASK_STATE_RUNNING');
  } finally {
    await lab.exec(h2, ['ip', 'addr', 'del', '10.201.0.5/24', 'dev', 'eth0']);
  }
  await sw(lab, h1, ['service', 'rm', 'late']);
  await waitFor('network rm late to succeed', async () => ((await lab.cli(h1, ['network', 'rm', 'late'])).code === 0 ? true : undefined), 30000, 500);
}, 90000);
