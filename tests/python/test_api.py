"""Each method of tokencache's classes against msal's on the same inputs."""
import copy
import inspect
import json
import pickle
import sys
import threading
import warnings

import msal
import pytest

import tokencache

NOW = 1_700_000_000
ENV = "login.microsoftonline.com"
CLIENT = "my-client"
HID = "uid.utid"


def b64url_json(obj):
    import base64

    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def user_event(tenant="contoso", client=CLIENT, scope=("User.Read", "email"), foci=False, expires_in=3600):
    response = {
        "access_token": "at-secret-" + tenant,
        "refresh_token": "rt-secret-" + tenant,
        "id_token": "x.%s.y" % b64url_json({"sub": "s", "oid": "uid", "preferred_username": "u@c.example"}),
        "client_info": b64url_json({"uid": "uid", "utid": "utid"}),
        "expires_in": expires_in,
        "token_type": "Bearer",
    }
    if foci:
        response["foci"] = "1"
    return {
        "client_id": client,
        "scope": list(scope),
        "token_endpoint": "https://%s/%s/oauth2/v2.0/token" % (ENV, tenant),
        "grant_type": "authorization_code",
        "response": response,
        "data": {"scope": list(scope)},
        "environment": ENV,
    }


def app_event(tenant, expires_in=3600, client=CLIENT):
    return {
        "client_id": client,
        "scope": ["https://graph.microsoft.com/.default"],
        "token_endpoint": "https://%s/%s/oauth2/v2.0/token" % (ENV, tenant),
        "grant_type": "client_credentials",
        "response": {"access_token": "app-secret-" + tenant, "expires_in": expires_in},
        "data": {},
        "environment": ENV,
    }


def both():
    return msal.SerializableTokenCache(), tokencache.SerializableTokenCache()


def fill(*caches, events=None):
    for ev in events or [user_event(), user_event("fabrikam", foci=True), app_event("t1"), app_event("t2", 60)]:
        for c in caches:
            c.add(copy.deepcopy(ev), now=NOW)


# ------------------------------------------------------------------ the classes


def test_constants_on_class_and_instance():
    for name in ("CredentialType", "AuthorityType"):
        theirs = {k: v for k, v in vars(getattr(msal.TokenCache, name)).items() if not k.startswith("_")}
        ours = {k: v for k, v in vars(getattr(tokencache.TokenCache, name)).items() if not k.startswith("_")}
        assert ours == theirs
        inst = getattr(tokencache.SerializableTokenCache(), name)
        assert {k: getattr(inst, k) for k in theirs} == theirs


def test_class_shape_matches_msal():
    assert issubclass(tokencache.SerializableTokenCache, tokencache.TokenCache)
    for name in ("serialize", "deserialize", "has_state_changed"):
        assert not hasattr(msal.TokenCache, name) and not hasattr(tokencache.TokenCache, name)
        assert hasattr(tokencache.SerializableTokenCache(), name)
    for name in ("add", "search", "find", "modify", "remove_rt", "update_rt", "remove_at", "remove_idt",
                 "remove_account", "_get_access_token", "_get_app_metadata", "serialize", "deserialize"):
        # msal's SerializableTokenCache overrides add/modify as add(event, **kwargs);
        # the documented signatures are TokenCache's.
        base = msal.TokenCache if hasattr(msal.TokenCache, name) else msal.SerializableTokenCache
        theirs = inspect.signature(getattr(base, name))
        ours = inspect.signature(getattr(tokencache.SerializableTokenCache, name))
        extra = [p for p in ours.parameters if p not in theirs.parameters]
        assert [p for p in ours.parameters if p in theirs.parameters] == list(theirs.parameters), name
        assert extra in ([], ["now"]), name  # update_rt takes now= too, keyword-only
        for p, tp in theirs.parameters.items():
            if p == "self":  # positional-only on a native method
                continue
            assert (ours.parameters[p].kind, ours.parameters[p].default) == (tp.kind, tp.default), (name, p)


def test_always_truthy_and_len_counts_entries():
    for cls in (tokencache.TokenCache, tokencache.SerializableTokenCache):
        cache = cls()
        assert len(cache) == 0 and bool(cache) is True
        assert (cache or "replaced") is cache
    theirs, ours = both()
    fill(theirs, ours)
    assert len(ours) == sum(len(s) for s in json.loads(theirs.serialize()).values())


def test_repr_shows_no_secret():
    _, ours = both()
    fill(ours)
    text = repr(ours)
    assert "secret" not in text and "SerializableTokenCache" in text and str(len(ours)) in text


@pytest.mark.parametrize("op", [pickle.dumps, copy.copy, copy.deepcopy])
def test_pickling_and_copying_are_refused(op):
    _, ours = both()
    fill(ours)
    with pytest.raises(TypeError, match="serialize"):
        op(ours)


def test_subclasses_take_their_own_constructor_arguments():
    class Persisted(tokencache.SerializableTokenCache):  # as msal_extensions' PersistedTokenCache
        def __init__(self, persistence, lock_location=None):
            super().__init__()
            self.persistence = persistence

    cache = Persisted("somewhere")
    cache.add(app_event("t1"), now=NOW)
    assert cache.persistence == "somewhere" and len(cache) == 2


# ------------------------------------------------------------------ add / search / find


def test_add_then_serialize_is_msal_bytes():
    theirs, ours = both()
    fill(theirs, ours)
    assert ours.has_state_changed is True
    assert ours.serialize() == theirs.serialize()
    assert ours.has_state_changed is False


@pytest.mark.parametrize(
    "ct,target,query",
    [
        ("AccessToken", ["User.Read"], {"client_id": CLIENT, "environment": ENV, "realm": "contoso", "home_account_id": HID}),
        ("AccessToken", ["email", "User.Read"], {"client_id": CLIENT, "environment": "LOGIN.microsoftonline.com"}),
        ("AccessToken", None, None),
        ("AccessToken", ["https://graph.microsoft.com/.default"], {"home_account_id": None}),
        ("RefreshToken", None, {"environment": ENV, "home_account_id": HID, "family_id": "1"}),
        ("RefreshToken", None, {"environment": ENV, "home_account_id": HID, "client_id": CLIENT}),
        ("Account", None, {"environment": ENV}),
        ("IdToken", None, {"home_account_id": HID, "realm": "fabrikam"}),
        ("AppMetadata", None, None),
        ("atext", None, None),
        ("NoSuchSection", None, None),
    ],
)
def test_search_yields_what_msal_yields(ct, target, query):
    theirs, ours = both()
    fill(theirs, ours)
    for now in (NOW, NOW + 100):  # the second evicts the 60 s app token (full AT searches)
        expected = list(theirs.search(ct, target=target, query=query, now=now))
        got = list(ours.search(ct, target=target, query=query, now=now))
        assert got == expected
        assert all(type(e) is dict for e in got)
        assert ours.serialize() == theirs.serialize()


def test_search_is_lazy_and_evicts_only_when_exhausted():
    theirs, ours = both()
    fill(theirs, ours)
    later = NOW + 100  # "t2"'s token (60 s) has expired
    q = {"client_id": CLIENT, "environment": ENV, "realm": "t1", "home_account_id": None}
    for cache in (theirs, ours):
        cache.serialize()
        gen = cache.search("AccessToken", target=["https://graph.microsoft.com/.default"], query=q, now=later)
        assert next(gen)["realm"] == "t1"  # msal's app stops at the first hit
        gen.close()
        assert cache.has_state_changed is False, "an abandoned search evicts nothing"
    assert ours.serialize() == theirs.serialize()
    for cache in (theirs, ours):
        gen = cache.search("AccessToken", target=["https://graph.microsoft.com/.default"], query=q, now=later)
        cache.add(app_event("t3"), now=NOW)  # before the first next(): the search sees it
        assert [e["realm"] for e in gen] == ["t1"]
        assert cache.has_state_changed is True
    assert ours.serialize() == theirs.serialize()
    assert "t2" not in [e["realm"] for e in ours.search("AccessToken", now=NOW)]


def test_key_path_hit_first_then_the_rest_without_it():
    # The first result of a key-path search comes from the key alone; reading on
    # runs the whole search, which must not hand the first one out again.
    theirs, ours = both()
    wider = app_event("t1")
    wider["scope"] = ["https://graph.microsoft.com/.default", "https://x.example/.default"]
    wider["response"] = dict(wider["response"], access_token="wider-secret")
    fill(theirs, ours, events=[app_event("t1"), wider, app_event("t2", 60)])
    q = {"client_id": CLIENT, "environment": ENV, "realm": "t1", "home_account_id": None}
    graph = ["https://graph.microsoft.com/.default"]
    for now in (NOW, NOW + 7200):  # the second: every token expired, the key still finds it
        expected = list(theirs.search("AccessToken", target=graph, query=q, now=now))
        got = list(ours.search("AccessToken", target=graph, query=q, now=now))
        assert got == expected
        assert [e["secret"] for e in got][:1] == ["app-secret-t1"]
    theirs, ours = both()
    fill(theirs, ours, events=[app_event("t1"), wider])
    seen = []
    for cache in (theirs, ours):
        gen = cache.search("AccessToken", target=graph, query=q, now=NOW)
        first = next(gen)
        renewed = app_event("t1")
        renewed["response"] = dict(renewed["response"], access_token="renewed")
        cache.add(renewed, now=NOW + 1)  # between the first and the second next()
        seen.append([first["secret"]] + [e["secret"] for e in gen])
    assert seen[1] == seen[0] == ["app-secret-t1", "renewed", "wider-secret"]
    assert ours.stats()["hits"]["AccessToken"] == 2  # the key lookup, then the whole search


def test_search_results_are_copies():
    _, ours = both()
    fill(ours)
    (entry,) = ours.search("Account", query={"environment": ENV, "realm": "contoso"})
    entry["username"] = "changed"
    (again,) = ours.search("Account", query={"environment": ENV, "realm": "contoso"})
    assert again["username"] == "u@c.example"


def test_find_warns_and_lists():
    theirs, ours = both()
    fill(theirs, ours)
    for cache in (theirs, ours):
        with pytest.warns(DeprecationWarning, match=r"list\(search"):
            found = cache.find("RefreshToken", query={"environment": ENV})
        assert isinstance(found, list)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert ours.find("AccessToken", now=NOW) == theirs.find("AccessToken", now=NOW)


def test_now_may_be_a_float():
    theirs, ours = both()
    theirs.add(app_event("t1"), now=NOW + 0.9)
    ours.add(app_event("t1"), now=NOW + 0.9)
    assert ours.serialize() == theirs.serialize()


# ------------------------------------------------------------------ modify and friends


def test_modify_update_and_remove_like_msal():
    theirs, ours = both()
    fill(theirs, ours)
    (rt_t,) = theirs.search("RefreshToken", query={"client_id": CLIENT, "family_id": "1"})
    (rt_o,) = ours.search("RefreshToken", query={"client_id": CLIENT, "family_id": "1"})
    assert rt_o == rt_t
    for cache, rt in ((theirs, rt_t), (ours, rt_o)):
        cache.modify("RefreshToken", dict(rt, extra="kept"), {"secret": "new"})
    assert ours.serialize() == theirs.serialize()
    msal.token_cache.time, real_time = _FixedTime(NOW + 5), msal.token_cache.time
    try:
        theirs.update_rt(dict(rt_t, extra="kept"), "rotated")
    finally:
        msal.token_cache.time = real_time
    ours.update_rt(dict(rt_o, extra="kept"), "rotated", now=NOW + 5)
    assert ours.serialize() == theirs.serialize()
    for cache in (theirs, ours):
        for at in list(cache.search("AccessToken", now=NOW)):
            cache.remove_at(at)
        for idt in list(cache.search("IdToken")):
            cache.remove_idt(idt)
        for acc in list(cache.search("Account")):
            cache.remove_account(acc)
        for rt in list(cache.search("RefreshToken")):
            cache.remove_rt(rt)
        cache.modify("IdToken", {"home_account_id": "nobody"})  # absent: a no-op
    assert ours.has_state_changed is theirs.has_state_changed is True
    assert ours.serialize() == theirs.serialize()


class _FixedTime(object):
    def __init__(self, now):
        self._now = now

    def time(self):
        return float(self._now)


def test_removing_from_a_missing_section_creates_it_as_msal_does():
    theirs, ours = both()
    for cache in (theirs, ours):
        cache.modify("RefreshToken", {"home_account_id": "x"})
        assert cache.has_state_changed is True
    assert ours.serialize() == theirs.serialize() == '{\n    "RefreshToken": {}\n}'


def test_wrong_entries_fail_as_msal_asserts():
    theirs, ours = both()
    fill(theirs, ours)
    (at,) = list(ours.search("AccessToken", query={"realm": "contoso"}, now=NOW))
    for name in ("remove_rt", "remove_idt"):
        with pytest.raises(AssertionError):
            getattr(theirs, name)(at)
        with pytest.raises(AssertionError) as info:
            getattr(ours, name)(at)
        assert isinstance(info.value, tokencache.InvalidEntryError)
        assert "at-secret" not in str(info.value)
    with pytest.raises(AssertionError):
        ours.remove_account({"home_account_id": HID})
    with pytest.raises(KeyError):
        theirs.modify("NoSuchType", at)
    with pytest.raises(KeyError):
        ours.modify("NoSuchType", at)


def test_private_lookups_msal_apps_use():
    theirs, ours = both()
    fill(theirs, ours)
    for args in ((ENV, CLIENT), (ENV, "nobody"), (None, None)):
        assert ours._get_app_metadata(*args) == theirs._get_app_metadata(*args)
        assert ours._get_app_metadata(*args, default={}) == theirs._get_app_metadata(*args, default={})
    assert ours._get_app_metadata(environment=ENV, client_id=CLIENT, default={})["client_id"] == CLIENT
    for target in (["User.Read", "email"], ["email", "User.Read"], ["User.Read"]):
        args = (HID, ENV, CLIENT, "contoso", target)
        assert ours._get_access_token(*args) == theirs._get_access_token(*args)
        assert ours._get_access_token(*args, default="d") == theirs._get_access_token(*args, default="d")


# ------------------------------------------------------------------ serialize / deserialize


@pytest.mark.parametrize("state", [None, "", b""])
def test_deserialize_nothing_empties(state):
    theirs, ours = both()
    fill(theirs, ours)
    for cache in (theirs, ours):
        cache.deserialize(state)
        assert cache.has_state_changed is False
    assert ours.serialize() == theirs.serialize() == "{}"


@pytest.mark.parametrize("kind", [str, bytes, bytearray])
def test_deserialize_text_bytes_and_bytearray(kind):
    theirs, ours = both()
    fill(theirs)
    text = theirs.serialize()
    ours.deserialize(kind(text, "utf-8") if kind is not str else text)
    assert ours.serialize() == text


@pytest.mark.parametrize("bad", ["   ", "{bad json", '{"AccessToken": {}', '{\n  "a": 1,\n  "b": tru\n}'])
def test_invalid_json_fails_like_json_and_keeps_the_state(bad):
    _, ours = both()
    fill(ours)
    ours.serialize()
    before = ours.serialize()
    ours.has_state_changed = True
    with pytest.raises(json.JSONDecodeError) as info:
        ours.deserialize(bad)
    err = info.value
    assert isinstance(err, tokencache.InvalidJsonError) and isinstance(err, ValueError)
    try:
        json.loads(bad)
    except json.JSONDecodeError as theirs:
        assert err.lineno == theirs.lineno
    assert err.doc == ""  # never the document: it holds tokens
    assert ours.has_state_changed is True
    assert ours.serialize() == before


@pytest.mark.parametrize("bad", ["[]", "123", '"text"', "null", '{"AccessToken": []}'])
def test_what_is_not_a_cache_is_refused_at_once(bad):
    _, ours = both()
    fill(ours)
    before = ours.serialize()
    with pytest.raises(ValueError) as info:
        ours.deserialize(bad)
    assert isinstance(info.value, tokencache.NotACacheError)
    assert ours.serialize() == before


def test_has_state_changed_is_read_write():
    _, ours = both()
    assert ours.has_state_changed is False
    ours.has_state_changed = True
    assert ours.has_state_changed is True
    ours.serialize()
    assert ours.has_state_changed is False
    ours.add({}, now=NOW)  # even an empty event (msal's test suite asserts this)
    assert ours.has_state_changed is True


def test_bad_events_change_nothing_and_raise_what_msal_raises():
    cases = [
        dict(app_event("t1"), token_endpoint="http://insecure/t1/token"),
        dict(user_event(), response=dict(user_event()["response"], id_token="opaque")),
        dict(user_event(), response=dict(user_event()["response"], client_info="@@@")),
        dict(app_event("t1"), response={"access_token": "a", "expires_in": "abc"}),
        dict(app_event("t1"), response={"access_token": "a", "expires_in": 10, "refresh_in": "5"}),
    ]
    for ev in cases:
        theirs, ours = both()
        with pytest.raises(Exception) as expected:
            theirs.add(copy.deepcopy(ev), now=NOW)
        builtin = next(c for c in type(expected.value).__mro__ if c.__module__ == "builtins")
        with pytest.raises(builtin) as got:
            ours.add(copy.deepcopy(ev), now=NOW)
        assert isinstance(got.value, tokencache.InvalidEventError)
        assert "secret" not in str(got.value)
        assert ours.serialize() == "{}" and len(ours) == 0


def test_every_error_kind_has_a_class():
    kinds = set()
    for name in tokencache._errors.__all__:
        cls = getattr(tokencache, name)
        assert issubclass(cls, tokencache.TokenCacheError)
        kinds.add(cls.kind)
    assert len(kinds) == len(tokencache._errors.__all__)
    assert issubclass(tokencache.IoError, OSError)
    assert str(tokencache.InvalidEventError("msg")) == "msg"  # not KeyError's quoting


def test_arguments_of_the_wrong_type():
    _, ours = both()
    with pytest.raises(TypeError):
        ours.add("not a dict")
    with pytest.raises(TypeError):
        ours.add({1: "non-str key"})
    with pytest.raises(TypeError):
        ours.deserialize(123)
    loop = {}
    loop["self"] = loop
    with pytest.raises(ValueError):
        ours.add({"data": loop})


def test_events_of_other_python_types_file_what_msal_files():
    # add() reads plain str, int, bool, None, dict and list by their exact type;
    # subclasses, tuples, floats, big ints and other objects take the general path.
    class Text(str):
        pass

    class Opaque:
        def __str__(self):
            return "opaque-assertion"

    ev = app_event("contoso")
    ev[Text("client_id")] = Text(CLIENT)
    ev["scope"] = (Text("https://graph.microsoft.com/.default"),)
    ev["response"]["expires_in"] = 3600.0
    ev["data"] = {Text("fmi_path"): Text("agent"), "n": 2**70, "f": 0.5, "o": Opaque(), "l": ["a", 1], "claims": None}
    theirs, ours = both()
    theirs.add(copy.deepcopy(ev), now=NOW)
    ours.add(ev, now=NOW)
    assert ours.serialize() == theirs.serialize()


def test_a_dict_changed_while_add_reads_it_is_refused():
    # Python code that add() runs while reading the event (an object's str()) could
    # change the dict being read: that is an error, as in Python's own iteration.
    data = {}

    class Grows:
        def __str__(self):
            data["k%d" % len(data)] = "v"
            return "grown"

    data.update(a=Grows(), b="x")
    _, ours = both()
    with pytest.raises(RuntimeError, match="changed size"):
        ours.add(dict(app_event("contoso"), data=data), now=NOW)
    assert len(ours) == 0


def test_a_dict_taken_out_of_the_event_while_add_reads_it_is_not_freed_under_it():
    # The str() of an item of a nested dict replaces that dict in the event (so the
    # event keeps its size) and fills the memory the old one would free: add() must
    # go on reading the dict it holds, and file what it read.
    event = dict(app_event("contoso"))

    class Thief:
        def __str__(self):
            event["data"] = {}
            junk = [{"k%d" % j: "#" * 64 for j in range(8)} for _ in range(200)]
            del junk
            return "taken"

    data = {"a": Thief(), **{"p%d" % j: "v%d" % j for j in range(40)}}
    expected = dict(data, a="taken")
    event["data"] = data
    del data
    theirs, ours = both()
    ours.add(event, now=NOW)
    theirs.add(dict(app_event("contoso"), data=expected), now=NOW)
    assert ours.serialize() == theirs.serialize()


# ------------------------------------------------------------------ threads


def test_threads_share_one_cache():
    cache = tokencache.SerializableTokenCache()
    errors = []

    def worker(n):
        try:
            for i in range(300):
                tenant = "t%d-%d" % (n, i)
                cache.add(app_event(tenant), now=NOW)
                hit = next(cache.search("AccessToken", target=["https://graph.microsoft.com/.default"],
                                        query={"client_id": CLIENT, "environment": ENV, "realm": tenant,
                                               "home_account_id": None}, now=NOW))
                assert hit["secret"] == "app-secret-" + tenant
                if i % 50 == 0:
                    json.loads(cache.serialize())
        except Exception as ex:  # reported below
            errors.append(ex)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    state = json.loads(cache.serialize())
    assert len(state["AccessToken"]) == 8 * 300
    assert len(cache) == 8 * 300 + 1  # and one app metadata


def test_an_event_changed_by_another_thread_during_add():
    # add() reads the event's strings in place and releases the GIL while the core
    # files them. Another thread replacing them meanwhile (and the memory of the old
    # ones going to junk) must neither crash it nor file anything that was never in
    # the event: every token and every extra-parameter key must be one of those it
    # could have seen.
    def data(v):  # extra request parameters: hashed into the key after the token is read
        return dict({"p%d" % j: ("%d-" % v) + "v" * 3000 for j in range(16)}, claims=None)

    variants = range(8)
    expected_keys = set()
    for v in variants:
        one = tokencache.SerializableTokenCache()
        ev = app_event("contoso")
        ev["data"] = data(v)
        one.add(ev, now=NOW)
        expected_keys |= set(json.loads(one.serialize())["AccessToken"])
    secrets = ["secret-%d-" % i + "x" * (100 + i) for i in range(64)]

    cache = tokencache.SerializableTokenCache()
    event = app_event("contoso")
    event["data"] = data(0)
    response = event["response"]
    stop = threading.Event()

    def mutate():
        i = 0
        while not stop.is_set():
            # New objects each time, so the replaced ones are freed at once, and junk
            # of their sizes to take their memory.
            response["access_token"] = "".join(secrets[i % 64])
            event["data"] = data(i % 8)
            junk = ["#" * (100 + j) for j in range(0, 80, 3)] + ["#" * 3002 for _ in range(16)]
            del junk
            i += 1

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    t = threading.Thread(target=mutate)
    t.start()
    try:
        for _ in range(2000):
            cache.add(event, now=NOW)
    finally:
        stop.set()
        t.join()
        sys.setswitchinterval(interval)
    state = json.loads(cache.serialize())
    assert set(state["AccessToken"]) <= expected_keys
    assert {at["secret"] for at in state["AccessToken"].values()} <= set(secrets) | {"app-secret-contoso"}


# A refresh token as msal-node files it: its key style, its environment alias.
NODE_RT_DOC = json.dumps({"RefreshToken": {"%s-login.windows.net-refreshtoken-%s---" % (HID, CLIENT): {
    "home_account_id": HID, "environment": "login.windows.net", "credential_type": "RefreshToken",
    "client_id": CLIENT, "secret": "node-rt"}}})


def test_sharing_is_off_by_default_and_takes_true_false_or_auto():
    cache = tokencache.SerializableTokenCache()
    assert cache.sharing is False  # msal's behaviour, whatever the file holds
    cache.deserialize(NODE_RT_DOC)
    assert cache.sharing_active is False
    cache.deserialize("")
    cache.sharing = "auto"
    assert cache.sharing == "auto" and cache.sharing_active is False
    cache.add(user_event(), now=NOW)
    assert cache.sharing_active is False  # msal's own entries: msal's behaviour
    cache.deserialize(NODE_RT_DOC)
    assert cache.sharing_active is True  # msal-node's key style: another SDK shares it
    cache.sharing = False
    assert cache.sharing is False and cache.sharing_active is False
    cache.sharing = True
    assert cache.sharing is True
    cache.sharing = "auto"
    assert cache.sharing == "auto"
    for bad in ("on", 1, None):
        with pytest.raises(ValueError, match="True, False or \"auto\""):
            cache.sharing = bad
    assert cache.sharing == "auto"


@pytest.mark.parametrize("mode, found", [("auto", ["node-rt"]), (False, [])])
def test_auto_finds_another_sdks_refresh_token_where_msal_would_not(mode, found):
    cache = tokencache.SerializableTokenCache()
    cache.sharing = mode
    cache.deserialize(NODE_RT_DOC)
    rts = cache.search(cache.CredentialType.REFRESH_TOKEN, query={"home_account_id": HID, "environment": ENV})
    assert [rt["secret"] for rt in rts] == found
    theirs = msal.SerializableTokenCache()
    theirs.deserialize(NODE_RT_DOC)
    msal_found = theirs.search(theirs.CredentialType.REFRESH_TOKEN, query={"home_account_id": HID, "environment": ENV})
    assert list(msal_found) == []  # msal's own behaviour, which sharing=False keeps
