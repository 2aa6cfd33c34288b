package main

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/extapi/extapi/proxy"
	"github.com/extapi/extapi/ratelimit"
	"github.com/extapi/extapi/store"
	"github.com/extapi/extapi/vault"
)

// The concrete types wired into the proxy implement its interfaces.
var (
	_ proxy.Store   = (*store.Store)(nil)
	_ proxy.Opener  = (*vault.Keyring)(nil)
	_ proxy.Limiter = (*ratelimit.Limiter)(nil)
)

// startProxy builds the proxy handler, subscribes it to change notifications and serves the
// proxy listener (EXTAPI_PROXY_ADDR) in the background.
func (a *app) startProxy() error {
	lim, err := a.rateLimiter()
	if err != nil {
		return err
	}
	h, err := proxy.New(proxy.Options{
		Store:    a.store,
		Opener:   a.keyring,
		Limiter:  lim,
		Log:      a.log,
		CacheTTL: a.cfg.CacheTTL,

		DefaultTimeout:  a.cfg.UpstreamTimeout,
		MaxRequestBody:  int(a.cfg.MaxRequestBody),
		BufferLimit:     int(a.cfg.BufferLimit),
		MaxConnsPerHost: a.cfg.MaxConnsPerHost,

		TokenSource: a.tokenSource(),

		Metrics:        a.metrics.m,
		AccessLogEvery: a.cfg.AccessLogEvery(),
		AccessLog:      a.accessLog,
	})
	if err != nil {
		return err
	}
	if err := h.Start(); err != nil {
		return err
	}
	a.proxy = h
	ln, err := net.Listen("tcp", a.cfg.ProxyAddr)
	if err != nil {
		return fmt.Errorf("proxy listener on %s: %w", a.cfg.ProxyAddr, err)
	}
	a.proxyLn, a.proxySrv = ln, proxy.NewServer(h)
	go func() {
		if err := a.proxySrv.Serve(ln); err != nil {
			a.log.Error("proxy listener stopped", "err", err)
		}
	}()
	a.log.Info("proxy listener up", "addr", ln.Addr().String())
	return nil
}

// rateLimiter is shared through Redis when EXTAPI_REDIS_URL is set, in-process otherwise.
func (a *app) rateLimiter() (*ratelimit.Limiter, error) {
	opts := ratelimit.Options{Timeout: a.cfg.RedisTimeout, Log: a.log, OnFallback: a.metrics.m.RateLimitFallback}
	if a.cfg.RedisURL == "" {
		return ratelimit.NewLocal(opts), nil
	}
	rc, err := a.redisClient() // shared with the OAuth 2.0 refresh lock
	if err != nil {
		return nil, err
	}
	return ratelimit.NewRedis(rc, opts), nil
}

// stopProxy stops accepting proxy requests, waits for those in flight until ctx is done, and
// writes the last last_used_at batch.
func (a *app) stopProxy(ctx context.Context) error {
	var errs []error
	if a.proxySrv != nil {
		if err := a.proxySrv.ShutdownWithContext(ctx); err != nil {
			errs = append(errs, fmt.Errorf("proxy listener: %w", err))
		}
	}
	if a.proxy != nil {
		if err := a.proxy.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("proxy: %w", err))
		}
	}
	if a.redis != nil {
		if err := a.redis.Close(); err != nil {
			errs = append(errs, fmt.Errorf("redis: %w", err))
		}
	}
	return errors.Join(errs...)
}
