package main

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is an io.Writer that keeps every Write apart and signals each.
type recorder struct {
	mu     sync.Mutex
	writes []string
	wrote  chan struct{}
}

func newRecorder() *recorder { return &recorder{wrote: make(chan struct{}, 1000)} }

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	r.writes = append(r.writes, string(p))
	r.mu.Unlock()
	r.wrote <- struct{}{}
	return len(p), nil
}

func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.writes...)
}

func (r *recorder) waitWrite(t *testing.T) {
	t.Helper()
	select {
	case <-r.wrote:
	case <-time.After(10 * time.Second):
		t.Fatal("no write within 10s")
	}
}

func TestLineBuffer(t *testing.T) {
	t.Run("a tick writes what is buffered, in one write", func(t *testing.T) {
		w, ticks := newRecorder(), make(chan time.Time)
		b := newLineBufferTicks(w, 64, ticks)
		defer b.Close()
		b.Write([]byte("one\n"))
		b.Write([]byte("two\n"))
		if got := w.all(); len(got) != 0 {
			t.Fatalf("written before any tick: %q", got)
		}
		ticks <- time.Time{}
		w.waitWrite(t)
		if got := w.all(); len(got) != 1 || got[0] != "one\ntwo\n" {
			t.Errorf("writes = %q; want one write of both records", got)
		}
		ticks <- time.Time{} // nothing buffered: no empty write
		b.Write([]byte("three\n"))
		ticks <- time.Time{}
		w.waitWrite(t)
		if got := w.all(); len(got) != 2 || got[1] != "three\n" {
			t.Errorf("writes = %q; want the third record alone, no empty write", got)
		}
	})

	t.Run("a record that would overflow sends the buffer first", func(t *testing.T) {
		w := newRecorder()
		b := newLineBufferTicks(w, 10, nil)
		defer b.Close()
		b.Write([]byte("aaaa\n"))
		b.Write([]byte("bbbb\n")) // exactly full: still buffered
		if got := w.all(); len(got) != 0 {
			t.Fatalf("written while the buffer had room: %q", got)
		}
		b.Write([]byte("cc\n"))
		if got := w.all(); len(got) != 1 || got[0] != "aaaa\nbbbb\n" {
			t.Errorf("writes = %q; want the two whole records that filled the buffer", got)
		}
		long := strings.Repeat("x", 25) + "\n"
		b.Write([]byte(long))
		if got := w.all(); len(got) != 3 || got[1] != "cc\n" || got[2] != long {
			t.Errorf("writes = %q; want the buffered record, then the long one straight through", got)
		}
	})

	t.Run("Close writes what is left, and later records go straight through", func(t *testing.T) {
		w := newRecorder()
		b := newLineBufferTicks(w, 64, nil)
		b.Write([]byte("last\n"))
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		b.Write([]byte("late\n"))
		if got := w.all(); len(got) != 2 || got[0] != "last\n" || got[1] != "late\n" {
			t.Errorf("writes = %q; want the buffered record at Close, then the late one at once", got)
		}
		if err := b.Close(); err != nil { // twice is fine
			t.Fatal(err)
		}
	})

	t.Run("concurrent writers: every record arrives whole", func(t *testing.T) {
		var out bytes.Buffer
		var mu sync.Mutex
		w := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return out.Write(p) })
		ticks := make(chan time.Time)
		b := newLineBufferTicks(w, 256, ticks)
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 500 {
					fmt.Fprintf(b, "{\"writer\":%d,\"n\":%d}\n", g, i)
				}
			})
		}
		wg.Go(func() {
			for range 20 {
				ticks <- time.Time{}
			}
		})
		wg.Wait()
		b.Close()
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		if len(lines) != 8*500 {
			t.Fatalf("%d lines; want %d", len(lines), 8*500)
		}
		seen := map[string]bool{}
		for _, l := range lines {
			var g, n int
			if _, err := fmt.Sscanf(l, "{\"writer\":%d,\"n\":%d}", &g, &n); err != nil || seen[l] {
				t.Fatalf("line %q is torn or repeated", l)
			}
			seen[l] = true
		}
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// The real ticker: a record reaches the writer within about the flush interval, unprompted.
func TestLineBufferFlushesByItself(t *testing.T) {
	w := newRecorder()
	b := newLineBuffer(w, 1<<10, 10*time.Millisecond)
	defer b.Close()
	b.Write([]byte("line\n"))
	w.waitWrite(t)
	if got := w.all(); len(got) != 1 || got[0] != "line\n" {
		t.Errorf("writes = %q; want the record", got)
	}
}
