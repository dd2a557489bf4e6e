#!/usr/bin/env bash
# Mesa 26's lavapipe implements VK_KHR_cooperative_matrix (8x8, f16*f16+f32); Debian 12's does
# not. This fetches it from Debian trixie(-backports) with the glibc/LLVM userland it links
# against, and unpacks everything into a private folder: nothing is installed system-wide.
# Programs then run through that folder's own dynamic loader, so the host's older glibc is never
# mixed with the newer libraries.
#
#   scripts/coopmat-lavapipe.sh setup            # once (about 15 s, ~60 MB of packages)
#   scripts/coopmat-lavapipe.sh run PROGRAM ...  # run a host-built program on that lavapipe
#
# Env: COOPMAT_LVP_DIR (default .lavapipe-coopmat in the checkout; git-ignored).
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
DIR=${COOPMAT_LVP_DIR:-$HERE/.lavapipe-coopmat}
ROOT=$DIR/root
LIB=$ROOT/usr/lib/x86_64-linux-gnu
ICD=$ROOT/lvp_icd.json

setup() {
  local apt=$DIR/apt
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/debs"
  printf 'deb http://deb.debian.org/debian %s main\n' trixie trixie-backports >"$apt/sources.list"
  local opts=(-o Dir::Etc::sourcelist="$apt/sources.list" -o Dir::Etc::sourceparts=-
    -o Dir::State::Lists="$apt/lists" -o Dir::Cache="$apt/cache" -o Acquire::Languages=none
    -o APT::Default-Release=trixie-backports)
  # Skip the large index files apt would otherwise fetch (icons, command-not-found).
  local t
  for t in DEP-11 DEP-11-icons DEP-11-icons-small DEP-11-icons-hidpi CNF; do
    opts+=(-o "Acquire::IndexTargets::deb::$t::DefaultEnabled=false")
  done
  apt-get "${opts[@]}" -qq update
  # The whole Depends closure of the driver and the Vulkan loader.
  mapfile -t pkgs < <(apt-cache "${opts[@]}" depends --recurse --no-recommends --no-suggests \
    --no-conflicts --no-breaks --no-replaces --no-enhances mesa-vulkan-drivers libvulkan1 |
    grep -v '^[ <]' | sort -u)
  [ "${#pkgs[@]}" -gt 5 ] || { echo "coopmat-lavapipe: dependency resolution found only: ${pkgs[*]}" >&2; exit 1; }
  (cd "$apt/debs" && rm -f ./*.deb && apt-get "${opts[@]}" -qq download "${pkgs[@]}" 2>&1 |
    grep -v 'unsandboxed' || true)
  rm -rf "$ROOT"
  mkdir -p "$ROOT"
  local deb
  for deb in "$apt"/debs/*.deb; do
    case $(basename "$deb") in
      # Of the drivers package only lavapipe is needed (the rest is ~120 MB of GPU drivers).
      mesa-vulkan-drivers_*) dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$ROOT" --wildcards '*/libvulkan_lvp.so' ;;
      *) dpkg-deb -x "$deb" "$ROOT" ;;
    esac
  done
  printf '{"file_format_version":"1.0.1","ICD":{"library_path":"%s/libvulkan_lvp.so","api_version":"1.4.0"}}\n' \
    "$LIB" >"$ICD"
  if "$LIB/ld-linux-x86-64.so.2" --library-path "$LIB" --list "$LIB/libvulkan_lvp.so" | grep 'not found'; then
    echo "coopmat-lavapipe: FAILED: the libraries above are missing from $ROOT" >&2
    exit 1
  fi
  echo "coopmat-lavapipe: Mesa $(dpkg-deb -f "$apt"/debs/mesa-vulkan-drivers_*.deb Version) unpacked in $ROOT"
}

run() {
  [ -f "$ICD" ] || { echo "coopmat-lavapipe: not set up: run '$0 setup' first" >&2; exit 1; }
  export VK_DRIVER_FILES=$ICD VK_ICD_FILENAMES=$ICD
  export VK_LOADER_LAYERS_DISABLE='~implicit~' # the host's device-select layer is for the old loader
  export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
  exec "$LIB/ld-linux-x86-64.so.2" --library-path "$LIB" "$@"
}

case ${1:-} in
  setup) setup ;;
  run) shift; run "$@" ;;
  *) echo "usage: $0 setup | run PROGRAM [ARGS...]" >&2; exit 2 ;;
esac
