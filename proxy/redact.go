package proxy

import (
	"net/url"
	"strings"
)

// Redacted replaces a credential in a logged query string.
const Redacted = "REDACTED"

// credentialWords are the name fragments that mark a query parameter as holding a credential:
// api_key, access_token, client_secret, X-Amz-Signature, sig, password, passwd, pwd, auth,
// oauth_verifier's sibling oauth_token, code (OAuth authorization codes), credential,
// session, jwt. Matching is by substring and deliberately broad: a postcode logged as
// REDACTED costs less than a token in the logs.
var credentialWords = []string{"key", "token", "secret", "sig", "pass", "pwd", "auth", "code", "credential", "session", "jwt"}

// RedactQuery returns rawQuery, as sent, with the value of every parameter whose name looks
// like it carries a credential replaced by Redacted; credParam, when not empty, is redacted
// too whatever it is called (the API's configured api_key query parameter, say). Names are
// compared percent-decoded and case-insensitively, and pairs split on '&' and ';', as
// appendQuery does; a name that does not decode counts as a credential. Everything else is
// kept byte for byte. A query with nothing to redact is returned as it is, unallocated.
func RedactQuery(rawQuery, credParam string) string {
	var b []byte // nil until the first redaction
	last := 0    // rawQuery[last:] is not yet in b
	for i := 0; i < len(rawQuery); {
		end := len(rawQuery)
		if j := strings.IndexAny(rawQuery[i:], "&;"); j >= 0 {
			end = i + j
		}
		pair := rawQuery[i:end]
		if eq := strings.IndexByte(pair, '='); eq >= 0 && eq < len(pair)-1 && credentialName(pair[:eq], credParam) {
			value := i + eq + 1
			b = append(b, rawQuery[last:value]...)
			b = append(b, Redacted...)
			last = end
		}
		i = end + 1
	}
	if b == nil {
		return rawQuery
	}
	return string(append(b, rawQuery[last:]...))
}

func credentialName(name, credParam string) bool {
	if strings.ContainsAny(name, "%+") {
		d, err := url.QueryUnescape(name)
		if err != nil {
			return true
		}
		name = d
	}
	if credParam != "" && strings.EqualFold(name, credParam) {
		return true
	}
	lower := strings.ToLower(name)
	for _, w := range credentialWords {
		if strings.Contains(lower, w) {
			return true
		}
	}
	return false
}
