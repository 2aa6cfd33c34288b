package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/extapi/extapi/store"
)

// lockedBuffer is a process's output, read while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// buildBinary builds this command (without -race) into dir.
func buildBinary(t *testing.T, dir string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(dir, "extapi")
	cmd := exec.Command(goBin, "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// call sends one request and returns its status and body.
func call(t *testing.T, c *http.Client, method, url, token string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

// TestGracefulShutdown runs the real binary on SQLite, starts a burst of requests that the
// upstream holds, and sends SIGTERM while they are in flight: the proxy stops accepting (a new
// connection is refused) yet every request in flight gets the upstream's 200 and its whole body,
// last_used_at is written, and the process exits 0. It also checks /metrics on the admin
// listener (token required, the requests in flight counted).
func TestGracefulShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := buildBinary(t, dir)

	const burst = 16
	payload := bytes.Repeat([]byte("0123456789abcdef"), 16<<10) // 256 KiB: streams after the handler
	release := make(chan struct{})
	arrived := make(chan struct{}, burst)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Api-Key") != "shutdown-test-key" {
			http.Error(w, "no key", http.StatusUnauthorized)
			return
		}
		arrived <- struct{}{}
		select { // a slow upstream, held until the test has sent SIGTERM
		case <-release:
		case <-time.After(30 * time.Second):
		}
		w.Write(payload)
	}))
	defer up.Close()
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()

	admin, proxyAddr := freeAddr(t), freeAddr(t)
	const token, metricsToken = "shutdown-admin-token-0123456789", "shutdown-metrics-token"
	cmd := exec.Command(bin, "serve")
	cmd.Env = []string{
		"EXTAPI_DATABASE_URL=sqlite:" + filepath.Join(dir, "extapi.db"), "EXTAPI_DEV_DIR=" + filepath.Join(dir, "dev"),
		"EXTAPI_ADMIN_ADDR=" + admin, "EXTAPI_PROXY_ADDR=" + proxyAddr, "EXTAPI_ADMIN_TOKEN=" + token,
		"EXTAPI_METRICS_TOKEN=" + metricsToken, "EXTAPI_SHUTDOWN_TIMEOUT=20s", "PATH=" + os.Getenv("PATH"),
	}
	var logs lockedBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
	}()

	client := &http.Client{Timeout: 30 * time.Second}
	for deadline := time.Now().Add(30 * time.Second); ; {
		if res, err := client.Get("http://" + admin + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("extapi did not become ready:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond) // polling for readiness
	}
	st, b := call(t, client, "POST", "http://"+admin+"/admin/external-apis", token, map[string]any{
		"name": "Slow", "slug": "slow", "category": "other", "provider": "slow", "environment": "development",
		"api_config": map[string]any{"base_url": up.URL, "auth_type": "api_key",
			"api_key": map[string]any{"key": "shutdown-test-key", "header_name": "X-Api-Key"}},
	})
	if st != 201 {
		t.Fatalf("create API = %d %s", st, b)
	}
	var api struct {
		ExternalAPI struct{ ID string } `json:"external_api"`
	}
	json.Unmarshal(b, &api)
	st, b = call(t, client, "POST", "http://"+admin+"/admin/external-apis/"+api.ExternalAPI.ID+"/connections", token,
		map[string]any{"connection_name": "main"})
	if st != 201 {
		t.Fatalf("create connection = %d %s", st, b)
	}
	var conn struct {
		Connection struct{ ID string } `json:"connection"`
	}
	json.Unmarshal(b, &conn)

	type outcome struct {
		status int
		body   []byte
		err    error
	}
	results := make(chan outcome, burst)
	for range burst {
		go func() {
			res, err := client.Get("http://" + proxyAddr + "/slow/" + conn.Connection.ID + "/data")
			if err != nil {
				results <- outcome{err: err}
				return
			}
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			results <- outcome{status: res.StatusCode, body: body, err: err}
		}()
	}
	for range burst {
		select {
		case <-arrived:
		case <-time.After(20 * time.Second):
			t.Fatalf("the burst did not reach the upstream:\n%s", logs.String())
		}
	}

	// /metrics is on the admin listener, behind its token, and counts the requests in flight.
	if st, _ := call(t, client, "GET", "http://"+admin+"/metrics", "", nil); st != http.StatusUnauthorized {
		t.Errorf("/metrics without the token = %d; want 401", st)
	}
	st, b = call(t, client, "GET", "http://"+admin+"/metrics", metricsToken, nil)
	for _, want := range []string{"extapi_inflight_requests 16", "extapi_build_info{", "go_goroutines "} {
		if st != 200 || !strings.Contains(string(b), want) {
			t.Errorf("/metrics = %d without %q:\n%.2000s", st, want, b)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// New connections are refused once the listener is closed, while the burst is still held.
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", proxyAddr, time.Second)
		if err != nil { // refused, or reset from the closing listener's backlog
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the proxy listener still accepts connections 10s after SIGTERM")
		}
		time.Sleep(10 * time.Millisecond) // polling a condition
	}
	select {
	case err := <-exited:
		t.Fatalf("extapi exited (%v) before the requests in flight were answered:\n%s", err, logs.String())
	default:
	}
	close(release)
	for range burst {
		o := <-results
		if o.err != nil || o.status != 200 || !bytes.Equal(o.body, payload) {
			t.Errorf("request in flight at SIGTERM = %d, %d bytes, %v; want 200 with the whole %d-byte body",
				o.status, len(o.body), o.err, len(payload))
		}
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit = %v; want 0\n%s", err, logs.String())
		}
	case <-time.After(25 * time.Second):
		t.Fatalf("extapi did not exit after the requests finished:\n%s", logs.String())
	}
	// Every request's access line (buffered) is out before the stop: the 16 held through
	// SIGTERM and the ones before.
	out := logs.String()
	stopped := strings.Index(out, `"msg":"stopped"`)
	if stopped < 0 || strings.LastIndex(out, `"msg":"proxy: request"`) > stopped {
		t.Errorf("log lacks the stop, or has access lines after it:\n%s", out)
	}
	if n := strings.Count(out, `"msg":"proxy: request"`); n < burst {
		t.Errorf("%d access lines; want at least the %d requests held through SIGTERM:\n%s", n, burst, out)
	}

	// last_used_at was written at shutdown (the batch interval had not come round).
	s, err := store.Open(context.Background(), "sqlite:"+filepath.Join(dir, "extapi.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := s.GetConnection(context.Background(), conn.Connection.ID, store.Tenant{})
	if err != nil || c.LastUsedAt == nil {
		t.Errorf("connection after shutdown = %+v, %v; want last_used_at set", c, err)
	}
}

// TestMetricsWiring: the in-process app serves /metrics on the admin listener next to the admin
// API, and extapi_connections follows the store.
func TestMetricsWiring(t *testing.T) {
	cfg := loadCfg(t, map[string]string{"EXTAPI_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "m.db"),
		"EXTAPI_ADMIN_ADDR": "127.0.0.1:0", "EXTAPI_PROXY_ADDR": "127.0.0.1:0", "EXTAPI_ADMIN_TOKEN": "metrics-wiring-token-0123456789",
		"EXTAPI_DEV_DIR": t.TempDir()})
	a, err := newApp(context.Background(), cfg, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.start(); err != nil {
		t.Fatal(err)
	}
	defer a.shutdown(context.Background())
	ctx := context.Background()
	api := &store.ExternalAPI{Name: "W", Slug: "wired", Category: "other", Provider: "w", Status: store.APIActive,
		Environment: "production", APIConfig: store.APIConfig{BaseURL: "https://example.test", AuthType: store.AuthBearer}}
	if err := a.store.CreateAPI(ctx, api); err != nil {
		t.Fatal(err)
	}
	for _, st := range []string{store.ConnActive, store.ConnActive, store.ConnExpired} {
		if err := a.store.CreateConnection(ctx, &store.Connection{ExternalAPIID: api.ID, ConnectionName: "c", Status: st}); err != nil {
			t.Fatal(err)
		}
	}
	a.countConnections(ctx, a.metrics.m) // what the loop does every connectionsInterval
	base := "http://" + a.adminLn.Addr().String()
	st, b := call(t, http.DefaultClient, "GET", base+"/metrics", "", nil)
	for _, want := range []string{`extapi_connections{api="wired",status="active"} 2`, `extapi_connections{api="wired",status="expired"} 1`,
		"extapi_build_info{", "extapi_inflight_requests 0"} {
		if st != 200 || !strings.Contains(string(b), want) {
			t.Errorf("/metrics = %d without %q", st, want)
		}
	}
	if st, _ := call(t, http.DefaultClient, "GET", base+"/healthz", "", nil); st != 200 {
		t.Errorf("/healthz behind the metrics mux = %d; want 200", st)
	}
}
