package proxy

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// Timeouts of the proxy listener. An upstream exchange is bounded by its API's timeout, which
// the handler also sets on the caller's connection while it streams a body.
const (
	serverHeaderTimeout = 10 * time.Second // to read a request's headers
	serverWriteTimeout  = 30 * time.Second // to write a small response
	serverIdleTimeout   = 90 * time.Second // keep-alive between requests
	serverReadBuffer    = 16 << 10         // request line and headers up to 16 KiB
	serverWriteBuffer   = 16 << 10
)

// NewServer returns the server of the proxy listener, serving h. Bodies stream both ways, the
// request path reaches the handler as sent (fasthttp normalizes only on URI(), which the
// proxy never calls), and no Server or default Content-Type is added to the upstream's
// response. Date is the one header fasthttp manages itself (it drops any other value): every
// response carries the time extapi sends it, as RFC 9110 6.6.1 asks of a proxy that receives
// none.
func NewServer(h *Handler) *fasthttp.Server {
	return &fasthttp.Server{
		Handler: h.ServeFastHTTP,
		ErrorHandler: func(ctx *fasthttp.RequestCtx, err error) {
			if serverError(ctx, err) {
				h.metrics.Unknown().GatewayError(ctx.Response.StatusCode()) // no route: api "unknown"
			}
		},
		StreamRequestBody:            true,
		MaxRequestBodySize:           h.opts.BufferLimit,
		DisablePreParseMultipartForm: true,
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		ReadTimeout:                  serverHeaderTimeout,
		WriteTimeout:                 serverWriteTimeout,
		IdleTimeout:                  serverIdleTimeout,
		ReadBufferSize:               serverReadBuffer,
		WriteBufferSize:              serverWriteBuffer,
		CloseOnShutdown:              true,
		SecureErrorLogMessage:        true,
		Logger:                       fasthttpLogger{h.log},
	}
}

// serverError answers a request fasthttp could not parse; it reports whether that was a gateway
// error worth counting.
//
// A read timeout is not: fasthttp hands the handler a timeout even for a fresh connection on
// which no byte ever arrived (clients open spare connections and leave them idle), and always
// writes a response. 408 is the answer clients know to ignore on an idle connection (Go's
// transport drops it silently) instead of taking it as the reply to their next request.
func serverError(ctx *fasthttp.RequestCtx, err error) bool {
	var small *fasthttp.ErrSmallBuffer
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		writeError(ctx, errorf(CodeRequestTimeout, "no complete request arrived in time", err))
		ctx.SetConnectionClose()
		return false
	}
	switch {
	case errors.As(err, &small):
		writeError(ctx, errorf(CodeHeaderTooLarge, "the request headers are too large", err))
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		writeError(ctx, errorf(CodeRequestTooLarge, "the request body is larger than this proxy accepts", err))
	default:
		writeError(ctx, errorf(CodeBadRequest, "the request is not valid HTTP/1.1", err))
	}
	ctx.SetConnectionClose()
	return true
}

// fasthttpLogger sends fasthttp's own messages (connection errors) to the log at debug level.
type fasthttpLogger struct{ log *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.log.Debug("proxy: " + fmt.Sprintf(format, args...))
}
