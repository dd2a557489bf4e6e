#!/usr/bin/env bash
# The prepared GPU benchmark (BENCHMARKS.md, issue "faster than PyTorch"): wgformer next to
# PyTorch CUDA f32 and f16 on the same GPU, in one run. Meant for a machine with an NVIDIA GPU, a
# Vulkan driver and python3 + torch, given a release binary; writes raw outputs to OUT.
#
#   scripts/gpu-bench.sh BINARY OUT_DIR
#
# Each output file starts with the adapter, driver and commit. Run time: a few minutes on an H200;
# every command is cut at STEP_S seconds (default 150) so one hang cannot eat the lease.
# GPU_BENCH_QUICK=1 shrinks every shape: a dry run of the script itself on any adapter.
# With SQUAD_DIR (what gpu-stage.sh puts in .gpu/), also the f16 answer check: distilminilm-squad
# on the visible SQuAD dev set in f32 and f16, EM/F1 and agreement with transformers' answers.
set -uo pipefail
BIN=${1:?usage: gpu-bench.sh BINARY OUT_DIR}
OUT=${2:?usage: gpu-bench.sh BINARY OUT_DIR}
HERE=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$OUT"
COMMIT=$(cat "$HERE/.gpu/COMMIT" 2>/dev/null || git -C "$HERE" rev-parse --short HEAD 2>/dev/null || echo unknown)

header() {
  echo "# commit $COMMIT · $(date -u +%FT%TZ)"
  "$BIN" devices 2>&1 | sed -n '1,6p' | sed 's/^/# /'
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | sed 's/^/# nvidia-smi: /'
}
run() { echo "\$ $*"; timeout "${STEP_S:-150}" "$@" 2>&1; echo "(exit $?)"; }

CONFIGS="minilm-l6 bert-base"; BATCH=1,32; SEQ=128,384; RUNS=20; BIG=4096; SMALL_M=128
BIG_PROFILE="--config bert-base --batch 32 --seq 384"
if [ -n "${GPU_BENCH_QUICK:-}" ]; then
  CONFIGS=minilm-l6; BATCH=1,2; SEQ=16; RUNS=2; BIG=256; SMALL_M=8
  BIG_PROFILE="--config minilm-l6 --batch 2 --seq 16"
fi

{
  header
  run "$BIN" devices
  run "$BIN" bench ceilings --precision f32
} >"$OUT/devices-ceilings.txt"

{
  header
  for cfg in $CONFIGS; do
    for prec in f32 f16; do
      run "$BIN" bench e2e --config "$cfg" --batch "$BATCH" --seq "$SEQ" --runs "$RUNS" --precision "$prec" --json
    done
  done
} >"$OUT/wgformer-e2e.txt"

{
  header
  DEV=cuda; [ -n "${GPU_BENCH_QUICK:-}" ] && DEV=${TORCH_DEVICE:-cpu}
  for impl in nn transformers; do
    for cfg in $CONFIGS; do
      for dt in f32 f16; do
        run python3 "$HERE/benches/torch/encoder_bench.py" --device "$DEV" --impl "$impl" --config "$cfg" \
          --dtype "$dt" --batch "$BATCH" --seq "$SEQ" --runs "$RUNS" --json
      done
    done
  done
} >"$OUT/torch-e2e.txt"

{
  header
  run "$BIN" bench matmul --m $BIG --n $BIG --k $BIG --precision f32 --matmul portable
  run "$BIN" bench matmul --m $BIG --n $BIG --k $BIG --f16 --precision f32 --matmul portable
  run "$BIN" bench matmul --m $BIG --n $BIG --k $BIG --f16 --precision f16 --matmul coop
  run "$BIN" bench matmul --m $SMALL_M --n 1536 --k 384 --f16 --precision f32 --matmul portable
  run "$BIN" bench matmul --m $SMALL_M --n 1536 --k 384 --f16 --precision f16 --matmul coop
} >"$OUT/matmul.txt"

{
  header
  for prec in f32 f16; do
    run "$BIN" profile --config minilm-l6 --batch 1 --seq "${SEQ%%,*}" --runs "$RUNS" --precision "$prec"
    run "$BIN" profile $BIG_PROFILE --runs 5 --precision "$prec"
  done
} >"$OUT/profile.txt"
if [ -n "${SQUAD_DIR:-}" ]; then
  LIMIT=(); [ -n "${GPU_BENCH_QUICK:-}" ] && LIMIT=(--limit 40)
  {
    header
    for prec in f32 f16; do
      run "$BIN" eval squad --model "$SQUAD_DIR/distilminilm-squad" --data "$SQUAD_DIR/squad-v1.1-dev-visible.json" \
        "${LIMIT[@]}" --precision "$prec" --predictions "/tmp/squad-$prec.json"
    done
    run python3 "$HERE/scripts/squad_agreement.py" "$SQUAD_DIR/squad-visible.hf.jsonl.gz" /tmp/squad-f32.json /tmp/squad-f16.json
  } >"$OUT/squad.txt"
fi
echo "gpu-bench: done, outputs in $OUT"
