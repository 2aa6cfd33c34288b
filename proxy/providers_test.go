package proxy

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/extapi/extapi/oauth"
	"github.com/extapi/extapi/providers"
	"github.com/extapi/extapi/store"
	"github.com/extapi/extapi/store/storetest"
)

// fromTemplate is a template's api_config, as POST /admin/external-apis would store it, with
// the origin of its base_url replaced by the test upstream's (the path, and its placeholders,
// kept).
func fromTemplate(t *testing.T, slug, origin string) store.APIConfig {
	t.Helper()
	tm := providers.Get(slug)
	b, err := json.Marshal(tm.Config(false)["api_config"])
	if err != nil {
		t.Fatal(err)
	}
	var cfg store.APIConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	rest := cfg.BaseURL[len("https://"):]
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		cfg.BaseURL = origin + rest[i:]
	} else {
		cfg.BaseURL = origin
	}
	return cfg
}

func wantRequest(t *testing.T, got received, method, uri string, headers map[string]string, body string) {
	t.Helper()
	if got.Method != method || got.URI != uri {
		t.Errorf("upstream got %s %s; want %s %s", got.Method, got.URI, method, uri)
	}
	for k, v := range headers {
		if h := got.header(k); len(h) != 1 || h[0] != v {
			t.Errorf("upstream header %s = %q; want [%q]", k, h, v)
		}
	}
	if string(got.Body) != body {
		t.Errorf("upstream body = %q; want %q", got.Body, body)
	}
}

// TestDesignExamples: the three usage examples of the design (README "Provider templates"),
// each from its template, as the provider would receive them.
func TestDesignExamples(t *testing.T) {
	up := newUpstream(t, nil)
	s := storetest.Open(t, storetest.SQLiteURL(t))
	kr := newKeyring(t)
	e := newProxyEnv(t, s, kr, Options{TokenSource: oauth.NewRefresher(oauth.RefresherOptions{Store: s, Sealer: kr})})
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}

	t.Run("facebook photo publish", func(t *testing.T) {
		a := e.api("facebook-graph", fromTemplate(t, "facebook-graph", up.url), func(a *store.ExternalAPI) {
			a.APIConfig.OAuth2.ClientID = e.sealAPI(a, "api_config.oauth2.client_id", "app-id")
			a.APIConfig.OAuth2.ClientSecret = e.sealAPI(a, "api_config.oauth2.client_secret", "app-secret")
		})
		exp := time.Now().Add(24 * time.Hour).UTC()
		c := e.conn(a, func(c *store.Connection) {
			c.Credentials.AccessToken = e.sealConn(c, "credentials.access_token", "EAAPageToken")
			c.Credentials.ExpiresAt = &exp
			c.ProviderData = map[string]any{"page_id": "1234567890"}
		})
		n := len(up.requests())
		body := "url=https%3A%2F%2Fexample.com%2Fphoto.jpg&caption=Hello"
		r := do(t, "POST", "http://"+e.addr+"/facebook-graph/"+c.ID+"/1234567890/photos", strings.NewReader(body), form)
		if r.Status != 200 {
			t.Fatalf("POST = %d %s", r.Status, r.Body)
		}
		wantRequest(t, up.requests()[n], "POST", "/v25.0/1234567890/photos",
			map[string]string{"Authorization": "Bearer EAAPageToken", "Content-Type": form["Content-Type"]}, body)
	})

	t.Run("stripe payment intent", func(t *testing.T) {
		a := e.api("stripe", fromTemplate(t, "stripe", up.url), nil)
		c := e.conn(a, func(c *store.Connection) {
			c.Credentials.APIKey = e.sealConn(c, "credentials.api_key", "sk_test_4eC39HqLyjWDarjtT1zdp7dc")
		})
		n := len(up.requests())
		body := "amount=2000&currency=usd&payment_method_types%5B%5D=card"
		r := do(t, "POST", "http://"+e.addr+"/stripe/"+c.ID+"/payment_intents", strings.NewReader(body), form)
		if r.Status != 200 {
			t.Fatalf("POST = %d %s", r.Status, r.Body)
		}
		wantRequest(t, up.requests()[n], "POST", "/v1/payment_intents", map[string]string{
			"Authorization": "Bearer sk_test_4eC39HqLyjWDarjtT1zdp7dc", "Stripe-Version": "2024-06-20"}, body)
	})

	t.Run("twilio sms", func(t *testing.T) {
		a := e.api("twilio", fromTemplate(t, "twilio", up.url), nil)
		sid := "AC" + strings.Repeat("a1", 16)
		c := e.conn(a, func(c *store.Connection) {
			c.Credentials.Username = e.sealConn(c, "credentials.username", sid)
			c.Credentials.Password = e.sealConn(c, "credentials.password", "auth-token")
			c.ProviderData = map[string]any{"account_sid": sid}
		})
		n := len(up.requests())
		body := "To=%2B15558675310&From=%2B15017122661&Body=Hi+there"
		r := do(t, "POST", "http://"+e.addr+"/twilio/"+c.ID+"/Messages.json", strings.NewReader(body), form)
		if r.Status != 200 {
			t.Fatalf("POST = %d %s", r.Status, r.Body)
		}
		basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(sid+":auth-token"))
		wantRequest(t, up.requests()[n], "POST", "/2010-04-01/Accounts/"+sid+"/Messages.json",
			map[string]string{"Authorization": basic}, body)

		// A provider_data value that would leave its path segment is an error, not a request.
		for _, bad := range []any{"../../evil", "AC1?x=", "AC1#", nil} {
			c := e.conn(a, func(c *store.Connection) {
				c.Credentials.Username = e.sealConn(c, "credentials.username", sid)
				c.Credentials.Password = e.sealConn(c, "credentials.password", "auth-token")
				c.ProviderData = map[string]any{"account_sid": bad}
			})
			n := len(up.requests())
			r := do(t, "POST", "http://"+e.addr+"/twilio/"+c.ID+"/Messages.json", strings.NewReader(body), form)
			if r.Status != 502 || r.Header.Get("X-Extapi-Error") != CodeTemplateInvalid || len(up.requests()) != n {
				t.Errorf("account_sid %v: = %d %s %s; want 502 template_invalid and no upstream request", bad, r.Status,
					r.Header.Get("X-Extapi-Error"), r.Body)
			}
		}
	})

	t.Run("header from provider_data", func(t *testing.T) {
		cfg := fromTemplate(t, "stripe", up.url)
		cfg.Headers["Stripe-Account"] = "{{provider_data.account_id}}"
		a := e.api("stripe-connect", cfg, nil)
		c := e.conn(a, func(c *store.Connection) {
			c.Credentials.APIKey = e.sealConn(c, "credentials.api_key", "sk_test_x")
			c.ProviderData = map[string]any{"account_id": "acct_1032D82eZvKYlo2C"}
		})
		n := len(up.requests())
		r := do(t, "GET", "http://"+e.addr+"/stripe-connect/"+c.ID+"/balance", nil, map[string]string{"Stripe-Account": "acct_caller"})
		if r.Status != 200 {
			t.Fatalf("GET = %d %s", r.Status, r.Body)
		}
		wantRequest(t, up.requests()[n], "GET", "/v1/balance", map[string]string{"Stripe-Account": "acct_1032D82eZvKYlo2C"}, "")
		bad := e.conn(a, func(c *store.Connection) {
			c.Credentials.APIKey = e.sealConn(c, "credentials.api_key", "sk_test_x")
			c.ProviderData = map[string]any{"account_id": "acct\r\nX-Evil: 1"}
		})
		if r := do(t, "GET", "http://"+e.addr+"/stripe-connect/"+bad.ID+"/balance", nil, nil); r.Status != 502 {
			t.Errorf("CRLF in a header's provider_data = %d; want 502", r.Status)
		}
	})
}

// sigv4Verify recomputes an AWS Signature Version 4 Authorization header from the request as
// received, following the algorithm as AWS documents it (canonical request, string to sign,
// derived signing key) — independent of the SDK signer that made it. s3: the path is used as
// sent and the payload hash is x-amz-content-sha256.
func sigv4Verify(t *testing.T, r received, host, secret string, s3 bool) {
	t.Helper()
	auth := r.header("Authorization")
	if len(auth) != 1 || !strings.HasPrefix(auth[0], "AWS4-HMAC-SHA256 ") {
		t.Fatalf("Authorization = %q; want AWS4-HMAC-SHA256", auth)
	}
	parts := map[string]string{}
	for _, p := range strings.Split(strings.TrimPrefix(auth[0], "AWS4-HMAC-SHA256 "), ", ") {
		k, v, _ := strings.Cut(p, "=")
		parts[k] = v
	}
	scope := strings.SplitN(parts["Credential"], "/", 2)[1] // date/region/service/aws4_request
	sc := strings.Split(scope, "/")
	amzDate := r.header("X-Amz-Date")[0]
	path, rawQuery, _ := strings.Cut(r.URI, "?")
	if !s3 {
		segs := strings.Split(path, "/")
		for i, s := range segs {
			segs[i] = awsEscape(s)
		}
		path = strings.Join(segs, "/")
	}
	q, _ := url.ParseQuery(rawQuery)
	var qs []string
	for k, vs := range q {
		for _, v := range vs {
			qs = append(qs, awsEscape(k)+"="+awsEscape(v))
		}
	}
	sort.Strings(qs)
	signed := strings.Split(parts["SignedHeaders"], ";")
	var ch strings.Builder
	for _, h := range signed {
		v := ""
		if h == "host" {
			v = host
		} else {
			v = strings.Join(r.header(h), ",")
		}
		ch.WriteString(h + ":" + strings.TrimSpace(v) + "\n")
	}
	var payload string
	if s3 {
		payload = r.header("X-Amz-Content-Sha256")[0]
	} else {
		sum := sha256.Sum256(r.Body)
		payload = hex.EncodeToString(sum[:])
	}
	got := sigv4Signature(secret, r.Method, path, strings.Join(qs, "&"), ch.String(), parts["SignedHeaders"], payload, amzDate, sc[0], sc[1], sc[2])
	if got != parts["Signature"] {
		t.Errorf("Signature = %s; the documented algorithm gives %s", parts["Signature"], got)
	}
	if !slices.Contains(signed, "host") || !slices.Contains(signed, "x-amz-date") {
		t.Errorf("SignedHeaders = %s; want host and x-amz-date among them", parts["SignedHeaders"])
	}
}

func sigv4Signature(secret, method, path, query, canonHeaders, signedHeaders, payload, amzDate, date, region, service string) string {
	canonical := strings.Join([]string{method, path, query, canonHeaders, signedHeaders, payload}, "\n")
	ch := sha256.Sum256([]byte(canonical))
	sts := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + date + "/" + region + "/" + service + "/aws4_request\n" + hex.EncodeToString(ch[:])
	mac := func(k []byte, s string) []byte { h := hmac.New(sha256.New, k); h.Write([]byte(s)); return h.Sum(nil) }
	k := mac(mac(mac(mac([]byte("AWS4"+secret), date), region), service), "aws4_request")
	return hex.EncodeToString(mac(k, sts))
}

// awsEscape is RFC 3986 percent-encoding of everything but the unreserved characters.
func awsEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("-_.~", c) >= 0 {
			b.WriteByte(c)
		} else {
			b.WriteString("%" + strings.ToUpper(hex.EncodeToString([]byte{c})))
		}
	}
	return b.String()
}

// TestSigV4VerifierMatchesAWSExample checks the verifier itself against the SigV4 test suite's
// get-vanilla example.
func TestSigV4VerifierMatchesAWSExample(t *testing.T) {
	got := sigv4Signature("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "GET", "/", "",
		"host:example.amazonaws.com\nx-amz-date:20150830T123600Z\n", "host;x-amz-date",
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "20150830T123600Z", "20150830", "us-east-1", "service")
	if want := "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"; got != want {
		t.Fatalf("get-vanilla signature = %s; want %s", got, want)
	}
}

func TestSigV4(t *testing.T) {
	up := newUpstream(t, nil)
	e := sqliteEnv(t, Options{BufferLimit: 64})
	host := strings.TrimPrefix(up.url, "http://")
	const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	mk := func(slug string, session bool) *store.Connection {
		cfg := fromTemplate(t, slug, up.url)
		cfg.BaseURL = up.url // the templates' {{region}} hosts are AWS's
		cfg.AWSSigV4.Region = "eu-west-1"
		a := e.api(slug, cfg, nil)
		return e.conn(a, func(c *store.Connection) {
			c.Credentials.Username = e.sealConn(c, "credentials.username", "AKIAIOSFODNN7EXAMPLE")
			c.Credentials.Password = e.sealConn(c, "credentials.password", secret)
			if session {
				c.Credentials.AccessToken = e.sealConn(c, "credentials.access_token", "session-token")
			}
		})
	}
	s3 := mk("amazon-s3", true)
	ses := mk("amazon-ses", false)

	t.Run("s3 get and put", func(t *testing.T) {
		n := len(up.requests())
		r := do(t, "GET", "http://"+e.addr+"/amazon-s3/"+s3.ID+"/bucket/photos/a%20b.jpg?list-type=2&prefix=x", nil,
			map[string]string{"Authorization": "AWS4-HMAC-SHA256 forged", "X-Amz-Date": "19700101T000000Z"})
		if r.Status != 200 {
			t.Fatalf("GET = %d %s", r.Status, r.Body)
		}
		got := up.requests()[n]
		if v := got.header("X-Amz-Content-Sha256"); len(v) != 1 || v[0] != emptySHA256 {
			t.Errorf("x-amz-content-sha256 = %q; want the empty body's hash", v)
		}
		if v := got.header("X-Amz-Security-Token"); len(v) != 1 || v[0] != "session-token" {
			t.Errorf("x-amz-security-token = %q", v)
		}
		sigv4Verify(t, got, host, secret, true)
		if !strings.Contains(got.header("Authorization")[0], "/eu-west-1/s3/aws4_request") {
			t.Errorf("Authorization = %s; want the eu-west-1 s3 scope", got.header("Authorization")[0])
		}
		r = do(t, "PUT", "http://"+e.addr+"/amazon-s3/"+s3.ID+"/bucket/k.txt", strings.NewReader("hello"),
			map[string]string{"Content-Type": "text/plain", "X-Amz-Meta-Owner": "me"})
		if r.Status != 200 {
			t.Fatalf("PUT = %d", r.Status)
		}
		got = up.requests()[n+1]
		sum := sha256.Sum256([]byte("hello"))
		if v := got.header("X-Amz-Content-Sha256"); len(v) != 1 || v[0] != hex.EncodeToString(sum[:]) {
			t.Errorf("x-amz-content-sha256 = %q; want the body's hash", v)
		}
		sigv4Verify(t, got, host, secret, true)
		if a := got.header("Authorization")[0]; !strings.Contains(a, "x-amz-meta-owner") || !strings.Contains(a, "content-type") {
			t.Errorf("SignedHeaders of %s; want content-type and x-amz-meta-owner", a)
		}
	})

	t.Run("s3 streamed body is UNSIGNED-PAYLOAD", func(t *testing.T) {
		n := len(up.requests())
		big := strings.Repeat("x", 1000) // over BufferLimit: streams
		r := do(t, "PUT", "http://"+e.addr+"/amazon-s3/"+s3.ID+"/bucket/big.bin", strings.NewReader(big), nil)
		if r.Status != 200 {
			t.Fatalf("PUT = %d %s", r.Status, r.Body)
		}
		got := up.requests()[n]
		if v := got.header("X-Amz-Content-Sha256"); len(v) != 1 || v[0] != "UNSIGNED-PAYLOAD" || string(got.Body) != big {
			t.Errorf("x-amz-content-sha256 = %q, body %d bytes; want UNSIGNED-PAYLOAD and the body", v, len(got.Body))
		}
		sigv4Verify(t, got, host, secret, true)
	})

	t.Run("ses hashes the body", func(t *testing.T) {
		n := len(up.requests())
		body := `{"Content":{"Simple":{}}}`
		r := do(t, "POST", "http://"+e.addr+"/amazon-ses/"+ses.ID+"/v2/email/outbound-emails", strings.NewReader(body),
			map[string]string{"Content-Type": "application/json"})
		if r.Status != 200 {
			t.Fatalf("POST = %d %s", r.Status, r.Body)
		}
		got := up.requests()[n]
		if len(got.header("X-Amz-Content-Sha256")) != 0 || len(got.header("X-Amz-Security-Token")) != 0 {
			t.Errorf("ses request has x-amz-content-sha256 or a session token: %v", got.Headers)
		}
		sigv4Verify(t, got, host, secret, false)
		if !strings.Contains(got.header("Authorization")[0], "/eu-west-1/ses/aws4_request") {
			t.Errorf("Authorization = %s", got.header("Authorization")[0])
		}
		big := strings.Repeat("x", 1000)
		if r := do(t, "POST", "http://"+e.addr+"/amazon-ses/"+ses.ID+"/v2/email/outbound-emails", strings.NewReader(big), nil); r.Status != 413 {
			t.Errorf("ses streamed body = %d; want 413 (it must be hashed)", r.Status)
		}
	})
}

// TestServiceAccountRoute: a jwt_bearer API (the Google Analytics template) mints its token
// with an RS256 assertion that the token endpoint verifies with the key pair's public key
// (RFC 7523), and shares it across requests.
func TestServiceAccountRoute(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	var mints atomic.Int32
	var tokenURL string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.Form.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
			http.Error(w, `{"error":"unsupported_grant_type"}`, 400)
			return
		}
		parts := strings.Split(r.Form.Get("assertion"), ".")
		if len(parts) != 3 {
			http.Error(w, `{"error":"invalid_grant"}`, 400)
			return
		}
		sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
		sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
		if rsa.VerifyPKCS1v15(&key.PublicKey, 5 /* crypto.SHA256 */, sum[:], sig) != nil {
			http.Error(w, `{"error":"invalid_grant","error_description":"bad signature"}`, 400)
			return
		}
		var hdr, claims map[string]any
		h, _ := base64.RawURLEncoding.DecodeString(parts[0])
		c, _ := base64.RawURLEncoding.DecodeString(parts[1])
		json.Unmarshal(h, &hdr)
		json.Unmarshal(c, &claims)
		now := float64(time.Now().Unix())
		if hdr["alg"] != "RS256" || claims["iss"] != "svc@proj.iam.gserviceaccount.com" || claims["aud"] != tokenURL ||
			claims["scope"] != "https://www.googleapis.com/auth/analytics.readonly" || claims["exp"].(float64) < now {
			http.Error(w, `{"error":"invalid_grant"}`, 400)
			return
		}
		mints.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"ya29.service-token","token_type":"Bearer","expires_in":3600}`))
	}))
	t.Cleanup(ts.Close)
	tokenURL = ts.URL + "/token"

	up := newUpstream(t, nil)
	s := storetest.Open(t, storetest.SQLiteURL(t))
	kr := newKeyring(t)
	e := newProxyEnv(t, s, kr, Options{TokenSource: oauth.NewRefresher(oauth.RefresherOptions{Store: s, Sealer: kr})})
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	keyFile, _ := json.Marshal(map[string]string{"type": "service_account", "client_email": "svc@proj.iam.gserviceaccount.com",
		"private_key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), "private_key_id": "k1", "token_uri": tokenURL})
	cfg := fromTemplate(t, "google-analytics", up.url)
	cfg.OAuth2.TokenURL = tokenURL
	a := e.api("google-analytics", cfg, func(a *store.ExternalAPI) {
		a.APIConfig.OAuth2.ServiceAccountKey = e.sealAPI(a, "api_config.oauth2.service_account_key", string(keyFile))
	})
	c1, c2 := e.conn(a, nil), e.conn(a, nil)
	body := `{"dateRanges":[{"startDate":"7daysAgo","endDate":"today"}],"metrics":[{"name":"activeUsers"}]}`
	for _, c := range []*store.Connection{c1, c2, c1} {
		n := len(up.requests())
		r := do(t, "POST", "http://"+e.addr+"/google-analytics/"+c.ID+"/properties/123:runReport", strings.NewReader(body),
			map[string]string{"Content-Type": "application/json"})
		if r.Status != 200 {
			t.Fatalf("POST = %d %s", r.Status, r.Body)
		}
		wantRequest(t, up.requests()[n], "POST", "/v1beta/properties/123:runReport",
			map[string]string{"Authorization": "Bearer ya29.service-token"}, body)
	}
	if n := mints.Load(); n != 1 {
		t.Errorf("tokens minted for 3 requests on 2 connections = %d; want 1 (cached and shared)", n)
	}
}
