import { parseMountFlag, planMountChange, serviceJsonWithMounts } from '../../cli/mount-flags';
import { volumeInspect, volumeLabels, volumeRows } from '../../cli/commands/volume';
import { specFromCreateFlags, specFromUpdateFlags } from '../../cli/service-flags';
import { planMounts } from '../../agent/runtime/mount-plans';
import { cleanAbsolutePath, validateMounts } from '../../manager/orchestrator/mount-spec';
import { validateServiceSpec } from '../../manager/orchestrator/service-spec';
import { Mount, MountType, Service } from '../../services/gen/swarmlet/v1/types';

const { MOUNT_TYPE_BIND: BIND, MOUNT_TYPE_VOLUME: VOLUME, MOUNT_TYPE_TMPFS: TMPFS } = MountType;
const mount = (m: Partial<Mount>): Mount => ({ type: VOLUME, source: '', target: '', readonly: false, tmpfsSizeBytes: 0, ...m });
const IMAGE = 'registry.lab:5000/busybox:latest';

describe('parseMountFlag', () => {
  test.each([
    ['type=volume,source=data,target=/data', mount({ source: 'data', target: '/data' })],
    ['source=data,target=/data', mount({ source: 'data', target: '/data' })],
    ['type=volume,target=/cache', mount({ target: '/cache' })],
    ['type=bind,src=/srv/www,dst=/usr/share/www,readonly', mount({ type: BIND, source: '/srv/www', target: '/usr/share/www', readonly: true })],
    ['type=bind,source=/srv,destination=/srv,ro=true', mount({ type: BIND, source: '/srv', target: '/srv', readonly: true })],
    ['type=bind,source=/srv,target=/srv,readonly=false', mount({ type: BIND, source: '/srv', target: '/srv' })],
    ['type=bind,source=/srv,target=/srv,ro=1', mount({ type: BIND, source: '/srv', target: '/srv', readonly: true })],
    ['type=tmpfs,target=/run,tmpfs-size=64m', mount({ type: TMPFS, target: '/run', tmpfsSizeBytes: 64 * 1024 * 1024 })],
    ['type=tmpfs,target=/run', mount({ type: TMPFS, target: '/run' })],
  ])('%s', (text, want) => expect(parseMountFlag(text)).toEqual(want));

  test.each([
    ['type=nfs,target=/x', /type is volume, bind or tmpfs/],
    ['type=volume,source=data', /target=\/path in the task is required/],
    ['type=bind,target=/x', /a bind mount needs source/],
    ['type=tmpfs,source=x,target=/x', /tmpfs mount takes no source/],
    ['type=volume,source=a,target=/x,tmpfs-size=1m', /tmpfs-size needs type=tmpfs/],
    ['type=tmpfs,target=/x,tmpfs-size=lots', /tmpfs-size is a size/],
    ['target=/x,readonly=maybe', /readonly is true or false/],
    ['target=/x,consistency=cached', /unknown key "consistency"/],
    ['target=/x,dst=/y', /target is given twice/],
    ['target=/x,,ro', /an empty field/],
    ['target', /target needs a value/],
  ])('refuses %s', (text, why) => expect(() => parseMountFlag(text)).toThrow(why));
});

describe('planMountChange', () => {
  const current = [mount({ source: 'data', target: '/data' }), mount({ type: TMPFS, target: '/run' })];

  test('removes by target, adds last, replaces a mount on the same target', () => {
    expect(planMountChange(current, ['type=volume,source=other,target=/data/', 'type=tmpfs,target=/tmp'], ['/run'])).toEqual([
      mount({ source: 'other', target: '/data/' }),
      mount({ type: TMPFS, target: '/tmp' }),
    ]);
  });

  test('refuses to remove a target the service does not mount', () => {
    expect(() => planMountChange(current, [], ['/nope'])).toThrow('--mount-rm /nope: the service mounts nothing there (its mount targets: /data, /run)');
  });

  test('does not change the mounts it was given', () => {
    planMountChange(current, ['type=volume,source=x,target=/data'], []);
    expect(current[0].source).toBe('data');
  });
});

describe('service flags', () => {
  test('--mount on create, repeatable', () => {
    const spec = specFromCreateFlags({ name: 'web', mount: ['source=data,target=/data', 'type=tmpfs,target=/run'] }, IMAGE, []);
    expect(spec.task?.container?.mounts).toEqual([mount({ source: 'data', target: '/data' }), mount({ type: TMPFS, target: '/run' })]);
  });

  test('--mount-add and --mount-rm on update; other flags keep the mounts', () => {
    const created = specFromCreateFlags({ name: 'web', mount: ['source=data,target=/data'] }, IMAGE, []);
    expect(specFromUpdateFlags(created, { replicas: 2 }).task?.container?.mounts).toEqual([mount({ source: 'data', target: '/data' })]);
    const updated = specFromUpdateFlags(created, { mountRm: ['/data'], mountAdd: ['type=bind,source=/srv,target=/srv,ro'] });
    expect(updated.task?.container?.mounts).toEqual([mount({ type: BIND, source: '/srv', target: '/srv', readonly: true })]);
  });
});

describe('cleanAbsolutePath', () => {
  test.each([
    ['/data', '/data'],
    ['/data/', '/data'],
    ['//a//b/./c', '/a/b/c'],
    ['/a/../b', '/b'],
    ['/..', '/'],
    ['/', '/'],
    ['data', undefined],
    ['', undefined],
    ['/a\0b', undefined],
  ])('%j -> %j', (p, want) => expect(cleanAbsolutePath(p)).toBe(want));
});

describe('validateMounts', () => {
  test('cleans paths and fills every field', () => {
    expect(
      validateMounts(
        [
          { type: BIND, source: '/srv//www/', target: '/www/', readonly: true, tmpfsSizeBytes: 0 },
          mount({ source: 'my_vol.1-x', target: '/data' }),
          mount({ target: '/anon' }),
          mount({ type: TMPFS, target: '/run', tmpfsSizeBytes: 1024 }),
        ],
        IMAGE,
      ),
    ).toEqual([
      { type: BIND, source: '/srv/www', target: '/www', readonly: true, tmpfsSizeBytes: 0 },
      mount({ source: 'my_vol.1-x', target: '/data' }),
      mount({ target: '/anon' }),
      mount({ type: TMPFS, target: '/run', tmpfsSizeBytes: 1024 }),
    ]);
  });

  test.each([
    [[mount({ source: 'v', target: 'data' })], /target "data": it must be an absolute path/],
    [[mount({ source: 'v', target: '' })], /needs a target/],
    [[mount({ source: 'v', target: '/' })], /can't cover the task's root/],
    [[mount({ source: 'v', target: '/x/..' })], /can't cover the task's root/],
    [[mount({ source: 'a', target: '/data' }), mount({ type: TMPFS, target: '/data/' })], /duplicate mount target \/data/],
    [[mount({ type: BIND, source: 'srv', target: '/srv' })], /bind mount source "srv": it must be an absolute path/],
    [[mount({ type: BIND, source: '', target: '/srv' })], /a bind mount needs a source/],
    [[mount({ source: '-bad', target: '/data' })], /invalid volume name "-bad"/],
    [[mount({ source: 'a/b', target: '/data' })], /invalid volume name "a\/b"/],
    [[mount({ source: '..', target: '/data' })], /invalid volume name/],
    [[mount({ type: TMPFS, source: 'x', target: '/run' })], /a tmpfs mount takes no source/],
    [[mount({ source: 'v', target: '/data', tmpfsSizeBytes: 5 })], /a volume mount takes no tmpfs size/],
    [[mount({ type: TMPFS, target: '/run', tmpfsSizeBytes: -1 })], /invalid tmpfs size -1/],
    [[mount({ type: 7 as MountType, target: '/run' })], /invalid mount type 7/],
  ])('refuses mounts %#', (mounts, why) => expect(() => validateMounts(mounts, IMAGE)).toThrow(why));

  test('refuses mounts on exec: tasks, in the service spec too', () => {
    const why = "--mount needs an oci image; exec: tasks see the host's filesystem";
    expect(() => validateMounts([mount({ source: 'v', target: '/data' })], 'exec:/')).toThrow(why);
    const spec = specFromCreateFlags({ name: 'web', mount: ['source=v,target=/data'] }, 'exec:/', ['sleep', '9']);
    expect(() => validateServiceSpec(spec)).toThrow(why);
    expect(validateServiceSpec({ ...spec, task: { ...spec.task!, container: { ...spec.task!.container!, mounts: [] } } }).task?.container?.mounts).toEqual([]);
  });
});

describe('planMounts', () => {
  test('binds, volumes and tmpfs as OCI mounts', () => {
    const resolved = new Map([['/data', '/var/lib/swarmlet/volumes/data/_data']]);
    expect(
      planMounts(
        [
          mount({ type: BIND, source: '/srv/www', target: '/www', readonly: true }),
          mount({ source: 'data', target: '/data' }),
          mount({ type: TMPFS, target: '/run', tmpfsSizeBytes: 65536 }),
          mount({ type: TMPFS, target: '/tmp', readonly: true }),
        ],
        resolved,
      ),
    ).toEqual([
      { destination: '/www', type: 'bind', source: '/srv/www', options: ['rbind', 'rprivate', 'ro'] },
      { destination: '/data', type: 'bind', source: '/var/lib/swarmlet/volumes/data/_data', options: ['rbind', 'rprivate', 'rw'] },
      { destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'noexec', 'mode=1777', 'size=65536', 'rw'] },
      { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'noexec', 'mode=1777', 'ro'] },
    ]);
  });

  test('parents before children, else in the order given', () => {
    const mounts = [mount({ type: TMPFS, target: '/a/b/c' }), mount({ type: TMPFS, target: '/z' }), mount({ type: TMPFS, target: '/a/b' }), mount({ type: TMPFS, target: '/a' })];
    expect(planMounts(mounts, new Map()).map((m) => m.destination)).toEqual(['/z', '/a', '/a/b', '/a/b/c']);
  });

  test('a volume with no host directory is an error, not a mount of nothing', () => {
    expect(() => planMounts([mount({ source: 'data', target: '/data' })], new Map())).toThrow(/no host directory/);
  });

  test('no mounts, no entries', () => expect(planMounts([], new Map())).toEqual([]));
});

describe('CLI output', () => {
  test('service inspect shows every mount whole, a bind mount with its type', () => {
    const spec = specFromCreateFlags({ name: 'web', mount: ['type=bind,src=/srv,dst=/srv,ro', 'type=tmpfs,dst=/run,tmpfs-size=1k'] }, IMAGE, []);
    const json = serviceJsonWithMounts(Service.fromPartial({ id: 's1', spec })) as { spec: { task: { container: { mounts: unknown } } } };
    expect(json.spec.task.container.mounts).toEqual([
      { type: 'bind', source: '/srv', target: '/srv', readonly: true },
      { type: 'tmpfs', source: '', target: '/run', readonly: false, tmpfsSizeBytes: 1024 },
    ]);
  });

  test('volume labels and rows', () => {
    expect(volumeLabels(['a=b', 'c', 'd=e=f'])).toEqual({ a: 'b', c: '', d: 'e=f' });
    expect(() => volumeLabels(['=x'])).toThrow(/invalid --label "=x"/);
    const v = { name: 'data', driver: 'local', mountpoint: '/x', labels: {}, createdAt: '', usedBy: ['0123456789abcdef', 'fedcba9876543210'] };
    expect(volumeRows([v, { ...v, name: 'idle', usedBy: [] }])).toEqual([['local', 'data', '0123456789ab,fedcba987654'], ['local', 'idle', '']]);
  });

  test("volume inspect: docker's keys and words, nothing else", () => {
    const v = { name: 'data', driver: 'local', mountpoint: '/var/lib/swarmlet/volumes/data/_data', labels: { team: 'lab' }, createdAt: '2026-12-05T10:00:00Z', usedBy: ['0123456789abcdef'] };
    expect(volumeInspect(v)).toEqual({ CreatedAt: '2026-12-05T10:00:00Z', Driver: 'local', Labels: { team: 'lab' }, Mountpoint: '/var/lib/swarmlet/volumes/data/_data', Name: 'data', Options: null, Scope: 'local' });
  });
});
