package proxy

import (
	"errors"

	"github.com/extapi/extapi/oauth"
	"github.com/extapi/extapi/store"
)

// oauth1Injector signs upstream requests with OAuth 1.0a (RFC 5849). The signature covers the
// method, the URL and a form body exactly as sent, so it cannot be made in Inject (which runs
// before the body is read): forward calls sign before every attempt, once the request is
// complete. Each attempt gets a fresh nonce and timestamp, as providers refuse a nonce twice.
type oauth1Injector struct {
	signer oauth.OAuth1Signer
}

// requestSigner is an Injector whose credential is a signature over the finished request.
type requestSigner interface {
	sign(x *exchange) error
}

var _ requestSigner = (*oauth1Injector)(nil)

// Inject does nothing; see sign.
func (*oauth1Injector) Inject(*Outbound, [][]byte) {}

// The secrets of an oauth1 credential, in the order of credential.refs.
const (
	oauth1ConsumerKey = iota
	oauth1ConsumerSecret
	oauth1Token
	oauth1TokenSecret
)

// newOAuth1Credential is the credential of an oauth1 API: the consumer key and secret from the
// API's config, the token and its secret from the connection.
func newOAuth1Credential(api *store.ExternalAPI, conn *store.Connection) (credential, error) {
	var c credential
	cfg := api.APIConfig.OAuth1
	if cfg == nil {
		return c, errorf(CodeAPIConfigInvalid, "the API's auth_type is oauth1 but it has no oauth1 section", nil)
	}
	inj := &oauth1Injector{signer: oauth.OAuth1Signer{Method: cfg.SignatureMethod, Realm: cfg.Realm}}
	if err := inj.signer.Validate(); err != nil {
		return c, errorf(CodeAPIConfigInvalid, "the API's oauth1.signature_method or oauth1.realm is unusable", err)
	}
	k := &conn.Credentials
	if !cfg.ConsumerKey.IsSet() || !k.OAuthToken.IsSet() {
		return c, errorf(CodeCredentialsMissing, "an oauth1 route needs the API's consumer key and the connection's oauth_token", nil)
	}
	ref := func(field string, b store.Sealed, aad []byte) sealedRef {
		if !b.IsSet() {
			return sealedRef{} // an empty secret: opens as nil
		}
		return sealedRef{blob: b, aad: aad, field: field}
	}
	c.inj = inj
	c.header = "Authorization"
	c.refs = []sealedRef{
		oauth1ConsumerKey:    ref("api_config.oauth1.consumer_key", cfg.ConsumerKey, api.AAD("api_config.oauth1.consumer_key")),
		oauth1ConsumerSecret: ref("api_config.oauth1.consumer_secret", cfg.ConsumerSecret, api.AAD("api_config.oauth1.consumer_secret")),
		oauth1Token:          ref("credentials.oauth_token", k.OAuthToken, conn.AAD("credentials.oauth_token")),
		oauth1TokenSecret:    ref("credentials.oauth_token_secret", k.OAuthTokenSecret, conn.AAD("credentials.oauth_token_secret")),
	}
	return c, nil
}

// signRequest lets the route's credential sign the request as it is about to be sent, if it is
// one that signs. forward calls it before each attempt.
func (h *Handler) signRequest(x *exchange) error {
	s, ok := x.route.cred.inj.(requestSigner)
	if !ok {
		return nil
	}
	return s.sign(x)
}

var errFormNotBuffered = errors.New("form body streamed")

// sign sets Authorization: OAuth … for x.req as it stands: its method, its URL (path rewritten,
// base and caller query, every change made) and, when its Content-Type is
// application/x-www-form-urlencoded, its body's parameters (§3.4.1.3.1). Other bodies are not
// signed. A form body must have been buffered (at most Options.BufferLimit): one that streams
// cannot be signed before it is sent, and is refused.
func (i *oauth1Injector) sign(x *exchange) error {
	req := x.req
	var form []byte
	if oauth.IsFormURLEncoded(req.Header.ContentType()) && !encodedBody(req.Header.ContentEncoding()) {
		switch {
		case x.buffered:
			form = x.body
		case req.IsBodyStream():
			return errorf(CodeRequestTooLarge, "an OAuth 1.0a API signs form bodies, so they must fit in the proxy's buffer", errFormNotBuffered)
		default:
			form = []byte{} // no body: no parameters
		}
	}
	s := x.secrets
	creds := oauth.OAuth1CredentialBytes{
		ConsumerKey: s[oauth1ConsumerKey], ConsumerSecret: s[oauth1ConsumerSecret],
		Token: s[oauth1Token], TokenSecret: s[oauth1TokenSecret],
	}
	v, err := i.signer.AppendAuthorizationBytes(x.out.scratch[:0], req.Header.Method(), x.url, form, &creds)
	x.out.scratch = v
	switch {
	case errors.Is(err, oauth.ErrParameterEncoding):
		return errorf(CodeBadRequest, "the query or form body has a malformed percent-escape, so it cannot be signed", err)
	case err != nil:
		return errorf(CodeInternal, "the request could not be signed", err)
	}
	req.Header.SetCanonical([]byte("Authorization"), v)
	return nil
}

// encodedBody reports whether a Content-Encoding other than identity applies: such a body is
// not application/x-www-form-urlencoded bytes on the wire, so its parameters are not signed.
func encodedBody(ce []byte) bool {
	return len(ce) > 0 && string(ce) != "identity"
}
