#!/usr/bin/env python3
"""Differential-test oracle: real ``msal.SerializableTokenCache`` behaviour.

Generates seeded, random sequences of token-cache operations, runs each one
through MSAL Python's real ``SerializableTokenCache`` and records what msal did,
so that a Rust test can replay the same operations against our implementation
and compare.

Usage::

    /tmp/msalvenv/bin/python tests/differential/msal_oracle.py \
        --seed-start 1 --count 300 --out /tmp/msal_oracle.jsonl

Output is JSON Lines, one line per sequence: ``{"seed": S, "ops": [...]}``.
See README.md next to this file for the op format.

Determinism: every random choice comes from ``random.Random(seed)`` of the
sequence; msal is always given an explicit ``now`` (``time.time`` is patched
for ``update_rt``), so output is byte-identical across runs and across
PYTHONHASHSEED values.  No set is ever iterated by this script.
"""
import argparse
import base64
import collections
import copy
import json
import random
import string
import sys
from unittest import mock

import msal
import msal.token_cache
from msal.token_cache import SerializableTokenCache

AT = "AccessToken"
RT = "RefreshToken"
IDT = "IdToken"
ACCOUNT = "Account"
APP_METADATA = "AppMetadata"
CREDENTIAL_TYPES = [AT, RT, IDT, ACCOUNT, APP_METADATA]

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
OBO_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"

# --------------------------------------------------------------------------
# Static pools
# --------------------------------------------------------------------------

HOSTS = [  # (host, weight)
    ("login.microsoftonline.com", 10),
    ("login.windows.net", 2),
    ("login.microsoft.com", 2),
    ("login.microsoftonline.us", 1),
    ("login.partner.microsoftonline.cn", 1),
]
ALIASES = [
    "login.microsoftonline.com", "login.windows.net", "login.microsoft.com",
    "sts.windows.net", "login.chinacloudapi.cn", "login.microsoftonline.de",
]
NAMED_TENANTS = [
    "Contoso.onmicrosoft.com", "fabrikam.onmicrosoft.com",
    "9188040d-6c67-4c5b-b112-36a304b66dad",  # MSA tenant
]
ADFS_HOSTS = ["adfs.contoso.com", "fs.fabrikam.com"]

APP_RESOURCES = [
    ["https://graph.microsoft.com/.default"],
    ["https://management.azure.com/.default"],
    ["https://vault.azure.net/.default"],
    ["https://storage.azure.com/.default"],
    ["00000003-0000-0000-c000-000000000000/.default"],
    ["api://AzureFMITokenExchange/.default"],
]
USER_SCOPES = [
    "User.Read", "Mail.Read", "mail.send", "Calendars.ReadWrite",
    "Files.Read.All", "email", "openid", "profile", "offline_access",
    "https://management.azure.com/user_impersonation",
    "https://vault.azure.net/user_impersonation",
    "https://graph.microsoft.com/User.Read",
    "api://My-API/Access.All", "ZZZ.Upper", "aaa.lower", "_under.score",
    "Tasks.ReadWrite", "tasks.read",
]
NON_ASCII_SCOPES = ["Ünïcode.Read", "İnternal.Use", "Straẞe.All", "ΔΣ.Write"]
MI_RESOURCES = [
    "https://management.azure.com", "https://vault.azure.net",
    "https://storage.azure.com/", "https://database.windows.net",
]
SSH_SCOPE = ["https://pas.windows.net/CheckMyAccess/Linux/.default"]
USERNAMES = [
    "alice@contoso.com", "bob@contoso.com", "Carol.Smith@Fabrikam.com",
    "dave@contoso.onmicrosoft.com", "josé@contoso.com", "测试@例子.cn",
    "zoë.ångström@contoso.com", "emoji😀@fabrikam.com",
]
DISPLAY_NAMES = [
    "Ada Lovelace", "Grace Hopper", "José Núñez", "测试用户", "Zoë 😀",
    "Ōkami Ærøskøbing",
]
FMI_PATHS = [
    "SomeFmiPath/FmiCredentialPath", "agent-app-id", "SomeFmiPath/Path2",
    "路径/é-ü", "tenant/ABC/def",
]
NON_ASCII_USERNAMES = ["José@contoso.com", "测试@例子.com", "naïve😀@x.org", "Zoë"]
UNKNOWN_FIELD_NAMES = ["x_ms_unknown", "user_assertion_hash", "wam_account_ids", "foo", "Extra-Field"]
UNKNOWN_SECTION_NAMES = ["UnknownSection", "atext", "AppMetadata_v2", "msal_extension", "unknownEntity"]

ALNUM = string.ascii_letters + string.digits


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_json(obj):
    return b64url(json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


JWT_HEADER = b64url_json({"alg": "none", "typ": "JWT"})


def plain(obj):
    """Deep copy to plain JSON data (also asserts it is JSON-serializable)."""
    return json.loads(json.dumps(obj, allow_nan=False))


# --------------------------------------------------------------------------
# One sequence
# --------------------------------------------------------------------------

class Sequence(object):
    def __init__(self, seed):
        self.seed = seed
        self.r = random.Random(seed)
        self.cache = SerializableTokenCache()
        self.ops = []
        self.snapshots = []  # earlier serialize() outputs
        self.now = 1_700_000_000 + self.r.randint(0, 40_000_000)
        self.stats = collections.Counter()
        self._setup_world()

    # ---------------------------------------------------------------- helpers
    def tok(self, prefix, lo=20, hi=60):
        r = self.r
        n = r.randint(max(1, lo - len(prefix)), max(1, hi - len(prefix)))
        return prefix + "".join(r.choice(ALNUM + "-_.") for _ in range(n))

    def guid(self):
        g = self.r.getrandbits
        return "%08x-%04x-4%03x-%04x-%012x" % (
            g(32), g(16), g(12), 0x8000 | g(14), g(48))

    def chance(self, p):
        return self.r.random() < p

    def pick(self, seq):
        return seq[self.r.randrange(len(seq))]

    def wpick(self, pairs):
        return self.r.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]

    def entries(self, ct):
        section = self.cache._cache.get(ct)
        return list(section.values()) if isinstance(section, dict) else []

    def record(self, op):
        self.ops.append(plain(op))
        self.stats[op["op"]] += 1

    # ------------------------------------------------------------------ world
    def _setup_world(self):
        r = self.r
        self.host = self.wpick(HOSTS)
        self.alias = self.pick([a for a in ALIASES if a != self.host])
        self.tenants = [self.guid() for _ in range(r.randint(1, 3))]
        if self.chance(0.3):
            self.tenants.append(self.pick(NAMED_TENANTS))
        self.conf_clients = [self.guid() for _ in range(r.randint(1, 2))]
        if self.chance(0.2):
            self.conf_clients.append("Daemon-App-" + self.tok("", 4, 8))  # mixed case client id
        self.pub_clients = [self.guid() for _ in range(r.randint(1, 3))]
        if self.chance(0.15):
            self.pub_clients.append("MyPublic-Client")
        # FOCI family members (a subset of public clients)
        self.foci_clients = [c for c in self.pub_clients if self.chance(0.5)]
        self.users = []
        for _ in range(r.randint(1, 3)):
            self.users.append({
                "uid": self.guid(),
                "utid": self.pick(self.tenants) if self.chance(0.8) else self.guid(),
                "username": self.pick(USERNAMES),
                "name": self.pick(DISPLAY_NAMES) if self.chance(0.6) else None,
                "oids": {},  # tenant -> oid (guest oids differ from home uid)
            })
        self.mi_clients = ["SYSTEM_ASSIGNED_MANAGED_IDENTITY", self.guid()]
        self.key_ids = [self.tok("kid-", 12, 24) for _ in range(2)]
        self.fmi_paths = r.sample(FMI_PATHS, 2)
        self.extra_scopes = [self.pick(NON_ASCII_SCOPES)] if self.chance(0.15) else []
        self.adfs_host = self.pick(ADFS_HOSTS)
        self.adfs_users = [{"sub": self.tok("adfs-sub-", 16, 24),
                            "upn": self.pick(USERNAMES)} for _ in range(r.randint(1, 2))]

    # ------------------------------------------------------- event components
    def tick(self):
        self.now += self.wpick([
            (0, 3), (1, 2), (5, 2), (30, 3), (60, 3), (300, 3), (900, 2),
            (1800, 1), (3600, 1), (5400, 1)])

    def environment_for(self, host):
        """What application.py would put in event["environment"] (or _ABSENT)."""
        p = self.r.random()
        if p < 0.85:
            return host
        if p < 0.92:
            return self.alias
        if p < 0.99:
            return _ABSENT  # legacy event without "environment"
        return host.upper() if self.chance(0.5) else host.title()  # not lowercased by msal!

    def token_endpoint(self, host, tenant):
        p = self.r.random()
        if p < 0.75:
            return "https://{}/{}/oauth2/v2.0/token".format(host, tenant)
        if p < 0.90:
            return "https://{}/{}/oauth2/token".format(host, tenant)  # AADv1
        if p < 0.95:  # urlparse().hostname lowercases and drops the port
            return "https://{}:443/{}/oauth2/v2.0/token".format(host.title(), tenant)
        if p < 0.98:  # B2C style
            return "https://contoso.b2clogin.com/{}/b2c_1_signin/oauth2/v2.0/token".format(tenant)
        # CIAM: tenant comes from path, or from the sub domain when path is empty
        return self.pick([
            "https://contoso.ciamlogin.com/{}/oauth2/v2.0/token".format(tenant),
            "https://contoso.ciamlogin.com",
            "https://Contoso.CiamLogin.com/",
        ])

    def expiry(self, response, allow_expires_on=True):
        """Add expires_in / ext_expires_in / refresh_in / expires_on in various shapes."""
        r = self.r
        ei = self.wpick([(3599, 6), (3600, 3), (4249, 3), (5399, 2), (86399, 1),
                         (600, 1), (300, 1), (120, 1), (30, 1), (0, 1)])
        p = r.random()
        if p < 0.03:
            pass  # absent: msal defaults to 600 (or to expires_on - now)
        elif p < 0.22:
            response["expires_in"] = str(ei)  # AADv1 returns strings
        elif p < 0.23:
            response["expires_in"] = ei + 0.75  # float: int() truncates
        else:
            response["expires_in"] = ei
        if self.chance(0.5):
            eei = ei + self.pick([0, 0, 3600, 7200])
            response["ext_expires_in"] = str(eei) if self.chance(0.25) else eei
        if self.chance(0.25):
            response["refresh_in"] = self.pick([ei // 2, 0, 1, ei])
        if allow_expires_on and self.chance(0.08):  # AADv1 also returns absolute expires_on
            eo = self.now + ei + self.pick([0, 5, -5])
            response["expires_on"] = str(eo) if self.chance(0.7) else eo
            if self.chance(0.3):
                response["expires_on"] = self.pick(["", 0])  # falsy: ignored
        return response

    def client_info(self, uid, utid):
        r = self.r
        if self.chance(0.02):  # issue 387: no utid -> falls back to id_token sub
            return b64url_json({"uid": uid})
        ci = {"uid": uid, "utid": utid}
        raw = json.dumps(ci, separators=(",", ":")).encode("utf-8")
        p = r.random()
        if p < 0.04:  # padded base64url
            return base64.urlsafe_b64encode(raw).decode("ascii")
        if p < 0.07:  # standard alphabet + padding (as cloudshell.py emits)
            return base64.b64encode(json.dumps(ci).encode("utf-8")).decode("ascii")
        return b64url(raw)

    def oid_for(self, user, tenant):
        if tenant == user["utid"] or tenant in ("common", "organizations", "consumers"):
            return user["uid"]
        if tenant not in user["oids"]:
            user["oids"][tenant] = self.guid()
        return user["oids"][tenant]

    def scopes(self, k_lo=1, k_hi=4):
        pool = USER_SCOPES + self.extra_scopes
        s = self.r.sample(pool, self.r.randint(k_lo, k_hi))
        if self.chance(0.02):
            s.append(s[0])  # duplicate scope: msal keeps it ("a a")
        return s

    def id_token_parts(self, client, user, tenant, response, claims_in_response=0.8,
                       username_claim="preferred_username"):
        claims = {"aud": client}
        tid = user["utid"] if tenant in ("common", "organizations", "consumers") else tenant
        claims["oid"] = self.oid_for(user, tenant)
        claims["sub"] = "sub-" + claims["oid"][-12:]
        claims["tid"] = tid
        if username_claim and self.chance(0.92):
            claims[username_claim] = user["username"]
        if user.get("name"):
            claims["name"] = user["name"]
        response["id_token"] = "{}.{}.{}".format(JWT_HEADER, b64url_json(claims), self.tok("", 6, 12))
        if self.chance(claims_in_response):
            response["id_token_claims"] = claims  # oidc layer adds this
        return claims

    # ----------------------------------------------------------------- events
    def ev(self, client_id, scope, token_endpoint, grant_type, response, data,
           params=None, environment=None, **extra):
        """Build an event the way oauth2cli + application.py do."""
        event = {"client_id": client_id, "scope": scope, "token_endpoint": token_endpoint}
        if grant_type is not None:
            event["grant_type"] = grant_type
        event["response"] = response
        event["params"] = params
        event["data"] = data
        if environment is not _ABSENT and environment is not None:
            event["environment"] = environment
        event.update(extra)
        return event

    def ev_client_credentials(self):
        client = self.pick(self.conf_clients)
        tenant = self.pick(self.tenants)
        scope = list(self.pick(APP_RESOURCES))
        if self.chance(0.1):
            scope = ["api://{}/.default".format(client)]
        data = {"claims": None, "scope": scope} if self.chance(0.7) else {"scope": scope}
        if self.chance(0.18):  # FMI
            data["fmi_path"] = self.pick(self.fmi_paths)
            if self.chance(0.2):
                data["extra_body_param"] = self.pick(["v1", 42, "ü"])  # str(v) in the hash
        if self.chance(0.05):
            data["client_claims"] = '{"access_token":{"xms_cc":{"values":["cp1"]}}}'
        response = {"token_type": "Bearer"}
        self.expiry(response)
        response["access_token"] = self.tok("at-", 20, 60)
        return self.ev(client, scope, self.token_endpoint(self.host, tenant),
                       "client_credentials", response, data,
                       environment=self.environment_for(self.host))

    def ev_user(self, grant=None):
        r = self.r
        grant = grant or self.wpick([
            ("authorization_code", 6), (DEVICE_CODE_GRANT, 2), ("password", 2),
            ("broker", 1), ("user_fic", 1), (OBO_GRANT, 1), ("refresh_token", 1)])
        user = self.pick(self.users)
        client = self.pick(self.conf_clients if grant == OBO_GRANT else self.pub_clients)
        tenant = self.wpick([(user["utid"], 5), (self.pick(self.tenants), 2),
                             ("organizations", 1), ("common", 2)])
        scope = self.scopes()
        response = {"token_type": "Bearer"}
        if self.chance(0.7):
            response["scope"] = " ".join(scope)
        self.expiry(response, allow_expires_on=False)
        if not self.chance(0.01):
            response["access_token"] = self.tok("at-", 20, 60)
        else:
            response["access_token"] = ""  # falsy: no AT is written
        if self.chance(0.85):
            response["refresh_token"] = self.tok("rt-", 20, 60)
        claims = None
        if self.chance(0.94):
            claims = self.id_token_parts(
                client, user, tenant, response,
                username_claim=self.wpick([("preferred_username", 8), ("upn", 1), (None, 1)]))
        response["client_info"] = self.client_info(user["uid"], user["utid"])
        if client in self.foci_clients and self.chance(0.9):
            response["foci"] = "1" if not self.chance(0.03) else None
        data = {"scope": scope + (["offline_access"] if self.chance(0.5) else []), "claims": None}
        extra = {}
        if grant == "authorization_code":
            data = {"code": self.tok("code-", 20, 30), "redirect_uri": "http://localhost:8400",
                    "scope": data["scope"], "code_verifier": self.tok("", 20, 43), "claims": None}
        elif grant == DEVICE_CODE_GRANT:
            data = {"device_code": self.tok("dc-", 20, 30), "scope": data["scope"]}
        elif grant == "password":
            data = {"username": user["username"], "password": "x", "scope": data["scope"]}
            if self.chance(0.1):
                extra["username"] = user["username"]  # federated ROPC
        elif grant == "broker":
            extra["_account_id"] = self.pick([user["uid"], self.tok("wam-", 20, 30)])
            if claims is not None:  # broker hands over claims; they win over the id_token
                response["id_token_claims"] = dict(
                    claims, preferred_username=user["username"] if self.chance(0.8) else "broker@x.com")
        elif grant == "user_fic":
            data = {"user_federated_identity_credential": self.tok("fic-", 20, 30),
                    "user_id": user["uid"], "scope": data["scope"]}
        elif grant == OBO_GRANT:
            data = {"assertion": self.tok("ey", 20, 40), "requested_token_use": "on_behalf_of",
                    "scope": data["scope"]}
        elif grant == "refresh_token":  # direct oauth2 usage: account IS created
            data = {"refresh_token": self.tok("rt-", 20, 30), "scope": data["scope"]}
            response.pop("refresh_token", None)
        return self.ev(client, scope, self.token_endpoint(self.host, tenant), grant,
                       response, data, environment=self.environment_for(self.host), **extra)

    def ev_refresh_grant(self, client=None, user=None):
        """acquire_token_silent RT redemption: skip_account_creation, no RT in response."""
        user = user or self.pick(self.users)
        client = client or self.pick(self.pub_clients)
        tenant = self.wpick([(user["utid"], 4), (self.pick(self.tenants), 2), ("organizations", 1)])
        scope = self.scopes()
        response = {"token_type": "Bearer", "scope": " ".join(scope)}
        self.expiry(response, allow_expires_on=False)
        response["access_token"] = self.tok("at-", 20, 60)
        if self.chance(0.8):
            self.id_token_parts(client, user, tenant, response)
        if self.chance(0.9):
            response["client_info"] = self.client_info(user["uid"], user["utid"])
        if client in self.foci_clients and self.chance(0.9):
            response["foci"] = "1"
        data = {"scope": scope + ["offline_access"], "claims": None}
        if self.chance(0.05):
            data["client_claims"] = '{"access_token":{"nbf":{"essential":true}}}'
        return self.ev(client, scope, self.token_endpoint(self.host, tenant), "refresh_token",
                       response, data, environment=self.environment_for(self.host),
                       skip_account_creation=True)

    def ev_ssh(self):
        user = self.pick(self.users)
        client = self.pick(self.pub_clients)
        tenant = user["utid"]
        kid = self.pick(self.key_ids)
        response = {"token_type": "ssh-cert"}
        self.expiry(response, allow_expires_on=False)
        response["access_token"] = "ssh-rsa-cert-v01@openssh.com " + self.tok("AAAA", 20, 40)
        if self.chance(0.8):
            response["client_info"] = self.client_info(user["uid"], user["utid"])
        data = {"token_type": "ssh-cert", "key_id": kid,
                "req_cnf": b64url_json({"kty": "RSA", "e": "AQAB", "kid": kid})}
        if self.chance(0.6):
            return self.ev(client, list(SSH_SCOPE), self.token_endpoint(self.host, tenant),
                           "refresh_token", response, data,
                           environment=self.environment_for(self.host), skip_account_creation=True)
        response["refresh_token"] = self.tok("rt-", 20, 40)
        return self.ev(client, list(SSH_SCOPE), self.token_endpoint(self.host, tenant),
                       self.pick(["authorization_code", DEVICE_CODE_GRANT]), response, data,
                       environment=self.environment_for(self.host))

    def ev_adfs(self):
        user = self.pick(self.adfs_users)
        client = self.pick(self.pub_clients)
        grant = self.pick(["password", "authorization_code"])
        scope = self.pick([["openid", "profile", "offline_access"], ["openid"],
                           ["https://adfs-api.contoso.com/Read"], ["User.Read", "openid"]])
        response = {"token_type": "bearer"}
        self.expiry(response, allow_expires_on=False)
        response["access_token"] = self.tok("adfs-at-", 20, 40)
        if self.chance(0.9):
            response["refresh_token"] = self.tok("adfs-rt-", 20, 40)
        claims = {"aud": client, "sub": user["sub"]}
        if self.chance(0.8):
            claims["upn"] = user["upn"]
        response["id_token"] = "{}.{}.{}".format(JWT_HEADER, b64url_json(claims), self.tok("", 6, 10))
        if self.chance(0.7):
            response["id_token_claims"] = claims
        data = ({"username": user["upn"], "password": "x", "scope": scope} if grant == "password"
                else {"code": self.tok("code-", 20, 30), "scope": scope})
        path_root = "adfs" if not self.chance(0.05) else "ADFS"  # realm compare is case-sensitive
        return self.ev(client, scope, "https://{}/{}/oauth2/token".format(self.adfs_host, path_root),
                       grant, response, data, environment=self.pick([self.adfs_host, self.adfs_host, _ABSENT]))

    def ev_managed_identity(self):
        client = self.pick(self.mi_clients)
        resource = self.pick(MI_RESOURCES)
        response = {"access_token": self.tok("mi-", 20, 50)}
        p = self.r.random()
        life = self.pick([86399, 3599, 7200, 600, 120])
        if p < 0.5:  # raw IMDS/App Service: absolute expires_on
            response["expires_on"] = str(self.now + life) if self.chance(0.7) else self.now + life
        elif p < 0.9:  # normalized by managed_identity.py
            response["expires_in"] = life
        else:
            response["expires_in"] = life
            response["expires_on"] = str(self.now + life + 100)  # expires_in wins
        response["token_type"] = "Bearer"
        if self.chance(0.5):
            response["refresh_in"] = life // 2
        if self.chance(0.3):
            response["resource"] = resource
        return {"client_id": client, "scope": [resource],
                "token_endpoint": "https://localhost/managed_identity",
                "response": response, "params": {}, "data": {}}

    def ev_cloudshell(self):
        user = self.pick(self.users)
        scope = self.scopes(1, 2)
        response = {"access_token": self.tok("cs-at-", 20, 50), "expires_in": 3599,
                    "token_type": "Bearer"}
        response["id_token_claims"] = {"iss": "cloudshell", "sub": "user", "aud": "cs",
                                       "exp": self.now + 3600, "iat": self.now,
                                       "preferred_username": user["username"], "tid": user["utid"]}
        ci = {"uid": user["uid"], "utid": user["utid"]}
        p = self.r.random()
        if p < 0.25:  # cloudshell.py's fallback when the AT is not a JWT
            ci = {"uid": "user", "utid": "cloudshell"}
        elif p < 0.35:  # std alphabet with '+' ('/' is accepted too): decode_part is lenient
            ci = {"uid": "user~>?", "utid": "cloudshell"}
        # cloudshell.py uses STANDARD base64 with '=' padding and ", " separators
        response["client_info"] = base64.b64encode(json.dumps(ci).encode("utf-8")).decode("utf-8")
        return {"client_id": self.pick(self.pub_clients), "scope": scope,
                "token_endpoint": "https://{}/organizations/oauth2/v2.0/token".format(self.host),
                "response": response, "data": {}, "authority_type": "CLOUDSHELL"}

    def ev_weird(self):
        p = self.r.random()
        if p < 0.2:
            return {}  # writes AppMetadata "appmetadata--"
        if p < 0.45:  # legacy: no token_endpoint, maybe environment -> realm null
            e = self.ev_client_credentials()
            del e["token_endpoint"]
            if self.chance(0.5):
                e.pop("environment", None)
            return e
        if p < 0.65:  # scope None / empty
            e = self.ev_user()
            e["scope"] = self.pick([None, []])
            return e
        if p < 0.85:  # user event with client_info and no id_token -> local_account_id null
            e = self.ev_user(grant="authorization_code")
            e["response"].pop("id_token", None)
            e["response"].pop("id_token_claims", None)
            return e
        # id_token only (e.g. an OIDC sign-in without access token)
        e = self.ev_user(grant="authorization_code")
        e["response"].pop("access_token", None)
        e["response"].pop("refresh_token", None)
        return e

    def ev_invalid(self):
        kind = self.pick(["idt", "idt", "client_info", "client_info", "endpoint", "expiry", "expiry", "nosub"])
        if kind == "idt":
            e = self.ev_user()
            e["response"].pop("id_token_claims", None)
            e["response"]["id_token"] = self.pick([
                "opaque-id-token", "a.b.c", "x.!!!.y",
                JWT_HEADER + "." + b64url(b"not json") + ".sig",
                JWT_HEADER + "." + b64url(b"\xff\xfe\xfa\xfb") + ".sig",
            ])
            return e
        if kind == "client_info":
            e = self.ev_user()
            e["response"]["client_info"] = self.pick([
                "@@@@", b64url(b"not json"), b64url(b"\xff\xfe\xfd"),
                b64url(b'{"uid": "x"'), "%%%%%",
            ])
            return e
        if kind == "endpoint":
            e = self.pick([self.ev_client_credentials, self.ev_user])()
            tenant = self.pick(self.tenants)
            e["token_endpoint"] = self.pick([
                "http://{}/{}/oauth2/v2.0/token".format(self.host, tenant),
                "https://{}".format(self.host),
                "https://{}/".format(self.host),
                "ftp://{}/{}/token".format(self.host, tenant),
                "login.microsoftonline.com/{}/oauth2/v2.0/token".format(tenant),
            ])
            return e
        if kind == "expiry":
            e = self.pick([self.ev_client_credentials, self.ev_user, self.ev_managed_identity])()
            resp = e["response"]
            resp["access_token"] = resp.get("access_token") or self.tok("at-", 20, 30)
            bad = self.pick(["ei_abc", "ei_empty", "ei_null", "ei_decimal", "eei_abc",
                             "refresh_in_str", "expires_on_abc"])
            if bad == "ei_abc":
                resp["expires_in"] = "abc"
            elif bad == "ei_empty":
                resp["expires_in"] = ""
            elif bad == "ei_null":
                resp["expires_in"] = None  # present-but-null is NOT "absent"
            elif bad == "ei_decimal":
                resp["expires_in"] = "3599.5"
            elif bad == "eei_abc":
                resp["expires_in"] = 3599
                resp["ext_expires_in"] = "abc"
            elif bad == "refresh_in_str":
                resp["expires_in"] = 3599
                resp["refresh_in"] = "1800"  # not int()-ed by msal: now + "1800" fails
            else:
                resp.pop("expires_in", None)
                resp["expires_on"] = "soon"
            return e
        # ADFS-like: id_token without "sub", no client_info
        e = self.ev_adfs()
        claims = {"aud": e["client_id"], "upn": "nosub@contoso.com"}
        e["response"]["id_token"] = "{}.{}.{}".format(JWT_HEADER, b64url_json(claims), "sig")
        e["response"]["id_token_claims"] = claims
        return e

    def make_event(self):
        if self.chance(0.03):
            return self.ev_invalid(), True
        kind = self.wpick([
            ("cc", 24), ("user", 30), ("refresh", 12), ("ssh", 5), ("adfs", 6),
            ("mi", 9), ("cloudshell", 2), ("weird", 4)])
        return {
            "cc": self.ev_client_credentials, "user": self.ev_user,
            "refresh": self.ev_refresh_grant, "ssh": self.ev_ssh, "adfs": self.ev_adfs,
            "mi": self.ev_managed_identity, "cloudshell": self.ev_cloudshell,
            "weird": self.ev_weird,
        }[kind](), False

    # -------------------------------------------------------------------- ops
    def op_add(self, event=None):
        self.tick()
        if event is None:
            event, _ = self.make_event()
        event = plain(event)
        op = {"op": "add", "now": self.now, "event": event}
        before = json.dumps(self.cache._cache)
        flag_before = self.cache.has_state_changed
        try:
            self.cache.add(copy.deepcopy(event), now=self.now)
        except Exception as ex:  # msal's own exception, recorded by class name
            if json.dumps(self.cache._cache) != before or self.cache.has_state_changed != flag_before:
                raise RuntimeError("seed %d: msal raised %r AND changed state" % (self.seed, ex))
            op["error"] = type(ex).__name__
            self.stats["add_error"] += 1
        self.record(op)

    def do_search(self, ct, target=None, query=None, now=None):
        now = self.now if now is None else now
        try:
            found = [copy.deepcopy(e) for e in self.cache.search(ct, target=target, query=query, now=now)]
        except Exception as ex:
            raise RuntimeError("seed %d: search raised %r (generator bug)" % (self.seed, ex))
        self.record({"op": "search", "credential_type": ct,
                     "target": copy.deepcopy(target), "query": copy.deepcopy(query),
                     "now": now, "expect": found})
        return found

    def search_now(self):
        """Mostly the current clock; sometimes a time that expires some ATs."""
        p = self.r.random()
        ats = self.entries(AT)
        if p < 0.6 or not ats:
            return self.now
        if p < 0.8:
            return self.now + self.pick([60, 600, 3600, 4000, 7200])
        if p < 0.95:
            eo = int(self.pick(ats)["expires_on"])
            return eo + self.pick([-1, 0, 1])  # boundary: expired iff expires_on < now
        return self.now + 10 ** 6

    def perturb_env(self, env):
        if isinstance(env, str) and self.chance(0.12):
            return self.pick([env.upper(), env.title(), self.alias])
        return env

    def target_from(self, target_str):
        scopes = (target_str or "").split()
        p = self.r.random()
        if not scopes or p < 0.05:
            return None
        if p < 0.45:
            t = list(scopes)
        elif p < 0.75:
            t = self.r.sample(scopes, self.r.randint(1, len(scopes)))
        elif p < 0.85:
            t = scopes + [self.pick(USER_SCOPES)]  # superset: usually a miss
        elif p < 0.92:
            t = [s.swapcase() for s in scopes[:2]]  # case-sensitive miss
        else:
            t = list(scopes) + [scopes[0]]  # duplicate in query target
        self.r.shuffle(t)
        return t

    def q_at_silent(self):
        ats = self.entries(AT)
        if ats and self.chance(0.75):
            e = self.pick(ats)
            q = {"client_id": e.get("client_id"), "environment": self.perturb_env(e.get("environment")),
                 "realm": e.get("realm"), "home_account_id": e.get("home_account_id")}
            if "key_id" in e and self.chance(0.9):
                q["key_id"] = e["key_id"]
            if "ext_cache_key" in e and self.chance(0.9):
                q["ext_cache_key"] = e["ext_cache_key"]
            if self.chance(0.08):
                q["home_account_id"] = self.pick([None, "nobody.nowhere"])
            if self.chance(0.05):
                q["key_id"] = self.pick(self.key_ids)
            return self.target_from(e.get("target")), q
        user = self.pick(self.users)
        q = {"client_id": self.pick(self.pub_clients + self.conf_clients),
             "environment": self.host, "realm": self.pick(self.tenants),
             "home_account_id": self.pick([None, "{}.{}".format(user["uid"], user["utid"])])}
        return self.scopes(1, 2), q

    def q_mi(self):
        return [self.pick(MI_RESOURCES)], {
            "client_id": self.pick(self.mi_clients), "environment": "localhost",
            "realm": "managed_identity", "home_account_id": None}

    def home_account_query(self):
        accts = self.entries(ACCOUNT) + self.entries(RT)
        if accts and self.chance(0.85):
            e = self.pick(accts)
            return {"environment": self.perturb_env(e.get("environment")),
                    "home_account_id": e.get("home_account_id")}
        user = self.pick(self.users)
        return {"environment": self.host, "home_account_id": "{}.{}".format(user["uid"], user["utid"])}

    def q_rt(self):
        q = self.home_account_query()
        p = self.r.random()
        if p < 0.4:
            q["family_id"] = "1"
        elif p < 0.9:
            rts = self.entries(RT)
            q["client_id"] = (self.pick(rts).get("client_id") if rts and self.chance(0.7)
                              else self.pick(self.pub_clients))
        return None, q

    def q_subset(self, ct):
        ents = self.entries(ct)
        if not ents:
            return None, {"environment": self.host}
        e = self.pick(ents)
        keys = list(e.keys())
        chosen = self.r.sample(keys, self.r.randint(1, min(len(keys), 5)))
        q = {k: copy.deepcopy(e[k]) for k in chosen}
        if self.chance(0.15):
            k = self.pick(chosen)
            v = q[k]
            q[k] = (v + "x") if isinstance(v, str) else None
        if self.chance(0.05):
            q[self.pick(["nonexistent_field", "family_id"])] = self.pick([None, "1", "zzz"])
        if "environment" in q:
            q["environment"] = self.perturb_env(q["environment"])
        target = self.target_from(e.get("target")) if (ct in (AT, RT) and self.chance(0.4)) else None
        return target, q

    def op_search(self):
        p = self.r.random()
        now = None
        if p < 0.30:
            ct = AT
            target, query = self.q_at_silent()
            now = self.search_now()
        elif p < 0.36:
            ct = AT
            target, query = self.q_mi()
            now = self.search_now()
        elif p < 0.50:
            ct = RT
            target, query = self.q_rt()
        elif p < 0.56:
            ct, target, query = RT, None, {"environment": self.perturb_env(self.host)}
        elif p < 0.64:
            ct, target = ACCOUNT, None
            query = {"environment": self.perturb_env(self.pick([self.host, self.host, self.adfs_host, self.alias]))}
        elif p < 0.70:
            ct, target = self.pick([RT, AT, IDT, ACCOUNT]), None
            query = self.home_account_query()
            if ct == AT:
                now = self.search_now()
        elif p < 0.74:  # remove_tokens_for_client style
            ct, target = AT, None
            query = {"client_id": self.pick(self.conf_clients + self.mi_clients),
                     "environment": self.pick([self.host, self.alias, "localhost"]),
                     "home_account_id": None}
            now = self.search_now()
        elif p < 0.90:
            ct = self.wpick([(AT, 4), (RT, 2), (IDT, 2), (ACCOUNT, 2), (APP_METADATA, 1)])
            target, query = self.q_subset(ct)
            if ct == AT:
                now = self.search_now()
        elif p < 0.96:  # list everything of a type (optionally by target only)
            ct = self.wpick([(AT, 3), (RT, 1), (IDT, 1), (ACCOUNT, 1), (APP_METADATA, 1)])
            query = None if self.chance(0.7) else {}
            target = None
            if ct in (AT, RT) and self.chance(0.4):
                ents = self.entries(ct)
                target = self.target_from(self.pick(ents).get("target")) if ents else ["User.Read"]
            elif self.chance(0.05):
                target = ["openid"]  # Account/IdToken/AppMetadata have no target: no match
            now = self.search_now() if ct == AT else None
        else:  # misses
            ct = self.pick(CREDENTIAL_TYPES)
            target = self.pick([None, ["no.such.scope"]])
            query = self.pick([{"client_id": "no-such-client"}, {"environment": "nowhere.example"},
                               {"home_account_id": None, "environment": self.host},
                               {"realm": self.pick(self.tenants), "client_id": None}])
            now = self.search_now() if ct == AT else None
        return self.do_search(ct, target, query, now)

    # ---- removal & modification
    def fabricated(self, ct):
        user = self.pick(self.users)
        hid = "{}.{}".format(user["uid"], user["utid"]) if self.chance(0.8) else None
        env = self.pick([self.host, self.alias])
        client = self.pick(self.pub_clients + self.conf_clients)
        realm = self.pick(self.tenants)
        target = " ".join(sorted(self.scopes(1, 3)))
        if ct == AT:
            return {"credential_type": AT, "secret": self.tok("at-", 20, 30), "home_account_id": hid,
                    "environment": env, "client_id": client, "target": target, "realm": realm,
                    "token_type": "Bearer", "cached_at": str(self.now),
                    "expires_on": str(self.now + 3600), "extended_expires_on": str(self.now + 3600)}
        if ct == RT:
            return {"credential_type": RT, "secret": self.tok("rt-", 20, 30), "home_account_id": hid,
                    "environment": env, "client_id": client, "target": target,
                    "last_modification_time": str(self.now)}
        if ct == IDT:
            return {"credential_type": IDT, "secret": self.tok("idt-", 20, 30), "home_account_id": hid,
                    "environment": env, "realm": realm, "client_id": client}
        if ct == ACCOUNT:
            return {"home_account_id": hid, "environment": env, "realm": realm,
                    "local_account_id": user["uid"], "username": user["username"],
                    "authority_type": "MSSTS"}
        return {"client_id": client, "environment": env}

    def pick_entry(self, ct, p_fabricate=0.15):
        ents = self.entries(ct)
        if not ents or self.chance(p_fabricate):
            return self.fabricated(ct)
        e = copy.deepcopy(self.pick(ents))
        if self.chance(0.1):  # key makers ignore non-key fields
            if "secret" in e:
                e["secret"] = self.tok("other-", 20, 30)
            if self.chance(0.5):
                e["x_extra"] = "ignored"
        return e

    def op_remove(self, kind=None):
        kind = kind or self.wpick([("remove_rt", 3), ("remove_at", 3), ("remove_idt", 2), ("remove_account", 2)])
        ct = {"remove_rt": RT, "remove_at": AT, "remove_idt": IDT, "remove_account": ACCOUNT}[kind]
        entry = self.pick_entry(ct)
        self.apply_remove(kind, entry)

    def apply_remove(self, kind, entry):
        entry = plain(entry)
        getattr(self.cache, kind)(copy.deepcopy(entry))
        self.record({"op": kind, "entry": entry})

    def op_update_rt(self, entry=None):
        entry = plain(entry if entry is not None else self.pick_entry(RT, 0.1))
        self.tick()
        new_rt = self.tok("rt-new-", 20, 50)
        with mock.patch("msal.token_cache.time.time", return_value=float(self.now)):
            self.cache.update_rt(copy.deepcopy(entry), new_rt)
        self.record({"op": "update_rt", "entry": entry, "new_rt": new_rt, "now": self.now})

    def op_modify(self):
        ct = self.wpick([(AT, 3), (RT, 3), (IDT, 1), (ACCOUNT, 2), (APP_METADATA, 2)])
        entry = plain(self.pick_entry(ct, 0.2))
        p = self.r.random()
        if p < 0.2:
            new = None  # removal
        elif p < 0.27:
            new = {}  # falsy: also a removal
        elif p < 0.5:
            new = {self.pick(UNKNOWN_FIELD_NAMES): self.pick(["v", 7, {"a": [1, None, True]}, ["x"]])}
        elif p < 0.7:
            if ct in (AT, RT, IDT):
                new = {"secret": self.tok("mod-", 20, 30)}
            elif ct == ACCOUNT:
                new = {"username": self.pick(NON_ASCII_USERNAMES + USERNAMES)}
            else:
                new = {"family_id": "1"}
        elif p < 0.85:
            if ct == AT:
                new = {"expires_on": str(self.now + self.pick([-10, 10, 3600])), "refresh_on": str(self.now)}
            elif ct == RT:
                new = {"family_id": "1", "last_modification_time": str(self.now)}
            else:
                new = {"x_flag": False}
        else:
            # change a key field: stored under the OLD key with the NEW content
            if ct in (AT, RT):
                new = {"target": " ".join(sorted(self.scopes(1, 2)))}
            elif ct == APP_METADATA:
                new = {"client_id": self.pick(self.pub_clients)}
            else:
                new = {"realm": self.pick(self.tenants)}
        self.cache.modify(ct, copy.deepcopy(entry), copy.deepcopy(new))
        self.record({"op": "modify", "credential_type": ct, "entry": entry, "new": new})

    def op_app_metadata(self):
        ams = self.entries(APP_METADATA)
        if ams and self.chance(0.65):
            e = self.pick(ams)
            env, client = e.get("environment"), e.get("client_id")
            if self.chance(0.1) and isinstance(client, str):
                client = client.swapcase()  # AppMetadata keys are NOT lowercased
            if self.chance(0.1) and isinstance(env, str):
                env = env.upper()
        else:
            env = self.pick([self.host, self.alias, "localhost", None])
            client = self.pick(self.pub_clients + self.conf_clients + self.mi_clients + [None])
        got = self.cache._get_app_metadata(environment=env, client_id=client, default=None)
        self.record({"op": "app_metadata", "environment": env, "client_id": client,
                     "expect": copy.deepcopy(got)})

    def op_has_state_changed(self):
        self.record({"op": "has_state_changed", "expect": bool(self.cache.has_state_changed)})

    def op_serialize(self):
        s = self.cache.serialize()
        self.snapshots.append(s)
        self.snapshots = self.snapshots[-4:]
        self.record({"op": "serialize", "expect": s})

    # ---- deserialize with hand edits
    def edit_unknown_section(self, obj):
        name = self.pick(UNKNOWN_SECTION_NAMES)
        content = self.pick([
            {"k1": {"a": 1, "b": [1, "two", None, True, False]}},
            {},
            {"nested": {"deep": {"x": 1.5, "y": -0.25, "z": 3.0}}},
            {"big": {"f": 1e20, "n": 12345678901234567890, "neg": -7}},
        ])
        items = list(obj.items())
        items = [(k, v) for k, v in items if k != name]
        items.insert(self.r.randint(0, len(items)), (name, copy.deepcopy(content)))
        return dict(items)

    def any_entry_ref(self, cts=None):
        refs = [(ct, k) for ct in (cts or CREDENTIAL_TYPES)
                for k in (self._edit_obj.get(ct) or {})]
        return self.pick(refs) if refs else None

    def edit_unknown_field(self, obj):
        ref = self.any_entry_ref()
        if ref:
            obj[ref[0]][ref[1]][self.pick(UNKNOWN_FIELD_NAMES)] = self.pick(
                ["bar", 123, {"nested": [1, "two", None, True]}, ["a", "b"], False, None, 0.5])
        return obj

    def edit_non_ascii_username(self, obj):
        ref = self.any_entry_ref([ACCOUNT])
        if ref:
            obj[ACCOUNT][ref[1]]["username"] = self.pick(NON_ASCII_USERNAMES)
        return obj

    def edit_number(self, obj):
        cands = []
        for ct, fields in ((AT, ["expires_on", "cached_at", "extended_expires_on", "refresh_on"]),
                           (RT, ["last_modification_time", "family_id"]),
                           (APP_METADATA, ["family_id"])):
            for k, e in (obj.get(ct) or {}).items():
                for f in fields:
                    if isinstance(e.get(f), str) and e[f].isdigit() and e[f].isascii():
                        cands.append((ct, k, f))
        if cands:
            ct, k, f = self.pick(cands)
            obj[ct][k][f] = int(obj[ct][k][f])
        return obj

    def edit_rekey(self, obj):
        """Move (or duplicate) an entry under a non-canonical key, like other SDKs write."""
        ref = (self.chance(0.5) and self.any_entry_ref([AT])) or self.any_entry_ref()
        if ref:
            ct, key = ref
            new_key = self.pick([key.upper(), "other-sdk-" + key, key + "-", key.replace("-", "|", 1)])
            if new_key != key and new_key not in obj[ct]:
                dup = self.chance(0.4)
                items = []
                for k, v in obj[ct].items():
                    if k == key:
                        if dup:
                            items.append((k, v))
                        items.append((new_key, copy.deepcopy(v)))
                    else:
                        items.append((k, v))
                obj[ct] = dict(items)
        return obj

    def edit_sections(self, obj):
        p = self.r.random()
        if p < 0.4 and obj:
            del obj[self.pick(list(obj.keys()))]  # drop a whole section
        elif p < 0.7:
            ct = self.pick(CREDENTIAL_TYPES)
            if ct not in obj:
                obj[ct] = {}  # empty section is kept by serialize()
        else:
            obj = dict(reversed(list(obj.items())))  # section order is document order
        return obj

    def op_deserialize(self):
        if self.snapshots and self.chance(0.35):
            state = self.pick(self.snapshots)
        else:
            if self.chance(0.05):
                obj = {}
            else:
                src = (json.loads(self.pick(self.snapshots)) if self.snapshots and self.chance(0.3)
                       else json.loads(json.dumps(self.cache._cache)))
                obj = src
                edits = [self.edit_unknown_section, self.edit_unknown_field, self.edit_non_ascii_username,
                         self.edit_number, self.edit_rekey, self.edit_sections]
                for edit in self.r.sample(edits, self.r.randint(1, 3)):
                    self._edit_obj = obj
                    obj = edit(obj)
            fmt = self.r.randrange(5)
            if fmt == 0:
                state = json.dumps(obj, indent=4)
            elif fmt == 1:
                state = json.dumps(obj)
            elif fmt == 2:
                state = json.dumps(obj, separators=(",", ":"))
            elif fmt == 3:
                state = json.dumps(obj, indent=2, ensure_ascii=False)
            else:
                state = "\n  " + json.dumps(obj, indent="\t") + "\n"
        self.cache.deserialize(state)
        self.record({"op": "deserialize", "state": state})

    # ---- composite, app-like flows
    def room(self):
        return self.max_ops - len(self.ops)

    def flow_silent_refresh(self):
        """acquire_token_silent: AT miss -> RT search -> redeem (add) -> update_rt."""
        rts = self.entries(RT)
        if not rts or self.room() < 3:
            return self.op_add()
        rt = self.pick(rts)
        q = {"environment": rt.get("environment"), "home_account_id": rt.get("home_account_id")}
        q.update({"family_id": "1"} if rt.get("family_id") == "1" and self.chance(0.5)
                 else {"client_id": rt.get("client_id")})
        found = self.do_search(RT, None, q)
        user = None
        for u in self.users:
            if "{}.{}".format(u["uid"], u["utid"]) == rt.get("home_account_id"):
                user = u
        client = rt.get("client_id") if rt.get("client_id") in self.pub_clients else None
        self.op_add(self.ev_refresh_grant(client=client, user=user))
        if found and self.chance(0.8):
            self.op_update_rt(self.pick(found))

    def flow_sign_out(self):
        """ClientApplication._sign_out / _forget_me."""
        q = self.home_account_query()
        plan = [(RT, "remove_rt"), (AT, "remove_at")]
        if self.chance(0.5):  # forget_me
            plan += [(IDT, "remove_idt"), (ACCOUNT, "remove_account")]
        for ct, remover in plan:
            if self.room() < 1:
                return
            for entry in self.do_search(ct, None, q, now=self.now if ct == AT else None):
                if self.room() < 1:
                    return
                if ct != RT or self.chance(0.8):
                    self.apply_remove(remover, entry)

    def flow_remove_tokens_for_client(self):
        q = {"client_id": self.pick(self.conf_clients), "environment": self.host, "home_account_id": None}
        for at in self.do_search(AT, None, q, now=self.now):
            if self.room() < 1:
                return
            self.apply_remove("remove_at", at)

    # ---- driver
    def run(self):
        length = self.r.randint(5, 40)
        self.max_ops = length - 2  # the final has_state_changed + serialize
        checkpoint = self.r.randint(3, 8)
        actions = [
            (self.op_add, 34), (self.op_search, 30), (self.op_remove, 5), (self.op_update_rt, 2),
            (self.op_modify, 3), (self.op_app_metadata, 4), (self.op_has_state_changed, 2),
            (self.op_serialize, 2), (self.op_deserialize, 3), (self.flow_silent_refresh, 4),
            (self.flow_sign_out, 1), (self.flow_remove_tokens_for_client, 1),
        ]
        first = True
        while self.room() > 0:
            if first:
                first = False
                self.op_add()
                continue
            before = len(self.ops)
            self.r.choices([a[0] for a in actions], weights=[a[1] for a in actions])[0]()
            checkpoint -= len(self.ops) - before
            if checkpoint <= 0 and self.room() >= 2:
                checkpoint = self.r.randint(3, 8)
                p = self.r.random()
                if p < 0.7:
                    self.op_has_state_changed()
                if p >= 0.3:
                    self.op_serialize()
        self.op_has_state_changed()
        self.op_serialize()
        return {"seed": self.seed, "ops": self.ops}


_ABSENT = object()


def replay(record):
    """Reference replayer: run one recorded sequence through a fresh msal cache
    (exactly as the Rust test is expected to) and return a list of mismatches."""
    cache = SerializableTokenCache()
    problems = []
    for i, op in enumerate(record["ops"]):
        kind = op["op"]
        got = None
        if kind == "add":
            try:
                cache.add(op["event"], now=op["now"])
                got = None
            except Exception as ex:
                got = type(ex).__name__
            if got != op.get("error"):
                problems.append((i, kind, op.get("error"), got))
            continue
        if kind == "search":
            got = plain(list(cache.search(
                op["credential_type"], target=op["target"], query=op["query"], now=op["now"])))
        elif kind in ("remove_rt", "remove_at", "remove_idt", "remove_account"):
            getattr(cache, kind)(op["entry"])
            continue
        elif kind == "update_rt":
            with mock.patch("msal.token_cache.time.time", return_value=float(op["now"])):
                cache.update_rt(op["entry"], op["new_rt"])
            continue
        elif kind == "modify":
            cache.modify(op["credential_type"], op["entry"], op["new"])
            continue
        elif kind == "app_metadata":
            got = plain(cache._get_app_metadata(
                environment=op["environment"], client_id=op["client_id"], default=None))
        elif kind == "has_state_changed":
            got = bool(cache.has_state_changed)
        elif kind == "serialize":
            got = cache.serialize()
        elif kind == "deserialize":
            cache.deserialize(op["state"])
            continue
        else:
            problems.append((i, kind, "unknown op", None))
            continue
        if got != op["expect"]:
            problems.append((i, kind, op["expect"], got))
    return problems


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed-start", type=int, default=1)
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--out", help="output .jsonl file")
    ap.add_argument("--verify", metavar="FILE",
                    help="instead of generating, replay FILE through msal and check every expectation")
    args = ap.parse_args(argv)
    if args.verify:
        n_seq = n_bad = 0
        with open(args.verify, encoding="utf-8") as f:
            for line in f:
                rec = json.loads(line)
                n_seq += 1
                problems = replay(rec)
                if problems:
                    n_bad += 1
                    print("seed {}: {}".format(rec["seed"], problems[:3]))
        print("msal_oracle verify: {} sequences, {} mismatching, msal {}".format(
            n_seq, n_bad, msal.__version__))
        return 1 if n_bad else 0
    if not args.out:
        ap.error("--out is required (unless --verify)")

    total = collections.Counter()
    n_ops = 0
    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        for seed in range(args.seed_start, args.seed_start + args.count):
            seq = Sequence(seed)
            rec = seq.run()
            f.write(json.dumps(rec, ensure_ascii=False, separators=(",", ":"), allow_nan=False))
            f.write("\n")
            total.update(seq.stats)
            n_ops += len(rec["ops"])
    mix = " ".join("{}={}".format(k, total[k]) for k in sorted(total))
    print("msal_oracle: {} sequences, {} ops, msal {} -> {} [{}]".format(
        args.count, n_ops, msal.__version__, args.out, mix))


if __name__ == "__main__":
    sys.exit(main())
