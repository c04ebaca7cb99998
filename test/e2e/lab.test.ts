/**
 * `swarmlet lab`, driven through the built CLI as a student types it: up (3 hosts, 1 manager),
 * its refusals, `lab shell` running one command and (on a real pty, through `script`) an
 * interactive shell, a service reached by name from a task on another host, and down leaving nothing.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { destroyLabsByPrefix, findRepoRoot, requireBuiltCli } from '../lab/lab';
import { listNetns, runCommand, type CommandResult } from '../lab/ip-command';
import { uniqueSuffix } from '../support/unique';

const name = `swlab${uniqueSuffix()}`;
const stateDir = `/run/swarmlet/lab/${name}`;
const main = requireBuiltCli();
const whoami = join(findRepoRoot(), 'dist', 'test', 'support', 'whoami-server.js');

const swarmlet = (args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<CommandResult> =>
  runCommand([process.execPath, main, ...args], { timeoutMs: opts.timeoutMs ?? 120_000, input: opts.input });

/** `lab shell HOST -- ...` on this test's lab; the command must succeed. */
async function onHost(host: string, command: string[]): Promise<string> {
  const r = await swarmlet(['lab', 'shell', '--name', name, host, '--', ...command]);
  if (r.code !== 0) throw new Error(`lab shell ${host} -- ${command.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

const labNetns = async () => (await listNetns()).filter((n) => n.startsWith(`${name}-`));

/** Every cgroup hierarchy's directory of a lab's tree that is still there. */
function labCgroups(lab = name): string[] {
  const root = '/sys/fs/cgroup';
  return readdirSync(root).map((d) => join(root, d, `swarmlet-lab-${lab}`)).filter((d) => existsSync(d));
}

afterAll(async () => {
  await swarmlet(['lab', 'down', '--name', name]);
  await destroyLabsByPrefix(name, '/run/swarmlet/lab');
});

test('lab up, shell, a service across hosts, down', async () => {
  const up = await swarmlet(['lab', 'up', '--hosts', '3', '--managers', '1', '--name', name]);
  expect(up.stderr).not.toMatch(/Error/);
  expect(up.code).toBe(0);
  expect(up.stdout).toMatch(new RegExp(`h1\\s+${name}-h1\\s+198\\.51\\.100\\.11\\s+manager \\(leader\\)`));
  expect(up.stdout).toMatch(new RegExp(`h3\\s+${name}-h3\\s+198\\.51\\.100\\.13\\s+worker`));
  expect((await labNetns()).sort()).toEqual([`${name}-h1`, `${name}-h2`, `${name}-h3`, `${name}-ul`]);

  // Refusals: one line each, exit 1, nothing made or removed.
  const again = await swarmlet(['lab', 'up', '--name', name]);
  expect([again.code, again.stderr]).toEqual([1, `Error: a lab with prefix ${name} exists (${(await labNetns()).join(', ')}); remove it first (swarmlet lab down --name ${name})\n`]);
  const badHost = await swarmlet(['lab', 'shell', '--name', name, 'h7', '--', 'true']);
  expect([badHost.code, badHost.stderr]).toEqual([1, `Error: lab ${name} has no host "h7": its hosts are h1, h2, h3\n`]);
  const other = `${name}x`;
  const tooMany = await swarmlet(['lab', 'up', '--hosts', '2', '--managers', '3', '--name', other]);
  expect([tooMany.code, tooMany.stderr]).toEqual([1, 'Error: --managers must be a whole number from 1 to --hosts (2), not 3\n']);
  const notRoot = await runCommand(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, main, 'lab', 'up', '--name', other]);
  expect([notRoot.code, notRoot.stderr]).toEqual([1, 'Error: swarmlet lab must run as root: it makes network namespaces, a bridge and cgroups (try sudo)\n']);
  // An up that fails halfway (h1's daemon cannot start its etcd member, so init fails) removes what it made.
  const failed = await runCommand([process.execPath, main, 'lab', 'up', '--hosts', '1', '--name', other], { env: { SWARMLET_ETCD_BINARY: '/nonexistent/etcd' }, timeoutMs: 120_000 });
  expect(failed.code).toBe(1);
  expect(failed.stderr.split('\n').filter((l) => l.startsWith('Error'))).toHaveLength(1);
  expect(failed.stderr).toMatch(new RegExp(`\nError: lab ${other} was not made \\(nothing of it is left\\): swarmlet init --advertise-addr 198\\.51\\.100\\.11 on ${other}-h1 exited 1: Error: .*etcd did not start.*\n$`));
  expect((await listNetns()).filter((n) => n.startsWith(`${other}-`))).toEqual([]);
  expect(existsSync(`/run/swarmlet/lab/${other}`)).toBe(false);
  expect(labCgroups(other)).toEqual([]);

  // One command on a host: the CLI there talks to that host's daemon; the exit code comes back.
  const ls = await onHost('h1', ['swarmlet', 'node', 'ls']);
  expect(ls.split('\n').filter((l) => / Ready /.test(l))).toHaveLength(3);
  expect(ls).toMatch(/Leader/);
  const code = await swarmlet(['lab', 'shell', '--name', name, `${name}-h2`, '--', 'sh', '-c', 'echo "$SWARMLET_HOST"; exit 7']);
  expect([code.code, code.stdout]).toEqual([7, `unix://${stateDir}/h2.sock\n`]);

  // An interactive shell on a real pty: the prompt names the host, the environment is set, `exit N` is the exit code.
  const pty = await runCommand(['script', '-qec', `${process.execPath} ${main} lab shell --name ${name} 2`, '/dev/null'], {
    input: 'echo "env=$SWARMLET_HOST"\nswarmlet info | grep "Is Manager"\nexit 3\n',
    timeoutMs: 60_000,
  });
  expect(pty.stdout).toContain(`[${name}-h2] `);
  expect(pty.stdout).toContain(`env=unix://${stateDir}/h2.sock`);
  expect(pty.stdout).toMatch(/Is Manager: false/);
  expect(pty.code).toBe(3);

  // A service on h3 answers by name a task on h2, over an overlay.
  await onHost('h1', ['swarmlet', 'network', 'create', '-d', 'overlay', 'front']);
  await onHost('h1', ['swarmlet', 'service', 'create', '--name', 'web', '--network', 'front', '--constraint', `node.hostname==${name}-h3`, 'exec:/', process.execPath, whoami, '8000']);
  await onHost('h1', ['swarmlet', 'service', 'create', '--name', 'probe', '--network', 'front', '--constraint', `node.hostname==${name}-h2`, 'exec:/', 'sleep', '1000']);
  const [probeTask] = (await onHost('h1', ['swarmlet', 'service', 'ps', '-q', 'probe'])).trim().split('\n');
  const [webTask] = (await onHost('h1', ['swarmlet', 'service', 'ps', '-q', 'web'])).trim().split('\n');
  let answer = '';
  for (let i = 0; i < 50 && answer === ''; i++) {
    const r = await swarmlet(['lab', 'shell', '--name', name, 'h2', '--', 'swarmlet', 'exec', probeTask, 'curl', '-s', '-m', '2', 'http://web:8000/']);
    answer = r.code === 0 ? r.stdout.trim() : '';
    if (answer === '') await new Promise((res) => setTimeout(res, 200));
  }
  expect(answer).toBe(webTask.slice(0, 12));

  // Down leaves nothing: namespaces, state, cgroups, processes; and a second down is fine.
  const down = await swarmlet(['lab', 'down', '--name', name]);
  expect(down.code).toBe(0);
  expect(down.stdout).toMatch(new RegExp(`^removed lab ${name} `));
  expect(await labNetns()).toEqual([]);
  expect(existsSync(stateDir)).toBe(false);
  expect(labCgroups()).toEqual([]);
  const left = (await runCommand(['pgrep', '-f', stateDir])).stdout.trim();
  expect(left).toBe('');
  const twice = await swarmlet(['lab', 'down', '--name', name]);
  expect([twice.code, twice.stdout]).toEqual([0, `no lab ${name}: nothing to remove\n`]);
});
