"""The exceptions tokencache raises: `TokenCacheError` and one subclass per error kind.

Each subclass also derives from the built-in exceptions msal raises for the same bad
input, so code written against msal keeps catching them:

=====================  =========================================  ==============================
class                  raised when                                also an instance of
=====================  =========================================  ==============================
InvalidJsonError       `deserialize()` gets text that is not JSON  json.JSONDecodeError (ValueError)
NotACacheError         JSON that is not a token cache ([], 1, ...)  ValueError (msal accepts these
                                                                    and fails later)
InvalidEventError      `add()` gets an event it cannot cache        ValueError, KeyError, TypeError,
                       (bad id_token or client_info, not an https   IndexError: msal raises one of
                       token_endpoint, a lifetime not a number)     these, depending on the fault
InvalidEntryError      an entry handed back lacks what its type     AssertionError (msal asserts),
                       needs (e.g. remove_rt of an access token)    ValueError, TypeError
InvalidArgumentError   an argument out of range (e.g. modify() of   ValueError, KeyError
                       an unknown credential type)
IoError                reading or writing a file failed            OSError
LockTimeoutError       another process held the lock too long      TimeoutError
CorruptError           a persisted cache was unreadable            ValueError
KeyMismatchError       an encrypted blob needs a key we lack        -
DecryptionFailedError  an encrypted blob failed authentication      -
StoreUnavailableError  a store backend could not be reached         ConnectionError
=====================  =========================================  ==============================

Messages never contain token values.
"""
import json

__all__ = [
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
]


class TokenCacheError(Exception):
    """Base class of every error tokencache raises. `kind` is the error kind's name."""

    kind: str = "error"

    def __str__(self) -> str:
        # KeyError, a base of some subclasses, would print the message quoted.
        return Exception.__str__(self)


class InvalidJsonError(TokenCacheError, json.JSONDecodeError):
    """The text is not JSON. `lineno` and `colno` locate the fault (1-based), `pos`
    is its character offset. Unlike json's own error, `doc` is left empty: the
    document holds tokens."""

    kind = "invalid_json"

    def __init__(self, msg: str, lineno: int = 0, colno: int = 0, pos: int = 0) -> None:
        ValueError.__init__(self, msg)
        self.msg = msg
        self.doc = ""
        self.pos = pos
        self.lineno = lineno
        self.colno = colno

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (type(self), (self.msg, self.lineno, self.colno, self.pos))


class NotACacheError(TokenCacheError, ValueError):
    """The text is JSON, but not a token cache."""

    kind = "not_a_cache"


class InvalidEventError(TokenCacheError, ValueError, KeyError, TypeError, IndexError):
    """A token response event that cannot be cached; nothing was changed."""

    kind = "invalid_event"


class InvalidEntryError(TokenCacheError, AssertionError, ValueError, TypeError):
    """An entry handed back to the cache lacks what its type requires."""

    kind = "invalid_entry"


class InvalidArgumentError(TokenCacheError, ValueError, KeyError):
    """An argument is out of range or of the wrong shape."""

    kind = "invalid_argument"


class IoError(TokenCacheError, OSError):
    """Reading or writing a file failed."""

    kind = "io"


class LockTimeoutError(TokenCacheError, TimeoutError):
    """Another process held the cache's lock for longer than the timeout."""

    kind = "lock_timeout"


class CorruptError(TokenCacheError, ValueError):
    """A persisted cache was unreadable (and was moved aside)."""

    kind = "corrupt"


class KeyMismatchError(TokenCacheError):
    """A stored blob was encrypted with a key this store does not have."""

    kind = "key_mismatch"


class DecryptionFailedError(TokenCacheError):
    """A stored blob failed authentication (tampered with, truncated, or replayed)."""

    kind = "decryption_failed"


class StoreUnavailableError(TokenCacheError, ConnectionError):
    """A store's backend could not be reached or refused the request."""

    kind = "store_unavailable"
