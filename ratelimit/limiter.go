package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrUnavailable is returned when Redis fails and the policy says on_redis_error "deny"; the
// proxy answers 503 rate_limiter_unavailable. Errors wrapping it keep Redis's reason as text only.
var ErrUnavailable = errors.New("rate limiter unavailable")

// errSkipped is ErrUnavailable while Redis is skipped after a failure.
var errSkipped = fmt.Errorf("%w: Redis failed recently", ErrUnavailable)

var errForeignKey = errors.New("ratelimit: Key was not made by this Policy")

// Defaults of Options.
const (
	DefaultTimeout       = 50 * time.Millisecond
	DefaultProbeInterval = time.Second
)

// MaxHoldOff caps a hold-off, so that one absurd Retry-After cannot shut a budget for good.
const MaxHoldOff = 24 * time.Hour

// callerClockSlack (ms) lengthens key TTLs when the script gets the caller's clock: Redis
// expires keys on its own clock, which a test's clock does not follow.
const callerClockSlack = int64(10 * time.Minute / time.Millisecond)

// Options of a Limiter; the zero value is ready.
type Options struct {
	// Timeout bounds each Redis call, whatever the request's context. DefaultTimeout (50ms)
	// is used if zero.
	Timeout time.Duration
	// ProbeInterval: after a Redis call fails, requests skip Redis this long, then one of
	// them tries it again. DefaultProbeInterval (1s) is used if zero.
	ProbeInterval time.Duration
	// Log gets the Redis failure warning, at most once a minute. slog.Default() if nil.
	Log *slog.Logger
	// Now is the clock, time.Now if nil. When set, a Redis limiter passes it to the script
	// instead of Redis TIME, so every instance sharing the keys must share it (tests).
	Now func() time.Time
	// OnFallback, if set, is called for each request the in-process limiter decides because
	// Redis failed. It must be quick and safe for concurrent use (a counter's Inc).
	OnFallback func()
}

// Decision is the outcome of Take.
type Decision struct {
	Allowed bool
	// Waited is how long the request slept for its slot (wait mode).
	Waited time.Duration
	// RetryAfter, when refused, is the time until a slot is free (for Retry-After).
	RetryAfter time.Duration
	// Limit is the tightest window's rate (requests per its period), Remaining how many more
	// it admits at once, Reset the time until it is full again (RateLimit-* headers). The
	// tightest window is the one with the fewest remaining, the longest reset among equals.
	Limit, Remaining int
	Reset            time.Duration
	// Fallback: decided by the in-process limiter because Redis failed (on_redis_error allow).
	Fallback bool
}

// Limiter takes requests against Policies. It is safe for concurrent use.
type Limiter struct {
	rdb        redis.UniversalClient // nil: in-process only
	batch      *batcher              // Takes through rdb
	local      *local
	timeout    time.Duration
	probe      int64 // ns
	log        *slog.Logger
	now        func() time.Time
	callerNow  bool
	slack      int64
	onFallback func()

	fallbacks atomic.Uint64
	failures  atomic.Uint64
	// downUntil (Unix ns, wall clock) is when Redis may be tried again; 0 while it answers.
	downUntil atomic.Int64
	lastLog   atomic.Int64
}

// NewRedis returns a Limiter whose budgets live in Redis, shared by every instance using the
// same server, Sentinel or Cluster. The caller owns c (it may be shared) and closes it. A nil
// c makes an in-process Limiter, as NewLocal.
//
// Options.Timeout bounds calls only if c honours context deadlines: build c with
// ContextTimeoutEnabled, or its ReadTimeout (3s by default) applies instead. NewRedis logs a
// warning when it can tell c does not.
func NewRedis(c redis.UniversalClient, opts Options) *Limiter {
	l := newLimiter(opts)
	l.rdb = c
	if c != nil {
		l.batch = &batcher{c: c, slack: l.slack}
	}
	if on, known := contextTimeouts(c); known && !on {
		l.log.Warn("ratelimit: the Redis client ignores context deadlines (ContextTimeoutEnabled is off); " +
			"Redis calls are bounded by its socket timeouts, not Options.Timeout")
	}
	return l
}

// NewLocal returns an in-process Limiter: the same windows and behaviour, for one instance.
func NewLocal(opts Options) *Limiter { return newLimiter(opts) }

func newLimiter(opts Options) *Limiter {
	l := &Limiter{
		local:      newLocal(),
		timeout:    opts.Timeout,
		probe:      int64(opts.ProbeInterval),
		log:        opts.Log,
		now:        opts.Now,
		callerNow:  opts.Now != nil,
		onFallback: opts.OnFallback,
	}
	if l.timeout <= 0 {
		l.timeout = DefaultTimeout
	}
	if l.probe <= 0 {
		l.probe = int64(DefaultProbeInterval)
	}
	if l.log == nil {
		l.log = slog.Default()
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.callerNow {
		l.slack = callerClockSlack
	}
	return l
}

func contextTimeouts(c redis.UniversalClient) (on, known bool) {
	switch c := c.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled, true
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled, true
	case *redis.Ring:
		return c.Options().ContextTimeoutEnabled, true
	}
	return false, false
}

// Take reserves one request of k against every window of p. A nil p allows at once.
//
// Wait mode: when the slot comes within the request's budget — p.MaxWait cut to ctx's
// deadline — Take sleeps until it and returns Allowed; when it would come later, Take returns
// at once, not Allowed, with RetryAfter, and charges nothing. Reject mode never sleeps. A ctx
// done during the sleep returns ctx.Err(), the slot spent. With Redis failing, Take decides
// in-process (Fallback) or, for on_redis_error "deny", returns an error wrapping ErrUnavailable.
func (l *Limiter) Take(ctx context.Context, p *Policy, k Key) (Decision, error) {
	if p == nil {
		return Decision{Allowed: true}, nil
	}
	if len(k.keys) != len(p.windows)+1 {
		return Decision{}, errForeignKey
	}
	if err := ctx.Err(); err != nil {
		return Decision{}, err
	}
	budget := p.maxWait
	if dl, ok := ctx.Deadline(); ok && budget > 0 {
		budget = max(min(budget, time.Until(dl)), 0)
	}
	r, fallback, err := l.decide(ctx, p, &k, budget.Microseconds())
	if err != nil {
		return Decision{}, err
	}
	w := p.windows[r.tightest]
	d := Decision{Allowed: r.allowed, Limit: w.limit.Rate, Remaining: int(r.remaining),
		Reset: micros(r.reset), Fallback: fallback}
	if !r.allowed {
		d.RetryAfter = micros(r.wait)
		d.Reset = max(d.Reset, d.RetryAfter)
		return d, nil
	}
	if r.wait > 0 {
		wait := micros(r.wait)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
			d.Waited = wait
		case <-ctx.Done():
			t.Stop()
			d.Allowed = false
			return d, ctx.Err()
		}
	}
	return d, nil
}

// decide asks Redis, or the in-process limiter when there is no Redis or it failed.
func (l *Limiter) decide(ctx context.Context, p *Policy, k *Key, budget int64) (result, bool, error) {
	if l.rdb == nil {
		return l.local.take(p, k, l.now().UnixMicro(), budget), false, nil
	}
	var err error = errSkipped
	if l.redisUp() {
		var now int64 // 0: Redis TIME
		if l.callerNow {
			now = l.now().UnixMicro()
		}
		var r result
		r, err = l.batch.take(time.Now().Add(l.timeout), p, k, now, budget)
		if err == nil {
			l.recovered()
			return r, false, nil
		}
		l.failed(err)
		err = fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if p.deny {
		return result{}, false, err
	}
	l.fallbacks.Add(1)
	if l.onFallback != nil {
		l.onFallback()
	}
	return l.local.take(p, k, l.now().UnixMicro(), budget), true, nil
}

// HoldOff shuts k's budget until until, for every instance: the upstream said 429 with
// Retry-After or a reset header. It never shortens a longer hold-off, and holds at most
// MaxHoldOff. The hold-off is also kept in-process, for the fallback. With Redis failing it
// returns an error wrapping ErrUnavailable for on_redis_error "deny", nil otherwise.
func (l *Limiter) HoldOff(ctx context.Context, p *Policy, k Key, until time.Time) error {
	if p == nil {
		return nil
	}
	if len(k.keys) != len(p.windows)+1 {
		return errForeignKey
	}
	now := l.now()
	ttl := min(until.Sub(now), MaxHoldOff)
	if ttl <= 0 {
		return nil
	}
	ttlUS := (ttl + time.Microsecond - 1).Microseconds()
	l.local.holdOff(&k, now.UnixMicro(), ttlUS)
	if l.rdb == nil {
		return nil
	}
	var err error = errSkipped
	if l.redisUp() {
		var nowUS int64
		if l.callerNow {
			nowUS = now.UnixMicro()
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.timeout)
		err = redisHoldOff(rctx, l.rdb, &k, nowUS, ttlUS, l.slack)
		cancel()
		if err == nil {
			l.recovered()
			return nil
		}
		l.failed(err)
		err = fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if p.deny {
		return err
	}
	return nil
}

// redisUp reports whether to call Redis: yes while it answers; after a failure, only once
// ProbeInterval has passed, and then for one caller (the probe) per interval.
func (l *Limiter) redisUp() bool {
	u := l.downUntil.Load()
	if u == 0 {
		return true
	}
	t := time.Now().UnixNano()
	return t >= u && l.downUntil.CompareAndSwap(u, t+l.probe)
}

func (l *Limiter) failed(err error) {
	n := l.failures.Add(1)
	t := time.Now().UnixNano()
	l.downUntil.Store(t + l.probe)
	last := l.lastLog.Load()
	if (last == 0 || t-last >= int64(time.Minute)) && l.lastLog.CompareAndSwap(last, t) {
		l.log.Warn("ratelimit: Redis call failed; on_redis_error=allow policies decide in-process, "+
			"deny ones refuse (logged at most once a minute)",
			"err", err, "failures", n, "fallbacks", l.fallbacks.Load())
	}
}

func (l *Limiter) recovered() {
	if l.downUntil.Load() != 0 && l.downUntil.Swap(0) != 0 {
		l.log.Info("ratelimit: Redis answers again", "failures", l.failures.Load(), "fallbacks", l.fallbacks.Load())
	}
}

// Fallbacks counts the requests decided in-process because Redis failed.
func (l *Limiter) Fallbacks() uint64 { return l.fallbacks.Load() }

// Failures counts the Redis calls that failed.
func (l *Limiter) Failures() uint64 { return l.failures.Load() }

// Close releases the Limiter. It does not close the Redis client, which the caller owns.
func (l *Limiter) Close() error { return nil }

func micros(us int64) time.Duration { return time.Duration(us) * time.Microsecond }
