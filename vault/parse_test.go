package vault

import (
	"bytes"
	"testing"
)

// FuzzParsePaths checks that the canonical fast path never reads a blob
// differently from the general JSON walk.
func FuzzParsePaths(f *testing.F) {
	k, err := New(map[uint32][]byte{1: bytes.Repeat([]byte{1}, keySize)}, 0)
	if err != nil {
		f.Fatal(err)
	}
	for _, pt := range []string{"", "x", "a longer secret value"} {
		blob, err := k.Seal([]byte(pt), []byte("aad"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(blob)
	}
	f.Add([]byte(`{"encrypted":"","iv":"","authTag":"","keyVersion":01}`))
	f.Add([]byte(`{"encrypted":"","iv":"","authTag":"","keyVersion":0}`))
	f.Add([]byte(`{"encrypted":"\u0041","iv":"","authTag":"","keyVersion":1}`))

	f.Fuzz(func(t *testing.T, blob []byte) {
		fast, ok := splitCanonical(blob)
		if !ok {
			return
		}
		slow, err := splitJSON(blob)
		if err != nil {
			t.Fatalf("splitCanonical(%q) ok but splitJSON() = %v", blob, err)
		}
		for _, p := range [][2][]byte{
			{fast.encrypted, slow.encrypted},
			{fast.iv, slow.iv},
			{fast.authTag, slow.authTag},
			{fast.keyVersion, slow.keyVersion},
		} {
			if !bytes.Equal(p[0], p[1]) {
				t.Fatalf("splitCanonical(%q) = %q; splitJSON() = %q", blob, p[0], p[1])
			}
		}
	})
}

func TestSealIsCanonical(t *testing.T) {
	k, err := New(map[uint32][]byte{4294967295: bytes.Repeat([]byte{1}, keySize)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, pt := range []string{"", "x", "secret"} {
		blob, err := k.Seal([]byte(pt), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := splitCanonical(blob); !ok {
			t.Errorf("splitCanonical(Seal(%q)) = false; want true (%s)", pt, blob)
		}
	}
}
