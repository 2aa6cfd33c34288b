package store

import (
	"context"
	"time"

	"gorm.io/gorm/clause"
)

// OAuth2ClientToken is the client-credentials token of an API (grant_type client_credentials),
// shared by every instance. Only Credentials' AccessToken, TokenType, ExpiresAt and Scopes are
// used; the token is sealed with the AAD of this row (see AAD). It is a cache: a row that is
// missing or cannot be opened is fetched again from the provider.
type OAuth2ClientToken struct {
	ExternalAPIID string      `gorm:"column:external_api_id;primaryKey"`
	Credentials   Credentials `gorm:"serializer:json;not null"`
	UpdatedAt     time.Time
	// APIUpdatedAt is the UpdatedAt of the API whose settings the token was fetched with; nil
	// for a row cached before it was recorded.
	APIUpdatedAt *time.Time `gorm:"column:api_updated_at"`
}

// TableName of the client-credentials tokens.
func (OAuth2ClientToken) TableName() string { return "oauth2_client_tokens" }

// AAD of one of the row's sealed fields ("credentials.access_token").
func (t *OAuth2ClientToken) AAD(field string) []byte {
	return AAD("oauth2_client_tokens", t.ExternalAPIID, field)
}

// SecretFields lists the row's sealed values (only credentials.access_token is written today).
func (t *OAuth2ClientToken) SecretFields() []SecretField { return t.Credentials.secretFields() }

// GetOAuth2ClientToken returns the cached token of an API; ErrNotFound when there is none.
func (s *Store) GetOAuth2ClientToken(ctx context.Context, apiID string) (*OAuth2ClientToken, error) {
	var t OAuth2ClientToken
	if err := s.ctx(ctx).Where("external_api_id = ?", apiID).Take(&t).Error; err != nil {
		return nil, translate(err)
	}
	return &t, nil
}

// PutOAuth2ClientToken inserts or replaces the cached token of t.ExternalAPIID.
func (s *Store) PutOAuth2ClientToken(ctx context.Context, t *OAuth2ClientToken) error {
	t.UpdatedAt = s.db.NowFunc()
	return translate(s.ctx(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "external_api_id"}},
		DoUpdates: clause.AssignmentColumns([]string{"credentials", "updated_at", "api_updated_at"}),
	}).Create(t).Error)
}

// ListOAuth2Expiring returns up to limit live, active connections of live OAuth 2.0 APIs whose
// access token expires before before, soonest first. Connections without an expiry are never
// listed.
func (s *Store) ListOAuth2Expiring(ctx context.Context, before time.Time, limit int) ([]Connection, error) {
	before = before.UTC()
	// The expiry lives in the credentials JSON; each dialect reads it as a time.
	expires := "(c.credentials->>'expires_at')::timestamptz"
	authType := "a.api_config->>'auth_type'"
	arg := any(before)
	if s.dialect != "postgres" {
		expires = "julianday(json_extract(c.credentials, '$.expires_at'))"
		authType = "json_extract(a.api_config, '$.auth_type')"
		arg = before.Format("2006-01-02T15:04:05.000000Z")
	}
	cmp := expires + " < ?"
	if s.dialect != "postgres" {
		cmp = expires + " < julianday(?)"
	}
	var out []Connection
	q := s.ctx(ctx).Table("external_api_connections AS c").Select("c.*").
		Joins("JOIN external_apis AS a ON a.id = c.external_api_id AND a.deleted_at IS NULL").
		Where("c.deleted_at IS NULL AND c.status = ?", ConnActive).
		Where(authType+" = ?", AuthOAuth2).
		Where(expires+" IS NOT NULL").
		Where(cmp, arg).
		Order(expires + ", c.id")
	if limit > 0 {
		q = q.Limit(limit)
	}
	if err := q.Find(&out).Error; err != nil {
		return nil, err
	}
	return out, nil
}
