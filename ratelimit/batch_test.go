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

// TestBatchedTakesDoNotFail: under sustained concurrent Takes (queues forming and being sent
// back to back, two Policies and several Keys: shared script calls and pipelined groups), no
// Take fails or falls back while Redis answers.
func TestBatchedTakesDoNotFail(t *testing.T) {
	t.Parallel()
	l := NewRedis(newClient(t), Options{Timeout: testTimeout})
	p, q := mustPolicy(t, oneWindow), mustPolicy(t, fourWindows)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			pol := p
			if i%2 == 1 {
				pol = q
			}
			k := pol.Key("k" + string(rune('a'+i%4)))
			for range 300 {
				if d, err := l.Take(ctx, pol, k); err != nil || !d.Allowed || d.Fallback {
					t.Errorf("Take() = %+v, %v; want allowed, from Redis", d, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := l.Failures(); n != 0 {
		t.Errorf("%d Redis calls failed; want 0", n)
	}
}
