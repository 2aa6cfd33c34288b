package oauth

import (
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Locker serializes token refreshes: while one caller holds the lock named key, no other (in this
// process or, for a shared locker, on any instance) gets it.
//
// Lock blocks until the lock is held or ctx is done (then it returns ctx's error). held is a
// context derived from ctx that ends when unlock is called or as soon as the lock may no longer
// be held (a shared lock that expired or was taken over; context.Cause(held) is then
// ErrLockLost): work that must run only under the lock, such as presenting a refresh token,
// runs on it. unlock releases the lock; calling it again is harmless. A holder that dies without
// unlocking must not keep the lock forever: a shared locker releases it after a bounded time.
type Locker interface {
	Lock(ctx context.Context, key string) (held context.Context, unlock func(), err error)
}

// ErrLockLost is the cause of a held context that ended because the lock may be held by another
// holder now: its extension found it gone or taken over, or a full TTL passed without one.
var ErrLockLost = errors.New("oauth: refresh lock lost while held")

// LocalLocker is a Locker within one process: enough for a single instance (the embedded SQLite
// default), not for a fleet, where two instances would each hold "the" lock. Its zero value is
// ready to use.
type LocalLocker struct {
	mu sync.Mutex
	m  map[string]*localLock
}

type localLock struct {
	ch   chan struct{} // a one-slot semaphore: full while held
	refs int           // holders and waiters; the entry goes when it drops to 0
}

// NewLocalLocker returns an in-process Locker.
func NewLocalLocker() *LocalLocker { return &LocalLocker{} }

// Lock takes key's lock, waiting for it until ctx is done. An in-process lock is never lost:
// held ends with unlock (or ctx).
func (l *LocalLocker) Lock(ctx context.Context, key string) (context.Context, func(), error) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*localLock{}
	}
	e := l.m[key]
	if e == nil {
		e = &localLock{ch: make(chan struct{}, 1)}
		l.m[key] = e
	}
	e.refs++
	l.mu.Unlock()
	select {
	case e.ch <- struct{}{}:
		held, cancel := context.WithCancel(ctx)
		var once sync.Once
		return held, func() { once.Do(func() { cancel(); <-e.ch; l.drop(key, e) }) }, nil
	case <-ctx.Done():
		l.drop(key, e)
		return nil, nil, ctx.Err()
	}
}

func (l *LocalLocker) drop(key string, e *localLock) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e.refs--; e.refs == 0 {
		delete(l.m, key)
	}
}

// RedisClient is what RedisLocker needs of go-redis: *redis.Client, *redis.ClusterClient and
// *redis.Ring all implement it.
type RedisClient interface {
	redis.Scripter
	SetNX(ctx context.Context, key string, value any, expiration time.Duration) *redis.BoolCmd
}

// RedisLockerOptions tune NewRedisLocker. The zero value is fine.
type RedisLockerOptions struct {
	// Prefix of every lock key. Default "extapi:oauth2:lock:".
	Prefix string
	// TTL is how long a lock outlives a holder that died. A live holder extends it every TTL/3.
	// Default 10 s.
	TTL time.Duration
	// Timeout of each Redis call. Default 2 s.
	Timeout time.Duration
	Log     *slog.Logger
}

// RedisLocker is a Locker shared by every instance using the same Redis: SET key owner NX PX ttl
// takes it, where owner is a random token of this holder; a Lua script releases (or extends) it
// only while the value is still that owner, so a holder whose lock expired can never release a
// lock another holder has since taken. A holder that dies releases the lock by expiry (TTL).
//
// When Redis cannot be reached Lock fails: refreshing without the fleet-wide lock could present
// a rotating refresh token twice and lose the grant, while a failed refresh only fails requests
// until Redis is back.
type RedisLocker struct {
	c       RedisClient
	prefix  string
	ttl     time.Duration
	timeout time.Duration
	log     *slog.Logger
}

// NewRedisLocker returns a fleet-wide Locker on c.
func NewRedisLocker(c RedisClient, o RedisLockerOptions) *RedisLocker {
	l := &RedisLocker{c: c, prefix: o.Prefix, ttl: o.TTL, timeout: o.Timeout, log: o.Log}
	if l.prefix == "" {
		l.prefix = "extapi:oauth2:lock:"
	}
	if l.ttl <= 0 {
		l.ttl = 10 * time.Second
	}
	if l.timeout <= 0 {
		l.timeout = 2 * time.Second
	}
	if l.log == nil {
		l.log = slog.Default()
	}
	return l
}

var (
	// unlockScript deletes the lock only if this owner still holds it.
	unlockScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)
	// extendScript pushes the expiry out only if this owner still holds it.
	extendScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) end return 0`)
)

// Lock takes key's lock, polling (5 ms growing to 100 ms, jittered) until ctx is done. held
// ends, with cause ErrLockLost, when an extension finds the lock no longer this holder's, or when
// a full TTL has passed since the last extension that Redis confirmed (Redis unreachable: the key
// may have expired and been taken by now).
func (l *RedisLocker) Lock(ctx context.Context, key string) (context.Context, func(), error) {
	k := l.prefix + key
	owner := randomToken()
	wait := 5 * time.Millisecond
	var since time.Time // when the SET that took the lock was sent: its TTL runs from then at the latest
	for {
		since = time.Now()
		cctx, cancel := context.WithTimeout(ctx, l.timeout)
		ok, err := l.c.SetNX(cctx, k, owner, l.ttl).Result()
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			return nil, nil, fmt.Errorf("oauth: take refresh lock in Redis: %w", err)
		}
		if ok {
			break
		}
		t := time.NewTimer(wait/2 + rand.N(wait))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil, ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
	held, lose := context.WithCancelCause(ctx)
	stop := make(chan struct{})
	done := make(chan struct{})
	go l.keepAlive(k, owner, since, lose, stop, done)
	var once sync.Once
	return held, func() {
		once.Do(func() {
			close(stop)
			<-done
			lose(context.Canceled)
			cctx, cancel := context.WithTimeout(context.Background(), l.timeout)
			defer cancel()
			if err := unlockScript.Run(cctx, l.c, []string{k}, owner).Err(); err != nil {
				l.log.Warn("oauth: release refresh lock; it expires by itself", "key", k, "err", err)
			}
		})
	}, nil
}

// keepAlive extends the lock every TTL/3 until stop is closed. The lock is known to be held
// until since+TTL, since being when the last confirmed extension (or the SET) was sent; when an
// extension finds the lock gone or another's, or that deadline passes without a confirmed one,
// it calls lose(ErrLockLost) and stops.
func (l *RedisLocker) keepAlive(k, owner string, since time.Time, lose context.CancelCauseFunc, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	tick := time.NewTicker(l.ttl / 3)
	defer tick.Stop()
	deadline := time.NewTimer(time.Until(since.Add(l.ttl)))
	defer deadline.Stop()
	for {
		select {
		case <-stop:
			return
		case <-deadline.C:
			l.log.Error("oauth: refresh lock lost while held: no extension confirmed within its TTL", "key", k)
			lose(ErrLockLost)
			return
		case <-tick.C:
		}
		sent := time.Now()
		// Never wait for Redis past the deadline: the select above must see it.
		until := sent.Add(l.timeout)
		if end := since.Add(l.ttl); end.Before(until) {
			until = end
		}
		cctx, cancel := context.WithDeadline(context.Background(), until)
		n, err := extendScript.Run(cctx, l.c, []string{k}, owner, l.ttl.Milliseconds()).Int64()
		cancel()
		switch {
		case err != nil:
			if !time.Now().Before(since.Add(l.ttl)) {
				l.log.Error("oauth: refresh lock lost while held: no extension confirmed within its TTL", "key", k, "err", err)
				lose(ErrLockLost)
				return
			}
			l.log.Warn("oauth: extend refresh lock", "key", k, "err", err)
		case n == 0:
			// Expired while held (a stall longer than the TTL) or taken over: another holder may run now.
			l.log.Error("oauth: refresh lock lost while held", "key", k)
			lose(ErrLockLost)
			return
		default:
			since = sent
			if !deadline.Stop() {
				select {
				case <-deadline.C:
				default:
				}
			}
			deadline.Reset(time.Until(since.Add(l.ttl)))
		}
	}
}

func randomToken() string {
	var b [16]byte
	if _, err := crand.Read(b[:]); err != nil {
		panic("oauth: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

var (
	_ Locker = (*LocalLocker)(nil)
	_ Locker = (*RedisLocker)(nil)
)
