package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/extapi/extapi/oauth/oauth2test"
	"github.com/extapi/extapi/store"
	"github.com/extapi/extapi/store/storetest"
)

// fleet is two full extapi instances (admin, proxy, store, Redis client, background refresher
// each) sharing one PostgreSQL schema and one Redis.
type fleet struct {
	t        *testing.T
	apps     [2]*app
	proxies  [2]string // proxy base URLs
	admins   [2]string // admin base URLs
	token    string
	provider *oauth2test.Server
	client   *http.Client
}

func newFleet(t *testing.T) *fleet {
	t.Helper()
	f := &fleet{t: t, token: "fleet-admin-token-" + store.NewID(""),
		provider: oauth2test.NewServer(oauth2test.Options{RequirePKCE: true}),
		client:   &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}}
	t.Cleanup(f.provider.Close)
	dbURL, k := storetest.PostgresURL(t), key(t)
	for i := range f.apps {
		cfg := loadCfg(t, map[string]string{
			"EXTAPI_DATABASE_URL": dbURL, "EXTAPI_ENCRYPTION_KEYS": "1:" + k, "EXTAPI_REDIS_URL": storetest.RedisURL(),
			"EXTAPI_ADMIN_TOKEN": f.token, "EXTAPI_ADMIN_ADDR": "127.0.0.1:0", "EXTAPI_PROXY_ADDR": "127.0.0.1:0",
		})
		a, err := newApp(context.Background(), cfg, quietLog())
		if err != nil {
			t.Fatal(err)
		}
		if err := a.start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.shutdown(context.Background()) })
		f.apps[i], f.proxies[i], f.admins[i] = a, "http://"+a.proxyLn.Addr().String(), "http://"+a.adminLn.Addr().String()
	}
	return f
}

// admin calls the management API of instance i and decodes its JSON answer.
func (f *fleet) admin(i int, method, path string, body any, want int) map[string]any {
	f.t.Helper()
	return adminRequest(f.t, f.client, f.admins[i], f.token, method, path, body, want)
}

// get sends a proxied GET and reports the status, or -status when the provider's resource did
// not answer ok.
func (f *fleet) get(url string) int {
	res, err := f.client.Get(url)
	if err != nil {
		f.t.Error(err)
		return 0
	}
	defer res.Body.Close()
	var b struct {
		OK bool `json:"ok"`
	}
	if err := json.NewDecoder(res.Body).Decode(&b); err != nil || !b.OK {
		return -res.StatusCode
	}
	return res.StatusCode
}

// expiredConn creates, in the store, a connection of the API holding a fresh grant from the
// provider whose access token expired a second ago. It is new, so no proxy has it cached.
func (f *fleet) expiredConn(apiID string) string {
	f.t.Helper()
	a := f.apps[0]
	access, refresh := f.provider.Issue("read")
	past := time.Now().UTC().Add(-time.Second).Truncate(time.Microsecond)
	c := &store.Connection{ID: store.NewID(store.PrefixConnection), ExternalAPIID: apiID, ConnectionName: "main",
		Status: store.ConnActive, Credentials: store.Credentials{TokenType: "Bearer", ExpiresAt: &past}}
	for _, v := range []struct {
		field, plain string
		dst          *store.Sealed
	}{{"credentials.access_token", access, &c.Credentials.AccessToken}, {"credentials.refresh_token", refresh, &c.Credentials.RefreshToken}} {
		b, err := a.keyring.Seal([]byte(v.plain), c.AAD(v.field))
		if err != nil {
			f.t.Fatal(err)
		}
		*v.dst = b
	}
	if err := a.store.CreateConnection(context.Background(), c); err != nil {
		f.t.Fatal(err)
	}
	return c.ID
}

// expire sets a connection's expires_at to a second ago, as if its token had just run out.
func (f *fleet) expire(id string) {
	f.t.Helper()
	s := f.apps[0].store
	ctx := context.Background()
	err := s.Tx(ctx, func(tx *store.Store) error {
		c, err := tx.GetConnectionForUpdate(ctx, id)
		if err != nil {
			return err
		}
		past := time.Now().UTC().Add(-time.Second).Truncate(time.Microsecond)
		c.Credentials.ExpiresAt = &past
		if err := tx.UpdateConnection(ctx, c); err != nil {
			return err
		}
		return tx.PublishChange(ctx, store.Change{Kind: store.ChangeConnection, ID: id})
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

// TestFleetOAuth2 is the issue's done-when on the real binary's wiring: an account connected
// through one instance's authorize route and the other's callback, then twenty times in a row
// 200 concurrent requests split over both proxies on a connection whose token has just
// expired. The provider rotates refresh tokens and revokes the whole grant if one is presented
// twice, so more than one refresh per round would break the connection; every request must
// succeed and the connection must keep working (a 401 refreshes it again).
func TestFleetOAuth2(t *testing.T) {
	f := newFleet(t)
	f.provider.SetDelay(20 * time.Millisecond)
	api := f.admin(0, "POST", "/admin/external-apis", map[string]any{
		"name": "Acme", "slug": "acme", "category": "crm", "provider": "acme",
		"api_config": map[string]any{"base_url": f.provider.URL, "auth_type": "oauth2", "oauth2": map[string]any{
			"client_id": f.provider.ClientID(), "client_secret": f.provider.ClientSecret(),
			"authorization_url": f.provider.AuthURL, "token_url": f.provider.TokenURL, "scopes": []string{"read"},
		}},
	}, http.StatusCreated)["external_api"].(map[string]any)["id"].(string)

	// Connect: authorize on instance 0, the provider sends the user to instance 0's callback
	// URL, which instance 1 answers (any instance can finish the flow: the state is in the
	// database).
	authURL := f.admin(0, "GET", "/admin/external-apis/"+api+"/oauth/authorize?format=json&connection_name=main",
		nil, http.StatusOK)["authorization_url"].(string)
	browser := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := browser.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	back, err := url.Parse(res.Header.Get("Location"))
	if err != nil || back.Query().Get("code") == "" {
		t.Fatalf("provider redirect = %q; want a code", res.Header.Get("Location"))
	}
	res, err = http.Get(f.admins[1] + back.Path + "?" + back.RawQuery)
	if err != nil {
		t.Fatal(err)
	}
	var created struct {
		Connection struct {
			ID string `json:"id"`
		} `json:"connection"`
	}
	_ = json.NewDecoder(res.Body).Decode(&created)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated || created.Connection.ID == "" {
		t.Fatalf("callback on the other instance = %d; want 201 with the connection", res.StatusCode)
	}
	conn := created.Connection.ID
	resource := func(i int, id string) string { return f.proxies[i] + "/acme/" + id + "/resource" }

	// Each round uses a connection no proxy has cached yet (the first, the one just connected,
	// with its expiry moved into the past), so both instances start from the expired row.
	f.expire(conn)
	for run := range 20 {
		id := conn
		if run > 0 {
			id = f.expiredConn(api)
		}
		f.provider.ResetHits()
		statuses := make([]int, 200)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range statuses {
			wg.Go(func() {
				<-start
				statuses[i] = f.get(resource(i%2, id))
			})
		}
		close(start)
		wg.Wait()
		if n := f.provider.Hits("refresh_token"); n != 1 {
			t.Fatalf("run %d: token endpoint saw %d refreshes; want exactly 1", run, n)
		}
		for i, s := range statuses {
			if s != http.StatusOK {
				t.Fatalf("run %d: request %d = %d; want 200", run, i, s)
			}
		}
	}
	// Still usable: the provider stops accepting the current token; the next request gets a
	// 401 upstream, refreshes once and is sent again.
	f.provider.ExpireAccessTokens()
	f.provider.ResetHits()
	if s := f.get(resource(1, conn)); s != http.StatusOK || f.provider.Hits("refresh_token") != 1 {
		t.Fatalf("request after the runs = %d with %d refreshes; want 200 after one refresh on the 401", s, f.provider.Hits("refresh_token"))
	}
	if s := f.get(resource(0, conn)); s != http.StatusOK || f.provider.Hits("refresh_token") != 1 {
		t.Fatalf("request on the other instance = %d with %d refreshes; want 200, no further refresh", s, f.provider.Hits("refresh_token"))
	}
	// And an operator can force a refresh through either instance.
	out := f.admin(1, "POST", "/admin/connections/"+conn+"/refresh", nil, http.StatusOK)
	if st := out["connection"].(map[string]any)["status"]; st != "active" || f.provider.Hits("refresh_token") != 2 {
		t.Errorf("forced refresh = %v with %d refreshes; want active after 2", st, f.provider.Hits("refresh_token"))
	}
	if s := f.get(resource(0, conn)); s != http.StatusOK {
		t.Errorf("request after the forced refresh = %d; want 200", s)
	}
}
