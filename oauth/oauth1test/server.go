// Package oauth1test is an OAuth 1.0a provider for tests: the three endpoints of RFC 5849 §2
// (temporary credentials, resource owner authorization, token credentials) and a protected
// resource, each verifying signatures per §3 for real.
//
// Its verifier is a second implementation of the RFC, written from the spec and sharing no code
// with package oauth (it imports nothing of extapi), so tests do not check the signer against
// itself: it rebuilds the signature base string from the request as it arrives on the wire (the
// Host header, the request-target as sent, the query and form body as received) with net/url's
// decoding and escaping, and compares signatures in constant time. It also enforces what a real
// provider does: a known consumer key, a timestamp within five minutes, nonces used once,
// temporary credentials authorized once and exchanged once.
package oauth1test

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configure a Server. The zero value is a provider of consumer "consumer-key" /
// "consumer-secret" accepting every signature method.
type Options struct {
	ConsumerKey, ConsumerSecret string
	// Methods, when set, are the only signature methods accepted.
	Methods []string
	// Now is the provider's clock (timestamp checks). Default time.Now.
	Now func() time.Time
}

// Server is a running provider. Its methods are safe for concurrent use.
type Server struct {
	srv *httptest.Server
	// URL is the base URL; the others are its endpoints. ResourceURL accepts any path below it.
	URL, RequestTokenURL, AuthorizeURL, AccessTokenURL, ResourceURL string

	opts Options

	mu         sync.Mutex
	temporary  map[string]*temporary
	tokens     map[string]*tokenCred
	nonces     map[string]bool
	deny       bool
	noConfirm  bool
	counts     map[string]int
	lastReject string
}

type temporary struct {
	secret, callback, verifier string
	authorized, used           bool
}

type tokenCred struct {
	secret, userID, screenName string
}

// NewServer starts a provider; Close it when done.
func NewServer(opts Options) *Server {
	if opts.ConsumerKey == "" {
		opts.ConsumerKey, opts.ConsumerSecret = "consumer-key", "consumer-secret"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{opts: opts, temporary: map[string]*temporary{}, tokens: map[string]*tokenCred{},
		nonces: map[string]bool{}, counts: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /request_token", s.requestToken)
	mux.HandleFunc("GET /authorize", s.authorize)
	mux.HandleFunc("POST /access_token", s.accessToken)
	mux.HandleFunc("/resource/", s.resource)
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL
	s.RequestTokenURL = s.URL + "/request_token"
	s.AuthorizeURL = s.URL + "/authorize"
	s.AccessTokenURL = s.URL + "/access_token"
	s.ResourceURL = s.URL + "/resource"
	return s
}

// Close shuts the provider down.
func (s *Server) Close() { s.srv.Close() }

// Deny makes the authorization endpoint refuse on the user's behalf: it redirects to the
// callback with denied=<request token> (as Twitter/X does) instead of a verifier.
func (s *Server) Deny(deny bool) { s.mu.Lock(); s.deny = deny; s.mu.Unlock() }

// OmitCallbackConfirmed makes the temporary credentials response leave out
// oauth_callback_confirmed, as an OAuth 1.0 (not 1.0a) provider would.
func (s *Server) OmitCallbackConfirmed(omit bool) { s.mu.Lock(); s.noConfirm = omit; s.mu.Unlock() }

// AddToken registers token credentials, as if a flow had issued them, for resource tests.
func (s *Server) AddToken(token, secret string) {
	s.mu.Lock()
	s.tokens[token] = &tokenCred{secret: secret}
	s.mu.Unlock()
}

// Count is how many requests an endpoint ("request_token", "authorize", "access_token",
// "resource") received, accepted or not.
func (s *Server) Count(endpoint string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[endpoint]
}

// LastReject is why the last refused request was refused ("" when none was), for test messages.
func (s *Server) LastReject() string { s.mu.Lock(); defer s.mu.Unlock(); return s.lastReject }

// Verified is a request whose signature checked out.
type Verified struct {
	Params     map[string]string // the oauth_* parameters of the Authorization header, decoded
	BaseString string
	Token      string
}

// Verify checks the OAuth 1.0a signature of r, whose body has already been read into body.
// tokenSecret returns the secret of a token ("" is the absent token of a temporary credentials
// request) and whether it is known.
func (s *Server) Verify(r *http.Request, body []byte, tokenSecret func(token string) (string, bool)) (*Verified, error) {
	params, err := parseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		return nil, err
	}
	for _, name := range []string{"oauth_consumer_key", "oauth_signature_method", "oauth_signature", "oauth_timestamp", "oauth_nonce"} {
		if _, ok := params[name]; !ok {
			return nil, fmt.Errorf("parameter_absent: %s", name)
		}
	}
	if v, ok := params["oauth_version"]; ok && v != "1.0" {
		return nil, errors.New("version_rejected")
	}
	if subtle.ConstantTimeCompare([]byte(params["oauth_consumer_key"]), []byte(s.opts.ConsumerKey)) != 1 {
		return nil, errors.New("consumer_key_unknown")
	}
	method := params["oauth_signature_method"]
	if len(s.opts.Methods) > 0 && !contains(s.opts.Methods, method) {
		return nil, errors.New("signature_method_rejected")
	}
	ts, err := strconv.ParseInt(params["oauth_timestamp"], 10, 64)
	if err != nil {
		return nil, errors.New("timestamp_refused: not a number")
	}
	if d := s.opts.Now().Unix() - ts; d > 300 || d < -300 {
		return nil, errors.New("timestamp_refused")
	}
	token := params["oauth_token"]
	secret, ok := tokenSecret(token)
	if !ok {
		return nil, errors.New("token_rejected")
	}
	base, err := baseString(r, body, params)
	if err != nil {
		return nil, err
	}
	key := escape(s.opts.ConsumerSecret) + "&" + escape(secret)
	var want string
	switch method {
	case "HMAC-SHA1":
		want = macBase64(sha1.New, key, base)
	case "HMAC-SHA256":
		want = macBase64(sha256.New, key, base)
	case "PLAINTEXT":
		want = key
	default:
		return nil, errors.New("signature_method_rejected")
	}
	if !hmac.Equal([]byte(want), []byte(params["oauth_signature"])) {
		return nil, fmt.Errorf("signature_invalid: base string %s", base)
	}
	// A nonce is used once per consumer, token and timestamp (§3.3); checked after the signature
	// so an unsigned request cannot burn one.
	nk := params["oauth_consumer_key"] + "&" + token + "&" + params["oauth_timestamp"] + "&" + params["oauth_nonce"]
	s.mu.Lock()
	used := s.nonces[nk]
	s.nonces[nk] = true
	s.mu.Unlock()
	if used {
		return nil, errors.New("nonce_used")
	}
	return &Verified{Params: params, BaseString: base, Token: token}, nil
}

func macBase64(h func() hash.Hash, key, msg string) string {
	m := hmac.New(h, []byte(key))
	io.WriteString(m, msg)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// parseAuthorization reads an "OAuth k="v", …" header (§3.5.1): names and values are
// percent-encoded, values quoted; realm is dropped.
func parseAuthorization(h string) (map[string]string, error) {
	scheme, rest, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "OAuth") {
		return nil, errors.New("parameter_absent: no OAuth Authorization header")
	}
	out := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok || len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
			return nil, fmt.Errorf("parameter_rejected: malformed %q", part)
		}
		name, err1 := url.PathUnescape(k)
		value, err2 := url.PathUnescape(v[1 : len(v)-1])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("parameter_rejected: bad encoding in %q", part)
		}
		if name == "realm" {
			continue
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("parameter_rejected: %s twice", name)
		}
		out[name] = value
	}
	return out, nil
}

// escape is §3.6's encoding by way of net/url: QueryEscape leaves exactly the unreserved set
// alone (and writes upper-case hex) except that it turns a space into '+'.
func escape(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }

// baseString is §3.4.1 from the request as received.
func baseString(r *http.Request, body []byte, oauth map[string]string) (string, error) {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := strings.ToLower(r.Host)
	if h, p, ok := strings.Cut(host, ":"); ok && !strings.HasPrefix(host, "[") {
		if (scheme == "http" && p == "80") || (scheme == "https" && p == "443") {
			host = h
		}
	}
	path, query, _ := strings.Cut(originForm(r.RequestURI), "?")
	if path == "" {
		path = "/"
	}
	type pair struct{ k, v string }
	var pairs []pair
	addForm := func(s string) error {
		for _, seg := range strings.Split(s, "&") {
			if seg == "" {
				continue
			}
			k, v, _ := strings.Cut(seg, "=")
			dk, err := url.QueryUnescape(k)
			if err != nil {
				return err
			}
			dv, err := url.QueryUnescape(v)
			if err != nil {
				return err
			}
			if dk == "oauth_signature" {
				continue
			}
			pairs = append(pairs, pair{escape(dk), escape(dv)})
		}
		return nil
	}
	if err := addForm(query); err != nil {
		return "", fmt.Errorf("parameter_rejected: query: %v", err)
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil && mt == "application/x-www-form-urlencoded" {
		if err := addForm(string(body)); err != nil {
			return "", fmt.Errorf("parameter_rejected: body: %v", err)
		}
	}
	for k, v := range oauth {
		if k != "oauth_signature" {
			pairs = append(pairs, pair{escape(k), escape(v)})
		}
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	norm := make([]string, len(pairs))
	for i, p := range pairs {
		norm[i] = p.k + "=" + p.v
	}
	uri := scheme + "://" + host + path
	return strings.ToUpper(r.Method) + "&" + escape(uri) + "&" + escape(strings.Join(norm, "&")), nil
}

// originForm is the request-target without scheme and authority, should it have come in
// absolute form (RFC 9112 §3.2.2), as sent otherwise.
func originForm(target string) string {
	if i := strings.Index(target, "://"); i > 0 && !strings.HasPrefix(target, "/") {
		rest := target[i+3:]
		if j := strings.IndexAny(rest, "/?"); j >= 0 {
			return rest[j:]
		}
		return "/"
	}
	return target
}

func (s *Server) count(endpoint string) {
	s.mu.Lock()
	s.counts[endpoint]++
	s.mu.Unlock()
}

// reject answers 401 with the OAuth Problem Reporting extension's oauth_problem.
func (s *Server) reject(w http.ResponseWriter, err error) {
	problem, _, _ := strings.Cut(err.Error(), ":")
	s.mu.Lock()
	s.lastReject = err.Error()
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-www-form-urlencoded")
	w.Header().Set("WWW-Authenticate", `OAuth realm="oauth1test"`)
	w.WriteHeader(http.StatusUnauthorized)
	io.WriteString(w, "oauth_problem="+url.QueryEscape(problem)+"&oauth_problem_advice="+url.QueryEscape(err.Error()))
}

func form(w http.ResponseWriter, v url.Values) {
	w.Header().Set("Content-Type", "application/x-www-form-urlencoded")
	io.WriteString(w, v.Encode())
}

func random() string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func readBody(r *http.Request) []byte {
	b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	return b
}

// POST /request_token (§2.1)
func (s *Server) requestToken(w http.ResponseWriter, r *http.Request) {
	s.count("request_token")
	v, err := s.Verify(r, readBody(r), func(token string) (string, bool) { return "", token == "" })
	if err != nil {
		s.reject(w, err)
		return
	}
	cb := v.Params["oauth_callback"]
	if u, err := url.Parse(cb); cb != "oob" && (err != nil || !u.IsAbs()) {
		s.reject(w, errors.New("parameter_absent: oauth_callback"))
		return
	}
	tok, sec := "rt-"+random(), "rts-"+random()
	s.mu.Lock()
	s.temporary[tok] = &temporary{secret: sec, callback: cb}
	noConfirm := s.noConfirm
	s.mu.Unlock()
	out := url.Values{"oauth_token": {tok}, "oauth_token_secret": {sec}}
	if !noConfirm {
		out.Set("oauth_callback_confirmed", "true")
	}
	form(w, out)
}

// GET /authorize?oauth_token=… (§2.2): the user approves (or, after Deny, refuses) at once.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	s.count("authorize")
	tok := r.URL.Query().Get("oauth_token")
	s.mu.Lock()
	t, ok := s.temporary[tok]
	deny := s.deny
	var verifier string
	if ok && !deny && !t.authorized {
		t.authorized, t.verifier = true, "v-"+random()
		verifier = t.verifier
	}
	s.mu.Unlock()
	if !ok || (!deny && verifier == "") {
		http.Error(w, "unknown or already authorized oauth_token", http.StatusBadRequest)
		return
	}
	cb, err := url.Parse(t.callback)
	if err != nil {
		http.Error(w, "bad callback", http.StatusBadRequest)
		return
	}
	q := cb.Query()
	if deny {
		q.Set("denied", tok)
	} else {
		q.Set("oauth_token", tok)
		q.Set("oauth_verifier", verifier)
	}
	cb.RawQuery = q.Encode()
	http.Redirect(w, r, cb.String(), http.StatusFound)
}

// POST /access_token (§2.3)
func (s *Server) accessToken(w http.ResponseWriter, r *http.Request) {
	s.count("access_token")
	var t *temporary
	v, err := s.Verify(r, readBody(r), func(token string) (string, bool) {
		s.mu.Lock()
		defer s.mu.Unlock()
		t = s.temporary[token]
		if t == nil {
			return "", false
		}
		return t.secret, true
	})
	if err != nil {
		s.reject(w, err)
		return
	}
	s.mu.Lock()
	switch {
	case t.used:
		err = errors.New("token_used")
	case !t.authorized:
		err = errors.New("permission_unknown")
	case subtle.ConstantTimeCompare([]byte(v.Params["oauth_verifier"]), []byte(t.verifier)) != 1:
		err = errors.New("verifier_invalid")
	}
	if err == nil {
		t.used = true
	}
	s.mu.Unlock()
	if err != nil {
		s.reject(w, err)
		return
	}
	tok, sec := "at-"+random(), "ats-"+random()
	s.mu.Lock()
	s.tokens[tok] = &tokenCred{secret: sec, userID: "6377362", screenName: "jane"}
	s.mu.Unlock()
	form(w, url.Values{"oauth_token": {tok}, "oauth_token_secret": {sec}, "user_id": {"6377362"}, "screen_name": {"jane"}})
}

// Echo is what the protected resource answers when a request verifies.
type Echo struct {
	Method     string              `json:"method"`
	Path       string              `json:"path"` // the request-target's path, as sent
	Query      map[string][]string `json:"query"`
	Form       map[string][]string `json:"form,omitempty"`
	Body       string              `json:"body"`
	Token      string              `json:"oauth_token"`
	BaseString string              `json:"base_string"`
}

// ANY /resource/… : a protected resource of the token credentials.
func (s *Server) resource(w http.ResponseWriter, r *http.Request) {
	s.count("resource")
	body := readBody(r)
	v, err := s.Verify(r, body, func(token string) (string, bool) {
		s.mu.Lock()
		defer s.mu.Unlock()
		t := s.tokens[token]
		if t == nil {
			return "", false
		}
		return t.secret, true
	})
	if err != nil {
		s.reject(w, err)
		return
	}
	path, _, _ := strings.Cut(originForm(r.RequestURI), "?")
	e := Echo{Method: r.Method, Path: path, Query: r.URL.Query(), Body: string(body), Token: v.Token, BaseString: v.BaseString}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/x-www-form-urlencoded" {
		e.Form, _ = url.ParseQuery(string(body))
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(e)
}
