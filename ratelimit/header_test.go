package ratelimit

import (
	"testing"
	"time"
)

var headerNow = time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)

func TestParseRetryAfter(t *testing.T) {
	tests := []struct {
		desc, v string
		want    time.Time
		ok      bool
	}{
		{"delay-seconds", "120", headerNow.Add(120 * time.Second), true},
		{"spaces", " 3 ", headerNow.Add(3 * time.Second), true},
		{"fraction", "1.5", headerNow.Add(1500 * time.Millisecond), true},
		{"zero", "0", headerNow, true},
		{"HTTP-date", "Wed, 21 Oct 2015 07:28:00 GMT", time.Date(2015, 10, 21, 7, 28, 0, 0, time.UTC), true},
		{"huge delay is capped", "99999999999999999999999", headerNow.Add(MaxHoldOff), true},
		{"negative", "-1", time.Time{}, false},
		{"empty", "", time.Time{}, false},
		{"trailing dot", "5.", time.Time{}, false},
		{"junk", "soon", time.Time{}, false},
		{"exponent", "1e3", time.Time{}, false},
	}
	for _, tt := range tests {
		got, ok := ParseRetryAfter(tt.v, headerNow)
		if ok != tt.ok || !got.Equal(tt.want) {
			t.Errorf("%s: ParseRetryAfter(%q) = %v, %v; want %v, %v", tt.desc, tt.v, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseReset(t *testing.T) {
	tests := []struct {
		desc, v string
		want    time.Time
		ok      bool
	}{
		{"delay-seconds", "30", headerNow.Add(30 * time.Second), true},
		{"delay with fraction", "0.25", headerNow.Add(250 * time.Millisecond), true},
		{"Unix seconds", "1930000000", time.Unix(1930000000, 0), true},
		{"Unix seconds with fraction", "1930000000.5", time.Unix(1930000000, 500_000_000), true},
		{"Unix milliseconds", "1930000000123", time.UnixMilli(1930000000123), true},
		{"leading zeros are a delay", "0000000030", headerNow.Add(30 * time.Second), true},
		{"RFC 3339", "2031-03-04T05:07:00Z", time.Date(2031, 3, 4, 5, 7, 0, 0, time.UTC), true},
		{"HTTP-date", "Tue, 04 Mar 2031 05:07:00 GMT", time.Date(2031, 3, 4, 5, 7, 0, 0, time.UTC), true},
		{"junk", "later", time.Time{}, false},
		{"empty", "", time.Time{}, false},
	}
	for _, tt := range tests {
		got, ok := ParseReset(tt.v, headerNow)
		if ok != tt.ok || !got.Equal(tt.want) {
			t.Errorf("%s: ParseReset(%q) = %v, %v; want %v, %v", tt.desc, tt.v, got, ok, tt.want, tt.ok)
		}
	}
}

// FuzzParseReset: upstream headers are untrusted; parsing never panics, and a delay never
// reaches past MaxHoldOff nor before now.
func FuzzParseReset(f *testing.F) {
	for _, s := range []string{"30", "1.5", "1930000000", "1930000000123", "Wed, 21 Oct 2015 07:28:00 GMT",
		"2031-03-04T05:07:00Z", "", ".", "9.", "99999999999999999999999.99999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if got, ok := ParseRetryAfter(v, headerNow); ok {
			if _, _, isDelay := parseSeconds(v); isDelay {
				if d := got.Sub(headerNow); d < 0 || d > MaxHoldOff+time.Second {
					t.Errorf("ParseRetryAfter(%q) = now%+v; want within [0, MaxHoldOff]", v, d)
				}
			}
		}
		ParseReset(v, headerNow)
	})
}
