"""msal (Python) peer of the tokencache compatibility suite (driven by ../driver.py).

Same line protocol as the other peers: one JSON operation per line on stdin, one
JSON answer per line on stdout. Each operation builds a fresh application with a
fresh ``msal.SerializableTokenCache``, loads ``cache_in`` with its public
``deserialize()``, runs one public acquire call and writes ``serialize()`` to
``cache_out``. The network is msal's public ``http_client`` parameter: a
``requests.Session`` that sends every request to the fake AAD on 127.0.0.1
(``COMPAT_FAKE_AAD``) with the original host in a header, so msal keeps its real
authority ``https://login.microsoftonline.com/<tenant>``.
"""
import json
import os
import sys
import urllib.parse

import msal
import requests

FAKE = os.environ["COMPAT_FAKE_AAD"]


class Loopback(requests.Session):
    def request(self, method, url, *args, **kwargs):
        u = urllib.parse.urlsplit(url)
        headers = dict(kwargs.pop("headers", None) or {})
        headers["X-Compat-Original-Host"] = u.netloc
        local = FAKE + u.path + ("?" + u.query if u.query else "")
        return super().request(method, local, *args, headers=headers, **kwargs)


def account_info(a):
    return {"home_account_id": a.get("home_account_id"), "environment": a.get("environment"),
            "tenant_id": a.get("realm"), "username": a.get("username")}


def run(op, http):
    if op.get("sharing"):
        # The driver's sharing mode: this msal app keeps its cache in tokencache,
        # in sharing mode, as an app sharing one file with other SDKs should.
        import tokencache
        cache = tokencache.SerializableTokenCache()
        cache.sharing = True
    else:
        cache = msal.SerializableTokenCache()
    if op.get("cache_in"):
        with open(op["cache_in"], encoding="utf-8") as f:
            cache.deserialize(f.read())
    app_cfg = op["app"]
    common = dict(authority=app_cfg["authority"], token_cache=cache, http_client=http)
    if app_cfg["kind"] == "confidential":
        app = msal.ConfidentialClientApplication(app_cfg["client_id"], client_credential="compat-client-secret", **common)
    else:
        app = msal.PublicClientApplication(app_cfg["client_id"], **common)
    a = op["action"]
    result = None
    if a["type"] == "client_credentials":
        result = app.acquire_token_for_client(a["scopes"])
    elif a["type"] == "auth_code":
        result = app.acquire_token_by_authorization_code(a["code"], a["scopes"], redirect_uri=a["redirect_uri"])
    elif a["type"] == "silent":
        accounts = [x for x in app.get_accounts() if x.get("home_account_id") == a["home_account_id"]]
        if not accounts:
            raise LookupError("no account %s" % a["home_account_id"])
        result = app.acquire_token_silent_with_error(
            a["scopes"], accounts[0], force_refresh=bool(a.get("force_refresh")))
        if result is None:
            raise LookupError("acquire_token_silent found nothing")
    elif a["type"] == "obo":
        result = app.acquire_token_on_behalf_of(a["assertion"], a["scopes"])
    elif a["type"] != "accounts":
        raise ValueError("unknown action " + a["type"])
    if result is not None and "error" in result:
        raise RuntimeError("%s: %s" % (result["error"], result.get("error_description")))
    if op.get("cache_out"):
        with open(op["cache_out"], "w", encoding="utf-8") as f:
            f.write(cache.serialize())
    out = {"ok": True, "accounts": [account_info(x) for x in app.get_accounts()]}
    if result is not None:
        out["access_token"] = result.get("access_token")
        out["from_cache"] = result.get("token_source") == "cache"
    return out


def main():
    http = Loopback()
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            reply = run(json.loads(line), http)
        except Exception as e:  # the driver reports it; the next operation goes on
            reply = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
