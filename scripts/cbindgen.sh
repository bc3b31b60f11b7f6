#!/usr/bin/env bash
# Generates the C header from ffi/ with the pinned cbindgen, installing that version
# into target/tools first if needed (from crates.io, --locked).
#   scripts/cbindgen.sh OUTPUT.h
set -euo pipefail
CBINDGEN_VERSION=0.29.4
out=${1:?usage: scripts/cbindgen.sh OUTPUT.h}
root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/target/tools"
cbindgen="$tools/bin/cbindgen"
if ! "$cbindgen" --version 2>/dev/null | grep -qx "cbindgen $CBINDGEN_VERSION"; then
    echo "installing cbindgen $CBINDGEN_VERSION into $tools" >&2
    "${CARGO:-cargo}" install cbindgen --version "$CBINDGEN_VERSION" --locked --force --quiet --root "$tools"
fi
cd "$root"
"$cbindgen" --quiet --config ffi/cbindgen.toml --crate tokencache-ffi --output "$out" ffi
