package admin_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/extapi/extapi/admin"
	"github.com/extapi/extapi/oauth"
	"github.com/extapi/extapi/oauth/oauth2test"
	"github.com/extapi/extapi/store"
	"github.com/extapi/extapi/store/storetest"
)

// o2Env is an admin server with the OAuth 2.0 flow and refresher, a provider (oauth2test: RFC
// 6749 with PKCE, rotating refresh tokens) and an API of that provider.
type o2Env struct {
	*flowEnv // its clock is the connector's and the refresher's
	provider *oauth2test.Server
}

func newO2Env(t *testing.T, st *store.Store, oauth2 map[string]any) *o2Env {
	t.Helper()
	o := &o2Env{flowEnv: newFlowEnv()}
	// The client id is sealed at rest like every credential, but it is public by design (RFC
	// 6749 §2.2): the authorization URL carries it. So it is not registered as a secret here.
	id, sec := "client-"+store.NewID(""), newSecret("client-secret")
	o.provider = oauth2test.NewServer(oauth2test.Options{ClientID: id, ClientSecret: sec, RequirePKCE: true, Now: o.clock})
	t.Cleanup(o.provider.Close)
	o.env = newEnv(t, st, func(opts *admin.Options) {
		sealer := opts.Sealer.(oauth.Sealer)
		opts.OAuth2 = oauth.NewConnector(oauth.ConnectorOptions{Store: st, Sealer: sealer, Now: o.clock})
		opts.Refresher = oauth.NewRefresher(oauth.RefresherOptions{Store: st, Sealer: sealer, Now: o.clock})
	})
	cfg := map[string]any{
		"client_id": id, "client_secret": sec, "authorization_url": o.provider.AuthURL, "token_url": o.provider.TokenURL,
		"scopes": []string{"read"}, "authorization_params": map[string]string{"access_type": "offline"},
	}
	for k, v := range oauth2 {
		cfg[k] = v
	}
	o.apiID = o.createAPI(map[string]any{
		"name": "Acme", "slug": "acme", "category": "crm", "provider": "acme",
		"api_config": map[string]any{"base_url": o.provider.URL, "auth_type": "oauth2", "oauth2": cfg},
	})
	return o
}

// start runs the authorize route (format=json) and returns the authorization URL.
func (o *o2Env) start(t *testing.T, token, query string) string {
	t.Helper()
	r := o.do("GET", "/admin/external-apis/"+o.apiID+"/oauth/authorize?format=json&"+query, token, nil).want(t, http.StatusOK)
	u := r.str("authorization_url")
	if !strings.HasPrefix(u, o.provider.AuthURL+"?") {
		t.Fatalf("authorization_url = %q; want the provider's", u)
	}
	return u
}

func (o *o2Env) callback(rawQuery string) *resp {
	return o.do("GET", "/admin/external-apis/"+o.apiID+"/oauth/callback?"+rawQuery, "", nil)
}

// connect runs the whole flow and returns the new connection's id.
func (o *o2Env) connect(t *testing.T) string {
	t.Helper()
	r := o.callback(userAtProvider(t, o.start(t, o.boot, "")).RawQuery).want(t, http.StatusCreated)
	id := r.str("connection.id")
	secret(o.openConnSecret(id, "credentials.access_token"))
	secret(o.openConnSecret(id, "credentials.refresh_token"))
	return id
}

func TestOAuth2ConnectFlowEndToEnd(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		o := newO2Env(t, st, nil)
		editor := o.token("editor", "", "")

		// Without format=json the route redirects to the provider.
		req, _ := http.NewRequest("GET", o.srv.URL+"/admin/external-apis/"+o.apiID+"/oauth/authorize?connection_name=Jane", nil)
		req.Header.Set("Authorization", "Bearer "+editor)
		res, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if loc := res.Header.Get("Location"); res.StatusCode != http.StatusFound || !strings.HasPrefix(loc, o.provider.AuthURL+"?") {
			t.Fatalf("authorize = %d Location %q; want 302 to the provider", res.StatusCode, loc)
		}

		authURL := o.start(t, editor, "connection_name=Jane%27s+CRM&user_id=u1")
		au, _ := url.Parse(authURL)
		wantCB := o.srv.URL + "/admin/external-apis/" + o.apiID + "/oauth/callback"
		if q := au.Query(); q.Get("redirect_uri") != wantCB || q.Get("code_challenge_method") != "S256" ||
			q.Get("access_type") != "offline" || q.Get("state") == "" {
			t.Fatalf("authorization_url = %s; want redirect_uri %s, an S256 challenge, access_type, a state", authURL, wantCB)
		}
		back := userAtProvider(t, authURL)
		if got := back.Scheme + "://" + back.Host + back.Path; got != wantCB || back.Query().Get("code") == "" {
			t.Fatalf("provider redirects to %s; want %s with code and state", back, wantCB)
		}

		r := o.callback(back.RawQuery).want(t, http.StatusCreated)
		id := r.str("connection.id")
		if r.str("connection.status") != "active" || r.str("connection.connection_name") != "Jane's CRM" ||
			r.str("connection.user_id") != "u1" || r.get("connection.credentials.access_token.set") != true ||
			r.get("connection.credentials.refresh_token.set") != true || r.str("connection.credentials.expires_at") == "" ||
			r.str("connection.authenticated_at") == "" {
			t.Errorf("callback = %s; want the active connection, tokens set, expires_at", r.raw)
		}
		access := secret(o.openConnSecret(id, "credentials.access_token"))
		refresh := secret(o.openConnSecret(id, "credentials.refresh_token"))
		if !o.provider.AccessValid(access) || !strings.HasPrefix(refresh, "rt_") {
			t.Errorf("stored tokens = %q, %q; want the provider's", access, refresh)
		}
		o.checkCreatedByEditor(t, id)
		o.checkReplayRefused(t, o.callback(back.RawQuery), "oauth2_state_used")
		if n := o.provider.Hits("authorization_code"); n != 1 {
			t.Errorf("code exchanges = %d; want 1", n)
		}
	})
}

func TestOAuth2CallbackRefused(t *testing.T) {
	t.Parallel()
	o := newO2Env(t, storetest.Open(t, storetest.SQLiteURL(t)), nil)
	for _, tc := range []struct {
		desc   string
		query  func(t *testing.T) string
		status int
		code   string
	}{
		{"no state", func(*testing.T) string { return "code=c" }, http.StatusBadRequest, "oauth2_state_invalid"},
		{"forged state", func(*testing.T) string { return "code=c&state=forged" }, http.StatusBadRequest, "oauth2_state_invalid"},
		{"denied by the user", func(t *testing.T) string {
			o.provider.SetDeny("access_denied")
			defer o.provider.SetDeny("")
			return userAtProvider(t, o.start(t, o.boot, "")).RawQuery
		}, http.StatusForbidden, "oauth2_access_denied"},
		{"other provider error", func(t *testing.T) string {
			o.provider.SetDeny("server_error")
			defer o.provider.SetDeny("")
			return userAtProvider(t, o.start(t, o.boot, "")).RawQuery
		}, http.StatusBadRequest, "oauth2_authorization_failed"},
		{"guessed code", func(t *testing.T) string {
			q := userAtProvider(t, o.start(t, o.boot, "")).Query()
			q.Set("code", "code_guessed")
			return q.Encode()
		}, http.StatusBadRequest, "oauth2_exchange_failed"},
		{"expired", func(t *testing.T) string {
			q := userAtProvider(t, o.start(t, o.boot, "")).RawQuery
			o.advance(oauth.DefaultStateTTL)
			return q
		}, http.StatusGone, "oauth2_state_expired"},
		{"malformed query", func(*testing.T) string { return "state=%zz" }, http.StatusBadRequest, "validation_failed"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			r := o.callback(tc.query(t)).want(t, tc.status)
			if r.str("error.code") != tc.code {
				t.Errorf("callback = %s; want %s", r.raw, tc.code)
			}
		})
	}
	if n := o.connectionCount(t); n != 0 {
		t.Errorf("connections after refused callbacks = %v; want 0", n)
	}
	// The authorize route refuses what it cannot do.
	other := o.createAPI(stripeBody("stripe", newSecret("key")))
	if r := o.do("GET", "/admin/external-apis/"+other+"/oauth/authorize", o.boot, nil).want(t, http.StatusConflict); r.str("error.code") != "not_oauth2" {
		t.Errorf("authorize on a bearer API = %s; want not_oauth2", r.raw)
	}
	o.do("GET", "/admin/external-apis/"+o.apiID+"/oauth/authorize", o.token("viewer", "", ""), nil).want(t, http.StatusForbidden)
	o.do("GET", "/admin/external-apis/"+o.apiID+"/oauth/authorize", "", nil).want(t, http.StatusUnauthorized)
	o.do("GET", "/admin/external-apis/eapi_nope/oauth/authorize", o.boot, nil).want(t, http.StatusNotFound)
	scoped := o.token("editor", "sc-other", "")
	o.do("GET", "/admin/external-apis/"+o.apiID+"/oauth/authorize", scoped, nil).want(t, http.StatusNotFound)
}

func TestOAuth2SuccessRedirect(t *testing.T) {
	t.Parallel()
	o := newO2Env(t, storetest.Open(t, storetest.SQLiteURL(t)), map[string]any{
		"success_redirect_url": "https://app.example.com/connected?from=extapi",
		"token_auth_method":    "client_secret_post",
	})
	back := userAtProvider(t, o.start(t, o.boot, ""))
	res, err := noRedirect.Get(o.srv.URL + "/admin/external-apis/" + o.apiID + "/oauth/callback?" + back.RawQuery)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc, _ := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusFound || loc == nil || loc.Host != "app.example.com" ||
		loc.Query().Get("from") != "extapi" || !strings.HasPrefix(loc.Query().Get("connection_id"), "conn_") ||
		loc.Query().Get("status") != "connected" {
		t.Fatalf("callback = %d Location %q; want 302 to success_redirect_url with connection_id", res.StatusCode, res.Header.Get("Location"))
	}
	if o.provider.AuthMethodHits(oauth2test.AuthPost) != 1 {
		t.Error("the exchange did not use client_secret_post")
	}
	secret(o.openConnSecret(loc.Query().Get("connection_id"), "credentials.access_token"))
}

func TestOAuth2ForcedRefresh(t *testing.T) {
	t.Parallel()
	o := newO2Env(t, storetest.Open(t, storetest.PostgresURL(t)), nil)
	id := o.connect(t)
	before := o.openConnSecret(id, "credentials.refresh_token")
	editor := o.token("editor", "", "")

	o.advance(time.Minute)
	r := o.do("POST", "/admin/connections/"+id+"/refresh", editor, nil).want(t, http.StatusOK)
	if n := o.provider.Hits("refresh_token"); n != 1 {
		t.Errorf("refreshes = %d; want 1", n)
	}
	access := secret(o.openConnSecret(id, "credentials.access_token"))
	rotated := secret(o.openConnSecret(id, "credentials.refresh_token"))
	if rotated == before || !o.provider.AccessValid(access) {
		t.Error("the refresh token was not rotated, or the new access token is not valid")
	}
	if want := o.clock().Add(time.Hour).Format(time.RFC3339); r.str("connection.credentials.expires_at") != want {
		t.Errorf("expires_at = %s; want %s", r.str("connection.credentials.expires_at"), want)
	}
	evs, _ := json.Marshal(o.audits(id))
	if !strings.Contains(string(evs), `"action":"connection.refresh"`) || !strings.Contains(string(evs), `"action":"connection.token_refresh"`) {
		t.Errorf("audit = %s; want connection.refresh by the caller and connection.token_refresh", evs)
	}

	o.do("POST", "/admin/connections/"+id+"/refresh", o.token("viewer", "", ""), nil).want(t, http.StatusForbidden)
	o.do("POST", "/admin/connections/"+id+"/refresh", o.token("editor", "sc-other", ""), nil).want(t, http.StatusNotFound)
	o.do("POST", "/admin/connections/conn_nope/refresh", editor, nil).want(t, http.StatusNotFound)

	// The token endpoint is down: 502, the connection untouched.
	o.provider.FailNext(1, http.StatusServiceUnavailable)
	if r := o.do("POST", "/admin/connections/"+id+"/refresh", editor, nil).want(t, http.StatusBadGateway); r.str("error.code") != "token_refresh_failed" {
		t.Errorf("refresh with the endpoint down = %s; want token_refresh_failed", r.raw)
	}
	// The grant was revoked at the provider: 409 connection_expired, and the connection is.
	o.provider.RevokeGrant(access)
	if r := o.do("POST", "/admin/connections/"+id+"/refresh", editor, nil).want(t, http.StatusConflict); r.str("error.code") != "connection_expired" {
		t.Errorf("refresh of a revoked grant = %s; want connection_expired", r.raw)
	}
	r = o.do("GET", "/admin/connections/"+id, editor, nil).want(t, http.StatusOK)
	if r.str("connection.status") != "expired" || !strings.Contains(r.str("connection.error_message"), "re-authenticate") {
		t.Errorf("connection = %s; want expired with a message", r.raw)
	}

	// Not an OAuth 2.0 connection.
	other := o.createAPI(stripeBody("stripe", newSecret("key")))
	cid := o.createConn(other, map[string]any{"connection_name": "x"})
	if r := o.do("POST", "/admin/connections/"+cid+"/refresh", editor, nil).want(t, http.StatusConflict); r.str("error.code") != "not_oauth2" {
		t.Errorf("refresh of a bearer connection = %s; want not_oauth2", r.raw)
	}
}

func TestOAuth2RoutesUnconfigured(t *testing.T) {
	t.Parallel()
	e := newEnv(t, storetest.Open(t, storetest.SQLiteURL(t)))
	apiID := e.createAPI(oauthBody("facebook"))
	cid := e.createConn(apiID, map[string]any{"connection_name": "x"})
	e.do("GET", "/admin/external-apis/"+apiID+"/oauth/authorize", e.boot, nil).want(t, http.StatusServiceUnavailable)
	e.do("GET", "/admin/external-apis/"+apiID+"/oauth/callback?code=c&state=s", "", nil).want(t, http.StatusServiceUnavailable)
	e.do("POST", "/admin/connections/"+cid+"/refresh", e.boot, nil).want(t, http.StatusServiceUnavailable)
}
