#!/usr/bin/env bash
# Prints the folder holding `etcd` and `etcdctl` of one etcd line, fetching Debian's packages
# into a cache on first use (scripts/debian-fetch.sh: nothing on the system changes).
#
#   bash scripts/etcd-bin.sh 3.5      # Debian trixie's etcd-server/etcd-client (3.5.x)
#   bash scripts/etcd-bin.sh 3.4      # Debian bookworm's (3.4.23), the legacy line
#
#   export ETCD_BIN=$(bash scripts/etcd-bin.sh 3.5)/etcd ETCDCTL_BIN=$(bash scripts/etcd-bin.sh 3.5)/etcdctl
#
# The test helpers, the demo, the bench and chaos read $ETCD_BIN / $ETCDCTL_BIN.
# Cache: $LOCKED_ETCD_CACHE, default ${XDG_CACHE_HOME:-~/.cache}/locked-etcd/etcd/<line>.
# Archive: the Debian archive of this system's apt sources, or $LOCKED_DEBIAN_MIRROR.
# Both Debian releases' etcd are static Go binaries, so either runs on either release.
set -euo pipefail
line=${1:?usage: etcd-bin.sh 3.5|3.4}
case "$line" in
  3.5) suite=trixie ;;
  3.4) suite=bookworm ;;
  *) echo "etcd-bin: FAIL: unknown etcd line '$line' (3.5 or 3.4)" >&2; exit 2 ;;
esac
cache=${LOCKED_ETCD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/locked-etcd/etcd}
dir="$cache/$line"
bin="$dir/usr/bin"
# (The version is read into a variable first: `etcd --version | grep -q` fails now and then
# under pipefail, when grep exits before etcd has written everything.)
works() {
  local v
  v=$("$bin/etcd" --version 2>/dev/null) && [[ $v == *"etcd Version: $line."* ]] && "$bin/etcdctl" version >/dev/null 2>&1
}
if ! works; then
  source "$(dirname "$0")/debian-fetch.sh"
  echo "etcd-bin: fetching Debian $suite's etcd-server and etcd-client into $dir" >&2
  tmp=$(debian_unpack etcd-bin "$suite" "$cache" etcd-server etcd-client)
  trap 'rm -rf "$tmp"' EXIT
  got=$("$tmp/root/usr/bin/etcd" --version 2>&1 || true)
  [[ $got == *"etcd Version: $line."* ]] \
    || { echo "$got" >&2; echo "etcd-bin: FAIL: Debian $suite's etcd is not $line.x" >&2; exit 1; }
  rm -rf "$dir"
  mv "$tmp/root" "$dir"
  works || { echo "etcd-bin: FAIL: $bin/etcd or etcdctl does not run" >&2; exit 1; }
fi
echo "$bin"
