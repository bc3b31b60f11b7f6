#!/usr/bin/env bash
# A short, bounded cargo-fuzz run of every target (needs a nightly toolchain).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${FUZZ_SECONDS:-20}
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "!!! fuzz: SKIPPED — no nightly Rust toolchain on this machine (cargo +nightly failed)" >&2
    exit 0
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install --quiet --locked cargo-fuzz
fi
cd fuzz
for target in $(cargo +nightly fuzz list); do
    mkdir -p "corpus/$target"
    # Seed with the shared vectors so the fuzzer starts from real caches.
    if [ -d ../../shared/vectors ]; then cp ../../shared/vectors/*.json "corpus/$target/" 2>/dev/null || true; fi
    echo "fuzz: $target for ${SECONDS_PER_TARGET}s"
    cargo +nightly fuzz run "$target" "corpus/$target" -- -max_total_time="$SECONDS_PER_TARGET" -max_len=65536 2>&1 | tail -n 3
done
