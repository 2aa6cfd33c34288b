package store

import (
	"context"
	"time"
)

// PrefixToken is the id prefix of admin tokens.
const PrefixToken = "tok_"

// Roles of admin tokens, weakest first: a viewer reads, an editor also writes APIs and
// connections, an admin also manages tokens.
const (
	RoleViewer = "viewer"
	RoleEditor = "editor"
	RoleAdmin  = "admin"
)

// Roles lists every role, weakest first.
var Roles = []string{RoleViewer, RoleEditor, RoleAdmin}

// AdminToken is a bearer token of the management API. Only Hash, the hex SHA-256 of the token,
// is stored; the token itself is shown once when it is created.
type AdminToken struct {
	ID             string `gorm:"primaryKey"`
	Name           string `gorm:"not null"`
	Role           string `gorm:"not null"`
	SalesChannelID string `gorm:"not null"`
	PartnerID      string `gorm:"not null"`
	Hash           string `gorm:"not null"`
	CreatedAt      time.Time
	CreatedBy      string `gorm:"not null"`
	LastUsedAt     *time.Time
	RevokedAt      *time.Time
}

// TableName of the admin tokens.
func (AdminToken) TableName() string { return "admin_tokens" }

// Tenant is the token's scope: the rows it may see and change.
func (t *AdminToken) Tenant() Tenant {
	return Tenant{SalesChannelID: t.SalesChannelID, PartnerID: t.PartnerID}
}

// TokenFilter selects admin tokens. Empty fields do not restrict.
type TokenFilter struct {
	Tenant
	Name           string
	IncludeRevoked bool
}

// CreateToken inserts a token; t.ID is generated when empty. ErrConflict when a token that is not
// revoked has the same name (or, which never happens by chance, the same hash).
func (s *Store) CreateToken(ctx context.Context, t *AdminToken) error {
	if t.ID == "" {
		t.ID = NewID(PrefixToken)
	}
	return translate(s.ctx(ctx).Create(t).Error)
}

// TokenByHash returns the token, not revoked, whose hash is hash (hex SHA-256). The lookup is an
// index equality on the hash, so its timing says nothing about the token.
func (s *Store) TokenByHash(ctx context.Context, hash string) (*AdminToken, error) {
	var t AdminToken
	err := s.ctx(ctx).Where("hash = ? AND revoked_at IS NULL", hash).Take(&t).Error
	if err != nil {
		return nil, translate(err)
	}
	return &t, nil
}

// GetToken returns a token (revoked or not) by id within the tenant scope.
func (s *Store) GetToken(ctx context.Context, id string, t Tenant) (*AdminToken, error) {
	var tok AdminToken
	err := t.apply(s.ctx(ctx), "admin_tokens").Where("id = ?", id).Take(&tok).Error
	if err != nil {
		return nil, translate(err)
	}
	return &tok, nil
}

// ListTokens returns the tokens matching f, oldest first.
func (s *Store) ListTokens(ctx context.Context, f TokenFilter) ([]AdminToken, error) {
	q := f.Tenant.apply(s.ctx(ctx).Model(&AdminToken{}), "admin_tokens")
	if f.Name != "" {
		q = q.Where("name = ?", f.Name)
	}
	if !f.IncludeRevoked {
		q = q.Where("revoked_at IS NULL")
	}
	var out []AdminToken
	if err := q.Order("created_at, id").Find(&out).Error; err != nil {
		return nil, err
	}
	return out, nil
}

// RevokeToken marks a token that is not yet revoked as revoked at at, within the tenant scope.
// ErrNotFound when there is no such token (or it is already revoked).
func (s *Store) RevokeToken(ctx context.Context, id string, t Tenant, at time.Time) error {
	at = at.UTC().Truncate(time.Microsecond)
	res := t.apply(s.ctx(ctx).Model(&AdminToken{}), "admin_tokens").
		Where("id = ? AND revoked_at IS NULL", id).UpdateColumn("revoked_at", at)
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// TouchToken moves a token's last_used_at forward to at (never back).
func (s *Store) TouchToken(ctx context.Context, id string, at time.Time) error {
	at = at.UTC().Truncate(time.Microsecond)
	return s.ctx(ctx).Model(&AdminToken{}).Where("id = ? AND (last_used_at IS NULL OR last_used_at < ?)", id, at).
		UpdateColumn("last_used_at", at).Error
}
