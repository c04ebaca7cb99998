/**
 * How an exec task runs: its shim (shim-program.ts, the task's log writer and exit recorder) execs
 *
 *   unshare --pid --fork --mount-proc --mount --propagation private --uts --ipc [--net] -- /bin/sh -c INIT_SCRIPT swarmlet-init CMD...
 *
 * (planInitArgv; no --net for a task on the host network), so the task's pid 1 is a small POSIX sh
 * script (an argument, so a running task never depends on a file that may change) whose arguments
 * are the wrapped command (exec-spec.ts wrapCommand). The rest comes in the environment:
 *   SL_DIR           the task's state directory (on the host's filesystem)
 *   SL_HOSTNAME      the task's hostname
 *   SL_ROOT          "/" or the directory the command is chrooted into
 *
 * pid 1 sets the hostname, bind-mounts $SL_DIR/resolv.conf (if there)
 * over the root's /etc/resolv.conf, says "ready", blocks on $SL_DIR/start.fifo (made by the shim)
 * until the runtime starts it, then runs the command as its child, forwards signals to it, reaps,
 * and writes the command's exit status to $SL_DIR/status. pid 1 of a pid namespace can only be
 * killed from outside by SIGKILL, so "ready" without "status" means that (the shim then records 137).
 */

export { SHIM_NAME } from './shim-program';
export const INIT_NAME = 'swarmlet-init';

/** What the shim execs for an exec task (see the top of this file). */
export function planInitArgv(command: string[], hostNetwork: boolean): string[] {
  return ['unshare', '--pid', '--fork', '--mount-proc', '--mount', '--propagation', 'private', '--uts', '--ipc', ...(hostNetwork ? [] : ['--net']), '--', '/bin/sh', '-c', INIT_SCRIPT, INIT_NAME, ...command];
}

export const INIT_SCRIPT = `set -u
# A background command's stdin would be /dev/null: keep the task's on fd 4 for it.
exec 4<&0 0</dev/null
fail() { echo "swarmlet: $*" >&2; exit 125; }
printf '%s' "$SL_HOSTNAME" > /proc/sys/kernel/hostname || fail "cannot set the hostname"
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
# it then would be caught and lost with the copy. Forward nothing until it has (up to 5 s): its
# command line is no longer this script's (its first two lines, read with builtins: no process per
# look; a command may well be a shell too); a few looks at once, then one every 10 ms.
{ IFS= read -r self1; IFS= read -r self2; } < "/proc/$$/cmdline"
copy() {
  c1=
  c2=
  { IFS= read -r c1; IFS= read -r c2; } 2>/dev/null < "/proc/$pid/cmdline"
  [ "$c1" = "$self1" ] && [ "$c2" = "$self2" ]
}
n=0
while [ "$n" -lt 520 ] && copy; do
  n=$((n + 1))
  if [ "$n" -gt 20 ]; then sleep 0.01; fi
done
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
