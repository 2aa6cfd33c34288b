package metrics_test

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/extapi/extapi/metrics"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// extapiFamilies lists every family New registers, as the issue names them.
var extapiFamilies = []string{
	"extapi_cache_events_total",
	"extapi_connections",
	"extapi_gateway_errors_total",
	"extapi_inflight_requests",
	"extapi_ratelimit_fallback_total",
	"extapi_ratelimit_rejected_total",
	"extapi_ratelimit_wait_seconds",
	"extapi_request_duration_seconds",
	"extapi_requests_total",
	"extapi_retries_total",
	"extapi_token_refresh_duration_seconds",
	"extapi_token_refresh_total",
	"extapi_upstream_429_total",
	"extapi_upstream_duration_seconds",
	"extapi_upstream_errors_total",
}

// script records a fixed sequence touching every series once or more.
func script(m *metrics.Metrics) {
	m.IncInflight()
	m.IncInflight()
	m.DecInflight()

	stripe := m.API("stripe")
	// A success.
	m.Cache(metrics.CacheMiss)
	stripe.ObserveRateLimitWait(0)
	stripe.ObserveUpstream(200, 120*time.Millisecond)
	stripe.ObserveRequest(metrics.MethodGet, 200, 130*time.Millisecond)
	// A retry after an upstream reset, then a success.
	m.Cache(metrics.CacheHit)
	stripe.ObserveRateLimitWait(30 * time.Millisecond)
	stripe.UpstreamError(metrics.ErrorReset)
	stripe.Retry(metrics.RetryReset)
	stripe.ObserveUpstream(201, 300*time.Millisecond)
	stripe.ObserveRequest(metrics.MethodPost, 201, 400*time.Millisecond)
	// An upstream 429, retried, then given up on: the caller sees the 429.
	m.Cache(metrics.CacheHit)
	stripe.ObserveUpstream(429, 40*time.Millisecond)
	stripe.Retry(metrics.RetryStatus429)
	stripe.ObserveUpstream(429, 40*time.Millisecond)
	stripe.ObserveRequest(metrics.MethodGet, 429, 2*time.Second)
	// Token refreshed, then one that fails for good.
	stripe.ObserveTokenRefresh(metrics.RefreshSuccess, 200*time.Millisecond)
	stripe.ObserveTokenRefresh(metrics.RefreshInvalidGrant, 80*time.Millisecond)
	stripe.GatewayError(502)
	stripe.ObserveRequest(metrics.MethodGet, 502, 90*time.Millisecond)
	// Rejected by the rate limiter while Redis is down.
	m.RateLimitFallback()
	stripe.RateLimitRejected()
	stripe.GatewayError(429)
	stripe.ObserveRequest(metrics.ParseMethod("DELETE"), 429, time.Millisecond)
	// Timeout, no response at all.
	shippo := m.API("shippo")
	shippo.UpstreamError(metrics.ErrorTimeout)
	shippo.GatewayError(504)
	shippo.ObserveRequest(metrics.ParseMethod("PROPFIND"), 504, 10*time.Second)
	// No route.
	m.Unknown().GatewayError(404)
	m.Unknown().ObserveRequest(metrics.MethodGet, 404, 50*time.Microsecond)
	m.Cache(metrics.CacheInvalidation)
	m.SetConnections([]metrics.ConnectionCount{
		{API: "stripe", Status: "active", Count: 3},
		{API: "stripe", Status: "expired", Count: 1},
		{API: "shippo", Status: "active", Count: 2},
	})
}

// TestGolden compares the exposition after the script with testdata/script.golden
// (go test ./metrics -run TestGolden -update rewrites it).
func TestGolden(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	script(metrics.New(reg))
	golden := filepath.Join("testdata", "script.golden")
	if *update {
		if err := os.WriteFile(golden, scrape(t, metrics.Handler(reg, ""), ""), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(golden)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := testutil.GatherAndCompare(reg, f); err != nil {
		t.Errorf("after the script, /metrics differs from %s (rerun with -update if intended):\n%v", golden, err)
	}
}

// TestFamilies checks that New registers every series of the issue, with the labels it names.
func TestFamilies(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	script(metrics.New(reg))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	wantLabels := map[string]string{
		"extapi_requests_total":                 "api,code,method",
		"extapi_request_duration_seconds":       "api",
		"extapi_upstream_duration_seconds":      "api,code",
		"extapi_upstream_errors_total":          "api,kind",
		"extapi_retries_total":                  "api,reason",
		"extapi_ratelimit_wait_seconds":         "api",
		"extapi_ratelimit_rejected_total":       "api",
		"extapi_ratelimit_fallback_total":       "",
		"extapi_upstream_429_total":             "api",
		"extapi_token_refresh_total":            "api,result",
		"extapi_token_refresh_duration_seconds": "",
		"extapi_connections":                    "api,status",
		"extapi_gateway_errors_total":           "api,code",
		"extapi_cache_events_total":             "event",
		"extapi_inflight_requests":              "",
	}
	var got []string
	for _, mf := range mfs {
		got = append(got, mf.GetName())
		var names []string
		for _, lp := range mf.GetMetric()[0].GetLabel() {
			names = append(names, lp.GetName())
		}
		if want, ok := wantLabels[mf.GetName()]; ok && strings.Join(names, ",") != want {
			t.Errorf("%s labels = %v; want %s", mf.GetName(), names, want)
		}
		if mf.GetHelp() == "" {
			t.Errorf("%s has no help text", mf.GetName())
		}
	}
	if strings.Join(got, " ") != strings.Join(extapiFamilies, " ") {
		t.Errorf("families = %v\nwant %v", got, extapiFamilies)
	}
}

func TestNewNilRegisterer(t *testing.T) {
	m := metrics.New(nil)
	script(m) // must not panic
}

func TestNewTwiceOnOneRegistryPanics(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics.New(reg)
	defer func() {
		if recover() == nil {
			t.Error("second New on the same registry did not panic")
		}
	}()
	metrics.New(reg)
}

func TestParseMethod(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
	}{
		{"GET", "GET"}, {"POST", "POST"}, {"PUT", "PUT"}, {"PATCH", "PATCH"}, {"DELETE", "DELETE"},
		{"HEAD", "HEAD"}, {"OPTIONS", "OPTIONS"},
		{"get", "other"}, {"", "other"}, {"CONNECT", "other"}, {"TRACE", "other"}, {"GETX", "other"},
		{strings.Repeat("A", 1000), "other"},
	} {
		if got := metrics.ParseMethod(tc.in).String(); got != tc.want {
			t.Errorf("ParseMethod(%.20q) = %s; want %s", tc.in, got, tc.want)
		}
		if got := metrics.ParseMethodBytes([]byte(tc.in)).String(); got != tc.want {
			t.Errorf("ParseMethodBytes(%.20q) = %s; want %s", tc.in, got, tc.want)
		}
	}
	if got := metrics.Method(200).String(); got != "other" {
		t.Errorf("Method(200).String() = %s; want other", got)
	}
}

func TestCodeLabel(t *testing.T) {
	for _, tc := range []struct {
		code int
		want string
	}{
		{100, "100"}, {200, "200"}, {429, "429"}, {599, "599"},
		{0, "other"}, {-1, "other"}, {99, "other"}, {600, "other"}, {1 << 40, "other"},
	} {
		if got := metrics.CodeLabel(tc.code); got != tc.want {
			t.Errorf("CodeLabel(%d) = %s; want %s", tc.code, got, tc.want)
		}
	}
}

func TestAPISlugBounded(t *testing.T) {
	m := metrics.New(nil)
	for _, tc := range []struct {
		desc, slug, want string
	}{
		{"a slug", "stripe", "stripe"},
		{"empty", "", "unknown"},
		{"spaces", "a b", "unknown"},
		{"control byte", "a\nb", "unknown"},
		{"non-ASCII", "strïpe", "unknown"},
		{"too long", strings.Repeat("a", 129), "unknown"},
		{"longest", strings.Repeat("a", 128), strings.Repeat("a", 128)},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			if got := m.API(tc.slug).Slug(); got != tc.want {
				t.Errorf("API(%q).Slug() = %q; want %q", tc.slug, got, tc.want)
			}
		})
	}
	if m.API("stripe") != m.API("stripe") {
		t.Error("API(slug) returned two handles for one slug")
	}
	if m.API("") != m.Unknown() {
		t.Error(`API("") is not Unknown()`)
	}
}

// TestLabelsBounded records 10,000 requests with random methods, status codes, error kinds
// and enum values out of range, and checks the series count stays within the label sets.
func TestLabelsBounded(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg)
	apis := []*metrics.APIMetrics{m.API("a"), m.API("b"), m.Unknown()}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		a := apis[rng.IntN(len(apis))]
		method := metrics.ParseMethod(fmt.Sprintf("M%d", rng.IntN(50)))
		if rng.IntN(2) == 0 {
			method = metrics.Method(rng.IntN(256))
		}
		code := rng.IntN(2000) - 500
		a.ObserveRequest(method, code, time.Duration(rng.Int64N(int64(time.Minute))))
		a.ObserveUpstream(code, time.Millisecond)
		a.GatewayError(code)
		a.UpstreamError(metrics.ErrorKind(rng.IntN(256)))
		a.Retry(metrics.RetryReason(rng.IntN(256)))
		a.ObserveTokenRefresh(metrics.RefreshResult(rng.IntN(256)), time.Millisecond)
		m.Cache(metrics.CacheEvent(rng.IntN(256)))
	}
	const codes = 501 // 100..599 and "other"
	for _, tc := range []struct {
		name string
		max  int
	}{
		{"extapi_requests_total", len(apis) * 8 * codes},
		{"extapi_upstream_duration_seconds", len(apis) * codes},
		{"extapi_gateway_errors_total", len(apis) * codes},
		{"extapi_upstream_errors_total", len(apis) * 5},
		{"extapi_retries_total", len(apis) * 7},
		{"extapi_token_refresh_total", len(apis) * 3},
		{"extapi_cache_events_total", 3},
	} {
		n, err := testutil.GatherAndCount(reg, tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if n > tc.max || n == 0 {
			t.Errorf("%s has %d series; want 1..%d", tc.name, n, tc.max)
		}
	}
}

func TestSetConnections(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg)
	m.SetConnections([]metrics.ConnectionCount{
		{API: "stripe", Status: "active", Count: 3},
		{API: "stripe", Status: "active", Count: 2}, // same slug in another environment
		{API: "stripe", Status: "revoked", Count: 1},
		{API: "", Status: "we ird", Count: 1},
	})
	m.SetConnections([]metrics.ConnectionCount{
		{API: "stripe", Status: "active", Count: 5},
		{API: "", Status: "we ird", Count: 1},
		{API: "shippo", Status: "error", Count: 0},
	})
	want := `
# HELP extapi_connections Connections, by API and status.
# TYPE extapi_connections gauge
extapi_connections{api="shippo",status="error"} 0
extapi_connections{api="stripe",status="active"} 5
extapi_connections{api="unknown",status="other"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "extapi_connections"); err != nil {
		t.Error(err)
	}
}

func TestRemoveAPI(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg)
	old := m.API("old")
	old.ObserveRequest(metrics.MethodGet, 200, time.Millisecond)
	m.API("kept").ObserveRequest(metrics.MethodGet, 200, time.Millisecond)
	m.RemoveAPI("old")
	m.RemoveAPI("unknown") // refused: the unknown handle stays
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			for _, lp := range mt.GetLabel() {
				if lp.GetName() == "api" && lp.GetValue() == "old" {
					t.Errorf("%s still has api=old after RemoveAPI", mf.GetName())
				}
			}
		}
	}
	if m.API("old") == old {
		t.Error("API(old) after RemoveAPI returned the removed handle")
	}
	if n, _ := testutil.GatherAndCount(reg, "extapi_requests_total"); n != 1 {
		t.Errorf("extapi_requests_total has %d series after RemoveAPI; want 1 (kept)", n)
	}
	m.Unknown().ObserveRequest(metrics.MethodGet, 404, time.Millisecond)
	if n, _ := testutil.GatherAndCount(reg, "extapi_requests_total"); n != 2 {
		t.Errorf("extapi_requests_total has %d series; want 2 (kept, unknown)", n)
	}
}

// TestPruneAPIs: an API's series go once two lists in a row lack its slug; one list
// lacking it (it may have been created while the list was read) is not enough.
func TestPruneAPIs(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg)
	for _, slug := range []string{"gone", "kept", "late"} {
		m.API(slug).ObserveRequest(metrics.MethodGet, 200, time.Millisecond)
	}
	m.Unknown().ObserveRequest(metrics.MethodGet, 404, time.Millisecond)
	series := func() int {
		t.Helper()
		n, err := testutil.GatherAndCount(reg, "extapi_requests_total")
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if got := m.PruneAPIs([]string{"kept"}); len(got) != 0 || series() != 4 {
		t.Errorf("first PruneAPIs = %v, %d series; want nothing dropped yet, 4 series", got, series())
	}
	// "late" is listed now (it was created while the first list was read): it stays.
	if got := m.PruneAPIs([]string{"kept", "late"}); !reflect.DeepEqual(got, []string{"gone"}) || series() != 3 {
		t.Errorf("second PruneAPIs = %v, %d series; want [gone] dropped, 3 series (kept, late, unknown)", got, series())
	}
	if got := m.PruneAPIs(nil); len(got) != 0 {
		t.Errorf("PruneAPIs after one more missing list = %v; want nothing (each slug must be missing twice)", got)
	}
	if got := m.PruneAPIs(nil); !reflect.DeepEqual(got, []string{"kept", "late"}) || series() != 1 {
		t.Errorf("PruneAPIs = %v, %d series; want [kept late] dropped, only unknown left", got, series())
	}
	// A handle still recording (a cached route under a slug no list holds) is not dropped; once
	// it has been idle for a whole pass, it is.
	busy := m.API("busy")
	m.PruneAPIs(nil)
	busy.ObserveRequest(metrics.MethodGet, 200, time.Millisecond)
	if got := m.PruneAPIs(nil); len(got) != 0 {
		t.Errorf("PruneAPIs = %v; want nothing dropped (busy recorded since the previous call)", got)
	}
	if got := m.PruneAPIs(nil); !reflect.DeepEqual(got, []string{"busy"}) {
		t.Errorf("PruneAPIs = %v; want [busy] dropped after a pass without requests", got)
	}
}

// TestConcurrentRecording runs many goroutines through first use of the same label values;
// under -race it checks the lazy slot tables, and the totals must be exact.
func TestConcurrentRecording(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg)
	a := m.API("stripe")
	const workers, each = 8, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				code := 200 + (w+i)%3*100 // 200, 300, 400
				m.IncInflight()
				a.ObserveRequest(metrics.MethodGet, code, time.Millisecond)
				a.ObserveUpstream(code, time.Millisecond)
				a.GatewayError(code + 2)
				m.DecInflight()
			}
		})
	}
	wg.Wait()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := map[string]float64{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			if c := mt.GetCounter(); c != nil {
				total[mf.GetName()] += c.GetValue()
			}
			if g := mt.GetGauge(); g != nil {
				total[mf.GetName()] += g.GetValue()
			}
			if h := mt.GetHistogram(); h != nil {
				total[mf.GetName()] += float64(h.GetSampleCount())
			}
		}
	}
	for name, want := range map[string]float64{
		"extapi_requests_total":            workers * each,
		"extapi_upstream_duration_seconds": workers * each,
		"extapi_gateway_errors_total":      workers * each,
		"extapi_inflight_requests":         0,
	} {
		if total[name] != want {
			t.Errorf("%s total = %v; want %v", name, total[name], want)
		}
	}
	if n, _ := testutil.GatherAndCount(reg, "extapi_requests_total"); n != 3 {
		t.Errorf("extapi_requests_total has %d series; want 3", n)
	}
}

func TestRegisterRuntime(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	if err := metrics.RegisterRuntime(reg, "1.2.3"); err != nil {
		t.Fatalf("RegisterRuntime = %v", err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, mf := range mfs {
		have[mf.GetName()] = true
		if mf.GetName() == "extapi_build_info" {
			var version string
			for _, lp := range mf.GetMetric()[0].GetLabel() {
				if lp.GetName() == "version" {
					version = lp.GetValue()
				}
			}
			if version != "1.2.3" {
				t.Errorf("extapi_build_info version = %q; want 1.2.3", version)
			}
		}
	}
	for _, name := range []string{"extapi_build_info", "go_build_info", "go_goroutines", "go_memstats_alloc_bytes", "process_cpu_seconds_total"} {
		if !have[name] {
			t.Errorf("RegisterRuntime did not register %s", name)
		}
	}
	if err := metrics.RegisterRuntime(reg, "1.2.3"); err == nil {
		t.Error("RegisterRuntime twice on one registry = nil; want an error")
	}
}
