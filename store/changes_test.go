package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/extapi/extapi/store"
	"github.com/extapi/extapi/store/storetest"
)

func nextChange(t *testing.T, ch <-chan store.Change) store.Change {
	t.Helper()
	select {
	case c := <-ch:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no change delivered within 5s")
		return store.Change{}
	}
}

func TestChangesReachOtherInstances(t *testing.T) {
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			url := storetest.URL(t, d)
			a := storetest.Open(t, url)
			b := a // SQLite runs as one instance; PostgreSQL gets a second one
			if d == "postgres" {
				b = storetest.Open(t, url)
			}
			sctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ch, err := b.SubscribeChanges(sctx)
			if err != nil {
				t.Fatal(err)
			}

			boom := errors.New("rolled back")
			err = a.Tx(context.Background(), func(tx *store.Store) error {
				if err := tx.PublishChange(context.Background(), store.Change{Kind: store.ChangeAPI, ID: "eapi_rolled"}); err != nil {
					return err
				}
				return boom
			})
			if !errors.Is(err, boom) {
				t.Fatal(err)
			}
			err = a.Tx(context.Background(), func(tx *store.Store) error {
				return tx.PublishChange(context.Background(), store.Change{Kind: store.ChangeConnection, ID: "conn_1"})
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := a.PublishChange(context.Background(), store.Change{Kind: store.ChangeAPI, ID: "eapi_2"}); err != nil {
				t.Fatal(err)
			}
			// The rolled-back change never arrives: the first delivered is the committed one.
			for _, want := range []store.Change{{Kind: store.ChangeConnection, ID: "conn_1"}, {Kind: store.ChangeAPI, ID: "eapi_2"}} {
				// Other tests' schemas share the PostgreSQL channel; skip their notifications.
				for {
					got := nextChange(t, ch)
					if got.ID == "eapi_rolled" {
						t.Fatalf("received a change published in a rolled-back transaction")
					}
					if got == want {
						break
					}
				}
			}
			cancel()
			for range ch { // closed when the subscription's context ends
			}
		})
	}
}

// A subscriber that stops reading holds up neither writers nor its own unsubscribing; once it
// reads again it gets what fitted in its buffer and then a ChangeAll for what did not.
func TestStalledSubscriberGetsChangeAll(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		sctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		stalled, err := s.SubscribeChanges(sctx)
		if err != nil {
			t.Fatal(err)
		}
		prefix := store.NewID("stall_")
		const n = 200 // well over the subscriber's buffer
		done := make(chan error, 1)
		go func() {
			for i := 0; i < n; i++ {
				err := s.Tx(context.Background(), func(tx *store.Store) error {
					return tx.PublishChange(context.Background(), store.Change{Kind: store.ChangeAPI, ID: fmt.Sprintf("%s%d", prefix, i)})
				})
				if err != nil {
					done <- err
					return
				}
			}
			done <- s.PublishChange(context.Background(), store.Change{Kind: store.ChangeAPI, ID: prefix + "last"})
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("writers blocked on a subscriber that does not read")
		}
		// PostgreSQL delivers through the LISTEN connection: wait until its buffer is full.
		deadline := time.Now().Add(5 * time.Second)
		for len(stalled) < cap(stalled) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond)

		got, sawAll := 0, false
		for !sawAll {
			c := nextChange(t, stalled)
			switch {
			case c.Kind == store.ChangeAll:
				sawAll = true
			case strings.HasPrefix(c.ID, prefix):
				got++
			}
		}
		if got == 0 || got >= n {
			t.Errorf("received %d of %d changes before the ChangeAll; want those that fitted in the buffer", got, n)
		}

		// Unsubscribing with a full buffer returns at once and closes the channel.
		full, err := s.SubscribeChanges(sctx)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			if err := s.PublishChange(context.Background(), store.Change{Kind: store.ChangeConnection, ID: prefix}); err != nil {
				t.Fatal(err)
			}
		}
		cancel()
		closed := make(chan struct{})
		go func() {
			for range full {
			}
			for range stalled {
			}
			close(closed)
		}()
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
			t.Fatal("subscriptions not closed after their context ended")
		}
		// Writers still go on with no subscriber left.
		if err := s.PublishChange(context.Background(), store.Change{Kind: store.ChangeAPI, ID: prefix}); err != nil {
			t.Fatal(err)
		}
	})
}

// Changes of a committed transaction are delivered even when the caller's context ends right
// after the commit (a client hanging up, say): the write happened, caches must hear of it.
func TestTxDeliversAfterContextCancelled(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		sctx, stop := context.WithCancel(context.Background())
		defer stop()
		ch, err := s.SubscribeChanges(sctx)
		if err != nil {
			t.Fatal(err)
		}
		c, cancel := context.WithCancel(context.Background())
		defer cancel()
		defer store.SetAfterCommitHook(func(context.Context) { cancel() })()
		prefix := store.NewID("cancelled_")
		const n = 20
		err = s.Tx(c, func(tx *store.Store) error {
			for i := 0; i < n; i++ {
				if err := tx.PublishChange(c, store.Change{Kind: store.ChangeConnection, ID: fmt.Sprintf("%s%d", prefix, i)}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if c.Err() == nil {
			t.Fatal("the hook did not cancel the context after the commit")
		}
		for i := 0; i < n; {
			got := nextChange(t, ch)
			if got.Kind == store.ChangeAll {
				t.Fatalf("ChangeAll before change %d; want every change delivered", i)
			}
			if !strings.HasPrefix(got.ID, prefix) {
				continue // another test's notification (PostgreSQL)
			}
			if want := fmt.Sprintf("%s%d", prefix, i); got.ID != want {
				t.Fatalf("change %d = %q; want %q", i, got.ID, want)
			}
			i++
		}
	})
}
