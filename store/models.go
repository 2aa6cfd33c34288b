package store

import (
	"bytes"
	"encoding/json"
	"time"

	"gorm.io/gorm"
)

// Sealed is a secret as the vault sealed it: an opaque JSON object
// ({"encrypted","iv","authTag","keyVersion"}) stored inline in a row's JSON column.
// The zero value means "not set".
type Sealed []byte

// IsSet reports whether a secret is stored.
func (s Sealed) IsSet() bool { return len(s) > 0 }

// MarshalJSON writes the blob as it is (or null when unset).
func (s Sealed) MarshalJSON() ([]byte, error) {
	if len(s) == 0 {
		return []byte("null"), nil
	}
	return s, nil
}

// UnmarshalJSON keeps a copy of the raw blob; null leaves it unset.
func (s *Sealed) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		*s = nil
		return nil
	}
	*s = append((*s)[:0], b...)
	return nil
}

// Categories of external APIs.
var Categories = []string{"social", "payment", "shipping", "email", "sms", "analytics",
	"crm", "storage", "communication", "authentication", "other"}

// Status values.
const (
	APIActive     = "active"
	APIInactive   = "inactive"
	APIDeprecated = "deprecated"

	ConnActive  = "active"
	ConnExpired = "expired"
	ConnRevoked = "revoked"
	ConnError   = "error"
)

// Environments.
var Environments = []string{"production", "staging", "development"}

// Auth types.
const (
	AuthOAuth2 = "oauth2"
	AuthOAuth1 = "oauth1"
	AuthAPIKey = "api_key"
	AuthBasic  = "basic"
	AuthBearer = "bearer"
	// AuthAWSSigV4 signs each request with AWS Signature Version 4: the connection's
	// credentials.username is the access key id, credentials.password the secret access key and
	// credentials.access_token an optional session token.
	AuthAWSSigV4 = "aws_sigv4"
)

// ExternalAPI is a provider definition: where it lives, how to authenticate, its limits.
type ExternalAPI struct {
	ID             string    `gorm:"primaryKey"`
	Name           string    `gorm:"not null"`
	Slug           string    `gorm:"not null"`
	Category       string    `gorm:"not null"`
	Provider       string    `gorm:"not null"`
	APIConfig      APIConfig `gorm:"column:api_config;serializer:json;not null"`
	Status         string    `gorm:"not null"`
	IsSandbox      bool      `gorm:"not null"`
	Environment    string    `gorm:"not null"`
	SalesChannelID string    `gorm:"not null"`
	PartnerID      string    `gorm:"not null"`
	CreatedAt      time.Time
	UpdatedAt      time.Time
	DeletedAt      gorm.DeletedAt
	CreatedBy      string `gorm:"not null"`
	UpdatedBy      string `gorm:"not null"`
}

// TableName is the designed table name.
func (ExternalAPI) TableName() string { return "external_apis" }

// APIConfig is the api_config JSON column. Secret fields hold sealed blobs only; their JSON names
// end in _encrypted, as designed.
type APIConfig struct {
	BaseURL     string        `json:"base_url,omitempty"`
	APIVersion  string        `json:"api_version,omitempty"`
	AuthType    string        `json:"auth_type"`
	OAuth2      *OAuth2Config `json:"oauth2,omitempty"`
	OAuth1      *OAuth1Config `json:"oauth1,omitempty"`
	APIKey      *APIKeyConfig `json:"api_key,omitempty"`
	RateLimit   *RateLimit    `json:"rate_limit,omitempty"`
	Webhook     *Webhook      `json:"webhook,omitempty"`
	TimeoutMS   int           `json:"timeout_ms,omitempty"`
	RetryConfig *RetryConfig  `json:"retry_config,omitempty"`
	// Headers are added to every upstream request (values are not secret).
	Headers map[string]string `json:"headers,omitempty"`
	TLS     *TLSConfig        `json:"tls,omitempty"`
	// AWSSigV4 is the signing scope of auth_type aws_sigv4.
	AWSSigV4 *AWSSigV4Config `json:"aws_sigv4,omitempty"`
}

// AWSSigV4Config is the signing scope of an AWS service (the keys are the connection's).
type AWSSigV4Config struct {
	Service string `json:"service"`
	Region  string `json:"region"`
}

// OAuth2Config configures OAuth 2.0.
type OAuth2Config struct {
	ClientID         Sealed   `json:"client_id_encrypted,omitempty"`
	ClientSecret     Sealed   `json:"client_secret_encrypted,omitempty"`
	AuthorizationURL string   `json:"authorization_url,omitempty"`
	TokenURL         string   `json:"token_url,omitempty"`
	Scopes           []string `json:"scopes,omitempty"`
	RedirectURI      string   `json:"redirect_uri,omitempty"`
	// GrantType is "authorization_code" (default), "client_credentials" or "jwt_bearer".
	GrantType string `json:"grant_type,omitempty"`
	// TokenAuthMethod is "client_secret_basic" (default) or "client_secret_post".
	TokenAuthMethod string `json:"token_auth_method,omitempty"`
	// PKCE is on unless set to false.
	PKCE                *bool             `json:"pkce,omitempty"`
	AuthorizationParams map[string]string `json:"authorization_params,omitempty"`
	// TokenParams are extra form parameters of client_credentials token requests (Auth0's
	// audience, a resource indicator).
	TokenParams        map[string]string `json:"token_params,omitempty"`
	SuccessRedirectURL string            `json:"success_redirect_url,omitempty"`
	// ServiceAccountKey is a service-account key (Google's JSON key file) of grant type
	// jwt_bearer: tokens are minted with an RS256 JWT assertion (RFC 7523).
	ServiceAccountKey Sealed `json:"service_account_key_encrypted,omitempty"`
}

// OAuth1Config configures OAuth 1.0a.
type OAuth1Config struct {
	ConsumerKey      Sealed `json:"consumer_key_encrypted,omitempty"`
	ConsumerSecret   Sealed `json:"consumer_secret_encrypted,omitempty"`
	RequestTokenURL  string `json:"request_token_url,omitempty"`
	AuthorizationURL string `json:"authorization_url,omitempty"`
	AccessTokenURL   string `json:"access_token_url,omitempty"`
	// SignatureMethod is HMAC-SHA1 (default), HMAC-SHA256 or PLAINTEXT.
	SignatureMethod string `json:"signature_method,omitempty"`
	Realm           string `json:"realm,omitempty"`
}

// APIKeyConfig is an API-level key (one key for all connections) and where to put it.
type APIKeyConfig struct {
	Key        Sealed `json:"key_encrypted,omitempty"`
	HeaderName string `json:"header_name,omitempty"`
	KeyPrefix  string `json:"key_prefix,omitempty"`
	// QueryParam, when set, sends the key as this query parameter instead of a header.
	QueryParam string `json:"query_param,omitempty"`
}

// RateLimit windows; every window set applies.
type RateLimit struct {
	RequestsPerSecond int `json:"requests_per_second,omitempty"`
	RequestsPerMinute int `json:"requests_per_minute,omitempty"`
	RequestsPerHour   int `json:"requests_per_hour,omitempty"`
	RequestsPerDay    int `json:"requests_per_day,omitempty"`
	// Scope is "connection" (default) or "api".
	Scope string `json:"scope,omitempty"`
	Burst int    `json:"burst,omitempty"`
	// Mode is "wait" (default) or "reject".
	Mode         string `json:"mode,omitempty"`
	MaxWaitMS    int    `json:"max_wait_ms,omitempty"`
	OnRedisError string `json:"on_redis_error,omitempty"`
	// ResetHeader names an upstream header that says when a 429 ends.
	ResetHeader string `json:"reset_header,omitempty"`
}

// Webhook settings of inbound provider events.
type Webhook struct {
	URL string `json:"url,omitempty"`
	// Secret is the provider's signing secret. During a rotation it holds several, one per line:
	// an event signed with any of them verifies.
	Secret     Sealed   `json:"secret_encrypted,omitempty"`
	Events     []string `json:"events,omitempty"`
	ForwardURL string   `json:"forward_url,omitempty"`
	Scheme     string   `json:"scheme,omitempty"`
	ToleranceS int      `json:"tolerance_s,omitempty"`
	// VerifyToken answers the meta scheme's subscription challenge (hub.verify_token).
	VerifyToken Sealed `json:"verify_token_encrypted,omitempty"`
	// ForwardSecret keys the HMAC extapi adds to every delivery to ForwardURL.
	ForwardSecret Sealed `json:"forward_secret_encrypted,omitempty"`
	// PublicKey is the sendgrid scheme's verification key (base64 DER or PEM, not secret); one
	// per line during a rotation.
	PublicKey string `json:"public_key,omitempty"`
}

// RetryConfig of upstream calls.
type RetryConfig struct {
	MaxRetries int `json:"max_retries"`
	BackoffMS  int `json:"backoff_ms"`
}

// TLSConfig of the upstream connection: an extra CA bundle and a client certificate (mTLS).
type TLSConfig struct {
	CABundle   string `json:"ca_bundle,omitempty"`
	ClientCert string `json:"client_cert,omitempty"`
	ClientKey  Sealed `json:"client_key_encrypted,omitempty"`
}

// Connection is one user's or account's credentials for an ExternalAPI.
type Connection struct {
	ID              string         `gorm:"primaryKey"`
	ExternalAPIID   string         `gorm:"column:external_api_id;not null"`
	UserID          string         `gorm:"not null"`
	PartnerID       string         `gorm:"not null"`
	SalesChannelID  string         `gorm:"not null"`
	ConnectionName  string         `gorm:"not null"`
	Credentials     Credentials    `gorm:"serializer:json;not null"`
	ProviderData    map[string]any `gorm:"serializer:json;not null"`
	Status          string         `gorm:"not null"`
	LastUsedAt      *time.Time
	LastSyncAt      *time.Time
	ErrorMessage    string `gorm:"not null"`
	AuthenticatedAt *time.Time
	CreatedAt       time.Time
	UpdatedAt       time.Time
	DeletedAt       gorm.DeletedAt
}

// TableName is the designed table name.
func (Connection) TableName() string { return "external_api_connections" }

// Credentials is the credentials JSON column. Every token and key is sealed.
type Credentials struct {
	AccessToken      Sealed     `json:"access_token_encrypted,omitempty"`
	RefreshToken     Sealed     `json:"refresh_token_encrypted,omitempty"`
	TokenType        string     `json:"token_type,omitempty"`
	ExpiresAt        *time.Time `json:"expires_at,omitempty"`
	Scopes           []string   `json:"scopes,omitempty"`
	OAuthToken       Sealed     `json:"oauth_token_encrypted,omitempty"`
	OAuthTokenSecret Sealed     `json:"oauth_token_secret_encrypted,omitempty"`
	APIKey           Sealed     `json:"api_key_encrypted,omitempty"`
	Username         Sealed     `json:"username_encrypted,omitempty"`
	Password         Sealed     `json:"password_encrypted,omitempty"`
	// AdditionalData is a JSON object of further credentials, sealed as a whole.
	AdditionalData Sealed `json:"additional_data_encrypted,omitempty"`
}

// AuditEvent records who changed what. Changes never hold a secret, only "changed"/"unchanged".
type AuditEvent struct {
	ID             string         `gorm:"primaryKey"`
	At             time.Time      `gorm:"not null"`
	Actor          string         `gorm:"not null"`
	Action         string         `gorm:"not null"`
	TargetType     string         `gorm:"not null"`
	TargetID       string         `gorm:"not null"`
	SalesChannelID string         `gorm:"not null"`
	PartnerID      string         `gorm:"not null"`
	Changes        map[string]any `gorm:"serializer:json;not null"`
}

// TableName of the audit trail.
func (AuditEvent) TableName() string { return "audit_events" }

// SecretField names one sealed value of a row: Name is its JSON path, which together with the
// row's table and id forms the additional authenticated data that binds the blob to its place.
type SecretField struct {
	Name  string
	Value *Sealed
}

// AAD is the additional authenticated data of a sealed field: table/id/field.
func AAD(table, id, field string) []byte {
	b := make([]byte, 0, len(table)+len(id)+len(field)+2)
	b = append(b, table...)
	b = append(b, '/')
	b = append(b, id...)
	b = append(b, '/')
	return append(b, field...)
}

// SecretFields lists every sealed value in the API's config. Sections that are nil are skipped.
func (a *ExternalAPI) SecretFields() []SecretField {
	c := &a.APIConfig
	var out []SecretField
	if c.OAuth2 != nil {
		out = append(out,
			SecretField{"api_config.oauth2.client_id", &c.OAuth2.ClientID},
			SecretField{"api_config.oauth2.client_secret", &c.OAuth2.ClientSecret},
			SecretField{"api_config.oauth2.service_account_key", &c.OAuth2.ServiceAccountKey})
	}
	if c.OAuth1 != nil {
		out = append(out,
			SecretField{"api_config.oauth1.consumer_key", &c.OAuth1.ConsumerKey},
			SecretField{"api_config.oauth1.consumer_secret", &c.OAuth1.ConsumerSecret})
	}
	if c.APIKey != nil {
		out = append(out, SecretField{"api_config.api_key.key", &c.APIKey.Key})
	}
	if c.Webhook != nil {
		out = append(out, SecretField{"api_config.webhook.secret", &c.Webhook.Secret},
			SecretField{"api_config.webhook.verify_token", &c.Webhook.VerifyToken},
			SecretField{"api_config.webhook.forward_secret", &c.Webhook.ForwardSecret})
	}
	if c.TLS != nil {
		out = append(out, SecretField{"api_config.tls.client_key", &c.TLS.ClientKey})
	}
	return out
}

// SecretFields lists every sealed value of the connection's credentials.
func (c *Connection) SecretFields() []SecretField { return c.Credentials.secretFields() }

// secretFields lists every sealed value of a credentials column, named by JSON path.
func (k *Credentials) secretFields() []SecretField {
	return []SecretField{
		{"credentials.access_token", &k.AccessToken},
		{"credentials.refresh_token", &k.RefreshToken},
		{"credentials.oauth_token", &k.OAuthToken},
		{"credentials.oauth_token_secret", &k.OAuthTokenSecret},
		{"credentials.api_key", &k.APIKey},
		{"credentials.username", &k.Username},
		{"credentials.password", &k.Password},
		{"credentials.additional_data", &k.AdditionalData},
	}
}

// AAD of one of the API's fields.
func (a *ExternalAPI) AAD(field string) []byte { return AAD("external_apis", a.ID, field) }

// AAD of one of the connection's fields.
func (c *Connection) AAD(field string) []byte { return AAD("external_api_connections", c.ID, field) }

var _ json.Marshaler = Sealed(nil)
