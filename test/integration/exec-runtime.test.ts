/**
 * The exec runtime with real processes, namespaces and cgroups (run through test/run.sh, as root).
 * Its cgroups live under a parent unique to this run, removed at the end, also when a test fails.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { execFileSync, spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import pino from 'pino';
import { SwarmletError } from '../../services/common/errors';
import { ContainerSpec, Task, TaskState } from '../../services/gen/swarmlet/v1/types';
import { ExecRuntime } from '../../agent/runtime/exec-runtime';
import { INIT_SCRIPT } from '../../agent/runtime/shim';
import { SHIM_NAME, SHIM_PROGRAM } from '../../agent/runtime/shim-program';
import { detectCgroups, removeCgroupParent, type CgroupLayout } from '../../agent/runtime/cgroups';
import { RuntimeTaskState } from '../../agent/runtime/runtime';
import { rejection } from '../support/rejection';
import { uniqueSuffix } from '../support/unique';
import { exited, waitFor } from '../support/runtime-wait';
import { readTaskOutput } from '../support/task-output';
import { descendantsOf } from '../lab/process-tree';

const log = pino({ level: 'silent' });
const parent = `swarmlet-test-${uniqueSuffix(6)}`;
let stateDir: string;
let runtime: ExecRuntime;
let layout: CgroupLayout;
let seq = 0;

function task(container: Partial<ContainerSpec>, limits?: { memoryBytes?: number; nanoCpus?: number }): Task {
  seq += 1;
  const id = `t${process.pid}x${seq}abcdefghij`;
  return {
    id,
    serviceId: 'svc',
    serviceName: 'web',
    slot: seq,
    nodeId: 'node1',
    specVersion: 1,
    desiredState: TaskState.TASK_STATE_RUNNING,
    createdAt: '',
    spec: {
      networkAliases: [],
      container: { image: 'exec:/', command: [], args: [], env: [], dir: '', user: '', hostname: '', stopGracePeriodMs: 0, mounts: [], pull: 0, tty: false, openStdin: false, secrets: [], configs: [], ...container },
      resources: limits ? { limits: { memoryBytes: limits.memoryBytes ?? 0, nanoCpus: limits.nanoCpus ?? 0, pids: 0 } } : undefined,
      forceUpdate: 0,
      networks: [],
    },
    networks: [],
  };
}

const output = (id: string) => readTaskOutput(join(stateDir, id, 'output.log'));

async function run(t: Task): Promise<RuntimeTaskState> {
  await runtime.prepare(t);
  await runtime.start(t.id);
  return runtime.inspect(t.id);
}


function taskCgroupFile(controller: string, id: string, file: string): string {
  if (layout.version === 2) return readFileSync(join(layout.root, parent, id, file), 'utf8').trim();
  return readFileSync(join(layout.mounts[controller as 'memory']!, parent, id, file), 'utf8').trim();
}

beforeAll(async () => {
  stateDir = mkdtempSync(join(tmpdir(), 'swarmlet-exec-'));
  layout = await detectCgroups();
  runtime = new ExecRuntime({ stateDir, cgroupParent: parent, log });
});

afterAll(async () => {
  try {
    for (const id of await runtime.list()) {
      await runtime.stop(id, 0).catch(() => undefined);
      await runtime.remove(id).catch(() => undefined);
    }
  } finally {
    await removeCgroupParent(parent);
    rmSync(stateDir, { recursive: true, force: true });
  }
  for (const dir of ['memory', 'cpu', 'pids', 'systemd', 'unified', '']) {
    expect(existsSync(join('/sys/fs/cgroup', dir, parent))).toBe(false);
  }
});

describe('ExecRuntime', () => {
  test('runs a task in its own namespaces, holds it until start, and stops it by SIGTERM at once', async () => {
    const t = task({ command: ['sh', '-c'], args: ['echo hi; echo "pid=$$"; echo "host=$(hostname)"; ip -o link | cut -d: -f2; sleep 30'] });
    await runtime.prepare(t);
    await runtime.prepare(t); // idempotent
    const created = await runtime.inspect(t.id);
    expect(created.state).toBe('created');
    expect(created.pid).toBeGreaterThan(0);
    // The network namespace exists before start, for networking to attach interfaces to.
    expect(readlinkSync(`/proc/${created.pid}/ns/net`)).not.toBe(readlinkSync('/proc/self/ns/net'));
    // Its lo is up before the command starts, brought up by the agent's namespace helper: pid 1 runs no `ip` for it.
    expect(execFileSync('nsenter', [`--net=/proc/${created.pid}/ns/net`, 'ip', '-o', 'link', 'show', 'lo'], { encoding: 'utf8' })).toMatch(/<[^>]*\bUP\b[^>]*>/);
    expect(INIT_SCRIPT).not.toMatch(/\bip\s+link\b/);
    expect(output(t.id)).toBe('');

    await runtime.start(t.id);
    const running = await runtime.inspect(t.id);
    expect(running).toMatchObject({ state: 'running', pid: created.pid });
    expect(running.startedAt).toBeDefined();
    await waitFor('output', async () => /lo\s*$/m.test(output(t.id)));
    const out = output(t.id);
    expect(out).toMatch(/^hi$/m);
    expect(Number(/pid=(\d+)/.exec(out)![1])).toBeLessThan(10);
    expect(out).toContain(`host=${t.id.slice(0, 12)}`);
    expect(out.split('\n').filter((l) => l.startsWith(' '))).toEqual([' lo']);
    // The shim is the leader of its own session: the agent's death does not take the task along.
    const shimPid = JSON.parse(readFileSync(join(stateDir, t.id, 'state.json'), 'utf8')).shim.pid as number;
    const stat = readFileSync(`/proc/${shimPid}/stat`, 'utf8');
    expect(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[3])).toBe(shimPid);

    // Ended by the SIGTERM (143), not by the SIGKILL that ends the 10 s grace period (137).
    await runtime.stop(t.id, 10000);
    const after = await runtime.inspect(t.id);
    expect(after).toMatchObject({ state: 'exited', exitCode: 143, signal: 'SIGTERM', oomKilled: false });
    expect(after.finishedAt).toBeDefined();
    expect(await runtime.list()).toContain(t.id);
    await runtime.remove(t.id);
    expect(await runtime.inspect(t.id)).toEqual({ state: 'missing' });
    expect(await runtime.list()).not.toContain(t.id);
    expect(existsSync(join(stateDir, t.id))).toBe(false);
  });

  test('the shim is started off the agent\'s process (by the spawning helper), and makes its fifos itself', async () => {
    const t = task({ command: ['sleep', '30'], openStdin: true });
    await runtime.prepare(t);
    const state = JSON.parse(readFileSync(join(stateDir, t.id, 'state.json'), 'utf8')) as { shim: { pid: number } };
    const stat = readFileSync(`/proc/${state.shim.pid}/stat`, 'utf8');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    // A spawn from the agent's own process would hold its event loop until the shim had exec'ed.
    expect(ppid).not.toBe(process.pid);
    expect(statSync(join(stateDir, t.id, 'start.fifo')).isFIFO()).toBe(true);
    expect(statSync(join(stateDir, t.id, 'stdin.fifo')).isFIFO()).toBe(true);
    await runtime.start(t.id);
    expect((await runtime.inspect(t.id)).state).toBe('running');
    await runtime.stop(t.id, 0);
    await runtime.remove(t.id);
  });

  test('the shim loads no module before its child execs the task: the fifos are made without POSIX', () => {
    // A POSIX.pm that refuses to load, ahead of perl's own: the shim must not need it (POSIX alone costs twice perl's start).
    const dir = mkdtempSync(join(tmpdir(), 'shim-'));
    try {
      mkdirSync(join(dir, 'lib'));
      writeFileSync(join(dir, 'lib', 'POSIX.pm'), 'die "POSIX loaded\\n";\n');
      const out = execFileSync('perl', ['-e', SHIM_PROGRAM, SHIM_NAME, 'sh', '-c', 'test -p "$SL_DIR/start.fifo" && test -p "$SL_DIR/stdin.fifo" && echo fifos'], {
        encoding: 'utf8',
        env: { PATH: process.env.PATH, PERL5LIB: join(dir, 'lib'), SL_DIR: dir, SL_STDIN: '1' },
      });
      expect(out).toMatch(/ stdout F fifos\n$/);
      expect(readFileSync(join(dir, 'exitcode'), 'utf8')).toBe('0\n');
      expect(statSync(join(dir, 'start.fifo')).mode & 0o7777).toBe(0o600);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the shim makes an oci task\'s private mount namespace and overlay root itself (SL_ROOTFS_OVERLAY): no unshare, sh or mount process', () => {
    const dir = mkdtempSync(join(tmpdir(), 'shim-'));
    try {
      for (const sub of ['lower', 'upper', 'work', 'rootfs']) mkdirSync(join(dir, sub));
      writeFileSync(join(dir, 'lower', 'hello'), 'from the image\n');
      const script = 'cat "$SL_DIR/rootfs/hello"; echo changed > "$SL_DIR/rootfs/hello"; grep -c " $SL_DIR/rootfs .* overlay " /proc/self/mountinfo';
      const out = execFileSync('perl', ['-e', SHIM_PROGRAM, SHIM_NAME, 'sh', '-c', script], {
        encoding: 'utf8',
        env: { PATH: process.env.PATH, SL_DIR: dir, SL_LOWER: join(dir, 'lower'), SL_ROOTFS_OVERLAY: '1' },
      });
      expect(out.split('\n').filter(Boolean).map((l) => l.split(' ').slice(3).join(' '))).toEqual(['from the image', '1']);
      // The write went to the upper layer; the mount was the task's alone, and went with it.
      expect(readFileSync(join(dir, 'upper', 'hello'), 'utf8')).toBe('changed\n');
      expect(readFileSync(join(dir, 'lower', 'hello'), 'utf8')).toBe('from the image\n');
      expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(join(dir, 'rootfs'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a running task is its shim, unshare, its pid 1 and the command: no shell shim, no separate log writer', async () => {
    const t = task({ command: ['sleep', '30'] });
    await runtime.prepare(t);
    await runtime.start(t.id);
    const state = JSON.parse(readFileSync(join(stateDir, t.id, 'state.json'), 'utf8')) as { shim: { pid: number }; init: { pid: number } };
    const comm = (pid: number) => readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    const tree = descendantsOf([state.shim.pid]);
    // The command's process execs env and sleep in turn (pid 1 may run `sleep 0.01` meanwhile): wait for the last.
    const cmdline = (pid: number) => { try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8'); } catch { return ''; } };
    await waitFor('the command to exec', async () => descendantsOf([state.shim.pid]).some((pid) => cmdline(pid) === 'sleep\u000030\u0000'));
    await waitFor('pid 1 to wait for it', async () => descendantsOf([state.shim.pid]).length === 3);
    expect([state.shim.pid, ...descendantsOf([state.shim.pid])].map(comm).sort()).toEqual(['perl', 'sh', 'sleep', 'unshare'].sort());
    expect(tree).toContain(state.init.pid);
    await runtime.stop(t.id, 0);
    await runtime.remove(t.id);
  });

  test('a stop right after start still reaches the command with SIGTERM', async () => {
    // The command's process is a copy of pid 1's shell, with its traps, until it execs: a signal
    // forwarded in that window would be lost and the task killed at the end of its grace period.
    for (let i = 0; i < 5; i++) {
      const t = task({ command: ['sleep', '30'] });
      await runtime.prepare(t);
      await runtime.start(t.id);
      await runtime.stop(t.id, 10000);
      expect(await runtime.inspect(t.id)).toMatchObject({ state: 'exited', exitCode: 143, signal: 'SIGTERM' });
      await runtime.remove(t.id);
    }
  });

  test('reports exit codes', async () => {
    const t = task({ command: [], args: ['sh', '-c', 'exit 3'] });
    await run(t);
    expect(await exited(runtime, t.id)).toMatchObject({ state: 'exited', exitCode: 3, oomKilled: false });
    expect((await exited(runtime, t.id)).signal).toBeUndefined();
    await runtime.remove(t.id);
  });

  test('kills a task that ignores SIGTERM after its grace period', async () => {
    const t = task({ command: ['sh', '-c', 'trap "" TERM; echo ready; while :; do sleep 0.1; done'] });
    await run(t);
    await waitFor('ready', async () => output(t.id).includes('ready'));
    await runtime.stop(t.id, 500);
    expect(await runtime.inspect(t.id)).toMatchObject({ state: 'exited', exitCode: 137, signal: 'SIGKILL' });
    await runtime.remove(t.id);
  });

  test('a task past its memory limit is OOM-killed, and says so', async () => {
    const t = task({ command: ['sh', '-c', 'x=$(head -c 100000000 /dev/zero | tr "\\0" a); echo survived; sleep 1'] }, { memoryBytes: 32 * 1024 * 1024 });
    await run(t);
    expect(taskCgroupFile('memory', t.id, layout.version === 1 ? 'memory.limit_in_bytes' : 'memory.max')).toBe(String(32 * 1024 * 1024));
    const end = await exited(runtime, t.id);
    expect(end.oomKilled).toBe(true);
    expect(end.exitCode).not.toBe(0);
    expect(output(t.id)).not.toContain('survived');
    await runtime.remove(t.id);
  });

  test('writes the CPU limit to the cgroup', async () => {
    const t = task({ command: ['sleep', '30'] }, { nanoCpus: 500_000_000 });
    await runtime.prepare(t);
    if (layout.version === 1) {
      expect(taskCgroupFile('cpu', t.id, 'cpu.cfs_period_us')).toBe('100000');
      expect(taskCgroupFile('cpu', t.id, 'cpu.cfs_quota_us')).toBe('50000');
    } else {
      expect(taskCgroupFile('cpu', t.id, 'cpu.max')).toBe('50000 100000');
    }
    // The task's processes are in its cgroup before the command runs.
    const { pid } = await runtime.inspect(t.id);
    expect(readFileSync(`/proc/${pid}/cgroup`, 'utf8')).toContain(`/${parent}/${t.id}`);
    await runtime.stop(t.id, 1000);
    expect(await runtime.inspect(t.id)).toMatchObject({ state: 'exited', exitCode: 137 });
    await runtime.remove(t.id);
  });

  test('another runtime on the same state dir re-adopts a running task and sees its exit code', async () => {
    const t = task({ command: ['sh', '-c', 'read line < /dev/null; sleep 1.5; exit 7'] });
    const first = await run(t);
    const other = new ExecRuntime({ stateDir, cgroupParent: parent, log });
    expect(await other.list()).toContain(t.id);
    expect(await other.inspect(t.id)).toMatchObject({ state: 'running', pid: first.pid });
    expect(await exited(other, t.id)).toMatchObject({ exitCode: 7, pid: first.pid });
    await other.remove(t.id);
  });

  test('a task outlives the agent that started it (its whole process group killed)', async () => {
    const t = task({ command: ['sh', '-c', 'sleep 2; exit 9'] });
    // A stand-in agent: another Node process that loads the runtime from its TypeScript source.
    const agent = `
      const fs = require('fs'), ts = require('typescript');
      require.extensions['.ts'] = (m, file) => m._compile(ts.transpileModule(fs.readFileSync(file, 'utf8'), {
        compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true } }).outputText, file);
      const { ExecRuntime } = require(${JSON.stringify(join(__dirname, '../../agent/runtime/exec-runtime.ts'))});
      const rt = new ExecRuntime({ stateDir: process.argv[1], cgroupParent: process.argv[2], log: require('pino')({ level: 'silent' }) });
      const task = JSON.parse(process.argv[3]);
      setInterval(() => {}, 1000); // as a daemon's sockets would, this keeps it alive (the runtime's timers do not)
      rt.prepare(task).then(() => rt.start(task.id)).then(() => console.log('started'),
        (err) => { console.error(err); process.exit(1); });`;
    const child = spawn(process.execPath, ['-e', agent, stateDir, parent, JSON.stringify(t)], { cwd: join(__dirname, '../..'), detached: true, stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('started') && resolve());
      child.on('exit', (code) => reject(new Error(`the stand-in agent exited with ${code}`)));
    });
    process.kill(-child.pid!, 'SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const after = await runtime.inspect(t.id);
    expect(after.state).toBe('running');
    expect(await exited(runtime, t.id)).toMatchObject({ exitCode: 9, pid: after.pid });
    await runtime.remove(t.id);
  });

  test('runs as the given user, in the given workdir, with the given environment', async () => {
    const t = task({
      command: ['sh', '-c', 'echo "uid=$(id -u) gid=$(id -g) pwd=$(pwd) foo=$FOO path=$PATH host=$HOSTNAME home=$HOME"'],
      user: 'nobody',
      dir: '/tmp',
      env: ['FOO=bar baz'],
      hostname: 'web-1',
    });
    await run(t);
    await exited(runtime, t.id);
    const out = output(t.id);
    expect(out).toContain('uid=65534 gid=65534 pwd=/tmp foo=bar baz path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin host=web-1');
    await runtime.remove(t.id);
  });

  test('refuses what cannot run, with a clear message, and leaves nothing behind', async () => {
    const bad: [Partial<ContainerSpec>, RegExp][] = [
      [{ command: ['true'], user: 'nosuchuser' }, /unable to find user nosuchuser/],
      [{ command: ['true'], image: 'exec:/nonexistent-root' }, /nonexistent-root does not exist/],
      [{ command: ['true'], image: 'nginx:latest' }, /exec:\//],
      [{ command: [], args: [] }, /no command/],
      [{ command: ['no-such-command-here'] }, /executable file not found/],
      [{ command: ['true'], dir: '/no/such/dir' }, /workdir \/no\/such\/dir does not exist/],
    ];
    for (const [spec, message] of bad) {
      const t = task(spec);
      const err = await rejection(runtime.prepare(t));
      expect(err.kind).toBe('InvalidArgument');
      expect(err.message).toMatch(message);
      expect(await runtime.inspect(t.id)).toEqual({ state: 'missing' });
      expect(await runtime.list()).not.toContain(t.id);
    }
  });

  test('exec runs inside the task\'s namespaces, with a timeout', async () => {
    const t = task({ command: ['sleep', '30'], hostname: 'checked' });
    await run(t);
    expect(await runtime.exec(t.id, ['hostname'], 5000)).toEqual({ exitCode: 0, output: 'checked\n' });
    expect(await runtime.exec(t.id, ['sh', '-c', 'ip -o link | wc -l; exit 4'], 5000)).toEqual({ exitCode: 4, output: '1\n' });
    const ps = await runtime.exec(t.id, ['sh', '-c', 'cat /proc/1/cmdline | tr "\\0" " "'], 5000);
    expect(ps.output).toContain('swarmlet-init');
    const slow = await runtime.exec(t.id, ['sleep', '10'], 300);
    expect(slow).toMatchObject({ exitCode: -1, output: expect.stringMatching(/timed out after 300 ms$/) });
    const big = await runtime.exec(t.id, ['sh', '-c', 'head -c 10000 /dev/zero | tr "\\0" x'], 5000);
    expect(big.output.length).toBe(4096);
    await runtime.stop(t.id, 1000);
    await expect(runtime.exec(t.id, ['true'], 1000)).rejects.toThrow(/not running/);
    await runtime.remove(t.id);
  });

  test('logs: tail, then follow until aborted', async () => {
    const t = task({ command: ['sh', '-c', 'for i in 1 2 3 4 5; do echo line$i; done; sleep 0.5; echo later; printf partial; sleep 30'] });
    await run(t);
    await waitFor('lines', async () => output(t.id).includes('line5'));
    const collect = async (tail: number) => {
      const lines: string[] = [];
      for await (const l of runtime.logs(t.id, { tail, follow: false, signal: new AbortController().signal })) lines.push(l.text);
      return lines;
    };
    expect(await collect(2)).toEqual(['line4', 'line5']);
    expect((await collect(-1)).slice(0, 5)).toEqual(['line1', 'line2', 'line3', 'line4', 'line5']);
    expect(await collect(0)).toEqual([]);

    const controller = new AbortController();
    const followed: string[] = [];
    const done = (async () => {
      for await (const l of runtime.logs(t.id, { tail: 1, follow: true, signal: controller.signal })) {
        followed.push(l.text);
        if (l.text === 'later') controller.abort();
      }
    })();
    await done;
    expect(followed).toEqual(['line5', 'later']);
    await waitFor('partial', async () => output(t.id).endsWith('partial'));
    expect((await collect(1))).toEqual(['partial']);
    await runtime.stop(t.id, 1000);
    await runtime.remove(t.id);
    await expect(collect(1)).rejects.toThrow(/no logs/);
  });

  test('logs: each line with its time and stream; a line without its newline is kept as a part; the last lines are there at exit', async () => {
    // The rest of the line comes only once the part is in the log (a file the test makes): no race with the writer's wait.
    const go = join(stateDir, `go-${uniqueSuffix(6)}`);
    const t = task({ command: ['sh', '-c', `echo out; sleep 0.1; echo err >&2; sleep 0.1; printf "no newline"; while [ ! -e ${go} ]; do sleep 0.02; done; echo " then one"; echo last`] });
    const before = new Date().toISOString();
    await run(t);
    await waitFor('the part of a line', async () => output(t.id).endsWith('no newline'));
    writeFileSync(go, '');
    await exited(runtime, t.id);
    const records = [];
    for await (const r of runtime.logs(t.id, { tail: -1, follow: false, signal: new AbortController().signal })) records.push(r);
    expect(records.map(({ stream, partial, text }) => ({ stream, partial, text }))).toEqual([
      { stream: 'stdout', partial: false, text: 'out' },
      { stream: 'stderr', partial: false, text: 'err' },
      { stream: 'stdout', partial: true, text: 'no newline' },
      { stream: 'stdout', partial: false, text: ' then one' },
      { stream: 'stdout', partial: false, text: 'last' },
    ]);
    for (const r of records) expect(r.time >= before.replace(/Z$/, '') && r.time.length === 30).toBe(true);
    const times = records.map((r) => r.time);
    expect([...times].sort()).toEqual(times);
    // since: from the stderr line on.
    const since = [];
    for await (const r of runtime.logs(t.id, { tail: -1, follow: false, since: records[1].time, signal: new AbortController().signal })) since.push(r.text);
    expect(since).toEqual(['err', 'no newline', ' then one', 'last']);
    await runtime.remove(t.id);
  });

  test('a following reader ends when the task is removed', async () => {
    const t = task({ command: ['sh', '-c', 'echo one; sleep 30'] });
    await run(t);
    await waitFor('one', async () => output(t.id).includes('one'));
    const lines: string[] = [];
    const done = (async () => {
      for await (const l of runtime.logs(t.id, { tail: -1, follow: true, signal: new AbortController().signal })) lines.push(l.text);
    })();
    await waitFor('first line', async () => lines.length > 0);
    await runtime.stop(t.id, 1000);
    await runtime.remove(t.id);
    await done;
    expect(lines).toEqual(['one']);
  });

  test('works on a cgroup v2 hierarchy (on a v1 machine, its controller-less cgroup2 mount stands in)', async () => {
    const unified = '/sys/fs/cgroup/unified';
    if (layout.version === 2 || !existsSync(join(unified, 'cgroup.procs'))) return; // v2 machines run every test on v2
    const v2layout = await detectCgroups(unified);
    expect(v2layout).toEqual({ version: 2, root: unified, controllers: [] });
    const v2parent = `${parent}-v2`;
    const rt = new ExecRuntime({ stateDir, cgroupParent: v2parent, log, cgroups: v2layout });
    try {
      const t = task({ command: ['sleep', '30'] });
      await rt.prepare(t);
      await rt.start(t.id);
      const { pid } = await rt.inspect(t.id);
      expect(readFileSync(`/proc/${pid}/cgroup`, 'utf8')).toMatch(new RegExp(`^0::/${v2parent}/${t.id}$`, 'm'));
      await rt.stop(t.id, 5000);
      expect(await rt.inspect(t.id)).toMatchObject({ state: 'exited', exitCode: 143, oomKilled: false });
      await rt.remove(t.id);
      expect(existsSync(join(unified, v2parent, t.id))).toBe(false);
      const limited = task({ command: ['true'] }, { memoryBytes: 64 * 1024 * 1024 });
      const err = await rejection(rt.prepare(limited));
      expect(err.message).toMatch(/no memory cgroup controller/);
      expect(await rt.list()).toEqual([]);
    } finally {
      await removeCgroupParent(v2parent, v2layout);
    }
    expect(existsSync(join(unified, v2parent))).toBe(false);
  });

  test('a task on the host network keeps the host\'s network namespace, and only that one', async () => {
    const host = {
      networkId: 'n-host', networkName: 'host', driver: 'host', address: '', mac: '', gateway: '', vni: 0, internal: false, options: {},
    };
    const t = { ...task({ command: ['sh', '-c', 'echo "host=$(hostname)"; sleep 30'] }), networks: [host] };
    const own = { ...task({ command: ['sleep', '30'] }), networks: [{ ...host, networkId: 'n-none', networkName: 'none', driver: 'none' }] };
    await runtime.prepare(t);
    await runtime.prepare(own);
    const { pid } = await runtime.inspect(t.id);
    const ownPid = (await runtime.inspect(own.id)).pid;
    expect(readlinkSync(`/proc/${pid}/ns/net`)).toBe(readlinkSync('/proc/self/ns/net'));
    expect(readlinkSync(`/proc/${ownPid}/ns/net`)).not.toBe(readlinkSync('/proc/self/ns/net'));
    // Its other namespaces are its own all the same.
    for (const ns of ['pid', 'mnt', 'uts', 'ipc']) expect(readlinkSync(`/proc/${pid}/ns/${ns}`)).not.toBe(readlinkSync(`/proc/self/ns/${ns}`));
    await runtime.start(t.id);
    await runtime.start(own.id);
    await waitFor('output', async () => output(t.id).includes('host='));
    expect(output(t.id)).toBe(`host=${t.id.slice(0, 12)}\n`);
    // A health check's exec sees the host's interfaces (a veth made here); the none task sees lo alone.
    const veth = `slh${process.pid % 100000}`;
    const ip = (args: string[]) =>
      new Promise<number | null>((resolve, reject) => {
        const child = spawn('ip', args, { stdio: 'ignore' });
        child.on('error', reject);
        child.on('close', resolve);
      });
    expect(await ip(['link', 'add', veth, 'type', 'veth', 'peer', 'name', `${veth}p`])).toBe(0);
    try {
      const links = (out: string) => out.trim().split('\n').map((l) => l.split(':')[1].trim().split('@')[0]).sort();
      const inside = await runtime.exec(t.id, ['ip', '-o', 'link'], 5000);
      expect(inside.exitCode).toBe(0);
      expect(links(inside.output)).toContain(veth);
      const none = await runtime.exec(own.id, ['ip', '-o', 'link'], 5000);
      expect(links(none.output)).toEqual(['lo']);
    } finally {
      await ip(['link', 'del', veth]);
    }
    for (const x of [t, own]) {
      await runtime.stop(x.id, 5000);
      expect(await runtime.inspect(x.id)).toMatchObject({ state: 'exited', exitCode: 143 });
      await runtime.remove(x.id);
    }
  });

  test('chroots into an exec:/path root', async () => {
    // A tiny root: dash, sleep and the libraries they need, and a marker file.
    const root = mkdtempSync(join(tmpdir(), 'swarmlet-root-'));
    chmodSync(root, 0o755);
    try {
      for (const file of ['/bin/dash', '/lib/x86_64-linux-gnu/libc.so.6', '/lib64/ld-linux-x86-64.so.2']) {
        if (!existsSync(file)) return; // another architecture: nothing to check with
        mkdirSync(join(root, dirname(file)), { recursive: true });
        copyFileSync(file, join(root, file));
      }
      mkdirSync(join(root, 'bin'), { recursive: true });
      copyFileSync('/bin/dash', join(root, 'bin/sh'));
      copyFileSync('/bin/sleep', join(root, 'bin/sleep'));
      mkdirSync(join(root, 'proc'));
      mkdirSync(join(root, 'work'));
      writeFileSync(join(root, 'marker'), 'inside the root\n');
      const script = 'read l < /marker; echo "$l pwd=$PWD"; while read k v rest; do [ "$k" = Uid: ] && echo "uid=$v"; done < /proc/self/status; sleep 30';
      const t = task({ image: `exec:${root}`, command: ['sh', '-c', script], dir: '/work', user: '1234:1234' });
      await run(t);
      await waitFor('output', async () => output(t.id).includes('uid='));
      expect(output(t.id)).toBe('inside the root pwd=/work\nuid=1234\n');
      const inside = await runtime.exec(t.id, ['sh', '-c', 'read l < /marker; echo $l; echo $PWD'], 5000);
      expect(inside).toEqual({ exitCode: 0, output: 'inside the root\n/work\n' });
      await runtime.stop(t.id, 5000);
      expect(await runtime.inspect(t.id)).toMatchObject({ exitCode: 143 });
      await runtime.remove(t.id);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('a task on an overlay or user-defined bridge sees the embedded DNS in /etc/resolv.conf; others and the host do not', async () => {
    const hostResolv = readFileSync('/etc/resolv.conf', 'utf8');
    const attachment = (driver: string, networkName: string) => ({ networkId: networkName, networkName, driver, address: '10.0.1.5/24', mac: '', gateway: '', vni: 0, internal: false, options: {} });
    const onOverlay = { ...task({ command: ['sh', '-c', 'cat /etc/resolv.conf; sleep 30'] }), networks: [attachment('overlay', 'front')] };
    const onBridge = { ...task({ command: ['sh', '-c', 'cat /etc/resolv.conf; sleep 30'] }), networks: [attachment('bridge', 'bridge')] };
    await run(onOverlay);
    await run(onBridge);
    await waitFor('output', async () => output(onOverlay.id).includes('ndots') && output(onBridge.id).length > 0);
    expect(output(onOverlay.id)).toBe('nameserver 127.0.0.11\noptions ndots:0\n');
    expect(await runtime.exec(onOverlay.id, ['cat', '/etc/resolv.conf'], 5000)).toEqual({ exitCode: 0, output: 'nameserver 127.0.0.11\noptions ndots:0\n' });
    expect(output(onBridge.id)).toBe(hostResolv);
    expect(readFileSync('/etc/resolv.conf', 'utf8')).toBe(hostResolv);
    for (const t of [onOverlay, onBridge]) {
      await runtime.stop(t.id, 5000);
      await runtime.remove(t.id);
    }
  });
});
