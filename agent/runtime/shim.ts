/**
 * The two POSIX sh scripts every exec task runs under (run as `sh -c SCRIPT NAME ARGV...`, so a
 * running task never depends on a file that may change). Their arguments are the wrapped command
 * (exec-spec.ts wrapCommand); the rest comes in the environment:
 *   SL_DIR           the task's state directory (on the host's filesystem)
 *   SL_LOG           the output writer (log-writer.ts): output.log gets the task's output as records
 *   SL_CGROUP_PROCS  cgroup.procs files the shim joins first, space-separated
 *   SL_HOSTNAME      the task's hostname
 *   SL_ROOT          "/" or the directory the command is chrooted into
 *   SL_INIT          the init script below
 *   SL_HOST_NET      "1": the task shares the host's network namespace (no --net, lo left alone)
 *   SL_STDIN         "1": the task has a stdin fifo (tty or open_stdin), made by the shim (MAKE_FIFOS)
 *
 * The shim (its own session, so it outlives the agent) makes $SL_DIR/start.fifo (and stdin.fifo),
 * holds $SL_DIR/stdin.fifo open when the
 * task has one (tty or open_stdin: the command's stdin; with a tty the command is `script`'s, see
 * terminal-plans.ts), joins the task's cgroup, starts the
 * namespaces with `unshare` (all but the network one for a task on the host network), waits,
 * and writes the exit code to $SL_DIR/exitcode. Inside, pid 1 sets the hostname and lo up (not
 * the host's), bind-mounts $SL_DIR/resolv.conf (if there) over the root's /etc/resolv.conf,
 * says "ready", blocks on $SL_DIR/start.fifo until the runtime starts it, then runs
 * the command as its child, forwards signals to it, reaps, and writes the command's exit status
 * to $SL_DIR/status. pid 1 of a pid namespace can only be killed from
 * outside by SIGKILL, so "ready" without "status" means that.
 */

import { SHIM_PRELUDE } from './log-writer';

export const SHIM_NAME = 'swarmlet-shim';
export const INIT_NAME = 'swarmlet-init';

/**
 * The shim makes its task's fifos (not the daemon, which would spawn a mkfifo per task): the start
 * fifo with mode SL_START_FIFO_MODE (default 0600), and the stdin fifo when SL_STDIN is 1.
 */
export const MAKE_FIFOS = `[ -p "$SL_DIR/start.fifo" ] || mkfifo -m "\${SL_START_FIFO_MODE:-0600}" "$SL_DIR/start.fifo" || { echo "swarmlet: cannot make the start fifo" >&2; finish 125; }
if [ "\${SL_STDIN:-}" = 1 ] && [ ! -p "$SL_DIR/stdin.fifo" ]; then mkfifo -m 0600 "$SL_DIR/stdin.fifo" || { echo "swarmlet: cannot make the stdin fifo" >&2; finish 125; }; fi`;

export const SHIM_SCRIPT = `${SHIM_PRELUDE}
net=--net
if [ "\${SL_HOST_NET:-}" = 1 ]; then net=; fi
${MAKE_FIFOS}
# The task's stdin: its fifo when it has one (held open here, so it never sees EOF), else nothing.
if [ -p "$SL_DIR/stdin.fifo" ]; then exec 3<>"$SL_DIR/stdin.fifo"; else exec 3</dev/null; fi
unshare --pid --fork --mount-proc --mount --propagation private --uts --ipc $net -- /bin/sh -c "$SL_INIT" ${INIT_NAME} "$@" 0<&3 3<&- &
wait $!
rc=$?
if [ -s "$SL_DIR/status" ]; then
  read -r rc < "$SL_DIR/status"
elif [ -e "$SL_DIR/ready" ]; then
  rc=137
fi
finish "$rc"
`;

export const INIT_SCRIPT = `set -u
# A background command's stdin would be /dev/null: keep the task's on fd 4 for it.
exec 4<&0 0</dev/null
fail() { echo "swarmlet: $*" >&2; exit 125; }
printf '%s' "$SL_HOSTNAME" > /proc/sys/kernel/hostname || fail "cannot set the hostname"
if [ "\${SL_HOST_NET:-}" != 1 ]; then ip link set lo up || fail "cannot bring lo up"; fi
if [ "$SL_ROOT" != / ]; then
  if [ -d "$SL_ROOT/proc" ]; then mount -t proc proc "$SL_ROOT/proc" || fail "cannot mount proc in $SL_ROOT"; fi
  if [ -d "$SL_ROOT/dev" ]; then mount --rbind /dev "$SL_ROOT/dev" || fail "cannot mount dev in $SL_ROOT"; fi
fi
# The embedded DNS's resolv.conf, when the runtime wrote one (a chroot's symlink is not followed on the host).
rc="$SL_ROOT/etc/resolv.conf"
if [ -f "$SL_DIR/resolv.conf" ] && [ -e "$rc" ] && { [ "$SL_ROOT" = / ] || [ ! -L "$rc" ]; }; then
  mount --bind "$SL_DIR/resolv.conf" "$rc" || fail "cannot mount resolv.conf in $SL_ROOT"
fi
# Secrets (a directory, at /run/secrets) and configs (over a file), read-only, when the runtime wrote a mounts file.
if [ -s "$SL_DIR/mounts" ]; then
  tab=$(printf '\t')
  while IFS="$tab" read -r kind src dst; do
    t="\${SL_ROOT%/}$dst"
    if [ "$kind" = d ]; then mkdir -p "$t" || fail "cannot make $dst in $SL_ROOT"; fi
    mount --bind "$src" "$t" || fail "cannot mount $dst in $SL_ROOT"
    mount -o remount,bind,ro,nosuid,nodev,noexec "$t" || fail "cannot make $dst read-only in $SL_ROOT"
  done < "$SL_DIR/mounts"
fi
: > "$SL_DIR/ready"
read -r go < "$SL_DIR/start.fifo" || fail "start fifo closed"
child=
pending=
got=0
fwd() {
  got=1
  if [ -n "$child" ]; then kill -s "$1" "$child" 2>/dev/null; else pending=$1; fi
}
# Traps before "started": a stop that follows start at once must find them in place (pid 1 of a
# pid namespace ignores signals it has no handler for).
for sig in TERM INT HUP QUIT USR1 USR2 WINCH; do trap "fwd $sig" "$sig"; done
: > "$SL_DIR/started"
"$@" 0<&4 4<&- &
pid=$!
# Until the child execs the command it is a copy of this shell, traps included: a signal sent to
# it then would be caught and lost with the copy. Forward nothing until it has (up to 5 s).
n=0
while [ "$n" -lt 500 ] && cmp -s "/proc/$$/cmdline" "/proc/$pid/cmdline"; do sleep 0.01; n=$((n + 1)); done
child=$pid
if [ -n "$pending" ]; then kill -s "$pending" "$child" 2>/dev/null; fi
while :; do
  got=0
  wait "$child" 2>/dev/null
  code=$?
  [ "$got" = 1 ] || break
done
echo "$code" > "$SL_DIR/status"
exit "$code"
`;
