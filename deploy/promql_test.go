package deploy_test

import (
	"fmt"
	"strings"
)

// A deliberately small PromQL reader: enough to find the metric names, the label names in
// their matchers and the grouping labels of the expressions in the dashboard and the alerts,
// so that a renamed series or label breaks a test instead of a dashboard. Syntax errors are
// promtool's business (TestAlerts runs it where it is installed).

type selector struct {
	name   string   // metric name; "" for a bare {…}
	labels []string // label names its matchers use
}

type promQL struct {
	selectors []selector
	grouping  []string // labels of by / without / on / ignoring / group_left / group_right
}

var (
	aggregators = words("sum min max avg group stddev stdvar count count_values bottomk topk quantile limitk limit_ratio")
	groupingKw  = words("by without on ignoring group_left group_right")
	operatorKw  = words("and or unless bool offset atan2")
)

func words(s string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(s) {
		m[w] = true
	}
	return m
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdent(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }

func parsePromQL(s string) (promQL, error) {
	var q promQL
	i := 0
	skipSpace := func(j int) int {
		for j < len(s) && strings.IndexByte(" \t\r\n", s[j]) >= 0 {
			j++
		}
		return j
	}
	ident := func(j int) (string, int) {
		k := j
		for k < len(s) && isIdent(s[k]) {
			k++
		}
		return s[j:k], k
	}
	for i < len(s) {
		c := s[i]
		switch {
		case strings.IndexByte(" \t\r\n", c) >= 0:
			i++
		case c == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'' || c == '`':
			j, err := skipString(s, i)
			if err != nil {
				return q, err
			}
			i = j
		case c == '[':
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				return q, fmt.Errorf("unclosed [ at %d", i)
			}
			i += j + 1
		case c == '{':
			labels, j, err := matchers(s, i)
			if err != nil {
				return q, err
			}
			q.selectors = append(q.selectors, selector{labels: labels})
			i = j
		case c == '$': // a Grafana variable outside a string, e.g. $__interval
			_, i = ident(i + 1)
		case c >= '0' && c <= '9' || c == '.':
			for i < len(s) && (isIdent(s[i]) || s[i] == '.') {
				i++
			}
		case isIdentStart(c):
			name, j := ident(i)
			next := skipSpace(j)
			switch {
			case groupingKw[name]:
				if next >= len(s) || s[next] != '(' {
					return q, fmt.Errorf("%s at %d: want (", name, i)
				}
				end := strings.IndexByte(s[next:], ')')
				if end < 0 {
					return q, fmt.Errorf("unclosed %s( at %d", name, i)
				}
				for _, l := range strings.Split(s[next+1:next+end], ",") {
					if l = strings.TrimSpace(l); l != "" {
						q.grouping = append(q.grouping, l)
					}
				}
				i = next + end + 1
			case aggregators[name], operatorKw[name], next < len(s) && s[next] == '(':
				i = j // a function, an aggregation or an operator
			default:
				sel := selector{name: name}
				i = j
				if next < len(s) && s[next] == '{' {
					labels, k, err := matchers(s, next)
					if err != nil {
						return q, err
					}
					sel.labels, i = labels, k
				}
				q.selectors = append(q.selectors, sel)
			}
		default:
			i++
		}
	}
	return q, nil
}

// matchers reads {name op "value", …} starting at s[i] == '{' and returns the label names.
func matchers(s string, i int) ([]string, int, error) {
	var labels []string
	i++
	for {
		for i < len(s) && strings.IndexByte(" \t\r\n,", s[i]) >= 0 {
			i++
		}
		if i >= len(s) {
			return nil, i, fmt.Errorf("unclosed {")
		}
		if s[i] == '}' {
			return labels, i + 1, nil
		}
		j := i
		for j < len(s) && isIdent(s[j]) {
			j++
		}
		if j == i {
			return nil, i, fmt.Errorf("want a label name at %d in %q", i, s)
		}
		labels = append(labels, s[i:j])
		for j < len(s) && strings.IndexByte(" \t=!~", s[j]) >= 0 {
			j++
		}
		k, err := skipString(s, j)
		if err != nil {
			return nil, j, err
		}
		i = k
	}
}

func skipString(s string, i int) (int, error) {
	if i >= len(s) || strings.IndexByte("\"'`", s[i]) < 0 {
		return i, fmt.Errorf("want a string at %d in %q", i, s)
	}
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch {
		case s[j] == '\\' && q != '`':
			j++
		case s[j] == q:
			return j + 1, nil
		}
	}
	return i, fmt.Errorf("unclosed string at %d in %q", i, s)
}
