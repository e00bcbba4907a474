#!/usr/bin/env bash
# Prints the folder holding `promtool`, fetching Debian trixie's `promtool` package (built
# from the `prometheus` source; the `prometheus` server package depends on it) into a
# cache on first use (the way scripts/etcd-bin.sh fetches etcd). Nothing on the system
# changes: no apt sources, no installed packages — apt-get reads a sources file and keeps
# its lists in the cache folder; the package is unpacked with dpkg-deb, never installed.
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
  command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null \
    || { echo "promtool-bin: FAIL: needs apt-get and dpkg-deb (Debian or Ubuntu) to fetch Debian's promtool package" >&2; exit 1; }
  keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  [ -r "$keyring" ] || { echo "promtool-bin: FAIL: $keyring is missing (package debian-archive-keyring)" >&2; exit 1; }
  mkdir -p "$cache"
  tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial" "$tmp/debs" "$tmp/root" "$tmp/parts"
  # The Debian archive this system already uses (its main suite, not -security/-updates),
  # or $LOCKED_DEBIAN_MIRROR.
  mirror=${LOCKED_DEBIAN_MIRROR:-$(apt-get indextargets --format '$(REPO_URI) $(SUITE)' 2>/dev/null \
    | awk '$2 !~ /-(security|updates|backports)$/ { print $1; exit }')}
  [ -n "$mirror" ] || { echo "promtool-bin: FAIL: no Debian archive in this system's apt sources (set LOCKED_DEBIAN_MIRROR)" >&2; exit 1; }
  printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: %s\n' "$mirror" "$suite" "$keyring" \
    >"$tmp/parts/debian.sources"
  apt=(apt-get -q
    -o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$tmp/parts"
    -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache=$tmp/cache"
    -o "Dir::State::status=/dev/null" -o "APT::Sandbox::User=root")
  echo "promtool-bin: fetching Debian $suite's promtool package into $dir" >&2
  "${apt[@]}" update >"$tmp/update.log" 2>&1 \
    || { cat "$tmp/update.log" >&2; echo "promtool-bin: FAIL: apt-get update for Debian $suite" >&2; exit 1; }
  # apt-get update exits 0 when a mirror cannot be reached; an empty lists folder says so.
  compgen -G "$tmp/lists/*_Packages*" >/dev/null \
    || { cat "$tmp/update.log" >&2; echo "promtool-bin: FAIL: no package list of Debian $suite from $mirror (unreachable? set LOCKED_DEBIAN_MIRROR)" >&2; exit 1; }
  (cd "$tmp/debs" && "${apt[@]}" download promtool) >"$tmp/download.log" 2>&1 \
    || { cat "$tmp/download.log" >&2; echo "promtool-bin: FAIL: apt-get download promtool ($suite)" >&2; exit 1; }
  for deb in "$tmp"/debs/*.deb; do dpkg-deb -x "$deb" "$tmp/root"; done
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
