#!/usr/bin/env bash
# Prints the folder holding `etcd` and `etcdctl` of one etcd line, fetching Debian's packages
# into a cache on first use. Nothing on the system changes: no apt sources, no installed
# packages — apt-get reads a sources file and keeps its lists in the cache folder.
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
  command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null \
    || { echo "etcd-bin: FAIL: needs apt-get and dpkg-deb (Debian or Ubuntu) to fetch etcd $line" >&2; exit 1; }
  keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  [ -r "$keyring" ] || { echo "etcd-bin: FAIL: $keyring is missing (package debian-archive-keyring)" >&2; exit 1; }
  mkdir -p "$cache"
  tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial" "$tmp/debs" "$tmp/root"
  # The Debian archive this system already uses (its main suite, not -security/-updates),
  # or $LOCKED_DEBIAN_MIRROR.
  mirror=${LOCKED_DEBIAN_MIRROR:-$(apt-get indextargets --format '$(REPO_URI) $(SUITE)' 2>/dev/null \
    | awk '$2 !~ /-(security|updates|backports)$/ { print $1; exit }')}
  [ -n "$mirror" ] || { echo "etcd-bin: FAIL: no Debian archive in this system's apt sources (set LOCKED_DEBIAN_MIRROR)" >&2; exit 1; }
  printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: %s\n' "$mirror" "$suite" "$keyring" \
    >"$tmp/debian.sources"
  apt=(apt-get -q
    -o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$tmp/parts"
    -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache=$tmp/cache"
    -o "Dir::State::status=/dev/null" -o "APT::Sandbox::User=root")
  mkdir -p "$tmp/parts" && mv "$tmp/debian.sources" "$tmp/parts/"
  echo "etcd-bin: fetching Debian $suite's etcd-server and etcd-client into $dir" >&2
  "${apt[@]}" update >"$tmp/update.log" 2>&1 \
    || { cat "$tmp/update.log" >&2; echo "etcd-bin: FAIL: apt-get update for Debian $suite" >&2; exit 1; }
  (cd "$tmp/debs" && "${apt[@]}" download etcd-server etcd-client) >"$tmp/download.log" 2>&1 \
    || { cat "$tmp/download.log" >&2; echo "etcd-bin: FAIL: apt-get download etcd-server etcd-client ($suite)" >&2; exit 1; }
  for deb in "$tmp"/debs/*.deb; do dpkg-deb -x "$deb" "$tmp/root"; done
  got=$("$tmp/root/usr/bin/etcd" --version 2>&1 || true)
  [[ $got == *"etcd Version: $line."* ]] \
    || { echo "$got" >&2; echo "etcd-bin: FAIL: Debian $suite's etcd is not $line.x" >&2; exit 1; }
  rm -rf "$dir"
  mv "$tmp/root" "$dir"
  works || { echo "etcd-bin: FAIL: $bin/etcd or etcdctl does not run" >&2; exit 1; }
fi
echo "$bin"
