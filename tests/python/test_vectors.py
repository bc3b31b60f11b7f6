"""The shared vectors (../shared/vectors or $TOKENCACHE_VECTORS) through the Python
package: msal's own caches rebuilt from their events byte for byte, and every SDK's
file loaded and written back exactly as msal writes it."""
import json

import msal
import pytest

import tokencache
from conftest import vectors_dir

VECTORS = vectors_dir()
# Not unified caches (msal accepts them and fails later; we refuse them at once).
NOT_CACHES = ["dotnet__cachecompat_dotnet_dictionary.bin", "msaljs__cacheStore.json"]
CACHE_FILES = sorted(
    p.name
    for p in list(VECTORS.glob("*.json")) + list(VECTORS.glob("*.bin"))
    if not p.name.endswith(".events.json") and p.name != "manifest.json" and p.name not in NOT_CACHES
) if VECTORS.is_dir() else []
EVENT_FILES = sorted(p.name for p in VECTORS.glob("*.events.json")) if VECTORS.is_dir() else []


def test_vectors_are_there(vectors):
    assert len(EVENT_FILES) >= 5 and len(CACHE_FILES) >= 20


@pytest.mark.parametrize("name", EVENT_FILES)
def test_events_replay_to_msal_bytes(vectors, name):
    expected = (vectors / name.replace(".events.json", ".json")).read_text(encoding="utf-8")
    cache = tokencache.SerializableTokenCache()
    for step in json.loads((vectors / name).read_text(encoding="utf-8")):
        cache.add(step["event"], now=step["now"])
    assert cache.has_state_changed
    assert cache.serialize() == expected
    assert not cache.has_state_changed


@pytest.mark.parametrize("name", CACHE_FILES)
def test_load_and_serialize_like_msal(vectors, name):
    raw = (vectors / name).read_bytes()
    text = raw.decode("utf-8-sig")
    ours = tokencache.SerializableTokenCache()
    ours.deserialize(text)
    assert not ours.has_state_changed
    theirs = msal.SerializableTokenCache()
    try:
        theirs.deserialize(text)
    except ValueError:
        # msal's json.loads rejects what some SDKs write (trailing commas); we load it.
        assert len(ours) > 0 or text.strip()
        return
    if not isinstance(json.loads(text), dict):
        pytest.fail("a vector that is not an object")
    assert ours.serialize() == theirs.serialize()
    # bytes load the same as text
    again = tokencache.SerializableTokenCache()
    again.deserialize(raw if not raw.startswith(b"\xef\xbb\xbf") else raw[3:])
    assert again.serialize() == theirs.serialize()
    for ct in ("AccessToken", "RefreshToken", "IdToken", "Account", "AppMetadata"):
        # now=0: nothing is expired, so nothing is evicted.
        try:
            expected = list(theirs.search(ct, now=0))
        except KeyError:  # msal crashes on an access token without expires_on; we don't
            list(ours.search(ct, now=0))
            continue
        assert list(ours.search(ct, now=0)) == expected, ct


@pytest.mark.parametrize("name", NOT_CACHES)
def test_what_is_not_a_cache_is_refused_and_changes_nothing(vectors, name):
    blob = (vectors / name).read_bytes()
    cache = tokencache.SerializableTokenCache()
    cache.add({"client_id": "keep-me"}, now=1)
    before = cache.serialize()
    with pytest.raises(tokencache.NotACacheError):
        cache.deserialize(blob)
    assert cache.serialize() == before
