package oauth1test

import (
	"crypto/tls"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestVerifierRFC5849 checks the verifier itself against the requests RFC 5849 §1.2 prints, as
// they would arrive, so that tests using it rest on the RFC rather than on package oauth.
func TestVerifierRFC5849(t *testing.T) {
	for _, tc := range []struct {
		desc, method, target, auth, tokenSecret string
		ts                                      int64
		https                                   bool
	}{
		{"temporary credentials", "POST", "/initiate", `OAuth realm="Photos",
   oauth_consumer_key="dpf43f3p2l4k3l03",
   oauth_signature_method="HMAC-SHA1",
   oauth_timestamp="137131200",
   oauth_nonce="wIjqoS",
   oauth_callback="http%3A%2F%2Fprinter.example.com%2Fready",
   oauth_signature="74KNZJeDHnMBp0EMJ9ZHt%2FXKycU%3D"`, "", 137131200, true},
		{"token credentials", "POST", "/token", `OAuth realm="Photos",
   oauth_consumer_key="dpf43f3p2l4k3l03",
   oauth_token="hh5s93j4hdidpola",
   oauth_signature_method="HMAC-SHA1",
   oauth_timestamp="137131201",
   oauth_nonce="walatlh",
   oauth_verifier="hfdp7dh39dks9884",
   oauth_signature="gKgrFCywp7rO0OXSjdot%2FIHF7IU%3D"`, "hdhd0244k9j7ao03", 137131201, true},
		{"protected resource", "GET", "/photos?file=vacation.jpg&size=original", `OAuth realm="Photos",
   oauth_consumer_key="dpf43f3p2l4k3l03",
   oauth_token="nnch734d00sl2jdk",
   oauth_signature_method="HMAC-SHA1",
   oauth_timestamp="137131202",
   oauth_nonce="chapoH",
   oauth_signature="MdpQcU8iPSUjWoN%2FUDMsK2sui9I%3D"`, "pfkkdhi9sl3r4s00", 137131202, false},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			s := &Server{opts: Options{ConsumerKey: "dpf43f3p2l4k3l03", ConsumerSecret: "kd94hf93k423kf44",
				Now: func() time.Time { return time.Unix(tc.ts, 0) }}, nonces: map[string]bool{}}
			r := httptest.NewRequest(tc.method, "http://photos.example.net"+tc.target, nil)
			r.Host, r.RequestURI = "photos.example.net", tc.target // as a server reads it: origin form
			r.TLS = nil
			if tc.https {
				r.TLS = &tls.ConnectionState{} // §1.2's first two requests go over HTTPS
			}
			r.Header.Set("Authorization", strings.ReplaceAll(tc.auth, "\n", ""))
			secret := func(string) (string, bool) { return tc.tokenSecret, true }
			if _, err := s.Verify(r, nil, secret); err != nil {
				t.Errorf("Verify(RFC 5849 §1.2 %s) = %v", tc.desc, err)
			}
			if _, err := s.Verify(r, nil, secret); err == nil || !strings.HasPrefix(err.Error(), "nonce_used") {
				t.Errorf("Verify() again = %v; want nonce_used", err)
			}
		})
	}
}

// TestImportsNothingOfExtapi: the verifier must stay independent of the signer it checks.
func TestImportsNothingOfExtapi(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "github.com/extapi/extapi/") && p != "github.com/extapi/extapi/oauth/oauth1test" {
			t.Errorf("oauth1test depends on %s; it must share no code with extapi", p)
		}
	}
}
