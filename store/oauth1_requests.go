package store

import (
	"context"
	"errors"
	"time"
)

// ErrRequestTokenUsed: the OAuth 1.0a request token was already presented to an earlier callback.
var ErrRequestTokenUsed = errors.New("store: oauth1 request token already used")

// OAuth1RequestSecretField names the sealed request token secret in the row's AAD.
const OAuth1RequestSecretField = "request_token_secret"

// OAuth1Request is one three-legged OAuth 1.0a flow in flight: the temporary credentials the
// provider issued and what the callback needs to create the connection, on any instance. ID is
// chosen by the caller (oauth uses the hex SHA-256 of the request token, so the token itself is
// never stored). RequestTokenSecret is sealed with AAD(OAuth1RequestSecretField).
type OAuth1Request struct {
	ID                 string `gorm:"primaryKey"`
	ExternalAPIID      string `gorm:"column:external_api_id;not null"`
	RequestTokenSecret Sealed `gorm:"not null"`
	ConnectionName     string `gorm:"not null"`
	UserID             string `gorm:"not null"`
	PartnerID          string `gorm:"not null"`
	SalesChannelID     string `gorm:"not null"`
	CreatedBy          string `gorm:"not null"`
	CreatedAt          time.Time
	ExpiresAt          time.Time `gorm:"not null"`
	UsedAt             *time.Time
}

// TableName of the OAuth 1.0a flows in flight.
func (OAuth1Request) TableName() string { return "oauth1_requests" }

// AAD of one of the row's sealed fields (OAuth1RequestSecretField).
func (r *OAuth1Request) AAD(field string) []byte { return AAD("oauth1_requests", r.ID, field) }

// SecretFields lists the row's sealed values.
func (r *OAuth1Request) SecretFields() []SecretField {
	return []SecretField{{OAuth1RequestSecretField, &r.RequestTokenSecret}}
}

// CreateOAuth1Request inserts r; r.ID must be set and the secret sealed. ErrConflict when a row
// with that id exists (the provider issued the same request token twice).
func (s *Store) CreateOAuth1Request(ctx context.Context, r *OAuth1Request) error {
	if r.ID == "" {
		return errors.New("store: oauth1 request needs an id")
	}
	if !r.RequestTokenSecret.IsSet() {
		return errors.New("store: oauth1 request needs a sealed request token secret")
	}
	r.ExpiresAt = r.ExpiresAt.UTC().Truncate(time.Microsecond)
	return translate(s.ctx(ctx).Create(r).Error)
}

// ConsumeOAuth1Request marks the flow id of API apiID used at at and returns it. It succeeds once
// per flow, however many instances try at the same moment: ErrNotFound when there is no such
// flow for that API (a row of another API is left untouched), ErrRequestTokenUsed when it was
// consumed before. Expiry is the caller's to check (ExpiresAt), so an expired flow is consumed
// too and can never be tried again.
func (s *Store) ConsumeOAuth1Request(ctx context.Context, id, apiID string, at time.Time) (*OAuth1Request, error) {
	at = at.UTC().Truncate(time.Microsecond)
	var r OAuth1Request
	err := s.Tx(ctx, func(tx *Store) error {
		// The conditional UPDATE is the single-use guarantee: of concurrent callers exactly one
		// changes the row.
		res := tx.ctx(ctx).Model(&OAuth1Request{}).Where("id = ? AND external_api_id = ? AND used_at IS NULL", id, apiID).
			UpdateColumn("used_at", at)
		if res.Error != nil {
			return translate(res.Error)
		}
		if err := tx.ctx(ctx).Where("id = ? AND external_api_id = ?", id, apiID).Take(&r).Error; err != nil {
			return translate(err)
		}
		if res.RowsAffected == 0 {
			return ErrRequestTokenUsed
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// DeleteOAuth1RequestsBefore removes flows that expired before before (used or not) and says
// how many it removed.
func (s *Store) DeleteOAuth1RequestsBefore(ctx context.Context, before time.Time) (int64, error) {
	res := s.ctx(ctx).Where("expires_at < ?", before.UTC().Truncate(time.Microsecond)).Delete(&OAuth1Request{})
	return res.RowsAffected, translate(res.Error)
}
