package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/extapi/extapi/store/storetest"
)

// TestKeyChangeReachesEveryInstance runs two extapi instances on one PostgreSQL database. A
// key changed through instance A's management API is used by instance B's proxy within
// notifyBound: the change notification (NOTIFY) dropped B's cached route. B's cache TTL is a
// minute, so B cannot have read the key again on its own in that time.
func TestKeyChangeReachesEveryInstance(t *testing.T) {
	// notifyBound leaves a loaded machine (under -race) time for the NOTIFY, B's listener and
	// the polled request through B's proxy; cacheTTL is far longer than it.
	const notifyBound, cacheTTL = 5 * time.Second, time.Minute
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("X-Api-Key"))
	}))
	defer up.Close()
	const adminToken = "invalidation-test-admin-token"
	vars := map[string]string{
		"EXTAPI_DATABASE_URL":    storetest.PostgresURL(t),
		"EXTAPI_ENCRYPTION_KEYS": "1:" + key(t),
		"EXTAPI_ADMIN_TOKEN":     adminToken,
		"EXTAPI_ADMIN_ADDR":      "127.0.0.1:0",
		"EXTAPI_PROXY_ADDR":      "127.0.0.1:0",
		"EXTAPI_CACHE_TTL":       cacheTTL.String(),
	}
	var apps [2]*app
	for i := range apps {
		a, err := newApp(context.Background(), loadCfg(t, vars), quietLog())
		if err != nil {
			t.Fatal(err)
		}
		if err := a.start(); err != nil {
			t.Fatal(err)
		}
		defer a.shutdown(context.Background())
		apps[i] = a
	}
	a, b := apps[0], apps[1]

	admin := func(method, path string, body any, want int) map[string]any {
		t.Helper()
		j, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, "http://"+a.adminLn.Addr().String()+path, bytes.NewReader(j))
		req.Header.Set("Authorization", "Bearer "+adminToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		raw, _ := io.ReadAll(resp.Body)
		json.Unmarshal(raw, &out)
		if resp.StatusCode != want {
			t.Fatalf("%s %s = %d %s; want %d", method, path, resp.StatusCode, raw, want)
		}
		return out
	}
	created := admin("POST", "/admin/external-apis", map[string]any{
		"name": "Keyed", "slug": "keyed", "category": "other", "provider": "keyed",
		"api_config": map[string]any{"base_url": up.URL, "auth_type": "api_key", "api_key": map[string]any{"key": "key-1"}},
	}, http.StatusCreated)
	apiID := created["external_api"].(map[string]any)["id"].(string)
	conn := admin("POST", "/admin/external-apis/"+apiID+"/connections", map[string]any{"connection_name": "c"}, http.StatusCreated)
	connID := conn["connection"].(map[string]any)["id"].(string)

	viaB := func() string {
		resp, err := http.Get("http://" + b.proxyLn.Addr().String() + "/keyed/" + connID + "/x")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	if got := viaB(); got != "key-1" {
		t.Fatalf("B sent %q; want key-1", got)
	}

	admin("PATCH", "/admin/external-apis/"+apiID, map[string]any{"api_config": map[string]any{"api_key": map[string]any{"key": "key-2"}}}, http.StatusOK)
	changed := time.Now()
	for {
		got := viaB()
		if got == "key-2" {
			break
		}
		if got != "key-1" {
			t.Fatalf("B sent %q; want key-1, then key-2", got)
		}
		if d := time.Since(changed); d > notifyBound {
			t.Fatalf("B still used the old key %v after the change; want the new one within %v (cache TTL %v)", d, notifyBound, cacheTTL)
		}
		time.Sleep(10 * time.Millisecond) // polling for a condition, not a fixed wait
	}
	t.Logf("B used the changed key after %v", time.Since(changed))
}
