package admin

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/extapi/extapi/store"
)

// Bounds of the values the management API accepts.
const (
	maxNameLen    = 200
	maxIDLen      = 200 // user_id, partner_id, sales_channel_id
	maxShortLen   = 200 // api_version, token_type, realm, header names, …
	maxURLLen     = 2048
	maxPEMLen     = 256 << 10
	maxSecretLen  = 64 << 10
	maxListLen    = 200 // scopes, events
	maxHeaders    = 100
	maxTimeoutMS  = 300_000
	maxRetries    = 10
	maxBackoffMS  = 60_000
	maxWaitMS     = 300_000
	maxToleranceS = 86_400
)

var slugRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// Enumerations of api_config. The first of each is the default the proxy applies to "".
var (
	authTypes        = []string{store.AuthOAuth2, store.AuthOAuth1, store.AuthAPIKey, store.AuthBasic, store.AuthBearer, store.AuthAWSSigV4}
	apiStatuses      = []string{store.APIActive, store.APIInactive, store.APIDeprecated}
	connStatuses     = []string{store.ConnActive, store.ConnExpired, store.ConnRevoked, store.ConnError}
	grantTypes       = []string{"authorization_code", "client_credentials", grantJWTBearer}
	tokenAuthMethods = []string{"client_secret_basic", "client_secret_post"}
	signatureMethods = []string{"HMAC-SHA1", "HMAC-SHA256", "PLAINTEXT"}
	rateScopes       = []string{"connection", "api"}
	rateModes        = []string{"wait", "reject"}
	onRedisErrors    = []string{"allow", "deny"}
	webhookSchemes   = []string{"stripe", "meta", "twilio", "slack", "github", "hmac-sha256", "shopify", "standard-webhooks", "sendgrid"}
	// Headers the proxy owns; a configured header may not set them.
	reservedHeaders = []string{"host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer"}
)

// apiSecretPaths are the JSON paths of the API's secrets, as store names them (and as requests
// send them in plaintext).
var apiSecretPaths = func() []string {
	a := &store.ExternalAPI{APIConfig: store.APIConfig{OAuth2: &store.OAuth2Config{}, OAuth1: &store.OAuth1Config{},
		APIKey: &store.APIKeyConfig{}, Webhook: &store.Webhook{}, TLS: &store.TLSConfig{}}}
	return secretNames(a.SecretFields())
}()

// connSecretPaths are the JSON paths of a connection's secrets.
var connSecretPaths = secretNames((&store.Connection{}).SecretFields())

func secretNames(fs []store.SecretField) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Name
	}
	return out
}

// secretSet reports whether the secret at a path will be set once the write is done.
type secretSet func(path string) bool

// validateAPI checks an API as it will be stored (after defaults and, for PATCH, the merge).
func validateAPI(in *apiInput, set secretSet, p *problems) {
	text(p, "name", in.Name, maxNameLen, true)
	if in.Slug == "" {
		p.add("slug", "required")
	} else if !slugRE.MatchString(in.Slug) {
		p.add("slug", "must match ^[a-z0-9][a-z0-9-]{0,62}$ (lower-case letters, digits and -)")
	}
	if in.Category == "" {
		p.add("category", "required")
	} else {
		enum(p, "category", in.Category, store.Categories)
	}
	text(p, "provider", in.Provider, maxShortLen, false)
	enum(p, "status", in.Status, apiStatuses)
	enum(p, "environment", in.Environment, store.Environments)
	text(p, "sales_channel_id", in.SalesChannelID, maxIDLen, false)
	text(p, "partner_id", in.PartnerID, maxIDLen, false)
	c := in.APIConfig
	if c == nil {
		p.add("api_config", "required")
		return
	}
	u := urlRule{sandbox: in.IsSandbox}
	baseURLTemplate(p, c, u)
	text(p, "api_config.api_version", c.APIVersion, maxShortLen, false)
	if c.AuthType == "" {
		p.add("api_config.auth_type", "required (one of "+strings.Join(authTypes, ", ")+")")
	} else {
		enum(p, "api_config.auth_type", c.AuthType, authTypes)
	}
	validateAuth(c, set, u, p)
	if r := c.RateLimit; r != nil {
		validateRateLimit(r, p)
	}
	if h := c.Webhook; h != nil {
		const w = "api_config.webhook"
		u.check(p, w+".url", h.URL, true)
		list(p, w+".events", h.Events, false)
		u.check(p, w+".forward_url", h.ForwardURL, false)
		enum(p, w+".scheme", h.Scheme, webhookSchemes)
		bounded(p, w+".tolerance_s", h.ToleranceS, 1, maxToleranceS)
		validatePublicKey(p, w+".public_key", h.PublicKey)
	}
	bounded(p, "api_config.timeout_ms", c.TimeoutMS, 1, maxTimeoutMS)
	if rc := c.RetryConfig; rc != nil {
		bounded(p, "api_config.retry_config.max_retries", rc.MaxRetries, 0, maxRetries)
		bounded(p, "api_config.retry_config.backoff_ms", rc.BackoffMS, 0, maxBackoffMS)
	}
	if len(c.Headers) > maxHeaders {
		p.add("api_config.headers", fmt.Sprintf("at most %d headers", maxHeaders))
	}
	for _, name := range sortedKeys(c.Headers) {
		path := "api_config.headers." + name
		if !validHeaderName(name) {
			p.add(path, "is not a valid HTTP header name")
		} else if slices.Contains(reservedHeaders, strings.ToLower(name)) {
			p.add(path, "is set by the proxy and cannot be configured")
		}
		headerValue(p, path, c.Headers[name])
		headerTemplate(p, path, c, c.Headers[name])
	}
	if t := c.TLS; t != nil {
		const tp = "api_config.tls"
		if t.CABundle != "" {
			pemCerts(p, tp+".ca_bundle", t.CABundle)
		}
		if t.ClientCert != "" {
			pemCerts(p, tp+".client_cert", t.ClientCert)
		}
		keySet := set(tp + ".client_key")
		switch {
		case t.ClientCert != "" && !keySet:
			p.add(tp+".client_key", "required when tls.client_cert is set")
		case t.ClientCert == "" && keySet:
			p.add(tp+".client_cert", "required when tls.client_key is set")
		}
	}
}

// validateAuth checks that auth_type has its section and secrets, and no other auth section.
func validateAuth(c *apiConfigFields[*string], set secretSet, u urlRule, p *problems) {
	at := c.AuthType
	if c.OAuth2 != nil && at != store.AuthOAuth2 {
		p.add("api_config.oauth2", "only allowed when auth_type is oauth2 (send null to remove it)")
	}
	if c.OAuth1 != nil && at != store.AuthOAuth1 {
		p.add("api_config.oauth1", "only allowed when auth_type is oauth1 (send null to remove it)")
	}
	if c.APIKey != nil && at != store.AuthAPIKey && at != store.AuthBasic && at != store.AuthBearer {
		p.add("api_config.api_key", "only allowed when auth_type is api_key, basic or bearer (send null to remove it)")
	}
	if c.AWSSigV4 != nil && at != store.AuthAWSSigV4 {
		p.add("api_config.aws_sigv4", "only allowed when auth_type is aws_sigv4 (send null to remove it)")
	}
	switch at {
	case store.AuthOAuth2:
		const s = "api_config.oauth2"
		o := c.OAuth2
		if o == nil {
			p.add(s, "required when auth_type is oauth2")
			return
		}
		if o.GrantType == grantJWTBearer {
			// A service account signs its own assertions: no client id or secret, no browser.
			need(p, set, s+".service_account_key", "oauth2 with grant_type jwt_bearer")
		} else {
			need(p, set, s+".client_id", "oauth2")
			need(p, set, s+".client_secret", "oauth2")
			if set(s + ".service_account_key") {
				p.add(s+".service_account_key", "only allowed when grant_type is jwt_bearer")
			}
		}
		enum(p, s+".grant_type", o.GrantType, grantTypes)
		enum(p, s+".token_auth_method", o.TokenAuthMethod, tokenAuthMethods)
		u.check(p, s+".token_url", o.TokenURL, true)
		u.check(p, s+".authorization_url", o.AuthorizationURL, o.GrantType != "client_credentials" && o.GrantType != grantJWTBearer)
		u.check(p, s+".redirect_uri", o.RedirectURI, false)
		u.check(p, s+".success_redirect_url", o.SuccessRedirectURL, false)
		list(p, s+".scopes", o.Scopes, true)
		params(p, s+".authorization_params", o.AuthorizationParams, nil)
		if len(o.TokenParams) > 0 && o.GrantType != "client_credentials" {
			p.add(s+".token_params", "only sent with grant_type client_credentials")
		}
		params(p, s+".token_params", o.TokenParams, reservedTokenParams)
	case store.AuthOAuth1:
		const s = "api_config.oauth1"
		o := c.OAuth1
		if o == nil {
			p.add(s, "required when auth_type is oauth1")
			return
		}
		need(p, set, s+".consumer_key", "oauth1")
		need(p, set, s+".consumer_secret", "oauth1")
		enum(p, s+".signature_method", o.SignatureMethod, signatureMethods)
		text(p, s+".realm", o.Realm, maxShortLen, false)
		// The three flow URLs are needed only for the three-legged flow: all or none.
		flow := o.RequestTokenURL != "" || o.AuthorizationURL != "" || o.AccessTokenURL != ""
		u.check(p, s+".request_token_url", o.RequestTokenURL, flow)
		u.check(p, s+".authorization_url", o.AuthorizationURL, flow)
		u.check(p, s+".access_token_url", o.AccessTokenURL, flow)
	case store.AuthAPIKey, store.AuthBasic, store.AuthBearer:
		const s = "api_config.api_key"
		k := c.APIKey
		if k == nil {
			if at == store.AuthAPIKey {
				p.add(s, "required when auth_type is api_key (header_name defaults to X-API-Key; the key may be left to each connection)")
			}
			return
		}
		if k.HeaderName != "" && !validHeaderName(k.HeaderName) {
			p.add(s+".header_name", "is not a valid HTTP header name")
		}
		if k.HeaderName != "" && k.QueryParam != "" {
			p.add(s+".query_param", "give header_name or query_param, not both")
		}
		if k.QueryParam != "" && at != store.AuthAPIKey {
			p.add(s+".query_param", "only allowed when auth_type is api_key")
		}
		text(p, s+".query_param", k.QueryParam, maxShortLen, false)
		headerValue(p, s+".key_prefix", k.KeyPrefix)
	case store.AuthAWSSigV4:
		validateSigV4(c.AWSSigV4, p)
	}
}

func validateRateLimit(r *rateLimitFields, p *problems) {
	const s = "api_config.rate_limit"
	windows := 0
	for _, w := range []struct {
		name string
		v    *int
	}{
		{"requests_per_second", r.RequestsPerSecond}, {"requests_per_minute", r.RequestsPerMinute},
		{"requests_per_hour", r.RequestsPerHour}, {"requests_per_day", r.RequestsPerDay},
	} {
		if w.v == nil {
			continue
		}
		windows++
		if *w.v <= 0 {
			p.add(s+"."+w.name, "must be a positive integer")
		}
	}
	if windows == 0 {
		p.add(s, "needs at least one of requests_per_second, requests_per_minute, requests_per_hour, requests_per_day")
	}
	enum(p, s+".scope", r.Scope, rateScopes)
	enum(p, s+".mode", r.Mode, rateModes)
	enum(p, s+".on_redis_error", r.OnRedisError, onRedisErrors)
	bounded(p, s+".burst", r.Burst, 0, 1<<30)
	bounded(p, s+".max_wait_ms", r.MaxWaitMS, 0, maxWaitMS)
	if r.ResetHeader != "" && !validHeaderName(r.ResetHeader) {
		p.add(s+".reset_header", "is not a valid HTTP header name")
	}
}

// validateConn checks a connection as it will be stored, against its API.
func validateConn(in *connInput, api *store.ExternalAPI, set secretSet, p *problems) {
	text(p, "connection_name", in.ConnectionName, maxNameLen, true)
	text(p, "user_id", in.UserID, maxIDLen, false)
	text(p, "partner_id", in.PartnerID, maxIDLen, false)
	text(p, "sales_channel_id", in.SalesChannelID, maxIDLen, false)
	enum(p, "status", in.Status, connStatuses)
	// A connection of a tenant's API belongs to that tenant.
	if api.SalesChannelID != "" && in.SalesChannelID != api.SalesChannelID {
		p.add("sales_channel_id", "must be the sales channel of the API (or omitted)")
	}
	if api.PartnerID != "" && in.PartnerID != api.PartnerID {
		p.add("partner_id", "must be the partner of the API (or omitted)")
	}
	if k := in.Credentials; k != nil {
		text(p, "credentials.token_type", k.TokenType, maxShortLen, false)
		if k.ExpiresAt != "" {
			if _, err := time.Parse(time.RFC3339, k.ExpiresAt); err != nil {
				p.add("credentials.expires_at", "must be an RFC 3339 time, e.g. 2030-01-02T15:04:05Z")
			}
		}
		list(p, "credentials.scopes", k.Scopes, true)
	}
	if set("credentials.username") != set("credentials.password") {
		p.add("credentials", "username and password go together")
	}
	// Connection credentials win over the API's; where the API has none, the connection needs its own.
	apiKey := api.APIConfig.APIKey != nil && api.APIConfig.APIKey.Key.IsSet()
	switch api.APIConfig.AuthType {
	case store.AuthAPIKey:
		if !apiKey && !set("credentials.api_key") {
			p.add("credentials.api_key", "required: the API has no API-level key")
		}
	case store.AuthBasic:
		if !apiKey && !set("credentials.username") {
			p.add("credentials.username", "required with credentials.password: the API has no API-level user:password key")
		}
	case store.AuthBearer:
		if !apiKey && !set("credentials.access_token") && !set("credentials.api_key") {
			p.add("credentials.access_token", "required (or credentials.api_key): the API has no API-level key")
		}
	case store.AuthAWSSigV4:
		if !set("credentials.username") || !set("credentials.password") {
			p.add("credentials.username", "required with credentials.password: the AWS access key id and secret access key (credentials.access_token: an optional session token)")
		}
	}
}

// checkSecretValue checks a plaintext secret without ever quoting it.
func checkSecretValue(p *problems, path string, v []byte, basic bool) {
	switch {
	case len(v) == 0:
		p.add(path, "must not be empty (send null to clear it)")
	case len(v) > maxSecretLen:
		p.add(path, fmt.Sprintf("longer than %d bytes", maxSecretLen))
	case path == "api_config.tls.client_key":
		if b, _ := pem.Decode(v); b == nil || !strings.Contains(b.Type, "PRIVATE KEY") {
			p.add(path, "must be a PEM private key")
		}
	case path == "api_config.oauth2.service_account_key":
		if err := checkServiceAccountKey(v); err != "" {
			p.add(path, err)
		}
	case basic && path == "api_config.api_key.key" && !strings.Contains(string(v), ":"):
		p.add(path, "must be user:password when auth_type is basic")
	}
}

func need(p *problems, set secretSet, path, authType string) {
	if !set(path) {
		p.add(path, "required when auth_type is "+authType)
	}
}

// text checks a plain string: length, valid text, no control characters.
// maxParams bounds authorization_params and token_params.
const maxParams = 32

// params checks extra request parameters: at most maxParams, each key a non-empty name without
// control characters and not one of reserved, each value text.
func params(p *problems, path string, m map[string]string, reserved []string) {
	if len(m) > maxParams {
		p.add(path, fmt.Sprintf("more than %d parameters", maxParams))
		return
	}
	for _, k := range sortedKeys(m) {
		switch {
		case k == "":
			p.add(path, "a parameter name is empty")
		case utf8.RuneCountInString(k) > maxShortLen || strings.IndexFunc(k, unicode.IsControl) >= 0:
			p.add(path, fmt.Sprintf("parameter name %q is too long or holds control characters", k))
		case slices.Contains(reserved, k):
			p.add(path+"."+k, "is set by extapi itself")
		default:
			text(p, path+"."+k, m[k], maxURLLen, false)
		}
	}
}

func text(p *problems, path, v string, max int, required bool) {
	switch {
	case v == "":
		if required {
			p.add(path, "required")
		}
	case utf8.RuneCountInString(v) > max:
		p.add(path, fmt.Sprintf("longer than %d characters", max))
	case strings.IndexFunc(v, unicode.IsControl) >= 0:
		p.add(path, "must not contain control characters")
	}
}

func enum(p *problems, path, v string, options []string) {
	if v != "" && !slices.Contains(options, v) {
		p.add(path, "must be one of "+strings.Join(options, ", "))
	}
}

func bounded(p *problems, path string, v *int, lo, hi int) {
	if v != nil && (*v < lo || *v > hi) {
		p.add(path, fmt.Sprintf("must be between %d and %d", lo, hi))
	}
}

// list checks a list of words (scopes, events); noSpace forbids whitespace in them.
func list(p *problems, path string, vs []string, noSpace bool) {
	if len(vs) > maxListLen {
		p.add(path, fmt.Sprintf("at most %d items", maxListLen))
		return
	}
	for i, v := range vs {
		ip := fmt.Sprintf("%s[%d]", path, i)
		text(p, ip, v, maxShortLen, true)
		if noSpace && strings.ContainsFunc(v, unicode.IsSpace) {
			p.add(ip, "must not contain spaces")
		}
	}
}

// reservedTokenParams carry the client-credentials request itself; token_params may not set them.
var reservedTokenParams = []string{"grant_type", "client_id", "client_secret", "scope",
	"client_assertion", "client_assertion_type"}

// urlRule checks URLs: absolute http(s), no user info; plain http only for sandbox APIs or
// loopback hosts (127.0.0.0/8, ::1, localhost).
type urlRule struct{ sandbox bool }

func (u urlRule) check(p *problems, path, raw string, required bool) {
	if raw == "" {
		if required {
			p.add(path, "required")
		}
		return
	}
	if len(raw) > maxURLLen {
		p.add(path, fmt.Sprintf("longer than %d characters", maxURLLen))
		return
	}
	if strings.IndexFunc(raw, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) >= 0 {
		p.add(path, "must not contain spaces or control characters")
		return
	}
	v, err := url.Parse(raw)
	switch {
	case err != nil || !v.IsAbs() || v.Host == "" || v.Opaque != "":
		p.add(path, "must be an absolute http:// or https:// URL")
	case v.Scheme != "https" && v.Scheme != "http":
		p.add(path, "must be an absolute http:// or https:// URL")
	case v.User != nil:
		p.add(path, "must not contain user info; put credentials in the secret fields")
	case v.Fragment != "":
		p.add(path, "must not have a #fragment")
	case v.Scheme == "http" && !u.sandbox && !loopback(v.Hostname()):
		p.add(path, "must use https (plain http only when is_sandbox is true or the host is loopback)")
	}
}

func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func pemCerts(p *problems, path, v string) {
	if len(v) > maxPEMLen {
		p.add(path, fmt.Sprintf("longer than %d bytes", maxPEMLen))
		return
	}
	if strings.IndexFunc(v, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t' }) >= 0 {
		p.add(path, "must not contain control characters")
		return
	}
	rest, n := []byte(v), 0
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			p.add(path, "must contain only PEM CERTIFICATE blocks")
			return
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			p.add(path, "contains a certificate that does not parse")
			return
		}
		n++
	}
	if n == 0 {
		p.add(path, "must be PEM-encoded certificates")
	}
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" || len(s) > maxShortLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 || !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func headerValue(p *problems, path, v string) {
	if len(v) > 8192 {
		p.add(path, "longer than 8192 bytes")
		return
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 && c != '\t' || c == 0x7f {
			p.add(path, "must not contain control characters (CR, LF, NUL, …)")
			return
		}
	}
}
