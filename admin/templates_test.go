package admin_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"testing"

	"github.com/extapi/extapi/providers"
)

// serviceAccountJSON is a Google-style service-account key file with a fresh RSA key.
func serviceAccountJSON(t testing.TB) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]string{"type": "service_account", "client_email": "svc@proj.iam.gserviceaccount.com",
		"private_key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), "token_uri": "https://oauth2.googleapis.com/token"})
	return string(b)
}

// TestEveryTemplateCreatesAValidConfig creates an API from each template with only its secrets
// (and a connection with what it needs), through POST /admin/external-apis.
func TestEveryTemplateCreatesAValidConfig(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		list := e.do("GET", "/admin/templates", e.boot, nil).want(t, http.StatusOK)
		if n, _ := list.get("count").(float64); int(n) != len(providers.All()) {
			t.Fatalf("GET /admin/templates count = %v; want %d", list.get("count"), len(providers.All()))
		}
		e.do("GET", "/admin/templates/nope", e.boot, nil).want(t, http.StatusNotFound)
		sa := serviceAccountJSON(t)
		for _, tm := range providers.All() {
			t.Run(tm.Slug, func(t *testing.T) {
				e := e.with(t)
				got := e.do("GET", "/admin/templates/"+tm.Slug, e.boot, nil).want(t, http.StatusOK)
				if got.str("template.base_url") != tm.BaseURL {
					t.Errorf("template.base_url = %q; want %q", got.str("template.base_url"), tm.BaseURL)
				}
				cfg := map[string]any{}
				switch {
				case tm.OAuth2 != nil && tm.OAuth2.GrantType == "jwt_bearer":
					cfg["oauth2"] = map[string]any{"service_account_key": sa}
				case tm.OAuth2 != nil:
					cfg["oauth2"] = map[string]any{"client_id": newSecret("client-id"), "client_secret": newSecret("client-secret")}
				case tm.OAuth1 != nil:
					cfg["oauth1"] = map[string]any{"consumer_key": newSecret("ck"), "consumer_secret": newSecret("cs")}
				}
				body := map[string]any{"template": tm.Slug, "api_config": cfg}
				r := e.do("POST", "/admin/external-apis", e.boot, body)
				if r.status != http.StatusCreated {
					t.Fatalf("create from template %s = %d %s", tm.Slug, r.status, r.raw)
				}
				id := r.str("external_api.id")
				if r.str("external_api.slug") != tm.Slug || r.str("external_api.api_config.base_url") != tm.BaseURL ||
					r.str("external_api.api_config.auth_type") != tm.AuthType {
					t.Errorf("created = %s; want the template's slug, base_url and auth_type", r.raw)
				}
				pd := map[string]any{}
				for _, k := range tm.ProviderData {
					pd[k] = "https://acme.example.com"
				}
				cred := map[string]any{}
				switch tm.AuthType {
				case "api_key":
					cred["api_key"] = newSecret("key")
				case "bearer":
					cred["access_token"] = newSecret("token")
				case "basic", "aws_sigv4":
					cred["username"], cred["password"] = newSecret("user"), newSecret("pass")
				case "oauth1":
					cred["oauth_token"], cred["oauth_token_secret"] = newSecret("tok"), newSecret("toksec")
				}
				c := e.do("POST", "/admin/external-apis/"+id+"/connections", e.boot,
					map[string]any{"connection_name": "default", "credentials": cred, "provider_data": pd})
				if c.status != http.StatusCreated {
					t.Errorf("connection of %s = %d %s", tm.Slug, c.status, c.raw)
				}
			})
		}
	})
}

func TestTemplateOverridesAndSandbox(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		r := e.do("POST", "/admin/external-apis", e.boot, map[string]any{
			"template": "paypal", "slug": "paypal-eu", "is_sandbox": true, "environment": "staging",
			"api_config": map[string]any{"oauth2": map[string]any{"client_id": newSecret("id"), "client_secret": newSecret("s")},
				"rate_limit": map[string]any{"requests_per_second": 5}},
		}).want(t, http.StatusCreated)
		if r.str("external_api.api_config.base_url") != "https://api-m.sandbox.paypal.com" || r.str("external_api.slug") != "paypal-eu" ||
			r.str("external_api.api_config.oauth2.token_url") != "https://api-m.sandbox.paypal.com/v1/oauth2/token" ||
			r.str("external_api.api_config.oauth2.grant_type") != "client_credentials" {
			t.Errorf("created = %s; want the sandbox URLs (base and token), the overrides and the template's grant type", r.raw)
		}
		// Stripe's template header resolves {{api_version}} per request; its value is stored as written.
		s := e.do("POST", "/admin/external-apis", e.boot, map[string]any{"template": "stripe"}).want(t, http.StatusCreated)
		if s.str("external_api.api_config.headers.Stripe-Version") != "{{api_version}}" {
			t.Errorf("stripe headers = %v", s.get("external_api.api_config.headers"))
		}
		for _, c := range []struct {
			desc string
			body map[string]any
			path string
		}{
			{"unknown template", map[string]any{"template": "nope"}, "template"},
			{"template not a string", map[string]any{"template": 3}, "template"},
			{"placeholder in port", map[string]any{"template": "stripe", "slug": "s2", "api_config": map[string]any{"base_url": "https://api.stripe.com:{{provider_data.p}}/v1"}}, "api_config.base_url"},
			{"placeholder in user info", map[string]any{"template": "stripe", "slug": "s3", "api_config": map[string]any{"base_url": "https://{{provider_data.u}}@api.stripe.com/v1"}}, "api_config.base_url"},
			{"placeholder in query", map[string]any{"template": "stripe", "slug": "s4", "api_config": map[string]any{"base_url": "https://api.stripe.com/v1?x={{provider_data.q}}"}}, "api_config.base_url"},
			{"api_version missing", map[string]any{"template": "stripe", "slug": "s5", "api_config": map[string]any{"api_version": nil}}, "api_config.headers.Stripe-Version"},
			{"bad service account key", map[string]any{"template": "google-analytics", "api_config": map[string]any{"oauth2": map[string]any{"service_account_key": newSecret("not-json")}}}, "api_config.oauth2.service_account_key"},
			{"sigv4 without region", map[string]any{"template": "amazon-s3", "slug": "s3x", "api_config": map[string]any{"aws_sigv4": map[string]any{"region": ""}}}, "api_config.aws_sigv4.region"},
		} {
			r := e.do("POST", "/admin/external-apis", e.boot, c.body)
			if r.status != http.StatusBadRequest || r.detail(c.path) == "" {
				t.Errorf("%s: = %d %s; want 400 at %s", c.desc, r.status, r.raw, c.path)
			}
		}
	})
}
