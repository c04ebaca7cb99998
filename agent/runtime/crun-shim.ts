/**
 * The POSIX sh scripts every oci task runs under (`sh -c SCRIPT NAME`, so a running task never
 * depends on a file that may change). Everything comes in the environment:
 *   SL_DIR           the task's state directory: the crun bundle (config.json), upper/, work/, rootfs/
 *   SL_LOG           the output writer (log-writer.ts): output.log gets the task's output as records
 *   SL_CGROUP_PROCS  cgroup.procs files the shim joins first, space-separated
 *   SL_LOWER         the image's unpacked rootfs (overlayfs lowerdir, read-only)
 *   SL_CRUN          the crun binary; SL_CRUN_ROOT its state directory; SL_ID the container id
 *   SL_UNMOUNT       a cgroup2 mount to hide from crun (hybrid cgroups: crun refuses a cgroup2
 *                    hierarchy with controllers even when it manages no cgroup)
 *   SL_RUN           the second script below
 *   SL_TTY           "1": the container has a pty (config.json's process.terminal)
 *   SL_STDIN, SL_START_FIFO_MODE  the fifos the shim makes first (shim.ts MAKE_FIFOS)
 *
 * The shim (its own session, so it outlives the agent) joins the task's cgroup (the container
 * inherits it: crun runs with --cgroup-manager=disabled, and limits and OOM counts are the same
 * as for exec tasks), protects itself from the OOM killer, and runs SL_RUN in a private mount
 * namespace: the task's overlayfs mount lives there and goes when the task's last process does,
 * so a crashed agent leaves no mount behind. SL_RUN mounts the overlay and execs `crun run` in the
 * foreground; crun exits with the container's status (128+N for a signal), which the shim writes
 * to $SL_DIR/exitcode.
 */

import { SHIM_PRELUDE } from './log-writer';
import { MAKE_FIFOS } from './shim';

export const CRUN_SHIM_NAME = 'swarmlet-crun-shim';

export const CRUN_SHIM_SCRIPT = `${SHIM_PRELUDE}
echo -998 > /proc/self/oom_score_adj 2>/dev/null
${MAKE_FIFOS}
# The container's stdin: the task's fifo when it has one (held open here: never EOF), else nothing.
if [ -p "$SL_DIR/stdin.fifo" ]; then exec 3<>"$SL_DIR/stdin.fifo"; else exec 3</dev/null; fi
unshare --mount --propagation private -- /bin/sh -c "$SL_RUN" swarmlet-crun 0<&3 3<&- &
wait $!
finish $?
`;

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
