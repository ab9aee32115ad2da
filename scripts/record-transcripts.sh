#!/usr/bin/env bash
# Reviews benchmark cases with a real model and records every exchange, for tests/replay.rs.
#
#   scripts/record-transcripts.sh BASE_URL MODEL CASE_DIR...
#
# Writes fixtures/llm/<case-id>.json (the exchanges, the findings and the repairs counted) and
# prints one line per case: findings, LLM calls, tokens and wall time.
set -euo pipefail
base_url=$1; model=$2; shift 2
cd "$(dirname "$0")/.."
cargo build --release --quiet
mkdir -p fixtures/llm
for case in "$@"; do
  id=$(basename "$case")
  start=$(date +%s.%N)
  REDLINE_LLM_BASE_URL="$base_url" REDLINE_LLM_MODEL="$model" REDLINE_LLM_LOCAL=1 \
  REDLINE_AGENT_CONCURRENCY=1 REDLINE_AGENT_CONTEXT_TOKENS=12000 REDLINE_LLM_TIMEOUT_SECS=300 \
  REDLINE_LLM_RECORD="fixtures/llm/$id.json" \
    ./target/release/redline review "$case" --engine agent --format json -o "target/record-$id.json" || { echo "$id: failed"; continue; }
  end=$(date +%s.%N)
  python3 - "$id" "target/record-$id.json" "$start" "$end" <<'PY'
import json, sys
case, path, start, end = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
v = json.load(open(path)); a = v["summary"]["agent"]
print(f"{case}: {len(v['findings'])} findings ({sum(f['source']=='llm' for f in v['findings'])} llm), {a['llm_calls']} calls, "
      f"{a['prompt_tokens']} in / {a['completion_tokens']} out, {end-start:.0f}s, quirks {a['quirks']}")
PY
done
