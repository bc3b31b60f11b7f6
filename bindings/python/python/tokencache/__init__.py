"""tokencache: msal's token cache, indexed, in Rust.

Drop-in replacements for ``msal.TokenCache``, ``msal.SerializableTokenCache`` and
msal-extensions' ``PersistedTokenCache``::

    import msal, tokencache
    cache = tokencache.SerializableTokenCache()
    app = msal.PublicClientApplication(client_id, token_cache=cache)

They behave as msal's classes do, method by method, and write the same JSON byte
for byte; every search is answered from indexes instead of a scan. Differences
from msal (all on purpose):

* ``search()`` yields *copies*: changing a dict it returned does not change the
  cache (msal hands out its stored dicts). It returns an iterator with msal's
  generator semantics (nothing runs before the first ``next()``; expired access
  tokens are removed only once every result was read, so a lookup that stops at
  its first hit leaves ``has_state_changed`` alone) and ``close()``, but it is not
  a generator object, and it works on a snapshot taken at the first ``next()``
  (the second, when the first was the access token found by its key alone)
  instead of holding the cache's lock while suspended.
* A search for a section name other than the five (an unknown section kept from
  another SDK's file) finds nothing; msal would scan it.
* ``update_rt`` also takes ``now=`` (msal reads the clock).
* ``deserialize()`` rejects JSON that is not a token cache (``[]``, ``1``, ...)
  with :class:`NotACacheError` at once; msal accepts it and fails later.
* A bad event changes nothing: every check runs before the first write.
* ``len(cache)`` counts entries, yet the cache is always truthy (msal's
  applications do ``token_cache or TokenCache()``).
* Instances cannot be pickled or copied: they hold secrets; persist them with
  ``serialize()``.
* ``add()`` and expired-token eviction do not call an overridden ``modify()``.
"""
import warnings
from typing import Any, Dict, Iterable, List, Mapping, Optional

from ._errors import (
    CorruptError,
    DecryptionFailedError,
    InvalidArgumentError,
    InvalidEntryError,
    InvalidEventError,
    InvalidJsonError,
    IoError,
    KeyMismatchError,
    LockTimeoutError,
    NotACacheError,
    StoreUnavailableError,
    TokenCacheError,
)
from ._tokencache import (
    AccessEvent,
    CacheProvider,
    EncryptedStore,
    EncryptionKey,
    MemoryStore,
    PartitionBlock,
    RedisStore,
    SqliteStore,
    Store,
    PersistedTokenCacheCore,
    RefreshWatcher,
    SearchResults,
    SerializableTokenCacheCore,
    TieredStore,
    TokenCacheCore,
    __version__,
    _set_access_observer,
)

from ._refresh import Refresher  # noqa: E402

__all__ = [
    "TokenCache",
    "Refresher",
    "RefreshWatcher",
    "SerializableTokenCache",
    "PersistedTokenCache",
    "AccessObserver",
    "AccessEvent",
    "CacheProvider",
    "PartitionBlock",
    "Store",
    "MemoryStore",
    "SqliteStore",
    "RedisStore",
    "TieredStore",
    "EncryptedStore",
    "EncryptionKey",
    "SearchResults",
    "TokenCacheError",
    "InvalidJsonError",
    "NotACacheError",
    "InvalidEventError",
    "InvalidEntryError",
    "InvalidArgumentError",
    "IoError",
    "LockTimeoutError",
    "CorruptError",
    "KeyMismatchError",
    "DecryptionFailedError",
    "StoreUnavailableError",
    "__version__",
]


class AccessObserver:
    """Before/after-access notifications of a cache, as MSAL.NET's token cache
    callbacks give them (``cache.set_observer(observer)``). Override either method;
    the default does nothing.

    Both run on the thread of the cache call, with no cache lock held, so they may
    call the cache. ``event.partition_key`` names the partition concerned (a home
    account id, or ``{client_id}_{tenant}_AppTokenCache`` for app tokens);
    ``event.has_state_changed`` in ``after_access`` says whether this call changed the
    cache, and then ``event.suggested_expiry`` says how long a store should keep the
    partition. An exception raised here is logged on the ``tokencache`` logger
    (ERROR, with its traceback) and not re-raised: the cache call it observes has
    completed, or goes ahead, regardless.

    Observers are for ``TokenCache`` and ``SerializableTokenCache`` (including the
    caches ``CacheProvider.cache_for`` gives); ``PersistedTokenCache`` has none.
    """

    def before_access(self, event: AccessEvent) -> None:
        """Called before the cache is read or written."""

    def after_access(self, event: AccessEvent) -> None:
        """Called after the cache was read or written."""


class TokenCache(TokenCacheCore):
    """msal's ``TokenCache``: minimal cache behaviour, no serialization.

    Methods: ``add``, ``search``, ``find`` (deprecated), ``modify``, ``remove_rt``,
    ``update_rt``, ``remove_at``, ``remove_idt``, ``remove_account``,
    ``_get_access_token``, ``_get_app_metadata``.
    """

    class CredentialType:
        ACCESS_TOKEN = "AccessToken"
        ACCESS_TOKEN_EXTENDED = "atext"  # the key segment of an AT with ext_cache_key
        REFRESH_TOKEN = "RefreshToken"
        ACCOUNT = "Account"  # not exactly a credential type, but a section all the same
        ID_TOKEN = "IdToken"
        APP_METADATA = "AppMetadata"

    class AuthorityType:
        ADFS = "ADFS"
        MSSTS = "MSSTS"  # AAD v2, for both AAD and MSA

    def __init__(self) -> None:
        super().__init__()

    def set_observer(self, observer: Optional["AccessObserver"]) -> None:
        """Installs ``observer`` (replacing any; ``None`` removes it): its
        ``before_access(event)`` runs before each cache call and ``after_access(event)``
        after it, with an :class:`AccessEvent`. See :class:`AccessObserver`."""
        if observer is None:
            _set_access_observer(self, None, None)
            return
        hooks = []
        for name in ("before_access", "after_access"):
            hook = getattr(observer, name, None)
            if hook is not None and not callable(hook):
                raise TypeError("tokencache: observer.%s must be callable" % name)
            if getattr(type(observer), name, None) is getattr(AccessObserver, name):
                hook = None  # the base class's no-op: not worth taking the GIL for
            hooks.append(hook)
        if not isinstance(observer, AccessObserver) and hooks == [None, None]:
            raise TypeError("tokencache: an observer needs a before_access or an after_access method")
        _set_access_observer(self, hooks[0], hooks[1])

    def find(
        self,
        credential_type: str,
        target: Optional[Iterable[str]] = None,
        query: Optional[Mapping[str, Any]] = None,
        *,
        now: Optional[float] = None,
    ) -> List[Dict[str, Any]]:
        """Equivalent to ``list(search(...))`` (deprecated, as in msal)."""
        warnings.warn("Use list(search(...)) instead to explicitly get a list.", DeprecationWarning)
        return list(self.search(credential_type, target=target, query=query, now=now))


class SerializableTokenCache(SerializableTokenCacheCore, TokenCache):
    """msal's ``SerializableTokenCache``: a :class:`TokenCache` that serializes.

    ``serialize()`` returns exactly what msal's would; ``deserialize(state)``
    loads any MSAL SDK's cache file; ``has_state_changed`` tells whether to save.
    """

    def __init__(self) -> None:
        super().__init__()


class PersistedTokenCache(PersistedTokenCacheCore):
    """msal-extensions' ``PersistedTokenCache``: a token cache kept in one file that
    other processes and MSAL apps share (same JSON, same ``<path>.lockfile``).

    ``PersistedTokenCache(path, lock_timeout=5.0, on_corrupt="fail")``. Every change
    (``add``, ``modify``, ``remove_*``, ``update_rt``) is one locked, atomic write of
    the file; every read first picks up the file if another process changed it. A
    file that is not a cache is moved aside as ``<path>.corrupt-<time>`` and either
    raises :class:`CorruptError` (``on_corrupt="fail"``; the next call starts empty)
    or is logged and replaced by an empty cache (``on_corrupt="continue"``). Waiting
    longer than ``lock_timeout`` seconds for the lock raises :class:`LockTimeoutError`.

    Differences from :class:`SerializableTokenCache`: ``search()`` runs at once and
    returns an iterator over its results (expired access tokens it meets are
    removed, written through); ``deserialize()`` replaces the in-memory cache only
    (as msal-extensions), and the next change writes it.
    """

    class CredentialType(TokenCache.CredentialType):
        pass

    class AuthorityType(TokenCache.AuthorityType):
        pass

    def __init__(self, path: Any, lock_timeout: float = 5.0, on_corrupt: str = "fail") -> None:
        super().__init__()

    def find(
        self,
        credential_type: str,
        target: Optional[Iterable[str]] = None,
        query: Optional[Mapping[str, Any]] = None,
        *,
        now: Optional[float] = None,
    ) -> List[Dict[str, Any]]:
        """Equivalent to ``list(search(...))`` (deprecated, as in msal)."""
        warnings.warn("Use list(search(...)) instead to explicitly get a list.", DeprecationWarning)
        return list(self.search(credential_type, target=target, query=query, now=now))


# Request coalescing: tokencache.coalesced(app) (issue 8).
from ._coalesce import CoalescedApplication, Coalescer, LeaseStore, coalesced  # noqa: E402

__all__ += ["coalesced", "CoalescedApplication", "Coalescer", "LeaseStore"]
