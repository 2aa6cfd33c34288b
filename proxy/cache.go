package proxy

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/sync/singleflight"

	"github.com/extapi/extapi/metrics"
	"github.com/extapi/extapi/providers"
	"github.com/extapi/extapi/ratelimit"
	"github.com/extapi/extapi/store"
)

// apiEntry is an API as the proxy uses it, built once when it is loaded.
type apiEntry struct {
	id, slug, status string
	row              *store.ExternalAPI // as read; its secrets still sealed
	base             baseURL
	client           *fasthttp.HostClient
	timeout          time.Duration
	retry            retryPolicy
	// headers are api_config.headers, canonical names; stripped from the caller's and set.
	headers [][2][]byte
	// baseRaw is base_url with the API's own placeholders resolved; baseTmpl is set when it
	// uses provider_data (base and client are then each route's), headerTmpls are the headers
	// that do (see template.go).
	baseRaw     string
	baseTmpl    *providers.URLTemplate
	headerTmpls []headerTemplate
	policy      *ratelimit.Policy // nil: unlimited
	reset       string            // rate_limit.reset_header
	// err, when set, is answered for every request of the API (its config is unusable).
	err     error
	expires time.Time
	// metrics is the API's handle (Metrics.API of its slug), resolved at load.
	metrics *metrics.APIMetrics
}

// connEntry is a route: a connection, its API and how to authenticate, as the cache holds it.
type connEntry struct {
	id, status string
	api        *apiEntry
	// base, client and headers are the API's, or resolved for this connection (bindUpstream).
	base    *baseURL
	client  *fasthttp.HostClient
	headers [][2][]byte
	cred    credential
	// strip are the caller's headers the route replaces: the credential's and the API's.
	strip [][]byte
	// opened holds the opened secrets (nil with Options.OpenPerRequest).
	opened [][]byte
	rlKey  ratelimit.Key
	// err, when set, is answered instead of forwarding (no credential, a secret that does
	// not open, an auth type not proxied yet).
	err     error
	expires time.Time
}

// routeCache holds routes and APIs in memory. A change notification drops entries; the TTL
// is the safety net for a missed one. Misses are loaded once however many requests wait.
type routeCache struct {
	mu    sync.RWMutex
	conns map[string]*connEntry
	apis  map[string]*apiEntry
	// missing remembers connection ids the store does not have, until the time given, so a
	// caller repeating an unknown id (or a flood of made-up ones) does not reach the database
	// on every request. It is bounded: when full of live entries, misses are not remembered.
	missing map[string]time.Time
	// gen counts invalidations: a load that started before one does not store its result,
	// which may already be stale.
	gen   uint64
	group singleflight.Group
}

// Negative caching of unknown connection ids.
const (
	missingTTL = 5 * time.Second
	maxMissing = 10000
)

// errConnectionNotFound is answered for an id the store does not have.
var errConnectionNotFound = errorf(CodeConnectionNotFound, "no such connection", nil)

func (c *routeCache) init() {
	c.conns = map[string]*connEntry{}
	c.apis = map[string]*apiEntry{}
	c.missing = map[string]time.Time{}
}

// isMissing reports a remembered unknown id.
func (c *routeCache) isMissing(id []byte, now time.Time) bool {
	c.mu.RLock()
	until, ok := c.missing[string(id)]
	c.mu.RUnlock()
	return ok && now.Before(until)
}

// putMissing remembers an unknown id, unless an invalidation happened since gen (the id may
// have been created meanwhile) or the set is full of live entries.
func (c *routeCache) putMissing(id string, gen uint64, until, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if len(c.missing) >= maxMissing {
		for k, t := range c.missing {
			if !now.Before(t) {
				delete(c.missing, k)
			}
		}
		if len(c.missing) >= maxMissing {
			return
		}
	}
	c.missing[id] = until
}

func (c *routeCache) conn(id []byte, now time.Time) *connEntry {
	c.mu.RLock()
	e := c.conns[string(id)]
	c.mu.RUnlock()
	if e == nil || !now.Before(e.expires) {
		return nil
	}
	return e
}

func (c *routeCache) api(id string, now time.Time) *apiEntry {
	c.mu.RLock()
	e := c.apis[id]
	c.mu.RUnlock()
	if e == nil || !now.Before(e.expires) {
		return nil
	}
	return e
}

func (c *routeCache) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

func (c *routeCache) putConn(e *connEntry, gen uint64) {
	c.mu.Lock()
	if c.gen == gen {
		c.conns[e.id] = e
	}
	c.mu.Unlock()
}

func (c *routeCache) putAPI(e *apiEntry, gen uint64) {
	c.mu.Lock()
	if c.gen == gen {
		c.apis[e.id] = e
	}
	c.mu.Unlock()
}

// invalidate applies one change notification.
func (c *routeCache) invalidate(ch store.Change) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	switch ch.Kind {
	case store.ChangeConnection:
		delete(c.conns, ch.ID)
		delete(c.missing, ch.ID) // created: no longer unknown
	case store.ChangeAPI:
		delete(c.apis, ch.ID)
		for id, e := range c.conns {
			if e.api.id == ch.ID {
				delete(c.conns, id)
			}
		}
	default: // ChangeAll, and any kind this version does not know
		clear(c.conns)
		clear(c.apis)
		clear(c.missing)
	}
}

// route returns the cached route of a connection, loading it on a miss.
func (h *Handler) route(id []byte) (*connEntry, error) {
	now := h.now()
	if e := h.cache.conn(id, now); e != nil {
		h.metrics.Cache(metrics.CacheHit)
		return e, nil
	}
	if h.cache.isMissing(id, now) {
		h.metrics.Cache(metrics.CacheHit)
		return nil, errConnectionNotFound
	}
	h.metrics.Cache(metrics.CacheMiss)
	key := string(id)
	v, err, _ := h.cache.group.Do("c"+key, func() (any, error) {
		// A load that finished between the lookup above and Do has stored the route: use it
		// rather than reading the store again.
		now := h.now()
		if e := h.cache.conn(id, now); e != nil {
			return e, nil
		}
		if h.cache.isMissing(id, now) {
			return nil, errConnectionNotFound
		}
		return h.loadRoute(key)
	})
	if err != nil {
		return nil, err
	}
	return v.(*connEntry), nil
}

// loadRoute reads a connection and its API from the store and builds the route.
func (h *Handler) loadRoute(id string) (*connEntry, error) {
	gen := h.cache.generation()
	ctx, cancel := context.WithTimeout(h.ctx, h.opts.StoreTimeout)
	defer cancel()
	conn, err := h.opts.Store.GetConnection(ctx, id, store.Tenant{})
	if errors.Is(err, store.ErrNotFound) {
		now := h.now()
		h.cache.putMissing(id, gen, earlier(now.Add(missingTTL), now.Add(h.opts.CacheTTL)), now)
		return nil, errConnectionNotFound
	}
	if err != nil {
		return nil, errorf(CodeStoreUnavailable, "the configuration store is unavailable", err)
	}
	api, err := h.apiEntry(conn.ExternalAPIID)
	if err != nil {
		return nil, err
	}
	e := h.newConnEntry(api, conn)
	e.expires = earlier(h.now().Add(h.opts.CacheTTL), api.expires)
	h.cache.putConn(e, gen)
	return e, nil
}

func (h *Handler) apiEntry(id string) (*apiEntry, error) {
	if e := h.cache.api(id, h.now()); e != nil {
		return e, nil
	}
	v, err, _ := h.cache.group.Do("a"+id, func() (any, error) {
		if e := h.cache.api(id, h.now()); e != nil { // stored by a load that just finished
			return e, nil
		}
		gen := h.cache.generation()
		ctx, cancel := context.WithTimeout(h.ctx, h.opts.StoreTimeout)
		defer cancel()
		a, err := h.opts.Store.GetAPI(ctx, id, store.Tenant{})
		if errors.Is(err, store.ErrNotFound) {
			return nil, errorf(CodeRouteNotFound, "the connection's API has been deleted", nil)
		}
		if err != nil {
			return nil, errorf(CodeStoreUnavailable, "the configuration store is unavailable", err)
		}
		e := h.newAPIEntry(a)
		e.expires = h.now().Add(h.opts.CacheTTL)
		h.cache.putAPI(e, gen)
		return e, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*apiEntry), nil
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// watch applies change notifications until the channel closes.
func (h *Handler) watch(changes <-chan store.Change) {
	for ch := range changes {
		h.cache.invalidate(ch)
		h.metrics.Cache(metrics.CacheInvalidation)
	}
}
