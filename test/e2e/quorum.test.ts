/**
 * When managers are lost, end to end on a lab of three managers and a worker (a fifth host joins
 * later, a sixth is fresh for a restore): the survivor names the lost quorum in one line; `swarm
 * init --force-new-cluster` makes it a one-manager swarm with every object kept; an etcd member
 * killed alone comes back; a corrupt etcd data dir is named, not looped on; a backup taken on a
 * manager is restored on a fresh host after every manager is gone.
 * Run through test/run.sh (private network, mount and pid namespaces).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { etcdPid, Lab, LabHost, requireBuiltCli } from '../lab/lab';
import { byHost, formSwarm, info, joinCommand, nodes, runningTasks, sw, TaskJson, waitFor } from './cluster-helpers';
import { uniqueSuffix } from '../support/unique';

const prefix = `swq${uniqueSuffix()}`;
let lab: Lab;
let h1: LabHost, h2: LabHost, h3: LabHost, h4: LabHost, h5: LabHost, h6: LabHost;
/** The task of `keep` on the worker h4, as it ran before the managers were lost. */
let kept: TaskJson;

const NO_LEADER = /^Error: the swarm does not have a leader: 1 of 3 managers reachable, quorum needs 2\. Make sure more than half of the managers are online, or run "swarmlet swarm init --force-new-cluster" on this manager/;

const alive = (pid: number) => fs.existsSync(`/proc/${pid}`);


const count = (text: string, needle: string) => text.split(needle).length - 1;

beforeAll(async () => {
  requireBuiltCli();
  lab = await Lab.create({ prefix, hosts: 6 });
  [h1, h2, h3, h4, h5, h6] = lab.hosts;
}, 60000);

afterAll(async () => {
  await lab?.destroy();
}, 60000);

test('with two of three managers gone, the survivor names the lost quorum in one line, and tasks on the worker keep running', async () => {
  await formSwarm(lab, [h1, h2, h3], [h4]);
  await sw(lab, h1, ['network', 'create', '-d', 'overlay', 'keepnet']);
  await sw(lab, h1, ['service', 'create', '-d', '--name', 'keep', '--network', 'keepnet', '--constraint', `node.hostname==${h4.name}`, 'exec:/', 'sleep', '100000']);
  await sw(lab, h1, ['service', 'create', '-d', '--name', 'web', '--replicas', '2', '--constraint', 'node.role==worker', 'exec:/', 'sleep', '100000']);
  [kept] = await waitFor('keep running on h4', async () => {
    const t = await runningTasks(lab, h1, 'keep');
    return t.length === 1 && t[0].status?.container?.pid ? t : undefined;
  });

  const withQuorum = await lab.cli(h1, ['swarm', 'init', '--force-new-cluster']);
  expect(withQuorum.code).toBe(1);
  expect(withQuorum.stderr).toBe('Error: the swarm has a leader (its managers have quorum): --force-new-cluster is only for a swarm that lost its quorum\n');

  await Promise.all([lab.stopDaemon(h2, 'kill'), lab.stopDaemon(h3, 'kill')]);

  for (const args of [['service', 'ls'], ['node', 'ls'], ['network', 'create', '-d', 'overlay', 'late']]) {
    const res = await waitFor(`${args.join(' ')} naming the lost quorum`, async () => {
      const r = await lab.cli(h1, args);
      return NO_LEADER.test(r.stderr) ? r : undefined;
    });
    expect(res.code).toBe(1);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
  }
  // The gRPC API over TCP says the same, with a manager's certificate.
  const overTcp = await lab.cli(h1, ['-H', `tcp://${h1.addr}:2377`, '--cert-dir', path.join(h1.dataDir, 'certs'), 'service', 'ls']);
  expect(overTcp.code).toBe(1);
  expect(overTcp.stderr).toMatch(NO_LEADER);

  const text = await sw(lab, h1, ['info']);
  expect(text).toMatch(/^Swarm: active\n/);
  expect(text).toMatch(/\n Is Manager: true\n/);
  expect(text).toMatch(/\n Error: the swarm does not have a leader: 1 of 3 managers reachable, quorum needs 2\./);

  // Past the time a node is marked down, the worker's task still runs: a manager without quorum changes nothing.
  await new Promise((r) => setTimeout(r, 8000));
  expect(alive(kept.status!.container!.pid!)).toBe(true);

  // A survivor restarted meanwhile (a reboot) starts its manager and says the same.
  await lab.stopDaemon(h1);
  await lab.startDaemon(h1);
  let last = '';
  await waitFor('service ls naming the lost quorum after a restart', async () => {
    last = (await lab.cli(h1, ['service', 'ls'])).stderr;
    return NO_LEADER.test(last) ? true : undefined;
  }).catch((err) => {
    throw new Error(`${err.message}; last said: ${last}\n${lab.logTail(h1, 30)}`);
  });
}, 180000);

test('swarm init --force-new-cluster is refused on a worker, and on a node in no swarm', async () => {
  const onWorker = await lab.cli(h4, ['swarm', 'init', '--force-new-cluster']);
  expect(onWorker.code).toBe(1);
  expect(onWorker.stderr).toBe("Error: this node is not a manager: --force-new-cluster works only on a manager, from its copy of the swarm's state\n");
  await lab.startDaemon(h5);
  const notInSwarm = await lab.cli(h5, ['swarm', 'init', '--force-new-cluster']);
  expect(notInSwarm.code).toBe(1);
  expect(notInSwarm.stderr).toMatch(/^Error: this node is not part of a swarm: --force-new-cluster/);
  // It keeps the manager's own addresses and timings: other init flags are refused with it, and only with it.
  const withAddr = await lab.cli(h1, ['swarm', 'init', '--force-new-cluster', '--advertise-addr', h1.addr]);
  expect(withAddr.code).toBe(2);
  expect(withAddr.stderr).toMatch(/^Error: Arguments force-new-cluster and advertise-addr are mutually exclusive/);
  const plainInit = await lab.cli(h5, ['swarm', 'init', '--etcd-endpoints', 'not-a-url']);
  expect(plainInit.stderr).toBe('Error: invalid etcd endpoint "not-a-url": expected http://HOST:PORT\n');
}, 60000);

test('swarm init --force-new-cluster on the survivor keeps every service and network; the worker is ready again without rejoining; a new manager joins', async () => {
  const out = await sw(lab, h1, ['swarm', 'init', '--force-new-cluster']);
  expect(out).toMatch(/^Swarm initialized: current node \([a-z0-9]{25}\) is now a manager\./);
  expect(out).toMatch(/swarmlet join --token SWLTKN-1-/);

  const services = await waitFor('service ls again', async () => {
    const r = await lab.cli(h1, ['service', 'ls', '--format', 'api']);
    return r.code === 0 ? (JSON.parse(r.stdout) as { spec?: { name?: string } }[]) : undefined;
  });
  expect(services.map((s) => s.spec?.name).sort()).toEqual(['keep', 'web']);
  expect(await sw(lab, h1, ['network', 'ls'])).toMatch(/keepnet\s+overlay/);

  const list = await waitFor('h4 ready, h2 and h3 down and unreachable', async () => {
    const l = await nodes(lab, h1);
    const ok =
      byHost(l, h4)?.status?.state === 'NODE_STATE_READY' &&
      [h2, h3].every((h) => byHost(l, h)?.status?.state === 'NODE_STATE_DOWN' && byHost(l, h)?.managerStatus?.reachability === 'REACHABILITY_UNREACHABLE');
    return ok ? l : undefined;
  });
  expect(byHost(list, h1)?.managerStatus).toMatchObject({ leader: true, reachability: 'REACHABILITY_REACHABLE' });
  expect(list).toHaveLength(4);
  // The worker kept its task (same process) and its node: it never rejoined.
  expect(alive(kept.status!.container!.pid!)).toBe(true);
  expect((await runningTasks(lab, h1, 'keep')).map((t) => t.id)).toEqual([kept.id]);

  // A lost manager stays listed until it is removed.
  expect(await sw(lab, h1, ['node', 'demote', h2.name])).toBe(
    `Node ${h2.name} is being demoted: it becomes a worker when it next connects; if it is gone for good, remove it with 'swarmlet node rm --force ${h2.name}' once it is down.\n`,
  );
  await sw(lab, h1, ['node', 'rm', '--force', h3.name]);
  expect(byHost(await nodes(lab, h1), h3)).toBeUndefined();

  // Writes work, and a new manager joins with the manager token.
  await sw(lab, h1, ['service', 'scale', 'web=3']);
  const managerJoin = joinCommand(await sw(lab, h1, ['swarm', 'join-token', 'manager']));
  expect(await sw(lab, h5, managerJoin)).toBe('This node joined a swarm as a manager.\n');
  await waitFor('h5 a reachable manager', async () => {
    const n = byHost(await nodes(lab, h1), h5);
    return n?.managerStatus?.reachability === 'REACHABILITY_REACHABLE' ? n : undefined;
  });
  expect((await info(lab, h5)).isManager).toBe(true);
  expect((await sw(lab, h5, ['service', 'ls', '-q'])).trim().split('\n')).toHaveLength(2);
}, 180000);

test("a manager's etcd member killed alone is restarted by its daemon, and writes work again", async () => {
  const pid = etcdPid(h1);
  expect(pid).toBeDefined();
  process.kill(pid!, 'SIGKILL');
  await waitFor('a new etcd member on h1', async () => {
    const p = etcdPid(h1);
    return p && p !== pid ? p : undefined;
  });
  expect(lab.logTail(h1, 400)).toMatch(/etcd member exited; restarting/);
  await waitFor('a write on h1', async () => ((await lab.cli(h1, ['service', 'scale', 'web=2'])).code === 0 ? true : undefined), 60000);
  await waitFor('web at 2 on h5', async () => ((await runningTasks(lab, h5, 'web')).length === 2 ? true : undefined), 60000);
}, 120000);

const backupFile = () => path.join(lab.baseDir, 'swarm.backup');
const passphraseFile = () => path.join(lab.baseDir, 'passphrase');

test('swarm backup writes the sealed state of the swarm; the passphrase comes from stdin or a file, never argv', async () => {
  const cli = [process.execPath, requireBuiltCli(), '-H', h1.socket];
  const short = await lab.exec(h1, ['sh', '-c', `printf 'short\\n' | "$@"`, 'sh', ...cli, 'swarm', 'backup', backupFile()]);
  expect(short.code).toBe(1);
  expect(short.stderr).toBe('Error: the backup passphrase must be at least 8 characters\n');
  expect(fs.existsSync(backupFile())).toBe(false);

  const res = await lab.exec(h1, ['sh', '-c', `printf 'lab passphrase\\n' | "$@"`, 'sh', ...cli, 'swarm', 'backup', backupFile()]);
  expect(res.stderr).toBe('');
  expect(res.stdout).toMatch(new RegExp(`^Swarm backed up to ${backupFile()}: \\d+ keys of the cluster store and the root CA\\.`));
  expect(fs.statSync(backupFile()).mode & 0o777).toBe(0o600);
  const sealed = fs.readFileSync(backupFile());
  expect(sealed.includes(Buffer.from('keepnet'))).toBe(false);
  expect(sealed.includes(Buffer.from('PRIVATE KEY'))).toBe(false);

  const again = await lab.cli(h1, ['swarm', 'backup', backupFile(), '--passphrase-file', passphraseFile()]);
  expect(again.code).toBe(1);
  expect(again.stderr).toBe(`Error: ${backupFile()} already exists; choose another file\n`);
}, 60000);

test('a corrupt etcd data dir is named in one line with the fix, and not started again and again', async () => {
  await lab.stopDaemon(h5);
  const walDir = path.join(h5.dataDir, 'etcd', 'member', 'wal');
  const wal = path.join(walDir, fs.readdirSync(walDir).find((f) => f.endsWith('.wal'))!);
  const fd = fs.openSync(wal, 'r+');
  fs.writeSync(fd, Buffer.alloc(256, 0xa5), 0, 256, 64);
  fs.closeSync(fd);
  const before = fs.readFileSync(h5.logFile, 'utf8').length;
  await lab.startDaemon(h5);
  const said = await waitFor('the corrupt data dir named', async () => {
    const lines = fs.readFileSync(h5.logFile, 'utf8').slice(before).split('\n');
    return lines.find((l) => l.includes('is corrupt'));
  }).catch((err) => {
    throw new Error(`${err.message}\n--- etcd.log ---\n${fs.readFileSync(path.join(h5.dataDir, 'etcd.log'), 'utf8').split('\n').slice(-8).join('\n')}\n--- daemon ---\n${lab.logTail(h5, 30)}`);
  });
  expect(JSON.parse(said).msg).toMatch(new RegExp(`^etcd's data dir ${path.join(h5.dataDir, 'etcd')} is corrupt \\(.+\\), so this manager cannot start: .*swarmlet swarm leave --force`));
  // Well past the daemon's first retries, etcd was started once.
  await new Promise((r) => setTimeout(r, 5000));
  expect(count(fs.readFileSync(h5.logFile, 'utf8').slice(before), 'etcd member started')).toBe(1);
  // `info` says it too.
  expect(await sw(lab, h5, ['info'])).toMatch(/\n Error: etcd's data dir \S+ is corrupt \(.+\), so this manager cannot start: /);
}, 90000);

test('after every manager is lost, swarm restore on a fresh host makes it the one manager with every service, network and node; a worker rejoins', async () => {
  await lab.stopDaemon(h1, 'kill');
  await lab.startDaemon(h6);
  fs.writeFileSync(passphraseFile(), 'wrong passphrase\n');
  const wrong = await lab.cli(h6, ['swarm', 'restore', backupFile(), '--passphrase-file', passphraseFile(), '--advertise-addr', h6.addr]);
  expect(wrong.code).toBe(1);
  expect(wrong.stderr).toBe('Error: the backup does not open with this passphrase (or the file was changed)\n');
  expect((await info(lab, h6)).localState).toBe('inactive');

  fs.writeFileSync(passphraseFile(), 'lab passphrase\n');
  const out = await sw(lab, h6, ['swarm', 'restore', backupFile(), '--passphrase-file', passphraseFile(), '--advertise-addr', h6.addr]);
  expect(out).toMatch(/^Swarm restored: current node \([a-z0-9]{25}\) is now its only manager\./);
  const workerJoin = joinCommand(out);
  expect(workerJoin[3]).toBe(`${h6.addr}:2377`);

  const services = JSON.parse(await sw(lab, h6, ['service', 'ls', '--format', 'api'])) as { spec?: { name?: string } }[];
  expect(services.map((s) => s.spec?.name).sort()).toEqual(['keep', 'web']);
  expect(await sw(lab, h6, ['network', 'ls'])).toMatch(/keepnet\s+overlay/);
  const list = await waitFor('h6 the leader', async () => {
    const l = await nodes(lab, h6);
    return byHost(l, h6)?.managerStatus?.leader ? l : undefined;
  });
  // Every node record of the backup is there (h3 was removed before it), and the restored manager.
  for (const h of [h1, h2, h4, h5, h6]) expect(byHost(list, h)).toBeDefined();
  expect(byHost(list, h3)).toBeUndefined();

  // The worker rejoins the restored swarm with its worker token, and the service pinned to it runs there again.
  await sw(lab, h4, ['swarm', 'leave']);
  expect(await sw(lab, h4, workerJoin)).toBe('This node joined a swarm as a worker.\n');
  await waitFor('keep running on the rejoined h4', async () => {
    const t = await runningTasks(lab, h6, 'keep');
    const onH4 = (await nodes(lab, h6)).find((n) => n.description?.hostname === h4.name && n.status?.state === 'NODE_STATE_READY');
    return t.length === 1 && t[0].nodeId === onH4?.id ? t : undefined;
  }, 60000);
}, 180000);
