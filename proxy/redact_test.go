package proxy

import (
	"net/url"
	"strings"
	"testing"
)

func TestRedactQuery(t *testing.T) {
	for _, tc := range []struct {
		desc, in, cred, want string
	}{
		{"empty", "", "", ""},
		{"nothing to redact", "page=2&limit=50&q=shoes", "", "page=2&limit=50&q=shoes"},
		{"api key", "api_key=sk_live_123&page=2", "", "api_key=REDACTED&page=2"},
		{"access token, any case", "Access_Token=abc&X=1", "", "Access_Token=REDACTED&X=1"},
		{"aws presigned", "X-Amz-Credential=AKIA%2F20240101&X-Amz-Signature=deadbeef&X-Amz-Expires=60", "",
			"X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED&X-Amz-Expires=60"},
		{"password and secret", "user=bob&password=hunter2&client_secret=s", "", "user=bob&password=REDACTED&client_secret=REDACTED"},
		{"oauth code", "code=4%2F0Adeu5&state=xyz", "", "code=REDACTED&state=xyz"},
		{"sig", "sig=abc&ts=1", "", "sig=REDACTED&ts=1"},
		{"configured parameter", "appid=0123456789abcdef&units=metric", "appid", "appid=REDACTED&units=metric"},
		{"configured parameter, other case", "APPID=x", "appid", "APPID=REDACTED"},
		{"percent-encoded name", "acc%65ss_tok%65n=abc", "", "acc%65ss_tok%65n=REDACTED"},
		{"plus in name", "api+key=abc", "", "api+key=REDACTED"},
		{"undecodable name", "x%zz=abc&y=1", "", "x%zz=REDACTED&y=1"},
		{"semicolon separator", "a=1;token=abc;b=2", "", "a=1;token=REDACTED;b=2"},
		{"value with =", "token=a=b=c&d=1", "", "token=REDACTED&d=1"},
		{"empty value kept", "token=&a=1", "", "token=&a=1"},
		{"no value", "token&a=1", "", "token&a=1"},
		{"repeated", "key=1&key=2&key=3", "", "key=REDACTED&key=REDACTED&key=REDACTED"},
		{"empty pairs", "&&token=x&&", "", "&&token=REDACTED&&"},
		{"Kelvin sign folds to k", "\u212aey=x", "", "\u212aey=REDACTED"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			if got := RedactQuery(tc.in, tc.cred); got != tc.want {
				t.Errorf("RedactQuery(%q, %q) = %q; want %q", tc.in, tc.cred, got, tc.want)
			}
		})
	}
}

func TestRedactQueryNoRedactionDoesNotAllocate(t *testing.T) {
	q := "page=2&limit=50&q=shoes&sort=desc"
	if n := testing.AllocsPerRun(100, func() { _ = RedactQuery(q, "appid") }); n != 0 {
		t.Errorf("RedactQuery with nothing to redact allocates %v times; want 0", n)
	}
}

// FuzzRedactQuery: whatever the query, a parameter whose name is a credential (by the rule, or
// as net/url decodes it) never keeps a value but Redacted, every other byte is kept, and
// redacting twice changes nothing.
func FuzzRedactQuery(f *testing.F) {
	for _, s := range []string{
		"api_key=sk&page=2", "a=1;token=x", "acc%65ss_token=abc", "x%zz=1", "token=a=b", "&&", "",
		"X-Amz-Signature=ab&X-Amz-Credential=c", "appid=1", "code=%zz", "k%65y=v", "KEY=v;key=w",
	} {
		f.Add(s, "appid")
	}
	f.Fuzz(func(t *testing.T, q, cred string) {
		out := RedactQuery(q, cred)
		if again := RedactQuery(out, cred); again != out {
			t.Fatalf("RedactQuery not idempotent: %q → %q → %q", q, out, again)
		}
		in, got := splitPairs(q), splitPairs(out)
		if len(in) != len(got) {
			t.Fatalf("RedactQuery(%q) = %q: %d pairs; want %d", q, out, len(got), len(in))
		}
		for i, p := range in {
			name, value, hasValue := strings.Cut(p, "=")
			if hasValue && value != "" && credentialName(name, cred) {
				if want := name + "=" + Redacted; got[i] != want {
					t.Fatalf("RedactQuery(%q) pair %d = %q; want %q", q, i, got[i], want)
				}
			} else if got[i] != p {
				t.Fatalf("RedactQuery(%q) pair %d = %q; want it unchanged (%q)", q, i, got[i], p)
			}
		}
		// Cross-check with net/url's reading of the result.
		vals, _ := url.ParseQuery(out)
		for name, vs := range vals {
			if !credentialName(url.QueryEscape(name), cred) {
				continue
			}
			for _, v := range vs {
				if v != "" && v != Redacted {
					t.Fatalf("RedactQuery(%q) = %q: net/url reads %s=%q", q, out, name, v)
				}
			}
		}
	})
}

// splitPairs splits on '&' and ';', keeping empty pairs.
func splitPairs(q string) []string {
	if q == "" {
		return nil
	}
	var pairs []string
	for {
		i := strings.IndexAny(q, "&;")
		if i < 0 {
			return append(pairs, q)
		}
		pairs, q = append(pairs, q[:i]), q[i+1:]
	}
}
