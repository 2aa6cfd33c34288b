package proxy

import (
	"bytes"
	"errors"
	"net/textproto"
	"strings"

	"github.com/valyala/fasthttp"
)

// Control headers of extapi. Every X-Extapi-* header is removed in both directions.
const (
	headerConnection = "X-Extapi-Connection"
	headerAPI        = "X-Extapi-Api"
	headerError      = "X-Extapi-Error"
	controlPrefix    = "X-Extapi-"
)

// maxConnectionTokens bounds the header names a Connection header may list for removal.
const maxConnectionTokens = 16

var errHeaderValue = errors.New("header value holds CR, LF or NUL")

// skipRequestHeader reports whether the caller's header k (canonical) stays behind: hop-by-hop
// headers, framing (the proxy frames the body itself), Host (set to the upstream's), Expect
// (the proxy has already answered it), control headers, and every header the route sets
// itself: Authorization, the credential's header and the API's configured headers.
func skipRequestHeader(k []byte, strip [][]byte) bool {
	switch string(k) {
	case "Connection", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
		"Host", "Content-Length", "Expect", "Authorization":
		return true
	}
	if bytes.HasPrefix(k, []byte("Proxy-")) || bytes.HasPrefix(k, []byte(controlPrefix)) {
		return true
	}
	for _, s := range strip {
		if bytes.Equal(k, s) {
			return true
		}
	}
	return false
}

// copyRequestHeaders copies the caller's headers that may go upstream, in the order they came.
// A header named by the caller's Connection header is removed too (RFC 9110 7.6.1). A value
// holding CR, LF or NUL is refused rather than forwarded.
func copyRequestHeaders(dst, src *fasthttp.RequestHeader, strip [][]byte) error {
	var tokens [maxConnectionTokens][]byte
	n := 0
	for k, v := range src.AllInOrder() {
		if string(k) == "Connection" {
			n = appendTokens(&tokens, n, v)
		}
		if skipRequestHeader(k, strip) {
			continue
		}
		if hasCRLFNUL(v) {
			return errorf(CodeBadRequest, "a request header value holds CR, LF or NUL", errHeaderValue)
		}
		dst.AddBytesKV(k, v)
	}
	for _, t := range tokens[:n] {
		dst.DelBytes(t)
	}
	return nil
}

// hasCRLFNUL reports a byte that would end or corrupt a header line.
func hasCRLFNUL(v []byte) bool {
	for _, c := range v {
		if c == '\r' || c == '\n' || c == 0 {
			return true
		}
	}
	return false
}

// appendTokens adds the comma-separated names of a Connection value, except close and
// keep-alive, which name no header.
func appendTokens(tokens *[maxConnectionTokens][]byte, n int, v []byte) int {
	for len(v) > 0 && n < len(tokens) {
		var t []byte
		t, v, _ = bytes.Cut(v, []byte{','})
		t = bytes.TrimSpace(t)
		if len(t) == 0 || bytes.EqualFold(t, []byte("close")) || bytes.EqualFold(t, []byte("keep-alive")) {
			continue
		}
		tokens[n] = t
		n++
	}
	return n
}

// copyResponseHeaders copies the upstream's response headers that may go back to the caller:
// all but the hop-by-hop ones, those its Connection header names, the framing (fasthttp writes
// Content-Length or chunked itself) and any X-Extapi-* header (an upstream cannot pose as
// extapi). Date cannot be copied: fasthttp writes its own (see NewServer).
func copyResponseHeaders(dst, src *fasthttp.ResponseHeader) {
	var tokens [maxConnectionTokens][]byte
	n := 0
	for k, v := range src.All() {
		if string(k) == "Connection" {
			n = appendTokens(&tokens, n, v)
			continue
		}
		if string(k) == "Content-Length" || string(k) == "Transfer-Encoding" || isHopByHop(k) ||
			bytes.HasPrefix(k, []byte("Proxy-")) || bytes.HasPrefix(k, []byte(controlPrefix)) {
			continue
		}
		dst.AddBytesKV(k, v)
	}
	for _, t := range tokens[:n] {
		dst.DelBytes(t)
	}
}

func isHopByHop(k []byte) bool {
	switch string(k) {
	case "Keep-Alive", "Te", "Trailer", "Upgrade":
		return true
	}
	return false
}

// canonicalHeader is the form fasthttp gives header names (X-Api-Key), for comparisons.
func canonicalHeader(name string) string { return textproto.CanonicalMIMEHeaderKey(name) }

// validHeaderName: an RFC 9110 token.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

// reservedHeader: names the API's configured headers may not set, because the proxy owns them.
func reservedHeader(canonical string) bool {
	switch canonical {
	case "Host", "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Te", "Trailer",
		"Upgrade", "Expect":
		return true
	}
	return strings.HasPrefix(canonical, "Proxy-") || strings.HasPrefix(canonical, controlPrefix)
}
