package proxy

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/valyala/fasthttp"

	"github.com/extapi/extapi/store"
	"github.com/extapi/extapi/store/storetest"
)

// countQueries counts every statement the store runs from now on, by gorm callback.
func countQueries(t testing.TB, s *store.Store) *atomic.Int64 {
	t.Helper()
	n := new(atomic.Int64)
	count := func(*gorm.DB) { n.Add(1) }
	cb := s.Gorm().Callback()
	name := fmt.Sprintf("test:count:%p", n)
	for _, err := range []error{
		cb.Query().Before("gorm:query").Register(name, count),
		cb.Row().Before("gorm:row").Register(name, count),
		cb.Raw().Before("gorm:raw").Register(name, count),
		cb.Create().Before("gorm:create").Register(name, count),
		cb.Update().Before("gorm:update").Register(name, count),
		cb.Delete().Before("gorm:delete").Register(name, count),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// keyEcho is an upstream answering with the X-Api-Key it received.
func keyEcho(ctx *fasthttp.RequestCtx) { ctx.Write(ctx.Request.Header.Peek("X-Api-Key")) }

func (e *proxyEnv) keyAPI(up *upstream, slug, key string) (*store.ExternalAPI, *store.Connection) {
	e.t.Helper()
	a := e.api(slug, store.APIConfig{BaseURL: up.url, AuthType: store.AuthAPIKey, APIKey: &store.APIKeyConfig{}}, nil)
	c := e.conn(a, func(c *store.Connection) { c.Credentials.APIKey = e.sealConn(c, "credentials.api_key", key) })
	return a, c
}

func TestSteadyStateMakesNoQueries(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		up := newUpstream(t, keyEcho)
		e := newProxyEnv(t, s, newKeyring(t), Options{TouchInterval: time.Hour})
		a, c := e.keyAPI(up, "steady", "k1")
		queries := countQueries(t, s)

		// Concurrent first requests load the route once: one connection and one API read.
		var wg sync.WaitGroup
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if r := do(t, "GET", "http://"+e.addr+"/steady/"+c.ID+"/x", nil, nil); string(r.Body) != "k1" {
					t.Errorf("response %d %q; want k1", r.Status, r.Body)
				}
			}()
		}
		wg.Wait()
		if n := queries.Load(); n != 2 {
			t.Errorf("%d queries for 16 concurrent first requests; want 2 (the connection and its API, once)", n)
		}

		queries.Store(0)
		for i := range 200 {
			if i%2 == 0 {
				do(t, "GET", "http://"+e.addr+"/steady/"+c.ID+"/x", nil, nil)
			} else {
				do(t, "POST", "http://"+e.addr+"/y", strings.NewReader("b"), map[string]string{"X-Extapi-Connection": c.ID, "X-Extapi-Api": a.Slug})
			}
		}
		if n := queries.Load(); n != 0 {
			t.Errorf("%d queries for 200 requests at steady state; want 0", n)
		}

		// last_used_at is written in one batch.
		if err := e.h.flush(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		if n := queries.Load(); n != 1 {
			t.Errorf("flushing last_used_at ran %d queries; want 1 (one connection used)", n)
		}
		got, err := s.GetConnection(testCtx(t), c.ID, store.Tenant{})
		if err != nil {
			t.Fatal(err)
		}
		if got.LastUsedAt == nil || time.Since(*got.LastUsedAt) > time.Minute {
			t.Errorf("last_used_at = %v; want about now", got.LastUsedAt)
		}
	})
}

// TestInvalidationAcrossInstances: two proxies on one PostgreSQL database, each with its own
// store; a key changed through A's store is used by B once the change notification arrives.
// The cache TTL is an hour, so only the notification can make B read the change in time.
func TestInvalidationAcrossInstances(t *testing.T) {
	url := storetest.PostgresURL(t)
	sa, sb := storetest.Open(t, url), storetest.Open(t, url)
	kr := newKeyring(t)
	up := newUpstream(t, keyEcho)
	const ttl, bound = time.Hour, 10 * time.Second // NOTIFY is asynchronous: give it time, far below the TTL
	opts := Options{CacheTTL: ttl}
	ea, eb := newProxyEnv(t, sa, kr, opts), newProxyEnv(t, sb, kr, opts)
	a, c := ea.keyAPI(up, "shared", "old-key")
	get := func() string {
		return string(do(t, "GET", "http://"+eb.addr+"/shared/"+c.ID+"/x", nil, nil).Body)
	}
	if got := get(); got != "old-key" {
		t.Fatalf("B sent %q; want old-key", got)
	}
	waitFor := func(what, want string) {
		t.Helper()
		var got string
		for start := time.Now(); time.Since(start) < bound; time.Sleep(10 * time.Millisecond) { // polling a condition
			if got = get(); got == want {
				return
			}
		}
		t.Fatalf("B still sent %q %v after the change; want the %s %q (the notification was not applied)", got, bound, what, want)
	}

	// A connection's key.
	c.Credentials.APIKey = seal(t, kr, "new-key", c.AAD("credentials.api_key"))
	err := sa.Tx(testCtx(t), func(tx *store.Store) error {
		if err := tx.UpdateConnection(testCtx(t), c); err != nil {
			return err
		}
		return tx.PublishChange(testCtx(t), store.Change{Kind: store.ChangeConnection, ID: c.ID})
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor("changed connection key", "new-key")

	// An API-level key, which the connection then falls back to.
	a.APIConfig.APIKey.Key = seal(t, kr, "api-key", a.AAD("api_config.api_key.key"))
	c.Credentials.APIKey = nil
	if err := sa.UpdateAPI(testCtx(t), a); err != nil {
		t.Fatal(err)
	}
	if err := sa.UpdateConnection(testCtx(t), c); err != nil {
		t.Fatal(err)
	}
	if err := sa.PublishChange(testCtx(t), store.Change{Kind: store.ChangeAPI, ID: a.ID}); err != nil {
		t.Fatal(err)
	}
	waitFor("API-level key", "api-key")
}

// fakeClock is a settable clock for the cache's TTL.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestCacheTTLAndFlush(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	s := storetest.Open(t, storetest.SQLiteURL(t))
	e := newProxyEnvWith(t, s, newKeyring(t), Options{CacheTTL: 30 * time.Second, TouchInterval: time.Hour},
		func(h *Handler) { h.now = clock.Now })
	up := newUpstream(t, keyEcho)
	_, c := e.keyAPI(up, "ttl", "v1")
	get := func() string { return string(do(t, "GET", "http://"+e.addr+"/ttl/"+c.ID+"/x", nil, nil).Body) }
	if got := get(); got != "v1" {
		t.Fatalf("sent %q; want v1", got)
	}

	// A change nobody announced is picked up once the TTL has run out.
	c.Credentials.APIKey = e.sealConn(c, "credentials.api_key", "v2")
	if err := s.UpdateConnection(testCtx(t), c); err != nil {
		t.Fatal(err)
	}
	clock.Add(29 * time.Second)
	if got := get(); got != "v1" {
		t.Errorf("within the TTL sent %q; want the cached v1", got)
	}
	clock.Add(2 * time.Second)
	if got := get(); got != "v2" {
		t.Errorf("after the TTL sent %q; want v2", got)
	}

	// ChangeAll (sent after a notification stream reconnected) drops everything.
	c.Credentials.APIKey = e.sealConn(c, "credentials.api_key", "v3")
	if err := s.UpdateConnection(testCtx(t), c); err != nil {
		t.Fatal(err)
	}
	queries := countQueries(t, s)
	if err := s.PublishChange(context.Background(), store.Change{Kind: store.ChangeAll}); err != nil {
		t.Fatal(err)
	}
	for start := time.Now(); time.Since(start) < 5*time.Second; time.Sleep(5 * time.Millisecond) {
		if got := get(); got == "v3" {
			break
		}
	}
	if got := get(); got != "v3" || queries.Load() != 2 {
		t.Errorf("after ChangeAll sent %q after %d queries; want v3 after 2", got, queries.Load())
	}
}
