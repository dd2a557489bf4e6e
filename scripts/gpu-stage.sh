#!/usr/bin/env bash
# Stages what one device run of the prepared benchmark needs, in git-ignored folders that the
# run carries: .gpu/ (the stripped release binary, gzipped, and its commit; distilminilm-squad
# with the visible SQuAD dev set and transformers' answers for the f16 answer check) and .gl/
# (Debian's Vulkan loader as .deb files: the GPU machine has the NVIDIA driver but no loader).
# Everything that travels must stay under 64 MiB. Then one call:
#
#   run  command: bash scripts/gpu-remote.sh   carry: [".gl", ".gpu"]   timeout_s: 540
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked
SHARED="${WGFORMER_SHARED:-$(cd .. && pwd)/shared}"
[ -d "$SHARED/models/distilminilm-squad" ] || { echo "gpu-stage: no $SHARED/models/distilminilm-squad" >&2; exit 1; }
rm -rf .gpu
mkdir -p .gpu/distilminilm-squad .gl
strip -o .gpu/wgformer target/release/wgformer
gzip -9f .gpu/wgformer
for f in config.json model.safetensors tokenizer.json tokenizer_config.json special_tokens_map.json vocab.txt; do
  [ -f "$SHARED/models/distilminilm-squad/$f" ] && cp "$SHARED/models/distilminilm-squad/$f" .gpu/distilminilm-squad/
done
cp "$SHARED/data/squad-v1.1-dev-visible.json" "$SHARED/fixtures/squad-visible.hf.summary.json" .gpu/
gzip -9c "$SHARED/fixtures/squad-visible.hf.jsonl" >.gpu/squad-visible.hf.jsonl.gz
{ git rev-parse --short HEAD; git diff --quiet HEAD -- src shaders Cargo.toml || echo "(with uncommitted changes)"; } | paste -sd' ' >.gpu/COMMIT
if ! ls .gl/libvulkan1_*.deb >/dev/null 2>&1; then
  o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
  mkdir -p /tmp/amd64/partial
  apt-get "${o[@]}" update -qq
  (cd .gl && apt-get "${o[@]}" download libvulkan1)
fi
du -sh .gpu .gl
total=$(( $(du -sb .gpu | cut -f1) + $(du -sb .gl | cut -f1) + $(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1) ))
[ "$total" -lt $((62 * 1024 * 1024)) ] || { echo "gpu-stage: $total bytes would travel, over the 64 MiB limit" >&2; exit 1; }
echo "gpu-stage: ready ($(cat .gpu/COMMIT))"
