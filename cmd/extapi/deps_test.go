package main

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/extapi/extapi"

// forbidden lists, per package, what it may not import and why. "*" means any package of ours.
var forbidden = map[string]map[string]string{
	"vault":      {"*": "vault is the root of trust; it must stay small and auditable, importing nothing of ours"},
	"config":     {"*": "config is read by everything; it imports nothing of ours"},
	"metrics":    {"*": "metrics is a leaf every layer may use"},
	"migrations": {"*": "migrations is plain SQL; it imports nothing of ours"},
	"store": {
		"vault": "store holds sealed blobs only and never sees plaintext",
		"proxy": "store knows nothing of HTTP",
		"admin": "store knows nothing of HTTP",
		"oauth": "store is below oauth",
	},
	"oauth": {"proxy": "oauth knows nothing of the data plane", "admin": "oauth knows nothing of the management API"},
	"proxy": {
		"admin":   "the data plane does not depend on the management API",
		"webhook": "outbound and inbound traffic are separate listeners",
	},
	"admin": {"proxy": "the management API does not depend on the data plane"},
	"ratelimit": {
		"proxy": "the limiter knows nothing of HTTP", "admin": "the limiter knows nothing of HTTP",
		"oauth": "the limiter is below oauth", "vault": "the limiter holds no secrets",
	},
	"webhook": {
		"proxy": "inbound webhooks do not depend on the outbound data plane",
		"admin": "the webhook listener does not depend on the management API",
		"oauth": "verifying provider events needs no OAuth",
	},
	"providers": {
		"proxy": "the template catalogue is data; it knows nothing of HTTP listeners",
		"admin": "the template catalogue is data; admin reads it, not the reverse",
		"vault": "templates hold no secrets",
	},
}

type pkg struct {
	ImportPath string
	Imports    []string
	Name       string
}

// TestImportDirection fails when a package imports what it must not (non-test imports).
func TestImportDirection(t *testing.T) {
	cmd := exec.Command("go", "list", "-json", module+"/...")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := 0
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		seen++
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		top, _, _ := strings.Cut(rel, "/")
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			dep := strings.TrimPrefix(imp, module+"/")
			depTop, _, _ := strings.Cut(dep, "/")
			if strings.HasPrefix(dep, "cmd/") {
				t.Errorf("%s imports %s: nothing imports cmd", p.ImportPath, imp)
			}
			if depTop == top {
				continue // a package's own subpackages
			}
			rules := forbidden[top]
			if why, ok := rules["*"]; ok {
				t.Errorf("%s imports %s: %s", p.ImportPath, imp, why)
			}
			if why, ok := rules[depTop]; ok {
				t.Errorf("%s imports %s: %s", p.ImportPath, imp, why)
			}
		}
	}
	if seen < 5 {
		t.Fatalf("go list saw %d packages; want the whole module", seen)
	}
}
