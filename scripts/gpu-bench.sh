#!/usr/bin/env bash
# The prepared GPU benchmark (BENCHMARKS.md, issue "faster than PyTorch"): wgformer next to
# PyTorch CUDA f32 and f16 on the same GPU, in one run. Meant for a machine with an NVIDIA GPU, a
# Vulkan driver and python3 + torch, given a release binary; writes raw outputs to OUT.
#
#   scripts/gpu-bench.sh BINARY OUT_DIR
#
# Each output file starts with the adapter, driver and commit. Run time: a few minutes on an H200.
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
run() { echo "\$ $*"; "$@" 2>&1; echo "(exit $?)"; }

{
  header
  run "$BIN" devices
  run "$BIN" bench ceilings --precision f32
} >"$OUT/devices-ceilings.txt"

{
  header
  for cfg in minilm-l6 bert-base; do
    for prec in f32 f16; do
      run "$BIN" bench e2e --config "$cfg" --batch 1,32 --seq 128,384 --runs 20 --precision "$prec" --json
    done
  done
} >"$OUT/wgformer-e2e.txt"

{
  header
  for cfg in minilm-l6 bert-base; do
    for dt in f32 f16; do
      run python3 "$HERE/benches/torch/encoder_bench.py" --device cuda --config "$cfg" --dtype "$dt" \
        --batch 1,32 --seq 128,384 --runs 20 --json
    done
  done
} >"$OUT/torch-e2e.txt"

{
  header
  run "$BIN" bench matmul --m 4096 --n 4096 --k 4096 --precision f32 --matmul portable
  run "$BIN" bench matmul --m 4096 --n 4096 --k 4096 --f16 --precision f32 --matmul portable
  run "$BIN" bench matmul --m 4096 --n 4096 --k 4096 --f16 --precision f16 --matmul coop
  run "$BIN" bench matmul --m 128 --n 1536 --k 384 --f16 --precision f32 --matmul portable
  run "$BIN" bench matmul --m 128 --n 1536 --k 384 --f16 --precision f16 --matmul coop
} >"$OUT/matmul.txt"

{
  header
  for prec in f32 f16; do
    run "$BIN" profile --config minilm-l6 --batch 1 --seq 128 --runs 20 --precision "$prec"
    run "$BIN" profile --config bert-base --batch 32 --seq 384 --runs 5 --precision "$prec"
  done
} >"$OUT/profile.txt"
echo "gpu-bench: done, outputs in $OUT"
