/**
 * Terminals on both runtimes, with real processes, ptys, namespaces and cgroups: a tty task's
 * pty (attach, resize, its exit code), a task's open stdin, and exec sessions with and without a
 * pty. The oci runtime runs an image built from busybox-static, pulled from a real registry on
 * loopback. Cgroups live under parents unique to this run, removed at the end.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { ImageStore } from '../../agent/images/image-store';
import { removeCgroupParent } from '../../agent/runtime/cgroups';
import { CrunRuntime } from '../../agent/runtime/crun-runtime';
import { ExecRuntime } from '../../agent/runtime/exec-runtime';
import { Runtime, TerminalSession } from '../../agent/runtime/runtime';
import { ContainerSpec, Task, TaskState } from '../../services/gen/swarmlet/v1/types';
import { pushBusybox } from '../support/image-build';
import { TestRegistry, startRegistry } from '../support/registry';
import { uniqueSuffix } from '../support/unique';
import { exited, waitFor } from '../support/runtime-wait';

const log = pino({ level: 'silent' });
const suffix = uniqueSuffix(6);
const parents = { exec: `swarmlet-test-tty-${suffix}`, oci: `swarmlet-test-tty-oci-${suffix}` };
let base: string;
let registry: TestRegistry;
let image: string;
const runtimes: Record<'exec' | 'oci', Runtime> = {} as Record<'exec' | 'oci', Runtime>;
const makeRuntime: Record<'exec' | 'oci', () => Runtime> = {
  exec: () => new ExecRuntime({ stateDir: join(base, 'tasks'), cgroupParent: parents.exec, log }),
  oci: () =>
    new CrunRuntime({ stateDir: join(base, 'containers'), cgroupParent: parents.oci, log, images: new ImageStore({ root: join(base, 'images'), log, insecureRegistries: [registry.addr] }) }),
};
let seq = 0;

function task(kind: 'exec' | 'oci', container: Partial<ContainerSpec>): Task {
  seq += 1;
  return {
    id: `y${suffix}x${seq}abcdefghij`,
    serviceId: 'svc',
    serviceName: 'web',
    slot: seq,
    nodeId: 'node1',
    specVersion: 1,
    desiredState: TaskState.TASK_STATE_RUNNING,
    createdAt: '',
    spec: {
      networkAliases: [],
      container: { image: kind === 'exec' ? 'exec:/' : image, command: [], args: [], env: [], dir: '', user: '', hostname: '', stopGracePeriodMs: 0, mounts: [], pull: 0, tty: false, openStdin: false, secrets: [], configs: [], ...container },
      forceUpdate: 0,
      networks: [],
    },
    networks: [],
  };
}

/** Collects a session's output; `until` waits for a pattern in what came since the last mark. */
function reader(session: TerminalSession) {
  let out = '';
  let err = '';
  let mark = 0;
  session.stdout.on('data', (d: Buffer) => (out += d.toString()));
  session.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  return {
    out: () => out,
    err: () => err,
    until: async (re: RegExp) => {
      const m = await waitFor(`output matching ${re}`, async () => re.exec(out.slice(mark)) ?? undefined).catch((e: Error) => {
        throw new Error(`${e.message}; got ${JSON.stringify(out.slice(mark))}`);
      });
      mark = out.length;
      return m;
    },
  };
}

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), 'swl-tty-'));
  registry = await startRegistry({ baseDir: base });
  image = (await pushBusybox(registry, { baseDir: base })).reference;
  runtimes.exec = makeRuntime.exec();
  runtimes.oci = makeRuntime.oci();
});

afterAll(async () => {
  try {
    for (const rt of Object.values(runtimes)) {
      for (const id of await rt.list()) {
        await rt.stop(id, 0).catch(() => undefined);
        await rt.remove(id).catch(() => undefined);
      }
    }
  } finally {
    for (const p of Object.values(parents)) await removeCgroupParent(p);
    await registry?.stop();
    if (base) rmSync(base, { recursive: true, force: true });
  }
  for (const p of Object.values(parents)) expect(existsSync(join('/sys/fs/cgroup/memory', p))).toBe(false);
});

describe.each(['exec', 'oci'] as const)('terminals on the %s runtime', (kind) => {
  test('a tty task: attach sees its prompt, a typed command, a resize; its exit code ends the session; it outlives the runtime object', async () => {
    const rt = runtimes[kind];
    const t = task(kind, { command: ['sh'], tty: true });
    await rt.prepare(t);
    await rt.start(t.id);
    const s = await rt.attach(t.id);
    expect(s.tty).toBe(true);
    const r = reader(s);
    await s.resize({ rows: 33, cols: 77 });
    s.stdin.write('stty size; echo $((6*7))\n');
    await r.until(/33 77\r?\n42/);
    // A second runtime object (a restarted daemon) attaches to the same pty: the shim holds it.
    s.close();
    const again = await makeRuntime[kind]().attach(t.id);
    const r2 = reader(again);
    await again.resize({ rows: 40, cols: 100 });
    again.stdin.write('stty size; tty\n');
    await r2.until(/40 100\r?\n\/dev\/pts\/\d+/);
    again.stdin.write('exit 3\n');
    expect(await again.exited).toBe(3);
    expect((await exited(rt, t.id)).exitCode).toBe(3);
  });

  test('a task with open stdin and no tty: attach writes to its stdin and reads its output', async () => {
    const rt = runtimes[kind];
    const t = task(kind, { command: ['sh', '-c', 'while read -r l; do echo "got $l"; done; echo eof'], openStdin: true });
    await rt.prepare(t);
    await rt.start(t.id);
    const s = await rt.attach(t.id);
    expect(s.tty).toBe(false);
    const r = reader(s);
    s.stdin.write('hello\n');
    await r.until(/^got hello$/m);
    s.close();
    // Closing an attach does not close the task's stdin.
    const again = await rt.attach(t.id);
    const r2 = reader(again);
    again.stdin.write('more\n');
    await r2.until(/^got more$/m);
    again.close();
    expect((await rt.inspect(t.id)).state).toBe('running');
    await rt.stop(t.id, 0);
  });

  test('exec -it: a shell on a pty of the given size, resized, ended by Ctrl-D; exec -i: separate stdout and stderr, piped stdin, exit code', async () => {
    const rt = runtimes[kind];
    const t = task(kind, { command: ['sleep', '300'] });
    await rt.prepare(t);
    await rt.start(t.id);
    const s = await rt.execSession(t.id, { argv: ['sh'], tty: true, size: { rows: 20, cols: 50 }, env: ['GREETING=hey'] });
    const r = reader(s);
    s.stdin.write('stty size; echo "$GREETING" $((2+3)); hostname\n');
    await r.until(new RegExp(`20 50\r?\nhey 5\r?\n${t.id.slice(0, 12)}`));
    await s.resize({ rows: 31, cols: 91 });
    s.stdin.write('stty size\n');
    await r.until(/31 91/);
    s.stdin.write('\x04');
    expect(await s.exited).toBe(0);

    const p = await rt.execSession(t.id, { argv: ['sh', '-c', `cat; echo oops >&2; grep -c ${t.id} /proc/self/cgroup; exit 4`], tty: false });
    const pr = reader(p);
    p.stdin.end('hi there\n');
    expect(await p.exited).toBe(4);
    await waitFor('stderr', async () => pr.err() === 'oops\n');
    // The command ran in the task's cgroup (in each hierarchy).
    expect(pr.out()).toMatch(/^hi there\n[1-9]\d*\n$/);

    // docker exec -u and -w: another user (by name, from the task's root's passwd) and directory.
    const u = await rt.execSession(t.id, { argv: ['sh', '-c', 'id -u; id -g; pwd; echo "$HOME"'], tty: false, user: 'nobody', workdir: '/tmp' });
    const ur = reader(u);
    expect(await u.exited).toBe(0);
    await waitFor('output', async () => ur.out().split('\n').length >= 5);
    expect(ur.out().split('\n').slice(0, 3)).toEqual(['65534', '65534', '/tmp']);
    await expect(rt.execSession(t.id, { argv: ['true'], tty: false, user: 'nosuchuser' })).rejects.toThrow(/unable to find user nosuchuser/);
    await rt.stop(t.id, 0);
    await expect(rt.execSession(t.id, { argv: ['true'], tty: true })).rejects.toThrow(/is not running/);
  });

  test('a closed exec session (the client went away) leaves no process behind, with or without a pty', async () => {
    const rt = runtimes[kind];
    const t = task(kind, { command: ['sleep', '300'] });
    await rt.prepare(t);
    await rt.start(t.id);
    // The sandbox's own pid namespace: /proc shows only what this test run started.
    const sleepers = (arg: string) =>
      readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
        try {
          return readFileSync(`/proc/${p}/cmdline`, 'utf8') === `sleep\0${arg}\0`;
        } catch {
          return false;
        }
      });
    for (const [tty, arg] of [[false, '997'], [true, '998']] as const) {
      const s = await rt.execSession(t.id, { argv: ['sleep', arg], tty });
      await waitFor(`sleep ${arg} to run`, async () => sleepers(arg).length > 0);
      s.close();
      await s.exited;
      await waitFor(`sleep ${arg} to be gone`, async () => sleepers(arg).length === 0, 5000);
    }
    expect((await rt.inspect(t.id)).state).toBe('running');
    await rt.stop(t.id, 0);
  });
});
