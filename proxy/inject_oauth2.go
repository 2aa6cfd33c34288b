package proxy

import (
	"context"

	"github.com/valyala/fasthttp"

	"github.com/extapi/extapi/oauth"
	"github.com/extapi/extapi/store"
)

// TokenSource hands out OAuth 2.0 access tokens for routes of auth_type oauth2;
// *oauth.Refresher implements it. Token refreshes first when the token is about to expire
// (one refresh per connection across the fleet, on a context of its own: ctx only bounds the
// wait). Rejected is told of a token the upstream answered 401 to and returns the one to retry
// with, refreshing once however many requests report the same token. Errors match
// oauth.ErrConnectionExpired, oauth.ErrRefreshFailed, oauth.ErrConnectionInactive. Both are
// safe for concurrent use; api and conn are the cached rows and are not modified.
type TokenSource interface {
	Token(ctx context.Context, api *store.ExternalAPI, conn *store.Connection) (oauth.AccessToken, error)
	Rejected(ctx context.Context, api *store.ExternalAPI, conn *store.Connection, token string) (oauth.AccessToken, error)
}

var _ TokenSource = (*oauth.Refresher)(nil)

// oauth2Injector sets Authorization: Bearer <access token>. The token is not a secret of the
// route (it changes on every refresh): forward asks the TokenSource for it before the first
// attempt, through requestSigner, and again after a 401.
type oauth2Injector struct {
	src TokenSource
	// ctx is the Handler's: a refresh wait ends at shutdown (fasthttp's RequestCtx would not).
	ctx  context.Context
	api  *store.ExternalAPI
	conn *store.Connection
}

var _ requestSigner = (*oauth2Injector)(nil)

// Inject does nothing; see sign.
func (*oauth2Injector) Inject(*Outbound, [][]byte) {}

// newOAuth2Credential is the credential of an oauth2 API. bindTokenSource completes it when
// the route is loaded.
func newOAuth2Credential(api *store.ExternalAPI, conn *store.Connection) (credential, error) {
	return credential{inj: &oauth2Injector{api: api, conn: conn}, header: "Authorization"}, nil
}

// bindTokenSource gives an oauth2 credential the Handler's TokenSource and checks the API can
// get tokens; other credentials are left alone.
func (h *Handler) bindTokenSource(c *credential) error {
	i, ok := c.inj.(*oauth2Injector)
	if !ok {
		return nil
	}
	if h.opts.TokenSource == nil {
		return errorf(CodeAuthUnsupported, "OAuth 2.0 is not configured on this extapi instance", nil)
	}
	if oc := i.api.APIConfig.OAuth2; oc == nil || oc.TokenURL == "" {
		return errorf(CodeAPIConfigInvalid, "the API's auth_type is oauth2 but it has no oauth2.token_url", nil)
	}
	i.src, i.ctx = h.opts.TokenSource, h.ctx
	return nil
}

// sign sets the bearer token: the exchange's (after a 401, the refreshed one), else the
// TokenSource's current token, refreshed first when it is about to expire.
func (i *oauth2Injector) sign(x *exchange) error {
	if x.bearer.Token == "" {
		tok, err := i.src.Token(i.ctx, i.api, i.conn)
		if err != nil {
			return err
		}
		x.bearer = tok
	}
	x.req.Header.Set("Authorization", x.bearer.Header)
	return nil
}

// reauthorize handles an upstream 401 to a request sent with an OAuth 2.0 token, once per
// request: the TokenSource refreshes (or finds the token already renewed) and, if the request's
// body can be sent again (buffered or empty), forward sends it once more with the new token.
// A streamed body cannot be, so the 401 is passed on; the next request has the new token.
func (h *Handler) reauthorize(x *exchange, err error) (again bool, _ error) {
	if err != nil || x.reauthorized || x.resp.StatusCode() != fasthttp.StatusUnauthorized || x.bearer.Token == "" {
		return false, nil
	}
	i, ok := x.route.cred.inj.(*oauth2Injector)
	if !ok {
		return false, nil
	}
	x.reauthorized = true
	tok, rerr := i.src.Rejected(i.ctx, i.api, i.conn, x.bearer.Token)
	if rerr != nil {
		return false, rerr
	}
	if !x.buffered && x.reader.r != nil {
		return false, nil
	}
	x.bearer = tok
	_ = x.resp.CloseBodyStream()
	if x.buffered {
		x.req.SetBodyRaw(x.body)
	}
	return true, nil
}

// oauth2Expired is the answer for a route whose OAuth 2.0 connection is marked expired: 401
// connection_expired, saying to re-authenticate (nil for other routes).
func oauth2Expired(r *connEntry) error {
	if _, ok := r.cred.inj.(*oauth2Injector); !ok || r.status != store.ConnExpired {
		return nil
	}
	return errorf(CodeConnectionExpired, "the connection's OAuth 2.0 authorization has expired; re-authenticate the connection", nil)
}
