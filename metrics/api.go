package metrics

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// APIMetrics records one API's series. The proxy gets it once per route (Metrics.API) and
// records into it per request: every method is lock-free and, once a label combination has
// been seen, allocation-free. Label combinations with a fixed, small set of values are
// resolved when the handle is made, so their series exist (at 0) from the start and alerts
// need no absent(); those keyed by status code are resolved on first use, so codes an API
// never returns do not appear.
type APIMetrics struct {
	m    *Metrics
	slug string

	requests         [numMethods]codeSlots[prometheus.Counter]
	requestDuration  prometheus.Observer
	upstreamDuration codeSlots[prometheus.Observer]
	upstreamErrors   [numErrorKinds]prometheus.Counter
	retries          [numRetryReasons]prometheus.Counter
	ratelimitWait    prometheus.Observer
	rejected         prometheus.Counter
	upstream429      prometheus.Counter
	tokenRefresh     [numRefreshResults]prometheus.Counter
	gatewayErrors    codeSlots[prometheus.Counter]
	// seen is the PruneAPIs pass during which a request was last recorded (or the handle made).
	seen atomic.Uint64
}

func newAPIMetrics(m *Metrics, slug string) *APIMetrics {
	a := &APIMetrics{
		m:               m,
		slug:            slug,
		requestDuration: m.requestDuration.WithLabelValues(slug),
		ratelimitWait:   m.ratelimitWait.WithLabelValues(slug),
		rejected:        m.ratelimitRejected.WithLabelValues(slug),
		upstream429:     m.upstream429.WithLabelValues(slug),
	}
	a.seen.Store(m.pass.Load())
	for k := range numErrorKinds {
		a.upstreamErrors[k] = m.upstreamErrors.WithLabelValues(slug, k.String())
	}
	for r := range numRetryReasons {
		a.retries[r] = m.retries.WithLabelValues(slug, r.String())
	}
	for r := range numRefreshResults {
		a.tokenRefresh[r] = m.tokenRefresh.WithLabelValues(slug, r.String())
	}
	return a
}

// Slug is the api label value of this handle.
func (a *APIMetrics) Slug() string { return a.slug }

// ObserveRequest records one proxied request as the caller saw it: its method, the status
// code extapi answered with (relayed or its own) and the whole duration.
func (a *APIMetrics) ObserveRequest(method Method, code int, d time.Duration) {
	if method >= numMethods {
		method = MethodOther
	}
	slot := codeSlot(code)
	c, ok := a.requests[method].load(slot)
	if !ok {
		c = a.m.requests.WithLabelValues(a.slug, methodLabels[method], codeLabels[slot])
		a.requests[method].store(slot, c)
	}
	c.Inc()
	a.requestDuration.Observe(d.Seconds())
	if p := a.m.pass.Load(); a.seen.Load() != p { // a store once per pass, not per request
		a.seen.Store(p)
	}
}

// ObserveUpstream records one upstream attempt that got a response: its status code and
// duration. A 429 also counts in extapi_upstream_429_total.
func (a *APIMetrics) ObserveUpstream(code int, d time.Duration) {
	slot := codeSlot(code)
	o, ok := a.upstreamDuration.load(slot)
	if !ok {
		o = a.m.upstreamDuration.WithLabelValues(a.slug, codeLabels[slot])
		a.upstreamDuration.store(slot, o)
	}
	o.Observe(d.Seconds())
	if code == 429 {
		a.upstream429.Inc()
	}
}

// UpstreamError counts an upstream attempt that got no HTTP response.
func (a *APIMetrics) UpstreamError(kind ErrorKind) {
	if kind >= numErrorKinds {
		kind = ErrorOther
	}
	a.upstreamErrors[kind].Inc()
}

// Retry counts an upstream request sent again.
func (a *APIMetrics) Retry(reason RetryReason) {
	if reason >= numRetryReasons {
		reason = RetryOther
	}
	a.retries[reason].Inc()
}

// ObserveRateLimitWait records how long a request waited for its rate-limit slot. Record 0
// for requests that did not wait, so the histogram's count is the number of decisions.
func (a *APIMetrics) ObserveRateLimitWait(d time.Duration) { a.ratelimitWait.Observe(d.Seconds()) }

// RateLimitRejected counts a request the rate limiter turned away.
func (a *APIMetrics) RateLimitRejected() { a.rejected.Inc() }

// ObserveTokenRefresh records one OAuth token refresh of a connection of this API.
func (a *APIMetrics) ObserveTokenRefresh(result RefreshResult, d time.Duration) {
	if result >= numRefreshResults {
		result = RefreshError
	}
	a.tokenRefresh[result].Inc()
	a.m.tokenRefreshDuration.Observe(d.Seconds())
}

// GatewayError counts an error response extapi produced itself (no route, rate limited,
// token unavailable, upstream unreachable …) with the status code it answered.
func (a *APIMetrics) GatewayError(code int) {
	slot := codeSlot(code)
	c, ok := a.gatewayErrors.load(slot)
	if !ok {
		c = a.m.gatewayErrors.WithLabelValues(a.slug, codeLabels[slot])
		a.gatewayErrors.store(slot, c)
	}
	c.Inc()
}

// codeSlots caches one metric per status-code slot, resolved on first use. Slots are grouped
// in blocks of a hundred (one per status class, and one for "other"), allocated when a code
// of that class is first seen: an API typically touches three blocks, not the 500 codes.
//
// Two goroutines resolving the same slot at once both get the same child from client_golang,
// so the race is harmless: the later store just replaces an equal value.
type codeSlots[M any] struct {
	blocks [(numCodeSlots + blockSize - 1) / blockSize]atomic.Pointer[codeBlock[M]]
}

const blockSize = 100

type codeBlock[M any] [blockSize]atomic.Pointer[cell[M]]

type cell[M any] struct{ m M }

func (s *codeSlots[M]) load(slot int) (M, bool) {
	if b := s.blocks[slot/blockSize].Load(); b != nil {
		if c := b[slot%blockSize].Load(); c != nil {
			return c.m, true
		}
	}
	var zero M
	return zero, false
}

func (s *codeSlots[M]) store(slot int, m M) {
	bp := &s.blocks[slot/blockSize]
	b := bp.Load()
	if b == nil {
		b = new(codeBlock[M])
		if !bp.CompareAndSwap(nil, b) {
			b = bp.Load()
		}
	}
	b[slot%blockSize].Store(&cell[M]{m})
}
