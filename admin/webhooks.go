package admin

import (
	"errors"
	"net/http"
	"time"

	"github.com/extapi/extapi/store"
	"github.com/extapi/extapi/webhook"
)

const (
	actionWebhookRedeliver = "webhook_event.redeliver"
	targetWebhookEvent     = "webhook_event"
	maxPublicKeyLen        = 8192
)

// webhookEventOut is a stored inbound webhook event as the management API shows it. The payload
// is left out: it is the provider's data, for the receiver, and can be large.
type webhookEventOut struct {
	ID             string     `json:"id"`
	ExternalAPIID  string     `json:"external_api_id"`
	SalesChannelID string     `json:"sales_channel_id"`
	PartnerID      string     `json:"partner_id"`
	Scheme         string     `json:"scheme"`
	EventType      string     `json:"event_type"`
	Status         string     `json:"status"`
	Attempts       int        `json:"attempts"`
	LastStatus     int        `json:"last_status"`
	LastError      string     `json:"last_error"`
	ReceivedAt     time.Time  `json:"received_at"`
	NextAttemptAt  time.Time  `json:"next_attempt_at"`
	DeliveredAt    *time.Time `json:"delivered_at"`
	// PurgedAt is when retention emptied the payload: the event can no longer be redelivered.
	PurgedAt *time.Time `json:"purged_at"`
}

func toWebhookEventOut(e *store.WebhookEvent) webhookEventOut {
	out := webhookEventOut{ID: e.ID, ExternalAPIID: e.ExternalAPIID, SalesChannelID: e.SalesChannelID, PartnerID: e.PartnerID,
		Scheme: e.Scheme, EventType: e.EventType, Status: e.Status, Attempts: e.Attempts, LastStatus: e.LastStatus,
		LastError: e.LastError, ReceivedAt: e.ReceivedAt.UTC(), NextAttemptAt: e.NextAttemptAt.UTC()}
	if e.DeliveredAt != nil {
		t := e.DeliveredAt.UTC()
		out.DeliveredAt = &t
	}
	if e.PurgedAt != nil {
		t := e.PurgedAt.UTC()
		out.PurgedAt = &t
	}
	return out
}

// GET /admin/webhook-events?status=…&external_api_id=…
func (s *Server) listWebhookEvents(w http.ResponseWriter, r *http.Request, who *principal) error {
	q, err := parseQuery(r, "status", "external_api_id", "limit", "offset")
	if err != nil {
		return err
	}
	f := store.WebhookEventFilter{Tenant: who.tenant, Status: q.enum("status", store.WebhookStatuses),
		ExternalAPIID: q.text("external_api_id")}
	f.Limit, f.Offset = q.page()
	if err := q.err(); err != nil {
		return err
	}
	events, total, err := s.store.ListWebhookEvents(r.Context(), f)
	if err != nil {
		return err
	}
	writePage(w, "webhook_events", events, total, f.Limit, f.Offset, toWebhookEventOut)
	return nil
}

// POST /admin/webhook-events/{id}/redeliver
//
// Makes the event pending and due now with a fresh count of attempts, whatever its status; the
// deliverer sends it again (a delivered event too: the receiver sees the same X-Extapi-Event-Id).
func (s *Server) redeliverWebhookEvent(w http.ResponseWriter, r *http.Request, who *principal) error {
	id := r.PathValue("id")
	if !validID(store.PrefixWebhookEvent, id) {
		return notFound("webhook event")
	}
	ctx := r.Context()
	var ev *store.WebhookEvent
	err := s.store.Tx(ctx, func(tx *store.Store) error {
		var err error
		if ev, err = tx.RedeliverWebhookEvent(ctx, id, who.tenant, s.now()); err != nil {
			return err
		}
		return audit(ctx, tx, who, actionWebhookRedeliver, targetWebhookEvent, ev.ID,
			store.Tenant{SalesChannelID: ev.SalesChannelID, PartnerID: ev.PartnerID}, map[string]any{"external_api_id": ev.ExternalAPIID})
	})
	if errors.Is(err, store.ErrWebhookEventBusy) {
		return withMessage(store.ErrConflict, "the event is being delivered right now; try again when the attempt is over")
	}
	if err != nil {
		return withNotFound(err, "webhook event")
	}
	writeJSON(w, http.StatusOK, map[string]any{"webhook_event": toWebhookEventOut(ev)})
	return nil
}

// validatePublicKey checks webhook.public_key: ECDSA public keys, as PEM blocks or one base64
// DER per line (how SendGrid shows its verification key).
func validatePublicKey(p *problems, path, v string) {
	if v == "" {
		return
	}
	if len(v) > maxPublicKeyLen {
		p.add(path, "too long")
		return
	}
	if _, err := webhook.ParsePublicKeys(v); err != nil {
		p.add(path, "must be ECDSA public keys, PEM or base64 DER, one per line")
	}
}
