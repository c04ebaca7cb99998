import { planLab, planRoles, planShellArgv, planShellEnv, planShellRc, resolveHost } from '../../lab/plans';

describe('planLab: the options of `swarmlet lab up`', () => {
  test('defaults: swlab, 3 hosts, 1 manager, no registry', () => {
    expect(planLab({})).toEqual({ name: 'swlab', hosts: 3, managers: 1, registry: false });
  });
  test.each([
    [{ name: 'Lab' }, 'invalid lab name "Lab"'],
    [{ name: '1lab' }, 'invalid lab name "1lab"'],
    [{ name: 'abcdefghijklm' }, 'invalid lab name "abcdefghijklm"'],
    [{ name: 'swl' }, "not swl: the daemon's own namespaces start with it"],
    [{ hosts: 0 }, '--hosts must be a whole number from 1 to 20, not 0'],
    [{ hosts: 2.5 }, '--hosts must be a whole number from 1 to 20, not 2.5'],
    [{ hosts: 21 }, '--hosts must be a whole number from 1 to 20, not 21'],
    [{ hosts: 2, managers: 3 }, '--managers must be a whole number from 1 to --hosts (2), not 3'],
    [{ managers: 0 }, '--managers must be a whole number from 1 to --hosts (3), not 0'],
  ])('%j is refused', (opts, message) => {
    expect(() => planLab(opts)).toThrow(message);
  });
});

test.each([
  [{ hosts: 3, managers: 1 }, { managers: [1], workers: [2, 3] }],
  [{ hosts: 5, managers: 3 }, { managers: [1, 2, 3], workers: [4, 5] }],
  [{ hosts: 1, managers: 1 }, { managers: [1], workers: [] }],
])('planRoles(%j): the first hosts are the managers', (plan, roles) => {
  expect(planRoles(plan)).toEqual(roles);
});

describe('resolveHost: what `lab shell HOST` accepts', () => {
  const hosts = [1, 2, 3].map((index) => ({ index, name: `swlab-h${index}` }));
  test.each(['h2', '2', 'swlab-h2'])('%s is host 2', (word) => expect(resolveHost('swlab', hosts, word).index).toBe(2));
  test.each(['h4', '0', 'lab-h2', 'swlab-h', 'other', 'h2x'])('%s is no host', (word) => {
    expect(() => resolveHost('swlab', hosts, word)).toThrow(`lab swlab has no host ${JSON.stringify(word)}: its hosts are h1, h2, h3`);
  });
});

test('a lab shell: SWARMLET_HOST names the host daemon, this swarmlet comes first on PATH, the rest of the environment stays', () => {
  const env = planShellEnv({ name: 'swlab-h2', socket: 'unix:///run/swarmlet/lab/swlab/h2.sock' }, '/opt/swarmlet/bin', { PATH: '/usr/bin:/opt/swarmlet/bin:/bin', HOME: '/root', SWARMLET_HOST: 'unix:///elsewhere', GONE: undefined });
  expect(env).toEqual({ PATH: '/opt/swarmlet/bin:/usr/bin:/bin', HOME: '/root', SWARMLET_HOST: 'unix:///run/swarmlet/lab/swlab/h2.sock', SWARMLET_LAB_HOST: 'swlab-h2' });
  expect(planShellArgv('swlab-h2', '/rc', [])).toEqual(['nsenter', '--net=/run/netns/swlab-h2', '--', 'bash', '--rcfile', '/rc', '-i']);
  expect(planShellArgv('swlab-h2', '/rc', ['swarmlet', 'node', 'ls'])).toEqual(['nsenter', '--net=/run/netns/swlab-h2', '--', 'swarmlet', 'node', 'ls']);
  expect(planShellRc('swlab-h2')).toBe('[ -f ~/.bashrc ] && . ~/.bashrc\nPS1="[swlab-h2] ${PS1:-\\u@\\h:\\w\\$ }"\n');
});
