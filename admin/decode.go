package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxBody is the largest request body accepted (413 above).
const maxBody = 1 << 20

// maxDepth bounds the nesting of free-form objects (provider_data, additional_data): deep enough for
// any provider, shallow enough for every database's JSON type.
const maxDepth = 32

// readObject reads the request body as one JSON object, kept generic (numbers as json.Number) so
// that PATCH can tell an omitted field from null. Every failure names what is wrong and, for
// malformed JSON, the byte offset — never the bytes themselves, which may be a secret.
func readObject(w http.ResponseWriter, r *http.Request) (map[string]any, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return nil, errMediaType
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var big *http.MaxBytesError
		if errors.As(err, &big) {
			return nil, err
		}
		return nil, withMessage(errMalformed, "could not read the request body")
	}
	return parseObject(body)
}

// parseObject decodes body as exactly one JSON object.
func parseObject(body []byte) (map[string]any, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, withMessage(errMalformed, "the request body is empty; send a JSON object")
	}
	if !utf8.Valid(body) {
		return nil, withMessage(errMalformed, fmt.Sprintf("malformed JSON: invalid UTF-8 at byte offset %d", invalidUTF8At(body)))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		var syn *json.SyntaxError
		switch {
		case errors.As(err, &syn):
			return nil, withMessage(errMalformed, fmt.Sprintf("malformed JSON at byte offset %d", syn.Offset))
		case errors.Is(err, io.ErrUnexpectedEOF):
			return nil, withMessage(errMalformed, fmt.Sprintf("malformed JSON: unexpected end at byte offset %d", len(body)))
		default:
			return nil, withMessage(errMalformed, "malformed JSON")
		}
	}
	if off := dec.InputOffset(); len(bytes.TrimSpace(body[off:])) > 0 {
		return nil, withMessage(errMalformed, fmt.Sprintf("malformed JSON: unexpected data after the object at byte offset %d", off))
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, withMessage(errMalformed, "the request body must be a JSON object")
	}
	return obj, nil
}

func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// checkShape compares a generic JSON value with the Go type it will be decoded into, and records
// every unknown field and every value of the wrong JSON type with its path. null is accepted for
// any field (it means "not given" on create and "clear" on PATCH) but not as an array element.
func checkShape(v any, t reflect.Type, path string, p *problems) {
	if v == nil {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Interface:
		checkFree(v, path, 0, p)
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			p.add(path, "must be an object")
			return
		}
		fields := jsonFields(t)
		keys := sortedKeys(obj)
		for _, k := range keys {
			f, ok := fields[k]
			if !ok {
				p.add(join(path, k), "unknown field")
				continue
			}
			checkShape(obj[k], f, join(path, k), p)
		}
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			p.add(path, "must be an object")
			return
		}
		for _, k := range sortedKeys(obj) {
			if k == "" || strings.ContainsRune(k, 0) {
				p.add(path, "keys must be non-empty and free of NUL characters")
				continue
			}
			checkShape(obj[k], t.Elem(), join(path, k), p)
		}
	case reflect.Slice:
		arr, ok := v.([]any)
		if !ok {
			p.add(path, "must be an array")
			return
		}
		for i, e := range arr {
			ep := path + "[" + strconv.Itoa(i) + "]"
			if e == nil {
				p.add(ep, "must not be null")
				continue
			}
			checkShape(e, t.Elem(), ep, p)
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			p.add(path, "must be a string")
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			p.add(path, "must be true or false")
		}
	case reflect.Int:
		n, ok := v.(json.Number)
		if !ok {
			p.add(path, "must be an integer")
			return
		}
		if _, err := strconv.ParseInt(string(n), 10, 32); err != nil {
			p.add(path, "must be an integer between -2147483648 and 2147483647")
		}
	default:
		p.add(path, "has a type this server cannot read") // a bug of the input types, not the client's
	}
}

// checkFree checks a free-form value (provider_data, additional_data): bounded depth, numbers
// every database can store, and no NUL characters (PostgreSQL rejects them in text and JSON).
func checkFree(v any, path string, depth int, p *problems) {
	if depth > maxDepth {
		p.add(path, fmt.Sprintf("nests deeper than %d levels", maxDepth))
		return
	}
	switch x := v.(type) {
	case map[string]any:
		for _, k := range sortedKeys(x) {
			if strings.ContainsRune(k, 0) {
				p.add(path, "keys must not contain NUL characters")
				continue
			}
			checkFree(x[k], join(path, k), depth+1, p)
		}
	case []any:
		for i, e := range x {
			checkFree(e, path+"["+strconv.Itoa(i)+"]", depth+1, p)
		}
	case string:
		if strings.ContainsRune(x, 0) {
			p.add(path, "must not contain NUL characters")
		}
	case json.Number:
		if _, err := strconv.ParseFloat(string(x), 64); err != nil {
			p.add(path, "is a number out of range")
		}
	}
}

// jsonFields maps the JSON names of a struct's fields (embedded structs flattened) to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			for k, v := range jsonFields(f.Type) {
				out[k] = v
			}
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// mergePatch applies an RFC 7396 JSON merge patch to target (which it modifies and returns): a
// null removes the member, an object merges into an object, anything else replaces. Members at
// the paths for which whole(path) is true (secrets, whose previous value is not in target) are
// replaced as a whole rather than merged.
func mergePatch(target, patch map[string]any, path string, whole func(string) bool) map[string]any {
	if target == nil {
		target = map[string]any{}
	}
	for k, pv := range patch {
		kp := join(path, k)
		switch pv := pv.(type) {
		case nil:
			delete(target, k)
		case map[string]any:
			if whole(kp) {
				target[k] = pv // its null members are data, not instructions
				continue
			}
			tv, _ := target[k].(map[string]any)
			target[k] = mergePatch(tv, pv, kp, whole)
		default:
			target[k] = pv
		}
	}
	return target
}

// lookup returns the value at a dotted path of a generic JSON object, and whether it is present
// (a present null returns nil, true).
func lookup(obj map[string]any, path string) (any, bool) {
	var cur any = obj
	for _, seg := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		cur, ok = m[seg]
		if !ok {
			return nil, false
		}
	}
	return cur, true
}

// toGeneric turns a typed value into the generic form readObject produces.
func toGeneric(v any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		panic("admin: marshal of an input type failed: " + err.Error())
	}
	out, err := parseObject(b)
	if err != nil {
		panic("admin: generic form of an input type: " + err.Error())
	}
	return out
}

// decodeInto decodes a generic object (already checked by checkShape) into dst, strictly.
func decodeInto(obj map[string]any, dst any) error {
	b, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		// checkShape accepts only what decodes; reaching here is a bug, reported without the value.
		return fmt.Errorf("admin: decode of a checked body failed: %T", err)
	}
	return nil
}
