package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/extapi/extapi/store"
	"github.com/extapi/extapi/store/storetest"
)

// End-to-end tests of issue 5's rate limiting through the real binary's wiring: full extapi
// instances (newApp, start) on one PostgreSQL schema, each with its own Redis client, an API
// created through the management API, and callers going through the proxy listeners to a
// counting upstream. The ratelimit package's own tests cover the same at the Limiter level.

// rlUpstream is a test server on 127.0.0.1 that records when each request arrived, and its
// X-Request-Id. answer, if set, writes the response to the n-th request (0-based); else 200 "ok".
type rlUpstream struct {
	URL      string
	mu       sync.Mutex
	arrivals []time.Time
	ids      []string
}

func newRLUpstream(t *testing.T, answer func(n int, w http.ResponseWriter)) *rlUpstream {
	u := &rlUpstream{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		u.mu.Lock()
		n := len(u.arrivals)
		u.arrivals = append(u.arrivals, now)
		u.ids = append(u.ids, r.Header.Get("X-Request-Id"))
		u.mu.Unlock()
		if answer != nil {
			answer(n, w)
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	u.URL = srv.URL
	return u
}

func (u *rlUpstream) times() []time.Time {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]time.Time(nil), u.arrivals...)
}

// timesAndIDs is times with each arrival's X-Request-Id.
func (u *rlUpstream) timesAndIDs() ([]time.Time, []string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]time.Time(nil), u.arrivals...), append([]string(nil), u.ids...)
}

func (u *rlUpstream) hits() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.arrivals)
}

// rlFleet is n extapi instances sharing one PostgreSQL schema; each has a Redis client of its
// own when redisURL is set (in-process limiting otherwise).
type rlFleet struct {
	t       *testing.T
	proxies []string // proxy base URLs
	admins  []string // admin base URLs
	token   string
	client  *http.Client
}

func newRLFleet(t *testing.T, n int, redisURL string, extra map[string]string) *rlFleet {
	t.Helper()
	return newRLFleetLog(t, n, redisURL, extra, quietLog())
}

// newRLFleetLog is newRLFleet with the instances logging to log.
func newRLFleetLog(t *testing.T, n int, redisURL string, extra map[string]string, log *slog.Logger) *rlFleet {
	t.Helper()
	f := &rlFleet{t: t, token: "rl-admin-token-" + store.NewID(""),
		// Idle connections are closed before the proxy's 10s header timeout: the proxy
		// answers a connection on which no first request came in time with an unsolicited
		// 400, which would race a request sent on it at that moment.
		client: &http.Client{Timeout: 60 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: 256, IdleConnTimeout: 5 * time.Second}}}
	t.Cleanup(f.client.CloseIdleConnections)
	dbURL, k := storetest.PostgresURL(t), key(t)
	for i := 0; i < n; i++ {
		vars := map[string]string{
			"EXTAPI_DATABASE_URL": dbURL, "EXTAPI_ENCRYPTION_KEYS": "1:" + k, "EXTAPI_REDIS_URL": redisURL,
			"EXTAPI_ADMIN_TOKEN": f.token, "EXTAPI_ADMIN_ADDR": "127.0.0.1:0", "EXTAPI_PROXY_ADDR": "127.0.0.1:0",
		}
		if redisURL == "" {
			delete(vars, "EXTAPI_REDIS_URL")
		}
		for k, v := range extra {
			vars[k] = v
		}
		a, err := newApp(context.Background(), loadCfg(t, vars), log)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			a.shutdown(ctx)
		})
		f.proxies = append(f.proxies, "http://"+a.proxyLn.Addr().String())
		f.admins = append(f.admins, "http://"+a.adminLn.Addr().String())
	}
	return f
}

// admin calls instance 0's management API and decodes its JSON answer.
func (f *rlFleet) admin(method, path string, body any, want int) map[string]any {
	f.t.Helper()
	return adminRequest(f.t, f.client, f.admins[0], f.token, method, path, body, want)
}

// createAPI creates an API keyed with an API key, with rate_limit rl (none if nil) and
// timeout_ms, and returns its id.
func (f *rlFleet) createAPI(slug, baseURL string, rl map[string]any, timeoutMS int) string {
	f.t.Helper()
	cfg := map[string]any{"base_url": baseURL, "auth_type": "api_key", "api_key": map[string]any{"key": "k"},
		"timeout_ms": timeoutMS}
	if rl != nil {
		cfg["rate_limit"] = rl
	}
	out := f.admin("POST", "/admin/external-apis", map[string]any{
		"name": slug, "slug": slug, "category": "other", "provider": slug, "api_config": cfg,
	}, http.StatusCreated)
	return out["external_api"].(map[string]any)["id"].(string)
}

func (f *rlFleet) connect(apiID, name string) string {
	f.t.Helper()
	out := f.admin("POST", "/admin/external-apis/"+apiID+"/connections", map[string]any{"connection_name": name}, http.StatusCreated)
	return out["connection"].(map[string]any)["id"].(string)
}

// rlResp is a proxied response as the caller saw it.
type rlResp struct {
	status      int
	code        string // X-Extapi-Error
	id          string // X-Request-Id
	body        string
	header      http.Header
	sent, recvd time.Time
	err         error
}

// ok: the upstream's 200 "ok", passed on.
func (r rlResp) ok() bool {
	return r.err == nil && r.status == http.StatusOK && r.body == "ok" && r.code == ""
}

func (r rlResp) String() string {
	if r.err != nil {
		return r.err.Error()
	}
	return fmt.Sprintf("%d %q %q", r.status, r.code, r.body)
}

// get sends GET /<slug>/<conn>/x through instance i's proxy.
func (f *rlFleet) get(i int, slug, conn string) rlResp {
	r := rlResp{sent: time.Now()}
	res, err := f.client.Get(f.proxies[i] + "/" + slug + "/" + conn + "/x")
	if err != nil {
		r.err, r.recvd = err, time.Now()
		return r
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	r.recvd = time.Now()
	r.status, r.code, r.body, r.header, r.err = res.StatusCode, res.Header.Get("X-Extapi-Error"), string(b), res.Header, err
	r.id = res.Header.Get("X-Request-Id")
	return r
}

// fallbacks reads extapi_ratelimit_fallback_total from instance i's /metrics; ok is false when
// the instance does not serve it.
func (f *rlFleet) fallbacks(i int) (n float64, ok bool) {
	req, _ := http.NewRequest("GET", f.admins[i]+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+f.token)
	res, err := f.client.Do(req)
	if err != nil {
		return 0, false
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return 0, false
	}
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if v, found := strings.CutPrefix(sc.Text(), "extapi_ratelimit_fallback_total "); found {
			n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return n, err == nil
		}
	}
	return 0, false
}

// rlSpan is when a request's rate-limit slot was: no earlier than from, no later than to.
type rlSpan struct{ from, to time.Time }

// rlMaxIn is the most requests whose slot surely lies in one span of length w (half-open,
// sliding): those whose whole span is inside, as ratelimit/fleet_test.go counts.
func rlMaxIn(ss []rlSpan, w time.Duration) int {
	best := 0
	for _, a := range ss {
		n := 0
		for _, s := range ss {
			if !s.from.Before(a.from) && s.to.Before(a.from.Add(w)) {
				n++
			}
		}
		best = max(best, n)
	}
	return best
}

// rlMaxArrivals is the most arrivals in one sliding window of length w, taken as they are.
func rlMaxArrivals(ts []time.Time, w time.Duration) int {
	best := 0
	for _, a := range ts {
		n := 0
		for _, b := range ts {
			if !b.Before(a) && b.Before(a.Add(w)) {
				n++
			}
		}
		best = max(best, n)
	}
	return best
}

// rlOffsets lists the arrivals in the first span d of the run (the first 200 at most), in ms
// since start.
func rlOffsets(ts []time.Time, start time.Time, d time.Duration) string {
	var b strings.Builder
	for i, x := range ts {
		if x.Sub(start) < d && i < 200 {
			fmt.Fprintf(&b, " %d", x.Sub(start).Milliseconds())
		}
	}
	return b.String()
}

// rlWaits is a log handler that keeps, from the instances' access lines ("proxy: request"),
// how long each request waited for its rate-limit slot (ratelimit_wait_ms), by request id.
type rlWaits struct {
	mu sync.Mutex
	m  map[string]time.Duration
}

func newRLWaits() *rlWaits { return &rlWaits{m: map[string]time.Duration{}} }

func (w *rlWaits) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }
func (w *rlWaits) WithAttrs([]slog.Attr) slog.Handler           { return w }
func (w *rlWaits) WithGroup(string) slog.Handler                { return w }

func (w *rlWaits) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "proxy: request" {
		return nil
	}
	var id string
	ms := -1.0
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "request_id":
			id = a.Value.String()
		case "ratelimit_wait_ms":
			if a.Value.Kind() == slog.KindFloat64 {
				ms = a.Value.Float64()
			}
		}
		return true
	})
	if id != "" && ms >= 0 {
		w.mu.Lock()
		// The limiter's wait is whole microseconds (the script's), logged as float ms.
		w.m[id] = time.Duration(math.Round(ms*1e3)) * time.Microsecond
		w.mu.Unlock()
	}
	return nil
}

func (w *rlWaits) get(id string) (time.Duration, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	d, ok := w.m[id]
	return d, ok
}

const (
	rlFleetRate    = 20
	rlFleetBurst   = rlFleetRate // the default burst: requests_per_second
	rlFleetCallers = 200
	rlFleetRun     = 10 * time.Second
)

// TestRateLimitFleet is the fleet test: three instances with a Redis client each,
// 200 callers spread round-robin over their proxies for 10s, against an API limited to 20
// requests/s in wait mode (scope api, over three connections). No second holds more than
// 20+burst of the requests' slots, the upstream sees no more than burst + 20/s in all, and
// no request fails.
//
// A request's slot is when the limiter let it go. It lies no earlier than the caller's send
// plus the wait the limiter reported (the access line's ratelimit_wait_ms: Redis computed the
// slot as its now, after the send, plus that wait), and no later than the request's arrival
// at the upstream. Both bounds are sure however loaded the machine: a stall before the slot
// or between the slot and the forwarding only widens a request's span, and a wide span is
// counted in fewer windows, never more (rlMaxIn).
func TestRateLimitFleet(t *testing.T) {
	t.Parallel()
	up := newRLUpstream(t, nil)
	waits := newRLWaits()
	// A generous Redis timeout: an in-process fallback would let each instance admit the full
	// rate, a failure of its own (TestRateLimitRedisFault covers short timeouts).
	f := newRLFleetLog(t, 3, storetest.RedisURL(), map[string]string{"EXTAPI_REDIS_TIMEOUT": "5s"}, slog.New(waits))
	// Every caller waits at most 200/20 = 10s for its slot (at most 200 are queued): a budget
	// of 15s lets all of them through.
	api := f.createAPI("fleet-rl", up.URL, map[string]any{
		"requests_per_second": rlFleetRate, "scope": "api", "mode": "wait", "max_wait_ms": 15000,
	}, 10000)
	var conns []string
	for i := range 3 {
		conns = append(conns, f.connect(api, fmt.Sprintf("c%d", i)))
	}

	// sent is when each request (by X-Request-Id) was sent.
	var (
		sentMu sync.Mutex
		sent   = map[string]time.Time{}
	)
	get := func(i int, conn string) rlResp {
		r := f.get(i, "fleet-rl", conn)
		sentMu.Lock()
		sent[r.id] = r.sent
		sentMu.Unlock()
		return r
	}

	// Warm up: every instance has each connection's route cached, its Redis connections open
	// and the script loaded, and a few connections to the upstream. These 18 requests (two at
	// once per instance and connection) spend most of the burst; the upstream counts them as
	// part of the run.
	start := time.Now()
	var warm sync.WaitGroup
	for i := range f.proxies {
		for _, c := range conns {
			for range 2 {
				warm.Go(func() {
					if r := get(i, c); !r.ok() {
						t.Errorf("warm-up through instance %d: %s", i, r)
					}
				})
			}
		}
	}
	warm.Wait()
	if t.Failed() {
		t.FailNow()
	}
	var (
		mu       sync.Mutex
		failures []string
		okN      atomic.Int64
		slowest  atomic.Int64
		wg       sync.WaitGroup
	)
	end := time.Now().Add(rlFleetRun)
	for i := range rlFleetCallers {
		wg.Go(func() {
			for n := 0; time.Now().Before(end); n++ {
				r := get((i+n)%3, conns[(i/3)%3])
				if took := int64(r.recvd.Sub(r.sent)); took > slowest.Load() {
					slowest.Store(took) // racy max, for the log only
				}
				if !r.ok() {
					mu.Lock()
					failures = append(failures, r.String())
					mu.Unlock()
					return
				}
				okN.Add(1)
			}
		})
	}
	wg.Wait()

	if len(failures) > 0 {
		t.Errorf("%d requests failed in wait mode, e.g. %s; want none", len(failures), failures[0])
	}
	arr, ids := up.timesAndIDs()
	if int64(len(arr)) != okN.Load()+int64(2*len(f.proxies)*len(conns)) {
		t.Errorf("upstream saw %d requests, callers got %d answers after the warm-up; want each request upstream once", len(arr), okN.Load())
	}
	if len(arr) == 0 {
		t.Fatal("the upstream saw no request")
	}
	spans := make([]rlSpan, 0, len(arr))
	last := arr[0]
	var widest time.Duration
	for i, a := range arr {
		if a.After(last) {
			last = a
		}
		s, sentOK := sent[ids[i]]
		w, waitOK := waits.get(ids[i])
		if !sentOK || !waitOK {
			t.Errorf("upstream arrival %d (X-Request-Id %q): sent known %v, wait logged %v; want both", i, ids[i], sentOK, waitOK)
			continue
		}
		sp := rlSpan{s.Add(w), a}
		if sp.to.Before(sp.from) {
			t.Errorf("request %s reached the upstream %v after it was sent; want no sooner than its reported wait %v", ids[i], a.Sub(s), w)
		}
		widest = max(widest, sp.to.Sub(sp.from))
		spans = append(spans, sp)
	}
	busiest := rlMaxIn(spans, time.Second)
	if busiest > rlFleetRate+rlFleetBurst {
		t.Errorf("%d requests had their slot in one second; want at most %d; arrivals (ms): %s",
			busiest, rlFleetRate+rlFleetBurst, rlOffsets(arr, start, 3*time.Second))
	}
	// A sure bound over the whole run: every slot lies between the start and the last
	// arrival, and GCRA admits at most burst + rate per second of that.
	if hi := rlFleetBurst + int(last.Sub(start).Seconds()*rlFleetRate) + 1; len(arr) > hi {
		t.Errorf("the upstream saw %d requests in %v; want at most %d (burst + 20/s)", len(arr), last.Sub(start), hi)
	}
	// Nor over-limited: 200 waiting callers keep the budget busy for the whole run.
	if lo := rlFleetBurst + int(rlFleetRun.Seconds()*rlFleetRate*3/4); len(arr) < lo {
		t.Errorf("the upstream saw %d requests in %v; want at least %d", len(arr), last.Sub(start), lo)
	}
	for i := range f.admins {
		if n, ok := f.fallbacks(i); ok && n != 0 {
			t.Errorf("instance %d decided %v requests in-process; want all through Redis", i, n)
		}
	}
	t.Logf("%d requests in %v (last arrival); busiest second %d surely, %d as arrived; widest slot span %v; slowest caller wait %v",
		len(arr), last.Sub(start), busiest, rlMaxArrivals(arr, time.Second), widest, time.Duration(slowest.Load()))
}

// TestRateLimitUpstream429HoldOff: the upstream answers one 429 with Retry-After: 2. Seen by
// instance A, it holds the connection's budget shut for instance B too: in wait mode B's next
// request reaches the upstream only once the two seconds are over; in reject mode B answers
// 429 rate_limited with Retry-After itself until then, and the upstream sees nothing.
func TestRateLimitUpstream429HoldOff(t *testing.T) {
	t.Parallel()
	f := newRLFleet(t, 2, storetest.RedisURL(), nil)
	// Lower bound of a hold-off of 2s as the upstream sees it: A reads Retry-After after the
	// 429 left the upstream, so the hold-off ends at least 2s after that arrival; 100ms covers
	// the clocks (Redis TIME against the test's).
	const held, slack = 2 * time.Second, 100 * time.Millisecond
	newAPI := func(slug, mode string) (*rlUpstream, string) {
		up := newRLUpstream(t, func(n int, w http.ResponseWriter) {
			if n == 0 {
				w.Header().Set("Retry-After", "2")
				w.WriteHeader(http.StatusTooManyRequests)
				io.WriteString(w, "slow down")
				return
			}
			io.WriteString(w, "ok")
		})
		api := f.createAPI(slug, up.URL, map[string]any{"requests_per_second": 100, "mode": mode, "max_wait_ms": 10000}, 5000)
		return up, f.connect(api, "c")
	}
	first := func(slug, conn string, up *rlUpstream) time.Time {
		t.Helper()
		if r := f.get(0, slug, conn); r.err != nil || r.status != http.StatusTooManyRequests || r.code != "" || r.body != "slow down" {
			t.Fatalf("through A: %s; want the upstream's 429 passed on", r)
		}
		if n := up.hits(); n != 1 {
			t.Fatalf("upstream saw %d requests; want 1 (no retry configured)", n)
		}
		return up.times()[0]
	}

	t.Run("wait", func(t *testing.T) {
		t.Parallel()
		up, conn := newAPI("holdoff-wait", "wait")
		a0 := first("holdoff-wait", conn, up)
		r := f.get(1, "holdoff-wait", conn)
		if !r.ok() {
			t.Fatalf("through B: %s; want 200 after waiting out the hold-off", r)
		}
		arr := up.times()
		if len(arr) != 2 {
			t.Fatalf("upstream saw %d requests; want 2", len(arr))
		}
		if d := arr[1].Sub(a0); d < held-slack || d > held+3*time.Second {
			t.Errorf("B's request reached the upstream %v after the 429; want about %v (held off, then sent)", d, held)
		}
	})

	t.Run("reject", func(t *testing.T) {
		t.Parallel()
		up, conn := newAPI("holdoff-reject", "reject")
		a0 := first("holdoff-reject", conn, up)
		refused := 0
		var r rlResp
		for {
			r = f.get(1, "holdoff-reject", conn)
			if r.err != nil || r.status != http.StatusTooManyRequests {
				break
			}
			if r.code != "rate_limited" {
				t.Fatalf("through B during the hold-off: %s; want 429 rate_limited", r)
			}
			if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 || s > 2 {
				t.Errorf("through B during the hold-off: Retry-After %q; want 1..2 seconds", r.header.Get("Retry-After"))
			}
			if n := up.hits(); n != 1 {
				t.Fatalf("upstream saw %d requests during the hold-off; want 1", n)
			}
			refused++
			if time.Since(a0) > held+5*time.Second {
				t.Fatalf("still refused %v after the 429; want the hold-off over after %v", time.Since(a0), held)
			}
			time.Sleep(50 * time.Millisecond) // pacing the polls
		}
		if !r.ok() {
			t.Fatalf("through B: %s; want 429 rate_limited during the hold-off, then 200", r)
		}
		arr := up.times()
		if len(arr) != 2 {
			t.Fatalf("upstream saw %d requests; want 2", len(arr))
		}
		if d := arr[1].Sub(a0); d < held-slack {
			t.Errorf("B's request reached the upstream %v after the 429; want no earlier than %v", d, held)
		}
		// B's first request left within a few milliseconds of the 429 unless the machine
		// stalled; then it may rightly have found the hold-off over.
		if refused == 0 && r.sent.Sub(a0) < held/2 {
			t.Errorf("B sent %v after the 429 and was not refused; want 429 rate_limited", r.sent.Sub(a0))
		}
		t.Logf("B refused %d times, then through %v after the 429", refused, arr[1].Sub(a0))
	})
}

// rlRedis is a redis-server of the test's own, to stop and start.
type rlRedis struct {
	t    *testing.T
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

func startRLRedis(t *testing.T) *rlRedis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server is not on PATH (%v); this test runs one of its own. Install Redis (apt-get install redis-server)", err)
	}
	// The port stays unbound while the server is down (and before it first starts): freeAddr
	// keeps it out of what the kernel gives other sockets meanwhile.
	_, port, _ := net.SplitHostPort(freeAddr(t))
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	s := &rlRedis{t: t, port: p}
	s.Start()
	t.Cleanup(s.Kill)
	return s
}

func (s *rlRedis) URL() string { return "redis://127.0.0.1:" + strconv.Itoa(s.port) + "/0" }

// Start runs the server and waits until it answers PING.
func (s *rlRedis) Start() {
	s.t.Helper()
	s.cmd = exec.Command("redis-server", "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no")
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(s.cmd, s.done)
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(s.port), MaxRetries: -1})
	defer c.Close()
	rlWaitFor(s.t, 10*time.Second, "redis-server answering PING", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		return c.Ping(ctx).Err() == nil
	})
}

// Freeze stops the process (SIGSTOP): connections hang instead of failing. Thaw resumes it.
func (s *rlRedis) Freeze() { s.cmd.Process.Signal(syscall.SIGSTOP) }
func (s *rlRedis) Thaw()   { s.cmd.Process.Signal(syscall.SIGCONT) }

// Kill stops the server and waits until it is gone.
func (s *rlRedis) Kill() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// rlWaitFor polls cond until it holds, failing the test after limit.
func rlWaitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, limit)
		}
		time.Sleep(20 * time.Millisecond) // polling for a condition
	}
}

// rlLoad runs callers that send requests through the fleet's proxies in turn until stopped,
// and keeps every response with the phase it started and ended in.
type rlLoad struct {
	phase *atomic.Int32
	mu    sync.Mutex
	got   []rlPhased
	stop  chan struct{}
	wg    sync.WaitGroup
}

type rlPhased struct {
	rlResp
	started, ended int32
}

func startRLLoad(f *rlFleet, phase *atomic.Int32, slug, conn string, callers int) *rlLoad {
	ld := &rlLoad{phase: phase, stop: make(chan struct{})}
	for i := range callers {
		ld.wg.Go(func() {
			for n := i; ; n++ {
				select {
				case <-ld.stop:
					return
				default:
				}
				p := phase.Load()
				r := f.get(n%len(f.proxies), slug, conn)
				ld.mu.Lock()
				ld.got = append(ld.got, rlPhased{r, p, phase.Load()})
				ld.mu.Unlock()
				time.Sleep(5 * time.Millisecond) // offered load, not synchronization
			}
		})
	}
	return ld
}

func (ld *rlLoad) Stop() {
	select {
	case <-ld.stop:
	default:
		close(ld.stop)
	}
	ld.wg.Wait()
}

// count is how many responses started and ended in phase p and satisfy ok.
func (ld *rlLoad) count(p int32, ok func(rlResp) bool) int {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	n := 0
	for _, r := range ld.got {
		if r.started == p && r.ended == p && ok(r.rlResp) {
			n++
		}
	}
	return n
}

func (ld *rlLoad) all() []rlPhased {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	return append([]rlPhased(nil), ld.got...)
}

func unavailable(r rlResp) bool {
	return r.err == nil && r.status == http.StatusServiceUnavailable && r.code == "rate_limiter_unavailable"
}

// TestRateLimitRedisFault: two instances on a redis-server of the test's own, under load on
// an on_redis_error allow API and a deny API; the server is killed mid-run and started again
// on the same port, then frozen (SIGSTOP) and thawed. With allow no request fails and answers
// keep coming, and afterwards a
// tight limit holds for the fleet as a whole again (through Redis, not per instance); with
// deny, every request while Redis is down gets 503 rate_limiter_unavailable within 1s, and
// requests pass again once it is back.
func TestRateLimitRedisFault(t *testing.T) {
	t.Parallel()
	srv := startRLRedis(t)
	// A Redis timeout short enough for quick refusals, long enough for a loaded machine.
	f := newRLFleet(t, 2, srv.URL(), map[string]string{"EXTAPI_REDIS_TIMEOUT": "250ms"})
	allowUp, denyUp := newRLUpstream(t, nil), newRLUpstream(t, nil)
	allowAPI := f.createAPI("fault-allow", allowUp.URL, map[string]any{
		"requests_per_second": 500, "scope": "api", "mode": "wait", "max_wait_ms": 2000, "on_redis_error": "allow",
	}, 5000)
	denyAPI := f.createAPI("fault-deny", denyUp.URL, map[string]any{
		"requests_per_second": 500, "scope": "api", "mode": "reject", "on_redis_error": "deny",
	}, 5000)
	var phase atomic.Int32 // 0 Redis up, 1 killed, 2 started again, 3 frozen, 4 thawed
	allow := startRLLoad(f, &phase, "fault-allow", f.connect(allowAPI, "c"), 4)
	deny := startRLLoad(f, &phase, "fault-deny", f.connect(denyAPI, "c"), 4)
	defer allow.Stop()
	defer deny.Stop()
	okResp := func(r rlResp) bool { return r.ok() }
	anyResp := func(rlResp) bool { return true }

	rlWaitFor(t, 30*time.Second, "20 answers of each API with Redis up", func() bool {
		return allow.count(0, okResp) >= 20 && deny.count(0, okResp) >= 20
	})
	srv.Kill()
	phase.Store(1)
	rlWaitFor(t, 30*time.Second, "30 answers of each API with Redis killed", func() bool {
		return allow.count(1, anyResp) >= 30 && deny.count(1, anyResp) >= 30
	})
	var fallbacks [2]float64
	var haveMetric bool
	for i := range fallbacks {
		fallbacks[i], haveMetric = f.fallbacks(i)
	}
	phase.Store(2)
	srv.Start()
	rlWaitFor(t, 30*time.Second, "deny API answering 200 again after the restart", func() bool {
		return deny.count(2, okResp) >= 10
	})
	rlWaitFor(t, 30*time.Second, "allow API answering again after the restart", func() bool {
		return allow.count(2, okResp) >= 10
	})
	// Frozen (SIGSTOP): connections hang instead of failing; the Redis timeout must cut them.
	srv.Freeze()
	phase.Store(3)
	rlWaitFor(t, 30*time.Second, "30 answers of each API with Redis frozen", func() bool {
		return allow.count(3, anyResp) >= 30 && deny.count(3, anyResp) >= 30
	})
	phase.Store(4)
	srv.Thaw()
	rlWaitFor(t, 30*time.Second, "deny API answering 200 again after the thaw", func() bool {
		return deny.count(4, okResp) >= 10
	})

	// Limiting resumed, through Redis: a fresh API allowing 5 a minute (burst 5) for the whole
	// API admits 5 of 20 requests spread over both instances. Decided in-process (an instance
	// still in fallback), each instance would admit 5 of its own. An instance probes Redis
	// again one probe interval after a failure, so this is polled, with a fresh API each time.
	var tightHits, tightAllowed, tries int
	rlWaitFor(t, 30*time.Second, "a tight limit enforced fleet-wide after the restart", func() bool {
		tries++
		up := newRLUpstream(t, nil)
		slug := fmt.Sprintf("fault-tight-%d", tries)
		api := f.createAPI(slug, up.URL, map[string]any{
			"requests_per_minute": 5, "burst": 5, "scope": "api", "mode": "reject", "on_redis_error": "allow",
		}, 5000)
		conn := f.connect(api, "c")
		start := time.Now()
		ok := 0
		for i := range 20 {
			r := f.get(i%2, slug, conn)
			switch {
			case r.ok():
				ok++
			case r.err == nil && r.status == http.StatusTooManyRequests && r.code == "rate_limited":
			default:
				t.Fatalf("tight API after the restart: %s; want 200 or 429 rate_limited", r)
			}
		}
		tightHits, tightAllowed = up.hits(), 5+int(time.Since(start)/(12*time.Second))
		if tightHits != ok {
			t.Fatalf("tight API: upstream saw %d requests, callers got %d answers", tightHits, ok)
		}
		return tightHits <= tightAllowed
	})
	allow.Stop()
	deny.Stop()

	slowAllow := time.Duration(0)
	for _, r := range allow.all() {
		if !r.ok() {
			t.Errorf("allow API, phase %d..%d: %s; want every request answered 200 by the upstream", r.started, r.ended, r)
		}
		slowAllow = max(slowAllow, r.recvd.Sub(r.sent))
	}
	// A request waits at most one Redis timeout and its slot (milliseconds at 500/s); a hang
	// would be the Redis client's socket timeouts, seconds.
	if slowAllow > 2*time.Second {
		t.Errorf("slowest allow request took %v; want no hang", slowAllow)
	}
	var denied, slowDeny int
	for _, r := range deny.all() {
		// Redis down from start to end (the phase changes after a kill or freeze, before a
		// start or thaw).
		strict := r.started == r.ended && (r.started == 1 || r.started == 3)
		switch {
		case strict && !unavailable(r.rlResp):
			t.Errorf("deny API with Redis killed or frozen (phase %d): %s; want 503 rate_limiter_unavailable", r.started, r)
		case !r.ok() && !unavailable(r.rlResp):
			t.Errorf("deny API, phase %d..%d: %s; want 200 or 503 rate_limiter_unavailable", r.started, r.ended, r)
		}
		if unavailable(r.rlResp) {
			denied++
			if r.recvd.Sub(r.sent) > time.Second {
				slowDeny++
			}
		}
	}
	if slowDeny > 0 {
		t.Errorf("%d of %d refusals took over 1s; want each quick", slowDeny, denied)
	}
	if haveMetric && fallbacks[0]+fallbacks[1] == 0 {
		t.Errorf("extapi_ratelimit_fallback_total is 0 on both instances after an outage under allow load; want it counted")
	}
	t.Logf("allow: %d answers (%d with Redis killed, %d frozen), slowest %v; deny: %d answers, %d refused; tight API: %d of 20 admitted after %d tries; fallbacks counted %v (metric served: %v)",
		len(allow.all()), allow.count(1, anyResp), allow.count(3, anyResp), slowAllow, len(deny.all()), denied, tightHits, tries, fallbacks, haveMetric)
}

// TestRateLimitHeaders: proxied responses carry RateLimit-Limit, -Remaining and -Reset of the
// tightest window, read from the budget the instances share: an API allowing 10 a second and
// 30 a minute (burst 10 for both), requests alternating over two instances. The minute window
// refills one request every 2s, the second window one every 100ms, so the minute window is
// the tightest throughout.
func TestRateLimitHeaders(t *testing.T) {
	t.Parallel()
	up := newRLUpstream(t, nil)
	f := newRLFleet(t, 2, storetest.RedisURL(), map[string]string{"EXTAPI_REDIS_TIMEOUT": "2s"})
	api := f.createAPI("headers-rl", up.URL, map[string]any{
		"requests_per_second": 10, "requests_per_minute": 30, "mode": "reject",
	}, 5000)
	conn := f.connect(api, "c")
	num := func(r rlResp, h string) int {
		t.Helper()
		n, err := strconv.Atoi(r.header.Get(h))
		if err != nil {
			t.Fatalf("%s: %s %q; want a number", r, h, r.header.Get(h))
		}
		return n
	}
	start := time.Now()
	var admitted, refused int
	prev := 10
	for i := range 14 {
		r := f.get(i%2, "headers-rl", conn)
		limit, rem, reset := num(r, "RateLimit-Limit"), num(r, "RateLimit-Remaining"), num(r, "RateLimit-Reset")
		if limit != 30 {
			t.Errorf("request %d: RateLimit-Limit %d; want 30, the minute window's", i, limit)
		}
		// Remaining counts down by one a request, plus what the minute window refilled.
		refill := int(time.Since(start)/(2*time.Second)) + 1
		switch {
		case r.ok():
			admitted++
			if rem < 0 || rem >= prev+refill || rem < prev-1 {
				t.Errorf("request %d (200): RateLimit-Remaining %d after %d; want one fewer (refill %d)", i, rem, prev, refill)
			}
			// Reset: the time until the minute window is full again, 2s per spent request.
			if spent := 10 - rem; reset < 1 || reset > 2*spent+1 {
				t.Errorf("request %d: RateLimit-Reset %d with %d spent; want 1..%d", i, reset, spent, 2*spent+1)
			}
			if i == 0 && (rem != 9 || reset != 2) {
				t.Errorf("first request: RateLimit-Remaining %d, Reset %d; want 9 and 2", rem, reset)
			}
		case r.err == nil && r.status == http.StatusTooManyRequests && r.code == "rate_limited":
			refused++
			if rem != 0 {
				t.Errorf("request %d (refused): RateLimit-Remaining %d; want 0", i, rem)
			}
			if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 || ra > 2 {
				t.Errorf("request %d (refused): Retry-After %q; want 1..2 seconds (the minute window's next slot)", i, r.header.Get("Retry-After"))
			}
			if reset < 1 || reset > 21 {
				t.Errorf("request %d (refused): RateLimit-Reset %d; want 1..21", i, reset)
			}
		default:
			t.Fatalf("request %d: %s; want 200 or 429 rate_limited", i, r)
		}
		prev = rem
	}
	elapsed := time.Since(start)
	if hi := 10 + int(elapsed/(2*time.Second)); admitted < 10 || admitted > hi {
		t.Errorf("%d of 14 admitted in %v; want 10..%d (the burst, plus the minute window's refill)", admitted, elapsed, hi)
	}
	if up.hits() != admitted {
		t.Errorf("upstream saw %d requests; want %d", up.hits(), admitted)
	}
	t.Logf("%d admitted, %d refused in %v", admitted, refused, elapsed)
}
