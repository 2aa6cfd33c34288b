package oauth

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"golang.org/x/oauth2"
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
