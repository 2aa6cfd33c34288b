package oauth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"

	"github.com/extapi/extapi/store"
)

// ConnectionStore is what Refresher needs of the database; *store.Store implements it.
type ConnectionStore interface {
	GetAPI(ctx context.Context, id string, t store.Tenant) (*store.ExternalAPI, error)
	GetConnection(ctx context.Context, id string, t store.Tenant) (*store.Connection, error)
	ListOAuth2Expiring(ctx context.Context, before time.Time, limit int) ([]store.Connection, error)
	GetOAuth2ClientToken(ctx context.Context, apiID string) (*store.OAuth2ClientToken, error)
	PutOAuth2ClientToken(ctx context.Context, t *store.OAuth2ClientToken) error
	// Tx runs fn in one transaction: a connection's new tokens, its change notification (so
	// every instance's cache drops it) and its audit event commit together or not at all.
	Tx(ctx context.Context, fn func(tx *store.Store) error) error
}

// RefresherOptions configure NewRefresher. Store and Sealer are required.
type RefresherOptions struct {
	Store  ConnectionStore
	Sealer Sealer
	// Locker serializes refreshes of one connection. nil means a LocalLocker, which is right
	// for a single instance only; a fleet needs a RedisLocker.
	Locker Locker
	// HTTPClient calls the token endpoints. nil means a client with a 20 s timeout that does
	// not follow redirects.
	HTTPClient *http.Client
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Skew: a token that expires within Skew is refreshed before use. Default 60 s.
	Skew time.Duration
	// Timeout bounds one refresh: waiting for the lock, the token call and saving. It runs on a
	// context of its own, not the caller's, so a caller that goes away does not abort a refresh
	// others wait for (or leave a rotated refresh token unsaved). Default 30 s.
	Timeout time.Duration
	// BackoffMin and BackoffMax bound how long a connection whose refresh failed for a reason
	// that may pass (network, 5xx) fails fast before the token endpoint is tried again; the wait
	// doubles with each failure in a row. Defaults 1 s and 2 min.
	BackoffMin, BackoffMax time.Duration
	Log                    *slog.Logger
	// Observe, if set, is told of every call to a token endpoint (refresh grant, client
	// credentials, JWT bearer) once it is over: the API's slug, the result (RefreshResultSuccess,
	// RefreshResultInvalidGrant or RefreshResultError) and how long the call and saving its
	// answer took. It must be quick and safe for concurrent use (metrics).
	Observe func(api, result string, d time.Duration)
}

// Results given to RefresherOptions.Observe: the label values of extapi_token_refresh_total.
const (
	RefreshResultSuccess = "success"
	// RefreshResultInvalidGrant: the provider refused the grant (the connection is now expired).
	RefreshResultInvalidGrant = "invalid_grant"
	// RefreshResultError: any other failure (transport, timeout, 5xx, malformed answer, saving).
	RefreshResultError = "error"
)

// Refresher hands out valid access tokens for OAuth 2.0 connections (and client-credentials
// tokens for APIs), refreshing them when they are about to expire.
//
// Exactly one refresh per connection runs at a time across the whole fleet: concurrent callers
// in one process share one refresh (singleflight), and the refresh itself runs under the
// Locker's lock for the connection. Having the lock, it reads the connection from the database
// again and does nothing if another instance already refreshed it; everyone then uses the new
// token. This matters because providers that rotate refresh tokens revoke the whole grant when
// a used refresh token is presented again, so two concurrent refreshes would destroy the
// connection.
//
// Its methods are safe for concurrent use.
type Refresher struct {
	store   ConnectionStore
	sealer  Sealer
	locker  Locker
	client  *http.Client
	now     func() time.Time
	skew    time.Duration
	timeout time.Duration
	log     *slog.Logger
	backoff backoff
	group   singleflight.Group
	observe func(api, result string, d time.Duration)

	mu sync.RWMutex
	// known holds the newest token this instance has opened or obtained per connection and per
	// client-credentials API, so the hot path opens nothing and a cached connection that
	// predates a refresh is answered with the new token.
	known map[knownKey]knownToken
}

// knownKey names a connection's token, or (api) an API's client-credentials token.
type knownKey struct {
	id  string
	api bool
}

type knownToken struct {
	nonce   []byte    // sealedNonce of the blob it was opened from; nil for client-credentials
	updated time.Time // UpdatedAt of the row it came from
	// version (client credentials) is the UpdatedAt of the API whose settings it was fetched with.
	version time.Time
	tok     AccessToken
}

// NewRefresher returns a Refresher.
func NewRefresher(o RefresherOptions) *Refresher {
	r := &Refresher{store: o.Store, sealer: o.Sealer, locker: o.Locker, client: o.HTTPClient, now: o.Now,
		skew: o.Skew, timeout: o.Timeout, log: o.Log, observe: o.Observe, known: map[knownKey]knownToken{}}
	if r.observe == nil {
		r.observe = func(string, string, time.Duration) {}
	}
	if r.locker == nil {
		r.locker = NewLocalLocker()
	}
	if r.client == nil {
		r.client = defaultHTTPClient()
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.skew <= 0 {
		r.skew = DefaultSkew
	}
	if r.timeout <= 0 {
		r.timeout = DefaultRefreshTimeout
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	r.backoff = backoff{min: o.BackoffMin, max: o.BackoffMax, m: map[string]backoffEntry{}}
	if r.backoff.min <= 0 {
		r.backoff.min = time.Second
	}
	if r.backoff.max <= 0 {
		r.backoff.max = 2 * time.Minute
	}
	return r
}

// Audit of refreshes.
const (
	ActorTokenRefresh   = "token-refresh"
	ActionTokenRefresh  = "connection.token_refresh"
	targetConnection    = "connection"
	outcomeRefreshed    = "refreshed"
	outcomeExpired      = "expired"
	lockPrefixConn      = "conn:"
	lockPrefixAPI       = "api:"
	backgroundBatchSize = 500
)

// why a refresh is asked for; it decides when a token found under the lock is good enough.
type purpose int

const (
	// ensure: the caller's token expires within the skew.
	ensure purpose = iota
	// ahead: the background refresher; tokens expiring within the horizon are renewed.
	ahead
	// rejected: the upstream answered 401 to the caller's token.
	rejected
	// force: an operator asked; always refresh.
	force
)

// purposeNames key the single flights and say, in audit events, what triggered a refresh.
var purposeNames = [...]string{"expiring", "background", "upstream_401", "forced"}

// request is one refresh asked for.
type request struct {
	purpose purpose
	within  time.Duration // ensure, ahead: a token expiring later than now+within is fine
	seen    string        // rejected, ensure: the token the caller has (a different one is newer)
	since   time.Time     // client credentials: the API's UpdatedAt; a token fetched for an older one is stale
}

// Token returns an access token for the connection, refreshing it first when it expires within
// the skew. api and conn may come from a cache: when they predate a refresh, the newer token is
// used. For an API with grant_type client_credentials the API's own token is returned and conn
// is not used (it may be nil).
//
// Errors: ErrConnectionExpired (re-authenticate), ErrRefreshFailed (try later),
// ErrConnectionInactive, ErrNotOAuth2, or the caller's ctx error when it gave up waiting.
func (r *Refresher) Token(ctx context.Context, api *store.ExternalAPI, conn *store.Connection) (AccessToken, error) {
	if isClientCredentials(api) {
		return r.clientToken(ctx, api, request{purpose: ensure, within: r.skew})
	}
	if conn == nil {
		return AccessToken{}, fmt.Errorf("%w: API %s needs a connection (grant type authorization_code)", ErrNotOAuth2, api.ID)
	}
	if err := usable(conn, false); err != nil {
		return AccessToken{}, err
	}
	tok, err := r.current(conn)
	if err != nil {
		return AccessToken{}, err
	}
	if tok.Token != "" && r.fresh(tok, r.skew) {
		return tok, nil
	}
	return r.connectionFlight(ctx, conn.ID, request{purpose: ensure, within: r.skew, seen: tok.Token})
}

// Rejected is for a token the upstream answered 401 to: unless the connection already has a
// different token, it is refreshed (once, however many callers report the same token), and the
// token to retry with is returned.
func (r *Refresher) Rejected(ctx context.Context, api *store.ExternalAPI, conn *store.Connection, token string) (AccessToken, error) {
	req := request{purpose: rejected, within: r.skew, seen: token}
	if isClientCredentials(api) {
		return r.clientToken(ctx, api, req)
	}
	if conn == nil {
		return AccessToken{}, fmt.Errorf("%w: API %s needs a connection", ErrNotOAuth2, api.ID)
	}
	if err := usable(conn, false); err != nil {
		return AccessToken{}, err
	}
	return r.connectionFlight(ctx, conn.ID, req)
}

// ForceRefresh refreshes the connection now, whether or not its token is still good, under the
// same lock as every other refresh. It skips the backoff, and it tries connections marked
// expired too: an operator may know the provider is fine again.
func (r *Refresher) ForceRefresh(ctx context.Context, connectionID string) (AccessToken, error) {
	return r.connectionFlight(ctx, connectionID, request{purpose: force})
}

// Forget drops what the Refresher remembers of a connection (call it when the connection is
// deleted; stale entries are otherwise harmless).
func (r *Refresher) Forget(connectionID string) {
	r.mu.Lock()
	delete(r.known, knownKey{id: connectionID})
	r.mu.Unlock()
}

// usable refuses connections that must not be used.
func usable(c *store.Connection, forced bool) error {
	switch c.Status {
	case store.ConnExpired:
		if forced {
			return nil
		}
		return &RefreshError{ConnectionID: c.ID, Expired: true, Err: errors.New("connection is marked expired: " + c.ErrorMessage)}
	case store.ConnRevoked, store.ConnError:
		return fmt.Errorf("%w: connection %s is %s", ErrConnectionInactive, c.ID, c.Status)
	}
	return nil
}

// fresh reports whether tok is good for at least within more.
func (r *Refresher) fresh(tok AccessToken, within time.Duration) bool {
	return tok.Expiry.IsZero() || tok.Expiry.After(r.now().Add(within))
}

// current is the connection's access token: remembered when conn's sealed token is the one
// opened before, opened (and remembered) otherwise. Empty when conn has none.
func (r *Refresher) current(conn *store.Connection) (AccessToken, error) {
	blob := conn.Credentials.AccessToken
	if !blob.IsSet() {
		return AccessToken{}, nil
	}
	nonce := sealedNonce(blob)
	r.mu.RLock()
	k, ok := r.known[knownKey{id: conn.ID}]
	r.mu.RUnlock()
	if ok && nonce != nil && bytes.Equal(k.nonce, nonce) {
		return k.tok, nil
	}
	if ok && k.updated.After(conn.UpdatedAt) {
		// conn is an older copy of the row (a cache not yet told of a refresh): the token
		// known from the newer row is the one to use.
		return k.tok, nil
	}
	b, err := r.sealer.Open(blob, conn.AAD(fieldAccessToken))
	if err != nil {
		return AccessToken{}, fmt.Errorf("oauth: open access token of connection %s: %w", conn.ID, err)
	}
	tok := newAccessToken(string(b), conn.Credentials.ExpiresAt)
	r.remember(knownKey{id: conn.ID}, knownToken{nonce: bytes.Clone(nonce), updated: conn.UpdatedAt, tok: tok})
	return tok, nil
}

// knownVersion is the API version the remembered token of key was fetched for (zero if none).
func (r *Refresher) knownVersion(key knownKey) time.Time {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.known[key].version
}

// remember keeps k unless what is known comes from a newer row (k's came from a stale cache).
func (r *Refresher) remember(key knownKey, k knownToken) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.known[key]; ok && k.updated.Before(old.updated) {
		return
	}
	r.known[key] = k
}

// knownNewer is a remembered token other than seen that is good for within.
func (r *Refresher) knownNewer(key knownKey, seen string, within time.Duration) (AccessToken, bool) {
	r.mu.RLock()
	k, ok := r.known[key]
	r.mu.RUnlock()
	if ok && k.tok.Token != seen && r.fresh(k.tok, within) {
		return k.tok, true
	}
	return AccessToken{}, false
}

// connectionFlight joins or starts the one refresh of this connection for this purpose, and
// waits for it as long as ctx allows. The refresh goes on when the caller gives up.
func (r *Refresher) connectionFlight(ctx context.Context, id string, req request) (AccessToken, error) {
	ch := r.group.DoChan(purposeNames[req.purpose]+":"+id, func() (any, error) {
		return r.refreshConnection(id, req)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return AccessToken{}, res.Err
		}
		return res.Val.(AccessToken), nil
	case <-ctx.Done():
		return AccessToken{}, ctx.Err()
	}
}

// refreshConnection is one refresh, on a context of its own.
func (r *Refresher) refreshConnection(id string, req request) (AccessToken, error) {
	if req.purpose == ensure || req.purpose == rejected {
		if tok, ok := r.knownNewer(knownKey{id: id}, req.seen, req.within); ok {
			return tok, nil // refreshed here a moment ago; the caller's copy of the row is stale
		}
	}
	if req.purpose != force {
		if err := r.backoff.blocked(lockPrefixConn+id, r.now()); err != nil {
			return AccessToken{}, &RefreshError{ConnectionID: id, RetryAfter: err.wait, Err: err}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	held, unlock, err := r.locker.Lock(ctx, lockPrefixConn+id)
	if err != nil {
		return AccessToken{}, &RefreshError{ConnectionID: id, Err: fmt.Errorf("wait for the refresh lock: %w", err)}
	}
	defer unlock()

	// The row as it is now: another instance may have refreshed while we waited for the lock.
	conn, err := r.store.GetConnection(ctx, id, store.Tenant{})
	if err != nil {
		return AccessToken{}, &RefreshError{ConnectionID: id, Err: fmt.Errorf("read the connection: %w", err)}
	}
	if err := usable(conn, req.purpose == force); err != nil {
		return AccessToken{}, err
	}
	cur, err := r.current(conn)
	if err != nil {
		return AccessToken{}, err
	}
	switch req.purpose {
	case ensure, ahead:
		if cur.Token != "" && r.fresh(cur, req.within) {
			return cur, nil
		}
	case rejected:
		if cur.Token != "" && cur.Token != req.seen && r.fresh(cur, req.within) {
			return cur, nil
		}
	}
	api, err := r.store.GetAPI(ctx, conn.ExternalAPIID, store.Tenant{})
	if err != nil {
		return AccessToken{}, &RefreshError{ConnectionID: id, Err: fmt.Errorf("read its API: %w", err)}
	}
	if isClientCredentials(api) {
		return AccessToken{}, fmt.Errorf("%w: API %s uses client_credentials; its connections have no grant of their own", ErrNotOAuth2, api.ID)
	}
	cfg, err := oauth2Config(r.sealer, api)
	if err != nil {
		return AccessToken{}, err
	}
	var refresh string
	if conn.Credentials.RefreshToken.IsSet() {
		b, err := r.sealer.Open(conn.Credentials.RefreshToken, conn.AAD(fieldRefreshToken))
		if err != nil {
			return AccessToken{}, fmt.Errorf("oauth: open refresh token of connection %s: %w", id, err)
		}
		refresh = string(b)
	}
	if refresh == "" {
		return AccessToken{}, r.expire(ctx, conn, "", errors.New("the access token expired and there is no refresh token"))
	}

	// The token call runs on held: when the lock is lost, another instance may be presenting the
	// same refresh token, so this one gives up rather than race it.
	hctx, capture := withCapture(held, r.client)
	began := time.Now() // the real clock, whatever r.now is
	nt, err := cfg.TokenSource(hctx, &oauth2.Token{RefreshToken: refresh}).Token()
	if err != nil {
		if lost := context.Cause(held); errors.Is(lost, ErrLockLost) {
			r.observe(api.Slug, RefreshResultError, time.Since(began))
			rerr := &RefreshError{ConnectionID: id, Err: fmt.Errorf("refresh abandoned: %w", lost)}
			r.log.Error("oauth: token refresh abandoned", "connection", id, "api", api.ID, "err", rerr)
			return AccessToken{}, rerr
		}
		if code, gone := grantGone(err); gone {
			r.observe(api.Slug, RefreshResultInvalidGrant, time.Since(began))
			return AccessToken{}, r.expire(ctx, conn, code, err)
		}
		r.observe(api.Slug, RefreshResultError, time.Since(began))
		code, _ := retrieveCode(err)
		wait := r.backoff.fail(lockPrefixConn+id, r.now(), err)
		rerr := &RefreshError{ConnectionID: id, Code: code, RetryAfter: wait, Err: err}
		r.log.Warn("oauth: token refresh failed", "connection", id, "api", api.ID, "code", code, "retry_in", wait, "err", rerr)
		return AccessToken{}, rerr
	}
	// Saved on ctx, not held: a lock lost after the provider answered does not lose the rotated
	// token; save's own check keeps it from overwriting a newer one.
	tok, err := r.save(ctx, conn, nt, refresh, capture.body, req.purpose)
	if err != nil {
		// The provider has rotated the token and we could not store it: the old refresh token
		// may already be void. Nothing better to do than report it loudly.
		r.observe(api.Slug, RefreshResultError, time.Since(began))
		rerr := &RefreshError{ConnectionID: id, Err: fmt.Errorf("save refreshed token: %w", err)}
		r.log.Error("oauth: refreshed token could not be saved", "connection", id, "err", rerr)
		return AccessToken{}, rerr
	}
	r.observe(api.Slug, RefreshResultSuccess, time.Since(began))
	r.backoff.reset(lockPrefixConn + id)
	return tok, nil
}

// errRefreshSuperseded: the row's refresh token changed while a refresh was under way (another
// holder of a lost lock, or a re-authentication): the refresh's answer is not written over it.
var errRefreshSuperseded = errors.New("oauth: the connection's refresh token changed during the refresh; its result is not saved")

// save writes the new tokens of conn in one transaction with its change notification and audit
// event. A response without a refresh token keeps the old one (RFC 6749 §6: the server MAY issue
// a new one). conn is the row the refresh read its refresh token from: when the stored refresh
// token is no longer that one, nothing is written (errRefreshSuperseded).
func (r *Refresher) save(ctx context.Context, conn *store.Connection, nt *oauth2.Token, oldRefresh string,
	body []byte, p purpose) (AccessToken, error) {
	now := nowUTC(r.now)
	exp := expiresAt(nt, now)
	var nonce []byte
	var updated time.Time
	err := r.store.Tx(ctx, func(tx *store.Store) error {
		c, err := tx.GetConnectionForUpdate(ctx, conn.ID)
		if err != nil {
			return err
		}
		if !bytes.Equal(c.Credentials.RefreshToken, conn.Credentials.RefreshToken) {
			return errRefreshSuperseded
		}
		at, err := r.sealer.Seal([]byte(nt.AccessToken), c.AAD(fieldAccessToken))
		if err != nil {
			return err
		}
		refresh, rotated := nt.RefreshToken, true
		if refresh == "" || refresh == oldRefresh {
			refresh, rotated = oldRefresh, false
		}
		rt, err := r.sealer.Seal([]byte(refresh), c.AAD(fieldRefreshToken))
		if err != nil {
			return err
		}
		c.Credentials.AccessToken, c.Credentials.RefreshToken = at, rt
		if nt.TokenType != "" {
			c.Credentials.TokenType = nt.TokenType
		}
		c.Credentials.ExpiresAt = exp
		c.Credentials.Scopes = grantedScopes(nt, c.Credentials.Scopes)
		if c.ProviderData == nil {
			c.ProviderData = map[string]any{}
		}
		for k, v := range providerData(body) {
			c.ProviderData[k] = v
		}
		c.Status, c.ErrorMessage = store.ConnActive, ""
		if err := tx.UpdateConnection(ctx, c); err != nil {
			return err
		}
		if err := tx.PublishChange(ctx, store.Change{Kind: store.ChangeConnection, ID: c.ID}); err != nil {
			return err
		}
		changes := map[string]any{
			"outcome": outcomeRefreshed, "trigger": purposeNames[p],
			"access_token": "changed", "refresh_token": "unchanged",
		}
		if rotated {
			changes["refresh_token"] = "changed"
		}
		if exp != nil {
			changes["expires_at"] = exp.Format(time.RFC3339)
		}
		nonce, updated = sealedNonce(at), c.UpdatedAt
		return tx.AddAudit(ctx, &store.AuditEvent{At: now, Actor: ActorTokenRefresh, Action: ActionTokenRefresh,
			TargetType: targetConnection, TargetID: c.ID, SalesChannelID: c.SalesChannelID, PartnerID: c.PartnerID,
			Changes: changes})
	})
	if err != nil {
		return AccessToken{}, err
	}
	tok := newAccessToken(nt.AccessToken, exp)
	r.remember(knownKey{id: conn.ID}, knownToken{nonce: nonce, updated: updated, tok: tok})
	return tok, nil
}

// expire marks the connection expired after the provider refused its grant (code) or when it
// cannot be refreshed at all, and returns the RefreshError to give callers. The row is left alone
// when its refresh token changed since it was read (someone re-authenticated it meanwhile).
func (r *Refresher) expire(ctx context.Context, conn *store.Connection, code string, cause error) error {
	msg := "token refresh failed: " + tokenErrorText(cause)
	if code != "" {
		msg = "the provider refused the refresh token (" + code + ")"
	}
	msg += "; re-authenticate the connection"
	now := nowUTC(r.now)
	err := r.store.Tx(ctx, func(tx *store.Store) error {
		c, err := tx.GetConnectionForUpdate(ctx, conn.ID)
		if err != nil {
			return err
		}
		if !bytes.Equal(c.Credentials.RefreshToken, conn.Credentials.RefreshToken) || c.Status == store.ConnExpired {
			return nil
		}
		c.Status, c.ErrorMessage = store.ConnExpired, msg
		if err := tx.UpdateConnection(ctx, c); err != nil {
			return err
		}
		if err := tx.PublishChange(ctx, store.Change{Kind: store.ChangeConnection, ID: c.ID}); err != nil {
			return err
		}
		changes := map[string]any{"outcome": outcomeExpired, "status": store.ConnExpired}
		if code != "" {
			changes["error"] = code
		}
		return tx.AddAudit(ctx, &store.AuditEvent{At: now, Actor: ActorTokenRefresh, Action: ActionTokenRefresh,
			TargetType: targetConnection, TargetID: c.ID, SalesChannelID: c.SalesChannelID, PartnerID: c.PartnerID,
			Changes: changes})
	})
	if err != nil {
		r.log.Error("oauth: mark connection expired", "connection", conn.ID, "err", err)
	}
	r.Forget(conn.ID)
	r.log.Warn("oauth: connection expired", "connection", conn.ID, "code", code)
	return &RefreshError{ConnectionID: conn.ID, Code: code, Expired: true, Err: cause}
}

// backoff remembers, per key, a refresh failure that may pass, so that until it has waited out
// callers fail fast instead of all hitting a broken token endpoint. It is per instance: with N
// instances an endpoint sees at most N attempts per period.
type backoff struct {
	min, max time.Duration
	mu       sync.Mutex
	m        map[string]backoffEntry
}

type backoffEntry struct {
	until time.Time
	n     int
	err   error
}

// backoffError is the failure being waited out.
type backoffError struct {
	wait time.Duration
	err  error
}

func (e *backoffError) Error() string {
	return "backing off after a failed refresh: " + tokenErrorText(e.err)
}
func (e *backoffError) Unwrap() error { return e.err }

func (b *backoff) blocked(key string, now time.Time) *backoffError {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.m[key]
	if !ok || !now.Before(e.until) {
		return nil
	}
	return &backoffError{wait: e.until.Sub(now), err: e.err}
}

// fail records a failure and returns how long to wait: min, doubling per failure in a row, to max.
func (b *backoff) fail(key string, now time.Time, err error) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.m[key]
	e.n++
	d := b.min
	for i := 1; i < e.n && d < b.max; i++ {
		d *= 2
	}
	d = min(d, b.max)
	e.until, e.err = now.Add(d), err
	b.m[key] = e
	return d
}

// active counts the keys with prefix that are backing off at now.
func (b *backoff) active(prefix string, now time.Time) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for k, e := range b.m {
		if strings.HasPrefix(k, prefix) && now.Before(e.until) {
			n++
		}
	}
	return n
}

func (b *backoff) reset(key string) {
	b.mu.Lock()
	delete(b.m, key)
	b.mu.Unlock()
}
