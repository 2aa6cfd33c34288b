package metrics_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/extapi/extapi/metrics"
)

// FuzzParseMethod: the method from the wire always maps into the bounded set, and both
// parsers agree.
func FuzzParseMethod(f *testing.F) {
	for _, s := range []string{"GET", "POST", "get", "", "PROPFIND", "GET\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m := metrics.ParseMethod(s)
		if b := metrics.ParseMethodBytes([]byte(s)); b != m {
			t.Fatalf("ParseMethodBytes(%q) = %v; ParseMethod = %v", s, b, m)
		}
		if got := m.String(); got != s && got != "other" {
			t.Fatalf("ParseMethod(%q).String() = %q; want %q or other", s, got, s)
		}
	})
}

// FuzzMetricsAuth: the only Authorization headers /metrics accepts are "Bearer <token>" with
// the scheme in any case and surrounding spaces.
func FuzzMetricsAuth(f *testing.F) {
	const token = "tok-123"
	for _, s := range []string{"Bearer tok-123", "bearer tok-123", "Bearer tok-12", "Bearer  tok-123 ", "Basic tok-123", "tok-123", ""} {
		f.Add(s)
	}
	h := metrics.Handler(prometheus.NewRegistry(), token)
	f.Fuzz(func(t *testing.T, auth string) {
		if strings.ContainsAny(auth, "\r\n") {
			return // not a header value a client can send
		}
		code, _ := get(h, http.MethodGet, auth)
		scheme, cred, _ := strings.Cut(auth, " ")
		want := http.StatusUnauthorized
		if strings.EqualFold(scheme, "bearer") && strings.TrimSpace(cred) == token {
			want = http.StatusOK
		}
		if code != want {
			t.Fatalf("Authorization %q: %d; want %d", auth, code, want)
		}
	})
}
