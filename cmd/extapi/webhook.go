package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/extapi/extapi/metrics"
	"github.com/extapi/extapi/store"
	"github.com/extapi/extapi/vault"
	"github.com/extapi/extapi/webhook"
)

// The concrete types wired into the webhook listener implement its interfaces.
var (
	_ webhook.Store  = (*store.Store)(nil)
	_ webhook.Opener = (*vault.Keyring)(nil)
)

// webhookParts is the inbound webhook side of one process: the public listener and the
// deliverer that sends stored events to the internal forward URLs.
type webhookParts struct {
	srv  *http.Server
	stop context.CancelFunc
	done chan struct{}
}

// startWebhooks serves the webhook listener (EXTAPI_WEBHOOK_ADDR) and runs the deliverer. Off
// when the address is empty.
func (a *app) startWebhooks() error {
	if a.cfg.WebhookAddr == "" {
		return nil
	}
	m := metrics.NewWebhook(a.metrics.reg) // exposed on the admin listener's /metrics
	// The deliverer's Run also runs the retention pass (webhook.Deliverer.Purge) at start and
	// hourly, with the defaults: payloads of delivered events kept 7 days, of dead ones 30;
	// rows of timestamp-verified schemes then deleted, the others kept as tombstones (the replay
	// guard). See README "Inbound webhooks".
	d := webhook.NewDeliverer(webhook.DelivererOptions{Store: a.store, Opener: a.keyring, Metrics: m, Log: a.log})
	h := webhook.NewHandler(webhook.Options{Store: a.store, Opener: a.keyring, Metrics: m, Log: a.log, Notify: d.Notify,
		MaxBodyBytes: a.cfg.WebhookMaxBody})
	ln, err := net.Listen("tcp", a.cfg.WebhookAddr)
	if err != nil {
		return fmt.Errorf("webhook listener on %s: %w", a.cfg.WebhookAddr, err)
	}
	ctx, stop := context.WithCancel(context.Background())
	w := &webhookParts{stop: stop, done: make(chan struct{})}
	w.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	go func() {
		defer close(w.done)
		d.Run(ctx)
	}()
	go func() {
		if err := w.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("webhook listener stopped", "err", err)
		}
	}()
	a.webhooks = w
	a.log.Info("webhook listener up", "addr", ln.Addr().String())
	return nil
}

// stopWebhooks stops accepting, lets requests in flight finish (so what was acknowledged is
// stored), then stops the deliverer once its attempts in flight are recorded.
func (a *app) stopWebhooks(ctx context.Context) error {
	w := a.webhooks
	if w == nil {
		return nil
	}
	err := w.srv.Shutdown(ctx)
	w.stop()
	select {
	case <-w.done:
	case <-ctx.Done():
	}
	if err != nil {
		return fmt.Errorf("webhook listener: %w", err)
	}
	return nil
}
