#!/usr/bin/env bash
# Queue throughput with 8 workers on SQLite and on a throwaway PostgreSQL (durable settings:
# fsync on). Usage: scripts/bench-queue.sh [JOBS]
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS="${1:-5000}"
cargo bench --quiet --bench queue_throughput --no-run
rm -f /tmp/redline-queue-bench.db*
cargo bench --quiet --bench queue_throughput -- "sqlite:///tmp/redline-queue-bench.db" "$JOBS"
eval "$(scripts/pg-temp.sh)"
trap 'scripts/pg-temp.sh stop "$PG_DIR"' EXIT
cargo bench --quiet --bench queue_throughput -- "$PG_URL" "$JOBS"
