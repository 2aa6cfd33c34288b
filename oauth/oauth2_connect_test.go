package oauth_test

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/extapi/extapi/oauth"
	"github.com/extapi/extapi/oauth/oauth2test"
	"github.com/extapi/extapi/store"
	"github.com/extapi/extapi/store/storetest"
)

func (f *fixture) connector() *oauth.Connector {
	return oauth.NewConnector(oauth.ConnectorOptions{Store: f.db, Sealer: f.kr, Now: f.clock.Now})
}

// consent follows the authorization URL as a browser would, the user consenting, and returns
// the query of the provider's redirect back to extapi.
func consent(t *testing.T, authURL, redirectURI string) url.Values {
	t.Helper()
	browser := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := browser.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorization endpoint = %d; want 302", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != redirectURI {
		t.Fatalf("redirected to %s; want %s", got, redirectURI)
	}
	return loc.Query()
}

func callback(q url.Values) oauth.CallbackParams {
	return oauth.CallbackParams{Code: q.Get("code"), State: q.Get("state"), Error: q.Get("error"),
		ErrorDescription: q.Get("error_description")}
}

func TestConnectFlow(t *testing.T) {
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			f := newFixture(t, storetest.URL(t, d), oauth2test.Options{RequirePKCE: true, AuthMethod: oauth2test.AuthBasic})
			f.srv.SetExtra(map[string]any{"instance_url": "https://na1.acme.test", "issued_at": "1700000000"})
			api := f.api(func(o *store.OAuth2Config) {
				o.AuthorizationParams = map[string]string{"access_type": "offline", "prompt": "consent", "state": "evil"}
			})
			conn := f.connector()
			authURL, err := conn.Authorize(testCtx(t), api, oauth.AuthorizeParams{ConnectionName: "Sales team",
				UserID: "u1", PartnerID: "p2", Actor: "ops-token"})
			if err != nil {
				t.Fatalf("Authorize() = %v", err)
			}
			u, _ := url.Parse(authURL)
			q := u.Query()
			if !strings.HasPrefix(authURL, f.srv.AuthURL+"?") || q.Get("response_type") != "code" ||
				q.Get("client_id") != f.srv.ClientID() || q.Get("redirect_uri") != api.APIConfig.OAuth2.RedirectURI ||
				q.Get("scope") != "read write" || q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 ||
				q.Get("access_type") != "offline" || q.Get("prompt") != "consent" || len(q.Get("state")) < 20 || q.Get("state") == "evil" {
				t.Fatalf("authorization URL = %s; want code flow, S256 challenge, extra params, a random state", authURL)
			}

			back := consent(t, authURL, api.APIConfig.OAuth2.RedirectURI)
			if back.Get("state") != q.Get("state") || back.Get("code") == "" {
				t.Fatalf("provider redirect = %v; want code and the same state", back)
			}
			c, err := conn.Callback(testCtx(t), api.ID, callback(back))
			if err != nil {
				t.Fatalf("Callback() = %v", err)
			}
			if f.srv.Hits("authorization_code") != 1 || f.srv.AuthMethodHits(oauth2test.AuthBasic) != 1 {
				t.Errorf("token endpoint: %d exchanges, %d basic; want 1 exchange with client_secret_basic",
					f.srv.Hits("authorization_code"), f.srv.AuthMethodHits(oauth2test.AuthBasic))
			}
			got := f.reload(c.ID)
			access, refresh := f.tokens(got)
			if !f.srv.AccessValid(access) || !strings.HasPrefix(refresh, "rt_") {
				t.Errorf("stored tokens = %q, %q; want the provider's", access, refresh)
			}
			raw := string(mustJSON(t, got.Credentials))
			if strings.Contains(raw, access) || strings.Contains(raw, refresh) {
				t.Errorf("credentials %s hold a token in the clear", raw)
			}
			now := f.clock.Now()
			if got.Status != store.ConnActive || got.ConnectionName != "Sales team" || got.UserID != "u1" ||
				got.PartnerID != "p2" || got.SalesChannelID != "sc1" || got.ExternalAPIID != api.ID ||
				got.AuthenticatedAt == nil || !got.AuthenticatedAt.Equal(now) ||
				got.Credentials.ExpiresAt == nil || !got.Credentials.ExpiresAt.Equal(now.Add(time.Hour)) ||
				got.Credentials.TokenType != "Bearer" || strings.Join(got.Credentials.Scopes, " ") != "read write" {
				t.Errorf("connection = %+v; want active, bound to the state's parameters, expiring in an hour", got)
			}
			if got.ProviderData["instance_url"] != "https://na1.acme.test" || got.ProviderData["issued_at"] != "1700000000" {
				t.Errorf("provider_data = %v; want the response's extra fields", got.ProviderData)
			}
			evs := f.audits(c.ID)
			if len(evs) != 1 || evs[0].Action != "connection.create" || evs[0].Actor != "ops-token" || evs[0].PartnerID != "p2" {
				t.Errorf("audit = %+v; want connection.create by ops-token", evs)
			}
			// The connection works: Token hands out the stored token, the resource takes it.
			tok, err := f.instance(false).r.Token(testCtx(t), api, got)
			if err != nil || tok.Token != access || callResource(t, f.srv, tok) != 200 {
				t.Errorf("Token(new connection) = %v; want the stored token", err)
			}

			// Single use: the same redirect again is refused and creates nothing.
			if _, err := conn.Callback(testCtx(t), api.ID, callback(back)); !errors.Is(err, oauth.ErrStateUsed) {
				t.Errorf("Callback(reused state) = %v; want ErrStateUsed", err)
			}
			if n := countConns(t, f, api.ID); n != 1 {
				t.Errorf("connections = %d; want 1", n)
			}
		})
	}
}

func countConns(t *testing.T, f *fixture, apiID string) int64 {
	t.Helper()
	_, n, err := f.db.ListConnections(testCtx(t), store.ConnectionFilter{ExternalAPIID: apiID})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestConnectClientSecretPostWithoutPKCE(t *testing.T) {
	f := newFixture(t, storetest.SQLiteURL(t), oauth2test.Options{AuthMethod: oauth2test.AuthPost})
	off := false
	api := f.api(func(o *store.OAuth2Config) { o.TokenAuthMethod = oauth.AuthClientSecretPost; o.PKCE = &off })
	conn := f.connector()
	authURL, err := conn.Authorize(testCtx(t), api, oauth.AuthorizeParams{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(authURL, "code_challenge") {
		t.Errorf("authorization URL %s has a PKCE challenge; want none with pkce: false", authURL)
	}
	c, err := conn.Callback(testCtx(t), api.ID, callback(consent(t, authURL, api.APIConfig.OAuth2.RedirectURI)))
	if err != nil {
		t.Fatalf("Callback() = %v", err)
	}
	if f.srv.AuthMethodHits(oauth2test.AuthPost) != 1 || f.srv.AuthMethodHits(oauth2test.AuthBasic) != 0 {
		t.Error("the exchange did not authenticate with client_secret_post")
	}
	if got := f.reload(c.ID); got.ConnectionName != api.Name || got.PartnerID != "p1" || got.SalesChannelID != "sc1" {
		t.Errorf("connection = %q, %q, %q; want the API's name and tenant by default", got.ConnectionName, got.PartnerID, got.SalesChannelID)
	}
}

func TestCallbackRefusals(t *testing.T) {
	f := newFixture(t, storetest.PostgresURL(t), oauth2test.Options{})
	api := f.api(nil)
	other := f.api(nil)
	conn := f.connector()
	redirect := api.APIConfig.OAuth2.RedirectURI
	start := func(a *store.ExternalAPI) url.Values {
		t.Helper()
		u, err := conn.Authorize(testCtx(t), a, oauth.AuthorizeParams{})
		if err != nil {
			t.Fatal(err)
		}
		return consent(t, u, redirect)
	}
	tests := []struct {
		desc string
		run  func() error
		want error
	}{
		{"no state", func() error {
			_, err := conn.Callback(testCtx(t), api.ID, oauth.CallbackParams{Code: "x"})
			return err
		}, oauth.ErrStateInvalid},
		{"unknown state", func() error {
			_, err := conn.Callback(testCtx(t), api.ID, oauth.CallbackParams{Code: "x", State: "forged"})
			return err
		}, oauth.ErrStateInvalid},
		{"state of another API", func() error {
			_, err := conn.Callback(testCtx(t), api.ID, callback(start(other)))
			return err
		}, oauth.ErrStateInvalid},
		{"expired state", func() error {
			q := start(api)
			f.clock.Advance(10*time.Minute + time.Second)
			_, err := conn.Callback(testCtx(t), api.ID, callback(q))
			return err
		}, oauth.ErrStateExpired},
		{"access denied", func() error {
			f.srv.SetDeny("access_denied")
			defer f.srv.SetDeny("")
			_, err := conn.Callback(testCtx(t), api.ID, callback(start(api)))
			return err
		}, oauth.ErrAccessDenied},
		{"other provider error", func() error {
			f.srv.SetDeny("temporarily_unavailable")
			defer f.srv.SetDeny("")
			_, err := conn.Callback(testCtx(t), api.ID, callback(start(api)))
			return err
		}, oauth.ErrAuthorizationFailed},
		{"bad code", func() error {
			q := start(api)
			q.Set("code", "code_forged")
			_, err := conn.Callback(testCtx(t), api.ID, callback(q))
			return err
		}, oauth.ErrExchangeFailed},
		{"PKCE verifier mismatch", func() error {
			// Swap the stored verifier for another: the provider must refuse the exchange.
			u, err := conn.Authorize(testCtx(t), api, oauth.AuthorizeParams{})
			if err != nil {
				return err
			}
			var st store.OAuth2State
			if err := f.db.Gorm().Order("created_at DESC").Where("used_at IS NULL AND external_api_id = ?", api.ID).Take(&st).Error; err != nil {
				return err
			}
			forged := sealed(t, f.kr, "a-different-verifier-that-is-long-enough-for-rfc-7636", st.AAD("code_verifier"))
			if err := f.db.Gorm().Model(&st).UpdateColumn("code_verifier", forged).Error; err != nil {
				return err
			}
			_, err = conn.Callback(testCtx(t), api.ID, callback(consent(t, u, redirect)))
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) || re.ErrorDescription != "PKCE verification failed" {
				t.Errorf("exchange error = %v; want the provider's PKCE refusal", err)
			}
			return err
		}, oauth.ErrExchangeFailed},
		{"token endpoint down", func() error {
			q := start(api)
			f.srv.FailNext(1, 502)
			_, err := conn.Callback(testCtx(t), api.ID, callback(q))
			return err
		}, oauth.ErrExchangeFailed},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			err := tc.run()
			if !errors.Is(err, tc.want) {
				t.Fatalf("Callback() = %v; want %v", err, tc.want)
			}
			if tc.want == oauth.ErrAccessDenied && errors.Is(err, oauth.ErrAuthorizationFailed) {
				t.Errorf("access_denied also matches ErrAuthorizationFailed")
			}
		})
	}
	var ex *oauth.ExchangeError
	q := start(api)
	q.Set("code", "code_forged")
	if _, err := conn.Callback(testCtx(t), api.ID, callback(q)); !errors.As(err, &ex) || ex.Code != "invalid_grant" {
		t.Errorf("bad code: %v; want an ExchangeError with code invalid_grant", err)
	}
	if n := countConns(t, f, api.ID) + countConns(t, f, other.ID); n != 0 {
		t.Errorf("connections after refused callbacks = %d; want 0", n)
	}
	// Old states are purged (a day after they expire).
	f.clock.Advance(25 * time.Hour)
	if n, err := conn.PurgeStates(testCtx(t)); err != nil || n == 0 {
		t.Errorf("PurgeStates() = %d, %v; want the old states gone", n, err)
	}
}

func TestAuthorizeRefusesWrongConfig(t *testing.T) {
	f := newFixture(t, storetest.SQLiteURL(t), oauth2test.Options{})
	conn := f.connector()
	cc := f.api(func(o *store.OAuth2Config) { o.GrantType = oauth.GrantClientCredentials })
	noAuthURL := f.api(func(o *store.OAuth2Config) { o.AuthorizationURL = "" })
	bearer := &store.ExternalAPI{ID: "eapi_x", APIConfig: store.APIConfig{AuthType: store.AuthBearer}}
	for _, a := range []*store.ExternalAPI{cc, noAuthURL, bearer} {
		if _, err := conn.Authorize(testCtx(t), a, oauth.AuthorizeParams{}); !errors.Is(err, oauth.ErrNotOAuth2) {
			t.Errorf("Authorize(%+v) = %v; want ErrNotOAuth2", a.APIConfig.OAuth2, err)
		}
	}
}
