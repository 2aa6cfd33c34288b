package proxy

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"

	"github.com/valyala/fasthttp"

	"github.com/extapi/extapi/metrics"
)

// Observability of the data plane: the request id, the series recorded at the end of each
// request (metrics), and the access log. Per-attempt series (upstream durations, errors,
// retries) are recorded in forward; rate-limit ones in rateLimit; cache events in route.

// headerRequestID names a request across extapi's access log, the upstream and the caller.
const headerRequestID = "X-Request-Id"

var requestIDKey = []byte(headerRequestID)

// maxRequestIDLen bounds a caller's X-Request-Id that is kept; a longer or unprintable one is
// replaced by a generated id (upstream, in the log and on the response).
const maxRequestIDLen = 128

// requestID takes the caller's X-Request-Id when it is printable ASCII of at most
// maxRequestIDLen bytes; otherwise it generates one: 16 random bytes, hex (32 characters).
// A generated id is set on the upstream request in buildRequest (replacing the caller's).
func (x *exchange) requestID() {
	v := x.ctx.Request.Header.Peek(headerRequestID)
	if len(v) > 0 && len(v) <= maxRequestIDLen && printable(v) {
		x.idLen = copy(x.id[:], v)
		return
	}
	const hex = "0123456789abcdef"
	for i := 0; i < 2; i++ {
		r := rand.Uint64() // runtime-seeded ChaCha8: unpredictable enough for an id, and no allocation
		for j := 0; j < 8; j++ {
			b := byte(r >> (8 * j))
			x.id[i*16+2*j], x.id[i*16+2*j+1] = hex[b>>4], hex[b&0xf]
		}
	}
	x.idLen, x.genID = 32, true
}

func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

// apiMetrics is the handle the request records into: its API's once the route is known, else
// the "unknown" one (the caller's path is never a label).
func (h *Handler) apiMetrics(x *exchange) *metrics.APIMetrics {
	if x.route != nil && x.route.api.metrics != nil {
		return x.route.api.metrics
	}
	return h.metrics.Unknown()
}

// finish runs once per request at the end of ServeFastHTTP: it echoes the request id on the
// response, records the request's series (e: the error extapi answered with, if any) and
// writes the access line. The duration is up to the response's status and headers: a body
// streaming from the upstream is written to the caller after this.
func (h *Handler) finish(x *exchange, e *Error) {
	rh := &x.ctx.Response.Header
	if len(rh.Peek(headerRequestID)) == 0 { // an upstream's own X-Request-Id is relayed as it is
		rh.SetCanonical(requestIDKey, x.id[:x.idLen])
	}
	d := h.now().Sub(x.start)
	am := h.apiMetrics(x)
	status := x.ctx.Response.StatusCode()
	if e != nil {
		am.GatewayError(status)
	}
	am.ObserveRequest(metrics.ParseMethodBytes(x.ctx.Method()), status, d)
	if n := h.opts.AccessLogEvery; n > 0 && (n == 1 || h.logSeq.Add(1)%uint64(n) == 0) {
		h.accessLog(x, am, e, status, d.Seconds())
	}
}

// accessLog writes one info line for the request. It names the request by id, API slug,
// connection, method and the caller's path and query (redacted: RedactQuery, plus the API's
// api_key.query_param); it never holds a header value, nor the upstream URL (which may carry
// the injected credential).
func (h *Handler) accessLog(x *exchange, am *metrics.APIMetrics, e *Error, status int, seconds float64) {
	ctx := context.Background()
	log := h.opts.AccessLog
	if !log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	method := metrics.ParseMethodBytes(x.ctx.Method()).String()
	if method == "other" {
		method = string(x.ctx.Method())
	}
	var credParam, conn string
	if x.route != nil {
		credParam, conn = x.route.cred.query, x.route.id
	} else if len(x.t.connID) > 0 {
		conn = string(x.t.connID) // a valid id (parseTarget checked it) that named no connection
	}
	var buf [13]slog.Attr
	attrs := append(buf[:0],
		slog.String("request_id", string(x.id[:x.idLen])),
		slog.String("api", am.Slug()),
		slog.String("connection", conn),
		slog.String("method", method),
		slog.String("path", string(x.t.path)),
		slog.String("query", RedactQuery(string(x.t.query), credParam)),
		slog.Int("status", status),
		slog.Int("upstream_status", x.upStatus),
		slog.Float64("duration_ms", seconds*1e3),
		slog.Int("retries", x.retries),
		slog.Float64("ratelimit_wait_ms", x.decision.Waited.Seconds()*1e3),
	)
	if e != nil {
		attrs = append(attrs, slog.String("error", e.Code))
	}
	log.LogAttrs(ctx, slog.LevelInfo, "proxy: request", attrs...)
}

// errorKind classifies an upstream attempt that got no response, for
// extapi_upstream_errors_total. Called on failed attempts only.
func errorKind(err error) metrics.ErrorKind {
	switch asError(err).Code {
	case CodeUpstreamTimeout:
		return metrics.ErrorTimeout
	case CodeUpstreamTLS:
		return metrics.ErrorTLS
	case CodeUpstreamUnreachable:
		var d *dialError
		switch {
		case errors.As(err, &d):
			return metrics.ErrorConnect
		case errors.Is(err, fasthttp.ErrNoFreeConns), errors.Is(err, fasthttp.ErrBodyTooLarge):
			return metrics.ErrorOther
		}
		return metrics.ErrorReset
	}
	return metrics.ErrorOther
}

// retryReason says why attempt n is followed by another: the failure of the attempt, or the
// retryable status it got.
func retryReason(err error, status int) metrics.RetryReason {
	if err == nil {
		if status == fasthttp.StatusTooManyRequests {
			return metrics.RetryStatus429
		}
		return metrics.RetryStatus5xx
	}
	switch errorKind(err) {
	case metrics.ErrorTimeout:
		return metrics.RetryTimeout
	case metrics.ErrorConnect:
		return metrics.RetryConnect
	case metrics.ErrorReset:
		return metrics.RetryReset
	}
	return metrics.RetryOther
}
