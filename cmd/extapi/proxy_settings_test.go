package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestProxySettings: EXTAPI_MAX_REQUEST_BODY and EXTAPI_UPSTREAM_TIMEOUT reach the proxy of the
// running app.
func TestProxySettings(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/slow" {
			<-release // answers only once the test ends: the timeout must end the exchange
		}
		w.Write([]byte(strings.Repeat("x", int(n))))
	}))
	defer up.Close()
	defer close(release)
	const adminToken = "settings-test-admin-token-0123"
	a := startApp(t, sqliteAppVars(t, adminToken, map[string]string{
		"EXTAPI_MAX_REQUEST_BODY": "1KiB",
		"EXTAPI_UPSTREAM_TIMEOUT": "300ms",
	}), nil)
	_, connID := createKeyedAPI(t, a, adminToken, "s", up.URL, "k")
	base := "http://" + a.proxyLn.Addr().String() + "/s/" + connID

	post := func(path string, n int) (int, string) {
		t.Helper()
		resp, err := http.Post(base+path, "application/octet-stream", bytes.NewReader(bytes.Repeat([]byte("b"), n)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.Header.Get("X-Extapi-Error")
	}
	if code, e := post("/echo", 1024); code != http.StatusOK {
		t.Errorf("a 1 KiB body = %d %s; want 200 (the limit is inclusive)", code, e)
	}
	if code, e := post("/echo", 1025); code != http.StatusRequestEntityTooLarge || e != "request_too_large" {
		t.Errorf("a body of 1 KiB + 1 = %d %q; want 413 request_too_large", code, e)
	}
	start := time.Now()
	if code, e := post("/slow", 10); code != http.StatusGatewayTimeout || e != "upstream_timeout" {
		t.Errorf("an upstream slower than EXTAPI_UPSTREAM_TIMEOUT = %d %q; want 504 upstream_timeout", code, e)
	}
	// 300ms, not the 30s default: a generous bound that still tells the two apart.
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the 504 came after %v; want about 300ms (EXTAPI_UPSTREAM_TIMEOUT)", d)
	}
}

// TestWebhookMaxBody: EXTAPI_WEBHOOK_MAX_BODY bounds inbound webhook bodies of the running app.
func TestWebhookMaxBody(t *testing.T) {
	const adminToken = "webhook-size-admin-token-0123"
	hookAddr := freeAddr(t)
	a := startApp(t, sqliteAppVars(t, adminToken, map[string]string{
		"EXTAPI_WEBHOOK_ADDR":     hookAddr,
		"EXTAPI_WEBHOOK_MAX_BODY": "1KiB",
	}), nil)
	created := adminCall(t, a, adminToken, "POST", "/admin/external-apis", map[string]any{
		"name": "hooks", "slug": "hooks", "category": "other", "provider": "hooks",
		"api_config": map[string]any{"base_url": "https://api.hooks.example", "auth_type": "api_key",
			"api_key": map[string]any{"key": "k"},
			"webhook": map[string]any{"url": "https://extapi.example/webhooks/hooks", "scheme": "hmac-sha256", "secret": "whsec-0123456789abcdef",
				"forward_url": "http://127.0.0.1:9/hooks", "forward_secret": "fwd-0123456789abcdef"}},
	}, http.StatusCreated)
	url := "http://" + hookAddr + "/webhooks/hooks/" + created["external_api"].(map[string]any)["id"].(string)
	post := func(n int) int {
		t.Helper()
		resp, err := http.Post(url, "application/json", bytes.NewReader(bytes.Repeat([]byte("a"), n)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(1025); code != http.StatusRequestEntityTooLarge {
		t.Errorf("a webhook body of 1 KiB + 1 = %d; want 413", code)
	}
	if code := post(1024); code != http.StatusUnauthorized { // within the limit: checked, unsigned
		t.Errorf("an unsigned webhook body of 1 KiB = %d; want 401 (the size passes, the signature does not)", code)
	}
}
