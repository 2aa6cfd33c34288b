package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDeletedAPISeriesDropped: once an API is deleted through the management API, its series
// leave /metrics (after two passes of the stats loop), while another API's stay.
func TestDeletedAPISeriesDropped(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer up.Close()
	const adminToken = "prune-test-admin-token-0123"
	a, err := newApp(context.Background(), loadCfg(t, map[string]string{
		"EXTAPI_DATABASE_URL":    "sqlite:" + filepath.Join(t.TempDir(), "x.db"),
		"EXTAPI_ENCRYPTION_KEYS": "1:" + key(t),
		"EXTAPI_ADMIN_TOKEN":     adminToken,
		"EXTAPI_ADMIN_ADDR":      "127.0.0.1:0",
		"EXTAPI_PROXY_ADDR":      "127.0.0.1:0",
	}), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	a.statsInterval = 20 * time.Millisecond
	if err := a.start(); err != nil {
		t.Fatal(err)
	}
	defer a.shutdown(context.Background())
	adminURL := "http://" + a.adminLn.Addr().String()

	call := func(method, path string, body any, want int) map[string]any {
		t.Helper()
		j, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, adminURL+path, bytes.NewReader(j))
		req.Header.Set("Authorization", "Bearer "+adminToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
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
	apiIDs := map[string]string{}
	for _, slug := range []string{"doomed", "staying"} {
		created := call("POST", "/admin/external-apis", map[string]any{
			"name": slug, "slug": slug, "category": "other", "provider": slug,
			"api_config": map[string]any{"base_url": up.URL, "auth_type": "api_key", "api_key": map[string]any{"key": "k"}},
		}, http.StatusCreated)
		id := created["external_api"].(map[string]any)["id"].(string)
		conn := call("POST", "/admin/external-apis/"+id+"/connections", map[string]any{"connection_name": "c"}, http.StatusCreated)
		resp, err := http.Get("http://" + a.proxyLn.Addr().String() + "/" + slug + "/" + conn["connection"].(map[string]any)["id"].(string) + "/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("proxied request to %s = %d; want 200", slug, resp.StatusCode)
		}
		apiIDs[slug] = id
	}
	scrape := func() string {
		t.Helper()
		resp, err := http.Get(adminURL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	const doomed, staying = `extapi_requests_total{api="doomed"`, `extapi_requests_total{api="staying"`
	if m := scrape(); !strings.Contains(m, doomed) || !strings.Contains(m, staying) {
		t.Fatalf("/metrics lacks the requests of both APIs before the delete")
	}
	call("DELETE", "/admin/external-apis/"+apiIDs["doomed"], nil, http.StatusNoContent)
	deadline := time.Now().Add(20 * time.Second)
	for strings.Contains(scrape(), doomed) {
		if time.Now().After(deadline) {
			t.Fatal("the deleted API's series are still on /metrics after 20s")
		}
		time.Sleep(20 * time.Millisecond) // polling for a condition
	}
	if !strings.Contains(scrape(), staying) {
		t.Error("the series of an API that was not deleted were dropped too")
	}
}
