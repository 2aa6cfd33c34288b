package oauth

// OAuth 1.0a's three-legged connect flow (RFC 5849 §2): temporary credentials from the request
// token URL, the user's authorization at the provider, token credentials from the access token
// URL. OAuth1Connector keeps each flow in flight in the store (store.OAuth1Request: the request
// token's hash, its secret sealed) so any instance can finish it, and builds the connection; the
// management API stores it with its audit event.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/extapi/extapi/store"
)

// Sentinel errors of the OAuth 1.0a connect flow. Match them with errors.Is; the management API
// maps them to statuses. None of the callback's errors creates a connection.
var (
	// ErrNotOAuth1: the API's auth_type is not oauth1, or a URL or the consumer credentials the
	// flow needs are missing.
	ErrNotOAuth1 = errors.New("oauth: API is not configured for OAuth 1.0a")
	// ErrOAuth1TokenUnknown: the callback's oauth_token is missing, or no flow of this API
	// issued it (a mismatched token).
	ErrOAuth1TokenUnknown = errors.New("oauth: unknown OAuth 1.0a request token")
	// ErrOAuth1TokenUsed: the request token was already presented to an earlier callback.
	ErrOAuth1TokenUsed = errors.New("oauth: OAuth 1.0a request token already used")
	// ErrOAuth1TokenExpired: the authorization took longer than the flow lives.
	ErrOAuth1TokenExpired = errors.New("oauth: OAuth 1.0a request token expired; start the authorization again")
	// ErrOAuth1Denied: the user or provider denied the authorization (the callback carries
	// denied=… or oauth_problem=…, or no oauth_verifier).
	ErrOAuth1Denied = errors.New("oauth: OAuth 1.0a authorization denied")
	// ErrOAuth1Provider: the request token or access token endpoint did not give credentials;
	// errors.As gives the *OAuth1ProviderError.
	ErrOAuth1Provider = errors.New("oauth: OAuth 1.0a provider request failed")
)

// OAuth1ProviderError is a failed call to the request token or access token endpoint.
// errors.Is(err, ErrOAuth1Provider).
type OAuth1ProviderError struct {
	// Endpoint is "request_token" or "access_token".
	Endpoint string
	// StatusCode is the provider's HTTP status; 0 when it did not answer.
	StatusCode int
	// Problem is the oauth_problem the provider sent (the OAuth Problem Reporting extension), if
	// any: token_rejected, verifier_invalid, consumer_key_unknown, …
	Problem string
	// Err is the cause. It never holds the provider's response body (nor its
	// oauth_problem_advice), which may echo the request's credentials.
	Err error
}

func (e *OAuth1ProviderError) Error() string {
	msg := "oauth: OAuth 1.0a " + e.Endpoint + " request failed"
	if e.StatusCode != 0 {
		msg += fmt.Sprintf(": HTTP %d", e.StatusCode)
	}
	msg += codeSuffix("oauth_problem", e.Problem)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap gives ErrOAuth1Provider and the cause.
func (e *OAuth1ProviderError) Unwrap() []error { return []error{ErrOAuth1Provider, e.Err} }

// Rejected reports whether the provider answered and refused (a 4xx): the credentials, the
// token or the verifier are wrong, rather than the provider being unreachable or failing.
func (e *OAuth1ProviderError) Rejected() bool { return e.StatusCode >= 400 && e.StatusCode < 500 }

// OAuth1TemporaryCredentials are what the request token endpoint returns (§2.1).
type OAuth1TemporaryCredentials struct {
	Token, Secret string
}

// OAuth1TokenCredentials are what the access token endpoint returns (§2.3), with the other
// fields of its response (user_id, screen_name, …) in Extra.
type OAuth1TokenCredentials struct {
	Token, Secret string
	Extra         map[string]string
}

// OAuth1Client speaks the wire protocol of the flow. The zero value signs with HMAC-SHA1 and
// uses a client with a 20 s timeout that does not follow redirects.
type OAuth1Client struct {
	Signer OAuth1Signer
	HTTP   *http.Client
}

// maxOAuth1Response bounds what is read of a token endpoint's answer.
const maxOAuth1Response = 64 << 10

// RequestToken obtains temporary credentials (§2.1): a signed POST to endpoint with
// oauth_callback, answered with oauth_token, oauth_token_secret and oauth_callback_confirmed=true.
// c holds the client credentials only.
func (cl *OAuth1Client) RequestToken(ctx context.Context, endpoint string, c OAuth1Credentials, callback string) (OAuth1TemporaryCredentials, error) {
	c.Token, c.TokenSecret = "", ""
	vals, err := cl.post(ctx, "request_token", endpoint, c, OAuth1Param{Name: "oauth_callback", Value: callback})
	if err != nil {
		return OAuth1TemporaryCredentials{}, err
	}
	fail := func(msg string) error {
		return &OAuth1ProviderError{Endpoint: "request_token", StatusCode: http.StatusOK, Err: errors.New(msg)}
	}
	t := OAuth1TemporaryCredentials{Token: vals.Get("oauth_token"), Secret: vals.Get("oauth_token_secret")}
	if t.Token == "" {
		return t, fail("the response has no oauth_token")
	}
	// §2.1: MUST be present and "true"; without it the provider speaks OAuth 1.0 (not 1.0a), whose
	// flow is open to session fixation.
	if vals.Get("oauth_callback_confirmed") != "true" {
		return t, fail("the provider did not confirm the callback (oauth_callback_confirmed)")
	}
	return t, nil
}

// AccessToken exchanges authorized temporary credentials for token credentials (§2.3): a POST
// signed with the temporary credentials (c.Token, c.TokenSecret) and oauth_verifier.
func (cl *OAuth1Client) AccessToken(ctx context.Context, endpoint string, c OAuth1Credentials, verifier string) (OAuth1TokenCredentials, error) {
	vals, err := cl.post(ctx, "access_token", endpoint, c, OAuth1Param{Name: "oauth_verifier", Value: verifier})
	if err != nil {
		return OAuth1TokenCredentials{}, err
	}
	t := OAuth1TokenCredentials{Token: vals.Get("oauth_token"), Secret: vals.Get("oauth_token_secret"), Extra: map[string]string{}}
	if t.Token == "" {
		return t, &OAuth1ProviderError{Endpoint: "access_token", StatusCode: http.StatusOK, Err: errors.New("the response has no oauth_token")}
	}
	for k := range vals {
		if keepProviderField(k) {
			t.Extra[k] = vals.Get(k)
		}
	}
	return t, nil
}

// post sends a signed, bodiless POST and parses the form-encoded answer.
func (cl *OAuth1Client) post(ctx context.Context, endpoint, rawURL string, c OAuth1Credentials, extra OAuth1Param) (url.Values, error) {
	perr := func(status int, problem string, err error) error {
		return &OAuth1ProviderError{Endpoint: endpoint, StatusCode: status, Problem: problem, Err: err}
	}
	auth, err := cl.Signer.Authorization(http.MethodPost, rawURL, nil, c, extra)
	if err != nil {
		return nil, perr(0, "", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, http.NoBody)
	if err != nil {
		return nil, perr(0, "", err)
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set("Accept", "application/x-www-form-urlencoded")
	hc := cl.HTTP
	if hc == nil {
		hc = defaultHTTPClient()
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, perr(0, "", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxOAuth1Response))
	if err != nil {
		return nil, perr(resp.StatusCode, "", err)
	}
	vals, perrParse := url.ParseQuery(strings.TrimSpace(string(body)))
	if resp.StatusCode/100 != 2 {
		// Providers often explain a refusal in oauth_problem (and oauth_problem_advice).
		return nil, perr(resp.StatusCode, vals.Get("oauth_problem"), errors.New(http.StatusText(resp.StatusCode)))
	}
	if perrParse != nil {
		// Not the parse error: it quotes the body.
		return nil, perr(resp.StatusCode, "", errors.New("the response is not application/x-www-form-urlencoded"))
	}
	return vals, nil
}

// OAuth1AuthorizationURL is the resource owner authorization URL (§2.2): the provider's
// authorization URL with oauth_token added to its query.
func OAuth1AuthorizationURL(authorizationURL, token string) (string, error) {
	u, err := url.Parse(authorizationURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("%w: authorization_url is not an absolute http(s) URL", ErrNotOAuth1)
	}
	q := "oauth_token=" + url.QueryEscape(token)
	if u.RawQuery != "" {
		q = u.RawQuery + "&" + q
	}
	u.RawQuery = q
	return u.String(), nil
}

// DefaultOAuth1RequestTTL is how long a flow may take between authorize and callback.
const DefaultOAuth1RequestTTL = 10 * time.Minute

// ActorOAuth1Callback is the audit actor of a connection whose flow has no CreatedBy.
const ActorOAuth1Callback = "oauth1-callback"

// Fields of the sealed values the flow reads and writes, as in store's SecretFields.
const (
	fieldConsumerKey      = "api_config.oauth1.consumer_key"
	fieldConsumerSecret   = "api_config.oauth1.consumer_secret"
	fieldOAuthToken       = "credentials.oauth_token"
	fieldOAuthTokenSecret = "credentials.oauth_token_secret"
)

// OAuth1Store is what OAuth1Connector needs of the database; *store.Store implements it.
type OAuth1Store interface {
	GetAPI(ctx context.Context, id string, t store.Tenant) (*store.ExternalAPI, error)
	CreateOAuth1Request(ctx context.Context, r *store.OAuth1Request) error
	ConsumeOAuth1Request(ctx context.Context, id, apiID string, at time.Time) (*store.OAuth1Request, error)
	DeleteOAuth1RequestsBefore(ctx context.Context, before time.Time) (int64, error)
	// Tx runs fn in one transaction: the new connection, its change notification and its audit
	// event commit together.
	Tx(ctx context.Context, fn func(tx *store.Store) error) error
}

var _ OAuth1Store = (*store.Store)(nil)

// OAuth1Connector runs the three-legged OAuth 1.0a flow that connects an account: Authorize
// obtains temporary credentials and makes the provider URL to send the user to, Callback
// finishes the flow on the user's return and creates the connection. The flow between the two
// lives in the database, so any instance can finish one another started. Store and Sealer are
// required; the zero values of the other fields are their defaults. It is safe for concurrent
// use.
type OAuth1Connector struct {
	Store  OAuth1Store
	Sealer Sealer
	// HTTP calls the provider's endpoints. nil: a 20 s timeout, no redirects followed.
	HTTP *http.Client
	// TTL of a flow. DefaultOAuth1RequestTTL (10 min) if zero.
	TTL time.Duration
	// Timeout of the token exchange and the save, on a context of their own: once the request
	// token is spent a browser that goes away must not lose the connection. 30 s if zero.
	Timeout time.Duration
	// Now is the clock; time.Now if nil. Nonce, when set, gives the oauth_nonce of the signed
	// requests (tests); nil means crypto/rand.
	Now   func() time.Time
	Nonce func() string
}

// OAuth1Start describes the connection a flow will create and the callback URL the provider
// sends the user back to (oauth_callback). Empty PartnerID and SalesChannelID mean the API's;
// an empty ConnectionName the API's name.
type OAuth1Start struct {
	CallbackURL    string
	ConnectionName string
	UserID         string
	PartnerID      string
	SalesChannelID string
	// CreatedBy started the flow (an admin token's name); the new connection's audit event names it.
	CreatedBy string
}

// OAuth1CallbackParams are the query parameters of the provider's redirect back (§2.2):
// oauth_token and oauth_verifier, or on refusal denied (Twitter/X: denied=<request token>) or
// oauth_problem.
type OAuth1CallbackParams struct {
	Token, Verifier string
	Denied, Problem string
}

// RequestTokenID is the id of the flow a request token belongs to: its hex SHA-256, so a
// database reader cannot finish someone's flow.
func RequestTokenID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func (c *OAuth1Connector) now() time.Time {
	if c.Now != nil {
		return nowUTC(c.Now)
	}
	return nowUTC(time.Now)
}

// oauth1Of returns the API's OAuth 1.0a section with its consumer credentials opened.
func (c *OAuth1Connector) oauth1Of(api *store.ExternalAPI) (*store.OAuth1Config, OAuth1Credentials, error) {
	var cr OAuth1Credentials
	cfg := api.APIConfig.OAuth1
	if api.APIConfig.AuthType != store.AuthOAuth1 || cfg == nil {
		return nil, cr, fmt.Errorf("%w: API %s has auth_type %q", ErrNotOAuth1, api.ID, api.APIConfig.AuthType)
	}
	var missing []string
	for _, f := range []struct{ name, v string }{
		{"oauth1.request_token_url", cfg.RequestTokenURL}, {"oauth1.authorization_url", cfg.AuthorizationURL},
		{"oauth1.access_token_url", cfg.AccessTokenURL},
	} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if !cfg.ConsumerKey.IsSet() {
		missing = append(missing, "oauth1.consumer_key")
	}
	if len(missing) > 0 {
		return nil, cr, fmt.Errorf("%w: API %s has no %s", ErrNotOAuth1, api.ID, strings.Join(missing, ", "))
	}
	key, err := c.Sealer.Open(cfg.ConsumerKey, api.AAD(fieldConsumerKey))
	if err != nil {
		return nil, cr, fmt.Errorf("oauth: open %s of API %s: %w", fieldConsumerKey, api.ID, err)
	}
	cr.ConsumerKey = string(key)
	if cfg.ConsumerSecret.IsSet() {
		sec, err := c.Sealer.Open(cfg.ConsumerSecret, api.AAD(fieldConsumerSecret))
		if err != nil {
			return nil, cr, fmt.Errorf("oauth: open %s of API %s: %w", fieldConsumerSecret, api.ID, err)
		}
		cr.ConsumerSecret = string(sec)
	}
	return cfg, cr, nil
}

func (c *OAuth1Connector) client(cfg *store.OAuth1Config) *OAuth1Client {
	return &OAuth1Client{
		Signer: OAuth1Signer{Method: cfg.SignatureMethod, Realm: cfg.Realm, Nonce: c.Nonce, Now: c.Now},
		HTTP:   c.HTTP,
	}
}

// Authorize starts a flow for api: it obtains temporary credentials with st.CallbackURL as
// oauth_callback, keeps the flow (the token's secret sealed) for TTL, and returns the URL to send
// the user to. ErrNotOAuth1; an *OAuth1ProviderError when the provider hands out no token.
func (c *OAuth1Connector) Authorize(ctx context.Context, api *store.ExternalAPI, st OAuth1Start) (string, error) {
	cfg, creds, err := c.oauth1Of(api)
	if err != nil {
		return "", err
	}
	if _, err := OAuth1AuthorizationURL(cfg.AuthorizationURL, ""); err != nil {
		return "", err
	}
	tmp, err := c.client(cfg).RequestToken(ctx, cfg.RequestTokenURL, creds, st.CallbackURL)
	if err != nil {
		return "", err
	}
	authURL, err := OAuth1AuthorizationURL(cfg.AuthorizationURL, tmp.Token)
	if err != nil {
		return "", err
	}
	ttl := c.TTL
	if ttl <= 0 {
		ttl = DefaultOAuth1RequestTTL
	}
	r := &store.OAuth1Request{
		ID: RequestTokenID(tmp.Token), ExternalAPIID: api.ID,
		ConnectionName: st.ConnectionName, UserID: st.UserID, PartnerID: st.PartnerID,
		SalesChannelID: st.SalesChannelID, CreatedBy: st.CreatedBy, ExpiresAt: c.now().Add(ttl),
	}
	// Sealed even when empty: the row always holds a blob, and an empty secret is a real value.
	sealed, err := c.Sealer.Seal([]byte(tmp.Secret), r.AAD(store.OAuth1RequestSecretField))
	if err != nil {
		return "", fmt.Errorf("oauth: seal request token secret: %w", err)
	}
	r.RequestTokenSecret = sealed
	if err := c.Store.CreateOAuth1Request(ctx, r); err != nil {
		return "", fmt.Errorf("oauth: record OAuth 1.0a flow: %w", err)
	}
	return authURL, nil
}

// Callback finishes a flow of the API apiID: it consumes the flow its request token names
// (whatever happens next, the token cannot be used again), exchanges the token and verifier for
// token credentials, and creates the connection, token and secret sealed, the provider's other
// response fields (user_id, screen_name, …) as provider data, status active, in one transaction
// with its change notification and audit event.
//
// Errors, none of which leaves a connection: ErrOAuth1TokenUnknown (no token, or one no flow of
// this API issued), ErrOAuth1TokenUsed, ErrOAuth1TokenExpired, ErrOAuth1Denied, ErrNotOAuth1,
// an *OAuth1ProviderError (the access token endpoint refused the exchange, or failed).
func (c *OAuth1Connector) Callback(ctx context.Context, apiID string, p OAuth1CallbackParams) (*store.Connection, error) {
	token := p.Token
	if token == "" {
		token = p.Denied
	}
	if token == "" {
		return nil, fmt.Errorf("%w: the callback has no oauth_token", ErrOAuth1TokenUnknown)
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultRefreshTimeout
	}
	// Detached: past this point the request token is spent.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	now := c.now()
	flow, err := c.Store.ConsumeOAuth1Request(ctx, RequestTokenID(token), apiID, now)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("%w: no authorization of this API issued that oauth_token", ErrOAuth1TokenUnknown)
	case errors.Is(err, store.ErrRequestTokenUsed):
		return nil, ErrOAuth1TokenUsed
	case err != nil:
		return nil, fmt.Errorf("oauth: read OAuth 1.0a flow: %w", err)
	case !now.Before(flow.ExpiresAt):
		return nil, ErrOAuth1TokenExpired
	case p.Problem != "":
		return nil, fmt.Errorf("%w (oauth_problem=%s)", ErrOAuth1Denied, p.Problem)
	case p.Denied != "" || p.Verifier == "":
		return nil, ErrOAuth1Denied
	}
	api, err := c.Store.GetAPI(ctx, apiID, store.Tenant{})
	if err != nil {
		return nil, err
	}
	cfg, creds, err := c.oauth1Of(api)
	if err != nil {
		return nil, err
	}
	secret, err := c.Sealer.Open(flow.RequestTokenSecret, flow.AAD(store.OAuth1RequestSecretField))
	if err != nil {
		return nil, fmt.Errorf("oauth: open request token secret: %w", err)
	}
	creds.Token, creds.TokenSecret = token, string(secret)
	tc, err := c.client(cfg).AccessToken(ctx, cfg.AccessTokenURL, creds, p.Verifier)
	if err != nil {
		return nil, err
	}
	return c.create(ctx, api, flow, &tc, now)
}

// create stores the new connection of a finished flow.
func (c *OAuth1Connector) create(ctx context.Context, api *store.ExternalAPI, flow *store.OAuth1Request,
	tc *OAuth1TokenCredentials, now time.Time) (*store.Connection, error) {
	extra := make(map[string]any, len(tc.Extra))
	for k, v := range tc.Extra {
		extra[k] = v
	}
	conn := newConnection(api, flowConnection{userID: flow.UserID, partnerID: flow.PartnerID,
		salesChannelID: flow.SalesChannelID, name: flow.ConnectionName}, extra, now)
	var err error
	if conn.Credentials.OAuthToken, err = c.Sealer.Seal([]byte(tc.Token), conn.AAD(fieldOAuthToken)); err != nil {
		return nil, fmt.Errorf("oauth: seal %s: %w", fieldOAuthToken, err)
	}
	if conn.Credentials.OAuthTokenSecret, err = c.Sealer.Seal([]byte(tc.Secret), conn.AAD(fieldOAuthTokenSecret)); err != nil {
		return nil, fmt.Errorf("oauth: seal %s: %w", fieldOAuthTokenSecret, err)
	}
	actor := flow.CreatedBy
	if actor == "" {
		actor = ActorOAuth1Callback
	}
	if err := createConnection(ctx, c.Store, conn, actor, "oauth1",
		map[string]any{"oauth_token": "set", "oauth_token_secret": "set"}, now); err != nil {
		return nil, err
	}
	return conn, nil
}

// PurgeRequests deletes flows that expired more than a day ago (kept that long so a late
// callback is told "expired" rather than "unknown").
func (c *OAuth1Connector) PurgeRequests(ctx context.Context) (int64, error) {
	return c.Store.DeleteOAuth1RequestsBefore(ctx, c.now().Add(-24*time.Hour))
}
