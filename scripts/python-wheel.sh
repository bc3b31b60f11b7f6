#!/usr/bin/env bash
# Builds the Python package's wheel (maturin, release, abi3) and installs it into the
# venv whose python is $1, unless the sources are unchanged since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=$1
VENV=$(dirname "$(dirname "$PY")")
stamp="$VENV/.tokencache-wheel.stamp"
sum=$( { find core/src core/Cargo.toml bindings/python -type f \
            ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum;
         sha256sum Cargo.lock Cargo.toml; } | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ] && "$PY" -c "import tokencache" 2>/dev/null; then
    echo "python wheel: up to date" >&2
    exit 0
fi
out=target/wheels
rm -f "$out"/tokencache-*.whl
"$(dirname "$PY")/maturin" build --release --quiet --manifest-path bindings/python/Cargo.toml -o "$out" >&2
"$PY" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$out"/tokencache-*.whl >&2
echo "$sum" > "$stamp"
