package main

import (
	"context"
	"fmt"
	"net/url"

	"github.com/redis/go-redis/v9"
)

// redisPing is the /readyz check of Redis (when EXTAPI_REDIS_URL is set).
type redisPing struct{ c redis.UniversalClient }

func (p redisPing) Ping(ctx context.Context) error { return p.c.Ping(ctx).Err() }

// newRedisClient builds the client EXTAPI_REDIS_URL names (config validates its form):
//
//   - redis://[user:password@]HOST:PORT[/DB] (rediss:// for TLS): one server;
//   - …?master_name=NAME[&addr=HOST2:PORT2…]: Sentinel — HOST:PORT and each addr are sentinels,
//     NAME the monitored master (go-redis ParseFailoverURL);
//   - …?cluster=true or …?addr=HOST2:PORT2…: Cluster — HOST:PORT and each addr are seed nodes
//     (go-redis ParseClusterURL).
//
// Other query parameters are go-redis options (dial_timeout=3s, pool_size=20, …). Every
// client honours context deadlines, so EXTAPI_REDIS_TIMEOUT bounds each call.
func newRedisClient(raw string) (redis.UniversalClient, error) {
	// Errors never repeat the URL or the parser's reason: the URL may hold a password.
	bad := fmt.Errorf("%w: EXTAPI_REDIS_URL does not parse", errConfig)
	u, err := url.Parse(raw)
	if err != nil {
		return nil, bad
	}
	q := u.Query()
	switch {
	case q.Has("master_name"):
		o, err := redis.ParseFailoverURL(raw)
		if err != nil {
			return nil, bad
		}
		o.ContextTimeoutEnabled = true
		return redis.NewFailoverClient(o), nil
	case q.Has("cluster") || q.Has("addr"):
		q.Del("cluster") // ours, not a go-redis option
		u.RawQuery = q.Encode()
		o, err := redis.ParseClusterURL(u.String())
		if err != nil {
			return nil, bad
		}
		o.ContextTimeoutEnabled = true
		return redis.NewClusterClient(o), nil
	default:
		o, err := redis.ParseURL(raw)
		if err != nil {
			return nil, bad
		}
		o.ContextTimeoutEnabled = true
		return redis.NewClient(o), nil
	}
}
