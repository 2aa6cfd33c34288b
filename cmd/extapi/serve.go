package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/extapi/extapi/config"
)

func runServe(e env, args []string) int {
	fs := newFlagSet(e, "serve", "Run the gateway: the proxy listener (EXTAPI_PROXY_ADDR) and the admin listener\n"+
		"(EXTAPI_ADMIN_ADDR). With no settings at all it runs in development mode on an SQLite file.\n"+
		"SIGTERM or SIGINT stops it gracefully.\n\n"+settingsDoc())
	if code, done := parse(fs, args); done {
		return code
	}
	cfg, err := loadConfig(e)
	if err != nil {
		return exitConfig
	}
	log := newLogger(cfg, e.stderr)
	// The first SIGTERM or SIGINT starts the shutdown; a second one ends EXTAPI_SHUTDOWN_DELAY
	// early (the graceful drain that follows still runs).
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	ctx, cancel := context.WithCancel(context.Background())
	hurry, finished := make(chan struct{}), make(chan struct{})
	defer close(finished)
	go func() {
		select {
		case <-sigs:
		case <-finished:
			return
		}
		cancel()
		select {
		case <-sigs:
			close(hurry)
			signal.Stop(sigs) // a third signal kills the process, as with no handler at all
		case <-finished:
		}
	}()
	// The access log (a line per request) is buffered: one write per 64 KiB of lines, at most
	// 200 ms behind, instead of a write per request. Other log lines go out at once.
	access := newLineBuffer(e.stderr, accessLogBuffer, accessLogFlush)
	return serveWith(ctx, hurry, cfg, log, access, e)
}

// serve runs until ctx is done, then shuts down (see serveWith); nothing ends the delay early.
// The access lines go to log, unbuffered.
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger, e env) int {
	return serveWith(ctx, nil, cfg, log, nil, e)
}

// serveWith runs until ctx is done. Then /readyz answers 503 "draining" while the listeners
// keep serving for cfg.ShutdownDelay (or until hurry closes), and the graceful shutdown follows
// within cfg.ShutdownTimeout. With access set, the access lines go through it (log's format and
// level), and it is closed once the listeners have stopped; else they go to log.
func serveWith(ctx context.Context, hurry <-chan struct{}, cfg *config.Config, log *slog.Logger, access *lineBuffer, e env) int {
	if access != nil {
		defer access.Close()
	}
	a, err := newApp(ctx, cfg, log)
	if err != nil {
		return fail(e, log, err)
	}
	if access != nil {
		a.accessLog = newLogger(cfg, access)
	}
	if err := a.start(); err != nil {
		a.shutdown(context.Background())
		return fail(e, log, err)
	}
	<-ctx.Done()
	a.draining.Store(true)
	if d := cfg.ShutdownDelay; d > 0 {
		log.Info("draining: /readyz answers 503 while the listeners keep serving", "delay", d.String())
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-hurry:
			t.Stop()
			log.Info("second signal: ending the drain delay early")
		}
	}
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	err = a.shutdown(sctx)
	if access != nil {
		access.Close() // the last access lines before "stopped"
	}
	if err != nil {
		log.Error("shutdown", "err", err)
		return exitFail
	}
	log.Info("stopped")
	return exitOK
}

func fail(e env, log *slog.Logger, err error) int {
	log.Error("extapi cannot start", "err", err)
	fmt.Fprintf(e.stderr, "extapi: %v\n", err)
	if errors.Is(err, errConfig) {
		return exitConfig
	}
	return exitFail
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	switch strings.ToLower(cfg.LogLevel) {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
