//go:build !race

package ratelimit

import (
	"context"
	"testing"
)

// TestTakeLocalAllocs: the in-process path allocates nothing per request.
func TestTakeLocalAllocs(t *testing.T) {
	l := NewLocal(Options{})
	p := mustPolicy(t, fourWindows)
	k := p.Key("c")
	ctx := context.Background()
	if n := testing.AllocsPerRun(1000, func() { l.Take(ctx, p, k) }); n != 0 {
		t.Errorf("Take() allocates %v times per call; want 0", n)
	}
}
