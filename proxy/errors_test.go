package proxy

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/extapi/extapi/store"
	"github.com/extapi/extapi/store/storetest"
)

// checkExtapiError fails unless r is an extapi error of code with its status, header and body.
func checkExtapiError(t *testing.T, r rawResponse, code string) {
	t.Helper()
	if want := statusOf[code]; r.Status != want {
		t.Errorf("status = %d; want %d (%s); body %s", r.Status, want, code, r.Body)
	}
	if got := r.Header.Get("X-Extapi-Error"); got != code {
		t.Errorf("X-Extapi-Error = %q; want %q", got, code)
	}
	var body struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(r.Body, &body); err != nil || body.Error.Code != code || body.Error.Message == "" {
		t.Errorf("body = %s (%v); want {\"error\":{\"code\":%q,\"message\":…}}", r.Body, err, code)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q; want application/json", ct)
	}
}

func TestExtapiErrors(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		up := newUpstream(t, func(ctx *fasthttp.RequestCtx) {
			switch string(ctx.Path()) {
			case "/v1/unauthorized":
				ctx.SetStatusCode(401)
				ctx.SetBodyString(`{"error":"invalid key"}`)
			case "/v1/boom":
				ctx.SetStatusCode(500)
				ctx.SetBodyString("upstream broke")
			case "/v1/slow":
				time.Sleep(500 * time.Millisecond)
			}
		})
		e := newProxyEnv(t, s, newKeyring(t), Options{})
		other := newKeyring(t)
		bearer := store.APIConfig{BaseURL: up.url + "/v1", AuthType: store.AuthBearer}
		tok := func(c *store.Connection) { c.Credentials.AccessToken = e.sealConn(c, "credentials.access_token", "t") }

		good := e.api("good", bearer, nil)
		goodConn := e.conn(good, tok)
		inactive := e.api("inactive", bearer, func(a *store.ExternalAPI) { a.Status = store.APIInactive })
		deprecated := e.api("deprecated", bearer, func(a *store.ExternalAPI) { a.Status = store.APIDeprecated })
		deleted := e.api("deleted", bearer, nil)
		deletedConn := e.conn(deleted, tok)
		if err := s.DeleteAPI(testCtx(t), deleted.ID, store.Tenant{}); err != nil {
			t.Fatal(err)
		}
		statusConn := func(status string) *store.Connection {
			return e.conn(good, func(c *store.Connection) { tok(c); c.Status = status })
		}
		unknownAuth := e.api("unknownauth", store.APIConfig{BaseURL: up.url, AuthType: "kerberos"}, nil)
		noCreds := e.conn(good, nil)
		wrongKey := e.conn(good, func(c *store.Connection) {
			c.Credentials.AccessToken = seal(t, other, "t", c.AAD("credentials.access_token"))
		})
		moved := e.conn(good, func(c *store.Connection) { // a blob sealed for another row
			c.Credentials.AccessToken = e.sealConn(goodConn, "credentials.access_token", "t")
		})
		closed := "http://" + closedAddr(t)
		unreachable := e.api("unreachable", store.APIConfig{BaseURL: closed, AuthType: store.AuthBearer}, nil)
		slow := e.api("slow", store.APIConfig{BaseURL: up.url + "/v1", AuthType: store.AuthBearer, TimeoutMS: 100}, nil)
		badBase := e.api("badbase", store.APIConfig{BaseURL: "ftp://x", AuthType: store.AuthBearer}, nil)

		path := func(a *store.ExternalAPI, c *store.Connection, rest string) string {
			return "GET /" + a.Slug + "/" + c.ID + rest + " HTTP/1.1\r\nHost: p\r\n\r\n"
		}
		cases := []struct {
			desc, request, code string
		}{
			{"no route", "GET / HTTP/1.1\r\nHost: p\r\n\r\n", CodeRouteNotFound},
			{"unknown connection", "GET /good/conn_nosuchconnection/x HTTP/1.1\r\nHost: p\r\n\r\n", CodeConnectionNotFound},
			{"slug of another API", path(inactive, goodConn, "/x"), CodeRouteNotFound},
			{"X-Extapi-Api of another API", "GET /v1/x HTTP/1.1\r\nHost: p\r\nX-Extapi-Connection: " + goodConn.ID + "\r\nX-Extapi-Api: other\r\n\r\n", CodeRouteNotFound},
			{"inactive API", path(inactive, e.conn(inactive, tok), "/x"), CodeAPIInactive},
			{"deprecated API", path(deprecated, e.conn(deprecated, tok), "/x"), CodeAPIInactive},
			{"deleted API", path(deleted, deletedConn, "/x"), CodeRouteNotFound},
			{"revoked connection", path(good, statusConn(store.ConnRevoked), "/x"), CodeConnectionInactive},
			{"expired connection", path(good, statusConn(store.ConnExpired), "/x"), CodeConnectionInactive},
			{"connection in error", path(good, statusConn(store.ConnError), "/x"), CodeConnectionInactive},
			{"an auth type extapi does not know", path(unknownAuth, e.conn(unknownAuth, tok), "/x"), CodeAPIConfigInvalid},
			{"no credential anywhere", path(good, noCreds, "/x"), CodeCredentialsMissing},
			{"sealed with another key", path(good, wrongKey, "/x"), CodeSecretUnavailable},
			{"sealed for another row", path(good, moved, "/x"), CodeSecretUnavailable},
			{"unusable base_url", path(badBase, e.conn(badBase, tok), "/x"), CodeAPIConfigInvalid},
			{"path escape", path(good, goodConn, "/%2e%2e/admin"), CodeBadRequest},
			{"header mode outside the base path", "GET /admin HTTP/1.1\r\nHost: p\r\nX-Extapi-Connection: " + goodConn.ID + "\r\n\r\n", CodeBadRequest},
			{"CR in a header value", "GET /good/" + goodConn.ID + "/x HTTP/1.1\r\nHost: p\r\nX-A: a\rb\r\n\r\n", CodeBadRequest},
			{"TRACE", "TRACE /good/" + goodConn.ID + "/x HTTP/1.1\r\nHost: p\r\n\r\n", CodeMethodNotAllowed},
			{"upstream refuses connections", path(unreachable, e.conn(unreachable, tok), "/x"), CodeUpstreamUnreachable},
			{"upstream too slow", path(slow, e.conn(slow, tok), "/slow"), CodeUpstreamTimeout},
		}
		for _, tc := range cases {
			t.Run(tc.desc, func(t *testing.T) {
				n := up.hits()
				r := raw(t, e.addr, tc.request)
				checkExtapiError(t, r, tc.code)
				if tc.code != CodeUpstreamTimeout && up.hits() != n {
					t.Errorf("upstream hits = %d; want %d: an extapi error must not forward", up.hits(), n)
				}
				if strings.Contains(string(r.Body), "encrypted") || strings.Contains(string(r.Body), "authTag") {
					t.Errorf("body %s reveals a sealed blob", r.Body)
				}
			})
		}

		// Upstream errors pass through untouched and never carry X-Extapi-Error.
		for _, p := range []struct {
			path   string
			status int
			body   string
		}{{"/unauthorized", 401, `{"error":"invalid key"}`}, {"/boom", 500, "upstream broke"}} {
			r := raw(t, e.addr, path(good, goodConn, p.path))
			if r.Status != p.status || string(r.Body) != p.body || r.Header.Get("X-Extapi-Error") != "" {
				t.Errorf("upstream %d = %d %q X-Extapi-Error %q; want it passed through as it is",
					p.status, r.Status, r.Body, r.Header.Get("X-Extapi-Error"))
			}
		}
	})
}

// TestREADMEListsEveryErrorCode keeps the README's table of extapi's own errors true: every code
// with its status.
func TestREADMEListsEveryErrorCode(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for code, status := range statusOf {
		if row := fmt.Sprintf("| `%s` | %d |", code, status); !strings.Contains(string(readme), row) {
			t.Errorf("README.md error table lacks the row %q", row)
		}
	}
}
