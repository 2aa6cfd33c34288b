// Command bareproxy is the floor of extapi's stack for the load bench (loadbench_test.go): a
// fasthttp server and HostClient that do nothing but the bench's prefix rewrite and key
// injection. It is not part of extapi; the bench builds it to tell the cost of the library
// from the cost of extapi's own work.
//
//	bareproxy LISTEN UPSTREAM KEY bare   fasthttp's defaults: no timeouts, bodies buffered
//	bareproxy LISTEN UPSTREAM KEY safe   the server and client options extapi's proxy uses
//	                                     (timeouts, streamed bodies, buffer sizes) and a
//	                                     per-request deadline, as proxy.NewServer and
//	                                     proxy's upstream client set them
package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/valyala/fasthttp"
)

func main() {
	if len(os.Args) != 5 || (os.Args[4] != "bare" && os.Args[4] != "safe") {
		fmt.Fprintln(os.Stderr, "usage: bareproxy LISTEN UPSTREAM KEY bare|safe")
		os.Exit(2)
	}
	listen, upstream, key, safe := os.Args[1], os.Args[2], os.Args[3], os.Args[4] == "safe"
	hc := &fasthttp.HostClient{Addr: upstream, MaxConns: 1024}
	srv := &fasthttp.Server{}
	if safe { // mirrors proxy.NewServer and proxy's (*Handler).client
		hc.MaxIdleConnDuration = 90 * time.Second
		hc.MaxConnWaitTimeout = 30 * time.Second
		hc.ReadBufferSize, hc.WriteBufferSize = 16<<10, 16<<10
		hc.NoDefaultUserAgentHeader, hc.DisablePathNormalizing = true, true
		hc.StreamResponseBody = true
		hc.MaxIdemponentCallAttempts = 2
		srv.StreamRequestBody = true
		srv.MaxRequestBodySize = 1 << 20
		srv.DisablePreParseMultipartForm, srv.NoDefaultServerHeader, srv.NoDefaultContentType = true, true, true
		srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout = 10*time.Second, 30*time.Second, 90*time.Second
		srv.ReadBufferSize, srv.WriteBufferSize = 16<<10, 16<<10
	}
	prefix := []byte("/bench/")
	srv.Handler = func(ctx *fasthttp.RequestCtx) {
		p := ctx.Path()
		rest, ok := bytes.CutPrefix(p, prefix)
		i := bytes.IndexByte(rest, '/')
		if !ok || i < 0 {
			ctx.SetStatusCode(fasthttp.StatusNotFound)
			return
		}
		req := &ctx.Request
		req.URI().SetPathBytes(append([]byte("/base"), rest[i:]...))
		req.Header.Del("Authorization")
		req.Header.Set("X-API-Key", key)
		req.Header.SetHost(upstream)
		var err error
		if safe {
			err = hc.DoDeadline(req, &ctx.Response, time.Now().Add(30*time.Second))
		} else {
			err = hc.Do(req, &ctx.Response)
		}
		if err != nil {
			ctx.SetStatusCode(fasthttp.StatusBadGateway)
		}
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
