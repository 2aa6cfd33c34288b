package admin_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/extapi/extapi/store"
)

func TestWebhookEvents(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		body := oauthBody("fb")
		body["sales_channel_id"] = "sc1"
		hook := body["api_config"].(map[string]any)["webhook"].(map[string]any)
		hook["scheme"], hook["forward_url"], hook["forward_secret"], hook["verify_token"] = "meta", "https://internal.example.com/fb", newSecret("fwd"), newSecret("vt")
		id := e.createAPI(body)
		r := e.do("GET", "/admin/external-apis/"+id, e.boot, nil).want(t, http.StatusOK)
		if r.get("external_api.api_config.webhook.forward_secret.set") != true || r.get("external_api.api_config.webhook.verify_token.set") != true {
			t.Errorf("forward_secret / verify_token not shown as set: %s", r.raw)
		}
		ctx := context.Background()
		ev := &store.WebhookEvent{ExternalAPIID: id, SalesChannelID: "sc1", Scheme: "meta", DedupKey: "k1", EventType: "page.feed", Payload: []byte("{}")}
		if _, err := e.st.InsertWebhookEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
		got, _ := e.st.ClaimWebhookEvents(ctx, time.Now().Add(time.Second), time.Second, 1)
		if err := e.st.MarkWebhookFailed(ctx, got[0].ID, got[0].ClaimToken, time.Now(), time.Now(), true, 502, "the receiver answered 502"); err != nil {
			t.Fatal(err)
		}

		r = e.do("GET", "/admin/webhook-events?status=dead", e.token("viewer", "", ""), nil).want(t, http.StatusOK)
		if r.get("count") != float64(1) || r.str("webhook_events.0.id") != ev.ID || r.str("webhook_events.0.last_error") == "" {
			t.Errorf("list dead = %s; want the event", r.raw)
		}
		if r := e.do("GET", "/admin/webhook-events", e.token("viewer", "other", ""), nil).want(t, http.StatusOK); r.get("count") != float64(0) {
			t.Errorf("list as another tenant = %s; want none", r.raw)
		}
		e.do("GET", "/admin/webhook-events?status=bogus", e.boot, nil).want(t, http.StatusBadRequest)
		e.do("POST", "/admin/webhook-events/"+ev.ID+"/redeliver", e.token("editor", "other", ""), map[string]any{}).want(t, http.StatusNotFound)
		r = e.do("POST", "/admin/webhook-events/"+ev.ID+"/redeliver", e.token("editor", "", ""), map[string]any{}).want(t, http.StatusOK)
		if r.str("webhook_event.status") != "pending" || r.get("webhook_event.attempts") != float64(0) {
			t.Errorf("redeliver = %s; want pending with 0 attempts", r.raw)
		}
		if a := e.audits(ev.ID); len(a) != 1 {
			t.Errorf("audit events of the redelivery = %d; want 1", len(a))
		}
		// A dead event whose payload retention emptied shows purged_at and cannot be redelivered.
		ev2 := &store.WebhookEvent{ExternalAPIID: id, SalesChannelID: "sc1", Scheme: "meta", DedupKey: "k2", EventType: "page.feed", Payload: []byte("{}")}
		if _, err := e.st.InsertWebhookEvent(ctx, ev2); err != nil {
			t.Fatal(err)
		}
		got, _ = e.st.ClaimWebhookEvents(ctx, time.Now().Add(time.Second), time.Second, 2) // both: the first is pending again
		claim := ""
		for _, g := range got {
			if g.ID == ev2.ID {
				claim = g.ClaimToken
			}
		}
		if claim == "" {
			t.Fatalf("claimed %d events without the second", len(got))
		}
		if err := e.st.MarkWebhookFailed(ctx, ev2.ID, claim, time.Now(), time.Now(), true, 502, "502"); err != nil {
			t.Fatal(err)
		}
		r = e.do("GET", "/admin/webhook-events?status=dead", e.boot, nil).want(t, http.StatusOK)
		if r.str("webhook_events.0.id") != ev2.ID || r.get("webhook_events.0.purged_at") != nil {
			t.Errorf("list dead = %s; want the second event, purged_at null", r.raw)
		}
		if n, err := e.st.TombstoneWebhookEvents(ctx, store.WebhookDead, time.Now().Add(time.Hour), time.Now(), 10); err != nil || n != 1 {
			t.Fatalf("TombstoneWebhookEvents = %d, %v; want 1", n, err)
		}
		r = e.do("GET", "/admin/webhook-events?status=dead", e.boot, nil).want(t, http.StatusOK)
		if r.str("webhook_events.0.id") != ev2.ID || r.str("webhook_events.0.purged_at") == "" {
			t.Errorf("list dead after retention = %s; want purged_at set", r.raw)
		}
		e.do("POST", "/admin/webhook-events/"+ev2.ID+"/redeliver", e.boot, map[string]any{}).want(t, http.StatusConflict)
		bad := oauthBody("fb2")
		bad["api_config"].(map[string]any)["webhook"].(map[string]any)["public_key"] = "not a key"
		if r := e.do("POST", "/admin/external-apis", e.boot, bad).want(t, http.StatusBadRequest); r.detail("api_config.webhook.public_key") == "" {
			t.Errorf("bad public_key = %s; want a detail at api_config.webhook.public_key", r.raw)
		}
	})
}
