package oauth_test

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/extapi/extapi/oauth"
)

// fixed returns a signer whose nonce and clock are the given ones, as in the RFC's examples.
func fixed(realm, nonce string, ts int64, omitVersion bool) *oauth.OAuth1Signer {
	return &oauth.OAuth1Signer{
		Realm: realm, OmitVersion: omitVersion,
		Nonce: func() string { return nonce },
		Now:   func() time.Time { return time.Unix(ts, 0) },
	}
}

// header joins the parameters of an RFC example header the way Authorization writes them (the
// RFC folds them over lines; ", " is one of the separators §3.5.1 allows).
func header(params ...string) string { return "OAuth " + strings.Join(params, ", ") }

// TestRFC5849Section1_2 reproduces the three signed requests of RFC 5849 §1.2 exactly: the
// temporary credentials request, the token request and the protected resource request.
func TestRFC5849Section1_2(t *testing.T) {
	client := oauth.OAuth1Credentials{ConsumerKey: "dpf43f3p2l4k3l03", ConsumerSecret: "kd94hf93k423kf44"}
	for _, tc := range []struct {
		desc   string
		signer *oauth.OAuth1Signer
		method string
		url    string
		creds  oauth.OAuth1Credentials
		extra  []oauth.OAuth1Param
		want   string
	}{
		{
			desc:   "temporary credentials",
			signer: fixed("Photos", "wIjqoS", 137131200, true),
			method: "POST", url: "https://photos.example.net/initiate",
			creds: client,
			extra: []oauth.OAuth1Param{{Name: "oauth_callback", Value: "http://printer.example.com/ready"}},
			want: header(`realm="Photos"`,
				`oauth_consumer_key="dpf43f3p2l4k3l03"`,
				`oauth_signature_method="HMAC-SHA1"`,
				`oauth_timestamp="137131200"`,
				`oauth_nonce="wIjqoS"`,
				`oauth_callback="http%3A%2F%2Fprinter.example.com%2Fready"`,
				`oauth_signature="74KNZJeDHnMBp0EMJ9ZHt%2FXKycU%3D"`),
		},
		{
			desc:   "token credentials",
			signer: fixed("Photos", "walatlh", 137131201, true),
			method: "POST", url: "https://photos.example.net/token",
			creds: oauth.OAuth1Credentials{ConsumerKey: client.ConsumerKey, ConsumerSecret: client.ConsumerSecret,
				Token: "hh5s93j4hdidpola", TokenSecret: "hdhd0244k9j7ao03"},
			extra: []oauth.OAuth1Param{{Name: "oauth_verifier", Value: "hfdp7dh39dks9884"}},
			want: header(`realm="Photos"`,
				`oauth_consumer_key="dpf43f3p2l4k3l03"`,
				`oauth_token="hh5s93j4hdidpola"`,
				`oauth_signature_method="HMAC-SHA1"`,
				`oauth_timestamp="137131201"`,
				`oauth_nonce="walatlh"`,
				`oauth_verifier="hfdp7dh39dks9884"`,
				`oauth_signature="gKgrFCywp7rO0OXSjdot%2FIHF7IU%3D"`),
		},
		{
			desc:   "protected resource",
			signer: fixed("Photos", "chapoH", 137131202, true),
			method: "GET", url: "http://photos.example.net/photos?file=vacation.jpg&size=original",
			creds: oauth.OAuth1Credentials{ConsumerKey: client.ConsumerKey, ConsumerSecret: client.ConsumerSecret,
				Token: "nnch734d00sl2jdk", TokenSecret: "pfkkdhi9sl3r4s00"},
			want: header(`realm="Photos"`,
				`oauth_consumer_key="dpf43f3p2l4k3l03"`,
				`oauth_token="nnch734d00sl2jdk"`,
				`oauth_signature_method="HMAC-SHA1"`,
				`oauth_timestamp="137131202"`,
				`oauth_nonce="chapoH"`,
				`oauth_signature="MdpQcU8iPSUjWoN%2FUDMsK2sui9I%3D"`),
		},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			got, err := tc.signer.Authorization(tc.method, tc.url, nil, tc.creds, tc.extra...)
			if err != nil {
				t.Fatalf("Authorization() error = %v", err)
			}
			if got != tc.want {
				t.Errorf("Authorization() =\n%s\nwant\n%s", got, tc.want)
			}
			// AppendAuthorization writes the same bytes after what dst holds.
			b, err := tc.signer.AppendAuthorization([]byte("x"), tc.method, tc.url, nil, &tc.creds, tc.extra...)
			if err != nil || string(b) != "x"+tc.want {
				t.Errorf("AppendAuthorization() = %q, %v; want %q", b, err, "x"+tc.want)
			}
			cb := oauth.OAuth1CredentialBytes{ConsumerKey: []byte(tc.creds.ConsumerKey), ConsumerSecret: []byte(tc.creds.ConsumerSecret),
				Token: []byte(tc.creds.Token), TokenSecret: []byte(tc.creds.TokenSecret)}
			b, err = tc.signer.AppendAuthorizationBytes(nil, []byte(tc.method), []byte(tc.url), nil, &cb, tc.extra...)
			if err != nil || string(b) != tc.want {
				t.Errorf("AppendAuthorizationBytes() = %q, %v; want %q", b, err, tc.want)
			}
		})
	}
}

// TestOAuthCore1Photos is the photos.example.net resource request as OAuth Core 1.0 Appendix A.5
// (and wiki.oauth.net's test cases) publish it, with oauth_version: base string and signature.
func TestOAuthCore1Photos(t *testing.T) {
	const url = "http://photos.example.net/photos?file=vacation.jpg&size=original"
	protocol := []oauth.OAuth1Param{
		{Name: "oauth_consumer_key", Value: "dpf43f3p2l4k3l03"},
		{Name: "oauth_token", Value: "nnch734d00sl2jdk"},
		{Name: "oauth_signature_method", Value: "HMAC-SHA1"},
		{Name: "oauth_timestamp", Value: "1191242096"},
		{Name: "oauth_nonce", Value: "kllo9940pd9333jh"},
		{Name: "oauth_version", Value: "1.0"},
	}
	base, err := oauth.OAuth1BaseString("GET", url, nil, protocol)
	if err != nil {
		t.Fatal(err)
	}
	const wantBase = "GET&http%3A%2F%2Fphotos.example.net%2Fphotos&file%3Dvacation.jpg%26oauth_consumer_key%3Ddpf43f3p2l4k3l03" +
		"%26oauth_nonce%3Dkllo9940pd9333jh%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D1191242096" +
		"%26oauth_token%3Dnnch734d00sl2jdk%26oauth_version%3D1.0%26size%3Doriginal"
	if base != wantBase {
		t.Errorf("OAuth1BaseString() =\n%s\nwant\n%s", base, wantBase)
	}
	s := fixed("", "kllo9940pd9333jh", 1191242096, false)
	got, err := s.Authorization("GET", url, nil, oauth.OAuth1Credentials{
		ConsumerKey: "dpf43f3p2l4k3l03", ConsumerSecret: "kd94hf93k423kf44",
		Token: "nnch734d00sl2jdk", TokenSecret: "pfkkdhi9sl3r4s00"})
	if err != nil {
		t.Fatal(err)
	}
	if want := `oauth_signature="tR3%2BTy81lMeYAr%2FFid0kMTYa%2FWM%3D"`; !strings.HasSuffix(got, want) { // tR3+Ty81lMeYAr/Fid0kMTYa/WM=
		t.Errorf("Authorization() = %s; want it to end in %s", got, want)
	}
	if !strings.Contains(got, `oauth_version="1.0", `) {
		t.Errorf("Authorization() = %s; want oauth_version=\"1.0\"", got)
	}
}

// The request of RFC 5849 §3.4.1.1 (and §3.4.1.3.1): a query with encoded and empty values, a
// form body with a parameter without '=' and a '+', and a repeated name across both.
const (
	rfc341URL  = "http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b"
	rfc341Body = "c2&a3=2+q"
)

var rfc341Protocol = []oauth.OAuth1Param{
	{Name: "realm", Value: "Example"}, // in the header, but never signed
	{Name: "oauth_consumer_key", Value: "9djdj82h48djs9d2"},
	{Name: "oauth_token", Value: "kkk9d7dh3k39sjv7"},
	{Name: "oauth_signature_method", Value: "HMAC-SHA1"},
	{Name: "oauth_timestamp", Value: "137131201"},
	{Name: "oauth_nonce", Value: "7d8f3e4a"},
	{Name: "oauth_signature", Value: "djosJKDKJSD8743243%2Fjdk33klY%3D"}, // never signed either
}

func TestRFC5849Section3_4_1(t *testing.T) {
	t.Run("base string §3.4.1.1", func(t *testing.T) {
		got, err := oauth.OAuth1BaseString("POST", rfc341URL, []byte(rfc341Body), rfc341Protocol)
		if err != nil {
			t.Fatal(err)
		}
		// Exactly as printed in §3.4.1.1, its line breaks removed.
		want := "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q" +
			"%26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_" +
			"key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_m" +
			"ethod%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk" +
			"9d7dh3k39sjv7"
		if got != want {
			t.Errorf("OAuth1BaseString() =\n%s\nwant\n%s", got, want)
		}
	})
	t.Run("normalized parameters §3.4.1.3.2", func(t *testing.T) {
		got, err := oauth.OAuth1NormalizedParams(rfc341URL, []byte(rfc341Body), rfc341Protocol)
		if err != nil {
			t.Fatal(err)
		}
		want := "a2=r%20b&a3=2%20q&a3=a&b5=%3D%253D&c%40=&c2=&oauth_consumer_key=9dj" +
			"dj82h48djs9d2&oauth_nonce=7d8f3e4a&oauth_signature_method=HMAC-SHA1" +
			"&oauth_timestamp=137131201&oauth_token=kkk9d7dh3k39sjv7"
		if got != want {
			t.Errorf("OAuth1NormalizedParams() =\n%s\nwant\n%s", got, want)
		}
	})
	t.Run("signature with the §3.4.2 secrets", func(t *testing.T) {
		// §3.1 prints oauth_signature="bYT5CMsGcbgUdFHObYMEfcx6bsw%3D" for this request, but that
		// value does not follow from §3.4.1.1's base string with the secrets the RFC gives
		// (j49sk3j29djd, dh893hdasih9); a long-known erratum. The value below is the base string
		// above through another implementation:
		//   printf '%s' "$BASE" | openssl dgst -sha1 -hmac 'j49sk3j29djd&dh893hdasih9' -binary | base64
		s := fixed("Example", "7d8f3e4a", 137131201, true)
		got, err := s.Authorization("POST", rfc341URL, []byte(rfc341Body), oauth.OAuth1Credentials{
			ConsumerKey: "9djdj82h48djs9d2", ConsumerSecret: "j49sk3j29djd",
			Token: "kkk9d7dh3k39sjv7", TokenSecret: "dh893hdasih9"})
		if err != nil {
			t.Fatal(err)
		}
		want := header(`realm="Example"`,
			`oauth_consumer_key="9djdj82h48djs9d2"`,
			`oauth_token="kkk9d7dh3k39sjv7"`,
			`oauth_signature_method="HMAC-SHA1"`,
			`oauth_timestamp="137131201"`,
			`oauth_nonce="7d8f3e4a"`,
			`oauth_signature="r6%2FTJjbCOr97%2F%2BUU0NsvSne7s5g%3D"`)
		if got != want {
			t.Errorf("Authorization() =\n%s\nwant\n%s", got, want)
		}
	})
}

func TestSignatureMethods(t *testing.T) {
	creds := oauth.OAuth1Credentials{ConsumerKey: "dpf43f3p2l4k3l03", ConsumerSecret: "kd94hf93k423kf44",
		Token: "nnch734d00sl2jdk", TokenSecret: "pfkkdhi9sl3r4s00"}
	const url = "http://photos.example.net/photos?file=vacation.jpg&size=original"
	for _, tc := range []struct {
		desc, method, wantSig string
	}{
		// openssl dgst -sha256 -hmac 'kd94hf93k423kf44&pfkkdhi9sl3r4s00' over the §1.2 resource
		// request's base string with oauth_signature_method=HMAC-SHA256.
		{"HMAC-SHA256", oauth.OAuth1HMACSHA256, "HtMwoX2zenlFjgGg%2FSNEoKEQmL7CzxYFEKzs7er044Y%3D"},
		// §3.4.4: the signature is the key, encoded once more in the header.
		{"PLAINTEXT", oauth.OAuth1Plaintext, "kd94hf93k423kf44%26pfkkdhi9sl3r4s00"},
		{"HMAC-SHA1 by default", "", "MdpQcU8iPSUjWoN%2FUDMsK2sui9I%3D"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			s := fixed("", "chapoH", 137131202, true)
			s.Method = tc.method
			got, err := s.Authorization("GET", url, nil, creds)
			if err != nil {
				t.Fatal(err)
			}
			wantMethod := tc.method
			if wantMethod == "" {
				wantMethod = oauth.OAuth1HMACSHA1
			}
			if !strings.Contains(got, `oauth_signature_method="`+wantMethod+`"`) ||
				!strings.HasSuffix(got, `oauth_signature="`+tc.wantSig+`"`) {
				t.Errorf("Authorization() = %s; want method %s and signature %s", got, wantMethod, tc.wantSig)
			}
		})
	}
	t.Run("PLAINTEXT with the §3.4.4 secrets", func(t *testing.T) {
		s := &oauth.OAuth1Signer{Method: oauth.OAuth1Plaintext}
		got, err := s.Authorization("GET", "ftp-is-not-parsed-for-plaintext", nil,
			oauth.OAuth1Credentials{ConsumerKey: "k", ConsumerSecret: "j49sk3j29djd", Token: "t", TokenSecret: "dh893hdasih9"})
		if err != nil {
			t.Fatal(err)
		}
		if want := `oauth_signature="j49sk3j29djd%26dh893hdasih9"`; !strings.HasSuffix(got, want) {
			t.Errorf("Authorization() = %s; want it to end in %s", got, want)
		}
	})
	t.Run("unknown method", func(t *testing.T) {
		s := &oauth.OAuth1Signer{Method: "RSA-SHA1"}
		if _, err := s.Authorization("GET", url, nil, creds); !errors.Is(err, oauth.ErrSignatureMethod) {
			t.Errorf("Authorization() error = %v; want ErrSignatureMethod", err)
		}
		if oauth.ValidOAuth1Method("hmac-sha1") {
			t.Error("ValidOAuth1Method(\"hmac-sha1\") = true; want false (method names are case-sensitive)")
		}
	})
	t.Run("realm with a quote", func(t *testing.T) {
		s := &oauth.OAuth1Signer{Realm: `a"b`}
		if err := s.Validate(); !errors.Is(err, oauth.ErrRealm) {
			t.Errorf("Validate() = %v; want ErrRealm", err)
		}
		s.Realm = "a\r\nX-Injected: 1"
		if _, err := s.Authorization("GET", url, nil, creds); !errors.Is(err, oauth.ErrRealm) {
			t.Errorf("Authorization() error = %v; want ErrRealm", err)
		}
	})
}

func TestPercentEncode(t *testing.T) {
	for _, tc := range []struct{ desc, in, want string }{
		{"unreserved untouched", "AZaz09-._~", "AZaz09-._~"},
		{"space is %20, never +", "r b", "r%20b"},
		{"plus", "a+b", "a%2Bb"},
		{"asterisk", "*", "%2A"},
		{"tilde stays", "~user", "~user"},
		{"percent", "100%", "100%25"},
		{"already encoded is encoded again", "%3D", "%253D"},
		{"reserved", ":/?#[]@!$&'()+,;=", "%3A%2F%3F%23%5B%5D%40%21%24%26%27%28%29%2B%2C%3B%3D"},
		{"non-ASCII UTF-8, upper-case hex", "åé€", "%C3%A5%C3%A9%E2%82%AC"},
		{"invalid UTF-8 byte", "\xff", "%FF"},
		{"control", "\x00\n", "%00%0A"},
		{"empty", "", ""},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			if got := oauth.PercentEncode(tc.in); got != tc.want {
				t.Errorf("PercentEncode(%q) = %q; want %q", tc.in, got, tc.want)
			}
			if got := string(oauth.AppendPercentEncode([]byte("<"), tc.in)); got != "<"+tc.want {
				t.Errorf("AppendPercentEncode(%q) = %q; want %q", tc.in, got, "<"+tc.want)
			}
		})
	}
}

// TestNormalizedParams covers how query and form parameters are decoded and re-encoded.
func TestNormalizedParams(t *testing.T) {
	for _, tc := range []struct {
		desc, url, form string
		noForm          bool
		want            string
	}{
		{desc: "'+' in a query is a space", url: "http://h/?q=a+b", want: "q=a%20b", noForm: true},
		{desc: "%2B in a query is a plus", url: "http://h/?q=a%2Bb", want: "q=a%2Bb", noForm: true},
		{desc: "'*' and '~' as sent or escaped", url: "http://h/?s=*~&t=%2A%7E", want: "s=%2A~&t=%2A~", noForm: true},
		{desc: "lower-case escapes come out upper-case", url: "http://h/?x=%c3%a5", want: "x=%C3%A5", noForm: true},
		{desc: "raw non-ASCII bytes are encoded", url: "http://h/?x=å", want: "x=%C3%A5", noForm: true},
		{desc: "empty values and names without '='", url: "http://h/?a=&b", want: "a=&b=", noForm: true},
		{desc: "empty pairs are skipped", url: "http://h/?&a=1&&b=2&", want: "a=1&b=2", noForm: true},
		{desc: "an empty name is a parameter", url: "http://h/?=v", want: "=v", noForm: true},
		{desc: "repeated names sort by value", url: "http://h/?a=z&a=y&a=", form: "a=x", want: "a=&a=x&a=y&a=z"},
		{desc: "sorted by encoded name, bytewise", url: "http://h/?b=1&B=2&a_=3&a-=4&a=5", want: "B=2&a=5&a-=4&a_=3&b=1", noForm: true},
		{desc: "names sort before longer names with the same prefix", url: "http://h/?ab=1&a=2", want: "a=2&ab=1", noForm: true},
		{desc: "the second '=' is part of the value", url: "http://h/?a=b=c", want: "a=b%3Dc", noForm: true},
		{desc: "';' is not a separator", url: "http://h/?a=1;b=2", want: "a=1%3Bb%3D2", noForm: true},
		{desc: "oauth_signature is never signed", url: "http://h/?oauth_signature=x&a=1", form: "oauth_signature=y", want: "a=1"},
		{desc: "fragment is not the query", url: "http://h/p?a=1#b=2", want: "a=1", noForm: true},
		{desc: "form '+' and %20 are both spaces", url: "http://h/", form: "t=Hello+Ladies%20%2B+Gentlemen", want: "t=Hello%20Ladies%20%2B%20Gentlemen"},
		{desc: "an empty form adds nothing", url: "http://h/?a=1", form: "", want: "a=1"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			var form []byte
			if !tc.noForm {
				form = []byte(tc.form)
			}
			got, err := oauth.OAuth1NormalizedParams(tc.url, form, nil)
			if err != nil {
				t.Fatalf("OAuth1NormalizedParams() error = %v", err)
			}
			if got != tc.want {
				t.Errorf("OAuth1NormalizedParams(%q, %q) = %q; want %q", tc.url, tc.form, got, tc.want)
			}
		})
	}
	for _, tc := range []struct{ desc, url, form string }{
		{"truncated escape in query", "http://h/?a=%4", ""},
		{"non-hex escape in query", "http://h/?a=%zz", ""},
		{"bare percent in form", "http://h/", "a=100%"},
		{"escape in a name", "http://h/?%g0=1", ""},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := oauth.OAuth1NormalizedParams(tc.url, []byte(tc.form), nil)
			if !errors.Is(err, oauth.ErrParameterEncoding) {
				t.Errorf("OAuth1NormalizedParams(%q, %q) error = %v; want ErrParameterEncoding", tc.url, tc.form, err)
			}
			s := &oauth.OAuth1Signer{}
			if _, err := s.Authorization("POST", tc.url, []byte(tc.form), oauth.OAuth1Credentials{}); !errors.Is(err, oauth.ErrParameterEncoding) {
				t.Errorf("Authorization() error = %v; want ErrParameterEncoding", err)
			}
		})
	}
}

func TestBaseStringURI(t *testing.T) {
	for _, tc := range []struct{ desc, in, want string }{
		// The two examples of §3.4.1.2.
		{"§3.4.1.2 first example", "http://EXAMPLE.COM:80/r%20v/X?id=123", "http://example.com/r%20v/X"},
		{"§3.4.1.2 second example", "https://www.example.net:8080/?q=1", "https://www.example.net:8080/"},
		{"scheme lower-cased", "HTTPS://Api.Example.com/Path", "https://api.example.com/Path"},
		{"https default port dropped", "https://h:443/a", "https://h/a"},
		{"http on 443 keeps it", "http://h:443/a", "http://h:443/a"},
		{"https on 80 keeps it", "https://h:80/a", "https://h:80/a"},
		{"leading zeros of a port", "http://h:0080/a", "http://h/a"},
		{"empty port", "http://h:/a", "http://h/a"},
		{"empty path is /", "http://h?x=1", "http://h/"},
		{"no path at all", "http://h", "http://h/"},
		{"user information dropped", "https://user:p%40ss@h.example/a", "https://h.example/a"},
		{"IPv6 host", "http://[2001:DB8::1]:8080/a", "http://[2001:db8::1]:8080/a"},
		{"IPv6 host, default port", "http://[::1]:80/a", "http://[::1]/a"},
		{"path kept as sent", "http://h/a%2fb/./c//d%7e", "http://h/a%2fb/./c//d%7e"},
		{"fragment dropped", "http://h/a#frag", "http://h/a"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			got, err := oauth.OAuth1BaseStringURI(tc.in)
			if err != nil {
				t.Fatalf("OAuth1BaseStringURI(%q) error = %v", tc.in, err)
			}
			if got != tc.want {
				t.Errorf("OAuth1BaseStringURI(%q) = %q; want %q", tc.in, got, tc.want)
			}
		})
	}
	for _, tc := range []struct{ desc, in string }{
		{"relative", "/photos?a=1"},
		{"other scheme", "ftp://h/a"},
		{"no host", "http:///a"},
		{"port not a number", "http://h:8o/a"},
		{"unclosed IPv6", "http://[::1/a"},
		{"junk after IPv6", "http://[::1]x/a"},
		{"empty", ""},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			if _, err := oauth.OAuth1BaseStringURI(tc.in); !errors.Is(err, oauth.ErrRequestURL) {
				t.Errorf("OAuth1BaseStringURI(%q) error = %v; want ErrRequestURL", tc.in, err)
			}
		})
	}
	t.Run("method is upper-cased", func(t *testing.T) {
		got, err := oauth.OAuth1BaseString("post", "http://h/", nil, nil)
		if err != nil || got != "POST&http%3A%2F%2Fh%2F&" {
			t.Errorf("OAuth1BaseString(post) = %q, %v; want %q", got, err, "POST&http%3A%2F%2Fh%2F&")
		}
	})
}

func TestDefaultNonceAndClock(t *testing.T) {
	s := &oauth.OAuth1Signer{}
	creds := oauth.OAuth1Credentials{ConsumerKey: "ck", ConsumerSecret: "cs", Token: "t", TokenSecret: "ts"}
	nonceRE := regexp.MustCompile(`oauth_nonce="([0-9a-f]{32})"`)
	tsRE := regexp.MustCompile(`oauth_timestamp="([0-9]+)"`)
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		h, err := s.Authorization("GET", "https://api.example.com/x", nil, creds)
		if err != nil {
			t.Fatal(err)
		}
		m := nonceRE.FindStringSubmatch(h)
		if m == nil {
			t.Fatalf("Authorization() = %s; want a 32-hex-digit oauth_nonce", h)
		}
		if seen[m[1]] {
			t.Fatalf("nonce %s repeated", m[1])
		}
		seen[m[1]] = true
		ts := tsRE.FindStringSubmatch(h)
		if ts == nil {
			t.Fatalf("Authorization() = %s; want an oauth_timestamp", h)
		}
		got, err := strconv.ParseInt(ts[1], 10, 64)
		if now := time.Now().Unix(); err != nil || got < now-5 || got > now+5 {
			t.Fatalf("oauth_timestamp = %s; want about %d", ts[1], now)
		}
	}
}

func TestIsFormURLEncoded(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"application/x-www-form-urlencoded", true},
		{"application/x-www-form-urlencoded; charset=utf-8", true},
		{"Application/X-WWW-Form-URLEncoded;charset=UTF-8", true},
		{" application/x-www-form-urlencoded ", true},
		{"application/json", false},
		{"multipart/form-data; boundary=x", false},
		{"application/x-www-form-urlencodedx", false},
		{"application/x-www-form-urlencoded;charset=\"utf-8\"", true},
		{"\tapplication/x-www-form-urlencoded\t; charset=utf-8", true},
		{"text/x-www-form-urlencoded", false},
		{"", false},
	} {
		if got := oauth.IsFormURLEncoded(tc.in); got != tc.want {
			t.Errorf("IsFormURLEncoded(%q) = %v; want %v", tc.in, got, tc.want)
		}
		if got := oauth.IsFormURLEncoded([]byte(tc.in)); got != tc.want {
			t.Errorf("IsFormURLEncoded([]byte(%q)) = %v; want %v", tc.in, got, tc.want)
		}
	}
}
