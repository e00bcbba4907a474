#!/usr/bin/env bash
# Runs a test tier (scripts/test.sh) with another Node.js binary.
#
#   bash scripts/test-node.sh 24 [fast|etcd|faults]             # node@24 from the npm registry (node-bin.sh)
#   bash scripts/test-node.sh /path/to/node [fast|etcd|faults]  # a given binary
#
# Builds the tests first (`npm run build:test`) unless LOCKED_SKIP_BUILD=1. The chosen node
# comes first on PATH, so the child processes the tests spawn as `node` use it too.
set -euo pipefail
cd "$(dirname "$0")/.."
want=${1:?usage: test-node.sh VERSION|NODE_BINARY [fast|etcd|faults]}
tier=${2:-fast}
if [ -x "$want" ] && [ ! -d "$want" ]; then node_bin=$want; else node_bin=$(bash scripts/node-bin.sh "$want"); fi
bindir=$(cd "$(dirname "$node_bin")" && pwd)
[ "${LOCKED_SKIP_BUILD:-0}" = 1 ] || npm run build:test
export PATH="$bindir:$PATH"
exec bash scripts/test.sh "$tier"
