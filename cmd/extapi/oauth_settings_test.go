package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/extapi/extapi/oauth/oauth2test"
	"github.com/extapi/extapi/store"
)

// TestOAuth2RefreshSettings: EXTAPI_OAUTH2_REFRESH_SKEW decides which tokens a request refreshes
// first, EXTAPI_OAUTH2_REFRESH_HORIZON which ones the background pass renews.
func TestOAuth2RefreshSettings(t *testing.T) {
	provider := oauth2test.NewServer(oauth2test.Options{})
	defer provider.Close()
	const adminToken = "oauth2-settings-admin-token"
	ticks := make(chan time.Time)
	a := startApp(t, sqliteAppVars(t, adminToken, map[string]string{
		"EXTAPI_OAUTH2_REFRESH_SKEW":    "1h",
		"EXTAPI_OAUTH2_REFRESH_HORIZON": "3h",
	}), func(a *app) { a.oauth2Ticks = ticks })
	created := adminCall(t, a, adminToken, "POST", "/admin/external-apis", map[string]any{
		"name": "Acme", "slug": "acme", "category": "crm", "provider": "acme",
		"api_config": map[string]any{"base_url": provider.URL, "auth_type": "oauth2", "oauth2": map[string]any{
			"client_id": provider.ClientID(), "client_secret": provider.ClientSecret(),
			"authorization_url": provider.AuthURL, "token_url": provider.TokenURL}},
	}, http.StatusCreated)
	apiID := created["external_api"].(map[string]any)["id"].(string)
	// conn stores a connection holding a fresh grant whose access token expires in d.
	conn := func(d time.Duration) string {
		t.Helper()
		access, refresh := provider.Issue("read")
		exp := time.Now().UTC().Add(d).Truncate(time.Microsecond)
		c := &store.Connection{ID: store.NewID(store.PrefixConnection), ExternalAPIID: apiID, ConnectionName: "c",
			Status: store.ConnActive, Credentials: store.Credentials{TokenType: "Bearer", ExpiresAt: &exp}}
		for field, v := range map[string]struct {
			plain string
			dst   *store.Sealed
		}{"credentials.access_token": {access, &c.Credentials.AccessToken}, "credentials.refresh_token": {refresh, &c.Credentials.RefreshToken}} {
			b, err := a.keyring.Seal([]byte(v.plain), c.AAD(field))
			if err != nil {
				t.Fatal(err)
			}
			*v.dst = b
		}
		if err := a.store.CreateConnection(context.Background(), c); err != nil {
			t.Fatal(err)
		}
		return c.ID
	}

	// Expiring in 30 min: within the 1 h skew (not the default 60 s), so the request refreshes first.
	soon := conn(30 * time.Minute)
	resp, err := http.Get("http://" + a.proxyLn.Addr().String() + "/acme/" + soon + "/resource")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || provider.Hits("refresh_token") != 1 {
		t.Fatalf("request on a token expiring in 30 min = %d, %d refreshes; want 200 after 1 refresh (skew 1h)",
			resp.StatusCode, provider.Hits("refresh_token"))
	}

	// Expiring in 2 h: within the 3 h horizon (not the default 10 min): one background pass renews it.
	later := conn(2 * time.Hour)
	original := func() time.Time {
		c, err := a.store.GetConnection(context.Background(), later, store.Tenant{})
		if err != nil {
			t.Fatal(err)
		}
		return *c.Credentials.ExpiresAt
	}()
	ticks <- time.Now()
	rlWaitFor(t, 20*time.Second, "the background pass renewing the token expiring in 2h", func() bool {
		c, err := a.store.GetConnection(context.Background(), later, store.Tenant{})
		return err == nil && c.Credentials.ExpiresAt != nil && !c.Credentials.ExpiresAt.Equal(original)
	})
}
