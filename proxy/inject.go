package proxy

import (
	"encoding/base64"

	"github.com/valyala/fasthttp"

	"github.com/extapi/extapi/store"
)

// Outbound is the upstream request as an Injector completes it.
type Outbound struct {
	Header *fasthttp.RequestHeader
	// Query is the upstream query without '?', the caller's copy of the credential's parameter
	// already removed. An injector may append to it.
	Query []byte
	// scratch and pair are reused for building header values.
	scratch, pair []byte
}

// Injector puts a connection's credential on the upstream request. There is one small
// implementation per auth type; loadConnection picks it once, when the route is loaded, and
// the route cache keeps it. Inject runs for each request with the route's secrets opened, in
// the order of credential.refs. It must neither keep secrets nor out; it may be called
// concurrently.
type Injector interface {
	Inject(out *Outbound, secrets [][]byte)
}

// headerInjector sets Name: Prefix + secret (api_key, bearer).
type headerInjector struct {
	name   []byte // canonical
	prefix []byte
}

func (i *headerInjector) Inject(out *Outbound, secrets [][]byte) {
	v := append(append(out.scratch[:0], i.prefix...), secrets[0]...)
	out.Header.SetCanonical(i.name, v)
	out.scratch = v
}

// queryInjector appends name=prefix+secret, escaped, to the query (api_key.query_param).
type queryInjector struct {
	name   []byte // escaped
	prefix []byte
}

func (i *queryInjector) Inject(out *Outbound, secrets [][]byte) {
	q := out.Query
	if len(q) > 0 {
		q = append(q, '&')
	}
	q = append(q, i.name...)
	q = append(q, '=')
	q = fasthttp.AppendQuotedArg(q, i.prefix)
	out.Query = fasthttp.AppendQuotedArg(q, secrets[0])
}

// basicInjector sets Name: Prefix + base64(user:password), from a username and a password or
// from one stored "user:password" value, as in the designed Twilio example.
type basicInjector struct {
	name   []byte // canonical
	prefix []byte
}

func (i *basicInjector) Inject(out *Outbound, secrets [][]byte) {
	pair := secrets[0]
	if len(secrets) == 2 {
		pair = append(append(append(out.pair[:0], secrets[0]...), ':'), secrets[1]...)
		out.pair = pair
	}
	v := base64.StdEncoding.AppendEncode(append(out.scratch[:0], i.prefix...), pair)
	out.Header.SetCanonical(i.name, v)
	out.scratch = v
}

// sealedRef is one sealed value a credential needs, with the AAD that binds it to its place.
type sealedRef struct {
	blob  store.Sealed
	aad   []byte
	field string // for logs: "credentials.api_key"
}

// credential is how a route authenticates: the injector, the sealed values it needs, and the
// header or query parameter it occupies (removed from what the caller sent).
type credential struct {
	inj    Injector
	refs   []sealedRef
	header string // canonical; "" when the credential goes in the query
	query  string
}

// newCredential picks the injector of api's auth type and the secrets it uses. Connection
// credentials win over API-level ones.
func newCredential(api *store.ExternalAPI, conn *store.Connection) (credential, error) {
	cfg := api.APIConfig
	var kc store.APIKeyConfig
	if cfg.APIKey != nil {
		kc = *cfg.APIKey
	}
	connRef := func(field string, b store.Sealed) sealedRef {
		return sealedRef{blob: b, aad: conn.AAD(field), field: field}
	}
	apiKey := func() []sealedRef {
		switch {
		case conn.Credentials.APIKey.IsSet():
			return []sealedRef{connRef("credentials.api_key", conn.Credentials.APIKey)}
		case kc.Key.IsSet():
			return []sealedRef{{blob: kc.Key, aad: api.AAD("api_config.api_key.key"), field: "api_config.api_key.key"}}
		}
		return nil
	}
	or := func(s, def string) string {
		if s == "" {
			return def
		}
		return s
	}
	var c credential
	switch cfg.AuthType {
	case store.AuthAPIKey:
		c.refs = apiKey()
		if kc.QueryParam != "" {
			c.query = kc.QueryParam
			c.inj = &queryInjector{name: fasthttp.AppendQuotedArg(nil, []byte(kc.QueryParam)), prefix: []byte(kc.KeyPrefix)}
			break
		}
		c.header = canonicalHeader(or(kc.HeaderName, "X-API-Key"))
		c.inj = &headerInjector{name: []byte(c.header), prefix: []byte(kc.KeyPrefix)}
	case store.AuthBearer:
		if conn.Credentials.AccessToken.IsSet() {
			c.refs = []sealedRef{connRef("credentials.access_token", conn.Credentials.AccessToken)}
		} else {
			c.refs = apiKey()
		}
		c.header = canonicalHeader(or(kc.HeaderName, "Authorization"))
		c.inj = &headerInjector{name: []byte(c.header), prefix: []byte(or(kc.KeyPrefix, "Bearer "))}
	case store.AuthBasic:
		if conn.Credentials.Username.IsSet() {
			c.refs = []sealedRef{connRef("credentials.username", conn.Credentials.Username)}
			if conn.Credentials.Password.IsSet() {
				c.refs = append(c.refs, connRef("credentials.password", conn.Credentials.Password))
			} else {
				c.refs = append(c.refs, sealedRef{}) // an empty password
			}
		} else {
			c.refs = apiKey()
		}
		c.header = canonicalHeader(or(kc.HeaderName, "Authorization"))
		c.inj = &basicInjector{name: []byte(c.header), prefix: []byte(or(kc.KeyPrefix, "Basic "))}
	case store.AuthOAuth1:
		return newOAuth1Credential(api, conn)
	case store.AuthOAuth2:
		return newOAuth2Credential(api, conn)
	case store.AuthAWSSigV4:
		return newSigV4Credential(api, conn)
	default:
		return c, errorf(CodeAPIConfigInvalid, "the API's auth_type is not one extapi knows", nil)
	}
	if len(c.refs) == 0 {
		return c, errorf(CodeCredentialsMissing, "neither the connection nor its API holds a credential for auth type "+cfg.AuthType, nil)
	}
	if c.header != "" && (!validHeaderName(c.header) || reservedHeader(c.header)) {
		return c, errorf(CodeAPIConfigInvalid, "the API's api_key.header_name is not a header a credential can go in", nil)
	}
	return c, nil
}
