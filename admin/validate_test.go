package admin_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// set returns a copy of body with the value at a dotted path set (nil deletes).
func set(body map[string]any, path string, v any) map[string]any {
	b, _ := json.Marshal(body)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	m := out
	segs := strings.Split(path, ".")
	for _, s := range segs[:len(segs)-1] {
		next, ok := m[s].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[s] = next
		}
		m = next
	}
	if v == nil {
		delete(m, segs[len(segs)-1])
	} else {
		m[segs[len(segs)-1]] = v
	}
	return out
}

const testCert = `-----BEGIN CERTIFICATE-----
MIIBkTCCATegAwIBAgIUQHm3pJ7oWQW3m3x2kq3s8hXJ0mEwCgYIKoZIzj0EAwIw
-----END CERTIFICATE-----`

func TestValidateAPI(t *testing.T) {
	stripe := stripeBody("stripe", newSecret("k"))
	fb := oauthBody("facebook")
	oauth1 := map[string]any{"name": "X", "slug": "x", "category": "social",
		"api_config": map[string]any{"base_url": "https://api.x.com", "auth_type": "oauth1",
			"oauth1": map[string]any{"consumer_key": newSecret("ck"), "consumer_secret": newSecret("cs")}}}
	cases := []struct {
		desc  string
		body  map[string]any
		paths []string // every one must be reported
	}{
		{"name missing", set(stripe, "name", nil), []string{"name"}},
		{"name too long", set(stripe, "name", strings.Repeat("n", 201)), []string{"name"}},
		{"name with NUL", set(stripe, "name", "a\x00b"), []string{"name"}},
		{"slug missing", set(stripe, "slug", nil), []string{"slug"}},
		{"slug upper case", set(stripe, "slug", "Stripe"), []string{"slug"}},
		{"slug starts with -", set(stripe, "slug", "-stripe"), []string{"slug"}},
		{"slug 64 characters", set(stripe, "slug", strings.Repeat("a", 64)), []string{"slug"}},
		{"category missing", set(stripe, "category", nil), []string{"category"}},
		{"category unknown", set(stripe, "category", "banking"), []string{"category"}},
		{"status unknown", set(stripe, "status", "live"), []string{"status"}},
		{"environment unknown", set(stripe, "environment", "prod"), []string{"environment"}},
		{"api_config missing", set(stripe, "api_config", nil), []string{"api_config"}},
		{"base_url missing", set(stripe, "api_config.base_url", nil), []string{"api_config.base_url"}},
		{"base_url relative", set(stripe, "api_config.base_url", "/v1"), []string{"api_config.base_url"}},
		{"base_url ftp", set(stripe, "api_config.base_url", "ftp://api.stripe.com"), []string{"api_config.base_url"}},
		{"base_url plain http", set(stripe, "api_config.base_url", "http://api.stripe.com/v1"), []string{"api_config.base_url"}},
		{"base_url with user info", set(stripe, "api_config.base_url", "https://user:pw@api.stripe.com"), []string{"api_config.base_url"}},
		{"base_url with a fragment", set(stripe, "api_config.base_url", "https://api.stripe.com/#x"), []string{"api_config.base_url"}},
		{"base_url with a space", set(stripe, "api_config.base_url", "https://api.stripe.com/a b"), []string{"api_config.base_url"}},
		{"auth_type missing", set(stripe, "api_config.auth_type", nil), []string{"api_config.auth_type"}},
		{"auth_type unknown", set(stripe, "api_config.auth_type", "magic"), []string{"api_config.auth_type"}},
		{"oauth2 section missing", set(fb, "api_config.oauth2", nil), []string{"api_config.oauth2"}},
		{"oauth2 secrets and URLs missing", set(fb, "api_config.oauth2", map[string]any{}),
			[]string{"api_config.oauth2.client_id", "api_config.oauth2.client_secret", "api_config.oauth2.token_url", "api_config.oauth2.authorization_url"}},
		{"oauth2 token_url not a URL", set(fb, "api_config.oauth2.token_url", "token"), []string{"api_config.oauth2.token_url"}},
		{"oauth2 grant_type unknown", set(fb, "api_config.oauth2.grant_type", "password"), []string{"api_config.oauth2.grant_type"}},
		{"oauth2 token_auth_method unknown", set(fb, "api_config.oauth2.token_auth_method", "jwt"), []string{"api_config.oauth2.token_auth_method"}},
		{"oauth2 scope with a space", set(fb, "api_config.oauth2.scopes", []string{"a b"}), []string{"api_config.oauth2.scopes[0]"}},
		{"oauth2 scope null", set(fb, "api_config.oauth2.scopes", []any{nil}), []string{"api_config.oauth2.scopes[0]"}},
		{"oauth2 empty client_secret", set(fb, "api_config.oauth2.client_secret", ""), []string{"api_config.oauth2.client_secret"}},
		{"oauth2 section with api_key auth", set(fb, "api_config.auth_type", "api_key"), []string{"api_config.oauth2", "api_config.api_key"}},
		{"oauth1 secrets missing", set(oauth1, "api_config.oauth1", map[string]any{}),
			[]string{"api_config.oauth1.consumer_key", "api_config.oauth1.consumer_secret"}},
		{"oauth1 only one flow URL", set(oauth1, "api_config.oauth1.request_token_url", "https://api.x.com/rt"),
			[]string{"api_config.oauth1.authorization_url", "api_config.oauth1.access_token_url"}},
		{"oauth1 signature method", set(oauth1, "api_config.oauth1.signature_method", "RSA-SHA1"), []string{"api_config.oauth1.signature_method"}},
		{"oauth1 section missing", set(oauth1, "api_config.oauth1", nil), []string{"api_config.oauth1"}},
		{"api_key section missing", set(set(stripe, "api_config.auth_type", "api_key"), "api_config.api_key", nil), []string{"api_config.api_key"}},
		{"api_key bad header name", set(stripe, "api_config.api_key.header_name", "X Key"), []string{"api_config.api_key.header_name"}},
		{"api_key header and query", set(set(stripe, "api_config.auth_type", "api_key"), "api_config.api_key.query_param", "key"),
			[]string{"api_config.api_key.query_param"}},
		{"api_key prefix with CRLF", set(stripe, "api_config.api_key.key_prefix", "Bearer\r\nX: y"), []string{"api_config.api_key.key_prefix"}},
		{"basic key without a colon", set(set(stripe, "api_config.auth_type", "basic"), "api_config.api_key.key", newSecret("nocolon")),
			[]string{"api_config.api_key.key"}},
		{"rate limit zero", set(stripe, "api_config.rate_limit.requests_per_second", 0), []string{"api_config.rate_limit.requests_per_second"}},
		{"rate limit negative", set(stripe, "api_config.rate_limit.requests_per_day", -5), []string{"api_config.rate_limit.requests_per_day"}},
		{"rate limit fraction", set(stripe, "api_config.rate_limit.requests_per_minute", 1.5), []string{"api_config.rate_limit.requests_per_minute"}},
		{"rate limit string", set(stripe, "api_config.rate_limit.requests_per_hour", "10"), []string{"api_config.rate_limit.requests_per_hour"}},
		{"rate limit huge", set(stripe, "api_config.rate_limit.requests_per_hour", 1e30), []string{"api_config.rate_limit.requests_per_hour"}},
		{"rate limit no window", set(stripe, "api_config.rate_limit", map[string]any{"scope": "api"}), []string{"api_config.rate_limit"}},
		{"rate limit enums", set(set(set(stripe, "api_config.rate_limit.scope", "user"), "api_config.rate_limit.mode", "drop"), "api_config.rate_limit.on_redis_error", "panic"),
			[]string{"api_config.rate_limit.scope", "api_config.rate_limit.mode", "api_config.rate_limit.on_redis_error"}},
		{"rate limit burst and wait", set(set(stripe, "api_config.rate_limit.burst", -1), "api_config.rate_limit.max_wait_ms", -1),
			[]string{"api_config.rate_limit.burst", "api_config.rate_limit.max_wait_ms"}},
		{"rate limit reset header", set(stripe, "api_config.rate_limit.reset_header", "a b"), []string{"api_config.rate_limit.reset_header"}},
		{"timeout zero", set(stripe, "api_config.timeout_ms", 0), []string{"api_config.timeout_ms"}},
		{"timeout too long", set(stripe, "api_config.timeout_ms", 300001), []string{"api_config.timeout_ms"}},
		{"retries too many", set(stripe, "api_config.retry_config.max_retries", 11), []string{"api_config.retry_config.max_retries"}},
		{"retries negative", set(stripe, "api_config.retry_config.max_retries", -1), []string{"api_config.retry_config.max_retries"}},
		{"backoff too long", set(stripe, "api_config.retry_config.backoff_ms", 60001), []string{"api_config.retry_config.backoff_ms"}},
		{"token params need client credentials", set(fb, "api_config.oauth2.token_params", map[string]any{"audience": "https://a.example/"}),
			[]string{"api_config.oauth2.token_params"}},
		{"token params reserved", set(set(set(fb, "api_config.oauth2.authorization_url", nil), "api_config.oauth2.grant_type", "client_credentials"),
			"api_config.oauth2.token_params", map[string]any{"client_id": "other", "audience": "a\nb"}),
			[]string{"api_config.oauth2.token_params.client_id", "api_config.oauth2.token_params.audience"}},
		{"params with an empty name", set(fb, "api_config.oauth2.authorization_params", map[string]any{"": "x"}),
			[]string{"api_config.oauth2.authorization_params"}},
		{"webhook url missing", set(fb, "api_config.webhook.url", nil), []string{"api_config.webhook.url"}},
		{"webhook forward_url http", set(fb, "api_config.webhook.forward_url", "http://internal.svc/hook"), []string{"api_config.webhook.forward_url"}},
		{"webhook scheme unknown", set(fb, "api_config.webhook.scheme", "md5"), []string{"api_config.webhook.scheme"}},
		{"webhook tolerance zero", set(fb, "api_config.webhook.tolerance_s", 0), []string{"api_config.webhook.tolerance_s"}},
		{"webhook events not a list", set(fb, "api_config.webhook.events", "feed"), []string{"api_config.webhook.events"}},
		{"header name invalid", set(stripe, "api_config.headers", map[string]any{"Bad Header": "x"}), []string{"api_config.headers.Bad Header"}},
		{"header value with LF", set(stripe, "api_config.headers", map[string]any{"X-A": "1\nX-B: 2"}), []string{"api_config.headers.X-A"}},
		{"header reserved", set(stripe, "api_config.headers", map[string]any{"Host": "evil.com"}), []string{"api_config.headers.Host"}},
		{"header value not a string", set(stripe, "api_config.headers", map[string]any{"X-A": 1}), []string{"api_config.headers.X-A"}},
		{"tls cert without key", set(stripe, "api_config.tls", map[string]any{"client_cert": testCert}),
			[]string{"api_config.tls.client_cert", "api_config.tls.client_key"}},
		{"tls garbage", set(stripe, "api_config.tls", map[string]any{"ca_bundle": "not pem", "client_key": newSecret("notpem")}),
			[]string{"api_config.tls.ca_bundle", "api_config.tls.client_key", "api_config.tls.client_cert"}},
		{"unknown top-level field", set(stripe, "colour", "red"), []string{"colour"}},
		{"a sealed field cannot be written", set(stripe, "api_config.api_key.key_encrypted", map[string]any{"keyVersion": 1}),
			[]string{"api_config.api_key.key_encrypted"}},
		{"unknown nested field", set(fb, "api_config.oauth2.client_secrt", "x"), []string{"api_config.oauth2.client_secrt"}},
		{"wrong types", set(set(set(stripe, "name", 5), "is_sandbox", "yes"), "api_config", []any{}), []string{"name", "is_sandbox", "api_config"}},
		{"secret not a string", set(stripe, "api_config.api_key.key", 12345), []string{"api_config.api_key.key"}},
		{"every problem at once", set(set(set(stripe, "slug", "BAD"), "category", "x"), "api_config.timeout_ms", -1),
			[]string{"slug", "category", "api_config.timeout_ms"}},
	}
	each(t, func(t *testing.T, e *env) {
		for _, c := range cases {
			r := e.do("POST", "/admin/external-apis", e.boot, c.body)
			if r.status != http.StatusBadRequest || r.str("error.code") != "validation_failed" {
				t.Errorf("%s: status %d %s; want 400 validation_failed", c.desc, r.status, r.raw)
				continue
			}
			for _, p := range c.paths {
				if r.detail(p) == "" {
					t.Errorf("%s: details %v; want a problem at %s", c.desc, r.details(), p)
				}
			}
			if len(c.paths) > 1 && len(r.details()) < len(c.paths) {
				t.Errorf("%s: %d problems; want all %d in one response", c.desc, len(r.details()), len(c.paths))
			}
		}
		if r := e.do("GET", "/admin/external-apis", e.boot, nil); r.get("count") != 0.0 {
			t.Errorf("invalid bodies created %v APIs", r.get("count"))
		}

		// What the rules allow.
		for i, c := range []struct {
			desc string
			body map[string]any
		}{
			{"plain http for a sandbox", set(set(stripe, "api_config.base_url", "http://sandbox.example.com"), "is_sandbox", true)},
			{"plain http to 127.0.0.1", set(stripe, "api_config.base_url", "http://127.0.0.1:9999/v1")},
			{"plain http to 127.5.6.7", set(stripe, "api_config.base_url", "http://127.5.6.7/")},
			{"plain http to ::1", set(stripe, "api_config.base_url", "http://[::1]:8080")},
			{"plain http to localhost", set(stripe, "api_config.base_url", "http://localhost:8080")},
			{"client credentials without authorization_url", set(set(fb, "api_config.oauth2.authorization_url", nil), "api_config.oauth2.grant_type", "client_credentials")},
			{"client credentials with token params", set(set(set(fb, "api_config.oauth2.authorization_url", nil), "api_config.oauth2.grant_type", "client_credentials"),
				"api_config.oauth2.token_params", map[string]any{"audience": "https://tenant.us.auth0.com/api/v2/"})},
			{"oauth1 two-legged", oauth1},
			{"oauth1 three-legged", set(set(set(oauth1, "api_config.oauth1.request_token_url", "https://x.com/a"), "api_config.oauth1.authorization_url", "https://x.com/b"), "api_config.oauth1.access_token_url", "https://x.com/c")},
			{"api_key in a query parameter", set(set(set(stripe, "api_config.auth_type", "api_key"), "api_config.api_key.query_param", "key"), "api_config.api_key.header_name", nil)},
			{"api_key without an API-level key", set(set(stripe, "api_config.auth_type", "api_key"), "api_config.api_key", map[string]any{})},
			{"bearer without an API-level key", set(stripe, "api_config.api_key", nil)},
			{"every extension", set(set(set(set(fb, "api_config.oauth2.pkce", false), "api_config.oauth2.authorization_params", map[string]any{"access_type": "offline"}),
				"api_config.webhook", map[string]any{"url": "https://example.com/h", "forward_url": "https://internal.example.com/h", "scheme": "meta", "tolerance_s": 300}),
				"api_config.rate_limit", map[string]any{"requests_per_minute": 60, "scope": "api", "burst": 5, "mode": "reject", "max_wait_ms": 0, "on_redis_error": "deny", "reset_header": "X-RateLimit-Reset"})},
			{"timeout and retries at their bounds", set(set(set(stripe, "api_config.timeout_ms", 300000), "api_config.retry_config.max_retries", 0), "api_config.retry_config.backoff_ms", 60000)},
			{"null fields are not given", set(set(stripe, "provider", nil), "status", nil)},
		} {
			body := set(c.body, "slug", "ok-"+strconv.Itoa(i)) // set copies: the cases are shared by both databases
			if r := e.do("POST", "/admin/external-apis", e.boot, body); r.status != http.StatusCreated {
				t.Errorf("%s: status %d %s; want 201", c.desc, r.status, r.raw)
			}
		}
	})
}

func TestMalformedBodies(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		for _, c := range []struct {
			desc, body string
			want       int
			code, msg  string
		}{
			{"syntax error", `{"name": }`, 400, "malformed_json", "byte offset 10"},
			{"truncated", `{"name": "x"`, 400, "malformed_json", "byte offset 12"},
			{"trailing data", `{"name": "x"} {}`, 400, "malformed_json", "byte offset 13"},
			{"an array", `[1,2]`, 400, "malformed_json", "JSON object"},
			{"empty", ``, 400, "malformed_json", "empty"},
			{"invalid UTF-8", "{\"name\": \"\xff\"}", 400, "malformed_json", "byte offset 10"},
			{"too large", `{"name": "` + strings.Repeat("x", 1<<20) + `"}`, 413, "body_too_large", "1 MiB"},
			{"too deep", `{"api_config": {"oauth2": {"authorization_params": ` + strings.Repeat("[", 10001) + `}}}`, 400, "malformed_json", "offset"},
		} {
			r := e.do("POST", "/admin/external-apis", e.boot, c.body)
			if r.status != c.want || r.str("error.code") != c.code || !strings.Contains(r.str("error.message"), c.msg) {
				t.Errorf("%s: %d %s; want %d %s mentioning %q", c.desc, r.status, r.raw, c.want, c.code, c.msg)
			}
		}
		// Content-Type must be JSON when given.
		req, _ := http.NewRequest("POST", e.srv.URL+"/admin/external-apis", bytes.NewReader([]byte(`{}`)))
		req.Header.Set("Authorization", "Bearer "+e.boot)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if r := e.send(req); r.status != http.StatusUnsupportedMediaType || r.str("error.code") != "unsupported_media_type" {
			t.Errorf("form content type: %d %s; want 415", r.status, r.raw)
		}
		// A secret in a malformed body never comes back in the error.
		s := newSecret("in-bad-json")
		e.do("POST", "/admin/external-apis", e.boot, `{"api_config": {"api_key": {"key": "`+s+`"}}, "x": }`).want(t, http.StatusBadRequest)
		e.do("POST", "/admin/external-apis", e.boot, `{"api_config": {"api_key": {"key": "`+s+`", "bogus": "`+s+`"}}}`).want(t, http.StatusBadRequest)
	})
}

func TestValidateQuery(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		for q, path := range map[string]string{
			"/admin/external-apis?colour=red":                                           "query.colour",
			"/admin/external-apis?limit=0":                                              "query.limit",
			"/admin/external-apis?limit=201":                                            "query.limit",
			"/admin/external-apis?limit=abc":                                            "query.limit",
			"/admin/external-apis?offset=-1":                                            "query.offset",
			"/admin/external-apis?category=banking":                                     "query.category",
			"/admin/external-apis?status=live":                                          "query.status",
			"/admin/external-apis?slug=a&slug=b":                                        "query.slug",
			"/admin/external-apis?q=%00":                                                "query.q",
			"/admin/external-apis?q=%ff":                                                "query.q",
			"/admin/audit-events?since=yesterday":                                       "query.since",
			"/admin/audit-events?since=2030-01-02T00:00:00Z&until=2030-01-01T00:00:00Z": "query.until",
			"/admin/tokens?include_revoked=maybe":                                       "query.include_revoked",
		} {
			r := e.do("GET", q, e.boot, nil).want(t, http.StatusBadRequest)
			if r.detail(path) == "" {
				t.Errorf("GET %s: %v; want a problem at %s", q, r.details(), path)
			}
		}
		apiID := e.createAPI(stripeBody("s", newSecret("k")))
		r := e.do("GET", "/admin/external-apis/"+apiID+"/connections?status=gone", e.boot, nil).want(t, http.StatusBadRequest)
		if r.detail("query.status") == "" {
			t.Errorf("connections?status=gone: %s", r.raw)
		}
	})
}

func TestValidateConnectionBody(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		apiID := e.createAPI(oauthBody("fb"))
		for _, c := range []struct {
			desc  string
			body  map[string]any
			paths []string
		}{
			{"name missing", map[string]any{}, []string{"connection_name"}},
			{"unknown field", map[string]any{"connection_name": "c", "credentials": map[string]any{"token": "x"}}, []string{"credentials.token"}},
			{"sealed field", map[string]any{"connection_name": "c", "credentials": map[string]any{"access_token_encrypted": "x"}}, []string{"credentials.access_token_encrypted"}},
			{"empty secret", map[string]any{"connection_name": "c", "credentials": map[string]any{"access_token": ""}}, []string{"credentials.access_token"}},
			{"additional_data not an object", map[string]any{"connection_name": "c", "credentials": map[string]any{"additional_data": "x"}}, []string{"credentials.additional_data"}},
			{"provider_data not an object", map[string]any{"connection_name": "c", "provider_data": []any{}}, []string{"provider_data"}},
			{"provider_data with NUL", map[string]any{"connection_name": "c", "provider_data": map[string]any{"a": "x\x00"}}, []string{"provider_data.a"}},
			{"provider_data number out of range", map[string]any{"connection_name": "c", "provider_data": map[string]any{"a": json.Number("1e999")}}, []string{"provider_data.a"}},
			{"provider_data too deep", map[string]any{"connection_name": "c", "provider_data": deep(40)}, []string{"provider_data" + strings.Repeat(".a", 34)}},
			{"status unknown", map[string]any{"connection_name": "c", "status": "on"}, []string{"status"}},
			{"expires_at not a time", map[string]any{"connection_name": "c", "credentials": map[string]any{"expires_at": "1700000000"}}, []string{"credentials.expires_at"}},
			{"user_id too long", map[string]any{"connection_name": "c", "user_id": strings.Repeat("u", 201)}, []string{"user_id"}},
		} {
			r := e.do("POST", "/admin/external-apis/"+apiID+"/connections", e.boot, c.body)
			if r.status != http.StatusBadRequest {
				t.Errorf("%s: %d %s; want 400", c.desc, r.status, r.raw)
				continue
			}
			for _, p := range c.paths {
				if r.detail(p) == "" {
					t.Errorf("%s: %v; want a problem at %s", c.desc, r.details(), p)
				}
			}
		}
	})
}

func deep(n int) map[string]any {
	m := map[string]any{"leaf": 1}
	for i := 0; i < n; i++ {
		m = map[string]any{"a": m}
	}
	return m
}
