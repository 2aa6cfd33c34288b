package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/extapi/extapi/config"
	"github.com/extapi/extapi/store"
	"github.com/extapi/extapi/store/storetest"
	"github.com/extapi/extapi/vault"
)

// testEnv runs the CLI with the given variables and nothing else from the environment.
func runCLI(t *testing.T, vars map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, env{&out, &errb, func(k string) (string, bool) { v, ok := vars[k]; return v, ok }})
	return code, out.String(), errb.String()
}

func key(t *testing.T) string {
	t.Helper()
	k, err := vault.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(k)
}

func TestUsageAndExitCodes(t *testing.T) {
	for _, tc := range []struct {
		desc string
		args []string
		code int
		want string
	}{
		{"no command", nil, exitUsage, "Commands:"},
		{"help", []string{"--help"}, exitOK, "keys rewrap"},
		{"unknown", []string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{"keys alone", []string{"keys"}, exitUsage, "want a subcommand: generate, rewrap"},
		{"tokens alone", []string{"tokens"}, exitUsage, "want a subcommand: create, list, revoke"},
		{"serve help", []string{"serve", "--help"}, exitOK, "EXTAPI_DATABASE_URL"},
		{"migrate help", []string{"migrate", "-h"}, exitOK, "advisory lock"},
		{"rewrap help", []string{"keys", "rewrap", "--help"}, exitOK, "resumable"},
		{"bad flag", []string{"serve", "--nope"}, exitUsage, "flag provided but not defined"},
		{"stray argument", []string{"version", "extra"}, exitUsage, `unexpected argument "extra"`},
		{"version", []string{"version"}, exitOK, "extapi dev"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			code, out, errs := runCLI(t, nil, tc.args...)
			if code != tc.code {
				t.Errorf("exit = %d; want %d (stderr %q)", code, tc.code, errs)
			}
			if !strings.Contains(out+errs, tc.want) {
				t.Errorf("output %q; want it to contain %q", out+errs, tc.want)
			}
		})
	}
}

func TestBadConfigurationAllAtOnce(t *testing.T) {
	vars := map[string]string{
		"EXTAPI_DATABASE_URL":    "mysql://db/x",
		"EXTAPI_ENCRYPTION_KEYS": "1:" + key(t) + ",1:" + key(t) + ",2:c2hvcnQ=,3",
		"EXTAPI_LOG_FORMAT":      "xml",
	}
	for _, args := range [][]string{{"serve"}, {"migrate"}, {"keys", "rewrap"}} {
		code, _, errs := runCLI(t, vars, args...)
		if code != exitConfig {
			t.Errorf("%v: exit = %d; want %d", args, code, exitConfig)
		}
		for _, want := range []string{
			`EXTAPI_DATABASE_URL: unknown scheme "mysql"`,
			"EXTAPI_ENCRYPTION_KEYS: version 1 listed twice",
			"32 bytes",
			"EXTAPI_ENCRYPTION_KEYS: item 4",
			"EXTAPI_LOG_FORMAT",
		} {
			if !strings.Contains(errs, want) {
				t.Errorf("%v: stderr lacks %q:\n%s", args, want, errs)
			}
		}
		if strings.Contains(errs, vars["EXTAPI_ENCRYPTION_KEYS"][2:20]) {
			t.Errorf("%v: stderr shows key material", args)
		}
	}
}

func TestPostgresWithoutKeysRefusesToStart(t *testing.T) {
	code, _, errs := runCLI(t, map[string]string{"EXTAPI_DATABASE_URL": storetest.PostgresBaseURL()}, "serve")
	if code != exitConfig {
		t.Errorf("exit = %d; want %d", code, exitConfig)
	}
	if !strings.Contains(errs, "EXTAPI_ENCRYPTION_KEYS") || !strings.Contains(errs, "extapi keys generate") {
		t.Errorf("stderr = %q; want it to say to set EXTAPI_ENCRYPTION_KEYS with extapi keys generate", errs)
	}
}

func TestKeysGenerate(t *testing.T) {
	code, out, _ := runCLI(t, nil, "keys", "generate")
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(out))
	if code != exitOK || err != nil || len(k) != 32 {
		t.Errorf("keys generate = %q (exit %d); want base64 of 32 bytes", out, code)
	}
	_, out2, _ := runCLI(t, nil, "keys", "generate")
	if out2 == out {
		t.Errorf("two generated keys are equal")
	}
	code, out, _ = runCLI(t, nil, "keys", "generate", "--version", "3")
	if v, k, _ := strings.Cut(strings.TrimSpace(out), ":"); code != exitOK || v != "3" || len(k) != 44 {
		t.Errorf("keys generate --version 3 = %q; want 3:<key>", out)
	}
}

func loadCfg(t *testing.T, vars map[string]string) *config.Config {
	t.Helper()
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	return cfg
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestDevModeServesHealth(t *testing.T) {
	dir := t.TempDir()
	cfg := loadCfg(t, map[string]string{
		"EXTAPI_DATABASE_URL": "sqlite:" + filepath.Join(dir, "x.db"),
		"EXTAPI_DEV_DIR":      filepath.Join(dir, "dev"),
		"EXTAPI_ADMIN_ADDR":   "127.0.0.1:0",
		"EXTAPI_PROXY_ADDR":   "127.0.0.1:0",
	})
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	a, err := newApp(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.start(); err != nil {
		t.Fatal(err)
	}
	defer a.shutdown(context.Background())
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + a.adminLn.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s = %d; want 200", path, resp.StatusCode)
		}
	}
	for _, f := range []string{"encryption.key", "admin.token"} {
		st, err := os.Stat(filepath.Join(dir, "dev", f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("dev file %s: %v, mode %v; want mode 0600", f, err, st.Mode().Perm())
		}
	}
	tok, _ := os.ReadFile(filepath.Join(dir, "dev", "admin.token"))
	if !strings.Contains(logs.String(), "DEVELOPMENT MODE") {
		t.Errorf("logs carry no development-mode warning")
	}
	if strings.Contains(logs.String(), strings.TrimSpace(string(tok))) {
		t.Errorf("the generated admin token appears in the logs")
	}

	// A second start reuses the same key, so secrets sealed before still open.
	a.shutdown(context.Background())
	b, err := newApp(context.Background(), cfg, quietLog())
	if err != nil {
		t.Fatalf("restart in dev mode: %v", err)
	}
	defer b.shutdown(context.Background())
	if fa, _ := a.keyring.Fingerprint(1); func() string { fb, _ := b.keyring.Fingerprint(1); return fb }() != fa {
		t.Errorf("restart generated a new dev key; want the key file reused")
	}
}

func TestRewrapThenRetireOldKey(t *testing.T) {
	url := storetest.PostgresURL(t)
	k1, k2 := key(t), key(t)
	vars := func(keys string) map[string]string {
		return map[string]string{"EXTAPI_DATABASE_URL": url, "EXTAPI_ENCRYPTION_KEYS": keys}
	}
	ctx := context.Background()
	a, err := newApp(ctx, loadCfg(t, vars("1:"+k1)), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	api := &store.ExternalAPI{ID: store.NewID(store.PrefixAPI), Name: "S", Slug: "s", Category: "payment", Status: "active",
		Environment: "production", APIConfig: store.APIConfig{AuthType: "bearer", APIKey: &store.APIKeyConfig{}}}
	blob, err := a.keyring.Seal([]byte("sk_test_rewrap_me"), api.AAD("api_config.api_key.key"))
	if err != nil {
		t.Fatal(err)
	}
	api.APIConfig.APIKey.Key = blob
	if err := a.store.CreateAPI(ctx, api); err != nil {
		t.Fatal(err)
	}
	a.shutdown(ctx)

	code, out, errs := runCLI(t, vars("1:"+k1+",2:"+k2), "keys", "rewrap", "--batch", "10")
	if code != exitOK || !strings.Contains(out, "rewrapped 1") {
		t.Fatalf("keys rewrap = %d, %q, %q; want 1 rewrapped", code, out, errs)
	}
	code, out, _ = runCLI(t, vars("1:"+k1+",2:"+k2), "keys", "rewrap")
	if code != exitOK || !strings.Contains(out, "rewrapped 0") {
		t.Errorf("second keys rewrap = %d, %q; want 0 rewrapped", code, out)
	}

	b, err := newApp(ctx, loadCfg(t, vars("2:"+k2)), quietLog())
	if err != nil {
		t.Fatalf("start with only key 2: %v", err)
	}
	defer b.shutdown(ctx)
	got, err := b.store.GetAPI(ctx, api.ID, store.Tenant{})
	if err != nil {
		t.Fatal(err)
	}
	pt, err := b.keyring.Open(got.APIConfig.APIKey.Key, got.AAD("api_config.api_key.key"))
	if err != nil || string(pt) != "sk_test_rewrap_me" {
		t.Errorf("Open with only key 2 = %v; want the secret", err)
	}

	// A different key under a version the database knows is refused at start-up.
	_, err = newApp(ctx, loadCfg(t, vars("2:"+key(t))), quietLog())
	if !errors.Is(err, errConfig) || !errors.Is(err, vault.ErrWrongKey) {
		t.Errorf("start with a wrong key 2 = %v; want ErrWrongKey as a configuration error", err)
	}
}

// freeAddr returns a free 127.0.0.1:PORT for a listener opened later by something else (a child
// process, serve, a redis-server), or opened again after a restart: a port picked then left
// unbound. A port from listening on :0 would be in the kernel's ephemeral range, which any
// other :0 listener or outgoing connection on the machine may be given meanwhile; so the port
// is taken from outside that range (fixedPortRange), at random, and bound once to check that
// it is free at the moment. A process never hands out the same port twice.
func freeAddr(t *testing.T) string {
	t.Helper()
	lo, hi, ok := fixedPortRange()
	if !ok {
		// The ephemeral range covers every usable port: the old way, racy as it is.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		t.Logf("no ports outside the ephemeral range; using %s, which another process may take", ln.Addr())
		return ln.Addr().String()
	}
	var lastErr error
	for range 200 {
		port := lo + rand.IntN(hi-lo)
		if _, dup := handedOut.LoadOrStore(port, true); dup {
			continue
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		ln, err := net.Listen("tcp", addr)
		if err != nil { // in use by someone else
			lastErr = err
			continue
		}
		ln.Close()
		return addr
	}
	t.Fatalf("no free port in %d..%d: %v", lo, hi-1, lastErr)
	return ""
}

// handedOut holds the ports freeAddr has returned in this process.
var handedOut sync.Map

// fixedPortRange is [lo, hi): ports the kernel never assigns on its own, below the low end of
// /proc/sys/net/ipv4/ip_local_port_range (from 20000, clear of common services' ports), or
// else above its high end. Without the file (not Linux) it assumes Linux's default 32768-60999,
// which also lies clear of the BSDs' and macOS's 49152-65535.
func fixedPortRange() (lo, hi int, ok bool) {
	const minSpan = 1000
	ephLo, ephHi := 32768, 60999
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			l, err1 := strconv.Atoi(f[0])
			h, err2 := strconv.Atoi(f[1])
			if err1 == nil && err2 == nil && l <= h {
				ephLo, ephHi = l, h
			}
		}
	}
	for _, r := range [][2]int{{20000, ephLo}, {1024, ephLo}, {ephHi + 1, 65536}} {
		if r[1]-r[0] >= minSpan {
			return r[0], r[1], true
		}
	}
	return 0, 0, false
}

func TestServeStopsOnSignalContext(t *testing.T) {
	dir := t.TempDir()
	adminAddr := freeAddr(t)
	cfg := loadCfg(t, map[string]string{
		"EXTAPI_DATABASE_URL": "sqlite:" + filepath.Join(dir, "x.db"),
		"EXTAPI_DEV_DIR":      filepath.Join(dir, "dev"),
		"EXTAPI_ADMIN_ADDR":   adminAddr,
		"EXTAPI_PROXY_ADDR":   "127.0.0.1:0",
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() { done <- serve(ctx, cfg, quietLog(), env{io.Discard, io.Discard, nil}) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + adminAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("admin listener never came up: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // polling for a condition, not a fixed wait
	}
	if code, out, _ := runCLI(t, nil, "health", "--addr", adminAddr); code != exitOK || !strings.Contains(out, "ok") {
		t.Errorf("extapi health = %d, %q; want 0, ok", code, out)
	}
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("serve() = %d after its context ended; want 0", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve() did not return after its context ended")
	}
	if code, _, _ := runCLI(t, nil, "health", "--addr", adminAddr); code != exitFail {
		t.Errorf("extapi health on a stopped server = %d; want %d", code, exitFail)
	}
}

// TestREADMEListsEverySetting keeps the configuration reference true.
func TestREADMEListsEverySetting(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range config.Vars() {
		if !strings.Contains(string(readme), "| `"+v.Name+"` |") {
			t.Errorf("README.md configuration table lacks %s", v.Name)
		}
	}
	lines := strings.SplitN(string(readme), "\n", 6)
	if !strings.Contains(lines[3], "go run ./cmd/extapi serve") || !strings.Contains(lines[4], "bash .ci/run") {
		t.Errorf("README.md must start with the run command and the test command")
	}
}
