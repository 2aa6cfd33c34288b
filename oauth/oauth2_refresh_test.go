package oauth_test

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/extapi/extapi/oauth"
	"github.com/extapi/extapi/store"
)

// TestRefreshRace is the failure this package exists to prevent: two instances (each its own
// store on the same PostgreSQL schema and its own Redis client) and 200 concurrent token requests
// on one connection whose token just expired, against a provider that rotates refresh tokens and
// revokes the grant on reuse. The provider must see exactly one refresh, every caller must get
// the new token, and the connection must still refresh afterwards. Twenty times in a row.
func TestRefreshRace(t *testing.T) {
	f := pgFixture(t)
	f.srv.SetDelay(20 * time.Millisecond) // a realistic token call, so the callers really overlap
	a, b := f.instance(true), f.instance(true)
	api := f.api(nil)
	for run := range 20 {
		f.srv.ResetHits()
		c, _, _ := f.expiredConn(api)
		// Each instance works from its own (cached, now stale) copy of the rows, as the proxy does.
		apiA, connA := mustLoad(t, a, api.ID, c.ID)
		apiB, connB := mustLoad(t, b, api.ID, c.ID)

		const callers = 200
		got := make([]oauth.AccessToken, callers)
		errs := make([]error, callers)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range callers {
			wg.Go(func() {
				<-start
				if i%2 == 0 {
					got[i], errs[i] = a.r.Token(testCtx(t), apiA, connA)
				} else {
					got[i], errs[i] = b.r.Token(testCtx(t), apiB, connB)
				}
			})
		}
		close(start)
		wg.Wait()

		if n := f.srv.Hits("refresh_token"); n != 1 {
			t.Fatalf("run %d: token endpoint saw %d refreshes; want exactly 1", run, n)
		}
		stored, _ := f.tokens(f.reload(c.ID))
		for i := range callers {
			if errs[i] != nil {
				t.Fatalf("run %d: caller %d: Token() = %v", run, i, errs[i])
			}
			if got[i].Token != stored {
				t.Fatalf("run %d: caller %d got %q; want the new token %q", run, i, got[i].Token, stored)
			}
		}
		if f.srv.Revoked(stored) || !f.srv.AccessValid(stored) {
			t.Fatalf("run %d: the grant was revoked (a refresh token was presented twice)", run)
		}
		if code := callResource(t, f.srv, got[0]); code != 200 {
			t.Fatalf("run %d: resource with the new token = %d; want 200", run, code)
		}
		// Still usable: once this token nears its end, a further refresh works.
		f.clock.Advance(time.Hour)
		next, err := b.r.Token(testCtx(t), apiB, f.reload(c.ID))
		if err != nil || next.Token == stored || f.srv.Hits("refresh_token") != 2 {
			t.Fatalf("run %d: refresh after the race = %q, %v, hits %d; want a new token from a second refresh",
				run, next.Token, err, f.srv.Hits("refresh_token"))
		}
		if code := callResource(t, f.srv, next); code != 200 {
			t.Fatalf("run %d: resource after the second refresh = %d; want 200", run, code)
		}
	}
}

func mustLoad(t *testing.T, in *instance, apiID, connID string) (*store.ExternalAPI, *store.Connection) {
	t.Helper()
	a, err := in.store.GetAPI(testCtx(t), apiID, store.Tenant{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := in.store.GetConnection(testCtx(t), connID, store.Tenant{})
	if err != nil {
		t.Fatal(err)
	}
	return a, c
}

func TestRefreshOnDemand(t *testing.T) {
	f := pgFixture(t)
	in := f.instance(true)
	api := f.api(nil)
	f.srv.SetExtra(map[string]any{"instance_url": "https://na1.acme.test", "id_token": "not-kept"})
	access, refresh := f.srv.Issue("read")
	exp := f.clock.Now().Add(10 * time.Minute)
	c := f.conn(api, access, refresh, &exp)
	changes, err := f.db.SubscribeChanges(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}

	// Fresh: used as it is.
	for range 3 {
		tok, err := in.r.Token(testCtx(t), api, c)
		if err != nil || tok.Token != access || tok.Header != "Bearer "+access || !tok.Expiry.Equal(exp) {
			t.Fatalf("Token(fresh) = %+v, %v; want the stored token", tok, err)
		}
	}
	if n := f.srv.Hits("refresh_token"); n != 0 {
		t.Fatalf("refreshes of a fresh token = %d; want 0", n)
	}

	// Within the skew (60 s): refreshed first.
	f.clock.Advance(10*time.Minute - 30*time.Second)
	tok, err := in.r.Token(testCtx(t), api, c)
	if err != nil {
		t.Fatalf("Token(within skew) = %v", err)
	}
	if n := f.srv.Hits("refresh_token"); n != 1 || tok.Token == access || !f.srv.AccessValid(tok.Token) {
		t.Fatalf("Token(within skew) = %q after %d refreshes; want a new valid token after 1", tok.Token, n)
	}
	if want := f.clock.Now().Add(time.Hour); !tok.Expiry.Equal(want) {
		t.Errorf("Expiry = %v; want now + expires_in = %v", tok.Expiry, want)
	}

	got := f.reload(c.ID)
	newAccess, newRefresh := f.tokens(got)
	if newAccess != tok.Token || newRefresh == refresh || newRefresh == "" {
		t.Errorf("stored tokens = %q, %q; want the new access token and the rotated refresh token", newAccess, newRefresh)
	}
	if got.Credentials.ExpiresAt == nil || !got.Credentials.ExpiresAt.Equal(tok.Expiry) || got.Status != store.ConnActive {
		t.Errorf("stored expires_at, status = %v, %s; want %v, active", got.Credentials.ExpiresAt, got.Status, tok.Expiry)
	}
	if got.ProviderData["instance_url"] != "https://na1.acme.test" || got.ProviderData["id_token"] != nil {
		t.Errorf("provider_data = %v; want instance_url kept and id_token left out", got.ProviderData)
	}
	if strings.Join(got.Credentials.Scopes, " ") != "read" {
		t.Errorf("scopes = %v; want [read] from the response", got.Credentials.Scopes)
	}
	select {
	case ch := <-changes:
		if ch.Kind != store.ChangeConnection || ch.ID != c.ID {
			t.Errorf("change = %+v; want connection %s", ch, c.ID)
		}
	case <-time.After(5 * time.Second):
		t.Error("no change notification for the refreshed connection")
	}
	evs := f.audits(c.ID)
	if len(evs) != 1 || evs[0].Action != oauth.ActionTokenRefresh || evs[0].Actor != oauth.ActorTokenRefresh ||
		evs[0].Changes["refresh_token"] != "changed" || evs[0].SalesChannelID != "sc1" {
		t.Fatalf("audit = %+v; want one connection.token_refresh by token-refresh", evs)
	}
	raw, _ := json.Marshal(evs[0].Changes)
	for _, secret := range []string{access, refresh, newAccess, newRefresh} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("audit changes %s contain a token", raw)
		}
	}

	// The proxy's cached row is stale now; the Refresher answers it with the new token, no refresh.
	again, err := in.r.Token(testCtx(t), api, c)
	if err != nil || again.Token != tok.Token || f.srv.Hits("refresh_token") != 1 {
		t.Errorf("Token(stale row) = %q, %v, hits %d; want the new token, still 1 refresh", again.Token, err, f.srv.Hits("refresh_token"))
	}
	// A refresh without a new refresh token keeps the old one.
	f.srv.SetRotate(false)
	f.clock.Advance(time.Hour)
	if _, err := in.r.Token(testCtx(t), api, got); err != nil {
		t.Fatal(err)
	}
	if _, kept := f.tokens(f.reload(c.ID)); kept != newRefresh {
		t.Errorf("refresh token after a non-rotating refresh = %q; want the previous one %q", kept, newRefresh)
	}
	f.clock.Advance(time.Hour)
	if tok, err := in.r.Token(testCtx(t), api, f.reload(c.ID)); err != nil || !f.srv.AccessValid(tok.Token) {
		t.Errorf("Token() with the kept refresh token = %v; want a valid token", err)
	}
}

func TestInvalidGrantExpiresConnection(t *testing.T) {
	f := pgFixture(t)
	in := f.instance(true)
	api := f.api(nil)
	c, access, _ := f.expiredConn(api)
	f.srv.RevokeGrant(access) // the user removed the app at the provider

	_, err := in.r.Token(testCtx(t), api, c)
	if !errors.Is(err, oauth.ErrConnectionExpired) || errors.Is(err, oauth.ErrRefreshFailed) {
		t.Fatalf("Token(revoked grant) = %v; want ErrConnectionExpired", err)
	}
	if re := refreshErr(err); re == nil || re.Code != "invalid_grant" || !re.Expired || re.ConnectionID != c.ID {
		t.Errorf("RefreshError = %+v; want Code invalid_grant, Expired", re)
	}
	got := f.reload(c.ID)
	if got.Status != store.ConnExpired || !strings.Contains(got.ErrorMessage, "invalid_grant") ||
		!strings.Contains(got.ErrorMessage, "re-authenticate") {
		t.Errorf("connection = %s, %q; want expired with a message saying to re-authenticate", got.Status, got.ErrorMessage)
	}
	evs := f.audits(c.ID)
	if len(evs) != 1 || evs[0].Changes["outcome"] != "expired" || evs[0].Changes["error"] != "invalid_grant" {
		t.Errorf("audit = %+v; want one expiry event", evs)
	}
	// Marked expired: later calls fail at once, from the cached row or the fresh one.
	for _, row := range []*store.Connection{c, got} {
		if _, err := in.r.Token(testCtx(t), api, row); !errors.Is(err, oauth.ErrConnectionExpired) {
			t.Errorf("Token(after expiry) = %v; want ErrConnectionExpired", err)
		}
	}
	if n := f.srv.Hits("refresh_token"); n != 1 {
		t.Errorf("refresh attempts = %d; want 1 (an expired connection is not retried)", n)
	}
}

func TestNoRefreshTokenExpires(t *testing.T) {
	f := pgFixture(t)
	in := f.instance(false)
	api := f.api(nil)
	access, _ := f.srv.Issue()
	exp := f.clock.Now().Add(-time.Minute)
	c := f.conn(api, access, "", &exp)
	if _, err := in.r.Token(testCtx(t), api, c); !errors.Is(err, oauth.ErrConnectionExpired) {
		t.Fatalf("Token(no refresh token) = %v; want ErrConnectionExpired", err)
	}
	if got := f.reload(c.ID); got.Status != store.ConnExpired || f.srv.Hits("refresh_token") != 0 {
		t.Errorf("status = %s, hits %d; want expired without a token request", got.Status, f.srv.Hits("refresh_token"))
	}
}

func TestRefreshFailureBacksOff(t *testing.T) {
	f := pgFixture(t)
	in := f.instance(true, func(o *oauth.RefresherOptions) { o.BackoffMin, o.BackoffMax = time.Second, 4*time.Second })
	api := f.api(nil)
	c, _, _ := f.expiredConn(api)
	f.srv.FailNext(1000, 503)

	try := func(n int) (errs int) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		for range n {
			wg.Go(func() {
				_, err := in.r.Token(testCtx(t), api, c)
				mu.Lock()
				defer mu.Unlock()
				if errors.Is(err, oauth.ErrRefreshFailed) && !errors.Is(err, oauth.ErrConnectionExpired) {
					errs++
				} else {
					t.Errorf("Token(endpoint down) = %v; want ErrRefreshFailed", err)
				}
			})
		}
		wg.Wait()
		return errs
	}
	steps := []struct {
		desc    string
		advance time.Duration
		hits    int
	}{
		{"first failure", 0, 1},
		{"within 1 s backoff", 500 * time.Millisecond, 1},
		{"after 1 s", 500 * time.Millisecond, 2},
		{"within 2 s backoff", 1500 * time.Millisecond, 2},
		{"after 2 s", 500 * time.Millisecond, 3},
		{"after 4 s (the cap)", 4 * time.Second, 4},
		{"within the capped 4 s", 3 * time.Second, 4},
		{"after the capped 4 s", time.Second, 5},
	}
	for _, s := range steps {
		f.clock.Advance(s.advance)
		if n := try(50); n != 50 {
			t.Fatalf("%s: %d of 50 calls failed with ErrRefreshFailed", s.desc, n)
		}
		if h := f.srv.Hits("refresh_token"); h != s.hits {
			t.Fatalf("%s: token endpoint hits = %d; want %d", s.desc, h, s.hits)
		}
	}
	_, err := in.r.Token(testCtx(t), api, c)
	if re := refreshErr(err); re == nil || re.RetryAfter <= 0 {
		t.Errorf("RefreshError = %+v; want RetryAfter set while backing off", re)
	}
	if got := f.reload(c.ID); got.Status != store.ConnActive {
		t.Errorf("status after 5xx = %s; want active (unchanged)", got.Status)
	}
	// The endpoint recovers: the next attempt after the backoff succeeds and resets it.
	f.srv.FailNext(0, 0)
	f.clock.Advance(4 * time.Second)
	if tok, err := in.r.Token(testCtx(t), api, c); err != nil || !f.srv.AccessValid(tok.Token) {
		t.Fatalf("Token(endpoint back) = %v; want a new token", err)
	}
	if h := f.srv.Hits("refresh_token"); h != 6 {
		t.Errorf("hits = %d; want 6", h)
	}
}

func TestRejectedRefreshesOnce(t *testing.T) {
	f := pgFixture(t)
	a, b := f.instance(true), f.instance(true)
	api := f.api(nil)
	access, refresh := f.srv.Issue("read")
	exp := f.clock.Now().Add(time.Hour)
	c := f.conn(api, access, refresh, &exp)
	f.srv.ExpireAccessTokens() // the provider stops accepting it early (say, a password change)

	tok, err := a.r.Token(testCtx(t), api, c)
	if err != nil || callResource(t, f.srv, tok) != 401 {
		t.Fatalf("Token() = %v; want the old token, which the resource refuses", err)
	}
	var wg sync.WaitGroup
	results := make([]oauth.AccessToken, 100)
	for i := range results {
		wg.Go(func() {
			in := a
			if i%2 == 1 {
				in = b
			}
			var err error
			if results[i], err = in.r.Rejected(testCtx(t), api, c, tok.Token); err != nil {
				t.Errorf("Rejected() = %v", err)
			}
		})
	}
	wg.Wait()
	if n := f.srv.Hits("refresh_token"); n != 1 {
		t.Fatalf("refreshes after 100 concurrent 401s on one token = %d; want 1", n)
	}
	for _, r := range results {
		if r.Token != results[0].Token || r.Token == tok.Token || callResource(t, f.srv, r) != 200 {
			t.Fatalf("Rejected() = %q; want one new token the resource accepts", r.Token)
		}
	}
	// A late report of the old token does not refresh again; a 401 on the new one does.
	if r, err := b.r.Rejected(testCtx(t), api, c, tok.Token); err != nil || r.Token != results[0].Token {
		t.Errorf("Rejected(old token again) = %q, %v; want the current token", r.Token, err)
	}
	if n := f.srv.Hits("refresh_token"); n != 1 {
		t.Errorf("hits = %d; want still 1", n)
	}
	if r, err := a.r.Rejected(testCtx(t), api, f.reload(c.ID), results[0].Token); err != nil || r.Token == results[0].Token {
		t.Errorf("Rejected(new token) = %q, %v; want yet another token", r.Token, err)
	}
	if n := f.srv.Hits("refresh_token"); n != 2 {
		t.Errorf("hits = %d; want 2", n)
	}
}

func TestForceRefresh(t *testing.T) {
	f := pgFixture(t)
	in := f.instance(true)
	api := f.api(nil)
	access, refresh := f.srv.Issue("read")
	exp := f.clock.Now().Add(time.Hour)
	c := f.conn(api, access, refresh, &exp)

	first, err := in.r.ForceRefresh(testCtx(t), c.ID)
	if err != nil || first.Token == access || f.srv.Hits("refresh_token") != 1 {
		t.Fatalf("ForceRefresh(fresh token) = %q, %v, hits %d; want a new token after 1 refresh", first.Token, err, f.srv.Hits("refresh_token"))
	}
	second, err := in.r.ForceRefresh(testCtx(t), c.ID)
	if err != nil || second.Token == first.Token || f.srv.Hits("refresh_token") != 2 || !f.srv.AccessValid(second.Token) {
		t.Fatalf("ForceRefresh() again = %v, hits %d; want another refresh", err, f.srv.Hits("refresh_token"))
	}
	if evs := f.audits(c.ID); len(evs) != 2 || evs[0].Changes["trigger"] != "forced" {
		t.Errorf("audit = %+v; want two refreshes triggered by force", evs)
	}
	// A connection marked expired by mistake can be brought back by an operator.
	got := f.reload(c.ID)
	got.Status, got.ErrorMessage = store.ConnExpired, "marked by hand"
	if err := f.db.UpdateConnection(testCtx(t), got); err != nil {
		t.Fatal(err)
	}
	if _, err := in.r.ForceRefresh(testCtx(t), c.ID); err != nil {
		t.Fatalf("ForceRefresh(expired, grant still good) = %v", err)
	}
	if got := f.reload(c.ID); got.Status != store.ConnActive || got.ErrorMessage != "" {
		t.Errorf("status = %s, %q; want active again", got.Status, got.ErrorMessage)
	}
	if _, err := in.r.ForceRefresh(testCtx(t), "conn_missing"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ForceRefresh(unknown) = %v; want store.ErrNotFound", err)
	}
}

func TestClientCredentials(t *testing.T) {
	f := pgFixture(t)
	a, b := f.instance(true), f.instance(true)
	f.srv.SetExpiresIn(30 * time.Minute)
	api := f.api(func(o *store.OAuth2Config) {
		o.GrantType = oauth.GrantClientCredentials
		o.TokenAuthMethod = oauth.AuthClientSecretPost
		o.AuthorizationURL = ""
	})

	burst := func() []oauth.AccessToken {
		out := make([]oauth.AccessToken, 100)
		var wg sync.WaitGroup
		for i := range out {
			wg.Go(func() {
				in := a
				if i%2 == 1 {
					in = b
				}
				var err error
				if out[i], err = in.r.Token(testCtx(t), api, nil); err != nil {
					t.Errorf("Token(client credentials) = %v", err)
				}
			})
		}
		wg.Wait()
		return out
	}
	first := burst()
	if n := f.srv.Hits("client_credentials"); n != 1 {
		t.Fatalf("client-credentials requests for 100 calls on two instances = %d; want 1", n)
	}
	if f.srv.AuthMethodHits("client_secret_post") != 1 || f.srv.AuthMethodHits("client_secret_basic") != 0 {
		t.Errorf("client auth = post %d, basic %d; want client_secret_post", f.srv.AuthMethodHits("client_secret_post"), f.srv.AuthMethodHits("client_secret_basic"))
	}
	for _, tok := range first {
		if tok.Token != first[0].Token || callResource(t, f.srv, tok) != 200 {
			t.Fatalf("tokens differ or are refused: %q vs %q", tok.Token, first[0].Token)
		}
	}
	// Shared through the store, sealed.
	row, err := f.db.GetOAuth2ClientToken(testCtx(t), api.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := opened(t, f.kr, row.Credentials.AccessToken, row.AAD("credentials.access_token")); got != first[0].Token {
		t.Errorf("stored token = %q; want %q", got, first[0].Token)
	}
	if strings.Contains(string(mustJSON(t, row.Credentials)), first[0].Token) {
		t.Error("stored credentials hold the token in the clear")
	}
	// A third instance, started later, uses the stored token.
	c := f.instance(true)
	if tok, err := c.r.Token(testCtx(t), api, nil); err != nil || tok.Token != first[0].Token || f.srv.Hits("client_credentials") != 1 {
		t.Errorf("Token(new instance) = %q, %v; want the shared token, no request", tok.Token, err)
	}
	// Near expiry: one new token for everyone.
	f.clock.Advance(30*time.Minute - 30*time.Second)
	second := burst()
	if n := f.srv.Hits("client_credentials"); n != 2 {
		t.Fatalf("client-credentials requests after expiry = %d; want 2", n)
	}
	if second[0].Token == first[0].Token {
		t.Error("no new token near expiry")
	}
	// 401 on it: renewed once.
	r1, err := a.r.Rejected(testCtx(t), api, nil, second[0].Token)
	if err != nil || r1.Token == second[0].Token || f.srv.Hits("client_credentials") != 3 {
		t.Errorf("Rejected(client token) = %q, %v, hits %d; want a new token after 3 requests", r1.Token, err, f.srv.Hits("client_credentials"))
	}
	if r2, err := b.r.Rejected(testCtx(t), api, nil, second[0].Token); err != nil || r2.Token != r1.Token || f.srv.Hits("client_credentials") != 3 {
		t.Errorf("Rejected(same old token, other instance) = %q, %v; want the renewed token without a request", r2.Token, err)
	}
}

// TestClientCredentialsTokenParams: oauth2.token_params reach the token endpoint with the
// client-credentials request (Auth0's audience).
func TestClientCredentialsTokenParams(t *testing.T) {
	f := pgFixture(t)
	in := f.instance(true)
	api := f.api(func(o *store.OAuth2Config) {
		o.GrantType = oauth.GrantClientCredentials
		o.AuthorizationURL = ""
		o.Scopes = []string{"read:users"}
		o.TokenParams = map[string]string{"audience": "https://tenant.example/api/v2/"}
	})
	if _, err := in.r.Token(testCtx(t), api, nil); err != nil {
		t.Fatal(err)
	}
	got := f.srv.LastParams("client_credentials")
	if got.Get("audience") != "https://tenant.example/api/v2/" || got.Get("scope") != "read:users" {
		t.Errorf("token request form = %v; want audience and scope", got)
	}
}

// TestClientTokenAfterAPIChange: a client-credentials token fetched before the API was changed
// (its scopes, say) is not used any more, on any instance: one new token is fetched, then shared.
func TestClientTokenAfterAPIChange(t *testing.T) {
	f := pgFixture(t)
	a, b := f.instance(true), f.instance(true)
	f.srv.SetExpiresIn(time.Hour)
	api := f.api(func(o *store.OAuth2Config) {
		o.GrantType = oauth.GrantClientCredentials
		o.AuthorizationURL = ""
		o.Scopes = []string{"read"}
	})
	first, err := a.r.Token(testCtx(t), api, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.r.Token(testCtx(t), api, nil); err != nil || f.srv.Hits("client_credentials") != 1 {
		t.Fatalf("Token on a second instance = %v, %d requests; want the shared token", err, f.srv.Hits("client_credentials"))
	}
	changed := *api
	changed.APIConfig.OAuth2 = ptr(*api.APIConfig.OAuth2)
	changed.APIConfig.OAuth2.Scopes = []string{"read", "write"}
	if err := f.db.UpdateAPI(testCtx(t), &changed); err != nil {
		t.Fatal(err)
	}
	now, err := f.db.GetAPI(testCtx(t), api.ID, store.Tenant{})
	if err != nil {
		t.Fatal(err)
	}
	second, err := a.r.Token(testCtx(t), now, nil)
	if err != nil || second.Token == first.Token || f.srv.Hits("client_credentials") != 2 {
		t.Fatalf("Token after the API changed = %q, %v, %d requests; want a new token (2 requests)", second.Token, err, f.srv.Hits("client_credentials"))
	}
	if got := f.srv.LastParams("client_credentials").Get("scope"); got != "read write" {
		t.Errorf("the new token was asked with scope %q; want the changed scopes", got)
	}
	if tok, err := b.r.Token(testCtx(t), now, nil); err != nil || tok.Token != second.Token || f.srv.Hits("client_credentials") != 2 {
		t.Errorf("Token on the other instance after the change = %q, %v; want the new shared token, no request", tok.Token, err)
	}
	// The cached row records the API version its token was fetched with...
	row, err := f.db.GetOAuth2ClientToken(testCtx(t), api.ID)
	if err != nil || row.APIUpdatedAt == nil || !row.APIUpdatedAt.Equal(now.UpdatedAt.Truncate(time.Microsecond)) {
		t.Fatalf("cached row's API version = %v, %v; want %v", row.APIUpdatedAt, err, now.UpdatedAt)
	}
	// ...so a row saved after the change by a request that began before it (old version) is not
	// used by an instance that knows the change: it fetches again.
	old := api.UpdatedAt.Truncate(time.Microsecond)
	row.APIUpdatedAt = &old
	if err := f.db.PutOAuth2ClientToken(testCtx(t), row); err != nil {
		t.Fatal(err)
	}
	c := f.instance(true)
	if tok, err := c.r.Token(testCtx(t), now, nil); err != nil || tok.Token == second.Token || f.srv.Hits("client_credentials") != 3 {
		t.Errorf("Token with a cached row of the old version = %q, %v, %d requests; want a new token (3 requests)", tok.Token, err, f.srv.Hits("client_credentials"))
	}
}

func ptr[T any](v T) *T { return &v }

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBackgroundRefresh(t *testing.T) {
	f := pgFixture(t)
	a, b := f.instance(true), f.instance(true)
	api := f.api(nil)
	at := func(d time.Duration) *time.Time { v := f.clock.Now().Add(d); return &v }
	soonA, soonR := f.srv.Issue("read")
	soon := f.conn(api, soonA, soonR, at(5*time.Minute))
	laterA, laterR := f.srv.Issue("read")
	later := f.conn(api, laterA, laterR, at(2*time.Hour))
	deadA, _ := f.srv.Issue("read")
	dead := f.conn(api, deadA, "", at(time.Minute)) // cannot be refreshed: left alone

	bgA := oauth.NewBackground(oauth.BackgroundOptions{Refresher: a.r, Horizon: 10 * time.Minute})
	bgB := oauth.NewBackground(oauth.BackgroundOptions{Refresher: b.r, Horizon: 10 * time.Minute})
	var wg sync.WaitGroup
	results := make([]oauth.PassResult, 2)
	for i, bg := range []*oauth.Background{bgA, bgB} {
		wg.Go(func() {
			var err error
			if results[i], err = bg.Pass(testCtx(t)); err != nil {
				t.Errorf("Pass() = %v", err)
			}
		})
	}
	wg.Wait()
	if n := f.srv.Hits("refresh_token"); n != 1 {
		t.Fatalf("refreshes by two instances' passes = %d; want 1 (only the connection due)", n)
	}
	for _, r := range results {
		// The later pass may find the connection already renewed, and so not due.
		if r.Due > 1 || r.Refreshed != r.Due || r.Failed != 0 || r.Expired != 0 {
			t.Errorf("pass result = %+v; want at most 1 due, refreshed", r)
		}
	}
	if tok, _ := f.tokens(f.reload(soon.ID)); tok == soonA || !f.srv.AccessValid(tok) {
		t.Error("the connection due was not refreshed")
	}
	if tok, _ := f.tokens(f.reload(later.ID)); tok != laterA {
		t.Error("a connection not due was refreshed")
	}
	if got := f.reload(dead.ID); got.Status != store.ConnActive {
		t.Errorf("connection without refresh token = %s; want left alone", got.Status)
	}
	// Requests after the pass never wait for a refresh.
	if _, err := a.r.Token(testCtx(t), api, f.reload(soon.ID)); err != nil || f.srv.Hits("refresh_token") != 1 {
		t.Errorf("Token() after the pass = %v, hits %d; want no in-line refresh", err, f.srv.Hits("refresh_token"))
	}

	// Run: each tick is one pass.
	ticks := make(chan time.Time)
	done := make(chan struct{})
	ctx, cancel := contextWithCancel(t)
	go func() {
		defer close(done)
		oauth.NewBackground(oauth.BackgroundOptions{Refresher: a.r, Horizon: 10 * time.Minute, Ticks: ticks}).Run(ctx)
	}()
	f.clock.Advance(time.Hour + 55*time.Minute) // "later" is now due, "soon" too
	ticks <- f.clock.Now()
	ticks <- f.clock.Now() // taken only once the first pass is over
	cancel()
	<-done
	if n := f.srv.Hits("refresh_token"); n != 3 {
		t.Errorf("refreshes after two ticks = %d; want 3 (two connections due, then none)", n)
	}
}
