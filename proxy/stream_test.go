package proxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/extapi/extapi/store"
)

// onlyReader hides everything but Read, so that net/http sends a body of unknown length chunked.
type onlyReader struct{ io.Reader }

// TestBodiesStream moves bodies of every framing and size class both ways and checks each
// byte arrives, framed as the proxy promises.
func TestBodiesStream(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n, err := strconv.Atoi(r.URL.Query().Get("send")); err == nil { // a download
			if r.URL.Query().Get("chunked") == "" {
				w.Header().Set("Content-Length", strconv.Itoa(n))
			}
			io.Copy(w, io.LimitReader(pattern(), int64(n)))
			return
		}
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		framing := "length"
		if len(r.TransferEncoding) > 0 {
			framing = "chunked"
		}
		fmt.Fprintf(w, "%d %s %s", n, hex.EncodeToString(h.Sum(nil)), framing)
	}))
	defer up.Close()
	e := sqliteEnv(t, Options{BufferLimit: 64 << 10, MaxRequestBody: 32 << 20})
	a := e.api("bulk", store.APIConfig{BaseURL: up.URL, AuthType: store.AuthBearer}, nil)
	c := e.conn(a, func(c *store.Connection) { c.Credentials.AccessToken = e.sealConn(c, "credentials.access_token", "t") })
	base := "http://" + e.addr + "/bulk/" + c.ID + "/"

	for _, tc := range []struct {
		desc    string
		size    int
		chunked bool
		framing string // as the upstream receives it
	}{
		{"small, with a length", 1000, false, "length"},
		{"small and chunked: buffered, sent with a length", 1000, true, "length"},
		{"large, with a length: streamed", 8 << 20, false, "length"},
		{"large and chunked: streamed chunked", 8 << 20, true, "chunked"},
		{"just above the buffer limit, chunked", 64<<10 + 1, true, "chunked"},
		{"at the buffer limit, chunked", 64 << 10, true, "length"},
	} {
		t.Run("upload "+tc.desc, func(t *testing.T) {
			want := sha256.Sum256(mustRead(io.LimitReader(pattern(), int64(tc.size))))
			var body io.Reader = bytes.NewReader(mustRead(io.LimitReader(pattern(), int64(tc.size)))) // a length
			if tc.chunked {
				body = onlyReader{body}
			}
			r := do(t, "PUT", base+"up", body, nil)
			if exp := fmt.Sprintf("%d %s %s", tc.size, hex.EncodeToString(want[:]), tc.framing); string(r.Body) != exp {
				t.Errorf("upstream got %q; want %q", r.Body, exp)
			}
		})
	}
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("download 16 MiB, chunked %v", chunked), func(t *testing.T) {
			url := base + "down?send=" + strconv.Itoa(16<<20)
			if chunked {
				url += "&chunked=1"
			}
			r := do(t, "GET", url, nil, nil)
			if r.Status != 200 || !bytes.Equal(r.Body, mustRead(io.LimitReader(pattern(), 16<<20))) {
				t.Errorf("download = %d, %d bytes; want 200 and the upstream's 16 MiB", r.Status, len(r.Body))
			}
		})
	}
	t.Run("over MaxRequestBody", func(t *testing.T) {
		// Refused on its Content-Length, once the first bytes are in, without reading the rest.
		r := raw(t, e.addr, "POST /bulk/"+c.ID+"/up HTTP/1.1\r\nHost: p\r\nContent-Length: "+strconv.Itoa(33<<20)+
			"\r\n\r\n"+string(mustRead(io.LimitReader(pattern(), 16<<10))))
		checkExtapiError(t, r, CodeRequestTooLarge)
		r = do(t, "POST", base+"up", onlyReader{io.LimitReader(pattern(), 33<<20)}, nil)
		checkExtapiError(t, r, CodeRequestTooLarge)
	})
}

func pattern() io.Reader {
	return &repeat{b: []byte(strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyz", 113))}
}

// repeat reads b over and over (an odd length, so that chunk boundaries move).
type repeat struct {
	b []byte
	i int
}

func (r *repeat) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.b[r.i:])
		n += c
		r.i = (r.i + c) % len(r.b)
	}
	return n, nil
}

func mustRead(r io.Reader) []byte {
	b, err := io.ReadAll(r)
	if err != nil {
		panic(err)
	}
	return b
}
