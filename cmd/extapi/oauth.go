package main

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/extapi/extapi/admin"
	"github.com/extapi/extapi/oauth"
	"github.com/extapi/extapi/proxy"
	"github.com/extapi/extapi/store"
	"github.com/extapi/extapi/vault"
)

// The concrete types wired into OAuth 2.0 implement the interfaces its users declare.
var (
	_ oauth.ConnectionStore = (*store.Store)(nil)
	_ oauth.StateStore      = (*store.Store)(nil)
	_ oauth.Sealer          = (*vault.Keyring)(nil)
	_ oauth.RedisClient     = (redis.UniversalClient)(nil)
	_ proxy.TokenSource     = (*oauth.Refresher)(nil)
	_ admin.OAuth2Flow      = (*oauth.Connector)(nil)
	_ admin.TokenRefresher  = (*oauth.Refresher)(nil)
)

// oauth2Parts is the OAuth 2.0 side of one process: a Refresher shared by the proxy (in-line and
// on-401 refreshes), the admin refresh route and the background refresher, so that in-process
// single-flight covers all three; the Connector of the admin connect flow; the background loop.
type oauth2Parts struct {
	refresher *oauth.Refresher
	connector *oauth.Connector
	stop      context.CancelFunc
	done      chan struct{}
}

// startOAuth2 builds the OAuth 2.0 parts and starts the background refresher. With
// EXTAPI_REDIS_URL refreshes take a lock in Redis, so one instance of the fleet refreshes a
// connection at a time; without it (the embedded SQLite default, one instance) the lock is
// in-process only.
func (a *app) startOAuth2() error {
	var locker oauth.Locker
	if a.cfg.RedisURL != "" {
		rc, err := a.redisClient()
		if err != nil {
			return err
		}
		locker = oauth.NewRedisLocker(rc, oauth.RedisLockerOptions{Log: a.log})
	} else {
		locker = oauth.NewLocalLocker()
		a.log.Info("OAuth 2.0 token refreshes are serialized within this process only (no EXTAPI_REDIS_URL); run a single instance")
	}
	r := oauth.NewRefresher(oauth.RefresherOptions{Store: a.store, Sealer: a.keyring, Locker: locker, Log: a.log,
		Observe: refreshObserver(a.metrics.m), Skew: a.cfg.RefreshSkew})
	c := oauth.NewConnector(oauth.ConnectorOptions{Store: a.store, Sealer: a.keyring})
	bg := oauth.NewBackground(oauth.BackgroundOptions{Refresher: r, Connector: c, OAuth1: &oauth.OAuth1Connector{Store: a.store, Sealer: a.keyring},
		Horizon: a.cfg.RefreshHorizon, Ticks: a.oauth2Ticks, Log: a.log})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		bg.Run(ctx)
	}()
	a.oauth2 = oauth2Parts{refresher: r, connector: c, stop: stop, done: done}
	return nil
}

// tokenSource is the proxy's TokenSource: nil (oauth2 routes unsupported) before startOAuth2.
func (a *app) tokenSource() proxy.TokenSource {
	if a.oauth2.refresher == nil {
		return nil
	}
	return a.oauth2.refresher
}

// stopOAuth2 stops the background refresher and waits for its pass in progress.
func (a *app) stopOAuth2() {
	if a.oauth2.stop == nil {
		return
	}
	a.oauth2.stop()
	<-a.oauth2.done
}

// redisClient is the process's one Redis client (rate limits, refresh locks), made on first use:
// one server, Sentinel or Cluster, as EXTAPI_REDIS_URL says (newRedisClient).
func (a *app) redisClient() (redis.UniversalClient, error) {
	if a.redis != nil {
		return a.redis, nil
	}
	c, err := newRedisClient(a.cfg.RedisURL)
	if err != nil {
		return nil, err
	}
	a.redis = c
	return a.redis, nil
}
