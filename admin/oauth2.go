package admin

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/extapi/extapi/oauth"
	"github.com/extapi/extapi/store"
)

// OAuth2Flow runs the OAuth 2.0 authorization-code connect flow; *oauth.Connector implements
// it. Callback bounds its own calls to the provider.
type OAuth2Flow interface {
	Authorize(ctx context.Context, api *store.ExternalAPI, p oauth.AuthorizeParams) (string, error)
	Callback(ctx context.Context, apiID string, p oauth.CallbackParams) (*store.Connection, error)
}

// TokenRefresher refreshes a connection's OAuth 2.0 token now, under the same fleet-wide lock
// as in-line refreshes; *oauth.Refresher implements it.
type TokenRefresher interface {
	ForceRefresh(ctx context.Context, connectionID string) (oauth.AccessToken, error)
}

var (
	_ OAuth2Flow     = (*oauth.Connector)(nil)
	_ TokenRefresher = (*oauth.Refresher)(nil)
)

const actionConnRefresh = "connection.refresh"

// GET /admin/external-apis/{id}/oauth/authorize
//
// Records a state (single use, 10 minutes, bound to this API and to the connection fields
// given) and a sealed PKCE verifier, and redirects to the provider's authorization URL (or, with
// format=json, answers {"authorization_url": …}).
func (s *Server) oauth2Authorize(w http.ResponseWriter, r *http.Request, who *principal) error {
	st, err := s.startConnect(r, who, s.opts.OAuth2 != nil, "the OAuth 2.0 connect flow is not configured")
	if err != nil {
		return err
	}
	p := oauth.AuthorizeParams{ConnectionName: st.name, UserID: st.userID, PartnerID: st.partnerID,
		SalesChannelID: st.salesChannelID, Actor: who.name, RedirectURI: oauth2CallbackURL(r, st.api.ID)}
	authURL, err := s.opts.OAuth2.Authorize(r.Context(), st.api, p)
	if err != nil {
		return s.oauth2Error(w, r, err)
	}
	st.answer(w, r, authURL)
	return nil
}

// GET /admin/external-apis/{id}/oauth/callback?code=…&state=…
//
// No admin token: the state, issued for a flow of this API and usable once, authenticates it.
// Creates the connection and answers 201 with it, or redirects to the API's
// oauth2.success_redirect_url with connection_id and status=connected.
func (s *Server) oauth2Callback(w http.ResponseWriter, r *http.Request, _ *principal) error {
	id := r.PathValue("id")
	if !validID(store.PrefixAPI, id) {
		return notFound("external API")
	}
	if s.opts.OAuth2 == nil || s.store == nil {
		return withMessage(errUnavailable, "the OAuth 2.0 connect flow is not configured")
	}
	// Leniently: the provider decides what else its redirect carries (iss, scope, …).
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return &ValidationError{Details: []Detail{{Path: "query", Message: "malformed query string"}}}
	}
	ctx := r.Context()
	c, err := s.opts.OAuth2.Callback(ctx, id, oauth.CallbackParams{Code: v.Get("code"), State: v.Get("state"),
		Error: v.Get("error"), ErrorDescription: v.Get("error_description")})
	if err != nil {
		return s.oauth2Error(w, r, err)
	}
	if api, err := s.store.GetAPI(ctx, id, store.Tenant{}); err == nil && api.APIConfig.OAuth2 != nil {
		if to, ok := successRedirect(api.APIConfig.OAuth2.SuccessRedirectURL, c.ID); ok {
			w.Header().Set("Cache-Control", "no-store")
			http.Redirect(w, r, to, http.StatusFound)
			return nil
		}
	}
	writeJSON(w, http.StatusCreated, map[string]any{"connection": toConnOut(c)})
	return nil
}

// successRedirect adds connection_id and status=connected to the configured URL.
func successRedirect(raw, connID string) (string, bool) {
	if raw == "" {
		return "", false
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", false
	}
	q := u.Query()
	q.Set("connection_id", connID)
	q.Set("status", "connected")
	u.RawQuery = q.Encode()
	return u.String(), true
}

// oauth2CallbackURL is this server's callback route at the scheme and host the caller reached
// it by, used as redirect_uri when the API configures none.
func oauth2CallbackURL(r *http.Request, apiID string) string {
	u := oauth1CallbackURL(r, apiID)
	return strings.TrimSuffix(u, "/oauth1/callback") + "/oauth/callback"
}

// POST /admin/connections/{id}/refresh
//
// Refreshes the connection's OAuth 2.0 token now (under the same lock as every other refresh,
// so it never races an in-line one) and answers with the connection.
func (s *Server) refreshConnection(w http.ResponseWriter, r *http.Request, who *principal) error {
	id := r.PathValue("id")
	if !validID(store.PrefixConnection, id) {
		return notFound("connection")
	}
	if s.opts.Refresher == nil {
		return withMessage(errUnavailable, "OAuth 2.0 token refresh is not configured")
	}
	ctx := r.Context()
	c, err := s.store.GetConnection(ctx, id, who.tenant)
	if err != nil {
		return withNotFound(err, "connection")
	}
	api, err := s.store.GetAPI(ctx, c.ExternalAPIID, store.Tenant{})
	if err != nil {
		return withNotFound(err, "connection")
	}
	if api.APIConfig.AuthType != store.AuthOAuth2 || api.APIConfig.OAuth2 == nil ||
		api.APIConfig.OAuth2.GrantType == oauth.GrantClientCredentials {
		return s.oauth2Error(w, r, oauth.ErrNotOAuth2)
	}
	tok, rerr := s.opts.Refresher.ForceRefresh(ctx, id)
	changes := map[string]any{"outcome": "refreshed"}
	switch {
	case errors.Is(rerr, oauth.ErrConnectionExpired):
		changes["outcome"] = "expired"
	case rerr != nil:
		changes["outcome"] = "failed"
	case !tok.Expiry.IsZero():
		changes["expires_at"] = tok.Expiry.UTC().Format(time.RFC3339)
	}
	// Who asked is on record whatever came of it (the refresh has its own event).
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.store.Tx(actx, func(tx *store.Store) error {
		return audit(actx, tx, who, actionConnRefresh, targetConn, id, connTenant(c), changes)
	}); err != nil {
		return err
	}
	if rerr != nil {
		return s.oauth2Error(w, r, rerr)
	}
	if c, err = s.store.GetConnection(ctx, id, store.Tenant{}); err != nil {
		return withNotFound(err, "connection")
	}
	writeJSON(w, http.StatusOK, map[string]any{"connection": toConnOut(c)})
	return nil
}

// oauth2Problem maps an error of the OAuth 2.0 flows to its answer; ok is false for errors of
// other layers (store.ErrNotFound, …), which classify answers.
func oauth2Problem(err error) (status int, obj errorObject, ok bool) {
	var (
		pe *oauth.ProviderError
		ee *oauth.ExchangeError
	)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return 0, obj, false
	case errors.Is(err, oauth.ErrStateInvalid):
		return http.StatusBadRequest, errorObject{Code: "oauth2_state_invalid",
			Message: "missing, unknown or mismatched state: no authorization of this API issued it"}, true
	case errors.Is(err, oauth.ErrStateUsed):
		return http.StatusConflict, errorObject{Code: "oauth2_state_used",
			Message: "this state was already used; start the authorization again"}, true
	case errors.Is(err, oauth.ErrStateExpired):
		return http.StatusGone, errorObject{Code: "oauth2_state_expired",
			Message: "the authorization took longer than 10 minutes and expired; start it again"}, true
	case errors.Is(err, oauth.ErrAccessDenied):
		return http.StatusForbidden, errorObject{Code: "oauth2_access_denied",
			Message: "the authorization was denied at the provider; no connection was created"}, true
	case errors.As(err, &pe):
		msg := "the provider did not authorize the request"
		if printableCode(pe.Code) {
			msg += " (error=" + pe.Code + ")"
		}
		return http.StatusBadRequest, errorObject{Code: "oauth2_authorization_failed", Message: msg + "; no connection was created"}, true
	case errors.As(err, &ee):
		msg := "the provider's token endpoint did not exchange the authorization code"
		if printableCode(ee.Code) {
			msg += " (error=" + ee.Code + ")"
		}
		return http.StatusBadRequest, errorObject{Code: "oauth2_exchange_failed", Message: msg + "; no connection was created"}, true
	case errors.Is(err, oauth.ErrNotOAuth2):
		return http.StatusConflict, errorObject{Code: "not_oauth2",
			Message: "the API is not configured for this OAuth 2.0 operation (auth_type oauth2 with token_url; authorization_url and grant_type authorization_code for the connect flow)"}, true
	case errors.Is(err, oauth.ErrConnectionExpired):
		return http.StatusConflict, errorObject{Code: "connection_expired",
			Message: "the provider refused the connection's refresh token; re-authenticate the connection"}, true
	case errors.Is(err, oauth.ErrConnectionInactive):
		return http.StatusConflict, errorObject{Code: "connection_inactive", Message: "the connection is revoked or in error"}, true
	case errors.Is(err, oauth.ErrRefreshFailed):
		return http.StatusBadGateway, errorObject{Code: "token_refresh_failed",
			Message: "the provider's token endpoint did not renew the token; try again later"}, true
	}
	return 0, obj, false
}

// printableCode keeps an RFC 6749 error code the provider sent printable; it is echoed.
func printableCode(s string) bool { return oauth.SafeErrorCode(s) }

// oauth2Error answers an error of the OAuth 2.0 routes in the one error shape (5xx are logged),
// or hands any other error back to classify.
func (s *Server) oauth2Error(w http.ResponseWriter, r *http.Request, err error) error {
	return s.flowError(w, r, err, oauth2Problem, "admin: OAuth 2.0 operation failed")
}
