"""A fake identity provider on 127.0.0.1 for msal's applications, offline.

msal insists on https authorities and on Microsoft's IMDS address for managed
identity, so the apps are configured with the made-up host ``login.tokencache.test``
(``instance_discovery=False``) and given ``LoopbackHttpClient`` as ``http_client``:
it sends every request, whatever its URL, to the local server over plain HTTP, with
the original host in a header. The server answers OpenID discovery, the token
endpoint (client credentials, authorization code, refresh token) and the IMDS
managed-identity endpoint, and counts the requests.

Everything it returns is deterministic for a given sequence of requests (tokens are
numbered per run), so the same flow through two caches gives the same cache JSON.
"""
import base64
import hashlib
import http.server
import json
import threading
import urllib.parse

import requests

HOST = "login.tokencache.test"
AUTHORITY = "https://" + HOST
FIXED_NOW = 1_900_000_000  # the cache clock of the fixed-clock flows (2030-03-17)
ORIGINAL_HOST = "X-Tokencache-Original-Host"

USERS = {
    # name: (uid, utid)
    "alice": ("00000000-0000-0000-0000-00000000a11c", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
    "bob": ("00000000-0000-0000-0000-000000000b0b", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
}
FAMILY = {"foci-app-1", "foci-app-2"}  # client ids in the Microsoft family (FOCI)
RESERVED = {"offline_access", "openid", "profile"}


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_json(obj):
    return b64url(json.dumps(obj, separators=(",", ":")).encode("utf-8"))


def nonce_hash(nonce):
    """What msal's auth code flow expects in the id_token's nonce claim."""
    return hashlib.sha256(nonce.encode("ascii")).hexdigest()


def auth_code(user, nonce):
    """The code a browser would bring back; the server reads the user and nonce from it."""
    return "code:%s:%s" % (user, nonce_hash(nonce))


class FakeIdP(object):
    def __init__(self):
        self._lock = threading.Lock()
        self.reset()
        idp = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                idp._handle(self, "GET", b"")

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                idp._handle(self, "POST", body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="fake-idp", daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def reset(self):
        """Forget requests and issued tokens: the next flow starts from scratch."""
        with self._lock:
            self.requests = []
            self.counter = 0
            self.refresh_tokens = {}  # rt -> (user, client_id)

    def count(self, kind=None):
        """How many requests reached the server (of one kind: "token", "discovery", "imds")."""
        with self._lock:
            return sum(1 for r in self.requests if kind is None or r["kind"] == kind)

    def grants(self):
        with self._lock:
            return [r["form"].get("grant_type") for r in self.requests if r["kind"] == "token"]

    # ------------------------------------------------------------------ serving
    def _handle(self, h, method, body):
        url = urllib.parse.urlsplit(h.path)
        host = h.headers.get(ORIGINAL_HOST, "")
        query = dict(urllib.parse.parse_qsl(url.query))
        form = dict(urllib.parse.parse_qsl(body.decode("utf-8"))) if body else {}
        parts = [p for p in url.path.split("/") if p]
        try:
            if method == "GET" and url.path.endswith("/v2.0/.well-known/openid-configuration"):
                kind = "discovery"
                status, payload = 200, self._discovery(parts[0])
            elif method == "POST" and url.path.endswith("/oauth2/v2.0/token"):
                kind = "token"
                status, payload = self._token(parts[0], form)
            elif method == "GET" and url.path == "/metadata/identity/oauth2/token":
                kind = "imds"
                status, payload = self._imds(query, h.headers)
            else:
                kind = "unknown"
                status, payload = 404, {"error": "not_found"}
        except Exception as ex:  # a test bug: make it visible as a server error
            kind, status, payload = "error", 500, {"error": "server_error", "error_description": repr(ex)}
        with self._lock:
            self.requests.append({"kind": kind, "host": host, "path": url.path, "form": form, "query": query})
        data = json.dumps(payload).encode("utf-8")
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _next(self):
        with self._lock:
            self.counter += 1
            return self.counter

    def _discovery(self, tenant):
        base = "%s/%s" % (AUTHORITY, tenant)
        return {
            "authorization_endpoint": base + "/oauth2/v2.0/authorize",
            "token_endpoint": base + "/oauth2/v2.0/token",
            "device_authorization_endpoint": base + "/oauth2/v2.0/devicecode",
            "issuer": base + "/v2.0",
        }

    def _user_tokens(self, tenant, client_id, user, scope, nonce=None):
        n = self._next()
        uid, utid = USERS[user]
        claims = {
            "aud": client_id,
            "iss": "%s/%s/v2.0" % (AUTHORITY, utid),
            "iat": FIXED_NOW,
            "nbf": FIXED_NOW,
            "exp": FIXED_NOW + 3600,
            "name": user.title(),
            "oid": uid,
            "preferred_username": "%s@contoso.example" % user,
            "sub": "sub-" + user,
            "tid": utid,
            "ver": "2.0",
        }
        if nonce:
            claims["nonce"] = nonce
        id_token = "%s.%s.%s" % (b64url_json({"typ": "JWT", "alg": "none"}), b64url_json(claims), "sig")
        rt = "rt-%s-%d" % (user, n)
        with self._lock:
            self.refresh_tokens[rt] = (user, client_id)
        response = {
            "token_type": "Bearer",
            "scope": " ".join(s for s in scope.split() if s not in ("offline_access",)),
            "expires_in": 3600,
            "ext_expires_in": 3600,
            "access_token": "user-at-%s-%s-%d" % (user, client_id, n),
            "refresh_token": rt,
            "id_token": id_token,
            "client_info": b64url_json({"uid": uid, "utid": utid}),
        }
        if client_id in FAMILY:
            response["foci"] = "1"
        return response

    def _token(self, tenant, form):
        grant = form.get("grant_type")
        client_id = form.get("client_id")
        scope = form.get("scope", "")
        if grant == "client_credentials":
            if form.get("client_secret") != "s3cret":
                return 401, {"error": "invalid_client"}
            n = self._next()
            return 200, {
                "token_type": "Bearer",
                "expires_in": 3599,
                "ext_expires_in": 3599,
                "access_token": "app-at-%s-%s-%d" % (client_id, tenant, n),
            }
        if grant == "authorization_code":
            _, user, nonce = form["code"].split(":", 2)
            return 200, self._user_tokens(tenant, client_id, user, scope, nonce=nonce)
        if grant == "refresh_token":
            with self._lock:
                owner = self.refresh_tokens.get(form.get("refresh_token"))
            if owner is None:
                return 400, {"error": "invalid_grant", "error_description": "unknown refresh token"}
            user, issued_to = owner
            if issued_to != client_id and not (issued_to in FAMILY and client_id in FAMILY):
                return 400, {"error": "invalid_grant", "error_description": "not your refresh token"}
            return 200, self._user_tokens(tenant, client_id, user, scope)
        return 400, {"error": "unsupported_grant_type"}

    def _imds(self, query, headers):
        if headers.get("Metadata") != "true":
            return 400, {"error": "invalid_request"}
        n = self._next()
        return 200, {
            "access_token": "mi-at-%d" % n,
            "expires_in": "86399",
            "expires_on": str(FIXED_NOW + 86399),
            "resource": query.get("resource"),
            "token_type": "Bearer",
        }


class LoopbackHttpClient(object):
    """msal's ``http_client`` interface (``get``/``post``/``close``), sending every
    request to the fake IdP on 127.0.0.1 whatever its URL's host."""

    def __init__(self, idp):
        self._base = "http://127.0.0.1:%d" % idp.port
        self._session = requests.Session()
        self._session.trust_env = False  # no proxies: loopback only

    def _route(self, url, headers):
        parts = urllib.parse.urlsplit(url)
        headers = dict(headers or {})
        headers[ORIGINAL_HOST] = parts.netloc
        local = self._base + urllib.parse.urlunsplit(("", "", parts.path, parts.query, ""))
        return local, headers

    def get(self, url, params=None, headers=None, **kwargs):
        local, headers = self._route(url, headers)
        return self._session.get(local, params=params, headers=headers, timeout=10)

    def post(self, url, params=None, data=None, headers=None, **kwargs):
        local, headers = self._route(url, headers)
        return self._session.post(local, params=params, data=data, headers=headers, timeout=10)

    def close(self):
        self._session.close()
