package admin

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/extapi/extapi/oauth"
	"github.com/extapi/extapi/store"
)

// OAuth1Flow runs the three-legged OAuth 1.0a connect flow; *oauth.OAuth1Connector implements
// it. Authorize and Callback bound their own calls to the provider.
type OAuth1Flow interface {
	Authorize(ctx context.Context, api *store.ExternalAPI, st oauth.OAuth1Start) (string, error)
	Callback(ctx context.Context, apiID string, p oauth.OAuth1CallbackParams) (*store.Connection, error)
}

var _ OAuth1Flow = (*oauth.OAuth1Connector)(nil)

// GET /admin/external-apis/{id}/oauth1/authorize
//
// Obtains a request token from the API's request_token_url, with this server's callback route
// as oauth_callback, and redirects to authorization_url?oauth_token=… (or, with format=json,
// answers {"authorization_url": …}). connection_name, user_id, partner_id and sales_channel_id
// are the fields of the connection the callback will create.
func (s *Server) oauth1Authorize(w http.ResponseWriter, r *http.Request, who *principal) error {
	st, err := s.startConnect(r, who, s.opts.OAuth1 != nil, "the OAuth 1.0a connect flow is not configured")
	if err != nil {
		return err
	}
	o := oauth.OAuth1Start{ConnectionName: st.name, UserID: st.userID, PartnerID: st.partnerID,
		SalesChannelID: st.salesChannelID, CreatedBy: who.name, CallbackURL: oauth1CallbackURL(r, st.api.ID)}
	authURL, err := s.opts.OAuth1.Authorize(r.Context(), st.api, o)
	if err != nil {
		return s.oauth1Error(w, r, err)
	}
	st.answer(w, r, authURL)
	return nil
}

// GET /admin/external-apis/{id}/oauth1/callback?oauth_token=…&oauth_verifier=…
//
// No admin token: the request token, issued for a flow of this API and usable once, is what
// authenticates it. Creates the connection and answers 201 with it.
func (s *Server) oauth1Callback(w http.ResponseWriter, r *http.Request, _ *principal) error {
	id := r.PathValue("id")
	if !validID(store.PrefixAPI, id) {
		return notFound("external API")
	}
	if s.opts.OAuth1 == nil {
		return withMessage(errUnavailable, "the OAuth 1.0a connect flow is not configured")
	}
	// Leniently: the provider decides what else its redirect carries.
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return &ValidationError{Details: []Detail{{Path: "query", Message: "malformed query string"}}}
	}
	c, err := s.opts.OAuth1.Callback(r.Context(), id, oauth.OAuth1CallbackParams{
		Token: v.Get("oauth_token"), Verifier: v.Get("oauth_verifier"), Denied: v.Get("denied"), Problem: v.Get("oauth_problem")})
	if err != nil {
		return s.oauth1Error(w, r, err)
	}
	writeJSON(w, http.StatusCreated, map[string]any{"connection": toConnOut(c)})
	return nil
}

// oauth1CallbackURL is where the provider sends the user back: this server's callback route, at
// the scheme and host the caller reached it by (X-Forwarded-Proto and X-Forwarded-Host, as a
// TLS-terminating proxy in front of the admin listener sets them, win). The caller is an
// authenticated editor starting its own flow, so the headers are trusted as far as that.
func oauth1CallbackURL(r *http.Request, apiID string) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := strings.ToLower(strings.TrimSpace(r.Header.Get("X-Forwarded-Proto"))); p == "https" || p == "http" {
		scheme = p
	}
	host := r.Host
	if h, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Host"), ","); validHost(strings.TrimSpace(h)) {
		host = strings.TrimSpace(h)
	}
	return scheme + "://" + host + "/admin/external-apis/" + apiID + "/oauth1/callback"
}

// validHost accepts a host[:port] made of the characters a host name, an IPv4 or a bracketed
// IPv6 address can hold.
func validHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-.:[]", c) >= 0) {
			return false
		}
	}
	return true
}

// oauth1Problem maps an error of the OAuth 1.0a flow to its answer; ok is false for errors of
// other layers (store.ErrNotFound, …), which classify answers.
func oauth1Problem(err error) (status int, obj errorObject, ok bool) {
	var pe *oauth.OAuth1ProviderError
	switch {
	case errors.Is(err, oauth.ErrOAuth1TokenUnknown):
		return http.StatusBadRequest, errorObject{Code: "oauth1_token_invalid",
			Message: "unknown or mismatched oauth_token: no authorization of this API issued it"}, true
	case errors.Is(err, oauth.ErrOAuth1TokenUsed):
		return http.StatusConflict, errorObject{Code: "oauth1_token_used",
			Message: "this oauth_token was already used; start the authorization again"}, true
	case errors.Is(err, oauth.ErrOAuth1TokenExpired):
		return http.StatusGone, errorObject{Code: "oauth1_token_expired",
			Message: "the authorization took too long and expired; start it again"}, true
	case errors.Is(err, oauth.ErrOAuth1Denied):
		return http.StatusForbidden, errorObject{Code: "oauth1_access_denied",
			Message: "the authorization was denied at the provider; no connection was created"}, true
	case errors.Is(err, oauth.ErrNotOAuth1):
		return http.StatusConflict, errorObject{Code: "not_oauth1",
			Message: "the API is not configured for the OAuth 1.0a flow (auth_type oauth1 with consumer_key, request_token_url, authorization_url and access_token_url)"}, true
	case errors.As(err, &pe):
		msg := "the provider's " + pe.Endpoint + " endpoint "
		switch {
		case pe.Endpoint == "access_token" && pe.Rejected():
			// The verifier or token the user brought back was refused: the user's to retry.
			status, obj.Code, msg = http.StatusBadRequest, "oauth1_exchange_rejected", msg+"refused the oauth_token and oauth_verifier"
		case pe.Rejected():
			status, obj.Code, msg = http.StatusBadGateway, "oauth1_provider_rejected", msg+"refused the API's consumer credentials"
		default:
			status, obj.Code, msg = http.StatusBadGateway, "oauth1_provider_failed", msg+"did not answer with credentials"
		}
		if pe.Problem != "" && len(pe.Problem) <= 64 && validProblem(pe.Problem) {
			msg += " (oauth_problem=" + pe.Problem + ")"
		}
		obj.Message = msg
		return status, obj, true
	}
	return 0, obj, false
}

// validProblem keeps the provider's oauth_problem printable; it is echoed in the message.
func validProblem(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// oauth1Error answers an error of the flow in the one error shape (5xx are logged), or hands any
// other error back to classify.
func (s *Server) oauth1Error(w http.ResponseWriter, r *http.Request, err error) error {
	return s.flowError(w, r, err, oauth1Problem, "admin: OAuth 1.0a flow failed")
}
