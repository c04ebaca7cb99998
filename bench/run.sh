#!/usr/bin/env bash
# Runs a benchmark in throwaway namespaces (scripts/sandbox.sh: private network, mount and pid
# namespaces), so nothing it makes can reach a real network or outlive the run.
#   bash bench/run.sh cluster --runs 3 [--prefix swb] [--keep-logs DIR]
# Needs root, a build (npm run build), and for the cluster benchmark etcd (etcd-server).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
name="${1:-cluster}"
shift || true
[ -f "dist/bench/$name.js" ] || { echo "bench/run.sh: dist/bench/$name.js is missing: run 'npm run build' first" >&2; exit 1; }
exec scripts/sandbox.sh node "dist/bench/$name.js" "$@"
