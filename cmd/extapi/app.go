package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/valyala/fasthttp"

	"github.com/extapi/extapi/admin"
	"github.com/extapi/extapi/config"
	"github.com/extapi/extapi/oauth"
	"github.com/extapi/extapi/proxy"
	"github.com/extapi/extapi/store"
	"github.com/extapi/extapi/vault"
)

// app is one running extapi process: its configuration and the concrete types wired together.
type app struct {
	cfg        *config.Config
	log        *slog.Logger
	accessLog  *slog.Logger // the proxy's access lines; nil: log
	store      *store.Store
	keyring    *vault.Keyring
	adminToken string

	adminLn  net.Listener
	adminSrv *http.Server

	proxy    *proxy.Handler
	proxyLn  net.Listener
	proxySrv *fasthttp.Server
	redis    redis.UniversalClient // nil without EXTAPI_REDIS_URL

	oauth2      oauth2Parts
	oauth2Ticks <-chan time.Time // replaces the background refresher's ticker (tests); nil: every minute

	metrics       metricsParts  // /metrics on the admin listener
	statsInterval time.Duration // of extapi_connections and dropping deleted APIs' series; 0: connectionsInterval

	webhooks *webhookParts // nil without EXTAPI_WEBHOOK_ADDR

	// draining is set when the shutdown starts: /readyz answers 503 from then on.
	draining atomic.Bool
}

// newApp opens the database, migrates it (unless disabled), builds the keyring and checks the
// keys against the stored key check values. It binds no listener.
func newApp(ctx context.Context, cfg *config.Config, log *slog.Logger) (*app, error) {
	a := &app{cfg: cfg, log: log, adminToken: cfg.AdminToken}
	s, err := store.Open(ctx, cfg.DatabaseURL, store.Options{})
	if err != nil {
		return nil, err
	}
	a.store = s
	if err := a.prepareSchema(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := a.openKeyring(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return a, nil
}

func (a *app) prepareSchema(ctx context.Context) error {
	if !a.cfg.AutoMigrate {
		return nil
	}
	res, err := a.store.Migrate(ctx)
	if err != nil {
		return err
	}
	if len(res.Applied) > 0 {
		a.log.Info("database migrated", "applied", res.Applied, "version", res.Current)
	}
	return nil
}

// openKeyring builds the keyring from EXTAPI_ENCRYPTION_KEYS or, in SQLite dev mode, from a
// generated key file, then checks every configured version against its stored key check value.
func (a *app) openKeyring(ctx context.Context) error {
	keys, active := a.cfg.KeyMap(), a.cfg.ActiveKeyVersion()
	if a.cfg.DevMode() {
		k, err := devKey(a.cfg.DevDir, a.log)
		if err != nil {
			return err
		}
		keys, active = map[uint32][]byte{1: k}, 1
		if a.adminToken == "" {
			tok, err := devAdminToken(a.cfg.DevDir, a.log)
			if err != nil {
				return err
			}
			a.adminToken = tok
		}
	}
	kr, err := vault.New(keys, active)
	if err != nil {
		return fmt.Errorf("%w: EXTAPI_ENCRYPTION_KEYS: %v", errConfig, err)
	}
	stored, err := a.store.KeyFingerprints(ctx)
	if err != nil {
		return fmt.Errorf("read key check values: %w", err)
	}
	var problems []error
	for _, fp := range stored {
		if err := kr.CheckFingerprint(uint32(fp.Version), fp.Fingerprint); err != nil {
			problems = append(problems, err)
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: EXTAPI_ENCRYPTION_KEYS: %w (the database's secrets were sealed with a different key under the same version)",
			errConfig, errors.Join(problems...))
	}
	for _, v := range kr.Versions() {
		fp, _ := kr.Fingerprint(v)
		if err := a.store.RecordKeyFingerprint(ctx, v, fp); err != nil {
			return err
		}
	}
	a.keyring = kr
	return nil
}

// start binds the listeners and serves in the background.
func (a *app) start() error {
	ready := map[string]admin.Checker{"database": a.store}
	if err := a.startMetrics(); err != nil {
		return err
	}
	if err := a.startOAuth2(); err != nil {
		return err
	}
	if a.cfg.RedisURL != "" {
		rc, err := a.redisClient()
		if err != nil {
			return err
		}
		ready["redis"] = redisPing{rc}
	}
	h := admin.New(admin.Options{Ready: ready, Draining: a.draining.Load, Log: a.log, Store: a.store, Sealer: a.keyring, AdminToken: a.adminToken,
		OAuth1: &oauth.OAuth1Connector{Store: a.store, Sealer: a.keyring},
		OAuth2: a.oauth2.connector, Refresher: a.oauth2.refresher})
	ln, err := net.Listen("tcp", a.cfg.AdminAddr)
	if err != nil {
		return fmt.Errorf("admin listener on %s: %w", a.cfg.AdminAddr, err)
	}
	a.adminLn = ln
	a.adminSrv = &http.Server{
		Handler:           a.withMetrics(h),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := a.adminSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("admin listener stopped", "err", err)
		}
	}()
	a.log.Info("admin listener up", "addr", ln.Addr().String())
	if err := a.startWebhooks(); err != nil {
		return err
	}
	return a.startProxy()
}

// shutdown stops accepting, lets in-flight requests finish until ctx is done, and closes the store.
func (a *app) shutdown(ctx context.Context) error {
	var errs []error
	if err := a.stopProxy(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := a.stopWebhooks(ctx); err != nil {
		errs = append(errs, err)
	}
	a.stopOAuth2()
	a.stopMetrics()
	if a.adminSrv != nil {
		if err := a.adminSrv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("admin listener: %w", err))
		}
	}
	if a.store != nil {
		if err := a.store.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

const devWarning = "DEVELOPMENT MODE: SQLite database with a generated encryption key and admin token. " +
	"Do not use this for real credentials: set EXTAPI_ENCRYPTION_KEYS (and EXTAPI_ADMIN_TOKEN) for anything else."

// devKey loads, or on first run generates, the dev encryption key file (mode 0600).
func devKey(dir string, log *slog.Logger) ([]byte, error) {
	path := filepath.Join(dir, "encryption.key")
	b, err := os.ReadFile(path)
	if err == nil {
		v, k, ok := strings.Cut(strings.TrimSpace(string(b)), ":")
		key, derr := base64.StdEncoding.DecodeString(k)
		if !ok || v != "1" || derr != nil || len(key) != 32 {
			return nil, fmt.Errorf("%w: dev key file %s is malformed (want 1:<base64 of 32 bytes>); delete it to start over with an empty database", errConfig, path)
		}
		log.Warn(devWarning, "key_file", path)
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read dev key file: %w", err)
	}
	key, err := vault.GenerateKey()
	if err != nil {
		return nil, err
	}
	if err := writeSecretFile(path, "1:"+base64.StdEncoding.EncodeToString(key)+"\n"); err != nil {
		return nil, err
	}
	log.Warn(devWarning+" Generated a new key.", "key_file", path)
	return key, nil
}

// devAdminToken loads or generates the dev admin token file (mode 0600). The token itself is
// never logged; the log line names the file to read it from.
func devAdminToken(dir string, log *slog.Logger) (string, error) {
	path := filepath.Join(dir, "admin.token")
	b, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(b))) >= 16 {
		log.Warn("DEVELOPMENT MODE: admin token read from file", "token_file", path)
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read dev admin token: %w", err)
	}
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	tok := "dev_" + base64.RawURLEncoding.EncodeToString(raw[:])
	if err := writeSecretFile(path, tok+"\n"); err != nil {
		return "", err
	}
	log.Warn("DEVELOPMENT MODE: generated an admin token; use it as Authorization: Bearer $(cat "+path+")", "token_file", path)
	return tok, nil
}

func writeSecretFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
