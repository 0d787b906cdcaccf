#!/usr/bin/env bash
# The dashboard at scale: API response times (bench/src/bin/dashboard.rs) and the pages' time
# to first render in headless Chromium (bench/dashboard_browser.mjs), on a sweep of 10 000 runs
# with 1 000 000 metric points; then the same sweep live for LIVE seconds (default 60): bytes and
# main-thread busy time per minute of the sweep page and of a long run's page. Needs
# /usr/bin/chromium and `npm ci` in web/.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p hyperdial-bench --bin dashboard -p hyperdial-cli
target="${CARGO_TARGET_DIR:-target}/release"
db="$(mktemp -d)/bench.db"
"$target/dashboard" --db "$db" | tee /tmp/dashboard-api.txt
sweep=$(grep -Eo '^SWEEP=\S+' /tmp/dashboard-api.txt | cut -d= -f2)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$target/hyperdial" server --db "$db" --bind "127.0.0.1:$port" >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$(dirname "$db")"' EXIT
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/api/v1/sweeps" >/dev/null 2>&1 && break; sleep 0.1; done
node bench/dashboard_browser.mjs "http://127.0.0.1:$port" "$sweep"
# The runs were inserted with their numbers rather than claimed: move the sweep's next number
# past them, so the live part's claims are not refused as stale.
python3 -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute("UPDATE sweeps SET next_number = (SELECT MAX(number) + 1 FROM runs)"); c.commit()' "$db"
node bench/dashboard_browser.mjs "http://127.0.0.1:$port" "$sweep" --live "${LIVE:-60}"
