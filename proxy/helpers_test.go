package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/extapi/extapi/store"
	"github.com/extapi/extapi/store/storetest"
	"github.com/extapi/extapi/vault"
)

func newKeyring(t testing.TB) *vault.Keyring {
	t.Helper()
	k, err := vault.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	kr, err := vault.New(map[uint32][]byte{1: k}, 1)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func seal(t testing.TB, kr *vault.Keyring, plaintext string, aad []byte) store.Sealed {
	t.Helper()
	b, err := kr.Seal([]byte(plaintext), aad)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testCtx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// received is one request as it arrived at the upstream, byte for byte.
type received struct {
	Method, URI string
	Headers     [][2]string // in wire order
	Body        []byte
}

func (r received) header(name string) []string {
	var out []string
	for _, kv := range r.Headers {
		if strings.EqualFold(kv[0], name) {
			out = append(out, kv[1])
		}
	}
	return out
}

// upstream is a real HTTP server on loopback that records what it receives and answers with
// whatever respond does (200 "ok" by default).
type upstream struct {
	ln      net.Listener
	srv     *fasthttp.Server
	mu      sync.Mutex
	got     []received
	respond func(ctx *fasthttp.RequestCtx)
	url     string
	conns   atomic.Int32 // connections accepted
}

func newUpstream(t testing.TB, respond func(ctx *fasthttp.RequestCtx)) *upstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{ln: ln, respond: respond, url: "http://" + ln.Addr().String()}
	u.srv = &fasthttp.Server{
		Handler:                       u.handle,
		DisableHeaderNamesNormalizing: true,
		NoDefaultServerHeader:         true,
		NoDefaultDate:                 true,
		DisablePreParseMultipartForm:  true,
		Logger:                        quiet{},
		ConnState: func(_ net.Conn, st fasthttp.ConnState) {
			if st == fasthttp.StateNew {
				u.conns.Add(1)
			}
		},
	}
	go u.srv.Serve(ln)
	t.Cleanup(func() { u.srv.Shutdown() })
	return u
}

func (u *upstream) handle(ctx *fasthttp.RequestCtx) {
	r := received{Method: string(ctx.Method()), URI: string(ctx.Request.Header.RequestURI()),
		Body: append([]byte(nil), ctx.PostBody()...)}
	r.Headers = parseRawHeaders(ctx.Request.Header.RawHeaders())
	u.mu.Lock()
	u.got = append(u.got, r)
	u.mu.Unlock()
	if u.respond != nil {
		u.respond(ctx)
		return
	}
	ctx.SetContentType("text/plain")
	ctx.SetBodyString("ok")
}

func (u *upstream) requests() []received {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]received(nil), u.got...)
}

func (u *upstream) hits() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.got)
}

func parseRawHeaders(raw []byte) [][2]string {
	var out [][2]string
	for _, line := range bytes.Split(raw, []byte("\r\n")) {
		if len(line) == 0 {
			continue
		}
		k, v, _ := bytes.Cut(line, []byte(":"))
		out = append(out, [2]string{string(k), string(bytes.TrimLeft(v, " \t"))})
	}
	return out
}

// proxyEnv is a Handler serving on loopback over a real store.
type proxyEnv struct {
	t     testing.TB
	store *store.Store
	kr    *vault.Keyring
	h     *Handler
	addr  string
	srv   *fasthttp.Server
}

func newProxyEnv(t testing.TB, s *store.Store, kr *vault.Keyring, opts Options) *proxyEnv {
	t.Helper()
	return newProxyEnvWith(t, s, kr, opts, nil)
}

// newProxyEnvWith lets tweak replace the Handler's clock, jitter or sleep before it serves.
func newProxyEnvWith(t testing.TB, s *store.Store, kr *vault.Keyring, opts Options, tweak func(h *Handler)) *proxyEnv {
	t.Helper()
	opts.Store, opts.Opener = s, kr
	h, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if tweak != nil {
		tweak(h)
	}
	if err := h.Start(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(h)
	go srv.Serve(ln)
	t.Cleanup(func() {
		srv.Shutdown()
		h.Close(context.Background())
	})
	return &proxyEnv{t: t, store: s, kr: kr, h: h, addr: ln.Addr().String(), srv: srv}
}

// sqliteEnv is a proxy over a fresh SQLite store, for tests where the dialect does not matter.
func sqliteEnv(t testing.TB, opts Options) *proxyEnv {
	t.Helper()
	return newProxyEnv(t, storetest.Open(t, storetest.SQLiteURL(t)), newKeyring(t), opts)
}

// api creates an active API with the given config (base_url defaults to up's URL).
func (e *proxyEnv) api(slug string, cfg store.APIConfig, seal func(a *store.ExternalAPI)) *store.ExternalAPI {
	e.t.Helper()
	a := &store.ExternalAPI{ID: store.NewID(store.PrefixAPI), Name: slug, Slug: slug, Category: "other", Provider: slug,
		Status: store.APIActive, Environment: "production", APIConfig: cfg}
	if seal != nil {
		seal(a)
	}
	if err := e.store.CreateAPI(testCtx(e.t), a); err != nil {
		e.t.Fatal(err)
	}
	return a
}

// conn creates an active connection of a; fill sets its credentials (the id is already set,
// for the AAD).
func (e *proxyEnv) conn(a *store.ExternalAPI, fill func(c *store.Connection)) *store.Connection {
	e.t.Helper()
	c := &store.Connection{ID: store.NewID(store.PrefixConnection), ExternalAPIID: a.ID, ConnectionName: "c",
		Status: store.ConnActive}
	if fill != nil {
		fill(c)
	}
	if err := e.store.CreateConnection(testCtx(e.t), c); err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *proxyEnv) sealConn(c *store.Connection, field, plaintext string) store.Sealed {
	return seal(e.t, e.kr, plaintext, c.AAD(field))
}

func (e *proxyEnv) sealAPI(a *store.ExternalAPI, field, plaintext string) store.Sealed {
	return seal(e.t, e.kr, plaintext, a.AAD(field))
}

// rawResponse is what came back over a raw connection.
type rawResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

// raw sends request bytes as they are (no client normalization) and reads one response.
func raw(t testing.TB, addr, request string) rawResponse {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	method, _, _ := strings.Cut(request, " ")
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("read response to %q: %v", request, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return rawResponse{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

// do sends one request through the proxy with net/http.
func do(t testing.TB, method, url string, body io.Reader, header map[string]string) rawResponse {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return rawResponse{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// heldPort is a loopback TCP port that the test holds bound but not listening: connecting to
// it is refused, and since it stays bound, no other socket can be given it (neither a
// listener on :0 nor an outgoing connection's local port, here or in another process) until
// listen is called or the test ends. A port found free and closed again would not be safe:
// someone else can take it at once.
type heldPort struct {
	addr string
	mu   sync.Mutex
	fd   int // -1 once listening or closed
}

func holdPort(t testing.TB) *heldPort {
	t.Helper()
	syscall.ForkLock.RLock()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, syscall.IPPROTO_TCP)
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		t.Fatal("socket:", err)
	}
	p := &heldPort{fd: fd}
	t.Cleanup(p.close)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal("bind 127.0.0.1:0:", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal("getsockname:", err)
	}
	p.addr = fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	c, err := net.DialTimeout("tcp", p.addr, 10*time.Second)
	if err == nil {
		c.Close()
		t.Fatalf("held port %s accepted a connection; want it refused", p.addr)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial held port %s: %v; want connection refused", p.addr, err)
	}
	return p
}

// listen starts listening on the held port; from then on the listener owns it.
func (p *heldPort) listen() (net.Listener, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fd < 0 {
		return nil, errors.New("held port already released")
	}
	if err := syscall.Listen(p.fd, syscall.SOMAXCONN); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", p.addr, err)
	}
	f := os.NewFile(uintptr(p.fd), p.addr)
	p.fd = -1
	defer f.Close() // FileListener holds a duplicate
	return net.FileListener(f)
}

func (p *heldPort) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fd >= 0 {
		syscall.Close(p.fd)
		p.fd = -1
	}
}

// closedAddr is a loopback address that refuses connections for the rest of the test.
func closedAddr(t testing.TB) string {
	t.Helper()
	return holdPort(t).addr
}

// quiet drops a test server's log lines (connections the proxy refused to trust, …).
type quiet struct{}

func (quiet) Printf(string, ...any) {}
