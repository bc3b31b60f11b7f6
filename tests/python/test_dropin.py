"""Drop-in, end to end: msal's own applications (msal from PyPI, pinned) with a
tokencache cache as ``token_cache=``, against the fake identity provider served on
127.0.0.1 by the test (fake_idp.py).

Every flow runs twice from scratch: once with msal's SerializableTokenCache and
once with tokencache's. Both runs must see the same token sources, send the same
requests, and leave the same cache JSON, byte for byte. The caches run on a fixed
clock (their ``add``/``update_rt`` get ``now=FIXED_NOW``) so that timestamps match;
``test_plain_instances`` uses plain instances on the real clock.
"""
import json

import msal
import pytest

import tokencache
from fake_idp import AUTHORITY, FIXED_NOW, FakeIdP, LoopbackHttpClient, USERS, auth_code

TENANTS = ["contoso-tenant", "fabrikam-tenant", "72f988bf-86f1-41af-91ab-2d7cd011db47"]
GRAPH = ["https://graph.microsoft.com/.default"]
VAULT = ["https://vault.azure.net/.default"]


class MsalOnFixedClock(msal.SerializableTokenCache):
    def add(self, event, now=None):
        return super().add(event, now=FIXED_NOW if now is None else now)

    def update_rt(self, rt_item, new_rt):  # msal's update_rt, on the fixed clock
        assert rt_item.get("credential_type") == self.CredentialType.REFRESH_TOKEN
        return self.modify(
            self.CredentialType.REFRESH_TOKEN, rt_item, {"secret": new_rt, "last_modification_time": str(FIXED_NOW)}
        )


class OursOnFixedClock(tokencache.SerializableTokenCache):
    def add(self, event, now=None):
        return super().add(event, now=FIXED_NOW if now is None else now)

    def update_rt(self, rt_item, new_rt, *, now=None):
        return super().update_rt(rt_item, new_rt, now=FIXED_NOW)


@pytest.fixture(scope="module")
def idp():
    server = FakeIdP()
    yield server
    server.close()


def run_both(idp, flow):
    """Runs `flow(cache, http, idp)` with msal's cache and with ours; returns our run
    after checking that both agree on everything observable."""
    runs = {}
    for name, factory in (("msal", MsalOnFixedClock), ("tokencache", OursOnFixedClock)):
        idp.reset()
        cache = factory()
        trace = flow(cache, LoopbackHttpClient(idp), idp)
        runs[name] = {
            "trace": trace,
            "grants": idp.grants(),
            "requests": idp.count(),
            "cache": cache.serialize(),
        }
    ours, theirs = runs["tokencache"], runs["msal"]
    assert ours["trace"] == theirs["trace"]
    assert ours["grants"] == theirs["grants"]
    assert ours["requests"] == theirs["requests"]
    assert ours["cache"] == theirs["cache"], "cache JSON differs from msal's"
    return ours


def cca(cache, http, tenant, client_id="daemon-app"):
    return msal.ConfidentialClientApplication(
        client_id,
        client_credential="s3cret",
        authority="%s/%s" % (AUTHORITY, tenant),
        token_cache=cache,
        http_client=http,
        instance_discovery=False,
    )


def pca(cache, http, client_id="public-app", tenant="organizations"):
    return msal.PublicClientApplication(
        client_id,
        authority="%s/%s" % (AUTHORITY, tenant),
        token_cache=cache,
        http_client=http,
        instance_discovery=False,
    )


def sign_in(app, user, scopes=("User.Read",)):
    """The auth code flow, with the browser step played by the test."""
    flow = app.initiate_auth_code_flow(list(scopes), redirect_uri="http://localhost", response_mode="form_post")
    flow["nonce"] = "nonce-of-" + user  # deterministic id_token across runs
    result = app.acquire_token_by_auth_code_flow(flow, {"code": auth_code(user, flow["nonce"]), "state": flow["state"]})
    assert "access_token" in result, result.get("error_description")
    return result


def source(result):
    assert "access_token" in result, result.get("error_description")
    return (result["token_source"], result["access_token"])


def test_client_credentials_for_several_tenants_then_from_cache(idp):
    def flow(cache, http, idp):
        apps = [cca(cache, http, t) for t in TENANTS]
        trace = [source(app.acquire_token_for_client(s)) for app in apps for s in (GRAPH, VAULT)]
        assert [t[0] for t in trace] == ["identity_provider"] * 6
        sent = idp.count("token")
        again = [source(app.acquire_token_for_client(s)) for app in apps for s in (GRAPH, VAULT)]
        assert again == [("cache", at) for _, at in trace], "the second round must come from the cache"
        assert idp.count("token") == sent, "a cached token must not reach the endpoint"
        return trace + again

    run = run_both(idp, flow)
    state = json.loads(run["cache"])
    assert len(state["AccessToken"]) == 6
    assert {e["realm"] for e in state["AccessToken"].values()} == set(TENANTS)


def test_auth_code_with_client_info_silent_and_refresh(idp):
    def flow(cache, http, idp):
        app = pca(cache, http)
        trace = [source(sign_in(app, "alice"))]
        (account,) = app.get_accounts()
        trace.append(account["home_account_id"])
        sent = idp.count("token")
        trace.append(source(app.acquire_token_silent(["User.Read"], account=account)))
        assert trace[-1][0] == "cache" and idp.count("token") == sent
        # A scope with no access token yet: redeemed with the refresh token (update_rt).
        trace.append(source(app.acquire_token_silent(["Mail.Read"], account=account)))
        assert trace[-1][0] == "identity_provider" and idp.grants()[-1] == "refresh_token"
        trace.append(source(app.acquire_token_silent(["User.Read"], account=account, force_refresh=True)))
        trace.append(source(app.acquire_token_silent(["Mail.Read"], account=account)))
        assert trace[-1][0] == "cache"
        return trace

    run = run_both(idp, flow)
    uid, utid = USERS["alice"]
    assert run["trace"][1] == "%s.%s" % (uid, utid)
    state = json.loads(run["cache"])
    (rt,) = state["RefreshToken"].values()
    assert rt["secret"] != "rt-alice-1", "update_rt stored the rotated refresh token"


def test_foci_family_refresh_token_serves_a_second_app(idp):
    def flow(cache, http, idp):
        first, second = pca(cache, http, "foci-app-1"), pca(cache, http, "foci-app-2")
        trace = [source(sign_in(first, "alice"))]
        (account,) = second.get_accounts()
        result = second.acquire_token_silent(["User.Read"], account=account)
        trace.append(source(result))
        token_requests = [r for r in idp.requests if r["kind"] == "token"]
        assert token_requests[-1]["form"]["client_id"] == "foci-app-2"
        assert token_requests[-1]["form"]["refresh_token"].startswith("rt-alice-")
        trace.append(source(second.acquire_token_silent(["User.Read"], account=account)))
        assert trace[-1][0] == "cache"
        return trace

    run = run_both(idp, flow)
    state = json.loads(run["cache"])
    assert {m.get("family_id") for m in state["AppMetadata"].values()} == {"1"}


def test_remove_account_forgets_one_user(idp):
    def flow(cache, http, idp):
        app = pca(cache, http)
        sign_in(app, "alice")
        sign_in(app, "bob")
        accounts = {a["username"]: a for a in app.get_accounts()}
        assert sorted(accounts) == ["alice@contoso.example", "bob@contoso.example"]
        app.remove_account(accounts["alice@contoso.example"])
        left = [a["username"] for a in app.get_accounts()]
        sent = idp.count("token")
        again = app.acquire_token_silent(["User.Read"], account=accounts["bob@contoso.example"])
        assert again["token_source"] == "cache" and idp.count("token") == sent
        return left

    run = run_both(idp, flow)
    assert run["trace"] == ["bob@contoso.example"]
    assert "alice" not in run["cache"].replace(USERS["alice"][0], "")  # only bob's entries remain


def test_remove_tokens_for_client(idp):
    def flow(cache, http, idp):
        app = cca(cache, http, TENANTS[0])
        trace = [source(app.acquire_token_for_client(s)) for s in (GRAPH, VAULT)]
        app.remove_tokens_for_client()
        trace.append(source(app.acquire_token_for_client(GRAPH)))
        assert trace[-1][0] == "identity_provider"
        return trace

    run = run_both(idp, flow)
    assert len(json.loads(run["cache"])["AccessToken"]) == 1


def test_managed_identity_system_and_user_assigned(idp):
    def flow(cache, http, idp):
        trace = []
        for identity in (msal.SystemAssignedManagedIdentity(), msal.UserAssignedManagedIdentity(client_id="mi-app")):
            client = msal.ManagedIdentityClient(identity, http_client=http, token_cache=cache)
            trace.append(source(client.acquire_token_for_client(resource="https://management.azure.com")))
            sent = idp.count("imds")
            trace.append(source(client.acquire_token_for_client(resource="https://management.azure.com")))
            assert trace[-1][0] == "cache" and idp.count("imds") == sent
        return trace

    run = run_both(idp, flow)
    state = json.loads(run["cache"])
    assert {e["realm"] for e in state["AccessToken"].values()} == {"managed_identity"}


def normalized(text):
    """Cache JSON with the clock-dependent fields blanked."""
    state = json.loads(text)
    for section in state.values():
        for entry in section.values():
            for field in ("cached_at", "expires_on", "extended_expires_on", "refresh_on", "last_modification_time"):
                if field in entry:
                    entry[field] = "<time>"
    return state


@pytest.mark.parametrize("ours", [tokencache.SerializableTokenCache, tokencache.TokenCache])
def test_plain_instances_on_the_real_clock(idp, ours):
    """No subclass, no fixed clock: exactly what an application writes. An empty
    tokencache cache is truthy, so msal keeps it instead of making its own."""
    caches = {}
    for name, factory in (("msal", msal.SerializableTokenCache), ("tokencache", ours)):
        idp.reset()
        cache = factory()
        http = LoopbackHttpClient(idp)
        app = cca(cache, http, TENANTS[1])
        assert app.token_cache is cache
        assert app.acquire_token_for_client(GRAPH)["token_source"] == "identity_provider"
        assert app.acquire_token_for_client(GRAPH)["token_source"] == "cache"
        assert idp.count("token") == 1
        user_app = pca(cache, http)
        sign_in(user_app, "bob")
        (account,) = user_app.get_accounts()
        assert user_app.acquire_token_silent(["User.Read"], account=account)["token_source"] == "cache"
        assert idp.count("token") == 2
        caches[name] = cache
    theirs = caches["msal"].serialize()
    if hasattr(caches["tokencache"], "serialize"):
        assert normalized(caches["tokencache"].serialize()) == normalized(theirs)
    else:
        assert len(caches["tokencache"]) == sum(len(s) for s in json.loads(theirs).values())


def test_state_moves_between_msal_and_tokencache(idp):
    """A cache written by one serves an app built on the other."""
    idp.reset()
    http = LoopbackHttpClient(idp)
    ours = tokencache.SerializableTokenCache()
    assert cca(ours, http, TENANTS[0]).acquire_token_for_client(GRAPH)["token_source"] == "identity_provider"
    sign_in(pca(ours, http), "alice")
    theirs = msal.SerializableTokenCache()
    theirs.deserialize(ours.serialize())
    assert cca(theirs, http, TENANTS[0]).acquire_token_for_client(GRAPH)["token_source"] == "cache"
    user_app = pca(theirs, http)
    (account,) = user_app.get_accounts()
    assert user_app.acquire_token_silent(["User.Read"], account=account)["token_source"] == "cache"
    back = tokencache.SerializableTokenCache()
    back.deserialize(theirs.serialize())
    assert back.serialize() == theirs.serialize()
    assert cca(back, http, TENANTS[0]).acquire_token_for_client(GRAPH)["token_source"] == "cache"
    assert idp.count("token") == 2
