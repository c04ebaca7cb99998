import { buildFailure, describeLoginFailure, describePushFailure, isInsecureRegistry, planBuildSpec, planBuildahBud, renderRegistriesConf } from '../../agent/images/build-plans';
import { parseImageReference } from '../../services/common/image-ref';

const req = (over: Partial<Parameters<typeof planBuildSpec>[0]> = {}) => ({ contextDir: '/ctx', dockerfile: '', tags: [], buildArgs: {}, quiet: false, noCache: false, target: '', ...over });
const paths = { root: '/d/images/buildah/root', runroot: '/d/images/buildah/runroot', registriesConf: '/d/images/buildah/registries.conf' };

describe('isInsecureRegistry', () => {
  test.each([
    ['localhost:5000', [], true],
    ['localhost', [], true],
    ['127.0.0.1:5000', [], true],
    ['127.1.2.3:80', [], true],
    ['[::1]:5000', [], true],
    ['10.0.0.5:5000', [], false],
    ['10.0.0.5:5000', ['10.0.0.5:5000'], true],
    ['10.0.0.5:5001', ['10.0.0.5:5000'], false],
    ['docker.io', [], false],
    ['localhost.example.com', [], false],
  ])('%s with %j: %s', (domain, list, want) => expect(isInsecureRegistry(domain, list)).toBe(want));
});

test('registries.conf: docker.io for short names; loopback and the named registries plain HTTP', () => {
  const text = renderRegistriesConf(['10.0.0.5:5000']);
  expect(text).toContain('unqualified-search-registries = ["docker.io"]');
  for (const loc of ['localhost', '127.0.0.1', '[::1]', '10.0.0.5:5000']) expect(text).toContain(`[[registry]]\nlocation = "${loc}"\ninsecure = true\n`);
});

describe('planBuildSpec', () => {
  test('tags are normalized, build args kept', () => {
    const s = planBuildSpec(req({ tags: ['app', 'localhost:5000/app:1'], buildArgs: { V: '1' } }));
    expect(s.tags.map((t) => t.normalized)).toEqual(['docker.io/library/app:latest', 'localhost:5000/app:1']);
    expect(s.buildArgs).toEqual({ V: '1' });
  });
  test.each([
    [req({ contextDir: '' }), 'a build context is required'],
    [req({ contextDir: 'rel' }), 'the build context must be an absolute path: rel'],
    [req({ dockerfile: 'Dockerfile' }), 'the Dockerfile must be an absolute path: Dockerfile'],
    [req({ tags: ['Bad:1'] }), 'invalid reference format'],
    [req({ tags: ['app@sha256:' + 'a'.repeat(64)] }), 'a tag cannot name a digest'],
    [req({ buildArgs: { 'A-B': '1' } }), 'invalid --build-arg name: "A-B"'],
  ])('%j is refused', (r, msg) => expect(() => planBuildSpec(r)).toThrow(msg));
});

test('buildah bud: the daemon\'s storage, chroot isolation, host network, cache, args, context last', () => {
  const args = planBuildahBud(paths, planBuildSpec(req({ dockerfile: '/ctx/Dockerfile.dev', buildArgs: { V: '1' }, noCache: true, quiet: true, target: 'dev' })), { iidfile: '/w/iid', authfile: '/w/auth.json' });
  expect(args).toEqual([
    '--root', paths.root, '--runroot', paths.runroot, '--storage-driver', 'vfs', '--registries-conf', paths.registriesConf,
    'bud', '--isolation', 'chroot', '--network', 'host', '--layers', '--pull=false', '--iidfile', '/w/iid',
    '--quiet', '--no-cache', '--target', 'dev', '--file', '/ctx/Dockerfile.dev', '--authfile', '/w/auth.json', '--build-arg', 'V=1', '/ctx',
  ]);
});

test.each([
  ['time="x" level=error msg="exit status 3"\nError: building at STEP "RUN exit 3": exit status 3\n', 'Internal', 'the build failed: step "RUN exit 3": exit status 3'],
  ['Error: context must be a directory: "/nothere"\n', 'Internal', 'the build failed: context must be a directory: "/nothere"'],
  ['Error: no Dockerfile found in /ctx\n', 'InvalidArgument', 'the build failed: no Dockerfile found in /ctx'],
])('build failure %#', (stderr, kind, message) => {
  const e = buildFailure(stderr);
  expect({ kind: e.kind, message: e.message }).toEqual({ kind, message });
});

test.each([
  ['unauthorized: authentication required', false, 'PermissionDenied', 'registry r:5000 requires credentials to push r:5000/a:1 (run swarmlet login r:5000)'],
  ['unauthorized: authentication required', true, 'PermissionDenied', 'registry r:5000 refused the credentials to push r:5000/a:1'],
  ['Get "https://r:5000/v2/": http: server gave HTTP response to HTTPS client', false, 'Unavailable', "registry r:5000 unreachable (it speaks plain HTTP; name it in the daemon's insecureRegistries to push to it)"],
])('push failure %#', (stderr, hadAuth, kind, message) => {
  const e = describePushFailure(parseImageReference('r:5000/a:1'), stderr, hadAuth);
  expect({ kind: e.kind, message: e.message }).toEqual({ kind, message });
});

test('login failure: refused credentials', () => {
  const e = describeLoginFailure('r:5000', 'Error: authenticating creds for "r:5000": Requesting bearer token: invalid status code from registry 401 (Unauthorized)\n');
  expect({ kind: e.kind, message: e.message }).toEqual({ kind: 'PermissionDenied', message: 'login to r:5000 failed: unauthorized: incorrect username or password' });
});
