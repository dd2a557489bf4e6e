#!/usr/bin/env bash
# The browser tests: builds web/pkg, installs Chromium (Debian's package) and puppeteer-core (the
# version package-lock.json pins) when missing, then drives the demo page in headless Chromium
# (WebGPU on SwiftShader) against the goldens in ../shared. Fails loudly, never skips.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${WGFORMER_SHARED:-$(cd .. && pwd)/shared}"
[ -d "$SHARED/fixtures/tiny" ] || { echo "web: FAILED: no fixtures at $SHARED" >&2; exit 1; }

bash web/build.sh

SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
if [ ! -x /usr/bin/chromium ]; then
  echo "web: installing chromium"
  $SUDO apt-get update
  $SUDO apt-get install -y --no-install-recommends chromium
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "web: installing nodejs and npm"
  $SUDO apt-get update
  $SUDO apt-get install -y --no-install-recommends nodejs npm
fi
if [ ! -d web/node_modules/puppeteer-core ]; then
  (cd web && npm ci --no-audit --no-fund)
fi
# The f32 all-MiniLM-L6-v2 for the embedding check (already there after .ci/run's step 3).
export WGFORMER_MODELS_DIR="${WGFORMER_MODELS_DIR:-$PWD/.models}"
bash scripts/fetch-models.sh
node web/test.mjs "$SHARED" /usr/bin/chromium "$WGFORMER_MODELS_DIR/all-MiniLM-L6-v2"
