package ratelimit

import (
	"net/http"
	"strings"
	"time"
)

// ParseRetryAfter reads a Retry-After value (RFC 9110: delay-seconds or an HTTP-date) as the
// time it ends. Delays beyond MaxHoldOff are cut to it; a fraction ("1.5"), which some
// providers send, is accepted.
func ParseRetryAfter(v string, now time.Time) (time.Time, bool) {
	v = strings.TrimSpace(v)
	if secs, frac, ok := parseSeconds(v); ok {
		return now.Add(secs + frac), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return t, true
	}
	return time.Time{}, false
}

// ParseReset reads an upstream reset header as the time it names. Providers write it as
// delay-seconds ("30", "1.5"), Unix seconds ("1767225600"), Unix milliseconds, an HTTP-date
// or RFC 3339; a number of 1e9 or more is taken as Unix seconds, of 1e12 or more as Unix ms.
func ParseReset(v string, now time.Time) (time.Time, bool) {
	v = strings.TrimSpace(v)
	if n, frac, ok := parseSeconds(v); ok {
		// parseSeconds caps at MaxHoldOff, so an epoch has to be read again as digits.
		if whole, isEpoch := parseEpoch(v); isEpoch {
			switch {
			case whole >= 1e12:
				return time.UnixMilli(whole), true
			default:
				return time.Unix(whole, 0).Add(frac), true
			}
		}
		return now.Add(n + frac), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return t, true
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, true
	}
	return time.Time{}, false
}

// parseSeconds reads DIGITS[.DIGITS] as a duration, the whole part capped at MaxHoldOff; frac
// is the fractional part (zero without a dot).
func parseSeconds(v string) (whole, frac time.Duration, ok bool) {
	intPart, fracPart, dot := strings.Cut(v, ".")
	if intPart == "" || (dot && fracPart == "") {
		return 0, 0, false
	}
	limit := int64(MaxHoldOff / time.Second)
	var n int64
	for i := 0; i < len(intPart); i++ {
		c := intPart[i]
		if c < '0' || c > '9' {
			return 0, 0, false
		}
		if n <= limit {
			n = n*10 + int64(c-'0')
		}
	}
	scale := time.Second
	for i := 0; i < len(fracPart); i++ {
		c := fracPart[i]
		if c < '0' || c > '9' {
			return 0, 0, false
		}
		scale /= 10
		frac += time.Duration(c-'0') * scale
	}
	return time.Duration(min(n, limit)) * time.Second, frac, true
}

// parseEpoch reports the whole part of v (already checked to be digits) when it reads as a Unix
// time: 1e9 (2001) or more, and not beyond year 9999 in milliseconds.
func parseEpoch(v string) (int64, bool) {
	intPart, _, _ := strings.Cut(v, ".")
	if len(intPart) < 10 || len(intPart) > 15 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(intPart); i++ {
		n = n*10 + int64(intPart[i]-'0')
	}
	return n, n >= 1e9
}
