import { CRUN_SHIM_ARGV, planCrunShim } from '../../agent/runtime/crun-shim';

describe('planCrunShim', () => {
  test('crun straight from the shim where the system call numbers are known, the overlay made by the shim', () => {
    for (const arch of ['x64', 'arm64']) {
      expect(planCrunShim('crun', '/d/.crun', '/d/t1', 't1', false, arch)).toEqual({
        argv: ['crun', '--root', '/d/.crun', '--cgroup-manager=disabled', 'run', '--bundle', '/d/t1', '--pid-file', '/d/t1/pid', 't1'],
        env: { SL_ROOTFS_OVERLAY: '1' },
      });
    }
  });

  test('the script for a tty task (crun needs a terminal: script gives it one) and on other architectures', () => {
    expect(planCrunShim('crun', '/d/.crun', '/d/t1', 't1', true, 'x64')).toEqual({ argv: CRUN_SHIM_ARGV, env: {} });
    expect(planCrunShim('crun', '/d/.crun', '/d/t1', 't1', false, 'ppc64')).toEqual({ argv: CRUN_SHIM_ARGV, env: {} });
  });
});
