package admin_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/extapi/extapi/admin"
	"github.com/extapi/extapi/store"
	"github.com/extapi/extapi/store/storetest"
	"github.com/extapi/extapi/vault"
)

var _ admin.Sealer = (*vault.Keyring)(nil)

// The redaction check: every plaintext secret a test sends is registered, every response body
// and every log line is recorded, and TestMain fails the run if any of them contains a secret —
// or a sealed blob.
var collector struct {
	mu      sync.Mutex
	secrets map[string]bool
	bodies  []recorded
	logs    []*syncBuffer
}

type recorded struct {
	where string
	body  string
	may   string // a secret this one body may carry: the token a POST /admin/tokens returns once
}

// secret registers a plaintext secret and returns it.
func secret(s string) string {
	collector.mu.Lock()
	defer collector.mu.Unlock()
	if collector.secrets == nil {
		collector.secrets = map[string]bool{}
	}
	collector.secrets[s] = true
	return s
}

// newSecret returns a unique registered plaintext secret.
func newSecret(kind string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return secret("PLAINTEXT-" + kind + "-" + hex.EncodeToString(b[:]))
}

func record(where string, body []byte, may string) {
	collector.mu.Lock()
	defer collector.mu.Unlock()
	collector.bodies = append(collector.bodies, recorded{where, string(body), may})
}

// scanForSecrets checks everything recorded so far.
func scanForSecrets() string {
	collector.mu.Lock()
	defer collector.mu.Unlock()
	texts := make([]recorded, 0, len(collector.bodies)+len(collector.logs))
	texts = append(texts, collector.bodies...)
	for i, l := range collector.logs {
		texts = append(texts, recorded{where: "log " + strconv.Itoa(i), body: l.String()})
	}
	return scan(collector.secrets, texts)
}

// scan returns a description of every secret, and every sealed blob, found in texts.
func scan(secrets map[string]bool, texts []recorded) string {
	var out strings.Builder
	for _, r := range texts {
		for s := range secrets {
			if s != r.may && strings.Contains(r.body, s) {
				fmt.Fprintf(&out, "secret %q found in %s\n", s, r.where)
			}
		}
		for _, blob := range []string{`"keyVersion"`, `"authTag"`, `"iv"`} {
			if strings.Contains(r.body, blob) {
				fmt.Fprintf(&out, "sealed value (%s) found in %s\n", blob, r.where)
			}
		}
	}
	return out.String()
}

// TestScanFindsLeaks checks the redaction check itself.
func TestScanFindsLeaks(t *testing.T) {
	secrets := map[string]bool{"s3cr3t-value": true}
	for _, c := range []struct {
		r    recorded
		leak bool
	}{
		{recorded{where: "a", body: `{"key":"s3cr3t-value"}`}, true},
		{recorded{where: "b", body: `{"key":{"set":true}}`}, false},
		{recorded{where: "c", body: `{"bearer_token":"s3cr3t-value"}`, may: "s3cr3t-value"}, false},
		{recorded{where: "d", body: `{"encrypted":"x","iv":"y","authTag":"z","keyVersion":1}`}, true},
	} {
		if got := scan(secrets, []recorded{c.r}) != ""; got != c.leak {
			t.Errorf("scan(%s) found a leak = %v; want %v", c.r.body, got, c.leak)
		}
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		collector.mu.Lock()
		n, b, l := len(collector.secrets), len(collector.bodies), len(collector.logs)
		collector.mu.Unlock()
		if leaks := scanForSecrets(); leaks != "" {
			fmt.Fprintf(os.Stderr, "FAIL: redaction check:\n%s", leaks)
			code = 1
		} else if testing.Verbose() {
			fmt.Printf("redaction check: %d secrets, none in %d response bodies or %d logs\n", n, b, l)
		}
	}
	os.Exit(code)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is an admin server on a real store, behind a real HTTP listener.
type env struct {
	t    testing.TB
	st   *store.Store
	kr   *vault.Keyring
	srv  *httptest.Server
	h    *admin.Server
	log  *syncBuffer
	boot string // the bootstrap token
	// quiet: do not record response bodies, and call the handler in-process (fuzzing sends millions).
	quiet bool
}

// with returns a copy of e that reports to t.
func (e *env) with(t testing.TB) *env {
	c := *e
	c.t = t
	return &c
}

func newEnv(t testing.TB, st *store.Store, opts ...func(*admin.Options)) *env {
	t.Helper()
	key, err := vault.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	kr, err := vault.New(map[uint32][]byte{1: key}, 1)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, st: st, kr: kr, log: &syncBuffer{}, boot: secret("bootstrap-" + newSecret("token"))}
	collector.mu.Lock()
	collector.logs = append(collector.logs, e.log)
	collector.mu.Unlock()
	o := admin.Options{
		Store: st, Sealer: kr, AdminToken: e.boot, Ready: map[string]admin.Checker{"database": st},
		Log: slog.New(slog.NewJSONHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, f := range opts {
		f(&o)
	}
	e.h = admin.New(o)
	e.srv = httptest.NewServer(e.h)
	t.Cleanup(e.srv.Close)
	return e
}

// each runs fn in parallel against a fresh admin server on every database.
func each(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		t.Parallel()
		fn(t, newEnv(t, st))
	})
}

type resp struct {
	status int
	header http.Header
	raw    []byte
	json   map[string]any
}

// do sends a request; body is a string (sent as is), nil (no body) or anything else (JSON).
func (e *env) do(method, path, token string, body any) *resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return e.send(req)
}

func (e *env) send(req *http.Request) *resp {
	e.t.Helper()
	if e.quiet {
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		r := &resp{status: rec.Code, header: rec.Header(), raw: rec.Body.Bytes()}
		_ = json.Unmarshal(r.raw, &r.json)
		return r
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	may := ""
	r := &resp{status: res.StatusCode, header: res.Header, raw: raw}
	if len(raw) > 0 && strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &r.json); err != nil && req.URL.Path != "/admin/openapi.json" {
			e.t.Fatalf("%s %s: response is not a JSON object: %v\n%s", req.Method, req.URL.Path, err, raw)
		}
		if tok, ok := r.json["bearer_token"].(string); ok {
			may = secret(tok)
		}
	}
	record(req.Method+" "+req.URL.Path, raw, may)
	return r
}

// want fails the test unless the status is as expected, showing the body.
func (r *resp) want(t testing.TB, status int) *resp {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d; want %d\n%s", r.status, status, r.raw)
	}
	return r
}

// get returns the value at a dotted path of the response ("external_api.api_config.oauth2").
func (r *resp) get(path string) any { return pathGet(r.json, path) }

func (r *resp) str(path string) string {
	s, _ := r.get(path).(string)
	return s
}

func pathGet(v any, path string) any {
	for _, seg := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[seg]
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

// details returns the paths of a validation error's details.
func (r *resp) details() []string {
	var out []string
	ds, _ := r.get("error.details").([]any)
	for _, d := range ds {
		out = append(out, pathGet(d, "path").(string))
	}
	return out
}

// detail returns the message at a detail path, or "" when there is none.
func (r *resp) detail(path string) string {
	ds, _ := r.get("error.details").([]any)
	for _, d := range ds {
		if pathGet(d, "path") == path {
			return pathGet(d, "message").(string)
		}
	}
	return ""
}

// token creates a stored token with the role and tenant and returns it.
func (e *env) token(role, salesChannel, partner string) string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	name := role + "-" + hex.EncodeToString([]byte(salesChannel+"/"+partner)) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	_, tok, err := admin.CreateToken(ctx, e.st, "test", admin.TokenSpec{Name: name, Role: role, SalesChannelID: salesChannel, PartnerID: partner})
	if err != nil {
		e.t.Fatalf("CreateToken(%s) = %v", role, err)
	}
	return secret(tok)
}

// stripeBody is a valid bearer-auth API with an API-level key.
func stripeBody(slug, key string) map[string]any {
	return map[string]any{
		"name": "Stripe " + slug, "slug": slug, "category": "payment", "provider": "stripe",
		"api_config": map[string]any{
			"base_url": "https://api.stripe.com/v1", "api_version": "2024-01-01", "auth_type": "bearer",
			"api_key":    map[string]any{"key": key, "header_name": "Authorization", "key_prefix": "Bearer "},
			"rate_limit": map[string]any{"requests_per_second": 100},
			"timeout_ms": 30000, "retry_config": map[string]any{"max_retries": 3, "backoff_ms": 1000},
		},
		"status": "active", "is_sandbox": false, "environment": "production",
	}
}

// oauthBody is a valid OAuth 2.0 API.
func oauthBody(slug string) map[string]any {
	return map[string]any{
		"name": "Facebook " + slug, "slug": slug, "category": "social", "provider": "meta",
		"api_config": map[string]any{
			"base_url": "https://graph.facebook.com/v18.0", "auth_type": "oauth2",
			"oauth2": map[string]any{
				"client_id": newSecret("client-id"), "client_secret": newSecret("client-secret"),
				"authorization_url": "https://www.facebook.com/v18.0/dialog/oauth",
				"token_url":         "https://graph.facebook.com/v18.0/oauth/access_token",
				"scopes":            []string{"pages_show_list"}, "redirect_uri": "https://example.com/callback",
			},
			"webhook": map[string]any{"url": "https://example.com/webhooks/facebook", "secret": newSecret("webhook"), "events": []string{"feed"}},
		},
	}
}

// createAPI creates an API with the bootstrap token and returns its id.
func (e *env) createAPI(body map[string]any) string {
	e.t.Helper()
	r := e.do("POST", "/admin/external-apis", e.boot, body).want(e.t, http.StatusCreated)
	return r.str("external_api.id")
}

// createConn creates a connection and returns its id.
func (e *env) createConn(apiID string, body map[string]any) string {
	e.t.Helper()
	r := e.do("POST", "/admin/external-apis/"+apiID+"/connections", e.boot, body).want(e.t, http.StatusCreated)
	return r.str("connection.id")
}

// audits lists the audit events of a target, newest first.
func (e *env) audits(targetID string) []any {
	e.t.Helper()
	r := e.do("GET", "/admin/audit-events?target_id="+targetID, e.boot, nil).want(e.t, http.StatusOK)
	l, _ := r.get("audit_events").([]any)
	return l
}

func TestHealth(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		r := e.do("GET", "/healthz", "", nil).want(t, http.StatusOK)
		if r.str("status") != "ok" {
			t.Errorf("healthz = %s; want status ok", r.raw)
		}
		r = e.do("GET", "/readyz", "", nil).want(t, http.StatusOK)
		if r.str("checks.database") != "ok" {
			t.Errorf("readyz = %s; want database ok", r.raw)
		}
	})
}

type failing struct{}

func (failing) Ping(context.Context) error { return fmt.Errorf("connection refused") }

func TestReadyzUnavailable(t *testing.T) {
	t.Parallel()
	st := storetest.Open(t, storetest.SQLiteURL(t))
	e := newEnv(t, st, func(o *admin.Options) { o.Ready["redis"] = failing{} })
	r := e.do("GET", "/readyz", "", nil).want(t, http.StatusServiceUnavailable)
	if r.str("checks.redis") != "unreachable" || r.str("checks.database") != "ok" {
		t.Errorf("readyz = %s; want redis unreachable, database ok", r.raw)
	}
}

func TestReadyzDraining(t *testing.T) {
	t.Parallel()
	st := storetest.Open(t, storetest.SQLiteURL(t))
	var draining atomic.Bool
	e := newEnv(t, st, func(o *admin.Options) { o.Draining = draining.Load })
	e.do("GET", "/readyz", "", nil).want(t, http.StatusOK)
	draining.Store(true)
	r := e.do("GET", "/readyz", "", nil).want(t, http.StatusServiceUnavailable)
	if r.str("status") != "draining" {
		t.Errorf("readyz while draining = %s; want status draining", r.raw)
	}
	e.do("GET", "/healthz", "", nil).want(t, http.StatusOK) // still alive: not a reason to restart
}
