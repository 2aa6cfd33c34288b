package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestDeletedAPISeriesDropped: once an API is deleted through the management API, its series
// leave /metrics (after two passes of the stats loop), while another API's stay.
func TestDeletedAPISeriesDropped(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer up.Close()
	const adminToken = "prune-test-admin-token-0123"
	a := startApp(t, sqliteAppVars(t, adminToken, nil), func(a *app) { a.statsInterval = 20 * time.Millisecond })

	apiIDs := map[string]string{}
	for _, slug := range []string{"doomed", "staying"} {
		id, conn := createKeyedAPI(t, a, adminToken, slug, up.URL, "k")
		resp, err := http.Get("http://" + a.proxyLn.Addr().String() + "/" + slug + "/" + conn + "/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("proxied request to %s = %d; want 200", slug, resp.StatusCode)
		}
		apiIDs[slug] = id
	}
	scrape := func() string {
		t.Helper()
		resp, err := http.Get("http://" + a.adminLn.Addr().String() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	const doomed, staying = `extapi_requests_total{api="doomed"`, `extapi_requests_total{api="staying"`
	if m := scrape(); !strings.Contains(m, doomed) || !strings.Contains(m, staying) {
		t.Fatalf("/metrics lacks the requests of both APIs before the delete")
	}
	adminCall(t, a, adminToken, "DELETE", "/admin/external-apis/"+apiIDs["doomed"], nil, http.StatusNoContent)
	deadline := time.Now().Add(20 * time.Second)
	for strings.Contains(scrape(), doomed) {
		if time.Now().After(deadline) {
			t.Fatal("the deleted API's series are still on /metrics after 20s")
		}
		time.Sleep(20 * time.Millisecond) // polling for a condition
	}
	if !strings.Contains(scrape(), staying) {
		t.Error("the series of an API that was not deleted were dropped too")
	}
}
