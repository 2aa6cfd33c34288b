package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// deliveryBuckets, in seconds: from acknowledging an event to the receiver taking it, which is
// milliseconds normally and hours while a receiver is down.
var deliveryBuckets = []float64{.01, .05, .1, .5, 1, 5, 30, 60, 300, 1800, 3600, 21600}

// Webhook holds the series of inbound webhooks. Labels: api is a configured slug (or "unknown"
// for requests that name no live API: the path is the caller's, never a label); reason is one
// of the webhook package's rejection reasons. Its methods are safe for concurrent use, and
// a nil *Webhook records nothing.
type Webhook struct {
	received  *prometheus.CounterVec // api
	verified  *prometheus.CounterVec // api
	rejected  *prometheus.CounterVec // api, reason
	ignored   *prometheus.CounterVec // api
	duplicate *prometheus.CounterVec // api
	delivered *prometheus.CounterVec // api
	retried   *prometheus.CounterVec // api
	dead      *prometheus.CounterVec // api
	latency   *prometheus.HistogramVec
}

// NewWebhook creates the webhook series and registers them on reg (nil: not exposed). Like New
// it panics if reg already holds one of the names.
func NewWebhook(reg prometheus.Registerer) *Webhook {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	w := &Webhook{
		received:  counter("extapi_webhook_received_total", "Inbound webhook requests, by API.", "api"),
		verified:  counter("extapi_webhook_verified_total", "Inbound webhook requests whose signature verified, by API.", "api"),
		rejected:  counter("extapi_webhook_rejected_total", "Inbound webhook requests refused, by API and reason (signature, stale, malformed, too_large, unknown_api, method, internal).", "api", "reason"),
		ignored:   counter("extapi_webhook_ignored_total", "Verified events acknowledged but not delivered because webhook.events does not list them, by API.", "api"),
		duplicate: counter("extapi_webhook_duplicate_total", "Verified events acknowledged but not stored again because they were seen before (replays, provider retries), by API.", "api"),
		delivered: counter("extapi_webhook_delivered_total", "Events the forward URL accepted, by API.", "api"),
		retried:   counter("extapi_webhook_retried_total", "Failed delivery attempts that will be tried again, by API.", "api"),
		dead:      counter("extapi_webhook_dead_total", "Events given up after the last delivery attempt, by API.", "api"),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "extapi_webhook_delivery_latency_seconds",
			Help:    "Time from acknowledging an event to its successful delivery, by API.",
			Buckets: deliveryBuckets,
		}, []string{"api"}),
	}
	if reg != nil {
		reg.MustRegister(w.received, w.verified, w.rejected, w.ignored, w.duplicate, w.delivered, w.retried, w.dead, w.latency)
	}
	return w
}

// Received counts a request.
func (w *Webhook) Received(api string) {
	if w != nil {
		w.received.WithLabelValues(api).Inc()
	}
}

// Verified counts a request whose signature verified.
func (w *Webhook) Verified(api string) {
	if w != nil {
		w.verified.WithLabelValues(api).Inc()
	}
}

// Rejected counts a refused request.
func (w *Webhook) Rejected(api, reason string) {
	if w != nil {
		w.rejected.WithLabelValues(api, reason).Inc()
	}
}

// Ignored counts an event filtered out by webhook.events.
func (w *Webhook) Ignored(api string) {
	if w != nil {
		w.ignored.WithLabelValues(api).Inc()
	}
}

// Duplicate counts an event seen before.
func (w *Webhook) Duplicate(api string) {
	if w != nil {
		w.duplicate.WithLabelValues(api).Inc()
	}
}

// Delivered counts a delivery and observes how long after receipt it happened.
func (w *Webhook) Delivered(api string, sinceReceived time.Duration) {
	if w != nil {
		w.delivered.WithLabelValues(api).Inc()
		w.latency.WithLabelValues(api).Observe(sinceReceived.Seconds())
	}
}

// Retried counts a failed attempt that will be retried.
func (w *Webhook) Retried(api string) {
	if w != nil {
		w.retried.WithLabelValues(api).Inc()
	}
}

// Dead counts an event given up.
func (w *Webhook) Dead(api string) {
	if w != nil {
		w.dead.WithLabelValues(api).Inc()
	}
}
