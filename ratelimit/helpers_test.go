package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/extapi/extapi/store"
	"github.com/extapi/extapi/store/storetest"
)

// newClient connects to the test Redis (EXTAPI_TEST_REDIS_URL), failing — never skipping —
// when it is not reachable. Each call is a client of its own, as separate instances have.
func newClient(t testing.TB) *redis.Client {
	t.Helper()
	u := storetest.RedisURL()
	opt, err := redis.ParseURL(u)
	if err != nil {
		t.Fatalf("EXTAPI_TEST_REDIS_URL: %v", err)
	}
	return dial(t, opt, u)
}

func dial(t testing.TB, opt *redis.Options, where string) *redis.Client {
	t.Helper()
	opt.ContextTimeoutEnabled = true
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("Redis at %s is not reachable: %v\n%s", where, err, storetest.HowToStartRedis)
	}
	return c
}

// apiID is an API id no other test uses, so that tests share the server in parallel.
func apiID(t testing.TB) string {
	b := make([]byte, 6)
	rand.Read(b)
	return strings.ReplaceAll(t.Name(), "/", ".") + "." + hex.EncodeToString(b)
}

func mustPolicy(t testing.TB, rl store.RateLimit) *Policy {
	t.Helper()
	p, err := NewPolicy(apiID(t), &rl, 0)
	if err != nil {
		t.Fatalf("NewPolicy(%+v) = %v", rl, err)
	}
	if p == nil {
		t.Fatalf("NewPolicy(%+v) = nil", rl)
	}
	return p
}

// clock is a test clock that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// engines are the two kinds of Limiter every behaviour test runs against.
var engines = []struct {
	name string
	new  func(t testing.TB, o Options) *Limiter
}{
	{"redis", func(t testing.TB, o Options) *Limiter { return NewRedis(newClient(t), o) }},
	{"local", func(t testing.TB, o Options) *Limiter { return NewLocal(o) }},
}

// testTimeout bounds Redis calls in the behaviour tests: generous, since a fallback there
// would be a failure (the fault tests use short timeouts on purpose).
const testTimeout = 5 * time.Second

// eachEngine runs fn against a Redis and a local Limiter on the same kind of fake clock.
func eachEngine(t *testing.T, fn func(t *testing.T, l *Limiter, c *clock)) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			c := newClock()
			fn(t, e.new(t, Options{Now: c.Now, Timeout: testTimeout}), c)
		})
	}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// redisServer is a redis-server of the test's own, which it may kill, freeze and restart.
type redisServer struct {
	t    testing.TB
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

func startRedisServer(t testing.TB) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server is not on PATH (%v); the fault tests run one of their own. "+
			"Install Redis (apt-get install redis-server)", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := &redisServer{t: t, port: port}
	s.Start()
	t.Cleanup(s.Kill)
	return s
}

func (s *redisServer) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Start runs the server and waits until it answers PING.
func (s *redisServer) Start() {
	s.t.Helper()
	s.cmd = exec.Command("redis-server", "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no")
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(s.cmd, s.done)
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer c.Close()
	waitFor(s.t, 10*time.Second, "redis-server on "+s.Addr(), func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		return c.Ping(ctx).Err() == nil
	})
}

// Kill stops the server for good and waits until it is gone.
func (s *redisServer) Kill() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Freeze stops the process (SIGSTOP): connections hang instead of failing. Thaw resumes it.
func (s *redisServer) Freeze() { s.cmd.Process.Signal(syscall.SIGSTOP) }
func (s *redisServer) Thaw()   { s.cmd.Process.Signal(syscall.SIGCONT) }
