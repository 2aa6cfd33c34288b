package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"golang.org/x/oauth2"

	"github.com/extapi/extapi/store"
)

// StateStore is what Connector needs of the database; *store.Store implements it.
type StateStore interface {
	GetAPI(ctx context.Context, id string, t store.Tenant) (*store.ExternalAPI, error)
	CreateOAuth2State(ctx context.Context, st *store.OAuth2State) error
	ConsumeOAuth2State(ctx context.Context, id string, at time.Time) (*store.OAuth2State, error)
	DeleteOAuth2StatesBefore(ctx context.Context, before time.Time) (int64, error)
	// Tx runs fn in one transaction: the new connection, its change notification and its audit
	// event commit together.
	Tx(ctx context.Context, fn func(tx *store.Store) error) error
}

// ConnectorOptions configure NewConnector. Store and Sealer are required.
type ConnectorOptions struct {
	Store  StateStore
	Sealer Sealer
	// HTTPClient calls the token endpoints. nil: a 20 s timeout, no redirects.
	HTTPClient *http.Client
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// StateTTL is how long an authorization may take. Default 10 min.
	StateTTL time.Duration
	// Timeout of the code exchange and the save, on a context of their own: the provider has
	// consumed the code by then, so a browser that goes away must not lose the connection.
	// Default 30 s.
	Timeout time.Duration
}

// Connector runs the OAuth 2.0 authorization-code flow (RFC 6749 §4.1, with PKCE, RFC 7636)
// that connects an account: Authorize makes the provider URL to send the user to, Callback
// finishes the flow on the user's return and creates the connection. The state between the two
// lives in the database, so any instance can finish a flow another one started.
type Connector struct {
	store   StateStore
	sealer  Sealer
	client  *http.Client
	now     func() time.Time
	ttl     time.Duration
	timeout time.Duration
}

// NewConnector returns a Connector.
func NewConnector(o ConnectorOptions) *Connector {
	c := &Connector{store: o.Store, sealer: o.Sealer, client: o.HTTPClient, now: o.Now, ttl: o.StateTTL, timeout: o.Timeout}
	if c.client == nil {
		c.client = defaultHTTPClient()
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.ttl <= 0 {
		c.ttl = DefaultStateTTL
	}
	if c.timeout <= 0 {
		c.timeout = DefaultRefreshTimeout
	}
	return c
}

// AuthorizeParams describe the connection a flow will create. Empty PartnerID and
// SalesChannelID mean the API's.
type AuthorizeParams struct {
	ConnectionName string
	UserID         string
	PartnerID      string
	SalesChannelID string
	// Actor started the flow (an admin token's name); the new connection's audit event names it.
	Actor string
	// RedirectURI is the callback to send the user back to when the API has no
	// oauth2.redirect_uri (the admin layer derives it from its own address).
	RedirectURI string
}

// ActorOAuth2Callback is the audit actor of a connection whose flow has no Actor.
const ActorOAuth2Callback = "oauth2-callback"

// reservedAuthParams may not be set through authorization_params: they carry the flow itself.
var reservedAuthParams = []string{"response_type", "client_id", "redirect_uri", "scope", "state",
	"code_challenge", "code_challenge_method"}

// Authorize starts a flow for api and returns the provider URL to send the user to. It records a
// fresh random state (single use, expiring after StateTTL) and, unless oauth2.pkce is false, an
// S256 PKCE verifier, sealed.
func (c *Connector) Authorize(ctx context.Context, api *store.ExternalAPI, p AuthorizeParams) (string, error) {
	oc, err := oauth2Of(api)
	if err != nil {
		return "", err
	}
	if oc.GrantType == GrantClientCredentials || oc.GrantType == GrantJWTBearer {
		return "", fmt.Errorf("%w: API %s uses client_credentials; there is no user to connect", ErrNotOAuth2, api.ID)
	}
	if oc.AuthorizationURL == "" {
		return "", fmt.Errorf("%w: API %s has no oauth2.authorization_url", ErrNotOAuth2, api.ID)
	}
	cfg, err := oauth2Config(c.sealer, api)
	if err != nil {
		return "", err
	}
	if cfg.RedirectURL == "" {
		cfg.RedirectURL = p.RedirectURI
	}
	state := randomToken() // 128 random bits, URL-safe
	st := &store.OAuth2State{ID: stateID(state), ExternalAPIID: api.ID, ConnectionName: p.ConnectionName,
		UserID: p.UserID, PartnerID: p.PartnerID, SalesChannelID: p.SalesChannelID, RedirectURI: cfg.RedirectURL,
		CreatedBy: p.Actor, ExpiresAt: nowUTC(c.now).Add(c.ttl)}
	var opts []oauth2.AuthCodeOption
	if oc.PKCE == nil || *oc.PKCE {
		verifier := oauth2.GenerateVerifier()
		sealed, err := c.sealer.Seal([]byte(verifier), st.AAD(fieldCodeVerifier))
		if err != nil {
			return "", err
		}
		st.CodeVerifier = sealed
		opts = append(opts, oauth2.S256ChallengeOption(verifier))
	}
	keys := make([]string, 0, len(oc.AuthorizationParams))
	for k := range oc.AuthorizationParams {
		if !slices.Contains(reservedAuthParams, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		opts = append(opts, oauth2.SetAuthURLParam(k, oc.AuthorizationParams[k]))
	}
	if err := c.store.CreateOAuth2State(ctx, st); err != nil {
		return "", fmt.Errorf("oauth: record state: %w", err)
	}
	return cfg.AuthCodeURL(state, opts...), nil
}

// stateID is what the database keeps of a state: its SHA-256, so a database reader cannot
// finish someone's flow.
func stateID(state string) string {
	sum := sha256.Sum256([]byte(state))
	return hex.EncodeToString(sum[:])
}

// CallbackParams are the query parameters of the provider's redirect back (§4.1.2).
type CallbackParams struct {
	Code, State             string
	Error, ErrorDescription string
}

// Callback finishes a flow of the API apiID: it consumes the state (whatever happens next it
// cannot be used again), exchanges the code (with the PKCE verifier) and creates the connection,
// tokens sealed, status active, in one transaction with its change notification and audit event.
//
// Errors, none of which leaves a connection: ErrStateInvalid, ErrStateUsed, ErrStateExpired,
// ErrAccessDenied or ErrAuthorizationFailed (a *ProviderError), ErrExchangeFailed (an
// *ExchangeError), ErrNotOAuth2.
func (c *Connector) Callback(ctx context.Context, apiID string, p CallbackParams) (*store.Connection, error) {
	if p.State == "" {
		return nil, fmt.Errorf("%w: the callback has no state", ErrStateInvalid)
	}
	// Detached: past this point the state is spent and, soon, the provider's code too.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
	defer cancel()
	now := nowUTC(c.now)
	st, err := c.store.ConsumeOAuth2State(ctx, stateID(p.State), now)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, ErrStateInvalid
	case errors.Is(err, store.ErrStateUsed):
		return nil, ErrStateUsed
	case err != nil:
		return nil, fmt.Errorf("oauth: read state: %w", err)
	case st.ExternalAPIID != apiID:
		return nil, fmt.Errorf("%w: the state was issued for another API", ErrStateInvalid)
	case !now.Before(st.ExpiresAt):
		return nil, ErrStateExpired
	}
	if p.Error != "" {
		return nil, &ProviderError{Code: p.Error, Description: p.ErrorDescription}
	}
	if p.Code == "" {
		return nil, &ProviderError{Code: "invalid_request", Description: "the callback has neither code nor error"}
	}
	api, err := c.store.GetAPI(ctx, apiID, store.Tenant{})
	if err != nil {
		return nil, err
	}
	cfg, err := oauth2Config(c.sealer, api)
	if err != nil {
		return nil, err
	}
	cfg.RedirectURL = st.RedirectURI // what the authorization request said (§4.1.3)
	var opts []oauth2.AuthCodeOption
	if st.CodeVerifier.IsSet() {
		v, err := c.sealer.Open(st.CodeVerifier, st.AAD(fieldCodeVerifier))
		if err != nil {
			return nil, fmt.Errorf("oauth: open PKCE verifier: %w", err)
		}
		opts = append(opts, oauth2.VerifierOption(string(v)))
	}
	hctx, capture := withCapture(ctx, c.client)
	nt, err := cfg.Exchange(hctx, p.Code, opts...)
	if err != nil {
		code, _ := retrieveCode(err)
		return nil, &ExchangeError{Code: code, Err: err}
	}
	return c.create(ctx, api, st, nt, capture.body, now)
}

// create stores the new connection.
func (c *Connector) create(ctx context.Context, api *store.ExternalAPI, st *store.OAuth2State, nt *oauth2.Token,
	body []byte, now time.Time) (*store.Connection, error) {
	conn := newConnection(api, flowConnection{userID: st.UserID, partnerID: st.PartnerID,
		salesChannelID: st.SalesChannelID, name: st.ConnectionName}, providerData(body), now)
	at, err := c.sealer.Seal([]byte(nt.AccessToken), conn.AAD(fieldAccessToken))
	if err != nil {
		return nil, err
	}
	conn.Credentials = store.Credentials{AccessToken: at, TokenType: nt.TokenType, ExpiresAt: expiresAt(nt, now),
		Scopes: grantedScopes(nt, api.APIConfig.OAuth2.Scopes)}
	refresh := "unset"
	if nt.RefreshToken != "" {
		if conn.Credentials.RefreshToken, err = c.sealer.Seal([]byte(nt.RefreshToken), conn.AAD(fieldRefreshToken)); err != nil {
			return nil, err
		}
		refresh = "set"
	}
	actor := st.CreatedBy
	if actor == "" {
		actor = ActorOAuth2Callback
	}
	if err := createConnection(ctx, c.store, conn, actor, "oauth2",
		map[string]any{"access_token": "set", "refresh_token": refresh}, now); err != nil {
		return nil, err
	}
	return conn, nil
}

// PurgeStates deletes states that expired more than a day ago (kept that long so a late callback
// is told "expired" rather than "unknown").
func (c *Connector) PurgeStates(ctx context.Context) (int64, error) {
	return c.store.DeleteOAuth2StatesBefore(ctx, c.now().Add(-24*time.Hour))
}
