// Package oauth2test is an OAuth 2.0 provider for tests, speaking RFC 6749 and RFC 7636 (PKCE)
// for real: an authorization endpoint that redirects with a code and the state, a token endpoint
// (authorization_code, refresh_token, client_credentials; client_secret_basic or
// client_secret_post) and a protected resource that checks bearer tokens.
//
// Like real providers it rotates refresh tokens and, when a refresh token that was already used
// is presented again, revokes the whole grant: every access and refresh token issued from it then
// fails (invalid_grant at the token endpoint, 401 at the resource). Two refreshes racing on one
// connection therefore destroy it, which is what the tests of package oauth check never happens.
//
// It counts token requests per grant type and can be told to answer slowly or with 5xx (and, as
// some real providers do, to echo the request, secrets and all, in such an error).
package oauth2test

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Client authentication methods (RFC 6749 §2.3.1).
const (
	AuthBasic = "client_secret_basic"
	AuthPost  = "client_secret_post"
)

// Options configure a Server. The zero value is a provider with client "client"/"secret",
// one-hour access tokens, PKCE optional and either client authentication method accepted.
type Options struct {
	ClientID, ClientSecret string
	// AuthMethod, when set, is the only client authentication the token endpoint accepts.
	AuthMethod string
	// RequirePKCE makes the authorization endpoint refuse requests without an S256 challenge.
	RequirePKCE bool
	// Now is the provider's clock (access token and code expiry). Default time.Now.
	Now func() time.Time
}

// Server is a running provider. Its methods are safe for concurrent use.
type Server struct {
	srv *httptest.Server
	// URL is the base URL; AuthURL, TokenURL and ResourceURL are its endpoints.
	URL, AuthURL, TokenURL, ResourceURL string

	clientID, clientSecret, authMethod string
	requirePKCE                        bool
	now                                func() time.Time

	mu         sync.Mutex
	expiresIn  time.Duration
	rotate     bool
	extra      map[string]any
	denyWith   string
	delay      time.Duration
	failNext   int
	failStatus int
	failEcho   bool
	codes      map[string]*authCode
	access     map[string]*accessToken
	refresh    map[string]*refreshToken
	hits       map[string]int
	lastParams map[string]url.Values // per grant type, client_secret and assertion left out
	methods    map[string]int
	resource   int
}

type grant struct {
	scopes  []string
	revoked bool
}

type authCode struct {
	g           *grant
	redirectURI string
	challenge   string
	expires     time.Time
	used        bool
}

type accessToken struct {
	g       *grant
	expires time.Time
}

type refreshToken struct {
	g    *grant
	used bool
}

// NewServer starts a provider; Close stops it.
func NewServer(o Options) *Server {
	s := &Server{
		clientID: o.ClientID, clientSecret: o.ClientSecret, authMethod: o.AuthMethod,
		requirePKCE: o.RequirePKCE, now: o.Now,
		expiresIn: time.Hour, rotate: true,
		codes: map[string]*authCode{}, access: map[string]*accessToken{}, refresh: map[string]*refreshToken{},
		hits: map[string]int{}, methods: map[string]int{},
	}
	if s.clientID == "" {
		s.clientID, s.clientSecret = "client", "secret"
	}
	if s.now == nil {
		s.now = time.Now
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /authorize", s.authorize)
	mux.HandleFunc("POST /token", s.token)
	mux.HandleFunc("/resource", s.protected)
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL
	s.AuthURL, s.TokenURL, s.ResourceURL = s.URL+"/authorize", s.URL+"/token", s.URL+"/resource"
	return s
}

// Close shuts the provider down.
func (s *Server) Close() { s.srv.Close() }

// ClientID and ClientSecret are the registered client's credentials.
func (s *Server) ClientID() string     { return s.clientID }
func (s *Server) ClientSecret() string { return s.clientSecret }

// SetExpiresIn sets expires_in of tokens issued from now on; 0 omits it (tokens that never expire).
func (s *Server) SetExpiresIn(d time.Duration) { s.mu.Lock(); s.expiresIn = d; s.mu.Unlock() }

// SetRotate says whether a refresh returns a new refresh token (the default) or none, the old one
// staying valid.
func (s *Server) SetRotate(on bool) { s.mu.Lock(); s.rotate = on; s.mu.Unlock() }

// SetExtra sets extra fields added to every token response (e.g. Salesforce's instance_url).
func (s *Server) SetExtra(m map[string]any) { s.mu.Lock(); s.extra = m; s.mu.Unlock() }

// SetDeny makes the authorization endpoint redirect with error=code (e.g. access_denied) instead
// of a code; "" restores consent.
func (s *Server) SetDeny(code string) { s.mu.Lock(); s.denyWith = code; s.mu.Unlock() }

// SetDelay makes every token request take at least d.
func (s *Server) SetDelay(d time.Duration) { s.mu.Lock(); s.delay = d; s.mu.Unlock() }

// FailNext makes the next n token requests answer status (e.g. 503) without doing anything.
func (s *Server) FailNext(n, status int) {
	s.mu.Lock()
	s.failNext, s.failStatus, s.failEcho = n, status, false
	s.mu.Unlock()
}

// FailNextEcho is FailNext with a careless provider's error body: an RFC 6749 §5.2 error
// (server_error) whose error_description and error_uri quote the request it refuses, the
// Authorization header and the form (client_secret, refresh_token, code, assertion, …) included.
func (s *Server) FailNextEcho(n, status int) {
	s.mu.Lock()
	s.failNext, s.failStatus, s.failEcho = n, status, true
	s.mu.Unlock()
}

// Hits is the number of token requests of a grant type ("authorization_code", "refresh_token",
// "client_credentials"), failed ones included.
func (s *Server) Hits(grantType string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[grantType]
}

// LastParams is the form of the last token request of grantType, without client_secret or
// assertions; nil if there was none.
func (s *Server) LastParams(grantType string) url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastParams[grantType]
}

// AuthMethodHits is the number of token requests that authenticated the client with method.
func (s *Server) AuthMethodHits(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.methods[method]
}

// ResourceHits is the number of requests to the protected resource.
func (s *Server) ResourceHits() int { s.mu.Lock(); defer s.mu.Unlock(); return s.resource }

// ResetHits zeroes every counter.
func (s *Server) ResetHits() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hits, s.methods, s.resource = map[string]int{}, map[string]int{}, 0
}

// Issue mints a grant directly, as if a user had consented, and returns its tokens.
func (s *Server) Issue(scopes ...string) (accessToken, refreshToken string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := &grant{scopes: scopes}
	return s.newAccess(g), s.newRefresh(g)
}

// Revoked reports whether the grant a token (access or refresh) belongs to was revoked; false for
// an unknown token.
func (s *Server) Revoked(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.access[token]; ok {
		return a.g.revoked
	}
	if r, ok := s.refresh[token]; ok {
		return r.g.revoked
	}
	return false
}

// RevokeGrant revokes the grant of a token, as a user removing the app's access would.
func (s *Server) RevokeGrant(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.access[token]; ok {
		a.g.revoked = true
	}
	if r, ok := s.refresh[token]; ok {
		r.g.revoked = true
	}
}

// ExpireAccessTokens makes every access token issued so far invalid at the resource (refresh
// tokens stay good), so the next proxied request gets a 401.
func (s *Server) ExpireAccessTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.access {
		a.expires = time.Time{}
	}
}

// AccessValid reports whether the resource would accept token now.
func (s *Server) AccessValid(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.validAccess(token)
}

func (s *Server) validAccess(token string) bool {
	a, ok := s.access[token]
	return ok && !a.g.revoked && s.now().Before(a.expires)
}

func (s *Server) newAccess(g *grant) string {
	t := "at_" + random()
	exp := s.now().Add(s.expiresIn)
	if s.expiresIn == 0 {
		exp = s.now().AddDate(100, 0, 0)
	}
	s.access[t] = &accessToken{g: g, expires: exp}
	return t
}

func (s *Server) newRefresh(g *grant) string {
	t := "rt_" + random()
	s.refresh[t] = &refreshToken{g: g}
	return t
}

// authorize is the authorization endpoint (RFC 6749 §4.1.1): consent is implied, the response is
// a redirect to redirect_uri with code and state, or with error and state.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || redirect.Scheme == "" || q.Get("client_id") != s.clientID {
		// §4.1.2.1: with a bad client or redirect URI the user is not redirected.
		http.Error(w, "unknown client or bad redirect_uri", http.StatusBadRequest)
		return
	}
	back := func(v url.Values) {
		v.Set("state", q.Get("state"))
		u := *redirect
		rq := u.Query()
		for k, vs := range v {
			rq[k] = vs
		}
		u.RawQuery = rq.Encode()
		http.Redirect(w, r, u.String(), http.StatusFound)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	challenge, method := q.Get("code_challenge"), q.Get("code_challenge_method")
	switch {
	case q.Get("response_type") != "code":
		back(url.Values{"error": {"unsupported_response_type"}})
	case challenge != "" && method != "S256":
		back(url.Values{"error": {"invalid_request"}, "error_description": {"only S256 challenges"}})
	case challenge == "" && s.requirePKCE:
		back(url.Values{"error": {"invalid_request"}, "error_description": {"code_challenge required"}})
	case s.denyWith != "":
		back(url.Values{"error": {s.denyWith}, "error_description": {"the user said no"}})
	default:
		code := "code_" + random()
		s.codes[code] = &authCode{g: &grant{scopes: strings.Fields(q.Get("scope"))}, redirectURI: q.Get("redirect_uri"),
			challenge: challenge, expires: s.now().Add(time.Minute)}
		back(url.Values{"code": {code}})
	}
}

// token is the token endpoint (RFC 6749 §3.2).
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", "malformed body")
		return
	}
	gt := r.PostForm.Get("grant_type")
	s.mu.Lock()
	s.hits[gt]++
	if s.lastParams == nil {
		s.lastParams = map[string]url.Values{}
	}
	params := url.Values{}
	for k, v := range r.PostForm {
		if k != "client_secret" && k != "client_assertion" && k != "assertion" {
			params[k] = v
		}
	}
	s.lastParams[gt] = params
	delay := s.delay
	fail := s.failNext > 0
	if fail {
		s.failNext--
	}
	status, echo := s.failStatus, s.failEcho
	s.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	if fail && echo {
		auth := r.Header.Get("Authorization")
		if b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(auth, "Basic ")); err == nil {
			auth = string(b)
		}
		writeJSON(w, status, map[string]string{"error": "server_error",
			"error_description": "could not process authorization " + auth + " form " + r.PostForm.Encode(),
			"error_uri":         s.URL + "/errors?" + r.PostForm.Encode()})
		return
	}
	if fail {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(status)
		_, _ = w.Write([]byte("upstream trouble"))
		return
	}
	if !s.authenticateClient(w, r) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch gt {
	case "authorization_code":
		s.exchangeCode(w, r.PostForm)
	case "refresh_token":
		s.refreshGrant(w, r.PostForm)
	case "client_credentials":
		g := &grant{scopes: strings.Fields(r.PostForm.Get("scope"))}
		s.writeToken(w, g, s.newAccess(g), "")
	default:
		writeError(w, http.StatusBadRequest, "unsupported_grant_type", "")
	}
}

// authenticateClient checks client_secret_basic or client_secret_post (§2.3.1), one of them only.
func (s *Server) authenticateClient(w http.ResponseWriter, r *http.Request) bool {
	id, secret, basic := r.BasicAuth()
	method := AuthBasic
	if basic {
		// §2.3.1: the credentials are form-encoded before going into the header.
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil || r.PostForm.Has("client_secret") {
			writeError(w, http.StatusBadRequest, "invalid_request", "one client authentication method only")
			return false
		}
	} else {
		id, secret, method = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret"), AuthPost
	}
	s.mu.Lock()
	s.methods[method]++
	s.mu.Unlock()
	ok := subtle.ConstantTimeCompare([]byte(id), []byte(s.clientID)) == 1 &&
		subtle.ConstantTimeCompare([]byte(secret), []byte(s.clientSecret)) == 1
	if !ok || (s.authMethod != "" && method != s.authMethod) {
		if basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="oauth2test"`)
		}
		writeError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return false
	}
	return true
}

func (s *Server) exchangeCode(w http.ResponseWriter, f url.Values) {
	c, ok := s.codes[f.Get("code")]
	switch {
	case !ok:
		writeError(w, http.StatusBadRequest, "invalid_grant", "unknown code")
	case c.used:
		// §4.1.2: a code used twice revokes what was issued from it.
		c.g.revoked = true
		writeError(w, http.StatusBadRequest, "invalid_grant", "code already used")
	case !s.now().Before(c.expires):
		writeError(w, http.StatusBadRequest, "invalid_grant", "code expired")
	case c.redirectURI != f.Get("redirect_uri"):
		writeError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri does not match")
	case c.challenge != "" && !verifierMatches(f.Get("code_verifier"), c.challenge):
		writeError(w, http.StatusBadRequest, "invalid_grant", "PKCE verification failed")
	case c.challenge == "" && f.Has("code_verifier"):
		writeError(w, http.StatusBadRequest, "invalid_request", "code_verifier without a challenge")
	default:
		c.used = true
		s.writeToken(w, c.g, s.newAccess(c.g), s.newRefresh(c.g))
	}
}

// verifierMatches is RFC 7636 §4.6 for S256.
func verifierMatches(verifier, challenge string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:]) == challenge
}

func (s *Server) refreshGrant(w http.ResponseWriter, f url.Values) {
	rt, ok := s.refresh[f.Get("refresh_token")]
	switch {
	case !ok:
		writeError(w, http.StatusBadRequest, "invalid_grant", "unknown refresh token")
	case rt.g.revoked:
		writeError(w, http.StatusBadRequest, "invalid_grant", "grant revoked")
	case rt.used:
		// Refresh token reuse: someone holds a copy. Revoke everything of the grant.
		rt.g.revoked = true
		writeError(w, http.StatusBadRequest, "invalid_grant", "refresh token reused; grant revoked")
	default:
		next := ""
		if s.rotate {
			rt.used = true
			next = s.newRefresh(rt.g)
		}
		s.writeToken(w, rt.g, s.newAccess(rt.g), next)
	}
}

// writeToken is the successful response of §5.1.
func (s *Server) writeToken(w http.ResponseWriter, g *grant, access, refresh string) {
	body := map[string]any{}
	for k, v := range s.extra {
		body[k] = v
	}
	body["access_token"] = access
	body["token_type"] = "Bearer"
	if s.expiresIn > 0 {
		body["expires_in"] = int(s.expiresIn / time.Second)
	}
	if refresh != "" {
		body["refresh_token"] = refresh
	}
	if len(g.scopes) > 0 {
		body["scope"] = strings.Join(g.scopes, " ")
	}
	writeJSON(w, http.StatusOK, body)
}

// writeError is the error response of §5.2.
func writeError(w http.ResponseWriter, status int, code, desc string) {
	body := map[string]string{"error": code}
	if desc != "" {
		body["error_description"] = desc
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// protected is the resource (RFC 6750): 200 with the grant's scopes for a valid bearer token,
// 401 invalid_token otherwise. It echoes the request body so tests can see replays.
func (s *Server) protected(w http.ResponseWriter, r *http.Request) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	s.mu.Lock()
	s.resource++
	valid := ok && s.validAccess(tok)
	var scopes []string
	if valid {
		scopes = s.access[tok].g.scopes
	}
	s.mu.Unlock()
	if !valid {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "scopes": scopes, "body": string(body)})
}

func random() string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
