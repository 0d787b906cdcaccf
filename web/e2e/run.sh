#!/usr/bin/env bash
# End-to-end tests of the dashboard in headless Chromium (Debian's chromium, driven by
# playwright-core): starts a real `hyperdial server`, creates a sweep with `hyperdial sweep`,
# runs it with two `hyperdial agent`s, and checks the pages (dashboard.mjs), then the runs page
# and `hyperdial ui` on the same store (runs.mjs), then an LR range test's run page
# (lrrange.mjs), then the triage tools, curves with rungs, lineage and budget panels,
# contrast and the 800 px layout (triage.mjs), then the seed-noise panel (noise.mjs), then the
# Pareto view of multi-objective sweeps (front.mjs), then parallel coordinates with conditional
# parameters (conditional.mjs), then signing in to a server with a token (auth.mjs, which
# starts that server itself). Screenshots go to
# target/e2e-screenshots/. Prints one line per check and a summary `e2e: N passed, N failed`.
#
# Needs: /usr/bin/chromium (or CHROMIUM=path), node, `npm ci` done in web/, and the binary
# (built here with `cargo build` unless HYPERDIAL_BIN points at one).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
chromium="${CHROMIUM:-/usr/bin/chromium}"
[ -x "$chromium" ] || { echo "e2e: chromium not found at $chromium"; exit 3; }
[ -d "$root/web/node_modules/playwright-core" ] || (cd "$root/web" && npm ci --no-audit --no-fund)
if [ -z "${HYPERDIAL_BIN:-}" ]; then
  (cd "$root" && cargo build --quiet)
  HYPERDIAL_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/hyperdial"
fi
out="${E2E_OUT:-$root/target/e2e-screenshots}"
mkdir -p "$out"
work="$(mktemp -d)"
cp "$here/train.py" "$here/sweep.yaml" "$here/front_train.py" "$here/front-sweep.yaml" "$work/"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
"$HYPERDIAL_BIN" server --db "$work/db.sqlite" --bind "127.0.0.1:$port" > "$work/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -fsS "$base/api/v1/sweeps" >/dev/null 2>&1 && break; sleep 0.1; done
export HYPERDIAL_SERVER="$base" HYPERDIAL_BIN E2E_WORK="$work" E2E_OUT="$out" CHROMIUM="$chromium"
status=0
node "$here/dashboard.mjs" | tee "$work/dashboard.out" || status=1
node "$here/runs.mjs" | tee "$work/runs.out" || status=1
node "$here/lrrange.mjs" | tee "$work/lrrange.out" || status=1
node "$here/triage.mjs" | tee "$work/triage.out" || status=1
node "$here/noise.mjs" | tee "$work/noise.out" || status=1
node "$here/front.mjs" | tee "$work/front.out" || status=1
node "$here/conditional.mjs" | tee "$work/conditional.out" || status=1
node "$here/auth.mjs" | tee "$work/auth.out" || status=1
# One summary over all the scripts (scripts/test reads the last `e2e:` line).
grep -hEo '^e2e[a-z-]*: [0-9]+ passed, [0-9]+ failed' "$work/dashboard.out" "$work/runs.out" \
  "$work/lrrange.out" "$work/triage.out" "$work/noise.out" "$work/front.out" "$work/conditional.out" "$work/auth.out" \
  | awk '{p += $2; f += $4} END {printf "e2e: %d passed, %d failed\n", p, f}'
exit "$status"
