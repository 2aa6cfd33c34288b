package proxy

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/extapi/extapi/oauth/oauth1test"
	"github.com/extapi/extapi/store"
)

// The upstream of these tests is oauth1test's protected resource: it verifies every signature
// with its own implementation of RFC 5849 (no code shared with package oauth), from the request
// as it arrives — Host, request-target, query and form body.

const (
	o1ConsumerKey    = "dpf43f3p2l4k3l03"
	o1ConsumerSecret = "kd94hf93k423kf44"
	o1Token          = "nnch734d00sl2jdk"
	o1TokenSecret    = "pfkkdhi9sl3r4s00"
)

// oauth1Route creates an oauth1 API whose base_url is base and a connection of it holding the
// provider's token credentials.
func oauth1Route(e *proxyEnv, slug, base, method string) (*store.ExternalAPI, *store.Connection) {
	a := e.api(slug, store.APIConfig{BaseURL: base, AuthType: store.AuthOAuth1,
		OAuth1: &store.OAuth1Config{SignatureMethod: method, Realm: "Photos"}}, func(a *store.ExternalAPI) {
		a.APIConfig.OAuth1.ConsumerKey = e.sealAPI(a, "api_config.oauth1.consumer_key", o1ConsumerKey)
		a.APIConfig.OAuth1.ConsumerSecret = e.sealAPI(a, "api_config.oauth1.consumer_secret", o1ConsumerSecret)
	})
	c := e.conn(a, func(c *store.Connection) {
		c.Credentials.OAuthToken = e.sealConn(c, "credentials.oauth_token", o1Token)
		c.Credentials.OAuthTokenSecret = e.sealConn(c, "credentials.oauth_token_secret", o1TokenSecret)
	})
	return a, c
}

func newOAuth1Provider(t *testing.T) *oauth1test.Server {
	p := oauth1test.NewServer(oauth1test.Options{ConsumerKey: o1ConsumerKey, ConsumerSecret: o1ConsumerSecret})
	p.AddToken(o1Token, o1TokenSecret)
	t.Cleanup(p.Close)
	return p
}

func echoOf(t *testing.T, r rawResponse) oauth1test.Echo {
	t.Helper()
	var e oauth1test.Echo
	if err := json.Unmarshal(r.Body, &e); err != nil {
		t.Fatalf("upstream answer %q is not an echo: %v", r.Body, err)
	}
	return e
}

func TestOAuth1SignedUpstream(t *testing.T) {
	p := newOAuth1Provider(t)
	e := sqliteEnv(t, Options{})
	// The base URL has a path and a query of its own: both are part of what is signed.
	_, c := oauth1Route(e, "photos", p.ResourceURL+"/v1?api=1", "")
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	for _, tc := range []struct {
		desc, method, path, body string
		header                   map[string]string
		wantPath                 string
		wantForm                 map[string]string
	}{
		{desc: "GET with a query", method: "GET", path: "/photos?file=vacation.jpg&size=original",
			wantPath: "/resource/v1/photos"},
		{desc: "GET with '+', escapes and repeated keys", method: "GET", path: "/search?q=a+b%2Bc&tag=z&tag=a&empty=&flag",
			wantPath: "/resource/v1/search"},
		{desc: "POST with a form body", method: "POST", path: "/statuses/update.json?include_entities=true",
			body: "status=Hello+Ladies+%2B+Gentlemen%2C+a+signed+OAuth+request%21&a3=2+q&c2", header: form,
			wantPath: "/resource/v1/statuses/update.json", wantForm: map[string]string{"status": "Hello Ladies + Gentlemen, a signed OAuth request!"}},
		{desc: "form body with charset", method: "PUT", path: "/x",
			body: "a=%E2%82%AC", header: map[string]string{"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
			wantPath: "/resource/v1/x", wantForm: map[string]string{"a": "€"}},
		{desc: "JSON body is not signed", method: "POST", path: "/items",
			body: `{"a":"b=c&d"}`, header: map[string]string{"Content-Type": "application/json"}, wantPath: "/resource/v1/items"},
		{desc: "the caller's Authorization is replaced", method: "GET", path: "/me",
			header: map[string]string{"Authorization": `OAuth oauth_token="someone-else"`}, wantPath: "/resource/v1/me"},
		{desc: "DELETE without a body", method: "DELETE", path: "/photos/1", wantPath: "/resource/v1/photos/1"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			r := do(t, tc.method, "http://"+e.addr+"/photos/"+c.ID+tc.path, body, tc.header)
			if r.Status != http.StatusOK {
				t.Fatalf("%s %s = %d %s; want 200 (upstream: %s)", tc.method, tc.path, r.Status, r.Body, p.LastReject())
			}
			got := echoOf(t, r)
			if got.Method != tc.method || got.Path != tc.wantPath || got.Token != o1Token || got.Body != tc.body {
				t.Errorf("upstream saw %s %s token %q body %q; want %s %s token %s body %q",
					got.Method, got.Path, got.Token, got.Body, tc.method, tc.wantPath, o1Token, tc.body)
			}
			if got.Query["api"] == nil {
				t.Errorf("upstream query = %v; want the base URL's api=1 too", got.Query)
			}
			for k, v := range tc.wantForm {
				if len(got.Form[k]) != 1 || got.Form[k][0] != v {
					t.Errorf("upstream form %s = %q; want %q", k, got.Form[k], v)
				}
			}
		})
	}
	t.Run("header mode", func(t *testing.T) {
		r := do(t, "GET", "http://"+e.addr+"/resource/v1/photos?size=original", nil, map[string]string{"X-Extapi-Connection": c.ID})
		if r.Status != http.StatusOK {
			t.Fatalf("header mode GET = %d %s; want 200 (upstream: %s)", r.Status, r.Body, p.LastReject())
		}
	})
}

func TestOAuth1SignatureMethods(t *testing.T) {
	p := newOAuth1Provider(t)
	e := sqliteEnv(t, Options{})
	for _, m := range []string{"HMAC-SHA1", "HMAC-SHA256", "PLAINTEXT"} {
		t.Run(m, func(t *testing.T) {
			_, c := oauth1Route(e, strings.ToLower(m), p.ResourceURL, m)
			r := do(t, "POST", "http://"+e.addr+"/"+strings.ToLower(m)+"/"+c.ID+"/a?b=c", strings.NewReader("d=e+f"),
				map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
			if r.Status != http.StatusOK {
				t.Fatalf("POST = %d %s; want 200 (upstream: %s)", r.Status, r.Body, p.LastReject())
			}
		})
	}
}

// relay sits between the proxy and the provider, keeping the Host header the proxy signed for.
// tamper, when set, may change the request on the way, after extapi signed it.
type relay struct {
	srv    *httptest.Server
	mu     sync.Mutex
	auths  []string
	fail   int // answer the first fail requests with 503 without passing them on
	tamper func(r *http.Request, body []byte) (*url.URL, []byte)
}

func newRelay(t *testing.T, to string) *relay {
	target, err := url.Parse(to)
	if err != nil {
		t.Fatal(err)
	}
	rl := &relay{}
	rl.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rl.mu.Lock()
		rl.auths = append(rl.auths, r.Header.Get("Authorization"))
		fail := rl.fail > 0
		if fail {
			rl.fail--
		}
		tamper := rl.tamper
		rl.mu.Unlock()
		if fail {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		u := *r.URL
		if tamper != nil {
			var nu *url.URL
			if nu, body = tamper(r, body); nu != nil {
				u = *nu
			}
		}
		u.Scheme, u.Host = target.Scheme, target.Host
		out, _ := http.NewRequest(r.Method, u.String(), bytes.NewReader(body))
		out.Header = r.Header.Clone()
		out.Host = r.Host
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	t.Cleanup(rl.srv.Close)
	return rl
}

// TestOAuth1TamperedAfterSigning: what extapi signs is what it sends, so the provider accepts
// the request as relayed unchanged and rejects it when its body or query changed on the way.
func TestOAuth1TamperedAfterSigning(t *testing.T) {
	p := newOAuth1Provider(t)
	rl := newRelay(t, p.URL)
	e := sqliteEnv(t, Options{})
	_, c := oauth1Route(e, "photos", rl.srv.URL+"/resource", "")
	post := func() rawResponse {
		return do(t, "POST", "http://"+e.addr+"/photos/"+c.ID+"/transfer?to=alice", strings.NewReader("amount=10&currency=EUR"),
			map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	}
	if r := post(); r.Status != http.StatusOK {
		t.Fatalf("relayed unchanged = %d %s; want 200 (upstream: %s)", r.Status, r.Body, p.LastReject())
	}
	for _, tc := range []struct {
		desc   string
		tamper func(r *http.Request, body []byte) (*url.URL, []byte)
	}{
		{"body changed", func(r *http.Request, body []byte) (*url.URL, []byte) {
			return nil, bytes.Replace(body, []byte("amount=10"), []byte("amount=99"), 1)
		}},
		{"body parameter added", func(r *http.Request, body []byte) (*url.URL, []byte) {
			return nil, append(body, "&fee=0"...)
		}},
		{"query changed", func(r *http.Request, body []byte) (*url.URL, []byte) {
			u := *r.URL
			u.RawQuery = "to=mallory"
			return &u, body
		}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			rl.mu.Lock()
			rl.tamper = tc.tamper
			rl.mu.Unlock()
			r := post()
			if r.Status != http.StatusUnauthorized || !strings.Contains(string(r.Body), "oauth_problem=signature_invalid") {
				t.Errorf("tampered request = %d %s; want the provider's 401 signature_invalid", r.Status, r.Body)
			}
		})
	}
}

// TestOAuth1RetrySignsAgain: a retried attempt carries a new nonce and timestamp, since a
// provider refuses a nonce it has seen.
func TestOAuth1RetrySignsAgain(t *testing.T) {
	p := newOAuth1Provider(t)
	rl := newRelay(t, p.URL)
	rl.fail = 1
	e := sqliteEnv(t, Options{})
	a, c := oauth1Route(e, "photos", rl.srv.URL+"/resource", "")
	a.APIConfig.RetryConfig = &store.RetryConfig{MaxRetries: 1, BackoffMS: 1}
	if err := e.store.UpdateAPI(testCtx(t), a); err != nil {
		t.Fatal(err)
	}
	r := do(t, "PUT", "http://"+e.addr+"/photos/"+c.ID+"/album?x=1", strings.NewReader("name=Summer"),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	if r.Status != http.StatusOK {
		t.Fatalf("PUT after a 503 = %d %s; want 200 (upstream: %s)", r.Status, r.Body, p.LastReject())
	}
	rl.mu.Lock()
	auths := append([]string(nil), rl.auths...)
	rl.mu.Unlock()
	if len(auths) != 2 || auths[0] == auths[1] || nonceOf(auths[0]) == nonceOf(auths[1]) {
		t.Errorf("Authorization of the two attempts = %q; want two signatures with different nonces", auths)
	}
}

func nonceOf(h string) string {
	_, rest, _ := strings.Cut(h, `oauth_nonce="`)
	n, _, _ := strings.Cut(rest, `"`)
	return n
}

func TestOAuth1Refusals(t *testing.T) {
	p := newOAuth1Provider(t)
	e := sqliteEnv(t, Options{BufferLimit: 1024})
	a, c := oauth1Route(e, "photos", p.ResourceURL, "")
	t.Run("form body larger than the buffer", func(t *testing.T) {
		big := "a=" + strings.Repeat("x", 4096)
		r := do(t, "POST", "http://"+e.addr+"/photos/"+c.ID+"/x", strings.NewReader(big),
			map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
		if r.Status != http.StatusRequestEntityTooLarge || !strings.Contains(string(r.Body), "signs form bodies") || p.Count("resource") != 0 {
			t.Errorf("big form = %d %s, upstream hits %d; want 413 and nothing sent", r.Status, r.Body, p.Count("resource"))
		}
	})
	t.Run("a larger body of another type streams, unsigned", func(t *testing.T) {
		big := strings.Repeat("x", 4096)
		r := do(t, "POST", "http://"+e.addr+"/photos/"+c.ID+"/upload", strings.NewReader(big),
			map[string]string{"Content-Type": "application/octet-stream"})
		if r.Status != http.StatusOK || echoOf(t, r).Body != big {
			t.Errorf("big octet-stream = %d; want 200 with the body passed on (upstream: %s)", r.Status, p.LastReject())
		}
	})
	t.Run("malformed escape in the query", func(t *testing.T) {
		r := do(t, "GET", "http://"+e.addr+"/photos/"+c.ID+"/x?a=%zz", nil, nil)
		if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "cannot be signed") {
			t.Errorf("GET ?a=%%zz = %d %s; want 400 bad_request", r.Status, r.Body)
		}
	})
	t.Run("connection without a token", func(t *testing.T) {
		bare := e.conn(a, nil)
		r := do(t, "GET", "http://"+e.addr+"/photos/"+bare.ID+"/x", nil, nil)
		if r.Status != http.StatusConflict || !strings.Contains(string(r.Body), CodeCredentialsMissing) {
			t.Errorf("GET with a token-less connection = %d %s; want 409 credentials_missing", r.Status, r.Body)
		}
	})
	t.Run("unknown signature method", func(t *testing.T) {
		_, bad := oauth1Route(e, "rsa", p.ResourceURL, "RSA-SHA1")
		r := do(t, "GET", "http://"+e.addr+"/rsa/"+bad.ID+"/x", nil, nil)
		if r.Status != http.StatusInternalServerError || !strings.Contains(string(r.Body), CodeAPIConfigInvalid) {
			t.Errorf("GET with signature_method RSA-SHA1 = %d %s; want 500 api_config_invalid", r.Status, r.Body)
		}
	})
}

// BenchmarkOAuth1Sign is the signing stage of a proxied POST with a query and a form body.
func BenchmarkOAuth1Sign(b *testing.B) {
	inj := &oauth1Injector{}
	h := &Handler{}
	x := &exchange{req: fasthttp.AcquireRequest(), route: &connEntry{cred: credential{inj: inj}}, buffered: true,
		secrets: [][]byte{[]byte(o1ConsumerKey), []byte(o1ConsumerSecret), []byte(o1Token), []byte(o1TokenSecret)},
		url:     []byte("https://api.twitter.com/1.1/statuses/update.json?include_entities=true"),
		body:    []byte("status=Hello+Ladies+%2B+Gentlemen%2C+a+signed+OAuth+request%21")}
	defer fasthttp.ReleaseRequest(x.req)
	x.req.Header.SetMethod("POST")
	x.req.Header.SetContentType("application/x-www-form-urlencoded")
	x.req.SetBodyRaw(x.body)
	b.ReportAllocs()
	for b.Loop() {
		if err := h.signRequest(x); err != nil {
			b.Fatal(err)
		}
	}
}
