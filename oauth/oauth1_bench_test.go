package oauth_test

import (
	"testing"

	"github.com/extapi/extapi/oauth"
)

var benchCreds = oauth.OAuth1Credentials{ConsumerKey: "xvz1evFS4wEEPTGEFPHBog", ConsumerSecret: "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
	Token: "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb", TokenSecret: "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE"}

const (
	benchURL  = "https://api.twitter.com/1.1/statuses/update.json?include_entities=true"
	benchForm = "status=Hello+Ladies+%2B+Gentlemen%2C+a+signed+OAuth+request%21"
)

// BenchmarkOAuth1Sign is the per-request cost the proxy pays: a POST with a query and a form body.
func BenchmarkOAuth1Sign(b *testing.B) {
	s := &oauth.OAuth1Signer{}
	form := []byte(benchForm)
	var dst []byte
	b.ReportAllocs()
	for b.Loop() {
		var err error
		dst, err = s.AppendAuthorization(dst[:0], "POST", benchURL, form, &benchCreds)
		if err != nil {
			b.Fatal(err)
		}
	}
}
