package oauth_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/extapi/extapi/oauth"
)

// exclusive runs n goroutines that each take the lock and checks nobody else held it meanwhile.
func exclusive(t *testing.T, lockers []oauth.Locker, key string, n int) {
	t.Helper()
	if m := mostHolders(t, lockers, key, n); m != 1 {
		t.Errorf("most holders at once = %d; want 1", m)
	}
}

// mostHolders runs n goroutines that each take the lock, hold it a moment and release it, and
// returns the most that held it at once. They are released together (a closed channel) once all
// are started, so their Lock calls overlap: a lock that let two holders in shows more than one.
func mostHolders(t *testing.T, lockers []oauth.Locker, key string, n int) int32 {
	t.Helper()
	var holders, most atomic.Int32
	var wg, ready sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		ready.Add(1)
		wg.Go(func() {
			ready.Done()
			<-start
			_, unlock, err := lockers[i%len(lockers)].Lock(testCtx(t), key)
			if err != nil {
				t.Errorf("Lock() = %v", err)
				return
			}
			h := holders.Add(1)
			for {
				m := most.Load()
				if h <= m || most.CompareAndSwap(m, h) {
					break
				}
			}
			time.Sleep(2 * time.Millisecond) // hold it a moment: an overlap would show
			holders.Add(-1)
			unlock()
		})
	}
	ready.Wait()
	close(start)
	wg.Wait()
	return most.Load()
}

// noLock is a broken Locker: it lets everyone in.
type noLock struct{}

func (noLock) Lock(ctx context.Context, _ string) (context.Context, func(), error) {
	return ctx, func() {}, nil
}

// TestExclusiveCatchesABrokenLock: the exclusivity check above fails a lock that does not lock.
func TestExclusiveCatchesABrokenLock(t *testing.T) {
	if m := mostHolders(t, []oauth.Locker{noLock{}}, "k", 20); m < 2 {
		t.Fatalf("most holders of a lock that does not lock = %d; want the overlap seen (> 1)", m)
	}
}

func TestRedisLockerExclusiveAcrossClients(t *testing.T) {
	prefix := uniquePrefix()
	a := oauth.NewRedisLocker(testRedis(t), oauth.RedisLockerOptions{Prefix: prefix})
	b := oauth.NewRedisLocker(testRedis(t), oauth.RedisLockerOptions{Prefix: prefix})
	exclusive(t, []oauth.Locker{a, b}, "conn:x", 20)
	// Different keys do not wait for each other.
	_, u1, err := a.Lock(testCtx(t), "conn:1")
	if err != nil {
		t.Fatal(err)
	}
	defer u1()
	// A lock that also serialized other keys would wait for u1 to the end: any bound tells.
	ctx, cancel := context.WithTimeout(testCtx(t), 10*time.Second)
	defer cancel()
	_, u2, err := b.Lock(ctx, "conn:2")
	if err != nil {
		t.Fatalf("Lock(other key) = %v; want it at once", err)
	}
	u2()
}

func TestRedisLockerOwnerOnly(t *testing.T) {
	rc := testRedis(t)
	prefix := uniquePrefix()
	l := oauth.NewRedisLocker(rc, oauth.RedisLockerOptions{Prefix: prefix, TTL: 300 * time.Millisecond})
	_, unlock, err := l.Lock(testCtx(t), "k")
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
	l := oauth.NewRedisLocker(rc, oauth.RedisLockerOptions{Prefix: prefix})
	// A holder on another instance died holding the lock: its key is there, nobody extends it.
	// Its TTL runs from when Redis ran the SET, after start: the lock is free no sooner than
	// ttl after start, however slow the round trips.
	const ttl = 300 * time.Millisecond
	start := time.Now()
	if err := rc.Set(testCtx(t), prefix+"k", "dead-owner", ttl).Err(); err != nil {
		t.Fatal(err)
	}
	_, unlock, err := l.Lock(testCtx(t), "k")
	if err != nil {
		t.Fatalf("Lock() = %v", err)
	}
	defer unlock()
	// The lower bound leaves 30 ms for Redis's ms-rounded, wall-clock expiry; a Lock that took a
	// held lock would wait about nothing. The upper bound is only "not stuck": Lock polls at
	// least every 150 ms.
	if waited := time.Since(start); waited < ttl-30*time.Millisecond || waited > 10*time.Second {
		t.Errorf("waited %v for a dead holder's lock; want about its %v TTL", waited, ttl)
	}
}

func TestRedisLockerExtendsWhileHeld(t *testing.T) {
	rc := testRedis(t)
	prefix := uniquePrefix()
	// Extended every TTL/3 (333 ms), the key outlives a stall of up to 2/3 of a TTL on a loaded
	// machine or Redis.
	const ttl = time.Second
	a := oauth.NewRedisLocker(rc, oauth.RedisLockerOptions{Prefix: prefix, TTL: ttl})
	b := oauth.NewRedisLocker(rc, oauth.RedisLockerOptions{Prefix: prefix, TTL: ttl})
	_, unlock, err := a.Lock(testCtx(t), "k")
	if err != nil {
		t.Fatal(err)
	}
	// Held for 2.5 TTLs: the holder's extensions keep it (without them b would get it after one).
	ctx, cancel := context.WithTimeout(testCtx(t), ttl*5/2)
	defer cancel()
	if _, _, err := b.Lock(ctx, "k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock() while another holds it = %v; want DeadlineExceeded", err)
	}
	unlock()
	// unlock released it at once, not by expiry.
	if n, err := rc.Exists(testCtx(t), prefix+"k").Result(); err != nil || n != 0 {
		t.Fatalf("lock key after unlock: Exists() = %d, %v; want it gone", n, err)
	}
	ctx2, cancel2 := context.WithTimeout(testCtx(t), 10*time.Second)
	defer cancel2()
	_, u, err := b.Lock(ctx2, "k")
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
	if _, _, err := l.Lock(testCtx(t), "k"); err == nil {
		t.Fatal("Lock() with Redis closed = nil; want an error (refreshing without the fleet lock is unsafe)")
	}
}

func TestLocalLocker(t *testing.T) {
	l := oauth.NewLocalLocker()
	exclusive(t, []oauth.Locker{l}, "k", 50)
	_, unlock, err := l.Lock(testCtx(t), "k")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(testCtx(t), 20*time.Millisecond)
	defer cancel()
	if _, _, err := l.Lock(ctx, "k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Lock() while held = %v; want DeadlineExceeded", err)
	}
	unlock()
	unlock() // a second call is harmless
	_, u, err := l.Lock(testCtx(t), "k")
	if err != nil {
		t.Fatalf("Lock() after unlock = %v", err)
	}
	u()
}

// TestRedisLockerHeldEndsWhenTakenOver: the lock's key is taken by another holder (or deleted)
// while held: held ends with ErrLockLost at the next extension, well before unlock.
func TestRedisLockerHeldEndsWhenTakenOver(t *testing.T) {
	for _, how := range []string{"overwritten", "deleted"} {
		t.Run(how, func(t *testing.T) {
			rc := testRedis(t)
			prefix := uniquePrefix()
			// Extended every TTL/3, the key outlives a stall of up to 2/3 of a TTL.
			const ttl = time.Second
			l := oauth.NewRedisLocker(rc, oauth.RedisLockerOptions{Prefix: prefix, TTL: ttl})
			held, unlock, err := l.Lock(testCtx(t), "k")
			if err != nil {
				t.Fatal(err)
			}
			defer unlock()
			// Held past a TTL, on its extensions, while it is ours.
			select {
			case <-held.Done():
				t.Fatalf("held ended while the lock was ours: %v", context.Cause(held))
			case <-time.After(ttl + ttl/5):
			}
			if how == "overwritten" {
				err = rc.Set(testCtx(t), prefix+"k", "someone-else", time.Minute).Err()
			} else {
				err = rc.Del(testCtx(t), prefix+"k").Err()
			}
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-held.Done():
			case <-time.After(10 * time.Second):
				t.Fatal("held still running 10 s after the lock was lost (the next extension is due within TTL/3)")
			}
			if cause := context.Cause(held); !errors.Is(cause, oauth.ErrLockLost) {
				t.Errorf("context.Cause(held) = %v; want ErrLockLost", cause)
			}
		})
	}
}

// failingEval is a Redis client whose scripts (the extensions) fail once down is set.
type failingEval struct {
	oauth.RedisClient
	down atomic.Bool
}

func (c *failingEval) EvalSha(ctx context.Context, sha string, keys []string, args ...any) *redis.Cmd {
	if c.down.Load() {
		return redis.NewCmdResult(nil, errors.New("connection refused"))
	}
	return c.RedisClient.EvalSha(ctx, sha, keys, args...)
}

func (c *failingEval) Eval(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	if c.down.Load() {
		return redis.NewCmdResult(nil, errors.New("connection refused"))
	}
	return c.RedisClient.Eval(ctx, script, keys, args...)
}

// TestRedisLockerHeldEndsWithoutExtensions: Redis stops answering the extensions: once a full TTL
// has passed since the last confirmed one (the key may have expired and been taken), held ends
// with ErrLockLost; not before.
func TestRedisLockerHeldEndsWithoutExtensions(t *testing.T) {
	c := &failingEval{RedisClient: testRedis(t)}
	const ttl = 300 * time.Millisecond
	// The default Timeout (2 s): the SET that takes the lock must not time out on a loaded Redis.
	l := oauth.NewRedisLocker(c, oauth.RedisLockerOptions{Prefix: uniquePrefix(), TTL: ttl})
	locking := time.Now()
	held, unlock, err := l.Lock(testCtx(t), "k")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	c.down.Store(true)
	down := time.Now()
	select {
	case <-held.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("held still running 10 s after Redis stopped answering")
	}
	ended := time.Now()
	// The last confirmed extension (or the SET) was sent after locking and before down: held
	// may end no sooner than a TTL after locking, and must end about a TTL after down at the
	// latest (the upper bound leaves room for a loaded machine, not for a missed deadline).
	if d := ended.Sub(locking); d < ttl {
		t.Errorf("held ended %v after Lock was called; want not before its TTL (%v) has passed since the last confirmed extension", d, ttl)
	}
	if d := ended.Sub(down); d > ttl+2*time.Second {
		t.Errorf("held ended %v after the extensions began failing; want within the TTL (%v) of the last confirmed one", d, ttl)
	}
	if cause := context.Cause(held); !errors.Is(cause, oauth.ErrLockLost) {
		t.Errorf("context.Cause(held) = %v; want ErrLockLost", cause)
	}
}

func TestLocalLockerHeldEndsOnUnlock(t *testing.T) {
	held, unlock, err := oauth.NewLocalLocker().Lock(testCtx(t), "k")
	if err != nil {
		t.Fatal(err)
	}
	if held.Err() != nil {
		t.Fatalf("held.Err() while held = %v", held.Err())
	}
	unlock()
	if held.Err() == nil {
		t.Error("held still running after unlock")
	}
}
