// Package vault seals and opens secrets with a versioned AES-256-GCM keyring.
//
// A sealed value is a small JSON object that records the key version that
// sealed it, so keys can be rotated without losing data:
//
//	{"encrypted":"<b64>","iv":"<b64>","authTag":"<b64>","keyVersion":N}
//
// Every value is sealed with additional authenticated data (AAD) naming the
// row and field it belongs to, so a blob copied to another row or field fails
// to open instead of silently decrypting there.
package vault

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

const (
	keySize   = 32 // AES-256
	nonceSize = 12 // the GCM standard nonce
	tagSize   = 16 // the full GCM tag

	// fingerprintLabel is the HMAC message of the key check value; changing it
	// invalidates every fingerprint already stored.
	fingerprintLabel = "extapi key check v1"
)

// Sentinel errors. Match them with errors.Is; messages of the wrapped errors
// name versions and fields but never plaintext, key bytes or ciphertext.
var (
	// ErrMalformed: the blob is not a well-formed sealed value. The error is a
	// *MalformedError naming the offending field.
	ErrMalformed = errors.New("vault: malformed sealed value")

	// ErrUnknownKeyVersion: the blob was sealed with a key version that is
	// not configured (never was, or has been retired).
	ErrUnknownKeyVersion = errors.New("vault: unknown key version")

	// ErrAuthFailed: GCM authentication failed. The blob was tampered with,
	// is bound (by its AAD) to a different row or field, or the key
	// configured under its version is not the key that sealed it.
	ErrAuthFailed = errors.New("vault: authentication failed")

	// ErrWrongKey: the key configured for a version does not match the
	// fingerprint recorded for that version.
	ErrWrongKey = errors.New("vault: wrong key")
)

// MalformedError describes why a blob is not a valid sealed value.
// errors.Is(err, ErrMalformed) is true for it.
type MalformedError struct {
	Field  string // JSON field at fault; empty when the blob as a whole is
	Reason string // never contains bytes of the blob's values
}

func (e *MalformedError) Error() string {
	if e.Field == "" {
		return "vault: malformed sealed value: " + e.Reason
	}
	return fmt.Sprintf("vault: malformed sealed value: field %q: %s", e.Field, e.Reason)
}

// Is makes errors.Is(err, ErrMalformed) true.
func (e *MalformedError) Is(target error) bool { return target == ErrMalformed }

// versionError carries a message naming a key version and unwraps to one of
// the sentinels.
type versionError struct {
	msg string
	err error
}

func (e *versionError) Error() string { return e.msg }
func (e *versionError) Unwrap() error { return e.err }

// Keyring holds one cipher.AEAD per key version, built once in New. It keeps
// no raw key bytes. A Keyring is immutable and safe for concurrent use.
type Keyring struct {
	aeads        map[uint32]cipher.AEAD
	fingerprints map[uint32]string
	versions     []uint32 // ascending
	active       uint32
}

// New builds a keyring. keys maps version (>=1) to a 32-byte key. active is
// the version that seals; 0 means the highest version. The key slices are not
// retained, so the caller may wipe them once New returns.
func New(keys map[uint32][]byte, active uint32) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("vault: no keys configured")
	}
	k := &Keyring{
		aeads:        make(map[uint32]cipher.AEAD, len(keys)),
		fingerprints: make(map[uint32]string, len(keys)),
		versions:     make([]uint32, 0, len(keys)),
	}
	for v := range keys {
		k.versions = append(k.versions, v)
	}
	slices.Sort(k.versions)
	for _, v := range k.versions {
		key := keys[v]
		if v == 0 {
			return nil, errors.New("vault: key version 0 is invalid; versions start at 1")
		}
		if len(key) != keySize {
			return nil, fmt.Errorf("vault: key version %d is %d bytes; want %d", v, len(key), keySize)
		}
		block, err := aes.NewCipher(key) // copies the key into its schedule
		if err != nil {
			return nil, fmt.Errorf("vault: key version %d: %w", v, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("vault: key version %d: %w", v, err)
		}
		k.aeads[v] = aead
		k.fingerprints[v] = fingerprint(key)
	}
	if active == 0 {
		active = k.versions[len(k.versions)-1]
	}
	if _, ok := k.aeads[active]; !ok {
		return nil, fmt.Errorf("vault: active key version %d is not configured (configured: %s)",
			active, k.configured())
	}
	k.active = active
	return k, nil
}

// ActiveVersion returns the key version that Seal uses.
func (k *Keyring) ActiveVersion() uint32 { return k.active }

// Versions returns the configured key versions in ascending order.
func (k *Keyring) Versions() []uint32 { return slices.Clone(k.versions) }

// Seal encrypts plaintext with the active key and a fresh random 12-byte
// nonce, binding aad (e.g. "external_apis/eapi_x/api_config.oauth2.client_secret").
// It returns {"encrypted":"<b64>","iv":"<b64>","authTag":"<b64>","keyVersion":N}
// with the fields always in that order. An empty plaintext is allowed.
func (k *Keyring) Seal(plaintext, aad []byte) ([]byte, error) {
	aead := k.aeads[k.active]
	if aead == nil {
		return nil, errors.New("vault: Keyring not built with New")
	}
	var nonce [nonceSize]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, fmt.Errorf("vault: reading a random nonce: %w", err)
	}
	sealed := aead.Seal(make([]byte, 0, len(plaintext)+tagSize), nonce[:], plaintext, aad)
	ct, tag := sealed[:len(plaintext)], sealed[len(plaintext):]

	enc := base64.StdEncoding
	n := len(`{"encrypted":"","iv":"","authTag":"","keyVersion":}`) +
		enc.EncodedLen(len(ct)) + enc.EncodedLen(nonceSize) + enc.EncodedLen(tagSize) + 10
	out := make([]byte, 0, n)
	out = append(out, `{"encrypted":"`...)
	out = enc.AppendEncode(out, ct)
	out = append(out, `","iv":"`...)
	out = enc.AppendEncode(out, nonce[:])
	out = append(out, `","authTag":"`...)
	out = enc.AppendEncode(out, tag)
	out = append(out, `","keyVersion":`...)
	out = strconv.AppendUint(out, uint64(k.active), 10)
	out = append(out, '}')
	return out, nil
}

// Open parses and decrypts a blob sealed with the same aad. It never panics,
// and on failure it returns a nil plaintext and an error matching
// ErrMalformed, ErrUnknownKeyVersion or ErrAuthFailed. A non-nil (possibly
// empty) plaintext is returned only when the blob authenticates.
func (k *Keyring) Open(blob, aad []byte) ([]byte, error) {
	s, err := parse(blob)
	if err != nil {
		return nil, err
	}
	return k.open(s, aad)
}

func (k *Keyring) open(s sealedValue, aad []byte) ([]byte, error) {
	aead, ok := k.aeads[s.version]
	if !ok {
		return nil, &versionError{
			msg: fmt.Sprintf("vault: sealed with key version %d, which is not configured (configured: %s)",
				s.version, k.configured()),
			err: ErrUnknownKeyVersion,
		}
	}
	// s.ctTag is ciphertext||tag; decrypt in place. The result is non-nil even
	// for an empty plaintext, so callers can tell "empty secret" from failure.
	pt, err := aead.Open(s.ctTag[:0], s.iv, s.ctTag, aad)
	if err != nil {
		return nil, &versionError{
			msg: fmt.Sprintf("vault: authentication failed: the sealed value was tampered with, "+
				"bound to a different row or field, or the key for version %d is wrong", s.version),
			err: ErrAuthFailed,
		}
	}
	if pt == nil {
		pt = []byte{}
	}
	return pt, nil
}

// Rewrap re-seals blob with the active key if it was sealed with another
// version. A blob already at the active version is still opened, to be sure
// it is sound, and returned unchanged (the same slice) with changed=false.
func (k *Keyring) Rewrap(blob, aad []byte) (out []byte, changed bool, err error) {
	s, err := parse(blob)
	if err != nil {
		return nil, false, err
	}
	pt, err := k.open(s, aad)
	if err != nil {
		return nil, false, err
	}
	defer clear(pt)
	if s.version == k.active {
		return blob, false, nil
	}
	out, err = k.Seal(pt, aad)
	if err != nil {
		return nil, false, err
	}
	return out, true, nil
}

// BlobVersion reports the key version recorded in blob without decrypting.
// The whole blob is validated; a malformed one yields ErrMalformed.
func BlobVersion(blob []byte) (uint32, error) {
	s, err := parse(blob)
	if err != nil {
		return 0, err
	}
	return s.version, nil
}

// Fingerprint returns the key check value for version: the hex of the first
// 16 bytes of HMAC-SHA256(key, "extapi key check v1"). Stored beside the data,
// it lets start-up detect a wrong key configured under a known version.
// ok is false if version is not configured.
func (k *Keyring) Fingerprint(version uint32) (fp string, ok bool) {
	fp, ok = k.fingerprints[version]
	return fp, ok
}

// CheckFingerprint returns an error matching ErrWrongKey if the key
// configured for version does not match fp. It returns nil if it matches or
// if version is not configured (a retired key has nothing to check).
func (k *Keyring) CheckFingerprint(version uint32, fp string) error {
	want, ok := k.fingerprints[version]
	if !ok {
		return nil
	}
	got, err := hex.DecodeString(fp)
	if err != nil || len(got) != sha256.Size/2 {
		return &versionError{
			msg: fmt.Sprintf("vault: wrong key: the recorded fingerprint for key version %d is not a valid key check value", version),
			err: ErrWrongKey,
		}
	}
	wantRaw, _ := hex.DecodeString(want)
	if !hmac.Equal(got, wantRaw) {
		return &versionError{
			msg: fmt.Sprintf("vault: wrong key: the key configured for version %d does not match "+
				"the fingerprint recorded for that version", version),
			err: ErrWrongKey,
		}
	}
	return nil
}

// GenerateKey returns a new 32-byte key from crypto/rand.
func GenerateKey() ([]byte, error) {
	key := make([]byte, keySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("vault: generating a key: %w", err)
	}
	return key, nil
}

func fingerprint(key []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(fingerprintLabel))
	return hex.EncodeToString(mac.Sum(nil)[:sha256.Size/2])
}

// configured lists the versions for error messages, e.g. "1, 2".
func (k *Keyring) configured() string {
	var b strings.Builder
	for i, v := range k.versions {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.FormatUint(uint64(v), 10))
	}
	return b.String()
}

// sealedValue is a parsed blob.
type sealedValue struct {
	ctTag   []byte // ciphertext followed by the tag, ready for AEAD.Open
	iv      []byte
	version uint32
}

// Field names, exactly as Seal writes them.
const (
	fieldEncrypted  = "encrypted"
	fieldIV         = "iv"
	fieldAuthTag    = "authTag"
	fieldKeyVersion = "keyVersion"
)

var fieldNames = [...]string{fieldEncrypted, fieldIV, fieldAuthTag, fieldKeyVersion}

// rawFields holds the four field values as they appear in the blob, before
// base64 and number decoding.
type rawFields struct {
	encrypted, iv, authTag, keyVersion []byte
}

// parse decodes a blob strictly: exactly the four fields, each once, spelled
// exactly, nothing after the object. No reason in a returned error quotes the
// blob's values.
func parse(blob []byte) (sealedValue, error) {
	f, ok := splitCanonical(blob)
	if !ok {
		var err error
		if f, err = splitJSON(blob); err != nil {
			return sealedValue{}, err
		}
	}
	return f.decode()
}

// Seal's layout, split around the four values.
var (
	canonEncrypted  = []byte(`{"encrypted":"`)
	canonIV         = []byte(`","iv":"`)
	canonAuthTag    = []byte(`","authTag":"`)
	canonKeyVersion = []byte(`","keyVersion":`)
)

// splitCanonical is the fast path for blobs exactly as Seal writes them,
// which is every blob in practice; the general JSON walk costs ~60
// allocations. It accepts only input that splitJSON would read identically
// (base64 characters need no JSON escaping), and reports ok=false for
// anything else, which then takes the general path and its precise errors.
func splitCanonical(blob []byte) (f rawFields, ok bool) {
	rest, ok := bytes.CutPrefix(blob, canonEncrypted)
	if !ok {
		return rawFields{}, false
	}
	if f.encrypted, rest, ok = cutBase64(rest, canonIV); !ok {
		return rawFields{}, false
	}
	if f.iv, rest, ok = cutBase64(rest, canonAuthTag); !ok {
		return rawFields{}, false
	}
	if f.authTag, rest, ok = cutBase64(rest, canonKeyVersion); !ok {
		return rawFields{}, false
	}
	digits, ok := bytes.CutSuffix(rest, []byte("}"))
	if !ok || len(digits) == 0 || len(digits) > 10 || (digits[0] == '0' && len(digits) > 1) {
		return rawFields{}, false // JSON forbids leading zeros; let splitJSON say so
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return rawFields{}, false
		}
	}
	f.keyVersion = digits
	return f, true
}

// cutBase64 splits b at the first sep, requiring the part before it to hold
// only base64 alphabet characters.
func cutBase64(b, sep []byte) (val, rest []byte, ok bool) {
	val, rest, ok = bytes.Cut(b, sep)
	if !ok {
		return nil, nil, false
	}
	for _, c := range val {
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '=') {
			return nil, nil, false
		}
	}
	return val, rest, true
}

// splitJSON walks the JSON tokens itself rather than using json.Unmarshal
// with DisallowUnknownFields, because Unmarshal matches field names
// case-insensitively and lets a duplicate field silently win.
func splitJSON(blob []byte) (rawFields, error) {
	if len(bytes.TrimSpace(blob)) == 0 {
		return rawFields{}, &MalformedError{Reason: "empty; no sealed value is stored"}
	}
	dec := json.NewDecoder(bytes.NewReader(blob))
	dec.UseNumber()

	tok, err := dec.Token()
	if err != nil {
		return rawFields{}, notJSON(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return rawFields{}, &MalformedError{Reason: "must be a JSON object"}
	}

	var (
		f    rawFields
		seen uint8 // bit i set once fieldNames[i] is read
	)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return rawFields{}, notJSON(err)
		}
		name, ok := tok.(string)
		if !ok { // the decoder reports non-string keys as syntax errors; be safe
			return rawFields{}, &MalformedError{Reason: "not valid JSON"}
		}
		i := slices.Index(fieldNames[:], name)
		if i < 0 {
			return rawFields{}, &MalformedError{Field: truncate(name), Reason: "unknown field"}
		}
		if seen&(1<<i) != 0 {
			return rawFields{}, &MalformedError{Field: name, Reason: "duplicate field"}
		}
		seen |= 1 << i

		val, err := dec.Token()
		if err != nil {
			return rawFields{}, notJSON(err)
		}
		if val == nil { // JSON null
			return rawFields{}, &MalformedError{Field: name, Reason: "missing (null)"}
		}
		if name == fieldKeyVersion {
			n, ok := val.(json.Number)
			if !ok {
				return rawFields{}, &MalformedError{Field: name, Reason: "must be a number"}
			}
			f.keyVersion = []byte(n)
			continue
		}
		s, ok := val.(string)
		if !ok {
			return rawFields{}, &MalformedError{Field: name, Reason: "must be a base64 string"}
		}
		switch name {
		case fieldEncrypted:
			f.encrypted = []byte(s)
		case fieldIV:
			f.iv = []byte(s)
		case fieldAuthTag:
			f.authTag = []byte(s)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return rawFields{}, notJSON(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return rawFields{}, &MalformedError{Reason: "trailing data after the JSON object"}
	}
	for i, name := range fieldNames {
		if seen&(1<<i) == 0 {
			return rawFields{}, &MalformedError{Field: name, Reason: "missing"}
		}
	}
	return f, nil
}

// decode checks and decodes the field values, in a fixed order so both
// parsing paths report the same error for the same values.
func (f rawFields) decode() (sealedValue, error) {
	var (
		s   sealedValue
		err error
	)
	if s.version, err = parseVersion(f.keyVersion); err != nil {
		return sealedValue{}, err
	}
	if s.iv, err = decodeBase64(fieldIV, f.iv, 0, nonceSize); err != nil {
		return sealedValue{}, err
	}
	// Decode the tag straight after the ciphertext: the layout AEAD.Open wants.
	ct, err := decodeBase64(fieldEncrypted, f.encrypted, tagSize, -1)
	if err != nil {
		return sealedValue{}, err
	}
	if s.ctTag, err = appendBase64(ct, fieldAuthTag, f.authTag, tagSize); err != nil {
		return sealedValue{}, err
	}
	return s, nil
}

// strictB64 rejects non-zero padding bits, so each value has one encoding.
var strictB64 = base64.StdEncoding.Strict()

// decodeBase64 decodes src into a new slice with spare capacity extra. want
// is the exact decoded length required, or -1 for any length.
func decodeBase64(field string, src []byte, extra, want int) ([]byte, error) {
	dst := make([]byte, 0, strictB64.DecodedLen(len(src))+extra)
	return appendBase64(dst, field, src, want)
}

// appendBase64 appends the decoded src to dst; see decodeBase64.
func appendBase64(dst []byte, field string, src []byte, want int) ([]byte, error) {
	// The decoder skips CR and LF; refuse them so the encoding is canonical.
	if bytes.ContainsAny(src, "\r\n") {
		return nil, &MalformedError{Field: field, Reason: "not valid base64 (contains a line break)"}
	}
	start := len(dst)
	out, err := strictB64.AppendDecode(dst, src)
	if err != nil {
		var ce base64.CorruptInputError
		if errors.As(err, &ce) {
			return nil, &MalformedError{Field: field, Reason: fmt.Sprintf("not valid base64 (at offset %d)", int64(ce))}
		}
		return nil, &MalformedError{Field: field, Reason: "not valid base64"}
	}
	if got := len(out) - start; want >= 0 && got != want {
		return nil, &MalformedError{Field: field, Reason: fmt.Sprintf("must decode to %d bytes, got %d", want, got)}
	}
	return out, nil
}

// parseVersion reads the keyVersion number literal.
func parseVersion(b []byte) (uint32, error) {
	s := string(b)
	if strings.HasPrefix(s, "-") {
		return 0, &MalformedError{Field: fieldKeyVersion, Reason: "must be at least 1, got a negative number"}
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		if strings.ContainsAny(s, ".eE") {
			return 0, &MalformedError{Field: fieldKeyVersion, Reason: "must be an integer"}
		}
		return 0, &MalformedError{Field: fieldKeyVersion, Reason: "out of range (max 4294967295)"}
	}
	if v == 0 {
		return 0, &MalformedError{Field: fieldKeyVersion, Reason: "must be at least 1, got 0"}
	}
	return uint32(v), nil
}

// notJSON reports a decoding error without echoing the input (a
// json.SyntaxError message quotes the offending character).
func notJSON(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &MalformedError{Reason: fmt.Sprintf("not valid JSON (at byte %d)", se.Offset)}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &MalformedError{Reason: "not valid JSON (truncated)"}
	}
	return &MalformedError{Reason: "not valid JSON"}
}

// truncate bounds an unknown field name quoted in an error.
func truncate(name string) string {
	const max = 32
	if len(name) <= max {
		return name
	}
	return strings.ToValidUTF8(name[:max], "") + "…"
}
