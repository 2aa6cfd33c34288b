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
// key changed through instance A's management API is used by instance B's proxy within 1s.
func TestKeyChangeReachesEveryInstance(t *testing.T) {
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
		if got := viaB(); got == "key-2" {
			break
		}
		if time.Since(changed) > 5*time.Second {
			t.Fatal("B never used the changed key")
		}
		time.Sleep(10 * time.Millisecond) // polling for a condition, not a fixed wait
	}
	if d := time.Since(changed); d > time.Second {
		t.Errorf("B used the changed key after %v; want within 1s", d)
	}
}
