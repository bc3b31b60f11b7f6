#!/usr/bin/env python3
"""Cross-language compatibility suite: tokencache against the real MSAL libraries.

For every peer (msal Python, msal-node, MSAL Go, MSAL Java) and every scenario
(client credentials, user with RT, FOCI, multi-tenant, OBO, unknown fields), in both
directions:

* peer-first: the peer signs in through its public API against the fake AAD on
  127.0.0.1 and writes its cache; tokencache loads it, adds tokens and saves; the
  peer loads our file and acquires silently: it must get our tokens and its own
  from the cache, with no request reaching the token endpoint.
* us-first: tokencache adds tokens and saves; the peer loads our file and acquires
  silently (from the cache, no request), then acquires more over the fake network
  and saves; tokencache loads that, finds the peer's tokens, saves again, and the
  peer acquires silently from that file.

After every tokencache save: each entry the peer wrote is still there under its key
and JSON-equal (unless we replaced it with a newer token for the same thing), and no
two entries are the same item under two key styles (as the peer itself keys them).

Each peer runs as one process speaking JSON lines (see its harness). Writes
COMPATIBILITY.md (peer x version x direction x scenario) from the run.
A peer whose toolchain is missing is skipped with a banner; any failed cell fails.

    python3 tests/compat/driver.py [--peers python,node,go,java] [--report COMPATIBILITY.md]
"""
import argparse
import concurrent.futures
import datetime
import itertools
import json
import os
import shutil
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import fake_aad  # noqa: E402
from fake_aad import User, app_response, assertion_hash, user_response  # noqa: E402

TARGET = os.path.join(ROOT, "target", "compat")
ENV = "login.microsoftonline.com"
HOME = "cafe0000-0000-4000-8000-00000000cafe"
GUEST = "fab00000-0000-4000-8000-000000000fab"
ALICE = User("a11ce000-0000-4000-8000-0000000a11ce", HOME, "alice@contoso.example", "Alice Example")
PUBLIC_APP = "c0a11e00-0000-4000-8000-000000000001"
FAMILY_1 = "f0c10000-0000-4000-8000-0000000000f1"
FAMILY_2 = "f0c10000-0000-4000-8000-0000000000f2"
DAEMON = "dae00000-0000-4000-8000-00000000dae0"
WEB_API = "a9100000-0000-4000-8000-0000000000a9"
GRAPH = "https://graph.microsoft.com/.default"
VAULT = "https://vault.azure.net/.default"
REDIRECT = "http://localhost"
OIDC = ["openid", "profile", "offline_access"]
RENEWABLE = {"secret", "cached_at", "expires_on", "extended_expires_on", "ext_expires_on", "refresh_on",
             "last_modification_time"}
SECTIONS = ["AccessToken", "RefreshToken", "IdToken", "Account", "AppMetadata"]
SCENARIOS = ["client_credentials", "user_rt", "foci", "multi_tenant", "obo", "unknown_fields"]
DIRECTIONS = ["peer-first", "us-first"]


def authority(tenant):
    return "https://%s/%s" % (ENV, tenant)


def obo_assertion(user):
    """The incoming access token a web API exchanges on behalf of its caller."""
    now = int(time.time())
    return fake_aad.unsigned_jwt({"aud": WEB_API, "iss": "https://sts.windows.net/%s/" % user.utid, "iat": now,
                                  "nbf": now, "exp": now + 3600, "oid": user.uid, "tid": user.utid,
                                  "scp": "access_as_user", "ver": "1.0"})


OBO_ASSERTION = obo_assertion(ALICE)


# --------------------------------------------------------------------------- our events
# The events msal Python's applications hand their cache's add(): tokencache's add()
# takes the same ones (DESIGN.md section 3).

def _event(client_id, tenant, scopes, grant, response, data=None, **extra):
    ev = {"client_id": client_id, "scope": list(scopes),
          "token_endpoint": "https://%s/%s/oauth2/v2.0/token" % (ENV, tenant),
          "grant_type": grant, "response": response, "params": None, "data": dict(data or {}, claims=None), "environment": ENV}
    ev.update(extra)
    return ev


def cc_event(client_id, tenant, scope, at):
    return _event(client_id, tenant, [scope], "client_credentials", app_response([scope], at), {"scope": [scope]})


def user_event(client_id, tenant, scopes, at, rt, grant="authorization_code", foci=None, user=ALICE):
    """The event msal Python's app hands add() after a user-flow response. For a
    refresh, msal drops the new RT from the event and update_rt()s the RT it used
    instead (see Cell.us_refresh)."""
    resp = user_response(user, client_id, tenant, scopes + OIDC, at, rt=rt, foci=foci)
    resp["id_token_claims"] = json.loads(fake_aad.base64.urlsafe_b64decode(
        resp["id_token"].split(".")[1] + "==").decode("utf-8"))
    extra = {}
    if grant == "authorization_code":
        data = {"code": "compat-code", "redirect_uri": REDIRECT, "scope": scopes + OIDC}
    elif grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
        data = {"scope": scopes + OIDC, "requested_token_use": "on_behalf_of"}
    else:
        data = {"scope": scopes + OIDC}
        extra = {"skip_account_creation": True}
        resp.pop("refresh_token", None)
    return _event(client_id, tenant, resp["scope"].split(), grant, resp, data, **extra)


# --------------------------------------------------------------------------- peers

class Skip(Exception):
    pass


def run(cmd, cwd=None, env=None):
    res = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if res.returncode != 0:
        raise RuntimeError("%s failed (%d):\n%s" % (" ".join(cmd), res.returncode, res.stdout[-4000:]))
    return res.stdout


def newer(target, *sources):
    if not os.path.exists(target):
        return False
    t = os.path.getmtime(target)
    return all(os.path.getmtime(s) <= t for s in sources)


class Peer:
    name = short = version = None
    toolchain = ()
    rt_key_has_target = False  # msal Python keys refresh tokens by target too
    obo_from_cache = True  # msal Python's acquire_token_on_behalf_of never reads the cache
    obo_persisted = True  # MSAL Go never exports its OBO tokens
    foci_cross_app = True  # msal-node redeems only family RTs whose client_id is its own
    assertion_hash_fields = ("user_assertion_hash",)

    def check_toolchain(self):
        missing = [t for t in self.toolchain if shutil.which(t) is None]
        if missing:
            raise Skip("%s not found on this machine" % ", ".join(missing))

    def setup(self):
        """Installs the pinned peer (cached under target/compat); returns the command."""
        raise NotImplementedError


class PythonPeer(Peer):
    name, short, toolchain = "msal (Python)", "python", ("python3",)
    rt_key_has_target = True
    obo_from_cache = False

    def setup(self):
        py = os.path.join(ROOT, run([os.path.join(ROOT, "scripts", "venv.sh")]).strip().splitlines()[-1])
        self.version = run([py, "-c", "import msal; print(msal.__version__)"]).strip()
        return [py, os.path.join(HERE, "python", "harness.py")], {}


class NodePeer(Peer):
    name, short, toolchain = "msal-node", "node", ("node", "npm")
    foci_cross_app = False
    assertion_hash_fields = ("userAssertionHash", "user_assertion_hash")

    def setup(self):
        d = os.path.join(HERE, "node")
        stamp = os.path.join(d, "node_modules", ".package-lock.json")
        if not newer(stamp, os.path.join(d, "package-lock.json")):
            run(["npm", "ci", "--cache", os.path.join(TARGET, "npm-cache"), "--prefer-offline", "--no-audit",
                 "--no-fund", "--loglevel=error"], cwd=d)
        with open(os.path.join(d, "node_modules", "@azure", "msal-node", "package.json")) as f:
            self.version = json.load(f)["version"]
        return ["node", os.path.join(d, "harness.mjs")], {}


class GoPeer(Peer):
    name, short, toolchain = "MSAL Go", "go", ("go",)
    obo_from_cache = obo_persisted = False

    def setup(self):
        d = os.path.join(HERE, "go")
        env = dict(os.environ, GOMODCACHE=os.path.join(TARGET, "gomod"), GOCACHE=os.path.join(TARGET, "gocache"),
                   GOFLAGS="-modcacherw", GOTOOLCHAIN="local", GOPROXY=os.environ.get("GOPROXY", "https://proxy.golang.org,direct"))
        exe = os.path.join(TARGET, "go-peer")
        run(["go", "build", "-o", exe, "."], cwd=d, env=env)
        with open(os.path.join(d, "go.mod")) as f:
            for line in f:
                if "microsoft-authentication-library-for-go" in line and line.split()[0] != "module":
                    self.version = line.split()[-1].lstrip("v")
        return [exe], {}


class JavaPeer(Peer):
    name, short, toolchain = "msal4j (Java)", "java", ("java", "javac", "mvn")

    def setup(self):
        d = os.path.join(HERE, "java")
        pom = os.path.join(d, "pom.xml")
        cp_file = os.path.join(TARGET, "java-cp.txt")
        if not newer(cp_file, pom):
            run(["mvn", "-q", "-B", "-Dmaven.repo.local=" + os.path.join(TARGET, "m2"), "-f", pom,
                 "dependency:build-classpath", "-Dmdep.outputFile=" + cp_file])
        with open(cp_file) as f:
            cp = f.read().strip()
        src = os.path.join(d, "src", "main", "java", "compat", "Harness.java")
        classes = os.path.join(TARGET, "java-classes")
        if not newer(os.path.join(classes, "compat", "Harness.class"), src, cp_file):
            run(["javac", "-Xlint:all", "-Werror", "-d", classes, "-cp", cp, src])
        self.version = [p for p in cp.split(os.pathsep) if "/msal4j/" in p][0].split("/msal4j/")[1].split("/")[0]
        return ["java", "-XX:TieredStopAtLevel=1", "-Xshare:auto", "-cp", classes + os.pathsep + cp, "compat.Harness"], {}


PEERS = {"python": PythonPeer, "node": NodePeer, "go": GoPeer, "java": JavaPeer}


# --------------------------------------------------------------------------- identity of entries

def _s(entry, field):
    v = entry.get(field)
    return v.lower() if isinstance(v, str) else ("" if v is None else str(v))


def identity(section, entry, rt_key_has_target, hash_fields):
    """What makes an entry the same item for an SDK (its key, stripped of the key's
    spelling): two entries with equal identities under two keys are duplicates."""
    if not isinstance(entry, dict):
        return None
    hid, env = _s(entry, "home_account_id"), _s(entry, "environment")
    if env in fake_aad.ALIASES:  # every SDK finds an entry by any alias of its authority
        env = fake_aad.ALIASES[0]
    ah = next((entry[f] for f in hash_fields if entry.get(f)), "")
    if section == "AccessToken":
        target = " ".join(sorted(set(_s(entry, "target").split())))
        tt = _s(entry, "token_type")
        return (hid, env, _s(entry, "credential_type"), _s(entry, "client_id"), _s(entry, "realm"), target, ah,
                "" if tt in ("", "bearer") else tt, _s(entry, "key_id") or _s(entry, "keyid") or _s(entry, "kid"),
                _s(entry, "ext_cache_key") or _s(entry, "requestedClaimsHash"))
    if section == "RefreshToken":
        who = _s(entry, "family_id") or _s(entry, "client_id")
        target = " ".join(sorted(set(_s(entry, "target").split()))) if rt_key_has_target else ""
        return (hid, env, who, ah, target)
    if section == "IdToken":
        return (hid, env, _s(entry, "client_id"), _s(entry, "realm"))
    if section == "Account":
        return (hid, env, _s(entry, "realm"))
    if section == "AppMetadata":
        return (env, _s(entry, "client_id"))
    return None


NAMES = {ALICE.home_account_id: "<alice>", HOME: "<home>", GUEST: "<guest>", PUBLIC_APP: "<app>",
         FAMILY_1: "<family-app-1>", FAMILY_2: "<family-app-2>", DAEMON: "<daemon>", WEB_API: "<web-api>"}


def short(key):
    """A cache key with our test ids replaced by names, for messages."""
    for long_id, name in NAMES.items():
        key = key.replace(long_id, name)
    return key


def duplicates(doc, peer):
    """Pairs of keys holding the same item, as the peer keys items and as we (msal Python) do."""
    found = {}
    for rt_target, hash_fields, who in ((peer.rt_key_has_target, peer.assertion_hash_fields, peer.short),
                                        (True, ("user_assertion_hash",), "tokencache")):
        for section in SECTIONS:
            seen = {}
            for key, entry in (doc.get(section) or {}).items():
                ident = identity(section, entry, rt_target, hash_fields)
                if ident is None:
                    continue
                if ident in seen:
                    found.setdefault((section, seen[ident], key), []).append(who)
                else:
                    seen[ident] = key
    return ["%s %r and %r (one item for %s)" % (s, short(a), short(b), " and ".join(w))
            for (s, a, b), w in sorted(found.items())]


# --------------------------------------------------------------------------- a cell

class CellFailure(Exception):
    pass


class Cell:
    """One peer x direction x scenario: runs steps, records checks and notes."""

    def __init__(self, suite, peer, proc, server, direction, scenario, mode="default"):
        self.suite, self.peer, self.proc, self.server = suite, peer, proc, server
        self.direction, self.scenario, self.mode = direction, scenario, mode
        # tokencache's command line: its default (SharingMode::Auto), sharing mode (On), or
        # msal Python's behaviour whatever the file holds (Off).
        self.tool = [suite.tool] + MODE_FLAGS[mode]
        self.dir = os.path.join(suite.work, peer.short, mode, "%s-%s" % (scenario, direction))
        os.makedirs(self.dir, exist_ok=True)
        self.checks = []  # (ok, text)
        self.limited = False  # a peer limitation cut the scenario short (see the notes)
        self.notes = []
        self.n = 0

    def path(self, name):
        return os.path.join(self.dir, name)

    def check(self, ok, text, kind="other"):
        """kind: what is checked, for matching failures to KNOWN findings."""
        self.checks.append((bool(ok), text, kind))
        return ok

    def note(self, text):
        if text not in self.notes:
            self.notes.append(text)

    # -- the peer
    def peer_op(self, app, action, cache_in=None, cache_out=None, respond=(), expect_token=None,
                expect_source="cache", expect_grant=None, expect_rt=None, what=None):
        """One operation of the peer. expect_source "cache": no request may reach the
        token endpoint; "network": exactly one, with expect_grant / expect_rt."""
        self.server.take_log()
        self.server.queue(*respond)
        op = {"cache_in": cache_in, "cache_out": cache_out, "app": app, "action": action,
              "sharing": self.mode == "sharing"}
        self.proc.stdin.write(json.dumps(op) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise CellFailure("the %s harness exited" % self.peer.short)
        reply = json.loads(line)
        log, unused = self.server.take_log()
        tokens = [r for r in log if r.get("kind") == "token"]
        what = what or "%s %s" % (action["type"], " ".join(action.get("scopes", [])))
        if not reply.get("ok"):
            self.check(False, "%s: %s error: %s" % (what, self.peer.short, reply.get("error")), "peer-error")
            raise CellFailure(reply.get("error"))
        if isinstance(expect_token, tuple):  # (preferred, also fine: what the peer's own duplicates make it pick)
            got = reply.get("access_token")
            self.check(got in expect_token, "%s: got %s, expected %s" % (what, got, " or ".join(expect_token)),
                       "peer-finds")
            if got != expect_token[0] and got in expect_token:
                self.note("%s serves %s, not its newer %s: its own renewal left the entry we wrote beside its own"
                          % (self.peer.name, got, expect_token[0]))
        elif expect_token is not None:
            self.check(reply.get("access_token") == expect_token, "%s: got %s, expected %s" % (
                what, reply.get("access_token"), expect_token), "peer-finds")
        if expect_source == "cache":
            self.check(not tokens, "%s: served from the cache (%d token-endpoint requests)" % (what, len(tokens)),
                       "peer-cache")
        elif expect_source == "network":
            ok = len(tokens) == 1 and not unused
            if ok and expect_grant:
                ok = tokens[0]["form"].get("grant_type") == expect_grant
            self.check(ok, "%s: one %s request to the token endpoint (%s)" % (
                what, expect_grant or "", ", ".join(t["form"].get("grant_type", "?") for t in tokens) or "none"),
                "peer-network")
            if expect_rt is not None and tokens:
                used = tokens[0]["form"].get("refresh_token")
                self.check(used == expect_rt, "%s: refreshed with %s, expected %s" % (what, used, expect_rt),
                           "refresh-rt")
        return reply

    # -- our side
    def us(self, load=None, events=(), save=None):
        """tokencache: load, then each step: an event to add(), or ("update-rt", query,
        new secret) as msal Python's refresh flow does after its add(); then save."""
        args = list(self.tool)
        if load:
            args += ["load", load]
        for step in events:
            if isinstance(step, tuple):
                args += ["update-rt", json.dumps(step[1]), step[2]]
                continue
            self.n += 1
            ev_path = self.path("events-%d.json" % self.n)
            with open(ev_path, "w") as f:
                json.dump([{"event": step, "now": int(time.time())}], f, indent=1)
            args += ["add", ev_path]
        if save:
            args += ["save", save]
        res = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if res.returncode != 0:
            self.check(False, "tokencache: %s" % res.stderr.strip())
            raise CellFailure(res.stderr.strip())

    def us_refresh(self, load, event, query, new_rt, save):
        """What msal Python's refresh flow does to the cache: of the RTs the query
        finds, the newest (last_modification_time) is the one redeemed; the response
        is add()ed without its RT, then update_rt() gives the redeemed RT the new one."""
        rts = self.us_search(load, "RefreshToken", [], query)
        self.check(rts, "tokencache finds an RT for %s" % json.dumps(query))
        if not rts:
            raise CellFailure("no RT")
        used = sorted(rts, key=lambda e: int(e.get("last_modification_time") or 0), reverse=True)[0]
        self.us(load=load, events=[event, ("update-rt", dict(query, secret=used["secret"]), new_rt)], save=save)
        return used["secret"]

    def us_search(self, path, section, target, query):
        res = subprocess.run(self.tool + ["load", path, "search", section, json.dumps(target), json.dumps(query)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if res.returncode != 0:
            self.check(False, "tokencache search: %s" % res.stderr.strip())
            raise CellFailure(res.stderr.strip())
        return json.loads(res.stdout)

    def us_finds(self, path, section, target, query, secret, what):
        found = [e.get("secret") for e in self.us_search(path, section, target, query)]
        self.check(secret in found, "tokencache finds %s %s (search returned %d: %s)" % (
            what, secret, len(found), ", ".join(map(str, found))), "us-finds")

    # -- file checks
    def load(self, path):
        with open(path, encoding="utf-8-sig") as f:
            return json.load(f)

    def check_kept(self, before_path, after_path, who, fail=True):
        """Every entry of before is in after under its key, JSON-equal, or renewed (a
        new token filed under the same key: its secret changed). `who` wrote `after`."""
        before, after = self.load(before_path), self.load(after_path)
        lost, changed = [], []
        for section, entries in before.items():
            if not isinstance(entries, dict) or section not in SECTIONS:
                if after.get(section) != entries:
                    lost.append("section %s" % section)
                continue
            for key, entry in entries.items():
                now = (after.get(section) or {}).get(key, "<absent>")
                if now == "<absent>":
                    lost.append("%s %r" % (section, short(key)))
                elif now != entry:
                    diff = sorted(k for k in set(entry) | set(now)
                                  if entry.get(k, "<absent>") != now.get(k, "<absent>"))
                    both = isinstance(entry, dict) and isinstance(now, dict)
                    renewed = both and "secret" in diff
                    # add() files an Account / AppMetadata as msal Python does: the
                    # whole entry replaced by the fields msal writes.
                    rewritten = both and section in ("Account", "AppMetadata") and all(
                        k not in now for k in diff)
                    if not (renewed or rewritten):
                        changed.append("%s %r (%s)" % (section, short(key), ", ".join(diff)))
                    elif set(diff) - RENEWABLE:
                        self.note("%s re-files %s %r whole: %s" % (who, section, short(key), ", ".join(
                            "%s %s -> %s" % (k, json.dumps(entry.get(k, "<absent>")), json.dumps(now.get(k, "<absent>")))
                            for k in diff if k not in RENEWABLE)))
        text = "%s keeps every entry it loaded, JSON-equal under its key (or renewed)" % who
        if fail:
            self.check(not lost and not changed, text + ("" if not (lost or changed) else ": lost %s; changed %s" % (
                lost or "none", changed or "none")), "kept")
        else:
            for x in lost:
                self.note("%s drops %s written before it" % (who, x))
            for x in changed:
                self.note("%s rewrites %s" % (who, x))

    def check_no_duplicates(self, path, who, fail=True):
        dups = duplicates(self.load(path), self.peer)
        if fail:
            self.check(not dups, "no duplicate entries after %s's save%s" % (who, (": " + "; ".join(dups)) if dups else ""),
                       "duplicates")
        else:
            for d in dups:
                self.note("after %s's save: %s" % (who, d))


# --------------------------------------------------------------------------- scenarios

def confidential(client_id, tenant=HOME):
    return {"kind": "confidential", "client_id": client_id, "authority": authority(tenant)}


def public(client_id, tenant=HOME):
    return {"kind": "public", "client_id": client_id, "authority": authority(tenant)}


def cc(scope):
    return {"type": "client_credentials", "scopes": [scope]}


def code(scopes):
    return {"type": "auth_code", "scopes": scopes, "code": "compat-code", "redirect_uri": REDIRECT}


def silent(scopes, user=ALICE, force=False, tenant=None):
    """acquire_token_silent for the user's account; tenant: for another tenant than
    the app's (the peers that take a per-request authority get it)."""
    a = {"type": "silent", "scopes": scopes, "home_account_id": user.home_account_id, "force_refresh": force}
    if tenant:
        a["authority"] = authority(tenant)
    return a


def obo(scopes, assertion=OBO_ASSERTION):
    return {"type": "obo", "scopes": scopes, "assertion": assertion}


def tok(c, kind, n):
    """A fake token value naming who issued it for what (never a real secret)."""
    return "%s.%s.%s.%s" % (kind, c.peer.short if n[0] == "P" else "tc", c.scenario, n)


RT_GRANT = "refresh_token"
OBO_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def client_credentials(c):
    app = confidential(DAEMON)
    f1, f2, f3 = c.path("1.json"), c.path("2.json"), c.path("3.json")
    if c.direction == "peer-first":
        c.peer_op(app, cc(GRAPH), cache_out=f1, respond=[app_response([GRAPH], tok(c, "at", "P1"))],
                  expect_token=tok(c, "at", "P1"), expect_source="network", expect_grant="client_credentials")
        c.us(load=f1, events=[cc_event(DAEMON, HOME, VAULT, tok(c, "at", "vault")),
                              cc_event(DAEMON, HOME, GRAPH, tok(c, "at", "graph-renewed"))], save=f2)
        c.check_kept(f1, f2, "tokencache")
        c.check_no_duplicates(f2, "tokencache")
        c.peer_op(app, cc(VAULT), cache_in=f2, expect_token=tok(c, "at", "vault"))
        c.peer_op(app, cc(GRAPH), cache_in=f2, expect_token=tok(c, "at", "graph-renewed"))
    else:
        c.us(events=[cc_event(DAEMON, HOME, GRAPH, tok(c, "at", "graph"))], save=f1)
        c.peer_op(app, cc(GRAPH), cache_in=f1, expect_token=tok(c, "at", "graph"))
        c.peer_op(app, cc(VAULT), cache_in=f1, cache_out=f2, respond=[app_response([VAULT], tok(c, "at", "P-vault"))],
                  expect_token=tok(c, "at", "P-vault"), expect_source="network", expect_grant="client_credentials")
        c.check_kept(f1, f2, c.peer.short, fail=False)
        c.check_no_duplicates(f2, c.peer.short, fail=False)
        q = {"client_id": DAEMON, "realm": HOME}
        c.us_finds(f2, "AccessToken", [VAULT], q, tok(c, "at", "P-vault"), "the peer's token")
        c.us_finds(f2, "AccessToken", [GRAPH], q, tok(c, "at", "graph"), "its own token")
        c.us(load=f2, save=f3)
        c.check_kept(f2, f3, "tokencache")
        c.peer_op(app, cc(VAULT), cache_in=f3, expect_token=tok(c, "at", "P-vault"))
        c.peer_op(app, cc(GRAPH), cache_in=f3, expect_token=tok(c, "at", "graph"))


def _user_resp(c, client_id, tenant, scopes, at, rt, foci=None):
    return user_response(ALICE, client_id, tenant, scopes + OIDC, tok(c, "at", at), rt=tok(c, "rt", rt), foci=foci)


def user_rt(c):
    app = public(PUBLIC_APP)
    hid = ALICE.home_account_id
    f1, f2, f3 = c.path("1.json"), c.path("2.json"), c.path("3.json")
    if c.direction == "peer-first":
        c.peer_op(app, code(["User.Read"]), cache_out=f1, respond=[_user_resp(c, PUBLIC_APP, HOME, ["User.Read"], "P1", "P1")],
                  expect_token=tok(c, "at", "P1"), expect_source="network", expect_grant="authorization_code")
        # The refresh an msal Python app sharing the file makes: a new scope, a rotated RT.
        c.us_refresh(f1, user_event(PUBLIC_APP, HOME, ["Mail.Read"], tok(c, "at", "mail"), None, grant=RT_GRANT),
                     {"home_account_id": hid, "client_id": PUBLIC_APP}, tok(c, "rt", "2"), f2)
        c.check_kept(f1, f2, "tokencache")
        c.check_no_duplicates(f2, "tokencache")
        c.peer_op(app, silent(["Mail.Read"]), cache_in=f2, expect_token=tok(c, "at", "mail"))
        c.peer_op(app, silent(["User.Read"]), cache_in=f2, expect_token=tok(c, "at", "P1"))
        c.peer_op(app, silent(["User.Read"], force=True), cache_in=f2,
                  respond=[_user_resp(c, PUBLIC_APP, HOME, ["User.Read"], "P3", "P3")], expect_token=tok(c, "at", "P3"),
                  expect_source="network", expect_grant=RT_GRANT, expect_rt=tok(c, "rt", "2"),
                  what="force-refresh User.Read (with the newest RT, ours)")
    else:
        c.us(events=[user_event(PUBLIC_APP, HOME, ["User.Read"], tok(c, "at", "1"), tok(c, "rt", "1"))], save=f1)
        c.peer_op(app, silent(["User.Read"]), cache_in=f1, expect_token=tok(c, "at", "1"))
        c.peer_op(app, silent(["User.Read"], force=True), cache_in=f1, cache_out=f2,
                  respond=[_user_resp(c, PUBLIC_APP, HOME, ["User.Read"], "P2", "P2")], expect_token=tok(c, "at", "P2"),
                  expect_source="network", expect_grant=RT_GRANT, expect_rt=tok(c, "rt", "1"),
                  what="force-refresh User.Read (with our RT)")
        c.check_kept(f1, f2, c.peer.short, fail=False)
        c.check_no_duplicates(f2, c.peer.short, fail=False)
        c.us_finds(f2, "AccessToken", ["User.Read"], {"client_id": PUBLIC_APP, "home_account_id": hid},
                   tok(c, "at", "P2"), "the peer's token")
        c.us_finds(f2, "RefreshToken", [], {"client_id": PUBLIC_APP, "home_account_id": hid},
                   tok(c, "rt", "P2"), "the peer's RT")
        c.us(load=f2, save=f3)
        c.check_kept(f2, f3, "tokencache")
        c.peer_op(app, silent(["User.Read"]), cache_in=f3, expect_token=(tok(c, "at", "P2"), tok(c, "at", "1")))


def foci(c):
    a1, a2 = public(FAMILY_1), public(FAMILY_2)
    hid = ALICE.home_account_id
    f1, f2, f3 = c.path("1.json"), c.path("2.json"), c.path("3.json")
    if c.direction == "peer-first":
        c.peer_op(a1, code(["User.Read"]), cache_out=f1,
                  respond=[_user_resp(c, FAMILY_1, HOME, ["User.Read"], "P1", "P1", foci="1")],
                  expect_token=tok(c, "at", "P1"), expect_source="network", expect_grant="authorization_code")
        # An msal Python family app redeems the family RT: its response is a new FRT.
        c.us_refresh(f1, user_event(FAMILY_2, HOME, ["Mail.Read"], tok(c, "at", "f2-mail"), None, grant=RT_GRANT,
                                    foci="1"),
                     {"home_account_id": hid, "family_id": "1"}, tok(c, "rt", "frt2"), f2)
        c.check_kept(f1, f2, "tokencache")
        c.check_no_duplicates(f2, "tokencache")
        c.peer_op(a2, silent(["Mail.Read"]), cache_in=f2, expect_token=tok(c, "at", "f2-mail"))
        c.peer_op(a1, silent(["User.Read"]), cache_in=f2, expect_token=tok(c, "at", "P1"))
        c.peer_op(a1, silent(["Files.Read"]), cache_in=f2,
                  respond=[_user_resp(c, FAMILY_1, HOME, ["Files.Read"], "P3", "P3", foci="1")],
                  expect_token=tok(c, "at", "P3"), expect_source="network", expect_grant=RT_GRANT,
                  expect_rt=tok(c, "rt", "frt2"), what="app 1 redeems the family RT (the newest, ours)")
    else:
        f0 = c.path("0.json")
        c.us(events=[user_event(FAMILY_1, HOME, ["User.Read"], tok(c, "at", "1"), tok(c, "rt", "frt1"), foci="1")],
             save=f0)
        # App 2 joins with app 1's family RT, as msal Python does it (msal-node only
        # redeems a family RT for an app whose AppMetadata says it is in the family).
        c.us_refresh(f0, user_event(FAMILY_2, HOME, ["Files.Read"], tok(c, "at", "2"), None, grant=RT_GRANT, foci="1"),
                     {"home_account_id": hid, "family_id": "1"}, tok(c, "rt", "frt2"), f1)
        c.peer_op(a1, silent(["User.Read"]), cache_in=f1, expect_token=tok(c, "at", "1"))
        c.peer_op(a2, silent(["Files.Read"]), cache_in=f1, expect_token=tok(c, "at", "2"))
        # The family RT's client_id is app 1's: msal-node redeems it only as app 1.
        (ra, rid) = (a2, FAMILY_2) if c.peer.foci_cross_app else (a1, FAMILY_1)
        if not c.peer.foci_cross_app:
            c.note("%s redeems a family RT only for the app whose client_id it carries (its RT filter "
                   "matches client_id and family_id), so app 2 cannot use app 1's family RT" % c.peer.name)
        c.peer_op(ra, silent(["Mail.Read"]), cache_in=f1, cache_out=f2,
                  respond=[_user_resp(c, rid, HOME, ["Mail.Read"], "P2", "P2", foci="1")],
                  expect_token=tok(c, "at", "P2"), expect_source="network", expect_grant=RT_GRANT,
                  expect_rt=tok(c, "rt", "frt2"), what="app %s redeems our family RT" % rid[-1])
        c.check_kept(f1, f2, c.peer.short, fail=False)
        c.check_no_duplicates(f2, c.peer.short, fail=False)
        c.us_finds(f2, "AccessToken", ["Mail.Read"], {"client_id": rid, "home_account_id": hid},
                   tok(c, "at", "P2"), "the peer's token")
        c.us_finds(f2, "RefreshToken", [], {"family_id": "1", "home_account_id": hid}, tok(c, "rt", "P2"),
                   "the peer's family RT")
        c.us(load=f2, save=f3)
        c.check_kept(f2, f3, "tokencache")
        c.peer_op(ra, silent(["Mail.Read"]), cache_in=f3, expect_token=tok(c, "at", "P2"))
        c.peer_op(a1, silent(["User.Read"]), cache_in=f3, expect_token=tok(c, "at", "1"))


def _one_account(c, reply, who):
    """The peer lists Alice, and no tenant of hers twice (say under two environments)."""
    mine = [a for a in reply.get("accounts", []) if a.get("home_account_id") == ALICE.home_account_id]
    tenants = [a.get("tenant_id") for a in mine]
    c.check(mine and len(tenants) == len(set(tenants)), "%s lists Alice, each tenant once (got %s)" % (
        who, ", ".join("%s/%s" % (a.get("environment"), a.get("tenant_id")) for a in mine) or "none"))


def multi_tenant(c):
    home, guest = public(PUBLIC_APP, HOME), public(PUBLIC_APP, GUEST)
    hid = ALICE.home_account_id
    f1, f2, f3, f4 = (c.path("%d.json" % i) for i in range(1, 5))
    if c.direction == "peer-first":
        c.peer_op(home, code(["User.Read"]), cache_out=f1,
                  respond=[_user_resp(c, PUBLIC_APP, HOME, ["User.Read"], "P-home", "P1")],
                  expect_token=tok(c, "at", "P-home"), expect_source="network", expect_grant="authorization_code")
        c.peer_op(guest, silent(["User.Read"], tenant=GUEST), cache_in=f1, cache_out=f2,
                  respond=[_user_resp(c, PUBLIC_APP, GUEST, ["User.Read"], "P-guest", "P2")],
                  expect_token=tok(c, "at", "P-guest"), expect_source="network", expect_grant=RT_GRANT,
                  what="guest-tenant User.Read")
        f2b = c.path("2b.json")
        rtq = {"home_account_id": hid, "client_id": PUBLIC_APP}
        c.us_refresh(f2, user_event(PUBLIC_APP, GUEST, ["Mail.Read"], tok(c, "at", "guest-mail"), None, grant=RT_GRANT),
                     rtq, tok(c, "rt", "3"), f2b)
        c.us_refresh(f2b, user_event(PUBLIC_APP, HOME, ["Mail.Read"], tok(c, "at", "home-mail"), None, grant=RT_GRANT),
                     rtq, tok(c, "rt", "4"), f3)
        c.check_kept(f2, f3, "tokencache")
        c.check_no_duplicates(f3, "tokencache")
        c.peer_op(guest, silent(["Mail.Read"], tenant=GUEST), cache_in=f3, expect_token=tok(c, "at", "guest-mail"))
        c.peer_op(home, silent(["Mail.Read"], tenant=HOME), cache_in=f3, expect_token=tok(c, "at", "home-mail"))
        c.peer_op(guest, silent(["User.Read"], tenant=GUEST), cache_in=f3, expect_token=tok(c, "at", "P-guest"))
        r = c.peer_op(home, silent(["User.Read"], tenant=HOME), cache_in=f3, expect_token=tok(c, "at", "P-home"))
        _one_account(c, r, c.peer.short)
    else:
        f0 = c.path("0.json")
        c.us(events=[user_event(PUBLIC_APP, HOME, ["User.Read"], tok(c, "at", "home"), tok(c, "rt", "1"))], save=f0)
        c.us_refresh(f0, user_event(PUBLIC_APP, GUEST, ["User.Read"], tok(c, "at", "guest"), None, grant=RT_GRANT),
                     {"home_account_id": hid, "client_id": PUBLIC_APP}, tok(c, "rt", "2"), f1)
        r = c.peer_op(home, silent(["User.Read"], tenant=HOME), cache_in=f1, expect_token=tok(c, "at", "home"))
        _one_account(c, r, c.peer.short)
        c.peer_op(guest, silent(["User.Read"], tenant=GUEST), cache_in=f1, expect_token=tok(c, "at", "guest"))
        c.peer_op(guest, silent(["Mail.Read"], tenant=GUEST), cache_in=f1, cache_out=f2,
                  respond=[_user_resp(c, PUBLIC_APP, GUEST, ["Mail.Read"], "P-guest-mail", "P3")],
                  expect_token=tok(c, "at", "P-guest-mail"), expect_source="network", expect_grant=RT_GRANT,
                  expect_rt=tok(c, "rt", "2"), what="guest-tenant Mail.Read (with our newest RT)")
        c.check_kept(f1, f2, c.peer.short, fail=False)
        c.check_no_duplicates(f2, c.peer.short, fail=False)
        c.us_finds(f2, "AccessToken", ["Mail.Read"], {"client_id": PUBLIC_APP, "home_account_id": hid, "realm": GUEST},
                   tok(c, "at", "P-guest-mail"), "the peer's guest-tenant token")
        c.us(load=f2, save=f3)
        c.check_kept(f2, f3, "tokencache")
        c.peer_op(guest, silent(["Mail.Read"], tenant=GUEST), cache_in=f3, expect_token=tok(c, "at", "P-guest-mail"))
        c.peer_op(home, silent(["User.Read"], tenant=HOME), cache_in=f3, expect_token=tok(c, "at", "home"))


def on_behalf_of(c):
    api = confidential(WEB_API)
    hid = ALICE.home_account_id
    f1, f2, f3 = c.path("1.json"), c.path("2.json"), c.path("3.json")
    graph = ["https://graph.microsoft.com/User.Read"]
    vault = ["https://vault.azure.net/user_impersonation"]
    if not c.peer.obo_persisted:
        c.note("%s keeps OBO tokens in its partitioned in-memory store, which it never exports (AuthResultFromToken "
               "Replace()s the partitioned manager but Export()s the unpartitioned one) and reads back in its own "
               "non-unified shape: its OBO tokens never reach the file, so only the account-based half of this "
               "cell applies" % c.peer.name)
        c.limited = True
    if c.direction == "peer-first":
        c.peer_op(api, obo(graph), cache_out=f1, respond=[_user_resp(c, WEB_API, HOME, graph, "P1", "P1")],
                  expect_token=tok(c, "at", "P1"), expect_source="network", expect_grant=OBO_GRANT)
        # msal Python's acquire_token_on_behalf_of: the response cached by the account.
        c.us(load=f1, events=[user_event(WEB_API, HOME, vault, tok(c, "at", "vault"), tok(c, "rt", "2"),
                                         grant=OBO_GRANT)], save=f2)
        c.check_kept(f1, f2, "tokencache")
        c.check_no_duplicates(f2, "tokencache")
        if c.peer.obo_from_cache:
            c.peer_op(api, obo(graph), cache_in=f2, expect_token=tok(c, "at", "P1"),
                      what="OBO graph for the same assertion")
        elif c.peer.obo_persisted:
            c.note("%s's acquire_token_on_behalf_of never reads the cache" % c.peer.name)
        c.peer_op(api, silent(vault), cache_in=f2, expect_token=tok(c, "at", "vault"),
                  what="silent vault for the OBO user's account")
        _obo_lookup_note(c, api, vault, f2, tok(c, "at", "vault"))
    else:
        c.us(events=[user_event(WEB_API, HOME, graph, tok(c, "at", "graph"), tok(c, "rt", "1"), grant=OBO_GRANT)],
             save=f1)
        c.peer_op(api, silent(graph), cache_in=f1, expect_token=tok(c, "at", "graph"),
                  what="silent graph for the OBO user's account")
        _obo_lookup_note(c, api, graph, f1, tok(c, "at", "graph"))
        c.peer_op(api, obo(vault), cache_in=f1, cache_out=f2, respond=[_user_resp(c, WEB_API, HOME, vault, "P2", "P2")],
                  expect_token=tok(c, "at", "P2"), expect_source="network", expect_grant=OBO_GRANT)
        c.check_kept(f1, f2, c.peer.short, fail=False)
        c.check_no_duplicates(f2, c.peer.short, fail=False)
        if not c.peer.obo_persisted:
            return
        doc = c.load(f2)
        fields = sorted({f for e in (doc.get("AccessToken") or {}).values() if isinstance(e, dict)
                         for f in ("user_assertion_hash", "userAssertionHash") if e.get(f)})
        q = {"client_id": WEB_API}
        if fields:
            q[fields[0]] = assertion_hash(OBO_ASSERTION)
            c.note("%s files OBO tokens with %s = base64url(sha256(assertion))" % (c.peer.name, fields[0]))
        else:
            q["home_account_id"] = hid
        c.us_finds(f2, "AccessToken", vault, q, tok(c, "at", "P2"), "the peer's OBO token")
        c.us(load=f2, save=f3)
        c.check_kept(f2, f3, "tokencache")
        if c.peer.obo_from_cache:
            c.peer_op(api, obo(vault), cache_in=f3, expect_token=tok(c, "at", "P2"), what="OBO vault, same assertion")
        else:
            c.peer_op(api, silent(vault), cache_in=f3, expect_token=tok(c, "at", "P2"))


def _obo_lookup_note(c, api, scopes, path, ours):
    """Whether the peer's OBO call finds the msal-Python-style OBO token we wrote (no
    user_assertion_hash): recorded as a note, as it is the SDKs' difference."""
    if not c.peer.obo_from_cache:
        return
    c.server.take_log()
    c.server.queue(_user_resp(c, WEB_API, HOME, scopes, "probe", "probe"))
    c.proc.stdin.write(json.dumps({"cache_in": path, "cache_out": None, "app": api, "action": obo(scopes)}) + "\n")
    c.proc.stdin.flush()
    reply = json.loads(c.proc.stdout.readline())
    log, _ = c.server.take_log()
    if reply.get("access_token") != ours:
        c.note("%s's OBO call does not find OBO tokens msal Python wrote (they have no user_assertion_hash): "
               "it asks the token endpoint again (%d request)" % (c.peer.name, sum(1 for r in log if r.get("kind") == "token")))


STORAGE = "https://storage.azure.com/.default"


def unknown_fields(c):
    """Data no SDK knows (a future section, future fields in an entry): tokencache
    keeps it; the peer still reads the file (what the peer keeps of it is a note)."""
    app = confidential(DAEMON)
    f1, f1x, f1y, f2, f3 = (c.path(n) for n in ("1.json", "1x.json", "1y.json", "2.json", "3.json"))

    def inject(src, dst):
        doc = c.load(src)
        doc["FutureSection"] = {"k": {"a": [1, 2, {"b": None}]}, "n": None}
        for entry in (doc.get("AccessToken") or {}).values():
            if isinstance(entry, dict) and entry.get("secret"):
                entry["x_future_field"] = {"nested": ["v", 1]}
                entry["x_future_string"] = "caf\u00e9 \U0001f600"
        for entry in (doc.get("AppMetadata") or {}).values():
            entry["x_future_flag"] = True
        with open(dst, "w", encoding="utf-8") as f:
            json.dump(doc, f)

    if c.direction == "peer-first":
        c.peer_op(app, cc(GRAPH), cache_out=f1, respond=[app_response([GRAPH], tok(c, "at", "P1"))],
                  expect_token=tok(c, "at", "P1"), expect_source="network", expect_grant="client_credentials")
        inject(f1, f1x)
        # The peer's own round trip of what it does not know (a note, not ours to judge).
        c.peer_op(app, cc(VAULT), cache_in=f1x, cache_out=f1y, respond=[app_response([VAULT], tok(c, "at", "P2"))],
                  expect_token=tok(c, "at", "P2"), expect_source="network", expect_grant="client_credentials")
        c.check_kept(f1x, f1y, c.peer.short, fail=False)
        c.us(load=f1x, events=[cc_event(DAEMON, HOME, STORAGE, tok(c, "at", "storage"))], save=f2)
        c.check_kept(f1x, f2, "tokencache")
        c.check_no_duplicates(f2, "tokencache")
        c.peer_op(app, cc(STORAGE), cache_in=f2, expect_token=tok(c, "at", "storage"))
        c.peer_op(app, cc(GRAPH), cache_in=f2, expect_token=tok(c, "at", "P1"))
    else:
        c.us(events=[cc_event(DAEMON, HOME, GRAPH, tok(c, "at", "graph"))], save=f1)
        inject(f1, f1x)
        c.us(load=f1x, save=f1y)
        c.check_kept(f1x, f1y, "tokencache")
        c.peer_op(app, cc(GRAPH), cache_in=f1y, expect_token=tok(c, "at", "graph"))
        c.peer_op(app, cc(VAULT), cache_in=f1y, cache_out=f2, respond=[app_response([VAULT], tok(c, "at", "P-vault"))],
                  expect_token=tok(c, "at", "P-vault"), expect_source="network", expect_grant="client_credentials")
        c.check_kept(f1y, f2, c.peer.short, fail=False)
        c.us_finds(f2, "AccessToken", [VAULT], {"client_id": DAEMON}, tok(c, "at", "P-vault"), "the peer's token")
        c.us(load=f2, save=f3)
        c.check_kept(f2, f3, "tokencache")
        c.peer_op(app, cc(VAULT), cache_in=f3, expect_token=tok(c, "at", "P-vault"))
        _garbage_entry_note(c, app, f3)


def _garbage_entry_note(c, app, path):
    """MSAL Go's own test cache has a non-credential entry ("an-entry": {"foo": "bar"})
    in AccessToken; tokencache keeps it. Whether the peer copes is a note."""
    doc = c.load(path)
    doc["AccessToken"]["an-entry"] = {"foo": "bar"}
    probe = c.path("garbage.json")
    with open(probe, "w", encoding="utf-8") as f:
        json.dump(doc, f)
    c.server.take_log()
    c.server.queue(app_response([STORAGE], tok(c, "at", "probe")))
    c.proc.stdin.write(json.dumps({"cache_in": probe, "cache_out": None, "app": app, "action": cc(STORAGE)}) + "\n")
    c.proc.stdin.flush()
    reply = json.loads(c.proc.stdout.readline())
    c.server.take_log()
    if not reply.get("ok"):
        c.note("%s fails on a file with a non-credential entry in AccessToken (as in MSAL Go's test cache, "
               "\"an-entry\": {\"foo\": \"bar\"}): %s" % (c.peer.name, reply.get("error")))


SCENARIO_FNS = {"client_credentials": client_credentials, "user_rt": user_rt, "foci": foci,
                "multi_tenant": multi_tenant, "obo": on_behalf_of, "unknown_fields": unknown_fields}


# --------------------------------------------------------------------------- known incompatibilities
# Incompatibilities this suite found between tokencache's files and a peer, kept here
# until they are fixed: a cell that fails only in the ways its findings explain is
def turns(py, node):
    """msal Python (its cache in tokencache, sharing mode) and msal-node take turns on
    one file, each app serving the other's app and user tokens from the cache (issue 8,
    part 4). py and node are Cells on one fake AAD; the file is one path."""
    f = py.path("shared.json")
    daemon, user_app = confidential(DAEMON), public(PUBLIC_APP)
    hid = ALICE.home_account_id

    def no_duplicates(who):
        for c in (py, node):
            dups = duplicates(py.load(f), c.peer)
            py.check(not dups, "no duplicates for %s after %s's save%s" % (
                c.peer.short, who, (": " + "; ".join(dups)) if dups else ""), "duplicates")

    # App-only tokens: node first, then Python serves node's and adds its own, then node serves both.
    node.peer_op(daemon, cc(GRAPH), cache_out=f, respond=[app_response([GRAPH], tok(node, "at", "P-graph"))],
                 expect_token=tok(node, "at", "P-graph"), expect_source="network", expect_grant="client_credentials")
    py.peer_op(daemon, cc(GRAPH), cache_in=f, cache_out=f, expect_token=tok(node, "at", "P-graph"),
               what="python serves node's app token")
    py.peer_op(daemon, cc(VAULT), cache_in=f, cache_out=f, respond=[app_response([VAULT], tok(py, "at", "P-vault"))],
               expect_token=tok(py, "at", "P-vault"), expect_source="network", expect_grant="client_credentials")
    no_duplicates("python")
    node.peer_op(daemon, cc(VAULT), cache_in=f, cache_out=f, expect_token=tok(py, "at", "P-vault"),
                 what="node serves python's app token")
    node.peer_op(daemon, cc(GRAPH), cache_in=f, cache_out=f, expect_token=tok(node, "at", "P-graph"))
    # User tokens: Python signs in, node serves them and refreshes for a new scope, Python serves node's.
    py.peer_op(user_app, code(["User.Read"]), cache_in=f, cache_out=f,
               respond=[user_response(ALICE, PUBLIC_APP, HOME, ["User.Read"] + OIDC, tok(py, "at", "P-user"),
                                      rt=tok(py, "rt", "P1"))],
               expect_token=tok(py, "at", "P-user"), expect_source="network", expect_grant="authorization_code")
    node.peer_op(user_app, silent(["User.Read"]), cache_in=f, cache_out=f, expect_token=tok(py, "at", "P-user"),
                 what="node serves python's user token")
    node.peer_op(user_app, silent(["Mail.Read"]), cache_in=f, cache_out=f,
                 respond=[user_response(ALICE, PUBLIC_APP, HOME, ["Mail.Read"] + OIDC, tok(node, "at", "P-mail"),
                                        rt=tok(node, "rt", "P2"))],
                 expect_token=tok(node, "at", "P-mail"), expect_source="network", expect_grant=RT_GRANT,
                 expect_rt=tok(py, "rt", "P1"), what="node refreshes with python's RT")
    no_duplicates("node")
    py.peer_op(user_app, silent(["Mail.Read"]), cache_in=f, cache_out=f, expect_token=tok(node, "at", "P-mail"),
               what="python serves node's user token")
    py.peer_op(user_app, silent(["Mail.Read"], force=True), cache_in=f, cache_out=f,
               respond=[user_response(ALICE, PUBLIC_APP, HOME, ["Mail.Read"] + OIDC, tok(py, "at", "P-mail2"),
                                      rt=tok(py, "rt", "P3"))],
               expect_token=tok(py, "at", "P-mail2"), expect_source="network", expect_grant=RT_GRANT,
               expect_rt=tok(node, "rt", "P2"), what="python refreshes with node's RT")
    no_duplicates("python")
    node.peer_op(user_app, silent(["Mail.Read"]), cache_in=f, expect_token=tok(py, "at", "P-mail2"),
                 what="node serves python's renewed token")
    node.peer_op(daemon, cc(VAULT), cache_in=f, expect_token=tok(py, "at", "P-vault"))
    del hid


# reported as "known incompatibility" and does not fail the run (COMPAT_STRICT=1 or
# --strict makes it fail); a listed cell that passes fails the run, so the list is
# tokencache's modes in the matrix, with compat_tool's flag for each.
MODE_FLAGS = {"default": [], "sharing": ["--sharing"], "off": ["--sharing-off"]}

# pruned when a fix lands. Each finding: what it explains (check kinds) and where.

KNOWN = {
    "F1": {
        "title": "app-only tokens carry \"home_account_id\": null, which msal-node cannot match",
        "text": "tokencache writes app-only access tokens (client credentials) with \"home_account_id\": null, "
                "byte for byte as msal Python does. msal-node's client-credential lookup filters on "
                "homeAccountId \"\" and its matchHomeAccountId() requires a string (CacheManager.ts: "
                "typeof entity.homeAccountId === \"string\"), so it never serves them: it asks the token endpoint "
                "instead. MSAL Go (omits the field) and msal4j read them.",
        "kinds": {"peer-error", "peer-finds", "peer-cache"},
        "cells": {"off": [("node", "client_credentials", "peer-first"), ("node", "client_credentials", "us-first"),
                          ("node", "unknown_fields", "peer-first"), ("node", "unknown_fields", "us-first")],
                  # A file only tokencache has written shows no other SDK: auto keeps msal Python's null.
                  "default": [("node", "client_credentials", "us-first"), ("node", "unknown_fields", "us-first")]},
    },
    "F2": {
        "title": "add() / update_rt() file a renewed item under msal Python's key beside the peer's copy",
        "text": "tokencache's add() and update_rt() (as msal Python's) file an entry under the key msal Python "
                "computes from its fields, with the event's environment (the authority host, "
                "login.microsoftonline.com). An item the peer filed under its own key style (RT: msal-node "
                "'-refreshtoken-<client>---', MSAL Go '-refreshtoken-<client>', family RTs '-refreshtoken-1...'; "
                "IdToken: MSAL Go without the trailing '-', msal-node '--') or under its preferred_cache alias "
                "(msal-node and msal4j write login.windows.net) stays as it was, so the file holds the item twice: "
                "the peer then refreshes with its own stale RT or serves its older access token.",
        "kinds": {"duplicates", "refresh-rt", "peer-finds"},
        "cells": {"off": [("node", "client_credentials", "peer-first"), ("node", "user_rt", "peer-first"),
                          ("node", "foci", "peer-first"), ("node", "multi_tenant", "peer-first"),
                          ("node", "obo", "peer-first"), ("go", "user_rt", "peer-first"),
                          ("go", "foci", "peer-first"), ("go", "multi_tenant", "peer-first"),
                          ("java", "client_credentials", "peer-first"), ("java", "user_rt", "peer-first"),
                          ("java", "foci", "peer-first"), ("java", "multi_tenant", "peer-first"),
                          ("java", "obo", "peer-first")]},
    },
}


def known_for(mode, peer, scenario, direction):
    return [f for f, k in KNOWN.items() if (peer, scenario, direction) in k["cells"].get(mode, ())]


# --------------------------------------------------------------------------- the suite

class Suite:
    def __init__(self, args):
        self.args = args
        self.work = os.path.join(TARGET, "run")
        self.tool = None

    def build_tool(self):
        cargo = os.environ.get("CARGO", "cargo")
        run([cargo, "build", "--quiet", "-p", "tokencache", "--example", "compat_tool"], cwd=ROOT)
        target_dir = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
        self.tool = os.path.join(target_dir, "debug", "examples", "compat_tool")

    def run_peer(self, key):
        peer = PEERS[key]()
        started = time.time()
        try:
            peer.check_toolchain()
            cmd, extra_env = peer.setup()
        except Skip as e:
            print("### SKIPPING PEER %s: %s" % (peer.name, e), flush=True)
            return peer, None, str(e), time.time() - started
        setup_s = time.time() - started
        cells = []
        with fake_aad.FakeAAD() as server:
            env = dict(os.environ, COMPAT_FAKE_AAD=server.url, **extra_env)
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
                                    cwd=os.path.dirname(cmd[-1]) if key != "java" else HERE)
            try:
                for mode, scenario, direction in itertools.product(self.args.modes, self.args.scenarios, DIRECTIONS):
                    if True:
                        cell = Cell(self, peer, proc, server, direction, scenario, mode)
                        try:
                            SCENARIO_FNS[scenario](cell)
                        except CellFailure:
                            pass
                        except Exception:
                            cell.check(False, "driver error: " + traceback.format_exc(limit=3).strip().splitlines()[-1],
                                       "driver")
                        cells.append(cell)
            finally:
                proc.stdin.close()
                proc.wait(timeout=30)
        return peer, cells, None, (time.time() - started, setup_s)

    def run_turns(self):
        """msal Python and msal-node taking turns on one file (sharing mode)."""
        started = time.time()
        peers = [PythonPeer(), NodePeer()]
        both = Peer()
        both.name, both.short = "msal (Python) + msal-node", "python+node"
        try:
            for p in peers:
                p.check_toolchain()
            setups = [p.setup() for p in peers]
        except Skip as e:
            print("### SKIPPING one-file turns of msal Python and msal-node: %s" % e, flush=True)
            return both, None, str(e), time.time() - started
        procs = []
        with fake_aad.FakeAAD() as server:
            try:
                cells = []
                for p, (cmd, extra_env) in zip(peers, setups):
                    env = dict(os.environ, COMPAT_FAKE_AAD=server.url, **extra_env)
                    procs.append(subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                                  env=env, cwd=os.path.dirname(cmd[-1])))
                    cells.append(Cell(self, p, procs[-1], server, "turns", "one_file", "sharing"))
                cells[1].dir = cells[0].dir
                try:
                    turns(*cells)
                except CellFailure:
                    pass
                except Exception:
                    cells[0].check(False, "driver error: " + traceback.format_exc(limit=3).strip().splitlines()[-1],
                                   "driver")
                # One cell: every check of both apps.
                cells[0].checks += cells[1].checks
                cells[0].notes += cells[1].notes
            finally:
                for proc in procs:
                    proc.stdin.close()
                    proc.wait(timeout=30)
        both.version = " / ".join(p.version for p in peers)
        return both, [cells[0]], None, (time.time() - started, 0.0)

    def main(self):
        t0 = time.time()
        shutil.rmtree(self.work, ignore_errors=True)
        os.makedirs(self.work)
        self.build_tool()
        results = []
        with concurrent.futures.ThreadPoolExecutor(max_workers=self.args.jobs) as pool:
            for res in pool.map(self.run_peer, self.args.peers):
                results.append(res)
        if "sharing" in self.args.modes and {"python", "node"} <= set(self.args.peers):
            results.append(self.run_turns())
        return self.report(results, time.time() - t0)

    def report(self, results, elapsed):
        failed = 0
        rows, findings, skipped, timings = [], [], [], []
        for peer, cells, skip, took in results:
            if skip:
                banner = "#" * 78
                print("%s\n### SKIPPED PEER: %s (%s)\n### its compatibility cells were NOT run on this machine\n%s"
                      % (banner, peer.name, skip, banner), flush=True)
                skipped.append((peer, skip))
                rows.append((peer.name, "-", "all", "all", "all", "SKIPPED (%s)" % skip))
                continue
            total, setup_s = took
            timings.append("%s %s: %.1f s (setup %.1f s)" % (peer.name, peer.version, total, setup_s))
            for cell in cells:
                ok = bool(cell.checks) and all(o for o, _, _ in cell.checks)
                known = known_for(cell.mode, peer.short, cell.scenario, cell.direction)
                allowed = set().union(*(KNOWN[f]["kinds"] for f in known)) if known else set()
                explained = known and not ok and all(o or kind in allowed for o, _, kind in cell.checks)
                if ok and known:
                    result, bad = "UNEXPECTED PASS (drop %s from KNOWN)" % ", ".join(known), True
                elif ok:
                    result, bad = ("pass (limited, see notes)" if cell.limited else "pass"), False
                elif explained:
                    result, bad = "known incompatibility (%s)" % ", ".join(known), self.args.strict
                else:
                    result, bad = "FAIL", True
                failed += 1 if bad else 0
                rows.append((peer.name, peer.version, cell.mode, cell.direction, cell.scenario, result))
                status = "FAIL" if bad else ("ok  " if ok else "known")
                print("%-5s %-14s %-8s %-8s %-10s %-18s (%d checks) %s" % (
                    status, peer.name, peer.version, cell.mode, cell.direction, cell.scenario, len(cell.checks),
                    "" if ok or not explained else "known: " + ", ".join(known)))
                for good, text, _ in cell.checks:
                    if not good or self.args.verbose:
                        print("       %s %s" % ("+" if good else "-", text))
                for n in cell.notes:
                    findings.append((peer.name, peer.version, cell.mode, cell.direction, cell.scenario, n))
                    if self.args.verbose:
                        print("       note: %s" % n)
        passed = sum(1 for r in rows if r[5].startswith("pass"))
        known_n = sum(1 for r in rows if r[5].startswith("known"))
        summary = "%d passed, %d failed" % (passed, failed) + (", %d skipped" % len(skipped) if skipped else "")
        if known_n:
            summary += " (%d more cells are known incompatibilities%s)" % (
                known_n, ", counted as failed: --strict" if self.args.strict else "")
        if self.args.report:
            self.write_report(rows, findings, skipped, timings, elapsed, summary)
        for t in timings:
            print("time: " + t)
        print("compat: %s" % summary)
        return 1 if failed else 0

    def write_report(self, rows, findings, skipped, timings, elapsed, summary):
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        out = ["# Compatibility with the MSAL libraries", "",
               "Generated by `make test-compat` (`tests/compat/driver.py`) on %s: %s in %.0f s." % (now, summary, elapsed),
               "Do not edit: the suite rewrites this file on every run.", "",
               "Each cell is a round trip through the real library, offline (a fake token endpoint and OpenID /",
               "instance-discovery documents on 127.0.0.1, reached through each SDK's public HTTP-client hook).",
               "*peer-first*: the peer signs in and saves; tokencache loads, adds tokens, saves; the peer loads that",
               "and acquires silently, getting our tokens and its own from the cache with no request to the token",
               "endpoint. *us-first*: tokencache saves first; the peer acquires silently from our file, acquires more",
               "and saves; tokencache loads it, finds the peer's tokens and saves; the peer acquires silently again.",
               "After each tokencache save, every entry the peer wrote is still there, JSON-equal under its key,",
               "and no item is filed twice under two key styles. See `tests/compat/README.md`.", "",
               "*mode* (README \"One cache file for every SDK\"): `default` is tokencache's Rust and C cache",
               "as it comes (`SharingMode::Auto`: msal Python's cache byte for byte until the file holds",
               "another SDK's entries, then sharing mode); `sharing` is sharing mode always (`On`), for files",
               "apps on other SDKs share; `off` is msal Python's behaviour whatever the file holds (`Off`,",
               "also the default of the Python classes, which are drop-ins for msal's), kept to show what",
               "the other two fix.", "",
               "| peer | version | mode | direction | scenario | result |", "|---|---|---|---|---|---|"]
        out += ["| %s | %s | %s | %s | %s | %s |" % r for r in rows]
        if skipped:
            out += ["", "**Skipped peers** (toolchain absent on the machine that ran the suite):", ""]
            out += ["- %s: %s" % (p.name, why) for p, why in skipped]
        out += ["", "## Known incompatibilities (`off` and `default` modes)", "",
                "Cells marked *known incompatibility* fail only in the ways these explain (`KNOWN` in",
                "`tests/compat/driver.py`); `make test-compat COMPAT_STRICT=1` counts them as failures.",
                "They are msal Python's own behaviour, which `off` keeps byte for byte. `default` keeps it only",
                "where nothing in the file shows another SDK yet (F1, us-first: tokencache writes an app token",
                "to a new file before msal-node ever has). `sharing` (no cell is a known incompatibility) is",
                "the fix for files that apps on other SDKs share.", ""]
        for fid, k in KNOWN.items():
            out.append("- **%s: %s.** %s Cells: %s." % (fid, k["title"], k["text"], "; ".join(
                "%s mode: %s" % (mode, ", ".join("%s %s/%s" % c for c in cells))
                for mode, cells in k["cells"].items())))
        out += ["", "## What the peers do to the file (observed in this run, not failures)", ""]
        if findings:
            grouped = {}
            for name, version, mode, direction, scenario, note in findings:
                grouped.setdefault((name, version, note), []).append("%s/%s/%s" % (mode, scenario, direction))
            for (name, version, note), where in grouped.items():
                out.append("- **%s %s**: %s (%s)" % (name, version, note, ", ".join(where)))
        else:
            out.append("- nothing")
        out += ["", "Run times: " + "; ".join(timings) + "." if timings else ""]
        with open(self.args.report, "w", encoding="utf-8") as f:
            f.write("\n".join(out).rstrip() + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--peers", default="python,node,go,java")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--report", default=None, help="write the matrix here (COMPATIBILITY.md)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--modes", default="default,sharing,off", help="tokencache modes to run: " + ", ".join(MODE_FLAGS))
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--strict", action="store_true", default=os.environ.get("COMPAT_STRICT") == "1",
                    help="count known incompatibilities as failures (also COMPAT_STRICT=1)")
    args = ap.parse_args()
    args.peers = [p for p in args.peers.split(",") if p]
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    args.modes = [m for m in args.modes.split(",") if m]
    return Suite(args).main()


if __name__ == "__main__":
    sys.exit(main())
