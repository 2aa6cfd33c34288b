package ratelimit

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/extapi/extapi/store"
)

// TestBatchedTakes: concurrent Takes of one Key, coalesced into shared script calls, are
// decided exactly as one after the other: on a frozen clock, burst of them pass, each once.
func TestBatchedTakes(t *testing.T) {
	t.Parallel()
	rdb := newClient(t)
	h := &countHook{}
	rdb.AddHook(h)
	c := newClock()
	l := NewRedis(rdb, Options{Now: c.Now, Timeout: testTimeout})
	const burst, callers, each = 37, 32, 20
	p := mustPolicy(t, store.RateLimit{RequestsPerSecond: 1, Burst: burst, Mode: ModeReject})
	k := p.Key("c")
	ctx := context.Background()
	if _, err := l.Take(ctx, p, k); err != nil { // loads the script
		t.Fatal(err)
	}
	before := h.n.Load()
	var allowed, refused atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < callers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < each; j++ {
				d, err := l.Take(ctx, p, k)
				switch {
				case err != nil || d.Fallback:
					t.Errorf("Take() = %+v, %v", d, err)
					return
				case d.Allowed:
					allowed.Add(1)
				default:
					refused.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if a, r := allowed.Load(), refused.Load(); a != burst-1 || a+r != callers*each {
		t.Errorf("allowed %d, refused %d; want %d allowed (burst less the first Take) of %d", a, r, burst-1, callers*each)
	}
	if n := h.n.Load() - before; n > callers*each {
		t.Errorf("%d Takes sent %d Redis commands; want at most one each", callers*each, n)
	} else {
		t.Logf("%d Takes in %d round trips", callers*each, n)
	}
}

// TestDecidedBeforeRelease: a queued Take decided just before its runner released the
// queue's context gets its decision, not a timeout, however the two signals are picked up.
func TestDecidedBeforeRelease(t *testing.T) {
	for range 200 {
		ctx, cancel := context.WithCancel(context.Background())
		q := pendingPool.Get().(*pending)
		q.r = result{allowed: true, remaining: 7}
		q.done <- struct{}{} // the runner signals, then releases the queue's context
		cancel()
		if r, err := q.wait(ctx); err != nil || r != (result{allowed: true, remaining: 7}) {
			t.Fatalf("wait() = %+v, %v; want the decision", r, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	q := pendingPool.Get().(*pending)
	if _, err := q.wait(ctx); err != context.DeadlineExceeded {
		t.Fatalf("wait() on an undecided Take whose context is done = %v; want context.DeadlineExceeded", err)
	}
}
