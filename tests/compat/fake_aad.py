"""A fake Microsoft Entra ID (AAD) on 127.0.0.1 for the compatibility suite.

Every peer harness hands its MSAL a custom HTTP client (each SDK's public hook for
one) that sends every request, whatever its URL, to this server over plain HTTP
with the original host in the ``X-Compat-Original-Host`` header. The peers so keep
the real authority ``https://login.microsoftonline.com/<tenant>`` and write the
cache a real sign-in would write, with no network and no TLS.

The server answers instance discovery and OpenID configuration the way the real
service does (``preferred_cache`` is ``login.windows.net``, as in production), and
its token endpoint returns, in order, the responses the driver queued; with none
queued it answers ``invalid_grant``. Every request is logged for the driver's
assertions ("no request reached the token endpoint during that silent call").
"""

import base64
import hashlib
import http.server
import json
import threading
import time
import urllib.parse

HOST = "login.microsoftonline.com"
ORIGINAL_HOST = "X-Compat-Original-Host"
ALIASES = ["login.microsoftonline.com", "login.windows.net", "login.microsoft.com", "sts.windows.net"]


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_json(obj):
    return b64url(json.dumps(obj, separators=(",", ":")).encode("utf-8"))


def unsigned_jwt(claims):
    """A JWT with a fake signature: MSALs decode ID tokens but do not verify them."""
    return "%s.%s.%s" % (b64url_json({"typ": "JWT", "alg": "RS256", "kid": "compat"}), b64url_json(claims),
                         b64url(b"compat-fake-signature"))


def assertion_hash(assertion):
    """MSAL.NET/msal-node's user_assertion_hash: base64url(SHA-256), no padding."""
    return b64url(hashlib.sha256(assertion.encode("utf-8")).digest())


class User:
    def __init__(self, uid, utid, upn, name):
        self.uid, self.utid, self.upn, self.name = uid, utid, upn, name

    @property
    def home_account_id(self):
        return "%s.%s" % (self.uid, self.utid)

    def client_info(self):
        return b64url_json({"uid": self.uid, "utid": self.utid})

    def id_token(self, client_id, tenant, now, nonce=None):
        claims = {
            "aud": client_id,
            "iss": "https://%s/%s/v2.0" % (HOST, tenant),
            "iat": now, "nbf": now, "exp": now + 3600,
            "name": self.name,
            "oid": self.uid if tenant == self.utid else "guest-" + self.uid,
            "preferred_username": self.upn,
            "sub": "sub-%s-%s" % (self.uid, tenant),
            "tid": tenant,
            "ver": "2.0",
        }
        if nonce:
            claims["nonce"] = nonce
        return unsigned_jwt(claims)


def user_response(user, client_id, tenant, scopes, at, rt=None, foci=None, now=None, expires_in=3600):
    """A token response to a user flow (auth code, refresh token, OBO)."""
    now = int(now or time.time())
    resp = {
        "token_type": "Bearer",
        "scope": " ".join(scopes),
        "expires_in": expires_in,
        "ext_expires_in": expires_in,
        "access_token": at,
        "id_token": user.id_token(client_id, tenant, now),
        "client_info": user.client_info(),
    }
    if rt:
        resp["refresh_token"] = rt
    if foci:
        resp["foci"] = foci
    return resp


def app_response(scopes, at, expires_in=3600):
    """A token response to client credentials."""
    return {"token_type": "Bearer", "expires_in": expires_in, "ext_expires_in": expires_in, "access_token": at}


class FakeAAD:
    """The server. ``queue()`` the next token responses; ``take_log()`` the requests."""

    def __init__(self):
        self._lock = threading.Lock()
        self._queue = []
        self._log = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _reply(self, status, body):
                data = json.dumps(body).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                status, body = fake._handle("GET", self.headers.get(ORIGINAL_HOST, HOST), self.path, {})
                self._reply(status, body)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode("utf-8") if length else ""
                form = {k: v[-1] for k, v in urllib.parse.parse_qs(raw, keep_blank_values=True).items()}
                status, body = fake._handle("POST", self.headers.get(ORIGINAL_HOST, HOST), self.path, form)
                self._reply(status, body)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()

    def queue(self, *responses):
        with self._lock:
            self._queue.extend(responses)

    def take_log(self):
        """The requests since the last call, and drops what was queued but not used."""
        with self._lock:
            log, self._log = self._log, []
            left, self._queue = self._queue, []
        return log, left

    def _handle(self, method, host, path, form):
        url = urllib.parse.urlsplit(path)
        parts = [p for p in url.path.split("/") if p]
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        entry = {"method": method, "host": host, "path": url.path, "query": query, "form": form}
        with self._lock:
            self._log.append(entry)
            if method == "POST" and parts[-1:] == ["token"]:
                entry["kind"] = "token"
                if not self._queue:
                    return 400, {"error": "invalid_grant", "error_description": "fake AAD: no response queued",
                                 "error_codes": [70000]}
                return 200, self._queue.pop(0)
        if "discovery" in parts and parts[-1] == "instance":
            entry["kind"] = "instance_discovery"
            authz = query.get("authorization_endpoint", "https://%s/common/oauth2/v2.0/authorize" % host)
            tenant = urllib.parse.urlsplit(authz).path.strip("/").split("/")[0] or "common"
            return 200, {
                "tenant_discovery_endpoint": "https://%s/%s/v2.0/.well-known/openid-configuration" % (host, tenant),
                "api-version": "1.1",
                "metadata": [{"preferred_network": HOST, "preferred_cache": "login.windows.net", "aliases": ALIASES}],
            }
        if parts[-2:] == [".well-known", "openid-configuration"]:
            entry["kind"] = "openid_configuration"
            tenant = parts[0]
            issuer_tenant = "{tenantid}" if tenant in ("common", "organizations", "consumers") else tenant
            base = "https://%s/%s" % (host, tenant)
            return 200, {
                "token_endpoint": base + "/oauth2/v2.0/token",
                "authorization_endpoint": base + "/oauth2/v2.0/authorize",
                "device_authorization_endpoint": base + "/oauth2/v2.0/devicecode",
                "end_session_endpoint": base + "/oauth2/v2.0/logout",
                "issuer": "https://%s/%s/v2.0" % (host, issuer_tenant),
                "jwks_uri": base + "/discovery/v2.0/keys",
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "tenant_region_scope": "EU",
                "cloud_instance_name": "microsoftonline.com",
            }
        if "userrealm" in parts:
            entry["kind"] = "user_realm"
            return 200, {"ver": "1.0", "account_type": "Managed", "domain_name": "contoso.example",
                         "cloud_instance_name": "microsoftonline.com", "cloud_audience_urn": "urn:federation:MicrosoftOnline"}
        entry["kind"] = "unknown"
        return 404, {"error": "not_found", "error_description": "fake AAD: no route for " + url.path}
