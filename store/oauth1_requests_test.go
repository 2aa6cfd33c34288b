package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/extapi/extapi/store"
	"github.com/extapi/extapi/store/storetest"
	"github.com/extapi/extapi/vault"
)

func oauth1API(slug string) *store.ExternalAPI {
	return &store.ExternalAPI{
		Name: "Photos " + slug, Slug: slug, Category: "social", Provider: "photos",
		Status: store.APIActive, Environment: "production",
		APIConfig: store.APIConfig{
			BaseURL: "https://photos.example.net", AuthType: store.AuthOAuth1,
			OAuth1: &store.OAuth1Config{RequestTokenURL: "https://photos.example.net/initiate",
				AuthorizationURL: "https://photos.example.net/authorize", AccessTokenURL: "https://photos.example.net/token"},
		},
	}
}

func TestOAuth1RequestSingleUse(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		c := ctx(t)
		kr, _ := newKeyring(t, 1)
		a, other := oauth1API("photos"), oauth1API("other")
		for _, x := range []*store.ExternalAPI{a, other} {
			if err := s.CreateAPI(c, x); err != nil {
				t.Fatal(err)
			}
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		r := &store.OAuth1Request{ID: "h1", ExternalAPIID: a.ID, ConnectionName: "Jane", UserID: "u1",
			PartnerID: "p1", SalesChannelID: "sc1", CreatedBy: "ops", ExpiresAt: now.Add(10 * time.Minute)}
		r.RequestTokenSecret = seal(t, kr, "hdhd0244k9j7ao03", r.AAD(store.OAuth1RequestSecretField))
		if err := s.CreateOAuth1Request(c, r); err != nil {
			t.Fatalf("CreateOAuth1Request() = %v", err)
		}
		if err := s.CreateOAuth1Request(c, r); !errors.Is(err, store.ErrConflict) {
			t.Errorf("CreateOAuth1Request(same id) = %v; want ErrConflict", err)
		}
		if err := s.CreateOAuth1Request(c, &store.OAuth1Request{ID: "h9", ExternalAPIID: a.ID}); err == nil {
			t.Error("CreateOAuth1Request(no secret) = nil; want an error")
		}

		// The right token presented on another API's callback neither succeeds nor burns it.
		if _, err := s.ConsumeOAuth1Request(c, "h1", other.ID, now); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("ConsumeOAuth1Request(other API) = %v; want ErrNotFound", err)
		}
		got, err := s.ConsumeOAuth1Request(c, "h1", a.ID, now)
		if err != nil {
			t.Fatalf("ConsumeOAuth1Request() = %v", err)
		}
		if got.ExternalAPIID != a.ID || got.ConnectionName != "Jane" || got.UserID != "u1" || got.PartnerID != "p1" ||
			got.SalesChannelID != "sc1" || got.CreatedBy != "ops" || !got.ExpiresAt.Equal(r.ExpiresAt) ||
			got.UsedAt == nil || !got.UsedAt.Equal(now) {
			t.Errorf("ConsumeOAuth1Request() = %+v; want the flow as created, used now", got)
		}
		if v, err := kr.Open(got.RequestTokenSecret, got.AAD(store.OAuth1RequestSecretField)); err != nil || string(v) != "hdhd0244k9j7ao03" {
			t.Errorf("open request token secret = %q, %v; want hdhd0244k9j7ao03", v, err)
		}
		// The AAD binds the secret to its row: it does not open as another row's.
		moved := &store.OAuth1Request{ID: "h2"}
		if _, err := kr.Open(got.RequestTokenSecret, moved.AAD(store.OAuth1RequestSecretField)); !errors.Is(err, vault.ErrAuthFailed) {
			t.Errorf("open with another row's AAD = %v; want ErrAuthFailed", err)
		}
		if _, err := s.ConsumeOAuth1Request(c, "h1", a.ID, now); !errors.Is(err, store.ErrRequestTokenUsed) {
			t.Errorf("second ConsumeOAuth1Request() = %v; want ErrRequestTokenUsed", err)
		}
		if _, err := s.ConsumeOAuth1Request(c, "nope", a.ID, now); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("ConsumeOAuth1Request(unknown) = %v; want ErrNotFound", err)
		}

		expired := &store.OAuth1Request{ID: "h3", ExternalAPIID: a.ID, ExpiresAt: now.Add(-time.Second)}
		expired.RequestTokenSecret = seal(t, kr, "s3", expired.AAD(store.OAuth1RequestSecretField))
		if err := s.CreateOAuth1Request(c, expired); err != nil {
			t.Fatal(err)
		}
		n, err := s.DeleteOAuth1RequestsBefore(c, now)
		if err != nil || n != 1 {
			t.Errorf("DeleteOAuth1RequestsBefore() = %d, %v; want 1 (h3 only)", n, err)
		}
		if _, err := s.ConsumeOAuth1Request(c, "h1", a.ID, now); !errors.Is(err, store.ErrRequestTokenUsed) {
			t.Errorf("h1 after purge = %v; want still there, used", err)
		}
	})
}

func TestOAuth1RequestConsumedOnceConcurrently(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		c := ctx(t)
		kr, _ := newKeyring(t, 1)
		a := oauth1API("photos")
		if err := s.CreateAPI(c, a); err != nil {
			t.Fatal(err)
		}
		r := &store.OAuth1Request{ID: "race", ExternalAPIID: a.ID, ExpiresAt: time.Now().Add(time.Minute)}
		r.RequestTokenSecret = seal(t, kr, "s", r.AAD(store.OAuth1RequestSecretField))
		if err := s.CreateOAuth1Request(c, r); err != nil {
			t.Fatal(err)
		}
		consumedOnce(t, "ConsumeOAuth1Request", store.ErrRequestTokenUsed, func() error {
			_, err := s.ConsumeOAuth1Request(c, "race", a.ID, time.Now())
			return err
		})
	})
}

func TestRewrapOAuth1Requests(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		c := ctx(t)
		kr1, keys := newKeyring(t, 1)
		a := oauth1API("photos")
		if err := s.CreateAPI(c, a); err != nil {
			t.Fatal(err)
		}
		r := &store.OAuth1Request{ID: "h1", ExternalAPIID: a.ID, ExpiresAt: time.Now().Add(time.Minute)}
		r.RequestTokenSecret = seal(t, kr1, "request-secret", r.AAD(store.OAuth1RequestSecretField))
		if err := s.CreateOAuth1Request(c, r); err != nil {
			t.Fatal(err)
		}
		k2, _ := vault.GenerateKey()
		keys[2] = k2
		kr12, err := vault.New(keys, 0)
		if err != nil {
			t.Fatal(err)
		}
		st, err := s.Rewrap(c, kr12, 10)
		if err != nil || st.Rewrapped != 1 {
			t.Fatalf("Rewrap() = %+v, %v; want the request token secret rewrapped", st, err)
		}
		kr2, err := vault.New(map[uint32][]byte{2: k2}, 0)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.ConsumeOAuth1Request(c, "h1", a.ID, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if v, err := kr2.Open(got.RequestTokenSecret, got.AAD(store.OAuth1RequestSecretField)); err != nil || string(v) != "request-secret" {
			t.Errorf("Open() with only key 2 = %q, %v; want request-secret", v, err)
		}
	})
}
