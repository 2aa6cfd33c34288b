package main

import (
	"io"
	"sync"
	"time"
)

// The access log's buffering: one write of up to accessLogBuffer bytes instead of a write per
// proxied request, and never more than accessLogFlush behind.
const (
	accessLogBuffer = 64 << 10
	accessLogFlush  = 200 * time.Millisecond
)

// lineBuffer batches log records for w. Each Write must be one whole record (slog's handlers
// write a record in one call), so that w only ever gets whole lines. The records reach w when
// the next one would overflow the buffer, at every tick, and on Flush or Close; a record larger
// than the buffer goes straight through. Safe for concurrent use.
type lineBuffer struct {
	mu     sync.Mutex
	w      io.Writer
	buf    []byte
	closed bool // after Close, records go straight to w
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

// newLineBuffer buffers up to size bytes for w and flushes every interval.
func newLineBuffer(w io.Writer, size int, every time.Duration) *lineBuffer {
	t := time.NewTicker(every)
	b := newLineBufferTicks(w, size, t.C)
	go func() { <-b.done; t.Stop() }()
	return b
}

// newLineBufferTicks is newLineBuffer flushing at each value of ticks (tests send them).
func newLineBufferTicks(w io.Writer, size int, ticks <-chan time.Time) *lineBuffer {
	b := &lineBuffer{w: w, buf: make([]byte, 0, size), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(b.done)
		for {
			select {
			case <-ticks:
				b.Flush()
			case <-b.stop:
				return
			}
		}
	}()
	return b
}

func (b *lineBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return b.w.Write(p)
	}
	if len(b.buf)+len(p) > cap(b.buf) {
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
		if len(p) > cap(b.buf) {
			return b.w.Write(p)
		}
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

// Flush writes the buffered records to w.
func (b *lineBuffer) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.flushLocked()
}

func (b *lineBuffer) flushLocked() error {
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.w.Write(b.buf)
	b.buf = b.buf[:0] // a record w refused is dropped, not retried forever
	return err
}

// Close stops the flushes and writes what is buffered; records written after it go straight to
// w, so that none is lost.
func (b *lineBuffer) Close() error {
	b.once.Do(func() { close(b.stop) })
	<-b.done
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return b.flushLocked()
}
