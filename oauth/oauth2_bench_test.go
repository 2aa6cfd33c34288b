package oauth_test

import (
	"testing"
	"time"

	"github.com/extapi/extapi/oauth"
	"github.com/extapi/extapi/store"
)

// hotPath is a Refresher with a fresh token already opened once, and no store: the hot path
// must not need one.
func hotPath(tb testing.TB) (*oauth.Refresher, *store.ExternalAPI, *store.Connection) {
	kr := testKeyring(tb)
	api := &store.ExternalAPI{ID: "eapi_bench", APIConfig: store.APIConfig{AuthType: store.AuthOAuth2,
		OAuth2: &store.OAuth2Config{TokenURL: "https://acme.test/token"}}}
	exp := time.Now().Add(time.Hour)
	conn := &store.Connection{ID: "conn_bench", ExternalAPIID: api.ID, Status: store.ConnActive,
		Credentials: store.Credentials{ExpiresAt: &exp}}
	b, err := kr.Seal([]byte("at_benchmark_token"), conn.AAD("credentials.access_token"))
	if err != nil {
		tb.Fatal(err)
	}
	conn.Credentials.AccessToken = b
	r := oauth.NewRefresher(oauth.RefresherOptions{Sealer: kr})
	if tok, err := r.Token(testCtxTB(tb), api, conn); err != nil || tok.Token != "at_benchmark_token" {
		tb.Fatalf("Token() = %q, %v", tok.Token, err)
	}
	return r, api, conn
}

func BenchmarkToken(b *testing.B) {
	r, api, conn := hotPath(b)
	ctx := testCtxTB(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := r.Token(ctx, api, conn); err != nil {
				b.Fatal(err)
			}
		}
	})
}
