package admin

import (
	"time"

	"github.com/extapi/extapi/store"
)

// The request and response bodies share one set of generic types, so the two cannot drift: a
// request carries each secret as a plaintext string (S = *string), a response as SecretStatus
// (S = *SecretStatus). The JSON names are the designed plaintext names (client_secret, not
// client_secret_encrypted).

// SecretStatus is how every secret appears in a response: whether it is set, and nothing else —
// no length, no last characters, no ciphertext.
type SecretStatus struct {
	Set bool `json:"set"`
}

type apiFields[S any] struct {
	Name           string              `json:"name"`
	Slug           string              `json:"slug"`
	Category       string              `json:"category"`
	Provider       string              `json:"provider"`
	APIConfig      *apiConfigFields[S] `json:"api_config"`
	Status         string              `json:"status"`
	IsSandbox      bool                `json:"is_sandbox"`
	Environment    string              `json:"environment"`
	SalesChannelID string              `json:"sales_channel_id"`
	PartnerID      string              `json:"partner_id"`
}

type apiConfigFields[S any] struct {
	BaseURL     string            `json:"base_url"`
	APIVersion  string            `json:"api_version"`
	AuthType    string            `json:"auth_type"`
	OAuth2      *oauth2Fields[S]  `json:"oauth2,omitempty"`
	OAuth1      *oauth1Fields[S]  `json:"oauth1,omitempty"`
	APIKey      *apiKeyFields[S]  `json:"api_key,omitempty"`
	RateLimit   *rateLimitFields  `json:"rate_limit,omitempty"`
	Webhook     *webhookFields[S] `json:"webhook,omitempty"`
	TimeoutMS   *int              `json:"timeout_ms,omitempty"`
	RetryConfig *retryFields      `json:"retry_config,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"`
	TLS         *tlsFields[S]     `json:"tls,omitempty"`
	AWSSigV4    *awsSigV4Fields   `json:"aws_sigv4,omitempty"`
}

type awsSigV4Fields struct {
	Service string `json:"service"`
	Region  string `json:"region"`
}

type oauth2Fields[S any] struct {
	ClientID            S                 `json:"client_id,omitempty"`
	ClientSecret        S                 `json:"client_secret,omitempty"`
	AuthorizationURL    string            `json:"authorization_url,omitempty"`
	TokenURL            string            `json:"token_url,omitempty"`
	Scopes              []string          `json:"scopes,omitempty"`
	RedirectURI         string            `json:"redirect_uri,omitempty"`
	GrantType           string            `json:"grant_type,omitempty"`
	TokenAuthMethod     string            `json:"token_auth_method,omitempty"`
	PKCE                *bool             `json:"pkce,omitempty"`
	AuthorizationParams map[string]string `json:"authorization_params,omitempty"`
	TokenParams         map[string]string `json:"token_params,omitempty"`
	SuccessRedirectURL  string            `json:"success_redirect_url,omitempty"`
	ServiceAccountKey   S                 `json:"service_account_key,omitempty"`
}

type oauth1Fields[S any] struct {
	ConsumerKey      S      `json:"consumer_key,omitempty"`
	ConsumerSecret   S      `json:"consumer_secret,omitempty"`
	RequestTokenURL  string `json:"request_token_url,omitempty"`
	AuthorizationURL string `json:"authorization_url,omitempty"`
	AccessTokenURL   string `json:"access_token_url,omitempty"`
	SignatureMethod  string `json:"signature_method,omitempty"`
	Realm            string `json:"realm,omitempty"`
}

type apiKeyFields[S any] struct {
	Key        S      `json:"key,omitempty"`
	HeaderName string `json:"header_name,omitempty"`
	KeyPrefix  string `json:"key_prefix,omitempty"`
	QueryParam string `json:"query_param,omitempty"`
}

type rateLimitFields struct {
	RequestsPerSecond *int   `json:"requests_per_second,omitempty"`
	RequestsPerMinute *int   `json:"requests_per_minute,omitempty"`
	RequestsPerHour   *int   `json:"requests_per_hour,omitempty"`
	RequestsPerDay    *int   `json:"requests_per_day,omitempty"`
	Scope             string `json:"scope,omitempty"`
	Burst             *int   `json:"burst,omitempty"`
	Mode              string `json:"mode,omitempty"`
	MaxWaitMS         *int   `json:"max_wait_ms,omitempty"`
	OnRedisError      string `json:"on_redis_error,omitempty"`
	ResetHeader       string `json:"reset_header,omitempty"`
}

type webhookFields[S any] struct {
	URL        string   `json:"url,omitempty"`
	Secret     S        `json:"secret,omitempty"`
	Events     []string `json:"events,omitempty"`
	ForwardURL string   `json:"forward_url,omitempty"`
	Scheme     string   `json:"scheme,omitempty"`
	ToleranceS *int     `json:"tolerance_s,omitempty"`
	// VerifyToken and ForwardSecret are sealed like Secret; PublicKey is not secret.
	VerifyToken   S      `json:"verify_token,omitempty"`
	ForwardSecret S      `json:"forward_secret,omitempty"`
	PublicKey     string `json:"public_key,omitempty"`
}

type retryFields struct {
	MaxRetries *int `json:"max_retries,omitempty"`
	BackoffMS  *int `json:"backoff_ms,omitempty"`
}

type tlsFields[S any] struct {
	CABundle   string `json:"ca_bundle,omitempty"`
	ClientCert string `json:"client_cert,omitempty"`
	ClientKey  S      `json:"client_key,omitempty"`
}

// apiInput is the body of POST and PATCH /admin/external-apis.
type apiInput = apiFields[*string]

// apiOut is an external API as responses show it.
type apiOut struct {
	ID string `json:"id"`
	apiFields[*SecretStatus]
	ConnectionsCount int64     `json:"connections_count"`
	CreatedAt        time.Time `json:"created_at"`
	UpdatedAt        time.Time `json:"updated_at"`
	CreatedBy        string    `json:"created_by"`
	UpdatedBy        string    `json:"updated_by"`
}

type connFields[S, D any] struct {
	ConnectionName string            `json:"connection_name"`
	UserID         string            `json:"user_id"`
	PartnerID      string            `json:"partner_id"`
	SalesChannelID string            `json:"sales_channel_id"`
	Credentials    *credFields[S, D] `json:"credentials"`
	ProviderData   map[string]any    `json:"provider_data"`
	Status         string            `json:"status"`
}

type credFields[S, D any] struct {
	AccessToken      S        `json:"access_token,omitempty"`
	RefreshToken     S        `json:"refresh_token,omitempty"`
	TokenType        string   `json:"token_type,omitempty"`
	ExpiresAt        string   `json:"expires_at,omitempty"`
	Scopes           []string `json:"scopes,omitempty"`
	OAuthToken       S        `json:"oauth_token,omitempty"`
	OAuthTokenSecret S        `json:"oauth_token_secret,omitempty"`
	APIKey           S        `json:"api_key,omitempty"`
	Username         S        `json:"username,omitempty"`
	Password         S        `json:"password,omitempty"`
	AdditionalData   D        `json:"additional_data,omitempty"`
}

// connInput is the body of POST /admin/external-apis/{id}/connections and PATCH /admin/connections/{id}.
type connInput = connFields[*string, map[string]any]

// connOut is a connection as responses show it.
type connOut struct {
	ID            string `json:"id"`
	ExternalAPIID string `json:"external_api_id"`
	connFields[*SecretStatus, *SecretStatus]
	ErrorMessage    string     `json:"error_message"`
	LastUsedAt      *time.Time `json:"last_used_at"`
	LastSyncAt      *time.Time `json:"last_sync_at"`
	AuthenticatedAt *time.Time `json:"authenticated_at"`
	CreatedAt       time.Time  `json:"created_at"`
	UpdatedAt       time.Time  `json:"updated_at"`
}

// apiView renders a row in the request/response shape; secret turns each sealed value into S.
func apiView[S any](a *store.ExternalAPI, secret func(store.Sealed) S) apiFields[S] {
	c := &a.APIConfig
	cfg := &apiConfigFields[S]{
		BaseURL: c.BaseURL, APIVersion: c.APIVersion, AuthType: c.AuthType,
		TimeoutMS: optInt(c.TimeoutMS), Headers: c.Headers,
	}
	if o := c.OAuth2; o != nil {
		cfg.OAuth2 = &oauth2Fields[S]{
			ClientID: secret(o.ClientID), ClientSecret: secret(o.ClientSecret),
			AuthorizationURL: o.AuthorizationURL, TokenURL: o.TokenURL, Scopes: o.Scopes, RedirectURI: o.RedirectURI,
			GrantType: o.GrantType, TokenAuthMethod: o.TokenAuthMethod, PKCE: o.PKCE,
			AuthorizationParams: o.AuthorizationParams, TokenParams: o.TokenParams, SuccessRedirectURL: o.SuccessRedirectURL,
			ServiceAccountKey: secret(o.ServiceAccountKey),
		}
	}
	if v := c.AWSSigV4; v != nil {
		cfg.AWSSigV4 = &awsSigV4Fields{Service: v.Service, Region: v.Region}
	}
	if o := c.OAuth1; o != nil {
		cfg.OAuth1 = &oauth1Fields[S]{
			ConsumerKey: secret(o.ConsumerKey), ConsumerSecret: secret(o.ConsumerSecret),
			RequestTokenURL: o.RequestTokenURL, AuthorizationURL: o.AuthorizationURL, AccessTokenURL: o.AccessTokenURL,
			SignatureMethod: o.SignatureMethod, Realm: o.Realm,
		}
	}
	if k := c.APIKey; k != nil {
		cfg.APIKey = &apiKeyFields[S]{Key: secret(k.Key), HeaderName: k.HeaderName, KeyPrefix: k.KeyPrefix, QueryParam: k.QueryParam}
	}
	if r := c.RateLimit; r != nil {
		cfg.RateLimit = &rateLimitFields{
			RequestsPerSecond: optInt(r.RequestsPerSecond), RequestsPerMinute: optInt(r.RequestsPerMinute),
			RequestsPerHour: optInt(r.RequestsPerHour), RequestsPerDay: optInt(r.RequestsPerDay),
			Scope: r.Scope, Burst: optInt(r.Burst), Mode: r.Mode, MaxWaitMS: optInt(r.MaxWaitMS),
			OnRedisError: r.OnRedisError, ResetHeader: r.ResetHeader,
		}
	}
	if h := c.Webhook; h != nil {
		cfg.Webhook = &webhookFields[S]{URL: h.URL, Secret: secret(h.Secret), Events: h.Events,
			ForwardURL: h.ForwardURL, Scheme: h.Scheme, ToleranceS: optInt(h.ToleranceS),
			VerifyToken: secret(h.VerifyToken), ForwardSecret: secret(h.ForwardSecret), PublicKey: h.PublicKey}
	}
	if rc := c.RetryConfig; rc != nil {
		cfg.RetryConfig = &retryFields{MaxRetries: &rc.MaxRetries, BackoffMS: &rc.BackoffMS}
	}
	if t := c.TLS; t != nil {
		cfg.TLS = &tlsFields[S]{CABundle: t.CABundle, ClientCert: t.ClientCert, ClientKey: secret(t.ClientKey)}
	}
	return apiFields[S]{
		Name: a.Name, Slug: a.Slug, Category: a.Category, Provider: a.Provider, APIConfig: cfg,
		Status: a.Status, IsSandbox: a.IsSandbox, Environment: a.Environment,
		SalesChannelID: a.SalesChannelID, PartnerID: a.PartnerID,
	}
}

// applyAPI copies the non-secret fields of in onto a; its sealed values are left empty.
func applyAPI(a *store.ExternalAPI, in *apiInput) {
	a.Name, a.Slug, a.Category, a.Provider = in.Name, in.Slug, in.Category, in.Provider
	a.Status, a.IsSandbox, a.Environment = in.Status, in.IsSandbox, in.Environment
	a.SalesChannelID, a.PartnerID = in.SalesChannelID, in.PartnerID
	a.APIConfig = store.APIConfig{}
	c := in.APIConfig
	if c == nil {
		return
	}
	out := &a.APIConfig
	out.BaseURL, out.APIVersion, out.AuthType = c.BaseURL, c.APIVersion, c.AuthType
	out.TimeoutMS, out.Headers = intOf(c.TimeoutMS), c.Headers
	if o := c.OAuth2; o != nil {
		out.OAuth2 = &store.OAuth2Config{
			AuthorizationURL: o.AuthorizationURL, TokenURL: o.TokenURL, Scopes: o.Scopes, RedirectURI: o.RedirectURI,
			GrantType: o.GrantType, TokenAuthMethod: o.TokenAuthMethod, PKCE: o.PKCE,
			AuthorizationParams: o.AuthorizationParams, TokenParams: o.TokenParams, SuccessRedirectURL: o.SuccessRedirectURL,
		}
	}
	if o := c.OAuth1; o != nil {
		out.OAuth1 = &store.OAuth1Config{RequestTokenURL: o.RequestTokenURL, AuthorizationURL: o.AuthorizationURL,
			AccessTokenURL: o.AccessTokenURL, SignatureMethod: o.SignatureMethod, Realm: o.Realm}
	}
	if k := c.APIKey; k != nil {
		out.APIKey = &store.APIKeyConfig{HeaderName: k.HeaderName, KeyPrefix: k.KeyPrefix, QueryParam: k.QueryParam}
	}
	if r := c.RateLimit; r != nil {
		out.RateLimit = &store.RateLimit{
			RequestsPerSecond: intOf(r.RequestsPerSecond), RequestsPerMinute: intOf(r.RequestsPerMinute),
			RequestsPerHour: intOf(r.RequestsPerHour), RequestsPerDay: intOf(r.RequestsPerDay),
			Scope: r.Scope, Burst: intOf(r.Burst), Mode: r.Mode, MaxWaitMS: intOf(r.MaxWaitMS),
			OnRedisError: r.OnRedisError, ResetHeader: r.ResetHeader,
		}
	}
	if h := c.Webhook; h != nil {
		out.Webhook = &store.Webhook{URL: h.URL, Events: h.Events, ForwardURL: h.ForwardURL, Scheme: h.Scheme,
			ToleranceS: intOf(h.ToleranceS), PublicKey: h.PublicKey}
	}
	if rc := c.RetryConfig; rc != nil {
		out.RetryConfig = &store.RetryConfig{MaxRetries: intOf(rc.MaxRetries), BackoffMS: intOf(rc.BackoffMS)}
	}
	if t := c.TLS; t != nil {
		out.TLS = &store.TLSConfig{CABundle: t.CABundle, ClientCert: t.ClientCert}
	}
	if v := c.AWSSigV4; v != nil {
		out.AWSSigV4 = &store.AWSSigV4Config{Service: v.Service, Region: v.Region}
	}
}

// connView renders a connection in the request/response shape.
func connView[S, D any](c *store.Connection, secret func(store.Sealed) S, data func(store.Sealed) D) connFields[S, D] {
	k := &c.Credentials
	cred := &credFields[S, D]{
		AccessToken: secret(k.AccessToken), RefreshToken: secret(k.RefreshToken), TokenType: k.TokenType,
		Scopes: k.Scopes, OAuthToken: secret(k.OAuthToken), OAuthTokenSecret: secret(k.OAuthTokenSecret),
		APIKey: secret(k.APIKey), Username: secret(k.Username), Password: secret(k.Password),
		AdditionalData: data(k.AdditionalData),
	}
	if k.ExpiresAt != nil {
		cred.ExpiresAt = k.ExpiresAt.UTC().Format(time.RFC3339Nano)
	}
	pd := c.ProviderData
	if pd == nil {
		pd = map[string]any{}
	}
	return connFields[S, D]{
		ConnectionName: c.ConnectionName, UserID: c.UserID, PartnerID: c.PartnerID, SalesChannelID: c.SalesChannelID,
		Credentials: cred, ProviderData: pd, Status: c.Status,
	}
}

// applyConn copies the non-secret fields of in onto c; its sealed values are left empty.
// ExpiresAt must have been validated.
func applyConn(c *store.Connection, in *connInput) {
	c.ConnectionName, c.UserID, c.PartnerID, c.SalesChannelID = in.ConnectionName, in.UserID, in.PartnerID, in.SalesChannelID
	c.Status = in.Status
	c.ProviderData = in.ProviderData
	if c.ProviderData == nil {
		c.ProviderData = map[string]any{}
	}
	c.Credentials = store.Credentials{}
	if k := in.Credentials; k != nil {
		c.Credentials.TokenType, c.Credentials.Scopes = k.TokenType, k.Scopes
		if t, err := time.Parse(time.RFC3339, k.ExpiresAt); err == nil {
			t = t.UTC()
			c.Credentials.ExpiresAt = &t
		}
	}
}

func optInt(v int) *int {
	if v == 0 {
		return nil
	}
	return &v
}

func intOf(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

// Secret renderers.
func noSecret(store.Sealed) *string             { return nil }
func noData(store.Sealed) map[string]any        { return nil }
func secretStatus(v store.Sealed) *SecretStatus { return &SecretStatus{Set: v.IsSet()} }
