package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/extapi/extapi/store"
	"github.com/extapi/extapi/store/storetest"
	"github.com/extapi/extapi/webhook"
)

func stripeHeader(secret string, ts time.Time, body string) http.Header {
	t := strconv.FormatInt(ts.Unix(), 10)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(t + "." + body))
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Stripe-Signature", "t="+t+",v1="+hex.EncodeToString(m.Sum(nil)))
	return h
}

// event loads one stored event; nil when there is none.
func (e *env) event(t *testing.T, id string) *store.WebhookEvent {
	t.Helper()
	ev, err := e.store.GetWebhookEvent(context.Background(), id, store.Tenant{})
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// eventIDs maps each stored event's dedup key to its id.
func (e *env) eventIDs(t *testing.T) map[string]string {
	t.Helper()
	list, _, err := e.store.ListWebhookEvents(context.Background(), store.WebhookEventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, ev := range list {
		out[ev.DedupKey] = ev.ID
	}
	return out
}

// TestRetention: after the retention period a delivered event of a scheme without a timestamp
// (github) is a tombstone — payload gone, row kept — and the exact same signed delivery replayed
// is acknowledged and not delivered again; a delivered stripe event is deleted, and its replay is
// refused by the timestamp check; a dead event keeps its payload until its own, longer period.
func TestRetention(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			rcv := newReceiver(t)
			fwd := httptest.NewServer(rcv)
			defer fwd.Close()
			down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(http.StatusInternalServerError)
			}))
			defer down.Close()
			e := newEnv(t, storetest.URL(t, dialect), fwd.URL)
			st := e.createAPI("st", "stripe", fwd.URL, nil)
			dead := e.createAPI("gone", "github", down.URL, nil)
			in := e.start(webhook.DelivererOptions{MaxAttempts: 1, RetentionInterval: time.Hour})
			defer in.stop()

			ghBody := `{"ref":"refs/heads/main"}`
			ghHdr := github(ghSecret, "push", "gh-1", ghBody)
			stBody := `{"id":"evt_1","type":"charge.succeeded"}`
			stHdr := stripeHeader(ghSecret, e.clk.Now(), stBody)
			deadBody := `{"ref":"refs/heads/dead"}`
			stPath, deadPath := "/webhooks/st/"+st.ID, "/webhooks/gone/"+dead.ID
			for _, p := range []struct {
				path string
				h    http.Header
				body string
			}{{e.path(), ghHdr, ghBody}, {stPath, stHdr, stBody}, {deadPath, github(ghSecret, "push", "gh-dead", deadBody), deadBody}} {
				if code, b := in.post(t, p.path, p.h, p.body); code != 200 || b != "ok" {
					t.Fatalf("POST %s = %d %q; want 200 ok", p.path, code, b)
				}
			}
			drain(t, in.d)
			if events, deliveries := rcv.count(); events != 2 || deliveries != 2 {
				t.Fatalf("receiver got %d events in %d deliveries; want 2 in 2", events, deliveries)
			}
			ids := e.eventIDs(t)
			ghID, stID, deadID := ids["gh-1"], ids["evt_1"], ids["gh-dead"]
			if ev := e.event(t, deadID); ev == nil || ev.Status != store.WebhookDead {
				t.Fatalf("event to the failing receiver = %+v; want dead", ev)
			}
			// Within the retention period nothing changes.
			e.clk.Add(6 * 24 * time.Hour)
			if r, err := in.d.Purge(context.Background()); err != nil || r != (webhook.PurgeResult{}) {
				t.Fatalf("Purge(day 6) = %+v, %v; want nothing done", r, err)
			}

			// Day 8: the pass Run starts with does the work.
			e.clk.Add(2 * 24 * time.Hour)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); in.d.Run(ctx) }()
			deadline := time.Now().Add(10 * time.Second)
			gh := e.event(t, ghID)
			for ; gh != nil && gh.PurgedAt == nil; gh = e.event(t, ghID) {
				if time.Now().After(deadline) {
					t.Fatal("Run did not tombstone the old github event")
				}
				time.Sleep(20 * time.Millisecond)
			}
			cancel()
			<-done
			if gh == nil {
				t.Fatal("the old github event was deleted; its row is the only replay guard")
			}
			if len(gh.Payload) != 0 || gh.ContentType != "" || gh.Status != store.WebhookDelivered || gh.DedupKey != "gh-1" {
				t.Errorf("github event after retention = %+v; want a delivered tombstone with its dedup key, no payload", gh)
			}
			if ev := e.event(t, stID); ev != nil {
				t.Errorf("stripe event after retention = %+v; want it deleted", ev)
			}
			if ev := e.event(t, deadID); ev == nil || string(ev.Payload) != deadBody || ev.PurgedAt != nil {
				t.Errorf("dead event on day 8 = %+v; want its payload", ev)
			}
			if _, err := e.store.RedeliverWebhookEvent(context.Background(), ghID, store.Tenant{}, e.clk.Now()); !errors.Is(err, store.ErrWebhookEventPurged) {
				t.Errorf("RedeliverWebhookEvent(tombstone) = %v; want ErrWebhookEventPurged", err)
			}

			// Replays of the captured deliveries, byte for byte.
			if code, b := in.post(t, e.path(), ghHdr, ghBody); code != 200 || b != "ok" {
				t.Errorf("replay of the tombstoned github delivery = %d %q; want 200 ok (acknowledged)", code, b)
			}
			if code, b := in.post(t, stPath, stHdr, stBody); code != 401 || b != "invalid signature\n" {
				t.Errorf("replay of the deleted stripe delivery = %d %q; want 401 (stale timestamp)", code, b)
			}
			drain(t, in.d)
			if events, deliveries := rcv.count(); events != 2 || deliveries != 2 {
				t.Errorf("after the replays the receiver got %d events in %d deliveries; want still 2 in 2", events, deliveries)
			}
			if ids := e.eventIDs(t); len(ids) != 2 || ids["gh-1"] != ghID {
				t.Errorf("stored events after the replays = %v; want the github tombstone and the dead event only", ids)
			}

			// Day 31: the dead event's period is over; a github one becomes a tombstone.
			e.clk.Add(23 * 24 * time.Hour)
			r, err := in.d.Purge(context.Background())
			if err != nil || r != (webhook.PurgeResult{Tombstoned: 1}) {
				t.Errorf("Purge(day 31) = %+v, %v; want the dead event tombstoned", r, err)
			}
			if ev := e.event(t, deadID); ev == nil || len(ev.Payload) != 0 || ev.PurgedAt == nil {
				t.Errorf("dead event on day 31 = %+v; want a tombstone", ev)
			}
			if r, err := in.d.Purge(context.Background()); err != nil || r != (webhook.PurgeResult{}) {
				t.Errorf("Purge(again) = %+v, %v; want nothing done (tombstones are kept)", r, err)
			}
		})
	}
}

// TestRetentionWaitsOutTheTolerance: with a retention shorter than the replay horizon and an API
// at the largest tolerance, a stripe event is first only tombstoned — a replay would still pass
// its timestamp check, so the row must stay to refuse it — and deleted once no replay can.
func TestRetentionWaitsOutTheTolerance(t *testing.T) {
	rcv := newReceiver(t)
	fwd := httptest.NewServer(rcv)
	defer fwd.Close()
	e := newEnv(t, storetest.SQLiteURL(t), fwd.URL)
	st := e.createAPI("st", "stripe", fwd.URL, nil, func(h *store.Webhook) { h.ToleranceS = int(webhook.MaxTolerance / time.Second) })
	in := e.start(webhook.DelivererOptions{Retention: time.Hour})
	defer in.stop()
	body := `{"id":"evt_2","type":"charge.succeeded"}`
	hdr := stripeHeader(ghSecret, e.clk.Now(), body)
	path := "/webhooks/st/" + st.ID
	if code, _ := in.post(t, path, hdr, body); code != 200 {
		t.Fatalf("POST = %d; want 200", code)
	}
	drain(t, in.d)
	e.clk.Add(2 * time.Hour)
	if r, err := in.d.Purge(context.Background()); err != nil || r != (webhook.PurgeResult{Tombstoned: 1}) {
		t.Fatalf("Purge(2h) = %+v, %v; want a tombstone, not a deletion", r, err)
	}
	if code, b := in.post(t, path, hdr, body); code != 200 || b != "ok" {
		t.Errorf("replay within the tolerance = %d %q; want 200 ok (acknowledged)", code, b)
	}
	drain(t, in.d)
	if _, deliveries := rcv.count(); deliveries != 1 {
		t.Errorf("deliveries = %d; want 1", deliveries)
	}
	e.clk.Add(2*webhook.MaxTolerance + time.Hour)
	if r, err := in.d.Purge(context.Background()); err != nil || r != (webhook.PurgeResult{Deleted: 1}) {
		t.Fatalf("Purge(past the horizon) = %+v, %v; want the row deleted", r, err)
	}
	if code, _ := in.post(t, path, hdr, body); code != 401 {
		t.Errorf("replay past the horizon = %d; want 401", code)
	}
}
