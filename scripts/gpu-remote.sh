#!/usr/bin/env bash
# Runs on the lent GPU machine (see gpu-stage.sh): unpacks the Vulkan loader, finds the NVIDIA
# driver, then the prepared benchmark, writing its raw outputs to $OUT as it goes (so a run cut
# short still returns what it finished).
set -uo pipefail
cd "$(dirname "$0")/.."
[ -f .gpu/wgformer.gz ] && [ -n "${OUT:-}" ] || { echo "gpu-remote: needs .gpu/ (run scripts/gpu-stage.sh) and \$OUT" >&2; exit 2; }
gzip -dc .gpu/wgformer.gz >/tmp/wgformer && chmod +x /tmp/wgformer
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
if ! /tmp/wgformer devices 2>/dev/null | grep -qi nvidia; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
/tmp/wgformer devices 2>&1 | tee "$OUT/devices.txt"
grep -qi nvidia "$OUT/devices.txt" || { echo "gpu-remote: no NVIDIA Vulkan adapter found" >&2; exit 1; }
PYTHONUNBUFFERED=1 SQUAD_DIR=.gpu bash scripts/gpu-bench.sh /tmp/wgformer "$OUT"
