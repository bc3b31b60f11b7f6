"""Shared fixtures: the installed `tokencache` package against msal (pinned in
tests/requirements.txt). Run through `make test-python`, which builds and installs
the wheel first, with `-W error` and a timeout."""
import os
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "differential"))  # msal_oracle


def vectors_dir():
    return pathlib.Path(os.environ.get("TOKENCACHE_VECTORS", ROOT.parent / "shared" / "vectors"))


@pytest.fixture(scope="session")
def vectors():
    d = vectors_dir()
    if not d.is_dir():
        pytest.fail("vectors not found at %s (set TOKENCACHE_VECTORS)" % d)
    return d
