package proxy

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/extapi/extapi/metrics"
	"github.com/extapi/extapi/ratelimit"
)

// forward sends the request upstream within the API's timeout, retrying per its retry_config.
// The upstream's response is left in x.resp, its body still streaming.
func (h *Handler) forward(x *exchange) error {
	a := x.route.api
	now := h.now()
	x.deadline = now.Add(a.timeout)
	if err := h.prepareBody(x); err != nil {
		return err
	}
	h.touched.add(x.route.id, now)
	resp := x.resp
	for n := 0; ; n++ {
		if err := h.signRequest(x); err != nil { // OAuth 1.0a: over the request as sent, per attempt
			return err
		}
		sent := h.now()
		err := x.route.client.DoDeadline(x.req, resp, x.deadline)
		if x.reader.err != nil {
			return x.reader.err // the caller's body failed, not the upstream
		}
		h.observeAttempt(x, err, h.now().Sub(sent))
		if again, rerr := h.reauthorize(x, err); rerr != nil {
			return rerr
		} else if again {
			n-- // the resend with a refreshed OAuth 2.0 token is not one of retry_config's
			x.retries++
			a.metrics.Retry(metrics.RetryUnauthorized)
			continue
		}
		if err == nil && resp.StatusCode() == fasthttp.StatusTooManyRequests {
			h.holdOff(x)
		}
		d, again := h.nextTry(x, n, err)
		if !again {
			return err
		}
		x.retries++
		a.metrics.Retry(retryReason(err, x.upStatus))
		if err == nil {
			_ = resp.CloseBodyStream() // frees the connection during the wait
		}
		if !h.sleep(d) {
			return errorf(CodeShuttingDown, "extapi is shutting down", nil)
		}
		if callerGone(x.ctx.Conn()) {
			return errorf(CodeCallerGone, "the caller closed its connection before the retry", err)
		}
		if x.buffered {
			x.req.SetBodyRaw(x.body)
		}
	}
}

// observeAttempt records one upstream attempt: its status and duration, or the kind of its
// failure.
func (h *Handler) observeAttempt(x *exchange, err error, d time.Duration) {
	am := x.route.api.metrics
	if err != nil {
		x.upStatus = 0
		am.UpstreamError(errorKind(err))
		return
	}
	x.upStatus = x.resp.StatusCode()
	am.ObserveUpstream(x.upStatus, d)
}

// nextTry decides whether attempt n (0-based) is followed by another, and after what wait.
// A failed connect is retried whatever the method (nothing was sent); a connection that broke
// after sending, or a 429/502/503/504, only when the request is replayable. The wait is the
// backoff, or the upstream's Retry-After (for a 429, also the API's rate_limit.reset_header);
// a wait that would end past the deadline means no retry.
func (h *Handler) nextTry(x *exchange, n int, err error) (time.Duration, bool) {
	a := x.route.api
	if n >= a.retry.max {
		return 0, false
	}
	now := h.now()
	d := a.retry.delay(n, h.jitter)
	switch {
	case err != nil:
		if !isDial(err) && (!x.replayable || asError(err).Code != CodeUpstreamUnreachable) {
			return 0, false
		}
	case retryableStatus(x.resp.StatusCode()) && x.replayable:
		if until, ok := upstreamWait(&x.resp.Header, a, now); ok {
			d = max(until.Sub(now), 0)
		}
	default:
		return 0, false
	}
	if !now.Add(d).Before(x.deadline) {
		return 0, false
	}
	return d, true
}

// upstreamWait reads when the upstream wants to be asked again: Retry-After (seconds or an
// HTTP date), or for a 429 the API's reset header.
func upstreamWait(rh *fasthttp.ResponseHeader, a *apiEntry, now time.Time) (time.Time, bool) {
	if v := rh.Peek("Retry-After"); len(v) > 0 {
		return ratelimit.ParseRetryAfter(string(v), now)
	}
	if a.reset != "" && rh.StatusCode() == fasthttp.StatusTooManyRequests {
		if v := rh.Peek(a.reset); len(v) > 0 {
			return ratelimit.ParseReset(string(v), now)
		}
	}
	return time.Time{}, false
}

// holdOff tells the limiter that the upstream refused with 429 until the time it named, so
// that every instance holds back.
func (h *Handler) holdOff(x *exchange) {
	a := x.route.api
	if a.policy == nil {
		return
	}
	until, ok := upstreamWait(&x.resp.Header, a, h.now())
	if !ok {
		return
	}
	if err := h.opts.Limiter.HoldOff(h.ctx, a.policy, x.route.rlKey, until); err != nil {
		h.log.Warn("proxy: rate limit hold-off not recorded", "api", a.slug, "err", err.Error())
	}
}

// prepareBody gives the upstream request the caller's body: read into memory when it is at
// most Options.BufferLimit (so a retry can send it again), streamed when larger. Reading the
// caller's body counts against the request's deadline.
func (h *Handler) prepareBody(x *exchange) error {
	in := &x.ctx.Request
	x.replayable = replayableMethod(&in.Header)
	if !in.IsBodyStream() { // a server that does not stream request bodies has read it
		if b := in.Body(); len(b) > 0 {
			x.body, x.buffered = b, true
			x.req.SetBodyRaw(b)
		}
		return nil
	}
	cl := in.Header.ContentLength()
	if cl == 0 {
		return nil
	}
	if limit := h.opts.MaxRequestBody; limit > 0 && cl > limit {
		return errBodyTooLarge
	}
	_ = x.ctx.SetReadDeadline(x.deadline)
	stream := x.ctx.RequestBodyStream()
	x.reader = bodyReader{r: stream, max: h.opts.MaxRequestBody}
	limit := h.opts.BufferLimit
	if cl > limit {
		x.replayable = false
		x.req.SetBodyStream(&x.reader, cl)
		return nil
	}
	want := cl
	if cl < 0 { // chunked: buffer it if it ends within the limit
		want = limit + 1
	}
	if cap(x.buf) < want {
		x.buf = make([]byte, want)
	}
	buf := x.buf[:want]
	m, err := io.ReadFull(&x.reader, buf)
	switch {
	case x.reader.err != nil:
		return x.reader.err
	case cl >= 0 && err != nil:
		return fmt.Errorf("%w: %v", errBodyRead, err)
	case cl < 0 && err == nil: // more than the limit: stream what was read and the rest
		x.reader.prefix = buf
		x.replayable = false
		x.req.SetBodyStream(&x.reader, -1)
		return nil
	case cl < 0 && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF):
		return fmt.Errorf("%w: %v", errBodyRead, err)
	}
	x.body, x.buffered = buf[:m], true
	x.req.SetBodyRaw(x.body)
	return nil
}

// bodyReader streams the caller's body upstream. It notes the first failure of the caller's
// side, so that it is not taken for the upstream's, and enforces Options.MaxRequestBody.
// It has no Close: fasthttp owns the stream it reads.
type bodyReader struct {
	prefix []byte // read already, sent first
	r      io.Reader
	n, max int
	err    error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if len(b.prefix) > 0 {
		n := copy(p, b.prefix)
		b.prefix = b.prefix[n:]
		b.n += n
		return n, nil
	}
	n, err := b.r.Read(p)
	b.n += n
	if b.max > 0 && b.n > b.max {
		b.err = errBodyTooLarge
		return n, b.err
	}
	if err != nil && err != io.EOF {
		b.err = fmt.Errorf("%w: %v", errBodyRead, err)
		return n, b.err
	}
	return n, err
}

// upstreamBody is the body of the upstream's response as the server streams it to the caller.
// Closing it (the server does, after writing) frees the upstream connection and the Response.
type upstreamBody struct {
	resp *fasthttp.Response
	r    io.Reader
}

var upstreamBodies = sync.Pool{New: func() any { return new(upstreamBody) }}

func newUpstreamBody(resp *fasthttp.Response) *upstreamBody {
	b := upstreamBodies.Get().(*upstreamBody)
	b.resp, b.r = resp, resp.BodyStream()
	return b
}

func (b *upstreamBody) Read(p []byte) (int, error) { return b.r.Read(p) }

// CloseWithError passes err on, so that a body the caller did not take in full discards the
// upstream connection instead of draining it. (No Close: fasthttp would call both.)
func (b *upstreamBody) CloseWithError(err error) error {
	var cerr error
	if c, ok := b.r.(fasthttp.ReadCloserWithError); ok {
		cerr = c.CloseWithError(err)
	}
	fasthttp.ReleaseResponse(b.resp)
	*b = upstreamBody{}
	upstreamBodies.Put(b)
	return cerr
}
