package providers

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

//go:embed templates/*.yaml
var files embed.FS

// Template is one provider's documented defaults: everything a working configuration needs
// except its secrets. Creating an API from a template copies these values into an ordinary
// configuration; later changes of the template do not change it.
type Template struct {
	Slug     string `yaml:"slug" json:"slug"`
	Name     string `yaml:"name" json:"name"`
	Category string `yaml:"category" json:"category"`
	Provider string `yaml:"provider" json:"provider"`
	// Docs is the provider's documentation the facts were taken from.
	Docs string `yaml:"docs" json:"docs"`
	// Notes says what could not be verified, and what an admin must add.
	Notes          string `yaml:"notes,omitempty" json:"notes,omitempty"`
	BaseURL        string `yaml:"base_url" json:"base_url"`
	SandboxBaseURL string `yaml:"sandbox_base_url,omitempty" json:"sandbox_base_url,omitempty"`
	APIVersion     string `yaml:"api_version,omitempty" json:"api_version,omitempty"`
	AuthType       string `yaml:"auth_type" json:"auth_type"`

	OAuth2    *OAuth2           `yaml:"oauth2,omitempty" json:"oauth2,omitempty"`
	OAuth1    *OAuth1           `yaml:"oauth1,omitempty" json:"oauth1,omitempty"`
	APIKey    *APIKey           `yaml:"api_key,omitempty" json:"api_key,omitempty"`
	AWSSigV4  *AWSSigV4         `yaml:"aws_sigv4,omitempty" json:"aws_sigv4,omitempty"`
	RateLimit *RateLimit        `yaml:"rate_limit,omitempty" json:"rate_limit,omitempty"`
	Headers   map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`
	// ProviderData names the connection's provider_data keys the base URL or headers use.
	ProviderData []string `yaml:"provider_data,omitempty" json:"provider_data,omitempty"`
	// Env is how `extapi import env` recognises the provider's environment variables.
	Env *Env `yaml:"env,omitempty" json:"env,omitempty"`
}

// OAuth2 is the non-secret part of an OAuth 2.0 configuration.
type OAuth2 struct {
	AuthorizationURL string `yaml:"authorization_url,omitempty" json:"authorization_url,omitempty"`
	TokenURL         string `yaml:"token_url" json:"token_url"`
	// SandboxAuthorizationURL and SandboxTokenURL replace the two when an API is created with
	// is_sandbox true (a provider whose sandbox has its own login host).
	SandboxAuthorizationURL string            `yaml:"sandbox_authorization_url,omitempty" json:"sandbox_authorization_url,omitempty"`
	SandboxTokenURL         string            `yaml:"sandbox_token_url,omitempty" json:"sandbox_token_url,omitempty"`
	Scopes                  []string          `yaml:"scopes,omitempty" json:"scopes,omitempty"`
	GrantType               string            `yaml:"grant_type,omitempty" json:"grant_type,omitempty"`
	TokenAuthMethod         string            `yaml:"token_auth_method,omitempty" json:"token_auth_method,omitempty"`
	PKCE                    *bool             `yaml:"pkce,omitempty" json:"pkce,omitempty"`
	AuthorizationParams     map[string]string `yaml:"authorization_params,omitempty" json:"authorization_params,omitempty"`
	TokenParams             map[string]string `yaml:"token_params,omitempty" json:"token_params,omitempty"`
}

// OAuth1 is the non-secret part of an OAuth 1.0a configuration.
type OAuth1 struct {
	RequestTokenURL  string `yaml:"request_token_url,omitempty" json:"request_token_url,omitempty"`
	AuthorizationURL string `yaml:"authorization_url,omitempty" json:"authorization_url,omitempty"`
	AccessTokenURL   string `yaml:"access_token_url,omitempty" json:"access_token_url,omitempty"`
	SignatureMethod  string `yaml:"signature_method,omitempty" json:"signature_method,omitempty"`
}

// APIKey says where a key (api_key, bearer, basic) goes.
type APIKey struct {
	HeaderName string `yaml:"header_name,omitempty" json:"header_name,omitempty"`
	KeyPrefix  string `yaml:"key_prefix,omitempty" json:"key_prefix,omitempty"`
	QueryParam string `yaml:"query_param,omitempty" json:"query_param,omitempty"`
}

// AWSSigV4 is the signing scope of an AWS service.
type AWSSigV4 struct {
	Service string `yaml:"service" json:"service"`
	Region  string `yaml:"region,omitempty" json:"region,omitempty"`
}

// RateLimit is the provider's documented default limit.
type RateLimit struct {
	RequestsPerSecond int    `yaml:"requests_per_second,omitempty" json:"requests_per_second,omitempty"`
	RequestsPerMinute int    `yaml:"requests_per_minute,omitempty" json:"requests_per_minute,omitempty"`
	RequestsPerHour   int    `yaml:"requests_per_hour,omitempty" json:"requests_per_hour,omitempty"`
	RequestsPerDay    int    `yaml:"requests_per_day,omitempty" json:"requests_per_day,omitempty"`
	Scope             string `yaml:"scope,omitempty" json:"scope,omitempty"`
}

var (
	loadOnce sync.Once
	catalog  []*Template
	bySlug   map[string]*Template
	loadErr  error
)

func load() {
	bySlug = map[string]*Template{}
	names, err := fs.Glob(files, "templates/*.yaml")
	if err != nil {
		loadErr = err
		return
	}
	var errs []error
	for _, n := range names {
		b, err := files.ReadFile(n)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var t Template
		dec := yaml.NewDecoder(strings.NewReader(string(b)))
		dec.KnownFields(true)
		if err := dec.Decode(&t); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n, err))
			continue
		}
		if want := strings.TrimSuffix(path.Base(n), ".yaml"); t.Slug != want {
			errs = append(errs, fmt.Errorf("%s: slug %q; want the file name %q", n, t.Slug, want))
			continue
		}
		if err := t.check(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n, err))
			continue
		}
		catalog = append(catalog, &t)
		bySlug[t.Slug] = &t
	}
	slices.SortFunc(catalog, func(a, b *Template) int { return strings.Compare(a.Slug, b.Slug) })
	loadErr = errors.Join(errs...)
}

// check is what every template must give; the rest is validated as a configuration (the
// test creates one from each template through the admin path).
func (t *Template) check() error {
	var errs []error
	for _, f := range []struct{ name, v string }{{"name", t.Name}, {"category", t.Category},
		{"provider", t.Provider}, {"docs", t.Docs}, {"base_url", t.BaseURL}, {"auth_type", t.AuthType}} {
		if f.v == "" {
			errs = append(errs, fmt.Errorf("%s is required", f.name))
		}
	}
	for _, u := range []string{t.BaseURL, t.SandboxBaseURL} {
		if u == "" {
			continue
		}
		if _, err := ParseURL(u); err != nil {
			errs = append(errs, fmt.Errorf("base_url: %w", err))
		}
	}
	if o := t.OAuth2; o != nil {
		for _, f := range []struct{ name, v string }{{"oauth2.sandbox_authorization_url", o.SandboxAuthorizationURL},
			{"oauth2.sandbox_token_url", o.SandboxTokenURL}} {
			if u, err := url.Parse(f.v); f.v != "" && (err != nil || u.Scheme != "https" || u.Host == "") {
				errs = append(errs, fmt.Errorf("%s: want an absolute https URL, got %q", f.name, f.v))
			}
		}
		if o.SandboxAuthorizationURL != "" && o.AuthorizationURL == "" {
			errs = append(errs, errors.New("oauth2.sandbox_authorization_url without authorization_url"))
		}
	}
	for k, v := range t.Headers {
		if _, err := ParseHeader(v); err != nil {
			errs = append(errs, fmt.Errorf("headers.%s: %w", k, err))
		}
	}
	if t.Env != nil {
		if err := t.Env.check(); err != nil {
			errs = append(errs, fmt.Errorf("env: %w", err))
		}
	}
	return errors.Join(errs...)
}

// All returns every template, by slug. It panics if the embedded catalogue is broken, which
// the package's tests rule out.
func All() []*Template {
	loadOnce.Do(load)
	if loadErr != nil {
		panic("providers: embedded templates: " + loadErr.Error())
	}
	return catalog
}

// Get returns the template of a slug, or nil.
func Get(slug string) *Template {
	All()
	return bySlug[slug]
}

// Config returns the template as the body of POST /admin/external-apis (request form, no
// secrets): the generic JSON the admin API decodes. sandbox picks the sandbox base URL and
// OAuth 2.0 URLs where there are some.
func (t *Template) Config(sandbox bool) map[string]any {
	cfg := map[string]any{"auth_type": t.AuthType}
	base := t.BaseURL
	if sandbox && t.SandboxBaseURL != "" {
		base = t.SandboxBaseURL
	}
	cfg["base_url"] = base
	put := func(k, v string) {
		if v != "" {
			cfg[k] = v
		}
	}
	put("api_version", t.APIVersion)
	if o := t.OAuth2; o != nil {
		tokenURL, authURL := o.TokenURL, o.AuthorizationURL
		if sandbox && o.SandboxTokenURL != "" {
			tokenURL = o.SandboxTokenURL
		}
		if sandbox && o.SandboxAuthorizationURL != "" {
			authURL = o.SandboxAuthorizationURL
		}
		m := map[string]any{"token_url": tokenURL}
		setStr(m, "authorization_url", authURL)
		setStr(m, "grant_type", o.GrantType)
		setStr(m, "token_auth_method", o.TokenAuthMethod)
		if len(o.Scopes) > 0 {
			m["scopes"] = toAnySlice(o.Scopes)
		}
		if o.PKCE != nil {
			m["pkce"] = *o.PKCE
		}
		if len(o.AuthorizationParams) > 0 {
			m["authorization_params"] = toAnyMap(o.AuthorizationParams)
		}
		if len(o.TokenParams) > 0 {
			m["token_params"] = toAnyMap(o.TokenParams)
		}
		cfg["oauth2"] = m
	}
	if o := t.OAuth1; o != nil {
		m := map[string]any{}
		setStr(m, "request_token_url", o.RequestTokenURL)
		setStr(m, "authorization_url", o.AuthorizationURL)
		setStr(m, "access_token_url", o.AccessTokenURL)
		setStr(m, "signature_method", o.SignatureMethod)
		cfg["oauth1"] = m
	}
	if k := t.APIKey; k != nil {
		m := map[string]any{}
		setStr(m, "header_name", k.HeaderName)
		setStr(m, "key_prefix", k.KeyPrefix)
		setStr(m, "query_param", k.QueryParam)
		cfg["api_key"] = m
	}
	if a := t.AWSSigV4; a != nil {
		m := map[string]any{"service": a.Service}
		setStr(m, "region", a.Region)
		cfg["aws_sigv4"] = m
	}
	if r := t.RateLimit; r != nil {
		m := map[string]any{}
		setInt(m, "requests_per_second", r.RequestsPerSecond)
		setInt(m, "requests_per_minute", r.RequestsPerMinute)
		setInt(m, "requests_per_hour", r.RequestsPerHour)
		setInt(m, "requests_per_day", r.RequestsPerDay)
		setStr(m, "scope", r.Scope)
		cfg["rate_limit"] = m
	}
	if len(t.Headers) > 0 {
		cfg["headers"] = toAnyMap(t.Headers)
	}
	out := map[string]any{"name": t.Name, "slug": t.Slug, "category": t.Category, "provider": t.Provider, "api_config": cfg}
	if sandbox {
		out["is_sandbox"] = true
	}
	return out
}

func setStr(m map[string]any, k, v string) {
	if v != "" {
		m[k] = v
	}
}

func setInt(m map[string]any, k string, v int) {
	if v != 0 {
		m[k] = v
	}
}

func toAnySlice(v []string) []any {
	out := make([]any, len(v))
	for i, s := range v {
		out[i] = s
	}
	return out
}

func toAnyMap(v map[string]string) map[string]any {
	out := make(map[string]any, len(v))
	for k, s := range v {
		out[k] = s
	}
	return out
}
