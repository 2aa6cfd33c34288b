package proxy

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/extapi/extapi/store"
)

// clientPool shares one fasthttp.HostClient (a keep-alive connection pool) among the APIs of
// the same origin and TLS settings.
type clientPool struct {
	mu      sync.Mutex
	clients map[string]*fasthttp.HostClient
	dialer  fasthttp.TCPDialer // resolves with a DNS cache
}

// client returns the connection pool of b's origin with cfg (nil: plain HTTP), creating it once.
// tlsKey distinguishes TLS settings other than the defaults.
func (h *Handler) client(b *baseURL, cfg *tls.Config, tlsKey string) *fasthttp.HostClient {
	key := b.origin + "|" + tlsKey
	p := &h.clients
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.clients[key]; c != nil {
		return c
	}
	c := &fasthttp.HostClient{
		Addr:                     b.addr,
		IsTLS:                    b.tls,
		DialTimeout:              h.dial(cfg),
		MaxConns:                 h.opts.MaxConnsPerHost,
		MaxIdleConnDuration:      h.opts.IdleConnTimeout,
		MaxConnWaitTimeout:       h.opts.DefaultTimeout, // cut to the request's own deadline
		ReadBufferSize:           16 << 10,              // response headers up to 16 KiB
		WriteBufferSize:          16 << 10,
		NoDefaultUserAgentHeader: true,
		DisablePathNormalizing:   true, // the path was checked and is sent as it is
		SecureErrorLogMessage:    true,
		StreamResponseBody:       true,
		// One transparent resend, for a pooled keep-alive connection the upstream had closed
		// while idle (net/http does the same); retry_config retries come on top.
		MaxIdemponentCallAttempts: 2,
		RetryIfErr:                retryStale,
	}
	if p.clients == nil {
		p.clients = map[string]*fasthttp.HostClient{}
	}
	p.clients[key] = c
	return c
}

func (p *clientPool) closeIdle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.clients {
		c.CloseIdleConnections()
	}
}

// dial connects and, for HTTPS, completes the TLS handshake before fasthttp writes anything, so
// that every failure here is a dialError: the request provably never reached the upstream.
func (h *Handler) dial(cfg *tls.Config) fasthttp.DialFuncWithTimeout {
	return func(addr string, timeout time.Duration) (net.Conn, error) {
		if timeout <= 0 {
			timeout = h.opts.DialTimeout
		}
		deadline := time.Now().Add(timeout)
		conn, err := h.dialTCP(addr, timeout)
		if err != nil {
			return nil, &dialError{err}
		}
		if cfg == nil {
			return conn, nil
		}
		tc := tls.Client(conn, cfg)
		if err := tc.SetDeadline(deadline); err != nil {
			conn.Close()
			return nil, &dialError{err}
		}
		if err := tc.Handshake(); err != nil {
			conn.Close()
			return nil, &dialError{err}
		}
		if err := tc.SetDeadline(time.Time{}); err != nil {
			conn.Close()
			return nil, &dialError{err}
		}
		return tc, nil
	}
}

// retryStale lets fasthttp resend a replayable request once when its connection closed before
// any byte of the response: the pooled keep-alive connection had gone stale.
func retryStale(req *fasthttp.Request, attempts int, err error) (resetTimeout, retry bool) {
	var nothing fasthttp.ErrNothingRead
	stale := errors.Is(err, io.EOF) || errors.As(err, &nothing) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
	return false, stale && replayableMethod(&req.Header)
}

// replayableMethod: the method is idempotent (RFC 9110 9.2.2) or the request carries an
// Idempotency-Key.
func replayableMethod(h *fasthttp.RequestHeader) bool {
	if h.IsGet() || h.IsHead() || h.IsOptions() || h.IsPut() || h.IsDelete() {
		return true
	}
	return len(h.Peek("Idempotency-Key")) > 0
}

// tlsConfig builds the client TLS configuration of an HTTPS API: the system roots plus the
// API's CA bundle, and its client certificate (mTLS) with the opened key. key is "" with the
// defaults, else a digest of the settings, naming the connection pool they need.
func tlsConfig(b *baseURL, t *store.TLSConfig, clientKey []byte) (*tls.Config, string, error) {
	cfg := &tls.Config{ServerName: b.serverName, MinVersion: tls.VersionTLS12,
		ClientSessionCache: tls.NewLRUClientSessionCache(0)} // resumed handshakes on new connections
	if t == nil || (t.CABundle == "" && t.ClientCert == "" && !t.ClientKey.IsSet()) {
		return cfg, "", nil
	}
	d := sha256.New()
	if t.CABundle != "" {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM([]byte(t.CABundle)) {
			return nil, "", errors.New("api_config.tls.ca_bundle holds no PEM certificate")
		}
		cfg.RootCAs = pool
		d.Write([]byte(t.CABundle))
	}
	if t.ClientCert != "" || t.ClientKey.IsSet() {
		pair, err := tls.X509KeyPair([]byte(t.ClientCert), clientKey)
		if err != nil {
			return nil, "", errors.New("api_config.tls.client_cert and client_key do not form a key pair")
		}
		cfg.Certificates = []tls.Certificate{pair}
		d.Write([]byte{0})
		d.Write([]byte(t.ClientCert))
		d.Write([]byte{0})
		d.Write(t.ClientKey)
	}
	return cfg, hex.EncodeToString(d.Sum(nil)), nil
}

// retryPolicy is an API's retry_config.
type retryPolicy struct {
	max     int
	backoff time.Duration
}

// Retry defaults and bounds.
const (
	defaultBackoff = 100 * time.Millisecond // retry_config.backoff_ms 0 with max_retries > 0
	maxBackoff     = 30 * time.Second       // one wait never grows beyond this
)

// delay is the wait before retry n (0-based): backoff·2ⁿ, capped, with "equal jitter" (a
// random point in its upper half) so that callers retrying together spread out.
func (p retryPolicy) delay(n int, jitter func(time.Duration) time.Duration) time.Duration {
	d := p.backoff
	for i := 0; i < n && d < maxBackoff; i++ {
		d *= 2
	}
	d = min(d, maxBackoff)
	return d/2 + jitter(d-d/2)
}

// retryableStatus: the statuses worth another try.
func retryableStatus(s int) bool {
	return s == fasthttp.StatusTooManyRequests || s == fasthttp.StatusBadGateway ||
		s == fasthttp.StatusServiceUnavailable || s == fasthttp.StatusGatewayTimeout
}

// isDial reports a failure before anything was sent that another try may cure: not a refused
// certificate, which would be refused again.
func isDial(err error) bool {
	var d *dialError
	return errors.As(err, &d) && asError(err).Code != CodeUpstreamTLS
}
