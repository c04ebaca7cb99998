#!/usr/bin/env bash
# `npm test`: runs jest in throwaway namespaces, so nothing a test makes can reach a real network
# or outlive the run.
#   - A new network namespace with only lo up: no route leaves the machine.
#   - A private mount namespace with a tmpfs on /run/netns (and /run/swarmlet): the namespaces that
#     tests make with `ip netns add` never show up in the host's `ip netns list`.
#   - A new pid namespace: when the run ends, the kernel kills every process it left behind.
# Lab namespaces still there after jest are deleted, their processes killed; the exit code is
# jest's. Arguments are passed to jest unchanged: bash test/run.sh test/integration/lab.test.ts
#
# Needs root, unshare (util-linux) and ip (iproute2). It does not need a build: unit and integration
# tests run from the TypeScript sources, and the tests that drive the built CLI or daemon check for
# dist/ themselves (requireBuiltCli in test/lab/lab.ts) and fail saying to run `npm run build`.
set -uo pipefail
cd "$(dirname "$0")/.."

SANDBOX_MARK=__swarmlet_test_sandbox__

if [ "${1:-}" != "$SANDBOX_MARK" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "test/run.sh: must run as root (the tests make network namespaces)" >&2
    exit 1
  fi
  for tool in unshare ip; do
    command -v "$tool" >/dev/null || { echo "test/run.sh: '$tool' is missing (util-linux, iproute2)" >&2; exit 1; }
  done
  exec unshare --net --mount --propagation private --pid --fork --mount-proc bash "$0" "$SANDBOX_MARK" "$@"
fi
shift

# From here on: pid 1 of a fresh pid namespace, in a network namespace of our own.
set -e
for dir in /run/netns /run/swarmlet; do
  mkdir -p "$dir"
  mount -t tmpfs -o mode=0755 tmpfs "$dir"
done
ip link set lo up
if [ -n "$(ip route show default)" ]; then
  echo "test/run.sh: the test namespace has a default route; refusing to run" >&2
  exit 1
fi
set +e

remove_leftover_namespaces() {
  local ns pids
  for ns in $(ip netns list | awk '{print $1}'); do
    pids=$(ip netns pids "$ns" 2>/dev/null)
    [ -n "$pids" ] && kill -9 $pids 2>/dev/null
    ip netns del "$ns" 2>/dev/null && echo "test/run.sh: removed leftover namespace $ns" >&2
  done
}

./node_modules/.bin/jest "$@"
code=$?
remove_leftover_namespaces
exit "$code"
