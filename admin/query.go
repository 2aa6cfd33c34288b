package admin

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Paging of the list routes.
const (
	defaultLimit = 50
	maxLimit     = 200
	maxOffset    = 1 << 30
)

// query reads the query parameters of a list route strictly: unknown or repeated parameters and
// malformed values are problems, reported together with their "query.NAME" path.
type query struct {
	v url.Values
	p problems
}

func parseQuery(r *http.Request, allowed ...string) (*query, error) {
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, &ValidationError{Details: []Detail{{Path: "query", Message: "malformed query string"}}}
	}
	q := &query{v: v}
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		switch {
		case !slices.Contains(allowed, k):
			q.p.add("query."+safeName(k), "unknown parameter (known: "+strings.Join(allowed, ", ")+")")
		case len(v[k]) > 1:
			q.p.add("query."+k, "given more than once")
		}
	}
	return q, nil
}

// safeName keeps an unknown parameter's name printable (it is echoed in the error).
func safeName(k string) string {
	if len(k) > 64 || !utf8.ValidString(k) || strings.IndexFunc(k, unicode.IsControl) >= 0 {
		return "(unprintable)"
	}
	return k
}

// text returns a parameter's value; values must be valid UTF-8 without control characters, since
// they go to the database.
func (q *query) text(name string) string {
	s := q.v.Get(name)
	if s == "" {
		return ""
	}
	if len(s) > maxNameLen || !utf8.ValidString(s) || strings.IndexFunc(s, unicode.IsControl) >= 0 {
		q.p.add("query."+name, fmt.Sprintf("must be text of at most %d characters", maxNameLen))
		return ""
	}
	return s
}

func (q *query) enum(name string, options []string) string {
	s := q.text(name)
	if s != "" && !slices.Contains(options, s) {
		q.p.add("query."+name, "must be one of "+strings.Join(options, ", "))
		return ""
	}
	return s
}

func (q *query) bool(name string) bool {
	switch q.v.Get(name) {
	case "", "false":
		return false
	case "true":
		return true
	}
	q.p.add("query."+name, "must be true or false")
	return false
}

func (q *query) time(name string) time.Time {
	s := q.v.Get(name)
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		q.p.add("query."+name, "must be an RFC 3339 time, e.g. 2030-01-02T15:04:05Z")
	}
	return t
}

// page returns limit (default 50, 1..200) and offset (>= 0).
func (q *query) page() (limit, offset int) {
	limit = defaultLimit
	if s := q.v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			q.p.add("query.limit", fmt.Sprintf("must be an integer from 1 to %d", maxLimit))
		} else {
			limit = n
		}
	}
	if s := q.v.Get("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > maxOffset {
			q.p.add("query.offset", "must be a non-negative integer")
		} else {
			offset = n
		}
	}
	return limit, offset
}

func (q *query) err() error { return q.p.err() }
