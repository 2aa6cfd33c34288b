//go:build !race

package oauth_test

import (
	"testing"
)

// TestTokenAllocs holds the hot path (a fresh token, already opened once) to no allocation:
// it is a map read and a comparison of the sealed blob's nonce.
func TestTokenAllocs(t *testing.T) {
	r, api, conn := hotPath(t)
	ctx := testCtx(t)
	n := testing.AllocsPerRun(500, func() {
		if _, err := r.Token(ctx, api, conn); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Errorf("Token() allocates %v times per call; want 0", n)
	}
}
