package metrics_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/extapi/extapi/metrics"
)

// scrape GETs h in the text format with the given Authorization header and returns the body;
// it fails the test unless the answer is 200.
func scrape(t *testing.T, h http.Handler, auth string) []byte {
	t.Helper()
	code, body := get(h, http.MethodGet, auth)
	if code != http.StatusOK {
		t.Fatalf("GET /metrics = %d %s; want 200", code, body)
	}
	return body
}

func get(h http.Handler, method, auth string) (int, []byte) {
	r := httptest.NewRequest(method, "/metrics", nil)
	r.Header.Set("Accept", "text/plain; version=0.0.4")
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	body, _ := io.ReadAll(w.Result().Body)
	return w.Code, body
}

func TestHandler(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg)
	m.API("stripe").ObserveRequest(metrics.MethodGet, 200, time.Millisecond)
	const token = "s3cret-metrics-token"
	for _, tc := range []struct {
		desc, token, method, auth string
		want                      int
	}{
		{"open without a token", "", http.MethodGet, "", 200},
		{"open ignores a header", "", http.MethodGet, "Bearer whatever", 200},
		{"HEAD", "", http.MethodHead, "", 200},
		{"POST refused", "", http.MethodPost, "", 405},
		{"token required", token, http.MethodGet, "", 401},
		{"wrong token", token, http.MethodGet, "Bearer nope", 401},
		{"prefix of the token", token, http.MethodGet, "Bearer s3cret", 401},
		{"token plus more", token, http.MethodGet, "Bearer " + token + "x", 401},
		{"basic scheme", token, http.MethodGet, "Basic " + token, 401},
		{"no scheme", token, http.MethodGet, token, 401},
		{"right token", token, http.MethodGet, "Bearer " + token, 200},
		{"scheme is case-insensitive", token, http.MethodGet, "bearer " + token, 200},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			h := metrics.Handler(reg, tc.token)
			code, body := get(h, tc.method, tc.auth)
			if code != tc.want {
				t.Fatalf("%s /metrics with %q = %d; want %d", tc.method, tc.auth, code, tc.want)
			}
			if code == 200 && tc.method == http.MethodGet && !strings.Contains(string(body), `extapi_requests_total{api="stripe",code="200",method="GET"} 1`) {
				t.Errorf("body lacks the recorded request:\n%s", body)
			}
			if code == 401 && strings.Contains(string(body), "extapi_") {
				t.Errorf("401 body leaks metrics: %s", body)
			}
		})
	}
}
