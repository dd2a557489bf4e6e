#!/usr/bin/env bash
# The official OpenAI Python client against `wgformer serve`, unchanged: installs the client into a
# private folder (pip --target; nothing system-wide), starts the server on a free port with the f32
# all-MiniLM-L6-v2, runs scripts/openai_client_check.py against it, stops the server with SIGTERM
# and checks it exits 0. Fails loudly (non-zero) when anything cannot be installed or differs.
#
#   bash scripts/openai-client-check.sh [path/to/wgformer]
#
# Environment: WGFORMER_SHARED (default ../shared), WGFORMER_MODELS_DIR (default .models; see
# scripts/fetch-models.sh), OPENAI_PIP_DIR (default .pip-openai), WGFORMER_SERVE_ARGS (extra
# server flags, e.g. "--backend vulkan").
set -euo pipefail
cd "$(dirname "$0")/.."

OPENAI_VERSION="3.57.0"
BIN="${1:-target/release/wgformer}"
SHARED="${WGFORMER_SHARED:-$(cd .. && pwd)/shared}"
MODEL="${WGFORMER_MODELS_DIR:-.models}/all-MiniLM-L6-v2"
GOLDENS="$SHARED/fixtures/embeddings.hf.jsonl"
PIP_DIR="${OPENAI_PIP_DIR:-$PWD/.pip-openai}"

die() { echo "openai-client-check: FAILED: $*" >&2; exit 1; }

[[ -x "$BIN" ]] || die "no wgformer binary at $BIN: run 'cargo build --release --locked' first"
[[ -f "$MODEL/config.json" ]] || die "no all-MiniLM-L6-v2 at $MODEL: run scripts/fetch-models.sh"
[[ -f "$GOLDENS" ]] || die "no goldens at $GOLDENS: the shared/ folder must sit beside the checkout (or set WGFORMER_SHARED)"
PY="$(command -v python3 || true)"
[[ -n "$PY" ]] || die "python3 is not available: install it (apt-get install python3 python3-pip)"
"$PY" -m pip --version >/dev/null 2>&1 || die "pip is not available for $PY: install python3-pip"

if ! PYTHONPATH="$PIP_DIR" "$PY" -c "import openai, sys; sys.exit(openai.__version__ != '$OPENAI_VERSION')" 2>/dev/null; then
  echo "openai-client-check: installing openai==$OPENAI_VERSION into $PIP_DIR"
  rm -rf "$PIP_DIR"
  "$PY" -m pip install --quiet --disable-pip-version-check --no-input --target "$PIP_DIR" \
      "openai==$OPENAI_VERSION" || die "pip could not install openai==$OPENAI_VERSION (is PyPI reachable?)"
  PYTHONPATH="$PIP_DIR" "$PY" -c "import openai" || die "openai installed into $PIP_DIR but does not import"
fi

LOG="$(mktemp -d)"
SERVER_PID=""
cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then kill -KILL "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$LOG"
}
trap cleanup EXIT

# shellcheck disable=SC2086
NODEVICE_SELECT=1 "$BIN" serve --model "$MODEL" --port 0 ${WGFORMER_SERVE_ARGS:-} >"$LOG/out" 2>"$LOG/err" &
SERVER_PID=$!
URL=""
for _ in $(seq 1 600); do
  URL="$(sed -n 's/^listening on //p' "$LOG/out" | head -1)"
  [[ -n "$URL" ]] && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$LOG/err" >&2; die "the server exited before listening"; }
  sleep 0.2
done
[[ -n "$URL" ]] || { cat "$LOG/err" >&2; die "the server did not start within 120 s"; }

if ! PYTHONPATH="$PIP_DIR" "$PY" scripts/openai_client_check.py "$URL" "$GOLDENS"; then
  cat "$LOG/err" >&2
  die "the OpenAI client check failed against $URL"
fi

kill -TERM "$SERVER_PID"
STATUS=0
wait "$SERVER_PID" || STATUS=$?
SERVER_PID=""
[[ "$STATUS" -eq 0 ]] || { cat "$LOG/err" >&2; die "the server exited with status $STATUS after SIGTERM"; }
echo "openai-client-check: ok"
