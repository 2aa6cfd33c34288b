package webhook

import (
	"errors"
	"net/url"
	"testing"
)

// The signature-header parsers see untrusted bytes: they must never panic, and must either
// parse or say ErrMalformed.

func FuzzParseStripeSignature(f *testing.F) {
	for _, s := range []string{"t=1492774577,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd,v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39",
		"t=1,v1=", "", ",,,", "t=-1,v1=00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		s, err := ParseStripeSignature(h)
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("ParseStripeSignature(%q) = %v; want ErrMalformed", h, err)
		}
		if err == nil && (s.Timestamp <= 0 || len(s.V1) == 0) {
			t.Fatalf("ParseStripeSignature(%q) = %+v without a timestamp or v1", h, s)
		}
	})
}

func FuzzParseHubSignature(f *testing.F) {
	for _, s := range []string{"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", "sha1=abc", "sha256=", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		if b, err := ParseHubSignature(h); err == nil && len(b) != 32 || err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("ParseHubSignature(%q) = %x, %v", h, b, err)
		}
		if b, err := ParseSlackSignature(h); err == nil && len(b) != 32 || err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("ParseSlackSignature(%q) = %x, %v", h, b, err)
		}
	})
}

func FuzzParseStandardSignatures(f *testing.F) {
	for _, s := range []string{"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", "v1a,abc v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", "v1,", " "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		sigs, err := ParseStandardSignatures(h)
		if err != nil && !errors.Is(err, ErrMalformed) || err == nil && len(sigs) == 0 {
			t.Fatalf("ParseStandardSignatures(%q) = %d, %v", h, len(sigs), err)
		}
	})
}

func FuzzParseBase64MAC(f *testing.F) {
	for _, s := range []string{"RSOYDt4T1cUTdK1PDd93/VVr8B8=", "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", "MEUCIQ==", "%%%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		for _, n := range []int{20, 32} {
			if b, err := ParseBase64MAC(h, n); err == nil && len(b) != n || err != nil && !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseBase64MAC(%q, %d) = %x, %v", h, n, b, err)
			}
		}
		if _, err := ParseSendGridSignature(h); err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("ParseSendGridSignature(%q) = %v", h, err)
		}
	})
}

func FuzzMetaChallenge(f *testing.F) {
	for _, s := range []string{"hub.mode=subscribe&hub.verify_token=tok&hub.challenge=1158201444", "hub.mode=x", "%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		c, err := MetaChallenge(q, []byte("tok"))
		if err == nil && (q.Get("hub.verify_token") != "tok" || string(c) != q.Get("hub.challenge")) {
			t.Fatalf("MetaChallenge(%q) = %q without the right token", raw, c)
		}
	})
}
