#!/usr/bin/env bash
# The C ABI benchmark (`make bench-c`): W1 at $TC_BENCH_TENANTS tenants (default
# 100 000) looked up from C through libtokencache (bench/c/bench_abi.c, -O2, against a
# release build installed in a temporary prefix) and the same lookups in Rust
# (ffi/benches/rust_lookup.rs), then a table of both and their ratio.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=${BUILD:-$root/target/tokencache-test}/bench-c
export TC_BENCH_TENANTS=${TC_BENCH_TENANTS:-100000}
mkdir -p "$build"
prefix="$build/prefix"
scripts/install-c.sh "$prefix" >/dev/null
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
cc -O2 -std=c11 -Wall -Wextra -Wpedantic -Werror bench/c/bench_abi.c $(pkg-config --cflags --libs tokencache) \
    -Wl,-rpath,"$(pkg-config --variable=libdir tokencache)" -o "$build/bench_abi"

echo "W1 at $TC_BENCH_TENANTS tenants; ns per call: median of 200,000 single calls, and median of 200 batch means"
rust=$("${CARGO:-cargo}" bench --quiet -p tokencache-ffi --bench rust_lookup | grep '^RESULT')
c=$("$build/bench_abi" | grep '^RESULT')
field() { printf '%s\n%s\n' "$rust" "$c" | awk -v k="$1" -v f="$2" '$2 == k {print $f}'; }
row() { printf '| %-58s | %7.0f | %7.0f |\n' "$1" "$(field "$2" 3)" "$(field "$2" 4)"; }
ratio() {
    awk -v a="$(field "$2" 3)" -v b="$(field "$3" 3)" -v c="$(field "$2" 4)" -v d="$(field "$3" 4)" \
        -v l="$1" 'BEGIN {printf "| %-58s | %6.2fx | %6.2fx |\n", l, a / b, c / d}'
}
echo "| measurement                                                |  median |    mean |"
echo "|------------------------------------------------------------|--------:|--------:|"
row "Rust: TokenCache::get_access_token (+ secret, expires_on)" rust_get_access_token
row "Rust calling the exported tc_cache_get_access_token" rust_calls_abi_get_access_token
row "C: tc_cache_get_access_token (libtokencache.so, -O2)" c_get_access_token
ratio "typed hot path: exported fn over Rust, same process" rust_calls_abi_get_access_token rust_get_access_token
ratio "typed hot path: C over Rust" c_get_access_token rust_get_access_token
row "Rust: TokenCache::search with a parsed query" rust_search
row "C: tc_cache_search (query JSON in, JSON array out, freed)" c_search_json
ratio "search: C (JSON) over Rust (parsed)" c_search_json rust_search
row "C: tc_cache_add_event (W1 event, 1.6 KB of JSON; mean)" c_add_event

# The provider path: one request's cache work through core's CacheProvider and through
# tc_provider_load / tc_cache_get_access_token / tc_provider_save, on a memory store and,
# under a throwaway redis-server, on Redis and on a tiered store over it.
echo
echo "Provider, $(printf '%s' "${TC_BENCH_PROVIDER_TENANTS:-1000}") tenants: load a partition + typed lookup + save (unchanged); ns per request"
provider=$(scripts/redis-server.sh run "${CARGO:-cargo}" bench --quiet -p tokencache-ffi --bench rust_provider 2>/dev/null \
    | grep '^RESULT')
pfield() { printf '%s\n' "$provider" | awk -v k="$1" -v f="$2" '$2 == k {print $f}'; }
echo "| store                      | Rust median | ABI median | ratio | Rust mean | ABI mean | ratio |"
echo "|----------------------------|------------:|-----------:|------:|----------:|---------:|------:|"
for store in memory tiered_l1 redis; do
    awk -v s="$store" -v a="$(pfield "rust_provider_$store" 3)" -v b="$(pfield "abi_provider_$store" 3)" \
        -v c="$(pfield "rust_provider_$store" 4)" -v d="$(pfield "abi_provider_$store" 4)" \
        'BEGIN {printf "| %-26s | %11.0f | %10.0f | %4.2fx | %9.0f | %8.0f | %4.2fx |\n", s, a, b, b / a, c, d, d / c}'
done
