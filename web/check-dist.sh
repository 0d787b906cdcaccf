#!/usr/bin/env bash
# Rebuild the dashboard into a scratch directory and compare it with the committed web/dist,
# which build.rs embeds into the binary: a stale dist fails with the files that differ.
set -euo pipefail
cd "$(dirname "$0")"
# `npm ci` installs exactly web/package-lock.json and never rewrites it.
[ -d node_modules ] || npm ci --no-audit --no-fund
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
npx tsc --noEmit
npx vite build --outDir "$tmp/dist" --emptyOutDir --logLevel warn
if diff -r "$tmp/dist" dist >/dev/null; then
  echo "web/dist is current"
else
  echo "web/dist is stale: run 'npm run build' in web/ and commit web/dist" >&2
  diff -rq "$tmp/dist" dist >&2 || true
  exit 1
fi
