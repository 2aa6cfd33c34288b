package proxy

import (
	"errors"
	"net/url"
	"path"
	"strings"
	"testing"

	"github.com/extapi/extapi/store"
)

var testBase = mustBase("https://api.example.com:8443/v1")

func mustBase(s string) baseURL {
	b, err := parseBaseURL(s)
	if err != nil {
		panic(err)
	}
	return b
}

// upstreamFor runs the routing of one raw request-target as the handler does and returns the
// upstream URL, or the error the caller gets.
func upstreamFor(b *baseURL, requestURI, connHeader string) (string, error) {
	var conn, api []byte
	if connHeader != "" {
		conn = []byte(connHeader)
	}
	t, err := parseTarget([]byte(requestURI), conn, api)
	if err != nil {
		return "", err
	}
	u, err := appendURL(nil, b, &t)
	if err != nil {
		return "", err
	}
	if q := appendQuery(nil, b.query, t.query, ""); len(q) > 0 {
		u = append(append(u, '?'), q...)
	}
	return string(u), nil
}

func TestUpstreamURL(t *testing.T) {
	cases := []struct {
		desc, uri, conn string
		want            string // the upstream URL, or the error code
	}{
		{"path mode", "/ex/conn_1/charges?limit=3", "", "https://api.example.com:8443/v1/charges?limit=3"},
		{"path mode, trailing slash", "/ex/conn_1/charges/", "", "https://api.example.com:8443/v1/charges/"},
		{"path mode, no rest", "/ex/conn_1", "", "https://api.example.com:8443/v1"},
		{"path mode, root", "/ex/conn_1/", "", "https://api.example.com:8443/v1/"},
		{"path mode, escapes kept as sent", "/ex/conn_1/a%20b/%C3%A9?x=%2F%2e", "", "https://api.example.com:8443/v1/a%20b/%C3%A9?x=%2F%2e"},
		{"path mode, only a slug", "/ex", "", CodeRouteNotFound},
		{"path mode, empty connection", "/ex//charges", "", CodeBadRequest},
		{"header mode", "/v1/charges?a=1", "conn_1", "https://api.example.com:8443/v1/charges?a=1"},
		{"header mode, the base path itself", "/v1", "conn_1", "https://api.example.com:8443/v1"},
		{"header mode, outside the base path", "/v2/charges", "conn_1", CodeBadRequest},
		{"header mode, a longer segment is not the base", "/v10/charges", "conn_1", CodeBadRequest},
		{"header mode, bad connection id", "/v1/x", "conn 1", CodeConnectionNotFound},

		{"dot-dot", "/ex/conn_1/../admin", "", CodeBadRequest},
		{"dot-dot at the end", "/ex/conn_1/a/..", "", CodeBadRequest},
		{"dot", "/ex/conn_1/./a", "", CodeBadRequest},
		{"encoded dot-dot", "/ex/conn_1/%2e%2e/admin", "", CodeBadRequest},
		{"half-encoded dot-dot", "/ex/conn_1/.%2E/admin", "", CodeBadRequest},
		{"dot-dot with a path parameter", "/ex/conn_1/..;/admin", "", CodeBadRequest},
		{"double-encoded dot-dot", "/ex/conn_1/%252e%252e/admin", "", CodeBadRequest},
		{"encoded slash", "/ex/conn_1/a%2fb", "", CodeBadRequest},
		{"encoded slash, upper case", "/ex/conn_1/a%2Fb", "", CodeBadRequest},
		{"double-encoded slash", "/ex/conn_1/a%252fb", "", CodeBadRequest},
		{"backslash", "/ex/conn_1/..\\admin", "", CodeBadRequest},
		{"encoded backslash", "/ex/conn_1/..%5cadmin", "", CodeBadRequest},
		{"double slash to another host", "/ex/conn_1//evil.com/x", "", CodeBadRequest},
		{"double slash in header mode", "//evil.com/v1/x", "conn_1", CodeBadRequest},
		{"absolute-form", "http://evil.com/ex/conn_1/x", "", CodeBadRequest},
		{"absolute-form in header mode", "https://evil.com/v1/x", "conn_1", CodeBadRequest},
		{"asterisk-form", "*", "", CodeBadRequest},
		{"authority-form", "evil.com:443", "", CodeBadRequest},
		{"CR LF in the path", "/ex/conn_1/a\r\nHost: evil", "", CodeBadRequest},
		{"encoded CR LF in the path", "/ex/conn_1/a%0d%0aHost:%20evil", "", CodeBadRequest},
		{"NUL", "/ex/conn_1/a%00", "", CodeBadRequest},
		{"LF in the query", "/ex/conn_1/a?x=\n", "", CodeBadRequest},
		{"space", "/ex/conn_1/a b", "", CodeBadRequest},
		{"fragment", "/ex/conn_1/a#frag", "", CodeBadRequest},
		{"malformed escape", "/ex/conn_1/a%zz", "", CodeBadRequest},
		{"truncated escape", "/ex/conn_1/a%2", "", CodeBadRequest},
		{"raw non-ASCII", "/ex/conn_1/\xc3\xa9", "", CodeBadRequest},
		{"three dots are a name", "/ex/conn_1/.../a", "", "https://api.example.com:8443/v1/.../a"},
		{"dots in a name", "/ex/conn_1/a..b/.x", "", "https://api.example.com:8443/v1/a..b/.x"},
		{"user info in the path is just a path", "/ex/conn_1/@evil.com", "", "https://api.example.com:8443/v1/@evil.com"},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			got, err := upstreamFor(&testBase, tc.uri, tc.conn)
			if strings.HasPrefix(tc.want, "https://") {
				if err != nil || got != tc.want {
					t.Fatalf("upstream URL of %q = %q, %v; want %q", tc.uri, got, err, tc.want)
				}
				checkInvariant(t, &testBase, got)
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Code != tc.want {
				t.Fatalf("upstream URL of %q = %q, %v; want error %s", tc.uri, got, err, tc.want)
			}
		})
	}
}

func TestParseBaseURL(t *testing.T) {
	cases := []struct {
		desc, in string
		ok       bool
	}{
		{"https with path", "https://api.stripe.com/v1", true},
		{"trailing slash", "https://api.stripe.com/v1/", true},
		{"query kept", "https://x.example/api?version=2", true},
		{"http with port", "http://127.0.0.1:8080", true},
		{"empty", "", false},
		{"ftp", "ftp://x.example/", false},
		{"userinfo", "https://u:p@x.example/", false},
		{"fragment", "https://x.example/#f", false},
		{"no host", "https:///v1", false},
		{"dot segment", "https://x.example/v1/../admin", false},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			b, err := parseBaseURL(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("parseBaseURL(%q) = %+v, %v; want ok %v", tc.in, b, err, tc.ok)
			}
		})
	}
	b := mustBase("https://api.stripe.com/v1/")
	if b.addr != "api.stripe.com:443" || b.host != "api.stripe.com" || b.path != "/v1" || !b.tls {
		t.Errorf("parseBaseURL = %+v; want addr api.stripe.com:443, host api.stripe.com, path /v1, TLS", b)
	}
}

func TestAppendQuery(t *testing.T) {
	cases := []struct {
		desc, base, q, strip, want string
	}{
		{"as sent without a credential parameter", "", "b=2;c=3&&a", "", "b=2;c=3&&a"},
		{"base first", "v=2", "a=1", "", "v=2&a=1"},
		{"the caller's copy dropped", "", "a=1&api_key=x&b=2", "api_key", "a=1&b=2"},
		{"dropped however encoded or cased", "", "API%5Fkey=x&Api_Key=y&api_key&a=1", "api_key", "a=1"},
		{"dropped after a semicolon", "", "a=1;api_key=x&b=2", "api_key", "a=1&b=2"},
		{"a longer key stays", "", "api_keys=1&xapi_key=2", "api_key", "api_keys=1&xapi_key=2"},
		{"a backslash is encoded", "", `a=\b\&c=\`, "", "a=%5Cb%5C&c=%5C"},
		{"a backslash is encoded when stripping", "", `a=\b&api_key=x&c=d\`, "api_key", "a=%5Cb&c=d%5C"},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			if got := string(appendQuery(nil, tc.base, []byte(tc.q), tc.strip)); got != tc.want {
				t.Errorf("appendQuery(%q, %q, strip %q) = %q; want %q", tc.base, tc.q, tc.strip, got, tc.want)
			}
		})
	}
}

// checkInvariant fails unless u is on b's scheme, host and port, contains no byte an HTTP/1.1
// request line could be split on, and stays below b's path however an upstream reads it:
// decoded, with dot segments resolved, with backslashes as slashes.
func checkInvariant(t *testing.T, b *baseURL, u string) {
	t.Helper()
	for i := 0; i < len(u); i++ {
		if c := u[i]; c <= ' ' || c >= 0x7f || c == '\\' || c == '#' {
			t.Fatalf("upstream URL %q holds byte %#x", u, c)
		}
	}
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatalf("upstream URL %q does not parse: %v", u, err)
	}
	if pu.Scheme+"://"+pu.Host != b.origin || pu.User != nil || pu.Opaque != "" {
		t.Fatalf("upstream URL %q leaves origin %s", u, b.origin)
	}
	raw := pu.EscapedPath()
	if !strings.HasPrefix(raw, b.path) {
		t.Fatalf("upstream URL %q: path %q does not start with the base path %q", u, raw, b.path)
	}
	for _, p := range []string{pu.Path, strings.ReplaceAll(pu.Path, "\\", "/")} {
		cleaned := path.Clean("/" + p)
		if b.path != "" && cleaned != b.path && !strings.HasPrefix(cleaned, b.path+"/") {
			t.Fatalf("upstream URL %q: path resolves to %q, outside the base path %q", u, cleaned, b.path)
		}
		for _, seg := range strings.Split(p, "/") {
			if seg == ".." || seg == "." {
				t.Fatalf("upstream URL %q: decoded path holds a dot segment", u)
			}
		}
	}
	if strings.Contains(strings.ToLower(raw), "%2f") || strings.Contains(strings.ToLower(raw), "%5c") {
		t.Fatalf("upstream URL %q: path holds an encoded slash or backslash", u)
	}
}

// FuzzUpstreamURL checks that no request-target, in either routing mode, yields an upstream
// URL that leaves the base URL's origin or path.
func FuzzUpstreamURL(f *testing.F) {
	for _, s := range []string{
		"/ex/conn_1/charges?limit=3", "/ex/conn_1/../x", "/ex/conn_1/%2e%2e/x", "/ex/conn_1/a%2fb",
		"/ex/conn_1//evil.com", "http://evil.com/x", "/ex/conn_1/..;/x", "/ex/conn_1/%252e%252e",
		"/ex/conn_1/a\\b", "/v1/x?y", "/ex/conn_1/a%c0%ae%c0%ae/", "/ex/conn_1/.%2e/",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	bases := []baseURL{testBase, mustBase("http://127.0.0.1:9"), mustBase("https://h.example/a/b/")}
	f.Fuzz(func(t *testing.T, uri string, headerMode bool) {
		conn := ""
		if headerMode {
			conn = "conn_1"
		}
		for i := range bases {
			u, err := upstreamFor(&bases[i], uri, conn)
			if err != nil {
				var e *Error
				if !errors.As(err, &e) || e.Status() >= 500 {
					t.Fatalf("upstream URL of %q: %v; want a 4xx *Error", uri, err)
				}
				continue
			}
			checkInvariant(t, &bases[i], u)
		}
	})
}

// TestPathEscapesThroughProxy sends the escape attempts as raw bytes to a running proxy: each
// is refused before anything reaches the upstream.
func TestPathEscapesThroughProxy(t *testing.T) {
	up := newUpstream(t, nil)
	e := sqliteEnv(t, Options{})
	a := e.api("esc", store.APIConfig{BaseURL: up.url + "/v1", AuthType: store.AuthBearer}, nil)
	c := e.conn(a, func(c *store.Connection) { c.Credentials.AccessToken = e.sealConn(c, "credentials.access_token", "t") })
	p := "/esc/" + c.ID
	for _, target := range []string{
		p + "/../admin", p + "/%2e%2e/admin", p + "/.%2E/admin", p + "/..;/admin", p + "/%252e%252e/admin",
		p + "/a%2fb", p + "/a%5cb", p + "/a\\..\\b", p + "//evil.example/x", p + "/a%00", p + "/a%0d%0aX:%20y",
		"http://evil.example" + p + "/x", "//evil.example" + p, "*",
	} {
		n := up.hits()
		r := raw(t, e.addr, "GET "+target+" HTTP/1.1\r\nHost: p\r\n\r\n")
		if r.Status != 400 || up.hits() != n {
			t.Errorf("GET %s = %d, %d upstream hits; want 400 and none", target, r.Status, up.hits()-n)
		}
	}
	// Header mode: the path must stay within the base path.
	for _, target := range []string{"/admin", "/v1/../admin", "/v10/x", "//evil.example/v1/x"} {
		n := up.hits()
		r := raw(t, e.addr, "GET "+target+" HTTP/1.1\r\nHost: p\r\nX-Extapi-Connection: "+c.ID+"\r\n\r\n")
		if r.Status != 400 || up.hits() != n {
			t.Errorf("header mode GET %s = %d, %d upstream hits; want 400 and none", target, r.Status, up.hits()-n)
		}
	}
	// What is allowed arrives below the base path, as written.
	for target, want := range map[string]string{p + "/.../a": "/v1/.../a", p + "/@evil.example": "/v1/@evil.example", p + "/a%20b?x=%2F": "/v1/a%20b?x=%2F"} {
		n := up.hits()
		if r := raw(t, e.addr, "GET "+target+" HTTP/1.1\r\nHost: p\r\n\r\n"); r.Status != 200 || up.hits() != n+1 {
			t.Fatalf("GET %s = %d; want 200", target, r.Status)
		}
		if got := up.requests()[n].URI; got != want {
			t.Errorf("GET %s arrived as %s; want %s", target, got, want)
		}
	}
}
