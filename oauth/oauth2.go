package oauth

// OAuth 2.0: what Refresher (tokens of connections and client-credentials tokens of APIs) and
// Connector (the authorization-code connect flow) share. The wire protocol is golang.org/x/oauth2;
// around it this package adds one refresh at a time per connection across the fleet, detached
// refresh contexts, sealed storage of rotated tokens and a typed error for every outcome.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/extapi/extapi/store"
)

// Sentinel errors of OAuth 2.0. Match them with errors.Is; the HTTP layers map them to statuses
// (the proxy: ErrConnectionExpired → 401 connection_expired, ErrRefreshFailed → 502
// token_refresh_failed).
var (
	// ErrConnectionExpired: the connection cannot get a token any more (the provider rejected its
	// refresh token with invalid_grant or similar, it has no refresh token, or it is already
	// marked expired). Re-authenticating the connection is the way out.
	ErrConnectionExpired = errors.New("oauth: connection expired; re-authenticate it")
	// ErrRefreshFailed: a token could not be obtained for a reason that may pass (network, 5xx,
	// a lock that could not be taken in time, a backoff after such a failure). Status unchanged.
	ErrRefreshFailed = errors.New("oauth: token refresh failed")
	// ErrConnectionInactive: the connection is revoked or in error; no token is handed out.
	ErrConnectionInactive = errors.New("oauth: connection is not active")
	// ErrNotOAuth2: the API is not configured for this OAuth 2.0 operation (auth_type, grant
	// type, or a required URL missing).
	ErrNotOAuth2 = errors.New("oauth: API is not configured for OAuth 2.0")

	// Connect-flow errors (Connector.Callback). None of them creates a connection.

	// ErrStateInvalid: the callback's state is missing, unknown, or belongs to another API.
	ErrStateInvalid = errors.New("oauth: unknown OAuth 2.0 state")
	// ErrStateUsed: the state was already used by an earlier callback.
	ErrStateUsed = errors.New("oauth: OAuth 2.0 state already used")
	// ErrStateExpired: the authorization took longer than the state lives (10 minutes).
	ErrStateExpired = errors.New("oauth: OAuth 2.0 state expired; start the authorization again")
	// ErrAccessDenied: the provider redirected back with error=access_denied.
	ErrAccessDenied = errors.New("oauth: access denied by the user or provider")
	// ErrAuthorizationFailed: the provider redirected back with another error, or without a code.
	ErrAuthorizationFailed = errors.New("oauth: authorization failed at the provider")
	// ErrExchangeFailed: the token endpoint did not exchange the code for tokens.
	ErrExchangeFailed = errors.New("oauth: code exchange failed")
)

// RefreshError is how a refresh failed. errors.Is(err, ErrConnectionExpired) is true when
// Expired, else errors.Is(err, ErrRefreshFailed); errors.As reaches the cause, e.g. an
// *oauth2.RetrieveError.
type RefreshError struct {
	ConnectionID string // empty for a client-credentials token
	APIID        string // set for a client-credentials token
	// Code is the RFC 6749 §5.2 error code of the token endpoint, when it sent one.
	Code string
	// Expired: the grant is gone and the connection was marked expired.
	Expired bool
	// RetryAfter is how long the refresh is backed off for (a failure that may pass).
	RetryAfter time.Duration
	Err        error
}

func (e *RefreshError) Error() string {
	what := "connection " + e.ConnectionID
	if e.ConnectionID == "" {
		what = "client-credentials token of API " + e.APIID
	}
	if e.Expired {
		return fmt.Sprintf("oauth: %s expired; re-authenticate it: %s", what, tokenErrorText(e.Err))
	}
	msg := fmt.Sprintf("oauth: token refresh of %s failed: %s", what, tokenErrorText(e.Err))
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(" (not retried for %s)", e.RetryAfter.Round(time.Millisecond))
	}
	return msg
}

// Unwrap gives the sentinel and the cause.
func (e *RefreshError) Unwrap() []error {
	if e.Expired {
		return []error{ErrConnectionExpired, e.Err}
	}
	return []error{ErrRefreshFailed, e.Err}
}

// ProviderError is an error the provider sent back to the callback (RFC 6749 §4.1.2.1).
// errors.Is(err, ErrAccessDenied) for access_denied, else ErrAuthorizationFailed.
type ProviderError struct {
	Code, Description string
}

func (e *ProviderError) Error() string {
	if e.Description != "" {
		return fmt.Sprintf("oauth: provider returned %s: %s", e.Code, e.Description)
	}
	return "oauth: provider returned " + e.Code
}

// Is matches ErrAccessDenied or ErrAuthorizationFailed.
func (e *ProviderError) Is(target error) bool {
	if e.Code == "access_denied" {
		return target == ErrAccessDenied
	}
	return target == ErrAuthorizationFailed
}

// ExchangeError is a failed code exchange. errors.Is(err, ErrExchangeFailed); errors.As reaches
// the *oauth2.RetrieveError when the token endpoint answered.
type ExchangeError struct {
	Code string // RFC 6749 §5.2 error code, when sent
	Err  error
}

func (e *ExchangeError) Error() string {
	return "oauth: code exchange failed: " + tokenErrorText(e.Err)
}

// tokenErrorText is what an error of a token-endpoint call may say in an error string or a log:
// an *oauth2.RetrieveError (anywhere in err's chain) is rendered as
// "token endpoint answered <status> (error=<code>)" and nothing else. Its own Error() prints the
// response body or error_description, and error_uri, which some providers fill by echoing the
// request: the client secret, the refresh token, the assertion. errors.As still reaches it.
func tokenErrorText(err error) string {
	if err == nil {
		return "<nil>"
	}
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return err.Error()
	}
	msg := "token endpoint answered"
	if re.Response != nil {
		msg += " " + strconv.Itoa(re.Response.StatusCode)
	} else {
		msg += " with an error"
	}
	return msg + codeSuffix("error", re.ErrorCode)
}

// codeSuffix is " (name=code)" for an error code a provider sent, "" for none; a code that does
// not look like one (SafeErrorCode) is not echoed.
func codeSuffix(name, code string) string {
	switch {
	case code == "":
		return ""
	case SafeErrorCode(code):
		return " (" + name + "=" + code + ")"
	}
	return " (" + name + "=<not an error code>)"
}

// SafeErrorCode reports whether an error code a provider sent (RFC 6749 §5.2 error, OAuth 1.0a
// oauth_problem) may be echoed in an error string, a log or an answer: at most 64 letters,
// digits, '_', '.' and '-'. Anything else may carry what the provider echoed of the request.
func SafeErrorCode(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// Unwrap gives ErrExchangeFailed and the cause.
func (e *ExchangeError) Unwrap() []error { return []error{ErrExchangeFailed, e.Err} }

// Sealer seals and opens secrets bound to their row and field; *vault.Keyring implements it.
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(blob, aad []byte) ([]byte, error)
}

// AccessToken is a token ready to be sent upstream.
type AccessToken struct {
	Token string
	// Expiry is when the provider said the token ends; zero when it did not say.
	Expiry time.Time
	// Header is the Authorization header value, "Bearer <token>", built once per token.
	Header string
}

func newAccessToken(tok string, exp *time.Time) AccessToken {
	t := AccessToken{Token: tok, Header: "Bearer " + tok}
	if exp != nil {
		t.Expiry = *exp
	}
	return t
}

// Defaults of the OAuth 2.0 options.
const (
	DefaultSkew           = 60 * time.Second
	DefaultRefreshTimeout = 30 * time.Second
	DefaultStateTTL       = 10 * time.Minute
	defaultHTTPTimeout    = 20 * time.Second
)

// Fields of the sealed values, as in store's SecretFields.
const (
	fieldAccessToken  = "credentials.access_token"
	fieldRefreshToken = "credentials.refresh_token"
	fieldClientID     = "api_config.oauth2.client_id"
	fieldClientSecret = "api_config.oauth2.client_secret"
	fieldCodeVerifier = "code_verifier"
)

// Grant types and client authentication methods of store.OAuth2Config.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantClientCredentials = "client_credentials"
	AuthClientSecretBasic  = "client_secret_basic"
	AuthClientSecretPost   = "client_secret_post"
)

// GrantJWTBearer: a service account mints the API's own tokens with a signed JWT assertion
// (RFC 7523), cached and shared like client-credentials tokens (oauth2_jwt.go).
const GrantJWTBearer = "jwt_bearer"

// oauth2Of returns the API's OAuth 2.0 section, or ErrNotOAuth2. token_url is required for every
// grant type, jwt_bearer included (the proxy and the management API require it too).
func oauth2Of(api *store.ExternalAPI) (*store.OAuth2Config, error) {
	c := api.APIConfig.OAuth2
	if api.APIConfig.AuthType != store.AuthOAuth2 || c == nil {
		return nil, fmt.Errorf("%w: API %s has auth_type %q", ErrNotOAuth2, api.ID, api.APIConfig.AuthType)
	}
	if c.TokenURL == "" {
		return nil, fmt.Errorf("%w: API %s has no oauth2.token_url", ErrNotOAuth2, api.ID)
	}
	return c, nil
}

// isClientCredentials reports whether the API gets its tokens with its own client credentials
// (or its own service account).
func isClientCredentials(api *store.ExternalAPI) bool {
	c := api.APIConfig.OAuth2
	return api.APIConfig.AuthType == store.AuthOAuth2 && c != nil &&
		(c.GrantType == GrantClientCredentials || c.GrantType == GrantJWTBearer)
}

// authStyle maps token_auth_method; client_secret_basic is the default (RFC 6749 §2.3.1 says
// servers must support it). Never AuthStyleAutoDetect: its probing sends the secret twice.
func authStyle(method string) oauth2.AuthStyle {
	if method == AuthClientSecretPost {
		return oauth2.AuthStyleInParams
	}
	return oauth2.AuthStyleInHeader
}

// clientCredentials opens the API's client id and secret.
func clientCredentials(s Sealer, api *store.ExternalAPI, c *store.OAuth2Config) (id, secret string, err error) {
	open := func(v store.Sealed, field string) (string, error) {
		if !v.IsSet() {
			return "", nil
		}
		b, err := s.Open(v, api.AAD(field))
		if err != nil {
			return "", fmt.Errorf("oauth: open %s of API %s: %w", field, api.ID, err)
		}
		return string(b), nil
	}
	if id, err = open(c.ClientID, fieldClientID); err != nil {
		return "", "", err
	}
	if secret, err = open(c.ClientSecret, fieldClientSecret); err != nil {
		return "", "", err
	}
	return id, secret, nil
}

// oauth2Config builds the x/oauth2 config of an API (client secrets opened).
func oauth2Config(s Sealer, api *store.ExternalAPI) (*oauth2.Config, error) {
	c, err := oauth2Of(api)
	if err != nil {
		return nil, err
	}
	id, secret, err := clientCredentials(s, api, c)
	if err != nil {
		return nil, err
	}
	return &oauth2.Config{
		ClientID:     id,
		ClientSecret: secret,
		Endpoint:     oauth2.Endpoint{AuthURL: c.AuthorizationURL, TokenURL: c.TokenURL, AuthStyle: authStyle(c.TokenAuthMethod)},
		RedirectURL:  c.RedirectURI,
		Scopes:       c.Scopes,
	}, nil
}

// expiresAt is when a token from the endpoint ends, on our clock: x/oauth2 computes Expiry with
// time.Now, so expires_in (RFC 6749 §5.1, relative) is read again and added to now. nil when the
// provider gave no lifetime.
func expiresAt(t *oauth2.Token, now time.Time) *time.Time {
	secs := t.ExpiresIn
	if secs == 0 {
		// clientcredentials and form-encoded responses leave ExpiresIn unset. PayPal sends a string.
		switch v := t.Extra("expires_in").(type) {
		case float64:
			secs = int64(v)
		case int64:
			secs = v
		case string:
			secs, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	var at time.Time
	switch {
	case secs > 0:
		at = now.Add(time.Duration(secs) * time.Second)
	case !t.Expiry.IsZero():
		at = t.Expiry
	default:
		return nil
	}
	at = at.UTC().Truncate(time.Microsecond)
	return &at
}

// grantedScopes is the response's scope (§5.1) or, when it is absent, what was asked for.
func grantedScopes(t *oauth2.Token, asked []string) []string {
	if s, ok := t.Extra("scope").(string); ok && strings.TrimSpace(s) != "" {
		return strings.Fields(s)
	}
	return asked
}

// notProviderData are protocol fields of a token response that are stored elsewhere or mean
// nothing once the response is handled.
var notProviderData = map[string]bool{
	"expires_in": true, "scope": true, "error": true, "error_description": true, "error_uri": true,
}

// credentialWords mark a field name that may hold a credential (Yahoo's session handle, an
// id_token, a webhook_secret, an api_key, a code, …): such a field is never kept.
var credentialWords = []string{"token", "secret", "session", "verifier", "key", "code", "assertion",
	"credential", "password", "signature"}

// keepProviderField reports whether a field of a token response (OAuth 2.0's JSON or form, OAuth
// 1.0a's access token response) may be kept as the connection's provider data: not a protocol
// field (oauth_*, expires_in, scope, error*), nor a name that suggests a credential.
func keepProviderField(name string) bool {
	n := strings.ToLower(name)
	if strings.HasPrefix(n, "oauth_") || notProviderData[n] {
		return false
	}
	for _, w := range credentialWords {
		if strings.Contains(n, w) {
			return false
		}
	}
	return true
}

// providerData picks the simple fields of a token response (Salesforce's instance_url, Slack's
// team_id, …) to keep with the connection. Anything that may be a credential is left out.
func providerData(body []byte) map[string]any {
	fields := map[string]any{}
	if err := json.Unmarshal(body, &fields); err != nil {
		vals, err := url.ParseQuery(string(body))
		if err != nil {
			return nil
		}
		clear(fields)
		for k := range vals {
			fields[k] = vals.Get(k)
		}
	}
	out := map[string]any{}
	for k, v := range fields {
		if !keepProviderField(k) {
			continue
		}
		switch v.(type) {
		case string, float64, bool:
			out[k] = v
		}
	}
	return out
}

// captureClient is an HTTP client that keeps the body of the (one) token response it receives,
// so the fields x/oauth2 does not expose can be read.
type captureClient struct {
	base http.RoundTripper
	body []byte
}

func (c *captureClient) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	c.body = b
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}

// withCapture returns a context that makes x/oauth2 use a capturing copy of client.
func withCapture(ctx context.Context, client *http.Client) (context.Context, *captureClient) {
	base := client.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	cc := &captureClient{base: base}
	hc := *client
	hc.Transport = cc
	return context.WithValue(ctx, oauth2.HTTPClient, &hc), cc
}

func defaultHTTPClient() *http.Client {
	return &http.Client{
		Timeout: defaultHTTPTimeout,
		// A token endpoint answers; it does not redirect (a redirect would resend credentials).
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// sealedNonce returns the "iv" value of a sealed blob: unique per sealing, so it identifies the
// blob whatever its JSON layout (PostgreSQL's JSONB reorders keys). nil when there is none.
func sealedNonce(blob []byte) []byte {
	i := bytes.Index(blob, []byte(`"iv"`))
	if i < 0 {
		return nil
	}
	rest := bytes.TrimLeft(blob[i+4:], " \t\r\n")
	rest, ok := bytes.CutPrefix(rest, []byte(":"))
	if !ok {
		return nil
	}
	rest, ok = bytes.CutPrefix(bytes.TrimLeft(rest, " \t\r\n"), []byte(`"`))
	if !ok {
		return nil
	}
	end := bytes.IndexByte(rest, '"')
	if end <= 0 {
		return nil
	}
	return rest[:end]
}

// retrieveCode is the RFC 6749 error code of a token-endpoint error, and whether it was a client
// error (4xx, or a 2xx carrying an error: some providers do that).
func retrieveCode(err error) (code string, clientError bool) {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return "", false
	}
	status := 0
	if re.Response != nil {
		status = re.Response.StatusCode
	}
	return re.ErrorCode, status < 500
}

// grantGone reports whether a refresh error means the grant is gone for good: the provider
// revoked it, the refresh token expired or was reused, or the client may no longer use it.
// invalid_client is not among them: that is the API's configuration, not this connection.
func grantGone(err error) (code string, gone bool) {
	code, clientError := retrieveCode(err)
	if !clientError {
		return code, false
	}
	switch code {
	case "invalid_grant", "unauthorized_client", "invalid_token", "token_revoked", "access_denied":
		return code, true
	}
	return code, false
}

// nowUTC truncates like the store does.
func nowUTC(now func() time.Time) time.Time { return now().UTC().Truncate(time.Microsecond) }
