#!/usr/bin/env bash
# Creates .venv (once) with the pinned test requirements; prints its python.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${TOKENCACHE_VENV:-.venv}
stamp="$VENV/.requirements.stamp"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV" >&2
fi
if [ ! -f "$stamp" ] || ! cmp -s tests/requirements.txt "$stamp"; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt >&2
    cp tests/requirements.txt "$stamp"
fi
echo "$VENV/bin/python"
