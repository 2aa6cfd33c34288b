//go:build !race

package proxy

import (
	"testing"

	"github.com/valyala/fasthttp"
)

// TestGeneratedRequestIDAllocations: a request without X-Request-Id (an id is generated, sent
// upstream and echoed) stays within the same budget as one with.
func TestGeneratedRequestIDAllocations(t *testing.T) {
	e := newBenchEnv(t, Options{})
	tmpl := parseRequest(t, e.typical("GET", ""))
	tmpl.Header.Del(headerRequestID)
	var ctx fasthttp.RequestCtx
	e.serveOnce(t, tmpl, &ctx)
	if n := testing.AllocsPerRun(500, func() { e.serveOnce(t, tmpl, &ctx) }); n > maxAllocsPerRequest {
		t.Errorf("%v allocations per request; want at most %d", n, maxAllocsPerRequest)
	}
}
