#!/usr/bin/env bash
# Builds the browser package into web/pkg/: the library for wasm32 (WebGPU backend) and its
# ES module from wasm-bindgen. Installs the wasm32 target and wasm-bindgen-cli (the version
# Cargo.lock pins for the wasm-bindgen crate) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  echo "web: adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# The CLI must match the crate exactly: wasm-bindgen refuses a schema from another version.
WB_VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
[ -n "$WB_VERSION" ] || { echo "web: FAILED: no wasm-bindgen version in Cargo.lock" >&2; exit 1; }
if ! wasm-bindgen --version 2>/dev/null | grep -q " $WB_VERSION\$"; then
  echo "web: installing wasm-bindgen-cli $WB_VERSION from crates.io"
  # --locked first; when the registry lacks a crate the CLI's lockfile names (it happened with
  # webpki-roots), resolve afresh: the CLI's own version is still the pinned one.
  # --debug: it only rewrites one module here, and an unoptimised build of the CLI takes a
  # fraction of the time on a 2-core CI machine.
  cargo install wasm-bindgen-cli --version "$WB_VERSION" --locked --debug ||
    cargo install wasm-bindgen-cli --version "$WB_VERSION" --debug
fi

TARGET_DIR="${CARGO_TARGET_DIR:-target}"
# A cdylib only here: native builds keep the plain rlib.
cargo rustc --release --locked --lib --target wasm32-unknown-unknown --crate-type cdylib
rm -rf web/pkg
wasm-bindgen --target web --no-typescript --out-dir web/pkg \
  "$TARGET_DIR/wasm32-unknown-unknown/release/wgformer.wasm"
echo "web: built web/pkg ($(du -h web/pkg/wgformer_bg.wasm | cut -f1) of wasm)"
