package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/extapi/extapi/metrics"
	"github.com/extapi/extapi/oauth"
	"github.com/extapi/extapi/ratelimit"
	"github.com/extapi/extapi/store"
)

// Store is what the proxy reads from the configuration store; *store.Store implements it.
type Store interface {
	GetAPI(ctx context.Context, id string, t store.Tenant) (*store.ExternalAPI, error)
	GetConnection(ctx context.Context, id string, t store.Tenant) (*store.Connection, error)
	TouchConnections(ctx context.Context, used map[string]time.Time) error
	SubscribeChanges(ctx context.Context) (<-chan store.Change, error)
}

// Opener opens sealed secrets; *vault.Keyring implements it.
type Opener interface {
	Open(blob, aad []byte) ([]byte, error)
}

// Limiter holds requests to their API's rate limit; *ratelimit.Limiter implements it. Take
// and HoldOff must be safe for concurrent use and bound their own calls to Redis.
type Limiter interface {
	Take(ctx context.Context, p *ratelimit.Policy, k ratelimit.Key) (ratelimit.Decision, error)
	HoldOff(ctx context.Context, p *ratelimit.Policy, k ratelimit.Key, until time.Time) error
}

// Defaults of Options.
const (
	DefaultCacheTTL        = 30 * time.Second
	DefaultTimeout         = 30 * time.Second
	DefaultBufferLimit     = 1 << 20
	DefaultTouchInterval   = 5 * time.Second
	DefaultStoreTimeout    = 5 * time.Second
	DefaultMaxConnsPerHost = 512
	DefaultIdleConnTimeout = 10 * time.Second
	DefaultDialTimeout     = 10 * time.Second
)

// Options wire and tune a Handler. Store and Opener are required; every zero value of the
// others means its default.
type Options struct {
	Store  Store
	Opener Opener
	// Limiter applies the APIs' rate_limit. nil: no rate limits.
	Limiter Limiter
	Log     *slog.Logger
	// CacheTTL bounds how long a route is used without being read again, should a change
	// notification be missed. DefaultCacheTTL (30s) if zero.
	CacheTTL time.Duration
	// DefaultTimeout is an API's timeout when its timeout_ms is not set: the whole exchange
	// (connect, send, retries, receive the body). DefaultTimeout (30s) if zero.
	DefaultTimeout time.Duration
	// BufferLimit: a request body up to this size is read into memory first, so that it can be
	// sent again on retry; larger bodies stream and are not retried (except after a failed
	// connect, when nothing was sent). DefaultBufferLimit (1 MiB) if zero.
	BufferLimit int
	// MaxRequestBody refuses larger request bodies with 413 request_too_large. Zero: no limit.
	MaxRequestBody int
	// TouchInterval is how often last_used_at is written, in one batch. DefaultTouchInterval
	// (5s) if zero.
	TouchInterval time.Duration
	// StoreTimeout bounds each read of a route on a cache miss. DefaultStoreTimeout (5s) if zero.
	StoreTimeout time.Duration
	// MaxConnsPerHost caps the connections to one upstream. DefaultMaxConnsPerHost (512) if zero.
	MaxConnsPerHost int
	// IdleConnTimeout closes keep-alive connections to upstreams idle this long.
	// DefaultIdleConnTimeout (10s) if zero.
	IdleConnTimeout time.Duration
	// DialTimeout bounds a connect (TCP and TLS) that no request deadline bounds.
	// DefaultDialTimeout (10s) if zero.
	DialTimeout time.Duration
	// OpenPerRequest opens the sealed credentials on every request instead of once per route
	// load (see the package documentation for the measured difference). Default false.
	OpenPerRequest bool
	// TokenSource gives routes of auth_type oauth2 their access tokens; *oauth.Refresher
	// implements it. nil: oauth2 routes answer auth_unsupported.
	TokenSource TokenSource
	// Metrics records the data plane's series (requests, upstream attempts, retries, rate
	// limits, gateway errors, cache events, in flight). nil: a metrics.New(nil) of the
	// Handler's own, recorded but exposed nowhere.
	Metrics *metrics.Metrics
	// AccessLogEvery writes one access line (info, on AccessLog) per this many proxied
	// requests: 1 every request, N one in N. 0, the default: no access log.
	AccessLogEvery int
	// AccessLog gets the access lines; nil: Log. cmd/extapi gives it a buffered writer, so that
	// a line costs no write of its own.
	AccessLog *slog.Logger
}

func (o *Options) setDefaults() {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.AccessLog == nil {
		o.AccessLog = o.Log
	}
	if o.Metrics == nil {
		o.Metrics = metrics.New(nil)
	}
	setDur := func(p *time.Duration, d time.Duration) {
		if *p <= 0 {
			*p = d
		}
	}
	setDur(&o.CacheTTL, DefaultCacheTTL)
	setDur(&o.DefaultTimeout, DefaultTimeout)
	setDur(&o.TouchInterval, DefaultTouchInterval)
	setDur(&o.StoreTimeout, DefaultStoreTimeout)
	setDur(&o.IdleConnTimeout, DefaultIdleConnTimeout)
	setDur(&o.DialTimeout, DefaultDialTimeout)
	if o.BufferLimit <= 0 {
		o.BufferLimit = DefaultBufferLimit
	}
	if o.MaxConnsPerHost <= 0 {
		o.MaxConnsPerHost = DefaultMaxConnsPerHost
	}
}

// Handler is the proxy's request handler (a fasthttp.RequestHandler in ServeFastHTTP). Start
// it before serving and Close it after the server has stopped.
type Handler struct {
	opts    Options
	log     *slog.Logger
	cache   routeCache
	clients clientPool
	touched toucher
	pool    sync.Pool // *exchange
	metrics *metrics.Metrics
	logSeq  atomic.Uint64 // requests seen by the access log's sampling

	// ctx lives from Start to Close: store reads and rate-limit waits use it, since a
	// RequestCtx is done only when the server shuts down.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// Tests replace these.
	now    func() time.Time
	jitter func(max time.Duration) time.Duration
	sleep  func(d time.Duration) bool // false: cut short by Close
	// dialTCP connects to an upstream address (benchmarks use in-memory listeners).
	dialTCP func(addr string, timeout time.Duration) (net.Conn, error)
}

// New builds a Handler. It does not touch the store until Start.
func New(opts Options) (*Handler, error) {
	if opts.Store == nil || opts.Opener == nil {
		return nil, errors.New("proxy: Options.Store and Options.Opener are required")
	}
	opts.setDefaults()
	h := &Handler{opts: opts, log: opts.Log, metrics: opts.Metrics, now: time.Now}
	h.cache.init()
	h.touched.init()
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.jitter = func(max time.Duration) time.Duration {
		if max <= 0 {
			return 0
		}
		return rand.N(max)
	}
	h.sleep = h.wait
	h.dialTCP = h.clients.dialer.DialTimeout
	h.pool.New = func() any { return new(exchange) }
	return h, nil
}

// Start subscribes to change notifications (failing if it cannot) and starts the background
// work, until Close: applying invalidations and writing last_used_at batches.
func (h *Handler) Start() error {
	changes, err := h.opts.Store.SubscribeChanges(h.ctx)
	if err != nil {
		return fmt.Errorf("proxy: subscribe to changes: %w", err)
	}
	h.wg.Add(2)
	go func() {
		defer h.wg.Done()
		h.watch(changes)
	}()
	go func() {
		defer h.wg.Done()
		h.flushLoop()
	}()
	return nil
}

// Close stops the background work and writes the last last_used_at batch within ctx. Call it
// once the server no longer runs requests.
func (h *Handler) Close(ctx context.Context) error {
	h.cancel()
	h.wg.Wait()
	err := h.flush(ctx)
	h.clients.closeIdle()
	return err
}

// wait sleeps d, or less when the Handler is closed.
func (h *Handler) wait(d time.Duration) bool {
	t := fasthttp.AcquireTimer(d)
	defer fasthttp.ReleaseTimer(t)
	select {
	case <-t.C:
		return true
	case <-h.ctx.Done():
		return false
	}
}

// exchange is the state of one request as it goes through the stages. Exchanges are pooled;
// nothing in them outlives the request.
type exchange struct {
	ctx     *fasthttp.RequestCtx
	t       target
	route   *connEntry
	secrets [][]byte // the route's opened secrets, or opened
	opened  [][]byte // opened for this request (Options.OpenPerRequest)
	req     *fasthttp.Request
	resp    *fasthttp.Response // the upstream's, until respond hands it to the server
	out     Outbound
	url     []byte
	body    []byte // the buffered request body, when buffered: in buf, or the caller's
	buf     []byte // ours, pooled with the exchange
	reader  bodyReader
	// buffered: the body is in body (else it streams, or there is none).
	buffered bool
	// replayable: the method may be repeated and the body is buffered (or empty).
	replayable bool
	deadline   time.Time
	decision   ratelimit.Decision
	limited    bool // decision is set
	// bearer is the OAuth 2.0 token sent (oauth2 routes); reauthorized: a 401 to it was handled.
	bearer       oauth.AccessToken
	reauthorized bool
	// For the metrics and the access log: when the request came, the request id (the
	// caller's X-Request-Id, or generated: genID), the retries sent and the upstream's last
	// status (0: none).
	start    time.Time
	id       [maxRequestIDLen]byte
	idLen    int
	genID    bool
	retries  int
	upStatus int
}

func (h *Handler) acquire(ctx *fasthttp.RequestCtx) *exchange {
	x := h.pool.Get().(*exchange)
	x.ctx = ctx
	x.req = fasthttp.AcquireRequest()
	x.resp = fasthttp.AcquireResponse()
	return x
}

func (h *Handler) release(x *exchange) {
	fasthttp.ReleaseRequest(x.req)
	if x.resp != nil {
		fasthttp.ReleaseResponse(x.resp)
	}
	for _, s := range x.opened {
		clear(s)
	}
	clear(x.out.scratch)
	clear(x.out.pair)
	if cap(x.buf) > h.opts.BufferLimit+1 {
		x.buf = nil
	}
	*x = exchange{opened: x.opened[:0], out: Outbound{scratch: x.out.scratch[:0], pair: x.out.pair[:0], Query: x.out.Query[:0]},
		url: x.url[:0], buf: x.buf[:0]}
	h.pool.Put(x)
}

// ServeFastHTTP proxies one request. Its stages each return an error, answered by asError.
func (h *Handler) ServeFastHTTP(ctx *fasthttp.RequestCtx) {
	x := h.acquire(ctx)
	defer h.release(x)
	x.start = h.now()
	h.metrics.IncInflight()
	defer h.metrics.DecInflight()
	x.requestID()
	defer func() {
		if p := recover(); p != nil {
			h.log.Error("proxy: panic while serving a request", "panic", fmt.Sprint(p))
			e := errorf(CodeInternal, "internal error", nil)
			writeError(ctx, e)
			h.finish(x, e)
		}
	}()
	var e *Error
	if err := h.serve(x); err != nil {
		e = asError(err)
		h.logError(x, e)
		writeError(ctx, e)
	}
	h.rateLimitHeaders(x)
	h.finish(x, e)
}

func (h *Handler) serve(x *exchange) error {
	if err := h.resolveRoute(x); err != nil {
		return err
	}
	if err := h.loadConnection(x); err != nil {
		return err
	}
	if err := h.upstreamURL(x); err != nil {
		return err
	}
	if err := h.openSecrets(x); err != nil {
		return err
	}
	if err := h.buildRequest(x); err != nil {
		return err
	}
	if err := h.rateLimit(x); err != nil {
		return err
	}
	if err := h.forward(x); err != nil {
		return err
	}
	return h.respond(x)
}

// resolveRoute reads which connection the caller names, and how, from the raw request.
func (h *Handler) resolveRoute(x *exchange) error {
	in := &x.ctx.Request.Header
	if in.IsConnect() || in.IsTrace() {
		// TRACE would echo the injected credential back to the caller.
		return errorf(CodeMethodNotAllowed, "CONNECT and TRACE are not proxied", nil)
	}
	t, err := parseTarget(in.RequestURI(), in.Peek(headerConnection), in.Peek(headerAPI))
	x.t = t
	return err
}

// loadConnection finds the route in the cache (or the store) and checks it may be used.
func (h *Handler) loadConnection(x *exchange) error {
	r, err := h.route(x.t.connID)
	if err != nil {
		return err
	}
	x.route = r
	a := r.api
	if len(x.t.slug) > 0 && string(x.t.slug) != a.slug {
		return errorf(CodeRouteNotFound, "the connection does not belong to that API", nil)
	}
	if a.status != store.APIActive {
		return errorf(CodeAPIInactive, "the API is "+a.status, nil)
	}
	if err := oauth2Expired(r); err != nil {
		return err
	}
	if r.status != store.ConnActive {
		return errorf(CodeConnectionInactive, "the connection is "+r.status, nil)
	}
	return r.err
}

// upstreamURL builds the upstream URL's origin and path (the query comes with the credential).
func (h *Handler) upstreamURL(x *exchange) error {
	u, err := appendURL(x.url[:0], x.route.base, &x.t)
	x.url = u
	return err
}

// openSecrets gives the request its opened credential: the route's, or opened now.
func (h *Handler) openSecrets(x *exchange) error {
	if !h.opts.OpenPerRequest {
		x.secrets = x.route.opened
		return nil
	}
	var err error
	x.opened, err = h.open(x.opened[:0], x.route.cred.refs)
	x.secrets = x.opened
	return err
}

// open appends the opened refs to dst; an unset ref (an empty password) opens as empty.
func (h *Handler) open(dst [][]byte, refs []sealedRef) ([][]byte, error) {
	for _, ref := range refs {
		if !ref.blob.IsSet() {
			dst = append(dst, nil)
			continue
		}
		pt, err := h.opts.Opener.Open(ref.blob, ref.aad)
		if err != nil {
			return dst, errorf(CodeSecretUnavailable, "a stored credential could not be opened", fmt.Errorf("%s: %w", ref.field, err))
		}
		dst = append(dst, pt)
	}
	return dst, nil
}

// buildRequest writes the upstream request but its body: the method, the caller's headers
// that may pass, the API's headers, the credential, and the URL.
func (h *Handler) buildRequest(x *exchange) error {
	in := &x.ctx.Request
	out := x.req
	r := x.route
	out.Header.SetNoDefaultContentType(true)
	out.Header.SetMethodBytes(in.Header.Method())
	if err := copyRequestHeaders(&out.Header, &in.Header, r.strip); err != nil {
		return err
	}
	if x.genID {
		out.Header.SetCanonical(requestIDKey, x.id[:x.idLen])
	}
	for _, kv := range r.headers {
		out.Header.SetCanonical(kv[0], kv[1])
	}
	x.out.Header = &out.Header
	x.out.Query = appendQuery(x.out.Query[:0], r.base.query, x.t.query, r.cred.query)
	r.cred.inj.Inject(&x.out, x.secrets)
	if len(x.out.Query) > 0 {
		x.url = append(append(x.url, '?'), x.out.Query...)
	}
	out.SetRequestURIBytes(x.url)
	return nil
}

// rateLimit takes the request's slot in its API's rate limit, waiting for it in wait mode.
func (h *Handler) rateLimit(x *exchange) error {
	a := x.route.api
	if a.policy == nil {
		return nil
	}
	d, err := h.opts.Limiter.Take(h.ctx, a.policy, x.route.rlKey)
	if err != nil {
		return err
	}
	x.decision, x.limited = d, true
	am := a.metrics
	am.ObserveRateLimitWait(d.Waited)
	if !d.Allowed {
		am.RateLimitRejected()
		return &Error{Code: CodeRateLimited, Msg: "the API's rate limit is reached", RetryAfter: d.RetryAfter}
	}
	if d.Waited > 0 && callerGone(x.ctx.Conn()) {
		return errorf(CodeCallerGone, "the caller closed its connection while the request waited for its rate-limit slot", nil)
	}
	return nil
}

// respond passes the upstream's response on as it came, minus hop-by-hop headers. Its body
// streams from the upstream after the handler returns: the server owns it from here, and a
// large or open-ended one gets the request's deadline for writing to the caller.
func (h *Handler) respond(x *exchange) error {
	ur, out := x.resp, &x.ctx.Response
	out.SetStatusCode(ur.StatusCode())
	if m := ur.Header.StatusMessage(); len(m) > 0 {
		out.Header.SetStatusMessage(m)
	}
	copyResponseHeaders(&out.Header, &ur.Header)
	n := ur.Header.ContentLength()
	if !ur.IsBodyStream() { // HEAD, 204, 304: no body, but the length the upstream stated
		if n >= 0 {
			out.Header.SetContentLength(n)
		}
		return nil
	}
	if n < 0 {
		n = -1 // chunked, or until the upstream closed: chunked to the caller
	}
	x.resp = nil
	out.SetBodyStream(newUpstreamBody(ur), n)
	if n < 0 || n > streamWriteThreshold {
		_ = x.ctx.SetWriteDeadline(x.deadline)
	}
	return nil
}

// streamWriteThreshold: responses larger than this get the request's deadline for writing
// to the caller; smaller ones the server's write timeout.
const streamWriteThreshold = 64 << 10

// rateLimitHeaders adds RateLimit-Limit, -Remaining and -Reset when a policy applied, unless
// the upstream sent its own.
func (h *Handler) rateLimitHeaders(x *exchange) {
	if !x.limited {
		return
	}
	rh := &x.ctx.Response.Header
	if len(rh.Peek("RateLimit-Limit")) > 0 {
		return
	}
	var b [20]byte
	rh.SetCanonical([]byte("Ratelimit-Limit"), fasthttp.AppendUint(b[:0], x.decision.Limit))
	rh.SetCanonical([]byte("Ratelimit-Remaining"), fasthttp.AppendUint(b[:0], max(x.decision.Remaining, 0)))
	rh.SetCanonical([]byte("Ratelimit-Reset"), fasthttp.AppendUint(b[:0], int(ceilSeconds(x.decision.Reset))))
}

// logError logs what extapi answered with a server-side status; client errors are the caller's.
func (h *Handler) logError(x *exchange, e *Error) {
	if e.Status() < 500 {
		return
	}
	attrs := []any{"code", e.Code}
	if x.route != nil {
		attrs = append(attrs, "api", x.route.api.slug, "connection", x.route.id)
	}
	if e.Err != nil {
		attrs = append(attrs, "err", e.Err.Error())
	}
	h.log.Warn("proxy: "+e.Msg, attrs...)
}
