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


def pytest_terminal_summary(terminalreporter):
    """Redis-backed tests skipped for want of a server must not pass unnoticed."""
    if os.environ.get("TOKENCACHE_REDIS_URL"):
        return
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if "NO REDIS" in str(r.longrepr)]
    if skipped:
        terminalreporter.write_sep(
            "!", "%d REDIS TESTS SKIPPED: TOKENCACHE_REDIS_URL is unset; run `make test-python`" % len(skipped),
            red=True, bold=True)
