#!/usr/bin/env bash
# Runs the test suite (the same files as `npm test`) with another Node.js binary.
#
#   bash scripts/test-node.sh 22              # node@22 from the npm registry (see node-bin.sh)
#   bash scripts/test-node.sh /path/to/node   # a given binary
#
# Builds the tests first (`npm run build:test`) unless LOCKED_SKIP_BUILD=1. The chosen node
# comes first on PATH, so the child processes the tests spawn as `node` use it too.
set -euo pipefail
cd "$(dirname "$0")/.."
want=${1:?usage: test-node.sh VERSION|NODE_BINARY}
if [ -x "$want" ] && [ ! -d "$want" ]; then node_bin=$want; else node_bin=$(bash scripts/node-bin.sh "$want"); fi
bindir=$(cd "$(dirname "$node_bin")" && pwd)
[ "${LOCKED_SKIP_BUILD:-0}" = 1 ] || npm run build:test
echo "test-node: running the tests with node $("$node_bin" --version) ($node_bin)"
export PATH="$bindir:$PATH"
shopt -s nullglob
tests=(.build/test/*.test.js)
[ ${#tests[@]} -gt 0 ] || { echo "test-node: FAIL: no .build/test/*.test.js (build the tests first)" >&2; exit 1; }
"$node_bin" --test --test-concurrency=2 "${tests[@]}"
# The simulation is the same on every Node line: a tenth of npm test's 100,000 schedules
# here (the exhaustive cases in full), unless LOCKED_SIM_SCHEDULES says otherwise.
LOCKED_SIM_SCHEDULES=${LOCKED_SIM_SCHEDULES:-10000} exec "$node_bin" --test .build/test/sim/*.test.js
