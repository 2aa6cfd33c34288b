package admin_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/extapi/extapi/admin"
	"github.com/extapi/extapi/oauth"
	"github.com/extapi/extapi/oauth/oauth1test"
	"github.com/extapi/extapi/store"
	"github.com/extapi/extapi/store/storetest"
)

// o1Env is an admin server with the OAuth 1.0a flow, a provider (oauth1test: its own
// implementation of RFC 5849 verifies every signed request) and an API of that provider.
type o1Env struct {
	*flowEnv // its clock is the connector's
	provider *oauth1test.Server
}

func newO1Env(t *testing.T, st *store.Store) *o1Env {
	t.Helper()
	o := &o1Env{flowEnv: newFlowEnv()}
	key, sec := newSecret("consumer-key"), newSecret("consumer-secret")
	o.provider = oauth1test.NewServer(oauth1test.Options{ConsumerKey: key, ConsumerSecret: sec})
	t.Cleanup(o.provider.Close)
	o.env = newEnv(t, st, func(opts *admin.Options) {
		opts.OAuth1 = &oauth.OAuth1Connector{Store: st, Sealer: opts.Sealer.(oauth.Sealer), Now: o.clock}
	})
	o.apiID = o.createAPI(oauth1Body("photos", o.provider, key, sec))
	return o
}

func oauth1Body(slug string, p *oauth1test.Server, key, secret string) map[string]any {
	return map[string]any{
		"name": "Photos " + slug, "slug": slug, "category": "social", "provider": "photos",
		"api_config": map[string]any{
			"base_url": p.ResourceURL, "auth_type": "oauth1",
			"oauth1": map[string]any{
				"consumer_key": key, "consumer_secret": secret, "signature_method": "HMAC-SHA1", "realm": "Photos",
				"request_token_url": p.RequestTokenURL, "authorization_url": p.AuthorizeURL, "access_token_url": p.AccessTokenURL,
			},
		},
	}
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// userAtProvider follows the authorization URL as the user's browser would and returns where
// the provider sends it back.
func userAtProvider(t *testing.T, authURL string) *url.URL {
	t.Helper()
	res, err := noRedirect.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc, err := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusFound || err != nil {
		t.Fatalf("GET %s = %d %q; want the provider's redirect back", authURL, res.StatusCode, res.Header.Get("Location"))
	}
	return loc
}

// start runs the authorize route (format=json) with token and returns the authorization URL.
func (o *o1Env) start(t *testing.T, token, query string) string {
	t.Helper()
	r := o.do("GET", "/admin/external-apis/"+o.apiID+"/oauth1/authorize?format=json&"+query, token, nil).want(t, http.StatusOK)
	u := r.str("authorization_url")
	if !strings.HasPrefix(u, o.provider.AuthorizeURL+"?oauth_token=") {
		t.Fatalf("authorization_url = %q; want the provider's authorization URL with oauth_token", u)
	}
	return u
}

// callback calls the callback route, without a token, with the provider's redirect query.
func (o *o1Env) callback(rawQuery string) *resp {
	return o.do("GET", "/admin/external-apis/"+o.apiID+"/oauth1/callback?"+rawQuery, "", nil)
}

func TestOAuth1ConnectFlowEndToEnd(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		o := newO1Env(t, st)
		editor := o.token("editor", "", "")

		// Without format=json the route redirects to the provider.
		req, _ := http.NewRequest("GET", o.srv.URL+"/admin/external-apis/"+o.apiID+"/oauth1/authorize?connection_name=Jane", nil)
		req.Header.Set("Authorization", "Bearer "+editor)
		res, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if loc := res.Header.Get("Location"); res.StatusCode != http.StatusFound || !strings.HasPrefix(loc, o.provider.AuthorizeURL+"?oauth_token=") {
			t.Fatalf("authorize = %d Location %q; want 302 to the provider", res.StatusCode, loc)
		}

		authURL := o.start(t, editor, "connection_name=Jane%27s+photos&user_id=u1")
		back := userAtProvider(t, authURL)
		wantCB := o.srv.URL + "/admin/external-apis/" + o.apiID + "/oauth1/callback"
		if got := back.Scheme + "://" + back.Host + back.Path; got != wantCB || back.Query().Get("oauth_verifier") == "" {
			t.Fatalf("provider redirects to %s; want %s with oauth_token and oauth_verifier", back, wantCB)
		}

		r := o.callback(back.RawQuery).want(t, http.StatusCreated)
		id := r.str("connection.id")
		if r.str("connection.status") != "active" || r.str("connection.connection_name") != "Jane's photos" ||
			r.str("connection.user_id") != "u1" || r.get("connection.credentials.oauth_token.set") != true ||
			r.get("connection.credentials.oauth_token_secret.set") != true ||
			r.str("connection.provider_data.screen_name") != "jane" || r.str("connection.authenticated_at") == "" {
			t.Errorf("callback = %s; want the active connection, token credentials set, provider data", r.raw)
		}
		// The token credentials are sealed in the store, never in the answer.
		token := secret(o.openConnSecret(id, "credentials.oauth_token"))
		tokenSecret := secret(o.openConnSecret(id, "credentials.oauth_token_secret"))
		if !strings.HasPrefix(token, "at-") || !strings.HasPrefix(tokenSecret, "ats-") {
			t.Errorf("stored token credentials = %q, %q; want the provider's", token, tokenSecret)
		}
		if strings.Contains(string(r.raw), token) || strings.Contains(string(r.raw), tokenSecret) {
			t.Errorf("callback answer %s holds a token credential", r.raw)
		}
		o.checkCreatedByEditor(t, id)
		o.checkReplayRefused(t, o.callback(back.RawQuery), "oauth1_token_used")
		if n := o.provider.Count("access_token"); n != 1 {
			t.Errorf("access token requests = %d; want 1", n)
		}
	})
}

func TestOAuth1CallbackRefused(t *testing.T) {
	t.Parallel()
	o := newO1Env(t, storetest.Open(t, storetest.SQLiteURL(t)))
	for _, tc := range []struct {
		desc   string
		query  func(t *testing.T) string
		status int
		code   string
	}{
		{"no oauth_token", func(*testing.T) string { return "oauth_verifier=v" }, http.StatusBadRequest, "oauth1_token_invalid"},
		{"forged oauth_token", func(*testing.T) string { return "oauth_token=rt-forged&oauth_verifier=v" }, http.StatusBadRequest, "oauth1_token_invalid"},
		{"wrong verifier", func(t *testing.T) string {
			q := userAtProvider(t, o.start(t, o.boot, "")).Query()
			q.Set("oauth_verifier", "v-guessed")
			return q.Encode()
		}, http.StatusBadRequest, "oauth1_exchange_rejected"},
		{"no verifier", func(t *testing.T) string {
			q := userAtProvider(t, o.start(t, o.boot, "")).Query()
			q.Del("oauth_verifier")
			return q.Encode()
		}, http.StatusForbidden, "oauth1_access_denied"},
		{"denied by the user", func(t *testing.T) string {
			o.provider.Deny(true)
			defer o.provider.Deny(false)
			return userAtProvider(t, o.start(t, o.boot, "")).RawQuery
		}, http.StatusForbidden, "oauth1_access_denied"},
		{"expired", func(t *testing.T) string {
			q := userAtProvider(t, o.start(t, o.boot, "")).RawQuery
			o.advance(oauth.DefaultOAuth1RequestTTL)
			return q
		}, http.StatusGone, "oauth1_token_expired"},
		{"malformed query", func(*testing.T) string { return "oauth_token=%zz" }, http.StatusBadRequest, "validation_failed"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			r := o.callback(tc.query(t)).want(t, tc.status)
			if r.str("error.code") != tc.code {
				t.Errorf("callback = %s; want error code %s", r.raw, tc.code)
			}
		})
	}
	if n := o.connectionCount(t); n != 0 {
		t.Errorf("connections after refused callbacks = %v; want none", n)
	}
	o.advance(-oauth.DefaultOAuth1RequestTTL) // back in the provider's timestamp window

	t.Run("token of another API", func(t *testing.T) {
		other := o.createAPI(oauth1Body("other", o.provider, "k", "s"))
		q := userAtProvider(t, o.start(t, o.boot, "")).RawQuery
		r := o.do("GET", "/admin/external-apis/"+other+"/oauth1/callback?"+q, "", nil).want(t, http.StatusBadRequest)
		if r.str("error.code") != "oauth1_token_invalid" {
			t.Errorf("callback on another API = %s; want oauth1_token_invalid", r.raw)
		}
		o.callback(q).want(t, http.StatusCreated) // not burnt by the mismatch
	})
	t.Run("unknown API", func(t *testing.T) {
		o.do("GET", "/admin/external-apis/nope/oauth1/callback?oauth_token=x", "", nil).want(t, http.StatusNotFound)
	})
}

func TestOAuth1AuthorizeRoute(t *testing.T) {
	t.Parallel()
	o := newO1Env(t, storetest.Open(t, storetest.SQLiteURL(t)))
	t.Run("callback URL behind a TLS-terminating proxy", func(t *testing.T) {
		req, _ := http.NewRequest("GET", o.srv.URL+"/admin/external-apis/"+o.apiID+"/oauth1/authorize?format=json", nil)
		req.Header.Set("Authorization", "Bearer "+o.boot)
		req.Header.Set("X-Forwarded-Proto", "https")
		req.Header.Set("X-Forwarded-Host", "extapi.example.com, internal:8080")
		r := o.send(req).want(t, http.StatusOK)
		back := userAtProvider(t, r.str("authorization_url"))
		if got := back.Scheme + "://" + back.Host + back.Path; got != "https://extapi.example.com/admin/external-apis/"+o.apiID+"/oauth1/callback" {
			t.Errorf("oauth_callback = %s; want the public https URL of the callback route", got)
		}
	})
	t.Run("roles", func(t *testing.T) {
		o.do("GET", "/admin/external-apis/"+o.apiID+"/oauth1/authorize", "", nil).want(t, http.StatusUnauthorized)
		o.do("GET", "/admin/external-apis/"+o.apiID+"/oauth1/authorize", o.token("viewer", "", ""), nil).want(t, http.StatusForbidden)
	})
	t.Run("tenant", func(t *testing.T) {
		// A token of another partner does not see the API; one of its partner may not connect
		// it to a third.
		o.do("GET", "/admin/external-apis/"+o.apiID+"/oauth1/authorize", o.token("editor", "", "p2"), nil).want(t, http.StatusNotFound)
		r := o.do("GET", "/admin/external-apis/"+o.apiID+"/oauth1/authorize?partner_id=p9", o.token("editor", "", "p2"), nil)
		if r.status != http.StatusForbidden && r.status != http.StatusNotFound {
			t.Errorf("authorize for another partner = %d %s; want 403 or 404", r.status, r.raw)
		}
	})
	t.Run("unknown query parameter", func(t *testing.T) {
		r := o.do("GET", "/admin/external-apis/"+o.apiID+"/oauth1/authorize?scope=x", o.boot, nil).want(t, http.StatusBadRequest)
		if len(r.details()) != 1 || r.details()[0] != "query.scope" {
			t.Errorf("authorize?scope = %s; want a validation error on query.scope", r.raw)
		}
	})
	t.Run("not an OAuth 1.0a API", func(t *testing.T) {
		id := o.createAPI(stripeBody("stripe", newSecret("k")))
		r := o.do("GET", "/admin/external-apis/"+id+"/oauth1/authorize", o.boot, nil).want(t, http.StatusConflict)
		if r.str("error.code") != "not_oauth1" {
			t.Errorf("authorize on a bearer API = %s; want not_oauth1", r.raw)
		}
	})
	t.Run("provider refuses the consumer credentials", func(t *testing.T) {
		id := o.createAPI(oauth1Body("wrong", o.provider, "not-the-key", "s"))
		r := o.do("GET", "/admin/external-apis/"+id+"/oauth1/authorize", o.boot, nil).want(t, http.StatusBadGateway)
		if r.str("error.code") != "oauth1_provider_rejected" || !strings.Contains(r.str("error.message"), "consumer_key_unknown") {
			t.Errorf("authorize with a wrong consumer key = %s; want oauth1_provider_rejected naming consumer_key_unknown", r.raw)
		}
	})
	t.Run("provider of OAuth 1.0 only", func(t *testing.T) {
		o.provider.OmitCallbackConfirmed(true)
		defer o.provider.OmitCallbackConfirmed(false)
		r := o.do("GET", "/admin/external-apis/"+o.apiID+"/oauth1/authorize", o.boot, nil).want(t, http.StatusBadGateway)
		if r.str("error.code") != "oauth1_provider_failed" {
			t.Errorf("authorize without oauth_callback_confirmed = %s; want oauth1_provider_failed", r.raw)
		}
	})
	t.Run("not configured", func(t *testing.T) {
		e := newEnv(t, storetest.Open(t, storetest.SQLiteURL(t)))
		id := e.createAPI(oauth1Body("photos", o.provider, "k", "s"))
		e.do("GET", "/admin/external-apis/"+id+"/oauth1/authorize", e.boot, nil).want(t, http.StatusServiceUnavailable)
		e.do("GET", "/admin/external-apis/"+id+"/oauth1/callback?oauth_token=x", "", nil).want(t, http.StatusServiceUnavailable)
	})
}
