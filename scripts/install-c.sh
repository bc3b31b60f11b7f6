#!/usr/bin/env bash
# Builds libtokencache in release mode and installs it as a C library under PREFIX:
#   lib/libtokencache.so.X.Y.Z (+ .so.0, .so links), lib/libtokencache.a,
#   include/tokencache.h, lib/pkgconfig/tokencache.pc, lib/cmake/tokencache/*.cmake
#   scripts/install-c.sh PREFIX
set -euo pipefail
prefix=${1:?usage: scripts/install-c.sh PREFIX}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo=${CARGO:-cargo}
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
soversion=0   # bump with an ABI break (see README, "ABI stability")

# One build that also prints what a static link needs (rustc's own list).
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"$cargo" rustc --quiet --release -p tokencache-ffi --lib -- --print native-static-libs 2>"$log" || { cat "$log" >&2; exit 1; }
libs=$(sed -n 's/.*native-static-libs: //p' "$log" | tail -1 | sed 's/ -lc$//')
[ -n "$libs" ] || { echo "install-c: rustc printed no native-static-libs" >&2; exit 1; }
target=${CARGO_TARGET_DIR:-$root/target}/release

mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd)
install -d "$prefix/lib/pkgconfig" "$prefix/lib/cmake/tokencache" "$prefix/include"
install -m 0644 include/tokencache.h "$prefix/include/tokencache.h"
install -m 0755 "$target/libtokencache.so" "$prefix/lib/libtokencache.so.$version"
ln -sf "libtokencache.so.$version" "$prefix/lib/libtokencache.so.$soversion"
ln -sf "libtokencache.so.$soversion" "$prefix/lib/libtokencache.so"
install -m 0644 "$target/libtokencache.a" "$prefix/lib/libtokencache.a"
subst() {
    sed -e "s|@PREFIX@|$prefix|g" -e "s|@VERSION@|$version|g" -e "s|@SOVERSION@|$soversion|g" \
        -e "s|@LIBS_PRIVATE@|$libs|g" -e "s|@LIBS_PRIVATE_CMAKE@|${libs// /;}|g" "$1" > "$2"
}
subst ffi/packaging/tokencache.pc.in "$prefix/lib/pkgconfig/tokencache.pc"
subst ffi/packaging/tokencache-config.cmake.in "$prefix/lib/cmake/tokencache/tokencache-config.cmake"
subst ffi/packaging/tokencache-config-version.cmake.in "$prefix/lib/cmake/tokencache/tokencache-config-version.cmake"
echo "installed tokencache $version under $prefix"
