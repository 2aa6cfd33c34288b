package store_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/extapi/extapi/store"
	"github.com/extapi/extapi/store/storetest"
)

func TestWebhookEventLifecycle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		c := ctx(t)
		a := sampleAPI("hooks")
		a.SalesChannelID = "sc1"
		if err := s.CreateAPI(c, a); err != nil {
			t.Fatal(err)
		}
		now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
		body := []byte("{ \"id\" :\t\"evt_1\" }\n")
		e := &store.WebhookEvent{ExternalAPIID: a.ID, SalesChannelID: "sc1", Scheme: "stripe", DedupKey: "evt_1",
			EventType: "charge.succeeded", ContentType: "application/json", Payload: body, ReceivedAt: now}
		ok, err := s.InsertWebhookEvent(c, e)
		if err != nil || !ok {
			t.Fatalf("InsertWebhookEvent() = %v, %v; want true, nil", ok, err)
		}
		// The same provider event again is a replay: acknowledged by the caller, not stored.
		ok, err = s.InsertWebhookEvent(c, &store.WebhookEvent{ExternalAPIID: a.ID, Scheme: "stripe", DedupKey: "evt_1", Payload: body, ReceivedAt: now})
		if err != nil || ok {
			t.Fatalf("InsertWebhookEvent(replay) = %v, %v; want false, nil", ok, err)
		}

		if got, _ := s.ClaimWebhookEvents(c, now.Add(-time.Second), time.Minute, 10); len(got) != 0 {
			t.Errorf("ClaimWebhookEvents(before due) = %d events; want 0", len(got))
		}
		got, err := s.ClaimWebhookEvents(c, now, time.Minute, 10)
		if err != nil || len(got) != 1 {
			t.Fatalf("ClaimWebhookEvents() = %d, %v; want 1 event", len(got), err)
		}
		cl := got[0]
		if string(cl.Payload) != string(body) || cl.Attempts != 1 || cl.ClaimToken == "" || cl.EventType != "charge.succeeded" {
			t.Errorf("claimed = %+v; want the payload byte for byte, attempt 1, a claim token", cl)
		}
		// Leased: nobody else gets it until the lease runs out.
		if again, _ := s.ClaimWebhookEvents(c, now.Add(59*time.Second), time.Minute, 10); len(again) != 0 {
			t.Errorf("ClaimWebhookEvents(leased) = %d; want 0", len(again))
		}
		next := now.Add(2 * time.Minute)
		if err := s.MarkWebhookFailed(c, cl.ID, cl.ClaimToken, now, next, false, 503, "HTTP 503"); err != nil {
			t.Fatalf("MarkWebhookFailed() = %v", err)
		}
		if err := s.MarkWebhookDelivered(c, cl.ID, cl.ClaimToken, now, 200); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("MarkWebhookDelivered(stale claim) = %v; want ErrNotFound", err)
		}
		got, _ = s.ClaimWebhookEvents(c, next, time.Minute, 10)
		if len(got) != 1 || got[0].Attempts != 2 || got[0].LastStatus != 503 {
			t.Fatalf("second claim = %+v; want attempt 2 after a 503", got)
		}
		if err := s.MarkWebhookDelivered(c, got[0].ID, got[0].ClaimToken, next, 204); err != nil {
			t.Fatalf("MarkWebhookDelivered() = %v", err)
		}
		list, total, err := s.ListWebhookEvents(c, store.WebhookEventFilter{Status: store.WebhookDelivered, Limit: 10})
		if err != nil || total != 1 || len(list) != 1 || list[0].DeliveredAt == nil || list[0].Payload != nil {
			t.Fatalf("ListWebhookEvents(delivered) = %+v, %d, %v; want the event without payload", list, total, err)
		}
		if _, total, _ := s.ListWebhookEvents(c, store.WebhookEventFilter{Tenant: store.Tenant{SalesChannelID: "other"}}); total != 0 {
			t.Errorf("ListWebhookEvents(other tenant) total = %d; want 0", total)
		}
		if _, err := s.RedeliverWebhookEvent(c, cl.ID, store.Tenant{SalesChannelID: "other"}, next); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RedeliverWebhookEvent(other tenant) = %v; want ErrNotFound", err)
		}
		re, err := s.RedeliverWebhookEvent(c, cl.ID, store.Tenant{SalesChannelID: "sc1"}, next)
		if err != nil || re.Status != store.WebhookPending || re.Attempts != 0 {
			t.Fatalf("RedeliverWebhookEvent() = %+v, %v; want pending with 0 attempts", re, err)
		}
		got, _ = s.ClaimWebhookEvents(c, next, time.Minute, 10)
		if len(got) != 1 {
			t.Fatalf("claim after redeliver = %d; want 1", len(got))
		}
		if _, err := s.RedeliverWebhookEvent(c, cl.ID, store.Tenant{}, next); !errors.Is(err, store.ErrWebhookEventBusy) {
			t.Errorf("RedeliverWebhookEvent(leased) = %v; want ErrWebhookEventBusy", err)
		}
		if err := s.MarkWebhookFailed(c, got[0].ID, got[0].ClaimToken, next, next, true, 0, "connection refused"); err != nil {
			t.Fatal(err)
		}
		if _, total, _ := s.ListWebhookEvents(c, store.WebhookEventFilter{Status: store.WebhookDead}); total != 1 {
			t.Errorf("dead events = %d; want 1", total)
		}
	})
}

// TestWebhookClaimsAreExclusive: many claimers at once, on separate pools of one database,
// never get the same event.
func TestWebhookClaimsAreExclusive(t *testing.T) {
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			u := storetest.URL(t, d)
			s1, s2 := storetest.Open(t, u), storetest.Open(t, u)
			c := ctx(t)
			a := sampleAPI("hooks")
			if err := s1.CreateAPI(c, a); err != nil {
				t.Fatal(err)
			}
			now := time.Now().UTC()
			const n = 60
			for i := range n {
				if _, err := s1.InsertWebhookEvent(c, &store.WebhookEvent{ExternalAPIID: a.ID, Scheme: "github",
					DedupKey: string(rune('a'+i%26)) + time.Duration(i).String(), Payload: []byte("{}"), ReceivedAt: now}); err != nil {
					t.Fatal(err)
				}
			}
			var mu sync.Mutex
			seen := map[string]int{}
			var wg sync.WaitGroup
			for w := range 6 {
				s := s1
				if w%2 == 1 {
					s = s2
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						got, err := s.ClaimWebhookEvents(c, now, time.Minute, 3)
						if err != nil {
							t.Error(err)
							return
						}
						if len(got) == 0 {
							return
						}
						mu.Lock()
						for _, e := range got {
							seen[e.ID]++
						}
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if len(seen) != n {
				t.Errorf("claimed %d distinct events; want %d", len(seen), n)
			}
			for id, k := range seen {
				if k != 1 {
					t.Errorf("event %s claimed %d times; want 1", id, k)
				}
			}
		})
	}
}
