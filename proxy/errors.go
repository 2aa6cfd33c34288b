package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/extapi/extapi/oauth"
	"github.com/extapi/extapi/ratelimit"
	"github.com/extapi/extapi/vault"
)

// Codes of the errors extapi itself answers with, in X-Extapi-Error and the body's error.code.
// Their statuses are in statusOf, the one place codes become HTTP.
const (
	CodeBadRequest             = "bad_request"
	CodeRouteNotFound          = "route_not_found"
	CodeConnectionNotFound     = "connection_not_found"
	CodeMethodNotAllowed       = "method_not_allowed"
	CodeAPIInactive            = "api_inactive"
	CodeConnectionInactive     = "connection_inactive"
	CodeCredentialsMissing     = "credentials_missing"
	CodeRequestTooLarge        = "request_too_large"
	CodeRateLimited            = "rate_limited"
	CodeHeaderTooLarge         = "request_header_too_large"
	CodeRequestTimeout         = "request_timeout"
	CodeInternal               = "internal_error"
	CodeSecretUnavailable      = "secret_unavailable"
	CodeAPIConfigInvalid       = "api_config_invalid"
	CodeAuthUnsupported        = "auth_unsupported"
	CodeUpstreamUnreachable    = "upstream_unreachable"
	CodeUpstreamTLS            = "upstream_tls"
	CodeStoreUnavailable       = "store_unavailable"
	CodeShuttingDown           = "shutting_down"
	CodeRateLimiterUnavailable = "rate_limiter_unavailable"
	CodeUpstreamTimeout        = "upstream_timeout"
	CodeConnectionExpired      = "connection_expired"
	CodeTokenRefreshFailed     = "token_refresh_failed"
	// CodeCallerGone: the caller closed its connection while its request waited (for a
	// rate-limit slot, or before a retry), so it was not sent. Nobody reads the answer; the
	// status is for metrics and the access log.
	CodeCallerGone = "caller_gone"
	// CodeTemplateInvalid: the API's base_url or headers cannot be resolved for the connection
	// (a provider_data value missing, or one that would change the URL's structure or a header).
	CodeTemplateInvalid = "template_invalid"
)

// statusOf maps every code to its HTTP status. Inactive APIs and connections are 409 Conflict:
// the request is fine, the state of what it names forbids it (423 Locked is WebDAV's lock).
var statusOf = map[string]int{
	CodeBadRequest:             fasthttp.StatusBadRequest,
	CodeRouteNotFound:          fasthttp.StatusNotFound,
	CodeConnectionNotFound:     fasthttp.StatusNotFound,
	CodeMethodNotAllowed:       fasthttp.StatusMethodNotAllowed,
	CodeAPIInactive:            fasthttp.StatusConflict,
	CodeConnectionInactive:     fasthttp.StatusConflict,
	CodeCredentialsMissing:     fasthttp.StatusConflict,
	CodeRequestTooLarge:        fasthttp.StatusRequestEntityTooLarge,
	CodeRateLimited:            fasthttp.StatusTooManyRequests,
	CodeHeaderTooLarge:         fasthttp.StatusRequestHeaderFieldsTooLarge,
	CodeRequestTimeout:         fasthttp.StatusRequestTimeout,
	CodeInternal:               fasthttp.StatusInternalServerError,
	CodeSecretUnavailable:      fasthttp.StatusInternalServerError,
	CodeAPIConfigInvalid:       fasthttp.StatusInternalServerError,
	CodeAuthUnsupported:        fasthttp.StatusNotImplemented,
	CodeUpstreamUnreachable:    fasthttp.StatusBadGateway,
	CodeUpstreamTLS:            fasthttp.StatusBadGateway,
	CodeStoreUnavailable:       fasthttp.StatusServiceUnavailable,
	CodeShuttingDown:           fasthttp.StatusServiceUnavailable,
	CodeRateLimiterUnavailable: fasthttp.StatusServiceUnavailable,
	CodeUpstreamTimeout:        fasthttp.StatusGatewayTimeout,
	CodeConnectionExpired:      fasthttp.StatusUnauthorized,
	CodeTokenRefreshFailed:     fasthttp.StatusBadGateway,
	CodeTemplateInvalid:        fasthttp.StatusBadGateway,
	CodeCallerGone:             statusCallerGone,
}

// statusCallerGone is nginx's 499 (client closed request): no HTTP status names a request
// whose caller left.
const statusCallerGone = 499

// Error is an answer extapi gives instead of forwarding (or after forwarding failed). Msg is
// shown to the caller and never holds a secret; Err is the cause, for the log only.
type Error struct {
	Code string
	Msg  string
	Err  error
	// RetryAfter, when set, is sent as Retry-After (rate_limited).
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Msg + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// Status is the HTTP status of e's code.
func (e *Error) Status() int {
	if s, ok := statusOf[e.Code]; ok {
		return s
	}
	return fasthttp.StatusInternalServerError
}

func errorf(code, msg string, cause error) *Error { return &Error{Code: code, Msg: msg, Err: cause} }

// Causes that lower layers of this package return; asError names them.
var (
	errBodyTooLarge = errors.New("request body exceeds the configured limit")
	errBodyRead     = errors.New("reading the caller's request body failed")
)

// dialError marks a failure to connect (TCP or TLS handshake): the request never reached the
// upstream, so any method may be retried.
type dialError struct{ err error }

func (e *dialError) Error() string { return "connect to upstream: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// asError turns any error of a stage into the answer: an *Error as it is; otherwise the
// sentinels and types of the layers below, matched with errors.Is and errors.As.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var (
		unknownAuthority x509.UnknownAuthorityError
		hostname         x509.HostnameError
		invalid          x509.CertificateInvalidError
		verify           *tls.CertificateVerificationError
		alert            tls.AlertError
		recordHeader     tls.RecordHeaderError
		dial             *dialError
		netErr           net.Error
		opErr            *net.OpError
	)
	switch {
	case errors.Is(err, errBodyTooLarge):
		return errorf(CodeRequestTooLarge, "the request body is larger than this proxy accepts", err)
	case errors.Is(err, errBodyRead):
		return errorf(CodeBadRequest, "the request body could not be read", err)
	case errors.Is(err, oauth.ErrConnectionExpired):
		return errorf(CodeConnectionExpired, "the connection's OAuth 2.0 authorization is no longer valid; re-authenticate the connection", err)
	case errors.Is(err, oauth.ErrRefreshFailed):
		e := errorf(CodeTokenRefreshFailed, "the provider did not renew the access token; try again later", err)
		if re := (*oauth.RefreshError)(nil); errors.As(err, &re) {
			e.RetryAfter = re.RetryAfter
		}
		return e
	case errors.Is(err, oauth.ErrConnectionInactive):
		return errorf(CodeConnectionInactive, "the connection is not active", err)
	case errors.Is(err, oauth.ErrNotOAuth2):
		return errorf(CodeAPIConfigInvalid, "the API's OAuth 2.0 configuration is unusable", err)
	case errors.Is(err, context.Canceled):
		return errorf(CodeShuttingDown, "extapi is shutting down", err)
	case errors.Is(err, ratelimit.ErrUnavailable):
		return errorf(CodeRateLimiterUnavailable, "the rate limiter is unavailable and this API refuses requests without it", err)
	case errors.Is(err, vault.ErrMalformed), errors.Is(err, vault.ErrUnknownKeyVersion), errors.Is(err, vault.ErrAuthFailed):
		return errorf(CodeSecretUnavailable, "a stored credential could not be opened", err)
	case errors.As(err, &unknownAuthority), errors.As(err, &hostname), errors.As(err, &invalid),
		errors.As(err, &verify), errors.As(err, &alert), errors.As(err, &recordHeader),
		// A TLS alert from the peer, e.g. TLS 1.3's refusal of our client certificate, which
		// arrives after the handshake: crypto/tls reports it as this Op.
		errors.As(err, &opErr) && opErr.Op == "remote error":
		return errorf(CodeUpstreamTLS, "the upstream's TLS certificate or handshake was refused", err)
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrDialTimeout),
		errors.Is(err, fasthttp.ErrTLSHandshakeTimeout), errors.As(err, &netErr) && netErr.Timeout():
		return errorf(CodeUpstreamTimeout, "the upstream did not answer in time", err)
	case errors.As(err, &dial):
		return errorf(CodeUpstreamUnreachable, "the upstream could not be reached", err)
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		return errorf(CodeUpstreamUnreachable, "no free connection to the upstream", err)
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return errorf(CodeUpstreamUnreachable, "the upstream's response is larger than this proxy accepts", err)
	}
	var small *fasthttp.ErrSmallBuffer
	if errors.As(err, &small) {
		return errorf(CodeHeaderTooLarge, "the request headers are too large", err)
	}
	// Whatever else a round trip returns is a connection that broke: reset, closed early,
	// malformed response.
	return errorf(CodeUpstreamUnreachable, "the connection to the upstream failed", err)
}

// writeError answers with e's code: X-Extapi-Error and {"error":{"code","message"}}, plus
// Retry-After when e says when to come back. Whatever the upstream had sent is dropped.
func writeError(ctx *fasthttp.RequestCtx, e *Error) {
	resp := &ctx.Response
	resp.Reset()
	resp.SetStatusCode(e.Status())
	resp.Header.SetContentType("application/json")
	resp.Header.Set("Cache-Control", "no-store")
	resp.Header.Set(headerError, e.Code)
	if e.RetryAfter > 0 {
		resp.Header.Set("Retry-After", strconv.FormatInt(ceilSeconds(e.RetryAfter), 10))
	}
	var buf [256]byte
	b := append(buf[:0], `{"error":{"code":`...)
	b = appendJSONString(b, e.Code)
	b = append(b, `,"message":`...)
	b = appendJSONString(b, e.Msg)
	b = append(b, "}}\n"...)
	resp.SetBody(b)
}

// ceilSeconds rounds d up to whole seconds, for Retry-After and RateLimit-Reset.
func ceilSeconds(d time.Duration) int64 { return int64((d + time.Second - 1) / time.Second) }

// appendJSONString appends s as a JSON string (messages are ours, but ids in them come from
// the caller).
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c == 0x7f || c == '<' || c == '>' || c == '&':
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
