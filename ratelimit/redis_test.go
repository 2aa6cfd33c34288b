package ratelimit

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/extapi/extapi/store"
)

// TestHoldOffSeenByAnotherInstance: one instance learns of a 429, another holds off too.
func TestHoldOffSeenByAnotherInstance(t *testing.T) {
	ctx := context.Background()
	t.Run("test clock", func(t *testing.T) {
		t.Parallel()
		c := newClock()
		a := NewRedis(newClient(t), Options{Now: c.Now, Timeout: testTimeout})
		b := NewRedis(newClient(t), Options{Now: c.Now, Timeout: testTimeout})
		p := mustPolicy(t, store.RateLimit{RequestsPerSecond: 100, Mode: ModeReject})
		if err := a.HoldOff(ctx, p, p.Key("conn"), c.Now().Add(3*time.Second)); err != nil {
			t.Fatalf("HoldOff() = %v", err)
		}
		if d, err := b.Take(ctx, p, p.Key("conn")); err != nil || d.Allowed || d.RetryAfter != 3*time.Second {
			t.Errorf("other instance: Take() = %+v, %v; want refused, RetryAfter 3s", d, err)
		}
		c.Advance(3 * time.Second)
		if d, err := b.Take(ctx, p, p.Key("conn")); err != nil || !d.Allowed {
			t.Errorf("other instance, 3s later: Take() = %+v, %v; want allowed", d, err)
		}
	})
	t.Run("Redis TIME", func(t *testing.T) {
		t.Parallel()
		a := NewRedis(newClient(t), Options{Timeout: testTimeout})
		b := NewRedis(newClient(t), Options{Timeout: testTimeout})
		p := mustPolicy(t, store.RateLimit{RequestsPerMinute: 6000, Scope: ScopeAPI, Mode: ModeReject})
		if err := a.HoldOff(ctx, p, p.Key("x"), time.Now().Add(5*time.Second)); err != nil {
			t.Fatalf("HoldOff() = %v", err)
		}
		d, err := b.Take(ctx, p, p.Key("y"))
		if err != nil || d.Allowed || d.RetryAfter <= 3*time.Second || d.RetryAfter > 5*time.Second {
			t.Errorf("other instance: Take() = %+v, %v; want refused, RetryAfter in (3s, 5s]", d, err)
		}
	})
}

// TestMatchesRedisRate runs redis_rate's own limiter and this package's script side by side on
// Redis TIME: the same limit admits and counts the same.
func TestMatchesRedisRate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := newClient(t)
	rr := redis_rate.NewLimiter(rdb)
	l := NewRedis(rdb, Options{Timeout: testTimeout})
	for _, lim := range []redis_rate.Limit{
		{Rate: 1, Burst: 3, Period: time.Second},
		{Rate: 2, Burst: 1, Period: time.Minute},
		{Rate: 10, Burst: 4, Period: time.Hour},
	} {
		rl := store.RateLimit{Burst: lim.Burst, Mode: ModeReject}
		switch lim.Period {
		case time.Second:
			rl.RequestsPerSecond = lim.Rate
		case time.Minute:
			rl.RequestsPerMinute = lim.Rate
		case time.Hour:
			rl.RequestsPerHour = lim.Rate
		}
		p := mustPolicy(t, rl)
		if got := p.Limits()[0]; got != lim {
			t.Fatalf("Limits()[0] = %v; want %v", got, lim)
		}
		rrKey := apiID(t)
		t.Cleanup(func() { rr.Reset(context.Background(), rrKey) })
		k := p.Key("c")
		for i := 0; i < lim.Burst+3; i++ {
			want, err := rr.Allow(ctx, rrKey, lim)
			if err != nil {
				t.Fatal(err)
			}
			got, err := l.Take(ctx, p, k)
			if err != nil {
				t.Fatal(err)
			}
			if got.Allowed != (want.Allowed == 1) || got.Remaining != want.Remaining {
				t.Fatalf("%v, request %d: Take() = %+v; redis_rate says allowed %d, remaining %d",
					lim, i, got, want.Allowed, want.Remaining)
			}
			if !got.Allowed {
				if diff := got.RetryAfter - want.RetryAfter; diff < -200*time.Millisecond || diff > 200*time.Millisecond {
					t.Errorf("%v, request %d: RetryAfter %v; redis_rate says %v", lim, i, got.RetryAfter, want.RetryAfter)
				}
			}
		}
	}
}

// TestEnginesAgree feeds the script and the in-process limiter the same random requests,
// budgets (reservations) and hold-offs on the same clock: they must decide exactly alike.
func TestEnginesAgree(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := newClient(t)
	rng := rand.New(rand.NewPCG(1, 2))
	policies := []store.RateLimit{
		{RequestsPerSecond: 3},
		{RequestsPerSecond: 7, Burst: 2, RequestsPerMinute: 40},
		{RequestsPerMinute: 13, RequestsPerHour: 100, Burst: 4},
		{RequestsPerSecond: 50, RequestsPerMinute: 300, RequestsPerHour: 2000, RequestsPerDay: 5000},
	}
	for _, rl := range policies {
		p := mustPolicy(t, rl)
		k := p.Key("c")
		loc := newLocal()
		now := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
		for i := 0; i < 400; i++ {
			now += rng.Int64N(300_000)
			if rng.IntN(40) == 0 {
				ttl := rng.Int64N(2_000_000)
				if err := redisHoldOff(ctx, rdb, &k, now, ttl, callerClockSlack); err != nil {
					t.Fatal(err)
				}
				loc.holdOff(&k, now, ttl)
			}
			var budget int64
			if rng.IntN(2) == 0 {
				budget = rng.Int64N(3_000_000)
			}
			got, err := redisTake(ctx, rdb, p, &k, now, budget, callerClockSlack)
			if err != nil {
				t.Fatal(err)
			}
			if want := loc.take(p, &k, now, budget); got != want {
				t.Fatalf("%s, request %d (budget %dµs): script %+v; in-process %+v", p, i, budget, got, want)
			}
		}
	}
}

// countHook counts the commands a client sends.
type countHook struct{ n atomic.Int64 }

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}
func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

// TestOneRoundTrip: all four windows and the hold-off cost one Redis command per Take.
func TestOneRoundTrip(t *testing.T) {
	t.Parallel()
	rdb := newClient(t)
	h := &countHook{}
	rdb.AddHook(h)
	l := NewRedis(rdb, Options{Timeout: testTimeout})
	p := mustPolicy(t, store.RateLimit{RequestsPerSecond: 1000, RequestsPerMinute: 60000,
		RequestsPerHour: 3600000, RequestsPerDay: 86400000, Mode: ModeReject})
	k := p.Key("c")
	l.Take(context.Background(), p, k) // may load the script (EVALSHA, then EVAL)
	before := h.n.Load()
	const n = 50
	for i := 0; i < n; i++ {
		if d, err := l.Take(context.Background(), p, k); err != nil || !d.Allowed {
			t.Fatalf("Take() = %+v, %v", d, err)
		}
	}
	if got := h.n.Load() - before; got != n {
		t.Errorf("%d Takes sent %d Redis commands; want %d", n, got, n)
	}
	for _, key := range k.keys {
		if !strings.HasPrefix(key, k.id+":") || !strings.Contains(k.id, "{") || !strings.HasSuffix(k.id, "}") {
			t.Errorf("key %q: want it under the hash tag of %q", key, k.id)
		}
	}
}
