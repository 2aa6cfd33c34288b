package oauth

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"sort"
	"strconv"
	"sync"
	"time"
)

// OAuth 1.0a signature methods (RFC 5849 §3.4). HMAC-SHA256 is not in the RFC but is what several
// providers ask for; it is HMAC-SHA1 with SHA-256.
const (
	OAuth1HMACSHA1   = "HMAC-SHA1"
	OAuth1HMACSHA256 = "HMAC-SHA256"
	OAuth1Plaintext  = "PLAINTEXT"
)

// Sentinel errors of OAuth 1.0a signing. Match them with errors.Is.
var (
	// ErrSignatureMethod: the signer's Method is none of HMAC-SHA1, HMAC-SHA256, PLAINTEXT.
	ErrSignatureMethod = errors.New("oauth: unsupported OAuth 1.0a signature method")
	// ErrRealm: the realm cannot be written into a header (a control character, '"' or '\\').
	ErrRealm = errors.New("oauth: realm cannot be sent in an Authorization header")
	// ErrRequestURL: the URL is not an absolute http or https URL with a host and a numeric port.
	ErrRequestURL = errors.New("oauth: request URL cannot be signed")
	// ErrParameterEncoding: the query or form body has a '%' not followed by two hex digits, so
	// its parameters (and so the signature) are not defined.
	ErrParameterEncoding = errors.New("oauth: malformed application/x-www-form-urlencoded parameters")
)

// OAuth1Credentials are the two credential pairs of a signed request: the client's (consumer key
// and secret, from the API's config) and the token's (from the connection). Token is empty when
// requesting temporary credentials; TokenSecret is then empty too.
type OAuth1Credentials struct {
	ConsumerKey, ConsumerSecret string
	Token, TokenSecret          string
}

// OAuth1Param is one protocol parameter, not yet encoded.
type OAuth1Param struct {
	Name, Value string
}

// OAuth1Signer signs requests per RFC 5849. The zero value signs with HMAC-SHA1, no realm, a
// crypto/rand nonce and the wall clock. It is safe for concurrent use once its fields are set;
// build one per API at route resolution and call Validate there.
type OAuth1Signer struct {
	// Method is HMAC-SHA1 (default when empty), HMAC-SHA256 or PLAINTEXT.
	Method string
	// Realm, when set, is sent as the header's realm (it is never signed).
	Realm string
	// OmitVersion leaves out oauth_version="1.0", which RFC 5849 makes optional.
	OmitVersion bool
	// Nonce returns oauth_nonce; nil means 128 random bits from crypto/rand, hex-encoded.
	Nonce func() string
	// Now returns the time of oauth_timestamp; nil means time.Now.
	Now func() time.Time
}

// ValidOAuth1Method reports whether m names a supported signature method ("" is HMAC-SHA1).
func ValidOAuth1Method(m string) bool {
	switch m {
	case "", OAuth1HMACSHA1, OAuth1HMACSHA256, OAuth1Plaintext:
		return true
	}
	return false
}

// Validate reports whether the signature method and realm can be used.
func (s *OAuth1Signer) Validate() error {
	if !ValidOAuth1Method(s.Method) {
		return fmt.Errorf("%w %q (want %s, %s or %s)", ErrSignatureMethod, s.Method,
			OAuth1HMACSHA1, OAuth1HMACSHA256, OAuth1Plaintext)
	}
	for i := 0; i < len(s.Realm); i++ {
		if c := s.Realm[i]; c < 0x20 || c == 0x7f || c == '"' || c == '\\' {
			return ErrRealm
		}
	}
	return nil
}

func (s *OAuth1Signer) method() string {
	if s.Method == "" {
		return OAuth1HMACSHA1
	}
	return s.Method
}

// Authorization returns the value of the Authorization header (RFC 5849 §3.5.1) for a request.
//
// method is the HTTP method and rawURL the final upstream URL exactly as it will be sent (scheme,
// host, port, path and raw query; a fragment is ignored). form is the request body when, and only
// when, its Content-Type is application/x-www-form-urlencoded (see IsFormURLEncoded); nil
// otherwise, since other bodies are not signed. extra holds further protocol parameters such as
// oauth_callback or oauth_verifier; they are signed and sent in the header.
func (s *OAuth1Signer) Authorization(method, rawURL string, form []byte, c OAuth1Credentials, extra ...OAuth1Param) (string, error) {
	st := getState()
	defer putState(st)
	out, err := appendAuthorization(s, st, st.out[:0], method, rawURL, form,
		c.ConsumerKey, c.ConsumerSecret, c.Token, c.TokenSecret, extra)
	st.out = out
	if err != nil {
		return "", err
	}
	return string(out), nil
}

// AppendAuthorization is Authorization appending to dst, for callers that keep their own buffer.
func (s *OAuth1Signer) AppendAuthorization(dst []byte, method, rawURL string, form []byte, c *OAuth1Credentials, extra ...OAuth1Param) ([]byte, error) {
	st := getState()
	defer putState(st)
	return appendAuthorization(s, st, dst, method, rawURL, form, c.ConsumerKey, c.ConsumerSecret, c.Token, c.TokenSecret, extra)
}

// OAuth1CredentialBytes are OAuth1Credentials held in byte slices, for callers that keep opened
// secrets in buffers they clear after use (the proxy): signing makes no string copy of them.
type OAuth1CredentialBytes struct {
	ConsumerKey, ConsumerSecret []byte
	Token, TokenSecret          []byte
}

// AppendAuthorizationBytes is AppendAuthorization for a method, URL and credentials in byte
// slices, as a fasthttp request holds them.
func (s *OAuth1Signer) AppendAuthorizationBytes(dst, method, rawURL, form []byte, c *OAuth1CredentialBytes, extra ...OAuth1Param) ([]byte, error) {
	st := getState()
	defer putState(st)
	return appendAuthorization(s, st, dst, method, rawURL, form, c.ConsumerKey, c.ConsumerSecret, c.Token, c.TokenSecret, extra)
}

func appendAuthorization[T string | []byte](s *OAuth1Signer, st *signState, dst []byte, method, rawURL T, form []byte,
	consumerKey, consumerSecret, token, tokenSecret T, extra []OAuth1Param) ([]byte, error) {
	if err := s.Validate(); err != nil {
		return dst, err
	}
	sm := s.method()
	var nonce string
	if s.Nonce != nil {
		nonce = s.Nonce()
	} else {
		if _, err := rand.Read(st.rnd[:]); err != nil {
			return dst, fmt.Errorf("oauth: nonce: %w", err)
		}
		hex.Encode(st.nonce[:], st.rnd[:])
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	ts := strconv.AppendInt(st.ts[:0], now().Unix(), 10)

	// §3.4.2's key: the encoded client secret, '&', the encoded token secret.
	st.key = appendEncoded(st.key[:0], consumerSecret)
	st.key = append(st.key, '&')
	st.key = appendEncoded(st.key, tokenSecret)
	var sig []byte
	if sm == OAuth1Plaintext {
		sig = st.key // §3.4.4: the signature is the key itself
	} else {
		u, err := collect(st, rawURL, form, nil)
		if err != nil {
			return dst, err
		}
		addParam(st, "oauth_consumer_key", consumerKey)
		if len(token) > 0 {
			addParam(st, "oauth_token", token)
		}
		addParam(st, "oauth_signature_method", sm)
		addParam(st, "oauth_timestamp", ts)
		if s.Nonce != nil {
			addParam(st, "oauth_nonce", nonce)
		} else {
			addParam(st, "oauth_nonce", st.nonce[:])
		}
		for _, p := range extra {
			addParam(st, p.Name, p.Value)
		}
		if !s.OmitVersion {
			addParam(st, "oauth_version", "1.0")
		}
		st.base = appendBaseString(st, st.base[:0], method, &u)
		var h func() hash.Hash = sha1.New
		if sm == OAuth1HMACSHA256 {
			h = sha256.New
		}
		mac := hmac.New(h, st.key)
		mac.Write(st.base)
		st.sum = mac.Sum(st.sum[:0])
		st.sig = base64.StdEncoding.AppendEncode(st.sig[:0], st.sum)
		sig = st.sig
	}

	dst = append(dst, "OAuth "...)
	if s.Realm != "" {
		dst = append(dst, `realm="`...)
		dst = append(dst, s.Realm...)
		dst = append(dst, `", `...)
	}
	dst = appendHeaderParam(dst, "oauth_consumer_key", consumerKey)
	if len(token) > 0 {
		dst = appendHeaderParam(dst, "oauth_token", token)
	}
	dst = appendHeaderParam(dst, "oauth_signature_method", sm)
	dst = appendHeaderParam(dst, "oauth_timestamp", ts)
	if s.Nonce != nil {
		dst = appendHeaderParam(dst, "oauth_nonce", nonce)
	} else {
		dst = appendHeaderParam(dst, "oauth_nonce", st.nonce[:])
	}
	for _, p := range extra {
		dst = appendHeaderParam(dst, p.Name, p.Value)
	}
	if !s.OmitVersion {
		dst = appendHeaderParam(dst, "oauth_version", "1.0")
	}
	dst = append(dst, `oauth_signature="`...)
	dst = appendEncoded(dst, sig)
	return append(dst, '"'), nil
}

// appendHeaderParam writes name="value", (§3.5.1), both encoded; the signature, written last,
// carries no trailing separator.
func appendHeaderParam[T string | []byte](dst []byte, name string, value T) []byte {
	dst = appendEncoded(dst, name)
	dst = append(dst, `="`...)
	dst = appendEncoded(dst, value)
	return append(dst, `", `...)
}

// IsFormURLEncoded reports whether a Content-Type header value is
// application/x-www-form-urlencoded (any case, with or without parameters such as charset): the
// only body whose parameters are signed (§3.4.1.3.1).
func IsFormURLEncoded[T string | []byte](contentType T) bool {
	const ct = "application/x-www-form-urlencoded"
	mt := contentType
	if i := index(mt, ';'); i >= 0 {
		mt = mt[:i]
	}
	for len(mt) > 0 && (mt[0] == ' ' || mt[0] == '\t') {
		mt = mt[1:]
	}
	for len(mt) > 0 && (mt[len(mt)-1] == ' ' || mt[len(mt)-1] == '\t') {
		mt = mt[:len(mt)-1]
	}
	if len(mt) != len(ct) {
		return false
	}
	for i := 0; i < len(ct); i++ {
		c := mt[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != ct[i] {
			return false
		}
	}
	return true
}

// PercentEncode encodes s per RFC 5849 §3.6: every byte except the unreserved ALPHA, DIGIT, '-',
// '.', '_' and '~' becomes %XX with upper-case hex. It differs from url.QueryEscape, which writes
// a space as '+' and leaves '*' alone.
func PercentEncode(s string) string {
	if !needsEncoding(s) {
		return s
	}
	return string(appendEncoded(make([]byte, 0, len(s)+16), s))
}

// AppendPercentEncode is PercentEncode appending to dst.
func AppendPercentEncode(dst []byte, s string) []byte { return appendEncoded(dst, s) }

func needsEncoding(s string) bool {
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) {
			return true
		}
	}
	return false
}

func unreserved(c byte) bool { return unreservedSet[c] }

// unreservedSet is §3.6's unreserved set: ALPHA, DIGIT, '-', '.', '_', '~'.
var unreservedSet = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~'
	}
	return t
}()

const upperHex = "0123456789ABCDEF"

func appendEncoded[T string | []byte](dst []byte, s T) []byte {
	// Runs of unreserved bytes are copied at once; most values are all unreserved.
	run := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreservedSet[c] {
			continue
		}
		dst = append(dst, s[run:i]...)
		dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
		run = i + 1
	}
	return append(dst, s[run:]...)
}

// appendFormDecodedEncoded decodes an application/x-www-form-urlencoded name or value ('+' is a
// space, %XX a byte) and appends its §3.6 encoding, in one pass.
func appendFormDecodedEncoded[T string | []byte](dst []byte, s T) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '+':
			c = ' '
		case '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return dst, ErrParameterEncoding
			}
			c = unhex(s[i+1])<<4 | unhex(s[i+2])
			i += 2
		}
		if unreserved(c) {
			dst = append(dst, c)
		} else {
			dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
		}
	}
	return dst, nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// requestURL is an absolute URL split into what §3.4.1.2 and §3.4.1.3.1 use; every field but
// scheme is a piece of the input.
type requestURL[T string | []byte] struct {
	scheme string // lower case: "http" or "https"
	host   T      // as written; lower-cased when appended
	port   T      // without leading zeros; empty when absent or the scheme's default
	path   T      // as sent; empty means "/"
	query  T      // raw, without '?'
}

func parseRequestURL[T string | []byte](raw T) (requestURL[T], error) {
	var u requestURL[T]
	i := indexString(raw, "://")
	if i <= 0 {
		return u, fmt.Errorf("%w: not absolute", ErrRequestURL)
	}
	var defaultPort string
	switch sch := raw[:i]; {
	case equalFoldASCII(sch, "http"):
		u.scheme, defaultPort = "http", "80"
	case equalFoldASCII(sch, "https"):
		u.scheme, defaultPort = "https", "443"
	default:
		return u, fmt.Errorf("%w: scheme is not http or https", ErrRequestURL)
	}
	rest := raw[i+3:]
	end := len(rest)
	for j := 0; j < len(rest); j++ {
		if c := rest[j]; c == '/' || c == '?' || c == '#' {
			end = j
			break
		}
	}
	auth := rest[:end]
	rest = rest[end:]
	if at := lastIndex(auth, '@'); at >= 0 {
		auth = auth[at+1:] // user information is not part of the base string URI
	}
	if len(auth) > 0 && auth[0] == '[' {
		cl := index(auth, ']')
		if cl < 0 {
			return u, fmt.Errorf("%w: unclosed IPv6 host", ErrRequestURL)
		}
		u.host = auth[:cl+1]
		switch after := auth[cl+1:]; {
		case len(after) == 0:
			u.port = after
		case after[0] == ':':
			u.port = after[1:]
		default:
			return u, fmt.Errorf("%w: junk after IPv6 host", ErrRequestURL)
		}
	} else if c := lastIndex(auth, ':'); c >= 0 {
		u.host, u.port = auth[:c], auth[c+1:]
	} else {
		u.host, u.port = auth, auth[:0]
	}
	if len(u.host) == 0 || len(u.host) == 2 && u.host[0] == '[' {
		return u, fmt.Errorf("%w: no host", ErrRequestURL)
	}
	for j := 0; j < len(u.port); j++ {
		if u.port[j] < '0' || u.port[j] > '9' {
			return u, fmt.Errorf("%w: port is not a number", ErrRequestURL)
		}
	}
	if len(u.port) > 0 {
		for len(u.port) > 1 && u.port[0] == '0' {
			u.port = u.port[1:]
		}
		if string(u.port) == defaultPort {
			u.port = u.port[:0]
		}
	}
	if h := index(rest, '#'); h >= 0 {
		rest = rest[:h]
	}
	u.path, u.query = rest, rest[:0]
	if q := index(rest, '?'); q >= 0 {
		u.path, u.query = rest[:q], rest[q+1:]
	}
	return u, nil
}

func indexString[T string | []byte](s T, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if string(s[i:i+len(sub)]) == sub {
			return i
		}
	}
	return -1
}

func lastIndex[T string | []byte](s T, c byte) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// equalFoldASCII compares s with lower, which is lower-case ASCII, ignoring ASCII case.
func equalFoldASCII[T string | []byte](s T, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// appendBaseURI writes §3.4.1.2's base string URI, §3.6-encoded when enc is set (as it appears
// in the base string).
func appendBaseURI[T string | []byte](dst []byte, u *requestURL[T], enc bool) []byte {
	sep, colon := "://", ":"
	if enc {
		sep, colon = "%3A%2F%2F", "%3A"
	}
	dst = append(dst, u.scheme...)
	dst = append(dst, sep...)
	for i := 0; i < len(u.host); i++ {
		c := u.host[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if enc && !unreserved(c) {
			dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
		} else {
			dst = append(dst, c)
		}
	}
	if len(u.port) > 0 {
		dst = append(dst, colon...)
		dst = append(dst, u.port...)
	}
	if len(u.path) == 0 {
		if enc {
			return append(dst, "%2F"...)
		}
		return append(dst, '/')
	}
	if enc {
		return appendEncoded(dst, u.path)
	}
	return append(dst, u.path...)
}

// signState is the scratch space of one signature, pooled so that signing a proxied request does
// not allocate for its parameters.
type signState struct {
	params []byte      // encoded names and values, back to back
	spans  []paramSpan // one per parameter, into params
	base   []byte
	key    []byte
	sum    []byte
	sig    []byte
	out    []byte
	rnd    [16]byte
	nonce  [32]byte
	ts     [20]byte
}

// paramSpan locates one encoded parameter: name is params[start:mid], value params[mid:end].
type paramSpan struct{ start, mid, end int }

var statePool = sync.Pool{New: func() any { return new(signState) }}

// maxPooledBuffer keeps one huge form body from pinning memory in the pool.
const maxPooledBuffer = 64 << 10

func getState() *signState { return statePool.Get().(*signState) }

func putState(st *signState) {
	// The key is made of the secrets; a PLAINTEXT header holds it too.
	clear(st.key)
	clear(st.out)
	if cap(st.params) > maxPooledBuffer || cap(st.base) > 2*maxPooledBuffer || cap(st.out) > maxPooledBuffer {
		return
	}
	statePool.Put(st)
}

func (st *signState) reset() {
	st.params = st.params[:0]
	st.spans = st.spans[:0]
}

// addPairs collects the parameters of an application/x-www-form-urlencoded string (a query or a
// body), decoded and re-encoded. Empty pairs ("a&&b") are skipped; a pair without '=' has an
// empty value. oauth_signature is never signed (§3.4.1.3.1).
func addPairs[T string | []byte](st *signState, s T) error {
	for len(s) > 0 {
		var pair T
		if i := index(s, '&'); i >= 0 {
			pair, s = s[:i], s[i+1:]
		} else {
			pair, s = s, s[:0]
		}
		if len(pair) == 0 {
			continue
		}
		name, value := pair, pair[:0]
		if i := index(pair, '='); i >= 0 {
			name, value = pair[:i], pair[i+1:]
		}
		start := len(st.params)
		var err error
		if st.params, err = appendFormDecodedEncoded(st.params, name); err != nil {
			return err
		}
		mid := len(st.params)
		if st.params, err = appendFormDecodedEncoded(st.params, value); err != nil {
			return err
		}
		if string(st.params[start:mid]) == "oauth_signature" {
			st.params = st.params[:start]
			continue
		}
		st.spans = append(st.spans, paramSpan{start, mid, len(st.params)})
	}
	return nil
}

func index[T string | []byte](s T, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// addParam collects one protocol parameter, encoded. realm and oauth_signature are never
// signed.
func addParam[T string | []byte](st *signState, name string, value T) {
	if name == "realm" || name == "oauth_signature" {
		return
	}
	start := len(st.params)
	st.params = appendEncoded(st.params, name)
	mid := len(st.params)
	st.params = appendEncoded(st.params, value)
	st.spans = append(st.spans, paramSpan{start, mid, len(st.params)})
}

// sort.Interface over the collected parameters: by encoded name, then encoded value (§3.4.1.3.2).
// Equal pairs are indistinguishable, so an unstable sort is fine.
func (st *signState) Len() int      { return len(st.spans) }
func (st *signState) Swap(i, j int) { st.spans[i], st.spans[j] = st.spans[j], st.spans[i] }
func (st *signState) Less(i, j int) bool {
	a, b := st.spans[i], st.spans[j]
	an, bn := st.params[a.start:a.mid], st.params[b.start:b.mid]
	if c := bytes.Compare(an, bn); c != 0 {
		return c < 0
	}
	return bytes.Compare(st.params[a.mid:a.end], st.params[b.mid:b.end]) < 0
}

// appendNormalized sorts the parameters and writes §3.4.1.3.2's normalized string; when enc is
// set it is written §3.6-encoded once more, as it appears in the base string. The collected
// names and values hold only unreserved characters and %XX, so the second encoding only has '%',
// '=' and '&' to escape.
func (st *signState) appendNormalized(dst []byte, enc bool) []byte {
	sort.Sort(st)
	eq, amp := "=", "&"
	if enc {
		eq, amp = "%3D", "%26"
	}
	for i, sp := range st.spans {
		if i > 0 {
			dst = append(dst, amp...)
		}
		dst = appendReencoded(dst, st.params[sp.start:sp.mid], enc)
		dst = append(dst, eq...)
		dst = appendReencoded(dst, st.params[sp.mid:sp.end], enc)
	}
	return dst
}

func appendReencoded(dst, encoded []byte, enc bool) []byte {
	if !enc {
		return append(dst, encoded...)
	}
	for {
		i := bytes.IndexByte(encoded, '%')
		if i < 0 {
			return append(dst, encoded...)
		}
		dst = append(dst, encoded[:i]...)
		dst = append(dst, "%25"...)
		encoded = encoded[i+1:]
	}
}

// appendBaseString writes §3.4.1.1's signature base string: METHOD&uri&params.
func appendBaseString[T string | []byte](st *signState, dst []byte, method T, u *requestURL[T]) []byte {
	for i := 0; i < len(method); i++ {
		c := method[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		dst = append(dst, c)
	}
	dst = append(dst, '&')
	dst = appendBaseURI(dst, u, true)
	dst = append(dst, '&')
	return st.appendNormalized(dst, true)
}

// collect resets st and gathers the parameters of a request: its query, its form body and the
// given protocol parameters.
func collect[T string | []byte](st *signState, rawURL T, form []byte, protocol []OAuth1Param) (requestURL[T], error) {
	u, err := parseRequestURL(rawURL)
	if err != nil {
		return u, err
	}
	st.reset()
	if err := addPairs(st, u.query); err != nil {
		return u, err
	}
	if form != nil {
		if err := addPairs(st, form); err != nil {
			return u, err
		}
	}
	for _, p := range protocol {
		addParam(st, p.Name, p.Value)
	}
	return u, nil
}

// OAuth1BaseString returns the signature base string (RFC 5849 §3.4.1.1) of a request with the
// given protocol parameters (the oauth_* values of the header; realm and oauth_signature are left
// out). form is the body when it is application/x-www-form-urlencoded, nil otherwise.
func OAuth1BaseString(method, rawURL string, form []byte, protocol []OAuth1Param) (string, error) {
	st := getState()
	defer putState(st)
	u, err := collect(st, rawURL, form, protocol)
	if err != nil {
		return "", err
	}
	st.base = appendBaseString(st, st.base[:0], method, &u)
	return string(st.base), nil
}

// OAuth1NormalizedParams returns the normalized request parameters (§3.4.1.3.2) of a request:
// its query, form body and protocol parameters, encoded, sorted and joined.
func OAuth1NormalizedParams(rawURL string, form []byte, protocol []OAuth1Param) (string, error) {
	st := getState()
	defer putState(st)
	if _, err := collect(st, rawURL, form, protocol); err != nil {
		return "", err
	}
	st.base = st.appendNormalized(st.base[:0], false)
	return string(st.base), nil
}

// OAuth1BaseStringURI returns the base string URI (§3.4.1.2) of a URL: scheme and host in lower
// case, the default port dropped, the path as sent, no query or fragment.
func OAuth1BaseStringURI(rawURL string) (string, error) {
	u, err := parseRequestURL(rawURL)
	if err != nil {
		return "", err
	}
	return string(appendBaseURI(nil, &u, false)), nil
}
