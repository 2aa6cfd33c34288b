package store_test

import (
	"reflect"
	"testing"

	"github.com/extapi/extapi/store"
	"github.com/extapi/extapi/store/storetest"
)

func TestCountConnections(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		c := ctx(t)
		a, b, gone := sampleAPI("a"), sampleAPI("b"), sampleAPI("gone")
		for _, x := range []*store.ExternalAPI{a, b, gone} {
			if err := s.CreateAPI(c, x); err != nil {
				t.Fatal(err)
			}
		}
		for _, x := range []struct{ api, status string }{
			{a.ID, store.ConnActive}, {a.ID, store.ConnActive}, {a.ID, store.ConnExpired},
			{b.ID, store.ConnRevoked}, {b.ID, store.ConnActive}, {gone.ID, store.ConnActive},
		} {
			conn := &store.Connection{ExternalAPIID: x.api, ConnectionName: "c", Status: x.status}
			if err := s.CreateConnection(c, conn); err != nil {
				t.Fatal(err)
			}
		}
		extra := &store.Connection{ExternalAPIID: b.ID, ConnectionName: "d", Status: store.ConnActive}
		if err := s.CreateConnection(c, extra); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteConnection(c, extra.ID, store.Tenant{}); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteAPI(c, gone.ID, store.Tenant{}); err != nil {
			t.Fatal(err)
		}
		got, err := s.CountConnections(c)
		if err != nil {
			t.Fatal(err)
		}
		want := []store.ConnectionCount{
			{"a", store.ConnActive, 2}, {"a", store.ConnExpired, 1}, {"b", store.ConnActive, 1}, {"b", store.ConnRevoked, 1},
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("CountConnections() = %v; want %v (deleted connections and APIs not counted)", got, want)
		}
	})
}

func TestLiveAPISlugs(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		c := ctx(t)
		a, sandbox, gone := sampleAPI("a"), sampleAPI("a"), sampleAPI("gone")
		sandbox.Environment = "staging" // the same slug in another environment: listed once
		for _, x := range []*store.ExternalAPI{a, sandbox, gone, sampleAPI("b")} {
			if err := s.CreateAPI(c, x); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.DeleteAPI(c, gone.ID, store.Tenant{}); err != nil {
			t.Fatal(err)
		}
		got, err := s.LiveAPISlugs(c)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"a", "b"}; !reflect.DeepEqual(got, want) {
			t.Errorf("LiveAPISlugs() = %v; want %v (distinct, deleted APIs left out)", got, want)
		}
	})
}
