#!/usr/bin/env bash
# Prints the path of a Node.js binary of the given version, installing it from the npm
# registry (the `node` package, whose platform binary is itself an npm package) into a
# cache on first use. Nothing but the npm registry is contacted.
#
#   bash scripts/node-bin.sh 22         # latest 22.x
#   bash scripts/node-bin.sh 20.19.0    # exact version
#
# Cache: $LOCKED_NODE_CACHE, default ${XDG_CACHE_HOME:-~/.cache}/locked-etcd/node/<version>.
set -euo pipefail
version=${1:?usage: node-bin.sh VERSION}
cache=${LOCKED_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/locked-etcd/node}
dir="$cache/$version"
bin="$dir/node_modules/node/bin/node"
if ! "$bin" --version >/dev/null 2>&1; then
  mkdir -p "$cache"
  tmp=$(mktemp -d "$cache/.install.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  echo "node-bin: installing node@$version from the npm registry into $dir" >&2
  npm install --prefix "$tmp" --no-audit --no-fund --no-save --loglevel=error "node@$version" >&2 \
    || { echo "node-bin: FAIL: npm install node@$version" >&2; exit 1; }
  "$tmp/node_modules/node/bin/node" --version >/dev/null \
    || { echo "node-bin: FAIL: node@$version installed but does not run" >&2; exit 1; }
  rm -rf "$dir"
  mv "$tmp" "$dir"
fi
# A "22" cache entry is whatever 22.x was latest when it was installed; an exact version must match.
actual=$("$bin" --version)
case "$version" in
  *.*.*) [ "$actual" = "v$version" ] || { echo "node-bin: FAIL: $bin is $actual, not v$version" >&2; exit 1; } ;;
  *) case "$actual" in "v$version".*) ;; *) echo "node-bin: FAIL: $bin is $actual, not $version.x" >&2; exit 1 ;; esac ;;
esac
echo "$bin"
