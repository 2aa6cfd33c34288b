package proxy

import (
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/valyala/fasthttp"

	"github.com/extapi/extapi/ratelimit"
	"github.com/extapi/extapi/store"
	"github.com/extapi/extapi/store/storetest"
)

func TestRateLimits(t *testing.T) {
	e := newProxyEnv(t, storetest.Open(t, storetest.SQLiteURL(t)), newKeyring(t),
		Options{Limiter: ratelimit.NewLocal(ratelimit.Options{})})
	tok := func(c *store.Connection) { c.Credentials.AccessToken = e.sealConn(c, "credentials.access_token", "t") }
	get := func(a *store.ExternalAPI, c *store.Connection) rawResponse {
		return do(t, "GET", "http://"+e.addr+"/"+a.Slug+"/"+c.ID+"/x", nil, nil)
	}

	t.Run("over the limit in reject mode", func(t *testing.T) {
		up := newUpstream(t, nil)
		a := e.api("rl1", store.APIConfig{BaseURL: up.url, AuthType: store.AuthBearer,
			RateLimit: &store.RateLimit{RequestsPerMinute: 1, Mode: ratelimit.ModeReject}}, nil)
		c := e.conn(a, tok)
		r := get(a, c)
		if r.Status != 200 || r.Header.Get("RateLimit-Limit") != "1" || r.Header.Get("RateLimit-Remaining") != "0" ||
			r.Header.Get("RateLimit-Reset") == "" {
			t.Errorf("first request = %d, RateLimit %q/%q/%q; want 200 with limit 1, 0 remaining and a reset", r.Status,
				r.Header.Get("RateLimit-Limit"), r.Header.Get("RateLimit-Remaining"), r.Header.Get("RateLimit-Reset"))
		}
		r = get(a, c)
		checkExtapiError(t, r, CodeRateLimited)
		if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 || s > 60 {
			t.Errorf("Retry-After = %q; want 1..60 seconds", r.Header.Get("Retry-After"))
		}
		if up.hits() != 1 {
			t.Errorf("upstream hits = %d; want 1", up.hits())
		}
	})

	t.Run("an upstream 429 holds the budget off", func(t *testing.T) {
		for _, hdr := range []struct{ name, value, reset string }{
			{"Retry-After", "120", ""},
			{"X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(2*time.Minute).Unix(), 10), "X-RateLimit-Reset"},
		} {
			up := newUpstream(t, func(ctx *fasthttp.RequestCtx) {
				ctx.Response.Header.Set(hdr.name, hdr.value)
				ctx.SetStatusCode(429)
			})
			a := e.api("rl-"+hdr.reset+"x", store.APIConfig{BaseURL: up.url, AuthType: store.AuthBearer,
				RateLimit: &store.RateLimit{RequestsPerSecond: 100, Mode: ratelimit.ModeReject, ResetHeader: hdr.reset}}, nil)
			c := e.conn(a, tok)
			if r := get(a, c); r.Status != 429 || r.Header.Get("X-Extapi-Error") != "" {
				t.Errorf("%s: first request = %d %q; want the upstream's 429 as it is", hdr.name, r.Status, r.Header.Get("X-Extapi-Error"))
			}
			checkExtapiError(t, get(a, c), CodeRateLimited)
			if up.hits() != 1 {
				t.Errorf("%s: upstream hits = %d; want 1: the hold-off keeps the second request back", hdr.name, up.hits())
			}
		}
	})

	t.Run("Redis down with on_redis_error deny", func(t *testing.T) {
		addr := closedAddr(t) // no Redis there
		rdb := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true, MaxRetries: -1})
		defer rdb.Close()
		down := newProxyEnv(t, e.store, e.kr, Options{Limiter: ratelimit.NewRedis(rdb, ratelimit.Options{})})
		up := newUpstream(t, nil)
		a := e.api("rl-deny", store.APIConfig{BaseURL: up.url, AuthType: store.AuthBearer,
			RateLimit: &store.RateLimit{RequestsPerSecond: 10, OnRedisError: ratelimit.OnErrorDeny}}, nil)
		c := e.conn(a, tok)
		checkExtapiError(t, do(t, "GET", "http://"+down.addr+"/rl-deny/"+c.ID+"/x", nil, nil), CodeRateLimiterUnavailable)
		if up.hits() != 0 {
			t.Errorf("upstream hits = %d; want 0", up.hits())
		}
	})
}
