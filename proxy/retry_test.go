package proxy

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/extapi/extapi/store"
	"github.com/extapi/extapi/store/storetest"
)

// sleepRecorder replaces the Handler's sleep: it records each wait and returns at once.
type sleepRecorder struct {
	mu     sync.Mutex
	waits  []time.Duration
	before func(n int) // runs at the nth wait (0-based), e.g. to start an upstream
}

func (s *sleepRecorder) sleep(d time.Duration) bool {
	s.mu.Lock()
	n := len(s.waits)
	s.waits = append(s.waits, d)
	f := s.before
	s.mu.Unlock()
	if f != nil {
		f(n)
	}
	return true
}

func (s *sleepRecorder) take() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.waits
	s.waits = nil
	return w
}

// pinnableClock is the real clock, or a fixed time while pinned.
type pinnableClock struct {
	mu sync.Mutex
	at time.Time // zero: not pinned
}

func (c *pinnableClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.at.IsZero() {
		return time.Now()
	}
	return c.at
}

func (c *pinnableClock) pin(at time.Time) {
	c.mu.Lock()
	c.at = at
	c.mu.Unlock()
}

// scripted answers with the statuses in order (and 200 once they run out), setting each
// header in hdr alongside.
func scripted(statuses []int, hdr map[string]string) func(ctx *fasthttp.RequestCtx) {
	var mu sync.Mutex
	i := 0
	return func(ctx *fasthttp.RequestCtx) {
		mu.Lock()
		n := i
		i++
		mu.Unlock()
		if n < len(statuses) {
			ctx.SetStatusCode(statuses[n])
			for k, v := range hdr {
				ctx.Response.Header.Set(k, v)
			}
			ctx.SetBodyString("refused")
			return
		}
		ctx.SetBodyString("ok")
	}
}

func TestRetries(t *testing.T) {
	rec := &sleepRecorder{}
	clock := &pinnableClock{}
	e := newProxyEnvWith(t, storetest.Open(t, storetest.SQLiteURL(t)), newKeyring(t), Options{BufferLimit: 1024},
		func(h *Handler) {
			h.now = clock.Now
			h.sleep = rec.sleep
			h.jitter = func(max time.Duration) time.Duration { return max } // the whole backoff
		})
	retry := &store.RetryConfig{MaxRetries: 3, BackoffMS: 100}
	ms := time.Millisecond
	cases := []struct {
		desc      string
		method    string
		header    map[string]string // of the caller's request
		body      string
		statuses  []int             // the upstream's answers before 200
		upHeader  map[string]string // sent with them
		dateIn    time.Duration     // sends Retry-After as the HTTP date this far ahead of the pinned clock
		timeoutMS int
		backoffMS int
		hits      int
		status    int
		waits     []time.Duration // nil: no wait
	}{
		{desc: "GET is retried until it succeeds", method: "GET", statuses: []int{503, 503},
			hits: 3, status: 200, waits: []time.Duration{100 * ms, 200 * ms}},
		{desc: "GET gives up after max_retries, passing the last answer on", method: "GET", statuses: []int{503, 502, 504, 503},
			hits: 4, status: 503, waits: []time.Duration{100 * ms, 200 * ms, 400 * ms}},
		{desc: "PUT and 502", method: "PUT", body: "x", statuses: []int{502}, hits: 2, status: 200, waits: []time.Duration{100 * ms}},
		{desc: "DELETE and 504", method: "DELETE", statuses: []int{504}, hits: 2, status: 200, waits: []time.Duration{100 * ms}},
		{desc: "a 500 is not retried", method: "GET", statuses: []int{500}, hits: 1, status: 500},
		{desc: "POST without Idempotency-Key is not retried", method: "POST", body: "pay", statuses: []int{503},
			hits: 1, status: 503},
		{desc: "POST with Idempotency-Key is retried", method: "POST", body: "pay", header: map[string]string{"Idempotency-Key": "k1"},
			statuses: []int{503}, hits: 2, status: 200, waits: []time.Duration{100 * ms}},
		{desc: "Retry-After in seconds is honoured", method: "POST", header: map[string]string{"Idempotency-Key": "k2"},
			statuses: []int{429}, upHeader: map[string]string{"Retry-After": "2"}, hits: 2, status: 200, waits: []time.Duration{2 * time.Second}},
		{desc: "Retry-After as an HTTP date is honoured", method: "GET", statuses: []int{503},
			dateIn: 3 * time.Second, hits: 2, status: 200, waits: []time.Duration{3 * time.Second}},
		{desc: "a Retry-After beyond the deadline ends the retries", method: "GET", timeoutMS: 1000, statuses: []int{503},
			upHeader: map[string]string{"Retry-After": "5"}, hits: 1, status: 503},
		{desc: "a backoff beyond the deadline ends the retries", method: "GET", timeoutMS: 1000, backoffMS: 2000,
			statuses: []int{503}, hits: 1, status: 503},
		{desc: "a streamed body is not retried", method: "POST", header: map[string]string{"Idempotency-Key": "k3"},
			body: strings.Repeat("b", 4096), statuses: []int{503}, hits: 1, status: 503},
	}
	for i, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			if tc.dateIn > 0 {
				// The Handler's clock stands still at a whole second for this case, so the date
				// (which has whole seconds only) names exactly dateIn ahead of it, however long
				// the setup and the first attempt take.
				at := time.Now().Truncate(time.Second).Add(time.Second)
				clock.pin(at)
				t.Cleanup(func() { clock.pin(time.Time{}) })
				tc.upHeader = map[string]string{"Retry-After": at.Add(tc.dateIn).UTC().Format(http.TimeFormat)}
			}
			up := newUpstream(t, scripted(tc.statuses, tc.upHeader))
			rc := *retry
			if tc.backoffMS > 0 {
				rc.BackoffMS = tc.backoffMS
			}
			a := e.api(strings.Repeat("r", i+1), store.APIConfig{BaseURL: up.url, AuthType: store.AuthBearer,
				TimeoutMS: tc.timeoutMS, RetryConfig: &rc}, nil)
			c := e.conn(a, func(c *store.Connection) { c.Credentials.AccessToken = e.sealConn(c, "credentials.access_token", "t") })
			rec.take()
			r := do(t, tc.method, "http://"+e.addr+"/"+a.Slug+"/"+c.ID+"/x", strings.NewReader(tc.body), tc.header)
			if r.Status != tc.status || up.hits() != tc.hits {
				t.Errorf("status %d after %d upstream hits; want %d after %d", r.Status, up.hits(), tc.status, tc.hits)
			}
			waits := rec.take()
			if len(waits) != len(tc.waits) {
				t.Fatalf("waits = %v; want %v", waits, tc.waits)
			}
			for j := range waits {
				if waits[j] != tc.waits[j] {
					t.Errorf("wait %d = %v; want %v", j, waits[j], tc.waits[j])
				}
			}
			for _, g := range up.requests() {
				if string(g.Body) != tc.body {
					t.Errorf("upstream body = %d bytes; want the caller's %d on every attempt", len(g.Body), len(tc.body))
				}
			}
		})
	}
}

// TestRetryConnectFailure: a POST without Idempotency-Key is retried when the connect failed,
// since the upstream provably never saw it; once it was sent, a broken connection is not.
func TestRetryConnectFailure(t *testing.T) {
	rec := &sleepRecorder{}
	e := newProxyEnvWith(t, storetest.Open(t, storetest.SQLiteURL(t)), newKeyring(t), Options{},
		func(h *Handler) { h.sleep = rec.sleep })
	// Nothing listens yet, so the first connect is refused; the port stays held for the
	// upstream below, which no other socket can take meanwhile.
	port := holdPort(t)
	addr := port.addr
	a := e.api("later", store.APIConfig{BaseURL: "http://" + addr, AuthType: store.AuthBearer,
		RetryConfig: &store.RetryConfig{MaxRetries: 2, BackoffMS: 50}}, nil)
	c := e.conn(a, func(c *store.Connection) { c.Credentials.AccessToken = e.sealConn(c, "credentials.access_token", "t") })
	var up *upstream
	rec.before = func(n int) {
		if n == 0 { // the upstream comes up during the first wait
			l, err := port.listen()
			if err != nil {
				t.Error(err)
				return
			}
			up = &upstream{ln: l}
			up.srv = &fasthttp.Server{Handler: up.handle}
			go up.srv.Serve(l)
			t.Cleanup(func() { up.srv.Shutdown() })
		}
	}
	r := do(t, "POST", "http://"+e.addr+"/later/"+c.ID+"/pay", strings.NewReader("once"), nil)
	if r.Status != 200 || up == nil || up.hits() != 1 {
		t.Fatalf("status %d, upstream %v; want 200 after one retry of the refused connect, one hit", r.Status, up)
	}

	// An upstream that reads the request and drops the connection without an answer.
	drop := newUpstream(t, func(ctx *fasthttp.RequestCtx) {
		ctx.HijackSetNoResponse(true)
		ctx.Hijack(func(c net.Conn) { c.Close() })
	})
	b := e.api("drops", store.APIConfig{BaseURL: drop.url, AuthType: store.AuthBearer,
		RetryConfig: &store.RetryConfig{MaxRetries: 1, BackoffMS: 50}}, nil)
	bc := e.conn(b, func(c *store.Connection) { c.Credentials.AccessToken = e.sealConn(c, "credentials.access_token", "t") })
	for _, tc := range []struct {
		method string
		hits   int
	}{
		// GET: two attempts, each sent once more at once by the stale-connection rule.
		{"GET", 4},
		// POST: it reached the upstream, so it is neither retried nor resent.
		{"POST", 1},
	} {
		n := drop.hits()
		r := do(t, tc.method, "http://"+e.addr+"/drops/"+bc.ID+"/x", strings.NewReader("body"), nil)
		checkExtapiError(t, r, CodeUpstreamUnreachable)
		if got := drop.hits() - n; got != tc.hits {
			t.Errorf("%s: upstream hits = %d; want %d", tc.method, got, tc.hits)
		}
	}
}
