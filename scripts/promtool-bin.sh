#!/usr/bin/env bash
# Prints the folder holding `promtool`, fetching Debian trixie's `promtool` package (built
# from the `prometheus` source; the `prometheus` server package depends on it) into a
# cache on first use, as scripts/etcd-bin.sh fetches etcd (scripts/debian-fetch.sh: nothing
# on the system changes).
#
#   PROMTOOL=$(bash scripts/promtool-bin.sh)/promtool
#
# scripts/check-monitoring.sh uses it to check examples/prometheus and a real /metrics.
# Cache: $LOCKED_PROMTOOL_CACHE, default ${XDG_CACHE_HOME:-~/.cache}/locked-etcd/prometheus.
# Archive: the Debian archive of this system's apt sources, or $LOCKED_DEBIAN_MIRROR.
# Debian's promtool is a static Go binary: it runs on bookworm as well as on trixie.
set -euo pipefail
suite=trixie
cache=${LOCKED_PROMTOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/locked-etcd/prometheus}
dir="$cache/$suite"
bin="$dir/usr/bin"
# (The version is read into a variable first, not piped into grep: see etcd-bin.sh.)
works() {
  local v
  v=$("$bin/promtool" --version 2>&1) && [[ $v == *"promtool, version "* ]]
}
if ! works; then
  source "$(dirname "$0")/debian-fetch.sh"
  echo "promtool-bin: fetching Debian $suite's promtool package into $dir" >&2
  tmp=$(debian_unpack promtool-bin "$suite" "$cache" promtool)
  trap 'rm -rf "$tmp"' EXIT
  [ -x "$tmp/root/usr/bin/promtool" ] \
    || { ls -R "$tmp/root" | head -40 >&2; echo "promtool-bin: FAIL: Debian $suite's promtool package has no usr/bin/promtool" >&2; exit 1; }
  got=$("$tmp/root/usr/bin/promtool" --version 2>&1 || true)
  [[ $got == *"promtool, version "* ]] \
    || { echo "$got" >&2; echo "promtool-bin: FAIL: the unpacked promtool does not run" >&2; exit 1; }
  rm -rf "$dir"
  mv "$tmp/root" "$dir"
  works || { echo "promtool-bin: FAIL: $bin/promtool does not run" >&2; exit 1; }
fi
echo "$bin"
