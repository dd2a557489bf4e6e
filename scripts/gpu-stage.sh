#!/usr/bin/env bash
# Stages what one device run of the prepared benchmark needs, in git-ignored folders that the
# run carries: .gpu/ (the stripped release binary and its commit) and .gl/ (Debian's Vulkan
# loader as .deb files: the GPU machine has the NVIDIA driver but no loader). Then one call:
#
#   run  command: bash scripts/gpu-remote.sh   carry: [".gl", ".gpu"]   timeout_s: 540
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked
mkdir -p .gpu .gl
cp target/release/wgformer .gpu/wgformer
strip .gpu/wgformer
{ git rev-parse --short HEAD; git diff --quiet HEAD -- src shaders Cargo.toml || echo "(with uncommitted changes)"; } | paste -sd' ' >.gpu/COMMIT
if ! ls .gl/libvulkan1_*.deb >/dev/null 2>&1; then
  o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
  mkdir -p /tmp/amd64/partial
  apt-get "${o[@]}" update -qq
  (cd .gl && apt-get "${o[@]}" download libvulkan1)
fi
du -sh .gpu .gl
echo "gpu-stage: ready ($(cat .gpu/COMMIT))"
