package ratelimit

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
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

// ownPorts are the ports of this process's redis-servers, from their pick until their test
// ends (restarts included), so that two tests never pick the same one.
var ownPorts = struct {
	sync.Mutex
	m map[int]bool
}{m: map[int]bool{}}

// redisPorts is where startRedisServer picks its ports: outside the kernel's ephemeral range
// (ip_local_port_range), from which it assigns the ports of listeners on :0 and of outgoing
// connections, of this process or any other. So while a test restarts its server, nothing is
// given the port by chance; only something binding that very port could take it.
func redisPorts(t testing.TB) (lo, hi int) {
	t.Helper()
	low, high := 32768, 60999 // Linux's default
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		f := strings.Fields(string(b))
		if len(f) == 2 {
			l, err1 := strconv.Atoi(f[0])
			h, err2 := strconv.Atoi(f[1])
			if err1 == nil && err2 == nil && l <= h {
				low, high = l, h
			}
		}
	}
	const room = 1000 // ports enough that random picks rarely meet
	switch {
	case low-1 >= 20000+room:
		return 20000, low - 1
	case low-1 >= 1024+room:
		return 1024, low - 1
	case high+1 <= 65535-room:
		return high + 1, 65535
	}
	t.Fatalf("no room for test ports outside the ephemeral range %d-%d", low, high)
	return 0, 0
}

// startRedisServer starts a redis-server on a port of its own, outside the ephemeral range (see
// redisPorts), trying other ports while the one picked turns out taken.
func startRedisServer(t testing.TB) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server is not on PATH (%v); the fault tests run one of their own. "+
			"Install Redis (apt-get install redis-server)", err)
	}
	lo, hi := redisPorts(t)
	var errs []string
	for len(errs) < 20 {
		port := lo + mrand.IntN(hi-lo+1)
		ownPorts.Lock()
		mine := ownPorts.m[port]
		ownPorts.m[port] = true
		ownPorts.Unlock()
		if mine {
			continue // another test's; a pick that is not a try
		}
		s := &redisServer{t: t, port: port}
		err := s.start()
		if err == nil {
			t.Cleanup(func() {
				s.Kill()
				ownPorts.Lock()
				delete(ownPorts.m, port)
				ownPorts.Unlock()
			})
			return s
		}
		ownPorts.Lock()
		delete(ownPorts.m, port)
		ownPorts.Unlock()
		errs = append(errs, err.Error())
	}
	t.Fatalf("could not start a redis-server on %d ports:\n%s", len(errs), strings.Join(errs, "\n"))
	return nil
}

func (s *redisServer) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Start runs the server again on its port (clients reconnect to the same address) and waits
// until it answers.
func (s *redisServer) Start() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatalf("restart: %v", err)
	}
}

// start runs the server and waits until it answers, as this very process (not another server
// that holds the port): an error if the port is taken, the server exits, or it does not answer.
func (s *redisServer) start() error {
	addr := s.Addr()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s is taken: %v", addr, err)
	}
	ln.Close()
	var out bytes.Buffer // read only once the process is gone (Wait has copied everything)
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server on %s: %v", addr, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	pid := "\nprocess_id:" + strconv.Itoa(cmd.Process.Pid) + "\r\n"
	const patience = 30 * time.Second
	deadline := time.Now().Add(patience)
	for {
		select {
		case <-done:
			s.cmd = nil
			return fmt.Errorf("redis-server on %s exited: %s", addr, bytes.TrimSpace(out.Bytes()))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		info, err := c.Info(ctx, "server").Result()
		cancel()
		if err == nil && strings.Contains(info, pid) {
			return nil
		}
		if time.Now().After(deadline) {
			s.Kill()
			return fmt.Errorf("redis-server on %s did not answer within %s (last: %v)", addr, patience, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
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
