# Sourced by scripts/etcd-bin.sh and scripts/promtool-bin.sh: fetch Debian packages without
# touching the system — no apt sources, no installed packages. apt-get reads a sources file
# of its own and keeps its lists under the cache folder; the packages are unpacked with
# dpkg-deb, never installed. Archive: the Debian archive of this system's apt sources (its
# main suite, not -security/-updates), or $LOCKED_DEBIAN_MIRROR.
#
#   root=$(debian_unpack TAG SUITE CACHE PKG...)   # prints a new folder holding $root/root/usr/...
#
# TAG names the caller in messages; the caller checks what it unpacked, moves $root/root into
# place and removes $root.

debian_unpack() {
  local tag=$1 suite=$2 cache=$3
  shift 3
  local fail_prefix="$tag: FAIL:"
  command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null \
    || { echo "$fail_prefix needs apt-get and dpkg-deb (Debian or Ubuntu) to fetch Debian's $*" >&2; exit 1; }
  local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  [ -r "$keyring" ] || { echo "$fail_prefix $keyring is missing (package debian-archive-keyring)" >&2; exit 1; }
  mkdir -p "$cache"
  local tmp
  tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
  # Runs in the caller's $(…) subshell: a failure below removes the folder; success keeps it.
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial" "$tmp/debs" "$tmp/root" "$tmp/parts"
  local mirror
  mirror=${LOCKED_DEBIAN_MIRROR:-$(apt-get indextargets --format '$(REPO_URI) $(SUITE)' 2>/dev/null \
    | awk '$2 !~ /-(security|updates|backports)$/ { print $1; exit }')}
  [ -n "$mirror" ] || { echo "$fail_prefix no Debian archive in this system's apt sources (set LOCKED_DEBIAN_MIRROR)" >&2; exit 1; }
  printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: %s\n' "$mirror" "$suite" "$keyring" \
    >"$tmp/parts/debian.sources"
  local apt=(apt-get -q
    -o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$tmp/parts"
    -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache=$tmp/cache"
    -o "Dir::State::status=/dev/null" -o "APT::Sandbox::User=root")
  "${apt[@]}" update >"$tmp/update.log" 2>&1 \
    || { cat "$tmp/update.log" >&2; echo "$fail_prefix apt-get update for Debian $suite" >&2; exit 1; }
  # apt-get update exits 0 when a mirror cannot be reached; an empty lists folder says so.
  compgen -G "$tmp/lists/*_Packages*" >/dev/null \
    || { cat "$tmp/update.log" >&2; echo "$fail_prefix no package list of Debian $suite from $mirror (unreachable? set LOCKED_DEBIAN_MIRROR)" >&2; exit 1; }
  (cd "$tmp/debs" && "${apt[@]}" download "$@") >"$tmp/download.log" 2>&1 \
    || { cat "$tmp/download.log" >&2; echo "$fail_prefix apt-get download $* ($suite)" >&2; exit 1; }
  local deb
  for deb in "$tmp"/debs/*.deb; do dpkg-deb -x "$deb" "$tmp/root"; done
  trap - EXIT
  echo "$tmp"
}
