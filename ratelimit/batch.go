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
// Every Take's deadline is its arrival plus the Limiter's timeout, so the first Take of a
// queue has the earliest deadline: the queue gets one context with it (one timer per round
// trip, not per Take), which bounds its round trip and every queued caller's wait.
type batcher struct {
	c     redis.UniversalClient
	slack int64

	mu    sync.Mutex
	busy  bool // a round trip is in flight
	queue []*pending
	qctx  context.Context // the queue's: the deadline of its first Take
	qstop context.CancelFunc
	spare []*pending // the previous queue's array, reused
}

// pending is one queued Take. The runner sets r or err and then signals done; the caller reads
// them only after done.
type pending struct {
	p          *Policy
	k          Key // a copy: the caller's Key stays on its stack
	now, budge int64
	r          result
	err        error
	done       chan struct{} // buffered: the runner never blocks on a caller gone
}

var pendingPool = sync.Pool{New: func() any { return &pending{done: make(chan struct{}, 1)} }}

// take decides one Take through Redis, alone or with the others queued meanwhile, giving up
// at deadline (or a little earlier, the deadline of the first Take queued with it).
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
	if len(b.queue) == 0 {
		b.qctx, b.qstop = context.WithDeadline(context.Background(), deadline)
	}
	b.queue = append(b.queue, q)
	ctx := b.qctx
	b.mu.Unlock()
	return q.wait(ctx)
}

// wait returns q's decision once the runner signals it, or gives up when ctx (its queue's) is
// done — unless q was decided just before the runner released ctx.
func (q *pending) wait(ctx context.Context) (result, error) {
	select {
	case <-q.done:
	case <-ctx.Done():
		select {
		case <-q.done:
		default:
			// The runner still holds q and will signal it; q is left to the garbage collector.
			return result{}, context.DeadlineExceeded
		}
	}
	r, err := q.r, q.err
	*q = pending{done: q.done}
	pendingPool.Put(q)
	return r, err
}

// handOff ends a round trip: if Takes queued meanwhile, a runner sends them (and those queued
// while it does) until the queue is empty; else the batcher is idle.
func (b *batcher) handOff() {
	b.mu.Lock()
	q, ctx, stop := b.swap()
	if q == nil {
		b.busy = false
		b.mu.Unlock()
		return
	}
	b.mu.Unlock()
	go b.run(q, ctx, stop)
}

// swap takes the queue and its context, nil if it is empty. b.mu is held.
func (b *batcher) swap() ([]*pending, context.Context, context.CancelFunc) {
	if len(b.queue) == 0 {
		return nil, nil, nil
	}
	q, ctx, stop := b.queue, b.qctx, b.qstop
	b.queue, b.spare, b.qctx, b.qstop = b.spare[:0], nil, nil, nil
	return q, ctx, stop
}

func (b *batcher) run(q []*pending, ctx context.Context, stop context.CancelFunc) {
	for {
		b.send(ctx, q)
		stop()
		clear(q)
		b.mu.Lock()
		b.spare = q[:0]
		q, ctx, stop = b.swap()
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
// NOSCRIPT) within ctx, and signals every caller. Once ctx is done its callers have gone (or
// are going): nothing is sent.
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
