#!/usr/bin/env bash
# Packs nomoat as a user gets it and installs the tarball into a clean folder (dependencies from the npm registry),
# then: the packed and installed sizes, `nomoat --help` / `demo --help` and a generation on the bundled model from the
# installed copy (offline), and the no-compiler path: the install script's fallback warning and the TypeScript-
# backend note every command prints. Too slow for the test suite (a registry install); run it before a release.
# Usage: scripts/pack-check.sh   (after `npx tsc -p tsconfig.json`; packs dist/ as it is)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/nomoat-pack-XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$root"
[ -f dist/src/cli/main.js ] || { echo "pack-check: build first (npx tsc -p tsconfig.json)"; exit 1; }

# --ignore-scripts: `prepare` would rerun tsc; dist/ is packed as built.
tgz=$(npm pack --ignore-scripts --silent --pack-destination "$work" | tail -1)
tar -tzf "$work/$tgz" > "$work/files.txt"
echo "packed: $tgz $(du -k "$work/$tgz" | cut -f1) KiB ($(wc -l < "$work/files.txt") files)"
if grep -E '\.test\.js$|node-llama-cpp|^package/dist/(test|bench)/' "$work/files.txt"; then echo "pack-check: test or bench files in the package"; exit 1; fi
grep -qx 'package/LICENSE' "$work/files.txt" || { echo "pack-check: LICENSE missing"; exit 1; }

app="$work/app"
mkdir "$app" && cd "$app"
npm init -y >/dev/null
t0=$(date +%s)
npm install --no-audit --no-fund "$work/$tgz" 2>&1 | tail -3
echo "installed in $(( $(date +%s) - t0 )) s: node_modules $(du -sk node_modules | cut -f1) KiB, nomoat itself $(du -sk node_modules/nomoat | cut -f1) KiB"
[ -d node_modules/node-llama-cpp ] && { echo "pack-check: node-llama-cpp was installed (it is a devDependency)"; exit 1; }
[ -f node_modules/nomoat/build/Release/nomoat_native.node ] && echo "addon: built at install" || echo "addon: NOT built"

export HF_HUB_OFFLINE=1
npx --no-install nomoat --help | head -3
npx --no-install nomoat demo --help | head -2
model=node_modules/nomoat/assets/default-model
npx --no-install nomoat generate -m "$model" -p "Once upon a time" -n 16 --temp 0 2>gen.err
echo; grep -E 'generated' gen.err || cat gen.err

echo "--- without a C compiler: the install script warns and succeeds"
rm -rf node_modules/nomoat/build
CC=/nonexistent-cc CXX=/nonexistent-cxx npm rebuild nomoat --foreground-scripts 2>&1 | grep -E 'WARNING|Fix|rebuilt' || true
[ -f node_modules/nomoat/build/Release/nomoat_native.node ] && echo "pack-check: the addon built with no compiler?"
npx --no-install nomoat generate -m "$model" -p "Once upon a time" -n 16 --temp 0 2>gen2.err >/dev/null
grep -q 'running on the TypeScript backend' gen2.err || { echo "pack-check: no TypeScript-backend note"; cat gen2.err; exit 1; }
[ "$(grep -c 'running on the TypeScript backend' gen2.err)" = 1 ] || { echo "pack-check: the note is not printed once"; exit 1; }
cat gen2.err
echo "pack-check: ok"
