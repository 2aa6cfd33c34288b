package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/extapi/extapi/store"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  string
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "extapi test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

// issue returns a leaf certificate and key, PEM, for the given IPs (a server) or CN (a client).
func (ca *testCA) issue(t *testing.T, cn string, ips []net.IP, usage x509.ExtKeyUsage) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: ips, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
}

// newTLSUpstream serves HTTPS with a certificate of ca for 127.0.0.1; with clientCAs set it
// requires a client certificate they issued. It answers with the client certificate's CN.
func newTLSUpstream(t *testing.T, ca *testCA, clientCAs *x509.CertPool, maxVersion uint16) *upstream {
	t.Helper()
	certPEM, keyPEM := ca.issue(t, "upstream", []net.IP{net.IPv4(127, 0, 0, 1)}, x509.ExtKeyUsageServerAuth)
	pair, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{pair}, MaxVersion: maxVersion}
	if clientCAs != nil {
		cfg.ClientCAs, cfg.ClientAuth = clientCAs, tls.RequireAndVerifyClientCert
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{ln: ln, url: "https://" + ln.Addr().String()}
	u.respond = func(ctx *fasthttp.RequestCtx) {
		cn := "none"
		if st := ctx.TLSConnectionState(); st != nil && len(st.PeerCertificates) > 0 {
			cn = st.PeerCertificates[0].Subject.CommonName
		}
		ctx.SetBodyString("client=" + cn)
	}
	u.srv = &fasthttp.Server{Handler: u.handle, Logger: quiet{}}
	go u.srv.Serve(tls.NewListener(ln, cfg))
	t.Cleanup(func() { u.srv.Shutdown() })
	return u
}

func TestTLSUpstreams(t *testing.T) {
	ca, otherCA := newTestCA(t), newTestCA(t)
	plain := newTLSUpstream(t, ca, nil, 0)
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	mutual := newTLSUpstream(t, ca, pool, 0)
	mutual12 := newTLSUpstream(t, ca, pool, tls.VersionTLS12)
	clientCert, clientKey := ca.issue(t, "extapi-client", nil, x509.ExtKeyUsageClientAuth)
	strangerCert, strangerKey := otherCA.issue(t, "stranger", nil, x509.ExtKeyUsageClientAuth)

	e := sqliteEnv(t, Options{})
	cases := []struct {
		desc     string
		base     string
		tls      *store.TLSConfig
		key      string // the client key, sealed into tls.client_key
		wantBody string // or the error code
	}{
		{"system roots do not know the test CA", plain.url, nil, "", CodeUpstreamTLS},
		{"a CA bundle of another CA", plain.url, &store.TLSConfig{CABundle: otherCA.pem}, "", CodeUpstreamTLS},
		{"the API's CA bundle", plain.url, &store.TLSConfig{CABundle: ca.pem}, "", "client=none"},
		{"a name the certificate does not hold", strings.Replace(plain.url, "127.0.0.1", "localhost", 1),
			&store.TLSConfig{CABundle: ca.pem}, "", CodeUpstreamTLS},
		{"mTLS without a client certificate, TLS 1.2", mutual12.url, &store.TLSConfig{CABundle: ca.pem}, "", CodeUpstreamTLS},
		{"mTLS with a certificate the upstream does not trust, TLS 1.2", mutual12.url,
			&store.TLSConfig{CABundle: ca.pem, ClientCert: strangerCert}, strangerKey, CodeUpstreamTLS},
		// TLS 1.3 servers refuse a client certificate after the handshake, by closing the
		// connection: indistinguishable from any other close before an answer.
		{"mTLS without a client certificate, TLS 1.3", mutual.url, &store.TLSConfig{CABundle: ca.pem}, "", CodeUpstreamUnreachable},
		{"mTLS with a certificate the upstream does not trust, TLS 1.3", mutual.url,
			&store.TLSConfig{CABundle: ca.pem, ClientCert: strangerCert}, strangerKey, CodeUpstreamUnreachable},
		{"mTLS over TLS 1.2", mutual12.url,
			&store.TLSConfig{CABundle: ca.pem, ClientCert: clientCert}, clientKey, "client=extapi-client"},
		{"mTLS with the client certificate and sealed key", mutual.url,
			&store.TLSConfig{CABundle: ca.pem, ClientCert: clientCert}, clientKey, "client=extapi-client"},
		{"a CA bundle that is no PEM", plain.url, &store.TLSConfig{CABundle: "not a certificate"}, "", CodeAPIConfigInvalid},
		{"a client key that does not match", mutual.url,
			&store.TLSConfig{CABundle: ca.pem, ClientCert: clientCert}, strangerKey, CodeAPIConfigInvalid},
	}
	for i, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			a := e.api(strings.Repeat("t", i+1), store.APIConfig{BaseURL: tc.base, AuthType: store.AuthBearer, TLS: tc.tls},
				func(a *store.ExternalAPI) {
					if tc.key != "" {
						a.APIConfig.TLS.ClientKey = e.sealAPI(a, "api_config.tls.client_key", tc.key)
					}
				})
			c := e.conn(a, func(c *store.Connection) { c.Credentials.AccessToken = e.sealConn(c, "credentials.access_token", "t") })
			n := plain.hits() + mutual.hits() + mutual12.hits()
			r := raw(t, e.addr, "GET /"+a.Slug+"/"+c.ID+"/x HTTP/1.1\r\nHost: p\r\n\r\n")
			if strings.HasPrefix(tc.wantBody, "client=") {
				if r.Status != 200 || string(r.Body) != tc.wantBody {
					t.Fatalf("response = %d %q; want 200 %q", r.Status, r.Body, tc.wantBody)
				}
				return
			}
			checkExtapiError(t, r, tc.wantBody)
			if got := plain.hits() + mutual.hits() + mutual12.hits(); got != n {
				t.Errorf("upstream handled %d requests; want none over an unverified connection", got-n)
			}
		})
	}
}
