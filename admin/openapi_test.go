package admin

import (
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
)

type openAPIDoc struct {
	OpenAPI    string                                `json:"openapi"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas map[string]map[string]any `json:"schemas"`
	} `json:"components"`
}

func loadOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	var doc openAPIDoc
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatalf("admin/openapi.json does not parse: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Fatalf("openapi = %q; want 3.1.x", doc.OpenAPI)
	}
	return doc
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// TestOpenAPIMatchesRoutes fails when a route exists that the document lacks, or the reverse;
// when their roles differ; or when the ServeMux does not serve a documented operation.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	type op struct{ method, path string }
	documented := map[op]string{}
	for path, item := range doc.Paths {
		for m, raw := range item {
			if !slices.Contains(httpMethods, m) {
				continue
			}
			var o struct {
				Role string `json:"x-extapi-role"`
			}
			if err := json.Unmarshal(raw, &o); err != nil {
				t.Fatalf("%s %s: %v", m, path, err)
			}
			documented[op{strings.ToUpper(m), path}] = o.Role
		}
	}
	s := New(Options{})
	served := map[op]bool{}
	for _, rt := range routeTable {
		k := op{rt.method, rt.path}
		served[k] = true
		role, ok := documented[k]
		if !ok {
			t.Errorf("route %s %s is not in admin/openapi.json", rt.method, rt.path)
			continue
		}
		want := rt.role.String()
		if rt.role == rolePublic {
			want = "public"
		}
		if role != want {
			t.Errorf("%s %s: x-extapi-role = %q in admin/openapi.json; the route needs %q", rt.method, rt.path, role, want)
		}
	}
	for k := range documented {
		if !served[k] {
			t.Errorf("admin/openapi.json documents %s %s, which no route serves", k.method, k.path)
		}
		// The mux itself must route a concrete request of the operation to that pattern.
		req := httptest.NewRequest(k.method, strings.ReplaceAll(k.path, "{id}", "x"), nil)
		if _, pattern := s.mux.Handler(req); pattern != k.method+" "+k.path {
			t.Errorf("ServeMux routes %s %s to %q; want the documented pattern", k.method, k.path, pattern)
		}
	}
}

// TestOpenAPIMatchesTypes holds the schemas' property names to the Go request and response types.
func TestOpenAPIMatchesTypes(t *testing.T) {
	doc := loadOpenAPI(t)
	for _, c := range []struct {
		schema string
		in     reflect.Type
		out    reflect.Type
	}{
		{"ExternalAPI", reflect.TypeFor[apiInput](), reflect.TypeFor[apiOut]()},
		{"Connection", reflect.TypeFor[connInput](), reflect.TypeFor[connOut]()},
		{"Token", reflect.TypeFor[TokenSpec](), reflect.TypeFor[tokenOut]()},
		{"AuditEvent", nil, reflect.TypeFor[auditOut]()},
	} {
		if c.in != nil {
			compareSchema(t, doc, c.schema, c.in, "readOnly")
		}
		compareSchema(t, doc, c.schema, c.out, "writeOnly")
	}
}

// compareSchema checks that the Go type's JSON fields and the schema's properties are the same
// set, apart from properties marked skip (readOnly ones for request types), recursing into
// nested objects.
func compareSchema(t *testing.T, doc openAPIDoc, name string, typ reflect.Type, skip string) {
	t.Helper()
	sch := doc.Components.Schemas[name]
	props, _ := sch["properties"].(map[string]any)
	if props == nil {
		t.Errorf("schema %s has no properties", name)
		return
	}
	fields := jsonFields(typ)
	for f, ft := range fields {
		p, ok := props[f].(map[string]any)
		if !ok {
			t.Errorf("schema %s lacks property %s of %v", name, f, typ)
			continue
		}
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ref := refOf(p); ref != "" && ref != "Secret" && ref != "SecretStatus" && ft.Kind() == reflect.Struct {
			compareSchema(t, doc, ref, ft, skip)
		}
	}
	for p, v := range props {
		if m, _ := v.(map[string]any); m[skip] == true {
			continue
		}
		if _, ok := fields[p]; !ok {
			t.Errorf("schema %s has property %s that %v lacks", name, p, typ)
		}
	}
}

func refOf(p map[string]any) string {
	if r, ok := p["$ref"].(string); ok {
		return strings.TrimPrefix(r, "#/components/schemas/")
	}
	if all, ok := p["allOf"].([]any); ok && len(all) == 1 {
		return refOf(all[0].(map[string]any))
	}
	return ""
}
