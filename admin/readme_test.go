package admin_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
)

// curlCall is one curl command of the README.
type curlCall struct {
	line    int
	capture string // VAR of VAR=$(curl … | jq -r .PATH)
	jqPath  string
	method  string
	url     string
	headers []string
	body    string
}

// readmeCurls parses the curl commands out of the README's "Management API" section: line
// continuations, single and double quotes, -X, -H, -d '…' and -d @- with a <<'EOF' here-document.
func readmeCurls(t *testing.T) []curlCall {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "\n## Management API\n")
	if start < 0 {
		t.Fatal(`README.md has no "## Management API" section`)
	}
	section := text[start+1:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	lines := strings.Split(section, "\n")
	var calls []curlCall
	inBlock := false
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.HasPrefix(l, "```") {
			inBlock = l == "```sh" && !inBlock
			continue
		}
		if !inBlock {
			continue
		}
		first := i
		for strings.HasSuffix(l, `\`) && i+1 < len(lines) {
			i++
			l = strings.TrimSuffix(l, `\`) + " " + strings.TrimSpace(lines[i])
		}
		if !strings.Contains(l, "curl ") {
			continue
		}
		c := curlCall{line: first}
		if m := regexp.MustCompile(`^([A-Z_]+)=\$\((.*)$`).FindStringSubmatch(l); m != nil {
			c.capture, l = m[1], m[2]
		}
		if cmd, jq, ok := strings.Cut(l, " | jq -r "); ok {
			l, c.jqPath = cmd, strings.TrimPrefix(strings.TrimSuffix(strings.TrimSpace(jq), ")"), ".")
		}
		heredoc := false
		if cmd, ok := strings.CutSuffix(strings.TrimSpace(l), "<<'EOF'"); ok {
			l, heredoc = cmd, true
		}
		args := shellWords(t, strings.TrimSpace(l))
		if args[0] != "curl" {
			t.Fatalf("README line %d: want curl, got %q", first, args[0])
		}
		c.method = "GET"
		for j := 1; j < len(args); j++ {
			switch a := args[j]; a {
			case "-sS", "-s", "-S":
			case "-X":
				j++
				c.method = args[j]
			case "-H":
				j++
				c.headers = append(c.headers, args[j])
			case "-d":
				j++
				c.body = args[j]
			default:
				if strings.HasPrefix(a, "-") {
					t.Fatalf("README line %d: the test does not know curl flag %s", first, a)
				}
				c.url = a
			}
		}
		if heredoc {
			if c.body != "@-" {
				t.Fatalf("README line %d: a here-document needs -d @-", first)
			}
			var body []string
			for i++; i < len(lines) && lines[i] != "EOF"; i++ {
				body = append(body, lines[i])
			}
			c.body = strings.Join(body, "\n")
			if c.capture != "" && (i+1 >= len(lines) || lines[i+1] != ")") {
				t.Fatalf("README line %d: want ) after EOF", first)
			}
		}
		calls = append(calls, c)
	}
	return calls
}

// shellWords splits a command line like sh: single quotes are literal, double quotes keep spaces
// (their $VARs are expanded later, like the unquoted ones).
func shellWords(t *testing.T, s string) []string {
	var out []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ' ' || c == '\t':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				t.Fatalf("unterminated ' in %q", s)
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			j := strings.IndexByte(s[i+1:], '"')
			if j < 0 {
				t.Fatalf("unterminated \" in %q", s)
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out
}

// TestREADMEExamples replays the README's curl commands, in order, against a real server.
func TestREADMEExamples(t *testing.T) {
	calls := readmeCurls(t)
	if len(calls) < 8 {
		t.Fatalf("found %d curl commands in the README's Management API section; want the examples", len(calls))
	}
	created := map[string]bool{}
	for _, c := range calls {
		if c.capture != "" {
			created[c.capture] = true
		}
	}
	for _, v := range []string{"FACEBOOK_ID", "STRIPE_ID", "TWILIO_ID"} {
		if !created[v] {
			t.Errorf("the README does not create %s", v)
		}
	}
	each(t, func(t *testing.T, e *env) {
		vars := map[string]string{"EXTAPI": e.srv.URL, "TOKEN": e.boot}
		expand := func(s string) string {
			return regexp.MustCompile(`\$[A-Z_]+`).ReplaceAllStringFunc(s, func(v string) string {
				val, ok := vars[v[1:]]
				if !ok {
					t.Fatalf("README uses $%s before setting it", v[1:])
				}
				return val
			})
		}
		for _, c := range calls {
			registerPlaceholders(c.body)
			var body io.Reader
			if c.body != "" {
				body = strings.NewReader(c.body)
			}
			req, err := http.NewRequest(c.method, expand(c.url), body)
			if err != nil {
				t.Fatalf("README line %d: %v", c.line, err)
			}
			for _, h := range c.headers {
				k, v, _ := strings.Cut(expand(h), ": ")
				req.Header.Set(k, v)
			}
			r := e.send(req)
			if r.status < 200 || r.status > 299 {
				t.Fatalf("README line %d: %s %s = %d %s", c.line, c.method, c.url, r.status, r.raw)
			}
			if c.capture != "" {
				v := r.str(c.jqPath)
				if v == "" {
					t.Fatalf("README line %d: no %s in %s", c.line, c.jqPath, r.raw)
				}
				vars[c.capture] = v
			}
		}
		// The three configurations are there, with their secrets set and shown only as set.
		l := e.do("GET", "/admin/external-apis", e.boot, nil).want(t, http.StatusOK)
		if l.get("count") != 3.0 {
			t.Fatalf("after the README: %s; want three APIs", l.raw)
		}
		s := e.do("GET", "/admin/external-apis/"+vars["STRIPE_ID"], e.boot, nil)
		if s.get("external_api.api_config.api_key.key.set") != true || s.get("external_api.connections_count") != 1.0 {
			t.Errorf("Stripe after the README: %s", s.raw)
		}
		if got := e.openAPISecret(vars["STRIPE_ID"], "api_config.api_key.key"); got != "sk_live_YOUR_NEW_STRIPE_SECRET_KEY" {
			t.Errorf("the README's key rotation did not take")
		}
	})
}

// registerPlaceholders registers the README's placeholder secrets (every value under a secret's
// name) for the redaction check.
func registerPlaceholders(body string) {
	var v any
	if json.Unmarshal([]byte(body), &v) != nil {
		return
	}
	var walk func(key string, v any)
	walk = func(key string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				walk(k, e)
			}
		case string:
			switch key {
			case "client_id", "client_secret", "consumer_key", "consumer_secret", "key", "secret", "client_key",
				"access_token", "refresh_token", "oauth_token", "oauth_token_secret", "api_key", "username", "password":
				secret(x)
			}
		}
	}
	walk("", v)
}
