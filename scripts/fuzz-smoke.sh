#!/usr/bin/env bash
# A short, bounded cargo-fuzz run of every target (needs a nightly toolchain).
# FUZZ_SECONDS sets the time per target (default 20). Fails if any target finds a
# crash; the reproducer is left in fuzz/artifacts/<target>/.
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
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
for target in $(cargo +nightly fuzz list); do
    mkdir -p "corpus/$target"
    # Seed with the shared vectors so the fuzzer starts from real caches.
    if [ -d ../../shared/vectors ]; then cp ../../shared/vectors/*.json "corpus/$target/" 2>/dev/null || true; fi
    echo "fuzz: $target for ${SECONDS_PER_TARGET}s"
    if cargo +nightly fuzz run "$target" "corpus/$target" -- \
        -max_total_time="$SECONDS_PER_TARGET" -max_len=65536 >"$log" 2>&1; then
        grep -E '^Done [0-9]+ runs' "$log" | tail -n 1
    else
        echo "!!! fuzz: $target FAILED (reproduce: cd fuzz && cargo +nightly fuzz run $target <artifact>)" >&2
        # The panic message, then the failing input and the artifact path.
        grep -E -A4 'panicked at' "$log" | head -n 30 >&2 || true
        if grep -q '^Failing input:' "$log"; then
            sed -n '/^Failing input:/,/^Minimize/p' "$log" >&2
        else
            tail -n 40 "$log" >&2 # e.g. a build error
        fi
        status=1
    fi
done
exit "$status"
