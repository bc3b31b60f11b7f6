"""``tokencache.Refresher``: renews access tokens before requests need them.

The core decides which tokens are due (``refresh_on`` passed, or expiring within the
horizon; an expired user token only while its refresh token is in the cache) and
reports each issuance of a token once (``RefreshWatcher``); this module only runs
the loop: a daemon thread that polls every ``interval`` seconds and calls the user's
``renew`` for each newly due token.
"""
import logging
import threading
import time
from typing import Any, Callable, Dict, Optional

from ._tokencache import RefreshWatcher

_log = logging.getLogger("tokencache")


class Refresher:
    """Calls ``renew(due)`` for each access token of ``cache`` that becomes due.

    ``due`` is a dict: ``{"entry": <the access token entry>, "expires_on": int,
    "expired": bool}``; ``renew`` typically calls the msal app again with
    ``force_refresh=True`` (user tokens) or ``acquire_token_for_client`` (app
    tokens), which writes the new token to the cache. A ``renew`` that raises is
    logged (without token values) and retried at the next poll.

    ``clock`` returns the current Unix time (injectable for tests). Use it as a
    context manager, or ``start()`` / ``stop()``; ``poll()`` runs one pass in the
    calling thread.
    """

    def __init__(
        self,
        cache: Any,
        renew: Callable[[Dict[str, Any]], Any],
        *,
        horizon: int = 300,
        interval: float = 30.0,
        clock: Optional[Callable[[], float]] = None,
    ) -> None:
        if interval <= 0:
            raise ValueError("tokencache: Refresher interval must be positive")
        self._watcher = RefreshWatcher(cache, int(horizon))
        self._renew = renew
        self._interval = float(interval)
        self._clock = clock or time.time
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.renewed = 0
        self.failures = 0

    def poll(self, now: Optional[float] = None) -> int:
        """One pass: renews the tokens due at ``now`` (default: the clock) that no
        earlier pass handled; returns how many were renewed."""
        done = 0
        for due in self._watcher.poll(int(self._clock() if now is None else now)):
            try:
                self._renew(due)
            except Exception as e:  # the loop goes on; the token is tried again
                self.failures += 1
                self._watcher.retry(due)
                entry = due["entry"]
                _log.warning(
                    "tokencache: renewing the access token of client %s for %r failed (%s); retrying at the next poll",
                    entry.get("client_id"), entry.get("target"), type(e).__name__)
            else:
                done += 1
                self.renewed += 1
        return done

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception:  # a cache error (e.g. a locked file): logged, next poll
                _log.exception("tokencache: the refresher's poll failed")
            self._stop.wait(self._interval)

    def start(self) -> "Refresher":
        """Starts the background thread (once)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="tokencache-refresher", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: Optional[float] = 10.0) -> None:
        """Stops the thread and waits for a pass in progress to finish."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> "Refresher":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
