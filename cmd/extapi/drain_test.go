package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// TestShutdownDelayDrains: after the signal, /readyz answers 503 "draining" while both
// listeners keep serving for EXTAPI_SHUTDOWN_DELAY; a second signal (hurry) ends the delay
// and the graceful shutdown follows.
func TestShutdownDelayDrains(t *testing.T) {
	dir := t.TempDir()
	adminAddr, proxyAddr := freeAddr(t), freeAddr(t)
	cfg := loadCfg(t, map[string]string{
		"EXTAPI_DATABASE_URL":   "sqlite:" + filepath.Join(dir, "x.db"),
		"EXTAPI_DEV_DIR":        filepath.Join(dir, "dev"),
		"EXTAPI_ADMIN_ADDR":     adminAddr,
		"EXTAPI_PROXY_ADDR":     proxyAddr,
		"EXTAPI_SHUTDOWN_DELAY": "5m", // far longer than the test: only hurry can end it
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hurry := make(chan struct{})
	done := make(chan int, 1)
	go func() { done <- serveWith(ctx, hurry, cfg, quietLog(), nil, env{io.Discard, io.Discard, nil}) }()

	readyz := func() (int, string, error) {
		resp, err := http.Get("http://" + adminAddr + "/readyz")
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		var body struct{ Status string }
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			return 0, "", err
		}
		return resp.StatusCode, body.Status, nil
	}
	// waitReadyz polls (for a condition, not a fixed wait) until /readyz answers status code.
	waitReadyz := func(code int, status string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			c, s, err := readyz()
			if err == nil && c == code && s == status {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("/readyz = %d %q, %v; want %d %q", c, s, err, code, status)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	proxyServes := func() bool {
		resp, err := http.Get("http://" + proxyAddr + "/no-such-api/conn_x/v1")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.Header.Get("X-Extapi-Error") != "" // extapi answered, not something else
	}

	waitReadyz(http.StatusOK, "ok")
	cancel() // the first signal
	waitReadyz(http.StatusServiceUnavailable, "draining")
	if !proxyServes() {
		t.Error("the proxy listener stopped serving during the drain delay")
	}
	select {
	case code := <-done:
		t.Fatalf("serve() = %d during the drain delay; want it to keep serving", code)
	default:
	}

	close(hurry) // the second signal
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("serve() = %d; want 0", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve() did not return after the drain delay was ended")
	}
	if proxyServes() {
		t.Error("the proxy listener still serves after the shutdown")
	}
}
