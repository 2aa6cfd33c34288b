package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/extapi/extapi/store"
	"github.com/extapi/extapi/store/storetest"
)

func oauth2API(slug string) *store.ExternalAPI {
	return &store.ExternalAPI{
		Name: "Acme " + slug, Slug: slug, Category: "crm", Provider: "acme",
		Status: store.APIActive, Environment: "production",
		APIConfig: store.APIConfig{
			BaseURL: "https://api.acme.test", AuthType: store.AuthOAuth2,
			OAuth2: &store.OAuth2Config{TokenURL: "https://acme.test/token"},
		},
	}
}

func TestOAuth2StateSingleUse(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		c := ctx(t)
		kr, _ := newKeyring(t, 1)
		a := oauth2API("acme")
		if err := s.CreateAPI(c, a); err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		st := &store.OAuth2State{ID: "h1", ExternalAPIID: a.ID, ConnectionName: "Main", UserID: "u1",
			PartnerID: "p1", SalesChannelID: "sc1", RedirectURI: "https://x.test/cb", CreatedBy: "ops",
			ExpiresAt: now.Add(10 * time.Minute)}
		st.CodeVerifier = seal(t, kr, "verifier-1", st.AAD("code_verifier"))
		if err := s.CreateOAuth2State(c, st); err != nil {
			t.Fatalf("CreateOAuth2State() = %v", err)
		}
		got, err := s.ConsumeOAuth2State(c, "h1", now)
		if err != nil {
			t.Fatalf("ConsumeOAuth2State() = %v", err)
		}
		if got.ExternalAPIID != a.ID || got.ConnectionName != "Main" || got.UserID != "u1" || got.PartnerID != "p1" ||
			got.SalesChannelID != "sc1" || got.RedirectURI != "https://x.test/cb" || got.CreatedBy != "ops" ||
			!got.ExpiresAt.Equal(st.ExpiresAt) || got.UsedAt == nil || !got.UsedAt.Equal(now) {
			t.Errorf("ConsumeOAuth2State() = %+v; want the state as created, used now", got)
		}
		if v, err := kr.Open(got.CodeVerifier, got.AAD("code_verifier")); err != nil || string(v) != "verifier-1" {
			t.Errorf("open code verifier = %q, %v; want verifier-1", v, err)
		}
		if _, err := s.ConsumeOAuth2State(c, "h1", now); !errors.Is(err, store.ErrStateUsed) {
			t.Errorf("second ConsumeOAuth2State() = %v; want ErrStateUsed", err)
		}
		if _, err := s.ConsumeOAuth2State(c, "nope", now); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("ConsumeOAuth2State(unknown) = %v; want ErrNotFound", err)
		}

		// Without PKCE the verifier is unset and stays unset.
		if err := s.CreateOAuth2State(c, &store.OAuth2State{ID: "h2", ExternalAPIID: a.ID, ExpiresAt: now.Add(-time.Second)}); err != nil {
			t.Fatal(err)
		}
		got, err = s.ConsumeOAuth2State(c, "h2", now)
		if err != nil || got.CodeVerifier.IsSet() {
			t.Errorf("ConsumeOAuth2State(h2) = %+v, %v; want no verifier", got, err)
		}
		n, err := s.DeleteOAuth2StatesBefore(c, now)
		if err != nil || n != 1 {
			t.Errorf("DeleteOAuth2StatesBefore() = %d, %v; want 1 (h2 only)", n, err)
		}
		if _, err := s.ConsumeOAuth2State(c, "h1", now); !errors.Is(err, store.ErrStateUsed) {
			t.Errorf("h1 after purge = %v; want still there, used", err)
		}
	})
}

func TestOAuth2StateConsumedOnceConcurrently(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		c := ctx(t)
		a := oauth2API("acme")
		if err := s.CreateAPI(c, a); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateOAuth2State(c, &store.OAuth2State{ID: "race", ExternalAPIID: a.ID, ExpiresAt: time.Now().Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		consumedOnce(t, "ConsumeOAuth2State", store.ErrStateUsed, func() error {
			_, err := s.ConsumeOAuth2State(c, "race", time.Now())
			return err
		})
	})
}

func TestOAuth2ClientToken(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		c := ctx(t)
		kr, _ := newKeyring(t, 1)
		a := oauth2API("acme")
		if err := s.CreateAPI(c, a); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetOAuth2ClientToken(c, a.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetOAuth2ClientToken(none) = %v; want ErrNotFound", err)
		}
		exp := time.Now().UTC().Add(time.Hour).Truncate(time.Second)
		for i, tok := range []string{"cc-1", "cc-2"} {
			version := time.Now().UTC().Add(time.Duration(i) * time.Minute).Truncate(time.Microsecond)
			row := &store.OAuth2ClientToken{ExternalAPIID: a.ID, APIUpdatedAt: &version}
			row.Credentials = store.Credentials{AccessToken: seal(t, kr, tok, row.AAD("credentials.access_token")),
				TokenType: "Bearer", ExpiresAt: &exp, Scopes: []string{"read"}}
			if err := s.PutOAuth2ClientToken(c, row); err != nil {
				t.Fatalf("PutOAuth2ClientToken(%s) = %v", tok, err)
			}
			got, err := s.GetOAuth2ClientToken(c, a.ID)
			if err != nil {
				t.Fatal(err)
			}
			v, err := kr.Open(got.Credentials.AccessToken, got.AAD("credentials.access_token"))
			if err != nil || string(v) != tok || !got.Credentials.ExpiresAt.Equal(exp) || got.Credentials.Scopes[0] != "read" {
				t.Errorf("GetOAuth2ClientToken() = %q, %+v, %v; want %s", v, got.Credentials, err, tok)
			}
			if got.APIUpdatedAt == nil || !got.APIUpdatedAt.Equal(version) {
				t.Errorf("APIUpdatedAt = %v; want %v (replaced with the token)", got.APIUpdatedAt, version)
			}
		}
	})
}

func TestListOAuth2Expiring(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		c := ctx(t)
		a := oauth2API("acme")
		other := sampleAPI("stripe") // bearer: never listed
		for _, x := range []*store.ExternalAPI{a, other} {
			if err := s.CreateAPI(c, x); err != nil {
				t.Fatal(err)
			}
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		at := func(d time.Duration) *time.Time { v := now.Add(d); return &v }
		conns := []struct {
			name   string
			api    string
			exp    *time.Time
			status string
		}{
			{"soon", a.ID, at(30 * time.Second), store.ConnActive},
			{"past", a.ID, at(-time.Hour), store.ConnActive},
			{"later", a.ID, at(2 * time.Hour), store.ConnActive},
			{"never", a.ID, nil, store.ConnActive},
			{"expired", a.ID, at(time.Second), store.ConnExpired},
			{"bearer", other.ID, at(time.Second), store.ConnActive},
			{"sub-second", a.ID, at(5*time.Minute - 500*time.Millisecond), store.ConnActive},
		}
		for _, x := range conns {
			if err := s.CreateConnection(c, &store.Connection{ExternalAPIID: x.api, ConnectionName: x.name,
				Status: x.status, Credentials: store.Credentials{ExpiresAt: x.exp}}); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.ListOAuth2Expiring(c, now.Add(5*time.Minute), 0)
		if err != nil {
			t.Fatalf("ListOAuth2Expiring() = %v", err)
		}
		var names []string
		for _, x := range got {
			names = append(names, x.ConnectionName)
		}
		want := []string{"past", "soon", "sub-second"}
		if len(names) != len(want) || names[0] != want[0] || names[1] != want[1] || names[2] != want[2] {
			t.Errorf("ListOAuth2Expiring() = %v; want %v", names, want)
		}
		got, err = s.ListOAuth2Expiring(c, now.Add(5*time.Minute), 1)
		if err != nil || len(got) != 1 || got[0].ConnectionName != "past" {
			t.Errorf("ListOAuth2Expiring(limit 1) = %d rows, %v; want past", len(got), err)
		}
	})
}
