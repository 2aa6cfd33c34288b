package store_test

import (
	"context"
	"errors"
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
