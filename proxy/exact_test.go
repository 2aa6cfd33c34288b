package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/extapi/extapi/store"
	"github.com/extapi/extapi/store/storetest"
)

// binaryBody holds every byte value, CR LF and NUL included.
func binaryBody() []byte {
	b := make([]byte, 0, 512)
	for i := range 512 {
		b = append(b, byte(i))
	}
	return b
}

// The caller's copies of headers some APIs set themselves.
const (
	callerKeys    = "X-Api-Key: caller-key\nX-Api-Key: caller-key-2"
	callerVersion = "Stripe-Version: caller-version"
)

// callerHeaders are sent on every request: ordinary headers that must pass, and the
// credentials, hop-by-hop and control headers that must not.
const callerHeaders = "User-Agent: caller/1.0\r\n" +
	"Content-Type: application/octet-stream\r\n" +
	"X-Custom: kept\r\n" +
	"Idempotency-Key: idem-1\r\n" +
	"Cookie: a=1; b=2\r\n" +
	"Authorization: Bearer caller-token\r\n" +
	"authorization: Basic Y2FsbGVyOnBhc3M=\r\n" +
	"X-API-Key: caller-key\r\n" +
	"x-api-key: caller-key-2\r\n" +
	"Stripe-Version: caller-version\r\n" +
	"Proxy-Authorization: Basic eDp5\r\n" +
	"Connection: keep-alive, X-Hop\r\n" +
	"X-Hop: dropped\r\n" +
	"Keep-Alive: timeout=5\r\n" +
	"TE: trailers\r\n" +
	"Upgrade: websocket\r\n" +
	"X-Extapi-Trace: 1\r\n"

func TestExactUpstreamRequest(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		up := newUpstream(t, nil)
		e := newProxyEnv(t, s, newKeyring(t), Options{})
		base := up.url + "/v1"
		cases := []struct {
			desc  string
			cfg   store.APIConfig
			api   func(e *proxyEnv, a *store.ExternalAPI)
			conn  func(e *proxyEnv, c *store.Connection)
			query string   // what the credential adds to the query
			creds []string // the credential header(s) that must arrive, "Name: value"
			// passes: the caller's X-API-Key and Stripe-Version headers that are neither the
			// credential nor configured for this API, and so pass as any other header.
			passes []string
		}{
			{desc: "api_key from the connection, custom header and prefix",
				cfg: store.APIConfig{BaseURL: base, AuthType: store.AuthAPIKey,
					APIKey: &store.APIKeyConfig{HeaderName: "X-API-Key", KeyPrefix: "ApiKey "}},
				conn: func(e *proxyEnv, c *store.Connection) {
					c.Credentials.APIKey = e.sealConn(c, "credentials.api_key", "conn-key")
				},
				creds:  []string{"X-Api-Key: ApiKey conn-key"},
				passes: []string{callerVersion}},
			{desc: "api_key default header from the API, connection has none",
				cfg: store.APIConfig{BaseURL: base, AuthType: store.AuthAPIKey, APIKey: &store.APIKeyConfig{}},
				api: func(e *proxyEnv, a *store.ExternalAPI) {
					a.APIConfig.APIKey.Key = e.sealAPI(a, "api_config.api_key.key", "api-key")
				},
				creds:  []string{"X-Api-Key: api-key"},
				passes: []string{callerVersion}},
			{desc: "api_key as a query parameter",
				passes: []string{callerKeys, callerVersion},
				cfg: store.APIConfig{BaseURL: base, AuthType: store.AuthAPIKey,
					APIKey: &store.APIKeyConfig{QueryParam: "api_key"}},
				conn: func(e *proxyEnv, c *store.Connection) {
					c.Credentials.APIKey = e.sealConn(c, "credentials.api_key", "k&y=1 +")
				},
				query: "api_key=k%26y%3D1+%2B"},
			{desc: "bearer from the connection's access token",
				passes: []string{callerKeys, callerVersion},
				cfg:    store.APIConfig{BaseURL: base, AuthType: store.AuthBearer},
				conn: func(e *proxyEnv, c *store.Connection) {
					c.Credentials.AccessToken = e.sealConn(c, "credentials.access_token", "at-1")
				},
				creds: []string{"Authorization: Bearer at-1"}},
			{desc: "bearer with one API key for all, as the designed Stripe example",
				cfg: store.APIConfig{BaseURL: base, AuthType: store.AuthBearer, Headers: map[string]string{"Stripe-Version": "2024-01-01"},
					APIKey: &store.APIKeyConfig{HeaderName: "Authorization", KeyPrefix: "Bearer "}},
				api: func(e *proxyEnv, a *store.ExternalAPI) {
					a.APIConfig.APIKey.Key = e.sealAPI(a, "api_config.api_key.key", "sk_test_1")
				},
				creds:  []string{"Stripe-Version: 2024-01-01", "Authorization: Bearer sk_test_1"},
				passes: []string{callerKeys}},
			{desc: "basic from username and password",
				passes: []string{callerKeys, callerVersion},
				cfg:    store.APIConfig{BaseURL: base, AuthType: store.AuthBasic},
				conn: func(e *proxyEnv, c *store.Connection) {
					c.Credentials.Username = e.sealConn(c, "credentials.username", "user")
					c.Credentials.Password = e.sealConn(c, "credentials.password", "pa:ss")
				},
				creds: []string{"Authorization: Basic dXNlcjpwYTpzcw=="}},
			{desc: "basic from a stored sid:token key, as the designed Twilio example",
				passes: []string{callerKeys, callerVersion},
				cfg: store.APIConfig{BaseURL: base, AuthType: store.AuthBasic,
					APIKey: &store.APIKeyConfig{HeaderName: "Authorization", KeyPrefix: "Basic "}},
				api: func(e *proxyEnv, a *store.ExternalAPI) {
					a.APIConfig.APIKey.Key = e.sealAPI(a, "api_config.api_key.key", "AC123:tok")
				},
				creds: []string{"Authorization: Basic QUMxMjM6dG9r"}},
		}
		body := binaryBody()
		for i, tc := range cases {
			slug := fmt.Sprintf("api%d", i)
			a := e.api(slug, tc.cfg, func(a *store.ExternalAPI) {
				if tc.api != nil {
					tc.api(e, a)
				}
			})
			c := e.conn(a, func(c *store.Connection) {
				if tc.conn != nil {
					tc.conn(e, c)
				}
			})
			for _, mode := range []string{"path", "header"} {
				t.Run(tc.desc+"/"+mode, func(t *testing.T) {
					target := "/" + slug + "/" + c.ID + "/charges/ch_1?expand[]=a&api_key=caller&API%5Fkey=caller2&q=%2F+x"
					extra := ""
					if mode == "header" {
						target = "/v1/charges/ch_1?expand[]=a&api_key=caller&API%5Fkey=caller2&q=%2F+x"
						extra = "X-Extapi-Connection: " + c.ID + "\r\nX-Extapi-Api: " + slug + "\r\n"
					}
					n := len(up.requests())
					r := raw(t, e.addr, fmt.Sprintf("POST %s HTTP/1.1\r\nHost: proxy\r\n%s%sContent-Length: %d\r\n\r\n%s",
						target, extra, callerHeaders, len(body), body))
					if r.Status != 200 || string(r.Body) != "ok" || r.Header.Get("X-Extapi-Error") != "" {
						t.Fatalf("response = %d %q %v; want 200 ok from the upstream", r.Status, r.Body, r.Header)
					}
					got := up.requests()[n]
					wantURI := "/v1/charges/ch_1?expand[]=a&api_key=caller&API%5Fkey=caller2&q=%2F+x"
					if tc.query != "" {
						wantURI = "/v1/charges/ch_1?expand[]=a&q=%2F+x&" + tc.query
					}
					if got.Method != "POST" || got.URI != wantURI {
						t.Errorf("upstream got %s %s; want POST %s", got.Method, got.URI, wantURI)
					}
					if !bytes.Equal(got.Body, body) {
						t.Errorf("upstream body = %q; want the caller's %d bytes unchanged", got.Body, len(body))
					}
					host := strings.TrimPrefix(up.url, "http://")
					want := []string{
						"Host: " + host,
						"Content-Type: application/octet-stream",
						fmt.Sprintf("Content-Length: %d", len(body)),
						"User-Agent: caller/1.0",
						"X-Custom: kept",
						"Idempotency-Key: idem-1",
						"Cookie: a=1; b=2",
					}
					want = append(want, tc.creds...)
					for _, p := range tc.passes {
						want = append(want, strings.Split(p, "\n")...)
					}
					want = append(want, "X-Request-Id: <generated>") // the caller sent none (observe.go)
					var have []string
					for _, kv := range got.Headers {
						if kv[0] == "X-Request-Id" && len(kv[1]) == 32 {
							kv[1] = "<generated>"
						}
						have = append(have, kv[0]+": "+kv[1])
					}
					slices.Sort(want)
					slices.Sort(have)
					if !slices.Equal(have, want) {
						t.Errorf("upstream headers:\n%s\nwant exactly:\n%s", strings.Join(have, "\n"), strings.Join(want, "\n"))
					}
					for _, kv := range got.Headers {
						if kv[0] == "Authorization" && strings.Contains(kv[1], "caller") || strings.Contains(kv[1], "Y2FsbGVyOnBhc3M=") ||
							!slices.ContainsFunc(tc.passes, func(p string) bool { return strings.Contains(p, kv[0]+": "+kv[1]) }) &&
								strings.Contains(kv[1], "caller-") {
							t.Errorf("a caller credential arrived upstream: %s: %s", kv[0], kv[1])
						}
					}
					if q, _ := url.ParseQuery(strings.SplitN(got.URI, "?", 2)[1]); tc.query != "" && len(q["api_key"]) != 1 {
						t.Errorf("upstream query %q; want exactly one api_key, the connection's", got.URI)
					}
				})
			}
		}
	})
}

func TestResponsePassesThrough(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Date", "Mon, 02 Jan 2006 15:04:05 GMT")
		h.Set("Server", "upstream/1.0")
		h.Add("Set-Cookie", "a=1; Path=/; HttpOnly")
		h.Add("Set-Cookie", "b=2")
		h.Set("X-Custom", "kept")
		h.Set("Content-Type", "application/json")
		h.Set("Connection", "X-Hop")
		h.Set("X-Hop", "dropped")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Proxy-Authenticate", "Basic")
		h.Set("X-Extapi-Error", "route_not_found") // an upstream cannot pose as extapi
		w.WriteHeader(201)
		io.WriteString(w, `{"created":true}`)
	}))
	defer up.Close()
	e := sqliteEnv(t, Options{})
	a := e.api("resp", store.APIConfig{BaseURL: up.URL, AuthType: store.AuthBearer}, nil)
	c := e.conn(a, func(c *store.Connection) { c.Credentials.AccessToken = e.sealConn(c, "credentials.access_token", "t") })
	r := raw(t, e.addr, "POST /resp/"+c.ID+"/x HTTP/1.1\r\nHost: p\r\nContent-Length: 0\r\n\r\n")
	if r.Status != 201 || string(r.Body) != `{"created":true}` {
		t.Fatalf("response = %d %q; want the upstream's 201 and body", r.Status, r.Body)
	}
	// fasthttp owns Date: the response carries the time extapi sent it.
	if d, err := http.ParseTime(r.Header.Get("Date")); err != nil || time.Since(d) > time.Minute {
		t.Errorf("Date = %q; want the current time", r.Header.Get("Date"))
	}
	r.Header.Del("Date")
	if id := r.Header.Get("X-Request-Id"); len(id) != 32 { // generated: the caller sent none
		t.Errorf("X-Request-Id = %q; want the generated id", id)
	}
	r.Header.Del("X-Request-Id")
	want := http.Header{
		"Server":         {"upstream/1.0"},
		"Set-Cookie":     {"a=1; Path=/; HttpOnly", "b=2"},
		"X-Custom":       {"kept"},
		"Content-Type":   {"application/json"},
		"Content-Length": {"16"},
	}
	for k := range r.Header {
		if _, ok := want[k]; !ok {
			t.Errorf("response header %s: %q arrived; want it removed", k, r.Header[k])
		}
	}
	for k, v := range want {
		if got := r.Header[k]; !slices.Equal(got, v) {
			t.Errorf("response header %s = %q; want %q as the upstream sent it", k, got, v)
		}
	}
}
