package webhook_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/extapi/extapi/store"
	"github.com/extapi/extapi/store/storetest"
	"github.com/extapi/extapi/vault"
	"github.com/extapi/extapi/webhook"
)

const (
	ghSecret  = "gh-secret"
	fwdSecret = "forward-secret"
)

// clock is the injected time of listener and deliverer.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// receiver is the internal service: it checks extapi's signature and records every delivery,
// and how many of one event were in flight at once.
type receiver struct {
	t         *testing.T
	mu        sync.Mutex
	got       map[string]int // event id → accepted deliveries
	bodies    map[string][]byte
	inflight  map[string]int
	overlap   int // deliveries of an event while another of it was in flight
	failFirst map[string]bool
	tried     map[string]int
}

func newReceiver(t *testing.T) *receiver {
	return &receiver{t: t, got: map[string]int{}, bodies: map[string][]byte{}, inflight: map[string]int{},
		failFirst: map[string]bool{}, tried: map[string]int{}}
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	id := r.Header.Get(webhook.HeaderEventID)
	m := hmac.New(sha256.New, []byte(fwdSecret))
	m.Write([]byte(r.Header.Get(webhook.HeaderTimestamp) + "." + id + "."))
	m.Write(body)
	if r.Header.Get(webhook.HeaderSignature) != "v1="+hex.EncodeToString(m.Sum(nil)) || r.Header.Get(webhook.HeaderVerified) == "" {
		rc.t.Errorf("delivery of %s: bad extapi signature or no %s", id, webhook.HeaderVerified)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	rc.mu.Lock()
	rc.inflight[id]++
	if rc.inflight[id] > 1 {
		rc.overlap++
	}
	rc.tried[id]++
	fail := rc.failFirst[id] && rc.tried[id] == 1
	rc.mu.Unlock()
	defer func() {
		rc.mu.Lock()
		rc.inflight[id]--
		rc.mu.Unlock()
	}()
	if fail {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	rc.mu.Lock()
	rc.got[id]++
	rc.bodies[id] = body
	rc.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) count() (events, deliveries int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, n := range rc.got {
		deliveries += n
	}
	return len(rc.got), deliveries
}

type env struct {
	t     *testing.T
	url   string
	kr    *vault.Keyring
	clk   *clock
	api   *store.ExternalAPI
	store *store.Store
}

func newEnv(t *testing.T, dbURL, forwardURL string) *env {
	key, err := vault.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	kr, err := vault.New(map[uint32][]byte{1: key}, 1)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, url: dbURL, kr: kr, clk: &clock{t: time.Now().UTC().Truncate(time.Second)}}
	e.store = storetest.Open(t, dbURL)
	e.api = e.createAPI("gh", "github", forwardURL, []string{"push"})
	return e
}

func (e *env) createAPI(slug, scheme, forwardURL string, events []string, opts ...func(*store.Webhook)) *store.ExternalAPI {
	a := &store.ExternalAPI{ID: store.NewID(store.PrefixAPI), Name: slug, Slug: slug, Category: "other", Provider: slug,
		Status: store.APIActive, Environment: "production", SalesChannelID: "sc1",
		APIConfig: store.APIConfig{BaseURL: "https://api.example.com", AuthType: store.AuthBearer,
			Webhook: &store.Webhook{URL: "https://hooks.example.com/webhooks/" + slug, Scheme: scheme, Events: events,
				ForwardURL: forwardURL}}}
	hk := a.APIConfig.Webhook
	hk.Secret = e.seal("old-one\n"+ghSecret+"\n", a.AAD("api_config.webhook.secret"))
	hk.ForwardSecret = e.seal(fwdSecret, a.AAD("api_config.webhook.forward_secret"))
	hk.VerifyToken = e.seal("verify-me", a.AAD("api_config.webhook.verify_token"))
	for _, o := range opts {
		o(hk)
	}
	if err := e.store.CreateAPI(context.Background(), a); err != nil {
		e.t.Fatal(err)
	}
	return a
}

func (e *env) seal(v string, aad []byte) store.Sealed {
	b, err := e.kr.Seal([]byte(v), aad)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// instance is one extapi process: a store handle of its own, a listener and a deliverer.
type instance struct {
	st  *store.Store
	srv *httptest.Server
	d   *webhook.Deliverer
}

func (e *env) start(o webhook.DelivererOptions) *instance {
	st := storetest.Open(e.t, e.url)
	in := &instance{st: st}
	o.Store, o.Opener, o.Now = st, e.kr, e.clk.Now
	in.d = webhook.NewDeliverer(o)
	in.srv = httptest.NewServer(webhook.NewHandler(webhook.Options{Store: st, Opener: e.kr, Now: e.clk.Now, Notify: in.d.Notify}))
	return in
}

func (in *instance) stop() { in.srv.Close() }

func (in *instance) post(t *testing.T, path string, h http.Header, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, in.srv.URL+path, strings.NewReader(body))
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := in.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func github(secret, event, delivery, body string) http.Header {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(m.Sum(nil)))
	h.Set("X-GitHub-Event", event)
	h.Set("X-GitHub-Delivery", delivery)
	return h
}

func (e *env) path() string { return "/webhooks/" + e.api.Slug + "/" + e.api.ID }

// drain runs DeliverDue until a call claims nothing.
func drain(t *testing.T, d *webhook.Deliverer) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		n, err := d.DeliverDue(context.Background())
		if err != nil {
			t.Fatalf("DeliverDue() = %v", err)
		}
		if n == 0 {
			return
		}
	}
	t.Fatal("DeliverDue never ran dry")
}

func TestListener(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			rcv := newReceiver(t)
			fwd := httptest.NewServer(rcv)
			defer fwd.Close()
			e := newEnv(t, storetest.URL(t, dialect), fwd.URL)
			in := e.start(webhook.DelivererOptions{})
			defer in.stop()

			body := "{\n  \"ref\" : \"refs/heads/main\",\t\"after\":\"abc\"  }\r\n"
			bad := github("wrong", "push", "d1", body)
			for _, c := range []struct {
				desc       string
				path       string
				h          http.Header
				body       string
				wantStatus int
				wantBody   string
			}{
				{"bad signature", e.path(), bad, body, 401, "invalid signature\n"},
				{"tampered body", e.path(), github(ghSecret, "push", "d1", body), body + " ", 401, "invalid signature\n"},
				{"malformed signature", e.path(), http.Header{"X-Hub-Signature-256": {"sha256=zz"}}, body, 400, "malformed request\n"},
				{"unknown API", "/webhooks/gh/" + store.NewID(store.PrefixAPI), github(ghSecret, "push", "d1", body), body, 404, "not found\n"},
				{"wrong slug", "/webhooks/other/" + e.api.ID, github(ghSecret, "push", "d1", body), body, 404, "not found\n"},
				{"too large", e.path(), github(ghSecret, "push", "d1", body), strings.Repeat("x", webhook.DefaultMaxBodyBytes+1), 413, "request body too large\n"},
				{"verified", e.path(), github(ghSecret, "push", "d1", body), body, 200, "ok"},
				{"replay", e.path(), github(ghSecret, "push", "d1", body), body, 200, "ok"},
				{"rotated (old) secret", e.path(), github("old-one", "push", "d2", body), body, 200, "ok"},
				{"filtered out", e.path(), github(ghSecret, "issues", "d3", body), body, 200, "ignored"},
			} {
				if st, b := in.post(t, c.path, c.h, c.body); st != c.wantStatus || b != c.wantBody {
					t.Errorf("%s: POST = %d %q; want %d %q", c.desc, st, b, c.wantStatus, c.wantBody)
				}
			}
			drain(t, in.d)
			events, deliveries := rcv.count()
			if events != 2 || deliveries != 2 {
				t.Fatalf("receiver got %d events in %d deliveries; want 2 in 2 (d1 once despite the replay, d2; not d3)", events, deliveries)
			}
			for id, b := range rcv.bodies {
				if !bytes.Equal(b, []byte(body)) {
					t.Errorf("event %s delivered as %q; want the bytes received, %q", id, b, body)
				}
			}

			// Meta's GET challenge.
			meta := e.createAPI("fb", "meta", fwd.URL, nil)
			get := func(q string) (int, string) {
				resp, err := http.Get(in.srv.URL + "/webhooks/fb/" + meta.ID + "?" + q)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b)
			}
			if st, b := get("hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444"); st != 200 || b != "1158201444" {
				t.Errorf("GET challenge = %d %q; want 200 1158201444", st, b)
			}
			if st, b := get("hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1158201444"); st != 401 || b != "invalid signature\n" {
				t.Errorf("GET challenge with a wrong token = %d %q; want 401", st, b)
			}
			if st, _ := get(""); st != 400 {
				t.Errorf("GET without a challenge = %d; want 400", st)
			}
			resp, err := http.Get(in.srv.URL + e.path())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 405 {
				t.Errorf("GET on a github API = %d; want 405", resp.StatusCode)
			}
		})
	}
}

// listenAt binds addr again (the receiver coming back where it was).
func listenAt(t *testing.T, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s again: %v", addr, err)
	}
	return ln
}

// TestDurability: the receiver is down while events arrive, one instance crashes holding leases
// and another restarts on the same database; once the receiver is back every acknowledged event
// is delivered exactly once.
func TestDurability(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			// Reserve an address for the receiver, then leave it down.
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			ln.Close()
			e := newEnv(t, storetest.URL(t, dialect), "http://"+addr+"/events")
			opts := webhook.DelivererOptions{Backoff: time.Second, MaxBackoff: time.Minute, Timeout: 5 * time.Second, MaxAttempts: 50}

			first := e.start(opts)
			const n = 30
			send := func(in *instance, i int) {
				body := fmt.Sprintf(`{"n": %d}`, i)
				if st, _ := in.post(t, e.path(), github(ghSecret, "push", fmt.Sprintf("del-%d", i), body), body); st != 200 {
					t.Fatalf("POST event %d = %d; want 200", i, st)
				}
			}
			for i := range n / 2 {
				send(first, i)
			}
			drain(t, first.d) // every attempt fails: connection refused
			e.clk.Add(2 * time.Second)
			drain(t, first.d)
			// The first instance claims what is due and "crashes" before delivering: its leases
			// are held until they run out.
			e.clk.Add(5 * time.Second)
			claimed, err := first.st.ClaimWebhookEvents(context.Background(), e.clk.Now(), 2*opts.Timeout, 100)
			if err != nil || len(claimed) == 0 {
				t.Fatalf("crashing claim = %d, %v; want the pending events", len(claimed), err)
			}
			first.stop()

			second := e.start(opts)
			defer second.stop()
			for i := n / 2; i < n; i++ {
				send(second, i)
			}
			rcv := newReceiver(t)
			srv := &http.Server{Handler: rcv}
			go srv.Serve(listenAt(t, addr))
			defer srv.Close()

			for round := 0; round < 20; round++ {
				drain(t, second.d)
				if events, _ := rcv.count(); events == n {
					break
				}
				e.clk.Add(time.Minute) // past any backoff and the dead instance's leases
			}
			events, deliveries := rcv.count()
			if events != n || deliveries != n {
				t.Fatalf("receiver got %d events in %d deliveries; want %d in %d", events, deliveries, n, n)
			}
			list, total, err := second.st.ListWebhookEvents(context.Background(), store.WebhookEventFilter{Status: store.WebhookDelivered})
			if err != nil || total != n {
				t.Fatalf("delivered rows = %d, %v; want %d", total, err, n)
			}
			for _, ev := range list {
				if ev.Attempts < 1 {
					t.Errorf("event %s: attempts = %d", ev.ID, ev.Attempts)
				}
			}
		})
	}
}

// TestDeadAfterRetries: a receiver that always fails ends with a dead event, after exactly
// MaxAttempts attempts with growing waits.
func TestDeadAfterRetries(t *testing.T) {
	fails := 0
	var mu sync.Mutex
	fwd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		fails++
		mu.Unlock()
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer fwd.Close()
	e := newEnv(t, storetest.SQLiteURL(t), fwd.URL)
	in := e.start(webhook.DelivererOptions{MaxAttempts: 3, Backoff: 10 * time.Second})
	defer in.stop()
	if st, _ := in.post(t, e.path(), github(ghSecret, "push", "x", "{}"), "{}"); st != 200 {
		t.Fatalf("POST = %d", st)
	}
	drain(t, in.d)
	e.clk.Add(9 * time.Second)
	drain(t, in.d) // not due yet
	e.clk.Add(time.Second)
	drain(t, in.d)
	e.clk.Add(20 * time.Second)
	drain(t, in.d)
	e.clk.Add(time.Hour)
	drain(t, in.d)
	mu.Lock()
	got := fails
	mu.Unlock()
	if got != 3 {
		t.Errorf("attempts = %d; want 3", got)
	}
	list, total, _ := in.st.ListWebhookEvents(context.Background(), store.WebhookEventFilter{Status: store.WebhookDead})
	if total != 1 || list[0].LastStatus != 500 || list[0].Attempts != 3 {
		t.Errorf("dead events = %+v; want one after 3 attempts, last status 500", list)
	}
}

// TestTwoInstancesDeliverOnce: two deliverers on one PostgreSQL database, each with its own
// pool, never send one event twice at once, and each event is accepted exactly once.
func TestTwoInstancesDeliverOnce(t *testing.T) {
	rcv := newReceiver(t)
	fwd := httptest.NewServer(rcv)
	defer fwd.Close()
	e := newEnv(t, storetest.PostgresURL(t), fwd.URL)
	e.clk = &clock{t: time.Now()}
	opts := webhook.DelivererOptions{Batch: 4, Backoff: time.Millisecond, MaxBackoff: time.Millisecond, MaxAttempts: 100}
	a, b := e.start(opts), e.start(opts)
	defer a.stop()
	defer b.stop()
	const n = 120
	for i := range n {
		id := fmt.Sprintf("del-%d", i)
		body := fmt.Sprintf(`{"i":%d}`, i)
		in := a
		if i%2 == 1 {
			in = b
		}
		if st, _ := in.post(t, e.path(), github(ghSecret, "push", id, body), body); st != 200 {
			t.Fatalf("POST = %d", st)
		}
	}
	// Every third event fails its first attempt, so events are claimed again too.
	events, _, _ := a.st.ListWebhookEvents(context.Background(), store.WebhookEventFilter{})
	rcv.mu.Lock()
	for i, ev := range events {
		if i%3 == 0 {
			rcv.failFirst[ev.ID] = true
		}
	}
	rcv.mu.Unlock()

	var wg sync.WaitGroup
	deadline := time.Now().Add(60 * time.Second)
	for _, in := range []*instance{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if got, _ := rcv.count(); got == n {
					return
				}
				e.clk.Add(2 * time.Millisecond) // backoffs pass
				if _, err := in.d.DeliverDue(context.Background()); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	got, deliveries := rcv.count()
	rcv.mu.Lock()
	overlap := rcv.overlap
	rcv.mu.Unlock()
	if got != n || deliveries != n || overlap != 0 {
		t.Fatalf("receiver got %d events in %d deliveries, %d concurrent duplicates; want %d in %d, 0", got, deliveries, overlap, n, n)
	}
}
