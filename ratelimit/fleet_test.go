package ratelimit

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/extapi/extapi/store"
	"github.com/extapi/extapi/store/storetest"
)

const (
	fleetRate    = 20
	fleetCallers = 200
)

// fleet is three instances, each with a Redis client of its own, sharing one API budget.
func fleet(t *testing.T) []*Limiter {
	// A generous timeout and a connection per caller: a fallback here would be a failure of
	// its own (each instance alone would admit the full rate), and the machine running the
	// tests may be loaded; the fault tests cover short timeouts.
	opt, err := redis.ParseURL(storetest.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	opt.PoolSize = fleetCallers / 3
	var ls []*Limiter
	for i := 0; i < 3; i++ {
		o := *opt
		ls = append(ls, NewRedis(dial(t, &o, storetest.RedisURL()), Options{Timeout: 10 * time.Second}))
	}
	return ls
}

// span is when an admitted request's slot was: no earlier than from (Take was called, plus
// the wait it reported), no later than to (Take returned). Redis decided on its own clock.
type span struct{ from, to time.Time }

// maxIn is the most requests whose slot surely lies in one span of length w (half-open,
// sliding): those whose whole span is inside. A load so heavy that Take returns late only
// makes it more lenient, never fail a correct limiter.
func maxIn(ss []span, w time.Duration) int {
	best := 0
	for _, a := range ss {
		n := 0
		for _, s := range ss {
			if !s.from.Before(a.from) && s.to.Before(a.from.Add(w)) {
				n++
			}
		}
		best = max(best, n)
	}
	return best
}

// TestFleetReject: 200 callers hammer three instances for 3 s against 20 req/s (burst 20):
// no second sees more than 20+burst admitted (GCRA's bound is rate+burst-1).
func TestFleetReject(t *testing.T) {
	t.Parallel()
	ls := fleet(t)
	p := mustPolicy(t, store.RateLimit{RequestsPerSecond: fleetRate, Scope: ScopeAPI, Mode: ModeReject})
	const run = 3 * time.Second
	var (
		mu      sync.Mutex
		spans   []span
		errs    atomic.Int64
		refused atomic.Int64
		wg      sync.WaitGroup
	)
	start := time.Now()
	end := start.Add(run)
	for i := 0; i < fleetCallers; i++ {
		wg.Add(1)
		go func(l *Limiter, k Key) {
			defer wg.Done()
			for time.Now().Before(end) {
				from := time.Now()
				d, err := l.Take(context.Background(), p, k)
				switch {
				case err != nil:
					errs.Add(1)
				case d.Allowed:
					to := time.Now()
					mu.Lock()
					spans = append(spans, span{from, to})
					mu.Unlock()
				default:
					refused.Add(1)
				}
				time.Sleep(100 * time.Millisecond) // offered load: 2000/s, 100 times the limit
			}
		}(ls[i%len(ls)], p.Key("caller"))
	}
	wg.Wait()
	elapsed := time.Since(start)
	burst := p.Limits()[0].Burst
	if n := errs.Load(); n != 0 {
		t.Errorf("%d Takes failed", n)
	}
	busiest := maxIn(spans, time.Second)
	if busiest > fleetRate+burst {
		t.Errorf("%d requests admitted in one second; want at most %d", busiest, fleetRate+burst)
	}
	// Nor over-limited: the budget refills. (The exact refill is TestWindows's; here a loaded
	// machine may leave slots unasked for.)
	lo, hi := burst+fleetRate, burst+int(elapsed.Seconds()*fleetRate)+1
	if n := len(spans); n < lo || n > hi {
		t.Errorf("%d requests admitted in %v; want %d..%d", n, elapsed, lo, hi)
	}
	for i, l := range ls {
		if n := l.Fallbacks(); n != 0 {
			t.Errorf("instance %d decided %d requests in-process; want all through Redis", i, n)
		}
	}
	t.Logf("%d admitted, %d refused in %v; busiest second %d", len(spans), refused.Load(), elapsed, busiest)
}

// TestFleetWait: 200 callers at once in wait mode over three instances: everyone gets a slot
// (the last after (200-20)/20 = 9 s, within its budget), and the rate holds.
func TestFleetWait(t *testing.T) {
	t.Parallel()
	ls := fleet(t)
	p := mustPolicy(t, store.RateLimit{RequestsPerSecond: fleetRate, Scope: ScopeAPI, MaxWaitMS: 15000})
	var (
		mu     sync.Mutex
		spans  []span
		failed atomic.Int64
		wg     sync.WaitGroup
	)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := 0; i < fleetCallers; i++ {
		wg.Add(1)
		go func(l *Limiter, k Key) {
			defer wg.Done()
			from := time.Now()
			d, err := l.Take(ctx, p, k)
			if err != nil || !d.Allowed {
				failed.Add(1)
				t.Errorf("Take() = %+v, %v; want allowed after a wait", d, err)
				return
			}
			to := time.Now()
			mu.Lock()
			spans = append(spans, span{from.Add(d.Waited), to})
			mu.Unlock()
		}(ls[i%len(ls)], p.Key("caller"))
	}
	wg.Wait()
	burst := p.Limits()[0].Burst
	busiest := maxIn(spans, time.Second)
	if busiest > fleetRate+burst {
		t.Errorf("%d requests admitted in one second; want at most %d", busiest, fleetRate+burst)
	}
	if len(spans) != fleetCallers {
		t.Fatalf("%d of %d callers admitted; want all", len(spans), fleetCallers)
	}
	t.Logf("all %d admitted; busiest second %d", len(spans), busiest)
}
