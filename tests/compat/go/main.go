// MSAL Go peer of the tokencache compatibility suite (driven by ../driver.py).
//
// Same line protocol as the other peers: one JSON operation per line on stdin, one
// JSON answer per line on stdout. Each operation builds a fresh client whose cache
// accessor (the public cache.ExportReplace) reads cache_in in Replace and writes
// cache_out in Export, runs one public acquire call, and exports once more at the
// end so that cache_out always holds the client's state. The network is the public
// WithHTTPClient option: an http client that sends every request to the fake AAD on
// 127.0.0.1 (COMPAT_FAKE_AAD) with the original host in a header, so MSAL Go keeps
// its real authority https://login.microsoftonline.com/<tenant>.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sort"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/cache"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/public"
)

type loopback struct{ fake *url.URL }

func (l loopback) Do(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.Header.Set("X-Compat-Original-Host", req.URL.Host)
	r.URL.Scheme, r.URL.Host, r.Host = l.fake.Scheme, l.fake.Host, l.fake.Host
	return http.DefaultClient.Do(r)
}

func (l loopback) CloseIdleConnections() {}

// fileCache is the cache accessor: Replace loads cache_in (once), Export writes cache_out.
type fileCache struct {
	in, out          string
	loaded, exported bool
	data             []byte
}

// exportIfSilent writes cache_in to cache_out when the client exported nothing: it
// exports only after it changed the cache, so its state is then what it loaded.
func (f *fileCache) exportIfSilent() error {
	if f.out == "" || f.exported {
		return nil
	}
	if f.data == nil {
		f.data = []byte(`{"AccessToken":{},"RefreshToken":{},"IdToken":{},"Account":{},"AppMetadata":{}}`)
	}
	return os.WriteFile(f.out, f.data, 0o600)
}

func (f *fileCache) Replace(ctx context.Context, c cache.Unmarshaler, _ cache.ReplaceHints) error {
	if f.in == "" || f.loaded {
		return nil
	}
	data, err := os.ReadFile(f.in)
	if err != nil {
		return err
	}
	f.loaded, f.data = true, data
	return c.Unmarshal(data)
}

func (f *fileCache) Export(ctx context.Context, c cache.Marshaler, _ cache.ExportHints) error {
	if f.out == "" {
		return nil
	}
	data, err := c.Marshal()
	if err != nil {
		return err
	}
	f.exported = true
	return os.WriteFile(f.out, data, 0o600)
}

type op struct {
	CacheIn  string `json:"cache_in"`
	CacheOut string `json:"cache_out"`
	App      struct {
		Kind      string `json:"kind"`
		ClientID  string `json:"client_id"`
		Authority string `json:"authority"`
	} `json:"app"`
	Action struct {
		Type          string   `json:"type"`
		Scopes        []string `json:"scopes"`
		Code          string   `json:"code"`
		RedirectURI   string   `json:"redirect_uri"`
		HomeAccountID string   `json:"home_account_id"`
		ForceRefresh  bool     `json:"force_refresh"`
		Assertion     string   `json:"assertion"`
	} `json:"action"`
}

type accountInfo struct {
	HomeAccountID string `json:"home_account_id"`
	Environment   string `json:"environment"`
	TenantID      string `json:"tenant_id"`
	Username      string `json:"username"`
}

type reply struct {
	OK          bool          `json:"ok"`
	Error       string        `json:"error,omitempty"`
	AccessToken string        `json:"access_token,omitempty"`
	FromCache   bool          `json:"from_cache"`
	Accounts    []accountInfo `json:"accounts"`
}

// forceRefreshClaims makes a silent call skip the cached access token and redeem the
// refresh token: MSAL Go has no force-refresh option, and a claims challenge is its
// documented way to bypass the cached access token.
const forceRefreshClaims = `{"access_token":{"xms_cc":{"values":["cp1"]}}}`

func run(ctx context.Context, http loopback, o op) (reply, error) {
	fc := &fileCache{in: o.CacheIn, out: o.CacheOut}
	var res public.AuthResult
	var accounts []public.Account
	a := o.Action
	var err error
	if o.App.Kind == "confidential" {
		cred, cerr := confidential.NewCredFromSecret("compat-client-secret")
		if cerr != nil {
			return reply{}, cerr
		}
		app, nerr := confidential.New(o.App.Authority, o.App.ClientID, cred,
			confidential.WithCache(fc), confidential.WithHTTPClient(http))
		if nerr != nil {
			return reply{}, nerr
		}
		switch a.Type {
		case "client_credentials":
			res, err = app.AcquireTokenByCredential(ctx, a.Scopes)
		case "auth_code":
			res, err = app.AcquireTokenByAuthCode(ctx, a.Code, a.RedirectURI, a.Scopes)
		case "obo":
			res, err = app.AcquireTokenOnBehalfOf(ctx, a.Assertion, a.Scopes)
		case "silent":
			acc, aerr := app.Account(ctx, a.HomeAccountID)
			if aerr != nil {
				return reply{}, aerr
			}
			if acc.HomeAccountID == "" {
				return reply{}, fmt.Errorf("no account %s", a.HomeAccountID)
			}
			opts := []confidential.AcquireSilentOption{confidential.WithSilentAccount(acc)}
			if a.ForceRefresh {
				opts = append(opts, confidential.WithClaims(forceRefreshClaims))
			}
			res, err = app.AcquireTokenSilent(ctx, a.Scopes, opts...)
		case "accounts":
		default:
			err = fmt.Errorf("unknown action %s", a.Type)
		}
		if err == nil && a.HomeAccountID != "" {
			if acc, aerr := app.Account(ctx, a.HomeAccountID); aerr == nil && acc.HomeAccountID != "" {
				accounts = append(accounts, acc)
			}
		}
	} else {
		app, nerr := public.New(o.App.ClientID, public.WithAuthority(o.App.Authority),
			public.WithCache(fc), public.WithHTTPClient(http))
		if nerr != nil {
			return reply{}, nerr
		}
		switch a.Type {
		case "auth_code":
			res, err = app.AcquireTokenByAuthCode(ctx, a.Code, a.RedirectURI, a.Scopes)
		case "silent":
			all, aerr := app.Accounts(ctx)
			if aerr != nil {
				return reply{}, aerr
			}
			var found *public.Account
			for i := range all {
				if all[i].HomeAccountID == a.HomeAccountID {
					found = &all[i]
					break
				}
			}
			if found == nil {
				return reply{}, fmt.Errorf("no account %s among %d", a.HomeAccountID, len(all))
			}
			opts := []public.AcquireSilentOption{public.WithSilentAccount(*found)}
			if a.ForceRefresh {
				opts = append(opts, public.WithClaims(forceRefreshClaims))
			}
			res, err = app.AcquireTokenSilent(ctx, a.Scopes, opts...)
		case "accounts":
		default:
			err = fmt.Errorf("unknown action %s", a.Type)
		}
		if err == nil {
			accounts, err = app.Accounts(ctx)
		}
	}
	if err != nil {
		return reply{}, err
	}
	if err := fc.exportIfSilent(); err != nil {
		return reply{}, err
	}
	out := reply{OK: true, AccessToken: res.AccessToken, FromCache: res.Metadata.TokenSource == 1}
	for _, acc := range accounts {
		out.Accounts = append(out.Accounts, accountInfo{acc.HomeAccountID, acc.Environment, acc.Realm, acc.PreferredUsername})
	}
	sort.Slice(out.Accounts, func(i, j int) bool { return out.Accounts[i].TenantID < out.Accounts[j].TenantID })
	return out, nil
}

func main() {
	fake, err := url.Parse(os.Getenv("COMPAT_FAKE_AAD"))
	if err != nil || fake.Host == "" {
		fmt.Fprintln(os.Stderr, "COMPAT_FAKE_AAD is not set")
		os.Exit(2)
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<24)
	enc := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var o op
		var r reply
		if err := json.Unmarshal(in.Bytes(), &o); err != nil {
			r = reply{Error: err.Error()}
		} else if r, err = run(context.Background(), loopback{fake}, o); err != nil {
			r = reply{Error: err.Error()}
		}
		if r.Accounts == nil {
			r.Accounts = []accountInfo{}
		}
		if err := enc.Encode(r); err != nil {
			os.Exit(1)
		}
	}
}
