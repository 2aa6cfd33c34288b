package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/jwt"

	"github.com/extapi/extapi/store"
)

// Service accounts (OAuth 2.0 JWT bearer, RFC 7523; Google's service-account keys): the API's
// sealed key signs an RS256 assertion naming the account, the scopes and the token endpoint,
// which x/oauth2/jwt posts with grant_type urn:ietf:params:oauth:grant-type:jwt-bearer. The
// token is the API's own, cached and shared exactly like a client-credentials token
// (oauth2_clientcreds.go).

const fieldServiceAccountKey = "api_config.oauth2.service_account_key"

// errKeyUnusable marks a failure to open or read the API's own credentials: a configuration
// problem, not the token endpoint's, so it is returned without backing off.
var errKeyUnusable = errors.New("oauth: the API's credentials are unusable")

// serviceAccountKey is the part of a Google service-account key file that is used.
type serviceAccountKey struct {
	ClientEmail  string `json:"client_email"`
	PrivateKey   string `json:"private_key"`
	PrivateKeyID string `json:"private_key_id"`
}

// serviceAccountToken mints a token with the API's service-account key, at the configured
// oauth2.token_url.
func serviceAccountToken(ctx context.Context, s Sealer, api *store.ExternalAPI, c *store.OAuth2Config) (*oauth2.Token, error) {
	if !c.ServiceAccountKey.IsSet() {
		return nil, fmt.Errorf("%w: API %s has no oauth2.service_account_key", errKeyUnusable, api.ID)
	}
	b, err := s.Open(c.ServiceAccountKey, api.AAD(fieldServiceAccountKey))
	if err != nil {
		return nil, fmt.Errorf("%w: open %s of API %s: %w", errKeyUnusable, fieldServiceAccountKey, api.ID, err)
	}
	defer clear(b)
	var k serviceAccountKey
	if err := json.Unmarshal(b, &k); err != nil || k.ClientEmail == "" || k.PrivateKey == "" {
		// Never the JSON error: it may quote the key.
		return nil, fmt.Errorf("%w: API %s: the service-account key is not a key file with client_email and private_key", errKeyUnusable, api.ID)
	}
	// Always the configured token_url (oauth2Of requires it): the key file's token_uri is not
	// used, so a key cannot send its assertions anywhere the API's configuration does not say.
	if c.TokenURL == "" {
		return nil, fmt.Errorf("%w: API %s has no oauth2.token_url", ErrNotOAuth2, api.ID)
	}
	cfg := &jwt.Config{Email: k.ClientEmail, PrivateKey: []byte(k.PrivateKey), PrivateKeyID: k.PrivateKeyID,
		Scopes: c.Scopes, TokenURL: c.TokenURL}
	return cfg.TokenSource(ctx).Token()
}
