package ratelimit

import "sync"

// result is one decision in microseconds, the same from the script and from local.
type result struct {
	allowed bool
	// wait: allowed, how long until the reserved slot; refused, how long until a slot.
	wait int64
	// tightest is the index in Policy.windows of the window that binds most; remaining and
	// reset are its capacity left and the time until it is full again, seen at the slot.
	tightest  int
	remaining int64
	reset     int64
}

const numShards = 32

// local is the in-process GCRA: the same arithmetic as takeScript, over a sharded map.
type local struct {
	shards [numShards]shard
}

type shard struct {
	mu    sync.Mutex
	cells map[string]*cell
	// sweepAt is the size at which the next insert first drops expired cells.
	sweepAt int
	_       [40]byte // keep shards on separate cache lines
}

// cell is one budget: the TAT of each window kind and the hold-off end, in Unix microseconds.
type cell struct {
	tat  [numKinds]int64
	hold int64
	// expires is when the cell becomes the same as an absent one.
	expires int64
}

func newLocal() *local {
	l := &local{}
	for i := range l.shards {
		l.shards[i].cells = make(map[string]*cell)
		l.shards[i].sweepAt = 1024
	}
	return l
}

// take is takeScript in Go; see there.
func (l *local) take(p *Policy, k *Key, now, budget int64) result {
	s := &l.shards[k.shard]
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.cells[k.id]
	var cur cell // absent: all zero, as an expired cell
	if c != nil {
		cur = *c
	}
	at := max(now, cur.hold)
	var tats [numKinds]int64
	block, blockAt := 0, int64(-1)
	for i, w := range p.windows {
		tat := max(cur.tat[w.kind], now)
		tats[i] = tat
		allowAt := tat + w.interval - w.offset
		if allowAt > blockAt {
			block, blockAt = i, allowAt
		}
		at = max(at, allowAt)
	}
	wait := at - now
	if wait > budget {
		return result{wait: wait, tightest: block, reset: tats[block] - now}
	}
	if c == nil {
		c = &cell{}
		s.insert(k.id, c, now)
	}
	r := result{allowed: true, wait: wait, remaining: -1}
	for i, w := range p.windows {
		tat := max(tats[i], at) + w.interval
		c.tat[w.kind] = tat
		c.expires = max(c.expires, tat)
		rem := (at + w.offset - tat) / w.interval
		reset := tat - at
		if r.remaining < 0 || rem < r.remaining || (rem == r.remaining && reset > r.reset) {
			r.tightest, r.remaining, r.reset = i, rem, reset
		}
	}
	return r
}

// holdOff shuts k until now+ttl unless it is already shut longer.
func (l *local) holdOff(k *Key, now, ttl int64) {
	s := &l.shards[k.shard]
	s.mu.Lock()
	defer s.mu.Unlock()
	end := now + ttl
	c := s.cells[k.id]
	if c == nil {
		c = &cell{}
		s.insert(k.id, c, now)
	}
	if end > c.hold {
		c.hold = end
		c.expires = max(c.expires, end)
	}
}

// insert adds c, first dropping expired cells when the map has doubled since the last sweep,
// so that memory follows the live budgets at an amortised constant cost.
func (s *shard) insert(id string, c *cell, now int64) {
	if len(s.cells) >= s.sweepAt {
		for id, c := range s.cells {
			if c.expires <= now {
				delete(s.cells, id)
			}
		}
		s.sweepAt = max(2*len(s.cells), 1024)
	}
	s.cells[id] = c
}
