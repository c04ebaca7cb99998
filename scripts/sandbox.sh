#!/usr/bin/env bash
# Runs a command in throwaway namespaces, so nothing it makes can reach a real network or outlive
# it: a new network namespace with only lo up (no route leaves the machine), a private mount
# namespace with tmpfs on /run/netns and /run/swarmlet (namespaces made with `ip netns add` never
# show in the host's list), and a new pid namespace (the kernel kills whatever is left at the end).
# (Not /tmp: the checkout itself may live there. Tests name what they make there uniquely.)
# Namespaces still there when the command ends are deleted; the exit code is the command's.
# Needs root, unshare (util-linux) and ip (iproute2).
#   scripts/sandbox.sh node dist/test/lab/demo.js
set -uo pipefail

MARK=__swarmlet_sandbox__
if [ "${1:-}" != "$MARK" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "sandbox: must run as root (it makes network namespaces)" >&2
    exit 1
  fi
  for tool in unshare ip; do
    command -v "$tool" >/dev/null || { echo "sandbox: '$tool' is missing (util-linux, iproute2)" >&2; exit 1; }
  done
  exec unshare --net --mount --propagation private --pid --fork --mount-proc bash "$0" "$MARK" "$@"
fi
shift

set -e
for dir in /run/netns /run/swarmlet; do
  mkdir -p "$dir"
  mount -t tmpfs -o mode=0755 tmpfs "$dir"
done
ip link set lo up
if [ -n "$(ip route show default)" ]; then
  echo "sandbox: the namespace has a default route; refusing to run" >&2
  exit 1
fi
set +e

"$@"
code=$?
for ns in $(ip netns list | awk '{print $1}'); do
  pids=$(ip netns pids "$ns" 2>/dev/null)
  [ -n "$pids" ] && kill -9 $pids 2>/dev/null
  ip netns del "$ns" 2>/dev/null && echo "sandbox: removed leftover namespace $ns" >&2
done
exit "$code"
