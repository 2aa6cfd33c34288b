//go:build linux

package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/extapi/extapi/ratelimit"
	"github.com/extapi/extapi/store"
	"github.com/extapi/extapi/store/storetest"
)

// errorLog is a slog.Handler that hands on the error code of every access-log line.
type errorLog chan string

func (l errorLog) Enabled(context.Context, slog.Level) bool { return true }
func (l errorLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l errorLog) WithGroup(string) slog.Handler            { return l }
func (l errorLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "proxy: request" {
		return nil
	}
	code := ""
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "error" {
			code = a.Value.String()
		}
		return true
	})
	l <- code
	return nil
}

// next is the error code of the next access-log line ("" for none), within 10 s.
func (l errorLog) next(t *testing.T) string {
	t.Helper()
	select {
	case c := <-l:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no access-log line within 10s")
		return ""
	}
}

// sendAndLeave writes a request on a new connection to addr and closes the connection without
// reading an answer.
func sendAndLeave(t *testing.T, addr, path string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: extapi\r\n\r\n", path); err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// waitCloseWait waits until the proxy's end of the connection from client has seen the
// client's FIN (the socket is in CLOSE_WAIT in /proc/net/tcp), so that a test knows the proxy
// can tell the caller is gone.
func waitCloseWait(t *testing.T, proxyAddr string, client net.Addr) {
	t.Helper()
	hexAddr := func(s string) string {
		ap, err := net.ResolveTCPAddr("tcp", s)
		if err != nil {
			t.Fatal(err)
		}
		ip := ap.IP.To4()
		return fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], ap.Port)
	}
	local, remote := hexAddr(proxyAddr), hexAddr(client.String())
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile("/proc/net/tcp")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) > 3 && f[1] == local && f[2] == remote && f[3] == "08" { // 08: CLOSE_WAIT
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the proxy's end of the connection never saw the caller's FIN")
		}
		time.Sleep(5 * time.Millisecond) // polling /proc for a socket state
	}
}

// A caller that closes its connection while its request waits for a rate-limit slot: the
// request is not sent when the slot comes.
func TestCallerGoneDuringRateLimitWait(t *testing.T) {
	log := make(errorLog, 4)
	t0 := time.Now()
	// The limiter's clock stands still: the second request waits exactly one interval (1 s)
	// however slowly the test runs. A caller cannot plausibly take a second from its write
	// to its close.
	e := sqliteEnv(t, Options{
		Limiter:        ratelimit.NewLocal(ratelimit.Options{Now: func() time.Time { return t0 }}),
		AccessLogEvery: 1, Log: slog.New(log),
	})
	up := newUpstream(t, nil)
	a := e.api("leaves", store.APIConfig{BaseURL: up.url, AuthType: store.AuthBearer,
		RateLimit: &store.RateLimit{RequestsPerSecond: 1, Burst: 1}}, nil)
	c := e.conn(a, func(c *store.Connection) { c.Credentials.AccessToken = e.sealConn(c, "credentials.access_token", "t") })
	path := "/leaves/" + c.ID + "/x"

	if r := do(t, "GET", "http://"+e.addr+path, nil, nil); r.Status != 200 {
		t.Fatalf("first request = %d; want 200 (it takes the slot)", r.Status)
	}
	if code := log.next(t); code != "" {
		t.Fatalf("first request logged error %q; want none", code)
	}
	sendAndLeave(t, e.addr, path)
	if code := log.next(t); code != CodeCallerGone {
		t.Errorf("the abandoned request logged error %q; want %s", code, CodeCallerGone)
	}
	if n := up.hits(); n != 1 {
		t.Errorf("upstream hits = %d; want 1: the abandoned request must not be sent", n)
	}
}

// A caller that closes its connection while its request waits to be retried: the retry is not
// sent.
func TestCallerGoneBeforeRetry(t *testing.T) {
	log := make(errorLog, 4)
	sleeping, left := make(chan struct{}), make(chan struct{})
	var once sync.Once
	e := newProxyEnvWith(t, storetest.Open(t, storetest.SQLiteURL(t)), newKeyring(t),
		Options{AccessLogEvery: 1, Log: slog.New(log)},
		func(h *Handler) {
			h.sleep = func(time.Duration) bool {
				once.Do(func() {
					close(sleeping)
					<-left // the caller has gone
				})
				return true
			}
		})
	up := newUpstream(t, func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(fasthttp.StatusServiceUnavailable) })
	a := e.api("retry-leaves", store.APIConfig{BaseURL: up.url, AuthType: store.AuthBearer,
		RetryConfig: &store.RetryConfig{MaxRetries: 3, BackoffMS: 10}}, nil)
	c := e.conn(a, func(c *store.Connection) { c.Credentials.AccessToken = e.sealConn(c, "credentials.access_token", "t") })

	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Fprintf(conn, "GET /retry-leaves/%s/x HTTP/1.1\r\nHost: extapi\r\n\r\n", c.ID); err != nil {
		t.Fatal(err)
	}
	<-sleeping // the upstream answered 503; the proxy waits before the retry
	client := conn.LocalAddr()
	conn.Close()
	waitCloseWait(t, e.addr, client)
	close(left)
	if code := log.next(t); code != CodeCallerGone {
		t.Errorf("the abandoned request logged error %q; want %s", code, CodeCallerGone)
	}
	if n := up.hits(); n != 1 {
		t.Errorf("upstream hits = %d; want 1: no retry for a caller that left", n)
	}
}
