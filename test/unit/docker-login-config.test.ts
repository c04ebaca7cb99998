import { credentialsFromDockerConfig, loginServer, planDockerLogin, planDockerLogout } from '../../services/common/registry-auth';

const b64 = (s: string) => Buffer.from(s).toString('base64');

test.each([
  [undefined, 'docker.io'],
  ['localhost:5000', 'localhost:5000'],
  ['http://localhost:5000', 'localhost:5000'],
  ['https://Registry.Lab:5000/v2/', 'registry.lab:5000'],
  ['https://index.docker.io/v1/', 'docker.io'],
  ['registry-1.docker.io', 'docker.io'],
])('login server of %j is %s', (input, want) => expect(loginServer(input)).toBe(want));

test('a bad server is refused', () => expect(() => loginServer('not a host')).toThrow('invalid registry address: "not a host"'));

test('login writes auths.<host>.auth = base64(user:password) and keeps the rest of the file', () => {
  const before = JSON.stringify({ auths: { 'other:5000': { auth: b64('a:b') }, 'http://localhost:5000': { auth: b64('old:old') } }, credsStore: '', psFormat: 'x' });
  const after = JSON.parse(planDockerLogin(before, 'localhost:5000', { username: 'carol', password: 'p:w' }));
  expect(after).toEqual({ auths: { 'other:5000': { auth: b64('a:b') }, 'localhost:5000': { auth: b64('carol:p:w') } }, credsStore: '', psFormat: 'x' });
  expect(JSON.parse(planDockerLogin(undefined, 'docker.io', { username: 'u', password: 'p' }))).toEqual({ auths: { 'https://index.docker.io/v1/': { auth: b64('u:p') } } });
  expect(() => planDockerLogin('{not json', 'x:1', { username: 'u', password: 'p' })).toThrow('the docker config file is not JSON');
});

test('logout removes every entry for the registry and says whether there was one', () => {
  const before = JSON.stringify({ auths: { 'localhost:5000': { auth: b64('a:b') }, 'https://localhost:5000': { auth: b64('a:b') }, 'other:1': { auth: b64('c:d') } } });
  const { text, removed } = planDockerLogout(before, 'localhost:5000');
  expect(removed).toBe(true);
  expect(JSON.parse(text)).toEqual({ auths: { 'other:1': { auth: b64('c:d') } } });
  expect(planDockerLogout(text, 'localhost:5000').removed).toBe(false);
  expect(planDockerLogout(undefined, 'localhost:5000').removed).toBe(false);
});

test('every saved credential by registry host', () => {
  const config = JSON.stringify({ auths: { 'https://index.docker.io/v1/': { auth: b64('hub:1') }, 'localhost:5000': { username: 'u', password: 'p' }, 'bad key!': { auth: b64('x:y') } } });
  expect(credentialsFromDockerConfig(config)).toEqual({ 'docker.io': { username: 'hub', password: '1' }, 'localhost:5000': { username: 'u', password: 'p' } });
});
