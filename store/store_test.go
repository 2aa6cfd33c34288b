package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/extapi/extapi/store"
	"github.com/extapi/extapi/store/storetest"
	"github.com/extapi/extapi/vault"
	"gorm.io/gorm"
)

func newKeyring(t *testing.T, versions ...uint32) (*vault.Keyring, map[uint32][]byte) {
	t.Helper()
	keys := map[uint32][]byte{}
	for _, v := range versions {
		k, err := vault.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		keys[v] = k
	}
	kr, err := vault.New(keys, 0)
	if err != nil {
		t.Fatal(err)
	}
	return kr, keys
}

func seal(t *testing.T, kr *vault.Keyring, plaintext string, aad []byte) store.Sealed {
	t.Helper()
	b, err := kr.Seal([]byte(plaintext), aad)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sampleAPI(slug string) *store.ExternalAPI {
	return &store.ExternalAPI{
		Name: "Stripe " + slug, Slug: slug, Category: "payment", Provider: "stripe",
		Status: store.APIActive, Environment: "production",
		APIConfig: store.APIConfig{
			BaseURL: "https://api.stripe.com/v1", AuthType: store.AuthBearer,
			APIKey:    &store.APIKeyConfig{HeaderName: "Authorization", KeyPrefix: "Bearer "},
			RateLimit: &store.RateLimit{RequestsPerSecond: 100},
		},
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestAPILifecycle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		c := ctx(t)
		a := sampleAPI("stripe")
		if err := s.CreateAPI(c, a); err != nil {
			t.Fatalf("CreateAPI() = %v", err)
		}
		if !strings.HasPrefix(a.ID, "eapi_") || len(a.ID) != len("eapi_")+26 {
			t.Errorf("ID = %q; want eapi_ + 26 base32 characters", a.ID)
		}
		got, err := s.GetAPI(c, a.ID, store.Tenant{})
		if err != nil {
			t.Fatalf("GetAPI() = %v", err)
		}
		if got.APIConfig.BaseURL != a.APIConfig.BaseURL || got.APIConfig.RateLimit.RequestsPerSecond != 100 || got.Name != a.Name {
			t.Errorf("GetAPI() = %+v; want the row as created", got)
		}
		if d := time.Since(got.CreatedAt); d < 0 || d > time.Minute {
			t.Errorf("CreatedAt = %v; want about now", got.CreatedAt)
		}

		// The same slug in the same environment and tenant clashes; elsewhere it does not.
		if err := s.CreateAPI(c, sampleAPI("stripe")); !errors.Is(err, store.ErrConflict) {
			t.Errorf("CreateAPI(duplicate slug) = %v; want ErrConflict", err)
		}
		staging := sampleAPI("stripe")
		staging.Environment = "staging"
		if err := s.CreateAPI(c, staging); err != nil {
			t.Errorf("CreateAPI(same slug, staging) = %v; want nil", err)
		}
		tenant := sampleAPI("stripe")
		tenant.SalesChannelID = "sc_1"
		if err := s.CreateAPI(c, tenant); err != nil {
			t.Errorf("CreateAPI(same slug, other tenant) = %v; want nil", err)
		}

		got.Name = "Stripe renamed"
		got.UpdatedBy = "alice"
		if err := s.UpdateAPI(c, got); err != nil {
			t.Fatalf("UpdateAPI() = %v", err)
		}
		again, _ := s.GetAPI(c, a.ID, store.Tenant{})
		if again.Name != "Stripe renamed" || again.UpdatedBy != "alice" {
			t.Errorf("after UpdateAPI: %q by %q; want renamed by alice", again.Name, again.UpdatedBy)
		}

		conn := &store.Connection{ExternalAPIID: a.ID, ConnectionName: "main", Status: store.ConnActive}
		if err := s.CreateConnection(c, conn); err != nil {
			t.Fatalf("CreateConnection() = %v", err)
		}
		list, total, err := s.ListAPIs(c, store.APIFilter{Environment: "production", Limit: 10})
		if err != nil {
			t.Fatalf("ListAPIs() = %v", err)
		}
		if total != 2 || len(list) != 2 {
			t.Fatalf("ListAPIs(production) = %d items, total %d; want 2, 2", len(list), total)
		}
		for _, it := range list {
			want := int64(0)
			if it.ID == a.ID {
				want = 1
			}
			if it.ConnectionsCount != want {
				t.Errorf("ConnectionsCount(%s) = %d; want %d", it.Slug, it.ConnectionsCount, want)
			}
		}
		if l, n, _ := s.ListAPIs(c, store.APIFilter{Query: "RENAMED", Limit: 10}); n != 1 || l[0].ID != a.ID {
			t.Errorf("ListAPIs(q=RENAMED) total %d; want 1 (the renamed row)", n)
		}
		if _, n, _ := s.ListAPIs(c, store.APIFilter{Query: "%", Limit: 10}); n != 0 {
			t.Errorf("ListAPIs(q=%%) total %d; want 0 (LIKE wildcards are literal)", n)
		}

		if err := s.DeleteAPI(c, a.ID, store.Tenant{}); err != nil {
			t.Fatalf("DeleteAPI() = %v", err)
		}
		if _, err := s.GetAPI(c, a.ID, store.Tenant{}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetAPI(deleted) = %v; want ErrNotFound", err)
		}
		if err := s.DeleteAPI(c, a.ID, store.Tenant{}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("DeleteAPI(deleted) = %v; want ErrNotFound", err)
		}
		// A deleted row frees its slug.
		if err := s.CreateAPI(c, sampleAPI("stripe")); err != nil {
			t.Errorf("CreateAPI(slug of a deleted row) = %v; want nil", err)
		}
		if err := s.UpdateAPI(c, got); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("UpdateAPI(deleted) = %v; want ErrNotFound", err)
		}
	})
}

func TestTenantScope(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		c := ctx(t)
		mine, theirs := sampleAPI("a"), sampleAPI("b")
		mine.SalesChannelID, theirs.SalesChannelID = "sc_mine", "sc_theirs"
		for _, a := range []*store.ExternalAPI{mine, theirs} {
			if err := s.CreateAPI(c, a); err != nil {
				t.Fatal(err)
			}
		}
		conn := &store.Connection{ExternalAPIID: theirs.ID, SalesChannelID: "sc_theirs", ConnectionName: "x", Status: "active"}
		if err := s.CreateConnection(c, conn); err != nil {
			t.Fatal(err)
		}
		scope := store.Tenant{SalesChannelID: "sc_mine"}
		if _, err := s.GetAPI(c, theirs.ID, scope); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetAPI(other tenant) = %v; want ErrNotFound", err)
		}
		if _, err := s.GetConnection(c, conn.ID, scope); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetConnection(other tenant) = %v; want ErrNotFound", err)
		}
		if err := s.DeleteAPI(c, theirs.ID, scope); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("DeleteAPI(other tenant) = %v; want ErrNotFound", err)
		}
		if err := s.DeleteConnection(c, conn.ID, scope); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("DeleteConnection(other tenant) = %v; want ErrNotFound", err)
		}
		list, total, err := s.ListAPIs(c, store.APIFilter{Tenant: scope, Limit: 50})
		if err != nil || total != 1 || len(list) != 1 || list[0].ID != mine.ID {
			t.Errorf("ListAPIs(scoped) = %d items, total %d, %v; want only mine", len(list), total, err)
		}
		if _, n, _ := s.ListConnections(c, store.ConnectionFilter{Tenant: scope}); n != 0 {
			t.Errorf("ListConnections(scoped) total = %d; want 0", n)
		}
	})
}

func TestConnectionLifecycle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		c := ctx(t)
		a := sampleAPI("fb")
		if err := s.CreateAPI(c, a); err != nil {
			t.Fatal(err)
		}
		exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
		conn := &store.Connection{
			ExternalAPIID: a.ID, ConnectionName: "My Page", UserID: "u1", Status: store.ConnActive,
			Credentials:  store.Credentials{TokenType: "Bearer", ExpiresAt: &exp, Scopes: []string{"a", "b"}},
			ProviderData: map[string]any{"page_id": "123", "nested": map[string]any{"x": 1.0}},
		}
		if err := s.CreateConnection(c, conn); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(conn.ID, "conn_") {
			t.Errorf("ID = %q; want conn_ prefix", conn.ID)
		}
		got, err := s.GetConnection(c, conn.ID, store.Tenant{})
		if err != nil {
			t.Fatal(err)
		}
		if got.ProviderData["page_id"] != "123" || !got.Credentials.ExpiresAt.Equal(exp) || len(got.Credentials.Scopes) != 2 {
			t.Errorf("GetConnection() = %+v; want the row as created", got)
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		if err := s.TouchConnections(c, map[string]time.Time{conn.ID: now}); err != nil {
			t.Fatal(err)
		}
		// An older timestamp never moves last_used_at back.
		if err := s.TouchConnections(c, map[string]time.Time{conn.ID: now.Add(-time.Hour)}); err != nil {
			t.Fatal(err)
		}
		got, _ = s.GetConnection(c, conn.ID, store.Tenant{})
		if got.LastUsedAt == nil || !got.LastUsedAt.Equal(now) {
			t.Errorf("LastUsedAt = %v; want %v", got.LastUsedAt, now)
		}
		got.Status = store.ConnExpired
		got.ErrorMessage = "invalid_grant"
		if err := s.UpdateConnection(c, got); err != nil {
			t.Fatal(err)
		}
		list, n, err := s.ListConnections(c, store.ConnectionFilter{ExternalAPIID: a.ID, Status: store.ConnExpired})
		if err != nil || n != 1 || list[0].ErrorMessage != "invalid_grant" {
			t.Errorf("ListConnections(expired) = %v, %d, %v; want the updated row", list, n, err)
		}
		if err := s.DeleteConnection(c, conn.ID, store.Tenant{}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetConnection(c, conn.ID, store.Tenant{}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetConnection(deleted) = %v; want ErrNotFound", err)
		}
	})
}

// TouchConnections writes a whole flush in one statement per chunk of connections, moving each
// connection's last_used_at forward only and leaving deleted connections alone.
func TestTouchManyConnections(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		c := ctx(t)
		a := sampleAPI("touch")
		if err := s.CreateAPI(c, a); err != nil {
			t.Fatal(err)
		}
		// Ids that sort among 1600 unknown ones, so the real rows fall into several chunks.
		real := make([]string, 4)
		for i := range real {
			real[i] = fmt.Sprintf("conn_%04d_real", i*400)
			if err := s.CreateConnection(c, &store.Connection{ID: real[i], ExternalAPIID: a.ID, ConnectionName: "c", Status: store.ConnActive}); err != nil {
				t.Fatal(err)
			}
		}
		t0 := time.Date(2030, 5, 6, 7, 8, 9, 123456000, time.UTC)
		if err := s.TouchConnections(c, map[string]time.Time{real[1]: t0.Add(time.Hour), real[2]: t0.Add(-time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteConnection(c, real[3], store.Tenant{}); err != nil {
			t.Fatal(err)
		}

		used := map[string]time.Time{
			real[0]: t0,                               // never used: set
			real[1]: t0,                               // used later already: left alone
			real[2]: t0.Add(2 * time.Hour),            // used earlier: moved forward
			real[3]: t0.In(time.FixedZone("x", 3600)), // deleted: left alone
		}
		for i := 0; i < 1600; i++ {
			used[fmt.Sprintf("conn_%04d_gone", i)] = t0
		}
		var statements atomic.Int64
		count := func(*gorm.DB) { statements.Add(1) }
		g := s.Gorm()
		for _, err := range []error{
			g.Callback().Update().After("gorm:update").Register("test:count_update", count),
			g.Callback().Raw().After("gorm:raw").Register("test:count_raw", count),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := s.TouchConnections(c, used); err != nil {
			t.Fatalf("TouchConnections(%d) = %v", len(used), err)
		}
		if n, want := statements.Load(), int64((len(used)+499)/500); n != want {
			t.Errorf("TouchConnections(%d connections) ran %d statements; want %d (one per 500)", len(used), n, want)
		}

		want := map[string]*time.Time{real[0]: &t0, real[1]: ptr(t0.Add(time.Hour)), real[2]: ptr(t0.Add(2 * time.Hour)), real[3]: nil}
		for _, id := range real {
			var got store.Connection
			if err := g.Unscoped().Where("id = ?", id).Take(&got).Error; err != nil {
				t.Fatal(err)
			}
			switch w := want[id]; {
			case w == nil && got.LastUsedAt != nil:
				t.Errorf("%s: LastUsedAt = %v; want unset (deleted connection)", id, got.LastUsedAt)
			case w != nil && (got.LastUsedAt == nil || !got.LastUsedAt.Equal(*w)):
				t.Errorf("%s: LastUsedAt = %v; want %v", id, got.LastUsedAt, *w)
			}
		}
		if err := s.TouchConnections(c, nil); err != nil {
			t.Errorf("TouchConnections(nothing) = %v", err)
		}
	})
}

func ptr[T any](v T) *T { return &v }

func TestAuditInTransaction(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		c := ctx(t)
		boom := errors.New("boom")
		a := sampleAPI("rolled-back")
		err := s.Tx(c, func(tx *store.Store) error {
			if err := tx.CreateAPI(c, a); err != nil {
				return err
			}
			if err := tx.AddAudit(c, &store.AuditEvent{Actor: "bob", Action: "create", TargetType: "external_api", TargetID: a.ID}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Tx() = %v; want boom", err)
		}
		if _, err := s.GetAPI(c, a.ID, store.Tenant{}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetAPI(rolled back) = %v; want ErrNotFound", err)
		}
		if _, n, _ := s.ListAudit(c, store.AuditFilter{TargetID: a.ID}); n != 0 {
			t.Errorf("audit events of a rolled-back change = %d; want 0", n)
		}

		base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := 0; i < 3; i++ {
			e := &store.AuditEvent{At: base.Add(time.Duration(i) * time.Hour), Actor: fmt.Sprint("actor", i%2),
				Action: "update", TargetType: "external_api", TargetID: "eapi_x", Changes: map[string]any{"name": "changed"}}
			if err := s.AddAudit(c, e); err != nil {
				t.Fatal(err)
			}
		}
		list, n, err := s.ListAudit(c, store.AuditFilter{TargetID: "eapi_x"})
		if err != nil || n != 3 || !list[0].At.After(list[1].At) {
			t.Fatalf("ListAudit() = %d events, %v; want 3, newest first", n, err)
		}
		if _, n, _ := s.ListAudit(c, store.AuditFilter{Actor: "actor0"}); n != 2 {
			t.Errorf("ListAudit(actor0) = %d; want 2", n)
		}
		if _, n, _ := s.ListAudit(c, store.AuditFilter{Since: base.Add(30 * time.Minute), Until: base.Add(2 * time.Hour)}); n != 1 {
			t.Errorf("ListAudit(time range) = %d; want 1", n)
		}
	})
}

// rawDump returns every row of every table as text, the way an attacker with the database would.
func rawDump(t *testing.T, s *store.Store) string {
	t.Helper()
	var sb strings.Builder
	for _, table := range []string{"external_apis", "external_api_connections", "audit_events", "encryption_keys", "schema_migrations"} {
		rows, err := s.SQL().Query("SELECT * FROM " + table)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				if b, ok := v.([]byte); ok {
					v = string(b)
				}
				fmt.Fprintf(&sb, "%v\t", v)
			}
			sb.WriteByte('\n')
		}
		rows.Close()
	}
	return sb.String()
}

func TestSecretsAreSealedAtRest(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		c := ctx(t)
		kr, _ := newKeyring(t, 1)
		secrets := map[string]string{
			"client_id": "cid-PLAINTEXT-7a1", "client_secret": "csecret-PLAINTEXT-9f2", "api_key": "sk_live_PLAINTEXT_4b7",
			"access": "EAAB-PLAINTEXT-access", "refresh": "refresh-PLAINTEXT-88", "password": "pw-PLAINTEXT-x",
		}
		a := sampleAPI("sealed")
		a.ID = store.NewID(store.PrefixAPI)
		a.APIConfig.OAuth2 = &store.OAuth2Config{TokenURL: "https://example.com/token"}
		a.APIConfig.OAuth2.ClientID = seal(t, kr, secrets["client_id"], a.AAD("api_config.oauth2.client_id"))
		a.APIConfig.OAuth2.ClientSecret = seal(t, kr, secrets["client_secret"], a.AAD("api_config.oauth2.client_secret"))
		a.APIConfig.APIKey.Key = seal(t, kr, secrets["api_key"], a.AAD("api_config.api_key.key"))
		if err := s.CreateAPI(c, a); err != nil {
			t.Fatal(err)
		}
		conn := &store.Connection{ID: store.NewID(store.PrefixConnection), ExternalAPIID: a.ID, ConnectionName: "c", Status: "active"}
		conn.Credentials.AccessToken = seal(t, kr, secrets["access"], conn.AAD("credentials.access_token"))
		conn.Credentials.RefreshToken = seal(t, kr, secrets["refresh"], conn.AAD("credentials.refresh_token"))
		conn.Credentials.Password = seal(t, kr, secrets["password"], conn.AAD("credentials.password"))
		if err := s.CreateConnection(c, conn); err != nil {
			t.Fatal(err)
		}

		dump := rawDump(t, s)
		for name, p := range secrets {
			if strings.Contains(dump, p) || strings.Contains(dump, strings.ToLower(p)) {
				t.Errorf("plaintext of %s found in the raw database rows", name)
			}
		}
		if !strings.Contains(dump, `"keyVersion"`) {
			t.Errorf("raw rows carry no sealed blob; the test is not looking at the right data")
		}

		got, err := s.GetAPI(c, a.ID, store.Tenant{})
		if err != nil {
			t.Fatal(err)
		}
		pt, err := kr.Open(got.APIConfig.OAuth2.ClientSecret, got.AAD("api_config.oauth2.client_secret"))
		if err != nil || string(pt) != secrets["client_secret"] {
			t.Errorf("Open(client_secret) = %v; want the sealed secret back", err)
		}

		// A blob moved to another row, or another field of the same row, does not open.
		other := sampleAPI("other")
		other.ID = store.NewID(store.PrefixAPI)
		other.APIConfig.APIKey.Key = got.APIConfig.APIKey.Key
		if err := s.CreateAPI(c, other); err != nil {
			t.Fatal(err)
		}
		moved, _ := s.GetAPI(c, other.ID, store.Tenant{})
		if _, err := kr.Open(moved.APIConfig.APIKey.Key, moved.AAD("api_config.api_key.key")); !errors.Is(err, vault.ErrAuthFailed) {
			t.Errorf("Open(blob moved to another row) = %v; want ErrAuthFailed", err)
		}
		if _, err := kr.Open(got.APIConfig.APIKey.Key, got.AAD("api_config.oauth2.client_secret")); !errors.Is(err, vault.ErrAuthFailed) {
			t.Errorf("Open(blob moved to another field) = %v; want ErrAuthFailed", err)
		}
	})
}

func TestRewrapThenRemoveOldKey(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		c := ctx(t)
		kr1, keys := newKeyring(t, 1)
		const n = 7 // more than one batch of 3
		plain := map[string]string{}
		var deletedID, firstAPI string
		for i := 0; i < n; i++ {
			a := sampleAPI(fmt.Sprintf("api-%d", i))
			a.ID = store.NewID(store.PrefixAPI)
			p := fmt.Sprintf("key-%d-secret", i)
			a.APIConfig.APIKey.Key = seal(t, kr1, p, a.AAD("api_config.api_key.key"))
			if err := s.CreateAPI(c, a); err != nil {
				t.Fatal(err)
			}
			plain[a.ID] = p
			conn := &store.Connection{ID: store.NewID(store.PrefixConnection), ExternalAPIID: a.ID, ConnectionName: "c", Status: "active"}
			cp := fmt.Sprintf("token-%d-secret", i)
			conn.Credentials.AccessToken = seal(t, kr1, cp, conn.AAD("credentials.access_token"))
			if err := s.CreateConnection(c, conn); err != nil {
				t.Fatal(err)
			}
			plain[conn.ID] = cp
			if i == 0 {
				deletedID, firstAPI = conn.ID, a.ID
			}
			if i < 2 {
				// The OAuth 2.0 tables, sealed as oauth seals them: the PKCE verifier of a flow in
				// flight and the client-credentials token cache (keyed by the API's id).
				state := &store.OAuth2State{ID: fmt.Sprintf("state-%d", i), ExternalAPIID: a.ID,
					ExpiresAt: time.Now().Add(time.Hour)}
				state.CodeVerifier = seal(t, kr1, fmt.Sprintf("verifier-%d-secret", i), state.AAD("code_verifier"))
				if err := s.CreateOAuth2State(c, state); err != nil {
					t.Fatal(err)
				}
				plain[state.ID] = fmt.Sprintf("verifier-%d-secret", i)
				tok := &store.OAuth2ClientToken{ExternalAPIID: a.ID}
				tok.Credentials.AccessToken = seal(t, kr1, fmt.Sprintf("cc-%d-secret", i), tok.AAD("credentials.access_token"))
				if err := s.PutOAuth2ClientToken(c, tok); err != nil {
					t.Fatal(err)
				}
				plain["cc/"+a.ID] = fmt.Sprintf("cc-%d-secret", i)
			}
		}
		// A flow without PKCE has no verifier: read, but nothing to rewrap.
		if err := s.CreateOAuth2State(c, &store.OAuth2State{ID: "state-nopkce", ExternalAPIID: firstAPI,
			ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteConnection(c, deletedID, store.Tenant{}); err != nil {
			t.Fatal(err)
		}

		k2, _ := vault.GenerateKey()
		keys[2] = k2
		kr12, err := vault.New(keys, 0)
		if err != nil {
			t.Fatal(err)
		}
		st, err := s.Rewrap(c, kr12, 3)
		if err != nil {
			t.Fatalf("Rewrap() = %v", err)
		}
		// n APIs, n connections, 3 OAuth 2.0 states (one without a verifier), 2 client tokens.
		if wantRows, wantSecrets := 2*n+5, 2*n+4; st.Rows != wantRows || st.Secrets != wantSecrets ||
			st.Rewrapped != wantSecrets || st.Updated != wantSecrets {
			t.Errorf("Rewrap() = %+v; want %d rows, %d secrets rewrapped and rows updated", st, wantRows, wantSecrets)
		}
		st, err = s.Rewrap(c, kr12, 3)
		if err != nil || st.Rewrapped != 0 || st.Updated != 0 {
			t.Errorf("second Rewrap() = %+v, %v; want nothing rewrapped", st, err)
		}

		kr2, err := vault.New(map[uint32][]byte{2: k2}, 0)
		if err != nil {
			t.Fatal(err)
		}
		var apis []store.ExternalAPI
		var conns []store.Connection
		s.Gorm().Unscoped().Find(&apis)
		s.Gorm().Unscoped().Find(&conns)
		if len(apis) != n || len(conns) != n {
			t.Fatalf("rows = %d apis, %d connections; want %d each", len(apis), len(conns), n)
		}
		for i := range apis {
			pt, err := kr2.Open(apis[i].APIConfig.APIKey.Key, apis[i].AAD("api_config.api_key.key"))
			if err != nil || string(pt) != plain[apis[i].ID] {
				t.Errorf("Open(api %s) with only key 2 = %q, %v; want %q", apis[i].ID, pt, err, plain[apis[i].ID])
			}
		}
		for i := range conns {
			pt, err := kr2.Open(conns[i].Credentials.AccessToken, conns[i].AAD("credentials.access_token"))
			if err != nil || string(pt) != plain[conns[i].ID] {
				t.Errorf("Open(connection %s) with only key 2 = %v; want the token", conns[i].ID, err)
			}
		}
		var states []store.OAuth2State
		var toks []store.OAuth2ClientToken
		s.Gorm().Find(&states)
		s.Gorm().Find(&toks)
		if len(states) != 3 || len(toks) != 2 {
			t.Fatalf("rows = %d oauth2 states, %d client tokens; want 3 and 2", len(states), len(toks))
		}
		for i := range states {
			if !states[i].CodeVerifier.IsSet() {
				continue
			}
			// "code_verifier" and "credentials.access_token" are the fields oauth seals with.
			pt, err := kr2.Open(states[i].CodeVerifier, states[i].AAD("code_verifier"))
			if err != nil || string(pt) != plain[states[i].ID] {
				t.Errorf("Open(oauth2 state %s) with only key 2 = %q, %v; want %q", states[i].ID, pt, err, plain[states[i].ID])
			}
		}
		for i := range toks {
			pt, err := kr2.Open(toks[i].Credentials.AccessToken, toks[i].AAD("credentials.access_token"))
			if err != nil || string(pt) != plain["cc/"+toks[i].ExternalAPIID] {
				t.Errorf("Open(client token of %s) with only key 2 = %q, %v; want the token", toks[i].ExternalAPIID, pt, err)
			}
		}
	})
}

func TestKeyFingerprints(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		c := ctx(t)
		if err := s.RecordKeyFingerprint(c, 1, "aaaa"); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordKeyFingerprint(c, 1, "bbbb"); err != nil {
			t.Fatal(err)
		}
		fps, err := s.KeyFingerprints(c)
		if err != nil || len(fps) != 1 || fps[0].Fingerprint != "aaaa" {
			t.Errorf("KeyFingerprints() = %+v, %v; want the first record kept", fps, err)
		}
	})
}

func TestConcurrentWritersSQLite(t *testing.T) {
	// Two handles on one SQLite file (two processes in production) write at once without SQLITE_BUSY.
	url := storetest.SQLiteURL(t)
	a, b := storetest.Open(t, url), storetest.Open(t, url)
	c := ctx(t)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := 0; i < 20; i++ {
		for j, s := range []*store.Store{a, b} {
			wg.Add(1)
			go func(i, j int, s *store.Store) {
				defer wg.Done()
				errs <- s.Tx(c, func(tx *store.Store) error {
					if _, _, err := tx.ListAPIs(c, store.APIFilter{Limit: 1}); err != nil {
						return err
					}
					return tx.CreateAPI(c, sampleAPI(fmt.Sprintf("w%d-%d", j, i)))
				})
			}(i, j, s)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent write: %v", err)
		}
	}
	if _, n, _ := a.ListAPIs(c, store.APIFilter{Limit: 1}); n != 40 {
		t.Errorf("rows = %d; want 40", n)
	}
}

// consumedOnce runs consume from 8 goroutines at once: exactly one succeeds, the others get used.
func consumedOnce(t *testing.T, name string, used error, consume func() error) {
	t.Helper()
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = consume() })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, used):
			t.Errorf("%s() = %v; want nil or %v", name, err, used)
		}
	}
	if ok != 1 {
		t.Errorf("successful %s calls = %d; want exactly 1", name, ok)
	}
}
