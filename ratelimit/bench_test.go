package ratelimit

import (
	"context"
	"testing"

	"github.com/extapi/extapi/store"
)

// Policies set high enough never to refuse: the common single window, and every window.
var (
	oneWindow   = store.RateLimit{RequestsPerSecond: MaxRate, Mode: ModeReject}
	fourWindows = store.RateLimit{RequestsPerSecond: MaxRate, RequestsPerMinute: MaxRate,
		RequestsPerHour: MaxRate, RequestsPerDay: MaxRate, Mode: ModeReject}
)

func benchTake(b *testing.B, l *Limiter) {
	ctx := context.Background()
	for _, bc := range []struct {
		name string
		rl   store.RateLimit
	}{{"windows=1", oneWindow}, {"windows=4", fourWindows}} {
		p := mustPolicy(b, bc.rl)
		b.Run(bc.name+"/serial", func(b *testing.B) {
			k := p.Key("serial")
			b.ReportAllocs()
			for b.Loop() {
				if d, err := l.Take(ctx, p, k); err != nil || !d.Allowed || d.Fallback {
					b.Fatalf("Take() = %+v, %v", d, err)
				}
			}
		})
		b.Run(bc.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(8) // a proxy has many requests in flight per core
			b.RunParallel(func(pb *testing.PB) {
				k := p.Key("parallel")
				for pb.Next() {
					if d, err := l.Take(ctx, p, k); err != nil || !d.Allowed || d.Fallback {
						b.Errorf("Take() = %+v, %v", d, err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkTakeRedis: one EVALSHA per Take, whatever the windows, with the hold-off.
func BenchmarkTakeRedis(b *testing.B) {
	benchTake(b, NewRedis(newClient(b), Options{Timeout: testTimeout}))
}

// BenchmarkTakeLocal: the in-process limiter.
func BenchmarkTakeLocal(b *testing.B) { benchTake(b, NewLocal(Options{})) }

// BenchmarkRedisPing is the floor a Redis limiter cannot beat: one bare round trip.
func BenchmarkRedisPing(b *testing.B) {
	c := newClient(b)
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := c.Ping(ctx).Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := c.Ping(ctx).Err(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
