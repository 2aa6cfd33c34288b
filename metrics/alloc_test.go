//go:build !race

package metrics_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/extapi/extapi/metrics"
)

// TestRecordingDoesNotAllocate is the budget: once a label combination has been seen,
// recording a request — every call the proxy makes on its hot path — allocates nothing.
// (The race detector allocates, hence the build tag.)
func TestRecordingDoesNotAllocate(t *testing.T) {
	m := metrics.New(prometheus.NewRegistry())
	a := m.API("stripe")
	method := []byte("POST")
	record := func() {
		m.IncInflight()
		m.Cache(metrics.CacheHit)
		a.ObserveRateLimitWait(3 * time.Millisecond)
		a.UpstreamError(metrics.ErrorReset)
		a.Retry(metrics.RetryReset)
		a.ObserveUpstream(429, 40*time.Millisecond)
		a.ObserveUpstream(200, 40*time.Millisecond)
		a.ObserveTokenRefresh(metrics.RefreshSuccess, 100*time.Millisecond)
		a.RateLimitRejected()
		m.RateLimitFallback()
		a.GatewayError(503)
		a.ObserveRequest(metrics.ParseMethodBytes(method), 200, 50*time.Millisecond)
		a.ObserveRequest(metrics.ParseMethod("PROPFIND"), 0, 50*time.Millisecond)
		m.DecInflight()
	}
	record() // first use resolves the code-keyed series; that may allocate
	if n := testing.AllocsPerRun(1000, record); n != 0 {
		t.Errorf("recording a request allocates %v times; want 0", n)
	}
}
