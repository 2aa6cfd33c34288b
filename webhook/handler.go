package webhook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/extapi/extapi/metrics"
	"github.com/extapi/extapi/store"
)

// Defaults of Options.
const (
	DefaultMaxBodyBytes = 1 << 20
	DefaultTolerance    = 300 * time.Second
	// MaxTolerance caps webhook.tolerance_s (the admin API refuses more, too). Retention counts
	// on it: a replay of an event received at r, with any tolerance up to MaxTolerance, is stale
	// after r + 2·MaxTolerance (the signed timestamp may be up to a tolerance ahead of r).
	MaxTolerance = 24 * time.Hour
	// storeTimeout bounds the database work of one request.
	storeTimeout = 10 * time.Second
)

// Store is what the listener and the deliverer need of the database; *store.Store implements it.
type Store interface {
	GetAPI(ctx context.Context, id string, t store.Tenant) (*store.ExternalAPI, error)
	InsertWebhookEvent(ctx context.Context, e *store.WebhookEvent) (bool, error)
	ClaimWebhookEvents(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]store.WebhookEvent, error)
	MarkWebhookDelivered(ctx context.Context, id, claimToken string, at time.Time, status int) error
	MarkWebhookFailed(ctx context.Context, id, claimToken string, at, next time.Time, dead bool, status int, msg string) error
	TombstoneWebhookEvents(ctx context.Context, status string, before, now time.Time, limit int) (int64, error)
	DeleteExpiredWebhookEvents(ctx context.Context, schemes []string, status string, updatedBefore, receivedBefore time.Time, limit int) (int64, error)
}

// Opener opens a sealed value bound to its row and field; *vault.Keyring implements it.
type Opener interface {
	Open(blob, aad []byte) ([]byte, error)
}

var _ Store = (*store.Store)(nil)

// Options wire the listener.
type Options struct {
	Store  Store
	Opener Opener
	// Metrics records the webhook series. Nil: nothing is recorded.
	Metrics *metrics.Webhook
	// Log receives one line per refused or failed request. Nil: discarded.
	Log *slog.Logger
	// MaxBodyBytes caps a request body; larger ones are answered 413. DefaultMaxBodyBytes (1 MiB)
	// if zero.
	MaxBodyBytes int64
	// Now is the clock. time.Now if nil.
	Now func() time.Time
	// Notify, when set, is called after an event is stored, so an in-process deliverer can start
	// at once instead of at its next poll (Deliverer.Notify).
	Notify func()
}

// Handler serves POST (and GET, for challenges) /webhooks/{slug}/{external_api_id}.
type Handler struct {
	opts Options
	log  *slog.Logger
	now  func() time.Time
	mux  *http.ServeMux
}

// NewHandler builds the listener's handler.
func NewHandler(opts Options) *Handler {
	h := &Handler{opts: opts, log: opts.Log, now: opts.Now, mux: http.NewServeMux()}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.opts.MaxBodyBytes == 0 {
		h.opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	h.mux.HandleFunc("POST /webhooks/{slug}/{id}", h.serve(h.receive))
	h.mux.HandleFunc("GET /webhooks/{slug}/{id}", h.serve(h.challenge))
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := h.mux.Handler(r); pattern == "" {
		api := "unknown"
		err := ErrUnknownAPI
		if strings.HasPrefix(r.URL.Path, "/webhooks/") && strings.Count(r.URL.Path, "/") == 3 {
			err = errMethod
		}
		h.opts.Metrics.Received(api)
		h.fail(w, r, api, err)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// reception is the state of one request as it goes through the stages.
type reception struct {
	api   *store.ExternalAPI
	hook  *store.Webhook
	label string // metrics api label: the API's slug once it is known
	body  []byte
	event Event
}

// serve runs a stage function and answers its error in the one place.
func (h *Handler) serve(fn func(w http.ResponseWriter, r *http.Request, rc *reception) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rc := &reception{label: "unknown"}
		err := fn(w, r, rc)
		if err == nil {
			return
		}
		h.fail(w, r, rc.label, err)
	}
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, api string, err error) {
	status, body, reason := classify(err)
	h.opts.Metrics.Rejected(api, reason)
	level := slog.LevelInfo
	if reason == ReasonInternal {
		level = slog.LevelError
	}
	// The path is the caller's; the error names what failed, never a secret or the body.
	h.log.Log(r.Context(), level, "webhook refused", "api", api, "status", status, "reason", reason, "err", err)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body+"\n")
}

// receive: resolve the API → read the body → verify → filter → store → acknowledge.
func (h *Handler) receive(w http.ResponseWriter, r *http.Request, rc *reception) error {
	if err := h.resolve(r, rc); err != nil {
		return err
	}
	if err := h.readBody(w, r, rc); err != nil {
		return err
	}
	if err := h.verify(r, rc); err != nil {
		return err
	}
	if rc.event.Challenge != nil {
		return answer(w, rc.event.Challenge)
	}
	if !Wanted(rc.hook.Events, rc.event.Types) {
		h.opts.Metrics.Ignored(rc.label)
		return answer(w, []byte("ignored"))
	}
	if err := h.persist(r, rc); err != nil {
		return err
	}
	return answer(w, []byte("ok"))
}

// resolve loads the live API named by the path; the slug must be its slug and its webhook fully
// configured, or it is not there for the provider.
func (h *Handler) resolve(r *http.Request, rc *reception) error {
	id, slug := r.PathValue("id"), r.PathValue("slug")
	if !strings.HasPrefix(id, store.PrefixAPI) || len(id) > 64 {
		h.opts.Metrics.Received(rc.label)
		return ErrUnknownAPI
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	api, err := h.opts.Store.GetAPI(ctx, id, store.Tenant{})
	if errors.Is(err, store.ErrNotFound) || err == nil && api.Slug != slug {
		h.opts.Metrics.Received(rc.label)
		return ErrUnknownAPI
	}
	if err != nil {
		h.opts.Metrics.Received(rc.label)
		return fmt.Errorf("webhook: load API: %w", err)
	}
	rc.api, rc.label = api, api.Slug
	h.opts.Metrics.Received(rc.label)
	if missing := Incomplete(api.APIConfig.Webhook); missing != "" {
		h.log.Warn("webhook received for an API whose webhook is not configured", "api", api.Slug, "missing", missing)
		return ErrUnknownAPI
	}
	rc.hook = api.APIConfig.Webhook
	return nil
}

// Incomplete names what a webhook configuration lacks to receive events ("" when nothing):
// without a forward URL and forward secret extapi could not deliver what it acknowledged.
func Incomplete(hk *store.Webhook) string {
	switch {
	case hk == nil:
		return "api_config.webhook"
	case schemes[hk.Scheme] == nil:
		return "api_config.webhook.scheme"
	case hk.Scheme == "sendgrid" && hk.PublicKey == "":
		return "api_config.webhook.public_key"
	case hk.Scheme != "sendgrid" && !hk.Secret.IsSet():
		return "api_config.webhook.secret"
	case hk.ForwardURL == "":
		return "api_config.webhook.forward_url"
	case !hk.ForwardSecret.IsSet():
		return "api_config.webhook.forward_secret"
	}
	return ""
}

func (h *Handler) readBody(w http.ResponseWriter, r *http.Request, rc *reception) error {
	if r.ContentLength > h.opts.MaxBodyBytes {
		return ErrTooLarge
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes))
	if err != nil {
		var big *http.MaxBytesError
		if errors.As(err, &big) {
			return ErrTooLarge
		}
		return fmt.Errorf("%w: reading the body: %v", ErrMalformed, err)
	}
	rc.body = b
	return nil
}

// keys opens the API's verification keys.
func (h *Handler) keys(rc *reception) (*Keys, error) {
	k := &Keys{}
	if rc.hook.Scheme == "sendgrid" {
		pks, err := ParsePublicKeys(rc.hook.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("webhook: API %s: %w", rc.api.ID, err)
		}
		k.PublicKeys = pks
		return k, nil
	}
	plain, err := h.opts.Opener.Open(rc.hook.Secret, rc.api.AAD("api_config.webhook.secret"))
	if err != nil {
		return nil, fmt.Errorf("webhook: open secret of API %s: %w", rc.api.ID, err)
	}
	k.Secrets = ParseSecrets(plain)
	return k, nil
}

func (h *Handler) verify(r *http.Request, rc *reception) error {
	k, err := h.keys(rc)
	if err != nil {
		return err
	}
	req := &Request{Header: r.Header, Body: rc.body, URL: signedURL(rc.hook.URL, r.URL.RawQuery)}
	ev, err := Verify(rc.hook.Scheme, req, k, h.now(), tolerance(rc.hook))
	if err != nil {
		return err
	}
	h.opts.Metrics.Verified(rc.label)
	rc.event = ev
	return nil
}

// signedURL is the URL a provider signs (twilio): the public webhook.url as registered, with
// the query the provider actually sent when it sent one (Twilio adds bodySHA256 to it).
func signedURL(public, rawQuery string) string {
	if rawQuery == "" {
		return public
	}
	base, _, _ := strings.Cut(public, "?")
	return base + "?" + rawQuery
}

func tolerance(hk *store.Webhook) time.Duration {
	if hk.ToleranceS > 0 {
		return min(time.Duration(hk.ToleranceS)*time.Second, MaxTolerance)
	}
	return DefaultTolerance
}

// persist writes the event before the provider hears 2xx; a replay is acknowledged unwritten.
func (h *Handler) persist(r *http.Request, rc *reception) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), storeTimeout)
	defer cancel()
	ct := r.Header.Get("Content-Type")
	if len(ct) > 200 {
		ct = ct[:200]
	}
	e := &store.WebhookEvent{
		ExternalAPIID: rc.api.ID, SalesChannelID: rc.api.SalesChannelID, PartnerID: rc.api.PartnerID,
		Scheme: rc.hook.Scheme, DedupKey: rc.event.DedupKey, EventType: rc.event.Type(), ContentType: ct,
		Payload: rc.body, ReceivedAt: h.now(),
	}
	inserted, err := h.opts.Store.InsertWebhookEvent(ctx, e)
	if err != nil {
		return err
	}
	if !inserted {
		h.opts.Metrics.Duplicate(rc.label)
		return nil
	}
	if h.opts.Notify != nil {
		h.opts.Notify()
	}
	return nil
}

// challenge answers GET: Meta's subscription check, by the verify token.
func (h *Handler) challenge(w http.ResponseWriter, r *http.Request, rc *reception) error {
	if err := h.resolve(r, rc); err != nil {
		return err
	}
	if rc.hook.Scheme != "meta" {
		return errMethod
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return ErrMalformed
	}
	var token []byte
	if rc.hook.VerifyToken.IsSet() {
		if token, err = h.opts.Opener.Open(rc.hook.VerifyToken, rc.api.AAD("api_config.webhook.verify_token")); err != nil {
			return fmt.Errorf("webhook: open verify token of API %s: %w", rc.api.ID, err)
		}
	}
	c, err := MetaChallenge(q, token)
	if err != nil {
		return err
	}
	h.opts.Metrics.Verified(rc.label)
	return answer(w, c)
}

func answer(w http.ResponseWriter, body []byte) error {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	return nil
}
