#!/usr/bin/env bash
# Load benchmark of `wgformer serve` next to the offline forward at the same batch size.
#
#   bash scripts/serve-bench.sh [TAG]        # TAG names the adapter in the output files (default lavapipe)
#
# Starts the server on all-MiniLM-L6-v2 (f32, /embed) with --max-batch-requests 32, drives it with
# benches/serve_load.rs (closed loop, one 16-token text per request) at concurrency 1, 8 and 32,
# saves /metrics (batch-size histogram), then runs `wgformer bench e2e` on the same model at
# seq 16 and batch 1, 8, 32. Raw outputs go to benches/results/serve-TAG-*.txt.
# Environment: WGFORMER_MODELS_DIR (default .models), LEVEL_SECONDS (default 20), WARMUP (3),
# CONCURRENCY (1,8,32), SERVE_ARGS (extra server flags), CARGO_TARGET_DIR as cargo reads it.
set -euo pipefail
cd "$(dirname "$0")/.."

TAG="${1:-lavapipe}"
TARGET="${CARGO_TARGET_DIR:-target}"
BIN="$TARGET/release/wgformer"
MODEL="${WGFORMER_MODELS_DIR:-.models}/all-MiniLM-L6-v2"
OUT="benches/results"
LEVEL_SECONDS="${LEVEL_SECONDS:-20}"
WARMUP="${WARMUP:-3}"
CONCURRENCY="${CONCURRENCY:-1,8,32}"
BATCH=32
export NODEVICE_SELECT=1

die() { echo "serve-bench: FAILED: $*" >&2; exit 1; }
[[ -x "$BIN" ]] || die "no $BIN: cargo build --release --locked"
[[ -f "$MODEL/config.json" ]] || die "no model at $MODEL: run scripts/fetch-models.sh"
mkdir -p "$OUT"
cargo bench --locked --bench serve_load --no-run >/dev/null 2>&1 || die "cannot build benches/serve_load.rs"

{ echo "\$ wgformer devices"; "$BIN" devices; } >"$OUT/serve-$TAG-devices.txt"

LOG="$(mktemp -d)"
SERVER_PID=""
cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then kill -KILL "$SERVER_PID" || true; fi
  rm -rf "$LOG"
}
trap cleanup EXIT
# shellcheck disable=SC2086
"$BIN" serve --model "$MODEL" --port 0 --max-batch-requests "$BATCH" ${SERVE_ARGS:-} >"$LOG/out" 2>"$LOG/err" &
SERVER_PID=$!
URL=""
for _ in $(seq 1 600); do
  URL="$(sed -n 's/^listening on //p' "$LOG/out" | head -1)"
  [[ -n "$URL" ]] && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$LOG/err" >&2; die "the server exited"; }
  sleep 0.2
done
[[ -n "$URL" ]] || die "the server did not start"

{
  echo "\$ wgformer serve --model $MODEL --max-batch-requests $BATCH ${SERVE_ARGS:-}"
  echo "\$ cargo bench --bench serve_load -- --concurrency $CONCURRENCY --seconds $LEVEL_SECONDS --warmup $WARMUP"
  cargo bench --locked --bench serve_load -- --url "$URL" --concurrency "$CONCURRENCY" \
    --seconds "$LEVEL_SECONDS" --warmup "$WARMUP" 2>/dev/null
} | tee "$OUT/serve-$TAG-load.txt"
curl -s "$URL/metrics" >"$OUT/serve-$TAG-metrics.txt"
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || die "the server did not exit 0"
SERVER_PID=""

{
  echo "\$ wgformer bench e2e --model $MODEL --batch 1,8,$BATCH --seq 16 --runs 5"
  "$BIN" bench e2e --model "$MODEL" --batch "1,8,$BATCH" --seq 16 --runs 5
} | tee "$OUT/serve-$TAG-e2e.txt"
