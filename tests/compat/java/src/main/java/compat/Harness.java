// MSAL Java (msal4j) peer of the tokencache compatibility suite (driven by ../../../../../driver.py).
//
// Same line protocol as the other peers: one JSON operation per line on stdin, one JSON
// answer per line on stdout. Each operation builds a fresh application, loads cache_in
// with the public ITokenCache.deserialize(), runs one public acquire call and writes
// ITokenCache.serialize() to cache_out. The network is the public builder option
// httpClient(IHttpClient): it sends every request to the fake AAD on 127.0.0.1
// (COMPAT_FAKE_AAD) with the original host in a header, so msal4j keeps its real
// authority https://login.microsoftonline.com/<tenant>.
package compat;

import com.azure.json.JsonProviders;
import com.azure.json.JsonReader;
import com.azure.json.JsonWriter;
import com.microsoft.aad.msal4j.AuthorizationCodeParameters;
import com.microsoft.aad.msal4j.ClientCredentialFactory;
import com.microsoft.aad.msal4j.ClientCredentialParameters;
import com.microsoft.aad.msal4j.ConfidentialClientApplication;
import com.microsoft.aad.msal4j.HttpRequest;
import com.microsoft.aad.msal4j.HttpResponse;
import com.microsoft.aad.msal4j.IAccount;
import com.microsoft.aad.msal4j.IAuthenticationResult;
import com.microsoft.aad.msal4j.IHttpClient;
import com.microsoft.aad.msal4j.IHttpResponse;
import com.microsoft.aad.msal4j.OnBehalfOfParameters;
import com.microsoft.aad.msal4j.PublicClientApplication;
import com.microsoft.aad.msal4j.SilentParameters;
import com.microsoft.aad.msal4j.TokenSource;
import com.microsoft.aad.msal4j.UserAssertion;
import com.microsoft.aad.msal4j.AbstractClientApplicationBase;
import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.StringWriter;
import java.net.HttpURLConnection;
import java.net.URI;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;

public final class Harness {
    private static final String FAKE = System.getenv("COMPAT_FAKE_AAD");

    /** Every request goes to the fake AAD, whatever its URL. */
    static final class Loopback implements IHttpClient {
        @Override
        public IHttpResponse send(HttpRequest request) throws Exception {
            URL url = request.url();
            String local = FAKE + url.getPath() + (url.getQuery() != null ? "?" + url.getQuery() : "");
            HttpURLConnection c = (HttpURLConnection) URI.create(local).toURL().openConnection();
            c.setRequestMethod(request.httpMethod().name());
            if (request.headers() != null) {
                request.headers().forEach(c::setRequestProperty);
            }
            c.setRequestProperty("X-Compat-Original-Host", url.getAuthority());
            if (request.body() != null) {
                c.setDoOutput(true);
                try (OutputStream os = c.getOutputStream()) {
                    os.write(request.body().getBytes(StandardCharsets.UTF_8));
                }
            }
            int status = c.getResponseCode();
            InputStream in = status >= 400 ? c.getErrorStream() : c.getInputStream();
            String body = in == null ? "" : new String(in.readAllBytes(), StandardCharsets.UTF_8);
            HttpResponse res = new HttpResponse().statusCode(status).body(body);
            Map<String, List<String>> headers = new LinkedHashMap<>();
            c.getHeaderFields().forEach((k, v) -> {
                if (k != null) {
                    headers.put(k, v);
                }
            });
            res.addHeaders(headers);
            return res;
        }
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> parse(String json) throws Exception {
        try (JsonReader r = JsonProviders.createReader(json)) {
            return (Map<String, Object>) r.readUntyped();
        }
    }

    static String write(Map<String, Object> m) throws Exception {
        StringWriter sw = new StringWriter();
        try (JsonWriter w = JsonProviders.createWriter(sw)) {
            w.writeUntyped(m);
        }
        return sw.toString();
    }

    @SuppressWarnings("unchecked")
    static Set<String> scopes(Map<String, Object> action) {
        return new HashSet<>((List<String>) action.get("scopes"));
    }

    static IAccount findAccount(AbstractClientApplicationBase app, String homeAccountId) throws Exception {
        Set<IAccount> all = app.getAccounts().get();
        for (IAccount a : all) {
            if (homeAccountId.equals(a.homeAccountId())) {
                return a;
            }
        }
        throw new IllegalStateException("no account " + homeAccountId + " among " + all.size());
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> run(Map<String, Object> op, IHttpClient http) throws Exception {
        Map<String, Object> appCfg = (Map<String, Object>) op.get("app");
        Map<String, Object> a = (Map<String, Object>) op.get("action");
        String clientId = (String) appCfg.get("client_id");
        String authority = (String) appCfg.get("authority");
        AbstractClientApplicationBase app;
        if ("confidential".equals(appCfg.get("kind"))) {
            app = ConfidentialClientApplication.builder(clientId, ClientCredentialFactory.createFromSecret("compat-client-secret"))
                    .authority(authority).httpClient(http).build();
        } else {
            app = PublicClientApplication.builder(clientId).authority(authority).httpClient(http).build();
        }
        Object cacheIn = op.get("cache_in");
        if (cacheIn != null) {
            app.tokenCache().deserialize(Files.readString(Path.of((String) cacheIn)));
        }
        IAuthenticationResult result = null;
        String type = (String) a.get("type");
        switch (type) {
            case "client_credentials":
                result = ((ConfidentialClientApplication) app).acquireToken(ClientCredentialParameters.builder(scopes(a)).build()).get();
                break;
            case "auth_code": {
                AuthorizationCodeParameters p = AuthorizationCodeParameters
                        .builder((String) a.get("code"), new URI((String) a.get("redirect_uri"))).scopes(scopes(a)).build();
                result = app instanceof ConfidentialClientApplication
                        ? ((ConfidentialClientApplication) app).acquireToken(p).get()
                        : ((PublicClientApplication) app).acquireToken(p).get();
                break;
            }
            case "silent": {
                IAccount acc = findAccount(app, (String) a.get("home_account_id"));
                SilentParameters p = SilentParameters.builder(scopes(a), acc)
                        .forceRefresh(Boolean.TRUE.equals(a.get("force_refresh"))).build();
                result = app.acquireTokenSilently(p).get();
                break;
            }
            case "obo":
                result = ((ConfidentialClientApplication) app).acquireToken(
                        OnBehalfOfParameters.builder(scopes(a), new UserAssertion((String) a.get("assertion"))).build()).get();
                break;
            case "accounts":
                break;
            default:
                throw new IllegalArgumentException("unknown action " + type);
        }
        Object cacheOut = op.get("cache_out");
        if (cacheOut != null) {
            Files.writeString(Path.of((String) cacheOut), app.tokenCache().serialize());
        }
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("ok", true);
        List<Object> accounts = new ArrayList<>();
        for (IAccount acc : app.getAccounts().get()) {
            // One IAccount per home account; one line per tenant profile, as the other peers list them.
            Set<String> tenants = acc.getTenantProfiles() == null ? Set.of() : new TreeSet<>(acc.getTenantProfiles().keySet());
            for (String tenant : tenants.isEmpty() ? Set.of("") : tenants) {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("home_account_id", acc.homeAccountId());
                m.put("environment", acc.environment());
                m.put("username", acc.username());
                m.put("tenant_id", tenant.isEmpty() ? null : tenant);
                accounts.add(m);
            }
        }
        out.put("accounts", accounts);
        if (result != null) {
            out.put("access_token", result.accessToken());
            out.put("from_cache", result.metadata() != null && result.metadata().tokenSource() == TokenSource.CACHE);
        }
        return out;
    }

    public static void main(String[] args) throws Exception {
        if (FAKE == null) {
            throw new IllegalStateException("COMPAT_FAKE_AAD is not set");
        }
        IHttpClient http = new Loopback();
        PrintStream stdout = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isBlank()) {
                continue;
            }
            Map<String, Object> reply;
            try {
                reply = run(parse(line), http);
            } catch (Exception e) {
                Throwable cause = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
                reply = new LinkedHashMap<>();
                reply.put("ok", false);
                reply.put("error", cause.getClass().getSimpleName() + ": " + cause.getMessage());
            }
            stdout.println(write(reply));
        }
    }
}
