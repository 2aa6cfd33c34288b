package admin_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/extapi/extapi/store"
)

func (e *env) openConnSecret(id, field string) string {
	e.t.Helper()
	c, err := e.st.GetConnection(e.t.Context(), id, store.Tenant{})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, f := range c.SecretFields() {
		if f.Name == field {
			if !f.Value.IsSet() {
				return ""
			}
			b, err := e.kr.Open(*f.Value, c.AAD(field))
			if err != nil {
				e.t.Fatalf("open %s: %v", field, err)
			}
			return string(b)
		}
	}
	e.t.Fatalf("no field %s", field)
	return ""
}

func TestConnectionLifecycle(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		apiID := e.createAPI(oauthBody("facebook"))
		access, refresh, pw := newSecret("access"), newSecret("refresh"), newSecret("password")
		extra := newSecret("extra")
		body := map[string]any{
			"connection_name": "My Facebook Page", "user_id": "u_1",
			"credentials": map[string]any{
				"access_token": access, "refresh_token": refresh, "token_type": "Bearer",
				"expires_at": "2030-01-02T03:04:05+02:00", "scopes": []string{"pages_show_list"},
				"username": "page-bot", "password": pw, "additional_data": map[string]any{"app_proof": extra, "n": 1},
			},
			"provider_data": map[string]any{"page_id": "123", "page_name": "Shop", "big": json.Number("12345678901234567890")},
		}
		r := e.do("POST", "/admin/external-apis/"+apiID+"/connections", e.boot, body).want(t, http.StatusCreated)
		id := r.str("connection.id")
		for path, want := range map[string]any{
			"connection.external_api_id":                    apiID,
			"connection.connection_name":                    "My Facebook Page",
			"connection.status":                             "active",
			"connection.credentials.access_token":           map[string]any{"set": true},
			"connection.credentials.refresh_token":          map[string]any{"set": true},
			"connection.credentials.oauth_token":            map[string]any{"set": false},
			"connection.credentials.api_key":                map[string]any{"set": false},
			"connection.credentials.password":               map[string]any{"set": true},
			"connection.credentials.additional_data":        map[string]any{"set": true},
			"connection.credentials.expires_at":             "2030-01-02T01:04:05Z",
			"connection.credentials.token_type":             "Bearer",
			"connection.provider_data.page_id":              "123",
			"connection.provider_data.big":                  12345678901234567890.0,
			"connection.credentials.access_token_encrypted": nil,
		} {
			if got := r.get(path); !reflect.DeepEqual(got, want) {
				t.Errorf("POST %s = %#v; want %#v", path, got, want)
			}
		}
		if !strings.Contains(string(r.raw), `"big":12345678901234567890`) {
			t.Errorf("provider_data lost the precision of a large number: %s", r.raw)
		}
		if r.get("connection.authenticated_at") == nil {
			t.Errorf("authenticated_at not set on a connection created with credentials")
		}
		if got := e.openConnSecret(id, "credentials.access_token"); got != access {
			t.Errorf("stored access_token does not open to the plaintext sent")
		}
		var add map[string]any
		if err := json.Unmarshal([]byte(e.openConnSecret(id, "credentials.additional_data")), &add); err != nil || add["app_proof"] != extra {
			t.Errorf("additional_data opens to %v, %v; want the object sent", add, err)
		}

		g := e.do("GET", "/admin/connections/"+id, e.boot, nil).want(t, http.StatusOK)
		if !reflect.DeepEqual(g.get("connection"), r.get("connection")) {
			t.Errorf("GET = %s\nwant the POST response %s", g.raw, r.raw)
		}

		// PATCH: omitted secrets stay, null clears, provider_data merges.
		p := e.do("PATCH", "/admin/connections/"+id, e.boot, map[string]any{
			"status":        "expired",
			"credentials":   map[string]any{"refresh_token": nil, "access_token": newSecret("access2")},
			"provider_data": map[string]any{"page_name": nil, "ig_user_id": "9"},
		}).want(t, http.StatusOK)
		if p.get("connection.credentials.refresh_token.set") != false || p.get("connection.credentials.password.set") != true ||
			p.str("connection.status") != "expired" || p.get("connection.provider_data.page_name") != nil ||
			p.str("connection.provider_data.ig_user_id") != "9" || p.str("connection.provider_data.page_id") != "123" ||
			p.str("connection.credentials.token_type") != "Bearer" {
			t.Errorf("after PATCH: %s", p.raw)
		}
		if e.openConnSecret(id, "credentials.password") != pw || e.openConnSecret(id, "credentials.refresh_token") != "" {
			t.Errorf("PATCH changed a secret it did not name, or did not clear the one set to null")
		}
		ev := e.audits(id)
		if len(ev) != 2 {
			t.Fatalf("audit events = %d; want 2", len(ev))
		}
		ch := pathGet(ev[0], "changes").(map[string]any)
		for k, want := range map[string]any{
			"credentials.access_token": "changed", "credentials.refresh_token": "cleared", "credentials.password": "unchanged",
			"status": map[string]any{"old": "active", "new": "expired"},
		} {
			if !reflect.DeepEqual(ch[k], want) {
				t.Errorf("update changes[%s] = %v; want %v", k, ch[k], want)
			}
		}

		// credentials: null removes every credential.
		p = e.do("PATCH", "/admin/connections/"+id, e.boot, map[string]any{"credentials": nil}).want(t, http.StatusOK)
		if p.get("connection.credentials.password.set") != false || p.get("connection.credentials.token_type") != nil {
			t.Errorf("after credentials: null: %s", p.raw)
		}

		// List with filters.
		e.createConn(apiID, map[string]any{"connection_name": "second", "user_id": "u_2"})
		for q, n := range map[string]float64{"": 2, "?user_id=u_2": 1, "?status=expired": 1, "?status=revoked": 0, "?limit=1": 2} {
			l := e.do("GET", "/admin/external-apis/"+apiID+"/connections"+q, e.boot, nil).want(t, http.StatusOK)
			if l.get("count") != n {
				t.Errorf("connections%s count = %v; want %v", q, l.get("count"), n)
			}
		}

		e.do("DELETE", "/admin/connections/"+id, e.boot, nil).want(t, http.StatusNoContent)
		e.do("GET", "/admin/connections/"+id, e.boot, nil).want(t, http.StatusNotFound)
		e.do("DELETE", "/admin/connections/"+id, e.boot, nil).want(t, http.StatusNotFound)
		if l := e.do("GET", "/admin/external-apis/"+apiID+"/connections", e.boot, nil); l.get("count") != 1.0 {
			t.Errorf("connections after delete = %v; want 1", l.get("count"))
		}
		if ev := e.audits(id); len(ev) != 4 || pathGet(ev[0], "action") != "connection.delete" {
			t.Errorf("audit after delete = %v; want connection.delete newest of 4", ev)
		}
	})
}

// TestDeletedAPIConnections: deleting an API deletes its connections; none is reachable after.
func TestDeletedAPIConnections(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		apiID := e.createAPI(stripeBody("stripe", newSecret("k")))
		c1 := e.createConn(apiID, map[string]any{"connection_name": "a"})
		c2 := e.createConn(apiID, map[string]any{"connection_name": "b", "sales_channel_id": "sc_x"})
		e.do("DELETE", "/admin/external-apis/"+apiID, e.boot, nil).want(t, http.StatusNoContent)
		for _, c := range []string{c1, c2} {
			e.do("GET", "/admin/connections/"+c, e.boot, nil).want(t, http.StatusNotFound)
			e.do("PATCH", "/admin/connections/"+c, e.boot, map[string]any{"status": "active"}).want(t, http.StatusNotFound)
			e.do("DELETE", "/admin/connections/"+c, e.boot, nil).want(t, http.StatusNotFound)
			if ev := e.audits(c); len(ev) != 2 || pathGet(ev[0], "action") != "connection.delete" || pathGet(ev[0], "changes.cause") != "external_api.delete" {
				t.Errorf("audit of %s = %v; want a connection.delete caused by external_api.delete", c, ev)
			}
		}
		e.do("GET", "/admin/external-apis/"+apiID+"/connections", e.boot, nil).want(t, http.StatusNotFound)
		e.do("POST", "/admin/external-apis/"+apiID+"/connections", e.boot, map[string]any{"connection_name": "c"}).want(t, http.StatusNotFound)
		if _, n, _ := e.st.ListConnections(t.Context(), store.ConnectionFilter{ExternalAPIID: apiID}); n != 0 {
			t.Errorf("live connections of the deleted API = %d; want 0", n)
		}
		// The tenant of a cascaded connection's audit event is its own.
		sc := e.token("viewer", "sc_x", "")
		r := e.do("GET", "/admin/audit-events?target_id="+c2, sc, nil).want(t, http.StatusOK)
		if l := r.get("audit_events").([]any); len(l) != 2 {
			t.Errorf("sc_x's audit of its connection = %d events; want 2", len(l))
		}
	})
}

func TestConnectionCredentialRules(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		keyless := map[string]any{"name": "K", "slug": "keyless", "category": "other",
			"api_config": map[string]any{"base_url": "https://api.example.com", "auth_type": "api_key", "api_key": map[string]any{}}}
		apiID := e.createAPI(keyless)
		r := e.do("POST", "/admin/external-apis/"+apiID+"/connections", e.boot, map[string]any{"connection_name": "c"}).want(t, http.StatusBadRequest)
		if r.detail("credentials.api_key") == "" {
			t.Errorf("connection without a key on a keyless api_key API: %s; want credentials.api_key required", r.raw)
		}
		e.createConn(apiID, map[string]any{"connection_name": "c", "credentials": map[string]any{"api_key": newSecret("conn-key")}})

		basic := map[string]any{"name": "B", "slug": "basic", "category": "other",
			"api_config": map[string]any{"base_url": "https://api.example.com", "auth_type": "basic"}}
		bID := e.createAPI(basic)
		r = e.do("POST", "/admin/external-apis/"+bID+"/connections", e.boot,
			map[string]any{"connection_name": "c", "credentials": map[string]any{"username": "u"}}).want(t, http.StatusBadRequest)
		if r.detail("credentials") == "" {
			t.Errorf("username without password: %s; want a credentials problem", r.raw)
		}
		e.createConn(bID, map[string]any{"connection_name": "c", "credentials": map[string]any{"username": newSecret("u"), "password": newSecret("p")}})

		// A connection of a tenant's API belongs to that tenant.
		tb := stripeBody("tenant", newSecret("k"))
		tb["sales_channel_id"] = "sc_1"
		tID := e.createAPI(tb)
		r = e.do("POST", "/admin/external-apis/"+tID+"/connections", e.boot, map[string]any{"connection_name": "c", "sales_channel_id": "sc_2"}).
			want(t, http.StatusBadRequest)
		if r.detail("sales_channel_id") == "" {
			t.Errorf("connection of another tenant than its API: %s", r.raw)
		}
		c := e.do("POST", "/admin/external-apis/"+tID+"/connections", e.boot, map[string]any{"connection_name": "c"}).want(t, http.StatusCreated)
		if c.str("connection.sales_channel_id") != "sc_1" {
			t.Errorf("connection sales_channel_id = %q; want the API's sc_1", c.str("connection.sales_channel_id"))
		}
		// An API with connections keeps its tenant; without them it may move.
		if r := e.do("PATCH", "/admin/external-apis/"+tID, e.boot, map[string]any{"sales_channel_id": "sc_2"}).want(t, http.StatusBadRequest); r.detail("sales_channel_id") == "" {
			t.Errorf("moving an API with connections: %s", r.raw)
		}
		e.do("PATCH", "/admin/external-apis/"+bID, e.boot, map[string]any{"partner_id": "p_9"}).want(t, http.StatusBadRequest)
		empty := e.createAPI(stripeBody("empty", newSecret("k")))
		e.do("PATCH", "/admin/external-apis/"+empty, e.boot, map[string]any{"partner_id": "p_9"}).want(t, http.StatusOK)
		r = e.do("POST", "/admin/external-apis/"+tID+"/connections", e.boot, map[string]any{"connection_name": "c",
			"credentials": map[string]any{"expires_at": "tomorrow", "scopes": []string{"a b"}}, "status": "broken"}).want(t, http.StatusBadRequest)
		for _, p := range []string{"credentials.expires_at", "credentials.scopes[0]", "status"} {
			if r.detail(p) == "" {
				t.Errorf("want a problem at %s; got %v", p, r.details())
			}
		}
	})
}
