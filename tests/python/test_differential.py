"""The differential oracle's random op sequences (tests/differential/msal_oracle.py),
run through real msal and replayed through tokencache.SerializableTokenCache from
Python: every search result, app-metadata lookup, has_state_changed and serialize()
byte for byte, and every bad event failing the way msal's does."""
import binascii

import pytest

import msal_oracle
import tokencache

SEQUENCES = 1000

# msal's exception class names, as the oracle records them -> the built-in class our
# error must also be an instance of (JSONDecodeError, UnicodeDecodeError and
# binascii.Error are ValueErrors).
MSAL_ERRORS = {
    "ValueError": ValueError,
    "JSONDecodeError": ValueError,
    "UnicodeDecodeError": ValueError,
    "Error": binascii.Error.__mro__[1],
    "KeyError": KeyError,
    "TypeError": TypeError,
    "IndexError": IndexError,
}


def replay(record):
    cache = tokencache.SerializableTokenCache()
    assert cache.sharing is False  # msal's behaviour, whatever the sequence loads
    for i, op in enumerate(record["ops"]):
        kind = op["op"]
        where = "seed %d op %d (%s)" % (record["seed"], i, kind)
        if kind == "add":
            if "error" not in op:
                cache.add(op["event"], now=op["now"])
                continue
            flag = cache.has_state_changed
            text = cache.serialize()  # resets the flag: put it back
            cache.has_state_changed = flag
            with pytest.raises(MSAL_ERRORS[op["error"]]) as info:
                cache.add(op["event"], now=op["now"])
            assert isinstance(info.value, tokencache.InvalidEventError), where
            assert cache.has_state_changed is flag, where
            assert cache.serialize() == text, where + ": a failed add changed the cache"
            cache.has_state_changed = flag
            continue
        if kind == "search":
            got = list(cache.search(op["credential_type"], target=op["target"], query=op["query"], now=op["now"]))
            assert got == op["expect"], where
        elif kind in ("remove_rt", "remove_at", "remove_idt", "remove_account"):
            getattr(cache, kind)(op["entry"])
        elif kind == "update_rt":
            cache.update_rt(op["entry"], op["new_rt"], now=op["now"])
        elif kind == "modify":
            cache.modify(op["credential_type"], op["entry"], op["new"])
        elif kind == "app_metadata":
            got = cache._get_app_metadata(environment=op["environment"], client_id=op["client_id"], default=None)
            assert got == op["expect"], where
        elif kind == "has_state_changed":
            assert cache.has_state_changed is op["expect"], where
        elif kind == "serialize":
            assert cache.serialize() == op["expect"], where
        elif kind == "deserialize":
            cache.deserialize(op["state"])
        else:
            pytest.fail("unknown op %r" % kind)


@pytest.mark.parametrize("chunk", range(4))
def test_random_sequences_match_msal(chunk):
    per = SEQUENCES // 4
    errors = 0
    for seed in range(1 + chunk * per, 1 + (chunk + 1) * per):
        record = msal_oracle.Sequence(seed).run()
        errors += sum(1 for op in record["ops"] if "error" in op)
        replay(record)
    assert chunk or errors, "the sequences should include bad events"
