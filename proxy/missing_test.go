package proxy

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/extapi/extapi/store"
	"github.com/extapi/extapi/store/storetest"
)

// An unknown connection id is answered from memory for a few seconds instead of reaching the
// database on every request; creating that connection (its change notification) ends it at once.
func TestUnknownConnectionsAreRemembered(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	s := storetest.Open(t, storetest.SQLiteURL(t))
	e := newProxyEnvWith(t, s, newKeyring(t), Options{TouchInterval: time.Hour}, func(h *Handler) { h.now = clock.Now })
	up := newUpstream(t, keyEcho)
	a, _ := e.keyAPI(up, "neg", "k1")
	id := store.NewID(store.PrefixConnection)
	get := func() rawResponse { return do(t, "GET", "http://"+e.addr+"/neg/"+id+"/x", nil, nil) }

	queries := countQueries(t, s)
	for i := range 3 {
		if r := get(); r.Status != 404 || r.Header.Get("X-Extapi-Error") != CodeConnectionNotFound {
			t.Fatalf("request %d for an unknown id = %d %q; want 404 connection_not_found", i, r.Status, r.Header.Get("X-Extapi-Error"))
		}
	}
	if n := queries.Load(); n != 1 {
		t.Errorf("3 requests for one unknown id ran %d queries; want 1", n)
	}
	clock.Add(missingTTL + time.Millisecond)
	get()
	if n := queries.Load(); n != 2 {
		t.Errorf("after %s the unknown id ran %d queries in all; want 2 (asked again)", missingTTL, n)
	}

	// The connection is created under that id: its notification drops the remembered miss.
	c := &store.Connection{ID: id, ExternalAPIID: a.ID, ConnectionName: "late", Status: store.ConnActive}
	c.Credentials.APIKey = e.sealConn(c, "credentials.api_key", "late-key")
	if err := s.CreateConnection(testCtx(t), c); err != nil {
		t.Fatal(err)
	}
	if err := s.PublishChange(context.Background(), store.Change{Kind: store.ChangeConnection, ID: id}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for string(get().Body) != "late-key" {
		if time.Now().After(deadline) {
			t.Fatal("a connection created after its id was remembered as unknown was not used within 5s")
		}
		time.Sleep(5 * time.Millisecond) // polling for the notification to arrive
	}
}

// The set of remembered misses is bounded: made-up ids cannot grow it without limit.
func TestMissingIsBounded(t *testing.T) {
	var c routeCache
	c.init()
	now := time.Now()
	for i := range maxMissing + 100 {
		c.putMissing(fmt.Sprintf("conn_%d", i), 0, now.Add(time.Minute), now)
	}
	if n := len(c.missing); n != maxMissing {
		t.Errorf("remembered %d misses; want the bound %d", n, maxMissing)
	}
	// Expired entries make room.
	later := now.Add(2 * time.Minute)
	c.putMissing("conn_new", 0, later.Add(time.Minute), later)
	if _, ok := c.missing["conn_new"]; !ok || len(c.missing) != 1 {
		t.Errorf("after expiry: %d entries, new one present %v; want 1, true", len(c.missing), ok)
	}
	// A miss loaded before an invalidation is not remembered (the id may exist by now).
	c.invalidate(store.Change{Kind: store.ChangeConnection, ID: "x"})
	c.putMissing("conn_stale", 0, later.Add(time.Minute), later)
	if _, ok := c.missing["conn_stale"]; ok {
		t.Errorf("a miss read before an invalidation was remembered")
	}
}
