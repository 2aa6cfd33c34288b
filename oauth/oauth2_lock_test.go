package oauth_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/extapi/extapi/oauth"
)

// exclusive runs n goroutines that each take the lock and check nobody else holds it.
func exclusive(t *testing.T, lockers []oauth.Locker, key string, n int) {
	t.Helper()
	var holders, max atomic.Int32
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			unlock, err := lockers[i%len(lockers)].Lock(testCtx(t), key)
			if err != nil {
				t.Errorf("Lock() = %v", err)
				return
			}
			h := holders.Add(1)
			for {
				m := max.Load()
				if h <= m || max.CompareAndSwap(m, h) {
					break
				}
			}
			time.Sleep(time.Millisecond) // hold it a moment: an overlap would show
			holders.Add(-1)
			unlock()
		})
	}
	wg.Wait()
	if m := max.Load(); m != 1 {
		t.Errorf("most holders at once = %d; want 1", m)
	}
}

func TestRedisLockerExclusiveAcrossClients(t *testing.T) {
	prefix := uniquePrefix()
	a := oauth.NewRedisLocker(testRedis(t), oauth.RedisLockerOptions{Prefix: prefix})
	b := oauth.NewRedisLocker(testRedis(t), oauth.RedisLockerOptions{Prefix: prefix})
	exclusive(t, []oauth.Locker{a, b}, "conn:x", 20)
	// Different keys do not wait for each other.
	u1, err := a.Lock(testCtx(t), "conn:1")
	if err != nil {
		t.Fatal(err)
	}
	defer u1()
	ctx, cancel := context.WithTimeout(testCtx(t), time.Second)
	defer cancel()
	u2, err := b.Lock(ctx, "conn:2")
	if err != nil {
		t.Fatalf("Lock(other key) = %v; want it at once", err)
	}
	u2()
}

func TestRedisLockerOwnerOnly(t *testing.T) {
	rc := testRedis(t)
	prefix := uniquePrefix()
	l := oauth.NewRedisLocker(rc, oauth.RedisLockerOptions{Prefix: prefix, TTL: 300 * time.Millisecond})
	unlock, err := l.Lock(testCtx(t), "k")
	if err != nil {
		t.Fatal(err)
	}
	// The lock expired under its holder (a long stall) and someone else took it.
	if err := rc.Set(testCtx(t), prefix+"k", "someone-else", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	unlock() // must not release the other owner's lock
	if v, err := rc.Get(testCtx(t), prefix+"k").Result(); err != nil || v != "someone-else" {
		t.Errorf("lock value after a stale unlock = %q, %v; want the new owner's kept", v, err)
	}
	if ttl := rc.PTTL(testCtx(t), prefix+"k").Val(); ttl < 30*time.Second {
		t.Errorf("TTL of the other owner's lock = %v; want it not shortened by a stale extension", ttl)
	}
}

func TestRedisLockerHolderThatDiesReleasesByExpiry(t *testing.T) {
	rc := testRedis(t)
	prefix := uniquePrefix()
	// A holder on another instance died holding the lock: its key is there, nobody extends it.
	if err := rc.Set(testCtx(t), prefix+"k", "dead-owner", 300*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	l := oauth.NewRedisLocker(rc, oauth.RedisLockerOptions{Prefix: prefix})
	start := time.Now()
	unlock, err := l.Lock(testCtx(t), "k")
	if err != nil {
		t.Fatalf("Lock() = %v", err)
	}
	defer unlock()
	if waited := time.Since(start); waited < 250*time.Millisecond || waited > 3*time.Second {
		t.Errorf("waited %v for a dead holder's lock; want about its 300 ms TTL", waited)
	}
}

func TestRedisLockerExtendsWhileHeld(t *testing.T) {
	rc := testRedis(t)
	prefix := uniquePrefix()
	a := oauth.NewRedisLocker(rc, oauth.RedisLockerOptions{Prefix: prefix, TTL: 150 * time.Millisecond})
	b := oauth.NewRedisLocker(rc, oauth.RedisLockerOptions{Prefix: prefix, TTL: 150 * time.Millisecond})
	unlock, err := a.Lock(testCtx(t), "k")
	if err != nil {
		t.Fatal(err)
	}
	// Held for four TTLs: the holder's extensions keep it.
	ctx, cancel := context.WithTimeout(testCtx(t), 600*time.Millisecond)
	defer cancel()
	if _, err := b.Lock(ctx, "k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock() while another holds it = %v; want DeadlineExceeded", err)
	}
	unlock()
	ctx2, cancel2 := context.WithTimeout(testCtx(t), time.Second)
	defer cancel2()
	u, err := b.Lock(ctx2, "k")
	if err != nil {
		t.Fatalf("Lock() after unlock = %v", err)
	}
	u()
	if n := rc.Exists(testCtx(t), prefix+"k").Val(); n != 0 {
		t.Errorf("lock key still there after unlock")
	}
}

func TestRedisLockerRedisDown(t *testing.T) {
	rc := testRedis(t)
	l := oauth.NewRedisLocker(rc, oauth.RedisLockerOptions{Prefix: uniquePrefix(), Timeout: 200 * time.Millisecond})
	rc.Close()
	if _, err := l.Lock(testCtx(t), "k"); err == nil {
		t.Fatal("Lock() with Redis closed = nil; want an error (refreshing without the fleet lock is unsafe)")
	}
}

func TestLocalLocker(t *testing.T) {
	l := oauth.NewLocalLocker()
	exclusive(t, []oauth.Locker{l}, "k", 50)
	unlock, err := l.Lock(testCtx(t), "k")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(testCtx(t), 20*time.Millisecond)
	defer cancel()
	if _, err := l.Lock(ctx, "k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Lock() while held = %v; want DeadlineExceeded", err)
	}
	unlock()
	unlock() // a second call is harmless
	u, err := l.Lock(testCtx(t), "k")
	if err != nil {
		t.Fatalf("Lock() after unlock = %v", err)
	}
	u()
}
