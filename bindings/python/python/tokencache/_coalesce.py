"""Request coalescing for msal applications: ``tokencache.coalesced(app)``.

When many threads of a process miss the same access token at once (a cold start,
an expiry), each one's ``acquire_token_for_client`` goes to the token endpoint:
msal has no request coalescing. The wrapper lets the first caller for a token go
and makes the others wait for its result — one request instead of N.

With a ``lease_store`` (``tokencache.LeaseStore.redis(url)`` or ``.sqlite(path)``)
the processes sharing that store coalesce too: one process holds a short lease and
fetches; the others poll their token cache until the token appears there (or the
lease is released or expires, and one of them takes over). For that to work the
processes' applications must share their token cache — the token the lease holder
fetched must become visible to the others' ``token_cache.search``. A
``tokencache.PersistedTokenCache`` on one file does that (every search picks up
the file when another process changed it); so does any cache whose ``search``
reads a shared store.
"""
import json
import time
from typing import Any, Callable, Dict, List, Optional, Union

from ._tokencache import Coalescer, LeaseStore, Store

__all__ = ["coalesced", "CoalescedApplication"]

# msal treats an access token expiring within 5 minutes as absent.
_MIN_REMAINING = 5 * 60


def _key(method: str, app: Any, scopes: Any, account: Optional[Dict[str, Any]], **rest: Any) -> str:
    authority = getattr(app, "authority", None)
    parts = {
        "method": method,
        "client_id": getattr(app, "client_id", None),
        "authority": [getattr(authority, "instance", None), getattr(authority, "tenant", None)],
        "scopes": sorted(s.lower() for s in (scopes or [])),
        "account": (account or {}).get("home_account_id"),
        "rest": rest,
    }
    return json.dumps(parts, sort_keys=True, default=repr)


class CoalescedApplication(object):
    """An msal ``ClientApplication`` whose ``acquire_token_for_client``,
    ``acquire_token_silent`` and ``acquire_token_silent_with_error`` coalesce: the
    callers that miss the same token at the same time share one request. Every
    other attribute is the wrapped application's.

    The key of a token is the method, the app's client id and authority, the
    scopes (any order), the account's ``home_account_id`` and every other argument
    (``claims_challenge``, ``data``, ...). A result (a dict, including msal's error
    dicts, or ``None``) reaches every caller of the flight, each as its own copy;
    an exception raised by msal is raised in each of them. Nothing is remembered
    after the flight: the next call looks in the cache, and fetches again after an
    error.
    """

    def __init__(
        self,
        app: Any,
        lease_store: Optional[Union[LeaseStore, Store]] = None,
        timeout: float = 30.0,
        lease_ttl: float = 10.0,
    ) -> None:
        self._app = app
        self._timeout = float(timeout)
        if isinstance(lease_store, Store):
            lease_store = LeaseStore.of(lease_store)
        self._coalescer = Coalescer(lease_store, lease_ttl=lease_ttl)

    @property
    def app(self) -> Any:
        """The wrapped msal application."""
        return self._app

    @property
    def coalescer(self) -> Coalescer:
        """The :class:`Coalescer` the calls go through (``stats()``, ``waiters(key)``)."""
        return self._coalescer

    def stats(self) -> Dict[str, int]:
        """The coalescer's counters: ``hits``, ``flights``, ``fetches``, ``coalesced``,
        ``failures``, ``timeouts``, ``lease_waits``, ``lease_served``, ``lease_errors``."""
        return self._coalescer.stats()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._app, name)

    def __repr__(self) -> str:
        return "<tokencache.CoalescedApplication of %r>" % (self._app,)

    # ------------------------------------------------------------------ calls
    def acquire_token_for_client(self, scopes: List[str], claims_challenge: Any = None, **kwargs: Any) -> Any:
        """msal's ``acquire_token_for_client``, one request for every caller missing
        the same token at the same time."""

        def call() -> Any:
            return self._app.acquire_token_for_client(scopes, claims_challenge=claims_challenge, **kwargs)

        plain = claims_challenge is None and not kwargs
        key = _key("acquire_token_for_client", self._app, scopes, None, claims=claims_challenge, kwargs=kwargs)
        return self._run(key, call, (lambda: self._cached(scopes, None)) if plain else None)

    def acquire_token_silent(self, scopes: List[str], account: Any, **kwargs: Any) -> Any:
        """msal's ``acquire_token_silent``: a refresh shared by every caller that needs
        the same user's token at the same time."""
        return self._silent("acquire_token_silent", scopes, account, kwargs)

    def acquire_token_silent_with_error(self, scopes: List[str], account: Any, **kwargs: Any) -> Any:
        """msal's ``acquire_token_silent_with_error``, coalesced as ``acquire_token_silent``."""
        return self._silent("acquire_token_silent_with_error", scopes, account, kwargs)

    def _silent(self, method: str, scopes: List[str], account: Any, kwargs: Dict[str, Any]) -> Any:
        target: Callable[..., Any] = getattr(self._app, method)
        if not account:
            return target(scopes, account, **kwargs)  # msal answers at once

        def call() -> Any:
            return target(scopes, account, **kwargs)

        # Extra arguments (authority, force_refresh, claims, data, ...) change what
        # msal looks up: such calls still coalesce, without the cache fast path.
        plain = not any(v for v in kwargs.values())
        key = _key(method, self._app, scopes, account, kwargs=kwargs)
        return self._run(key, call, (lambda: self._cached(scopes, account)) if plain else None)

    def _run(self, key: str, call: Callable[[], Any], cached: Optional[Callable[[], bool]]) -> Any:
        lookup = None
        if cached is not None:

            def lookup() -> Any:
                # A good token in the cache: msal serves it (its own result shape).
                return call() if cached() else None

        result = self._coalescer.get_or_fetch(key, call, lookup=lookup, timeout=self._timeout)
        return dict(result) if isinstance(result, dict) else result

    def _cached(self, scopes: List[str], account: Optional[Dict[str, Any]]) -> bool:
        """Whether msal would serve this token from its cache (msal's own test:
        same client, environment, realm and account; expiring in more than 5
        minutes; ``refresh_on`` not passed)."""
        app = self._app
        cache = app.token_cache
        query = {
            "client_id": app.client_id,
            "environment": app.authority.instance,
            "realm": app.authority.tenant,
            "home_account_id": (account or {}).get("home_account_id"),
        }
        now = time.time()
        for entry in cache.search(cache.CredentialType.ACCESS_TOKEN, target=scopes, query=query):
            if int(entry["expires_on"]) - now < _MIN_REMAINING:
                continue
            if "refresh_on" in entry and int(entry["refresh_on"]) < now:
                return False
            return True
        return False


def coalesced(
    app: Any,
    *,
    lease_store: Optional[Union[LeaseStore, Store]] = None,
    timeout: float = 30.0,
    lease_ttl: float = 10.0,
) -> CoalescedApplication:
    """Wraps an msal ``ClientApplication`` so that concurrent callers missing the
    same token share one request to the token endpoint.

    ``lease_store``: a :class:`LeaseStore` shared with other processes (or a
    ``SqliteStore`` / ``RedisStore`` the app already uses, whose database or server
    then holds the leases too), so that one process of them fetches at a time (their apps must share the token cache,
    e.g. a ``PersistedTokenCache`` on one file). ``timeout``: how long, in seconds,
    a caller waits for another's fetch before ``LockTimeoutError``. ``lease_ttl``:
    how long a lease outlives a process that died holding it (a live holder renews
    it every third of that while its fetch runs).
    """
    return CoalescedApplication(app, lease_store=lease_store, timeout=timeout, lease_ttl=lease_ttl)
