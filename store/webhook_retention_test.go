package store_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/extapi/extapi/store"
	"github.com/extapi/extapi/store/storetest"
)

// TestWebhookEventRetention: tombstoning empties the payload of old terminal events and keeps the
// row (so a replay of its dedup key is still refused), in batches; deleting takes only the given
// schemes past both cut-offs; pending events are never touched; a tombstone is not redelivered.
func TestWebhookEventRetention(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		c := ctx(t)
		a := sampleAPI("hooks")
		if err := s.CreateAPI(c, a); err != nil {
			t.Fatal(err)
		}
		t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		// finish stores an event received at at and brings it to status at the same time.
		finish := func(scheme, key, status string, at time.Time) string {
			t.Helper()
			e := &store.WebhookEvent{ExternalAPIID: a.ID, Scheme: scheme, DedupKey: key, ContentType: "application/json",
				Payload: []byte(`{"k":"` + key + `"}`), ReceivedAt: at}
			if ok, err := s.InsertWebhookEvent(c, e); err != nil || !ok {
				t.Fatalf("InsertWebhookEvent(%s) = %v, %v", key, ok, err)
			}
			if status == store.WebhookPending {
				return e.ID
			}
			got, err := s.ClaimWebhookEvents(c, at, time.Minute, 1)
			if err != nil || len(got) != 1 || got[0].ID != e.ID {
				t.Fatalf("claim %s = %v, %v", key, got, err)
			}
			if status == store.WebhookDelivered {
				err = s.MarkWebhookDelivered(c, e.ID, got[0].ClaimToken, at, 200)
			} else {
				err = s.MarkWebhookFailed(c, e.ID, got[0].ClaimToken, at, at, true, 500, "HTTP 500")
			}
			if err != nil {
				t.Fatal(err)
			}
			return e.ID
		}
		var oldGH []string
		for i := range 5 {
			oldGH = append(oldGH, finish("github", fmt.Sprintf("gh-%d", i), store.WebhookDelivered, t0.Add(time.Duration(i)*time.Second)))
		}
		recentGH := finish("github", "gh-recent", store.WebhookDelivered, t0.Add(10*24*time.Hour))
		oldStripe := finish("stripe", "evt_old", store.WebhookDelivered, t0)
		deadGH := finish("github", "gh-dead", store.WebhookDead, t0)
		pending := finish("github", "gh-pending", store.WebhookPending, t0)
		now := t0.Add(11 * 24 * time.Hour)
		cut := t0.Add(24 * time.Hour)

		payload := func(id string) (*store.WebhookEvent, bool) {
			t.Helper()
			e, err := s.GetWebhookEvent(c, id, store.Tenant{})
			if errors.Is(err, store.ErrNotFound) {
				return nil, false
			}
			if err != nil {
				t.Fatal(err)
			}
			return e, true
		}

		// Deleting: only the schemes named, only past both cut-offs.
		if n, err := s.DeleteExpiredWebhookEvents(c, []string{"stripe"}, store.WebhookDelivered, cut, t0, 10); err != nil || n != 0 {
			t.Errorf("DeleteExpiredWebhookEvents(received cut-off before it) = %d, %v; want 0", n, err)
		}
		if n, err := s.DeleteExpiredWebhookEvents(c, []string{"stripe"}, store.WebhookDelivered, cut, cut, 10); err != nil || n != 1 {
			t.Errorf("DeleteExpiredWebhookEvents(stripe) = %d, %v; want 1", n, err)
		}
		if _, ok := payload(oldStripe); ok {
			t.Error("old stripe event still there after DeleteExpiredWebhookEvents")
		}
		if n, _ := s.DeleteExpiredWebhookEvents(c, nil, store.WebhookDelivered, cut, cut, 10); n != 0 {
			t.Errorf("DeleteExpiredWebhookEvents(no schemes) = %d; want 0", n)
		}

		// Tombstoning in batches of 2: the five old github events, not the recent one.
		var counts []int64
		for {
			n, err := s.TombstoneWebhookEvents(c, store.WebhookDelivered, cut, now, 2)
			if err != nil {
				t.Fatal(err)
			}
			counts = append(counts, n)
			if n < 2 {
				break
			}
		}
		if fmt.Sprint(counts) != "[2 2 1]" {
			t.Errorf("TombstoneWebhookEvents batches = %v; want [2 2 1]", counts)
		}
		for _, id := range oldGH {
			e, ok := payload(id)
			if !ok || len(e.Payload) != 0 || e.ContentType != "" || e.PurgedAt == nil || !e.PurgedAt.Equal(now) ||
				e.Status != store.WebhookDelivered || e.DedupKey == "" {
				t.Errorf("old github event after tombstoning = %+v, %v; want the row, delivered, payload empty, purged_at %v", e, ok, now)
			}
		}
		if e, _ := payload(recentGH); e == nil || len(e.Payload) == 0 || e.PurgedAt != nil {
			t.Errorf("recent github event = %+v; want its payload", e)
		}
		// The tombstone still guards the dedup key.
		if ok, err := s.InsertWebhookEvent(c, &store.WebhookEvent{ExternalAPIID: a.ID, Scheme: "github", DedupKey: "gh-0",
			Payload: []byte("{}"), ReceivedAt: now}); err != nil || ok {
			t.Errorf("InsertWebhookEvent(replay of a tombstone) = %v, %v; want false, nil", ok, err)
		}
		if _, err := s.RedeliverWebhookEvent(c, oldGH[0], store.Tenant{}, now); !errors.Is(err, store.ErrWebhookEventPurged) ||
			!errors.Is(err, store.ErrConflict) {
			t.Errorf("RedeliverWebhookEvent(tombstone) = %v; want ErrWebhookEventPurged (a conflict)", err)
		}
		if got, _ := s.ClaimWebhookEvents(c, now, time.Minute, 10); len(got) != 1 || got[0].ID != pending {
			t.Errorf("claim after redelivering a tombstone = %+v; want only the pending event", got)
		}

		// Dead events only by their own status; pending events never.
		if e, _ := payload(deadGH); e == nil || len(e.Payload) == 0 {
			t.Errorf("dead event after tombstoning the delivered ones = %+v; want its payload", e)
		}
		if n, err := s.TombstoneWebhookEvents(c, store.WebhookDead, cut, now, 10); err != nil || n != 1 {
			t.Errorf("TombstoneWebhookEvents(dead) = %d, %v; want 1", n, err)
		}
		if n, _ := s.TombstoneWebhookEvents(c, store.WebhookDead, cut, now, 10); n != 0 {
			t.Errorf("TombstoneWebhookEvents(dead, again) = %d; want 0", n)
		}
		if _, err := s.TombstoneWebhookEvents(c, store.WebhookPending, now, now, 10); err == nil {
			t.Error("TombstoneWebhookEvents(pending) = nil; want an error")
		}
		if _, err := s.DeleteExpiredWebhookEvents(c, []string{"github"}, store.WebhookPending, now, now, 10); err == nil {
			t.Error("DeleteExpiredWebhookEvents(pending) = nil; want an error")
		}
		if e, _ := payload(pending); e == nil || len(e.Payload) == 0 || e.PurgedAt != nil {
			t.Errorf("pending event = %+v; want it untouched", e)
		}
	})
}
