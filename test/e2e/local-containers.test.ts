/**
 * Containers as students type them (`run -d`, `ps`, `logs`, `stop`, `rm`, `inspect`), on one lab
 * host whose daemon is in no swarm, with exec: images: docker's default bridge reached by IP,
 * an OCI image from a registry in the lab, restart policies, --rm, adoption after a daemon
 * restart, and bad input that leaves nothing
 * behind (no record, no veth, no runtime state); the course's user bridge exercise (containers
 * find each other by name and alias on `mynet`, not across bridges). Run through test/run.sh.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab, LabHost } from '../lab/lab';
import { LAB_REGISTRY, oneHostWithBusybox, sw, tearDownLab, waitFor } from './cluster-helpers';
import type { TestRegistry } from '../support/registry';

interface Inspect {
  Id: string;
  Name: string;
  RestartCount: number;
  State: { Status: string; Running: boolean; Pid: number; ExitCode: number; OOMKilled: boolean; StartedAt: string; FinishedAt: string };
  HostConfig: { RestartPolicy: { Name: string; MaximumRetryCount: number }; Memory: number };
  Config: { Env: string[]; Labels: Record<string, string> };
  NetworkSettings: { Networks: Record<string, { IPAddress: string; Gateway: string; MacAddress: string }> };
}

let lab: Lab;
let h: LabHost;
let registry: TestRegistry;
let image: string;

const inspect = async (ref: string): Promise<Inspect> => (JSON.parse(await sw(lab, h, ['inspect', ref])) as Inspect[])[0];
const psAll = async (): Promise<Inspect[]> => JSON.parse(await sw(lab, h, ['ps', '-a', '--format', 'api'])) as Inspect[];
const records = () => (existsSync(join(h.dataDir, 'local-containers', 'records')) ? readdirSync(join(h.dataDir, 'local-containers', 'records')) : []);
const runtimeDirs = () => ['exec', 'oci'].flatMap((k) => {
  try {
    return readdirSync(join(h.dataDir, 'local-containers', k)).filter((d) => /^[0-9a-f]{64}$/.test(d));
  } catch {
    return [];
  }
});
const hostVeths = async () => (await lab.exec(h, ['ip', '-o', 'link', 'show', 'type', 'veth'])).stdout.split('\n').filter((l) => l.includes('swbl-'));

beforeAll(async () => {
  ({ lab, h, registry, image } = await oneHostWithBusybox('swlc'));
}, 180000);

afterAll(() => tearDownLab(lab, registry), 60000);

test('run -d, ps, logs, inspect, stop, ps -a, rm: on the default bridge, reached by IP', async () => {
  const id = (await sw(lab, h, ['run', '-d', '--name', 'web', '-e', 'GREETING=hello', '-l', 'course=net', 'exec:/', 'sh', '-c', 'echo "$GREETING from $(hostname)"; exec sleep 1000'])).trim();
  expect(id).toMatch(/^[0-9a-f]{64}$/);
  const ps = await sw(lab, h, ['ps']);
  expect(ps.split('\n')[0]).toMatch(/^CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES/);
  expect(ps).toMatch(new RegExp(`^${id.slice(0, 12)}\\s+exec:/\\s+.*Up .*web$`, 'm'));
  expect(await sw(lab, h, ['ps', '-q'])).toBe(`${id.slice(0, 12)}\n`);
  await waitFor('the greeting in the logs', async () => ((await sw(lab, h, ['logs', 'web'])).includes(`hello from ${id.slice(0, 12)}`) ? true : undefined));

  const web = await inspect('web');
  expect(web).toMatchObject({ Id: id, Name: '/web', State: { Status: 'running', Running: true, OOMKilled: false }, HostConfig: { RestartPolicy: { Name: 'no' } } });
  expect(web.Config.Env).toContain('GREETING=hello');
  expect(web.Config.Labels).toEqual({ course: 'net' });
  const bridge = web.NetworkSettings.Networks.bridge;
  expect(bridge).toMatchObject({ IPAddress: '172.17.0.2', Gateway: '172.17.0.1' });
  expect(bridge.MacAddress).toMatch(/^02:42:ac:11:00:02$/);

  // Another container on the default bridge reaches web by its IP, not by its name.
  const byIp = await lab.cli(h, ['run', '--rm', 'exec:/', 'busybox', 'ping', '-c', '1', '-W', '2', '172.17.0.2']);
  expect(`${byIp.code} ${byIp.stdout}${byIp.stderr}`).toMatch(/^0 /);
  expect(byIp.stdout).toMatch(/1 (packets )?received/);
  const byName = await lab.cli(h, ['run', '--rm', 'exec:/', 'busybox', 'ping', '-c', '1', '-W', '2', 'web']);
  expect(byName.code).not.toBe(0);

  expect(await sw(lab, h, ['stop', '-t', '1', 'web'])).toBe('web\n');
  const stopped = await inspect(id.slice(0, 8));
  expect(stopped.State).toMatchObject({ Status: 'exited', Running: false });
  expect([137, 143]).toContain(stopped.State.ExitCode);
  expect(await sw(lab, h, ['ps', '-q'])).toBe('');
  expect(await sw(lab, h, ['ps', '-a'])).toMatch(/Exited \((137|143)\) .* ago\s+web$/m);
  expect(await hostVeths()).toEqual([]);

  expect(await sw(lab, h, ['container', 'start', 'web'])).toBe('web\n');
  expect((await inspect('web')).State.Running).toBe(true);
  const refused = await lab.cli(h, ['rm', 'web']);
  expect(refused.code).not.toBe(0);
  expect(refused.stderr.trim()).toBe(`Error: You cannot remove a running container ${id}. Stop the container before attempting removal or force remove`);
  expect(await sw(lab, h, ['rm', '-f', 'web'])).toBe('web\n');
  expect(await psAll()).toEqual([]);
  expect(records()).toEqual([]);
  expect(runtimeDirs()).toEqual([]);
  expect(await hostVeths()).toEqual([]);
}, 300000);

test('a generated name, docker\'s conflict message for a taken one, and run without -d prints the output and exits with its code', async () => {
  const out = await lab.cli(h, ['run', '--name', 'once', 'exec:/', 'sh', '-c', 'echo out-line; exit 3']);
  expect(out.stdout).toBe('out-line\n');
  expect(out.code).toBe(3);
  const taken = await lab.cli(h, ['run', '-d', '--name', 'once', 'exec:/', 'true']);
  expect(taken.code).not.toBe(0);
  const onceId = (await inspect('once')).Id;
  expect(taken.stderr.trim()).toBe(`Error: Conflict. The container name "/once" is already in use by container "${onceId}". You have to remove (or rename) that container to be able to reuse that name.`);
  const gen = (await sw(lab, h, ['container', 'create', 'exec:/', 'true'])).trim();
  expect((await inspect(gen)).Name).toMatch(/^\/[a-z]+_[a-z]+\d?$/);
  expect((await inspect(gen)).State.Status).toBe('created');
  expect(await sw(lab, h, ['container', 'wait', 'once'])).toBe('3\n');
  await sw(lab, h, ['rm', 'once', gen]);
  expect(records()).toEqual([]);
}, 300000);

test('restart policies: on-failure:2 restarts twice, always brings back a killed one unless stopped; --rm removes on exit', async () => {
  await sw(lab, h, ['run', '-d', '--name', 'flaky', '--restart', 'on-failure:2', '--network', 'none', 'exec:/', 'sh', '-c', 'echo try; exit 4']);
  const flaky = await waitFor('flaky to give up', async () => {
    const c = await inspect('flaky');
    return c.State.Status === 'exited' && c.RestartCount === 2 ? c : undefined;
  }, 30000);
  expect(flaky.State.ExitCode).toBe(4);
  expect(flaky.HostConfig.RestartPolicy).toEqual({ Name: 'on-failure', MaximumRetryCount: 2 });

  await sw(lab, h, ['run', '-d', '--name', 'keeper', '--restart', 'always', '--network', 'none', 'exec:/', 'sleep', '1000']);
  const first = await inspect('keeper');
  process.kill(first.State.Pid, 'SIGKILL');
  const again = await waitFor('keeper to run again', async () => {
    const c = await inspect('keeper');
    return c.State.Running && c.State.Pid !== first.State.Pid ? c : undefined;
  }, 30000);
  expect(again.RestartCount).toBe(1);
  await sw(lab, h, ['stop', '-t', '0', 'keeper']);
  await new Promise((r) => setTimeout(r, 1000));
  expect((await inspect('keeper')).State.Status).toBe('exited');

  await sw(lab, h, ['run', '-d', '--rm', '--name', 'brief', '--network', 'none', 'exec:/', 'true']);
  await waitFor('brief to be removed', async () => ((await psAll()).some((c) => c.Name === '/brief') ? undefined : true), 30000);
  await sw(lab, h, ['rm', 'flaky', 'keeper']);
}, 300000);

test('a running container survives a daemon restart and is adopted again', async () => {
  await sw(lab, h, ['run', '-d', '--name', 'survivor', 'exec:/', 'sleep', '1000']);
  const before = await inspect('survivor');
  await lab.stopDaemon(h);
  await lab.startDaemon(h);
  const after = await inspect('survivor');
  expect(after.State).toMatchObject({ Status: 'running', Pid: before.State.Pid, StartedAt: before.State.StartedAt });
  expect(after.NetworkSettings.Networks.bridge.IPAddress).toBe(before.NetworkSettings.Networks.bridge.IPAddress);
  // The adopted one keeps its address: a new container gets the next one.
  await sw(lab, h, ['run', '-d', '--name', 'second', 'exec:/', 'sleep', '1000']);
  expect((await inspect('second')).NetworkSettings.Networks.bridge.IPAddress).not.toBe(after.NetworkSettings.Networks.bridge.IPAddress);
  const ping = await lab.cli(h, ['run', '--rm', 'exec:/', 'busybox', 'ping', '-c', '1', '-W', '2', after.NetworkSettings.Networks.bridge.IPAddress]);
  expect(ping.code).toBe(0);
  await sw(lab, h, ['rm', '-f', 'survivor', 'second']);
  expect(records()).toEqual([]);
}, 300000);

test('bad input: one line, non-zero exit, and nothing left behind', async () => {
  const cases: [string[], RegExp][] = [
    [['run', '-d', '--network', 'nosuchnet', 'exec:/', 'true'], /^Error: network nosuchnet not found$/],
    [['run', '-d', 'exec:/no/such/dir', 'true'], /^Error: .+/],
    [['run', '-d', '--restart', 'sometimes', 'exec:/', 'true'], /^Error: invalid restart policy format: .+/],
    [['run', '-d', '-v', 'bad::/x', 'exec:/', 'true'], /^Error: invalid volume specification: 'bad::\/x'$/],
    [['run', '-d', '--name', 'bad name', 'exec:/', 'true'], /^Error: Invalid container name \(bad name\), only \[a-zA-Z0-9\]\[a-zA-Z0-9_.-\] are allowed$/],
    [['run', '-d', '--memory', 'lots', 'exec:/', 'true'], /^Error: invalid --memory "lots": .+/],
    [['run', '-d', '--no-such-flag', 'exec:/', 'true'], /^Error: .+/],
    [['stop', 'nosuch'], /^Error: No such container: nosuch$/],
    [['inspect', 'nosuch'], /^Error: No such container: nosuch$/],
  ];
  for (const [args, message] of cases) {
    const res = await lab.cli(h, args);
    expect({ args, code: res.code === 0 ? 0 : 'non-zero' }).toEqual({ args, code: 'non-zero' });
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stderr.trim()).toMatch(message);
  }
  expect(await psAll()).toEqual([]);
  expect(records()).toEqual([]);
  expect(runtimeDirs()).toEqual([]);
  expect(await hostVeths()).toEqual([]);
}, 300000);

test("the course's user bridge: alpine1..3 reach each other by name and alias on mynet; the default bridge's alpine4 is not reachable from there", async () => {
  const netId = (await sw(lab, h, ['network', 'create', '--driver', 'bridge', 'mynet'])).trim();
  expect(netId).toMatch(/^[0-9a-f]{64}$/);
  const dup = await lab.cli(h, ['network', 'create', 'mynet']);
  expect(dup.stderr.trim()).toBe('Error: network with name mynet already exists');
  expect(await sw(lab, h, ['network', 'ls'])).toMatch(/^\S+\s+mynet\s+bridge\s+/m);
  for (const name of ['alpine1', 'alpine2']) await sw(lab, h, ['run', '-d', '--rm', '--name', name, '--network', 'mynet', 'exec:/', 'sleep', '1000']);
  await sw(lab, h, ['run', '-d', '--rm', '--name', 'alpine3', '--network', 'mynet', '--network-alias', 'db', 'exec:/', 'sleep', '1000']);
  await sw(lab, h, ['run', '-d', '--rm', '--name', 'alpine4', 'exec:/', 'sleep', '1000']);
  const a2 = (await inspect('alpine2')).NetworkSettings.Networks.mynet.IPAddress;
  const a4 = (await inspect('alpine4')).NetworkSettings.Networks.bridge.IPAddress;
  const subnet = JSON.parse(await sw(lab, h, ['network', 'inspect', 'mynet']))[0];
  expect(JSON.stringify(subnet)).toContain(a2);

  const ping = (args: string[]) => lab.cli(h, ['run', '--rm', '--network', 'mynet', 'exec:/', 'busybox', 'ping', '-c', '1', '-W', '2', ...args]);
  const byName = await ping(['alpine2']);
  expect(`${byName.code} ${byName.stdout}${byName.stderr}`).toMatch(new RegExp(`^0 PING alpine2 \\(${a2.replace(/\./g, '\\.')}\\)`));
  const byAlias = await ping(['db']);
  expect(byAlias.code).toBe(0);
  // alpine4 is on the default bridge: no name from mynet, and its address is not reachable across bridges.
  expect((await ping(['alpine4'])).code).not.toBe(0);
  expect((await ping([a4])).code).not.toBe(0);

  const busy = await lab.cli(h, ['network', 'rm', 'mynet']);
  expect(busy.stderr.trim()).toBe(`Error: error while removing network: network mynet id ${netId} has active endpoints`);
  await sw(lab, h, ['rm', '-f', 'alpine1', 'alpine2', 'alpine3', 'alpine4']);
  expect(await sw(lab, h, ['network', 'rm', 'mynet'])).toBe('mynet\n');
  expect(records()).toEqual([]);
  expect(await hostVeths()).toEqual([]);
}, 400000);

test('--memory kills a container past it: ps -a and inspect show OOMKilled and 137; --pids-limit holds', async () => {
  await sw(lab, h, ['run', '-d', '--name', 'hog', '--memory', '32m', '--network', 'none', 'exec:/', 'python3', '-c', 'x = bytearray(200 * 1024 * 1024); import time; time.sleep(100)']);
  const hog = await waitFor('the hog to be killed', async () => {
    const c = await inspect('hog');
    return c.State.Status === 'exited' ? c : undefined;
  }, 120000);
  expect(hog.State).toMatchObject({ OOMKilled: true, ExitCode: 137 });
  expect(hog.HostConfig.Memory).toBe(32 * 1024 * 1024);
  expect(await sw(lab, h, ['ps', '-a', '--filter', 'exited=137', '-q'])).toBe(`${hog.Id.slice(0, 12)}\n`);
  await sw(lab, h, ['run', '-d', '--name', 'forky', '--pids-limit', '5', '--network', 'none', 'exec:/', 'sh', '-c', 'for i in 1 2 3 4 5 6 7 8; do sleep 3 & done; wait']);
  expect((await inspect('forky')).HostConfig).toMatchObject({ PidsLimit: 5 });
  expect(await sw(lab, h, ['container', 'wait', 'forky'])).not.toBe('0\n');
  // The shell's complaint is on stderr, where `logs` writes it.
  expect((await lab.cli(h, ['logs', 'forky'])).stderr).toMatch(/fork|Resource temporarily unavailable/i);
  await sw(lab, h, ['rm', 'hog', 'forky']);
}, 300000);

test('an OCI image from the registry runs as a container on crun; an unknown one leaves nothing', async () => {
  await sw(lab, h, ['run', '-d', '--name', 'box', image, 'sh', '-c', 'echo "in $(cat /etc/hostname)"; exec sleep 1000']);
  const box = await inspect('box');
  expect(box).toMatchObject({ State: { Running: true }, Config: { Image: image } });
  await waitFor('box output', async () => ((await sw(lab, h, ['logs', 'box'])).includes(`in ${box.Id.slice(0, 12)}`) ? true : undefined), 60000);
  const once = await lab.cli(h, ['run', '--rm', '--network', 'none', image, 'echo', 'hello from busybox'], { timeoutMs: 120000 });
  expect(`${once.code} ${once.stdout}`).toBe('0 hello from busybox\n');
  await sw(lab, h, ['rm', '-f', 'box']);
  const missing = await lab.cli(h, ['run', '-d', `${LAB_REGISTRY}/no-such-image:1`, 'true'], { timeoutMs: 120000 });
  expect(missing.code).not.toBe(0);
  expect(missing.stderr.trim().split('\n')).toHaveLength(1);
  expect(await psAll()).toEqual([]);
  expect(records()).toEqual([]);
  expect(runtimeDirs()).toEqual([]);
}, 300000);

/** A command that may pull the image first. */
async function runLong(args: string[]): Promise<void> {
  const r = await lab.cli(h, args, { timeoutMs: 120000 });
  if (r.code !== 0) throw new Error(`swarmlet ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}\n${lab.logTail(h, 40)}`);
}

test("the course's alpine1..alpine4 exercise as written: network connect bridge alpine4 gives it eth1 live; disconnect takes it away", async () => {
  const ok = (r: { code: number | null; stdout: string; stderr: string }) => `${r.code} ${r.stdout}${r.stderr}`;
  const netId = (await sw(lab, h, ['network', 'create', '--driver', 'bridge', 'mynet'])).trim();
  await runLong(['run', '-dit', '--rm', '--name', 'alpine1', '--network', 'mynet', image, 'ash']);
  await runLong(['run', '-dit', '--rm', '--name', 'alpine2', '--network', 'mynet', image, 'ash']);
  await runLong(['run', '-dit', '--rm', '--name', 'alpine3', image, 'ash']);
  await runLong(['run', '-dit', '--rm', '--name', 'alpine4', '--network', 'mynet', image, 'ash']);
  expect(await sw(lab, h, ['network', 'connect', 'bridge', 'alpine4'])).toBe('');

  const a = Object.fromEntries(await Promise.all(['alpine1', 'alpine2', 'alpine3', 'alpine4'].map(async (n) => [n, await inspect(n)] as const)));
  expect(Object.keys(a.alpine4.NetworkSettings.Networks).sort()).toEqual(['bridge', 'mynet']);
  const ip3 = a.alpine3.NetworkSettings.Networks.bridge.IPAddress;
  const ip1 = a.alpine1.NetworkSettings.Networks.mynet.IPAddress;
  const ip4bridge = a.alpine4.NetworkSettings.Networks.bridge.IPAddress;
  // network inspect lists the containers on each network, docker's way.
  type Net = { Containers: Record<string, { Name: string; IPv4Address: string; MacAddress: string; EndpointID: string }> };
  const bridge = (JSON.parse(await sw(lab, h, ['network', 'inspect', 'bridge'])) as Net[])[0];
  expect(Object.values(bridge.Containers).map((c) => c.Name).sort()).toEqual(['alpine3', 'alpine4']);
  expect(bridge.Containers[a.alpine4.Id]).toMatchObject({ Name: 'alpine4', IPv4Address: `${ip4bridge}/16` });
  const mynet = (JSON.parse(await sw(lab, h, ['network', 'inspect', 'mynet'])) as Net[])[0];
  expect(Object.values(mynet.Containers).map((c) => c.Name).sort()).toEqual(['alpine1', 'alpine2', 'alpine4']);

  // alpine4: eth0 on mynet, eth1 (new, without a restart) on the default bridge.
  const links = await sw(lab, h, ['exec', 'alpine4', 'ip', '-o', '-4', 'addr', 'show']);
  expect(links).toMatch(new RegExp(`eth0\\s+inet ${a.alpine4.NetworkSettings.Networks.mynet.IPAddress.replace(/\./g, '\\.')}/`));
  expect(links).toMatch(new RegExp(`eth1\\s+inet ${ip4bridge.replace(/\./g, '\\.')}/16`));

  const ping = (from: string, to: string) => lab.cli(h, ['exec', from, 'ping', '-c', '1', '-W', '2', to]);
  expect(ok(await ping('alpine1', 'alpine2'))).toMatch(/^0 PING alpine2/);
  expect((await ping('alpine1', 'alpine3')).code).not.toBe(0);
  expect((await ping('alpine1', ip3)).code).not.toBe(0);
  expect(ok(await ping('alpine4', 'alpine1'))).toMatch(/^0 /);
  expect(ok(await ping('alpine4', 'alpine2'))).toMatch(/^0 /);
  expect(ok(await ping('alpine4', ip3))).toMatch(/^0 /);
  expect(ok(await ping('alpine3', ip4bridge))).toMatch(/^0 /);
  expect((await ping('alpine3', ip1)).code).not.toBe(0);

  // Bad input: one line in docker's words, and nothing changes.
  const errors = [
    [['network', 'connect', 'bridge', 'alpine4'], 'Error: container alpine4 is already attached to network bridge'],
    [['network', 'disconnect', 'mynet', 'alpine3'], 'Error: container alpine3 is not connected to network mynet'],
    [['network', 'connect', 'nosuchnet', 'alpine3'], 'Error: network nosuchnet not found'],
    [['network', 'connect', 'mynet', 'nosuchbox'], 'Error: No such container: nosuchbox'],
    [['network', 'rm', 'mynet'], `Error: error while removing network: network mynet id ${netId} has active endpoints`],
  ] as const;
  for (const [args, message] of errors) {
    const r = await lab.cli(h, [...args]);
    expect([r.code, r.stderr.trim()]).toEqual([1, message]);
  }
  expect(Object.keys((await inspect('alpine3')).NetworkSettings.Networks)).toEqual(['bridge']);

  // Disconnect, live: alpine4's eth0 goes, and with it the names of mynet; the default bridge stays.
  expect(await sw(lab, h, ['network', 'disconnect', 'mynet', 'alpine4'])).toBe('');
  expect(Object.keys((await inspect('alpine4')).NetworkSettings.Networks)).toEqual(['bridge']);
  const after = await sw(lab, h, ['exec', 'alpine4', 'ip', '-o', '-4', 'addr', 'show']);
  expect(after).not.toMatch(/eth0/);
  expect((await ping('alpine4', 'alpine1')).code).not.toBe(0);
  expect((await ping('alpine4', ip1)).code).not.toBe(0);
  expect(ok(await ping('alpine4', ip3))).toMatch(/^0 /);
  const mynetAfter = (JSON.parse(await sw(lab, h, ['network', 'inspect', 'mynet'])) as Net[])[0];
  expect(Object.values(mynetAfter.Containers).map((c) => c.Name).sort()).toEqual(['alpine1', 'alpine2']);

  await sw(lab, h, ['container', 'stop', 'alpine1', 'alpine2', 'alpine3', 'alpine4']);
  await waitFor('the --rm containers to go', async () => ((await psAll()).length === 0 ? true : undefined));
  expect(await sw(lab, h, ['network', 'rm', 'mynet'])).toBe('mynet\n');
  expect(records()).toEqual([]);
  expect(await hostVeths()).toEqual([]);
}, 400000);

test('stop of several containers works on them at once, as docker does: the second gets its SIGTERM while the first still runs', async () => {
  // Each says when SIGTERM comes, and ignores it: only the kill at the end of the grace stops it.
  const script = 'trap "echo got TERM" TERM; echo up; while true; do sleep 0.1; done';
  for (const n of ['graceA', 'graceB']) await sw(lab, h, ['run', '-d', '--name', n, 'exec:/', 'sh', '-c', script]);
  for (const n of ['graceA', 'graceB']) await waitFor(`${n} up`, async () => ((await sw(lab, h, ['logs', n])).includes('up') ? true : undefined));
  const stopping = lab.cli(h, ['stop', '-t', '5', 'graceA', 'graceB']);
  await waitFor('graceB told to stop', async () => ((await sw(lab, h, ['logs', 'graceB'])).includes('got TERM') ? true : undefined), 30000, 100);
  // One after the other, graceB would hear of it only once graceA was killed.
  expect((await inspect('graceA')).State.Running).toBe(true);
  const r = await stopping;
  expect([r.code, r.stdout]).toEqual([0, 'graceA\ngraceB\n']);
  await sw(lab, h, ['rm', 'graceA', 'graceB']);
}, 90000);

test('network connect of a stopped container is kept for its start: several networks as eth0, eth1; --alias resolves', async () => {
  await sw(lab, h, ['network', 'create', 'n1']);
  await sw(lab, h, ['network', 'create', 'n2']);
  await sw(lab, h, ['container', 'create', '--name', 'multi', '--network', 'n1', 'exec:/', 'sleep', '1000']);
  expect(await sw(lab, h, ['network', 'connect', '--alias', 'cache', 'n2', 'multi'])).toBe('');
  await sw(lab, h, ['start', 'multi']);
  const m = await inspect('multi');
  expect(Object.keys(m.NetworkSettings.Networks).sort()).toEqual(['n1', 'n2']);
  const links = await sw(lab, h, ['exec', 'multi', 'ip', '-o', '-4', 'addr', 'show']);
  expect(links).toMatch(new RegExp(`eth0\\s+inet ${m.NetworkSettings.Networks.n1.IPAddress.replace(/\./g, '\\.')}/`));
  expect(links).toMatch(new RegExp(`eth1\\s+inet ${m.NetworkSettings.Networks.n2.IPAddress.replace(/\./g, '\\.')}/`));
  const byAlias = await lab.cli(h, ['run', '--rm', '--network', 'n2', 'exec:/', 'busybox', 'ping', '-c', '1', '-W', '2', 'cache']);
  expect(`${byAlias.code} ${byAlias.stdout}`).toMatch(new RegExp(`^0 PING cache \\(${m.NetworkSettings.Networks.n2.IPAddress.replace(/\./g, '\\.')}\\)`));
  // Several --network at run, as newer docker accepts.
  await sw(lab, h, ['run', '-d', '--name', 'both', '--network', 'n1', '--network', 'n2', 'exec:/', 'sleep', '1000']);
  expect(Object.keys((await inspect('both')).NetworkSettings.Networks).sort()).toEqual(['n1', 'n2']);
  const fromBoth = await lab.cli(h, ['exec', 'both', 'busybox', 'ping', '-c', '1', '-W', '2', 'cache']);
  expect(fromBoth.code).toBe(0);
  await sw(lab, h, ['rm', '-f', 'multi', 'both']);
  await sw(lab, h, ['network', 'rm', 'n1', 'n2']);
  expect(await hostVeths()).toEqual([]);
}, 300000);

test('interfaces keep their names over a daemon restart after a middle one was disconnected; a container disconnected from its last network joins one again', async () => {
  for (const n of ['ka', 'kb', 'kc', 'kd']) await sw(lab, h, ['network', 'create', n]);
  await sw(lab, h, ['run', '-d', '--name', 'keeper', '--network', 'ka', '--network', 'kb', '--network', 'kc', 'exec:/', 'sleep', '1000']);
  /** keeper's interfaces: name -> IPv4 address. */
  const addrs = async () => Object.fromEntries([...(await sw(lab, h, ['exec', 'keeper', 'ip', '-o', '-4', 'addr', 'show'])).matchAll(/^\d+:\s+(eth\d+)\s+inet ([\d.]+)\//gm)].map((m) => [m[1], m[2]]));
  const ipOn = async (n: string) => (await inspect('keeper')).NetworkSettings.Networks[n]?.IPAddress;
  const [a, c] = [await ipOn('ka'), await ipOn('kc')];
  expect(await addrs()).toEqual({ eth0: a, eth1: await ipOn('kb'), eth2: c });
  await sw(lab, h, ['network', 'disconnect', 'kb', 'keeper']);
  expect(await addrs()).toEqual({ eth0: a, eth2: c });

  const pid = (await inspect('keeper')).State.Pid;
  await lab.stopDaemon(h);
  await lab.startDaemon(h);
  expect((await inspect('keeper')).State).toMatchObject({ Status: 'running', Pid: pid });
  // The next network takes the free eth1; eth2 stays kc's, and answers there.
  await sw(lab, h, ['network', 'connect', 'kd', 'keeper']);
  const d = await ipOn('kd');
  expect(await addrs()).toEqual({ eth0: a, eth1: d, eth2: c });
  const ping = (net: string, ip: string) => lab.cli(h, ['run', '--rm', '--network', net, 'exec:/', 'busybox', 'ping', '-c', '1', '-W', '2', ip]);
  expect((await ping('kc', c)).code).toBe(0);
  expect((await ping('kd', d)).code).toBe(0);
  await sw(lab, h, ['network', 'disconnect', 'kc', 'keeper']);
  expect(await addrs()).toEqual({ eth0: a, eth1: d });

  // Disconnected from every network, it has none left (lo alone), and may join one again, as docker allows.
  await sw(lab, h, ['network', 'disconnect', 'ka', 'keeper']);
  await sw(lab, h, ['network', 'disconnect', 'kd', 'keeper']);
  expect(await addrs()).toEqual({});
  expect((await inspect('keeper')).NetworkSettings.Networks).toEqual({});
  expect(await sw(lab, h, ['network', 'connect', 'ka', 'keeper'])).toBe('');
  const again = await ipOn('ka');
  expect(await addrs()).toEqual({ eth0: again });
  expect((await ping('ka', again)).code).toBe(0);
  // One started with --network none stays refused, in docker's words.
  await sw(lab, h, ['run', '-d', '--name', 'nonet', '--network', 'none', 'exec:/', 'sleep', '1000']);
  const refused = await lab.cli(h, ['network', 'connect', 'ka', 'nonet']);
  expect([refused.code, refused.stderr.trim()]).toEqual([1, 'Error: container cannot be connected to multiple networks with one of the networks in private (none) mode']);

  await sw(lab, h, ['rm', '-f', 'keeper', 'nonet']);
  await sw(lab, h, ['network', 'rm', 'ka', 'kb', 'kc', 'kd']);
  expect(await hostVeths()).toEqual([]);
}, 400000);
