package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// PrefixWebhookEvent is the id prefix of webhook events.
const PrefixWebhookEvent = "whev_"

// Webhook event statuses.
const (
	// WebhookPending: waiting for (another) delivery attempt, or being delivered under a lease.
	WebhookPending = "pending"
	// WebhookDelivered: the forward URL answered 2xx.
	WebhookDelivered = "delivered"
	// WebhookDead: every attempt failed; kept for inspection and manual redelivery.
	WebhookDead = "dead"
)

// WebhookStatuses lists every status, for filters.
var WebhookStatuses = []string{WebhookPending, WebhookDelivered, WebhookDead}

// ErrWebhookEventBusy: the event is being delivered right now (its lease has not run out).
var ErrWebhookEventBusy = errors.New("store: webhook event is being delivered")

// ErrWebhookEventPurged: the event's payload was emptied by retention (it is a tombstone), so
// there is nothing left to redeliver. It is an ErrConflict.
var ErrWebhookEventPurged = fmt.Errorf("%w: the webhook event's payload was purged by retention", ErrConflict)

// WebhookEvent is one verified inbound provider event on its way to the API's forward URL.
// Payload is the request body exactly as received.
type WebhookEvent struct {
	ID             string `gorm:"primaryKey"`
	ExternalAPIID  string `gorm:"column:external_api_id;not null"`
	SalesChannelID string `gorm:"not null"`
	PartnerID      string `gorm:"not null"`
	Scheme         string `gorm:"not null"`
	// DedupKey identifies the event at its provider; (ExternalAPIID, DedupKey) is unique.
	DedupKey      string `gorm:"not null"`
	EventType     string `gorm:"not null"`
	ContentType   string `gorm:"not null"`
	Payload       []byte `gorm:"not null"`
	Status        string `gorm:"not null"`
	Attempts      int    `gorm:"not null"`
	NextAttemptAt time.Time
	LockedUntil   *time.Time
	// ClaimToken names the claim that holds the lease; results of older claims are refused.
	ClaimToken  string `gorm:"not null"`
	LastStatus  int    `gorm:"not null"`
	LastError   string `gorm:"not null"`
	ReceivedAt  time.Time
	DeliveredAt *time.Time
	// UpdatedAt is the last change of status or attempt; retention counts from it (a purge
	// leaves it as it was).
	UpdatedAt time.Time
	// PurgedAt is set when retention emptied Payload (and ContentType): the row is a tombstone
	// kept for its dedup key, the replay guard. Nil while the payload is there.
	PurgedAt *time.Time
}

// TableName of the inbound webhook events.
func (WebhookEvent) TableName() string { return "webhook_events" }

// InsertWebhookEvent stores a verified event as pending, due at e.ReceivedAt (filled when zero).
// inserted is false, and nothing is written, when an event with the same API and DedupKey is
// stored already: a replay or a provider's retry.
func (s *Store) InsertWebhookEvent(ctx context.Context, e *WebhookEvent) (inserted bool, err error) {
	if e.ID == "" {
		e.ID = NewID(PrefixWebhookEvent)
	}
	if e.ReceivedAt.IsZero() {
		e.ReceivedAt = time.Now()
	}
	e.ReceivedAt = e.ReceivedAt.UTC().Truncate(time.Microsecond)
	e.NextAttemptAt, e.UpdatedAt = e.ReceivedAt, e.ReceivedAt
	e.Status = WebhookPending
	if e.Payload == nil {
		e.Payload = []byte{}
	}
	// ON CONFLICT DO NOTHING rather than catching the violation: on PostgreSQL a failed INSERT
	// would abort an enclosing transaction.
	res := s.ctx(ctx).Exec(`INSERT INTO webhook_events (id, external_api_id, sales_channel_id, partner_id, scheme,
		dedup_key, event_type, content_type, payload, status, attempts, next_attempt_at, claim_token, last_status,
		last_error, received_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, '', 0, '', ?, ?)
		ON CONFLICT (external_api_id, dedup_key) DO NOTHING`,
		e.ID, e.ExternalAPIID, e.SalesChannelID, e.PartnerID, e.Scheme, e.DedupKey, e.EventType, e.ContentType,
		e.Payload, e.Status, e.NextAttemptAt, e.ReceivedAt, e.UpdatedAt)
	if res.Error != nil {
		return false, fmt.Errorf("store: insert webhook event: %w", translate(res.Error))
	}
	return res.RowsAffected == 1, nil
}

// ClaimWebhookEvents leases up to limit pending events that are due at now and not leased by
// anyone else, until now+lease, and counts an attempt on each. Of concurrent callers on any
// number of instances each event goes to one: on PostgreSQL by SELECT … FOR UPDATE SKIP LOCKED,
// on SQLite (one instance) by doing it in one IMMEDIATE transaction. The returned events carry
// the ClaimToken that MarkWebhookDelivered and MarkWebhookFailed must present.
func (s *Store) ClaimWebhookEvents(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]WebhookEvent, error) {
	now = now.UTC().Truncate(time.Microsecond)
	until := now.Add(lease)
	token := NewID("")
	var out []WebhookEvent
	err := s.Tx(ctx, func(tx *Store) error {
		lock := ""
		if s.dialect == "postgres" {
			lock = " FOR UPDATE SKIP LOCKED"
		}
		var ids []string
		if err := tx.ctx(ctx).Raw(`SELECT id FROM webhook_events
			WHERE status = ? AND next_attempt_at <= ? AND (locked_until IS NULL OR locked_until <= ?)
			ORDER BY next_attempt_at, id LIMIT ?`+lock, WebhookPending, now, now, limit).Scan(&ids).Error; err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		if err := tx.ctx(ctx).Model(&WebhookEvent{}).Where("id IN ?", ids).Updates(map[string]any{
			"locked_until": until, "claim_token": token, "attempts": gorm.Expr("attempts + 1"), "updated_at": now,
		}).Error; err != nil {
			return err
		}
		return tx.ctx(ctx).Where("id IN ?", ids).Order("next_attempt_at, id").Find(&out).Error
	})
	if err != nil {
		return nil, fmt.Errorf("store: claim webhook events: %w", err)
	}
	return out, nil
}

// MarkWebhookDelivered records the successful delivery of a claimed event. ErrNotFound when the
// claim no longer holds (the event was claimed again or redelivered since).
func (s *Store) MarkWebhookDelivered(ctx context.Context, id, claimToken string, at time.Time, status int) error {
	at = at.UTC().Truncate(time.Microsecond)
	return s.updateClaimed(ctx, id, claimToken, map[string]any{
		"status": WebhookDelivered, "delivered_at": at, "locked_until": nil, "claim_token": "",
		"last_status": status, "last_error": "", "updated_at": at,
	})
}

// MarkWebhookFailed records a failed attempt of a claimed event: it is due again at next, or,
// when dead, it stays dead. msg says what failed (no secret, no payload). ErrNotFound when the
// claim no longer holds.
func (s *Store) MarkWebhookFailed(ctx context.Context, id, claimToken string, at, next time.Time, dead bool, status int, msg string) error {
	at = at.UTC().Truncate(time.Microsecond)
	st := WebhookPending
	if dead {
		st = WebhookDead
	}
	if len(msg) > 500 {
		msg = msg[:500]
	}
	return s.updateClaimed(ctx, id, claimToken, map[string]any{
		"status": st, "next_attempt_at": next.UTC().Truncate(time.Microsecond), "locked_until": nil, "claim_token": "",
		"last_status": status, "last_error": msg, "updated_at": at,
	})
}

func (s *Store) updateClaimed(ctx context.Context, id, token string, cols map[string]any) error {
	res := s.ctx(ctx).Model(&WebhookEvent{}).Where("id = ? AND claim_token = ? AND status = ?", id, token, WebhookPending).Updates(cols)
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// WebhookEventFilter selects webhook events, newest first. Empty fields do not restrict.
type WebhookEventFilter struct {
	Tenant
	ExternalAPIID, Status string
	Limit, Offset         int
}

// ListWebhookEvents returns one page of webhook events (without their payloads) and the total
// matching.
func (s *Store) ListWebhookEvents(ctx context.Context, f WebhookEventFilter) ([]WebhookEvent, int64, error) {
	q := f.Tenant.apply(s.ctx(ctx).Model(&WebhookEvent{}), "webhook_events")
	if f.ExternalAPIID != "" {
		q = q.Where("external_api_id = ?", f.ExternalAPIID)
	}
	if f.Status != "" {
		q = q.Where("status = ?", f.Status)
	}
	var total int64
	if err := q.Session(&gorm.Session{}).Count(&total).Error; err != nil {
		return nil, 0, err
	}
	if f.Limit > 0 {
		q = q.Limit(f.Limit).Offset(f.Offset)
	}
	var out []WebhookEvent
	if err := q.Omit("payload").Order("received_at DESC, id DESC").Find(&out).Error; err != nil {
		return nil, 0, err
	}
	return out, total, nil
}

// GetWebhookEvent returns one event, payload included, within the tenant scope.
func (s *Store) GetWebhookEvent(ctx context.Context, id string, t Tenant) (*WebhookEvent, error) {
	var e WebhookEvent
	if err := t.apply(s.ctx(ctx), "webhook_events").Where("id = ?", id).Take(&e).Error; err != nil {
		return nil, translate(err)
	}
	return &e, nil
}

// RedeliverWebhookEvent makes an event (of any status) pending and due at now with a fresh count
// of attempts, and returns it. ErrNotFound outside the tenant scope; ErrWebhookEventBusy while a
// delivery of it holds a lease; ErrWebhookEventPurged for a tombstone (no payload to send).
func (s *Store) RedeliverWebhookEvent(ctx context.Context, id string, t Tenant, now time.Time) (*WebhookEvent, error) {
	now = now.UTC().Truncate(time.Microsecond)
	var e WebhookEvent
	err := s.Tx(ctx, func(tx *Store) error {
		res := t.apply(tx.ctx(ctx).Model(&WebhookEvent{}), "webhook_events").
			Where("id = ? AND (locked_until IS NULL OR locked_until <= ?) AND purged_at IS NULL", id, now).
			Updates(map[string]any{"status": WebhookPending, "attempts": 0, "next_attempt_at": now,
				"locked_until": nil, "claim_token": "", "updated_at": now})
		if res.Error != nil {
			return translate(res.Error)
		}
		if err := t.apply(tx.ctx(ctx), "webhook_events").Omit("payload").Where("id = ?", id).Take(&e).Error; err != nil {
			return translate(err)
		}
		if res.RowsAffected == 0 && e.PurgedAt != nil {
			return ErrWebhookEventPurged
		}
		if res.RowsAffected == 0 {
			return ErrWebhookEventBusy
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &e, nil
}

// Retention of webhook events (webhook.Deliverer.Purge decides the ages and schemes). Each call
// is one statement over at most limit rows — a short transaction that holds its row locks
// briefly, so callers loop until a call returns fewer than limit. On PostgreSQL the rows are
// picked FOR UPDATE SKIP LOCKED, so concurrent passes on several instances, and admin
// redeliveries, never wait on each other; the conditions are checked again on the row that is
// updated, so a row redelivered (made pending) meanwhile is left alone. Pending events are never
// touched.

// TombstoneWebhookEvents empties the payload and content type of up to limit events of status
// (WebhookDelivered or WebhookDead) last updated before before and not purged yet, sets their
// PurgedAt to now, and says how many. The rows stay, with their dedup keys: the replay guard.
func (s *Store) TombstoneWebhookEvents(ctx context.Context, status string, before, now time.Time, limit int) (int64, error) {
	if status != WebhookDelivered && status != WebhookDead {
		return 0, fmt.Errorf("store: tombstone webhook events: status %q is not terminal", status)
	}
	cond := "status = ? AND updated_at < ? AND purged_at IS NULL"
	args := []any{status, before.UTC().Truncate(time.Microsecond)}
	empty := "CAST('' AS BYTEA)"
	if s.dialect != "postgres" {
		empty = "CAST('' AS BLOB)"
	}
	with, in := s.batch(cond, "updated_at")
	q := with + `UPDATE webhook_events SET payload = ` + empty + `, content_type = '', purged_at = ?
		WHERE id IN (` + in + `) AND ` + cond
	pick := append(append([]any{}, args...), limit)
	set := []any{now.UTC().Truncate(time.Microsecond)}
	var all []any
	if with != "" { // the pick's placeholders come first
		all = append(append(append(all, pick...), set...), args...)
	} else {
		all = append(append(append(all, set...), pick...), args...)
	}
	res := s.ctx(ctx).Exec(q, all...)
	if res.Error != nil {
		return 0, fmt.Errorf("store: tombstone webhook events: %w", translate(res.Error))
	}
	return res.RowsAffected, nil
}

// DeleteExpiredWebhookEvents deletes up to limit events of the given schemes and status
// (WebhookDelivered or WebhookDead), last updated before updatedBefore and received before
// receivedBefore, purged or not, and says how many. Only for schemes whose signatures carry a
// timestamp, and only once receivedBefore puts every replay outside any tolerance window:
// deleting the row removes the replay guard of its dedup key.
func (s *Store) DeleteExpiredWebhookEvents(ctx context.Context, schemes []string, status string, updatedBefore, receivedBefore time.Time, limit int) (int64, error) {
	if status != WebhookDelivered && status != WebhookDead {
		return 0, fmt.Errorf("store: delete webhook events: status %q is not terminal", status)
	}
	if len(schemes) == 0 {
		return 0, nil
	}
	cond := "scheme IN ? AND received_at < ? AND status = ? AND updated_at < ?"
	args := []any{schemes, receivedBefore.UTC().Truncate(time.Microsecond), status, updatedBefore.UTC().Truncate(time.Microsecond)}
	with, in := s.batch(cond, "received_at")
	q := with + `DELETE FROM webhook_events WHERE id IN (` + in + `) AND ` + cond
	all := append(append(append([]any{}, args...), limit), args...)
	res := s.ctx(ctx).Exec(q, all...)
	if res.Error != nil {
		return 0, fmt.Errorf("store: delete webhook events: %w", translate(res.Error))
	}
	return res.RowsAffected, nil
}

// batch is how a retention statement picks its rows: the ids matching cond, oldest by order
// first, at most a LIMIT (the next argument after cond's). It returns the statement's prefix and
// the subquery for "id IN (…)". On PostgreSQL the pick is a MATERIALIZED CTE locking its rows
// FOR UPDATE SKIP LOCKED (rows another transaction holds are left for the next batch): as a
// plain IN subquery the planner may rescan it per row, and each rescan, seeing the rows just
// changed no longer match, would pick the next ones, past the LIMIT. SQLite has one writer at a
// time and evaluates the IN list once.
func (s *Store) batch(cond, order string) (with, in string) {
	pick := `SELECT id FROM webhook_events WHERE ` + cond + ` ORDER BY ` + order + ` LIMIT ?`
	if s.dialect == "postgres" {
		return `WITH batch AS MATERIALIZED (` + pick + ` FOR UPDATE SKIP LOCKED) `, `SELECT id FROM batch`
	}
	return "", pick
}
