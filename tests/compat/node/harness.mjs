// msal-node peer of the tokencache compatibility suite (driven by ../driver.py).
//
// Reads one JSON operation per line on stdin, answers one JSON line on stdout:
//   {"cache_in": path|null, "cache_out": path|null,
//    "app": {"kind": "public"|"confidential", "client_id", "authority"},
//    "action": {"type": "client_credentials"|"auth_code"|"silent"|"obo"|"accounts", ...}}
// Each operation builds a fresh application, loads cache_in with the public
// TokenCache.deserialize(), runs one public acquire call and writes
// TokenCache.serialize() to cache_out. The network is msal-node's public
// `system.networkClient` hook, sending every request to the fake AAD on 127.0.0.1
// (COMPAT_FAKE_AAD) with the original host in a header: msal-node keeps its real
// authority https://login.microsoftonline.com/<tenant> and talks to nothing else.
import { readFileSync, writeFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { ConfidentialClientApplication, PublicClientApplication } from "@azure/msal-node";

const FAKE = process.env.COMPAT_FAKE_AAD;
if (!FAKE) throw new Error("COMPAT_FAKE_AAD is not set");

const loopback = {
    async send(url, method, options) {
        const u = new URL(url);
        const headers = { ...(options?.headers ?? {}), "X-Compat-Original-Host": u.host };
        const res = await fetch(FAKE + u.pathname + u.search, { method, headers, body: options?.body });
        const out = {};
        res.headers.forEach((v, k) => (out[k] = v));
        return { headers: out, body: await res.json(), status: res.status };
    },
    sendGetRequestAsync(url, options) {
        return this.send(url, "GET", options);
    },
    sendPostRequestAsync(url, options) {
        return this.send(url, "POST", options);
    },
};

function makeApp(app) {
    const config = {
        auth: { clientId: app.client_id, authority: app.authority },
        system: { networkClient: loopback },
    };
    if (app.kind === "confidential") {
        config.auth.clientSecret = "compat-client-secret";
        return new ConfidentialClientApplication(config);
    }
    return new PublicClientApplication(config);
}

function accountInfo(a) {
    return {
        home_account_id: a.homeAccountId,
        environment: a.environment,
        tenant_id: a.tenantId,
        username: a.username,
    };
}

// getAllAccounts() has one AccountInfo per tenant profile: take the one of the
// tenant asked for. msal-node looks tokens up in the realm of account.tenantId (not
// of the request's authority), so for a tenant the account has no profile in yet,
// the home profile is passed with that tenant, as msal's multi-tenant docs do.
async function findAccount(pca, homeAccountId, tenantId) {
    const all = await pca.getTokenCache().getAllAccounts();
    const mine = all.filter((a) => a.homeAccountId === homeAccountId);
    if (!mine.length) throw new Error(`no account ${homeAccountId} among ${all.length}`);
    const exact = mine.find((a) => a.tenantId === tenantId);
    if (exact || !tenantId) return exact ?? mine[0];
    return { ...mine[0], tenantId, idToken: undefined, idTokenClaims: undefined };
}

async function run(op) {
    const pca = makeApp(op.app);
    const cache = pca.getTokenCache();
    if (op.cache_in) cache.deserialize(readFileSync(op.cache_in, "utf8"));
    const a = op.action;
    let result;
    switch (a.type) {
        case "client_credentials":
            result = await pca.acquireTokenByClientCredential({ scopes: a.scopes });
            break;
        case "auth_code":
            result = await pca.acquireTokenByCode({ code: a.code, scopes: a.scopes, redirectUri: a.redirect_uri });
            break;
        case "silent": {
            const request = {
                account: await findAccount(pca, a.home_account_id, a.authority?.split("/").pop()),
                scopes: a.scopes,
                forceRefresh: !!a.force_refresh,
            };
            if (a.authority) request.authority = a.authority;
            result = await pca.acquireTokenSilent(request);
            break;
        }
        case "obo":
            result = await pca.acquireTokenOnBehalfOf({ oboAssertion: a.assertion, scopes: a.scopes });
            break;
        case "accounts":
            break;
        default:
            throw new Error(`unknown action ${a.type}`);
    }
    if (op.cache_out) writeFileSync(op.cache_out, cache.serialize());
    const out = { ok: true, accounts: (await cache.getAllAccounts()).map(accountInfo) };
    if (result) {
        out.access_token = result.accessToken;
        out.from_cache = result.fromCache;
        out.tenant_id = result.tenantId;
    }
    return out;
}

const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
    if (!line.trim()) continue;
    let reply;
    try {
        reply = await run(JSON.parse(line));
    } catch (e) {
        reply = { ok: false, error: `${e?.errorCode ?? e?.name ?? "Error"}: ${e?.errorMessage ?? e?.message ?? e}` };
    }
    process.stdout.write(JSON.stringify(reply) + "\n");
}
