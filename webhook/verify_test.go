package webhook

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"
)

func hmacHex(key, msg string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

func hmacB64(key []byte, msg string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func secrets(s ...string) *Keys {
	k := &Keys{}
	for _, x := range s {
		k.Secrets = append(k.Secrets, []byte(x))
	}
	return k
}

// TestSlackDocumentedExample reproduces the example of
// https://api.slack.com/authentication/verifying-requests-from-slack.
func TestSlackDocumentedExample(t *testing.T) {
	const body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
	const sig = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
	r := &Request{Body: []byte(body), Header: hdr("X-Slack-Signature", sig, "X-Slack-Request-Timestamp", "1531420618",
		"Content-Type", "application/x-www-form-urlencoded")}
	now := time.Unix(1531420618+10, 0)
	k := secrets("8f742231b10e8888abcd99yyyzzz85a5")
	ev, err := Verify("slack", r, k, now, DefaultTolerance)
	if err != nil {
		t.Fatalf("Verify(slack documented example) = %v; want nil", err)
	}
	if ev.Type() != "slash_command" {
		t.Errorf("Type() = %q; want slash_command", ev.Type())
	}
	if _, err := Verify("slack", r, k, now.Add(10*time.Minute), DefaultTolerance); !errors.Is(err, ErrStale) {
		t.Errorf("Verify(stale) = %v; want ErrStale", err)
	}
	r.Body = []byte(body + "x")
	if _, err := Verify("slack", r, k, now, DefaultTolerance); !errors.Is(err, ErrSignature) {
		t.Errorf("Verify(tampered) = %v; want ErrSignature", err)
	}
}

// TestTwilioDocumentedExample reproduces twilio-php's documented example (auth token 12345,
// https://mycompany.com/myapp.php?foo=1&bar=2 and five parameters): the signature those docs
// give, RSOYDt4T1cUTdK1PDd93/VVr8B8=, is what the algorithm yields.
func TestTwilioDocumentedExample(t *testing.T) {
	form := url.Values{"CallSid": {"CA1234567890ABCDE"}, "Caller": {"+14158675309"}, "Digits": {"1234"},
		"From": {"+14158675309"}, "To": {"+18005551212"}}
	r := &Request{URL: "https://mycompany.com/myapp.php?foo=1&bar=2", Body: []byte(form.Encode()),
		Header: hdr("X-Twilio-Signature", "RSOYDt4T1cUTdK1PDd93/VVr8B8=", "Content-Type", "application/x-www-form-urlencoded")}
	if _, err := Verify("twilio", r, secrets("12345"), time.Now(), DefaultTolerance); err != nil {
		t.Fatalf("Verify(twilio documented example) = %v; want nil", err)
	}
	// The value in older Twilio docs belongs to other inputs; it must not verify these.
	r.Header.Set("X-Twilio-Signature", "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
	if _, err := Verify("twilio", r, secrets("12345"), time.Now(), DefaultTolerance); !errors.Is(err, ErrSignature) {
		t.Errorf("Verify(other signature) = %v; want ErrSignature", err)
	}
	// JSON body: the URL alone is signed, and bodySHA256 binds the body.
	body := `{"a": 1}`
	sum := sha256.Sum256([]byte(body))
	u := "https://mycompany.com/hook?bodySHA256=" + hex.EncodeToString(sum[:])
	m := hmac.New(sha1.New, []byte("12345"))
	m.Write([]byte(u))
	jr := &Request{URL: u, Body: []byte(body), Header: hdr("X-Twilio-Signature", base64.StdEncoding.EncodeToString(m.Sum(nil)),
		"Content-Type", "application/json")}
	if _, err := Verify("twilio", jr, secrets("12345"), time.Now(), DefaultTolerance); err != nil {
		t.Errorf("Verify(twilio JSON) = %v; want nil", err)
	}
	jr.Body = []byte(`{"a": 2}`)
	if _, err := Verify("twilio", jr, secrets("12345"), time.Now(), DefaultTolerance); !errors.Is(err, ErrSignature) {
		t.Errorf("Verify(twilio JSON tampered) = %v; want ErrSignature", err)
	}
}

// TestStandardWebhooksVector is the test vector of the Standard Webhooks reference libraries.
func TestStandardWebhooksVector(t *testing.T) {
	r := &Request{Body: []byte(`{"test": 2432232314}`), Header: hdr("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek",
		"webhook-timestamp", "1614265330", "webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")}
	ev, err := Verify("standard-webhooks", r, secrets("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), time.Unix(1614265330, 0), DefaultTolerance)
	if err != nil || ev.DedupKey != "msg_p5jXN8AQM9LWM0D4loKWxJek" {
		t.Fatalf("Verify(standard-webhooks vector) = %+v, %v; want the message id, nil", ev, err)
	}
}

// TestSchemes runs every scheme through a valid request, a rotated secret, a tampered body, a
// stale timestamp where the scheme has one, and a body with unusual whitespace that must verify
// byte for byte.
func TestSchemes(t *testing.T) {
	now := time.Unix(1_900_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	staleTS := strconv.FormatInt(now.Add(-301*time.Second).Unix(), 10)
	// Unusual whitespace: tabs, CRLF, spaces before colons, a trailing newline. Re-serialising
	// this JSON would change the bytes and break the signature.
	body := "{\r\n\t\"id\" : \"evt_1\",\n  \"type\":\"charge.succeeded\" ,\"object\":\"page\",\"entry\":[{\"changes\":[{\"field\":\"feed\"}]}]  }\n"
	const old, cur = "old-secret", "new-secret"

	sgKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&sgKey.PublicKey)
	sgPub, err := ParsePublicKeys(base64.StdEncoding.EncodeToString(der))
	if err != nil {
		t.Fatal(err)
	}
	sendgridBody := "[{\"email\":\"a@example.com\",\"event\":\"delivered\"} ,\n {\"event\":\"open\"}]\r\n"
	sgSign := func(ts, body string) string {
		sum := sha256.Sum256([]byte(ts + body))
		sig, _ := ecdsa.SignASN1(rand.Reader, sgKey, sum[:])
		return base64.StdEncoding.EncodeToString(sig)
	}
	stdKey := make([]byte, 24)
	rand.Read(stdKey)
	stdSecret := "whsec_" + base64.StdEncoding.EncodeToString(stdKey)

	type sign func(secret, body, ts string) http.Header
	for _, c := range []struct {
		scheme    string
		sign      sign
		body      string
		stale     bool // the scheme has a timestamp
		wantType  string
		secretFor func(string) string
	}{
		{"stripe", func(s, b, ts string) http.Header {
			return hdr("Stripe-Signature", "t="+ts+",v1="+hmacHex(s, ts+"."+b)+",v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39")
		}, body, true, "charge.succeeded", nil},
		{"github", func(s, b, _ string) http.Header {
			return hdr("X-Hub-Signature-256", "sha256="+hmacHex(s, b), "X-GitHub-Event", "push", "X-GitHub-Delivery", "d-1")
		}, body, false, "push", nil},
		{"hmac-sha256", func(s, b, _ string) http.Header { return hdr("X-Hub-Signature-256", "sha256="+hmacHex(s, b)) },
			body, false, "charge.succeeded", nil},
		{"meta", func(s, b, _ string) http.Header { return hdr("X-Hub-Signature-256", "sha256="+hmacHex(s, b)) },
			body, false, "page.feed", nil},
		{"shopify", func(s, b, _ string) http.Header {
			return hdr("X-Shopify-Hmac-Sha256", hmacB64([]byte(s), b), "X-Shopify-Topic", "orders/create", "X-Shopify-Webhook-Id", "w1")
		}, body, false, "orders/create", nil},
		{"slack", func(s, b, ts string) http.Header {
			return hdr("X-Slack-Signature", "v0="+hmacHex(s, "v0:"+ts+":"+b), "X-Slack-Request-Timestamp", ts)
		}, "{\"type\":\"event_callback\",\t\"event_id\":\"Ev1\", \"event\" : {\"type\":\"app_mention\"}}\n", true, "app_mention", nil},
		{"standard-webhooks", func(s, b, ts string) http.Header {
			return hdr("webhook-id", "msg_1", "webhook-timestamp", ts,
				"webhook-signature", "v2,abc v1,"+hmacB64(standardKey([]byte(s)), "msg_1."+ts+"."+b))
		}, body, true, "charge.succeeded", func(s string) string { return stdSecret + s[:0] }},
		{"twilio", func(s, b, _ string) http.Header {
			f, _ := url.ParseQuery(b)
			m := hmac.New(sha1.New, []byte(s))
			m.Write(TwilioSignatureBase("https://hooks.example.com/webhooks/sms/x", f))
			return hdr("X-Twilio-Signature", base64.StdEncoding.EncodeToString(m.Sum(nil)),
				"Content-Type", "application/x-www-form-urlencoded")
		}, "MessageSid=SM1&Body=hello+%20world&MessageStatus=delivered&To=%2B1555", false, "delivered", nil},
	} {
		t.Run(c.scheme, func(t *testing.T) {
			// Retention deletes events of the timestamped schemes and keeps tombstones of the others.
			if c.stale != timestamped[c.scheme] {
				t.Errorf("timestamped[%q] = %v; the verifier checks a timestamp: %v", c.scheme, timestamped[c.scheme], c.stale)
			}
			secretOf := func(s string) string {
				if c.secretFor != nil {
					if s == old {
						return "whsec_" + base64.StdEncoding.EncodeToString([]byte("an-older-standard-key!!"))
					}
					return stdSecret
				}
				return s
			}
			keys := secrets(secretOf(old), secretOf(cur)) // mid-rotation: both verify
			req := func(secret, body, ts string) *Request {
				return &Request{Header: c.sign(secretOf(secret), body, ts), Body: []byte(body), URL: "https://hooks.example.com/webhooks/sms/x"}
			}
			for _, s := range []string{old, cur} {
				ev, err := Verify(c.scheme, req(s, c.body, ts), keys, now, DefaultTolerance)
				if err != nil {
					t.Fatalf("Verify(signed with %s) = %v; want nil", s, err)
				}
				if ev.Type() != c.wantType || ev.DedupKey == "" {
					t.Errorf("Verify() = %+v; want type %q and a dedup key", ev, c.wantType)
				}
			}
			if _, err := Verify(c.scheme, req(cur, c.body, ts), secrets(secretOf(old)), now, DefaultTolerance); !errors.Is(err, ErrSignature) {
				t.Errorf("Verify(rotated away) = %v; want ErrSignature", err)
			}
			r := req(cur, c.body, ts)
			r.Body = append([]byte(nil), r.Body...)
			r.Body[len(r.Body)/2] ^= 0x01
			if _, err := Verify(c.scheme, r, keys, now, DefaultTolerance); !errors.Is(err, ErrSignature) && !errors.Is(err, ErrMalformed) {
				t.Errorf("Verify(tampered body) = %v; want ErrSignature", err)
			}
			if c.stale {
				if _, err := Verify(c.scheme, req(cur, c.body, staleTS), keys, now, DefaultTolerance); !errors.Is(err, ErrStale) {
					t.Errorf("Verify(stale timestamp) = %v; want ErrStale", err)
				}
			}
			if _, err := Verify(c.scheme, &Request{Header: http.Header{}, Body: []byte(c.body)}, keys, now, DefaultTolerance); !errors.Is(err, ErrSignature) {
				t.Errorf("Verify(no signature) = %v; want ErrSignature", err)
			}
		})
	}

	t.Run("sendgrid", func(t *testing.T) {
		k := &Keys{PublicKeys: sgPub}
		r := &Request{Body: []byte(sendgridBody), Header: hdr("X-Twilio-Email-Event-Webhook-Signature", sgSign(ts, sendgridBody),
			"X-Twilio-Email-Event-Webhook-Timestamp", ts)}
		ev, err := Verify("sendgrid", r, k, now, DefaultTolerance)
		if err != nil || len(ev.Types) != 2 || ev.Types[0] != "delivered" {
			t.Fatalf("Verify(sendgrid) = %+v, %v; want types delivered, open", ev, err)
		}
		other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if _, err := Verify("sendgrid", r, &Keys{PublicKeys: []*ecdsa.PublicKey{&other.PublicKey}}, now, DefaultTolerance); !errors.Is(err, ErrSignature) {
			t.Errorf("Verify(other key) = %v; want ErrSignature", err)
		}
		if _, err := Verify("sendgrid", r, &Keys{PublicKeys: []*ecdsa.PublicKey{&other.PublicKey, sgPub[0]}}, now, DefaultTolerance); err != nil {
			t.Errorf("Verify(rotated keys) = %v; want nil", err)
		}
		tr := &Request{Body: []byte(sendgridBody[1:]), Header: r.Header}
		if _, err := Verify("sendgrid", tr, k, now, DefaultTolerance); !errors.Is(err, ErrSignature) {
			t.Errorf("Verify(tampered) = %v; want ErrSignature", err)
		}
		sr := &Request{Body: []byte(sendgridBody), Header: hdr("X-Twilio-Email-Event-Webhook-Signature", sgSign(staleTS, sendgridBody),
			"X-Twilio-Email-Event-Webhook-Timestamp", staleTS)}
		if _, err := Verify("sendgrid", sr, k, now, DefaultTolerance); !errors.Is(err, ErrStale) {
			t.Errorf("Verify(stale) = %v; want ErrStale", err)
		}
		if !timestamped["sendgrid"] {
			t.Error(`timestamped["sendgrid"] = false; its verifier checks a timestamp`)
		}
	})
}

func TestMetaChallenge(t *testing.T) {
	q := url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {"tok"}, "hub.challenge": {"1158201444"}}
	if c, err := MetaChallenge(q, []byte("tok")); err != nil || string(c) != "1158201444" {
		t.Errorf("MetaChallenge() = %q, %v; want the challenge", c, err)
	}
	if _, err := MetaChallenge(q, []byte("other")); !errors.Is(err, ErrSignature) {
		t.Errorf("MetaChallenge(wrong token) = %v; want ErrSignature", err)
	}
	if _, err := MetaChallenge(q, nil); !errors.Is(err, ErrSignature) {
		t.Errorf("MetaChallenge(no token configured) = %v; want ErrSignature", err)
	}
	q.Del("hub.challenge")
	if _, err := MetaChallenge(q, []byte("tok")); !errors.Is(err, ErrMalformed) {
		t.Errorf("MetaChallenge(no challenge) = %v; want ErrMalformed", err)
	}
}

func TestWanted(t *testing.T) {
	for _, c := range []struct {
		desc   string
		events []string
		types  []string
		want   bool
	}{
		{"empty list takes all", nil, []string{"x"}, true},
		{"exact", []string{"push"}, []string{"push"}, true},
		{"other", []string{"push"}, []string{"issues"}, false},
		{"prefix to a dot", []string{"charge"}, []string{"charge.succeeded"}, true},
		{"prefix not at a dot", []string{"charge"}, []string{"charges.x"}, false},
		{"star", []string{"*"}, nil, true},
		{"untyped with a list", []string{"push"}, nil, false},
		{"any of a batch", []string{"open"}, []string{"delivered", "open"}, true},
	} {
		if got := Wanted(c.events, c.types); got != c.want {
			t.Errorf("%s: Wanted(%v, %v) = %v; want %v", c.desc, c.events, c.types, got, c.want)
		}
	}
}
