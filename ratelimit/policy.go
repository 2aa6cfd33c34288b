package ratelimit

import (
	"errors"
	"fmt"
	"hash/maphash"
	"strconv"
	"strings"
	"time"

	"github.com/go-redis/redis_rate/v10"

	"github.com/extapi/extapi/store"
)

// Values of store.RateLimit's string fields; the empty string is the first of each pair.
const (
	ScopeConnection = "connection"
	ScopeAPI        = "api"
	ModeWait        = "wait"
	ModeReject      = "reject"
	OnErrorAllow    = "allow"
	OnErrorDeny     = "deny"
)

// DefaultMaxWait is the wait budget when neither max_wait_ms nor NewPolicy's defaultMaxWait is set.
const DefaultMaxWait = 30 * time.Second

// MaxRate bounds every rate and the burst, so that all script arithmetic stays exact.
const MaxRate = 1_000_000_000

// keyPrefix starts every Redis key of the package.
const keyPrefix = "extapi:rl:{"

// window kinds, indexes of the in-process state.
const (
	perSecond = iota
	perMinute
	perHour
	perDay
	numKinds
)

var kindSuffix = [numKinds]string{":s", ":m", ":h", ":d"}

type window struct {
	kind  int
	limit redis_rate.Limit
	// interval is Period/Rate rounded up to a whole microsecond (so never faster than the
	// limit); offset is burst*interval, redis_rate's burst_offset.
	interval, offset int64
}

// Policy is one API's rate limit, built once at route load. A nil *Policy means unlimited.
type Policy struct {
	apiID       string
	windows     []window
	scopeAPI    bool
	wait        bool
	maxWait     time.Duration
	deny        bool
	resetHeader string
	// args are the script's per-window arguments, formatted once.
	args []any
	// apiKey is the Key of scope "api", shared by every connection.
	apiKey Key
}

// NewPolicy checks rl and precomputes its windows. It returns (nil, nil) when rl is nil or sets
// no window: no limit. defaultMaxWait (the API's timeout) is the wait budget when
// rl.MaxWaitMS is zero; DefaultMaxWait if that is zero too. Every problem is reported at once.
func NewPolicy(apiID string, rl *store.RateLimit, defaultMaxWait time.Duration) (*Policy, error) {
	if rl == nil || (rl.RequestsPerSecond == 0 && rl.RequestsPerMinute == 0 &&
		rl.RequestsPerHour == 0 && rl.RequestsPerDay == 0) {
		return nil, nil
	}
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf("rate_limit."+format, a...)) }
	if apiID == "" {
		errs = append(errs, errors.New("rate limit: empty API id"))
	}
	rates := [numKinds]int{rl.RequestsPerSecond, rl.RequestsPerMinute, rl.RequestsPerHour, rl.RequestsPerDay}
	names := [numKinds]string{"requests_per_second", "requests_per_minute", "requests_per_hour", "requests_per_day"}
	for i, r := range rates {
		if r < 0 || r > MaxRate {
			bad("%s: %d is out of range 0..%d", names[i], r, MaxRate)
		}
	}
	if rl.Burst < 0 || rl.Burst > MaxRate {
		bad("burst: %d is out of range 0..%d", rl.Burst, MaxRate)
	}
	if rl.MaxWaitMS < 0 {
		bad("max_wait_ms: %d is negative", rl.MaxWaitMS)
	}
	p := &Policy{apiID: apiID, resetHeader: rl.ResetHeader}
	switch rl.Scope {
	case "", ScopeConnection:
	case ScopeAPI:
		p.scopeAPI = true
	default:
		bad("scope: %q is not %q or %q", rl.Scope, ScopeConnection, ScopeAPI)
	}
	switch rl.Mode {
	case "", ModeWait:
		p.wait = true
	case ModeReject:
	default:
		bad("mode: %q is not %q or %q", rl.Mode, ModeWait, ModeReject)
	}
	switch rl.OnRedisError {
	case "", OnErrorAllow:
	case OnErrorDeny:
		p.deny = true
	default:
		bad("on_redis_error: %q is not %q or %q", rl.OnRedisError, OnErrorAllow, OnErrorDeny)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	burst := rl.Burst
	if burst == 0 {
		burst = max(rl.RequestsPerSecond, 1)
	}
	periods := [numKinds]time.Duration{time.Second, time.Minute, time.Hour, 24 * time.Hour}
	for kind, rate := range rates {
		if rate == 0 {
			continue
		}
		b := burst
		if kind != perSecond {
			b = min(burst, rate)
		}
		periodUS := periods[kind].Microseconds()
		interval := (periodUS + int64(rate) - 1) / int64(rate)
		w := window{
			kind:     kind,
			limit:    redis_rate.Limit{Rate: rate, Burst: b, Period: periods[kind]},
			interval: interval,
			offset:   int64(b) * interval,
		}
		p.windows = append(p.windows, w)
		p.args = append(p.args, strconv.FormatInt(w.interval, 10), strconv.FormatInt(w.offset, 10))
	}
	switch {
	case rl.MaxWaitMS > 0:
		p.maxWait = time.Duration(rl.MaxWaitMS) * time.Millisecond
	case defaultMaxWait > 0:
		p.maxWait = defaultMaxWait
	default:
		p.maxWait = DefaultMaxWait
	}
	if !p.wait {
		p.maxWait = 0
	}
	p.apiKey = p.newKey(keyPrefix + apiID + "}")
	return p, nil
}

// Key is where one budget lives: one connection's, or the whole API's under scope "api". Build
// it once (Policy.Key) when the connection is loaded; it is only valid with its Policy.
type Key struct {
	// id names the budget (the in-process map key); keys are the Redis keys, one per window
	// then the hold-off key, all under one hash tag.
	id    string
	keys  []string
	shard uint32
	// holdKey is keys[len(keys)-1], the hold-off key.
	holdKey []string
	// cmd is the EVALSHA command of takeScript for this Key, but for now and budget.
	cmd []any
}

var shardSeed = maphash.MakeSeed()

// Key returns the budget of connectionID; under scope "api", the API's single budget.
func (p *Policy) Key(connectionID string) Key {
	if p == nil {
		return Key{}
	}
	if p.scopeAPI {
		return p.apiKey
	}
	return p.newKey(keyPrefix + p.apiID + ":" + connectionID + "}")
}

func (p *Policy) newKey(id string) Key {
	k := Key{id: id, shard: uint32(maphash.String(shardSeed, id) % numShards)}
	for _, w := range p.windows {
		k.keys = append(k.keys, id+kindSuffix[w.kind])
	}
	k.keys = append(k.keys, id+":hold")
	k.holdKey = k.keys[len(k.keys)-1:]
	k.cmd = evalCmd(k.keys, p.args)
	return k
}

// String is the budget's Redis key prefix, for logs.
func (k Key) String() string { return k.id }

// Limits are the windows as redis_rate limits (the burst each one applies), finest first.
func (p *Policy) Limits() []redis_rate.Limit {
	if p == nil {
		return nil
	}
	out := make([]redis_rate.Limit, len(p.windows))
	for i, w := range p.windows {
		out[i] = w.limit
	}
	return out
}

// MaxWait is the longest a request may wait for its slot; zero in reject mode.
func (p *Policy) MaxWait() time.Duration { return p.maxWait }

// ResetHeader is the upstream header, if configured, that says when a 429 ends.
func (p *Policy) ResetHeader() string { return p.resetHeader }

// String describes the policy for logs, as "api: 20 req/s (burst 20), 200 req/h (burst 20), wait 30s".
func (p *Policy) String() string {
	var b strings.Builder
	b.WriteString(p.apiID)
	b.WriteString(": ")
	for i, w := range p.windows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(w.limit.String())
	}
	if p.wait {
		fmt.Fprintf(&b, ", wait %s", p.maxWait)
	} else {
		b.WriteString(", reject")
	}
	return b.String()
}
