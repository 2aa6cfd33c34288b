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
// those of different Keys are pipelined. Each Take still costs at most one round trip.
//
// A queued round trip is bounded by the latest deadline among its Takes (one timer per round
// trip, not per Take), so that none of them loses its time to the round trip it queued behind.
// A queued caller thus waits at most for the round trip in flight (which ends by its own, earlier
// deadline) and then its own: under two timeouts in all.
type batcher struct {
	c     redis.UniversalClient
	slack int64

	mu     sync.Mutex
	busy   bool // a round trip is in flight
	queue  []*pending
	latest time.Time  // the latest deadline of the queued Takes
	spare  []*pending // the previous queue's array, reused
}

// pending is one queued Take. The runner sets r or err and then signals done; the caller reads
// them only after done.
type pending struct {
	p          *Policy
	k          Key // a copy: the caller's Key stays on its stack
	now, budge int64
	r          result
	err        error
	done       chan struct{}
}

var pendingPool = sync.Pool{New: func() any { return &pending{done: make(chan struct{}, 1)} }}

// take decides one Take through Redis, alone or with the others queued meanwhile. A Take sent
// alone gives up at deadline; a queued one when its round trip's deadline (the latest of its
// queue) passes.
func (b *batcher) take(deadline time.Time, p *Policy, k *Key, now, budget int64) (result, error) {
	b.mu.Lock()
	if !b.busy {
		b.busy = true
		b.mu.Unlock()
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		r, err := redisTake(ctx, b.c, p, k, now, budget, b.slack)
		cancel()
		b.handOff()
		return r, err
	}
	q := pendingPool.Get().(*pending)
	q.p, q.k, q.now, q.budge = p, *k, now, budget
	if deadline.After(b.latest) {
		b.latest = deadline
	}
	b.queue = append(b.queue, q)
	b.mu.Unlock()
	<-q.done // the runner always signals, by its round trip's deadline
	r, err := q.r, q.err
	*q = pending{done: q.done}
	pendingPool.Put(q)
	return r, err
}

// handOff ends a round trip: if Takes queued meanwhile, a runner sends them (and those queued
// while it does) until the queue is empty; else the batcher is idle.
func (b *batcher) handOff() {
	b.mu.Lock()
	q, deadline := b.swap()
	if q == nil {
		b.busy = false
		b.mu.Unlock()
		return
	}
	b.mu.Unlock()
	go b.run(q, deadline)
}

// swap takes the queue and its latest deadline, nil if it is empty. b.mu is held.
func (b *batcher) swap() ([]*pending, time.Time) {
	if len(b.queue) == 0 {
		return nil, time.Time{}
	}
	q, deadline := b.queue, b.latest
	b.queue, b.spare, b.latest = b.spare[:0], nil, time.Time{}
	return q, deadline
}

func (b *batcher) run(q []*pending, deadline time.Time) {
	for {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		b.send(ctx, q)
		cancel()
		clear(q)
		b.mu.Lock()
		b.spare = q[:0]
		q, deadline = b.swap()
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
	cmd *redis.IntSliceCmd
}

// send decides the Takes of q in one round trip (one more for the script calls that met
// NOSCRIPT) within ctx, and signals every caller. With ctx done already, nothing is sent.
func (b *batcher) send(ctx context.Context, q []*pending) {
	if err := ctx.Err(); err != nil {
		for _, t := range q {
			t.err = err
			t.done <- struct{}{}
		}
		return
	}
	var groups []*group
	for _, t := range q {
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
	rs := make([]result, len(q))
	for _, g := range groups {
		out := rs[:len(g.qs)]
		rs = rs[len(g.qs):]
		err := takeResults(g.p, g.cmd, out)
		for i, t := range g.qs {
			t.r, t.err = out[i], err
			t.done <- struct{}{}
		}
	}
}
