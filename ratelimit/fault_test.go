package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/extapi/extapi/store"
)

// logCount counts log records by level.
type logCount struct {
	warn, info atomic.Int64
}

func (h *logCount) Enabled(context.Context, slog.Level) bool { return true }
func (h *logCount) Handle(_ context.Context, r slog.Record) error {
	switch r.Level {
	case slog.LevelWarn:
		h.warn.Add(1)
	case slog.LevelInfo:
		h.info.Add(1)
	}
	return nil
}
func (h *logCount) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logCount) WithGroup(string) slog.Handler      { return h }

// faultClient connects to srv with socket timeouts of a minute, so that a Take not bounded by
// Options.Timeout would hang for a minute: the tests' "quick" bounds can then be generous
// enough for a loaded machine and still tell.
func faultClient(t *testing.T, srv *redisServer) *redis.Client {
	return dial(t, &redis.Options{Addr: srv.Addr(), DialTimeout: time.Minute,
		ReadTimeout: time.Minute, WriteTimeout: time.Minute}, srv.Addr())
}

// faultOptions fail fast and probe often, so that the test is quick.
func faultOptions(h *logCount, hook func()) Options {
	return Options{Timeout: 50 * time.Millisecond, ProbeInterval: 100 * time.Millisecond,
		Log: slog.New(h), OnFallback: hook}
}

// load runs callers that Take in a loop until stop, and counts outcomes by phase.
type load struct {
	phase    atomic.Int32
	redis    [4]atomic.Int64 // decided through Redis, by phase
	fallback [4]atomic.Int64 // decided in-process, by phase
	errs     atomic.Int64
	refused  atomic.Int64
	slowest  atomic.Int64 // ns
	mu       sync.Mutex
	slowWhat string // the slowest Take's phase and outcome, for the failure message
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

func startLoad(l *Limiter, p *Policy, k Key, callers int) *load {
	ld := &load{stop: make(chan struct{})}
	for i := 0; i < callers; i++ {
		ld.wg.Add(1)
		go func() {
			defer ld.wg.Done()
			for {
				select {
				case <-ld.stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				start := time.Now()
				d, err := l.Take(ctx, p, k)
				took := int64(time.Since(start))
				cancel()
				ph := ld.phase.Load()
				ld.mu.Lock()
				if took > ld.slowest.Load() {
					ld.slowest.Store(took)
					ld.slowWhat = fmt.Sprintf("phase %d: %+v, %v", ph, d, err)
				}
				ld.mu.Unlock()
				switch {
				case err != nil:
					ld.errs.Add(1)
				case !d.Allowed:
					ld.refused.Add(1)
				case d.Fallback:
					ld.fallback[ph].Add(1)
				default:
					ld.redis[ph].Add(1)
				}
			}
		}()
	}
	return ld
}

func (ld *load) Stop() { ld.stopOnce.Do(func() { close(ld.stop) }); ld.wg.Wait() }

// TestRedisFailureAllow: Redis is killed, restarted, frozen and thawed under load. With
// on_redis_error allow no request fails; the in-process limiter decides during the outages,
// and Redis again once it is back.
func TestRedisFailureAllow(t *testing.T) {
	t.Parallel()
	srv := startRedisServer(t)
	rdb := faultClient(t, srv)
	logs := &logCount{}
	var hooked atomic.Int64
	began := time.Now().UnixNano() // before any Redis call of l can fail and log
	l := NewRedis(rdb, faultOptions(logs, func() { hooked.Add(1) }))
	p := mustPolicy(t, store.RateLimit{RequestsPerSecond: 200, Scope: ScopeAPI, MaxWaitMS: 2000})
	ld := startLoad(l, p, p.Key("c"), 8)
	defer ld.Stop()

	const enough = 30
	waitFor(t, 30*time.Second, "decisions through Redis", func() bool { return ld.redis[0].Load() >= enough })
	ld.phase.Store(1)
	srv.Kill()
	waitFor(t, 30*time.Second, "in-process decisions with Redis killed", func() bool { return ld.fallback[1].Load() >= enough })
	ld.phase.Store(2)
	srv.Start()
	waitFor(t, 30*time.Second, "decisions through Redis after a restart", func() bool { return ld.redis[2].Load() >= enough })
	ld.phase.Store(3)
	srv.Freeze()
	waitFor(t, 30*time.Second, "in-process decisions with Redis frozen", func() bool { return ld.fallback[3].Load() >= enough })
	srv.Thaw()
	ld.phase.Store(0)
	ld.redis[0].Store(0)
	waitFor(t, 30*time.Second, "decisions through Redis after a thaw", func() bool { return ld.redis[0].Load() >= enough })
	ld.Stop()

	if n := ld.errs.Load(); n != 0 {
		t.Errorf("%d Takes failed; want none with on_redis_error allow", n)
	}
	if n := ld.refused.Load(); n != 0 {
		t.Errorf("%d Takes refused; want none (wait mode, 8 callers against 200/s)", n)
	}
	// A Take waits at most 8 slots of 5ms, after at most one Redis timeout (50ms); a hang
	// would be the client's socket timeout, a minute.
	if s := time.Duration(ld.slowest.Load()); s > 10*time.Second {
		t.Errorf("slowest Take %v (%s); want no hang", s, ld.slowWhat)
	}
	if l.Fallbacks() == 0 || uint64(hooked.Load()) != l.Fallbacks() {
		t.Errorf("Fallbacks() = %d, OnFallback called %d times; want equal and positive", l.Fallbacks(), hooked.Load())
	}
	// Limiting resumed: through Redis, a fresh budget admits its burst, then refuses. The
	// sequence is checked through a second Limiter on the same client with a generous timeout:
	// through l, a Take that times out on a loaded machine (50ms) may still have run the
	// script and spent a token. Per hour, no token comes back during the test.
	q := mustPolicy(t, store.RateLimit{RequestsPerHour: 5, Mode: ModeReject, Burst: 5})
	k := q.Key("c")
	strict := NewRedis(rdb, Options{Timeout: testTimeout})
	var got []bool
	for range 10 {
		d, err := strict.Take(context.Background(), q, k)
		if err != nil || d.Fallback {
			t.Fatalf("after recovery: Take() = %+v, %v; want a decision through Redis", d, err)
		}
		got = append(got, d.Allowed)
	}
	want := []bool{true, true, true, true, true, false, false, false, false, false}
	if !slices.Equal(got, want) {
		t.Errorf("after recovery: admitted %v; want the burst of 5, then refusals", got)
	}
	// And l decides through Redis again, on the shared budget: spent, it refuses. (A Take
	// decided in-process after a timeout is left out: it does not see the Redis budget.)
	waitFor(t, 30*time.Second, "a decision of l through Redis", func() bool {
		d, err := l.Take(context.Background(), q, k)
		if err != nil {
			t.Fatalf("after recovery: Take() error %v", err)
		}
		if !d.Fallback && d.Allowed {
			t.Fatalf("after recovery: Take() = %+v; want the spent budget refused", d)
		}
		return !d.Fallback
	})

	// The warning is logged at most once a minute: once for both outages when the test takes
	// under a minute, once more per further minute it took (wall clock, as the Limiter's).
	elapsed := time.Duration(time.Now().UnixNano() - began)
	if n, most := logs.warn.Load(), 1+int64(elapsed/time.Minute); n < 1 || n > most {
		t.Errorf("%d warnings logged for two outages in %v; want 1 to %d (at most one a minute)", n, elapsed, most)
	}
	if n := logs.info.Load(); n < 2 {
		t.Errorf("%d recoveries logged; want 2", n)
	}
}

// TestRedisFailureDeny: with on_redis_error deny, a killed or frozen Redis gives
// ErrUnavailable at once, to every caller, and nothing hangs; recovery is automatic.
func TestRedisFailureDeny(t *testing.T) {
	t.Parallel()
	srv := startRedisServer(t)
	rdb := faultClient(t, srv)
	l := NewRedis(rdb, faultOptions(&logCount{}, nil))
	p := mustPolicy(t, store.RateLimit{RequestsPerSecond: 1000, Mode: ModeReject, OnRedisError: OnErrorDeny})
	k := p.Key("c")
	ctx := context.Background()
	if d, err := l.Take(ctx, p, k); err != nil || !d.Allowed {
		t.Fatalf("Redis up: Take() = %+v, %v; want allowed", d, err)
	}

	// allUnavailable has 20 callers Take 20 times each; every Take must fail quickly (a hang
	// would be the client's socket timeout, a minute).
	allUnavailable := func(what string) {
		t.Helper()
		var wg sync.WaitGroup
		var bad, slow atomic.Int64
		start := time.Now()
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := 0; j < 20; j++ {
					s := time.Now()
					_, err := l.Take(ctx, p, k)
					if !errors.Is(err, ErrUnavailable) {
						bad.Add(1)
					}
					if time.Since(s) > 10*time.Second {
						slow.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		if bad.Load() != 0 || slow.Load() != 0 {
			t.Errorf("%s: %d of 400 Takes without ErrUnavailable, %d slower than 10s", what, bad.Load(), slow.Load())
		}
		if took := time.Since(start); took > 20*time.Second {
			t.Errorf("%s: 400 refusals took %v; want them quick", what, took)
		}
		if err := l.HoldOff(ctx, p, k, time.Now().Add(time.Second)); !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s: HoldOff() = %v; want ErrUnavailable", what, err)
		}
	}
	recovers := func(what string) {
		t.Helper()
		waitFor(t, 30*time.Second, what, func() bool {
			d, err := l.Take(ctx, p, k)
			return err == nil && d.Allowed && !d.Fallback
		})
	}

	srv.Kill()
	allUnavailable("Redis killed")
	srv.Start()
	recovers("recovery after a restart")
	srv.Freeze()
	allUnavailable("Redis frozen")
	srv.Thaw()
	recovers("recovery after a thaw")
	if l.Fallbacks() != 0 {
		t.Errorf("Fallbacks() = %d; want 0 with deny", l.Fallbacks())
	}
}

// TestScriptReloaded: Redis forgot the script (restart, failover, SCRIPT FLUSH): the next Take
// loads it again, through Redis, without counting a failure.
func TestScriptReloaded(t *testing.T) {
	t.Parallel()
	srv := startRedisServer(t)
	rdb := dial(t, &redis.Options{Addr: srv.Addr()}, srv.Addr())
	l := NewRedis(rdb, Options{Timeout: testTimeout})
	// Per hour: no token comes back between the Takes, however slow the machine.
	p := mustPolicy(t, store.RateLimit{RequestsPerHour: 2, Burst: 2, Mode: ModeReject})
	k := p.Key("c")
	ctx := context.Background()
	for i, want := range []bool{true, true, false} {
		if i == 1 {
			if err := rdb.ScriptFlush(ctx).Err(); err != nil {
				t.Fatal(err)
			}
		}
		if d, err := l.Take(ctx, p, k); err != nil || d.Fallback || d.Allowed != want {
			t.Fatalf("take %d: Take() = %+v, %v; want Allowed %v through Redis", i, d, err, want)
		}
	}
	if n := l.Failures(); n != 0 {
		t.Errorf("Failures() = %d; want 0", n)
	}
}

// TestWarnsWithoutContextTimeouts: a client that ignores deadlines would let Redis calls run
// past Options.Timeout; NewRedis says so.
func TestWarnsWithoutContextTimeouts(t *testing.T) {
	logs := &logCount{}
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	NewRedis(c, Options{Log: slog.New(logs)})
	if logs.warn.Load() != 1 {
		t.Errorf("NewRedis(client without ContextTimeoutEnabled) logged %d warnings; want 1", logs.warn.Load())
	}
}
