package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/extapi/extapi/store"
)

// Client credentials (RFC 6749 §4.4): the API's own token, from its client id and secret and
// scopes, with no user and no refresh token. It is cached sealed in the store
// (oauth2_client_tokens) so every instance uses the same one until it nears expiry, and renewed
// under the same lock discipline as connections: one fetch per API across the fleet.

// clientToken returns the API's client-credentials token, fetching a new one when needed. A
// token fetched with the settings of an older version of the API (by its UpdatedAt) is not used:
// its client id, secret, scopes, token URL or token_params may be different now.
func (r *Refresher) clientToken(ctx context.Context, api *store.ExternalAPI, req request) (AccessToken, error) {
	// Microseconds: what PostgreSQL keeps of a time, so an API held in memory since it was
	// written compares equal to the same version read back.
	req.since = api.UpdatedAt.Truncate(time.Microsecond)
	if req.purpose != rejected {
		r.mu.RLock()
		k, ok := r.known[knownKey{id: api.ID, api: true}]
		r.mu.RUnlock()
		if ok && r.fresh(k.tok, req.within) && !k.version.Before(req.since) {
			return k.tok, nil
		}
	}
	// One flight per API version: a caller holding a newer API does not join one for an older.
	flight := purposeNames[req.purpose] + ":" + lockPrefixAPI + api.ID + ":" + strconv.FormatInt(req.since.UnixNano(), 10)
	ch := r.group.DoChan(flight, func() (any, error) {
		return r.fetchClientToken(api.ID, req)
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

// apiToken asks the token endpoint for the API's own token: with its client id and secret, or
// (jwt_bearer) with an assertion signed by its service-account key.
func (r *Refresher) apiToken(ctx context.Context, api *store.ExternalAPI, c *store.OAuth2Config) (*oauth2.Token, error) {
	if c.GrantType == GrantJWTBearer {
		return serviceAccountToken(ctx, r.sealer, api, c)
	}
	id, secret, err := clientCredentials(r.sealer, api, c)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errKeyUnusable, err)
	}
	cfg := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: c.TokenURL, Scopes: c.Scopes,
		AuthStyle: authStyle(c.TokenAuthMethod)}
	if len(c.TokenParams) > 0 {
		cfg.EndpointParams = url.Values{}
		for k, v := range c.TokenParams {
			cfg.EndpointParams.Set(k, v)
		}
	}
	return cfg.Token(ctx)
}

func (r *Refresher) fetchClientToken(apiID string, req request) (AccessToken, error) {
	key, known := lockPrefixAPI+apiID, knownKey{id: apiID, api: true}
	if tok, ok := r.knownNewer(known, req.seen, req.within); ok && !r.knownVersion(known).Before(req.since) {
		return tok, nil
	}
	if err := r.backoff.blocked(key, r.now()); err != nil {
		return AccessToken{}, &RefreshError{APIID: apiID, RetryAfter: err.wait, Err: err}
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	held, unlock, err := r.locker.Lock(ctx, key)
	if err != nil {
		return AccessToken{}, &RefreshError{APIID: apiID, Err: fmt.Errorf("wait for the refresh lock: %w", err)}
	}
	defer unlock()

	// Another instance may have fetched one while we waited.
	row, err := r.store.GetOAuth2ClientToken(ctx, apiID)
	switch {
	case err == nil && row.Credentials.AccessToken.IsSet():
		b, oerr := r.sealer.Open(row.Credentials.AccessToken, row.AAD(fieldAccessToken))
		if oerr != nil {
			// A cache row sealed under a retired key, say: fetch a new token.
			r.log.Warn("oauth: cached client-credentials token cannot be opened; fetching a new one", "api", apiID, "err", oerr)
			break
		}
		tok := newAccessToken(string(b), row.Credentials.ExpiresAt)
		var version time.Time // zero for a row cached before versions were recorded: stale
		if row.APIUpdatedAt != nil {
			version = *row.APIUpdatedAt
		}
		if tok.Token != req.seen && r.fresh(tok, req.within) && !version.Before(req.since) {
			r.remember(known, knownToken{updated: row.UpdatedAt, version: version, tok: tok})
			return tok, nil
		}
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return AccessToken{}, &RefreshError{APIID: apiID, Err: err}
	}

	api, err := r.store.GetAPI(ctx, apiID, store.Tenant{})
	if err != nil {
		return AccessToken{}, err
	}
	c, err := oauth2Of(api)
	if err != nil {
		return AccessToken{}, err
	}
	began := time.Now()
	// On held: with the lock lost, another instance is fetching; this one gives up.
	nt, err := r.apiToken(context.WithValue(held, oauth2.HTTPClient, r.client), api, c)
	if errors.Is(err, errKeyUnusable) {
		return AccessToken{}, err
	}
	if err != nil {
		r.observe(api.Slug, RefreshResultError, time.Since(began))
		if lost := context.Cause(held); errors.Is(lost, ErrLockLost) {
			rerr := &RefreshError{APIID: apiID, Err: fmt.Errorf("token request abandoned: %w", lost)}
			r.log.Error("oauth: client-credentials token request abandoned", "api", apiID, "err", rerr)
			return AccessToken{}, rerr
		}
		code, _ := retrieveCode(err)
		wait := r.backoff.fail(key, r.now(), err)
		rerr := &RefreshError{APIID: apiID, Code: code, RetryAfter: wait, Err: err}
		r.log.Warn("oauth: client-credentials token request failed", "api", apiID, "code", code, "retry_in", wait, "err", rerr)
		return AccessToken{}, rerr
	}
	exp := expiresAt(nt, nowUTC(r.now))
	version := api.UpdatedAt.UTC() // the settings this token is fetched with
	row = &store.OAuth2ClientToken{ExternalAPIID: apiID, APIUpdatedAt: &version}
	sealed, err := r.sealer.Seal([]byte(nt.AccessToken), row.AAD(fieldAccessToken))
	if err != nil {
		return AccessToken{}, err
	}
	row.Credentials = store.Credentials{AccessToken: sealed, TokenType: nt.TokenType, ExpiresAt: exp,
		Scopes: grantedScopes(nt, c.Scopes)}
	if err := r.store.PutOAuth2ClientToken(ctx, row); err != nil {
		// The token is good; only sharing it failed. Use it here.
		r.log.Warn("oauth: client-credentials token not cached in the store", "api", apiID, "err", err)
	}
	tok := newAccessToken(nt.AccessToken, exp)
	r.remember(known, knownToken{updated: row.UpdatedAt, version: version, tok: tok})
	r.observe(api.Slug, RefreshResultSuccess, time.Since(began))
	r.backoff.reset(key)
	return tok, nil
}
