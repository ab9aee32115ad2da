#!/usr/bin/env bash
# Webhook-to-enqueue latency: a release `redline serve` (no workers) on loopback, signed deliveries
# at RATE per second for SECONDS, on SQLite, then on a throwaway PostgreSQL.
# Usage: scripts/bench-webhook.sh [RATE] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
RATE="${1:-500}"; SECONDS_="${2:-10}"
cargo build --release --quiet
cargo bench --quiet --bench webhook_load --no-run
SECRET="bench-secret-$$"
run() {
  local db="$1" log; log="$(mktemp)"
  REDLINE_DATABASE_URL="$db" REDLINE_WEBHOOK_SECRET="$SECRET" REDLINE_WORKERS=0 REDLINE_LISTEN=127.0.0.1:0 \
    RUST_LOG=warn target/release/redline serve >"$log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do grep -q "listening on" "$log" && break; sleep 0.1; done
  local addr; addr="$(sed -n 's/^redline listening on //p' "$log")"
  echo "== ${db%%:*}"
  cargo bench --quiet --bench webhook_load -- "$addr" "$SECRET" "$db" "$RATE" "$SECONDS_" || true
  kill "$pid"; wait "$pid" 2>/dev/null || true
}
rm -f /tmp/redline-webhook-bench.db*
run "sqlite:///tmp/redline-webhook-bench.db"
eval "$(scripts/pg-temp.sh)"
trap 'scripts/pg-temp.sh stop "$PG_DIR"' EXIT
run "$PG_URL"
