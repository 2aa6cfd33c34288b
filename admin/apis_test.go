package admin_test

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/extapi/extapi/store"
)

func TestAPILifecycle(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		key := newSecret("stripe-key")
		r := e.do("POST", "/admin/external-apis", e.boot, stripeBody("stripe", key)).want(t, http.StatusCreated)
		id := r.str("external_api.id")
		if !strings.HasPrefix(id, store.PrefixAPI) {
			t.Fatalf("id = %q; want prefix %s", id, store.PrefixAPI)
		}
		for path, want := range map[string]any{
			"external_api.name":                             "Stripe stripe",
			"external_api.slug":                             "stripe",
			"external_api.status":                           "active",
			"external_api.environment":                      "production",
			"external_api.api_config.auth_type":             "bearer",
			"external_api.api_config.api_key.header_name":   "Authorization",
			"external_api.api_config.api_key.key":           map[string]any{"set": true},
			"external_api.api_config.rate_limit":            map[string]any{"requests_per_second": 100.0},
			"external_api.api_config.retry_config":          map[string]any{"max_retries": 3.0, "backoff_ms": 1000.0},
			"external_api.connections_count":                0.0,
			"external_api.created_by":                       "bootstrap",
			"external_api.api_config.timeout_ms":            30000.0,
			"external_api.api_config.api_key.key_prefix":    "Bearer ",
			"external_api.api_config.api_version":           "2024-01-01",
			"external_api.is_sandbox":                       false,
			"external_api.sales_channel_id":                 "",
			"external_api.api_config.api_key.query_param":   nil,
			"external_api.api_config.oauth2":                nil,
			"external_api.api_config.webhook":               nil,
			"external_api.api_config.headers":               nil,
			"external_api.api_config.tls":                   nil,
			"external_api.api_config.base_url":              "https://api.stripe.com/v1",
			"external_api.api_config.rate_limit.scope":      nil,
			"external_api.api_config.rate_limit.burst":      nil,
			"external_api.api_config.api_key.key.last4":     nil,
			"external_api.api_config.api_key.key_encrypted": nil,
		} {
			if got := r.get(path); !reflect.DeepEqual(got, want) {
				t.Errorf("POST response %s = %#v; want %#v", path, got, want)
			}
		}

		// The stored row holds the key sealed, bound to this row and field.
		row, err := e.st.GetAPI(t.Context(), id, store.Tenant{})
		if err != nil {
			t.Fatal(err)
		}
		pt, err := e.kr.Open(row.APIConfig.APIKey.Key, row.AAD("api_config.api_key.key"))
		if err != nil || string(pt) != key {
			t.Errorf("stored key opens to %v; want the plaintext sent", err)
		}

		g := e.do("GET", "/admin/external-apis/"+id, e.boot, nil).want(t, http.StatusOK)
		if !reflect.DeepEqual(g.get("external_api"), r.get("external_api")) {
			t.Errorf("GET = %s\nwant the POST response %s", g.raw, r.raw)
		}

		e.createConn(id, map[string]any{"connection_name": "main"})
		l := e.do("GET", "/admin/external-apis", e.boot, nil).want(t, http.StatusOK)
		if l.get("count") != 1.0 || l.get("limit") != 50.0 || l.get("offset") != 0.0 || l.get("external_apis.0.connections_count") != 1.0 {
			t.Errorf("list = %s; want one API with connections_count 1, limit 50, offset 0", l.raw)
		}
		if g := e.do("GET", "/admin/external-apis/"+id, e.boot, nil); g.get("external_api.connections_count") != 1.0 {
			t.Errorf("GET connections_count = %v; want 1", g.get("external_api.connections_count"))
		}

		// Same slug, environment and tenant: 409; another environment is fine.
		c := e.do("POST", "/admin/external-apis", e.boot, stripeBody("stripe", newSecret("k"))).want(t, http.StatusConflict)
		if c.str("error.code") != "conflict" || !strings.Contains(c.str("error.message"), "slug") {
			t.Errorf("conflict body = %s", c.raw)
		}
		staging := stripeBody("stripe", newSecret("k"))
		staging["environment"] = "staging"
		e.createAPI(staging)

		e.do("DELETE", "/admin/external-apis/"+id, e.boot, nil).want(t, http.StatusNoContent)
		e.do("GET", "/admin/external-apis/"+id, e.boot, nil).want(t, http.StatusNotFound)
		e.do("DELETE", "/admin/external-apis/"+id, e.boot, nil).want(t, http.StatusNotFound)
		e.do("PATCH", "/admin/external-apis/"+id, e.boot, map[string]any{"name": "x"}).want(t, http.StatusNotFound)
		// A deleted row frees its slug.
		e.createAPI(stripeBody("stripe", newSecret("k")))
	})
}

// sealedOf returns the stored sealed value of an API's secret field.
func (e *env) sealedOf(id, field string) store.Sealed {
	e.t.Helper()
	a, err := e.st.GetAPI(e.t.Context(), id, store.Tenant{})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, f := range a.SecretFields() {
		if f.Name == field {
			return *f.Value
		}
	}
	return nil
}

func (e *env) openAPISecret(id, field string) string {
	e.t.Helper()
	a, err := e.st.GetAPI(e.t.Context(), id, store.Tenant{})
	if err != nil {
		e.t.Fatal(err)
	}
	b, err := e.kr.Open(e.sealedOf(id, field), a.AAD(field))
	if err != nil {
		e.t.Fatalf("open %s: %v", field, err)
	}
	return string(b)
}

func TestPatchAPI(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		body := oauthBody("facebook")
		oauth := body["api_config"].(map[string]any)["oauth2"].(map[string]any)
		id := e.createAPI(body)
		clientID := e.sealedOf(id, "api_config.oauth2.client_id")
		patch := func(p any) *resp {
			t.Helper()
			return e.do("PATCH", "/admin/external-apis/"+id, e.boot, p).want(t, http.StatusOK)
		}

		// A plain field: secrets left out keep their (sealed) values byte for byte.
		r := patch(map[string]any{"name": "Renamed"})
		if r.str("external_api.name") != "Renamed" || r.get("external_api.api_config.oauth2.client_secret.set") != true ||
			r.str("external_api.api_config.oauth2.token_url") != oauth["token_url"] || r.str("external_api.updated_by") != "bootstrap" {
			t.Errorf("after PATCH name: %s", r.raw)
		}
		if got := e.sealedOf(id, "api_config.oauth2.client_id"); string(got) != string(clientID) {
			t.Errorf("client_id was re-sealed by a PATCH that did not name it")
		}

		// A new secret replaces only itself; the rest of its section stays.
		newSecretValue := newSecret("rotated")
		r = patch(map[string]any{"api_config": map[string]any{"oauth2": map[string]any{"client_secret": newSecretValue}}})
		if got := e.openAPISecret(id, "api_config.oauth2.client_secret"); got != newSecretValue {
			t.Errorf("client_secret after rotation opens to a different value")
		}
		if got := e.openAPISecret(id, "api_config.oauth2.client_id"); got != oauth["client_id"] {
			t.Errorf("client_id changed by a PATCH of client_secret")
		}
		if r.str("external_api.api_config.oauth2.authorization_url") != oauth["authorization_url"] {
			t.Errorf("authorization_url lost by a PATCH of client_secret: %s", r.raw)
		}

		// null clears a secret and keeps its section.
		r = patch(map[string]any{"api_config": map[string]any{"webhook": map[string]any{"secret": nil}}})
		if r.get("external_api.api_config.webhook.secret.set") != false || r.str("external_api.api_config.webhook.url") == "" {
			t.Errorf("after clearing webhook.secret: %s", r.raw)
		}
		if e.sealedOf(id, "api_config.webhook.secret").IsSet() {
			t.Errorf("webhook.secret still stored after null")
		}

		// Arrays are replaced; objects (headers) are merged member by member.
		r = patch(map[string]any{"api_config": map[string]any{
			"oauth2":  map[string]any{"scopes": []string{"a", "b"}},
			"headers": map[string]any{"X-One": "1", "X-Two": "2"},
		}})
		if !reflect.DeepEqual(r.get("external_api.api_config.oauth2.scopes"), []any{"a", "b"}) {
			t.Errorf("scopes = %v; want [a b]", r.get("external_api.api_config.oauth2.scopes"))
		}
		r = patch(map[string]any{"api_config": map[string]any{"headers": map[string]any{"X-One": nil, "X-Three": "3"}}})
		if !reflect.DeepEqual(r.get("external_api.api_config.headers"), map[string]any{"X-Two": "2", "X-Three": "3"}) {
			t.Errorf("headers = %v; want X-Two and X-Three", r.get("external_api.api_config.headers"))
		}

		// null removes a section, with its secrets.
		r = patch(map[string]any{"api_config": map[string]any{"webhook": nil}})
		if r.get("external_api.api_config.webhook") != nil {
			t.Errorf("webhook still present after null: %s", r.raw)
		}

		// Switching auth type needs the old section removed; the error says so.
		bad := e.do("PATCH", "/admin/external-apis/"+id, e.boot, map[string]any{"api_config": map[string]any{"auth_type": "bearer"}}).
			want(t, http.StatusBadRequest)
		if !strings.Contains(bad.detail("api_config.oauth2"), "null") {
			t.Errorf("auth_type switch error = %s; want api_config.oauth2 to say send null", bad.raw)
		}
		key := newSecret("bearer-key")
		r = patch(map[string]any{"api_config": map[string]any{"auth_type": "bearer", "oauth2": nil, "api_key": map[string]any{"key": key}}})
		if r.get("external_api.api_config.oauth2") != nil || r.get("external_api.api_config.api_key.key.set") != true {
			t.Errorf("after switch to bearer: %s", r.raw)
		}
		if e.sealedOf(id, "api_config.oauth2.client_id").IsSet() {
			t.Errorf("oauth2 secrets still stored after the section was removed")
		}

		// An empty PATCH changes nothing and writes no audit event.
		before := len(e.audits(id))
		patch(map[string]any{})
		patch(map[string]any{"name": "Renamed"}) // same value
		if n := len(e.audits(id)); n != before {
			t.Errorf("audit events after no-op PATCHes = %d; want %d", n, before)
		}

		// Changing the slug to a taken one is a conflict, and changes nothing.
		e.createAPI(stripeBody("taken", newSecret("k")))
		e.do("PATCH", "/admin/external-apis/"+id, e.boot, map[string]any{"slug": "taken"}).want(t, http.StatusConflict)
		if g := e.do("GET", "/admin/external-apis/"+id, e.boot, nil); g.str("external_api.slug") != "facebook" {
			t.Errorf("slug after a conflicting PATCH = %q; want facebook", g.str("external_api.slug"))
		}
		if n := len(e.audits(id)); n != before {
			t.Errorf("audit events after a failed PATCH = %d; want %d", n, before)
		}
	})
}

func TestAPIAudit(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		editor := e.token("editor", "", "")
		r := e.do("POST", "/admin/external-apis", editor, oauthBody("fb")).want(t, http.StatusCreated)
		id := r.str("external_api.id")
		e.do("PATCH", "/admin/external-apis/"+id, editor, map[string]any{
			"name": "FB", "api_config": map[string]any{"oauth2": map[string]any{"client_secret": newSecret("s2")}, "webhook": map[string]any{"secret": nil}},
		}).want(t, http.StatusOK)
		e.do("DELETE", "/admin/external-apis/"+id, editor, nil).want(t, http.StatusNoContent)

		ev := e.audits(id)
		if len(ev) != 3 {
			t.Fatalf("audit events = %d; want 3 (create, update, delete)", len(ev))
		}
		actions := []any{pathGet(ev[0], "action"), pathGet(ev[1], "action"), pathGet(ev[2], "action")}
		if !reflect.DeepEqual(actions, []any{"external_api.delete", "external_api.update", "external_api.create"}) {
			t.Errorf("actions (newest first) = %v", actions)
		}
		for _, x := range ev {
			if !strings.HasPrefix(pathGet(x, "actor").(string), "editor-") || pathGet(x, "target_type") != "external_api" || pathGet(x, "target_id") != id {
				t.Errorf("event = %v; want actor the editor token's name, target the API", x)
			}
		}
		create := pathGet(ev[2], "changes").(map[string]any)
		if create["api_config.oauth2.client_secret"] != "set" || create["api_config.webhook.secret"] != "set" {
			t.Errorf("create changes = %v; want secrets as \"set\"", create)
		}
		if !reflect.DeepEqual(create["slug"], map[string]any{"old": nil, "new": "fb"}) {
			t.Errorf("create changes slug = %v; want old null, new fb", create["slug"])
		}
		update := pathGet(ev[1], "changes").(map[string]any)
		want := map[string]any{
			"name":                            map[string]any{"old": "Facebook fb", "new": "FB"},
			"api_config.oauth2.client_id":     "unchanged",
			"api_config.oauth2.client_secret": "changed",
			"api_config.webhook.secret":       "cleared",
		}
		if !reflect.DeepEqual(update, want) {
			t.Errorf("update changes = %v\nwant %v", update, want)
		}
		// Filters.
		for q, n := range map[string]int{
			"?action=external_api.update&target_id=" + id: 1,
			"?actor=nobody": 0,
			"?since=2000-01-01T00:00:00Z&target_id=" + id: 3,
			"?until=2000-01-01T00:00:00Z":                 0,
			"?limit=1&target_id=" + id:                    1,
		} {
			r := e.do("GET", "/admin/audit-events"+q, e.boot, nil).want(t, http.StatusOK)
			if l, _ := r.get("audit_events").([]any); len(l) != n {
				t.Errorf("audit-events%s = %d events; want %d", q, len(l), n)
			}
		}
	})
}

// TestAuditSameTransaction makes every audit insert fail (a trigger in the real database) and
// checks that the change it would have recorded is rolled back with it.
func TestAuditSameTransaction(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		id := e.createAPI(stripeBody("kept", newSecret("k")))
		conn := e.createConn(id, map[string]any{"connection_name": "c"})
		trigger := `CREATE TRIGGER audit_fails BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'audit down'); END`
		if e.st.Dialect() == "postgres" {
			trigger = `CREATE FUNCTION audit_fails() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'audit down'; END $$ LANGUAGE plpgsql;
				CREATE TRIGGER audit_fails BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION audit_fails()`
		}
		if err := e.st.Gorm().Exec(trigger).Error; err != nil {
			t.Fatal(err)
		}
		e.do("POST", "/admin/external-apis", e.boot, stripeBody("lost", newSecret("k"))).want(t, http.StatusInternalServerError)
		e.do("PATCH", "/admin/external-apis/"+id, e.boot, map[string]any{"name": "lost"}).want(t, http.StatusInternalServerError)
		e.do("DELETE", "/admin/external-apis/"+id, e.boot, nil).want(t, http.StatusInternalServerError)
		e.do("POST", "/admin/external-apis/"+id+"/connections", e.boot, map[string]any{"connection_name": "lost"}).want(t, http.StatusInternalServerError)
		e.do("PATCH", "/admin/connections/"+conn, e.boot, map[string]any{"connection_name": "lost"}).want(t, http.StatusInternalServerError)
		e.do("DELETE", "/admin/connections/"+conn, e.boot, nil).want(t, http.StatusInternalServerError)
		r := e.do("POST", "/admin/tokens", e.boot, map[string]any{"name": "lost", "role": "viewer"}).want(t, http.StatusInternalServerError)
		if r.str("error.code") != "internal" || strings.Contains(string(r.raw), "audit down") {
			t.Errorf("500 body = %s; want code internal and no internals", r.raw)
		}

		l := e.do("GET", "/admin/external-apis", e.boot, nil).want(t, http.StatusOK)
		if l.get("count") != 1.0 || l.str("external_apis.0.name") != "Stripe kept" || l.get("external_apis.0.connections_count") != 1.0 {
			t.Errorf("after failed audited writes: %s; want only the first API, unchanged, with its connection", l.raw)
		}
		if c := e.do("GET", "/admin/connections/"+conn, e.boot, nil).want(t, http.StatusOK); c.str("connection.connection_name") != "c" {
			t.Errorf("connection changed although its audit event failed: %s", c.raw)
		}
		if toks, _ := e.st.ListTokens(t.Context(), store.TokenFilter{}); len(toks) != 0 {
			t.Errorf("tokens = %d; want 0", len(toks))
		}
		if !strings.Contains(e.log.String(), "admin request failed") {
			t.Errorf("the internal errors were not logged")
		}
	})
}

func TestListAPIs(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		for _, b := range []map[string]any{stripeBody("stripe", newSecret("k")), oauthBody("facebook"), stripeBody("stripe-eu", newSecret("k"))} {
			e.createAPI(b)
		}
		staging := stripeBody("stripe", newSecret("k"))
		staging["environment"], staging["status"], staging["sales_channel_id"], staging["partner_id"] = "staging", "deprecated", "sc_1", "p_1"
		e.createAPI(staging)
		for q, want := range map[string]float64{
			"":                           4,
			"?category=payment":          3,
			"?category=social":           1,
			"?status=deprecated":         1,
			"?environment=staging":       1,
			"?slug=stripe":               2,
			"?provider=meta":             1,
			"?sales_channel_id=sc_1":     1,
			"?partner_id=p_1":            1,
			"?q=STRIPE":                  3,
			"?q=face":                    1,
			"?q=%25":                     0,
			"?limit=2":                   4,
			"?limit=2&offset=3":          4,
			"?category=sms":              0,
			"?slug=stripe&status=active": 1,
		} {
			r := e.do("GET", "/admin/external-apis"+q, e.boot, nil).want(t, http.StatusOK)
			if r.get("count") != want {
				t.Errorf("list%s count = %v; want %v", q, r.get("count"), want)
			}
		}
		r := e.do("GET", "/admin/external-apis?limit=2&offset=3", e.boot, nil)
		if l := r.get("external_apis").([]any); len(l) != 1 || r.get("limit") != 2.0 || r.get("offset") != 3.0 {
			t.Errorf("page limit=2 offset=3 = %d items, %s", len(l), r.raw)
		}
		r = e.do("GET", "/admin/external-apis?limit=200", e.boot, nil).want(t, http.StatusOK)
		if l := r.get("external_apis").([]any); len(l) != 4 {
			t.Errorf("limit=200 = %d items; want 4", len(l))
		}
	})
}
