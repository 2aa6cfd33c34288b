package admin_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// flowEnv is what the OAuth 1.0a and 2.0 connect-flow tests share: the admin env, the API under
// test and the clock the flow's connector runs on.
type flowEnv struct {
	*env
	apiID string
	mu    sync.Mutex
	now   time.Time
}

func newFlowEnv() *flowEnv { return &flowEnv{now: time.Now().UTC().Truncate(time.Second)} }

func (o *flowEnv) clock() time.Time { o.mu.Lock(); defer o.mu.Unlock(); return o.now }

func (o *flowEnv) advance(d time.Duration) { o.mu.Lock(); o.now = o.now.Add(d); o.mu.Unlock() }

func (o *flowEnv) connectionCount(t *testing.T) float64 {
	t.Helper()
	r := o.do("GET", "/admin/external-apis/"+o.apiID+"/connections", o.boot, nil).want(t, http.StatusOK)
	n, _ := r.get("count").(float64)
	return n
}

// checkCreatedByEditor: the flow's connection has one audit event, connection.create, by the
// editor token that started the flow.
func (o *flowEnv) checkCreatedByEditor(t *testing.T, connID string) {
	t.Helper()
	evs := o.audits(connID)
	if len(evs) != 1 {
		t.Fatalf("audit events of the connection = %v; want 1", evs)
	}
	ev, _ := json.Marshal(evs[0])
	if !strings.Contains(string(ev), `"action":"connection.create"`) || !strings.Contains(string(ev), `"actor":"editor-`) {
		t.Errorf("audit event = %s; want connection.create by the editor token that started the flow", ev)
	}
}

// checkReplayRefused: a replayed callback (r) is refused with 409 code and the API still has
// its one connection.
func (o *flowEnv) checkReplayRefused(t *testing.T, r *resp, code string) {
	t.Helper()
	r = r.want(t, http.StatusConflict)
	if r.str("error.code") != code {
		t.Errorf("replayed callback = %s; want %s", r.raw, code)
	}
	if n := o.connectionCount(t); n != 1 {
		t.Errorf("connections = %v; want 1", n)
	}
}
