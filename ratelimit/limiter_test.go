package ratelimit

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/extapi/extapi/store"
)

// step advances the clock by adv, then takes n requests, each wanting allowed and, when
// refused, retryAfter.
type step struct {
	adv        time.Duration
	n          int
	allowed    bool
	retryAfter time.Duration
}

func TestWindows(t *testing.T) {
	tests := []struct {
		desc  string
		rl    store.RateLimit
		steps []step
	}{
		{"per second, burst = rate", store.RateLimit{RequestsPerSecond: 5}, []step{
			{0, 5, true, 0},
			{0, 2, false, 200 * time.Millisecond},
			{199 * time.Millisecond, 1, false, time.Millisecond},
			{time.Millisecond, 1, true, 0},
			{0, 1, false, 200 * time.Millisecond},
			{time.Second, 5, true, 0},
			{0, 1, false, 200 * time.Millisecond},
		}},
		{"per second, explicit burst", store.RateLimit{RequestsPerSecond: 2, Burst: 4}, []step{
			{0, 4, true, 0},
			{0, 1, false, 500 * time.Millisecond},
		}},
		{"per minute alone: burst 1", store.RateLimit{RequestsPerMinute: 3}, []step{
			{0, 1, true, 0},
			{0, 1, false, 20 * time.Second},
			{20 * time.Second, 1, true, 0},
			{5 * time.Second, 1, false, 15 * time.Second},
		}},
		{"per hour alone", store.RateLimit{RequestsPerHour: 200}, []step{
			{0, 1, true, 0},
			{0, 1, false, 18 * time.Second},
			{18 * time.Second, 1, true, 0},
		}},
		{"per day alone", store.RateLimit{RequestsPerDay: 2}, []step{
			{0, 1, true, 0},
			{0, 1, false, 12 * time.Hour},
			{12 * time.Hour, 1, true, 0},
			{0, 1, false, 12 * time.Hour},
		}},
		{"second and minute: the minute binds after the burst", store.RateLimit{RequestsPerSecond: 10, RequestsPerMinute: 15}, []step{
			{0, 10, true, 0},
			{0, 1, false, 4 * time.Second},
			{4 * time.Second, 1, true, 0},
			{0, 1, false, 4 * time.Second},
		}},
		{"every window", store.RateLimit{RequestsPerSecond: 100, RequestsPerMinute: 600, RequestsPerHour: 3600, RequestsPerDay: 2}, []step{
			{0, 2, true, 0},
			{0, 1, false, 12 * time.Hour},
		}},
		// The minute window would admit the refused requests at 500ms; had they been charged to
		// it, its TAT would be 2.5s and the request at 1s refused.
		{"a request refused by one window is charged to none", store.RateLimit{RequestsPerSecond: 1, RequestsPerMinute: 120}, []step{
			{0, 1, true, 0},
			{500 * time.Millisecond, 4, false, 500 * time.Millisecond},
			{500 * time.Millisecond, 1, true, 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			eachEngine(t, func(t *testing.T, l *Limiter, c *clock) {
				rl := tt.rl
				rl.Mode = ModeReject
				p := mustPolicy(t, rl)
				k := p.Key("conn")
				for i, s := range tt.steps {
					c.Advance(s.adv)
					for j := 0; j < s.n; j++ {
						d, err := l.Take(context.Background(), p, k)
						if err != nil {
							t.Fatalf("step %d, take %d: Take() error %v", i, j, err)
						}
						if d.Allowed != s.allowed || (!s.allowed && d.RetryAfter != s.retryAfter) {
							t.Fatalf("step %d, take %d: Take() = %+v; want Allowed %v, RetryAfter %v",
								i, j, d, s.allowed, s.retryAfter)
						}
						if d.Fallback {
							t.Fatalf("step %d: Fallback set with Redis up", i)
						}
					}
				}
			})
		})
	}
}

func TestScope(t *testing.T) {
	tests := []struct {
		scope      string
		secondConn bool // does conn b get its own budget?
	}{
		{"", true},
		{ScopeConnection, true},
		{ScopeAPI, false},
	}
	for _, tt := range tests {
		t.Run("scope="+tt.scope, func(t *testing.T) {
			eachEngine(t, func(t *testing.T, l *Limiter, c *clock) {
				p := mustPolicy(t, store.RateLimit{RequestsPerSecond: 1, Mode: ModeReject, Scope: tt.scope})
				ka, kb := p.Key("a"), p.Key("b")
				ctx := context.Background()
				if d, _ := l.Take(ctx, p, ka); !d.Allowed {
					t.Fatalf("Take(a) = %+v; want allowed", d)
				}
				if d, _ := l.Take(ctx, p, ka); d.Allowed {
					t.Fatalf("second Take(a) = %+v; want refused", d)
				}
				if d, _ := l.Take(ctx, p, kb); d.Allowed != tt.secondConn {
					t.Fatalf("Take(b) = %+v; want Allowed %v", d, tt.secondConn)
				}
			})
		})
	}
}

func TestDecisionHeaders(t *testing.T) {
	tests := []struct {
		desc string
		rl   store.RateLimit
		n    int           // requests before the one checked
		adv  time.Duration // then the clock moves this much
		want Decision
	}{
		{"first of 10/s", store.RateLimit{RequestsPerSecond: 10}, 0, 0,
			Decision{Allowed: true, Limit: 10, Remaining: 9, Reset: 100 * time.Millisecond}},
		{"fifth of 10/s", store.RateLimit{RequestsPerSecond: 10}, 4, 0,
			Decision{Allowed: true, Limit: 10, Remaining: 5, Reset: 500 * time.Millisecond}},
		// Both windows have 9 left; the minute takes longer to refill, so it is the tightest.
		{"first of 10/s and 100/min", store.RateLimit{RequestsPerSecond: 10, RequestsPerMinute: 100}, 0, 0,
			Decision{Allowed: true, Limit: 100, Remaining: 9, Reset: 600 * time.Millisecond}},
		{"last of the burst", store.RateLimit{RequestsPerSecond: 10, RequestsPerMinute: 100}, 9, 0,
			Decision{Allowed: true, Limit: 100, Remaining: 0, Reset: 6 * time.Second}},
		{"refused", store.RateLimit{RequestsPerSecond: 10, RequestsPerMinute: 100}, 10, 0,
			Decision{Allowed: false, RetryAfter: 600 * time.Millisecond, Limit: 100, Remaining: 0, Reset: 6 * time.Second}},
		// The day window (one slot per 8.64ms) has refilled after 100ms; the second has not.
		{"the per-second window binds", store.RateLimit{RequestsPerSecond: 2, RequestsPerDay: 10_000_000, Burst: 3}, 2,
			100 * time.Millisecond, Decision{Allowed: true, Limit: 2, Remaining: 0, Reset: 1400 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			eachEngine(t, func(t *testing.T, l *Limiter, c *clock) {
				rl := tt.rl
				rl.Mode = ModeReject
				p := mustPolicy(t, rl)
				k := p.Key("conn")
				for i := 0; i < tt.n; i++ {
					l.Take(context.Background(), p, k)
				}
				c.Advance(tt.adv)
				d, err := l.Take(context.Background(), p, k)
				if err != nil || d != tt.want {
					t.Errorf("Take() = %+v, %v; want %+v", d, err, tt.want)
				}
			})
		})
	}
}

func TestWaitMode(t *testing.T) {
	eachEngine(t, func(t *testing.T, l *Limiter, c *clock) {
		p := mustPolicy(t, store.RateLimit{RequestsPerSecond: 10, Burst: 1, MaxWaitMS: 1000})
		k := p.Key("conn")
		for i, want := range []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond} {
			start := time.Now()
			d, err := l.Take(context.Background(), p, k)
			if err != nil || !d.Allowed || d.Waited != want {
				t.Fatalf("take %d: Take() = %+v, %v; want allowed after %v", i, d, err, want)
			}
			if slept := time.Since(start); slept < want {
				t.Errorf("take %d: returned after %v; want a sleep of %v", i, slept, want)
			}
		}
		// The same as a reject-mode policy refuses it.
		p = mustPolicy(t, store.RateLimit{RequestsPerSecond: 10, Burst: 1, Mode: ModeReject})
		k = p.Key("conn")
		l.Take(context.Background(), p, k)
		if d, _ := l.Take(context.Background(), p, k); d.Allowed || d.RetryAfter != 100*time.Millisecond || d.Waited != 0 {
			t.Errorf("reject mode: Take() = %+v; want refused, RetryAfter 100ms", d)
		}
	})
}

func TestMaxWait(t *testing.T) {
	eachEngine(t, func(t *testing.T, l *Limiter, c *clock) {
		ctx := context.Background()
		// A slot a minute away does not fit 5s: refused at once — not after sitting out the
		// 5s — and not charged, so the next request is refused with the same RetryAfter.
		p := mustPolicy(t, store.RateLimit{RequestsPerMinute: 1, MaxWaitMS: 5000})
		k := p.Key("conn")
		if d, _ := l.Take(ctx, p, k); !d.Allowed {
			t.Fatalf("first Take() = %+v; want allowed", d)
		}
		for i := 0; i < 3; i++ {
			start := time.Now()
			d, err := l.Take(ctx, p, k)
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("refusal %d took %v; want at once", i, took)
			}
			if err != nil || d.Allowed || d.RetryAfter != time.Minute || d.Waited != 0 {
				t.Fatalf("refusal %d: Take() = %+v, %v; want refused, RetryAfter 1m", i, d, err)
			}
		}

		p = mustPolicy(t, store.RateLimit{RequestsPerSecond: 1, MaxWaitMS: 300})
		k = p.Key("conn")
		l.Take(ctx, p, k)
		if d, _ := l.Take(ctx, p, k); d.Allowed || d.RetryAfter != time.Second {
			t.Fatalf("1s before the slot: Take() = %+v; want refused, RetryAfter 1s", d)
		}
		c.Advance(800 * time.Millisecond)
		if d, _ := l.Take(ctx, p, k); !d.Allowed || d.Waited != 200*time.Millisecond {
			t.Fatalf("200ms before the slot: Take() = %+v; want allowed after 200ms", d)
		}

		// The context's deadline cuts the budget.
		p = mustPolicy(t, store.RateLimit{RequestsPerSecond: 2, Burst: 1, MaxWaitMS: 10000})
		k = p.Key("conn")
		l.Take(ctx, p, k)
		short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		if d, err := l.Take(short, p, k); err != nil || d.Allowed || d.RetryAfter != 500*time.Millisecond {
			t.Errorf("deadline 100ms: Take() = %+v, %v; want refused, RetryAfter 500ms", d, err)
		}
		long, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if d, err := l.Take(long, p, k); err != nil || !d.Allowed || d.Waited != 500*time.Millisecond {
			t.Errorf("deadline 5s: Take() = %+v, %v; want allowed after 500ms", d, err)
		}
	})
}

func TestWaitCancelled(t *testing.T) {
	eachEngine(t, func(t *testing.T, l *Limiter, c *clock) {
		p := mustPolicy(t, store.RateLimit{RequestsPerMinute: 1, MaxWaitMS: 120000})
		k := p.Key("conn")
		l.Take(context.Background(), p, k) // the next slot is a minute away
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		start := time.Now()
		d, err := l.Take(ctx, p, k)
		if !errors.Is(err, context.Canceled) || d.Allowed {
			t.Errorf("Take() = %+v, %v; want context.Canceled", d, err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("Take() returned %v after the cancel; want at once", took)
		}
		if _, err := l.Take(ctx, p, k); !errors.Is(err, context.Canceled) {
			t.Errorf("Take(done ctx) error %v; want context.Canceled", err)
		}
	})
}

func TestHoldOff(t *testing.T) {
	eachEngine(t, func(t *testing.T, l *Limiter, c *clock) {
		ctx := context.Background()
		p := mustPolicy(t, store.RateLimit{RequestsPerSecond: 100, Mode: ModeReject})
		k, other := p.Key("conn"), p.Key("other")
		if err := l.HoldOff(ctx, p, k, c.Now().Add(2*time.Second)); err != nil {
			t.Fatalf("HoldOff() = %v", err)
		}
		if d, _ := l.Take(ctx, p, k); d.Allowed || d.RetryAfter != 2*time.Second || d.Reset != 2*time.Second {
			t.Errorf("held: Take() = %+v; want refused, RetryAfter 2s", d)
		}
		if d, _ := l.Take(ctx, p, other); !d.Allowed {
			t.Errorf("another connection: Take() = %+v; want allowed", d)
		}
		// A shorter or past hold-off does not shorten it.
		l.HoldOff(ctx, p, k, c.Now().Add(time.Second))
		l.HoldOff(ctx, p, k, c.Now().Add(-time.Second))
		c.Advance(1500 * time.Millisecond)
		if d, _ := l.Take(ctx, p, k); d.Allowed || d.RetryAfter != 500*time.Millisecond {
			t.Errorf("after 1.5s: Take() = %+v; want refused, RetryAfter 500ms", d)
		}
		c.Advance(500 * time.Millisecond)
		if d, _ := l.Take(ctx, p, k); !d.Allowed {
			t.Errorf("after 2s: Take() = %+v; want allowed", d)
		}
		// Capped at MaxHoldOff.
		l.HoldOff(ctx, p, k, c.Now().Add(30*24*time.Hour))
		if d, _ := l.Take(ctx, p, k); d.RetryAfter != MaxHoldOff {
			t.Errorf("held 30 days: Take() = %+v; want RetryAfter %v", d, MaxHoldOff)
		}

		// Wait mode waits a hold-off out when it fits the budget.
		p = mustPolicy(t, store.RateLimit{RequestsPerSecond: 100, MaxWaitMS: 1000})
		k = p.Key("conn")
		l.HoldOff(ctx, p, k, c.Now().Add(150*time.Millisecond))
		if d, err := l.Take(ctx, p, k); err != nil || !d.Allowed || d.Waited != 150*time.Millisecond {
			t.Errorf("wait mode, held 150ms: Take() = %+v, %v; want allowed after 150ms", d, err)
		}
	})
}

func TestUnlimitedAndForeignKey(t *testing.T) {
	l := NewLocal(Options{})
	defer l.Close()
	if d, err := l.Take(context.Background(), nil, Key{}); err != nil || !d.Allowed {
		t.Errorf("Take(nil policy) = %+v, %v; want allowed", d, err)
	}
	if err := l.HoldOff(context.Background(), nil, Key{}, time.Now().Add(time.Hour)); err != nil {
		t.Errorf("HoldOff(nil policy) = %v", err)
	}
	p := mustPolicy(t, store.RateLimit{RequestsPerSecond: 1})
	if _, err := l.Take(context.Background(), p, Key{}); err == nil {
		t.Error("Take(zero Key) = nil error; want one")
	}
	two := mustPolicy(t, store.RateLimit{RequestsPerSecond: 1, RequestsPerDay: 5})
	if _, err := l.Take(context.Background(), two, p.Key("c")); err == nil {
		t.Error("Take(Key of another policy) = nil error; want one")
	}
}

// TestLocalSweep checks that expired budgets are dropped, so memory follows live connections.
func TestLocalSweep(t *testing.T) {
	c := newClock()
	l := NewLocal(Options{Now: c.Now})
	p := mustPolicy(t, store.RateLimit{RequestsPerSecond: 10, Mode: ModeReject})
	const budgets = 100_000
	for i := 0; i < budgets; i++ {
		l.Take(context.Background(), p, p.Key(strconv.Itoa(i)))
		c.Advance(time.Second)
	}
	n := 0
	for i := range l.local.shards {
		n += len(l.local.shards[i].cells)
	}
	if n > 1024*numShards {
		t.Errorf("%d cells kept after %d budgets expired; want at most %d", n, budgets, 1024*numShards)
	}
}
