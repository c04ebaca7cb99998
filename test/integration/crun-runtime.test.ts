/**
 * The crun runtime with real containers: an image built from busybox-static, pushed to a real
 * docker-registry on loopback and pulled by the real image store; real crun, overlayfs and
 * cgroups (run through test/run.sh, as root). Its cgroups live under a parent unique to this run,
 * removed at the end, also when a test fails.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { ImageStore } from '../../agent/images/image-store';
import { CrunRuntime } from '../../agent/runtime/crun-runtime';
import { detectCgroups, removeCgroupParent, type CgroupLayout } from '../../agent/runtime/cgroups';
import { RuntimeTaskState } from '../../agent/runtime/runtime';
import { VolumeStore } from '../../agent/volumes/volume-store';
import { isTmpfsMount, TaskFiles } from '../../agent/runtime/task-files';
import { ContainerSpec, MountType, Task, TaskState } from '../../services/gen/swarmlet/v1/types';
import { pushBusybox } from '../support/image-build';
import { TestRegistry, startRegistry } from '../support/registry';
import { rejection } from '../support/rejection';
import { uniqueSuffix } from '../support/unique';
import { exited, waitFor } from '../support/runtime-wait';
import { readTaskOutput } from '../support/task-output';

const log = pino({ level: 'silent' });
const parent = `swarmlet-test-oci-${uniqueSuffix(6)}`;
let base: string;
let stateDir: string;
let registry: TestRegistry;
let images: ImageStore;
let volumes: VolumeStore;
let runtime: CrunRuntime;
let layout: CgroupLayout;
let image: string;
let quitImage: string;
let seq = 0;

type Limits = { memoryBytes?: number; nanoCpus?: number; pids?: number };

function task(container: Partial<ContainerSpec>, limits?: Limits, networks: Task['networks'] = []): Task {
  seq += 1;
  const id = `c${uniqueSuffix(6)}x${seq}abcdefghij`;
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
      container: { image, command: [], args: [], env: [], dir: '', user: '', hostname: '', stopGracePeriodMs: 0, mounts: [], pull: 0, tty: false, openStdin: false, secrets: [], configs: [], ...container },
      resources: limits ? { limits: { memoryBytes: limits.memoryBytes ?? 0, nanoCpus: limits.nanoCpus ?? 0, pids: limits.pids ?? 0 } } : undefined,
      forceUpdate: 0,
      networks: [],
    },
    networks,
  };
}

const output = (id: string) => readTaskOutput(join(stateDir, id, 'output.log'));

async function run(t: Task): Promise<RuntimeTaskState> {
  await runtime.prepare(t);
  await runtime.start(t.id);
  return runtime.inspect(t.id);
}

function cgroupDir(controller: 'memory' | 'pids', id: string): string {
  return layout.version === 2 ? join(layout.root, parent, id) : join(layout.mounts[controller]!, parent, id);
}

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), 'swl-crun-'));
  stateDir = join(base, 'containers');
  layout = await detectCgroups();
  registry = await startRegistry({ baseDir: base });
  const pushed = await pushBusybox(registry, { baseDir: base, files: { '/var/www/index.html': 'from the image\n' }, config: { workingDir: '/var/www' } });
  image = pushed.reference;
  quitImage = (await pushBusybox(registry, { baseDir: base, tag: 'quit', config: { stopSignal: 'SIGQUIT' } })).reference;
  images = new ImageStore({ root: join(base, 'images'), log, insecureRegistries: [registry.addr] });
  volumes = new VolumeStore({ root: join(base, 'volumes'), log });
  runtime = new CrunRuntime({ stateDir, cgroupParent: parent, log, images, volumes });
});

afterAll(async () => {
  try {
    for (const id of (await runtime?.list()) ?? []) {
      await runtime.stop(id, 0).catch(() => undefined);
      await runtime.remove(id).catch(() => undefined);
    }
  } finally {
    await removeCgroupParent(parent);
    await registry?.stop();
    if (base) rmSync(base, { recursive: true, force: true });
  }
  for (const dir of ['memory', 'cpu', 'pids', 'systemd', 'unified', '']) {
    expect(existsSync(join('/sys/fs/cgroup', dir, parent))).toBe(false);
  }
});

describe('CrunRuntime', () => {
  test('prepares a held container in its own namespaces, starts it, and stops it by SIGTERM', async () => {
    const t = task({ command: ['sh', '-c'], args: ['trap "echo got TERM; exit 3" TERM; echo "pid=$$ host=$(hostname) cwd=$(pwd)"; ip -o link | cut -d: -f2; cat index.html; while :; do sleep 0.1; done'] });
    await runtime.prepare(t);
    await runtime.prepare(t); // idempotent
    const created = await runtime.inspect(t.id);
    expect(created.state).toBe('created');
    expect(created.pid).toBeGreaterThan(0);
    // The network namespace exists before start, for the networks to plug into; the command has not run.
    expect(readlinkSync(`/proc/${created.pid}/ns/net`)).not.toBe(readlinkSync('/proc/self/ns/net'));
    expect(output(t.id)).toBe('');

    await runtime.start(t.id);
    expect(await runtime.inspect(t.id)).toMatchObject({ state: 'running', pid: created.pid });
    await waitFor('output', async () => output(t.id).includes('from the image'));
    const out = output(t.id);
    // The command is pid 1 (the hold exec'd into it), with the image's workdir and the task's hostname.
    expect(out).toContain(`pid=1 host=${t.id.slice(0, 12)} cwd=/var/www`);
    expect(out.split('\n').filter((l) => l.startsWith(' '))).toEqual([' lo']);
    expect(readFileSync(`/proc/${created.pid}/cmdline`, 'utf8').split('\0')[0]).toBe('sh');

    await runtime.stop(t.id, 10000);
    const after = await runtime.inspect(t.id);
    expect(after).toMatchObject({ state: 'exited', exitCode: 3, oomKilled: false });
    expect(after.finishedAt).toBeDefined();
    expect(output(t.id)).toContain('got TERM');
    await runtime.remove(t.id);
    expect(await runtime.inspect(t.id)).toEqual({ state: 'missing' });
  });

  test('runs the image\'s Cmd by default, args in its place, and reports exit codes', async () => {
    const plain = task({}); // Cmd ["sh"], with stdin at /dev/null: ends at once, with 0
    const s = await run(plain);
    expect(await exited(runtime, plain.id)).toMatchObject({ state: 'exited', exitCode: 0, pid: s.pid });
    expect(JSON.parse(readFileSync(join(stateDir, plain.id, 'config.json'), 'utf8')).process.args.slice(-2)).toEqual(['/bin/sh', 'sh']);
    await runtime.remove(plain.id);
    const t = task({ command: [], args: ['sh', '-c', 'exit 7'] });
    await run(t);
    expect(await exited(runtime, t.id)).toMatchObject({ state: 'exited', exitCode: 7, oomKilled: false });
    await runtime.remove(t.id);
  });

  test('kills a pid 1 without a TERM handler after its grace period', async () => {
    const t = task({ command: ['sleep', '1000'] });
    await run(t);
    await runtime.stop(t.id, 300);
    expect(await runtime.inspect(t.id)).toMatchObject({ state: 'exited', exitCode: 137, signal: 'SIGKILL' });
    await runtime.remove(t.id);
  });

  test('each task has its own writable layer over the shared read-only image', async () => {
    const a = task({ command: ['sh', '-c', 'echo changed > /var/www/index.html; echo a > /etc/marker; rm /bin/cat; sleep 1000'] });
    const b = task({ command: ['sleep', '1000'] });
    await run(a);
    await run(b);
    await waitFor('a\'s changes', async () => (await runtime.exec(a.id, ['/bin/busybox', 'cat', '/etc/marker'], 5000)).output === 'a\n');
    expect(await runtime.exec(a.id, ['/bin/busybox', 'cat', '/var/www/index.html'], 5000)).toEqual({ exitCode: 0, output: 'changed\n' });
    expect(await runtime.exec(b.id, ['cat', '/var/www/index.html'], 5000)).toEqual({ exitCode: 0, output: 'from the image\n' });
    expect((await runtime.exec(b.id, ['ls', '/etc/marker'], 5000)).exitCode).not.toBe(0);
    expect((await runtime.exec(b.id, ['ls', '/bin/cat'], 5000)).exitCode).toBe(0);
    const [img] = await images.list();
    expect(img.usedBy).toEqual(expect.arrayContaining([a.id, b.id]));
    const local = await images.ensure(image, 0);
    expect(readFileSync(join(local.rootfs, 'var/www/index.html'), 'utf8')).toBe('from the image\n');
    expect(existsSync(join(local.rootfs, 'etc/marker'))).toBe(false);
    expect(readFileSync(join(stateDir, a.id, 'upper/etc/marker'), 'utf8')).toBe('a\n');
    for (const t of [a, b]) {
      await runtime.stop(t.id, 0);
      await runtime.remove(t.id);
    }
  });

  test('a task past its memory limit is OOM-killed, and says so', async () => {
    const t = task({ command: ['sh', '-c', 'x=$(head -c 100000000 /dev/zero | tr "\\0" a); echo survived; sleep 1'] }, { memoryBytes: 32 * 1024 * 1024 });
    await run(t);
    const file = layout.version === 1 ? 'memory.limit_in_bytes' : 'memory.max';
    expect(readFileSync(join(cgroupDir('memory', t.id), file), 'utf8').trim()).toBe(String(32 * 1024 * 1024));
    const end = await exited(runtime, t.id);
    expect(end.oomKilled).toBe(true);
    expect(output(t.id)).not.toContain('survived');
    await runtime.remove(t.id);
  });

  test('the pids limit holds against a fork bomb', async () => {
    const t = task({ command: ['sh', '-c', '(i=0; while [ $i -lt 200 ]; do sleep 1000 & i=$((i+1)); done) 2>/dev/null; echo spawned; exec sleep 1000'] }, { pids: 32 });
    await run(t);
    await waitFor('the loop to end', async () => output(t.id).includes('spawned'));
    // crun is in the cgroup too (the shim's log writer is not): the limit leaves the container 32 of its own.
    expect(readFileSync(join(cgroupDir('pids', t.id), 'pids.max'), 'utf8').trim()).toBe('33');
    const cmdline = (p: number) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8');
      } catch {
        return '';
      }
    };
    const count = () => {
      const procs = readFileSync(join(cgroupDir('pids', t.id), 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
      return { procs: procs.length, sleeps: procs.filter((p) => cmdline(p).startsWith('sleep')).length };
    };
    // A child forked just before the loop ended may not have exec'd sleep yet on a busy machine:
    // it counts against the limit already, as `sh`. Wait until the sleeps reach the limit's share.
    const settled = await waitFor('the forks to become sleeps', async () => {
      const c = count();
      expect(c.procs).toBeLessThanOrEqual(33);
      expect(c.sleeps).toBeLessThanOrEqual(32);
      return c.sleeps > 25 ? c : undefined; // it did fork up to the limit
    });
    expect(settled.procs).toBeLessThanOrEqual(33);
    expect(await runtime.inspect(t.id)).toMatchObject({ state: 'running' });
    await runtime.stop(t.id, 0);
    await runtime.remove(t.id);
  });

  test('logs: the command\'s output, in the exec runtime\'s format', async () => {
    const t = task({ command: ['sh', '-c', 'for i in 1 2 3 4; do echo line$i; done; echo err >&2'] });
    await run(t);
    await exited(runtime, t.id);
    const lines: string[] = [];
    for await (const line of runtime.logs(t.id, { tail: 3, follow: false, signal: new AbortController().signal })) lines.push(line.text);
    expect(lines).toEqual(['line3', 'line4', 'err']);
    await runtime.remove(t.id);
  });

  test('exec runs in the container as its user, with a timeout', async () => {
    const t = task({ command: ['sleep', '1000'], user: 'nobody', hostname: 'checked', env: ['FOO=bar'], dir: '/made/for/it' });
    await run(t);
    expect(await runtime.exec(t.id, ['sh', '-c', 'echo "$(hostname) $(id -u) $FOO $(pwd)"; cat /etc/hostname'], 5000)).toEqual({ exitCode: 0, output: 'checked 65534 bar /made/for/it\nchecked\n' });
    expect(await runtime.exec(t.id, ['sh', '-c', 'exit 4'], 5000)).toEqual({ exitCode: 4, output: '' });
    const slow = await runtime.exec(t.id, ['sleep', '30'], 300);
    expect(slow.exitCode).toBe(-1);
    expect(slow.output).toContain('timed out after 300 ms');
    await runtime.stop(t.id, 0);
    await expect(runtime.exec(t.id, ['true'], 1000)).rejects.toThrow(/not running/);
    await runtime.remove(t.id);
  });

  test('another runtime instance re-adopts a running task and sees its exit code', async () => {
    const t = task({ command: ['sh', '-c', 'read x < /dev/null; sleep 1.5; exit 9'] });
    const first = await run(t);
    const other = new CrunRuntime({ stateDir, cgroupParent: parent, log, images, volumes });
    expect(await other.list()).toContain(t.id);
    expect(await other.inspect(t.id)).toMatchObject({ state: 'running', pid: first.pid });
    expect((await other.exec(t.id, ['true'], 5000)).exitCode).toBe(0);
    expect(await exited(other, t.id)).toMatchObject({ exitCode: 9, pid: first.pid });
    await other.remove(t.id);
  });

  test('stop sends the image\'s StopSignal', async () => {
    const t = task({ image: quitImage, command: ['sh', '-c', 'trap "echo got QUIT; exit 5" QUIT; echo up; while :; do sleep 0.1; done'] });
    await run(t);
    await waitFor('up', async () => output(t.id).includes('up'));
    await runtime.stop(t.id, 10000);
    expect(await runtime.inspect(t.id)).toMatchObject({ state: 'exited', exitCode: 5 });
    expect(output(t.id)).toContain('got QUIT');
    await runtime.remove(t.id);
  });

  test('a task outlives the agent that started it (its whole process group killed)', async () => {
    const t = task({ command: ['sh', '-c', 'sleep 2; exit 9'] });
    // A stand-in agent: another Node process that loads the runtime from its TypeScript sources.
    const agent = `
      const fs = require('fs'), ts = require('typescript');
      require.extensions['.ts'] = (m, file) => m._compile(ts.transpileModule(fs.readFileSync(file, 'utf8'), {
        compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true } }).outputText, file);
      const { CrunRuntime } = require(${JSON.stringify(join(__dirname, '../../agent/runtime/crun-runtime.ts'))});
      const { ImageStore } = require(${JSON.stringify(join(__dirname, '../../agent/images/image-store.ts'))});
      const log = require('pino')({ level: 'silent' });
      const [stateDir, parent, imagesRoot, insecure, taskJson] = process.argv.slice(1);
      const images = new ImageStore({ root: imagesRoot, log, insecureRegistries: [insecure] });
      const rt = new CrunRuntime({ stateDir, cgroupParent: parent, log, images });
      const task = JSON.parse(taskJson);
      setInterval(() => {}, 1000);
      rt.prepare(task).then(() => rt.start(task.id)).then(() => console.log('started'),
        (err) => { console.error(err); process.exit(1); });`;
    const child = spawn(process.execPath, ['-e', agent, stateDir, parent, join(base, 'images'), registry.addr, JSON.stringify(t)], {
      cwd: join(__dirname, '../..'),
      detached: true,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => d.toString().includes('started') && resolve());
      child.on('exit', (code) => reject(new Error(`the stand-in agent exited with ${code}`)));
    });
    process.kill(-child.pid!, 'SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const after = await runtime.inspect(t.id);
    expect(after.state).toBe('running');
    expect(await exited(runtime, t.id)).toMatchObject({ exitCode: 9, pid: after.pid });
    await runtime.remove(t.id);
  });

  test('a named volume and a read-only bind mount', async () => {
    const hostDir = join(base, 'bind-src');
    mkdirSync(hostDir);
    writeFileSync(join(hostDir, 'conf'), 'from the host\n');
    const mounts = [
      { type: MountType.MOUNT_TYPE_VOLUME, source: 'data1', target: '/data', readonly: false, tmpfsSizeBytes: 0 },
      { type: MountType.MOUNT_TYPE_BIND, source: hostDir, target: '/conf', readonly: true, tmpfsSizeBytes: 0 },
    ];
    const t = task({ command: ['sh', '-c', 'cat /conf/conf; echo kept > /data/f; touch /conf/x 2>/dev/null || echo ro-refused; sleep 1000'], mounts });
    await run(t);
    await waitFor('output', async () => output(t.id).includes('ro-refused'));
    expect(output(t.id)).toContain('from the host');
    await runtime.stop(t.id, 0);
    await runtime.remove(t.id);
    // The volume outlives the task; the next task sees its file.
    const again = task({ command: ['cat', '/data/f'], mounts: [mounts[0]] });
    await run(again);
    await exited(runtime, again.id);
    expect(output(again.id)).toBe('kept\n');
    await runtime.remove(again.id);
  });

  test('secrets read-only at /run/secrets and a config at its target, from a tmpfs, gone with the task', async () => {
    const files = new TaskFiles(join(base, 'task-files'), log);
    const t = task({
      command: ['sh', '-c', 'cat /run/secrets/pw; echo; cat /etc/app.ini; echo; stat -c "%a %u:%g" /run/secrets/pw /etc/app.ini; (echo x > /run/secrets/pw) 2>/dev/null || echo ro-refused; sleep 1000'],
      secrets: [{ secretId: 's1', secretName: 'pw', file: { name: 'pw', uid: 0, gid: 0, mode: 0o400 } }],
      configs: [{ configId: 'c1', configName: 'app.ini', file: { name: '/etc/app.ini', uid: 7, gid: 8, mode: 0o444 } }],
    });
    try {
      const mounts = await files.ensure(t, new Map([['s1', Buffer.from('the-secret')], ['c1', Buffer.from('a=1')]]));
      expect(await isTmpfsMount(join(base, 'task-files'))).toBe(true);
      await runtime.prepare(t, { files: mounts });
      await runtime.start(t.id);
      await waitFor('output', async () => output(t.id).includes('ro-refused'));
      expect(output(t.id)).toBe('the-secret\na=1\n400 0:0\n444 7:8\nro-refused\n');
      await runtime.stop(t.id, 0);
      await runtime.remove(t.id);
      await files.release(t.id);
      expect(existsSync(join(base, 'task-files', t.id))).toBe(false);
    } finally {
      spawnSync('umount', ['-l', join(base, 'task-files')]);
    }
  });

  test("an empty volume gets the image's content at its target; one with data keeps its own", async () => {
    const etc = { type: MountType.MOUNT_TYPE_VOLUME, source: 'etcvol', target: '/etc', readonly: false, tmpfsSizeBytes: 0 };
    const t = task({ command: ['sh', '-c', 'cat /etc/passwd; echo mine > /etc/passwd'], mounts: [etc] });
    await run(t);
    await exited(runtime, t.id);
    expect(output(t.id)).toMatch(/^root:x:0:0:/);
    await runtime.remove(t.id);
    // Not empty now: the next task sees what the first one left, not the image's file.
    const again = task({ command: ['cat', '/etc/passwd'], mounts: [etc] });
    await run(again);
    await exited(runtime, again.id);
    expect(output(again.id)).toBe('mine\n');
    await runtime.remove(again.id);
  });

  test('refuses what cannot run with a clear message, and leaves nothing behind', async () => {
    const bad: [Partial<ContainerSpec>, RegExp][] = [
      [{ command: ['no-such-command-here'] }, /executable file not found in \$PATH/],
      [{ command: ['true'], user: 'nosuchuser' }, /unable to find user nosuchuser/],
      [{ command: ['true'], image: `${registry?.addr}/nosuch:latest` }, /not found/],
      [{ command: ['true'], mounts: [{ type: MountType.MOUNT_TYPE_BIND, source: '/no/such/dir', target: '/x', readonly: false, tmpfsSizeBytes: 0 }] }, /bind source path does not exist: \/no\/such\/dir/],
    ];
    for (const [spec, message] of bad) {
      const t = task(spec);
      const err = await rejection(runtime.prepare(t));
      expect(err.message).toMatch(message);
      expect(await runtime.inspect(t.id)).toEqual({ state: 'missing' });
      expect(await runtime.list()).not.toContain(t.id);
    }
  });

  test('a task on the host network keeps the host\'s network namespace', async () => {
    const t = task({ command: ['sleep', '1000'] }, undefined, [{ networkId: 'host', networkName: 'host', driver: 'host', address: '', mac: '', gateway: '', vni: 0, internal: false, options: {} }]);
    const s = await run(t);
    expect(readlinkSync(`/proc/${s.pid}/ns/net`)).toBe(readlinkSync('/proc/self/ns/net'));
    expect(readlinkSync(`/proc/${s.pid}/ns/mnt`)).not.toBe(readlinkSync('/proc/self/ns/mnt'));
    await runtime.stop(t.id, 0);
    await runtime.remove(t.id);
  });

  test('remove leaves no process, cgroup, crun state, mount or directory behind', async () => {
    const t = task({ command: ['sleep', '1000'] }, { memoryBytes: 64 * 1024 * 1024, pids: 50 });
    const s = await run(t);
    const shimPid = JSON.parse(readFileSync(join(stateDir, t.id, 'state.json'), 'utf8')).shim.pid as number;
    expect(readdirSync(join(stateDir, '.crun'))).toContain(t.id);
    await runtime.stop(t.id, 0);
    await runtime.remove(t.id);
    expect(existsSync(`/proc/${s.pid}`)).toBe(false);
    expect(existsSync(`/proc/${shimPid}`)).toBe(false);
    expect(existsSync(join(stateDir, t.id))).toBe(false);
    expect(existsSync(join(stateDir, '.crun', t.id))).toBe(false);
    expect(existsSync(cgroupDir('memory', t.id))).toBe(false);
    expect(existsSync(cgroupDir('pids', t.id))).toBe(false);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(t.id);
    expect(await runtime.list()).not.toContain(t.id);
    expect((await images.list()).flatMap((i) => i.usedBy)).not.toContain(t.id);
  });
});
