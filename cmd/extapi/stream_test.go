package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/extapi/extapi/store"
	"github.com/extapi/extapi/store/storetest"
	"github.com/extapi/extapi/vault"
)

const (
	streamSize = 1 << 30  // moved each way
	maxRSS     = 64 << 20 // the bound on the proxy process
)

// pattern reads as an endless repetition of chunk, without allocating.
type pattern struct{}

var chunk = []byte(strings.Repeat("extapi-stream-0123456789abcdef\n", 1024))

func (pattern) Read(p []byte) (int, error) { return copy(p, chunk), nil }

// TestStreamingKeepsMemoryBounded builds the extapi binary (without -race), runs it against a
// real upstream on loopback, pushes 1 GiB up and pulls 1 GiB down through it, and checks the
// process's peak resident memory.
func TestStreamingKeepsMemoryBounded(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "extapi")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	t0 := time.Now()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("build took %v", time.Since(t0))

	// The upstream: counts what it is sent, and sends 1 GiB chunked.
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/upload":
			n, err := io.Copy(io.Discard, r.Body)
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			fmt.Fprint(w, n)
		case "/v1/download":
			io.Copy(w, io.LimitReader(pattern{}, streamSize))
		default:
			http.NotFound(w, r)
		}
	}))
	defer up.Close()

	// The database and the dev-mode key the binary will use; rows sealed with that key.
	key, err := vault.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	devDir := filepath.Join(dir, "dev")
	if err := os.MkdirAll(devDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(devDir, "encryption.key"), []byte("1:"+base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dbURL := "sqlite:" + filepath.Join(dir, "extapi.db")
	s := storetest.Open(t, dbURL)
	kr, err := vault.New(map[uint32][]byte{1: key}, 1)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	api := &store.ExternalAPI{ID: store.NewID(store.PrefixAPI), Name: "Bulk", Slug: "bulk", Category: "storage",
		Provider: "bulk", Status: store.APIActive, Environment: "production",
		APIConfig: store.APIConfig{BaseURL: up.URL + "/v1", AuthType: store.AuthBearer, TimeoutMS: 600_000}}
	if err := s.CreateAPI(ctx, api); err != nil {
		t.Fatal(err)
	}
	conn := &store.Connection{ID: store.NewID(store.PrefixConnection), ExternalAPIID: api.ID, ConnectionName: "c", Status: store.ConnActive}
	if conn.Credentials.AccessToken, err = kr.Seal([]byte("tok"), conn.AAD("credentials.access_token")); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateConnection(ctx, conn); err != nil {
		t.Fatal(err)
	}
	s.Close()

	proxyAddr := freeAddr(t)
	cmd := exec.Command(bin, "serve")
	cmd.Env = []string{
		"EXTAPI_DATABASE_URL=" + dbURL, "EXTAPI_DEV_DIR=" + devDir, "EXTAPI_PROXY_ADDR=" + proxyAddr,
		"EXTAPI_ADMIN_ADDR=" + freeAddr(t), "EXTAPI_LOG_LEVEL=warn", "HOME=" + dir,
	}
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		if t.Failed() {
			t.Logf("extapi logs:\n%s", logs.String())
		}
	}()
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) { // polling for the listener
		c, err := net.Dial("tcp", proxyAddr)
		if err == nil {
			c.Close()
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("the proxy listener never came up: %v", err)
		}
	}
	base := "http://" + proxyAddr + "/bulk/" + conn.ID
	t0 = time.Now()

	req, err := http.NewRequest("POST", base+"/upload", io.LimitReader(pattern{}, streamSize))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = streamSize
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(got) != strconv.Itoa(streamSize) {
		t.Fatalf("upload = %d %q; want 200 and the upstream counting %d bytes", resp.StatusCode, got, streamSize)
	}

	t.Logf("upload took %v", time.Since(t0))
	t0 = time.Now()
	resp, err = http.Get(base + "/download")
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != streamSize {
		t.Fatalf("download = %d bytes, %v; want %d", n, err, streamSize)
	}

	t.Logf("download took %v", time.Since(t0))
	hwm := peakRSS(t, cmd.Process.Pid)
	t.Logf("peak RSS of the proxy after 1 GiB up and 1 GiB down: %.1f MiB", float64(hwm)/(1<<20))
	if hwm >= maxRSS {
		t.Errorf("peak RSS = %d MiB; want under %d MiB", hwm>>20, maxRSS>>20)
	}
}

// peakRSS reads VmHWM, the process's peak resident set, from /proc.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/<pid>/status")
	return 0
}
