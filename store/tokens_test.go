package store_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/extapi/extapi/store"
	"github.com/extapi/extapi/store/storetest"
)

func TestTokens(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		c := ctx(t)
		tok := &store.AdminToken{Name: "ci", Role: store.RoleEditor, SalesChannelID: "sc_1", Hash: strings.Repeat("a", 64), CreatedBy: "cli"}
		if err := s.CreateToken(c, tok); err != nil {
			t.Fatalf("CreateToken() = %v", err)
		}
		if !strings.HasPrefix(tok.ID, store.PrefixToken) {
			t.Errorf("ID = %q; want prefix %s", tok.ID, store.PrefixToken)
		}
		got, err := s.TokenByHash(c, tok.Hash)
		if err != nil || got.ID != tok.ID || got.Tenant() != (store.Tenant{SalesChannelID: "sc_1"}) {
			t.Fatalf("TokenByHash() = %+v, %v; want the token", got, err)
		}
		if _, err := s.TokenByHash(c, strings.Repeat("b", 64)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("TokenByHash(unknown) = %v; want ErrNotFound", err)
		}
		// Names are unique among a tenant's live tokens; roles are checked by the schema.
		if err := s.CreateToken(c, &store.AdminToken{Name: "ci", Role: store.RoleViewer, SalesChannelID: "sc_1", Hash: strings.Repeat("c", 64)}); !errors.Is(err, store.ErrConflict) {
			t.Errorf("CreateToken(same name) = %v; want ErrConflict", err)
		}
		if err := s.CreateToken(c, &store.AdminToken{Name: "x", Role: "root", Hash: strings.Repeat("d", 64)}); err == nil {
			t.Errorf("CreateToken(role root) = nil; want an error")
		}

		now := time.Now().UTC().Truncate(time.Microsecond)
		if err := s.TouchToken(c, tok.ID, now); err != nil {
			t.Fatal(err)
		}
		if err := s.TouchToken(c, tok.ID, now.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.GetToken(c, tok.ID, store.Tenant{}); got.LastUsedAt == nil || !got.LastUsedAt.Equal(now) {
			t.Errorf("LastUsedAt = %v; want %v (never moved back)", got.LastUsedAt, now)
		}

		if _, err := s.GetToken(c, tok.ID, store.Tenant{SalesChannelID: "sc_2"}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetToken(other tenant) = %v; want ErrNotFound", err)
		}
		if err := s.RevokeToken(c, tok.ID, store.Tenant{SalesChannelID: "sc_2"}, now); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RevokeToken(other tenant) = %v; want ErrNotFound", err)
		}
		if err := s.RevokeToken(c, tok.ID, store.Tenant{}, now); err != nil {
			t.Fatalf("RevokeToken() = %v", err)
		}
		if err := s.RevokeToken(c, tok.ID, store.Tenant{}, now); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RevokeToken(revoked) = %v; want ErrNotFound", err)
		}
		if _, err := s.TokenByHash(c, tok.Hash); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("TokenByHash(revoked) = %v; want ErrNotFound", err)
		}
		// A revoked token's name is free again.
		if err := s.CreateToken(c, &store.AdminToken{Name: "ci", Role: store.RoleViewer, Hash: strings.Repeat("e", 64)}); err != nil {
			t.Errorf("CreateToken(name of a revoked token) = %v; want nil", err)
		}
		live, err := s.ListTokens(c, store.TokenFilter{})
		if err != nil || len(live) != 1 {
			t.Errorf("ListTokens() = %d, %v; want 1 live", len(live), err)
		}
		all, _ := s.ListTokens(c, store.TokenFilter{IncludeRevoked: true})
		named, _ := s.ListTokens(c, store.TokenFilter{Name: "ci", IncludeRevoked: true})
		scoped, _ := s.ListTokens(c, store.TokenFilter{Tenant: store.Tenant{SalesChannelID: "sc_1"}, IncludeRevoked: true})
		if len(all) != 2 || len(named) != 2 || len(scoped) != 1 || all[0].RevokedAt == nil {
			t.Errorf("ListTokens: all %d, named %d, scoped %d; want 2, 2, 1, oldest first", len(all), len(named), len(scoped))
		}
	})
}

func TestDeleteConnectionsOfAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		c := ctx(t)
		a, b := sampleAPI("a"), sampleAPI("b")
		for _, x := range []*store.ExternalAPI{a, b} {
			if err := s.CreateAPI(c, x); err != nil {
				t.Fatal(err)
			}
		}
		for _, api := range []string{a.ID, a.ID, b.ID} {
			if err := s.CreateConnection(c, &store.Connection{ExternalAPIID: api, ConnectionName: "c", Status: "active"}); err != nil {
				t.Fatal(err)
			}
		}
		ids, err := s.DeleteConnectionsOfAPI(c, a.ID)
		if err != nil || len(ids) != 2 {
			t.Fatalf("DeleteConnectionsOfAPI() = %v, %v; want 2 ids", ids, err)
		}
		if _, n, _ := s.ListConnections(c, store.ConnectionFilter{ExternalAPIID: a.ID}); n != 0 {
			t.Errorf("live connections of a = %d; want 0", n)
		}
		if _, n, _ := s.ListConnections(c, store.ConnectionFilter{ExternalAPIID: b.ID}); n != 1 {
			t.Errorf("live connections of b = %d; want 1", n)
		}
		// ListAPIs counts connections within the tenant scope only.
		conn := &store.Connection{ExternalAPIID: b.ID, SalesChannelID: "sc_1", ConnectionName: "t", Status: "active"}
		if err := s.CreateConnection(c, conn); err != nil {
			t.Fatal(err)
		}
		if l, _, _ := s.ListAPIs(c, store.APIFilter{Slug: "b", Limit: 10}); len(l) != 1 || l[0].ConnectionsCount != 2 {
			t.Errorf("ListAPIs(unscoped) count = %v; want 2", l)
		}
		p := sampleAPI("p")
		p.PartnerID = "p_1"
		if err := s.CreateAPI(c, p); err != nil {
			t.Fatal(err)
		}
		for _, partner := range []string{"p_1", ""} {
			if err := s.CreateConnection(c, &store.Connection{ExternalAPIID: p.ID, PartnerID: partner, ConnectionName: "c", Status: "active"}); err != nil {
				t.Fatal(err)
			}
		}
		if l, _, _ := s.ListAPIs(c, store.APIFilter{Tenant: store.Tenant{PartnerID: "p_1"}, Limit: 10}); len(l) != 1 || l[0].ConnectionsCount != 1 {
			t.Errorf("ListAPIs(partner p_1) = %v; want p with only its tenant's connection counted", l)
		}
	})
}

// A name is unique within a tenant, not across tenants: creating a token must not tell a tenant's
// admin which names other tenants use.
func TestTokenNamesPerTenant(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		c := ctx(t)
		hash := 0
		create := func(name, sc, partner string) error {
			hash++
			return s.CreateToken(c, &store.AdminToken{Name: name, Role: store.RoleViewer, SalesChannelID: sc, PartnerID: partner,
				Hash: fmt.Sprintf("%064x", hash)})
		}
		tenants := [][2]string{{"", ""}, {"sc_1", ""}, {"sc_2", ""}, {"sc_1", "p_1"}, {"sc_1", "p_2"}, {"", "p_1"}}
		for _, tn := range tenants {
			if err := create("deploy", tn[0], tn[1]); err != nil {
				t.Errorf("CreateToken(deploy, tenant %q/%q) = %v; want nil (the name is another tenant's)", tn[0], tn[1], err)
			}
		}
		for _, tn := range tenants {
			if err := create("deploy", tn[0], tn[1]); !errors.Is(err, store.ErrConflict) {
				t.Errorf("CreateToken(deploy again, tenant %q/%q) = %v; want ErrConflict", tn[0], tn[1], err)
			}
		}
		live, err := s.ListTokens(c, store.TokenFilter{Name: "deploy"})
		if err != nil || len(live) != len(tenants) {
			t.Fatalf("ListTokens(deploy) = %d, %v; want %d", len(live), err, len(tenants))
		}
		// Revoking frees the name in that tenant only.
		if err := s.RevokeToken(c, live[1].ID, store.Tenant{}, time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := create("deploy", live[1].SalesChannelID, live[1].PartnerID); err != nil {
			t.Errorf("CreateToken(name of a revoked token of the tenant) = %v; want nil", err)
		}
		if err := create("deploy", live[2].SalesChannelID, live[2].PartnerID); !errors.Is(err, store.ErrConflict) {
			t.Errorf("CreateToken(deploy, a tenant whose token is still live) = %v; want ErrConflict", err)
		}
	})
}
