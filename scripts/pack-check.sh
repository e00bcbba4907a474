#!/usr/bin/env bash
# Packaging check: what `npm publish` would ship, installed into a fresh project and used
# the ways a consumer would.
#
#   bash scripts/pack-check.sh [NODE_BINARY...]
#
# 1. `npm pack` (prepack builds dist/) into a temp dir; the tarball must hold dist/, the
#    .d.cts twins, the CLI and the src/ files the source maps point at.
# 2. A fresh temp project installs the tarball (`npm install`, dependencies from the
#    registry or the npm cache).
# 3. Runtime, with `node` on PATH and each NODE_BINARY given: ESM import and CommonJS
#    require() (require(esm)) of the package, and the `locked` command.
# 4. Types, with this repository's TypeScript: an .mts importing and a .cts requiring the
#    package under `module` nodenext and node16, and a .ts under `moduleResolution` bundler.
# Any failure stops the script with "pack-check: FAIL: <reason>" and a non-zero exit.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
fixtures="$root/test/package"
fail() { echo "pack-check: FAIL: $*" >&2; exit 1; }
step() { echo "pack-check: $*"; }

name=$(node -p "require('$root/package.json').name")
version=$(node -p "require('$root/package.json').version")
tsc="$root/node_modules/.bin/tsc"
[ -x "$tsc" ] || fail "no $tsc: run npm ci first"
nodes=(node "$@")
for n in "${nodes[@]}"; do command -v "$n" >/dev/null || fail "no node binary '$n'"; done

work=$(mktemp -d "${TMPDIR:-/tmp}/pack-check.XXXXXX")
trap 'rm -rf "$work"' EXIT

# ——— 1. pack ———
step "npm pack $name@$version"
(cd "$root" && npm pack --silent --pack-destination "$work" >"$work/pack.log" 2>&1) \
  || { cat "$work/pack.log" >&2; fail "npm pack failed (prepack build?)"; }
tarball=("$work"/*.tgz)
[ -f "${tarball[0]}" ] || fail "npm pack wrote no tarball to $work"
tarball=${tarball[0]}
tar -tzf "$tarball" | sed 's|^package/||' | sort >"$work/files.txt"
for f in package.json README.md LICENSE dist/index.js dist/index.d.ts dist/index.d.cts \
  dist/index.js.map dist/cli/main.js src/index.ts; do
  grep -qxF "$f" "$work/files.txt" || fail "tarball lacks $f"
done
if grep -E '^(test|bench|demo|scripts|\.build|\.ci|node_modules)/' "$work/files.txt" >&2; then
  fail "tarball ships files that are not part of the package (above)"
fi
# Every .d.ts has its .d.cts twin (the "require" types import their siblings).
while read -r f; do
  grep -qxF "${f%.d.ts}.d.cts" "$work/files.txt" || fail "tarball lacks ${f%.d.ts}.d.cts"
done < <(grep '\.d\.ts$' "$work/files.txt")
# Every source a map names is in the tarball.
mkdir "$work/unpacked" && tar -xzf "$tarball" -C "$work/unpacked"
node - "$work/unpacked/package" <<'EOF' || fail "source maps name files the tarball lacks"
const fs = require('node:fs'), path = require('node:path');
const pkg = process.argv[2];
let bad = 0, maps = 0;
for (const f of fs.readdirSync(path.join(pkg, 'dist'), { recursive: true })) {
  if (!f.endsWith('.map')) continue;
  maps++;
  const map = JSON.parse(fs.readFileSync(path.join(pkg, 'dist', f), 'utf8'));
  for (const s of map.sources) {
    const p = path.resolve(path.dirname(path.join(pkg, 'dist', f)), map.sourceRoot ?? '', s);
    if (!fs.existsSync(p)) { console.error(`dist/${f}: source ${s} not shipped`); bad++; }
  }
}
if (maps === 0) { console.error('no source maps in dist/'); process.exit(1); }
process.exit(bad ? 1 : 0);
EOF
step "tarball: $(wc -l <"$work/files.txt") files, $(du -k "$tarball" | cut -f1) KiB"

# ——— 2. a fresh consumer project ———
app="$work/app"
mkdir "$app"
printf '{ "name": "pack-check-app", "version": "1.0.0", "private": true }\n' >"$app/package.json"
cp "$fixtures"/* "$app/"
step "npm install the tarball into a fresh project"
(cd "$app" && npm install --no-audit --no-fund --loglevel=error "$tarball" >"$work/install.log" 2>&1) \
  || { cat "$work/install.log" >&2; fail "npm install of the tarball failed"; }
[ -f "$app/node_modules/$name/package.json" ] || fail "node_modules/$name missing after install"
[ -x "$app/node_modules/.bin/locked" ] || fail "the 'locked' bin was not linked"

# ——— 3. runtime ———
cd "$app"
for n in "${nodes[@]}"; do
  v=$("$n" --version)
  out=$("$n" esm-import.mjs 2>&1) || { echo "$out" >&2; fail "import('$name') on node $v"; }
  echo "  $out"
  out=$("$n" cjs-require.cjs 2>"$work/stderr") || { echo "$out"; cat "$work/stderr"; fail "require('$name') on node $v"; } >&2
  # Node 22.12.x (only) warns once that require(esm) is experimental: tolerated, reported.
  # Anything else on stderr is a failure.
  warning='ExperimentalWarning: CommonJS module .* is loading ES Module .* using require\(\)|^Support for loading ES Module in require\(\) is an experimental|^\(Use `node --trace-warnings'
  if grep -Evq "$warning" "$work/stderr"; then cat "$work/stderr" >&2; fail "require('$name') on node $v printed to stderr"; fi
  if [ -s "$work/stderr" ]; then out="$out — with node's one-time ExperimentalWarning for require(esm)"; fi
  echo "  $out"
  help=$("$n" "node_modules/$name/dist/cli/main.js" --help 2>&1) || { echo "$help" >&2; fail "locked --help on node $v"; }
  grep -q 'Usage: locked' <<<"$help" || { echo "$help" >&2; fail "locked --help on node $v printed no usage"; }
done

# The bin through npx, as a user would run it (--no: never fetch a package of that name).
help=$(npx --no -- locked --help 2>&1) || { echo "$help" >&2; fail "npx locked --help exited non-zero"; }
grep -q 'Usage: locked' <<<"$help" || { echo "$help" >&2; fail "npx locked --help printed no usage"; }
step "npx locked --help ok"
ver=$(npx --no -- locked --version 2>"$work/version.err") || { cat "$work/version.err" >&2; fail "npx locked --version exited non-zero"; }
[ "$ver" = "$version" ] || fail "locked --version printed '$ver', package.json says '$version'"
step "npx locked --version ok ($ver)"

# ——— 4. types ———
typeroots="$root/node_modules/@types"
for cfg in nodenext node16 bundler; do
  "$tsc" -p "tsconfig.$cfg.json" --typeRoots "$typeroots" >"$work/tsc.log" 2>&1 \
    || { cat "$work/tsc.log" >&2; fail "TypeScript consumer check failed under module/moduleResolution $cfg"; }
  step "types ok under $cfg ($(node -p "require('./tsconfig.$cfg.json').files.join(', ')"))"
done

step "OK: $name@$version packs, installs, imports, requires, type-checks and runs its bin"
