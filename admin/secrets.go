package admin

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/extapi/extapi/store"
)

// Sealer seals a plaintext secret bound to its row and field by aad. *vault.Keyring implements
// it; cmd wires the two. It must be safe for concurrent use.
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
}

type secretOp int

const (
	secretKeep  secretOp = iota // not in the request: the stored value stays
	secretNew                   // a plaintext value: sealed and stored
	secretClear                 // null: removed
)

// secretEdit is what one create or PATCH does to each secret of a row.
type secretEdit struct {
	ops    map[string]secretOp
	plain  map[string][]byte
	oldSet map[string]bool // secrets set before the write
	merged map[string]any  // the row after the write, in request form (no secret values kept)
}

// readSecrets takes the secrets out of a request body. Plaintext goes only into the edit's
// plain map, from which it is sealed; old is the row's current secrets (nil on create).
func readSecrets(body, merged map[string]any, paths []string, old []store.SecretField, p *problems) *secretEdit {
	e := &secretEdit{ops: map[string]secretOp{}, plain: map[string][]byte{}, oldSet: map[string]bool{}, merged: merged}
	for _, f := range old {
		e.oldSet[f.Name] = f.Value.IsSet()
	}
	for _, path := range paths {
		v, ok := lookup(body, path)
		if !ok {
			continue
		}
		switch x := v.(type) {
		case nil:
			e.ops[path] = secretClear
		case string:
			e.ops[path], e.plain[path] = secretNew, []byte(x)
		case map[string]any: // credentials.additional_data is sealed as one JSON object
			b, err := json.Marshal(x)
			if err != nil {
				p.add(path, "must be a JSON object")
				continue
			}
			e.ops[path], e.plain[path] = secretNew, b
		}
	}
	return e
}

// set reports whether the secret at path is set after the write: given now, or kept from before
// while its section still exists.
func (e *secretEdit) set(path string) bool {
	switch e.ops[path] {
	case secretNew:
		return true
	case secretClear:
		return false
	}
	if !e.oldSet[path] {
		return false
	}
	parent := path[:strings.LastIndexByte(path, '.')]
	m, ok := lookup(e.merged, parent)
	if !ok {
		return false
	}
	_, isObj := m.(map[string]any)
	return isObj
}

// check validates every new plaintext value.
func (e *secretEdit) check(p *problems, basic bool) {
	for _, k := range sortedKeys(e.plain) {
		checkSecretValue(p, k, e.plain[k], basic)
	}
}

// apply fills the sealed values of the new row: new ones sealed with aad, kept ones copied from
// the old row (same row id, same field, so their AAD still holds), the rest cleared.
func (e *secretEdit) apply(sealer Sealer, fields []store.SecretField, old []store.SecretField, aad func(string) []byte) error {
	prev := map[string]store.Sealed{}
	for _, f := range old {
		prev[f.Name] = *f.Value
	}
	for _, f := range fields {
		switch {
		case e.ops[f.Name] == secretNew:
			b, err := sealer.Seal(e.plain[f.Name], aad(f.Name))
			if err != nil {
				return err
			}
			*f.Value = b
		case e.set(f.Name):
			*f.Value = prev[f.Name]
		default:
			*f.Value = nil
		}
	}
	return nil
}

// audit describes each secret for the audit trail: "set", "changed", "unchanged" or "cleared",
// never its value.
func (e *secretEdit) audit(paths []string, changes map[string]any) {
	for _, path := range paths {
		was, now := e.oldSet[path], e.set(path)
		switch {
		case !was && now:
			changes[path] = "set"
		case was && !now:
			changes[path] = "cleared"
		case was && now && e.ops[path] == secretNew:
			changes[path] = "changed"
		case was && now:
			changes[path] = "unchanged"
		}
	}
}

// changed reports whether the edit touches any secret.
func (e *secretEdit) changed() bool {
	for path, op := range e.ops {
		if op == secretNew || e.oldSet[path] {
			return true
		}
	}
	for path, was := range e.oldSet {
		if was && !e.set(path) {
			return true
		}
	}
	return false
}

// isSecretPath reports whether a JSON path is one of the given secret paths.
func isSecretPath(paths []string) func(string) bool {
	return func(p string) bool { return slices.Contains(paths, p) }
}
