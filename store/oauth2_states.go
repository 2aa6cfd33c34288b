package store

import (
	"context"
	"errors"
	"time"
)

// ErrStateUsed: the OAuth 2.0 state was already consumed by an earlier callback.
var ErrStateUsed = errors.New("store: oauth2 state already used")

// OAuth2State is one authorization request in flight: what the callback needs to finish it on
// any instance. ID is chosen by the caller (oauth uses the hex SHA-256 of the state it sends,
// so the state itself is never stored). CodeVerifier is the sealed PKCE verifier, unset when
// PKCE is off.
type OAuth2State struct {
	ID             string `gorm:"primaryKey"`
	ExternalAPIID  string `gorm:"column:external_api_id;not null"`
	ConnectionName string `gorm:"not null"`
	UserID         string `gorm:"not null"`
	PartnerID      string `gorm:"not null"`
	SalesChannelID string `gorm:"not null"`
	RedirectURI    string `gorm:"not null"`
	CodeVerifier   Sealed
	CreatedBy      string `gorm:"not null"`
	CreatedAt      time.Time
	ExpiresAt      time.Time `gorm:"not null"`
	UsedAt         *time.Time
}

// TableName of the authorization requests in flight.
func (OAuth2State) TableName() string { return "oauth2_states" }

// AAD of one of the state's sealed fields ("code_verifier").
func (s *OAuth2State) AAD(field string) []byte { return AAD("oauth2_states", s.ID, field) }

// OAuth2StateSecretField names the sealed PKCE verifier in the row's AAD.
const OAuth2StateSecretField = "code_verifier"

// SecretFields lists the row's sealed values.
func (s *OAuth2State) SecretFields() []SecretField {
	return []SecretField{{OAuth2StateSecretField, &s.CodeVerifier}}
}

// CreateOAuth2State inserts st; st.ID must be set. CreatedAt is filled when zero.
func (s *Store) CreateOAuth2State(ctx context.Context, st *OAuth2State) error {
	if st.ID == "" {
		return errors.New("store: oauth2 state needs an id")
	}
	st.ExpiresAt = st.ExpiresAt.UTC().Truncate(time.Microsecond)
	return translate(s.ctx(ctx).Create(st).Error)
}

// ConsumeOAuth2State marks the state id used at at and returns it. It succeeds once per state,
// however many instances try at the same moment: ErrNotFound when there is no such state,
// ErrStateUsed when it was consumed before. Expiry is the caller's to check (ExpiresAt), so an
// expired state is consumed too and can never be tried again.
func (s *Store) ConsumeOAuth2State(ctx context.Context, id string, at time.Time) (*OAuth2State, error) {
	at = at.UTC().Truncate(time.Microsecond)
	var st OAuth2State
	err := s.Tx(ctx, func(tx *Store) error {
		// The conditional UPDATE is the single-use guarantee: of concurrent callers exactly one
		// changes the row.
		res := tx.ctx(ctx).Model(&OAuth2State{}).Where("id = ? AND used_at IS NULL", id).UpdateColumn("used_at", at)
		if res.Error != nil {
			return translate(res.Error)
		}
		if err := tx.ctx(ctx).Where("id = ?", id).Take(&st).Error; err != nil {
			return translate(err)
		}
		if res.RowsAffected == 0 {
			return ErrStateUsed
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &st, nil
}

// DeleteOAuth2StatesBefore removes states that expired before before (used or not) and says how
// many it removed.
func (s *Store) DeleteOAuth2StatesBefore(ctx context.Context, before time.Time) (int64, error) {
	res := s.ctx(ctx).Where("expires_at < ?", before.UTC().Truncate(time.Microsecond)).Delete(&OAuth2State{})
	return res.RowsAffected, translate(res.Error)
}
