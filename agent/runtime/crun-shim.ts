/**
 * How an oci task runs: its shim (shim-program.ts: the task's log writer and exit recorder, which
 * joins the task's cgroup, makes the fifos, takes the task's stdin and protects itself from the OOM
 * killer with SL_OOM_SCORE_ADJ) execs crun directly after making the mount namespace and the
 * overlay itself (planCrunShim), or, for a tty task or on an architecture it has no system call
 * numbers for, CRUN_SHIM_ARGV: CRUN_RUN_SCRIPT (a POSIX sh script, an
 * argument, so a running task never depends on a file that may change) in a private mount
 * namespace: the task's overlayfs mount lives there and goes when the task's last process does,
 * so a crashed agent leaves no mount behind. The container inherits the cgroup: crun runs with
 * --cgroup-manager=disabled, and limits and OOM counts are the same as for exec tasks. The script
 * mounts the overlay and execs `crun run` in the foreground; crun exits with the container's
 * status (128+N for a signal), which the shim writes to $SL_DIR/exitcode. Its environment:
 *   SL_DIR           the task's state directory: the crun bundle (config.json), upper/, work/, rootfs/
 *   SL_LOWER         the image's unpacked rootfs (overlayfs lowerdir, read-only)
 *   SL_CRUN          the crun binary; SL_CRUN_ROOT its state directory; SL_ID the container id
 *   SL_UNMOUNT       a cgroup2 mount to hide from crun (hybrid cgroups: crun refuses a cgroup2
 *                    hierarchy with controllers even when it manages no cgroup)
 *   SL_TTY           "1": the container has a pty (config.json's process.terminal)
 */

export const CRUN_RUN_SCRIPT = `set -u
if [ -n "\${SL_UNMOUNT:-}" ]; then umount -l "$SL_UNMOUNT" 2>/dev/null; fi
mount -t overlay overlay -o "lowerdir=$SL_LOWER,upperdir=$SL_DIR/upper,workdir=$SL_DIR/work" "$SL_DIR/rootfs" || {
  echo "swarmlet: cannot mount the task's root filesystem (overlay on $SL_LOWER)" >&2
  exit 125
}
# A tty task: crun makes the container's pty and copies it to and from its own stdio, which must
# be a terminal: script gives it one (see terminal-plans.ts).
if [ "\${SL_TTY:-}" = 1 ]; then
  exec script -q -e -c 'exec "$SL_CRUN" --root "$SL_CRUN_ROOT" --cgroup-manager=disabled run --bundle "$SL_DIR" --pid-file "$SL_DIR/pid" "$SL_ID"' /dev/null
fi
exec "$SL_CRUN" --root "$SL_CRUN_ROOT" --cgroup-manager=disabled run --bundle "$SL_DIR" --pid-file "$SL_DIR/pid" "$SL_ID"
`;

export const CRUN_SHIM_NAME = 'swarmlet-crun';

/** What the shim execs for an oci task through the script. */
export const CRUN_SHIM_ARGV = ['unshare', '--mount', '--propagation', 'private', '--', '/bin/sh', '-c', CRUN_RUN_SCRIPT, CRUN_SHIM_NAME];

/**
 * What the shim execs for an oci task: crun itself, its child having made the mount namespace and
 * the overlay with system calls (shim-program.ts, SL_ROOTFS_OVERLAY: no unshare, sh, umount and
 * mount processes), where the architecture's system call numbers are known and the task has no
 * tty; else the script. Plus the environment that asks for it.
 */
export function planCrunShim(crun: string, crunRoot: string, dir: string, id: string, tty: boolean, arch: string): { argv: string[]; env: Record<string, string> } {
  if (tty || (arch !== 'x64' && arch !== 'arm64')) return { argv: CRUN_SHIM_ARGV, env: {} };
  return { argv: [crun, '--root', crunRoot, '--cgroup-manager=disabled', 'run', '--bundle', dir, '--pid-file', `${dir}/pid`, id], env: { SL_ROOTFS_OVERLAY: '1' } };
}
