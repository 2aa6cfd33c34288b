package oauth_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"golang.org/x/oauth2"

	"github.com/extapi/extapi/oauth"
	"github.com/extapi/extapi/oauth/oauth2test"
	"github.com/extapi/extapi/store"
	"github.com/extapi/extapi/store/storetest"
)

// logBuffer is a slog destination tests can read.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *logBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// noSecrets fails when any of secrets appears in what (an error string, the logs).
func noSecrets(t *testing.T, desc, what string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(what, s) {
			t.Errorf("%s holds the secret %q:\n%s", desc, s, what)
		}
	}
}

// TestTokenEndpointErrorsRedacted: a token endpoint that answers 500 with a body quoting the
// request (the client secret, the refresh token, the code) must leave none of it in the errors
// handed out nor in the logs; errors.As still reaches the *oauth2.RetrieveError and its code.
func TestTokenEndpointErrorsRedacted(t *testing.T) {
	f := newFixture(t, storetest.PostgresURL(t), oauth2test.Options{ClientID: "client", ClientSecret: "cs-" + randomHex(12)})
	var logs logBuffer
	in := f.instance(false, func(o *oauth.RefresherOptions) { o.Log = logs.logger() })
	api := f.api(func(o *store.OAuth2Config) { o.TokenAuthMethod = oauth.AuthClientSecretPost })
	c, _, refresh := f.expiredConn(api)
	secrets := []string{f.srv.ClientSecret(), refresh}

	f.srv.FailNextEcho(1, http.StatusInternalServerError)
	_, err := in.r.Token(testCtx(t), api, c)
	if !errors.Is(err, oauth.ErrRefreshFailed) {
		t.Fatalf("Token(endpoint 500) = %v; want ErrRefreshFailed", err)
	}
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "server_error" || !strings.Contains(string(re.Body), refresh) {
		t.Fatalf("errors.As(RetrieveError) = %v; want the provider's answer (which echoes the refresh token) reachable", re)
	}
	if want := "token endpoint answered 500 (error=server_error)"; !strings.Contains(err.Error(), want) {
		t.Errorf("Token() error = %q; want it to say %q", err, want)
	}
	noSecrets(t, "the refresh error", err.Error()+fmt.Sprintf(" %v %+v", err, err), secrets...)
	// Backing off: the error names the failure it waits out.
	_, err = in.r.Token(testCtx(t), api, c)
	if re := refreshErr(err); re == nil || re.RetryAfter <= 0 {
		t.Fatalf("Token(backing off) = %v; want a RefreshError with RetryAfter", err)
	}
	noSecrets(t, "the backoff error", err.Error(), secrets...)

	// Client credentials: the same.
	cc := f.api(func(o *store.OAuth2Config) {
		o.GrantType, o.TokenAuthMethod, o.AuthorizationURL = oauth.GrantClientCredentials, oauth.AuthClientSecretBasic, ""
	})
	f.srv.FailNextEcho(1, http.StatusBadGateway)
	_, err = in.r.Token(testCtx(t), cc, nil)
	if !errors.Is(err, oauth.ErrRefreshFailed) || !errors.As(err, &re) {
		t.Fatalf("Token(client credentials, endpoint 502) = %v; want ErrRefreshFailed with the RetrieveError", err)
	}
	noSecrets(t, "the client-credentials error", err.Error(), secrets...)

	// The code exchange of the connect flow.
	conn := f.connector()
	authURL, err := conn.Authorize(testCtx(t), api, oauth.AuthorizeParams{})
	if err != nil {
		t.Fatal(err)
	}
	back := consent(t, authURL, api.APIConfig.OAuth2.RedirectURI)
	f.srv.FailNextEcho(1, http.StatusInternalServerError)
	_, err = conn.Callback(testCtx(t), api.ID, callback(back))
	var ee *oauth.ExchangeError
	if !errors.As(err, &ee) || !errors.As(err, &re) || ee.Code != "server_error" {
		t.Fatalf("Callback(exchange 500) = %v; want an ExchangeError reaching the RetrieveError", err)
	}
	noSecrets(t, "the exchange error", err.Error(), append(secrets, back.Get("code"))...)

	if !strings.Contains(logs.String(), "token refresh failed") {
		t.Fatalf("logs = %s; want the failed refresh logged", logs.String())
	}
	noSecrets(t, "the logs", logs.String(), secrets...)
}

// TestOAuth1ProviderErrorsRedacted: what an OAuth 1.0a endpoint answers (its body, an
// oauth_problem_advice echoing the request, a body that does not parse) is not in the error.
func TestOAuth1ProviderErrorsRedacted(t *testing.T) {
	const secret = "consumer-secret-s3cr3t"
	answers := []struct {
		desc, body string
		status     int
	}{
		{"refusal with advice", "oauth_problem=signature_invalid&oauth_problem_advice=expected+key+" + secret, 401},
		{"refusal with a problem that is not a code", "oauth_problem=" + secret + "%20%3Cb%3E", 400},
		{"5xx", "internal error at " + secret, 503},
		{"2xx that does not parse", "oauth_token=t&%zz" + secret + "%;" + secret, 200},
		{"2xx without a token", "oauth_token_secret=" + secret, 200},
	}
	for _, a := range answers {
		t.Run(a.desc, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/x-www-form-urlencoded")
				w.WriteHeader(a.status)
				_, _ = w.Write([]byte(a.body))
			}))
			defer srv.Close()
			cl := &oauth.OAuth1Client{}
			creds := oauth.OAuth1Credentials{ConsumerKey: "ck", ConsumerSecret: secret, Token: "t", TokenSecret: secret}
			_, err := cl.AccessToken(testCtx(t), srv.URL, creds, "verifier")
			var pe *oauth.OAuth1ProviderError
			if !errors.As(err, &pe) || !errors.Is(err, oauth.ErrOAuth1Provider) {
				t.Fatalf("AccessToken() = %v; want an OAuth1ProviderError", err)
			}
			noSecrets(t, "the OAuth 1.0a error", err.Error(), secret)
		})
	}
}
