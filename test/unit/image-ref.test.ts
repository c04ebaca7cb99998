import { parseImageReference, registryAuthKeys, transportReference } from '../../services/common/image-ref';
import { credentialFromDockerConfig, parseRegistryAuth, renderAuthFile } from '../../services/common/registry-auth';

const D64 = 'a'.repeat(64);

describe('parseImageReference normalizes as docker does', () => {
  test.each<[string, string, Partial<ReturnType<typeof parseImageReference>>]>([
    ['busybox', 'docker.io/library/busybox:latest', { domain: 'docker.io', path: 'library/busybox', tag: 'latest' }],
    ['busybox:1.36', 'docker.io/library/busybox:1.36', { tag: '1.36' }],
    ['nginx:alpine', 'docker.io/library/nginx:alpine', {}],
    ['user/app', 'docker.io/user/app:latest', { path: 'user/app' }],
    ['docker.io/busybox', 'docker.io/library/busybox:latest', {}],
    ['index.docker.io/library/busybox:1', 'docker.io/library/busybox:1', { domain: 'docker.io' }],
    ['localhost/app', 'localhost/app:latest', { domain: 'localhost', path: 'app' }],
    ['localhost:5000/app', 'localhost:5000/app:latest', { domain: 'localhost:5000' }],
    ['198.51.100.200:5000/busybox:latest', '198.51.100.200:5000/busybox:latest', { domain: '198.51.100.200:5000', path: 'busybox' }],
    ['registry.lab/team/x/y:v1.2_3-rc', 'registry.lab/team/x/y:v1.2_3-rc', { domain: 'registry.lab', path: 'team/x/y', tag: 'v1.2_3-rc' }],
    ['Registry.Lab/x', 'Registry.Lab/x:latest', { domain: 'Registry.Lab' }],
    ['REGISTRY/x', 'REGISTRY/x:latest', { domain: 'REGISTRY' }],
    [`busybox@sha256:${D64}`, `docker.io/library/busybox@sha256:${D64}`, { tag: undefined, digest: `sha256:${D64}` }],
    [`host:5000/a:t@sha256:${D64}`, `host:5000/a:t@sha256:${D64}`, { tag: 't', digest: `sha256:${D64}` }],
    ['a__b/c--d.e_f', 'docker.io/a__b/c--d.e_f:latest', {}],
    ['[::1]:5000/x', '[::1]:5000/x:latest', { domain: '[::1]:5000' }],
  ])('%s -> %s', (input, normalized, fields) => {
    const ref = parseImageReference(input);
    expect(ref.normalized).toBe(normalized);
    expect(ref).toMatchObject(fields);
    expect(ref.name).toBe(`${ref.domain}/${ref.path}`);
  });

  test.each<[string, RegExp]>([
    ['', /it is empty/],
    ['busy box', /whitespace/],
    ['busybox\0', /whitespace or control/],
    ['BusyBox', /must be lowercase/],
    ['host:5000/UPPER', /must be lowercase/],
    ['busybox:', /a tag is/],
    ['busybox:-x', /a tag is/],
    [`busybox:${'t'.repeat(129)}`, /a tag is/],
    ['busybox@sha256:abc', /a digest is/],
    [`busybox@md5:${D64}`, /a digest is/],
    ['host:5000/x:a:b', /a tag is|not a valid/],
    ['a//b', /empty component/],
    ['/busybox', /empty component|not a valid registry/],
    ['busybox/', /empty component/],
    ['a/-b', /not a valid repository name component/],
    ['a/b..c', /not a valid repository name component/],
    ['host:port/x', /not a valid registry/],
    ['-host.lab/x', /not a valid registry/],
    [D64, /64-character hex/],
    [`x/${'a'.repeat(260)}`, /longer than 255/],
    [':latest', /repository name is missing/],
  ])('refuses %j', (input, why) => {
    expect(() => parseImageReference(input)).toThrow(/^invalid reference format: /);
    expect(() => parseImageReference(input)).toThrow(why);
  });

  test('pulls go by digest when there is one', () => {
    expect(transportReference(parseImageReference('busybox'))).toBe('docker.io/library/busybox:latest');
    expect(transportReference(parseImageReference(`h:1/a:t@sha256:${D64}`))).toBe(`h:1/a@sha256:${D64}`);
  });
});

describe('registry credentials', () => {
  const b64 = (s: string) => Buffer.from(s).toString('base64');

  test.each<[string, string, { username: string; password: string }]>([
    ['user:password', 'alice:pw', { username: 'alice', password: 'pw' }],
    ['a password with colons', 'alice:p:w:x', { username: 'alice', password: 'p:w:x' }],
    ['base64 user:password', b64('alice:pw'), { username: 'alice', password: 'pw' }],
    ['docker base64 JSON', b64(JSON.stringify({ username: 'alice', password: 'pw', serveraddress: 'r:5000' })), { username: 'alice', password: 'pw' }],
    ['base64 JSON with an auth field', b64(JSON.stringify({ auth: b64('bob:x') })), { username: 'bob', password: 'x' }],
  ])('parses %s', (_what, text, cred) => {
    expect(parseRegistryAuth(text)).toEqual(cred);
  });

  test.each([[''], ['nocolon'], [b64(JSON.stringify({ username: 'alice' }))]])('refuses %j', (text) => {
    expect(() => parseRegistryAuth(text)).toThrow(/registry credential/);
  });

  test('the auth file skopeo reads', () => {
    expect(JSON.parse(renderAuthFile('r:5000', { username: 'alice', password: 'pw' }))).toEqual({ auths: { 'r:5000': { auth: b64('alice:pw') } } });
  });

  test('docker login\'s config.json, by registry', () => {
    const cfg = JSON.stringify({
      auths: {
        'https://index.docker.io/v1/': { auth: b64('hub:1') },
        'r.lab:5000': { auth: b64('lab:2') },
        'https://other.lab': { username: 'o', password: '3' },
      },
    });
    expect(credentialFromDockerConfig(cfg, 'docker.io')).toEqual({ username: 'hub', password: '1' });
    expect(credentialFromDockerConfig(cfg, 'r.lab:5000')).toEqual({ username: 'lab', password: '2' });
    expect(credentialFromDockerConfig(cfg, 'other.lab')).toEqual({ username: 'o', password: '3' });
    expect(credentialFromDockerConfig(cfg, 'nowhere.lab')).toBeUndefined();
    expect(() => credentialFromDockerConfig('{', 'x')).toThrow(/not JSON/);
    expect(registryAuthKeys('docker.io')[0]).toBe('https://index.docker.io/v1/');
  });
});
