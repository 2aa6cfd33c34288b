// Package admin serves extapi's management API: API configurations, connections, audit trail,
// and the health endpoints, on the admin listener.
package admin

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"
)

// Checker reports whether a dependency (the database, Redis) answers.
type Checker interface {
	Ping(ctx context.Context) error
}

// Options wire the admin server.
type Options struct {
	// Ready lists the dependencies /readyz checks, by name.
	Ready map[string]Checker
	Log   *slog.Logger
}

// Server is the admin listener's handler.
type Server struct {
	opts Options
	mux  *http.ServeMux
}

// New builds the admin handler.
func New(opts Options) *Server {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: opts, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{}
	status := http.StatusOK
	for name, c := range s.opts.Ready {
		if err := c.Ping(ctx); err != nil {
			checks[name] = "unreachable"
			status = http.StatusServiceUnavailable
			s.opts.Log.Warn("readiness check failed", "dependency", name, "err", err)
			continue
		}
		checks[name] = "ok"
	}
	word := "ok"
	if status != http.StatusOK {
		word = "unavailable"
	}
	writeJSON(w, status, map[string]any{"status": word, "checks": checks})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
