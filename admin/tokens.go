package admin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/extapi/extapi/store"
)

// TokenPrefix starts every generated admin token.
const TokenPrefix = "extapi_"

// CLIActor is the audit actor of token changes made with `extapi tokens`.
const CLIActor = "cli"

var tokenNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@:-]{0,99}$`)

// TokenSpec describes a token to create.
type TokenSpec struct {
	Name           string `json:"name"`
	Role           string `json:"role"`
	SalesChannelID string `json:"sales_channel_id"`
	PartnerID      string `json:"partner_id"`
}

// Validate reports every problem of the spec at once (a *ValidationError).
func (t TokenSpec) Validate() error {
	var p problems
	switch {
	case t.Name == "":
		p.add("name", "required")
	case !tokenNameRE.MatchString(t.Name):
		p.add("name", "must be 1 to 100 letters, digits or . _ @ : - (starting with a letter or digit)")
	case t.Name == bootstrapActor || t.Name == CLIActor:
		p.add("name", "is reserved")
	}
	if t.Role == "" {
		p.add("role", "required (one of "+strings.Join(store.Roles, ", ")+")")
	} else {
		enum(&p, "role", t.Role, store.Roles)
	}
	text(&p, "sales_channel_id", t.SalesChannelID, maxIDLen, false)
	text(&p, "partner_id", t.PartnerID, maxIDLen, false)
	return p.err()
}

// GenerateToken returns a new random admin token (TokenPrefix + 32 random bytes, base64url)
// and the hash under which it is stored.
func GenerateToken() (token, hash string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	token = TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return token, HashToken(token), nil
}

// HashToken is the stored form of a token: hex SHA-256. Tokens carry 256 random bits, so a fast
// hash is enough; there is nothing to brute-force.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// CreateToken validates spec, stores a new token and its audit event in one transaction, and
// returns the row and the token, which is never available again. actor is the audit actor.
// A name already used by a token that is not revoked is store.ErrConflict.
func CreateToken(ctx context.Context, st *store.Store, actor string, spec TokenSpec) (*store.AdminToken, string, error) {
	if err := spec.Validate(); err != nil {
		return nil, "", err
	}
	tok, hash, err := GenerateToken()
	if err != nil {
		return nil, "", err
	}
	t := &store.AdminToken{
		ID: store.NewID(store.PrefixToken), Name: spec.Name, Role: spec.Role,
		SalesChannelID: spec.SalesChannelID, PartnerID: spec.PartnerID, Hash: hash, CreatedBy: actor,
	}
	changes := diff(nil, map[string]any{"name": t.Name, "role": t.Role, "sales_channel_id": t.SalesChannelID, "partner_id": t.PartnerID})
	err = st.Tx(ctx, func(tx *store.Store) error {
		if err := tx.CreateToken(ctx, t); err != nil {
			return err
		}
		return audit(ctx, tx, &principal{name: actor}, actionTokenCreate, targetToken, t.ID, t.Tenant(), changes)
	})
	if errors.Is(err, store.ErrConflict) {
		return nil, "", withMessage(err, "a token with this name exists and is not revoked")
	}
	if err != nil {
		return nil, "", err
	}
	return t, tok, nil
}

// RevokeToken revokes a token within scope and writes the audit event, in one transaction.
// store.ErrNotFound when there is no such token or it is already revoked.
func RevokeToken(ctx context.Context, st *store.Store, actor, id string, scope store.Tenant, at time.Time) (*store.AdminToken, error) {
	var out *store.AdminToken
	err := st.Tx(ctx, func(tx *store.Store) error {
		t, err := tx.GetToken(ctx, id, scope)
		if err != nil {
			return err
		}
		if err := tx.RevokeToken(ctx, id, scope, at); err != nil {
			return err
		}
		changes := map[string]any{"revoked": map[string]any{"old": false, "new": true}}
		if err := audit(ctx, tx, &principal{name: actor}, actionTokenRevoke, targetToken, id, t.Tenant(), changes); err != nil {
			return err
		}
		out, err = tx.GetToken(ctx, id, scope)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, withMessage(err, "no such token that is not revoked")
	}
	return out, err
}

type tokenOut struct {
	ID             string     `json:"id"`
	Name           string     `json:"name"`
	Role           string     `json:"role"`
	SalesChannelID string     `json:"sales_channel_id"`
	PartnerID      string     `json:"partner_id"`
	CreatedAt      time.Time  `json:"created_at"`
	CreatedBy      string     `json:"created_by"`
	LastUsedAt     *time.Time `json:"last_used_at"`
	RevokedAt      *time.Time `json:"revoked_at"`
}

func toTokenOut(t *store.AdminToken) tokenOut {
	return tokenOut{ID: t.ID, Name: t.Name, Role: t.Role, SalesChannelID: t.SalesChannelID, PartnerID: t.PartnerID,
		CreatedAt: t.CreatedAt.UTC(), CreatedBy: t.CreatedBy, LastUsedAt: utcPtr(t.LastUsedAt), RevokedAt: utcPtr(t.RevokedAt)}
}

// GET /admin/tokens
func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, who *principal) error {
	q, err := parseQuery(r, "include_revoked")
	if err != nil {
		return err
	}
	f := store.TokenFilter{Tenant: who.tenant, IncludeRevoked: q.bool("include_revoked")}
	if err := q.err(); err != nil {
		return err
	}
	list, err := s.store.ListTokens(r.Context(), f)
	if err != nil {
		return err
	}
	out := make([]tokenOut, len(list))
	for i := range list {
		out[i] = toTokenOut(&list[i])
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
	return nil
}

// POST /admin/tokens: the response carries the token once, as "bearer_token".
func (s *Server) createToken(w http.ResponseWriter, r *http.Request, who *principal) error {
	body, err := readObject(w, r)
	if err != nil {
		return err
	}
	var p problems
	checkShape(body, reflect.TypeFor[TokenSpec](), "", &p)
	if err := p.err(); err != nil {
		return err
	}
	var spec TokenSpec
	if err := decodeInto(body, &spec); err != nil {
		return err
	}
	// A scoped admin makes tokens of its own tenant only, so it cannot widen its reach.
	if err := forceTenant(who, &spec.SalesChannelID, &spec.PartnerID); err != nil {
		return err
	}
	t, tok, err := CreateToken(r.Context(), s.store, who.name, spec)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"token": toTokenOut(t), "bearer_token": tok})
	return nil
}

// DELETE /admin/tokens/{id}: revoke. The token stops working here at once and on other
// instances within the token cache TTL.
func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, who *principal) error {
	id := r.PathValue("id")
	if !validID(store.PrefixToken, id) {
		return notFound("token")
	}
	t, err := RevokeToken(r.Context(), s.store, who.name, id, who.tenant, s.now())
	if err != nil {
		return err
	}
	s.tokens.forget(id)
	writeJSON(w, http.StatusOK, map[string]any{"token": toTokenOut(t)})
	return nil
}
