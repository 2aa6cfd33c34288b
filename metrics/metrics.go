package metrics

import (
	"runtime"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Histogram buckets, in seconds. Upstreams answer in milliseconds to tens of seconds; waits for
// a rate-limit slot are usually short; token refreshes are one HTTPS round trip.
var (
	durationBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	waitBuckets     = []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	refreshBuckets  = []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30}
)

// Metrics holds every extapi series. Its methods are safe for concurrent use.
type Metrics struct {
	requests             *prometheus.CounterVec   // api, method, code
	requestDuration      *prometheus.HistogramVec // api
	upstreamDuration     *prometheus.HistogramVec // api, code
	upstreamErrors       *prometheus.CounterVec   // api, kind
	retries              *prometheus.CounterVec   // api, reason
	ratelimitWait        *prometheus.HistogramVec // api
	ratelimitRejected    *prometheus.CounterVec   // api
	ratelimitFallback    prometheus.Counter
	upstream429          *prometheus.CounterVec // api
	tokenRefresh         *prometheus.CounterVec // api, result
	tokenRefreshDuration prometheus.Histogram
	connections          *prometheus.GaugeVec   // api, status
	gatewayErrors        *prometheus.CounterVec // api, code
	cacheEvents          [numCacheEvents]prometheus.Counter
	inflight             prometheus.Gauge

	// perAPI lists the vectors with an api label, for RemoveAPI.
	perAPI []interface {
		DeletePartialMatch(prometheus.Labels) int
	}

	mu       sync.Mutex
	apis     map[string]*APIMetrics
	unknown  *APIMetrics
	connSeen map[connKey]struct{}
	// missing are the slugs PruneAPIs last found without a live API; pass counts its calls.
	missing map[string]bool
	pass    atomic.Uint64
}

// New creates every series and registers them on reg. A nil reg registers nothing: the
// series are recorded but not exposed, which suits tests of other packages. Like
// prometheus.MustRegister, New panics if reg already holds one of the names.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "extapi_requests_total",
			Help: "Proxied requests, by API, method and the status code the caller received.",
		}, []string{"api", "method", "code"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "extapi_request_duration_seconds",
			Help:    "Duration of whole proxied requests as the caller saw them, by API.",
			Buckets: durationBuckets,
		}, []string{"api"}),
		upstreamDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "extapi_upstream_duration_seconds",
			Help:    "Duration of upstream attempts only, by API and the upstream's status code.",
			Buckets: durationBuckets,
		}, []string{"api", "code"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "extapi_upstream_errors_total",
			Help: "Upstream attempts that got no HTTP response, by API and kind (timeout, connect, reset, tls, other).",
		}, []string{"api", "kind"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "extapi_retries_total",
			Help: "Upstream requests sent again, by API and reason.",
		}, []string{"api", "reason"}),
		ratelimitWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "extapi_ratelimit_wait_seconds",
			Help:    "Time requests waited for a rate-limit slot, by API.",
			Buckets: waitBuckets,
		}, []string{"api"}),
		ratelimitRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "extapi_ratelimit_rejected_total",
			Help: "Requests the rate limiter rejected, by API.",
		}, []string{"api"}),
		ratelimitFallback: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "extapi_ratelimit_fallback_total",
			Help: "Rate-limit decisions taken in-process because Redis was unavailable.",
		}),
		upstream429: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "extapi_upstream_429_total",
			Help: "429 Too Many Requests answers from upstreams, by API.",
		}, []string{"api"}),
		tokenRefresh: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "extapi_token_refresh_total",
			Help: "OAuth token refreshes, by API and result (success, invalid_grant, error).",
		}, []string{"api", "result"}),
		tokenRefreshDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "extapi_token_refresh_duration_seconds",
			Help:    "Duration of OAuth token refreshes.",
			Buckets: refreshBuckets,
		}),
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "extapi_connections",
			Help: "Connections, by API and status.",
		}, []string{"api", "status"}),
		gatewayErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "extapi_gateway_errors_total",
			Help: "Error responses extapi produced itself rather than relayed from an upstream, by API and status code.",
		}, []string{"api", "code"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "extapi_inflight_requests",
			Help: "Proxied requests in progress.",
		}),
		apis:     map[string]*APIMetrics{},
		connSeen: map[connKey]struct{}{},
	}
	cache := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "extapi_cache_events_total",
		Help: "Route and connection cache events: hit, miss, invalidation.",
	}, []string{"event"})
	for e := range numCacheEvents {
		m.cacheEvents[e] = cache.WithLabelValues(e.String())
	}
	m.perAPI = []interface {
		DeletePartialMatch(prometheus.Labels) int
	}{
		m.requests, m.requestDuration, m.upstreamDuration, m.upstreamErrors, m.retries,
		m.ratelimitWait, m.ratelimitRejected, m.upstream429, m.tokenRefresh, m.gatewayErrors,
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.requestDuration, m.upstreamDuration, m.upstreamErrors,
			m.retries, m.ratelimitWait, m.ratelimitRejected, m.ratelimitFallback, m.upstream429,
			m.tokenRefresh, m.tokenRefreshDuration, m.connections, m.gatewayErrors, cache, m.inflight)
	}
	m.unknown = m.API(UnknownAPI)
	return m
}

// API returns the handle for one API's series, creating it on first use. Call it when routes
// are loaded, not per request: it takes a lock. slug must come from configuration, never from
// the request; an empty or unprintable slug gets the "unknown" handle.
func (m *Metrics) API(slug string) *APIMetrics {
	slug = boundedLabel(slug, UnknownAPI)
	m.mu.Lock()
	defer m.mu.Unlock()
	if a, ok := m.apis[slug]; ok {
		return a
	}
	a := newAPIMetrics(m, slug)
	m.apis[slug] = a
	return a
}

// Unknown is the handle for requests that resolve to no configured API.
func (m *Metrics) Unknown() *APIMetrics { return m.unknown }

// RemoveAPI deletes every series of an API that no longer exists, so a deleted API does not
// linger on dashboards. Handles already given out keep working but record into detached
// series; call API again after a route reload. The "unknown" API cannot be removed.
func (m *Metrics) RemoveAPI(slug string) {
	slug = boundedLabel(slug, UnknownAPI)
	if slug == UnknownAPI {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.apis, slug)
	for _, v := range m.perAPI {
		v.DeletePartialMatch(prometheus.Labels{"api": slug})
	}
}

// PruneAPIs drops the series of APIs that no longer exist; live lists the slug of every live
// API (in any tenant or environment). A slug missing from live is dropped only when it was
// missing from the previous call's list too and its handle recorded no request since that
// call: an API created while live was being read, or a route still serving under an old slug,
// keeps its series. It returns the slugs dropped, sorted.
func (m *Metrics) PruneAPIs(live []string) []string {
	keep := make(map[string]bool, len(live))
	for _, s := range live {
		keep[boundedLabel(s, UnknownAPI)] = true
	}
	pass := m.pass.Add(1) // requests recorded from now on are this pass's
	m.mu.Lock()
	var gone []string
	missing := map[string]bool{}
	for slug, a := range m.apis {
		switch {
		case slug == UnknownAPI || keep[slug]:
		case m.missing[slug] && a.seen.Load()+1 < pass: // not used since the previous call
			gone = append(gone, slug)
		default:
			missing[slug] = true
		}
	}
	m.missing = missing
	m.mu.Unlock()
	sort.Strings(gone)
	for _, slug := range gone {
		m.RemoveAPI(slug)
	}
	return gone
}

// IncInflight counts a proxied request as started; pair it with DecInflight.
func (m *Metrics) IncInflight() { m.inflight.Inc() }

// DecInflight counts a proxied request as finished.
func (m *Metrics) DecInflight() { m.inflight.Dec() }

// RateLimitFallback counts a rate-limit decision taken in-process because Redis was unavailable.
func (m *Metrics) RateLimitFallback() { m.ratelimitFallback.Inc() }

// Cache counts a cache event.
func (m *Metrics) Cache(e CacheEvent) {
	if e < numCacheEvents {
		m.cacheEvents[e].Inc()
	}
}

// ConnectionCount is the number of connections of one API in one status.
type ConnectionCount struct {
	API    string
	Status string
	Count  int
}

type connKey struct{ api, status string }

// SetConnections replaces extapi_connections with counts, as read from the store. Entries
// that map to the same labels are added up; series absent from counts are deleted rather
// than left at their last value. Empty or unprintable slugs count as "unknown", statuses as
// "other".
func (m *Metrics) SetConnections(counts []ConnectionCount) {
	sum := make(map[connKey]int, len(counts))
	for _, c := range counts {
		sum[connKey{boundedLabel(c.API, UnknownAPI), boundedLabel(c.Status, "other")}] += c.Count
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.connSeen {
		if _, ok := sum[k]; !ok {
			m.connections.DeleteLabelValues(k.api, k.status)
			delete(m.connSeen, k)
		}
	}
	for k, n := range sum {
		m.connections.WithLabelValues(k.api, k.status).Set(float64(n))
		m.connSeen[k] = struct{}{}
	}
}

// RegisterRuntime registers what every extapi process exposes besides its own series: the Go
// runtime and process collectors, go_build_info, and extapi_build_info{version, goversion}
// (always 1) with the version the binary was built as.
func RegisterRuntime(reg prometheus.Registerer, version string) error {
	if version == "" {
		version = "unknown"
	}
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "extapi_build_info",
		Help:        "extapi build information; the value is always 1.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	info.Set(1)
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(),
		info,
	} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
