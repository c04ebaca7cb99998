#!/usr/bin/env bash
# `npm test`: jest inside scripts/sandbox.sh (private network, mount and pid namespaces; see there).
# Arguments are passed to jest unchanged: bash test/run.sh test/integration/lab.test.ts
# Unit and integration tests run from the TypeScript sources; the end-to-end tests drive the built
# CLI and daemon and say so (requireBuiltCli in test/lab/lab.ts) if `npm run build` has not run.
cd "$(dirname "$0")/.." || exit 1
exec scripts/sandbox.sh ./node_modules/.bin/jest "$@"
