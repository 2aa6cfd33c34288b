package ratelimit

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-redis/redis_rate/v10"

	"github.com/extapi/extapi/store"
)

func TestNewPolicyUnlimited(t *testing.T) {
	for _, rl := range []*store.RateLimit{nil, {}, {Burst: 5, Mode: "reject", Scope: "api"}} {
		p, err := NewPolicy("api", rl, time.Second)
		if p != nil || err != nil {
			t.Errorf("NewPolicy(%+v) = %v, %v; want nil, nil", rl, p, err)
		}
	}
}

func TestNewPolicyErrors(t *testing.T) {
	rl := &store.RateLimit{RequestsPerSecond: -1, RequestsPerHour: MaxRate + 1, Burst: -2, MaxWaitMS: -3,
		Scope: "user", Mode: "queue", OnRedisError: "retry"}
	_, err := NewPolicy("", rl, 0)
	if err == nil {
		t.Fatal("NewPolicy() = nil error; want every problem")
	}
	for _, want := range []string{"empty API id", "requests_per_second", "requests_per_hour", "burst",
		"max_wait_ms", `scope: "user"`, `mode: "queue"`, `on_redis_error: "retry"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("NewPolicy() error %q; want it to mention %q", err, want)
		}
	}
}

func TestPolicyLimits(t *testing.T) {
	tests := []struct {
		desc string
		rl   store.RateLimit
		want []redis_rate.Limit
	}{
		{"per second: burst defaults to the rate", store.RateLimit{RequestsPerSecond: 20},
			[]redis_rate.Limit{{Rate: 20, Burst: 20, Period: time.Second}}},
		{"coarse window alone: burst 1", store.RateLimit{RequestsPerHour: 200},
			[]redis_rate.Limit{{Rate: 200, Burst: 1, Period: time.Hour}}},
		{"every window: the per-second burst, capped at each rate",
			store.RateLimit{RequestsPerSecond: 10, RequestsPerMinute: 5, RequestsPerHour: 200, RequestsPerDay: 1000},
			[]redis_rate.Limit{
				{Rate: 10, Burst: 10, Period: time.Second},
				{Rate: 5, Burst: 5, Period: time.Minute},
				{Rate: 200, Burst: 10, Period: time.Hour},
				{Rate: 1000, Burst: 10, Period: 24 * time.Hour},
			}},
		{"explicit burst above the per-second rate", store.RateLimit{RequestsPerSecond: 2, RequestsPerMinute: 100, Burst: 30},
			[]redis_rate.Limit{{Rate: 2, Burst: 30, Period: time.Second}, {Rate: 100, Burst: 30, Period: time.Minute}}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			p := mustPolicy(t, tt.rl)
			if got := p.Limits(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Limits() = %v; want %v", got, tt.want)
			}
		})
	}
}

func TestPolicyMaxWait(t *testing.T) {
	tests := []struct {
		desc     string
		rl       store.RateLimit
		fallback time.Duration
		want     time.Duration
	}{
		{"max_wait_ms", store.RateLimit{RequestsPerSecond: 1, MaxWaitMS: 250}, 5 * time.Second, 250 * time.Millisecond},
		{"the API's timeout", store.RateLimit{RequestsPerSecond: 1}, 5 * time.Second, 5 * time.Second},
		{"neither", store.RateLimit{RequestsPerSecond: 1}, 0, DefaultMaxWait},
		{"reject mode", store.RateLimit{RequestsPerSecond: 1, Mode: ModeReject, MaxWaitMS: 250}, time.Second, 0},
	}
	for _, tt := range tests {
		p, err := NewPolicy("api", &tt.rl, tt.fallback)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.MaxWait(); got != tt.want {
			t.Errorf("%s: MaxWait() = %v; want %v", tt.desc, got, tt.want)
		}
	}
}

func TestPolicyKey(t *testing.T) {
	rl := &store.RateLimit{RequestsPerSecond: 1, RequestsPerDay: 10}
	p, _ := NewPolicy("a1", rl, 0)
	k := p.Key("c1")
	want := []string{"extapi:rl:{a1:c1}:s", "extapi:rl:{a1:c1}:d", "extapi:rl:{a1:c1}:hold"}
	if !reflect.DeepEqual(k.keys, want) {
		t.Errorf("Key(c1).keys = %q; want %q", k.keys, want)
	}
	if k2 := p.Key("c2"); k2.id == k.id {
		t.Errorf("scope connection: Key(c2) = Key(c1) = %s; want distinct", k.id)
	}

	rl.Scope = ScopeAPI
	p, _ = NewPolicy("a1", rl, 0)
	ka, kb := p.Key("c1"), p.Key("c2")
	if ka.id != kb.id || ka.id != "extapi:rl:{a1}" {
		t.Errorf("scope api: Key(c1) = %s, Key(c2) = %s; want both extapi:rl:{a1}", ka.id, kb.id)
	}
	if got := p.Key("c1").keys[0]; got != "extapi:rl:{a1}:s" {
		t.Errorf("scope api: window key %q; want extapi:rl:{a1}:s", got)
	}
}

func TestPolicyString(t *testing.T) {
	p := mustPolicy(t, store.RateLimit{RequestsPerSecond: 20, RequestsPerHour: 200, MaxWaitMS: 1500})
	if got, want := p.String(), "20 req/s (burst 20), 200 req/h (burst 20), wait 1.5s"; !strings.HasSuffix(got, want) {
		t.Errorf("String() = %q; want it to end with %q", got, want)
	}
}
