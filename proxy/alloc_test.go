//go:build !race

package proxy

import (
	"testing"

	"github.com/valyala/fasthttp"
)

// maxAllocsPerRequest is the steady-state allocation budget of a proxied request. All four are
// fasthttp's, for streaming the response body (its clientStreamBody and three closures); the
// proxy's own stages allocate nothing once the route is cached.
const maxAllocsPerRequest = 4

func TestSteadyStateAllocations(t *testing.T) {
	for _, tc := range []struct {
		desc, method, body string
	}{
		{"GET", "GET", ""},
		{"POST with a body", "POST", "amount=2000&currency=usd&source=tok_visa"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			e := newBenchEnv(t, Options{})
			tmpl := parseRequest(t, e.typical(tc.method, tc.body))
			var ctx fasthttp.RequestCtx
			e.serveOnce(t, tmpl, &ctx) // warm the cache, the pools and the connection
			if n := testing.AllocsPerRun(500, func() { e.serveOnce(t, tmpl, &ctx) }); n > maxAllocsPerRequest {
				t.Errorf("%v allocations per request; want at most %d", n, maxAllocsPerRequest)
			}
		})
	}
}
