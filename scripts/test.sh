#!/usr/bin/env bash
# The test tiers, one place for their files and concurrency (package.json and CI call this).
#
#   bash scripts/test.sh fast     # `npm test`: unit + integration against real etcd, then the simulation
#   bash scripts/test.sh etcd     # unit + integration only: what an etcd version can change (CI's
#                                 # legacy etcd leg; the simulation runs no etcd at all)
#   bash scripts/test.sh faults   # `npm run test:faults`: host processes under faults — pauses,
#                                 # crashes, iptables cuts (root), frozen and slow members
#
# Runs the built tests in .build/ (npm run build:test) with the `node` on PATH; the etcd of
# $ETCD_BIN / $ETCDCTL_BIN, else `etcd` / `etcdctl` on PATH (scripts/etcd-bin.sh fetches one).
# LOCKED_SIM_SCHEDULES sets the simulation's random schedules (here 30,000 unless set, each run
# with a new seed; `npm run chaos -- --sim --seconds N` for long runs). The simulation runs with
# balancing on: joins, crashes and restarts, drains, failover --to, run-once jobs.
set -euo pipefail
cd "$(dirname "$0")/.."
tier=${1:?usage: test.sh fast|etcd|faults}
shopt -s nullglob
files() {
  local out=()
  for d in "$@"; do out+=(.build/test/"$d"/*.test.js); done
  [ ${#out[@]} -gt 0 ] || { echo "test.sh: FAIL: no tests in .build/test/{$*} (npm run build:test first)" >&2; exit 1; }
  printf '%s\n' "${out[@]}"
}
echo "test.sh: $tier tier on node $(node --version), $("${ETCD_BIN:-etcd}" --version 2>/dev/null | sed -n 1p || echo 'no etcd found')"
case "$tier" in
  fast | etcd)
    # Integration tests wait on etcd and on child processes far more than they compute:
    # three files at a time keep both cores busy.
    mapfile -t tests < <(files unit integration)
    node --test --test-concurrency=3 "${tests[@]}"
    [ "$tier" = fast ] || exit 0
    mapfile -t sims < <(files sim)
    # LOCKED_SIM_SEEDED_ONLY=1 (CI's other lines): the seeded schedules only — the exhaustive
    # cases are the same orders on every line, explored once on the primary one.
    if [ "${LOCKED_SIM_SEEDED_ONLY:-0}" = 1 ]; then sims=(.build/test/sim/simulation.test.js); fi
    # Two files at once: the seeded schedules run on two worker threads, the exhaustive cases
    # on one; together they finish about when the longer one alone would.
    LOCKED_SIM_SCHEDULES=${LOCKED_SIM_SCHEDULES:-30000} node --test --test-concurrency=2 "${sims[@]}"
    ;;
  faults)
    # Two at a time: these tests time step-downs against the TTL; more would starve them.
    mapfile -t tests < <(files faults)
    node --test --test-concurrency=2 "${tests[@]}"
    ;;
  *) echo "test.sh: unknown tier '$tier' (fast, etcd or faults)" >&2; exit 2 ;;
esac
