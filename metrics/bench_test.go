package metrics_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/extapi/extapi/metrics"
)

// BenchmarkObserveRequest is what the proxy pays per request for the request series.
func BenchmarkObserveRequest(b *testing.B) {
	a := metrics.New(prometheus.NewRegistry()).API("stripe")
	method := []byte("GET")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			a.ObserveRequest(metrics.ParseMethodBytes(method), 200, 20*time.Millisecond)
			a.ObserveUpstream(200, 15*time.Millisecond)
		}
	})
}

// BenchmarkWithLabelValues is the same recording through client_golang's lookup, for
// comparison: what the pre-resolved handles save.
func BenchmarkWithLabelValues(b *testing.B) {
	reg := prometheus.NewRegistry()
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "r_total", Help: "h"}, []string{"api", "method", "code"})
	up := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "u_seconds", Help: "h"}, []string{"api", "code"})
	reg.MustRegister(reqs, up)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			reqs.WithLabelValues("stripe", "GET", "200").Inc()
			up.WithLabelValues("stripe", "200").Observe(0.015)
		}
	})
}
