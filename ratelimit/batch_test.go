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
