/**
 * Terminals end to end, as a user types them, on a one-host swarm in a lab namespace: `swarmlet
 * exec -it` and `swarmlet attach` run in a real terminal (tmux), against the real daemon, for
 * tasks of the exec runtime and of an OCI image (busybox-static, from a registry in the lab): a
 * prompt appears, a typed command's output comes back, a window resize is seen by `stty size`,
 * Ctrl-C reaches the process, Ctrl-D ends the session with its exit code, Ctrl-P Ctrl-Q detaches.
 * Without -t, stdout and stderr stay apart and stdin is piped. A `-t` service keeps running, and
 * its shell outlives a daemon restart.
 * Run through test/run.sh.
 */
import { apiServiceTasks } from './api-reads';
import * as grpc from '@grpc/grpc-js';
import { Lab, LabClient, LabHost, requireBuiltCli } from '../lab/lab';
import { LocalNodeClient, TerminalInput, TerminalOutput } from '../../services/gen/swarmlet/v1/control';
import { busyboxRegistry, formSwarm, sw, waitFor } from './cluster-helpers';
import type { TestRegistry } from '../support/registry';
import { Tmux } from '../support/tmux';
import { uniqueSuffix } from '../support/unique';
import { shellJoin } from '../../agent/runtime/terminal-plans';

interface TaskJson {
  id: string;
  slot?: number;
  serviceName?: string;
  desiredState?: string;
  status?: { state?: string };
}

const prefix = `swt${uniqueSuffix()}`;
const REGISTRY = '198.51.100.200:5000';
let lab: Lab;
let client: LabClient;
let registry: TestRegistry;
let h1: LabHost;
let image: string;
const terminals: Tmux[] = [];

const tasksOf = async (service: string): Promise<TaskJson[]> => (await apiServiceTasks(h1, service)) as TaskJson[];

/** The running task of a one-replica service, once it runs. */
const runningTask = (service: string): Promise<TaskJson> =>
  waitFor(`a running task of ${service}`, async () => (await tasksOf(service)).find((t) => t.desiredState === 'TASK_STATE_RUNNING' && t.status?.state === 'TASK_STATE_RUNNING'), 60000, 300);

/** A tmux terminal running `swarmlet ARGS...` against h1's daemon, then printing its exit code. */
async function terminal(args: string[], cols = 100, rows = 30): Promise<Tmux> {
  const cli = shellJoin(['ip', 'netns', 'exec', h1.netns, process.execPath, requireBuiltCli(lab.repoRoot), '-H', h1.socket, ...args]);
  const t = await Tmux.start(`${prefix}-${terminals.length}`, `${cli}; echo "EXIT=$?"; sleep 600`, cols, rows);
  terminals.push(t);
  return t;
}

/** Waits until the screen matches. */
const shows = (t: Tmux, re: RegExp, what = String(re)) =>
  waitFor(`the terminal to show ${what}`, async () => {
    const screen = await t.screen();
    return re.test(screen) ? screen : undefined;
  }, 20000, 100).catch(async (err: Error) => {
    throw new Error(`${err.message}\n--- screen ---\n${await t.screen()}\n--- ${h1.name} log ---\n${lab.logTail(h1, 20)}`);
  });

beforeAll(async () => {
  requireBuiltCli();
  lab = await Lab.create({ prefix, hosts: 1, insecureRegistries: [REGISTRY] });
  [h1] = lab.hosts;
  ({ client, registry, image } = await busyboxRegistry(lab, REGISTRY));
  await formSwarm(lab, [h1], []);
}, 180000);

afterAll(async () => {
  for (const t of terminals) await t.kill();
  await registry?.stop();
  await lab?.destroy();
}, 60000);

describe.each([
  ['exec', () => 'exec:/'],
  ['oci', () => image],
])('exec -it on the %s runtime', (kind, imageOf) => {
  test('a prompt, a typed command, a resize, Ctrl-C, then Ctrl-D ends it with exit code 0; exit 5 gives 5', async () => {
    const service = `sh${kind}`;
    await sw(lab, h1, ['service', 'create', '-d', '--name', service, imageOf(), 'sleep', '1d']);
    const task = await runningTask(service);
    const t = await terminal(['exec', '-it', `${service}.${task.slot}.${task.id}`, 'sh']);
    await shows(t, /# $/m, 'a prompt');
    await t.type('echo $((40+2))');
    await shows(t, /^42$/m);
    let size = await t.size();
    await t.type('stty size');
    await shows(t, new RegExp(`^${size.rows} ${size.cols}$`, 'm'), 'the terminal size');
    await t.resize(120, 40);
    size = await t.size();
    expect(size).toEqual({ rows: 40, cols: 120 });
    // The container's terminal takes the new size once the CLI has had its SIGWINCH and passed it on:
    // under load, a line typed right after the resize can run first. Asked again, as a user would, until it shows.
    const resized = async () => {
      if (/^40 120$/m.test(await t.screen())) return true;
      await t.type('stty size');
      return undefined;
    };
    await waitFor('the container to see the new size', resized, 20000, 1000).catch(() => undefined);
    await shows(t, /^40 120$/m, 'the new size');
    // Ctrl-C once the sleep runs: one sent while the shell still reads the line can be lost with it.
    await t.type('echo sleeping; sleep 100; echo not interrupted');
    await shows(t, /^sleeping$/m);
    await t.keys('C-c');
    await t.type('echo after ctrl-c');
    await shows(t, /^after ctrl-c$/m);
    expect(await t.screen()).not.toMatch(/^not interrupted$/m);
    await t.keys('C-d');
    await shows(t, /EXIT=0$/m);

    const t2 = await terminal(['exec', '-it', task.id.slice(0, 10), 'sh']);
    await shows(t2, /# $/m, 'a prompt');
    await t2.type('exit 5');
    await shows(t2, /EXIT=5$/m);
    await sw(lab, h1, ['service', 'rm', service]);
  }, 120000);
});

test('without -t: stdin piped with -i, stdout and stderr apart, the exit code; a bad target is one error line', async () => {
  await sw(lab, h1, ['service', 'create', '-d', '--name', 'pipes', 'exec:/', 'sleep', '1d']);
  const task = await runningTask('pipes');
  const cli = shellJoin([process.execPath, requireBuiltCli(lab.repoRoot), '-H', h1.socket]);
  const piped = await lab.exec(h1, ['sh', '-c', `echo hi | ${cli} exec -i ${task.id} cat`]);
  expect(piped).toMatchObject({ code: 0, stdout: 'hi\n' });
  const split = await lab.cli(h1, ['exec', task.id, 'sh', '-c', 'echo out; echo err >&2; exit 3']);
  expect(split).toMatchObject({ code: 3, stdout: 'out\n', stderr: 'err\n' });
  const bad = await lab.cli(h1, ['exec', 'nosuchtask', 'true']);
  expect(bad.code).toBe(1);
  expect(bad.stderr).toBe('Error: No such container: nosuchtask\n');
  await sw(lab, h1, ['service', 'rm', 'pipes']);
}, 120000);

test('service create -t keeps a shell running; attach reaches its terminal; Ctrl-P Ctrl-Q detaches and leaves it running', async () => {
  await sw(lab, h1, ['service', 'create', '-d', '-t', '--name', 'ash', image, 'sh']);
  const task = await runningTask('ash');
  // Without a tty the shell would read EOF, exit and be restarted in a loop: the first task stays.
  await new Promise((r) => setTimeout(r, 3000));
  expect((await tasksOf('ash')).map((t) => t.id)).toEqual([task.id]);
  expect((await runningTask('ash')).id).toBe(task.id);

  const t = await terminal(['attach', task.id]);
  await t.type('echo $((6*7))');
  await shows(t, /^42$/m);
  await t.type('stty size');
  const size = await t.size();
  await shows(t, new RegExp(`^${size.rows} ${size.cols}$`, 'm'), 'the terminal size');
  await t.keys('C-p', 'C-q');
  await shows(t, /EXIT=0$/m);
  expect((await runningTask('ash')).id).toBe(task.id);

  // The pty is held under the task's shim: a daemon stopped and started again finds the same shell.
  await lab.stopDaemon(h1, 'term');
  await lab.startDaemon(h1);
  await waitFor('the restarted daemon to answer', async () => ((await lab.cli(h1, ['info'])).code === 0 ? true : undefined));
  const t2 = await terminal(['attach', task.id]);
  await t2.type('echo still $((1+1))');
  await shows(t2, /^still 2$/m);
  await t2.keys('C-p', 'C-q');
  await shows(t2, /EXIT=0$/m);
  expect((await runningTask('ash')).id).toBe(task.id);
  await sw(lab, h1, ['service', 'rm', 'ash']);
}, 120000);

test('containers: run -it gives a prompt from the first byte and ends with the shell; run -dit keeps a shell that exec -it and attach reach', async () => {
  const t = await terminal(['run', '-it', '--rm', '--name', 'it1', image, 'sh']);
  await shows(t, /# $/m, 'a prompt');
  await t.type('echo $((40+2))');
  await shows(t, /^42$/m);
  await t.type('exit 7');
  await shows(t, /EXIT=7$/m);
  await waitFor('the --rm container to go', async () => ((await lab.cli(h1, ['inspect', 'it1'])).code !== 0 ? true : undefined));

  // The seeds: `docker run -dit --name alpine1 alpine ash`, then `docker attach alpine1`.
  await sw(lab, h1, ['run', '-dit', '--name', 'dit1', image, 'sh']);
  await new Promise((r) => setTimeout(r, 2000));
  expect(await sw(lab, h1, ['ps'])).toMatch(/ dit1\s*$/m);
  const e = await terminal(['exec', '-it', 'dit1', 'sh']);
  await shows(e, /# $/m, 'a prompt');
  await e.type('hostname; exit 3');
  await shows(e, /EXIT=3$/m);
  const a = await terminal(['attach', 'dit1']);
  await a.type('echo attached $((2*3))');
  await shows(a, /^attached 6$/m);
  await a.keys('C-p', 'C-q');
  await shows(a, /EXIT=0$/m);
  expect(await sw(lab, h1, ['ps'])).toMatch(/ dit1\s*$/m);
  await sw(lab, h1, ['rm', '-f', 'dit1']);
}, 120000);

/** A call's first error status (or its messages, when it ends without one). */
function callStatus(call: grpc.ClientDuplexStream<TerminalInput, TerminalOutput>, messages: TerminalInput[]): Promise<Partial<grpc.ServiceError>> {
  return new Promise((resolve) => {
    call.on('data', () => undefined);
    call.on('error', (err: grpc.ServiceError) => resolve({ code: err.code, details: err.details }));
    call.on('end', () => resolve({}));
    for (const m of messages) call.write(m);
  });
}

test('the API: a call that does not start with its start message, or names no task here, gets a clear status', async () => {
  const local = new LocalNodeClient(h1.socket, grpc.credentials.createInsecure());
  try {
    expect(await callStatus(local.exec(), [{ msg: { $case: 'stdin', value: Buffer.from('x') } }])).toEqual({
      code: grpc.status.INVALID_ARGUMENT,
      details: 'the first message of an exec must be its start',
    });
    const start = { target: 'nosuch', argv: ['sh'], tty: false, stdin: false, env: [], user: '', workdir: '', size: undefined };
    expect(await callStatus(local.exec(), [{ msg: { $case: 'exec', value: start } }])).toEqual({ code: grpc.status.NOT_FOUND, details: 'No such container: nosuch' });
    expect(await callStatus(local.attach(), [{ msg: { $case: 'attach', value: { target: 'nosuch', size: undefined } } }])).toEqual({
      code: grpc.status.NOT_FOUND,
      details: 'No such container: nosuch',
    });
    expect(await callStatus(local.exec(), [{ msg: { $case: 'exec', value: { ...start, target: '', argv: [] } } }])).toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
  } finally {
    local.close();
  }
}, 60000);
