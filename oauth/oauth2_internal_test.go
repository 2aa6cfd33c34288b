package oauth

import (
	"bytes"
	crand "crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/extapi/extapi/store"
)

func TestSealedNonce(t *testing.T) {
	tests := []struct {
		desc, blob, want string
	}{
		{"as sealed", `{"encrypted":"ZW5j","iv":"bm9uY2U=","authTag":"dGFn","keyVersion":1}`, "bm9uY2U="},
		{"as PostgreSQL JSONB returns it", `{"iv": "bm9uY2U=", "authTag": "dGFn", "encrypted": "ZW5j", "keyVersion": 1}`, "bm9uY2U="},
		{"no iv", `{"encrypted":"ZW5j"}`, ""},
		{"iv not a string", `{"iv":12}`, ""},
		{"empty iv", `{"iv":""}`, ""},
		{"truncated", `{"iv":"abc`, ""},
		{"empty", ``, ""},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			if got := string(sealedNonce([]byte(tc.blob))); got != tc.want {
				t.Errorf("sealedNonce(%s) = %q; want %q", tc.blob, got, tc.want)
			}
		})
	}
}

func FuzzSealedNonce(f *testing.F) {
	f.Add([]byte(`{"encrypted":"ZW5j","iv":"bm9uY2U=","authTag":"dGFn","keyVersion":1}`))
	f.Add([]byte(`{"iv" : "x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		n := sealedNonce(b)
		for _, c := range n {
			if c == '"' {
				t.Fatalf("sealedNonce(%q) = %q contains a quote", b, n)
			}
		}
	})
}

func TestProviderData(t *testing.T) {
	body := `{"access_token":"at","refresh_token":"rt","id_token":"jwt","token_type":"Bearer","expires_in":3600,
		"scope":"a b","instance_url":"https://na1","issued_at":"17","signature":"sig","team":{"id":"T1"},
		"bot_access_token":"x","webhook_secret":"y","is_enterprise":false,"hub_id":42}`
	got := providerData([]byte(body))
	want := map[string]any{"instance_url": "https://na1", "issued_at": "17", "is_enterprise": false, "hub_id": 42.0}
	if g, w := mustMarshal(t, got), mustMarshal(t, want); g != w {
		t.Errorf("providerData(json) = %s; want %s", g, w)
	}
	form := providerData([]byte("access_token=at&user_id=u1&expires=5"))
	if g, w := mustMarshal(t, form), `{"expires":"5","user_id":"u1"}`; g != w {
		t.Errorf("providerData(form) = %s; want %s", g, w)
	}
}

func mustMarshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestExpiresAt(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	wallExpiry := time.Date(2030, 6, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		desc string
		tok  *oauth2.Token
		want *time.Time
	}{
		{"expires_in", &oauth2.Token{ExpiresIn: 3600}, ptr(now.Add(time.Hour))},
		{"extra number (client credentials)", (&oauth2.Token{}).WithExtra(map[string]any{"expires_in": 60.0}), ptr(now.Add(time.Minute))},
		{"extra string (PayPal)", (&oauth2.Token{}).WithExtra(map[string]any{"expires_in": "120"}), ptr(now.Add(2 * time.Minute))},
		{"form-encoded", (&oauth2.Token{}).WithExtra(url.Values{"expires_in": {"30"}}), ptr(now.Add(30 * time.Second))},
		{"only Expiry", &oauth2.Token{Expiry: wallExpiry}, ptr(wallExpiry)},
		{"no lifetime", &oauth2.Token{}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			got := expiresAt(tc.tok, now)
			if (got == nil) != (tc.want == nil) || (got != nil && !got.Equal(*tc.want)) {
				t.Errorf("expiresAt() = %v; want %v", got, tc.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestGrantGone(t *testing.T) {
	rerr := func(status int, code string) error {
		return &oauth2.RetrieveError{Response: &http.Response{StatusCode: status}, ErrorCode: code}
	}
	tests := []struct {
		desc string
		err  error
		gone bool
	}{
		{"invalid_grant", rerr(400, "invalid_grant"), true},
		{"unauthorized_client", rerr(400, "unauthorized_client"), true},
		{"invalid_grant in a 200 (some providers)", rerr(200, "invalid_grant"), true},
		{"invalid_client is configuration", rerr(401, "invalid_client"), false},
		{"5xx with a code", rerr(503, "invalid_grant"), false},
		{"server_error", rerr(400, "server_error"), false},
		{"network", errors.New("dial tcp: refused"), false},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			if _, gone := grantGone(tc.err); gone != tc.gone {
				t.Errorf("grantGone(%v) = %v; want %v", tc.err, gone, tc.gone)
			}
		})
	}
}

func TestBackoffDoubles(t *testing.T) {
	b := backoff{min: time.Second, max: 10 * time.Second, m: map[string]backoffEntry{}}
	now := time.Unix(0, 0)
	var got []time.Duration
	for range 6 {
		got = append(got, b.fail("k", now, errors.New("x")))
	}
	want := []time.Duration{1, 2, 4, 8, 10, 10}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("backoff waits = %v; want %v seconds", got, want)
		}
	}
	if b.blocked("k", now.Add(9*time.Second)) == nil || b.blocked("k", now.Add(10*time.Second)) != nil {
		t.Error("blocked() does not follow the last wait")
	}
	b.reset("k")
	if b.blocked("k", now) != nil {
		t.Error("blocked() after reset")
	}
}

func TestKeepProviderField(t *testing.T) {
	keep := []string{"instance_url", "user_id", "screen_name", "team_id", "hub_id", "issued_at", "expires",
		"is_enterprise", "x_auth_expires"}
	drop := []string{"access_token", "refresh_token", "id_token", "token_type", "bot_access_token", "oauth_token",
		"oauth_token_secret", "oauth_session_handle", "session_handle", "SESSION", "oauth_verifier", "verifier",
		"oauth_callback_confirmed", "webhook_secret", "api_key", "signing_key", "KeyId", "code", "auth_code",
		"client_assertion", "credentials", "Credential", "password", "signature", "Signature", "expires_in",
		"scope", "error", "error_description", "error_uri"}
	for _, n := range keep {
		if !keepProviderField(n) {
			t.Errorf("keepProviderField(%q) = false; want it kept", n)
		}
	}
	for _, n := range drop {
		if keepProviderField(n) {
			t.Errorf("keepProviderField(%q) = true; want it dropped", n)
		}
	}
	// Both flows use it: OAuth 2.0's response fields and OAuth 1.0a's alike.
	if got := providerData([]byte(`{"api_key":"k","auth_code":"c","user_id":"u"}`)); len(got) != 1 || got["user_id"] != "u" {
		t.Errorf("providerData = %v; want only user_id", got)
	}
}

// TestServiceAccountUsesConfiguredTokenURLOnly: the key file's token_uri is never where an
// assertion goes; without oauth2.token_url there is no token (ErrNotOAuth2), and no request.
func TestServiceAccountUsesConfiguredTokenURLOnly(t *testing.T) {
	var hitCount atomic.Int32
	hits := func() int32 { return hitCount.Load() }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hitCount.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"at","token_type":"Bearer","expires_in":3600}`))
	}))
	defer srv.Close()
	pk, err := rsa.GenerateKey(crand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(pk)
	key, _ := json.Marshal(map[string]string{"client_email": "svc@example.test", "token_uri": srv.URL,
		"private_key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))})
	api := &store.ExternalAPI{ID: "api_1"}
	s := plainSealer{}
	c := &store.OAuth2Config{GrantType: GrantJWTBearer, ServiceAccountKey: store.Sealed(key)}
	if _, err := serviceAccountToken(t.Context(), s, api, c); !errors.Is(err, ErrNotOAuth2) || hits() != 0 {
		t.Errorf("serviceAccountToken(no token_url) = %v after %d requests; want ErrNotOAuth2 and none to the key's token_uri", err, hits())
	}
	c.TokenURL = srv.URL + "/configured"
	if tok, err := serviceAccountToken(t.Context(), s, api, c); err != nil || tok.AccessToken != "at" || hits() != 1 {
		t.Errorf("serviceAccountToken(token_url) = %v, %v after %d requests; want a token from token_url", tok, err, hits())
	}
}

// plainSealer "seals" by copying: enough where only the plumbing is tested.
type plainSealer struct{}

func (plainSealer) Seal(p, _ []byte) ([]byte, error) { return bytes.Clone(p), nil }
func (plainSealer) Open(b, _ []byte) ([]byte, error) { return bytes.Clone(b), nil }
