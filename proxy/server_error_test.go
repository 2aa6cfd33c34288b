package proxy

import (
	"errors"
	"os"
	"testing"

	"github.com/valyala/fasthttp"
)

// fasthttp reports a fresh connection on which nothing arrived as a read timeout and writes
// whatever the error handler sets: that must be a 408 (which clients drop on an idle
// connection), not a 400 that a client could take for the answer to its next request.
func TestServerErrorTimeoutIs408(t *testing.T) {
	for _, tc := range []struct {
		desc   string
		err    error
		status int
		code   string
		count  bool
	}{
		{"idle or slow connection", os.ErrDeadlineExceeded, fasthttp.StatusRequestTimeout, CodeRequestTimeout, false},
		{"garbage", errors.New("cannot find http request method"), fasthttp.StatusBadRequest, CodeBadRequest, true},
		{"body too large", fasthttp.ErrBodyTooLarge, fasthttp.StatusRequestEntityTooLarge, CodeRequestTooLarge, true},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			var ctx fasthttp.RequestCtx
			count := serverError(&ctx, tc.err)
			if got := ctx.Response.StatusCode(); got != tc.status {
				t.Errorf("status = %d; want %d", got, tc.status)
			}
			if got := string(ctx.Response.Header.Peek("X-Extapi-Error")); got != tc.code {
				t.Errorf("X-Extapi-Error = %q; want %q", got, tc.code)
			}
			if count != tc.count {
				t.Errorf("counted as a gateway error = %v; want %v", count, tc.count)
			}
			if !ctx.Response.ConnectionClose() {
				t.Errorf("connection left open; want Connection: close")
			}
		})
	}
}
