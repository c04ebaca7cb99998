import {
  DEFAULT_CAPABILITIES,
  HOLD_BUSYBOX,
  HOLD_FIFO,
  HOLD_SCRIPT,
  OciContainerInput,
  OciImageConfig,
  planArgv,
  planEnv,
  planOciProcess,
  planOciSpec,
  DOCKER_INIT,
  planStopSignal,
  planTaskResolvConf,
  renderHosts,
} from '../../agent/runtime/oci-spec';
import { planRuntimeKind } from '../../agent/runtime/runtime-router';

const TASK = 'abcdefghijklmnopqrstuvwxy';
const image = (c: Partial<OciImageConfig> = {}): OciImageConfig => ({ entrypoint: [], cmd: ['sh'], env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'], user: '', workingDir: '', ...c });
const container = (c: Partial<OciContainerInput> = {}): OciContainerInput => ({ command: [], args: [], env: [], dir: '', user: '', hostname: '', ...c });
const PASSWD = 'root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n';
const GROUP = 'root:x:0:\nwww:x:33:\nlogs:x:4:www\nnogroup:x:65534:\n';

describe('planArgv (docker semantics)', () => {
  test.each([
    ['image cmd alone', [], [], image({ cmd: ['sh'] }), ['sh']],
    ['image entrypoint + cmd', [], [], image({ entrypoint: ['httpd', '-f'], cmd: ['-p', '80'] }), ['httpd', '-f', '-p', '80']],
    ['args replace cmd, entrypoint kept', [], ['-p', '8080'], image({ entrypoint: ['httpd', '-f'], cmd: ['-p', '80'] }), ['httpd', '-f', '-p', '8080']],
    ['command replaces entrypoint and drops cmd', ['sleep'], [], image({ entrypoint: ['httpd'], cmd: ['-p', '80'] }), ['sleep']],
    ['command and args', ['sleep'], ['5'], image({ entrypoint: ['httpd'], cmd: ['-p', '80'] }), ['sleep', '5']],
    ['args alone on an image without entrypoint', [], ['echo', 'hi'], image({ cmd: ['sh'] }), ['echo', 'hi']],
  ])('%s', (_name, command, args, img, want) => expect(planArgv(command as string[], args as string[], img)).toEqual(want));

  test('refuses a task with no command at all', () => {
    expect(() => planArgv([], [], image({ cmd: [] }))).toThrow(/no command specified/);
  });
});

describe('planEnv', () => {
  test('image env, then the spec env wins; PATH default only when the image has none; HOME last', () => {
    expect(planEnv(['PATH=/bin', 'A=image', 'B=image'], ['B=spec', 'C=spec'], 'h1', '/root')).toEqual(['PATH=/bin', 'HOSTNAME=h1', 'A=image', 'B=spec', 'C=spec', 'HOME=/root']);
    expect(planEnv([], [], 'h1', '/var/www')).toEqual(['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOSTNAME=h1', 'HOME=/var/www']);
    expect(planEnv(['HOME=/data'], [], 'h1', '/root')).toContain('HOME=/data');
  });
  test('refuses a malformed entry', () => {
    expect(() => planEnv([], ['=x'], 'h', '/')).toThrow(/KEY=VALUE/);
  });
});

describe('planOciProcess', () => {
  test('root by default, hostname from the task id, cwd from the image', () => {
    const p = planOciProcess(TASK, container(), image({ workingDir: '/var/www' }), PASSWD, GROUP);
    expect(p).toEqual({
      argv: ['sh'],
      env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin', `HOSTNAME=${TASK.slice(0, 12)}`, 'HOME=/root'],
      user: { uid: 0, gid: 0, additionalGids: [] },
      cwd: '/var/www',
      hostname: TASK.slice(0, 12),
    });
  });
  test('the image user, resolved from its passwd and group, with its home and groups', () => {
    const p = planOciProcess(TASK, container(), image({ user: 'www' }), PASSWD, GROUP);
    expect(p.user).toEqual({ uid: 33, gid: 33, additionalGids: [4] });
    expect(p.env).toContain('HOME=/var/www');
  });
  test('the spec user, workdir and hostname win over the image', () => {
    const p = planOciProcess(TASK, container({ user: '1000:1000', dir: '/data', hostname: 'web-1' }), image({ user: 'www', workingDir: '/var/www' }), PASSWD, GROUP);
    expect(p.user).toEqual({ uid: 1000, gid: 1000, additionalGids: [] });
    expect(p.cwd).toBe('/data');
    expect(p.hostname).toBe('web-1');
  });
  test('an unknown user name is refused', () => {
    expect(() => planOciProcess(TASK, container({ user: 'nosuch' }), image(), PASSWD, GROUP)).toThrow(/unable to find user nosuch/);
  });
  test('a relative workdir is refused', () => {
    expect(() => planOciProcess(TASK, container({ dir: 'data' }), image(), PASSWD, GROUP)).toThrow(/absolute/);
  });
});

describe('planOciSpec', () => {
  const files = { busybox: '/usr/bin/busybox', startFifo: '/d/t/start.fifo', hostname: '/d/t/hostname', hosts: '/d/t/hosts', resolvConf: '/d/t/resolv.conf' };
  const volume = { destination: '/data', type: 'bind', source: '/var/lib/swarmlet/volumes/v/_data', options: ['rbind', 'rprivate', 'rw'] };
  const base = (over: Partial<Parameters<typeof planOciSpec>[0]> = {}) =>
    planOciSpec({
      process: planOciProcess(TASK, container({ command: ['httpd'], args: ['-f', '-p', '80'] }), image(), PASSWD, GROUP),
      executable: '/usr/sbin/httpd',
      rootfs: '/d/t/rootfs',
      hostNetwork: false,
      mounts: [volume],
      files,
      ...over,
    }) as any;

  test('--read-only: the root read-only, its mounts as asked; --init: docker-init as pid 1 with the command as given after --', () => {
    expect(base().root.readonly).toBe(false);
    const ro = base({ readOnly: true });
    expect(ro.root).toEqual({ path: '/d/t/rootfs', readonly: true });
    expect(ro.mounts).toContainEqual(volume);
    const init = base({ init: '/usr/bin/tini-static' });
    expect(init.process.args).toEqual([HOLD_BUSYBOX, 'sh', '-c', HOLD_SCRIPT, 'swarmlet-hold', DOCKER_INIT, DOCKER_INIT, '--', 'httpd', '-f', '-p', '80']);
    expect(init.mounts).toContainEqual({ destination: '/sbin/docker-init', type: 'bind', source: '/usr/bin/tini-static', options: ['rbind', 'rprivate', 'ro'] });
    expect(base().mounts.some((m: { destination: string }) => m.destination === DOCKER_INIT)).toBe(false);
  });

  test('the process waits on the hold, then execs the resolved command as given', () => {
    const spec = base();
    expect(spec.process.args).toEqual([HOLD_BUSYBOX, 'sh', '-c', HOLD_SCRIPT, 'swarmlet-hold', '/usr/sbin/httpd', 'httpd', '-f', '-p', '80']);
    expect(spec.process.terminal).toBe(false);
    expect(spec.process.noNewPrivileges).toBe(true);
    expect(spec.process.user).toEqual({ uid: 0, gid: 0 });
    expect(spec.process.cwd).toBe('/');
    expect(spec.process.rlimits).toBeUndefined(); // inherited from the agent
    expect(spec.root).toEqual({ path: '/d/t/rootfs', readonly: false });
    expect(spec.hostname).toBe(TASK.slice(0, 12));
  });
  test('docker\'s capabilities for root; none effective for another user', () => {
    expect(base().process.capabilities).toEqual({ bounding: DEFAULT_CAPABILITIES, effective: DEFAULT_CAPABILITIES, permitted: DEFAULT_CAPABILITIES, inheritable: [], ambient: [] });
    const www = base({ process: planOciProcess(TASK, container({ user: 'www' }), image(), PASSWD, GROUP) });
    expect(www.process.capabilities).toEqual({ bounding: DEFAULT_CAPABILITIES, effective: [], permitted: [], inheritable: [], ambient: [] });
    expect(www.process.user).toEqual({ uid: 33, gid: 33, additionalGids: [4] });
    expect(DEFAULT_CAPABILITIES).not.toContain('CAP_SYS_ADMIN');
  });
  test('its own network namespace, or the host\'s', () => {
    expect(base().linux.namespaces).toEqual([{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'network' }]);
    expect(base({ hostNetwork: true }).linux.namespaces).toEqual([{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }]);
  });
  test('mounts: proc, dev, sys, the task\'s /etc files, its own mounts, then the hold', () => {
    const spec = base();
    expect(spec.mounts.map((m: { destination: string }) => m.destination)).toEqual([
      '/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys', '/etc/hostname', '/etc/hosts', '/etc/resolv.conf', '/data', HOLD_BUSYBOX, HOLD_FIFO,
    ]);
    expect(spec.mounts.find((m: { destination: string }) => m.destination === '/sys').options).toContain('ro');
    expect(spec.mounts.find((m: { destination: string }) => m.destination === HOLD_BUSYBOX)).toEqual({ destination: HOLD_BUSYBOX, type: 'bind', source: '/usr/bin/busybox', options: ['rbind', 'rprivate', 'ro'] });
    expect(spec.mounts.find((m: { destination: string }) => m.destination === '/etc/resolv.conf').source).toBe('/d/t/resolv.conf');
    expect(spec.mounts).toContainEqual(volume);
    expect(spec.linux.maskedPaths).toContain('/proc/kcore');
    expect(spec.linux.readonlyPaths).toContain('/proc/sys');
    expect(spec.linux.resources).toBeUndefined(); // limits are the shim's cgroup's, shared with exec tasks
  });
});

describe('task files', () => {
  test('hosts names the task on its addresses', () => {
    expect(renderHosts('web-1', ['10.0.1.5', '172.18.0.3'])).toBe('127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.0.1.5\tweb-1\n172.18.0.3\tweb-1\n');
    expect(renderHosts('web-1', [])).toContain('127.0.1.1\tweb-1\n');
  });
  test('resolv.conf drops loopback nameservers for a task with its own netns', () => {
    const host = 'search lab\nnameserver 127.0.0.53\nnameserver 192.0.2.1\noptions edns0\n';
    expect(planTaskResolvConf(host, false)).toBe('search lab\nnameserver 192.0.2.1\noptions edns0\n');
    expect(planTaskResolvConf(host, true)).toBe(host);
  });
});

describe('planRuntimeKind', () => {
  test.each([
    ['exec:/', 'exec'],
    ['exec:/srv/rootfs', 'exec'],
    ['busybox', 'oci'],
    ['registry.lab:5000/busybox:latest', 'oci'],
    ['nginx@sha256:0123', 'oci'],
  ])('%s -> %s', (img, want) => expect(planRuntimeKind(img)).toBe(want));
});

describe('planStopSignal', () => {
  const signals = { SIGTERM: 15, SIGQUIT: 3, SIGINT: 2, SIGKILL: 9 };
  test.each([
    [undefined, 'SIGTERM'],
    ['', 'SIGTERM'],
    ['SIGQUIT', 'SIGQUIT'],
    ['quit', 'SIGQUIT'],
    ['2', 'SIGINT'],
    ['SIGNOPE', 'SIGTERM'],
    ['77', 'SIGTERM'],
  ])('%j -> %s', (text, want) => expect(planStopSignal(text, signals)).toBe(want));
});
