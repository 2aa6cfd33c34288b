package oauth_test

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/extapi/extapi/oauth"
)

// encodedRE is what §3.6 output may contain: unreserved characters and %XX with upper-case hex.
var encodedRE = regexp.MustCompile(`^(?:[A-Za-z0-9._~-]|%[0-9A-F]{2})*$`)

// refEncode is a second, deliberately naive §3.6 encoder.
func refEncode(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// refNormalize is §3.4.1.3 written the obvious way on top of net/url's form decoding.
func refNormalize(query, form string) (string, error) {
	type pair struct{ k, v string }
	var ps []pair
	for _, src := range []string{query, form} {
		for _, seg := range strings.Split(src, "&") {
			if seg == "" {
				continue
			}
			k, v, _ := strings.Cut(seg, "=")
			dk, err := url.QueryUnescape(k)
			if err != nil {
				return "", err
			}
			dv, err := url.QueryUnescape(v)
			if err != nil {
				return "", err
			}
			if dk == "oauth_signature" {
				continue
			}
			ps = append(ps, pair{refEncode(dk), refEncode(dv)})
		}
	}
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].k != ps[j].k {
			return ps[i].k < ps[j].k
		}
		return ps[i].v < ps[j].v
	})
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.k + "=" + p.v
	}
	return strings.Join(out, "&"), nil
}

func FuzzPercentEncode(f *testing.F) {
	for _, s := range []string{"", "r b", "a+b*c~d%e", "åé€", "\x00\xff", "%3D%253D"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := oauth.PercentEncode(s)
		if !encodedRE.MatchString(got) {
			t.Fatalf("PercentEncode(%q) = %q; want only unreserved characters and %%XX", s, got)
		}
		if want := refEncode(s); got != want {
			t.Fatalf("PercentEncode(%q) = %q; want %q", s, got, want)
		}
		if back, err := url.PathUnescape(got); err != nil || back != s {
			t.Fatalf("PathUnescape(PercentEncode(%q)) = %q, %v; want the input", s, back, err)
		}
	})
}

// FuzzOAuth1Params feeds arbitrary URLs and form bodies through parameter normalisation and
// signing: nothing panics, the output is always well-formed, it agrees with refNormalize, and the
// signature in the header is the HMAC of the base string.
func FuzzOAuth1Params(f *testing.F) {
	f.Add("POST", "http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b", []byte("c2&a3=2+q"))
	f.Add("GET", "http://photos.example.net/photos?file=vacation.jpg&size=original", []byte(nil))
	f.Add("get", "HTTPS://User@[::1]:443/p%20a?x=+&&y#frag", []byte("=&oauth_signature=1"))
	f.Add("PUT", "http://h:0/?%zz", []byte("a=%"))
	f.Fuzz(func(t *testing.T, method, rawURL string, form []byte) {
		protocol := []oauth.OAuth1Param{{Name: "oauth_consumer_key", Value: "ck"}, {Name: "oauth_nonce", Value: method}}
		norm, err := oauth.OAuth1NormalizedParams(rawURL, form, protocol)
		uri, uerr := oauth.OAuth1BaseStringURI(rawURL)
		if uerr != nil {
			if !errors.Is(uerr, oauth.ErrRequestURL) {
				t.Fatalf("OAuth1BaseStringURI(%q) error = %v; want ErrRequestURL", rawURL, uerr)
			}
			if !errors.Is(err, oauth.ErrRequestURL) {
				t.Fatalf("OAuth1NormalizedParams(%q) error = %v; want ErrRequestURL", rawURL, err)
			}
			return
		}
		if !strings.HasPrefix(uri, "http://") && !strings.HasPrefix(uri, "https://") || strings.ContainsAny(uri, "?#") {
			t.Fatalf("OAuth1BaseStringURI(%q) = %q; want http(s)://… without query or fragment", rawURL, uri)
		}
		// The query is what follows the first '?' after the scheme, up to a fragment.
		query := ""
		if _, rest, ok := strings.Cut(rawURL, "://"); ok {
			rest, _, _ = strings.Cut(rest, "#")
			_, query, _ = strings.Cut(rest, "?")
		}
		ref, rerr := refNormalize(query, string(form)+"&oauth_consumer_key=ck&oauth_nonce="+url.QueryEscape(method))
		if (err == nil) != (rerr == nil) {
			t.Fatalf("OAuth1NormalizedParams(%q, %q) error = %v; reference error = %v", rawURL, form, err, rerr)
		}
		if err != nil {
			if !errors.Is(err, oauth.ErrParameterEncoding) {
				t.Fatalf("OAuth1NormalizedParams() error = %v; want ErrParameterEncoding", err)
			}
			return
		}
		if norm != ref {
			t.Fatalf("OAuth1NormalizedParams(%q, %q) =\n%q\nreference\n%q", rawURL, form, norm, ref)
		}
		for _, p := range strings.Split(norm, "&") {
			k, v, ok := strings.Cut(p, "=")
			if !ok || !encodedRE.MatchString(k) || !encodedRE.MatchString(v) {
				t.Fatalf("normalized pair %q is not name=value of encoded characters", p)
			}
		}

		base, err := oauth.OAuth1BaseString(method, rawURL, form, protocol)
		if err != nil {
			t.Fatalf("OAuth1BaseString() error = %v after OAuth1NormalizedParams succeeded", err)
		}
		if want := upperASCII(method) + "&" + refEncode(uri) + "&" + refEncode(norm); base != want {
			t.Fatalf("OAuth1BaseString() =\n%q\nwant\n%q", base, want)
		}

		s := &oauth.OAuth1Signer{Nonce: func() string { return method }}
		creds := oauth.OAuth1Credentials{ConsumerKey: "ck", ConsumerSecret: string(form), TokenSecret: rawURL}
		h, err := s.Authorization(method, rawURL, form, creds)
		if err != nil {
			t.Fatalf("Authorization() error = %v", err)
		}
		cb := oauth.OAuth1CredentialBytes{ConsumerKey: []byte("ck"), ConsumerSecret: form, TokenSecret: []byte(rawURL)}
		s.Now = func() time.Time { return time.Unix(1700000000, 0) }
		h, err = s.Authorization(method, rawURL, form, creds)
		if err != nil {
			t.Fatalf("Authorization() error = %v", err)
		}
		hb, err := s.AppendAuthorizationBytes(nil, []byte(method), []byte(rawURL), form, &cb)
		if err != nil || string(hb) != h {
			t.Fatalf("AppendAuthorizationBytes() = %q, %v; want %q as Authorization gives", hb, err, h)
		}
		sigBase, err := oauth.OAuth1BaseString(method, rawURL, form, []oauth.OAuth1Param{
			{Name: "oauth_consumer_key", Value: "ck"}, {Name: "oauth_signature_method", Value: "HMAC-SHA1"},
			{Name: "oauth_timestamp", Value: param(h, "oauth_timestamp")}, {Name: "oauth_nonce", Value: method},
			{Name: "oauth_version", Value: "1.0"}})
		if err != nil {
			t.Fatal(err)
		}
		mac := hmac.New(sha1.New, []byte(refEncode(string(form))+"&"+refEncode(rawURL)))
		mac.Write([]byte(sigBase))
		if want := refEncode(base64.StdEncoding.EncodeToString(mac.Sum(nil))); param(h, "oauth_signature") != want {
			t.Fatalf("Authorization() = %s; want oauth_signature=%q", h, want)
		}
	})
}

func upperASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// param returns the raw (still encoded) value of name in an Authorization header.
func param(h, name string) string {
	_, rest, ok := strings.Cut(h, " "+name+`="`)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, `"`)
	return v
}
