package oauth_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
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

var _ oauth.Sealer = (*vault.Keyring)(nil)
var _ oauth.ConnectionStore = (*store.Store)(nil)
var _ oauth.StateStore = (*store.Store)(nil)
var _ oauth.RedisClient = (*redis.Client)(nil)

// clock is a settable clock shared by the provider and the Refreshers.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().UTC().Truncate(time.Second)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func testCtx(t *testing.T) context.Context { return testCtxTB(t) }

func testCtxTB(tb testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	tb.Cleanup(cancel)
	return c
}

func contextWithCancel(t *testing.T) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx, cancel
}

func testKeyring(t testing.TB) *vault.Keyring {
	t.Helper()
	k, err := vault.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	kr, err := vault.New(map[uint32][]byte{1: k}, 1)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func sealed(t *testing.T, kr *vault.Keyring, plaintext string, aad []byte) store.Sealed {
	t.Helper()
	b, err := kr.Seal([]byte(plaintext), aad)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func opened(t *testing.T, kr *vault.Keyring, blob store.Sealed, aad []byte) string {
	t.Helper()
	b, err := kr.Open(blob, aad)
	if err != nil {
		t.Fatalf("open sealed value: %v", err)
	}
	return string(b)
}

// testRedis connects to the test Redis; it fails (never skips) when Redis is not there.
func testRedis(t *testing.T) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(storetest.RedisURL())
	if err != nil {
		t.Fatalf("EXTAPI_TEST_REDIS_URL: %v", err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("Redis at %s is not reachable: %v\n%s", storetest.RedisURL(), err, storetest.HowToStartRedis)
	}
	return c
}

// uniquePrefix keeps the Redis keys of parallel tests apart.
func uniquePrefix() string { return "extapi:test:" + randomHex(6) + ":" }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// fixture is one provider, one database and one keyring, shared by the instances of a test.
type fixture struct {
	t      *testing.T
	clock  *clock
	srv    *oauth2test.Server
	kr     *vault.Keyring
	dbURL  string
	prefix string
	db     *store.Store // the first instance's store, for set-up and checks
}

func newFixture(t *testing.T, dbURL string, o oauth2test.Options) *fixture {
	t.Helper()
	f := &fixture{t: t, clock: newClock(), kr: testKeyring(t), dbURL: dbURL, prefix: uniquePrefix()}
	o.Now = f.clock.Now
	f.srv = oauth2test.NewServer(o)
	t.Cleanup(f.srv.Close)
	f.db = storetest.Open(t, dbURL)
	return f
}

func pgFixture(t *testing.T) *fixture {
	return newFixture(t, storetest.PostgresURL(t), oauth2test.Options{})
}

// instance is one extapi instance's OAuth 2.0 side: its own store and Redis client.
type instance struct {
	store *store.Store
	r     *oauth.Refresher
}

// instance builds a Refresher on a store of its own; with Redis it locks through its own client.
func (f *fixture) instance(withRedis bool, tweak ...func(*oauth.RefresherOptions)) *instance {
	f.t.Helper()
	s := f.db
	if withRedis {
		s = storetest.Open(f.t, f.dbURL) // migrations already applied: a no-op
	}
	o := oauth.RefresherOptions{Store: s, Sealer: f.kr, Now: f.clock.Now}
	if withRedis {
		o.Locker = oauth.NewRedisLocker(testRedis(f.t), oauth.RedisLockerOptions{Prefix: f.prefix})
	}
	for _, fn := range tweak {
		fn(&o)
	}
	return &instance{store: s, r: oauth.NewRefresher(o)}
}

// api creates an OAuth 2.0 API pointing at the provider, client id and secret sealed.
func (f *fixture) api(mut func(*store.OAuth2Config)) *store.ExternalAPI {
	f.t.Helper()
	a := &store.ExternalAPI{ID: store.NewID(store.PrefixAPI), Name: "Acme CRM", Slug: "acme-" + randomHex(4),
		Category: "crm", Provider: "acme", Status: store.APIActive, Environment: "production",
		SalesChannelID: "sc1", PartnerID: "p1"}
	oc := &store.OAuth2Config{
		AuthorizationURL: f.srv.AuthURL, TokenURL: f.srv.TokenURL, Scopes: []string{"read", "write"},
		RedirectURI: "https://extapi.test/admin/callback",
	}
	a.APIConfig = store.APIConfig{BaseURL: f.srv.URL, AuthType: store.AuthOAuth2, OAuth2: oc}
	oc.ClientID = sealed(f.t, f.kr, f.srv.ClientID(), a.AAD("api_config.oauth2.client_id"))
	oc.ClientSecret = sealed(f.t, f.kr, f.srv.ClientSecret(), a.AAD("api_config.oauth2.client_secret"))
	if mut != nil {
		mut(oc)
	}
	if err := f.db.CreateAPI(testCtx(f.t), a); err != nil {
		f.t.Fatal(err)
	}
	return a
}

// conn creates a connection holding tokens the provider issued, expiring at exp (nil: never).
func (f *fixture) conn(api *store.ExternalAPI, access, refresh string, exp *time.Time) *store.Connection {
	f.t.Helper()
	c := &store.Connection{ID: store.NewID(store.PrefixConnection), ExternalAPIID: api.ID, ConnectionName: "main",
		Status: store.ConnActive, SalesChannelID: api.SalesChannelID, PartnerID: api.PartnerID}
	c.Credentials = store.Credentials{TokenType: "Bearer", ExpiresAt: exp, Scopes: []string{"read"}}
	if access != "" {
		c.Credentials.AccessToken = sealed(f.t, f.kr, access, c.AAD("credentials.access_token"))
	}
	if refresh != "" {
		c.Credentials.RefreshToken = sealed(f.t, f.kr, refresh, c.AAD("credentials.refresh_token"))
	}
	if err := f.db.CreateConnection(testCtx(f.t), c); err != nil {
		f.t.Fatal(err)
	}
	return c
}

// expiredConn is a connection whose token expired a second ago, with its provider tokens.
func (f *fixture) expiredConn(api *store.ExternalAPI) (c *store.Connection, access, refresh string) {
	access, refresh = f.srv.Issue("read")
	exp := f.clock.Now().Add(-time.Second)
	return f.conn(api, access, refresh, &exp), access, refresh
}

// reload reads a connection from the database.
func (f *fixture) reload(id string) *store.Connection {
	f.t.Helper()
	c, err := f.db.GetConnection(testCtx(f.t), id, store.Tenant{})
	if err != nil {
		f.t.Fatalf("GetConnection(%s) = %v", id, err)
	}
	return c
}

// tokens opens the stored access and refresh tokens of a connection.
func (f *fixture) tokens(c *store.Connection) (access, refresh string) {
	f.t.Helper()
	if c.Credentials.AccessToken.IsSet() {
		access = opened(f.t, f.kr, c.Credentials.AccessToken, c.AAD("credentials.access_token"))
	}
	if c.Credentials.RefreshToken.IsSet() {
		refresh = opened(f.t, f.kr, c.Credentials.RefreshToken, c.AAD("credentials.refresh_token"))
	}
	return access, refresh
}

// audits lists the audit events of a target, newest first.
func (f *fixture) audits(targetID string) []store.AuditEvent {
	f.t.Helper()
	evs, _, err := f.db.ListAudit(testCtx(f.t), store.AuditFilter{TargetID: targetID})
	if err != nil {
		f.t.Fatal(err)
	}
	return evs
}

// callResource sends a request to the provider's protected resource with tok.
func callResource(t *testing.T, srv *oauth2test.Server, tok oauth.AccessToken) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.ResourceURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", tok.Header)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func refreshErr(err error) *oauth.RefreshError {
	var re *oauth.RefreshError
	if errors.As(err, &re) {
		return re
	}
	return nil
}
