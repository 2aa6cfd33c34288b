package proxy

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/extapi/extapi/store"
	"github.com/extapi/extapi/store/storetest"
)

// benchEnv is a Handler over a real (SQLite) store whose upstream is an in-memory fasthttp
// server, so that a benchmark measures the proxy and not the network.
type benchEnv struct {
	h      *Handler
	up     *fasthttputil.InmemoryListener
	upSrv  *fasthttp.Server
	connID string
}

func newBenchEnv(tb testing.TB, opts Options) *benchEnv {
	tb.Helper()
	s := storetest.Open(tb, storetest.SQLiteURL(tb))
	kr := newKeyring(tb)
	up := fasthttputil.NewInmemoryListener()
	upSrv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Request-Id", "req_123")
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"id":"ch_1","object":"charge"}`)
	}}
	go upSrv.Serve(up)
	opts.Store, opts.Opener, opts.TouchInterval = s, kr, time.Hour
	h, err := New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	h.dialTCP = func(string, time.Duration) (net.Conn, error) { return up.Dial() }
	if err := h.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		h.Close(testCtx(tb))
		upSrv.Shutdown()
	})
	e := &proxyEnv{t: tb, store: s, kr: kr, h: h}
	a := e.api("stripe", store.APIConfig{BaseURL: "https://api.stripe.test/v1", AuthType: store.AuthBearer,
		Headers: map[string]string{"Stripe-Version": "2024-01-01"},
		APIKey:  &store.APIKeyConfig{HeaderName: "Authorization", KeyPrefix: "Bearer "}}, func(a *store.ExternalAPI) {
		a.APIConfig.BaseURL = "http://api.stripe.test/v1" // plain HTTP over the in-memory listener
	})
	c := e.conn(a, func(c *store.Connection) {
		c.Credentials.AccessToken = e.sealConn(c, "credentials.access_token", "sk_test_4eC39HqLyjWDarjtT1zdp7dc")
	})
	return &benchEnv{h: h, up: up, upSrv: upSrv, connID: c.ID}
}

// typical is a request as an internal service sends it.
func (b *benchEnv) typical(method, body string) string {
	return method + " /stripe/" + b.connID + "/charges/ch_1?expand[]=customer HTTP/1.1\r\n" +
		"Host: extapi:8080\r\nUser-Agent: billing/1.4\r\nAccept: application/json\r\n" +
		"Content-Type: application/x-www-form-urlencoded\r\nIdempotency-Key: 8e03978e-40d5-43e8-bc93-6894a57f9324\r\n" +
		"X-Request-Id: 5f1c2a\r\n" + "Content-Length: " + itoa(len(body)) + "\r\n\r\n" + body
}

func itoa(n int) string { return string(fasthttp.AppendUint(nil, n)) }

// serveOnce runs one request through ServeFastHTTP on ctx, as the server would, and drains the
// streamed response.
func (b *benchEnv) serveOnce(tb testing.TB, tmpl *fasthttp.Request, ctx *fasthttp.RequestCtx) {
	tmpl.CopyTo(&ctx.Request)
	b.h.ServeFastHTTP(ctx)
	if ctx.Response.StatusCode() != 200 {
		tb.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
	}
	if err := ctx.Response.BodyWriteTo(io.Discard); err != nil {
		tb.Fatal(err)
	}
	ctx.Response.Reset()
}

func parseRequest(tb testing.TB, raw string) *fasthttp.Request {
	tb.Helper()
	req := new(fasthttp.Request)
	if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		tb.Fatal(err)
	}
	return req
}

// BenchmarkHandler is the handler alone (what the proxy adds per request), on a warm cache.
//
//	go test -run '^$' -bench BenchmarkHandler -benchmem ./proxy/
func BenchmarkHandler(b *testing.B) {
	for _, bc := range []struct {
		name         string
		method, body string
		opts         Options
	}{
		{"GET", "GET", "", Options{}},
		{"POST", "POST", "amount=2000&currency=usd&source=tok_visa", Options{}},
		{"GET/open-per-request", "GET", "", Options{OpenPerRequest: true}},
		// The access log on every request, JSON to io.Discard (what it costs beyond writing).
		{"GET/access-log", "GET", "", Options{AccessLogEvery: 1, Log: slog.New(slog.NewJSONHandler(io.Discard, nil))}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e := newBenchEnv(b, bc.opts)
			tmpl := parseRequest(b, e.typical(bc.method, bc.body))
			var ctx fasthttp.RequestCtx
			e.serveOnce(b, tmpl, &ctx) // warm the cache and the connection pool
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				e.serveOnce(b, tmpl, &ctx)
			}
		})
	}
}

// BenchmarkServer is a whole round trip through the proxy listener (both parses, both writes)
// next to the same request sent straight to the upstream, all in memory.
//
//	go test -run '^$' -bench BenchmarkServer -benchmem ./proxy/
func BenchmarkServer(b *testing.B) {
	e := newBenchEnv(b, Options{})
	proxyLn := fasthttputil.NewInmemoryListener()
	srv := NewServer(e.h)
	go srv.Serve(proxyLn)
	b.Cleanup(func() { srv.Shutdown() })
	for _, bc := range []struct {
		name string
		ln   *fasthttputil.InmemoryListener
		uri  string
	}{
		{"direct", e.up, "http://api.stripe.test/v1/charges/ch_1?expand[]=customer"},
		{"proxied", proxyLn, "http://extapi/stripe/" + e.connID + "/charges/ch_1?expand[]=customer"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := &fasthttp.HostClient{Addr: "x", Dial: func(string) (net.Conn, error) { return bc.ln.Dial() }}
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI(bc.uri)
			req.Header.Set("Accept", "application/json")
			req.Header.Set("X-Request-Id", "5f1c2a")
			b.ReportAllocs()
			for b.Loop() {
				if err := c.Do(req, resp); err != nil || resp.StatusCode() != 200 {
					b.Fatalf("Do = %v, %d", err, resp.StatusCode())
				}
			}
		})
	}
}

// BenchmarkOpenSecret is what Options.OpenPerRequest adds to every request: opening the
// route's sealed credential.
//
//	go test -run '^$' -bench BenchmarkOpenSecret -benchmem ./proxy/
func BenchmarkOpenSecret(b *testing.B) {
	kr := newKeyring(b)
	h := &Handler{opts: Options{Opener: kr}}
	aad := []byte("external_api_connections/conn_ebnq3hzn6lbkmyhzzmfqqtfnmq/credentials.access_token")
	refs := []sealedRef{{blob: seal(b, kr, "sk_test_4eC39HqLyjWDarjtT1zdp7dc", aad), aad: aad}}
	dst := make([][]byte, 0, 1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.open(dst[:0], refs); err != nil {
			b.Fatal(err)
		}
	}
}
