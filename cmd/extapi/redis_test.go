package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/extapi/extapi/oauth"
	"github.com/extapi/extapi/ratelimit"
	"github.com/extapi/extapi/store"
)

// ownRedis runs a redis-server of the test's own (args after the port), until the test ends,
// and returns its HOST:PORT once it answers PING.
func ownRedis(t *testing.T, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server is not on PATH (%v); install Redis (apt-get install redis-server)", err)
	}
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	var cmd *exec.Cmd
	if len(args) > 0 && strings.HasSuffix(args[0], ".conf") { // a config file first, as redis-server wants
		cmd = exec.Command("redis-server", append([]string{args[0], "--port", port, "--bind", "127.0.0.1"}, args[1:]...)...)
	} else {
		cmd = exec.Command("redis-server", append([]string{"--port", port, "--bind", "127.0.0.1", "--save", "",
			"--appendonly", "no"}, args...)...)
	}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	rlWaitFor(t, 10*time.Second, "redis-server on "+addr+" answering PING", func() bool {
		select {
		case <-exited:
			t.Fatalf("redis-server on %s exited:\n%s", addr, out.String())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		return c.Ping(ctx).Err() == nil
	})
	return addr
}

// usable checks that c works for what extapi uses Redis for: a rate-limit Take (a Lua script
// over hash-tagged keys) and an OAuth 2.0 refresh lock.
func usable(t *testing.T, c redis.UniversalClient) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := ratelimit.NewPolicy("eapi_"+store.NewID(""), &store.RateLimit{RequestsPerSecond: 5, Mode: ratelimit.ModeReject}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	l := ratelimit.NewRedis(c, ratelimit.Options{Timeout: 5 * time.Second})
	if d, err := l.Take(ctx, p, p.Key("c")); err != nil || !d.Allowed || d.Fallback {
		t.Errorf("Take through the client = %+v, %v; want allowed, decided in Redis", d, err)
	}
	_, unlock, err := oauth.NewRedisLocker(c, oauth.RedisLockerOptions{}).Lock(ctx, "conn_"+store.NewID(""))
	if err != nil {
		t.Errorf("refresh lock through the client: %v", err)
	} else {
		unlock()
	}
}

// TestRedisSentinelURL: EXTAPI_REDIS_URL with master_name reaches the master through a
// sentinel (a real one, monitoring a server of the test's own).
func TestRedisSentinelURL(t *testing.T) {
	master := ownRedis(t)
	mhost, mport, _ := net.SplitHostPort(master)
	conf := filepath.Join(t.TempDir(), "sentinel.conf") // the sentinel rewrites it: its own file
	if err := os.WriteFile(conf, []byte("sentinel monitor mymaster "+mhost+" "+mport+" 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sentinel := ownRedis(t, conf, "--sentinel")

	c, err := newRedisClient("redis://" + sentinel + "/0?master_name=mymaster")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if err := c.Set(ctx, "extapi:test:sentinel", "via-sentinel", time.Minute).Err(); err != nil {
		t.Fatalf("SET through the sentinel client: %v", err)
	}
	direct := redis.NewClient(&redis.Options{Addr: master})
	defer direct.Close()
	if got, err := direct.Get(ctx, "extapi:test:sentinel").Result(); err != nil || got != "via-sentinel" {
		t.Errorf("the master holds %q, %v; want the value written through the sentinel", got, err)
	}
	usable(t, c)
}

// TestRedisClusterURL: EXTAPI_REDIS_URL with cluster=true makes a Cluster client (a real
// single-node cluster owning every slot), which the rate limiter and the refresh lock work on.
func TestRedisClusterURL(t *testing.T) {
	dir := t.TempDir()
	node := ownRedis(t, "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"), "--dir", dir)
	admin := redis.NewClient(&redis.Options{Addr: node})
	defer admin.Close()
	ctx := context.Background()
	if err := admin.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
		t.Fatalf("CLUSTER ADDSLOTSRANGE: %v", err)
	}
	rlWaitFor(t, 10*time.Second, "cluster_state:ok", func() bool {
		info, _ := admin.ClusterInfo(ctx).Result()
		return strings.Contains(info, "cluster_state:ok")
	})

	c, err := newRedisClient("redis://" + node + "?cluster=true")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*redis.ClusterClient); !ok {
		t.Fatalf("newRedisClient(?cluster=true) = %T; want *redis.ClusterClient", c)
	}
	usable(t, c)

	// A single server is still a plain client, and a URL that does not parse says so without
	// repeating it (it may hold a password).
	if c, err := newRedisClient("redis://" + node + "/0"); err != nil {
		t.Fatal(err)
	} else if _, ok := c.(*redis.Client); !ok {
		t.Errorf("newRedisClient(plain URL) = %T; want *redis.Client", c)
	} else {
		c.Close()
	}
	if _, err := newRedisClient("redis://:s3cret@" + node + "/0?master_name=m&bogus_option=1"); err == nil ||
		!errors.Is(err, errConfig) || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "bogus_option") {
		t.Errorf("newRedisClient(unknown option) = %v; want errConfig naming the option, without the URL", err)
	}
	// skip_verify works for a TLS cluster too (go-redis's cluster parser does not take it).
	if c, err := newRedisClient("rediss://" + node + "?cluster=true&skip_verify=true"); err != nil {
		t.Errorf("newRedisClient(rediss cluster, skip_verify) = %v", err)
	} else {
		if cc, ok := c.(*redis.ClusterClient); !ok || cc.Options().TLSConfig == nil || !cc.Options().TLSConfig.InsecureSkipVerify {
			t.Errorf("rediss cluster with skip_verify: %T without InsecureSkipVerify", c)
		}
		c.Close()
	}
}

// TestReadyzChecksRedis: with EXTAPI_REDIS_URL set, /readyz pings Redis too: ok against a live
// server, 503 naming redis against an address nothing answers on.
func TestReadyzChecksRedis(t *testing.T) {
	for _, tc := range []struct {
		desc, url string
		status    int
		redis     string
	}{
		{"live", "redis://" + ownRedis(t) + "/0", http.StatusOK, "ok"},
		{"dead", "redis://127.0.0.1:1/0", http.StatusServiceUnavailable, "unreachable"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			a := startApp(t, sqliteAppVars(t, "readyz-redis-admin-token-01", map[string]string{
				"EXTAPI_REDIS_URL": tc.url,
			}), nil)
			resp, err := http.Get("http://" + a.adminLn.Addr().String() + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct{ Checks map[string]string }
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status || body.Checks["redis"] != tc.redis || body.Checks["database"] != "ok" {
				t.Errorf("/readyz = %d %v; want %d with redis %s, database ok", resp.StatusCode, body.Checks, tc.status, tc.redis)
			}
		})
	}
}
