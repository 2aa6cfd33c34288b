package admin_test

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/extapi/extapi/admin"
	"github.com/extapi/extapi/store"
	"github.com/extapi/extapi/store/storetest"
)

var roleRank = map[string]int{"public": 0, "viewer": 1, "editor": 2, "admin": 3}

type docOp struct{ method, path, role string }

// documentedOps reads the operations from the served OpenAPI document.
func (e *env) documentedOps() []docOp {
	e.t.Helper()
	r := e.do("GET", "/admin/openapi.json", e.boot, nil).want(e.t, http.StatusOK)
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(r.raw, &doc); err != nil {
		e.t.Fatal(err)
	}
	var ops []docOp
	for path, item := range doc.Paths {
		for m, raw := range item {
			if m == "parameters" {
				continue
			}
			var o struct {
				Role string `json:"x-extapi-role"`
			}
			_ = json.Unmarshal(raw, &o)
			ops = append(ops, docOp{strings.ToUpper(m), path, o.Role})
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].path+ops[i].method < ops[j].path+ops[j].method })
	if len(ops) < 17 {
		e.t.Fatalf("the document lists %d operations; want every route", len(ops))
	}
	return ops
}

// TestRoles sends every documented operation with every kind of caller.
func TestRoles(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		apiID := e.createAPI(stripeBody("stripe", newSecret("k")))
		connID := e.createConn(apiID, map[string]any{"connection_name": "c"})
		revoked := e.token("viewer", "", "")
		ctx := t.Context()
		toks, _ := e.st.ListTokens(ctx, store.TokenFilter{})
		if err := e.st.RevokeToken(ctx, toks[0].ID, store.Tenant{}, time.Now()); err != nil {
			t.Fatal(err)
		}
		callers := []struct {
			name, token, role string
		}{
			{"no token", "", ""}, {"unknown token", "extapi_" + strings.Repeat("A", 43), ""}, {"revoked token", revoked, ""},
			{"viewer", e.token("viewer", "", ""), "viewer"}, {"editor", e.token("editor", "", ""), "editor"},
			{"admin", e.token("admin", "", ""), "admin"}, {"bootstrap", e.boot, "admin"},
		}
		// Real ids for reads; ids of nothing for writes, so the order of the calls does not matter.
		ids := map[string]string{
			"GET /admin/external-apis/{id}":             apiID,
			"GET /admin/external-apis/{id}/connections": apiID,
			"GET /admin/connections/{id}":               connID,
		}
		fake := map[string]string{"external-apis": "eapi_aaaaaaaaaaaaaaaaaaaaaaaaaa", "connections": "conn_aaaaaaaaaaaaaaaaaaaaaaaaaa", "tokens": "tok_aaaaaaaaaaaaaaaaaaaaaaaaaa",
			"webhook-events": "whev_aaaaaaaaaaaaaaaaaaaaaaaaaa"}
		for _, op := range e.documentedOps() {
			path := op.path
			if strings.Contains(path, "{id}") {
				id := ids[op.method+" "+op.path]
				if id == "" {
					id = fake[strings.Split(path, "/")[2]]
				}
				path = strings.ReplaceAll(path, "{id}", id)
			}
			var body any
			if op.method == "POST" || op.method == "PATCH" {
				body = map[string]any{}
			}
			for _, c := range callers {
				r := e.do(op.method, path, c.token, body)
				what := op.method + " " + op.path + " as " + c.name
				switch {
				case op.role == "public":
					if r.status == http.StatusUnauthorized || r.status == http.StatusForbidden || r.status == http.StatusInternalServerError {
						t.Errorf("%s = %d %s; want it served without a token", what, r.status, r.raw)
					}
				case c.role == "":
					if r.status != http.StatusUnauthorized || r.str("error.code") != "unauthorized" ||
						!strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
						t.Errorf("%s = %d %s; want 401 unauthorized with WWW-Authenticate", what, r.status, r.raw)
					}
				case roleRank[c.role] < roleRank[op.role]:
					if r.status != http.StatusForbidden || r.str("error.code") != "forbidden" || !strings.Contains(r.str("error.message"), op.role) {
						t.Errorf("%s = %d %s; want 403 forbidden naming role %s", what, r.status, r.raw, op.role)
					}
				default:
					// (503: a flow the test server is not configured with.)
					if r.status == http.StatusUnauthorized || r.status == http.StatusForbidden || r.status == http.StatusInternalServerError {
						t.Errorf("%s = %d %s; want it allowed", what, r.status, r.raw)
					}
				}
			}
		}
	})
}

func TestAuthorizationHeader(t *testing.T) {
	t.Parallel()
	e := newEnv(t, storetest.Open(t, storetest.SQLiteURL(t)))
	send := func(h ...string) int {
		req, _ := http.NewRequest("GET", e.srv.URL+"/admin/external-apis", nil)
		for _, v := range h {
			req.Header.Add("Authorization", v)
		}
		return e.send(req).status
	}
	for _, c := range []struct {
		desc   string
		header []string
		want   int
	}{
		{"bearer", []string{"Bearer " + e.boot}, 200},
		{"lower-case scheme", []string{"bearer " + e.boot}, 200},
		{"basic scheme", []string{"Basic " + e.boot}, 401},
		{"no token", []string{"Bearer "}, 401},
		{"prefix of the token", []string{"Bearer " + e.boot[:len(e.boot)-1]}, 401},
		{"token with a suffix", []string{"Bearer " + e.boot + "x"}, 401},
		{"two headers", []string{"Bearer " + e.boot, "Bearer " + e.boot}, 401},
	} {
		if got := send(c.header...); got != c.want {
			t.Errorf("%s: status = %d; want %d", c.desc, got, c.want)
		}
	}
	noBoot := newEnv(t, storetest.Open(t, storetest.SQLiteURL(t)), func(o *admin.Options) { o.AdminToken = "" })
	noBoot.do("GET", "/admin/external-apis", noBoot.boot, nil).want(t, http.StatusUnauthorized)
	noBoot.do("GET", "/admin/external-apis", "", nil).want(t, http.StatusUnauthorized)

	// Without a store or sealer the management routes are unavailable, health still answers.
	bare := newEnv(t, nil, func(o *admin.Options) { o.Store, o.Ready = nil, nil })
	bare.do("GET", "/admin/external-apis", bare.boot, nil).want(t, http.StatusServiceUnavailable)
	bare.do("GET", "/healthz", "", nil).want(t, http.StatusOK)
}

func TestUnknownRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, storetest.Open(t, storetest.SQLiteURL(t)))
	for _, c := range []struct {
		method, path string
		want         int
		allow        string
	}{
		{"GET", "/admin/nothing", 404, ""},
		{"GET", "/", 404, ""},
		{"PUT", "/admin/external-apis", 405, "GET, POST"},
		{"POST", "/admin/connections/conn_x", 405, "GET, PATCH, DELETE"},
		{"GET", "/admin/external-apis/eapi_x/nothing", 404, ""},
	} {
		r := e.do(c.method, c.path, e.boot, nil)
		code := map[int]string{404: "not_found", 405: "method_not_allowed"}[c.want]
		if r.status != c.want || r.str("error.code") != code {
			t.Errorf("%s %s = %d %s; want %d %s", c.method, c.path, r.status, r.raw, c.want, code)
		}
		if got := strings.Join(r.header.Values("Allow"), ", "); got != c.allow {
			t.Errorf("%s %s: Allow = %q; want %q", c.method, c.path, got, c.allow)
		}
	}
	// Ids that cannot exist are 404 without reaching the database.
	for _, p := range []string{"/admin/external-apis/eapi_%ff%00", "/admin/connections/eapi_aaaaaaaaaaaaaaaaaaaaaaaaaa", "/admin/external-apis/x"} {
		e.do("GET", p, e.boot, nil).want(t, http.StatusNotFound)
	}
}

func TestTenantIsolation(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		mk := func(slug, sc, partner string) (apiID, connID string) {
			b := stripeBody(slug, newSecret("k"))
			b["sales_channel_id"], b["partner_id"] = sc, partner
			apiID = e.createAPI(b)
			return apiID, e.createConn(apiID, map[string]any{"connection_name": slug})
		}
		mineAPI, mineConn := mk("mine", "sc_a", "")
		theirAPI, theirConn := mk("theirs", "sc_b", "")
		globalAPI, _ := mk("global", "", "")
		partnerAPI, _ := mk("partner", "", "p_1")
		a := e.token("editor", "sc_a", "")

		// Read, list, count: only its own tenant.
		e.do("GET", "/admin/external-apis/"+mineAPI, a, nil).want(t, http.StatusOK)
		for _, id := range []string{theirAPI, globalAPI, partnerAPI} {
			r := e.do("GET", "/admin/external-apis/"+id, a, nil).want(t, http.StatusNotFound)
			if r.str("error.code") != "not_found" {
				t.Errorf("other tenant's API: %s; want not_found", r.raw)
			}
			e.do("GET", "/admin/external-apis/"+id+"/connections", a, nil).want(t, http.StatusNotFound)
		}
		l := e.do("GET", "/admin/external-apis", a, nil).want(t, http.StatusOK)
		if l.get("count") != 1.0 || l.str("external_apis.0.id") != mineAPI || l.get("external_apis.0.connections_count") != 1.0 {
			t.Errorf("scoped list = %s; want only its own API", l.raw)
		}
		for _, q := range []string{"?sales_channel_id=sc_b", "?slug=theirs", "?q=theirs"} {
			if l := e.do("GET", "/admin/external-apis"+q, a, nil); l.get("count") != 0.0 {
				t.Errorf("scoped list%s count = %v; want 0", q, l.get("count"))
			}
		}
		e.do("GET", "/admin/connections/"+mineConn, a, nil).want(t, http.StatusOK)
		e.do("GET", "/admin/connections/"+theirConn, a, nil).want(t, http.StatusNotFound)

		// Change and delete: 404 for the other tenant's rows, which stay as they were.
		e.do("PATCH", "/admin/external-apis/"+theirAPI, a, map[string]any{"name": "x"}).want(t, http.StatusNotFound)
		e.do("DELETE", "/admin/external-apis/"+theirAPI, a, nil).want(t, http.StatusNotFound)
		e.do("POST", "/admin/external-apis/"+theirAPI+"/connections", a, map[string]any{"connection_name": "x"}).want(t, http.StatusNotFound)
		e.do("PATCH", "/admin/connections/"+theirConn, a, map[string]any{"connection_name": "x"}).want(t, http.StatusNotFound)
		e.do("DELETE", "/admin/connections/"+theirConn, a, nil).want(t, http.StatusNotFound)
		if g := e.do("GET", "/admin/external-apis/"+theirAPI, e.boot, nil); g.str("external_api.name") != "Stripe theirs" || g.get("external_api.connections_count") != 1.0 {
			t.Errorf("the other tenant's API changed: %s", g.raw)
		}

		// Writes get the token's tenant; naming another is 403.
		r := e.do("POST", "/admin/external-apis", a, stripeBody("new", newSecret("k"))).want(t, http.StatusCreated)
		if r.str("external_api.sales_channel_id") != "sc_a" {
			t.Errorf("scoped create: sales_channel_id = %q; want sc_a", r.str("external_api.sales_channel_id"))
		}
		other := stripeBody("other", newSecret("k"))
		other["sales_channel_id"] = "sc_b"
		if r := e.do("POST", "/admin/external-apis", a, other).want(t, http.StatusForbidden); !strings.Contains(r.str("error.message"), "sales_channel_id") {
			t.Errorf("scoped create for another tenant: %s", r.raw)
		}
		e.do("PATCH", "/admin/external-apis/"+mineAPI, a, map[string]any{"sales_channel_id": "sc_b"}).want(t, http.StatusForbidden)
		e.do("POST", "/admin/external-apis/"+mineAPI+"/connections", a, map[string]any{"connection_name": "x", "sales_channel_id": "sc_b"}).
			want(t, http.StatusForbidden)
		if r := e.do("PATCH", "/admin/external-apis/"+mineAPI, a, map[string]any{"sales_channel_id": nil}).want(t, http.StatusOK); r.str("external_api.sales_channel_id") != "sc_a" {
			t.Errorf("clearing sales_channel_id with a scoped token = %q; want it kept sc_a", r.str("external_api.sales_channel_id"))
		}

		// Audit: only events of its own tenant's targets.
		au := e.do("GET", "/admin/audit-events", a, nil).want(t, http.StatusOK)
		for _, ev := range au.get("audit_events").([]any) {
			if pathGet(ev, "sales_channel_id") != "sc_a" {
				t.Errorf("scoped audit listing shows %v", ev)
			}
		}
		if au.get("count").(float64) < 3 {
			t.Errorf("scoped audit count = %v; want its own events", au.get("count"))
		}
		if r := e.do("GET", "/admin/audit-events?target_id="+theirAPI, a, nil); r.get("count") != 0.0 {
			t.Errorf("scoped audit of another tenant's API = %v; want 0", r.get("count"))
		}

		// A partner scope works the same; a token with both scopes needs both to match.
		p := e.token("viewer", "", "p_1")
		e.do("GET", "/admin/external-apis/"+partnerAPI, p, nil).want(t, http.StatusOK)
		e.do("GET", "/admin/external-apis/"+mineAPI, p, nil).want(t, http.StatusNotFound)
		both := e.token("viewer", "sc_a", "p_1")
		e.do("GET", "/admin/external-apis/"+mineAPI, both, nil).want(t, http.StatusNotFound)
		if l := e.do("GET", "/admin/external-apis", both, nil); l.get("count") != 0.0 {
			t.Errorf("sc_a+p_1 list count = %v; want 0", l.get("count"))
		}
		// An unscoped token sees everything.
		if l := e.do("GET", "/admin/external-apis", e.boot, nil); l.get("count") != 5.0 {
			t.Errorf("unscoped list count = %v; want 5", l.get("count"))
		}
		e.do("DELETE", "/admin/external-apis/"+mineAPI, a, nil).want(t, http.StatusNoContent)
	})
}

func TestTokenRoutes(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		r := e.do("POST", "/admin/tokens", e.boot, map[string]any{"name": "deploy-bot", "role": "editor"}).want(t, http.StatusCreated)
		tok := r.str("bearer_token")
		id := r.str("token.id")
		if !strings.HasPrefix(tok, admin.TokenPrefix) || len(tok) != len(admin.TokenPrefix)+43 || !strings.HasPrefix(id, store.PrefixToken) {
			t.Fatalf("created token %q id %q; want extapi_ + 43 characters, tok_ id", tok, id)
		}
		if r.str("token.role") != "editor" || r.str("token.created_by") != "bootstrap" || r.get("token.hash") != nil {
			t.Errorf("created token = %s", r.raw)
		}
		e.do("POST", "/admin/external-apis", tok, stripeBody("by-bot", newSecret("k"))).want(t, http.StatusCreated)
		e.do("GET", "/admin/tokens", tok, nil).want(t, http.StatusForbidden)

		l := e.do("GET", "/admin/tokens", e.boot, nil).want(t, http.StatusOK)
		if l.str("tokens.0.name") != "deploy-bot" || l.get("tokens.0.last_used_at") == nil || strings.Contains(string(l.raw), admin.HashToken(tok)) {
			t.Errorf("token list = %s; want deploy-bot, used, no hash", l.raw)
		}
		if ev := e.audits(id); len(ev) != 1 || pathGet(ev[0], "action") != "token.create" || pathGet(ev[0], "actor") != "bootstrap" {
			t.Errorf("token audit = %v", ev)
		}

		for _, c := range []struct {
			body map[string]any
			want int
			path string
		}{
			{map[string]any{"name": "deploy-bot", "role": "viewer"}, http.StatusConflict, ""},
			{map[string]any{"name": "bootstrap", "role": "viewer"}, http.StatusBadRequest, "name"},
			{map[string]any{"name": "cli", "role": "viewer"}, http.StatusBadRequest, "name"},
			{map[string]any{"name": "has space", "role": "viewer"}, http.StatusBadRequest, "name"},
			{map[string]any{"name": "x", "role": "root"}, http.StatusBadRequest, "role"},
			{map[string]any{"role": "viewer"}, http.StatusBadRequest, "name"},
			{map[string]any{"name": "x", "role": "viewer", "hash": "00"}, http.StatusBadRequest, "hash"},
		} {
			r := e.do("POST", "/admin/tokens", e.boot, c.body).want(t, c.want)
			if c.path != "" && r.detail(c.path) == "" {
				t.Errorf("POST /admin/tokens %v: %s; want a problem at %s", c.body, r.raw, c.path)
			}
		}

		rv := e.do("DELETE", "/admin/tokens/"+id, e.boot, nil).want(t, http.StatusOK)
		if rv.get("token.revoked_at") == nil {
			t.Errorf("revoke response = %s; want revoked_at", rv.raw)
		}
		e.do("GET", "/admin/external-apis", tok, nil).want(t, http.StatusUnauthorized) // at once, despite the cache
		e.do("DELETE", "/admin/tokens/"+id, e.boot, nil).want(t, http.StatusNotFound)
		if l := e.do("GET", "/admin/tokens", e.boot, nil); len(l.get("tokens").([]any)) != 0 {
			t.Errorf("live tokens after revoke = %s; want none", l.raw)
		}
		if l := e.do("GET", "/admin/tokens?include_revoked=true", e.boot, nil); len(l.get("tokens").([]any)) != 1 {
			t.Errorf("tokens with revoked = %s; want one", l.raw)
		}
		// The name is free again once revoked.
		e.do("POST", "/admin/tokens", e.boot, map[string]any{"name": "deploy-bot", "role": "viewer"}).want(t, http.StatusCreated)
		if ev := e.audits(id); len(ev) != 2 || pathGet(ev[0], "action") != "token.revoke" {
			t.Errorf("token audit after revoke = %v", ev)
		}

		// A scoped admin stays within its tenant.
		sa := e.token("admin", "sc_a", "")
		e.do("POST", "/admin/tokens", sa, map[string]any{"name": "wider", "role": "admin", "sales_channel_id": "sc_b"}).want(t, http.StatusForbidden)
		n := e.do("POST", "/admin/tokens", sa, map[string]any{"name": "narrow", "role": "viewer"}).want(t, http.StatusCreated)
		if n.str("token.sales_channel_id") != "sc_a" {
			t.Errorf("scoped admin's token = %s; want sales channel sc_a", n.raw)
		}
		l = e.do("GET", "/admin/tokens", sa, nil).want(t, http.StatusOK)
		for _, x := range l.get("tokens").([]any) {
			if pathGet(x, "sales_channel_id") != "sc_a" {
				t.Errorf("scoped admin lists %v", x)
			}
		}
		all, _ := e.st.ListTokens(t.Context(), store.TokenFilter{})
		for _, x := range all {
			if x.SalesChannelID == "" {
				e.do("DELETE", "/admin/tokens/"+x.ID, sa, nil).want(t, http.StatusNotFound)
			}
		}
	})
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestTokenCache: a token revoked elsewhere (another instance) stops working within the TTL.
func TestTokenCache(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Now()}
	st := storetest.Open(t, storetest.SQLiteURL(t))
	e := newEnv(t, st, func(o *admin.Options) { o.Now = clock.Now })
	tok := e.token("viewer", "", "")
	e.do("GET", "/admin/external-apis", tok, nil).want(t, http.StatusOK)
	toks, _ := st.ListTokens(t.Context(), store.TokenFilter{})
	if err := st.RevokeToken(t.Context(), toks[0].ID, store.Tenant{}, time.Now()); err != nil {
		t.Fatal(err)
	}
	clock.Add(admin.DefaultTokenCacheTTL - time.Second)
	e.do("GET", "/admin/external-apis", tok, nil).want(t, http.StatusOK)
	clock.Add(2 * time.Second)
	e.do("GET", "/admin/external-apis", tok, nil).want(t, http.StatusUnauthorized)

	off := newEnv(t, st, func(o *admin.Options) { o.TokenCacheTTL = -1 })
	tok2 := off.token("viewer", "", "")
	off.do("GET", "/admin/external-apis", tok2, nil).want(t, http.StatusOK)
	toks, _ = st.ListTokens(t.Context(), store.TokenFilter{})
	_ = st.RevokeToken(t.Context(), toks[0].ID, store.Tenant{}, time.Now())
	off.do("GET", "/admin/external-apis", tok2, nil).want(t, http.StatusUnauthorized)
}
