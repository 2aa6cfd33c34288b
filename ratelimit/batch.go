package ratelimit

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// batcher coalesces concurrent Takes: while one round trip is in flight, the Takes that arrive
// queue up, and all go in the next round trip as soon as it returns. A Take that finds Redis
// idle goes out at once, alone. The queued Takes of one Key (and Policy) share one script call
// (decided one after the other, as separate calls would be, each getting its own result);
// those of different Keys are pipelined. Each Take still costs at most one round trip, and its
// caller waits no longer than its own context allows; a round trip is bounded by the latest
// deadline among its callers.
type batcher struct {
	c     redis.UniversalClient
	slack int64

	mu    sync.Mutex
	busy  bool // a round trip is in flight
	queue []*pending
	spare []*pending // the previous queue's array, reused
}

// pending is one queued Take. The runner sets r or err and then signals done; the caller reads
// them only after done.
type pending struct {
	ctx        context.Context
	p          *Policy
	k          Key // a copy: the caller's Key stays on its stack
	now, budge int64
	r          result
	err        error
	done       chan struct{} // buffered: the runner never blocks on a caller gone
}

var pendingPool = sync.Pool{New: func() any { return &pending{done: make(chan struct{}, 1)} }}

// take decides one Take through Redis, alone or with the others queued meanwhile.
func (b *batcher) take(ctx context.Context, p *Policy, k *Key, now, budget int64) (result, error) {
	b.mu.Lock()
	if !b.busy {
		b.busy = true
		b.mu.Unlock()
		r, err := redisTake(ctx, b.c, p, k, now, budget, b.slack)
		b.handOff()
		return r, err
	}
	q := pendingPool.Get().(*pending)
	q.ctx, q.p, q.k, q.now, q.budge = ctx, p, *k, now, budget
	b.queue = append(b.queue, q)
	b.mu.Unlock()
	select {
	case <-q.done:
		r, err := q.r, q.err
		*q = pending{done: q.done}
		pendingPool.Put(q)
		return r, err
	case <-ctx.Done():
		// The runner still holds q and will signal it; q is left to the garbage collector.
		return result{}, ctx.Err()
	}
}

// handOff ends a round trip: if Takes queued meanwhile, a runner sends them (and those queued
// while it does) until the queue is empty; else the batcher is idle.
func (b *batcher) handOff() {
	b.mu.Lock()
	q := b.swap()
	if q == nil {
		b.busy = false
		b.mu.Unlock()
		return
	}
	b.mu.Unlock()
	go b.run(q)
}

// swap takes the queue, nil if it is empty. b.mu is held.
func (b *batcher) swap() []*pending {
	if len(b.queue) == 0 {
		return nil
	}
	q := b.queue
	b.queue, b.spare = b.spare[:0], nil
	return q
}

func (b *batcher) run(q []*pending) {
	for {
		b.send(q)
		clear(q)
		b.mu.Lock()
		b.spare = q[:0]
		q = b.swap()
		if q == nil {
			b.busy = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
	}
}

// group is the queued Takes of one Key and Policy: one script call.
type group struct {
	p   *Policy
	k   *Key
	qs  []*pending
	cmd *redis.Cmd
}

// send decides the Takes of q whose callers still wait, in one round trip (one more for the
// script calls that met NOSCRIPT), and signals every caller.
func (b *batcher) send(q []*pending) {
	var groups []*group
	var latest time.Time
	for _, t := range q {
		if t.ctx.Err() != nil {
			t.done <- struct{}{} // the caller has gone (or is going): nothing to send
			continue
		}
		if dl, ok := t.ctx.Deadline(); ok && dl.After(latest) {
			latest = dl
		}
		var g *group
		for _, h := range groups {
			if h.p == t.p && h.k.id == t.k.id {
				g = h
				break
			}
		}
		if g == nil {
			g = &group{p: t.p, k: &t.k}
			groups = append(groups, g)
		}
		g.qs = append(g.qs, t)
	}
	if len(groups) == 0 {
		return
	}
	ctx := context.Background()
	if !latest.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, latest)
		defer cancel()
	}
	takes := make([]take, 0, len(q))
	for _, g := range groups {
		takes = takes[:0]
		for _, t := range g.qs {
			takes = append(takes, take{t.now, t.budge})
		}
		g.cmd = takeCmd(ctx, g.k, b.slack, takes...)
	}
	if len(groups) == 1 {
		groups[0].cmd = processTake(ctx, b.c, groups[0].cmd)
	} else {
		pipe := b.c.Pipeline()
		for _, g := range groups {
			pipe.Process(ctx, g.cmd)
		}
		pipe.Exec(ctx)
		var again redis.Pipeliner
		for _, g := range groups {
			if isNoScript(g.cmd) {
				if again == nil {
					again = b.c.Pipeline()
				}
				g.cmd = evalOf(ctx, g.cmd)
				again.Process(ctx, g.cmd)
			}
		}
		if again != nil {
			again.Exec(ctx)
		}
	}
	for _, g := range groups {
		rs := make([]result, len(g.qs))
		err := takeResults(g.p, g.cmd, rs)
		for i, t := range g.qs {
			t.r, t.err = rs[i], err
			t.done <- struct{}{}
		}
	}
}
