package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"
)

// redisPing is the /readyz check of Redis (when EXTAPI_REDIS_URL is set).
type redisPing struct{ c redis.UniversalClient }

func (p redisPing) Ping(ctx context.Context) error { return p.c.Ping(ctx).Err() }

// newRedisClient builds the client EXTAPI_REDIS_URL names (config validates its form):
//
//   - redis://[user:password@]HOST:PORT[/DB] (rediss:// for TLS): one server;
//   - …?master_name=NAME[&addr=HOST2:PORT2…]: Sentinel — HOST:PORT and each addr are sentinels,
//     NAME the monitored master (go-redis ParseFailoverURL). The URL's user and password
//     authenticate to the sentinels; the master's go in ?username= / ?password=;
//   - …?cluster=true or …?addr=HOST2:PORT2…: Cluster — HOST:PORT and each addr are seed nodes
//     (go-redis ParseClusterURL).
//
// Other query parameters are go-redis options (dial_timeout=3s, pool_size=20, …). Every
// client honours context deadlines, so EXTAPI_REDIS_TIMEOUT bounds each call.
func newRedisClient(raw string) (redis.UniversalClient, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, redisURLError(nil)
	}
	q := u.Query()
	switch {
	case q.Has("master_name"):
		o, err := redis.ParseFailoverURL(raw)
		if err != nil {
			return nil, redisURLError(err)
		}
		o.ContextTimeoutEnabled = true
		return redis.NewFailoverClient(o), nil
	case q.Has("cluster") || q.Has("addr"):
		// cluster is ours; go-redis's cluster parser does not take skip_verify (its single-server
		// and Sentinel parsers do), so it is applied here.
		skipVerify := q.Get("skip_verify") == "true"
		q.Del("cluster")
		q.Del("skip_verify")
		u.RawQuery = q.Encode()
		o, err := redis.ParseClusterURL(u.String())
		if err != nil {
			return nil, redisURLError(err)
		}
		if skipVerify && o.TLSConfig != nil {
			o.TLSConfig.InsecureSkipVerify = true
		}
		o.ContextTimeoutEnabled = true
		return redis.NewClusterClient(o), nil
	default:
		o, err := redis.ParseURL(raw)
		if err != nil {
			return nil, redisURLError(err)
		}
		o.ContextTimeoutEnabled = true
		return redis.NewClient(o), nil
	}
}

// redisURLError says EXTAPI_REDIS_URL does not parse. It never repeats the URL or a value from
// it (it may hold a password); go-redis's "unexpected option: NAMES" names only options.
func redisURLError(err error) error {
	if err != nil && strings.HasPrefix(err.Error(), "redis: unexpected option: ") {
		return fmt.Errorf("%w: EXTAPI_REDIS_URL: %s", errConfig, strings.TrimPrefix(err.Error(), "redis: "))
	}
	return fmt.Errorf("%w: EXTAPI_REDIS_URL does not parse", errConfig)
}
