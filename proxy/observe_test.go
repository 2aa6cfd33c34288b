package proxy

import (
	"bytes"
	"encoding/json"
	"flag"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/valyala/fasthttp"

	"github.com/extapi/extapi/metrics"
	"github.com/extapi/extapi/oauth"
	"github.com/extapi/extapi/oauth/oauth2test"
	"github.com/extapi/extapi/ratelimit"
	"github.com/extapi/extapi/store"
	"github.com/extapi/extapi/store/storetest"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/metrics.golden")

// logBuffer collects every log line (JSON, debug level and up) of a test.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines are the access lines ("proxy: request"), decoded.
func (b *logBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		if m["msg"] == "proxy: request" {
			out = append(out, m)
		}
	}
	return out
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// refreshObserver is cmd/extapi's wiring of oauth.RefresherOptions.Observe.
func refreshObserver(m *metrics.Metrics) func(api, result string, d time.Duration) {
	return func(api, result string, d time.Duration) {
		r := metrics.RefreshError
		switch result {
		case oauth.RefreshResultSuccess:
			r = metrics.RefreshSuccess
		case oauth.RefreshResultInvalidGrant:
			r = metrics.RefreshInvalidGrant
		}
		m.API(api).ObserveTokenRefresh(r, d)
	}
}

// normalized gathers extapi_* families only, with every histogram reduced to its count: sums
// and buckets depend on timing.
func normalized(reg prometheus.Gatherer) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		mfs, err := reg.Gather()
		var out []*dto.MetricFamily
		for _, mf := range mfs {
			if !strings.HasPrefix(mf.GetName(), "extapi_") {
				continue
			}
			for _, m := range mf.Metric {
				if h := m.Histogram; h != nil {
					h.SampleSum = new(float64)
					h.Bucket = nil
				}
			}
			out = append(out, mf)
		}
		return out, err
	})
}

// TestMetricsGolden runs a scripted sequence through the proxy listener — a success, a retry
// on 429 then 503, an unreachable upstream, an upstream timeout, a rate-limit wait and a
// rejection, OAuth 2.0 refreshes that succeed, are refused (invalid_grant) and fail (503),
// requests that name nothing — and compares every extapi_* series with testdata/metrics.golden.
//
//	go test -run TestMetricsGolden ./proxy/ -update   # after an intended change
func TestMetricsGolden(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	provider := oauth2test.NewServer(oauth2test.Options{})
	t.Cleanup(provider.Close)
	var logs logBuffer
	s, kr := storetest.Open(t, storetest.SQLiteURL(t)), newKeyring(t)
	ts := oauth.NewRefresher(oauth.RefresherOptions{Store: s, Sealer: kr, Observe: refreshObserver(m), Log: logs.logger()})
	// The limiter's clock stands still: the wait of the second rlwait request is then exactly
	// its slot interval, however long the test takes between the two requests.
	limiterClock := &fakeClock{now: time.Now()}
	e := newProxyEnvWith(t, s, kr, Options{Metrics: m, TokenSource: ts, Log: logs.logger(), AccessLogEvery: 1,
		Limiter: ratelimit.NewLocal(ratelimit.Options{OnFallback: m.RateLimitFallback, Now: limiterClock.Now})}, func(h *Handler) {
		h.sleep = func(time.Duration) bool { return true }
		h.jitter = func(time.Duration) time.Duration { return 0 }
	})
	tok := func(c *store.Connection) { c.Credentials.AccessToken = e.sealConn(c, "credentials.access_token", "t") }
	get := func(path string, want int) {
		t.Helper()
		if r := do(t, "GET", "http://"+e.addr+path, nil, nil); r.Status != want {
			t.Fatalf("GET %s = %d %s; want %d", path, r.Status, r.Body, want)
		}
	}

	ok := e.conn(e.api("ok", store.APIConfig{BaseURL: newUpstream(t, nil).url, AuthType: store.AuthBearer}, nil), tok)
	get("/ok/"+ok.ID+"/x", 200)

	var tries int
	var mu sync.Mutex
	flakyUp := newUpstream(t, func(ctx *fasthttp.RequestCtx) {
		mu.Lock()
		tries++
		n := tries
		mu.Unlock()
		switch n {
		case 1:
			ctx.SetStatusCode(429)
		case 2:
			ctx.SetStatusCode(503)
		default:
			ctx.SetBodyString("ok")
		}
	})
	flaky := e.conn(e.api("flaky", store.APIConfig{BaseURL: flakyUp.url, AuthType: store.AuthBearer,
		RetryConfig: &store.RetryConfig{MaxRetries: 2, BackoffMS: 1}}, nil), tok)
	get("/flaky/"+flaky.ID+"/x", 200)

	down := e.conn(e.api("down", store.APIConfig{BaseURL: "http://" + closedAddr(t), AuthType: store.AuthBearer}, nil), tok)
	get("/down/"+down.ID+"/x", 502)

	release := make(chan struct{})
	slowUp := newUpstream(t, func(ctx *fasthttp.RequestCtx) {
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
	})
	t.Cleanup(func() { close(release) }) // before slowUp shuts down
	slow := e.conn(e.api("slow", store.APIConfig{BaseURL: slowUp.url, AuthType: store.AuthBearer, TimeoutMS: 50}, nil), tok)
	get("/slow/"+slow.ID+"/x", 504)

	rlUp := newUpstream(t, nil)
	wait := e.conn(e.api("rlwait", store.APIConfig{BaseURL: rlUp.url, AuthType: store.AuthBearer,
		RateLimit: &store.RateLimit{RequestsPerSecond: 20, Burst: 1, Mode: ratelimit.ModeWait}}, nil), tok)
	get("/rlwait/"+wait.ID+"/x", 200)
	get("/rlwait/"+wait.ID+"/x", 200) // waits exactly 50 ms for its slot (the limiter's clock is still)
	reject := e.conn(e.api("rlreject", store.APIConfig{BaseURL: rlUp.url, AuthType: store.AuthBearer,
		RateLimit: &store.RateLimit{RequestsPerMinute: 1, Mode: ratelimit.ModeReject}}, nil), tok)
	get("/rlreject/"+reject.ID+"/x", 200)
	get("/rlreject/"+reject.ID+"/x", 429)

	acme := e.api("acme", store.APIConfig{BaseURL: provider.URL, AuthType: store.AuthOAuth2,
		OAuth2: &store.OAuth2Config{TokenURL: provider.TokenURL}}, func(a *store.ExternalAPI) {
		a.APIConfig.OAuth2.ClientID = e.sealAPI(a, "api_config.oauth2.client_id", provider.ClientID())
		a.APIConfig.OAuth2.ClientSecret = e.sealAPI(a, "api_config.oauth2.client_secret", provider.ClientSecret())
	})
	expired := func(refresh string) *store.Connection {
		access, issued := provider.Issue("read")
		if refresh == "" {
			refresh = issued
		}
		past := time.Now().UTC().Add(-time.Minute).Truncate(time.Microsecond)
		return e.conn(acme, func(c *store.Connection) {
			c.Credentials = store.Credentials{TokenType: "Bearer", ExpiresAt: &past,
				AccessToken:  e.sealConn(c, "credentials.access_token", access),
				RefreshToken: e.sealConn(c, "credentials.refresh_token", refresh)}
		})
	}
	get("/acme/"+expired("").ID+"/resource", 200)                             // refreshed in-line
	get("/acme/"+expired("rt-the-provider-never-issued").ID+"/resource", 401) // invalid_grant: connection_expired
	provider.FailNext(1, 503)
	get("/acme/"+expired("").ID+"/resource", 502) // token_refresh_failed

	get("/nope/conn_unknown/x", 404) // no such connection: api "unknown"
	get("/justaslug", 404)           // no route at all

	// Both refreshes that changed a connection (saved, expired) notify: wait until the cache
	// has applied them.
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(cacheCounter(t, reg, "invalidation")) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the two change notifications were not applied")
		}
		time.Sleep(5 * time.Millisecond) // polling a condition
	}

	golden := filepath.Join("testdata", "metrics.golden")
	if *updateGolden {
		mfs, err := normalized(reg).Gather()
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, mf := range mfs {
			if err := enc.Encode(mf); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(golden)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := testutil.GatherAndCompare(normalized(reg), f); err != nil {
		t.Errorf("series after the script differ from %s (rerun with -update if intended):\n%v", golden, err)
	}

	// The access log has one line per request, with what the series count.
	lines := logs.lines(t)
	waited := 0
	for _, l := range lines {
		if l["api"] == "rlwait" {
			switch ms := l["ratelimit_wait_ms"].(float64); {
			case ms == 0:
			case math.Abs(ms-50) < 1:
				waited++
			default:
				t.Errorf("rlwait access line shows ratelimit_wait_ms %v; want 0 or 50", ms)
			}
		}
	}
	if waited != 1 {
		t.Errorf("%d rlwait access lines show the 50 ms wait; want 1 (the second request)", waited)
	}
	if len(lines) != 13 {
		t.Errorf("%d access lines; want 13 (one per request)\n%s", len(lines), logs.String())
	}
	for _, l := range lines {
		if l["api"] == "flaky" && (l["retries"] != 2.0 || l["upstream_status"] != 200.0) {
			t.Errorf("flaky access line = %v; want retries 2, upstream_status 200", l)
		}
		if l["api"] == "down" && (l["error"] != CodeUpstreamUnreachable || l["status"] != 502.0 || l["upstream_status"] != 0.0) {
			t.Errorf("down access line = %v; want error upstream_unreachable, status 502, upstream_status 0", l)
		}
		if id, _ := l["request_id"].(string); len(id) != 32 {
			t.Errorf("request_id %q; want 32 hex characters (generated)", id)
		}
	}
}

// cacheCounter is extapi_cache_events_total{event} as a collector for testutil.ToFloat64.
func cacheCounter(t *testing.T, reg prometheus.Gatherer, event string) prometheus.Collector {
	t.Helper()
	return prometheus.CollectorFunc(func(ch chan<- prometheus.Metric) {
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() != "extapi_cache_events_total" {
				continue
			}
			for _, m := range mf.Metric {
				for _, l := range m.Label {
					if l.GetName() == "event" && l.GetValue() == event {
						ch <- prometheus.MustNewConstMetric(prometheus.NewDesc("c", "c", nil, nil),
							prometheus.CounterValue, m.GetCounter().GetValue())
					}
				}
			}
		}
	})
}

// TestMetricsLabelsBounded sends 10,000 requests with random paths, connection ids, slugs and
// methods, then 10,000 more: the number of series stays under a fixed bound, does not grow with
// the second batch, and no label value holds anything the caller sent.
func TestMetricsLabelsBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	e := sqliteEnv(t, Options{Metrics: m})
	up := newUpstream(t, func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(200 + rand.IntN(4)) })
	a := e.api("bounded", store.APIConfig{BaseURL: up.url, AuthType: store.AuthBearer}, nil)
	c := e.conn(a, func(c *store.Connection) { c.Credentials.AccessToken = e.sealConn(c, "credentials.access_token", "t") })
	rnd := func() string { return strconv.FormatUint(rand.Uint64(), 36) }
	methods := []string{"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"}
	batch := func() {
		var ctx fasthttp.RequestCtx
		for i := range 10000 {
			var uri string
			switch i % 3 {
			case 0: // a real route, random path and query
				uri = "/bounded/" + c.ID + "/" + rnd() + "/" + rnd() + "?q=" + rnd()
			case 1: // a random connection id of a real API
				uri = "/bounded/conn_" + rnd() + "/" + rnd()
			default: // a random slug and id
				uri = "/" + rnd() + "/" + rnd() + "/" + rnd()
			}
			ctx.Request.Reset()
			ctx.Request.SetRequestURI(uri)
			method := methods[i%len(methods)]
			if i%11 == 0 {
				method = "X" + strings.ToUpper(rnd()[:3]) // a method of the caller's invention
			}
			ctx.Request.Header.SetMethod(method)
			e.h.ServeFastHTTP(&ctx)
			ctx.Response.Reset() // closes a streamed body
		}
	}
	count := func() (int, []string) {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		n, values := 0, []string{}
		for _, mf := range mfs {
			n += len(mf.Metric)
			for _, m := range mf.Metric {
				for _, l := range m.Label {
					values = append(values, l.GetValue())
				}
			}
		}
		return n, values
	}
	batch()
	n1, values := count()
	batch()
	n2, _ := count()
	// Per API (bounded, unknown): 8 methods × a few codes of requests, and the fixed series.
	const bound = 200
	if n1 > bound || n2 != n1 {
		t.Errorf("series after 10,000 random requests = %d, after 20,000 = %d; want at most %d, and no growth", n1, n2, bound)
	}
	for _, v := range values {
		if strings.HasPrefix(v, "conn_") || strings.Contains(v, "/") || strings.HasPrefix(v, "X") {
			t.Errorf("label value %q comes from the request", v)
		}
	}
	t.Logf("%d series after 10,000 random requests", n1)
}

// TestRequestID: a caller's X-Request-Id goes upstream and comes back; without one (or with
// one that cannot be logged safely) an id is generated, sent upstream and returned.
func TestRequestID(t *testing.T) {
	up := newUpstream(t, nil)
	var logs logBuffer
	e := sqliteEnv(t, Options{Log: logs.logger(), AccessLogEvery: 1})
	a := e.api("rid", store.APIConfig{BaseURL: up.url, AuthType: store.AuthBearer}, nil)
	c := e.conn(a, func(c *store.Connection) { c.Credentials.AccessToken = e.sealConn(c, "credentials.access_token", "t") })
	url := "http://" + e.addr + "/rid/" + c.ID + "/x"

	r := do(t, "GET", url, nil, map[string]string{"X-Request-Id": "caller-id-1"})
	if got := up.requests()[0].header("X-Request-Id"); len(got) != 1 || got[0] != "caller-id-1" || r.Header.Get("X-Request-Id") != "caller-id-1" {
		t.Errorf("caller's id: upstream got %q, response %q; want caller-id-1 both", got, r.Header.Get("X-Request-Id"))
	}
	for i, sent := range []string{"", strings.Repeat("a", maxRequestIDLen+1)} {
		r := do(t, "GET", url, nil, map[string]string{"X-Request-Id": sent})
		id := r.Header.Get("X-Request-Id")
		got := up.requests()[1+i].header("X-Request-Id")
		if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" || len(got) != 1 || got[0] != id {
			t.Errorf("sent %q: response id %q, upstream %q; want the same generated 32 hex characters", sent, id, got)
		}
	}
	// Errors carry it too, and the access line names it.
	r = do(t, "GET", "http://"+e.addr+"/rid/conn_nope/x", nil, map[string]string{"X-Request-Id": "caller-id-2"})
	if r.Status != 404 || r.Header.Get("X-Request-Id") != "caller-id-2" {
		t.Errorf("error response = %d with id %q; want 404 with caller-id-2", r.Status, r.Header.Get("X-Request-Id"))
	}
	lines := logs.lines(t)
	if len(lines) != 4 || lines[0]["request_id"] != "caller-id-1" || lines[3]["request_id"] != "caller-id-2" ||
		lines[3]["connection"] != "conn_nope" || lines[3]["api"] != metrics.UnknownAPI {
		t.Errorf("access lines = %v; want 4 naming the ids, the last for api unknown, connection conn_nope", lines)
	}
}

// TestAccessLogSampling: AccessLogEvery 3 logs one request in three.
func TestAccessLogSampling(t *testing.T) {
	up := newUpstream(t, nil)
	var logs logBuffer
	e := sqliteEnv(t, Options{Log: logs.logger(), AccessLogEvery: 3})
	a := e.api("sampled", store.APIConfig{BaseURL: up.url, AuthType: store.AuthBearer}, nil)
	c := e.conn(a, func(c *store.Connection) { c.Credentials.AccessToken = e.sealConn(c, "credentials.access_token", "t") })
	for range 9 {
		do(t, "GET", "http://"+e.addr+"/sampled/"+c.ID+"/x", nil, nil)
	}
	if n := len(logs.lines(t)); n != 3 {
		t.Errorf("%d access lines for 9 requests; want 3", n)
	}
}

// TestLogsHoldNoCredential runs requests through every auth type with distinctive credential
// values — successes, upstream errors, gateway errors, a rejected OAuth 2.0 refresh — while the
// caller sends credentials of its own in Authorization, X-Api-Key and the query, and checks
// that no log line (access log, warnings, errors, debug) holds any of them.
func TestLogsHoldNoCredential(t *testing.T) {
	var logs logBuffer
	log := logs.logger()
	provider := oauth2test.NewServer(oauth2test.Options{ClientID: "CRED-o2-client-id-5c1e", ClientSecret: "CRED-o2-client-secret-93aa"})
	t.Cleanup(provider.Close)
	o1 := newOAuth1Provider(t)
	s, kr := storetest.Open(t, storetest.SQLiteURL(t)), newKeyring(t)
	ts := oauth.NewRefresher(oauth.RefresherOptions{Store: s, Sealer: kr, Log: log})
	e := newProxyEnv(t, s, kr, Options{TokenSource: ts, Log: log, AccessLogEvery: 1})

	status := 200
	var mu sync.Mutex
	up := newUpstream(t, func(ctx *fasthttp.RequestCtx) {
		mu.Lock()
		defer mu.Unlock()
		ctx.SetStatusCode(status)
	})
	secrets := []string{"CRED-o2-client-id-5c1e", "CRED-o2-client-secret-93aa", o1ConsumerKey, o1ConsumerSecret, o1Token, o1TokenSecret}
	secret := func(v string) string { secrets = append(secrets, v); return v }
	var routes []string
	route := func(slug string, cfg store.APIConfig, sealAPI func(a *store.ExternalAPI), fill func(c *store.Connection)) {
		a := e.api(slug, cfg, sealAPI)
		routes = append(routes, "/"+slug+"/"+e.conn(a, fill).ID)
	}
	route("keyhdr", store.APIConfig{BaseURL: up.url, AuthType: store.AuthAPIKey, APIKey: &store.APIKeyConfig{HeaderName: "X-Api-Key"}}, nil,
		func(c *store.Connection) {
			c.Credentials.APIKey = e.sealConn(c, "credentials.api_key", secret("CRED-apikey-header-0a1b"))
		})
	route("keyq", store.APIConfig{BaseURL: up.url, AuthType: store.AuthAPIKey, APIKey: &store.APIKeyConfig{QueryParam: "appid"}}, nil,
		func(c *store.Connection) {
			c.Credentials.APIKey = e.sealConn(c, "credentials.api_key", secret("CRED-apikey-query-2c3d"))
		})
	// The same, to an upstream that is down: the error path's logs.
	route("keyqdown", store.APIConfig{BaseURL: "http://" + closedAddr(t), AuthType: store.AuthAPIKey, APIKey: &store.APIKeyConfig{QueryParam: "appid"}}, nil,
		func(c *store.Connection) {
			c.Credentials.APIKey = e.sealConn(c, "credentials.api_key", secret("CRED-apikey-down-4e5f"))
		})
	route("bearer", store.APIConfig{BaseURL: up.url, AuthType: store.AuthBearer}, nil,
		func(c *store.Connection) {
			c.Credentials.AccessToken = e.sealConn(c, "credentials.access_token", secret("CRED-bearer-6a7b"))
		})
	route("basic", store.APIConfig{BaseURL: up.url, AuthType: store.AuthBasic}, nil, func(c *store.Connection) {
		c.Credentials.Username = e.sealConn(c, "credentials.username", secret("CRED-basic-user-8c9d"))
		c.Credentials.Password = e.sealConn(c, "credentials.password", secret("CRED-basic-pass-0e1f"))
	})
	route("sigv4", store.APIConfig{BaseURL: up.url, AuthType: store.AuthAWSSigV4, AWSSigV4: &store.AWSSigV4Config{Service: "execute-api", Region: "eu-west-1"}}, nil,
		func(c *store.Connection) {
			c.Credentials.Username = e.sealConn(c, "credentials.username", secret("AKIACREDSIGV4ID2a3b"))
			c.Credentials.Password = e.sealConn(c, "credentials.password", secret("CRED-sigv4-secret-4c5d"))
			c.Credentials.AccessToken = e.sealConn(c, "credentials.access_token", secret("CRED-sigv4-session-6e7f"))
		})
	o1a, o1c := oauth1Route(e, "oauth1", o1.ResourceURL, "")
	routes = append(routes, "/"+o1a.Slug+"/"+o1c.ID)
	acme := e.api("oauth2", store.APIConfig{BaseURL: provider.URL, AuthType: store.AuthOAuth2,
		OAuth2: &store.OAuth2Config{TokenURL: provider.TokenURL}}, func(a *store.ExternalAPI) {
		a.APIConfig.OAuth2.ClientID = e.sealAPI(a, "api_config.oauth2.client_id", provider.ClientID())
		a.APIConfig.OAuth2.ClientSecret = e.sealAPI(a, "api_config.oauth2.client_secret", provider.ClientSecret())
	})
	for _, refresh := range []string{"", "CRED-o2-refresh-never-issued-8a9b"} {
		access, issued := provider.Issue("read")
		secrets = append(secrets, access, issued)
		if refresh == "" {
			refresh = issued
		}
		secret(refresh)
		past := time.Now().UTC().Add(-time.Minute).Truncate(time.Microsecond)
		c := e.conn(acme, func(c *store.Connection) {
			c.Credentials = store.Credentials{TokenType: "Bearer", ExpiresAt: &past,
				AccessToken:  e.sealConn(c, "credentials.access_token", access),
				RefreshToken: e.sealConn(c, "credentials.refresh_token", refresh)}
		})
		routes = append(routes, "/oauth2/"+c.ID)
	}

	caller := map[string]string{
		"Authorization": "Bearer " + secret("CALLER-authz-bearer-1a2b"),
		"X-Api-Key":     secret("CALLER-x-api-key-3c4d"),
		"Cookie":        "session=" + secret("CALLER-cookie-5e6f"),
	}
	// appid is a credential for the keyq APIs only (their api_key.query_param), sent to those.
	query := "?access_token=" + secret("CALLER-query-token-9c0d") + "&page=2"
	appid := "&appid=" + secret("CALLER-appid-7a8b")
	for _, st := range []int{200, 500} {
		mu.Lock()
		status = st
		mu.Unlock()
		for _, r := range routes {
			q := query
			if strings.HasPrefix(r, "/keyq") {
				q += appid
			}
			do(t, "GET", "http://"+e.addr+r+"/resource"+q, nil, caller)
			do(t, "POST", "http://"+e.addr+r+"/resource"+q, strings.NewReader("a=1"), caller)
		}
	}
	// Refreshes that fail at the provider log their errors too.
	provider.ExpireAccessTokens()
	provider.FailNext(1, 503)
	do(t, "GET", "http://"+e.addr+routes[len(routes)-2]+"/resource", nil, caller)

	out := logs.String()
	if !strings.Contains(out, "appid="+Redacted) || !strings.Contains(out, "page=2") || !strings.Contains(out, "oauth: ") {
		t.Fatalf("the log does not look like the scripted run (redacted query, warnings):\n%s", out)
	}
	for _, l := range strings.Split(out, "\n") {
		for _, s := range secrets {
			if strings.Contains(l, s) {
				t.Errorf("log line holds credential %q:\n%s", s, l)
			}
		}
	}
	if n := len(logs.lines(t)); n != 4*len(routes)+1 {
		t.Errorf("%d access lines; want %d", n, 4*len(routes)+1)
	}
}
