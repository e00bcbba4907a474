#!/usr/bin/env bash
# Checks the monitoring that ships (`npm run check:monitoring`, and CI):
#   1. promtool check rules  examples/prometheus/locked.rules.yml
#   2. promtool test rules   examples/prometheus/locked.rules.test.yml (input series for every
#      alert: it fires when it should and stays quiet when it should not)
#   3. test/monitoring/*.test.ts against a real etcd: promtool check metrics on the /metrics of
#      `locked run --listen` (any complaint fails); every metric and label the rules and the
#      Grafana dashboard (examples/grafana) query is exported; every dashboard query is valid
#      PromQL; docs/monitoring.md lists exactly the exported metric families.
#
# promtool: Debian trixie's package via scripts/promtool-bin.sh (cached, nothing installed).
# etcd: $ETCD_BIN, else Debian trixie's 3.5 via scripts/etcd-bin.sh. Node: the `node` on
# PATH, ≥ 22.12. The tests are compiled into their own folder ($LOCKED_MONITORING_BUILD,
# default .build-monitoring), so .build/ is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "check-monitoring: FAIL: $*" >&2; exit 1; }

node_version=$(node --version 2>/dev/null) || fail "no node on PATH (Node ≥ 22.12 needed; scripts/node-bin.sh 26 fetches one)"
IFS=. read -r major minor _ <<<"${node_version#v}"
{ [ "$major" -gt 22 ] || { [ "$major" -eq 22 ] && [ "$minor" -ge 12 ]; }; } \
  || fail "node $node_version on PATH is too old (≥ 22.12 needed; scripts/node-bin.sh 26 fetches one)"

promtool_dir=$(bash scripts/promtool-bin.sh) || fail "could not get promtool (scripts/promtool-bin.sh said why above)"
promtool="$promtool_dir/promtool"
echo "check-monitoring: $("$promtool" --version 2>&1 | sed -n 1p)"

if [ -z "${ETCD_BIN:-}" ]; then
  etcd_dir=$(bash scripts/etcd-bin.sh 3.5) || fail "could not get etcd (scripts/etcd-bin.sh said why above)"
  export ETCD_BIN="$etcd_dir/etcd" ETCDCTL_BIN="$etcd_dir/etcdctl"
fi

echo "check-monitoring: promtool check rules"
"$promtool" check rules examples/prometheus/locked.rules.yml || fail "promtool check rules examples/prometheus/locked.rules.yml"

echo "check-monitoring: promtool test rules"
(cd examples/prometheus && "$promtool" test rules locked.rules.test.yml) || fail "promtool test rules examples/prometheus/locked.rules.test.yml"

out=${LOCKED_MONITORING_BUILD:-.build-monitoring}
echo "check-monitoring: compiling the tests into $out"
node -e "require('node:fs').rmSync(process.argv[1], { recursive: true, force: true })" "$out"
npx tsc -p tsconfig.test.json --outDir "$out" || fail "the tests do not compile (tsc -p tsconfig.test.json --outDir $out)"

shopt -s nullglob
tests=("$out"/test/monitoring/*.test.js)
[ ${#tests[@]} -gt 0 ] || fail "no tests in $out/test/monitoring"
echo "check-monitoring: the scrape, the rules' and the dashboard's metric names, the docs (node $node_version, $("$ETCD_BIN" --version | sed -n 1p))"
PROMTOOL="$promtool" node --test "${tests[@]}" || fail "test/monitoring (see above)"
echo "check-monitoring: OK"
