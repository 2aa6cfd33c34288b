package providers

import (
	"net/url"
	"strings"
	"testing"
)

func TestCatalogue(t *testing.T) {
	want := []string{"amazon-s3", "amazon-ses", "auth0", "dhl", "discord", "facebook-graph", "fedex", "google-analytics",
		"google-cloud-storage", "hubspot", "instagram", "mailgun", "messagebird", "microsoft-teams", "mixpanel", "okta",
		"paypal", "salesforce", "sendgrid", "slack", "square", "stripe", "twilio", "ups", "vonage", "x-twitter"}
	all := All()
	if len(all) != len(want) {
		t.Fatalf("All() has %d templates; want %d", len(all), len(want))
	}
	for i, tm := range all {
		if tm.Slug != want[i] {
			t.Errorf("All()[%d] = %s; want %s", i, tm.Slug, want[i])
		}
		if !strings.HasPrefix(tm.Docs, "https://") {
			t.Errorf("%s: docs = %q; want the provider's documentation URL", tm.Slug, tm.Docs)
		}
		if tm.Env == nil {
			t.Errorf("%s: no env variables", tm.Slug)
		}
		c := tm.Config(false)
		if c["slug"] != tm.Slug || c["api_config"].(map[string]any)["auth_type"] != tm.AuthType {
			t.Errorf("%s: Config() = %v", tm.Slug, c)
		}
	}
	if Get("stripe") == nil || Get("nope") != nil {
		t.Error("Get(stripe) or Get(nope) wrong")
	}
	if got := Get("paypal").Config(true)["api_config"].(map[string]any)["base_url"]; got != "https://api-m.sandbox.paypal.com" {
		t.Errorf("paypal sandbox base_url = %v", got)
	}
	// A sandbox with its own login host: is_sandbox picks its OAuth 2.0 URLs too.
	oauth2 := func(slug string, sandbox bool) map[string]any {
		return Get(slug).Config(sandbox)["api_config"].(map[string]any)["oauth2"].(map[string]any)
	}
	for _, c := range []struct {
		slug    string
		sandbox bool
		key     string
		want    string
	}{
		{"paypal", true, "token_url", "https://api-m.sandbox.paypal.com/v1/oauth2/token"},
		{"paypal", false, "token_url", "https://api-m.paypal.com/v1/oauth2/token"},
		{"ups", true, "token_url", "https://wwwcie.ups.com/security/v1/oauth/token"},
		{"fedex", true, "token_url", "https://apis-sandbox.fedex.com/oauth/token"},
		{"salesforce", true, "authorization_url", "https://test.salesforce.com/services/oauth2/authorize"},
		{"salesforce", true, "token_url", "https://test.salesforce.com/services/oauth2/token"},
		{"salesforce", false, "authorization_url", "https://login.salesforce.com/services/oauth2/authorize"},
	} {
		if got := oauth2(c.slug, c.sandbox)[c.key]; got != c.want {
			t.Errorf("%s (sandbox %v) oauth2.%s = %v; want %s", c.slug, c.sandbox, c.key, got, c.want)
		}
	}
	for _, tm := range All() {
		if tm.SandboxBaseURL != "" && tm.OAuth2 != nil && tm.OAuth2.SandboxTokenURL == "" &&
			tm.OAuth2.GrantType == "client_credentials" {
			t.Errorf("%s has a sandbox base URL and a client-credentials token URL, but no sandbox_token_url", tm.Slug)
		}
	}
}

func TestTemplateSandboxURLsChecked(t *testing.T) {
	tm := *Get("paypal")
	o := *tm.OAuth2
	o.SandboxTokenURL = "http://api-m.sandbox.paypal.com/v1/oauth2/token"
	tm.OAuth2 = &o
	if err := tm.check(); err == nil || !strings.Contains(err.Error(), "oauth2.sandbox_token_url") {
		t.Errorf("check() of a plain-http sandbox_token_url = %v; want an error naming it", err)
	}
}

func TestResolveURL(t *testing.T) {
	pd := func(kv ...string) Vars {
		v := Vars{APIVersion: "v61.0", Region: "eu-west-1", ProviderData: map[string]any{}}
		for i := 0; i < len(kv); i += 2 {
			v.ProviderData[kv[i]] = kv[i+1]
		}
		return v
	}
	for _, c := range []struct {
		desc, tmpl string
		vars       Vars
		want       string // "" : an error
	}{
		{"salesforce instance", "https://{{provider_data.instance_url|host}}/services/data/{{api_version}}",
			pd("instance_url", "https://na1.salesforce.com"), "https://na1.salesforce.com/services/data/v61.0"},
		{"host label", "https://{{provider_data.shop}}.myshopify.com/admin", pd("shop", "acme-1"), "https://acme-1.myshopify.com/admin"},
		{"path segment", "https://api.twilio.com/2010-04-01/Accounts/{{provider_data.sid}}", pd("sid", "AC123"),
			"https://api.twilio.com/2010-04-01/Accounts/AC123"},
		{"region", "https://s3.{{region}}.amazonaws.com", pd(), "https://s3.eu-west-1.amazonaws.com"},
		{"missing", "https://x.example/{{provider_data.sid}}", pd(), ""},
		{"slash in path", "https://x.example/{{provider_data.sid}}", pd("sid", "a/../b"), ""},
		{"dot segment", "https://x.example/{{provider_data.sid}}", pd("sid", ".."), ""},
		{"query in path", "https://x.example/{{provider_data.sid}}", pd("sid", "a?b=c"), ""},
		{"fragment", "https://x.example/{{provider_data.sid}}", pd("sid", "a#b"), ""},
		{"percent", "https://x.example/{{provider_data.sid}}", pd("sid", "%2e%2e"), ""},
		{"at in host", "https://{{provider_data.shop}}.myshopify.com", pd("shop", "evil.com@x"), ""},
		{"dot in host label", "https://{{provider_data.shop}}.myshopify.com", pd("shop", "evil.com/"), ""},
		{"colon in host", "https://{{provider_data.shop}}.myshopify.com", pd("shop", "evil:80"), ""},
		{"host filter with path", "https://{{provider_data.u|host}}/x", pd("u", "https://evil.com/a"), ""},
		{"host filter userinfo", "https://{{provider_data.u|host}}/x", pd("u", "https://a@evil.com"), ""},
		{"host filter port", "https://{{provider_data.u|host}}/x", pd("u", "https://evil.com:8443"), ""},
		{"host filter http", "https://{{provider_data.u|host}}/x", pd("u", "http://evil.com"), ""},
		{"crlf", "https://x.example/{{provider_data.sid}}", pd("sid", "a\r\nHost: b"), ""},
	} {
		t.Run(c.desc, func(t *testing.T) {
			tm, err := ParseURL(c.tmpl)
			if err != nil {
				t.Fatalf("ParseURL(%q) = %v", c.tmpl, err)
			}
			got, err := tm.Resolve(c.vars)
			if c.want == "" {
				if err == nil {
					t.Errorf("Resolve() = %q; want an error", got)
				}
				return
			}
			if err != nil || got != c.want {
				t.Errorf("Resolve() = %q, %v; want %q", got, err, c.want)
			}
		})
	}
}

func TestParseURLRefuses(t *testing.T) {
	for _, s := range []string{
		"{{provider_data.scheme}}://x.example",
		"https://x.example:{{provider_data.port}}/",
		"https://{{provider_data.user}}@x.example/",
		"https://x.example/?a={{provider_data.q}}",
		"https://x.example/{{nope}}",
		"https://x.example/{{provider_data.a|upper}}",
		"https://x.example/{{provider_data.a|host}}",
		"https://a.{{provider_data.u|host}}/",
		"https://x.example/{{api_version",
		"https://x.example/}}",
	} {
		if _, err := ParseURL(s); err == nil {
			t.Errorf("ParseURL(%q) = nil; want an error", s)
		}
	}
}

func TestHeaderTemplate(t *testing.T) {
	h, err := ParseHeader("acct_{{provider_data.account_id}}")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := h.Resolve(Vars{ProviderData: map[string]any{"account_id": "123"}}); err != nil || got != "acct_123" {
		t.Errorf("Resolve() = %q, %v", got, err)
	}
	for _, bad := range []string{"a\r\nX-Evil: 1", "a\nb", "a\x00b"} {
		if got, err := h.Resolve(Vars{ProviderData: map[string]any{"account_id": bad}}); err == nil {
			t.Errorf("Resolve(%q) = %q; want an error", bad, got)
		}
	}
	if _, err := ParseHeader("v\r\n{{api_version}}"); err == nil {
		t.Error("ParseHeader with CRLF = nil; want an error")
	}
}

// FuzzResolveURL: whatever provider_data holds, the resolved URL keeps the template's scheme,
// port, literal host suffix and number of path segments, and a placeholder never brings in a
// character that changes the URL's structure.
func FuzzResolveURL(f *testing.F) {
	for _, s := range []string{"acme", "a/../b", "evil.com@x", "x?y", "x#y", "x:1", "%2f", "..", "https://na1.salesforce.com",
		"https://a@b.com", "a\r\nb", ""} {
		f.Add(s)
	}
	templates := []string{
		"https://{{provider_data.v}}.myshopify.com/admin/api",
		"https://api.twilio.com/2010-04-01/Accounts/{{provider_data.v}}",
		"https://{{provider_data.v|host}}/services/data/v61.0",
		"https://x.example:8443/a/pre-{{provider_data.v}}-post/b",
	}
	parsed := make([]*URLTemplate, len(templates))
	for i, s := range templates {
		var err error
		if parsed[i], err = ParseURL(s); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, v string) {
		for i, tm := range parsed {
			got, err := tm.Resolve(Vars{ProviderData: map[string]any{"v": v}})
			if err != nil {
				continue
			}
			u, err := url.Parse(got)
			if err != nil {
				t.Fatalf("%s resolved to %q, which does not parse", templates[i], got)
			}
			sample, _ := url.Parse(tm.Sample())
			if u.Scheme != sample.Scheme || u.Port() != sample.Port() || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
				t.Fatalf("%s with %q = %q: structure changed", templates[i], v, got)
			}
			if strings.Count(u.EscapedPath(), "/") != strings.Count(sample.EscapedPath(), "/") {
				t.Fatalf("%s with %q = %q: path segments changed", templates[i], v, got)
			}
			if strings.ContainsAny(got, "@?#%\\\r\n\x00 ") {
				t.Fatalf("%s with %q = %q: forbidden character", templates[i], v, got)
			}
			switch i {
			case 0:
				if !strings.HasSuffix(u.Hostname(), ".myshopify.com") || strings.Count(u.Hostname(), ".") != 2 {
					t.Fatalf("%s with %q = %q: host left its label", templates[i], v, got)
				}
			case 1, 3:
				if u.Hostname() != sample.Hostname() {
					t.Fatalf("%s with %q = %q: host changed", templates[i], v, got)
				}
			}
		}
	})
}
