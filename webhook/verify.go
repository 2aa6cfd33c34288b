package webhook

import (
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Errors of verification. The listener maps each to a status in one place (status.go); none of
// them reaches the provider beyond "invalid signature" or "malformed request".
var (
	// ErrSignature: no configured secret produced the signature sent (or it is missing).
	ErrSignature = errors.New("webhook: invalid signature")
	// ErrStale: the signed timestamp is outside the tolerance window.
	ErrStale = errors.New("webhook: timestamp outside the tolerance window")
	// ErrMalformed: a signature header, timestamp or body that cannot be parsed.
	ErrMalformed = errors.New("webhook: malformed request")
)

// Request is what a scheme verifies: the headers and the exact bytes received.
type Request struct {
	Header http.Header
	Body   []byte
	// URL is the public URL the provider called (webhook.url); twilio signs it.
	URL string
}

// Keys are an API's verification keys: several during a rotation, any of which verifies.
type Keys struct {
	Secrets    [][]byte
	PublicKeys []*ecdsa.PublicKey // sendgrid
}

// Event is what verification learned of a request.
type Event struct {
	// DedupKey identifies the event at its provider (its id, or a hash of signature and timestamp).
	DedupKey string
	// Types are the event's types for filtering by webhook.events (several for a batch).
	Types []string
	// Challenge, when set, is an endpoint-verification handshake to answer with this body; it
	// is not an event and is not delivered.
	Challenge []byte
}

// Type is the event's first type, or "".
func (e *Event) Type() string {
	if len(e.Types) == 0 {
		return ""
	}
	return e.Types[0]
}

// verifier checks one scheme. tol is the timestamp tolerance; now the clock.
type verifier func(r *Request, k *Keys, now time.Time, tol time.Duration) (Event, error)

// schemes are the verification schemes by webhook.scheme.
var schemes = map[string]verifier{
	"stripe":            verifyStripe,
	"meta":              verifyMeta,
	"twilio":            verifyTwilio,
	"slack":             verifySlack,
	"github":            verifyGitHub,
	"hmac-sha256":       verifyHMACSHA256,
	"shopify":           verifyShopify,
	"standard-webhooks": verifyStandard,
	"sendgrid":          verifySendGrid,
}

// timestamped are the schemes whose verifier always checks a signed timestamp against the
// tolerance (ErrStale outside it). Retention relies on this list: an event of one of these
// schemes can be deleted once it is older than any tolerance window, since a replay of it would
// be stale; an event of any other scheme (meta, twilio, github, hmac-sha256, shopify, and any
// scheme added later until it is listed here) keeps its row, the only replay guard, as a
// tombstone. TestSchemes checks this list against what the verifiers do.
var timestamped = map[string]bool{
	"stripe":            true,
	"slack":             true,
	"standard-webhooks": true,
	"sendgrid":          true,
}

// TimestampedSchemes lists the schemes that reject a signed timestamp outside the tolerance.
func TimestampedSchemes() []string {
	out := make([]string, 0, len(timestamped))
	for k := range timestamped {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Schemes lists the supported scheme names.
func Schemes() []string {
	out := make([]string, 0, len(schemes))
	for k := range schemes {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Verify checks r by the named scheme.
func Verify(scheme string, r *Request, k *Keys, now time.Time, tol time.Duration) (Event, error) {
	v, ok := schemes[scheme]
	if !ok {
		return Event{}, fmt.Errorf("webhook: unknown scheme %q", scheme)
	}
	return v(r, k, now, tol)
}

// ParseSecrets splits the sealed webhook secret into its secrets: one per line (several during a
// rotation); blank lines and surrounding spaces are ignored.
func ParseSecrets(plain []byte) [][]byte {
	var out [][]byte
	for _, line := range strings.Split(string(plain), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, []byte(line))
		}
	}
	return out
}

// ParsePublicKeys reads webhook.public_key: one or more ECDSA P-256 public keys, one per line as
// base64 DER (how SendGrid shows it), or PEM blocks.
func ParsePublicKeys(s string) ([]*ecdsa.PublicKey, error) {
	var ders [][]byte
	rest := []byte(s)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		ders = append(ders, b.Bytes)
	}
	if len(ders) == 0 {
		for _, line := range strings.Split(s, "\n") {
			if line = strings.TrimSpace(line); line == "" {
				continue
			}
			der, err := base64.StdEncoding.DecodeString(line)
			if err != nil {
				return nil, fmt.Errorf("webhook: public key is neither PEM nor base64 DER")
			}
			ders = append(ders, der)
		}
	}
	var out []*ecdsa.PublicKey
	for _, der := range ders {
		pk, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			return nil, fmt.Errorf("webhook: public key: %w", err)
		}
		ek, ok := pk.(*ecdsa.PublicKey)
		if !ok {
			return nil, errors.New("webhook: public key is not an ECDSA key")
		}
		out = append(out, ek)
	}
	if len(out) == 0 {
		return nil, errors.New("webhook: no public key")
	}
	return out, nil
}

// anyMAC reports whether one of the sigs equals the MAC of msg under one of the secrets. Every
// pair is compared in constant time.
func anyMAC(newHash func() hash.Hash, secrets [][]byte, sigs [][]byte, msg ...[]byte) bool {
	ok := 0
	for _, s := range secrets {
		m := hmac.New(newHash, s)
		for _, p := range msg {
			m.Write(p)
		}
		sum := m.Sum(nil)
		for _, sig := range sigs {
			ok |= subtle.ConstantTimeCompare(sum, sig)
		}
	}
	return ok == 1
}

// checkTime enforces the tolerance on a unix-seconds timestamp.
func checkTime(ts int64, now time.Time, tol time.Duration) error {
	d := now.Sub(time.Unix(ts, 0))
	if d < 0 {
		d = -d
	}
	if d > tol {
		return ErrStale
	}
	return nil
}

func parseUnix(s string) (int64, error) {
	if s == "" || len(s) > 12 {
		return 0, ErrMalformed
	}
	ts, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ts <= 0 {
		return 0, ErrMalformed
	}
	return ts, nil
}

// hashKey is the dedup key of a scheme without an event id: what the provider signed.
func hashKey(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// jsonFields reads the top-level "id" and "type" of a JSON object body. A body that is not a
// JSON object is malformed for the schemes that send JSON.
func jsonFields(body []byte) (id, typ string, err error) {
	var v struct {
		ID   any    `json:"id"`
		Type string `json:"type"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return "", "", ErrMalformed
	}
	switch x := v.ID.(type) {
	case string:
		id = x
	case float64:
		id = strconv.FormatFloat(x, 'f', -1, 64)
	}
	return id, v.Type, nil
}

// ---- stripe ----

// StripeSignature is a parsed Stripe-Signature header: t=…,v1=…[,v1=…][,v0=…].
type StripeSignature struct {
	Timestamp int64
	V1        [][]byte
}

// ParseStripeSignature parses a Stripe-Signature header. Unknown schemes (v0) are ignored, as
// Stripe documents; a header without t or without a v1 is malformed.
func ParseStripeSignature(h string) (StripeSignature, error) {
	var s StripeSignature
	if len(h) > 4096 {
		return s, ErrMalformed
	}
	for _, item := range strings.Split(h, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			return StripeSignature{}, ErrMalformed
		}
		switch k {
		case "t":
			ts, err := parseUnix(v)
			if err != nil || s.Timestamp != 0 {
				return StripeSignature{}, ErrMalformed
			}
			s.Timestamp = ts
		case "v1":
			b, err := hex.DecodeString(v)
			if err != nil || len(b) != sha256.Size {
				return StripeSignature{}, ErrMalformed
			}
			s.V1 = append(s.V1, b)
		}
	}
	if s.Timestamp == 0 || len(s.V1) == 0 {
		return StripeSignature{}, ErrMalformed
	}
	return s, nil
}

// verifyStripe: HMAC-SHA256 of "t.body", hex, in v1; the timestamp within tolerance.
// https://docs.stripe.com/webhooks#verify-manually
func verifyStripe(r *Request, k *Keys, now time.Time, tol time.Duration) (Event, error) {
	h := r.Header.Get("Stripe-Signature")
	if h == "" {
		return Event{}, ErrSignature
	}
	sig, err := ParseStripeSignature(h)
	if err != nil {
		return Event{}, err
	}
	ts := strconv.FormatInt(sig.Timestamp, 10)
	if !anyMAC(sha256.New, k.Secrets, sig.V1, []byte(ts), []byte("."), r.Body) {
		return Event{}, ErrSignature
	}
	if err := checkTime(sig.Timestamp, now, tol); err != nil {
		return Event{}, err
	}
	id, typ, err := jsonFields(r.Body)
	if err != nil {
		return Event{}, err
	}
	if id == "" {
		id = hashKey(h)
	}
	return Event{DedupKey: id, Types: nonEmpty(typ)}, nil
}

// ---- X-Hub-Signature-256 (meta, github, hmac-sha256) ----

// ParseHubSignature parses "sha256=<hex>" (X-Hub-Signature-256).
func ParseHubSignature(h string) ([]byte, error) { return parsePrefixedSHA256(h, "sha256=") }

// parsePrefixedSHA256 parses "<prefix><hex of a SHA-256 MAC>".
func parsePrefixedSHA256(h, prefix string) ([]byte, error) {
	v, ok := strings.CutPrefix(strings.TrimSpace(h), prefix)
	if !ok {
		return nil, ErrMalformed
	}
	b, err := hex.DecodeString(v)
	if err != nil || len(b) != sha256.Size {
		return nil, ErrMalformed
	}
	return b, nil
}

func verifyHub(r *Request, k *Keys) ([]byte, error) {
	h := r.Header.Get("X-Hub-Signature-256")
	if h == "" {
		return nil, ErrSignature
	}
	sig, err := ParseHubSignature(h)
	if err != nil {
		return nil, err
	}
	if !anyMAC(sha256.New, k.Secrets, [][]byte{sig}, r.Body) {
		return nil, ErrSignature
	}
	return sig, nil
}

// verifyMeta: Facebook/Instagram/WhatsApp, X-Hub-Signature-256 over the body with the app
// secret. No timestamp, no event id: the dedup key is the signature. Types are "object" and
// "object.field" of each change.
func verifyMeta(r *Request, k *Keys, _ time.Time, _ time.Duration) (Event, error) {
	sig, err := verifyHub(r, k)
	if err != nil {
		return Event{}, err
	}
	var v struct {
		Object string `json:"object"`
		Entry  []struct {
			Changes []struct {
				Field string `json:"field"`
			} `json:"changes"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(r.Body, &v); err != nil {
		return Event{}, ErrMalformed
	}
	ev := Event{DedupKey: hashKey(hex.EncodeToString(sig))}
	seen := map[string]bool{}
	for _, e := range v.Entry {
		for _, c := range e.Changes {
			if t := v.Object + "." + c.Field; c.Field != "" && !seen[t] {
				seen[t] = true
				ev.Types = append(ev.Types, t)
			}
		}
	}
	if len(ev.Types) == 0 && v.Object != "" {
		ev.Types = []string{v.Object}
	}
	return ev, nil
}

// MetaChallenge answers Meta's subscription check (GET ?hub.mode=subscribe&hub.verify_token=…
// &hub.challenge=…): the challenge when the token is the configured one.
func MetaChallenge(q url.Values, verifyToken []byte) ([]byte, error) {
	if q.Get("hub.mode") != "subscribe" || q.Get("hub.challenge") == "" || len(q.Get("hub.challenge")) > 1024 {
		return nil, ErrMalformed
	}
	if len(verifyToken) == 0 || subtle.ConstantTimeCompare([]byte(q.Get("hub.verify_token")), verifyToken) != 1 {
		return nil, ErrSignature
	}
	return []byte(q.Get("hub.challenge")), nil
}

// verifyGitHub: X-Hub-Signature-256 over the body; X-GitHub-Event is the type and
// X-GitHub-Delivery the id.
func verifyGitHub(r *Request, k *Keys, _ time.Time, _ time.Duration) (Event, error) {
	sig, err := verifyHub(r, k)
	if err != nil {
		return Event{}, err
	}
	id := r.Header.Get("X-GitHub-Delivery")
	if id == "" {
		id = hashKey(hex.EncodeToString(sig))
	}
	return Event{DedupKey: id, Types: nonEmpty(r.Header.Get("X-GitHub-Event"))}, nil
}

// verifyHMACSHA256 is the generic X-Hub-Signature-256 scheme; a JSON body's "id" and "type",
// when present, are the id and type.
func verifyHMACSHA256(r *Request, k *Keys, _ time.Time, _ time.Duration) (Event, error) {
	sig, err := verifyHub(r, k)
	if err != nil {
		return Event{}, err
	}
	id, typ, _ := jsonFields(r.Body) // any body is accepted
	if id == "" {
		id = hashKey(hex.EncodeToString(sig))
	}
	return Event{DedupKey: id, Types: nonEmpty(typ)}, nil
}

// ---- shopify ----

// ParseBase64MAC decodes a base64 MAC of size n (X-Shopify-Hmac-Sha256, X-Twilio-Signature).
func ParseBase64MAC(h string, n int) ([]byte, error) {
	h = strings.TrimSpace(h)
	if len(h) > 4*n {
		return nil, ErrMalformed
	}
	b, err := base64.StdEncoding.DecodeString(h)
	if err != nil || len(b) != n {
		return nil, ErrMalformed
	}
	return b, nil
}

// verifyShopify: base64 HMAC-SHA256 of the body in X-Shopify-Hmac-Sha256; X-Shopify-Topic is the
// type and X-Shopify-Webhook-Id the id.
func verifyShopify(r *Request, k *Keys, _ time.Time, _ time.Duration) (Event, error) {
	h := r.Header.Get("X-Shopify-Hmac-Sha256")
	if h == "" {
		return Event{}, ErrSignature
	}
	sig, err := ParseBase64MAC(h, sha256.Size)
	if err != nil {
		return Event{}, err
	}
	if !anyMAC(sha256.New, k.Secrets, [][]byte{sig}, r.Body) {
		return Event{}, ErrSignature
	}
	id := r.Header.Get("X-Shopify-Webhook-Id")
	if id == "" {
		id = hashKey(h)
	}
	return Event{DedupKey: id, Types: nonEmpty(r.Header.Get("X-Shopify-Topic"))}, nil
}

// ---- slack ----

// ParseSlackSignature parses "v0=<hex>" (X-Slack-Signature).
func ParseSlackSignature(h string) ([]byte, error) { return parsePrefixedSHA256(h, "v0=") }

// verifySlack: HMAC-SHA256 of "v0:timestamp:body", hex, in X-Slack-Signature, the timestamp in
// X-Slack-Request-Timestamp. A JSON url_verification is answered with its challenge.
// https://api.slack.com/authentication/verifying-requests-from-slack
func verifySlack(r *Request, k *Keys, now time.Time, tol time.Duration) (Event, error) {
	h, tsh := r.Header.Get("X-Slack-Signature"), r.Header.Get("X-Slack-Request-Timestamp")
	if h == "" {
		return Event{}, ErrSignature
	}
	sig, err := ParseSlackSignature(h)
	if err != nil {
		return Event{}, err
	}
	ts, err := parseUnix(tsh)
	if err != nil {
		return Event{}, err
	}
	if !anyMAC(sha256.New, k.Secrets, [][]byte{sig}, []byte("v0:"+tsh+":"), r.Body) {
		return Event{}, ErrSignature
	}
	if err := checkTime(ts, now, tol); err != nil {
		return Event{}, err
	}
	ev := Event{DedupKey: hashKey(h, tsh)}
	if isForm(r.Header) {
		// Slash commands and interactivity: form bodies.
		f, err := url.ParseQuery(string(r.Body))
		if err != nil {
			return Event{}, ErrMalformed
		}
		switch {
		case f.Get("command") != "":
			ev.Types = []string{"slash_command"}
		case f.Get("payload") != "":
			_, typ, _ := jsonFields([]byte(f.Get("payload")))
			ev.Types = nonEmpty(typ)
		}
		return ev, nil
	}
	var v struct {
		Type      string `json:"type"`
		Challenge string `json:"challenge"`
		EventID   string `json:"event_id"`
		Event     struct {
			Type string `json:"type"`
		} `json:"event"`
	}
	if err := json.Unmarshal(r.Body, &v); err != nil {
		return Event{}, ErrMalformed
	}
	if v.Type == "url_verification" {
		if v.Challenge == "" {
			return Event{}, ErrMalformed
		}
		ev.Challenge = []byte(v.Challenge)
		return ev, nil
	}
	if v.EventID != "" {
		ev.DedupKey = v.EventID // Slack's retries carry the same event_id
	}
	if v.Event.Type != "" {
		ev.Types = []string{v.Event.Type}
	} else {
		ev.Types = nonEmpty(v.Type)
	}
	return ev, nil
}

// ---- twilio ----

// TwilioSignatureBase is what Twilio signs: the URL, then for a form POST every parameter name
// followed by its value, sorted by name (values of one name in the order received).
// https://www.twilio.com/docs/usage/webhooks/webhooks-security
func TwilioSignatureBase(u string, form url.Values) []byte {
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b := []byte(u)
	for _, k := range keys {
		for _, v := range form[k] {
			b = append(b, k...)
			b = append(b, v...)
		}
	}
	return b
}

// verifyTwilio: base64 HMAC-SHA1 with the auth token of the public URL (webhook.url) plus the
// sorted POST parameters, in X-Twilio-Signature. A JSON body is signed by URL alone and bound by
// the URL's bodySHA256 parameter. No timestamp: I-Twilio-Idempotency-Token is the id when sent.
func verifyTwilio(r *Request, k *Keys, _ time.Time, _ time.Duration) (Event, error) {
	h := r.Header.Get("X-Twilio-Signature")
	if h == "" {
		return Event{}, ErrSignature
	}
	sig, err := ParseBase64MAC(h, sha1.Size)
	if err != nil {
		return Event{}, err
	}
	var form url.Values
	if isForm(r.Header) {
		if form, err = url.ParseQuery(string(r.Body)); err != nil {
			return Event{}, ErrMalformed
		}
	}
	if !anyMAC(sha1.New, k.Secrets, [][]byte{sig}, TwilioSignatureBase(r.URL, form)) {
		return Event{}, ErrSignature
	}
	if form == nil {
		pu, err := url.Parse(r.URL)
		if err != nil {
			return Event{}, ErrSignature
		}
		want := pu.Query().Get("bodySHA256")
		sum := sha256.Sum256(r.Body)
		if subtle.ConstantTimeCompare([]byte(want), []byte(hex.EncodeToString(sum[:]))) != 1 {
			return Event{}, ErrSignature
		}
	}
	id := r.Header.Get("I-Twilio-Idempotency-Token")
	if id == "" {
		id = hashKey(h, string(r.Body))
	}
	var typ string
	for _, name := range []string{"EventType", "MessageStatus", "CallStatus", "SmsStatus"} {
		if typ = form.Get(name); typ != "" {
			break
		}
	}
	return Event{DedupKey: id, Types: nonEmpty(typ)}, nil
}

// ---- standard-webhooks ----

// ParseStandardSignatures parses webhook-signature: space-separated "v1,<base64>" entries;
// other versions are ignored. At least one v1 is required.
func ParseStandardSignatures(h string) ([][]byte, error) {
	if len(h) > 8192 {
		return nil, ErrMalformed
	}
	var out [][]byte
	for _, item := range strings.Fields(h) {
		ver, v, ok := strings.Cut(item, ",")
		if !ok {
			return nil, ErrMalformed
		}
		if ver != "v1" {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(b) != sha256.Size {
			return nil, ErrMalformed
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, ErrMalformed
	}
	return out, nil
}

// standardKey is the HMAC key of a Standard Webhooks secret: base64 after the whsec_ prefix.
func standardKey(secret []byte) []byte {
	s, ok := strings.CutPrefix(string(secret), "whsec_")
	if !ok {
		return secret
	}
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return secret
	}
	return k
}

// verifyStandard: https://www.standardwebhooks.com — base64 HMAC-SHA256 of "id.timestamp.body".
func verifyStandard(r *Request, k *Keys, now time.Time, tol time.Duration) (Event, error) {
	id, tsh, h := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature")
	if h == "" {
		return Event{}, ErrSignature
	}
	sigs, err := ParseStandardSignatures(h)
	if err != nil {
		return Event{}, err
	}
	ts, err := parseUnix(tsh)
	if err != nil || id == "" || len(id) > 256 {
		return Event{}, ErrMalformed
	}
	keys := make([][]byte, len(k.Secrets))
	for i, s := range k.Secrets {
		keys[i] = standardKey(s)
	}
	if !anyMAC(sha256.New, keys, sigs, []byte(id+"."+tsh+"."), r.Body) {
		return Event{}, ErrSignature
	}
	if err := checkTime(ts, now, tol); err != nil {
		return Event{}, err
	}
	_, typ, _ := jsonFields(r.Body)
	return Event{DedupKey: id, Types: nonEmpty(typ)}, nil
}

// ---- sendgrid ----

// ParseSendGridSignature decodes X-Twilio-Email-Event-Webhook-Signature: a base64 ASN.1 ECDSA
// signature.
func ParseSendGridSignature(h string) ([]byte, error) {
	h = strings.TrimSpace(h)
	if len(h) > 512 {
		return nil, ErrMalformed
	}
	b, err := base64.StdEncoding.DecodeString(h)
	if err != nil || len(b) < 8 {
		return nil, ErrMalformed
	}
	return b, nil
}

// verifySendGrid: ECDSA P-256 over SHA-256 of timestamp+body with the public key of the config
// (the signed event webhook). Types are the "event" of each event of the batch.
// https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features
func verifySendGrid(r *Request, k *Keys, now time.Time, tol time.Duration) (Event, error) {
	h := r.Header.Get("X-Twilio-Email-Event-Webhook-Signature")
	tsh := r.Header.Get("X-Twilio-Email-Event-Webhook-Timestamp")
	if h == "" {
		return Event{}, ErrSignature
	}
	sig, err := ParseSendGridSignature(h)
	if err != nil {
		return Event{}, err
	}
	ts, err := parseUnix(tsh)
	if err != nil {
		return Event{}, err
	}
	d := sha256.New()
	d.Write([]byte(tsh))
	d.Write(r.Body)
	sum := d.Sum(nil)
	ok := false
	for _, pk := range k.PublicKeys {
		ok = ecdsa.VerifyASN1(pk, sum, sig) || ok
	}
	if !ok {
		return Event{}, ErrSignature
	}
	if err := checkTime(ts, now, tol); err != nil {
		return Event{}, err
	}
	var batch []struct {
		Event string `json:"event"`
	}
	if err := json.Unmarshal(r.Body, &batch); err != nil {
		return Event{}, ErrMalformed
	}
	ev := Event{DedupKey: hashKey(h, tsh)}
	seen := map[string]bool{}
	for _, e := range batch {
		if e.Event != "" && !seen[e.Event] {
			seen[e.Event] = true
			ev.Types = append(ev.Types, e.Event)
		}
	}
	return ev, nil
}

func isForm(h http.Header) bool {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	return mt == "application/x-www-form-urlencoded"
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// Wanted reports whether an event of these types is delivered under webhook.events: every
// event when the list is empty; otherwise when an entry is "*", equals a type, or is a prefix of
// it up to a dot ("charge" takes "charge.succeeded", "page" takes "page.feed").
func Wanted(events, types []string) bool {
	if len(events) == 0 {
		return true
	}
	for _, e := range events {
		if e == "*" {
			return true
		}
		for _, t := range types {
			if t == e || strings.HasPrefix(t, e) && len(t) > len(e) && t[len(e)] == '.' {
				return true
			}
		}
	}
	return false
}
