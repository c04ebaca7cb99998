import { describePullFailure, parseImageConfig, planImagePrune, planImageRemoval, skopeoReason, StoredImage } from '../../agent/images/image-plans';
import { parseImageReference } from '../../services/common/image-ref';

const ref = parseImageReference('r.lab:5000/app:1');
const fatal = (msg: string) => `time="2026-01-01T00:00:00Z" level=fatal msg="${msg.replace(/"/g, '\\"')}"\n`;

describe('describePullFailure', () => {
  test.each<[string, string, boolean, string, string]>([
    ['manifest unknown', 'initializing source docker://r.lab:5000/app:1: reading manifest 1 in r.lab:5000/app: manifest unknown: manifest unknown', false, 'NotFound', 'image r.lab:5000/app:1 not found in registry r.lab:5000'],
    ['name unknown', 'reading manifest 1 in r.lab:5000/app: name unknown: repository name not known to registry', false, 'NotFound', 'image r.lab:5000/app:1 not found in registry r.lab:5000'],
    ['refused connection', 'pinging container registry r.lab:5000: Get "http://r.lab:5000/v2/": dial tcp 10.0.0.5:5000: connect: connection refused', false, 'Unavailable', 'registry r.lab:5000 unreachable (connection refused)'],
    ['unknown host', 'pinging container registry r.lab:5000: Get "https://r.lab:5000/v2/": dial tcp: lookup r.lab on 127.0.0.53:53: no such host', false, 'Unavailable', 'registry r.lab:5000 unreachable (no such host)'],
    ['plain HTTP', 'pinging container registry r.lab:5000: Get "https://r.lab:5000/v2/": http: server gave HTTP response to HTTPS client', false, 'Unavailable', "registry r.lab:5000 unreachable (it speaks plain HTTP; name it in the daemon's insecureRegistries to pull from it)"],
    ['wrong credential', 'reading manifest 1 in r.lab:5000/app: unauthorized: authentication required', true, 'PermissionDenied', 'registry r.lab:5000 refused the credentials for r.lab:5000/app:1'],
    ['no credential', 'reading manifest 1 in r.lab:5000/app: unauthorized: authentication required', false, 'PermissionDenied', 'registry r.lab:5000 requires credentials for r.lab:5000/app:1 (pass them with --with-registry-auth)'],
    ['denied', 'requested access to the resource is denied', true, 'PermissionDenied', 'registry r.lab:5000 refused the credentials for r.lab:5000/app:1'],
    ['anything else', 'writing blob: disk quota exceeded', false, 'Internal', 'pulling r.lab:5000/app:1 failed: writing blob: disk quota exceeded'],
  ])('%s', (_what, msg, hadAuth, kind, message) => {
    const err = describePullFailure(ref, fatal(msg), hadAuth);
    expect(err.kind).toBe(kind);
    expect(err.message).toBe(message);
  });

  test('skopeoReason takes the fatal line\'s msg, unescaped, or the last line', () => {
    expect(skopeoReason('Getting image source signatures\n' + fatal('say "hi"'))).toBe('say "hi"');
    expect(skopeoReason('plain failure\n')).toBe('plain failure');
  });
});

test('parseImageConfig reads the run config of an OCI image config', () => {
  const json = JSON.stringify({
    created: '2026-01-01T00:00:00Z',
    architecture: 'amd64',
    config: { Entrypoint: ['/init'], Cmd: ['serve', '-v'], Env: ['PATH=/bin', 'A=1'], User: '1000:1000', WorkingDir: '/srv', ExposedPorts: { '80/tcp': {}, '53/udp': {} }, StopSignal: 'SIGQUIT' },
  });
  expect(parseImageConfig(json)).toEqual({
    created: '2026-01-01T00:00:00Z',
    config: { entrypoint: ['/init'], cmd: ['serve', '-v'], env: ['PATH=/bin', 'A=1'], user: '1000:1000', workingDir: '/srv', exposedPorts: ['80/tcp', '53/udp'], stopSignal: 'SIGQUIT' },
  });
  expect(parseImageConfig('{"architecture":"amd64"}')).toEqual({ created: undefined, config: { entrypoint: [], cmd: [], env: [], user: '', workingDir: '' } });
  expect(() => parseImageConfig('{')).toThrow(/not JSON/);
});

describe('planImageRemoval and planImagePrune', () => {
  const A = `sha256:aaaa${'1'.repeat(60)}`;
  const B = `sha256:aaab${'2'.repeat(60)}`;
  const C = `sha256:cccc${'3'.repeat(60)}`;
  const images: StoredImage[] = [
    { id: A, references: ['r/a:1', 'r/a:2'], usedBy: [], sizeBytes: 10 },
    { id: B, references: ['r/b:1'], usedBy: ['t1'], sizeBytes: 20 },
    { id: C, references: [], usedBy: [], sizeBytes: 30 },
  ];

  test.each<[string, { reference?: string; idPrefix?: string }, boolean, { untag: string[]; remove: string[] } | RegExp]>([
    ['one of two references untags it only', { reference: 'r/a:1' }, false, { untag: ['r/a:1'], remove: [] }],
    ['the last reference of a used image: refused', { reference: 'r/b:1' }, false, /image r\/b:1 is used by task t1: stop it first, or use --force/],
    ['the last reference of a used image, forced: untagged, kept', { reference: 'r/b:1' }, true, { untag: ['r/b:1'], remove: [] }],
    ['an id with two references: refused', { idPrefix: 'aaaa' }, false, /is referenced by r\/a:1, r\/a:2/],
    ['an id with two references, forced', { idPrefix: 'sha256:aaaa' }, true, { untag: ['r/a:1', 'r/a:2'], remove: [A] }],
    ['an ambiguous prefix', { idPrefix: 'aaa' }, true, /ambiguous/],
    ['a dangling image by id', { idPrefix: 'cc' }, false, { untag: [], remove: [C] }],
    ['an unknown id', { idPrefix: 'dd' }, true, /no such image: dd/],
  ])('%s', (_what, target, force, expected) => {
    if (expected instanceof RegExp) expect(() => planImageRemoval(images, target, force)).toThrow(expected);
    else expect(planImageRemoval(images, target, force)).toEqual(expected);
  });

  test('the refusal names containers as containers (by short id) and tasks as tasks', () => {
    const used: StoredImage[] = [{ id: B, references: ['r/b:1'], usedBy: ['c'.repeat(64), 't1', 't2'], sizeBytes: 20 }];
    const userOf = (id: string) => (id.startsWith('c') ? { kind: 'container' as const, name: id.slice(0, 12) } : { kind: 'task' as const, name: id });
    expect(() => planImageRemoval(used, { reference: 'r/b:1' }, false, userOf)).toThrow(`image r/b:1 is used by container ${'c'.repeat(12)} and tasks t1, t2: stop them first, or use --force`);
  });

  test('prune: dangling unused images; with all, every unused one', () => {
    expect(planImagePrune(images, false).map((i) => i.id)).toEqual([C]);
    expect(planImagePrune(images, true).map((i) => i.id)).toEqual([A, C]);
  });
});
