#!/usr/bin/env bash
# `npm run bench:cluster`: runs the cluster benchmark (dist/bench/cluster.js) in throwaway
# namespaces, the way test/run.sh runs the tests, so nothing it makes can reach a real network or
# outlive the run.
#   - A new network namespace with only lo up: no route leaves the machine.
#   - A private mount namespace with a tmpfs on /run/netns (and /run/swarmlet): the lab's
#     namespaces never show up in the host's `ip netns list`.
#   - A new pid namespace: when the run ends, the kernel kills every process it left behind.
# Lab namespaces still there afterwards are deleted, their processes killed; the exit code is the
# benchmark's. Arguments go to the benchmark: bash bench/run.sh --runs 3 [--prefix swb] [--keep-logs DIR]
#
# Needs root, unshare (util-linux), ip (iproute2), etcd, and a build (npm run build).
set -uo pipefail
cd "$(dirname "$0")/.."

SANDBOX_MARK=__swarmlet_bench_sandbox__

if [ "${1:-}" != "$SANDBOX_MARK" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "bench/run.sh: must run as root (the benchmark makes network namespaces)" >&2
    exit 1
  fi
  for tool in unshare ip etcd setpriv; do
    command -v "$tool" >/dev/null || { echo "bench/run.sh: '$tool' is missing (util-linux, iproute2, etcd-server)" >&2; exit 1; }
  done
  for built in dist/bench/cluster.js dist/bench/etcd-start-probe.js dist/bench/etcd-status-probe.js dist/cli/main.js; do
    [ -f "$built" ] || { echo "bench/run.sh: $built is missing: run 'npm run build' first" >&2; exit 1; }
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
  echo "bench/run.sh: the benchmark namespace has a default route; refusing to run" >&2
  exit 1
fi
set +e

remove_leftover_namespaces() {
  local ns pids
  for ns in $(ip netns list | awk '{print $1}'); do
    pids=$(ip netns pids "$ns" 2>/dev/null)
    [ -n "$pids" ] && kill -9 $pids 2>/dev/null
    ip netns del "$ns" 2>/dev/null && echo "bench/run.sh: removed leftover namespace $ns" >&2
  done
}

node dist/bench/cluster.js "$@"
code=$?
remove_leftover_namespaces
exit "$code"
