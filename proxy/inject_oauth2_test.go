package proxy

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/extapi/extapi/oauth"
	"github.com/extapi/extapi/oauth/oauth2test"
	"github.com/extapi/extapi/store"
	"github.com/extapi/extapi/store/storetest"
	"github.com/extapi/extapi/vault"
)

// oauth2Clock is the provider's and the Refreshers' clock, moved by the test.
type oauth2Clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *oauth2Clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *oauth2Clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// oauth2Env is an OAuth 2.0 provider (whose protected resource is the upstream) and the proxies
// in front of it, sharing one database and keyring.
type oauth2Env struct {
	t     *testing.T
	clock *oauth2Clock
	srv   *oauth2test.Server
	kr    *vault.Keyring
	dbURL string
	lock  string // Redis key prefix of this test
}

func newOAuth2Env(t *testing.T, dbURL string) *oauth2Env {
	e := &oauth2Env{t: t, clock: &oauth2Clock{t: time.Now().UTC().Truncate(time.Second)}, kr: newKeyring(t), dbURL: dbURL,
		lock: "extapi:test:" + store.NewID("")[:12] + ":"}
	e.srv = oauth2test.NewServer(oauth2test.Options{Now: e.clock.Now})
	t.Cleanup(e.srv.Close)
	return e
}

// proxy starts one extapi instance's data plane: its own store, its own Refresher and, with
// Redis, its own Redis client for the refresh lock.
func (e *oauth2Env) proxy(withRedis bool, opts Options) *proxyEnv {
	e.t.Helper()
	s := storetest.Open(e.t, e.dbURL)
	ro := oauth.RefresherOptions{Store: s, Sealer: e.kr, Now: e.clock.Now}
	if withRedis {
		o, err := redis.ParseURL(storetest.RedisURL())
		if err != nil {
			e.t.Fatal(err)
		}
		rc := redis.NewClient(o)
		e.t.Cleanup(func() { rc.Close() })
		if err := rc.Ping(testCtx(e.t)).Err(); err != nil {
			e.t.Fatalf("Redis at %s: %v\n%s", storetest.RedisURL(), err, storetest.HowToStartRedis)
		}
		ro.Locker = oauth.NewRedisLocker(rc, oauth.RedisLockerOptions{Prefix: e.lock})
	}
	opts.TokenSource = oauth.NewRefresher(ro)
	return newProxyEnv(e.t, s, e.kr, opts)
}

// api creates the provider's API (its resource is the upstream) in p's store.
func (e *oauth2Env) api(p *proxyEnv) *store.ExternalAPI {
	return p.api("acme", store.APIConfig{BaseURL: e.srv.URL, AuthType: store.AuthOAuth2,
		OAuth2: &store.OAuth2Config{TokenURL: e.srv.TokenURL}}, func(a *store.ExternalAPI) {
		a.APIConfig.OAuth2.ClientID = p.sealAPI(a, "api_config.oauth2.client_id", e.srv.ClientID())
		a.APIConfig.OAuth2.ClientSecret = p.sealAPI(a, "api_config.oauth2.client_secret", e.srv.ClientSecret())
	})
}

// conn creates a connection with a grant from the provider whose token expires in exp.
func (e *oauth2Env) conn(p *proxyEnv, a *store.ExternalAPI, exp time.Duration) (*store.Connection, string) {
	access, refresh := e.srv.Issue("read")
	at := e.clock.Now().Add(exp)
	c := p.conn(a, func(c *store.Connection) {
		c.Credentials = store.Credentials{TokenType: "Bearer", ExpiresAt: &at,
			AccessToken: p.sealConn(c, "credentials.access_token", access), RefreshToken: p.sealConn(c, "credentials.refresh_token", refresh)}
	})
	return c, access
}

func resourceURL(p *proxyEnv, c *store.Connection) string {
	return "http://" + p.addr + "/acme/" + c.ID + "/resource"
}

// resourceBody is what the provider's resource answers.
type resourceBody struct {
	OK   bool   `json:"ok"`
	Body string `json:"body"`
}

func decodeResource(t *testing.T, r rawResponse) resourceBody {
	t.Helper()
	var b resourceBody
	if err := json.Unmarshal(r.Body, &b); err != nil {
		t.Fatalf("resource answer %d %s: %v", r.Status, r.Body, err)
	}
	return b
}

func TestOAuth2Bearer(t *testing.T) {
	e := newOAuth2Env(t, storetest.SQLiteURL(t))
	p := e.proxy(false, Options{})
	a := e.api(p)
	c, _ := e.conn(p, a, time.Hour)

	for range 3 {
		r := do(t, "GET", resourceURL(p, c), nil, map[string]string{"Authorization": "Bearer caller-must-not-pass"})
		if r.Status != 200 || !decodeResource(t, r).OK {
			t.Fatalf("GET resource = %d %s; want 200 with the connection's token", r.Status, r.Body)
		}
	}
	if n := e.srv.Hits("refresh_token"); n != 0 {
		t.Errorf("refreshes with a fresh token = %d; want 0", n)
	}
	// In-line refresh: the token now expires within the skew; the caller only waits a little.
	e.clock.Advance(time.Hour - 30*time.Second)
	if r := do(t, "GET", resourceURL(p, c), nil, nil); r.Status != 200 {
		t.Fatalf("GET resource (token expiring) = %d %s; want 200 after an in-line refresh", r.Status, r.Body)
	}
	if n := e.srv.Hits("refresh_token"); n != 1 {
		t.Errorf("refreshes = %d; want 1", n)
	}
}

func TestOAuth2RefreshOn401(t *testing.T) {
	e := newOAuth2Env(t, storetest.SQLiteURL(t))
	p := e.proxy(false, Options{BufferLimit: 1024})
	a := e.api(p)
	c, _ := e.conn(p, a, time.Hour)
	if r := do(t, "GET", resourceURL(p, c), nil, nil); r.Status != 200 {
		t.Fatalf("GET resource = %d", r.Status)
	}
	e.srv.ExpireAccessTokens() // revoked early at the provider: the next request gets a 401

	// A POST with a buffered body: refreshed once, sent again with the same body.
	e.srv.ResetHits()
	r := do(t, "POST", resourceURL(p, c), strings.NewReader(`{"n":1}`), map[string]string{"Content-Type": "application/json"})
	if r.Status != 200 || decodeResource(t, r).Body != `{"n":1}` {
		t.Fatalf("POST after a 401 = %d %s; want 200 with the body replayed", r.Status, r.Body)
	}
	if e.srv.Hits("refresh_token") != 1 || e.srv.ResourceHits() != 2 {
		t.Errorf("refreshes, upstream requests = %d, %d; want 1, 2", e.srv.Hits("refresh_token"), e.srv.ResourceHits())
	}

	// Concurrent 401s on one token: still one refresh.
	e.srv.ExpireAccessTokens()
	e.srv.ResetHits()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if r := do(t, "GET", resourceURL(p, c), nil, nil); r.Status != 200 {
				t.Errorf("GET after a 401 = %d %s; want 200", r.Status, r.Body)
			}
		})
	}
	wg.Wait()
	if n := e.srv.Hits("refresh_token"); n != 1 {
		t.Errorf("refreshes for 20 concurrent 401s = %d; want 1", n)
	}

	// A streamed body (larger than BufferLimit) cannot be sent again: the 401 is passed on,
	// and the refresh it caused serves the next request.
	e.srv.ExpireAccessTokens()
	e.srv.ResetHits()
	big := strings.Repeat("x", 4096)
	if r := do(t, "POST", resourceURL(p, c), strings.NewReader(big), nil); r.Status != 401 {
		t.Errorf("streamed POST after a 401 = %d; want the upstream's 401", r.Status)
	}
	if r := do(t, "GET", resourceURL(p, c), nil, nil); r.Status != 200 || e.srv.Hits("refresh_token") != 1 {
		t.Errorf("next GET = %d after %d refreshes; want 200 after 1", r.Status, e.srv.Hits("refresh_token"))
	}
}

func TestOAuth2Errors(t *testing.T) {
	e := newOAuth2Env(t, storetest.PostgresURL(t))
	p := e.proxy(true, Options{})
	a := e.api(p)

	// The grant is gone: 401 connection_expired, now, again, and from an instance that loads the
	// route (marked expired) afresh.
	gone, access := e.conn(p, a, -time.Second)
	e.srv.RevokeGrant(access)
	fresh := e.proxy(true, Options{})
	for i, px := range []*proxyEnv{p, p, fresh} {
		r := do(t, "GET", resourceURL(px, gone), nil, nil)
		if r.Status != 401 || r.Header.Get("X-Extapi-Error") != CodeConnectionExpired || !strings.Contains(string(r.Body), "re-authenticate") {
			t.Fatalf("request %d on a revoked grant = %d %s %s; want 401 connection_expired", i, r.Status, r.Header.Get("X-Extapi-Error"), r.Body)
		}
	}
	if n := e.srv.Hits("refresh_token"); n != 1 {
		t.Errorf("refresh attempts on a revoked grant = %d; want 1", n)
	}

	// The token endpoint is down: 502 token_refresh_failed with Retry-After, status unchanged,
	// and the endpoint is not hammered.
	down, _ := e.conn(p, a, -time.Second)
	e.srv.FailNext(100, 503)
	e.srv.ResetHits()
	for range 10 {
		r := do(t, "GET", resourceURL(p, down), nil, nil)
		if r.Status != 502 || r.Header.Get("X-Extapi-Error") != CodeTokenRefreshFailed || r.Header.Get("Retry-After") == "" {
			t.Fatalf("request with the token endpoint down = %d %s; want 502 token_refresh_failed with Retry-After", r.Status, r.Header.Get("X-Extapi-Error"))
		}
	}
	if n := e.srv.Hits("refresh_token"); n != 1 {
		t.Errorf("token endpoint hits for 10 requests = %d; want 1 (backoff)", n)
	}
	if got, _ := p.store.GetConnection(testCtx(t), down.ID, store.Tenant{}); got.Status != store.ConnActive {
		t.Errorf("status after 5xx = %s; want active", got.Status)
	}

	// Without a TokenSource, oauth2 routes are not served.
	q := newProxyEnv(t, p.store, e.kr, Options{})
	if r := do(t, "GET", resourceURL(q, gone), nil, nil); r.Status == 200 {
		t.Errorf("oauth2 route without a TokenSource = %d; want refused", r.Status)
	}
	ok, _ := e.conn(p, a, time.Hour)
	if r := do(t, "GET", resourceURL(q, ok), nil, nil); r.Status != 501 || r.Header.Get("X-Extapi-Error") != CodeAuthUnsupported {
		t.Errorf("oauth2 route without a TokenSource = %d %s; want 501 auth_unsupported", r.Status, r.Header.Get("X-Extapi-Error"))
	}
}

// TestOAuth2FleetRace is the issue's race test end to end: two extapi instances (proxy, store,
// Redis client each) sharing PostgreSQL and Redis, 200 concurrent proxied requests on one
// connection whose token has just expired, against a provider that revokes the grant when a
// refresh token is presented twice. The token endpoint must see one refresh, every request must
// succeed, and the connection must still refresh afterwards; twenty runs in a row.
func TestOAuth2FleetRace(t *testing.T) {
	e := newOAuth2Env(t, storetest.PostgresURL(t))
	e.srv.SetDelay(20 * time.Millisecond)
	p1, p2 := e.proxy(true, Options{}), e.proxy(true, Options{})
	a := e.api(p1)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 200}}
	get := func(url string) int {
		resp, err := client.Get(url)
		if err != nil {
			t.Error(err)
			return 0
		}
		defer resp.Body.Close()
		var b resourceBody
		if err := json.NewDecoder(resp.Body).Decode(&b); err != nil || !b.OK {
			return -resp.StatusCode
		}
		return resp.StatusCode
	}
	for run := range 20 {
		c, _ := e.conn(p1, a, -time.Second)
		e.srv.ResetHits()
		statuses := make([]int, 200)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range statuses {
			p := p1
			if i%2 == 1 {
				p = p2
			}
			wg.Go(func() {
				<-start
				statuses[i] = get(resourceURL(p, c))
			})
		}
		close(start)
		wg.Wait()
		if n := e.srv.Hits("refresh_token"); n != 1 {
			t.Fatalf("run %d: token endpoint saw %d refreshes; want exactly 1", run, n)
		}
		for i, s := range statuses {
			if s != 200 {
				t.Fatalf("run %d: request %d = %d; want 200", run, i, s)
			}
		}
		// Still usable: when the new token nears its end, the next request refreshes again.
		e.clock.Advance(time.Hour)
		if s := get(resourceURL(p2, c)); s != 200 || e.srv.Hits("refresh_token") != 2 {
			t.Fatalf("run %d: request after the race = %d with %d refreshes; want 200 after a second refresh",
				run, s, e.srv.Hits("refresh_token"))
		}
		if s := get(resourceURL(p1, c)); s != 200 || e.srv.Hits("refresh_token") != 2 {
			t.Fatalf("run %d: request on the other instance = %d with %d refreshes; want 200, no third refresh",
				run, s, e.srv.Hits("refresh_token"))
		}
	}
}

func TestOAuth2ClientCredentialsRoute(t *testing.T) {
	e := newOAuth2Env(t, storetest.SQLiteURL(t))
	p := e.proxy(false, Options{})
	a := p.api("acme", store.APIConfig{BaseURL: e.srv.URL, AuthType: store.AuthOAuth2,
		OAuth2: &store.OAuth2Config{TokenURL: e.srv.TokenURL, GrantType: oauth.GrantClientCredentials, Scopes: []string{"read"}}},
		func(a *store.ExternalAPI) {
			a.APIConfig.OAuth2.ClientID = p.sealAPI(a, "api_config.oauth2.client_id", e.srv.ClientID())
			a.APIConfig.OAuth2.ClientSecret = p.sealAPI(a, "api_config.oauth2.client_secret", e.srv.ClientSecret())
		})
	c := p.conn(a, nil) // no tokens of its own: the API's client-credentials token is used
	for range 5 {
		if r := do(t, "GET", resourceURL(p, c), nil, nil); r.Status != 200 {
			t.Fatalf("GET resource = %d %s; want 200 with the API's token", r.Status, r.Body)
		}
	}
	if n := e.srv.Hits("client_credentials"); n != 1 {
		t.Errorf("client-credentials requests for 5 proxied requests = %d; want 1", n)
	}
	e.srv.ExpireAccessTokens()
	if r := do(t, "GET", resourceURL(p, c), nil, nil); r.Status != 200 || e.srv.Hits("client_credentials") != 2 {
		t.Errorf("GET after a 401 = %d with %d token requests; want 200 after a new token", r.Status, e.srv.Hits("client_credentials"))
	}
}
