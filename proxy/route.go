package proxy

import (
	"bytes"
	"errors"
	"net"
	"net/url"
	"strings"
)

// target is what the caller's request names, before its route is loaded. Its slices point
// into the request and live only as long as the handler runs.
type target struct {
	headerMode bool
	slug       []byte // path mode: the first segment; header mode: X-Extapi-Api (may be empty)
	connID     []byte
	// path is, in path mode, what follows /<slug>/<connection_id> ("" or "/…"); in header
	// mode, the whole path. It has passed checkPath.
	path  []byte
	query []byte // raw, without the '?'; empty when there is none
}

// parseTarget splits the raw request-target (fasthttp's RequestURI, not normalized) into a
// target. connHeader and apiHeader are X-Extapi-Connection and X-Extapi-Api; a connection
// header selects header mode.
func parseTarget(requestURI, connHeader, apiHeader []byte) (target, error) {
	var t target
	if len(requestURI) == 0 || requestURI[0] != '/' {
		// Absolute-form (http://host/…), authority-form and "*" never name a route here.
		return t, errorf(CodeBadRequest, "the request target must be a path starting with /", nil)
	}
	p, q, _ := bytes.Cut(requestURI, []byte{'?'})
	if err := checkQuery(q); err != nil {
		return t, err
	}
	if err := checkPath(p); err != nil {
		return t, err
	}
	t.query = q
	if len(connHeader) > 0 {
		if !validID(connHeader) {
			return t, errorf(CodeConnectionNotFound, "no such connection", nil)
		}
		if len(apiHeader) > 0 && !validID(apiHeader) {
			return t, errorf(CodeRouteNotFound, "no such API", nil)
		}
		t.headerMode, t.connID, t.slug, t.path = true, connHeader, apiHeader, p
		return t, nil
	}
	rest := p[1:]
	slug, rest, ok1 := bytes.Cut(rest, []byte{'/'})
	conn, rest, ok2 := bytes.Cut(rest, []byte{'/'})
	if !ok1 || len(slug) == 0 || len(conn) == 0 {
		return t, errorf(CodeRouteNotFound, "name the route as /<api_slug>/<connection_id>/<path> or with an X-Extapi-Connection header", nil)
	}
	if !validID(slug) {
		return t, errorf(CodeRouteNotFound, "no such API", nil)
	}
	if !validID(conn) {
		return t, errorf(CodeConnectionNotFound, "no such connection", nil)
	}
	t.slug, t.connID = slug, conn
	if ok2 {
		t.path = p[len(p)-len(rest)-1:] // keep the slash before rest
	}
	return t, nil
}

// validID accepts what a slug or an id can be made of; anything else cannot name a row, so it
// is refused before any lookup.
func validID(b []byte) bool {
	if len(b) == 0 || len(b) > 128 {
		return false
	}
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

var errPath = errors.New("unsafe path")

func badPath(msg string) *Error { return errorf(CodeBadRequest, msg, errPath) }

// checkPath refuses every path an upstream could read as leaving the base path or as
// something else than the caller wrote. p starts with '/'. Refused:
//   - bytes outside visible ASCII (CR, LF, NUL, space, …), '\' and '#';
//   - malformed percent-escapes, and escapes of '/', '\' or a control byte (an encoded slash
//     is refused, not passed on: upstreams disagree on whether it separates segments);
//   - "%25" before 2e, 2f or 5c (double-encoded '.', '/', '\'), for upstreams that decode twice;
//   - dot segments ("." or "..", also as %2e and before a ";" parameter, as in "..;/");
//   - empty segments ("//"), except a trailing slash.
func checkPath(p []byte) error {
	for seg := p[1:]; ; {
		s, rest, more := bytes.Cut(seg, []byte{'/'})
		if len(s) == 0 && more {
			return badPath("empty path segment (//)")
		}
		if err := checkSegment(s); err != nil {
			return err
		}
		if !more {
			return nil
		}
		seg = rest
	}
}

func checkSegment(s []byte) error {
	dots, other := 0, false // of the decoded segment up to its first ';'
	param := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '\\' || c == '#' {
			return badPath("the path holds a byte that is not allowed (control, space, non-ASCII, \\ or #)")
		}
		if c == ';' {
			param = true
		}
		if c == '%' {
			if i+2 >= len(s) || unhex(s[i+1]) < 0 || unhex(s[i+2]) < 0 {
				return badPath("malformed percent-escape in the path")
			}
			c = byte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			switch {
			case c == '/' || c == '\\':
				return badPath("encoded slash or backslash in the path")
			case c < 0x20 || c == 0x7f:
				return badPath("encoded control byte in the path")
			case c == '%' && i+4 < len(s) && isDangerousEscape(s[i+3], s[i+4]):
				return badPath("double-encoded dot, slash or backslash in the path")
			}
			i += 2
		}
		if param {
			continue
		}
		if c == '.' {
			dots++
		} else {
			other = true
		}
	}
	if !other && (dots == 1 || dots == 2) {
		return badPath("dot segment (. or ..) in the path")
	}
	return nil
}

// isDangerousEscape: hi lo spell 2e, 2f or 5c.
func isDangerousEscape(hi, lo byte) bool {
	lo |= 0x20
	return hi == '2' && (lo == 'e' || lo == 'f') || hi == '5' && lo == 'c'
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// checkQuery refuses bytes outside visible ASCII and '#'.
func checkQuery(q []byte) error {
	for _, c := range q {
		if c < 0x21 || c > 0x7e || c == '#' {
			return errorf(CodeBadRequest, "the query holds a byte that is not allowed (control, space, non-ASCII or #)", errPath)
		}
	}
	return nil
}

// baseURL is an API's base_url, taken apart once when the API is loaded.
type baseURL struct {
	origin     string // "https://host[:port]", as configured
	host       string // the Host header
	addr       string // host:port to dial
	serverName string // for TLS
	path       string // escaped, without a trailing slash; "" for the root
	query      string // raw query of the base URL, usually ""
	tls        bool
}

func parseBaseURL(s string) (baseURL, error) {
	var b baseURL
	if s == "" {
		return b, errors.New("base_url is not set")
	}
	u, err := url.Parse(s)
	if err != nil {
		return b, errors.New("base_url does not parse")
	}
	switch u.Scheme {
	case "https":
		b.tls = true
	case "http":
	default:
		return b, errors.New("base_url must be http:// or https://")
	}
	if u.Host == "" || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return b, errors.New("base_url must be scheme://host[:port][/path][?query], without userinfo or fragment")
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "80"
		if b.tls {
			port = "443"
		}
	}
	b.origin = u.Scheme + "://" + u.Host
	b.host = u.Host
	b.addr = net.JoinHostPort(host, port)
	b.serverName = host
	b.path = strings.TrimRight(u.EscapedPath(), "/")
	if b.path != "" {
		if err := checkPath([]byte(b.path)); err != nil {
			return b, errors.New("base_url path: " + err.(*Error).Msg)
		}
	}
	if err := checkQuery([]byte(u.RawQuery)); err != nil || strings.ContainsRune(u.RawQuery, '\\') {
		return b, errors.New("base_url query holds a byte that is not allowed (write a backslash as %5C)")
	}
	b.query = u.RawQuery
	return b, nil
}

// appendURL appends the upstream URL without its query: the base's origin and a path that
// starts with the base path. In header mode the caller's path is forwarded as it is and must
// already be inside the base path; in path mode the rest is appended to the base path.
func appendURL(dst []byte, b *baseURL, t *target) ([]byte, error) {
	dst = append(dst, b.origin...)
	if t.headerMode {
		if !withinBase(t.path, b.path) {
			return dst, errorf(CodeBadRequest, "in header mode the path must start with the API's base path "+b.path, errPath)
		}
		return append(dst, t.path...), nil
	}
	dst = append(dst, b.path...)
	if len(t.path) == 0 {
		if b.path == "" {
			dst = append(dst, '/')
		}
		return dst, nil
	}
	return append(dst, t.path...), nil
}

// withinBase reports whether p is base or below it, segment-wise.
func withinBase(p []byte, base string) bool {
	if base == "" {
		return true
	}
	if !bytes.HasPrefix(p, []byte(base)) {
		return false
	}
	return len(p) == len(base) || p[len(base)] == '/'
}

// appendQuery appends the upstream query: the base URL's own, then the caller's as sent (but a
// backslash, which no URI may hold unencoded, goes as %5C: the same value once decoded). When
// strip names the parameter the credential occupies, the caller's pairs with that key are
// dropped (compared decoded and case-insensitively; pairs split on '&' and on ';', which some
// servers also take as a separator), the other pairs kept with their separators.
func appendQuery(dst []byte, base string, q []byte, strip string) []byte {
	start := len(dst)
	dst = append(dst, base...)
	if strip == "" {
		if len(q) > 0 {
			if len(dst) > start {
				dst = append(dst, '&')
			}
			dst = appendQueryBytes(dst, q)
		}
		return dst
	}
	sep := byte('&') // the separator before the current pair
	for len(q) > 0 {
		pair, next := q, byte(0)
		if i := bytes.IndexAny(q, "&;"); i >= 0 {
			pair, next, q = q[:i], q[i], q[i+1:]
		} else {
			q = nil
		}
		if len(pair) > 0 && !keyIs(pair, strip) {
			if len(dst) > start {
				dst = append(dst, sep)
			}
			dst = appendQueryBytes(dst, pair)
		}
		if next != 0 {
			sep = next
		}
	}
	return dst
}

// appendQueryBytes appends q with each backslash percent-encoded.
func appendQueryBytes(dst, q []byte) []byte {
	for {
		i := bytes.IndexByte(q, '\\')
		if i < 0 {
			return append(dst, q...)
		}
		dst = append(append(dst, q[:i]...), "%5C"...)
		q = q[i+1:]
	}
}

// keyIs reports whether the key of pair, percent- and '+'-decoded, equals name ignoring case.
func keyIs(pair []byte, name string) bool {
	k, _, _ := bytes.Cut(pair, []byte{'='})
	n := 0
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '+':
			c = ' '
		case c == '%' && i+2 < len(k) && unhex(k[i+1]) >= 0 && unhex(k[i+2]) >= 0:
			c = byte(unhex(k[i+1])<<4 | unhex(k[i+2]))
			i += 2
		}
		if n >= len(name) || lower(c) != lower(name[n]) {
			return false
		}
		n++
	}
	return n == len(name)
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
