package vault_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/extapi/extapi/vault"
)

// secret is distinctive so a leak into an error message is unmistakable.
const secret = "pl41nt3xt-SECRET-7f3a9c-do-not-log"

var aad = []byte("external_apis/eapi_x/api_config.oauth2.client_secret")

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func mustNew(t testing.TB, keys map[uint32][]byte, active uint32) *vault.Keyring {
	t.Helper()
	k, err := vault.New(keys, active)
	if err != nil {
		t.Fatalf("New() = %v; want nil error", err)
	}
	return k
}

func mustSeal(t testing.TB, k *vault.Keyring, pt, aad []byte) []byte {
	t.Helper()
	blob, err := k.Seal(pt, aad)
	if err != nil {
		t.Fatalf("Seal() = %v; want nil error", err)
	}
	return blob
}

// wire mirrors the blob format, in Seal's field order, for building variants.
type wire struct {
	Encrypted  string `json:"encrypted"`
	IV         string `json:"iv"`
	AuthTag    string `json:"authTag"`
	KeyVersion uint32 `json:"keyVersion"`
}

func decodeWire(t testing.TB, blob []byte) wire {
	t.Helper()
	var w wire
	if err := json.Unmarshal(blob, &w); err != nil {
		t.Fatalf("json.Unmarshal(blob) = %v", err)
	}
	return w
}

func (w wire) encode(t testing.TB) []byte {
	t.Helper()
	b, err := json.Marshal(w)
	if err != nil {
		t.Fatalf("json.Marshal() = %v", err)
	}
	return b
}

// flipBit decodes a base64 field, flips one bit and re-encodes it.
func flipBit(t testing.TB, field string) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(field)
	if err != nil {
		t.Fatalf("DecodeString(%q) = %v", field, err)
	}
	b[len(b)/2] ^= 0x04
	return base64.StdEncoding.EncodeToString(b)
}

func b64(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) }

var sentinels = []error{vault.ErrMalformed, vault.ErrUnknownKeyVersion, vault.ErrAuthFailed, vault.ErrWrongKey}

// checkErr asserts err matches want and none of the other sentinels.
func checkErr(t *testing.T, name string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s = %v; want %v", name, err, want)
	}
	for _, other := range sentinels {
		if other != want && errors.Is(err, other) {
			t.Errorf("%s = %v; matches %v as well as %v", name, err, other, want)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	k := mustNew(t, map[uint32][]byte{1: testKey(1)}, 0)
	for _, tt := range []struct {
		desc string
		pt   []byte
	}{
		{desc: "secret", pt: []byte(secret)},
		{desc: "one byte", pt: []byte{0}},
		{desc: "binary 4 KiB", pt: bytes.Repeat([]byte{0xff, 0x00, '"', '\\'}, 1024)},
		{desc: "empty", pt: []byte{}},
		{desc: "nil", pt: nil},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			blob := mustSeal(t, k, tt.pt, aad)
			got, err := k.Open(blob, aad)
			if err != nil {
				t.Fatalf("Open() = %v; want nil error", err)
			}
			if !bytes.Equal(got, tt.pt) {
				t.Errorf("Open() = %q; want %q", got, tt.pt)
			}
			if got == nil {
				t.Errorf("Open() = nil slice; want non-nil on success, even when empty")
			}
		})
	}
}

func TestSealFreshNonce(t *testing.T) {
	k := mustNew(t, map[uint32][]byte{1: testKey(1)}, 0)
	a, b := mustSeal(t, k, []byte(secret), aad), mustSeal(t, k, []byte(secret), aad)
	if bytes.Equal(a, b) {
		t.Fatalf("Seal() twice = identical blobs %s; want a fresh nonce each time", a)
	}
	wa, wb := decodeWire(t, a), decodeWire(t, b)
	if wa.IV == wb.IV {
		t.Errorf("Seal() iv = %q twice; want a fresh nonce each time", wa.IV)
	}
	if wa.Encrypted == wb.Encrypted {
		t.Errorf("Seal() encrypted identical under different nonces")
	}
}

func TestSealFormat(t *testing.T) {
	k := mustNew(t, map[uint32][]byte{1: testKey(1), 2: testKey(2), 3: testKey(3)}, 2)
	pt := []byte(secret)
	blob := mustSeal(t, k, pt, aad)

	var fields map[string]json.RawMessage
	if err := json.Unmarshal(blob, &fields); err != nil {
		t.Fatalf("json.Unmarshal(Seal()) = %v", err)
	}
	var names []string
	for name := range fields {
		names = append(names, name)
	}
	slices.Sort(names)
	if want := []string{"authTag", "encrypted", "iv", "keyVersion"}; !slices.Equal(names, want) {
		t.Fatalf("Seal() fields = %v; want %v", names, want)
	}

	w := decodeWire(t, blob)
	if w.KeyVersion != 2 {
		t.Errorf("Seal() keyVersion = %d; want active version 2", w.KeyVersion)
	}
	for _, f := range []struct {
		name string
		val  string
		want int
	}{
		{"encrypted", w.Encrypted, len(pt)},
		{"iv", w.IV, 12},
		{"authTag", w.AuthTag, 16},
	} {
		b, err := base64.StdEncoding.DecodeString(f.val)
		if err != nil {
			t.Errorf("Seal() %s is not standard padded base64: %v", f.name, err)
			continue
		}
		if len(b) != f.want {
			t.Errorf("Seal() %s decodes to %d bytes; want %d", f.name, len(b), f.want)
		}
	}

	// Field order is fixed, so the blob is exactly what encoding/json writes
	// for the same struct.
	if want := w.encode(t); !bytes.Equal(blob, want) {
		t.Errorf("Seal() = %s; want field order %s", blob, want)
	}

	// The format is plain AES-256-GCM: a reference decryption must agree.
	got, err := referenceOpen(blob, map[uint32][]byte{2: testKey(2)}, aad)
	if err != nil || !bytes.Equal(got, pt) {
		t.Errorf("reference open of Seal() = %q, %v; want %q", got, err, pt)
	}
}

func TestOpenErrors(t *testing.T) {
	k := mustNew(t, map[uint32][]byte{1: testKey(1), 2: testKey(2)}, 1)
	valid := mustSeal(t, k, []byte(secret), aad)
	w := decodeWire(t, valid)
	sealedEmpty := mustSeal(t, k, nil, aad)
	v3 := mustSeal(t, mustNew(t, map[uint32][]byte{3: testKey(3)}, 0), []byte(secret), aad)
	wrongKey := mustSeal(t, mustNew(t, map[uint32][]byte{1: testKey(9)}, 0), []byte(secret), aad)

	with := func(f func(*wire)) []byte {
		c := w
		f(&c)
		return c.encode(t)
	}
	// field replaces one field's raw JSON value; an empty val drops the field.
	field := func(name, val string) []byte {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(valid, &m); err != nil {
			t.Fatal(err)
		}
		if val == "" {
			delete(m, name)
		} else {
			m[name] = json.RawMessage(val)
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// A value that, were it echoed, would show up in the message.
	leaky := `"` + secret + `"`

	for _, tt := range []struct {
		desc      string
		blob      []byte
		aad       []byte
		want      error
		wantField string // for ErrMalformed
		wantMsg   string // substring, when set
	}{
		{desc: "other aad", blob: valid, aad: []byte("external_apis/eapi_y/api_config.oauth2.client_secret"), want: vault.ErrAuthFailed},
		{desc: "nil aad", blob: valid, want: vault.ErrAuthFailed},
		{desc: "tampered encrypted", blob: with(func(w *wire) { w.Encrypted = flipBit(t, w.Encrypted) }), want: vault.ErrAuthFailed},
		{desc: "tampered iv", blob: with(func(w *wire) { w.IV = flipBit(t, w.IV) }), want: vault.ErrAuthFailed},
		{desc: "tampered authTag", blob: with(func(w *wire) { w.AuthTag = flipBit(t, w.AuthTag) }), want: vault.ErrAuthFailed},
		{desc: "truncated encrypted", blob: with(func(w *wire) { w.Encrypted = w.Encrypted[:8] }), want: vault.ErrAuthFailed},
		{desc: "encrypted emptied", blob: with(func(w *wire) { w.Encrypted = "" }), want: vault.ErrAuthFailed},
		{desc: "empty-plaintext blob with foreign tag", blob: func() []byte {
			e := decodeWire(t, sealedEmpty)
			e.AuthTag = w.AuthTag
			return e.encode(t)
		}(), want: vault.ErrAuthFailed},
		{desc: "version relabelled", blob: with(func(w *wire) { w.KeyVersion = 2 }), want: vault.ErrAuthFailed, wantMsg: "key for version 2 is wrong"},
		{desc: "wrong key under same version", blob: wrongKey, want: vault.ErrAuthFailed, wantMsg: "key for version 1 is wrong"},
		{desc: "unknown version", blob: v3, want: vault.ErrUnknownKeyVersion,
			wantMsg: "vault: sealed with key version 3, which is not configured (configured: 1, 2)"},

		{desc: "empty blob", blob: []byte{}, want: vault.ErrMalformed},
		{desc: "whitespace blob", blob: []byte(" \n\t"), want: vault.ErrMalformed},
		{desc: "not JSON", blob: []byte(secret), want: vault.ErrMalformed},
		{desc: "JSON string", blob: []byte(leaky), want: vault.ErrMalformed},
		{desc: "JSON array", blob: []byte(`[` + leaky + `]`), want: vault.ErrMalformed},
		{desc: "JSON null", blob: []byte(`null`), want: vault.ErrMalformed},
		{desc: "truncated JSON", blob: valid[:len(valid)-1], want: vault.ErrMalformed},
		{desc: "trailing garbage", blob: append(slices.Clone(valid), 'x'), want: vault.ErrMalformed},
		{desc: "trailing object", blob: append(slices.Clone(valid), "{}"...), want: vault.ErrMalformed},
		{desc: "two blobs", blob: append(slices.Clone(valid), valid...), want: vault.ErrMalformed},
		{desc: "unknown field", blob: field("extra", leaky), want: vault.ErrMalformed, wantField: "extra"},
		{desc: "field name case differs", blob: bytes.Replace(valid, []byte(`"iv"`), []byte(`"IV"`), 1), want: vault.ErrMalformed, wantField: "IV"},
		{desc: "duplicate field", blob: bytes.Replace(valid, []byte(`{`), []byte(`{"iv":"`+w.IV+`",`), 1), want: vault.ErrMalformed, wantField: "iv"},
		{desc: "missing encrypted", blob: field("encrypted", ""), want: vault.ErrMalformed, wantField: "encrypted"},
		{desc: "missing iv", blob: field("iv", ""), want: vault.ErrMalformed, wantField: "iv"},
		{desc: "missing authTag", blob: field("authTag", ""), want: vault.ErrMalformed, wantField: "authTag"},
		{desc: "missing keyVersion", blob: field("keyVersion", ""), want: vault.ErrMalformed, wantField: "keyVersion"},
		{desc: "null iv", blob: field("iv", "null"), want: vault.ErrMalformed, wantField: "iv"},
		{desc: "number iv", blob: field("iv", "12"), want: vault.ErrMalformed, wantField: "iv"},
		{desc: "object encrypted", blob: field("encrypted", `{"x":`+leaky+`}`), want: vault.ErrMalformed, wantField: "encrypted"},
		{desc: "bad base64 encrypted", blob: field("encrypted", leaky), want: vault.ErrMalformed, wantField: "encrypted"},
		{desc: "unpadded authTag", blob: with(func(w *wire) { w.AuthTag = strings.TrimRight(w.AuthTag, "=") }), want: vault.ErrMalformed, wantField: "authTag"},
		{desc: "non-canonical base64 padding bits", blob: with(func(w *wire) { w.Encrypted = "AB==" }), want: vault.ErrMalformed, wantField: "encrypted"},
		{desc: "line break in iv", blob: with(func(w *wire) { w.IV = w.IV[:8] + "\n" + w.IV[8:] }), want: vault.ErrMalformed, wantField: "iv"},
		{desc: "iv 11 bytes", blob: with(func(w *wire) { w.IV = b64(11) }), want: vault.ErrMalformed, wantField: "iv"},
		{desc: "iv 13 bytes", blob: with(func(w *wire) { w.IV = b64(13) }), want: vault.ErrMalformed, wantField: "iv"},
		{desc: "iv empty", blob: with(func(w *wire) { w.IV = "" }), want: vault.ErrMalformed, wantField: "iv"},
		{desc: "authTag 15 bytes", blob: with(func(w *wire) { w.AuthTag = b64(15) }), want: vault.ErrMalformed, wantField: "authTag"},
		{desc: "authTag 17 bytes", blob: with(func(w *wire) { w.AuthTag = b64(17) }), want: vault.ErrMalformed, wantField: "authTag"},
		{desc: "keyVersion 0", blob: with(func(w *wire) { w.KeyVersion = 0 }), want: vault.ErrMalformed, wantField: "keyVersion"},
		{desc: "keyVersion negative", blob: field("keyVersion", "-1"), want: vault.ErrMalformed, wantField: "keyVersion"},
		{desc: "keyVersion minus zero", blob: field("keyVersion", "-0"), want: vault.ErrMalformed, wantField: "keyVersion"},
		{desc: "keyVersion fraction", blob: field("keyVersion", "1.5"), want: vault.ErrMalformed, wantField: "keyVersion"},
		{desc: "keyVersion float form", blob: field("keyVersion", "1.0"), want: vault.ErrMalformed, wantField: "keyVersion"},
		{desc: "keyVersion exponent", blob: field("keyVersion", "1e0"), want: vault.ErrMalformed, wantField: "keyVersion"},
		{desc: "keyVersion string", blob: field("keyVersion", `"1"`), want: vault.ErrMalformed, wantField: "keyVersion"},
		{desc: "keyVersion bool", blob: field("keyVersion", "true"), want: vault.ErrMalformed, wantField: "keyVersion"},
		{desc: "keyVersion null", blob: field("keyVersion", "null"), want: vault.ErrMalformed, wantField: "keyVersion"},
		{desc: "keyVersion over uint32", blob: field("keyVersion", "4294967296"), want: vault.ErrMalformed, wantField: "keyVersion"},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			got, err := k.Open(tt.blob, tt.aad)
			checkErr(t, "Open()", err, tt.want)
			if got != nil {
				t.Errorf("Open() = %q, %v; want nil plaintext on failure", got, err)
			}
			msg := err.Error()
			for _, leak := range []string{secret, w.Encrypted, string(testKey(1)), string(testKey(2))} {
				if strings.Contains(msg, leak) {
					t.Errorf("Open() error %q contains %q", msg, leak)
				}
			}
			if !strings.HasPrefix(msg, "vault: ") {
				t.Errorf("Open() error %q; want prefix %q", msg, "vault: ")
			}
			if tt.wantMsg != "" && !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("Open() error %q; want it to contain %q", msg, tt.wantMsg)
			}
			if tt.want == vault.ErrMalformed {
				var me *vault.MalformedError
				if !errors.As(err, &me) {
					t.Fatalf("Open() = %T; want *vault.MalformedError", err)
				}
				if me.Field != tt.wantField {
					t.Errorf("Open() MalformedError.Field = %q (%v); want %q", me.Field, err, tt.wantField)
				}
				if me.Reason == "" {
					t.Errorf("Open() MalformedError.Reason is empty")
				}
				// BlobVersion validates the same way, without a key.
				if _, err := vault.BlobVersion(tt.blob); !errors.Is(err, vault.ErrMalformed) {
					t.Errorf("BlobVersion() = %v; want %v", err, vault.ErrMalformed)
				}
			}
		})
	}
}

// Field order and whitespace are not part of the format; only the fields are.
func TestOpenAcceptsReorderedAndSpaced(t *testing.T) {
	k := mustNew(t, map[uint32][]byte{1: testKey(1)}, 0)
	w := decodeWire(t, mustSeal(t, k, []byte(secret), aad))
	blob := fmt.Sprintf("\n{ \"keyVersion\" : %d,\n\t\"authTag\":%q, \"iv\":%q ,\"encrypted\":%q }\n",
		w.KeyVersion, w.AuthTag, w.IV, w.Encrypted)
	got, err := k.Open([]byte(blob), aad)
	if err != nil || string(got) != secret {
		t.Errorf("Open(%s) = %q, %v; want %q, nil", blob, got, err, secret)
	}
}

func TestRotation(t *testing.T) {
	k1 := mustNew(t, map[uint32][]byte{1: testKey(1)}, 0)
	old := mustSeal(t, k1, []byte(secret), aad)

	k12 := mustNew(t, map[uint32][]byte{1: testKey(1), 2: testKey(2)}, 0)
	if got := k12.ActiveVersion(); got != 2 {
		t.Fatalf("ActiveVersion() = %d; want 2", got)
	}
	if v, err := vault.BlobVersion(mustSeal(t, k12, []byte(secret), aad)); err != nil || v != 2 {
		t.Errorf("BlobVersion(Seal()) = %d, %v; want 2, nil", v, err)
	}
	if got, err := k12.Open(old, aad); err != nil || string(got) != secret {
		t.Fatalf("Open(old) = %q, %v; want %q, nil", got, err, secret)
	}

	rewrapped, changed, err := k12.Rewrap(old, aad)
	if err != nil || !changed {
		t.Fatalf("Rewrap(old) = changed %v, %v; want true, nil", changed, err)
	}
	if v, err := vault.BlobVersion(rewrapped); err != nil || v != 2 {
		t.Errorf("BlobVersion(Rewrap()) = %d, %v; want 2, nil", v, err)
	}
	if _, err := k12.Open(rewrapped, []byte("some/other/field")); !errors.Is(err, vault.ErrAuthFailed) {
		t.Errorf("Open(rewrapped, other aad) = %v; want %v (the AAD binding survives)", err, vault.ErrAuthFailed)
	}

	// Version 1 retired: only the rewrapped blob still opens.
	k2 := mustNew(t, map[uint32][]byte{2: testKey(2)}, 0)
	if got, err := k2.Open(rewrapped, aad); err != nil || string(got) != secret {
		t.Errorf("Open(rewrapped) with keyring{2} = %q, %v; want %q, nil", got, err, secret)
	}
	if _, err := k2.Open(old, aad); !errors.Is(err, vault.ErrUnknownKeyVersion) {
		t.Errorf("Open(old) with keyring{2} = %v; want %v", err, vault.ErrUnknownKeyVersion)
	}

	again, changed, err := k12.Rewrap(rewrapped, aad)
	if err != nil || changed {
		t.Fatalf("Rewrap(rewrapped) = changed %v, %v; want false, nil", changed, err)
	}
	if !bytes.Equal(again, rewrapped) || &again[0] != &rewrapped[0] {
		t.Errorf("Rewrap(rewrapped) returned new bytes; want the original slice")
	}

	// An active blob is still verified before being reported unchanged.
	w := decodeWire(t, rewrapped)
	w.AuthTag = flipBit(t, w.AuthTag)
	out, changed, err := k12.Rewrap(w.encode(t), aad)
	if !errors.Is(err, vault.ErrAuthFailed) || changed || out != nil {
		t.Errorf("Rewrap(tampered) = %q, %v, %v; want nil, false, %v", out, changed, err, vault.ErrAuthFailed)
	}
	if _, _, err := k12.Rewrap(old, []byte("other")); !errors.Is(err, vault.ErrAuthFailed) {
		t.Errorf("Rewrap(old, other aad) = %v; want %v", err, vault.ErrAuthFailed)
	}
	if _, _, err := k12.Rewrap([]byte("{}"), aad); !errors.Is(err, vault.ErrMalformed) {
		t.Errorf("Rewrap({}) = %v; want %v", err, vault.ErrMalformed)
	}

	// An explicit active version older than the newest one is honoured.
	pinned := mustNew(t, map[uint32][]byte{1: testKey(1), 2: testKey(2)}, 1)
	if v, _ := vault.BlobVersion(mustSeal(t, pinned, []byte(secret), aad)); v != 1 {
		t.Errorf("Seal() with active 1 recorded version %d; want 1", v)
	}
}

func TestNew(t *testing.T) {
	for _, tt := range []struct {
		desc    string
		keys    map[uint32][]byte
		active  uint32
		wantErr string // substring; empty means success
	}{
		{desc: "nil map", keys: nil, wantErr: "no keys"},
		{desc: "empty map", keys: map[uint32][]byte{}, wantErr: "no keys"},
		{desc: "31-byte key", keys: map[uint32][]byte{1: testKey(1), 2: testKey(2)[:31]}, wantErr: "key version 2 is 31 bytes"},
		{desc: "33-byte key", keys: map[uint32][]byte{7: append(testKey(7), 0)}, wantErr: "key version 7 is 33 bytes"},
		{desc: "empty key", keys: map[uint32][]byte{1: nil}, wantErr: "key version 1 is 0 bytes"},
		{desc: "version 0", keys: map[uint32][]byte{0: testKey(0), 1: testKey(1)}, wantErr: "version 0"},
		{desc: "active missing", keys: map[uint32][]byte{1: testKey(1), 2: testKey(2)}, active: 3,
			wantErr: "active key version 3 is not configured (configured: 1, 2)"},
		{desc: "active given", keys: map[uint32][]byte{1: testKey(1), 2: testKey(2)}, active: 1},
		{desc: "active defaults to highest", keys: map[uint32][]byte{10: testKey(1), 2: testKey(2)}},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			k, err := vault.New(tt.keys, tt.active)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("New() = %v; want error containing %q", err, tt.wantErr)
				}
				if k != nil {
					t.Errorf("New() = %v, %v; want nil keyring on error", k, err)
				}
				for _, key := range tt.keys {
					if len(key) > 0 && strings.Contains(err.Error(), string(key)) {
						t.Errorf("New() error %q contains key bytes", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("New() = %v; want nil error", err)
			}
			want := tt.active
			if want == 0 {
				want = slices.Max(slices.Collect(maps.Keys(tt.keys)))
			}
			if got := k.ActiveVersion(); got != want {
				t.Errorf("ActiveVersion() = %d; want %d", got, want)
			}
		})
	}
}

func TestVersions(t *testing.T) {
	k := mustNew(t, map[uint32][]byte{5: testKey(5), 1: testKey(1), 3: testKey(3)}, 3)
	if got, want := k.Versions(), []uint32{1, 3, 5}; !slices.Equal(got, want) {
		t.Fatalf("Versions() = %v; want %v", got, want)
	}
	k.Versions()[0] = 99
	if got, want := k.Versions(), []uint32{1, 3, 5}; !slices.Equal(got, want) {
		t.Errorf("Versions() after mutating a returned slice = %v; want %v", got, want)
	}
}

// New must not alias the caller's key slices.
func TestNewCopiesKeys(t *testing.T) {
	key := testKey(1)
	k := mustNew(t, map[uint32][]byte{1: key}, 0)
	fp, _ := k.Fingerprint(1)
	blob := mustSeal(t, k, []byte(secret), aad)
	clear(key)
	if got, err := k.Open(blob, aad); err != nil || string(got) != secret {
		t.Errorf("Open() after wiping the caller's key = %q, %v; want %q, nil", got, err, secret)
	}
	if got, _ := k.Fingerprint(1); got != fp {
		t.Errorf("Fingerprint(1) after wiping the caller's key = %s; want %s", got, fp)
	}
}

func TestFingerprint(t *testing.T) {
	k := mustNew(t, map[uint32][]byte{1: testKey(1), 2: testKey(2)}, 0)

	mac := hmac.New(sha256.New, testKey(1))
	mac.Write([]byte("extapi key check v1"))
	want := hex.EncodeToString(mac.Sum(nil)[:16])

	fp, ok := k.Fingerprint(1)
	if !ok || fp != want {
		t.Fatalf("Fingerprint(1) = %q, %v; want %q, true", fp, ok, want)
	}
	if fp2, _ := k.Fingerprint(2); fp2 == fp {
		t.Errorf("Fingerprint(2) = Fingerprint(1) = %s; want distinct", fp)
	}
	if fp, ok := k.Fingerprint(3); ok || fp != "" {
		t.Errorf("Fingerprint(3) = %q, %v; want \"\", false", fp, ok)
	}

	other := mustNew(t, map[uint32][]byte{1: testKey(9)}, 0)
	otherFP, _ := other.Fingerprint(1)

	for _, tt := range []struct {
		desc    string
		version uint32
		fp      string
		want    error
	}{
		{desc: "match", version: 1, fp: want},
		{desc: "match upper-case hex", version: 1, fp: strings.ToUpper(want)},
		{desc: "unknown version", version: 3, fp: want},
		{desc: "wrong key", version: 1, fp: otherFP, want: vault.ErrWrongKey},
		{desc: "other version's fingerprint", version: 2, fp: want, want: vault.ErrWrongKey},
		{desc: "empty", version: 1, fp: "", want: vault.ErrWrongKey},
		{desc: "not hex", version: 1, fp: "zz" + want[2:], want: vault.ErrWrongKey},
		{desc: "truncated", version: 1, fp: want[:30], want: vault.ErrWrongKey},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			err := k.CheckFingerprint(tt.version, tt.fp)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("CheckFingerprint() = %v; want nil", err)
				}
				return
			}
			checkErr(t, "CheckFingerprint()", err, tt.want)
			if wantMsg := fmt.Sprintf("version %d", tt.version); !strings.Contains(err.Error(), wantMsg) {
				t.Errorf("CheckFingerprint() = %q; want it to name %q", err, wantMsg)
			}
		})
	}
}

func TestGenerateKey(t *testing.T) {
	a, err := vault.GenerateKey()
	if err != nil || len(a) != 32 {
		t.Fatalf("GenerateKey() = %d bytes, %v; want 32, nil", len(a), err)
	}
	b, _ := vault.GenerateKey()
	if bytes.Equal(a, b) {
		t.Errorf("GenerateKey() twice = same key; want random")
	}
	k := mustNew(t, map[uint32][]byte{1: a}, 0)
	if got, err := k.Open(mustSeal(t, k, []byte(secret), aad), aad); err != nil || string(got) != secret {
		t.Errorf("Open() with a generated key = %q, %v; want %q, nil", got, err, secret)
	}
}

func TestZeroKeyring(t *testing.T) {
	var k vault.Keyring
	if _, err := k.Seal([]byte(secret), aad); err == nil {
		t.Errorf("Seal() on a zero Keyring = nil error; want an error")
	}
	valid := mustSeal(t, mustNew(t, map[uint32][]byte{1: testKey(1)}, 0), []byte(secret), aad)
	if _, err := k.Open(valid, aad); !errors.Is(err, vault.ErrUnknownKeyVersion) {
		t.Errorf("Open() on a zero Keyring = %v; want %v", err, vault.ErrUnknownKeyVersion)
	}
}

func TestConcurrent(t *testing.T) {
	k := mustNew(t, map[uint32][]byte{1: testKey(1), 2: testKey(2)}, 0)
	old := mustSeal(t, mustNew(t, map[uint32][]byte{1: testKey(1)}, 0), []byte(secret), aad)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			pt := []byte(fmt.Sprintf("%s-%d", secret, g))
			for range 200 {
				blob, err := k.Seal(pt, aad)
				if err != nil {
					t.Errorf("Seal() = %v", err)
					return
				}
				if got, err := k.Open(blob, aad); err != nil || !bytes.Equal(got, pt) {
					t.Errorf("Open() = %q, %v; want %q, nil", got, err, pt)
					return
				}
				if _, _, err := k.Rewrap(old, aad); err != nil {
					t.Errorf("Rewrap() = %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// referenceOpen decrypts blob with encoding/json, encoding/base64 and
// crypto/cipher directly: an independent reading of the format.
func referenceOpen(blob []byte, keys map[uint32][]byte, aad []byte) ([]byte, error) {
	var w wire
	dec := json.NewDecoder(bytes.NewReader(blob))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return nil, err
	}
	var parts [3][]byte
	for i, s := range []string{w.Encrypted, w.IV, w.AuthTag} {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, err
		}
		parts[i] = b
	}
	key, ok := keys[w.KeyVersion]
	if !ok {
		return nil, fmt.Errorf("no key %d", w.KeyVersion)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	if len(parts[1]) != gcm.NonceSize() {
		return nil, errors.New("bad nonce size")
	}
	return gcm.Open(nil, parts[1], append(parts[0], parts[2]...), aad)
}

// FuzzOpen feeds arbitrary bytes to Open. Beyond not panicking: every failure
// is exactly one of the three Open sentinels with a nil plaintext and no
// leaked secret, and every success is genuinely valid: an independent
// AES-GCM decryption agrees, and the plaintext is one the test sealed (GCM
// tags cannot be forged, so a mutated blob opens only if it still encodes
// the same nonce, ciphertext, tag and version).
func FuzzOpen(f *testing.F) {
	keys := map[uint32][]byte{1: testKey(1), 2: testKey(2)}
	aad := []byte("external_apis/eapi_fuzz/api_config.oauth2.client_secret")
	plaintexts := []string{"", secret, strings.Repeat("refresh-token.", 20)}
	k1 := mustNew(f, map[uint32][]byte{1: keys[1]}, 0)
	k := mustNew(f, keys, 0)

	for _, pt := range plaintexts {
		f.Add(mustSeal(f, k, []byte(pt), aad))
		f.Add(mustSeal(f, k1, []byte(pt), aad))
	}
	valid := mustSeal(f, k, []byte(secret), aad)
	var w wire
	if err := json.Unmarshal(valid, &w); err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		"",
		"{}",
		"null",
		`[1,2]`,
		fmt.Sprintf(" { \"keyVersion\":2 , \"iv\":%q,\"authTag\":%q,\"encrypted\":%q } ", w.IV, w.AuthTag, w.Encrypted),
		fmt.Sprintf(`{"encrypted":%q,"iv":%q,"authTag":%q,"keyVersion":3}`, w.Encrypted, w.IV, w.AuthTag),
		fmt.Sprintf(`{"encrypted":%q,"iv":%q,"authTag":%q,"keyVersion":-2}`, w.Encrypted, w.IV, w.AuthTag),
		fmt.Sprintf(`{"encrypted":%q,"iv":%q,"authTag":%q,"keyVersion":2.0}`, w.Encrypted, w.IV, w.AuthTag),
		fmt.Sprintf(`{"encrypted":%q,"iv":%q,"authTag":%q,"keyVersion":2,"x":1}`, w.Encrypted, w.IV, w.AuthTag),
		fmt.Sprintf(`{"encrypted":%q,"iv":%q,"authTag":%q,"keyVersion":2,"iv":%q}`, w.Encrypted, w.IV, w.AuthTag, w.IV),
		fmt.Sprintf(`{"encrypted":%q,"iv":%q,"authTag":%q}`, w.Encrypted, w.IV, w.AuthTag),
		fmt.Sprintf(`{"encrypted":"\u0041%s","iv":%q,"authTag":%q,"keyVersion":2}`, w.Encrypted[1:], w.IV, w.AuthTag),
		string(valid) + " x",
		string(valid[:len(valid)-2]),
	} {
		f.Add([]byte(seed))
	}

	f.Fuzz(func(t *testing.T, blob []byte) {
		pt, err := k.Open(blob, aad)
		if err != nil {
			if pt != nil {
				t.Fatalf("Open() = %q, %v; want nil plaintext on failure", pt, err)
			}
			n := 0
			for _, s := range []error{vault.ErrMalformed, vault.ErrUnknownKeyVersion, vault.ErrAuthFailed} {
				if errors.Is(err, s) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("Open() = %v; want exactly one of ErrMalformed, ErrUnknownKeyVersion, ErrAuthFailed", err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("Open() error %q leaks the plaintext", err)
			}
			if _, verr := vault.BlobVersion(blob); errors.Is(err, vault.ErrMalformed) != errors.Is(verr, vault.ErrMalformed) {
				t.Fatalf("Open() = %v but BlobVersion() = %v; want both malformed or neither", err, verr)
			}
			return
		}
		if pt == nil {
			t.Fatalf("Open() = nil, nil; want a non-nil plaintext on success")
		}
		if !slices.Contains(plaintexts, string(pt)) {
			t.Fatalf("Open() = %q, nil; not a plaintext this test sealed", pt)
		}
		ref, rerr := referenceOpen(blob, keys, aad)
		if rerr != nil || !bytes.Equal(ref, pt) {
			t.Fatalf("Open() = %q, nil but reference open = %q, %v", pt, ref, rerr)
		}
		v, verr := vault.BlobVersion(blob)
		if verr != nil || (v != 1 && v != 2) {
			t.Fatalf("BlobVersion() = %d, %v after a successful Open()", v, verr)
		}
		if _, err := k.Open(blob, []byte("another/row/field")); !errors.Is(err, vault.ErrAuthFailed) {
			t.Fatalf("Open(other aad) = %v; want %v", err, vault.ErrAuthFailed)
		}
	})
}

func benchKeyring(b *testing.B) *vault.Keyring {
	return mustNew(b, map[uint32][]byte{1: testKey(1), 2: testKey(2)}, 0)
}

func BenchmarkSeal(b *testing.B) {
	k := benchKeyring(b)
	pt := bytes.Repeat([]byte("s"), 64)
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Seal(pt, aad); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	k := benchKeyring(b)
	pt := bytes.Repeat([]byte("s"), 64)
	blob := mustSeal(b, k, pt, aad)
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Open(blob, aad); err != nil {
			b.Fatal(err)
		}
	}
}
