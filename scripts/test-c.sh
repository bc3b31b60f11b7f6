#!/usr/bin/env bash
# The C ABI suite (`make test-c`): checks the committed header against the pinned
# cbindgen, installs libtokencache into a temporary prefix, builds the C and C++ tests
# against that installed copy and runs them as is, under valgrind, and under
# AddressSanitizer + UBSan, builds and runs the examples with pkg-config and CMake, and
# runs the Rust-side tests of the exported functions under Miri. The whole run happens
# under scripts/redis-server.sh, so the store tests meet a real redis-server.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if [ -z "${TOKENCACHE_REDIS_URL:-}" ]; then
    exec scripts/redis-server.sh run "$0" "$@"
fi
build=${BUILD:-$root/target/tokencache-test}/c
vectors=${TOKENCACHE_VECTORS:-$(cd "$root/.." && pwd)/shared/vectors}
export TOKENCACHE_VECTORS=$vectors
jobs=$(nproc 2>/dev/null || echo 2)
step() { printf '\n== test-c: %s\n' "$*"; }

step "tools"
missing=()
for tool in valgrind cmake ninja pkg-config c++; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
[ -f /usr/include/gtest/gtest.h ] || missing+=(gtest)
if [ ${#missing[@]} -gt 0 ]; then
    echo "missing: ${missing[*]}; installing with apt-get"
    [ "$(id -u)" = 0 ] || { echo "test-c: run as root or install valgrind cmake ninja-build libgtest-dev pkg-config g++" >&2; exit 1; }
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind cmake ninja-build libgtest-dev pkg-config g++ >/dev/null
fi

step "header is what the pinned cbindgen generates"
mkdir -p "$build"
scripts/cbindgen.sh "$build/tokencache.h"
if ! diff -u include/tokencache.h "$build/tokencache.h"; then
    echo "test-c: include/tokencache.h is stale; run 'make header' and commit it" >&2
    exit 1
fi

step "install into a temporary prefix"
prefix="$build/prefix"
rm -rf "$prefix"
scripts/install-c.sh "$prefix"

run_suite() { # NAME SOURCE_DIR EXTRA_CMAKE_ARGS... ; builds then runs ctest
    local name=$1 src=$2
    shift 2
    cmake -G Ninja -S "$src" -B "$build/$name" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Debug \
        -DTOKENCACHE_VECTORS="$vectors" "$@" >/dev/null
    cmake --build "$build/$name" -j "$jobs" >/dev/null
}

step "C and C++ tests"
run_suite tests-c tests/c
run_suite tests-cpp tests/cpp
ctest --test-dir "$build/tests-c" -LE valgrind --output-on-failure -j "$jobs"
ctest --test-dir "$build/tests-cpp" -LE valgrind --output-on-failure

step "C and C++ tests under valgrind"
ctest --test-dir "$build/tests-c" -L valgrind --output-on-failure -j "$jobs"
ctest --test-dir "$build/tests-cpp" -L valgrind --output-on-failure

step "C and C++ tests under AddressSanitizer + UBSan (C: static library, C++: shared library)"
run_suite tests-c-asan tests/c -DTC_SANITIZE=ON
run_suite tests-cpp-asan tests/cpp -DTC_SANITIZE=ON
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir "$build/tests-c-asan" --output-on-failure -j "$jobs"
ctest --test-dir "$build/tests-cpp-asan" --output-on-failure
unset ASAN_OPTIONS UBSAN_OPTIONS

step "examples, built as a user would against the installed copy"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
libdir=$(pkg-config --variable=libdir tokencache)
flags=(-std=c11 -Wall -Wextra -Wpedantic -Werror)
cc "${flags[@]}" examples/c/cache_file.c $(pkg-config --cflags --libs tokencache) -Wl,-rpath,"$libdir" \
    -o "$build/example-c"
# Static: the archive plus what pkg-config says it needs (Libs.private).
cc "${flags[@]}" examples/c/cache_file.c $(pkg-config --cflags tokencache) "$libdir/libtokencache.a" \
    $(pkg-config --static --libs-only-l tokencache | sed 's/-ltokencache//') -o "$build/example-c-static"
cmake -G Ninja -S examples/cpp -B "$build/example-cpp" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$build/example-cpp" >/dev/null
cp "$vectors/msal_python_combined.json" "$build/example-cache.json"
for example in "$build/example-c" "$build/example-c-static" "$build/example-cpp/cache_file"; do
    "$example" "$build/example-cache.json"
done
rm -f "$build/fresh-cache.json"
"$build/example-c" "$build/fresh-cache.json"
grep -q '"AccessToken"' "$build/fresh-cache.json"
cc "${flags[@]}" examples/c/token_service.c $(pkg-config --cflags --libs tokencache) -Wl,-rpath,"$libdir" \
    -o "$build/token-service"
# Over SQLite (in the build dir), then over the test redis-server with encryption at rest.
(cd "$build" && rm -f token_service.db* && ./token-service | tee token-service.out)
grep -q 'contoso: token from the cache' "$build/token-service.out"
TOKENCACHE_KEYS=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n') \
    "$build/token-service" "$TOKENCACHE_REDIS_URL" | tee "$build/token-service.out"
grep -q 'store: L1 hits 3, L2 hits 0, misses 2, L2 errors 0' "$build/token-service.out"
if ldd "$build/example-c-static" | grep -q tokencache; then
    echo "test-c: the static example still loads libtokencache.so" >&2
    exit 1
fi

step "Rust-side ABI tests under Miri"
if ! "${CARGO:-cargo}" +nightly miri --version >/dev/null 2>&1; then
    rustup component add --toolchain nightly miri rust-src >/dev/null 2>&1 || true
fi
if "${CARGO:-cargo}" +nightly miri --version >/dev/null 2>&1; then
    # Isolation off: the cache reads the wall clock. No store features: Miri can't run
    # SQLite's C code, sockets or the TLS stack (tests/stores.rs says what it skips).
    MIRIFLAGS="-Zmiri-disable-isolation ${MIRIFLAGS:-}" "${CARGO:-cargo}" +nightly miri test --quiet \
        -p tokencache-ffi --no-default-features --lib --tests
else
    echo "!!! test-c: Miri SKIPPED — no nightly toolchain with miri on this machine, and it could not be installed" >&2
fi

echo
echo "test-c: all C ABI checks passed"
