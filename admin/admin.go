// Package admin serves extapi's management API: API configurations, connections, audit trail,
// admin tokens, the OpenAPI document, and the health endpoints, on the admin listener.
//
// Secrets are write-only. They arrive in plaintext, are sealed with the Sealer before anything is
// written, and every response shows them only as {"set": true|false}. No response, log line,
// audit event or error message carries a plaintext secret or its ciphertext.
package admin

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/extapi/extapi/store"
)

// Checker reports whether a dependency (the database, Redis) answers.
type Checker interface {
	Ping(ctx context.Context) error
}

// DefaultTokenCacheTTL is how long a verified stored token is trusted without a lookup.
const DefaultTokenCacheTTL = 5 * time.Second

// Options wire the admin server.
type Options struct {
	// Ready lists the dependencies /readyz checks, by name.
	Ready map[string]Checker
	// Draining, when set and true, makes /readyz answer 503 "draining" without checking
	// anything: the process is shutting down and load balancers should stop sending to it.
	Draining func() bool
	// Log receives one line per request (method, route, status, actor; never a body). Nil: discarded.
	Log *slog.Logger
	// Store holds the APIs, connections, audit trail and tokens. Required for the /admin routes;
	// without it (or without Sealer) they answer 503.
	Store *store.Store
	// Sealer seals secrets before they are written. Required for the /admin routes.
	Sealer Sealer
	// AdminToken is the bootstrap token (EXTAPI_ADMIN_TOKEN): role admin, every tenant, audit
	// actor "bootstrap". Empty: only stored tokens are accepted.
	AdminToken string
	// TokenCacheTTL is how long a verified stored token is cached. DefaultTokenCacheTTL (5s) is
	// used if zero; negative turns the cache off.
	TokenCacheTTL time.Duration
	// Now is the clock (tests set it). time.Now is used if nil.
	Now func() time.Time
	// OAuth1 runs the OAuth 1.0a connect flow (an *oauth.OAuth1Connector). Nil: its routes answer 503.
	OAuth1 OAuth1Flow
	// OAuth2 runs the OAuth 2.0 connect flow (an *oauth.Connector) and Refresher forces token
	// refreshes (an *oauth.Refresher). Nil: their routes answer 503.
	OAuth2    OAuth2Flow
	Refresher TokenRefresher
}

// Server is the admin listener's handler.
type Server struct {
	opts      Options
	log       *slog.Logger
	store     *store.Store
	sealer    Sealer
	bootstrap *[sha256.Size]byte
	tokens    tokenCache
	now       func() time.Time
	mux       *http.ServeMux
}

// New builds the admin handler.
func New(opts Options) *Server {
	s := &Server{opts: opts, log: opts.Log, store: opts.Store, sealer: opts.Sealer, now: opts.Now, mux: http.NewServeMux()}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if opts.AdminToken != "" {
		sum := sha256.Sum256([]byte(opts.AdminToken))
		s.bootstrap = &sum
	}
	s.tokens.ttl = opts.TokenCacheTTL
	if s.tokens.ttl == 0 {
		s.tokens.ttl = DefaultTokenCacheTTL
	}
	for _, rt := range routeTable {
		s.mux.Handle(rt.method+" "+rt.path, s.handler(rt))
	}
	return s
}

// ServeHTTP implements http.Handler. Requests no route matches get a JSON 404 or 405 too.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := s.mux.Handler(r); pattern != "" {
		s.mux.ServeHTTP(w, r)
		return
	}
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodDelete, http.MethodPut} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "" {
			allowed = append(allowed, m)
		}
	}
	err := errNoRoute
	if len(allowed) > 0 {
		err = errMethod
		for _, m := range allowed {
			w.Header().Add("Allow", m)
		}
	}
	s.writeError(w, r, err)
}

// route is one entry of the route table: what New registers and what the OpenAPI document must
// describe (a test holds the two together).
type route struct {
	method, path string
	role         role // the least role the token needs; rolePublic: no token
	handle       func(s *Server, w http.ResponseWriter, r *http.Request, who *principal) error
}

// handler runs one route: authenticate → authorize → handle → respond with the error if any →
// log.
func (s *Server) handler(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.now()
		rec := &statusRecorder{ResponseWriter: w}
		var who *principal
		err := func() (err error) {
			defer func() {
				if v := recover(); v != nil {
					err = fmt.Errorf("admin: panic in %s %s: %v\n%s", rt.method, rt.path, v, debug.Stack())
				}
			}()
			if rt.role != rolePublic {
				if s.store == nil || s.sealer == nil {
					return errUnavailable
				}
				if who, err = s.authenticate(r); err != nil {
					return err
				}
				if who.role < rt.role {
					return withMessage(errForbidden, fmt.Sprintf("this route needs role %s; the token has role %s", rt.role, who.role))
				}
			}
			return rt.handle(s, rec, r, who)
		}()
		attrs := []any{"method", r.Method, "route", rt.path}
		if err != nil {
			attrs = append(attrs, "error", s.writeError(rec, r, err))
		}
		attrs = append(attrs, "status", rec.status, "duration_ms", float64(s.now().Sub(start).Microseconds())/1000)
		if who != nil {
			attrs = append(attrs, "actor", who.name)
		}
		level := slog.LevelInfo
		if rt.path == "/healthz" || rt.path == "/readyz" {
			level = slog.LevelDebug // probes, every few seconds
		}
		s.log.Log(r.Context(), level, "admin request", attrs...)
	})
}

// writeError sends err in the one error shape and returns its code; internal errors are logged,
// not shown.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) string {
	status, body, internal := classify(err)
	if internal {
		s.log.Error("admin request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if rec, ok := w.(*statusRecorder); ok && rec.status != 0 {
		return body.Error.Code // the handler already answered
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="extapi-admin"`)
	}
	writeJSON(w, status, body)
	return body.Error.Code
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request, _ *principal) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request, _ *principal) error {
	if s.opts.Draining != nil && s.opts.Draining() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "draining"})
		return nil
	}
	// Every dependency at once, each within the 2 s: a slow one does not use up another's time.
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{}
	status := http.StatusOK
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, c := range s.opts.Ready {
		wg.Go(func() {
			err := c.Ping(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				checks[name] = "unreachable"
				status = http.StatusServiceUnavailable
				s.log.Warn("readiness check failed", "dependency", name, "err", err)
				return
			}
			checks[name] = "ok"
		})
	}
	wg.Wait()
	word := "ok"
	if status != http.StatusOK {
		word = "unavailable"
	}
	writeJSON(w, status, map[string]any{"status": word, "checks": checks})
	return nil
}

//go:embed openapi.json
var openAPI []byte

func (s *Server) openapi(w http.ResponseWriter, r *http.Request, _ *principal) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, err := w.Write(openAPI)
	return err
}

// writePage answers one page of a list route: the items under key, each shown by show, with the
// total count and the page's limit and offset.
func writePage[T, O any](w http.ResponseWriter, key string, items []T, total int64, limit, offset int, show func(*T) O) {
	out := make([]O, len(items))
	for i := range items {
		out[i] = show(&items[i])
	}
	writeJSON(w, http.StatusOK, map[string]any{key: out, "count": total, "limit": limit, "offset": offset})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
