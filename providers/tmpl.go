package providers

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Templating of base_url and api_config.headers values. A placeholder is {{api_version}},
// {{region}} (api_config.aws_sigv4.region) or {{provider_data.KEY}} (the connection's), and in
// a URL may also be {{provider_data.KEY|host}}: the host of a URL value such as Salesforce's
// instance_url. In a URL a placeholder may fill only (part of) a host label or a path segment:
// its value may not hold '/', '@', '?', '#', ':', '%' or anything else that changes the URL's
// structure, and the resolved URL keeps the template's scheme, port, number of path segments
// and the literal parts of its host. A header value may hold no control characters (CR, LF,
// NUL, …). A value that breaks a rule is an error, never a request.

// ErrTemplate is wrapped by every template error, at parse or at resolve time.
var ErrTemplate = errors.New("template")

// TemplateError says which placeholder or part of a template is wrong. It never repeats a
// provider_data value.
type TemplateError struct {
	Msg string
}

func (e *TemplateError) Error() string { return "template: " + e.Msg }
func (e *TemplateError) Unwrap() error { return ErrTemplate }

func tmplErr(format string, args ...any) error {
	return &TemplateError{Msg: fmt.Sprintf(format, args...)}
}

// Vars are the values of the placeholders.
type Vars struct {
	APIVersion   string
	Region       string
	ProviderData map[string]any
}

type where int

const (
	inHost where = iota + 1
	inPath
	inHeader
)

type part struct {
	lit    string // a literal, when name is ""
	name   string // api_version, region or provider_data.KEY
	filter string // "" or "host"
	at     where
}

// URLTemplate is a parsed base_url.
type URLTemplate struct {
	raw      string
	parts    []part
	scheme   string
	port     string
	segments int  // path segments of the template
	dynamic  bool // uses provider_data
}

// HeaderTemplate is a parsed header value.
type HeaderTemplate struct {
	parts   []part
	dynamic bool
}

// HasPlaceholders reports whether s holds "{{".
func HasPlaceholders(s string) bool { return strings.Contains(s, "{{") }

// split cuts s into literals and placeholders.
func split(s string) ([]part, error) {
	var out []part
	for {
		i := strings.Index(s, "{{")
		if i < 0 {
			if strings.Contains(s, "}}") {
				return nil, tmplErr("unbalanced }}")
			}
			if s != "" {
				out = append(out, part{lit: s})
			}
			return out, nil
		}
		if strings.Contains(s[:i], "}}") {
			return nil, tmplErr("unbalanced }}")
		}
		if i > 0 {
			out = append(out, part{lit: s[:i]})
		}
		j := strings.Index(s[i+2:], "}}")
		if j < 0 {
			return nil, tmplErr("unterminated {{")
		}
		expr := strings.TrimSpace(s[i+2 : i+2+j])
		name, filter, _ := strings.Cut(expr, "|")
		name, filter = strings.TrimSpace(name), strings.TrimSpace(filter)
		if !validName(name) {
			return nil, tmplErr("unknown placeholder {{%s}}: use {{api_version}}, {{region}} or {{provider_data.KEY}}", safeName(name))
		}
		if filter != "" && filter != "host" {
			return nil, tmplErr("unknown filter |%s (only |host)", safeName(filter))
		}
		out = append(out, part{name: name, filter: filter})
		s = s[i+2+j+2:]
	}
}

func validName(n string) bool {
	if n == "api_version" || n == "region" {
		return true
	}
	k, ok := strings.CutPrefix(n, "provider_data.")
	if !ok || k == "" || len(k) > 100 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// safeName bounds what an error quotes of a template (which is configuration, not a secret).
func safeName(s string) string {
	if len(s) > 60 {
		s = s[:60] + "…"
	}
	return strconv.Quote(s)[1 : len(strconv.Quote(s))-1]
}

// ParseURL parses a base_url template. A URL without placeholders parses too.
func ParseURL(s string) (*URLTemplate, error) {
	parts, err := split(s)
	if err != nil {
		return nil, err
	}
	t := &URLTemplate{raw: s}
	// Where is each placeholder? Walk the skeleton: scheme "://" authority [/path] [?query].
	const (
		sScheme = iota
		sAuthority
		sPath
		sQuery
	)
	state, authority := sScheme, ""
	var sk strings.Builder // the template with each placeholder as "x"
	for i := range parts {
		p := &parts[i]
		if p.name == "" {
			for _, c := range []byte(p.lit) {
				sk.WriteByte(c)
				switch {
				case state == sScheme && strings.HasSuffix(sk.String(), "://"):
					state = sAuthority
				case state == sAuthority && c == '/':
					state = sPath
				case (state == sAuthority || state == sPath) && c == '?':
					state = sQuery
				case state == sAuthority:
					authority += string(c)
				}
			}
			continue
		}
		switch state {
		case sScheme:
			return nil, tmplErr("a placeholder may not be in the scheme")
		case sQuery:
			return nil, tmplErr("a placeholder may not be in the query")
		case sAuthority:
			if strings.Contains(authority, ":") || strings.Contains(authority, "@") {
				return nil, tmplErr("a placeholder may be in the host only, not in the port or user info")
			}
			p.at = inHost
			authority += "x"
		case sPath:
			p.at = inPath
		}
		if p.filter == "host" && p.at != inHost {
			return nil, tmplErr("|host may be used only in the host")
		}
		if p.name != "api_version" && p.name != "region" {
			t.dynamic = true
		}
		sk.WriteByte('x')
	}
	// |host fills the whole host, alone.
	for i, p := range parts {
		if p.filter != "host" {
			continue
		}
		prevOK := i > 0 && parts[i-1].name == "" && strings.HasSuffix(parts[i-1].lit, "://")
		nextOK := i == len(parts)-1 || parts[i+1].name == "" && strings.IndexAny(parts[i+1].lit[:1], "/?:") == 0
		if !prevOK || !nextOK {
			return nil, tmplErr("{{%s|host}} must be the whole host", p.name)
		}
	}
	u, err := url.Parse(sk.String())
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return nil, tmplErr("must be an absolute http:// or https:// URL without user info or fragment")
	}
	t.parts, t.scheme, t.port = parts, u.Scheme, u.Port()
	t.segments = strings.Count(strings.TrimRight(u.EscapedPath(), "/"), "/")
	return t, nil
}

// Dynamic reports whether the template uses provider_data, so that it can be resolved only
// per connection.
func (t *URLTemplate) Dynamic() bool { return t.dynamic }

// String is the template as written.
func (t *URLTemplate) String() string { return t.raw }

// Resolve fills the placeholders. The result is checked again as a whole: same scheme, same
// port, same number of path segments.
func (t *URLTemplate) Resolve(v Vars) (string, error) {
	var b strings.Builder
	for _, p := range t.parts {
		if p.name == "" {
			b.WriteString(p.lit)
			continue
		}
		val, err := value(p.name, v)
		if err != nil {
			return "", err
		}
		switch {
		case p.filter == "host":
			h, err := hostOf(val)
			if err != nil {
				return "", tmplErr("{{%s|host}}: %v", p.name, err)
			}
			val = h
		case p.at == inHost:
			if !hostLabel(val) {
				return "", tmplErr("{{%s}} fills a host label: only letters, digits and '-' are allowed", p.name)
			}
		case p.at == inPath:
			if !pathPiece(val) {
				return "", tmplErr("{{%s}} fills a path segment: only letters, digits and - . _ ~ are allowed", p.name)
			}
		}
		b.WriteString(val)
	}
	out := b.String()
	u, err := url.Parse(out)
	if err != nil || u.Scheme != t.scheme || u.Port() != t.port || u.User != nil || u.Fragment != "" || u.Host == "" {
		return "", tmplErr("the resolved base_url changes the template's structure")
	}
	p := strings.TrimRight(u.EscapedPath(), "/")
	if strings.Count(p, "/") != t.segments {
		return "", tmplErr("the resolved base_url changes the template's path")
	}
	for _, seg := range strings.Split(p, "/")[1:] {
		if seg == "." || seg == ".." || seg == "" {
			return "", tmplErr("the resolved base_url has an empty or dot path segment")
		}
	}
	return out, nil
}

// ParseHeader parses a header value template.
func ParseHeader(s string) (*HeaderTemplate, error) {
	if bad := controlByte(s); bad {
		return nil, tmplErr("a header value may not hold control characters (CR, LF, NUL, …)")
	}
	parts, err := split(s)
	if err != nil {
		return nil, err
	}
	t := &HeaderTemplate{parts: parts}
	for i := range parts {
		parts[i].at = inHeader
		if parts[i].filter != "" {
			return nil, tmplErr("filters are not allowed in header values")
		}
		if parts[i].name != "" && parts[i].name != "api_version" && parts[i].name != "region" {
			t.dynamic = true
		}
	}
	return t, nil
}

// Dynamic reports whether the value uses provider_data.
func (t *HeaderTemplate) Dynamic() bool { return t.dynamic }

// Resolve fills the placeholders; a value with a control character is refused.
func (t *HeaderTemplate) Resolve(v Vars) (string, error) {
	var b strings.Builder
	for _, p := range t.parts {
		if p.name == "" {
			b.WriteString(p.lit)
			continue
		}
		val, err := value(p.name, v)
		if err != nil {
			return "", err
		}
		if controlByte(val) {
			return "", tmplErr("{{%s}} holds a control character (CR, LF, NUL, …), which a header may not", p.name)
		}
		b.WriteString(val)
	}
	return b.String(), nil
}

func value(name string, v Vars) (string, error) {
	var s string
	switch name {
	case "api_version":
		s = v.APIVersion
	case "region":
		s = v.Region
	default:
		k := strings.TrimPrefix(name, "provider_data.")
		raw, ok := v.ProviderData[k]
		if !ok || raw == nil {
			return "", tmplErr("{{%s}}: the connection's provider_data has no %s", name, safeName(k))
		}
		switch x := raw.(type) {
		case string:
			s = x
		case json.Number:
			s = x.String()
		case float64:
			s = strconv.FormatFloat(x, 'f', -1, 64)
		case int:
			s = strconv.Itoa(x)
		case int64:
			s = strconv.FormatInt(x, 10)
		case bool:
			s = strconv.FormatBool(x)
		default:
			return "", tmplErr("{{%s}}: provider_data.%s is not a string or number", name, safeName(k))
		}
	}
	if s == "" {
		return "", tmplErr("{{%s}} is empty", name)
	}
	return s, nil
}

func hostLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func pathPiece(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// hostOf is the host name of an absolute https URL with no user info, port, path, query or
// fragment, such as "https://na1.salesforce.com".
func hostOf(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Port() != "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", errors.New("must be an https:// URL with a host and nothing else")
	}
	h := u.Hostname()
	labels := strings.Split(h, ".")
	if len(labels) < 2 || len(h) > 253 {
		return "", errors.New("must name a DNS host")
	}
	for _, l := range labels {
		if !hostLabel(l) {
			return "", errors.New("must name a DNS host")
		}
	}
	return strings.ToLower(h), nil
}

func controlByte(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return true
		}
	}
	return false
}

// Sample is the template with every placeholder replaced by "x", for checking the rest of the
// URL with the ordinary URL rules.
func (t *URLTemplate) Sample() string {
	var b strings.Builder
	for _, p := range t.parts {
		if p.name == "" {
			b.WriteString(p.lit)
		} else if p.filter == "host" {
			b.WriteString("x.example")
		} else {
			b.WriteString("x")
		}
	}
	return b.String()
}

// Names lists the placeholders used, each once, in order.
func (t *URLTemplate) Names() []string { return names(t.parts) }

// Names lists the placeholders used, each once, in order.
func (t *HeaderTemplate) Names() []string { return names(t.parts) }

func names(parts []part) []string {
	var out []string
	for _, p := range parts {
		if p.name != "" && !slicesContains(out, p.name) {
			out = append(out, p.name)
		}
	}
	return out
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
