//go:build !race

package oauth_test

import (
	"testing"

	"github.com/extapi/extapi/oauth"
)

// TestOAuth1SignAllocs holds signing to what crypto/hmac costs: the parameters, base string and
// header are built in pooled buffers.
func TestOAuth1SignAllocs(t *testing.T) {
	s := &oauth.OAuth1Signer{}
	form := []byte(benchForm)
	dst := make([]byte, 0, 1024)
	n := testing.AllocsPerRun(200, func() {
		var err error
		if dst, err = s.AppendAuthorization(dst[:0], "POST", benchURL, form, &benchCreds); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("allocations per signature: %v", n)
	if n > 8 {
		t.Errorf("AppendAuthorization allocates %v times per call; want at most 8", n)
	}
}
