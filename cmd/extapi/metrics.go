package main

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/extapi/extapi/metrics"
	"github.com/extapi/extapi/oauth"
)

// connectionsInterval is how often extapi_connections is read from the store, and the series
// of deleted APIs dropped (app.statsInterval, which tests shorten).
const connectionsInterval = 30 * time.Second

// metricsParts are the process's Prometheus registry, extapi's series on it, and the loop that
// keeps extapi_connections current.
type metricsParts struct {
	reg  *prometheus.Registry
	m    *metrics.Metrics
	stop context.CancelFunc
	done chan struct{}
}

// startMetrics creates the registry (Go runtime, process and build info, every extapi series)
// and starts counting connections: at once, then every connectionsInterval.
func (a *app) startMetrics() error {
	reg := prometheus.NewRegistry()
	if err := metrics.RegisterRuntime(reg, version); err != nil {
		return err
	}
	p := metricsParts{reg: reg, m: metrics.New(reg), done: make(chan struct{})}
	ctx, stop := context.WithCancel(context.Background())
	p.stop = stop
	go func() {
		defer close(p.done)
		every := a.statsInterval
		if every <= 0 {
			every = connectionsInterval
		}
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			a.countConnections(ctx, p.m)
			a.pruneAPIs(ctx, p.m)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	a.metrics = p
	return nil
}

func (a *app) countConnections(ctx context.Context, m *metrics.Metrics) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	counts, err := a.store.CountConnections(ctx)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("counting connections for extapi_connections failed; will retry", "err", err)
		}
		return
	}
	out := make([]metrics.ConnectionCount, len(counts))
	for i, c := range counts {
		out[i] = metrics.ConnectionCount{API: c.APISlug, Status: c.Status, Count: c.Count}
	}
	m.SetConnections(out)
}

// pruneAPIs drops the series of APIs deleted since (metrics.PruneAPIs: after two passes that
// find no live API with the slug).
func (a *app) pruneAPIs(ctx context.Context, m *metrics.Metrics) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	live, err := a.store.LiveAPISlugs(ctx)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("listing APIs to drop the metrics of deleted ones failed; will retry", "err", err)
		}
		return
	}
	if gone := m.PruneAPIs(live); len(gone) > 0 {
		a.log.Info("dropped the metric series of deleted APIs", "apis", gone)
	}
}

// stopMetrics stops the connection count.
func (a *app) stopMetrics() {
	if a.metrics.stop == nil {
		return
	}
	a.metrics.stop()
	<-a.metrics.done
}

// withMetrics serves GET /metrics (metrics.Handler, EXTAPI_METRICS_TOKEN as bearer token when
// set) on the admin listener, in front of the admin handler, which answers everything else.
func (a *app) withMetrics(admin http.Handler) http.Handler {
	mh := metrics.Handler(a.metrics.reg, a.cfg.MetricsToken)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" {
			mh.ServeHTTP(w, r)
			return
		}
		admin.ServeHTTP(w, r)
	})
}

// refreshObserver records the Refresher's token endpoint calls in extapi_token_refresh_*.
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
