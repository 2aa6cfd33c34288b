package webhook

import (
	"context"
	"fmt"
	"time"

	"github.com/extapi/extapi/store"
)

// Defaults of the retention options of DelivererOptions.
const (
	DefaultRetention         = 7 * 24 * time.Hour
	DefaultDeadRetention     = 30 * 24 * time.Hour
	DefaultRetentionInterval = time.Hour
	DefaultRetentionBatch    = 500
	// replayHorizon is how long after its reception a captured event could still pass a
	// timestamp check: the signed timestamp is at most MaxTolerance ahead of the reception, and a
	// replay is accepted up to MaxTolerance after it. The hour on top covers clocks of
	// instances that disagree.
	replayHorizon = 2*MaxTolerance + time.Hour
	// maxRetentionBatches bounds one step of one pass; what is left waits for the next pass.
	maxRetentionBatches = 200
)

// PurgeResult says what one retention pass did.
type PurgeResult struct {
	Deleted    int64 // rows deleted (schemes with a signed timestamp)
	Tombstoned int64 // rows whose payload was emptied, kept for their dedup key
}

// Purge is one retention pass over the stored events, at the deliverer's clock:
//
//   - A delivered event older than Retention (since its delivery), or a dead one older than
//     DeadRetention (since it died: its payload stays that long for a human to redeliver), of a
//     scheme that verifies a signed timestamp (TimestampedSchemes: stripe, slack,
//     standard-webhooks, sendgrid) and received more than 2·MaxTolerance (+1h) ago, is deleted:
//     a replay of it would fail the timestamp check (401) before the dedup key is looked at.
//   - Any other such event — above all of the schemes without a timestamp (github,
//     hmac-sha256, shopify, meta, twilio), where the unique (external_api_id, dedup_key) is the
//     only thing that stops an old captured delivery from verifying and being delivered again —
//     becomes a tombstone: payload and content type emptied, purged_at set, the row and its dedup
//     key kept. Tombstones are a few hundred bytes and are kept for good: aging them out would
//     reopen the replay of every captured delivery older than that age, for as long as the
//     provider's secret is unchanged.
//
// Pending events are never touched. A negative Retention turns the pass off, a negative
// DeadRetention keeps dead events' payloads for good. Work is done in statements of at most RetentionBatch rows,
// each with its own timeout, so no statement holds locks for long and several instances may run
// passes at once.
func (d *Deliverer) Purge(ctx context.Context) (PurgeResult, error) {
	var r PurgeResult
	now := d.now()
	keep := map[string]time.Duration{store.WebhookDelivered: d.o.Retention, store.WebhookDead: d.o.DeadRetention}
	ts := TimestampedSchemes()
	for _, status := range []string{store.WebhookDelivered, store.WebhookDead} {
		if d.o.Retention < 0 || keep[status] < 0 {
			continue // off
		}
		cut := now.Add(-keep[status])
		n, err := d.batches(ctx, func(ctx context.Context) (int64, error) {
			return d.o.Store.DeleteExpiredWebhookEvents(ctx, ts, status, cut, now.Add(-replayHorizon), d.o.RetentionBatch)
		})
		r.Deleted += n
		if err != nil {
			return r, err
		}
		n, err = d.batches(ctx, func(ctx context.Context) (int64, error) {
			return d.o.Store.TombstoneWebhookEvents(ctx, status, cut, now, d.o.RetentionBatch)
		})
		r.Tombstoned += n
		if err != nil {
			return r, err
		}
	}
	return r, nil
}

// batches runs one retention statement until it touches fewer than a batch of rows.
func (d *Deliverer) batches(ctx context.Context, stmt func(context.Context) (int64, error)) (int64, error) {
	var total int64
	for range maxRetentionBatches {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		sctx, cancel := context.WithTimeout(ctx, storeTimeout)
		n, err := stmt(sctx)
		cancel()
		total += n
		if err != nil {
			return total, fmt.Errorf("webhook retention: %w", err)
		}
		if n < int64(d.o.RetentionBatch) {
			break
		}
	}
	return total, nil
}

// runRetention runs Purge at once and then every RetentionInterval until ctx is done.
func (d *Deliverer) runRetention(ctx context.Context) {
	t := time.NewTicker(d.o.RetentionInterval)
	defer t.Stop()
	for {
		r, err := d.Purge(ctx)
		if err != nil && ctx.Err() == nil {
			d.log.Error("webhook retention pass failed", "err", err, "deleted", r.Deleted, "tombstoned", r.Tombstoned)
		} else if r.Deleted > 0 || r.Tombstoned > 0 {
			d.log.Info("webhook retention pass", "deleted", r.Deleted, "tombstoned", r.Tombstoned)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
