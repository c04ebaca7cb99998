import { ExecConfig, wrapCommand } from '../../agent/runtime/exec-spec';

const cfg = (o: Partial<ExecConfig> = {}): ExecConfig => ({ root: '/', workdir: '/', env: ['PATH=/bin'], hostname: 'h', argv: ['sleep', '1'], ...o });

describe('wrapCommand', () => {
  test.each<[string, ExecConfig, string[], { cwd?: string }, string[]]>([
    ['started in its workdir: env execs the command itself', cfg(), ['sleep', '1'], { cwd: '/' }, ['env', '-i', '--default-signal', 'PATH=/bin', 'sleep', '1']],
    ['anywhere else: unshare sets the workdir', cfg(), ['sleep', '1'], {}, ['env', '-i', '--default-signal', 'PATH=/bin', 'unshare', '--wd=/', '--', 'sleep', '1']],
    ['another workdir', cfg({ workdir: '/tmp' }), ['sleep', '1'], { cwd: '/' }, ['env', '-i', '--default-signal', 'PATH=/bin', 'unshare', '--wd=/tmp', '--', 'sleep', '1']],
    ['a command env would take for a variable', cfg(), ['A=b'], { cwd: '/' }, ['env', '-i', '--default-signal', 'PATH=/bin', 'unshare', '--wd=/', '--', 'A=b']],
    ['a user: setpriv', cfg({ user: { uid: 1, gid: 2, groups: [2] } }), ['A=b'], { cwd: '/' }, ['env', '-i', '--default-signal', 'PATH=/bin', 'setpriv', '--reuid=1', '--regid=2', '--groups=2', '--', 'A=b']],
    ['a chroot', cfg({ root: '/srv/r' }), ['sleep', '1'], { cwd: '/' }, ['env', '-i', '--default-signal', 'PATH=/bin', 'unshare', '--root=/srv/r', '--wd=/', '--', 'sleep', '1']],
  ])('%s', (_name, c, argv, opts, want) => expect(wrapCommand(c, argv, opts)).toEqual(want));
});
