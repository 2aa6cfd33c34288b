package oauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/extapi/extapi/oauth"
	"github.com/extapi/extapi/oauth/oauth1test"
	"github.com/extapi/extapi/store"
	"github.com/extapi/extapi/store/storetest"
	"github.com/extapi/extapi/vault"
)

var _ oauth.OAuth1Store = (*store.Store)(nil)

// o1Fixture is a provider, a store with one OAuth 1.0a API of it, and a connector.
type o1Fixture struct {
	t        *testing.T
	provider *oauth1test.Server
	db       *store.Store
	kr       *vault.Keyring
	api      *store.ExternalAPI
	conn     *oauth.OAuth1Connector
	now      time.Time
}

const o1Callback = "https://extapi.example/admin/external-apis/x/oauth1/callback"

func newO1Fixture(t *testing.T, method string) *o1Fixture {
	t.Helper()
	f := &o1Fixture{t: t, now: time.Now().UTC().Truncate(time.Second)}
	f.provider = oauth1test.NewServer(oauth1test.Options{ConsumerKey: "dpf43f3p2l4k3l03", ConsumerSecret: "kd94hf93k423kf44",
		Now: func() time.Time { return f.now }})
	t.Cleanup(f.provider.Close)
	f.db = storetest.Open(t, storetest.SQLiteURL(t))
	k, err := vault.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if f.kr, err = vault.New(map[uint32][]byte{1: k}, 1); err != nil {
		t.Fatal(err)
	}
	f.api = f.newAPI("photos", method, "kd94hf93k423kf44")
	f.conn = &oauth.OAuth1Connector{Store: f.db, Sealer: f.kr, Now: func() time.Time { return f.now }}
	return f
}

func (f *o1Fixture) newAPI(slug, method, consumerSecret string) *store.ExternalAPI {
	f.t.Helper()
	a := &store.ExternalAPI{
		ID: store.NewID(store.PrefixAPI), Name: "Photos", Slug: slug, Category: "social", Provider: "photos",
		Status: store.APIActive, Environment: "production",
		APIConfig: store.APIConfig{BaseURL: f.provider.ResourceURL, AuthType: store.AuthOAuth1, OAuth1: &store.OAuth1Config{
			RequestTokenURL: f.provider.RequestTokenURL, AuthorizationURL: f.provider.AuthorizeURL + "?lang=en",
			AccessTokenURL: f.provider.AccessTokenURL, SignatureMethod: method, Realm: "Photos",
		}},
	}
	a.APIConfig.OAuth1.ConsumerKey = f.seal("dpf43f3p2l4k3l03", a.AAD("api_config.oauth1.consumer_key"))
	a.APIConfig.OAuth1.ConsumerSecret = f.seal(consumerSecret, a.AAD("api_config.oauth1.consumer_secret"))
	if err := f.db.CreateAPI(context.Background(), a); err != nil {
		f.t.Fatal(err)
	}
	return a
}

func (f *o1Fixture) seal(plaintext string, aad []byte) store.Sealed {
	f.t.Helper()
	b, err := f.kr.Seal([]byte(plaintext), aad)
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

func (f *o1Fixture) open(blob store.Sealed, aad []byte) string {
	f.t.Helper()
	b, err := f.kr.Open(blob, aad)
	if err != nil {
		f.t.Fatalf("open sealed value: %v", err)
	}
	return string(b)
}

// noConnections fails the test when a refused callback left a connection behind.
func (f *o1Fixture) noConnections() {
	f.t.Helper()
	if _, n, err := f.db.ListConnections(o1Ctx(f.t), store.ConnectionFilter{}); err != nil || n != 0 {
		f.t.Errorf("connections = %d, %v; want none", n, err)
	}
}

func o1Ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// authorize starts a flow and plays the user at the provider: it returns the query the provider
// redirects back to the callback with.
func (f *o1Fixture) authorize(api *store.ExternalAPI) url.Values {
	f.t.Helper()
	authURL, err := f.conn.Authorize(o1Ctx(f.t), api, oauth.OAuth1Start{CallbackURL: o1Callback,
		ConnectionName: "Jane's photos", UserID: "u1", PartnerID: "p1", SalesChannelID: "sc1", CreatedBy: "ops"})
	if err != nil {
		f.t.Fatalf("Authorize() error = %v (provider: %s)", err, f.provider.LastReject())
	}
	if !strings.HasPrefix(authURL, f.provider.AuthorizeURL+"?lang=en&oauth_token=") {
		f.t.Fatalf("Authorize() = %s; want the authorization URL, its query kept, with oauth_token", authURL)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(authURL)
	if err != nil {
		f.t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), o1Callback+"?") {
		f.t.Fatalf("authorize at the provider = %d %q; want a redirect to the callback", resp.StatusCode, resp.Header.Get("Location"))
	}
	return loc.Query()
}

// params reads the callback query as the management API does.
func params(q url.Values) oauth.OAuth1CallbackParams {
	return oauth.OAuth1CallbackParams{Token: q.Get("oauth_token"), Verifier: q.Get("oauth_verifier"),
		Denied: q.Get("denied"), Problem: q.Get("oauth_problem")}
}

func TestOAuth1ConnectFlow(t *testing.T) {
	for _, method := range []string{"", oauth.OAuth1HMACSHA256, oauth.OAuth1Plaintext} {
		t.Run("method "+method, func(t *testing.T) {
			f := newO1Fixture(t, method)
			q := f.authorize(f.api)
			c, err := f.conn.Callback(o1Ctx(t), f.api.ID, params(q))
			if err != nil {
				t.Fatalf("Callback() error = %v (provider: %s)", err, f.provider.LastReject())
			}
			if !strings.HasPrefix(c.ID, store.PrefixConnection) || c.ExternalAPIID != f.api.ID || c.Status != store.ConnActive ||
				c.ConnectionName != "Jane's photos" || c.UserID != "u1" || c.PartnerID != "p1" || c.SalesChannelID != "sc1" ||
				c.AuthenticatedAt == nil || !c.AuthenticatedAt.Equal(f.now) {
				t.Errorf("Callback() connection = %+v; want an active connection of the flow's fields, authenticated now", c)
			}
			// Stored, with its audit event naming who started the flow, and no secret in it.
			stored, err := f.db.GetConnection(o1Ctx(t), c.ID, store.Tenant{})
			if err != nil || !stored.Credentials.OAuthToken.IsSet() || stored.ProviderData["screen_name"] != "jane" {
				t.Fatalf("GetConnection() = %+v, %v; want the connection stored", stored, err)
			}
			evs, _, err := f.db.ListAudit(o1Ctx(t), store.AuditFilter{TargetID: c.ID})
			if err != nil || len(evs) != 1 || evs[0].Actor != "ops" || evs[0].Action != "connection.create" ||
				evs[0].Changes["oauth_token"] != "set" || evs[0].PartnerID != "p1" {
				t.Errorf("audit of the connection = %+v, %v; want one connection.create by ops", evs, err)
			}
			if got := c.ProviderData; len(got) != 2 || got["user_id"] != "6377362" || got["screen_name"] != "jane" {
				t.Errorf("ProviderData = %v; want user_id and screen_name only", got)
			}
			token := f.open(c.Credentials.OAuthToken, c.AAD("credentials.oauth_token"))
			secret := f.open(c.Credentials.OAuthTokenSecret, c.AAD("credentials.oauth_token_secret"))
			if !strings.HasPrefix(token, "at-") || !strings.HasPrefix(secret, "ats-") {
				t.Fatalf("sealed token credentials = %q, %q; want the provider's access token and secret", token, secret)
			}

			// The token credentials sign requests the provider accepts: a GET with a query and a
			// POST with a form body.
			s := &oauth.OAuth1Signer{Method: method}
			creds := oauth.OAuth1Credentials{ConsumerKey: "dpf43f3p2l4k3l03", ConsumerSecret: "kd94hf93k423kf44", Token: token, TokenSecret: secret}
			for _, rq := range []struct{ method, url, body string }{
				{"GET", f.provider.ResourceURL + "/photos?file=vacation.jpg&size=original&note=a+b%2Ac", ""},
				{"POST", f.provider.ResourceURL + "/status?x=1", "status=Hello+Ladies+%2B+Gentlemen&x=2"},
			} {
				var form []byte
				if rq.body != "" {
					form = []byte(rq.body)
				}
				h, err := s.Authorization(rq.method, rq.url, form, creds)
				if err != nil {
					t.Fatal(err)
				}
				req, _ := http.NewRequest(rq.method, rq.url, strings.NewReader(rq.body))
				req.Header.Set("Authorization", h)
				if form != nil {
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				var e oauth1test.Echo
				json.NewDecoder(resp.Body).Decode(&e)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || e.Token != token {
					t.Errorf("%s %s = %d; want 200 (provider: %s)", rq.method, rq.url, resp.StatusCode, f.provider.LastReject())
				}
			}

			// The request token works once.
			if _, err := f.conn.Callback(o1Ctx(t), f.api.ID, params(q)); !errors.Is(err, oauth.ErrOAuth1TokenUsed) {
				t.Errorf("Callback() again = %v; want ErrOAuth1TokenUsed", err)
			}
			if n := f.provider.Count("access_token"); n != 1 {
				t.Errorf("access token requests = %d; want 1 (a replay never reaches the provider)", n)
			}
		})
	}
}

func TestOAuth1CallbackRefusals(t *testing.T) {
	t.Run("unknown token", func(t *testing.T) {
		f := newO1Fixture(t, "")
		for _, q := range []url.Values{
			{"oauth_token": {"rt-forged"}, "oauth_verifier": {"v"}},
			{"oauth_verifier": {"v"}},
			{},
		} {
			if _, err := f.conn.Callback(o1Ctx(t), f.api.ID, params(q)); !errors.Is(err, oauth.ErrOAuth1TokenUnknown) {
				t.Errorf("Callback(%v) = %v; want ErrOAuth1TokenUnknown", q, err)
			}
		}
		f.noConnections()
	})
	t.Run("token of another API", func(t *testing.T) {
		f := newO1Fixture(t, "")
		other := f.newAPI("other", "", "kd94hf93k423kf44")
		q := f.authorize(f.api)
		if _, err := f.conn.Callback(o1Ctx(t), other.ID, params(q)); !errors.Is(err, oauth.ErrOAuth1TokenUnknown) {
			t.Errorf("Callback(other API) = %v; want ErrOAuth1TokenUnknown", err)
		}
		// The mismatch did not burn the flow of the right API.
		if _, err := f.conn.Callback(o1Ctx(t), f.api.ID, params(q)); err != nil {
			t.Errorf("Callback(right API) = %v; want success", err)
		}
	})
	t.Run("expired", func(t *testing.T) {
		f := newO1Fixture(t, "")
		q := f.authorize(f.api)
		f.now = f.now.Add(oauth.DefaultOAuth1RequestTTL)
		if _, err := f.conn.Callback(o1Ctx(t), f.api.ID, params(q)); !errors.Is(err, oauth.ErrOAuth1TokenExpired) {
			t.Errorf("Callback() after the TTL = %v; want ErrOAuth1TokenExpired", err)
		}
		if n := f.provider.Count("access_token"); n != 0 {
			t.Errorf("access token requests = %d; want none", n)
		}
		f.noConnections()
	})
	t.Run("denied by the user", func(t *testing.T) {
		f := newO1Fixture(t, "")
		f.provider.Deny(true)
		q := f.authorize(f.api)
		if q.Get("denied") == "" {
			t.Fatalf("callback query = %v; want denied=…", q)
		}
		if _, err := f.conn.Callback(o1Ctx(t), f.api.ID, params(q)); !errors.Is(err, oauth.ErrOAuth1Denied) {
			t.Errorf("Callback(denied) = %v; want ErrOAuth1Denied", err)
		}
		// The denied token is used up: it cannot be finished with a verifier afterwards.
		q2 := url.Values{"oauth_token": {q.Get("denied")}, "oauth_verifier": {"guess"}}
		if _, err := f.conn.Callback(o1Ctx(t), f.api.ID, params(q2)); !errors.Is(err, oauth.ErrOAuth1TokenUsed) {
			t.Errorf("Callback() after a denial = %v; want ErrOAuth1TokenUsed", err)
		}
		f.noConnections()
	})
	t.Run("no verifier or a problem", func(t *testing.T) {
		f := newO1Fixture(t, "")
		for _, extra := range []url.Values{{}, {"oauth_problem": {"user_refused"}}} {
			q := f.authorize(f.api)
			q.Del("oauth_verifier")
			for k, v := range extra {
				q[k] = v
			}
			if _, err := f.conn.Callback(o1Ctx(t), f.api.ID, params(q)); !errors.Is(err, oauth.ErrOAuth1Denied) {
				t.Errorf("Callback(%v) = %v; want ErrOAuth1Denied", q, err)
			}
		}
		f.noConnections()
	})
	t.Run("wrong verifier", func(t *testing.T) {
		f := newO1Fixture(t, "")
		q := f.authorize(f.api)
		q.Set("oauth_verifier", "v-wrong")
		_, err := f.conn.Callback(o1Ctx(t), f.api.ID, params(q))
		var pe *oauth.OAuth1ProviderError
		if !errors.As(err, &pe) || !errors.Is(err, oauth.ErrOAuth1Provider) || !pe.Rejected() ||
			pe.Endpoint != "access_token" || pe.Problem != "verifier_invalid" {
			t.Errorf("Callback(wrong verifier) = %v; want a rejected access_token request, oauth_problem verifier_invalid", err)
		}
		f.noConnections()
	})
}

func TestOAuth1PurgeRequests(t *testing.T) {
	f := newO1Fixture(t, "")
	f.authorize(f.api)
	f.now = f.now.Add(oauth.DefaultOAuth1RequestTTL + 23*time.Hour)
	if n, err := f.conn.PurgeRequests(o1Ctx(t)); err != nil || n != 0 {
		t.Errorf("PurgeRequests() a day after = %d, %v; want 0 (kept a day, to say expired)", n, err)
	}
	f.now = f.now.Add(2 * time.Hour)
	if n, err := f.conn.PurgeRequests(o1Ctx(t)); err != nil || n != 1 {
		t.Errorf("PurgeRequests() = %d, %v; want 1", n, err)
	}
}

func TestOAuth1AuthorizeRefusals(t *testing.T) {
	t.Run("provider of OAuth 1.0", func(t *testing.T) {
		f := newO1Fixture(t, "")
		f.provider.OmitCallbackConfirmed(true)
		_, err := f.conn.Authorize(o1Ctx(t), f.api, oauth.OAuth1Start{CallbackURL: o1Callback})
		if !errors.Is(err, oauth.ErrOAuth1Provider) || !strings.Contains(err.Error(), "oauth_callback_confirmed") {
			t.Errorf("Authorize() = %v; want ErrOAuth1Provider about oauth_callback_confirmed", err)
		}
	})
	t.Run("wrong consumer secret", func(t *testing.T) {
		f := newO1Fixture(t, "")
		bad := f.newAPI("bad", "", "not-the-secret")
		_, err := f.conn.Authorize(o1Ctx(t), bad, oauth.OAuth1Start{CallbackURL: o1Callback})
		var pe *oauth.OAuth1ProviderError
		if !errors.As(err, &pe) || pe.Endpoint != "request_token" || pe.StatusCode != http.StatusUnauthorized || pe.Problem != "signature_invalid" {
			t.Errorf("Authorize() = %v; want a request_token 401 signature_invalid", err)
		}
	})
	t.Run("not an OAuth 1.0a API", func(t *testing.T) {
		f := newO1Fixture(t, "")
		a := *f.api
		a.APIConfig.AuthType = store.AuthBearer
		if _, err := f.conn.Authorize(o1Ctx(t), &a, oauth.OAuth1Start{CallbackURL: o1Callback}); !errors.Is(err, oauth.ErrNotOAuth1) {
			t.Errorf("Authorize(bearer API) = %v; want ErrNotOAuth1", err)
		}
		cfg := *f.api.APIConfig.OAuth1
		cfg.AccessTokenURL = ""
		a.APIConfig.AuthType, a.APIConfig.OAuth1 = store.AuthOAuth1, &cfg
		if _, err := f.conn.Authorize(o1Ctx(t), &a, oauth.OAuth1Start{CallbackURL: o1Callback}); !errors.Is(err, oauth.ErrNotOAuth1) ||
			!strings.Contains(err.Error(), "oauth1.access_token_url") {
			t.Errorf("Authorize(no access_token_url) = %v; want ErrNotOAuth1 naming it", err)
		}
	})
	t.Run("provider down", func(t *testing.T) {
		f := newO1Fixture(t, "")
		f.provider.Close()
		_, err := f.conn.Authorize(o1Ctx(t), f.api, oauth.OAuth1Start{CallbackURL: o1Callback})
		var pe *oauth.OAuth1ProviderError
		if !errors.As(err, &pe) || pe.StatusCode != 0 || pe.Rejected() {
			t.Errorf("Authorize(provider down) = %v; want a provider error without a status", err)
		}
	})
}

func TestOAuth1AuthorizationURL(t *testing.T) {
	for _, tc := range []struct{ in, token, want string }{
		{"https://api.x.com/oauth/authorize", "a b+c", "https://api.x.com/oauth/authorize?oauth_token=a+b%2Bc"},
		{"https://p.example/auth?force_login=true", "t", "https://p.example/auth?force_login=true&oauth_token=t"},
	} {
		got, err := oauth.OAuth1AuthorizationURL(tc.in, tc.token)
		if err != nil || got != tc.want {
			t.Errorf("OAuth1AuthorizationURL(%q, %q) = %q, %v; want %q", tc.in, tc.token, got, err, tc.want)
		}
	}
	if _, err := oauth.OAuth1AuthorizationURL("/relative", "t"); !errors.Is(err, oauth.ErrNotOAuth1) {
		t.Errorf("OAuth1AuthorizationURL(relative) = %v; want ErrNotOAuth1", err)
	}
}
