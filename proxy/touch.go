package proxy

import (
	"context"
	"sync"
	"time"
)

// toucher collects when each connection was last used, for writing in batches.
type toucher struct {
	mu   sync.Mutex
	used map[string]time.Time
}

func (t *toucher) init() { t.used = map[string]time.Time{} }

func (t *toucher) add(id string, at time.Time) {
	t.mu.Lock()
	if at.After(t.used[id]) {
		t.used[id] = at
	}
	t.mu.Unlock()
}

// take returns the batch collected so far and starts a new one.
func (t *toucher) take() map[string]time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.used) == 0 {
		return nil
	}
	b := t.used
	t.used = make(map[string]time.Time, len(b))
	return b
}

// putBack returns a batch that could not be written, unless newer times came since.
func (t *toucher) putBack(b map[string]time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, at := range b {
		if at.After(t.used[id]) {
			t.used[id] = at
		}
	}
}

// flushLoop writes last_used_at every Options.TouchInterval until the Handler closes.
func (h *Handler) flushLoop() {
	tick := time.NewTicker(h.opts.TouchInterval)
	defer tick.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-tick.C:
			ctx, cancel := context.WithTimeout(h.ctx, h.opts.StoreTimeout)
			if err := h.flush(ctx); err != nil {
				h.log.Warn("proxy: writing last_used_at failed; will retry", "err", err.Error())
			}
			cancel()
		}
	}
}

// flush writes the collected batch; on failure it is kept for the next try.
func (h *Handler) flush(ctx context.Context) error {
	b := h.touched.take()
	if b == nil {
		return nil
	}
	for id, at := range b {
		b[id] = at.UTC().Truncate(time.Microsecond)
	}
	if err := h.opts.Store.TouchConnections(ctx, b); err != nil {
		h.touched.putBack(b)
		return err
	}
	return nil
}
