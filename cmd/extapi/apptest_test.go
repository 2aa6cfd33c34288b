package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"path/filepath"
	"testing"
)

// startApp runs an app in the test process, as serve does, until the test ends.
func startApp(t *testing.T, vars map[string]string, tweak func(a *app)) *app {
	t.Helper()
	a, err := newApp(context.Background(), loadCfg(t, vars), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if tweak != nil {
		tweak(a)
	}
	if err := a.start(); err != nil {
		a.shutdown(context.Background())
		t.Fatal(err)
	}
	t.Cleanup(func() { a.shutdown(context.Background()) })
	return a
}

// sqliteAppVars is the configuration of an in-process app on a fresh SQLite file with
// encryption keys, admin token, and listeners on free ports; extra adds or replaces settings.
func sqliteAppVars(t *testing.T, adminToken string, extra map[string]string) map[string]string {
	t.Helper()
	vars := map[string]string{
		"EXTAPI_DATABASE_URL":    "sqlite:" + filepath.Join(t.TempDir(), "x.db"),
		"EXTAPI_ENCRYPTION_KEYS": "1:" + key(t),
		"EXTAPI_ADMIN_TOKEN":     adminToken,
		"EXTAPI_ADMIN_ADDR":      "127.0.0.1:0",
		"EXTAPI_PROXY_ADDR":      "127.0.0.1:0",
	}
	maps.Copy(vars, extra)
	return vars
}

// adminCall sends a JSON request to a's management API with token and fails the test unless the
// answer has status want; it returns the decoded body.
func adminCall(t *testing.T, a *app, token, method, path string, body any, want int) map[string]any {
	t.Helper()
	return adminRequest(t, http.DefaultClient, "http://"+a.adminLn.Addr().String(), token, method, path, body, want)
}

// adminRequest calls the management API at base (scheme and host) through client with token,
// fails t unless the status is want, and decodes the JSON answer.
func adminRequest(t *testing.T, client *http.Client, base, token, method, path string, body any, want int) map[string]any {
	t.Helper()
	var rd io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, base+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s = %d %s; want %d", method, path, resp.StatusCode, raw, want)
	}
	var out map[string]any
	json.Unmarshal(raw, &out)
	return out
}

// createKeyedAPI creates an api_key API of slug on base and one connection of it, through a's
// management API, and returns their ids.
func createKeyedAPI(t *testing.T, a *app, token, slug, base, key string) (apiID, connID string) {
	t.Helper()
	created := adminCall(t, a, token, "POST", "/admin/external-apis", map[string]any{
		"name": slug, "slug": slug, "category": "other", "provider": slug,
		"api_config": map[string]any{"base_url": base, "auth_type": "api_key", "api_key": map[string]any{"key": key}},
	}, http.StatusCreated)
	apiID = created["external_api"].(map[string]any)["id"].(string)
	conn := adminCall(t, a, token, "POST", "/admin/external-apis/"+apiID+"/connections", map[string]any{"connection_name": "c"}, http.StatusCreated)
	return apiID, conn["connection"].(map[string]any)["id"].(string)
}
