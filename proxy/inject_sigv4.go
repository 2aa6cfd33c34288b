package proxy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/extapi/extapi/store"
)

// sigv4Injector signs upstream requests with AWS Signature Version 4, using the SDK's
// maintained signer. Like OAuth 1.0a, the signature covers the request as sent (method, URL,
// the signed headers, the body's hash), so forward signs before every attempt, after every
// other change; each attempt gets a fresh X-Amz-Date.
//
// The payload hash follows the service: the SHA-256 of a buffered (or empty) body; for S3 a
// body that streams (larger than Options.BufferLimit) is sent as UNSIGNED-PAYLOAD, which S3
// accepts over TLS; other services need the hash, so such a body is refused. S3 also gets
// x-amz-content-sha256 and its paths are not escaped a second time.
type sigv4Injector struct {
	signer           *v4.Signer
	service, region  string
	s3               bool
	now              func() time.Time
	unsignedStreamed bool
}

var _ requestSigner = (*sigv4Injector)(nil)

// Inject does nothing; see sign.
func (*sigv4Injector) Inject(*Outbound, [][]byte) {}

// The secrets of an aws_sigv4 credential, in the order of credential.refs.
const (
	sigv4AccessKeyID = iota
	sigv4SecretKey
	sigv4SessionToken
)

const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

var errBodyNotHashed = errors.New("streamed body cannot be hashed before it is sent")

// newSigV4Credential: the access key id and secret access key are the connection's
// credentials.username and credentials.password, an optional session token its
// credentials.access_token; service and region come from api_config.aws_sigv4.
func newSigV4Credential(api *store.ExternalAPI, conn *store.Connection) (credential, error) {
	var c credential
	cfg := api.APIConfig.AWSSigV4
	if cfg == nil || cfg.Service == "" || cfg.Region == "" {
		return c, errorf(CodeAPIConfigInvalid, "the API's auth_type is aws_sigv4 but it has no aws_sigv4 service and region", nil)
	}
	k := &conn.Credentials
	if !k.Username.IsSet() || !k.Password.IsSet() {
		return c, errorf(CodeCredentialsMissing, "an aws_sigv4 route needs the connection's access key id (credentials.username) and secret access key (credentials.password)", nil)
	}
	ref := func(field string, b store.Sealed) sealedRef {
		if !b.IsSet() {
			return sealedRef{}
		}
		return sealedRef{blob: b, aad: conn.AAD(field), field: field}
	}
	s3 := cfg.Service == "s3"
	c.inj = &sigv4Injector{
		signer: v4.NewSigner(func(o *v4.SignerOptions) {
			o.DisableURIPathEscaping = s3 // S3 signs the path as sent, others escape it again
		}),
		service: cfg.Service, region: cfg.Region, s3: s3, now: time.Now, unsignedStreamed: s3,
	}
	c.header = "Authorization"
	c.refs = []sealedRef{
		sigv4AccessKeyID:  ref("credentials.username", k.Username),
		sigv4SecretKey:    ref("credentials.password", k.Password),
		sigv4SessionToken: ref("credentials.access_token", k.AccessToken),
	}
	return c, nil
}

// sign builds a net/http view of the request as it will be sent (method, URL, Host, the
// headers that are signed, the payload hash), signs it, and copies the signature headers onto
// the fasthttp request. Only Host, Content-Type, Content-MD5 and X-Amz-* headers are signed:
// those are the ones that reach the upstream unchanged.
func (i *sigv4Injector) sign(x *exchange) error {
	req := x.req
	var hash string
	switch {
	case x.buffered:
		sum := sha256.Sum256(x.body)
		hash = hex.EncodeToString(sum[:])
	case req.IsBodyStream():
		if !i.unsignedStreamed {
			return errorf(CodeRequestTooLarge, "AWS "+i.service+" needs the body's hash in the signature, so the body must fit in the proxy's buffer", errBodyNotHashed)
		}
		hash = "UNSIGNED-PAYLOAD"
	default:
		hash = emptySHA256
	}
	u, err := url.Parse(string(x.url))
	if err != nil {
		return errorf(CodeInternal, "the request could not be signed", err)
	}
	view := &http.Request{Method: string(req.Header.Method()), URL: u, Host: x.route.base.host, Header: http.Header{}}
	for k, v := range req.Header.All() {
		name := string(k)
		switch lk := strings.ToLower(name); {
		case lk == "content-type", lk == "content-md5":
		case strings.HasPrefix(lk, "x-amz-") && lk != "x-amz-date" && lk != "x-amz-security-token" && lk != "x-amz-content-sha256":
		default:
			continue
		}
		view.Header.Add(name, string(v))
	}
	if i.s3 {
		view.Header.Set("X-Amz-Content-Sha256", hash)
	}
	s := x.secrets
	creds := aws.Credentials{AccessKeyID: string(s[sigv4AccessKeyID]), SecretAccessKey: string(s[sigv4SecretKey]),
		SessionToken: string(s[sigv4SessionToken])}
	if err := i.signer.SignHTTP(context.Background(), creds, view, hash, i.service, i.region, i.now()); err != nil {
		return errorf(CodeInternal, "the request could not be signed", err)
	}
	for _, name := range [...]string{"Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-Sha256"} {
		if v := view.Header.Get(name); v != "" {
			req.Header.Set(name, v)
		} else {
			req.Header.Del(name)
		}
	}
	return nil
}
