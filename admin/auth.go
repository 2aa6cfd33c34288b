package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/extapi/extapi/store"
)

// role orders what a token may do; each includes the ones below it.
type role int

const (
	rolePublic role = iota // no token needed (health endpoints)
	roleViewer             // reads
	roleEditor             // also writes APIs and connections
	roleAdmin              // also manages tokens
)

func (r role) String() string {
	switch r {
	case roleViewer:
		return store.RoleViewer
	case roleEditor:
		return store.RoleEditor
	case roleAdmin:
		return store.RoleAdmin
	}
	return "none"
}

func parseRole(s string) (role, bool) {
	switch s {
	case store.RoleViewer:
		return roleViewer, true
	case store.RoleEditor:
		return roleEditor, true
	case store.RoleAdmin:
		return roleAdmin, true
	}
	return rolePublic, false
}

// actorName is the audit actor of a stored token. Names are unique per tenant only, so a
// scoped token's actor carries its tenant: "ci@sc_1/p_2" and the unscoped "ci" stay apart.
func actorName(name string, t store.Tenant) string {
	if t.SalesChannelID == "" && t.PartnerID == "" {
		return name
	}
	return name + "@" + t.SalesChannelID + "/" + t.PartnerID
}

// bootstrapActor is the audit actor of EXTAPI_ADMIN_TOKEN; no stored token may take the name.
const bootstrapActor = "bootstrap"

// principal is who a request acts as.
type principal struct {
	name    string // the token's name: the audit actor
	tokenID string // empty for the bootstrap token
	role    role
	tenant  store.Tenant // empty: every tenant
}

// authenticate resolves the request's bearer token. The bootstrap token is compared by hash in
// constant time; a stored token is found by the index on its SHA-256 hash, so no comparison of
// the secret itself leaks timing. Verified stored tokens are cached for tokenCacheTTL.
func (s *Server) authenticate(r *http.Request) (*principal, error) {
	vals := r.Header.Values("Authorization")
	if len(vals) != 1 {
		return nil, errUnauthenticated
	}
	scheme, tok, ok := strings.Cut(vals[0], " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return nil, errUnauthenticated
	}
	sum := sha256.Sum256([]byte(tok))
	if s.bootstrap != nil && subtle.ConstantTimeCompare(sum[:], s.bootstrap[:]) == 1 {
		return &principal{name: bootstrapActor, role: roleAdmin}, nil
	}
	now := s.now()
	if p, ok := s.tokens.get(sum, now); ok {
		return p, nil
	}
	t, err := s.store.TokenByHash(r.Context(), hex.EncodeToString(sum[:]))
	if errors.Is(err, store.ErrNotFound) {
		return nil, errUnauthenticated
	}
	if err != nil {
		return nil, err
	}
	rl, ok := parseRole(t.Role)
	if !ok {
		return nil, errUnauthenticated
	}
	p := &principal{name: actorName(t.Name, t.Tenant()), tokenID: t.ID, role: rl, tenant: t.Tenant()}
	// last_used_at is written when the token is looked up, i.e. at most once per cache period.
	tctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 2*time.Second)
	defer cancel()
	if err := s.store.TouchToken(tctx, t.ID, now); err != nil {
		s.log.Warn("admin token last_used_at not updated", "token_id", t.ID, "err", err)
	}
	s.tokens.put(sum, p, now)
	return p, nil
}

// tokenCache remembers verified stored tokens briefly, so a burst of admin calls costs one
// lookup. A token revoked on this instance leaves the cache at once; on another instance it
// stops working within the TTL.
type tokenCache struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[[sha256.Size]byte]cachedToken
}

type cachedToken struct {
	p       *principal
	expires time.Time
}

const tokenCacheMax = 1024

func (c *tokenCache) get(sum [sha256.Size]byte, now time.Time) (*principal, bool) {
	if c.ttl <= 0 {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[sum]
	if !ok || !now.Before(e.expires) {
		return nil, false
	}
	return e.p, true
}

func (c *tokenCache) put(sum [sha256.Size]byte, p *principal, now time.Time) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= tokenCacheMax {
		c.m = map[[sha256.Size]byte]cachedToken{} // simplest bound: start over
	}
	c.m[sum] = cachedToken{p: p, expires: now.Add(c.ttl)}
}

// forget drops a token from the cache (after it is revoked here).
func (c *tokenCache) forget(tokenID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.m {
		if e.p.tokenID == tokenID {
			delete(c.m, k)
		}
	}
}
