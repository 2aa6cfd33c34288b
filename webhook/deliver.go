package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/extapi/extapi/metrics"
	"github.com/extapi/extapi/store"
)

// Headers of a delivery to the forward URL.
const (
	HeaderAPI       = "X-Extapi-Api"        // the API's slug
	HeaderAPIID     = "X-Extapi-Api-Id"     // the API's id
	HeaderEventID   = "X-Extapi-Event-Id"   // extapi's event id, stable across attempts
	HeaderEventType = "X-Extapi-Event-Type" // the provider's event type, when it has one
	HeaderVerified  = "X-Extapi-Verified"   // the scheme extapi verified the event by
	HeaderAttempt   = "X-Extapi-Attempt"    // 1 for the first attempt
	HeaderTimestamp = "X-Extapi-Timestamp"  // unix seconds of this attempt, signed
	HeaderSignature = "X-Extapi-Signature"  // v1=hex(HMAC-SHA256(forward_secret, ts.id.body))
)

// Defaults of DelivererOptions.
const (
	DefaultMaxAttempts  = 12
	DefaultBackoff      = 5 * time.Second
	DefaultMaxBackoff   = time.Hour
	DefaultTimeout      = 30 * time.Second
	DefaultPollInterval = time.Second
	DefaultBatch        = 20
)

// DelivererOptions wire the deliverer.
type DelivererOptions struct {
	Store  Store
	Opener Opener
	// Client sends deliveries. Nil: an http.Client with Timeout and no redirects followed.
	Client *http.Client
	// Metrics records the webhook series. Nil: nothing is recorded.
	Metrics *metrics.Webhook
	// Log receives one line per failed attempt. Nil: discarded.
	Log *slog.Logger
	// Now is the clock (tests inject one). time.Now if nil.
	Now func() time.Time
	// MaxAttempts before an event is dead. DefaultMaxAttempts (12) if zero.
	MaxAttempts int
	// Backoff is the wait after the first failure, doubled after each further one up to
	// MaxBackoff. DefaultBackoff (5s) and DefaultMaxBackoff (1h) if zero.
	Backoff, MaxBackoff time.Duration
	// Timeout of one attempt. DefaultTimeout (30s) if zero. The lease on a claimed event is
	// twice this, so no other instance takes an event while an attempt can still be running.
	Timeout time.Duration
	// PollInterval between looks for due events in Run. DefaultPollInterval (1s) if zero.
	PollInterval time.Duration
	// Batch is how many events one claim takes. DefaultBatch (20) if zero.
	Batch int

	// Retention (see Purge): delivered events keep their payload this long after delivery.
	// DefaultRetention (7 days) if zero; negative turns the retention pass off.
	Retention time.Duration
	// DeadRetention: dead events keep their payload this long after they died, for a human to
	// redeliver. DefaultDeadRetention (30 days) if zero; negative keeps them for good.
	DeadRetention time.Duration
	// RetentionInterval between retention passes in Run (the first runs when Run starts).
	// DefaultRetentionInterval (1h) if zero.
	RetentionInterval time.Duration
	// RetentionBatch is how many rows one retention statement touches at most.
	// DefaultRetentionBatch (500) if zero.
	RetentionBatch int
}

// Deliverer sends stored events to their API's forward URL until it answers 2xx. Any number of
// Deliverers, in one process or many, may run against one database: each event is leased to
// one of them at a time.
type Deliverer struct {
	o      DelivererOptions
	log    *slog.Logger
	now    func() time.Time
	client *http.Client
	kick   chan struct{}
}

// NewDeliverer builds a deliverer; Run starts it.
func NewDeliverer(o DelivererOptions) *Deliverer {
	d := &Deliverer{o: o, log: o.Log, now: o.Now, kick: make(chan struct{}, 1)}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.now == nil {
		d.now = time.Now
	}
	def := func(v *time.Duration, x time.Duration) {
		if *v == 0 {
			*v = x
		}
	}
	def(&d.o.Backoff, DefaultBackoff)
	def(&d.o.MaxBackoff, DefaultMaxBackoff)
	def(&d.o.Timeout, DefaultTimeout)
	def(&d.o.PollInterval, DefaultPollInterval)
	if d.o.MaxAttempts == 0 {
		d.o.MaxAttempts = DefaultMaxAttempts
	}
	if d.o.Batch == 0 {
		d.o.Batch = DefaultBatch
	}
	def(&d.o.Retention, DefaultRetention)
	def(&d.o.DeadRetention, DefaultDeadRetention)
	def(&d.o.RetentionInterval, DefaultRetentionInterval)
	if d.o.RetentionBatch == 0 {
		d.o.RetentionBatch = DefaultRetentionBatch
	}
	d.client = o.Client
	if d.client == nil {
		d.client = &http.Client{Timeout: d.o.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return d
}

// Notify asks Run to look for due events now rather than at its next poll.
func (d *Deliverer) Notify() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// Run delivers due events, and runs the retention pass every RetentionInterval, until ctx is
// done, then returns once the attempts and the retention statement in flight finish.
func (d *Deliverer) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	if d.o.Retention > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.runRetention(ctx)
		}()
	}
	t := time.NewTicker(d.o.PollInterval)
	defer t.Stop()
	for {
		for {
			n, err := d.DeliverDue(ctx)
			if err != nil && ctx.Err() == nil {
				d.log.Error("webhook delivery: claim failed", "err", err)
			}
			if n < d.o.Batch || err != nil || ctx.Err() != nil {
				break // a full batch means more may be due
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-d.kick:
		}
	}
}

// DeliverDue claims the events due now (one batch) and attempts each, concurrently, and says
// how many it claimed. Every result is recorded even if ctx ends meanwhile.
func (d *Deliverer) DeliverDue(ctx context.Context) (int, error) {
	cctx, cancel := context.WithTimeout(ctx, storeTimeout)
	events, err := d.o.Store.ClaimWebhookEvents(cctx, d.now(), 2*d.o.Timeout, d.o.Batch)
	cancel()
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	for i := range events {
		wg.Add(1)
		go func(e *store.WebhookEvent) {
			defer wg.Done()
			d.attempt(context.WithoutCancel(ctx), e)
		}(&events[i])
	}
	wg.Wait()
	return len(events), nil
}

// attemptError is a failed attempt: the receiver's status (0 without a response) and what failed.
type attemptError struct {
	status int
	msg    string
	final  bool // retrying cannot help (the API is gone or misconfigured)
}

func (e *attemptError) Error() string { return e.msg }

// attempt sends one event and records the outcome.
func (d *Deliverer) attempt(ctx context.Context, e *store.WebhookEvent) {
	label := "unknown"
	status, err := d.send(ctx, e, &label)
	now := d.now()
	rctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if err == nil {
		if err := d.o.Store.MarkWebhookDelivered(rctx, e.ID, e.ClaimToken, now, status); err != nil {
			d.log.Error("webhook delivery: record success", "event", e.ID, "err", err)
			return
		}
		d.o.Metrics.Delivered(label, now.Sub(e.ReceivedAt))
		return
	}
	var ae *attemptError
	if !errors.As(err, &ae) {
		ae = &attemptError{msg: err.Error()}
	}
	dead := ae.final || e.Attempts >= d.o.MaxAttempts
	next := now.Add(d.backoff(e.Attempts))
	if err := d.o.Store.MarkWebhookFailed(rctx, e.ID, e.ClaimToken, now, next, dead, ae.status, ae.msg); err != nil {
		d.log.Error("webhook delivery: record failure", "event", e.ID, "err", err)
		return
	}
	if dead {
		d.o.Metrics.Dead(label)
		d.log.Warn("webhook event is dead", "api", label, "event", e.ID, "attempts", e.Attempts, "err", ae.msg)
		return
	}
	d.o.Metrics.Retried(label)
	d.log.Info("webhook delivery failed; will retry", "api", label, "event", e.ID, "attempt", e.Attempts,
		"next_attempt_at", next, "err", ae.msg)
}

// backoff is the wait after the attempt-th failure: Backoff·2^(attempt-1), at most MaxBackoff.
func (d *Deliverer) backoff(attempt int) time.Duration {
	b := d.o.Backoff
	for i := 1; i < attempt && b < d.o.MaxBackoff; i++ {
		b *= 2
	}
	return min(b, d.o.MaxBackoff)
}

// send loads the API (its current forward URL and secret) and posts the event.
func (d *Deliverer) send(ctx context.Context, e *store.WebhookEvent, label *string) (int, error) {
	lctx, cancel := context.WithTimeout(ctx, storeTimeout)
	api, err := d.o.Store.GetAPI(lctx, e.ExternalAPIID, store.Tenant{})
	cancel()
	if errors.Is(err, store.ErrNotFound) {
		return 0, &attemptError{msg: "the API was deleted", final: true}
	}
	if err != nil {
		return 0, &attemptError{msg: "loading the API failed"}
	}
	*label = api.Slug
	hk := api.APIConfig.Webhook
	if hk == nil || hk.ForwardURL == "" || !hk.ForwardSecret.IsSet() {
		return 0, &attemptError{msg: "the API has no webhook.forward_url and forward_secret", final: true}
	}
	key, err := d.o.Opener.Open(hk.ForwardSecret, api.AAD("api_config.webhook.forward_secret"))
	if err != nil {
		return 0, &attemptError{msg: "opening webhook.forward_secret failed", final: true}
	}
	ts := strconv.FormatInt(d.now().Unix(), 10)
	sctx, cancel := context.WithTimeout(ctx, d.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(sctx, http.MethodPost, hk.ForwardURL, bytes.NewReader(e.Payload))
	if err != nil {
		return 0, &attemptError{msg: "webhook.forward_url is not a valid URL", final: true}
	}
	if e.ContentType != "" {
		req.Header.Set("Content-Type", e.ContentType)
	}
	req.Header.Set("User-Agent", "extapi-webhook/1")
	req.Header.Set(HeaderAPI, api.Slug)
	req.Header.Set(HeaderAPIID, api.ID)
	req.Header.Set(HeaderEventID, e.ID)
	if e.EventType != "" {
		req.Header.Set(HeaderEventType, e.EventType)
	}
	req.Header.Set(HeaderVerified, e.Scheme)
	req.Header.Set(HeaderAttempt, strconv.Itoa(e.Attempts))
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, "v1="+ForwardSignature(key, ts, e.ID, e.Payload))
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, &attemptError{msg: "request failed: " + errorKind(err)}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, &attemptError{status: resp.StatusCode, msg: fmt.Sprintf("the receiver answered %d", resp.StatusCode)}
	}
	return resp.StatusCode, nil
}

// ForwardSignature is the hex HMAC-SHA256, keyed by the API's forward_secret, of
// "timestamp.event_id.body" — what a receiver recomputes to trust a delivery (and to reject
// one whose X-Extapi-Timestamp is old).
func ForwardSignature(key []byte, timestamp, eventID string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(timestamp))
	m.Write([]byte("."))
	m.Write([]byte(eventID))
	m.Write([]byte("."))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// errorKind names a transport failure without its URL (the forward URL may carry credentials).
func errorKind(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	default:
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) {
			if inner := ue.Unwrap(); inner != nil {
				return inner.Error()
			}
		}
		return "transport error"
	}
}
